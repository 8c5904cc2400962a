#!/usr/bin/env python3
"""The dataframe peers of the benchmark (issue 15): DuckDB and polars doing what
lead-flatten csv and lead-export csv do, as a user would write it, output to stdout.

usage: peers_df.py duckdb-flatten-csv FILE | polars-flatten-csv FILE
                   duckdb-export-csv FILE | polars-export-csv FILE
                   duckdb-events FILE NOW OUTDIR
                   pandas-permits CSV NOW OUTDIR
"""
import sys


def rules(name):
    """A rules file of stages/ (comment lines skipped) as a list of dicts."""
    import csv
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "stages", name), newline="") as f:
        return list(csv.DictReader(line for line in f if line.strip() and not line.startswith("#")))


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


def duckdb_events(path, now, out):
    """The events chain in DuckDB SQL, as a user would write it from the raw PostHog JSONL: the
    window (now - 365 days, now], one event per uuid, the lead records per (listing, seeker)
    with their actions and score (the weights of stages/score/event-weights.csv), and the
    hourly analytics and totals per listing, written as JSONL to OUTDIR."""
    import duckdb
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.execute("""
        CREATE TEMP TABLE ev AS
        SELECT uuid AS event_id, event, TRY_CAST("timestamp" AS TIMESTAMP) AS ts,
               properties->>'listing_id' AS listing_id,
               coalesce(properties->>'seeker_id', distinct_id) AS seeker_id,
               properties->>'lister_id' AS lister_id, properties->>'lister_type' AS lister_type,
               lower(properties->>'message_type') AS message_type, properties->>'appointment_type' AS appointment_type,
               CASE event WHEN 'lead_phone' THEN 'phone' WHEN 'lead_message' THEN 'message'
                          WHEN 'lead_appointment' THEN 'appointment' WHEN 'lead' THEN 'lead' END AS lead_type,
               CASE event WHEN 'listing_view' THEN 'view' WHEN 'listing_impression' THEN 'impression'
                          WHEN 'listing_share' THEN 'share' WHEN 'listing_save' THEN 'save' ELSE 'action' END AS kind
        FROM read_json(?, format = 'newline_delimited', ignore_errors = true, columns = {uuid: 'VARCHAR', event: 'VARCHAR', distinct_id: 'VARCHAR',
                                                                   "timestamp": 'VARCHAR', properties: 'JSON'})
        WHERE TRY_CAST("timestamp" AS TIMESTAMP) > CAST(? AS TIMESTAMP) - INTERVAL 365 DAY AND TRY_CAST("timestamp" AS TIMESTAMP) <= CAST(? AS TIMESTAMP)
          AND properties->>'listing_id' IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY uuid ORDER BY "timestamp") = 1
    """, [path, now, now])
    con.execute("""
        COPY (
            SELECT listing_id, seeker_id, last(lister_id ORDER BY ts) AS lister_id, last(lister_type ORDER BY ts) AS lister_type,
                   list({action_type: event, lead_type: lead_type, "timestamp": strftime(ts, '%Y-%m-%dT%H:%M:%SZ'),
                         message_type: message_type, appointment_type: appointment_type, event_id: event_id, points: points} ORDER BY ts) AS lead_actions,
                   count(*) AS total_actions, sum(points) AS lead_score,
                   strftime(min(ts), '%Y-%m-%d') AS first_action_date, strftime(max(ts), '%Y-%m-%d') AS last_action_date,
                   last(event ORDER BY ts) AS last_action_type, 'new' AS status
            FROM (SELECT *, CASE lead_type WHEN 'appointment' THEN 40 WHEN 'phone' THEN 30
                                 WHEN 'message' THEN CASE message_type WHEN 'direct_message' THEN 20 WHEN 'whatsapp' THEN 15 ELSE 10 END
                                 ELSE 10 END AS points
                  FROM ev WHERE kind = 'action' AND seeker_id IS NOT NULL)
            GROUP BY listing_id, seeker_id ORDER BY listing_id, seeker_id
        ) TO '""" + out + """/leads.jsonl' (FORMAT JSON)""")
    con.execute("""
        CREATE TEMP TABLE hourly AS
        SELECT listing_id, date_trunc('hour', ts) AS hour_start,
               count(*) FILTER (kind = 'view') AS total_views, count(DISTINCT seeker_id) FILTER (kind = 'view') AS unique_views,
               count(*) FILTER (kind = 'action') AS total_leads,
               count(*) FILTER (lead_type = 'phone') AS phone_leads, count(*) FILTER (lead_type = 'message') AS message_leads,
               count(*) FILTER (lead_type = 'message' AND message_type = 'email') AS email_leads,
               count(*) FILTER (lead_type = 'appointment') AS appointment_leads,
               count(DISTINCT seeker_id) FILTER (kind = 'action') AS unique_leads,
               count(*) FILTER (kind = 'impression') AS impressions, count(*) FILTER (kind = 'share') AS shares,
               count(*) FILTER (kind = 'save') AS saves
        FROM ev GROUP BY listing_id, hour_start
    """)
    con.execute("""COPY (SELECT listing_id, strftime(hour_start, '%Y-%m-%d') AS date, hour(hour_start) AS hour, * EXCLUDE (listing_id, hour_start),
                                CASE WHEN total_views > 0 THEN round(100.0 * total_leads / total_views, 2) ELSE 0.0 END AS conversion_rate
                         FROM hourly ORDER BY listing_id, hour_start) TO '""" + out + """/listing_analytics.jsonl' (FORMAT JSON)""")
    con.execute("""COPY (SELECT listing_id, count(*) FILTER (kind = 'view') AS total_views,
                                count(DISTINCT seeker_id) FILTER (kind = 'view') AS unique_views,
                                count(*) FILTER (kind = 'action') AS total_leads, count(DISTINCT seeker_id) FILTER (kind = 'action') AS unique_leads,
                                min(ts) AS first_activity_at, max(ts) AS last_activity_at,
                                count(DISTINCT date_trunc('hour', ts)) AS active_hours
                         FROM ev GROUP BY listing_id ORDER BY listing_id) TO '""" + out + """/listings.jsonl' (FORMAT JSON)""")


