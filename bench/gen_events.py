#!/usr/bin/env python3
"""Writes N PostHog-shaped engagement events (JSONL) for the events benchmark: 2,000
listings, 200,000 seekers, 30 days before 2025-01-31T00:00:00Z, in time order; 45%
impressions, 40% views, 5% saves, 3% shares and 7% lead events (phone, message by WhatsApp,
email or direct message, appointment, bare lead).
usage: gen_events.py N OUT.jsonl"""
import random, sys

n, out = int(sys.argv[1]), sys.argv[2]
rng = random.Random(11)
END = 1738281600  # 2025-01-31T00:00:00Z
START = END - 30 * 86400
KINDS = (["listing_impression"] * 45 + ["listing_view"] * 40 + ["listing_save"] * 5 + ["listing_share"] * 3
         + ["lead_phone"] * 2 + ["lead_message"] * 3 + ["lead_appointment"] + ["lead"])
MESSAGES = ["whatsapp", "email", "direct_message"]
CHANNELS = ["whatsapp", "email", "copy_link", "facebook"]


def stamp(t):
    days, rem = divmod(t, 86400)
    # civil date from days since the epoch (Howard Hinnant's algorithm)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y + (m <= 2), m, d, rem // 3600, rem // 60 % 60, rem % 60)


with open(out, "w") as f:
    step = (END - START) / n
    for i in range(n):
        t = START + int(i * step) + 1
        kind = rng.choice(KINDS)
        listing = "listing-%d" % rng.randrange(2000)
        seeker = "seeker-%d" % rng.randrange(200000)
        extra = ""
        if kind == "lead_message":
            extra = ',"message_type":"%s"' % rng.choice(MESSAGES)
        elif kind == "lead_appointment":
            extra = ',"appointment_type":"in_person"'
        elif kind == "listing_share":
            extra = ',"share_channel":"%s"' % rng.choice(CHANNELS)
        f.write('{"uuid":"%032x","event":"%s","distinct_id":"%s","timestamp":"%s","properties":{"listing_id":"%s","seeker_id":"%s","lister_id":"agent-%d","lister_type":"agent"%s}}\n'
                % (i, kind, seeker, stamp(t), listing, seeker, hash(listing) % 500, extra))
