"""The schemas of the files the pipelines write (stages/schemas/), for Python readers.

    import sys; sys.path.insert(0, "scripts")
    import leadetl_schemas as ls
    ls.schema_for("local-logs/permits/tiered.jsonl")   # the schema's name, via files.csv
    ls.read_polars("local-logs/permits/tiered.jsonl")  # a polars DataFrame, empty files too

polars infers an NDJSON file's types from its first 100 rows: a field that is null in all
of them (sold_to before the first sale) stops it ("got non-null value for NULL-typed
column"), and an empty file has no rows to infer from. read_polars gives polars the
schema's scalar types and lets it infer the nested ones over the whole file. DuckDB's
read_json_auto reads every file as it is.
"""
import csv
import fnmatch
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMAS = os.path.join(ROOT, "stages", "schemas")


def patterns():
    """(pattern, schema name) rows of stages/schemas/files.csv, in order."""
    with open(os.path.join(SCHEMAS, "files.csv"), newline="") as f:
        lines = [line for line in f if line.strip() and not line.startswith("#")]
    rows = list(csv.reader(lines))
    return [(r[0], r[1]) for r in rows[1:]]


def schema_for(relative):
    """The schema name of a path under the repo (or '-' for a verbatim copy); None if none."""
    for pattern, name in patterns():
        if relative.count("/") == pattern.count("/") and fnmatch.fnmatchcase(relative, pattern):
            return name
    return None


def load(name):
    with open(os.path.join(SCHEMAS, name + ".json")) as f:
        return json.load(f)


def types(prop):
    t = prop.get("type", [])
    return [t] if isinstance(t, str) else list(t)


def polars_types(schema):
    """The polars dtype of each scalar or list-of-scalar property (objects are left to polars)."""
    import polars as pl
    scalar = {"string": pl.String, "integer": pl.Int64, "number": pl.Float64, "boolean": pl.Boolean}
    out = {}
    for key, prop in schema.get("properties", {}).items():
        t = [x for x in types(prop) if x != "null"]
        if len(t) != 1:
            continue
        if t[0] in scalar:
            out[key] = scalar[t[0]]
        elif t[0] == "array":
            items = [x for x in types(prop.get("items", {})) if x != "null"]
            if len(items) == 1 and items[0] in scalar:
                out[key] = pl.List(scalar[items[0]])
    return out


def read_polars(path, relative=None):
    """A JSONL file the pipelines wrote, read by polars with its schema's types."""
    import polars as pl
    relative = relative or os.path.relpath(os.path.abspath(path), ROOT)
    name = schema_for(relative)
    schema = load(name) if name and name != "-" else {}
    typed = polars_types(schema)
    if os.path.getsize(path) == 0:
        return pl.DataFrame(schema={k: typed.get(k, pl.String) for k in schema.get("properties", {})})
    frame = pl.read_ndjson(path, infer_schema_length=None, schema_overrides=typed)
    return frame