def pandas_permits(path, now, out):
    """The permits chain as a pandas script a user would write: the Austin column map
    (stages/flatten/permits-austin.csv), addresses upper-cased with their street suffix
    abbreviated (stages/normalize/street-suffixes.csv), the trade of the first row of
    stages/tag/trades.csv whose words match its field (as regular expressions), points for job
    value, home value, freshness and owner, the tier bands of stages/tier/tiers.csv, and one CSV
    per trade group, category and tier under OUTDIR. The same kind of work as the chain, not
    the same answers (the rules' filters, derived tags and review rules are not reproduced)."""
    import os
    import re
    import numpy as np
    import pandas as pd

    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    df = pd.DataFrame(index=raw.index)
    for row in rules("flatten/permits-austin.csv"):
        column = row["column"]
        if column.startswith('"'):
            df[row["field"]] = column.strip('"')
        elif "+" in column:
            parts = [raw[c] for c in column.split("+") if c in raw]
            df[row["field"]] = parts[0].str.cat(parts[1:], sep=" ").str.split().str.join(" ") if parts else ""
        elif column in raw:
            df[row["field"]] = raw[column]
    df["job_value"] = pd.to_numeric(df["job_value"].str.replace(r"[$,]", "", regex=True), errors="coerce")
    df["market_value"] = np.nan
    df["issued"] = pd.to_datetime(df["issued_at"], format="%m/%d/%Y", errors="coerce")
    suffixes = {r["suffix"].upper(): r["standard"].upper() for r in rules("normalize/street-suffixes.csv")}
    address = df["property_address"].str.upper().str.replace(r"[^A-Z0-9# ]", " ", regex=True).str.split().str.join(" ")
    last = address.str.extract(r"(\w+)$")[0]
    df["property_address"] = address.str.replace(r"\w+$", "", regex=True) + last.map(suffixes).fillna(last)
    fields = {"type": df["permit_type"], "work_type": df["work_type"], "description": df["project_description"]}
    df["trade_group"], df["category"] = "other", "other"
    undecided = pd.Series(True, index=df.index)
    for row in rules("tag/trades.csv"):
        text = fields.get(row["field"], df["project_description"])
        words = "|".join(re.escape(w.strip()).replace("\\*", r"\w*") for w in row["pattern"].split("|") if w.strip())
        if not words:
            continue
        hit = undecided & text.str.contains(r"\b(?:" + words + r")\b", case=False, regex=True)
        if row.get("unless"):
            unless = "|".join(re.escape(w.strip()).replace("\\*", r"\w*") for w in row["unless"].split("|") if w.strip())
            hit &= ~text.str.contains(r"\b(?:" + unless + r")\b", case=False, regex=True)
        df.loc[hit, "trade_group"], df.loc[hit, "category"] = row["trade_group"], row["category"]
        undecided &= ~hit
    days = (pd.Timestamp(now.rstrip("Z")) - df["issued"]).dt.days
    jv = df["job_value"]
    score = np.select([jv >= 50000, jv >= 15000, jv >= 2500, jv.notna()], [25, 18, 10, 0], 4)
    score += np.select([days < 0, days <= 7, days <= 30, days <= 90], [0, 25, 15, 5], 0)
    score += np.where(df["owner_name"] != "", 10, 0)
    df["score"] = np.clip(score, 0, 100)
    df["tier"] = "C"
    for band in rules("tier/tiers.csv"):
        if int(band["min"]) >= 0:
            df.loc[df["score"].between(int(band["min"]), int(band["max"])), "tier"] = band["tier"]
    columns = ["permit_id", "city", "property_address", "owner_name", "project_description", "job_value", "score", "tier",
               "trade_group", "category"]
    for (group, category, tier), part in df.groupby(["trade_group", "category", "tier"]):
        folder = os.path.join(out, group, category)
        os.makedirs(folder, exist_ok=True)
        part[columns].to_csv(os.path.join(folder, "tier_%s.csv" % tier.lower()), index=False)


