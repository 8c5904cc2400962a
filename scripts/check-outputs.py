#!/usr/bin/env python3
"""Checks every file the pipelines wrote under a tree against its schema (stages/schemas/).

    scripts/check-outputs.py [TREE]      # TREE holds local-logs/ and exports/ (default .)

For each file: a schema names it (stages/schemas/files.csv); every JSON row has exactly the
schema's fields, each with one of its types, integers never written as 2.0 and numbers
always with a decimal point (one JSON type per field in every row); CSV headers are the
schema's columns (a smart list's, its .list's). Then the JSONL and JSON files are read by
DuckDB (read_json_auto) and polars (read_ndjson; with the schema where polars' 100-row
inference cannot type a sparse field, see leadetl_schemas.py) and the readers must return
every row and every non-null value. Prints one line per problem, naming file, line and
field; exits 1 when there is any.
"""
import csv
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import leadetl_schemas as ls  # noqa: E402

SKIP_SUFFIXES = (".lock", ".png", ".jpg", ".jpeg", ".html", ".sqlite", ".part")
problems = []


def problem(path, line, text):
    problems.append(f"{path}:{line}: {text}" if line else f"{path}: {text}")


def json_type(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def check_value(path, line, key, prop, value):
    allowed = ls.types(prop)
    if not allowed:
        return
    t = json_type(value)
    if t not in allowed:
        problem(path, line, f"{key} is {t} ({json.dumps(value)[:40]}), the schema says {'|'.join(allowed)}")
        return
    if t == "array" and "items" in prop:
        item_types = ls.types(prop["items"])
        for item in value:
            if item_types and json_type(item) not in item_types:
                problem(path, line, f"{key} holds {json_type(item)} ({json.dumps(item)[:40]}), the schema says {'|'.join(item_types)}")
                return


def check_record(path, line, schema, record):
    props = schema.get("properties", {})
    for key in schema.get("required", []):
        if key not in record:
            problem(path, line, f"{key} is missing (write null when unknown)")
    extra = schema.get("additionalProperties", True)
    patterns = [(re.compile(p), s) for p, s in schema.get("patternProperties", {}).items()]
    for key, value in record.items():
        if key in props:
            check_value(path, line, key, props[key], value)
            continue
        matched = [s for p, s in patterns if p.search(key)]
        if matched:
            check_value(path, line, key, matched[0], value)
        elif extra is False:
            problem(path, line, f"{key} is not in schema {schema['$id'].rsplit('/', 1)[-1]}")
        elif isinstance(extra, dict):
            check_value(path, line, key, extra, value)


def non_null_counts(rows):
    counts = {}
    for r in rows:
        for k, v in r.items():
            counts.setdefault(k, 0)
            if v is not None:
                counts[k] += 1
    return counts


def check_readers(path, rows, is_lines):
    """DuckDB and polars return every row, every column and every non-null value."""
    import duckdb
    import polars as pl
    want = non_null_counts(rows)
    try:
        rel = duckdb.sql(f"SELECT * FROM read_json_auto('{path}')")
        columns = rel.columns
        got_rows = rel.fetchall()
    except Exception as e:  # noqa: BLE001
        problem(path, 0, f"DuckDB cannot read it: {str(e)[:120]}")
        return
    if rows and len(got_rows) != len(rows):
        problem(path, 0, f"DuckDB reads {len(got_rows)} rows of {len(rows)}")
    elif rows:
        for i, c in enumerate(columns):
            n = sum(1 for r in got_rows if r[i] is not None)
            if n != want.get(c, 0):
                problem(path, 0, f"DuckDB reads {n} values of {c}, the file has {want.get(c, 0)}")
    if not is_lines:
        return
    frame = None
    try:
        frame = pl.read_ndjson(path)
    except Exception as e:  # noqa: BLE001
        message = str(e)
        explicit = "NULL-typed column" in message or "empty" in message
        if not explicit:
            problem(path, 0, f"polars cannot read it: {message[:120]}")
            return
    if frame is None:
        try:
            frame = ls.read_polars(path, relative=RELATIVE[path])
        except Exception as e:  # noqa: BLE001
            problem(path, 0, f"polars cannot read it with its schema: {str(e)[:120]}")
            return
    if frame.height != len(rows):
        problem(path, 0, f"polars reads {frame.height} rows of {len(rows)}")
    for c, n in want.items():
        if c not in frame.columns:
            problem(path, 0, f"polars drops column {c}")
        elif frame.height and frame.height - frame[c].null_count() != n:
            problem(path, 0, f"polars reads {frame.height - frame[c].null_count()} values of {c}, the file has {n}")


RELATIVE = {}


def check_csv(path, name, schema, relative):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        problem(path, 0, "no header row")
        return
    header = rows[0]
    if name == "smart-list-csv":
        # A list names its own columns (stages/export/lists/<name>.list): each is one the
        # schema knows, once.
        known = schema.get("properties", {})
        for column in header:
            if column not in known:
                problem(path, 1, f"column {column} is not in schema {name}")
        if len(set(header)) != len(header):
            problem(path, 1, f"header {header} repeats a column")
    elif header != list(schema.get("properties", {})):
        problem(path, 1, f"header {header} is not the schema's columns {list(schema.get('properties', {}))}")
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            problem(path, n, f"{len(row)} cells under {len(header)} columns")


def check_tree(tree):
    checked = 0
    for top in ("local-logs", "exports"):
        base = os.path.join(tree, top)
        for d, dirs, files in os.walk(base):
            dirs[:] = sorted(x for x in dirs if not x.startswith("_") and x != "photos")
            for f in sorted(files):
                if f.endswith(SKIP_SUFFIXES) or f.startswith("."):
                    continue
                path = os.path.join(d, f)
                relative = os.path.relpath(path, tree)
                name = ls.schema_for(relative)
                if name is None:
                    problem(path, 0, "no schema names this file (stages/schemas/files.csv)")
                    continue
                if name == "-":
                    continue
                schema = ls.load(name)
                checked += 1
                if schema.get("x-format") == "csv":
                    check_csv(path, name, schema, relative)
                    continue
                RELATIVE[path] = relative
                rows = []
                with open(path, encoding="utf-8") as fh:
                    if f.endswith(".jsonl"):
                        for n, line in enumerate(fh, start=1):
                            if not line.strip():
                                continue
                            try:
                                rows.append((n, json.loads(line)))
                            except ValueError as e:
                                problem(path, n, f"not JSON: {e}")
                    else:
                        rows.append((1, json.load(fh)))
                for n, record in rows:
                    if not isinstance(record, dict):
                        problem(path, n, "not a JSON object")
                        continue
                    check_record(path, n, schema, record)
                if name != "photo-skip-index":
                    check_readers(path, [r for _, r in rows], f.endswith(".jsonl"))
    return checked


def check_schemas():
    """Every schema is a valid JSON Schema (draft 2020-12) and ids and ZIPs are strings."""
    from jsonschema import Draft202012Validator
    for f in sorted(os.listdir(ls.SCHEMAS)):
        if not f.endswith(".json"):
            continue
        schema = ls.load(f[:-5])
        try:
            Draft202012Validator.check_schema(schema)
        except Exception as e:  # noqa: BLE001
            problem(os.path.join(ls.SCHEMAS, f), 0, f"not a JSON Schema: {str(e)[:120]}")
        for key, prop in schema.get("properties", {}).items():
            if re.search(r"(zip|postal|_id$|Id$|Key$)", key, re.I) and set(ls.types(prop)) - {"string", "null"}:
                problem(os.path.join(ls.SCHEMAS, f), 0, f"{key} must be a string (ids and ZIP codes keep their leading zeros)")


if __name__ == "__main__":
    tree = sys.argv[1] if len(sys.argv) > 1 else "."
    check_schemas()
    checked = check_tree(tree)
    for p in problems:
        print(p)
    print(f"{checked} files checked, {len(problems)} problems", file=sys.stderr)
    sys.exit(1 if problems or checked == 0 else 0)
