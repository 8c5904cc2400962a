#!/usr/bin/env python3
"""Writes the benchmark data set: deterministic, nested, lead-like JSON records.

usage: gen.py N OUTDIR
Writes OUTDIR/leads.jsonl (nested), OUTDIR/leads-flat.jsonl (the same records flattened)
and OUTDIR/leads.csv (the flat records as CSV with a header). Same N, same bytes.
"""
import csv
import json
import random
import sys

STREETS = ["MAIN", "OAK", "CEDAR", "ELM", "LAMAR", "CONGRESS", "BURNET", "GUADALUPE", "PECAN", "RIVERSIDE"]
SUFFIXES = ["ST", "AVE", "BLVD", "DR", "LN", "RD", "CT", "WAY"]
CITIES = [("AUSTIN", "TX", "787"), ("DALLAS", "TX", "752"), ("PLANO", "TX", "750"), ("PHOENIX", "AZ", "850"),
          ("ATLANTA", "GA", "303"), ("DENVER", "CO", "802")]
TAGS = ["Foreclosure", "Probate", "Tax Lien", "Vacant", "Absentee In-County", "Expired Listing", "Code Violation"]
FIRST = ["JOHN", "MARIA", "WEI", "AISHA", "CARLOS", "EMMA", "RAJ", "OLGA"]
LAST = ["SMITH", "GARCIA", "CHEN", "KHAN", "LOPEZ", "MILLER", "PATEL", "IVANOVA"]


def record(i, rng):
    city, state, zip3 = CITIES[rng.randrange(len(CITIES))]
    rec = {
        "id": "L%07d" % i,
        "source": rng.choice(["county", "mls", "permits"]),
        "owner": {"name": "%s %s" % (rng.choice(FIRST), rng.choice(LAST))},
        "property": {
            "address": "%d %s %s" % (rng.randrange(1, 9999), rng.choice(STREETS), rng.choice(SUFFIXES)),
            "city": city,
            "zip": zip3 + "%02d" % rng.randrange(100),
            "beds": rng.randrange(1, 6),
            "value": round(rng.uniform(90000, 900000), 2),
        },
        "tags": [{"tag": t, "at": "2026-%02d-%02d" % (rng.randrange(1, 12), rng.randrange(1, 28))}
                 for t in rng.sample(TAGS, rng.randrange(0, 3))],
    }
    if rng.random() < 0.1:
        rec["note"] = 'said "call after 5", owner\u00e9 moved'
    return rec


def flatten(value, prefix, out):
    if isinstance(value, dict):
        if not value and prefix:
            out[prefix] = "{}"
        for k, v in value.items():
            flatten(v, prefix + "." + k if prefix else k, out)
    elif isinstance(value, list):
        if not value:
            out[prefix] = "[]"
        for n, v in enumerate(value, 1):
            flatten(v, "%s.%d" % (prefix, n), out)
    else:
        out[prefix] = value
    return out


def main():
    n = int(sys.argv[1])
    outdir = sys.argv[2]
    rng = random.Random(20261123)
    header = []
    seen = set()
    with open(outdir + "/leads.jsonl", "w") as nested, open(outdir + "/leads-flat.jsonl", "w") as flat:
        for i in range(n):
            rec = record(i, rng)
            nested.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
            f = flatten(rec, "", {})
            flat.write(json.dumps(f, ensure_ascii=False, separators=(",", ":")) + "\n")
            for k in f:
                if k not in seen:
                    seen.add(k)
                    header.append(k)
    with open(outdir + "/leads-flat.jsonl") as flat, open(outdir + "/leads.csv", "w", newline="") as out:
        w = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
        w.writeheader()
        for line in flat:
            w.writerow(json.loads(line))


if __name__ == "__main__":
    main()