def pandas_leads(path, now, out):
    """The property-leads chain as a pandas script with usaddress-scourgify a user would write:
    the PropStream column map (stages/flatten/leads-propstream-preforeclosure.csv), both
    addresses standardised by scourgify (a string it cannot parse kept upper-cased), one lead
    per property address key (the last row of a key wins), the list names mapped to the tag
    catalogue's tags through their aliases (stages/tag/tags.csv), Absentee when the mailing
    address is not the property's, each tag's base score faded by its age as
    stages/score/decay.csv's * row says, and the leads written as JSONL to OUT. The same kind of
    work as the chain, not the same answers."""
    import json
    import os
    import pandas as pd
    from scourgify import normalize_address_record

    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    df = pd.DataFrame(index=raw.index)
    for row in rules("flatten/leads-propstream-preforeclosure.csv"):
        parts = [raw[c] for c in row["column"].split("+") if c in raw]
        if not parts:
            continue
        value = parts[0].str.cat(parts[1:], sep=" ").str.strip() if len(parts) > 1 else parts[0]
        if row.get("format") == "money":
            value = pd.to_numeric(value.str.replace(r"[$,]", "", regex=True), errors="coerce")
        elif (row.get("format") or "").startswith("date:"):
            value = pd.to_datetime(value, format="%m/%d/%Y", errors="coerce")
        df[row["field"]] = value

    def standardise(prefix):
        lines, cities, zips = [], [], []
        for line, city, state, zip5 in zip(df[prefix + "_address"], df[prefix + "_city"], df[prefix + "_state"], df[prefix + "_zip"]):
            try:
                a = normalize_address_record({"address_line_1": line, "address_line_2": None, "city": city,
                                              "state": state, "postal_code": zip5})
                lines.append(" ".join(x for x in (a["address_line_1"], a["address_line_2"]) if x))
                cities.append(a["city"] or "")
                zips.append((a["postal_code"] or "")[:5])
            except Exception:
                lines.append(" ".join(str(line).upper().split()))
                cities.append(str(city).upper())
                zips.append(str(zip5)[:5])
        df[prefix + "_address"], df[prefix + "_city"], df[prefix + "_zip"] = lines, cities, zips

    standardise("property")
    standardise("mailing")
    df["address_key"] = df["property_address"] + "|" + df["property_city"] + "|" + df["property_state"].str.upper() + "|" + df["property_zip"]
    df = df.drop_duplicates("address_key", keep="last")
    catalogue = rules("tag/tags.csv")
    names = {}
    for t in catalogue:
        for alias in [t["name"]] + [a for a in (t.get("aliases") or "").split("|") if a]:
            names[alias.strip().lower()] = t["name"]
    base = {t["name"]: int(t["base_score"] or 0) for t in catalogue}
    expires = {t["name"]: int(t["expiration_days"]) if t["expiration_days"] else None for t in catalogue}
    decay = {r["tag"]: r for r in rules("score/decay.csv")}["*"]
    full, floor = int(decay["full_days"]), float(decay["floor"])
    today = pd.Timestamp(now.rstrip("Z")).tz_localize(None)
    absentee = df["mailing_address"].ne("") & (df["mailing_address"] != df["property_address"])
    with open(out, "w") as f:
        for rec, away in zip(df.to_dict("records"), absentee):
            tags = [names.get(x.strip().lower(), x.strip()) for x in str(rec.get("tags") or "").split("|") if x.strip()]
            if away:
                tags.append("Absentee")
            at = rec.get("tag_date")
            age = (today - at).days if isinstance(at, pd.Timestamp) and not pd.isna(at) else 0
            score = 0.0
            for t in tags:
                life = expires.get(t)
                factor = 1.0 if age <= full else (max(floor, 1 - (1 - floor) * (age - full) / max(1, life - full)) if life else 1.0)
                score += base.get(t, 0) * factor
            rec["tags"], rec["score"] = tags, round(score)
            rec["tag_date"] = at.strftime("%Y-%m-%d") if isinstance(at, pd.Timestamp) and not pd.isna(at) else None
            f.write(json.dumps({k: (None if isinstance(v, float) and v != v else v) for k, v in rec.items()}) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "duckdb-events":
        duckdb_events(sys.argv[2], sys.argv[3], sys.argv[4])
        sys.exit(0)
    if sys.argv[1] == "pandas-leads":
        pandas_leads(sys.argv[2], sys.argv[3], sys.argv[4])
        sys.exit(0)
    if sys.argv[1] == "pandas-permits":
        pandas_permits(sys.argv[2], sys.argv[3], sys.argv[4])
        sys.exit(0)
    {"duckdb-flatten-csv": duckdb_flatten_csv, "polars-flatten-csv": polars_flatten_csv,
     "duckdb-export-csv": duckdb_export_csv, "polars-export-csv": polars_export_csv}[sys.argv[1]](sys.argv[2])
