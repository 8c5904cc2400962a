#!/usr/bin/env python3
"""Writes N synthetic Spark listings as recorded replay pages (25 per page) for the fetch
benchmark, built like fixtures/listings/make_fixtures.py builds the fixtures.

usage: gen_listings.py N OUTDIR
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "listings"))
import make_fixtures  # noqa: E402


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(7)
    listings = [make_fixtures.listing(rng, "gps", "expired", i, (2026, 9 + i % 2, 1 + i % 28, i % 24, i % 60, 0))
                for i in range(n)]
    for i, page in enumerate(make_fixtures.spark_pages(listings, 25, overlap=False)):
        with open(os.path.join(out, "page-%04d.json" % (i + 1)), "w") as f:
            json.dump(page, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
