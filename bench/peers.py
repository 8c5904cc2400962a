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
    write = sys.stdout.write
    with open(path, encoding="utf-8") as f:
        for line in f:
            write(dumps(flatten(json.loads(line), "", {})) + "\n")


def flatten_csv(path):
    write = sys.stdout.write
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            write(dumps(row) + "\n")


def cell(value):
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value


def export_csv(path):
    header, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            for k in flatten(json.loads(line), "", {}):
                if k not in seen:
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
