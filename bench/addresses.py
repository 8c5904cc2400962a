#!/usr/bin/env python3
"""LeadETL's address standardiser side by side with usaddress-scourgify on the same strings.

    make bench-addresses        (runs the accuracy tests with LEAD_ADDRESS_REPORT, then this)

Reads <dir>/<set>.jsonl ({"raw", "expected", "actual"}: the line the labels imply and
LeadETL's), standardises each raw string with scourgify (normalize_address_record; a string
it cannot parse counts as rejected, and its line is address_line_1 + address_line_2), and
prints the share of lines each gets right.
"""
import json
import sys
import time

try:
    from scourgify import normalize_address_record
except ImportError:
    sys.exit("bench/addresses.py: usaddress-scourgify is missing (pip install usaddress-scourgify)")


def scourgify_line(raw):
    try:
        r = normalize_address_record(raw)
    except Exception:
        return "(rejected)"
    line = " ".join(p for p in (r.get("address_line_1"), r.get("address_line_2")) if p)
    return line or "(rejected)"


def main():
    directory = sys.argv[1]
    sets = sys.argv[2:] or ["usaddress-labeled", "usaddress-more", "usaddress-holdout"]
    print(f"{'set':<22} {'strings':>8} {'LeadETL':>9} {'scourgify':>10} {'scourgify s':>12}")
    for name in sets:
        rows = [json.loads(l) for l in open(f"{directory}/{name}.jsonl", encoding="utf-8") if l.strip()]
        ours = sum(r["expected"] == r["actual"] for r in rows)
        t = time.perf_counter()
        theirs = sum(r["expected"] == scourgify_line(r["raw"]) for r in rows)
        seconds = time.perf_counter() - t
        n = len(rows)
        print(f"{name:<22} {n:>8} {100 * ours / n:>8.2f}% {100 * theirs / n:>9.2f}% {seconds:>11.2f}s")


if __name__ == "__main__":
    main()
