#!/usr/bin/env python3
"""The plain Python 3 peers of the benchmark: json.loads/json.dumps loops that do the same
work as the LeadETL stage they are compared with, and write the same bytes.

usage: peers.py flatten-json FILE | flatten-csv FILE | export-csv FILE
"""
import csv
import json
import sys


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


def dumps(record):
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def flatten_json(path):
    # As lead-flatten, each record names where it was read: _origin, "file:line".
    write = sys.stdout.write
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            out = flatten(json.loads(line), "", {})
            out.setdefault("_origin", "%s:%d" % (path, n))
            write(dumps(out) + "\n")


def flatten_csv(path):
    write = sys.stdout.write
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        for row in reader:
            row["_origin"] = "%s:%d" % (path, reader.line_num)
            write(dumps(row) + "\n")


def cell(value):
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    # As lead-export: a whole number written 2.0 is the cell 2.
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def export_csv(path):
    header, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            for k in flatten(json.loads(line), "", {}):
                # lead-export leaves the provenance out of delivered files.
                if k not in seen and k != "_origin":
                    seen.add(k)
                    header.append(k)
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(header)
    with open(path, encoding="utf-8") as f:
        for line in f:
            rec = flatten(json.loads(line), "", {})
            w.writerow([cell(rec.get(k)) for k in header])


if __name__ == "__main__":
    {"flatten-json": flatten_json, "flatten-csv": flatten_csv, "export-csv": export_csv}[sys.argv[1]](sys.argv[2])
