#!/usr/bin/env python3
"""Writes N Austin-layout building permits (the columns of fixtures/permits/austin/) for the
permits benchmark: real fixture rows recycled with a unique permit number, another house
number, an issue date in the fixture week and a job valuation on a third of them.
usage: gen_permits.py N OUT.csv"""
import csv, glob, os, random, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
n, out = int(sys.argv[1]), sys.argv[2]
rows = []
header = None
for path in sorted(glob.glob(os.path.join(ROOT, "fixtures", "permits", "austin", "*.csv"))):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows.extend(reader)
col = {name: i for i, name in enumerate(header)}
rng = random.Random(7)
with open(out, "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(header)
    for i in range(n):
        r = list(rows[i % len(rows)])
        suffix = r[col["permit_number"]].split()[-1]
        r[col["permit_number"]] = "%d-%07d %s" % (2016 + i % 3, i, suffix)
        parts = r[col["permit_location"]].split(" ", 1)
        if parts[0].isdigit() and len(parts) == 2:
            r[col["permit_location"]] = "%d %s" % (rng.randint(100, 19999), parts[1])
        r[col["date_issued"]] = "03/%02d/2016" % (7 + i % 5)
        if i % 3 == 0:
            r[col["total_job_valuation"]] = str(rng.randint(500, 400000))
        w.writerow(r)
