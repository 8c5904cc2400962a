#!/usr/bin/env python3
"""The dataframe peers of the benchmark (issue 15): DuckDB and polars doing what
lead-flatten csv and lead-export csv do, as a user would write it, output to stdout.

usage: peers_df.py duckdb-flatten-csv FILE | polars-flatten-csv FILE
                   duckdb-export-csv FILE | polars-export-csv FILE
"""
import sys


def duckdb_flatten_csv(path):
    import duckdb
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    # Every cell as text, as lead-flatten csv keeps them; JSON lines out.
    con.execute("COPY (SELECT * FROM read_csv(?, all_varchar = true, header = true)) TO '/dev/stdout' (FORMAT JSON)", [path])


def polars_flatten_csv(path):
    import polars as pl
    pl.read_csv(path, infer_schema_length=0).write_ndjson(sys.stdout.buffer)


def duckdb_export_csv(path):
    import duckdb
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.execute("COPY (SELECT * FROM read_json_auto(?, format = 'newline_delimited', union_by_name = true)) TO '/dev/stdout' (FORMAT CSV, HEADER)", [path])


def polars_export_csv(path):
    import polars as pl
    pl.read_ndjson(path, infer_schema_length=None).write_csv(sys.stdout.buffer)


if __name__ == "__main__":
    {"duckdb-flatten-csv": duckdb_flatten_csv, "polars-flatten-csv": polars_flatten_csv,
     "duckdb-export-csv": duckdb_export_csv, "polars-export-csv": polars_export_csv}[sys.argv[1]](sys.argv[2])
