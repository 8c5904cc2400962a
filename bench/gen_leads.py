#!/usr/bin/env python3
"""Writes a deterministic PropStream-style lead list (the layout of
stages/flatten/leads-propstream-preforeclosure.csv) for the leads benchmark.

usage: gen_leads.py N OUT.csv M UPDATE.csv

Addresses are spelt the ways real lists spell them (suffix and directional variants,
units, PO boxes, upper and mixed case); about one row in ten repeats an address seen
earlier in the file in another spelling, so dedupe has work. UPDATE.csv holds M rows, each
an address of OUT.csv in a new spelling with new lists and owners (a provider's next
delivery), to time dedupe against an existing master.
"""
import argparse
import csv
import random

STREETS = ["Main", "Oak", "Maple", "Cedar", "Elm", "Pine", "Lake", "Hill", "Sunset", "Washington", "Lincoln",
           "Park", "River", "Spring", "Ridge", "Highland", "Mesa Verde", "Barton Creek", "Martin Luther King Jr",
           "Shoal Creek", "Red River", "Guadalupe", "Lamar", "Burnet", "Airport", "Cameron", "Manor", "Chestnut"]
SUFFIXES = [("Street", "St", "St."), ("Avenue", "Ave", "Av"), ("Drive", "Dr", "Drv"), ("Road", "Rd", "Rd."),
            ("Lane", "Ln", "Ln."), ("Boulevard", "Blvd", "Boul"), ("Court", "Ct", "COURT"), ("Way", "Way", "Wy"),
            ("Circle", "Cir", "Circ"), ("Parkway", "Pkwy", "Parkwy"), ("Trail", "Trl", "Trails"), ("Place", "Pl", "Pl.")]
DIRS = [("", ""), ("", ""), ("", ""), ("North", "N"), ("South", "S"), ("East", "E"), ("West", "W"),
        ("Northwest", "NW"), ("Southeast", "SE")]
UNITS = [("", ""), ("", ""), ("", ""), ("", ""), ("Apartment 4", "Apt 4"), ("Unit 12B", "# 12B"), ("Suite 200", "Ste 200")]
CITIES = [("Austin", "TX", "787", "Travis"), ("Round Rock", "TX", "786", "Williamson"), ("Mesa", "AZ", "852", "Maricopa"),
          ("Denver", "CO", "802", "Denver"), ("Saint Louis", "MO", "631", "St. Louis"), ("West Palm Beach", "FL", "334", "Palm Beach")]
FIRST = ["Maria", "James", "Ann", "Robert", "Linda", "Kenneth", "Rosa", "Earl", "Diane", "Marco", "Li", "Priya"]
LAST = ["Gonzales", "Whitfield", "Lee", "Boyd", "Delgado", "Pruitt", "Nguyen", "Patel", "Smith", "Okafor"]
LISTS = ["Pre-Foreclosure", "Pre-Foreclosure|High Equity", "Vacant", "Tax Delinquent", "Probate", "NOD|Vacant",
         "Code Violations", "Tired Landlord", "Divorce", "Bankruptcy|High Equity", "Eviction"]
HEADER = ["Address", "Unit #", "City", "State", "Zip", "County", "APN", "Owner 1 First Name", "Owner 1 Last Name",
          "Owner 2 First Name", "Owner 2 Last Name", "Mailing Address", "Mailing Unit #", "Mailing City",
          "Mailing State", "Mailing Zip", "Est. Value", "Est. Equity", "Lists", "Date Added"]


def address(rng):
    """One property: (number, dir index, street, suffix index, unit index, city index, zip)."""
    city = rng.randrange(len(CITIES))
    return (rng.randint(1, 29999), rng.randrange(len(DIRS)), rng.choice(STREETS), rng.randrange(len(SUFFIXES)),
            rng.randrange(len(UNITS)), city, CITIES[city][2] + "%02d" % rng.randint(0, 99))


def spell(rng, a):
    number, d, street, s, u, city, zipcode = a
    direction = DIRS[d][rng.randrange(2)]
    suffix = SUFFIXES[s][rng.randrange(3)]
    unit = UNITS[u][rng.randrange(2)]
    line = " ".join(p for p in (str(number), direction, street, suffix) if p)
    if rng.random() < 0.3:
        line = line.upper()
    return line, unit, CITIES[city], zipcode + ("-%04d" % rng.randint(1, 9999) if rng.random() < 0.2 else "")


def row(rng, a):
    line, unit, city, zipcode = spell(rng, a)
    kind = rng.random()
    if kind < 0.4:
        mailing = (line, unit, city[0], city[1], zipcode)            # owner lives there
    elif kind < 0.6:
        mailing = ("PO Box %d" % rng.randint(1, 9999), "", city[0], city[1], city[2] + "%02d" % rng.randint(0, 99))
    elif kind < 0.9:
        other = CITIES[rng.randrange(len(CITIES))]
        mailing = ("%d %s %s" % (rng.randint(1, 9999), rng.choice(STREETS), SUFFIXES[rng.randrange(len(SUFFIXES))][1]),
                   "", other[0], other[1], other[2] + "%02d" % rng.randint(0, 99))
    else:
        mailing = ("", "", "", "", "")
    value = rng.randint(80, 1500) * 1000
    return [line, unit, city[0], city[1], zipcode, city[3], "%010d" % rng.randint(0, 10**10 - 1),
            rng.choice(FIRST), rng.choice(LAST), "", "", mailing[0], mailing[1], mailing[2], mailing[3], mailing[4],
            "${:,}".format(value), "${:,}".format(rng.randint(0, value)), rng.choice(LISTS),
            "%02d/%02d/2026" % (rng.randint(1, 11), rng.randint(1, 28))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("count", type=int)
    parser.add_argument("out")
    parser.add_argument("updates", type=int)
    parser.add_argument("update_out")
    args = parser.parse_args()
    rng = random.Random(11)
    seen = []
    with open(args.out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        for _ in range(args.count):
            if seen and rng.random() < 0.1:
                w.writerow(row(rng, rng.choice(seen)))
            else:
                a = address(rng)
                seen.append(a)
                w.writerow(row(rng, a))
    with open(args.update_out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        for _ in range(args.updates):
            w.writerow(row(rng, rng.choice(seen)))


if __name__ == "__main__":
    main()
