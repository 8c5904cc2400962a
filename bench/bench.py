#!/usr/bin/env python3
"""`make bench`: times LeadETL stages against peers doing the same work, on a deterministic
synthetic data set, and prints MB/s, records/s and peak RSS side by side with the ratios.

usage: bench.py [--records N] [--only SECTION[,SECTION]] [--skip-peers]
Sections: stream (lead-flatten json, lead-flatten csv, lead-export csv against Miller and
Python); listings (lead-fetch listings from replay pages and lead-flatten listings; a tenth
as many listings as --records); leads (the make leads chain over a --records-row provider
list with one row in ten a respelt duplicate, then a tenth as many rows deduped against the
master, the nightly rescore and a smart list); diff (lead-diff on a million records against
a changed copy, in memory and --sorted); permits (the make permits chain over --records
Austin-layout permits: flatten, normalize, trades, score, tier, export tree); events (ten
times --records PostHog-shaped engagement events through fetch, flatten, score, export);
memory (only when asked: the keyed stages at 1x and 10x the data, peak RSS and time per record).
The data set is generated once per size under bench/data/ (git-ignored).
"""
import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build", "release")
DATA = os.path.join(ROOT, "bench", "data")
PY = [sys.executable, os.path.join(ROOT, "bench", "peers.py")]
DF = [sys.executable, os.path.join(ROOT, "bench", "peers_df.py")]


def have(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def ensure_data(records):
    stamp = os.path.join(DATA, "records")
    if os.path.exists(stamp) and open(stamp).read().strip() == str(records):
        return
    os.makedirs(DATA, exist_ok=True)
    print("generating %d records into bench/data ..." % records, file=sys.stderr)
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen.py"), str(records), DATA], check=True)
    with open(stamp, "w") as f:
        f.write(str(records))


GNU_TIME = "/usr/bin/time"


def peak_rss(argv):
    """argv run under GNU time (scripts/deps.sh bench installs it), and the file it reports the
    peak RSS in. The rusage of a child of this process would not do: a child forked from a
    Python that has loaded DuckDB and polars starts with the parent's resident size, and Linux
    keeps that as the child's peak across exec, so every stage smaller than this process would
    read as this process's size (66-68 MB)."""
    if not os.path.exists(GNU_TIME):
        return argv, None
    fd, path = tempfile.mkstemp(prefix="rss-", dir=DATA if os.path.isdir(DATA) else None)
    os.close(fd)
    return [GNU_TIME, "-f", "%M", "-o", path] + argv, path


def read_rss(path, usage):
    """Peak RSS in MB: GNU time's report at `path` (its last line, in KB), else the rusage."""
    if path is None:
        return usage.ru_maxrss / 1024.0
    with open(path) as f:
        lines = f.read().split()
    os.unlink(path)
    return int(lines[-1]) / 1024.0


def run(argv, stdout_path, ok=(0,), env=None):
    """Runs argv with stdout to a file (and `env` added to the environment); returns (seconds,
    peak RSS in MB, sha256 of stdout). An exit status outside `ok` stops the benchmark."""
    timed, rss_path = peak_rss(argv)
    with open(stdout_path, "wb") as out:
        start = time.monotonic()
        proc = subprocess.Popen(timed, stdout=out, stderr=subprocess.PIPE, env=dict(os.environ, **(env or {})))
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - start
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok:
        raise SystemExit("%s failed (%d):\n%s" % (" ".join(argv), proc.returncode, err))
    rss = read_rss(rss_path, usage)
    digest = hashlib.sha256()
    with open(stdout_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return seconds, rss, digest.hexdigest()


ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "3")))


def interleaved(ours, peer):
    """Runs `ours` (a function returning (total seconds, per-step [(seconds, rss)])) and `peer`
    (returning (seconds, rss), or None to skip) in turn ROUNDS times (BENCH_ROUNDS, default
    3) and keeps the minimum of each: noise on a shared machine only ever adds time."""
    best, steps, peer_best = None, None, None
    for _ in range(ROUNDS):
        total, per_step = ours()
        if best is None or total < best:
            best = total
        steps = per_step if steps is None else [(min(a[0], b[0]), max(a[1], b[1])) for a, b in zip(steps, per_step)]
        if peer:
            got = peer()
            if got and (peer_best is None or got[0] < peer_best[0]):
                peer_best = got
    return best, steps, peer_best


def table(rows):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for n, r in enumerate(rows):
        print("  ".join(str(c).rjust(w) if i > 1 else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def stream_section(records, skip_peers):
    ensure_data(records)
    nested = os.path.join(DATA, "leads.jsonl")
    flat = os.path.join(DATA, "leads-flat.jsonl")
    csvfile = os.path.join(DATA, "leads.csv")
    tasks = [
        ("lead-flatten json", nested, [
            ("LeadETL", [BIN + "/lead-flatten", "json", "-q", nested]),
            ("Miller", ["mlr", "--ijsonl", "--ojsonl", "flatten", nested]),
            ("Python", PY + ["flatten-json", nested]),
        ]),
        ("lead-flatten csv", csvfile, [
            ("LeadETL", [BIN + "/lead-flatten", "csv", "-q", csvfile]),
            ("Miller", ["mlr", "--icsv", "--ojsonl", "cat", csvfile]),
            ("Python", PY + ["flatten-csv", csvfile]),
        ] + ([("DuckDB", DF + ["duckdb-flatten-csv", csvfile])] if have("duckdb") else [])
          + ([("polars", DF + ["polars-flatten-csv", csvfile])] if have("polars") else [])),
        ("lead-export csv", flat, [
            ("LeadETL", [BIN + "/lead-export", "csv", "-q", flat]),
            ("Miller", ["mlr", "--ijsonl", "--ocsv", "unsparsify", flat]),
            ("Python", PY + ["export-csv", flat]),
        ] + ([("DuckDB", DF + ["duckdb-export-csv", flat])] if have("duckdb") else [])
          + ([("polars", DF + ["polars-export-csv", flat])] if have("polars") else [])),
    ]
    rows = [("stage", "tool", "seconds", "MB/s", "records/s", "peak RSS MB", "x Python", "x Miller", "peer s / LeadETL s", "same output as Python")]
    verdicts = []
    for stage, path, contenders in tasks:
        size_mb = os.path.getsize(path) / 1e6
        results = {}
        # ROUNDS interleaved rounds (each contender in turn), the fastest of each kept: these
        # runs take well under a second, so one run says little.
        for _ in range(ROUNDS):
            for tool, argv in contenders:
                if skip_peers and tool != "LeadETL":
                    continue
                out = os.path.join(DATA, "out-%s-%s" % (stage.replace(" ", "-"), tool))
                result = run(argv, out)
                os.unlink(out)
                if tool not in results or result[0] < results[tool][0]:
                    results[tool] = result
        ours = results["LeadETL"]
        for tool, (seconds, rss, digest) in results.items():
            xp = results["Python"][0] / seconds if "Python" in results else None
            xm = results["Miller"][0] / seconds if "Miller" in results else None
            same = "" if tool == "Python" or "Python" not in results else ("yes" if digest == results["Python"][2] else "no")
            if tool in ("DuckDB", "polars"):
                same = "-"  # their own JSON/CSV spelling (types, key order, quoting)
            ratio = "-" if tool == "LeadETL" else "%.2f" % (seconds / ours[0])
            rows.append((stage, tool, "%.2f" % seconds, "%.1f" % (size_mb / seconds), "{:,.0f}".format(records / seconds),
                         "%.1f" % rss, "%.1f" % xp if xp else "-", "%.1f" % xm if xm else "-", ratio, same))
        if "Python" in results and "Miller" in results:
            xp = results["Python"][0] / ours[0]
            xm = results["Miller"][0] / ours[0]
            ok = xp >= 5 and xm >= 5 and ours[1] < 64
            verdicts.append("%s: %.1fx Python, %.1fx Miller, %.1f MB peak RSS -> %s" % (
                stage, xp, xm, ours[1], "meets target (>=5x both, <64 MB)" if ok else "MISSES target"))
        else:
            verdicts.append("%s: %.1f MB peak RSS -> %s" % (stage, ours[1], "under 64 MB" if ours[1] < 64 else "OVER 64 MB"))
    print("\nRecord stream, %s records (%s); minimum of %d interleaved rounds\n" % ("{:,}".format(records), os.path.basename(nested), ROUNDS))
    table(rows)
    print()
    for v in verdicts:
        print("  " + v)
    for module in ("duckdb", "polars"):
        if not have(module):
            print("  %s is not installed: its rows are missing (scripts/deps.sh bench installs it)" % module)
    # The ceiling: simdjson's own parse-only rate on the same file, in the same run.
    ceiling = simdjson_rate(nested)
    ours_json = [r for r in rows if r[0] == "lead-flatten json" and r[1] == "LeadETL"]
    if ceiling and ours_json:
        rate = float(ours_json[0][3])
        print("  lead-flatten json: %.1f MB/s (parse, flatten, write) = %.0f%% of simdjson's parse-only %.1f MB/s (%s kernel, one thread)"
              % (rate, 100 * rate / ceiling[0], ceiling[0], ceiling[1]))


def simdjson_rate(path):
    """simdjson's parse-only MB/s on `path` (bench/simdjson_parse.cpp, built here), or None."""
    exe = os.path.join(DATA, "simdjson_parse")
    source = os.path.join(ROOT, "bench", "simdjson_parse.cpp")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(source):
        built = subprocess.run(["c++", "-O3", "-std=c++17", source, "-lsimdjson", "-o", exe], capture_output=True)
        if built.returncode != 0:
            print("  simdjson's parse-only rate not measured: %s" % built.stderr.decode(errors="replace")[:200])
            return None
    out = subprocess.run([exe, path], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    words = out.stdout.split()
    return float(words[words.index("MB/s,") - 1]), words[-1]


def listings_section(records, skip_peers):
    """lead-fetch listings through replay pages, then lead-flatten listings: listings/s."""
    count = max(1000, records // 10)
    pages = os.path.join(DATA, "listings-%d" % count)
    if not os.path.isdir(pages):
        print("generating %d listings as replay pages ..." % count, file=sys.stderr)
        tmp = pages + ".tmp"
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_listings.py"), str(count), tmp], check=True)
        os.rename(tmp, pages)
    size_mb = sum(os.path.getsize(os.path.join(pages, f)) for f in os.listdir(pages)) / 1e6
    raw = os.path.join(DATA, "listings-raw.jsonl")
    env_now = ["--now", "2026-11-23T06:00:00Z"]
    rows = [("stage", "seconds", "listings/s", "MB/s", "peak RSS MB")]
    seconds, rss, _ = run([BIN + "/lead-fetch", "listings", "-q", "--pipeline", "expired-gps", "--replay", pages] + env_now, raw)
    rows.append(("lead-fetch listings (replay)", "%.2f" % seconds, "{:,.0f}".format(count / seconds), "%.1f" % (size_mb / seconds), "%.1f" % rss))
    seconds, rss, _ = run([BIN + "/lead-flatten", "listings", "-q", "--pipeline", "expired-gps", raw] + env_now, os.devnull)
    rows.append(("lead-flatten listings", "%.2f" % seconds, "{:,.0f}".format(count / seconds),
                 "%.1f" % (os.path.getsize(raw) / 1e6 / seconds), "%.1f" % rss))
    os.unlink(raw)
    print("\nMLS listings, %s listings in %d replay pages (%.0f MB)\n" % ("{:,}".format(count), len(os.listdir(pages)), size_mb))
    table(rows)


def leads_section(records, skip_peers):
    """lead-flatten leads | lead-normalize --dedupe | lead-tag leads | lead-score tags, each
    stage timed on its own file as make leads runs them; then an update list deduped against
    the master, the nightly rescore and a smart list export."""
    updates = max(1000, records // 10)
    first = os.path.join(DATA, "leads-list-%d.csv" % records)
    update = os.path.join(DATA, "leads-update-%d.csv" % records)
    if not os.path.exists(first):
        print("generating a %d-row lead list and a %d-row update ..." % (records, updates), file=sys.stderr)
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_leads.py"), str(records), first + ".tmp",
                        str(updates), update], check=True)
        os.rename(first + ".tmp", first)
    work = os.path.join(DATA, "leads-run")
    subprocess.run(["rm", "-rf", work], check=True)
    os.makedirs(work)
    now = ["--now", "2026-11-23T06:00:00Z"]
    mapfile = os.path.join(ROOT, "stages", "flatten", "leads-propstream-preforeclosure.csv")
    master = os.path.join(work, "leads", "leads.jsonl")
    imported, normalized, tagged = (os.path.join(work, n) for n in ("imported.jsonl", "normalized.jsonl", "tagged.jsonl"))
    steps = [
        ("lead-flatten leads", first, imported,
         [BIN + "/lead-flatten", "leads", "-q", "--map", mapfile, "--logs", work, first, "-o", imported]),
        ("lead-normalize --dedupe", imported, normalized,
         [BIN + "/lead-normalize", "-q", "--dedupe", "--master", master, "--logs", work, imported, "-o", normalized]),
        ("lead-tag leads", normalized, tagged, [BIN + "/lead-tag", "leads", "-q", tagged.replace("tagged", "normalized"), "-o", tagged]),
        ("lead-score tags", tagged, master, [BIN + "/lead-score", "tags", "-q", tagged, "-o", master]),
    ]
    os.makedirs(os.path.dirname(master))
    rows = [("step", "rows in", "rows out", "seconds", "rows/s", "MB/s in", "peak RSS MB")]
    total = 0.0

    def count(path):
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))

    def step(name, src, dst, argv, rows_in=None):
        nonlocal total
        seconds, rss, _ = run(argv + now, os.devnull)
        total += seconds
        n_in = rows_in if rows_in is not None else count(src)
        rows.append((name, "{:,}".format(n_in), "{:,}".format(count(dst)) if dst else "-", "%.2f" % seconds,
                     "{:,.0f}".format(n_in / seconds), "%.1f" % (os.path.getsize(src) / 1e6 / seconds), "%.1f" % rss))

    # The import chain against the peer, ROUNDS interleaved rounds, each from an empty master.
    def ours():
        subprocess.run(["rm", "-rf", os.path.dirname(master)], check=True)
        os.makedirs(os.path.dirname(master))
        timed = [run(argv + now, os.devnull)[:2] for _, _, _, argv in steps]
        return sum(t for t, _ in timed), timed

    peer_out = os.path.join(work, "pandas-leads.jsonl")

    def peer():
        return run(DF + ["pandas-leads", first, now[1], peer_out], os.devnull)[:2]
    chain, timed, peer_best = interleaved(ours, None if skip_peers or not (have("pandas") and have("scourgify")) else peer)
    for (name, src, dst, _), (seconds, rss) in zip(steps, timed):
        n_in = records if name == "lead-flatten leads" else count(src)
        rows.append((name, "{:,}".format(n_in), "{:,}".format(count(dst)), "%.2f" % seconds,
                     "{:,.0f}".format(n_in / seconds), "%.1f" % (os.path.getsize(src) / 1e6 / seconds), "%.1f" % rss))
    # A provider's next delivery, deduped into the master (update: the new rows win).
    update_imported = os.path.join(work, "update.jsonl")
    step("lead-flatten leads (update)", update, update_imported,
         [BIN + "/lead-flatten", "leads", "-q", "--map", mapfile, "--logs", work, update, "-o", update_imported], rows_in=updates)
    step("lead-normalize --dedupe vs master", update_imported, normalized,
         [BIN + "/lead-normalize", "-q", "--dedupe", "--on-duplicate", "update", "--master", master, "--logs", work,
          update_imported, "-o", normalized])
    step("lead-score tags --recalculate", master, master,
         [BIN + "/lead-score", "tags", "-q", "--recalculate", "--logs", work, "--now", "2027-03-01T00:00:00Z"])
    out_csv = os.path.join(work, "hot.csv")
    step("lead-export list hot-foreclosures", master, out_csv,
         [BIN + "/lead-export", "list", "hot-foreclosures", "-q", "--input", master, "-o", out_csv])
    print("\nLeads, a %s-row provider list (%.0f MB CSV) and a %s-row update\n" % (
        "{:,}".format(records), os.path.getsize(first) / 1e6, "{:,}".format(updates)))
    table(rows)
    print("\n  import chain (flatten, normalize + dedupe, tag, score): %.1f s for %s rows (minimum of %d interleaved rounds)"
          % (chain, "{:,}".format(records), ROUNDS))
    if peer_best:
        print("  pandas + usaddress-scourgify (bench/peers_df.py pandas-leads: the column map, both addresses standardised, "
              "dedupe by address key, tags, absentee, decayed scores): %.1f s, peak RSS %.0f MB; ratio (peer s / LeadETL s) %.2f"
              % (peer_best[0], peer_best[1], peer_best[0] / chain))
    elif not skip_peers:
        print("  pandas or usaddress-scourgify is not installed: the peer is missing (scripts/deps.sh bench installs them)")


def permits_csv(records):
    """The generated Austin-layout permits CSV of `records` rows, made once."""
    source = os.path.join(DATA, "permits-%d.csv" % records)
    if not os.path.exists(source):
        print("generating %d Austin-layout permits ..." % records, file=sys.stderr)
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_permits.py"), str(records), source + ".tmp"], check=True)
        os.rename(source + ".tmp", source)
    return source


def permits_section(records, skip_peers):
    """The make permits chain, each stage timed on its own file: lead-flatten permits,
    lead-normalize, lead-tag trades, lead-score permits, lead-tier, lead-export permits."""
    source = permits_csv(records)
    work = os.path.join(DATA, "permits-run")
    subprocess.run(["rm", "-rf", work], check=True)
    os.makedirs(work)
    now = ["--now", "2016-03-14T06:00:00Z"]
    files = {n: os.path.join(work, n + ".jsonl") for n in ("flattened", "normalized", "tagged", "scored", "tiered")}
    exports = os.path.join(work, "exports")
    steps = [
        ("lead-flatten permits", source, files["flattened"],
         [BIN + "/lead-flatten", "permits", "-q", "--map", os.path.join(ROOT, "stages", "flatten", "permits-austin.csv"),
          "--logs", work, source, "-o", files["flattened"]]),
        ("lead-normalize", files["flattened"], files["normalized"],
         [BIN + "/lead-normalize", "-q", files["flattened"], "-o", files["normalized"]]),
        ("lead-tag trades", files["normalized"], files["tagged"],
         [BIN + "/lead-tag", "trades", "-q", files["normalized"], "-o", files["tagged"]]),
        ("lead-score permits", files["tagged"], files["scored"],
         [BIN + "/lead-score", "permits", "-q", files["tagged"], "-o", files["scored"]]),
        ("lead-tier", files["scored"], files["tiered"], [BIN + "/lead-tier", "-q", files["scored"], "-o", files["tiered"]]),
        ("lead-export permits", files["tiered"], None,
         [BIN + "/lead-export", "permits", "-q", "--dir", exports, "--logs", work, files["tiered"]]),
    ]

    def count(path):
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))

    def ours():
        # Each round a first export: the tree and the store of the round before go.
        subprocess.run(["rm", "-rf", exports, os.path.join(work, "permits")], check=True)
        timed = [run(argv + now, os.devnull)[:2] for _, _, _, argv in steps]
        return sum(t for t, _ in timed), timed

    # The peer: a pandas script doing the same kind of work (bench/peers_df.py pandas-permits).
    peer_out = os.path.join(work, "pandas")

    def peer():
        return run([sys.executable, os.path.join(ROOT, "bench", "peers_df.py"), "pandas-permits", source, now[1], peer_out], os.devnull)[:2]
    total, timed, peer_best = interleaved(ours, None if skip_peers or not have("pandas") else peer)
    rows = [("step", "permits in", "permits out", "seconds", "permits/s", "MB/s in", "peak RSS MB")]
    for (name, src, dst, _), (seconds, rss) in zip(steps, timed):
        n_in = records if src == source else count(src)
        rows.append((name, "{:,}".format(n_in), "{:,}".format(count(dst)) if dst else "-", "%.2f" % seconds,
                     "{:,.0f}".format(n_in / seconds), "%.1f" % (os.path.getsize(src) / 1e6 / seconds), "%.1f" % rss))
    print("\nPermits, %s Austin-layout rows (%.0f MB CSV); minimum of %d interleaved rounds\n"
          % ("{:,}".format(records), os.path.getsize(source) / 1e6, ROUNDS))
    table(rows)
    print("\n  whole chain: %.1f s for %s permits = %s permits/s" % (total, "{:,}".format(records), "{:,.0f}".format(records / total)))
    if peer_best:
        print("  pandas script, the same kind of work from the CSV: %.1f s, peak RSS %.0f MB; ratio (pandas s / LeadETL s) %.2f "
              "(above 1: LeadETL faster)" % (peer_best[0], peer_best[1], peer_best[0] / total))


def events_section(records, skip_peers):
    """The make events chain over 10 x --records events (10,000,000 by default), each stage
    timed on its own file: lead-fetch events --from (the window and dedupe), then
    lead-flatten events, lead-score events and lead-export events, the figure asked for."""
    n = records * 10
    source = os.path.join(DATA, "events-%d.jsonl" % n)
    if not os.path.exists(source):
        print("generating %d engagement events ..." % n, file=sys.stderr)
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_events.py"), str(n), source + ".tmp"], check=True)
        os.rename(source + ".tmp", source)
    work = os.path.join(DATA, "events-run")
    subprocess.run(["rm", "-rf", work], check=True)
    os.makedirs(work)
    now = ["--now", "2025-01-31T00:00:00Z"]
    files = {k: os.path.join(work, k + ".jsonl") for k in ("fetched", "flattened", "scored")}
    events = os.path.join(work, "events")
    steps = [
        ("lead-fetch events", source, files["fetched"],
         [BIN + "/lead-fetch", "events", "-q", "--from", source, "--state", os.path.join(events, "state.json"), "-o", files["fetched"]]),
        ("lead-flatten events", files["fetched"], files["flattened"],
         [BIN + "/lead-flatten", "events", "-q", files["fetched"], "-o", files["flattened"]]),
        ("lead-score events", files["flattened"], files["scored"],
         [BIN + "/lead-score", "events", "-q", files["flattened"], "-o", files["scored"]]),
        ("lead-export events", files["scored"], None,
         [BIN + "/lead-export", "events", "-q", "--dir", events, files["scored"], "-o", os.path.join(work, "report.json")]),
    ]

    def count(path):
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))

    def ours():
        # Each round a first run: the events store of the round before goes.
        subprocess.run(["rm", "-rf", events], check=True)
        timed = [run(argv + now, os.devnull)[:2] for _, _, _, argv in steps]
        return sum(t for (name, _, _, _), (t, _) in zip(steps, timed) if name != "lead-fetch events"), timed

    # The peer: DuckDB SQL doing the same from the raw events (bench/peers_df.py duckdb-events).
    peer_out = os.path.join(work, "duckdb")
    os.makedirs(peer_out)

    def peer():
        return run([sys.executable, os.path.join(ROOT, "bench", "peers_df.py"), "duckdb-events", source,
                    now[1].rstrip("Z"), peer_out], os.devnull)[:2]
    chain, timed, peer_best = interleaved(ours, None if skip_peers or not have("duckdb") else peer)
    rows = [("step", "records in", "records out", "seconds", "records/s", "MB/s in", "peak RSS MB")]
    peak = 0.0
    for (name, src, dst, _), (seconds, rss) in zip(steps, timed):
        if name != "lead-fetch events":
            peak = max(peak, rss)
        n_in = count(src)
        rows.append((name, "{:,}".format(n_in), "{:,}".format(count(dst)) if dst else "-", "%.2f" % seconds,
                     "{:,.0f}".format(n_in / seconds), "%.1f" % (os.path.getsize(src) / 1e6 / seconds), "%.1f" % rss))
    print("\nEngagement events, %s PostHog-shaped events (%.0f MB JSONL); minimum of %d interleaved rounds\n"
          % ("{:,}".format(n), os.path.getsize(source) / 1e6, ROUNDS))
    table(rows)
    with open(os.path.join(work, "report.json")) as f:
        print("\n  export report: " + f.read().strip())
    print("  flatten + score + export: %.1f s for %s events = %s events/s, peak RSS %.0f MB"
          % (chain, "{:,}".format(n), "{:,.0f}".format(n / chain), peak))
    if not peer_best:
        return
    seconds, rss = peer_best

    def leads(path):
        out = {}
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                out[(r["listing_id"], r["seeker_id"])] = (r["total_actions"], r["lead_score"])
        return out
    same = leads(os.path.join(events, "leads.jsonl")) == leads(os.path.join(peer_out, "leads.jsonl"))
    print("  DuckDB SQL, the same from the raw events (2 threads): %.1f s, peak RSS %.0f MB; ratio (DuckDB s / LeadETL s) %.2f "
          "(above 1: LeadETL faster); lead records and scores %s" % (seconds, rss, seconds / chain, "the same" if same else "DIFFER"))


def diff_section(records, skip_peers):
    """lead-diff over the record stream's flat file and a copy with 1% of records changed,
    0.5% removed and 0.5% added: OLD held in memory (a budget it fits), OLD past the memory
    budget (both sides sorted on disk, LEAD_MEMORY at the default and smaller), and --sorted
    (both streamed). The summaries must agree."""
    ensure_data(records)
    old = os.path.join(DATA, "leads-flat.jsonl")
    new = os.path.join(DATA, "leads-flat-next.jsonl")
    if not os.path.exists(new) or os.path.getmtime(new) < os.path.getmtime(old):
        with open(old, "rb") as src, open(new + ".tmp", "wb") as dst:
            for i, line in enumerate(src):
                if i % 200 == 7:
                    continue                                   # removed
                if i % 100 == 3:
                    line = line.replace(b'"property.beds":', b'"property.beds":1', 1)   # changed
                dst.write(line)
                if i % 200 == 11:
                    dst.write(line.replace(b'","', b'a","', 1))                       # added, sorting after
        os.rename(new + ".tmp", new)
    rows = [("mode", "records (old + new)", "seconds", "records/s", "MB/s", "peak RSS MB")]
    size = (os.path.getsize(old) + os.path.getsize(new)) / 1e6
    n = records * 2
    summaries = set()
    for mode, extra, env in (("held in memory (LEAD_MEMORY=64G), --summary", ["--summary"], {"LEAD_MEMORY": "64G"}),
                             ("held in memory (LEAD_MEMORY=64G), jsonl report", ["--format", "jsonl"], {"LEAD_MEMORY": "64G"}),
                             ("default budget (256M), --summary", ["--summary"], {"LEAD_MEMORY": "256M"}),
                             ("LEAD_MEMORY=64M, --summary", ["--summary"], {"LEAD_MEMORY": "64M"}),
                             ("--sorted, --summary", ["--sorted", "--summary"], {})):
        argv = [BIN + "/lead-diff", old, new, "--key", "id", "-q"] + extra
        out = os.path.join(DATA, "diff-report.txt")
        seconds, rss, digest = run(argv, out, ok=(0, 1), env=env)
        if "--summary" in extra and "--sorted" not in extra:
            summaries.add(digest)
        rows.append((mode, "{:,}".format(n), "%.2f" % seconds, "{:,.0f}".format(n / seconds), "%.1f" % (size / seconds),
                     "%.1f" % rss))
    print("\nlead-diff, %s vs %s records (%.0f MB)\n" % ("{:,}".format(records), "{:,}".format(records), size))
    table(rows)
    print("  summaries held in memory and sorted on disk: %s" % ("identical" if len(summaries) == 1 else "DIFFER"))


def scaleout_section(records, skip_peers):
    """Two pipelines three ways each: one process per stage, two shards side by side as make
    -j2 SHARDS=2 runs them (scripts/in-shards.sh, join-shards.sh, the exports as --shard i/2
    then --join-shards 2), and under Spark local[2] with two partitions (scripts/spark-run.py).
    The permits chain (normalize, trades, score, tier, export) over --records Austin-layout
    permits (500,000 unless given) must leave the same stage files byte for byte, the same
    exports tree and store; the events chain (flatten, score by listing, export by listing)
    over as many events must leave the same analytics files byte for byte and the same lead
    records (sorted: a keyed stage writes its shards' keys in another order); the leads chain
    (dedupe by address_key, tag, score) over as many imported rows the same master and
    dedupe log (sorted)."""
    records = records if records != 1_000_000 else 500_000
    base = os.path.join(DATA, "scaleout")
    subprocess.run(["rm", "-rf", base], check=True)
    os.makedirs(base)
    in_shards = os.path.join(ROOT, "scripts", "in-shards.sh")
    spark_run = [sys.executable, os.path.join(ROOT, "scripts", "spark-run.py")]
    spark = have("pyspark")
    if not spark:
        print("  (no pyspark: scripts/deps.sh spark installs it)")

    def timed(commands):
        start = time.monotonic()
        for argv in commands:
            run(argv, os.devnull)
        return time.monotonic() - start

    # ---- permits ----
    source = permits_csv(records)
    flat = os.path.join(base, "flattened.jsonl")
    now = ["--now", "2016-03-14T06:00:00Z"]
    run([BIN + "/lead-flatten", "permits", "-q", "--map", os.path.join(ROOT, "stages", "flatten", "permits-austin.csv"),
         "--logs", base, source, "-o", flat] + now, os.devnull)
    names = ["normalized", "tagged", "scored", "tiered"]
    stages = [["lead-normalize"], ["lead-tag", "trades"], ["lead-score", "permits"], ["lead-tier"]]

    def tree(work):
        return ["--dir", work + "/exports", "--logs", work]

    timings = []
    work = os.path.join(base, "plain")
    os.makedirs(work)
    commands, previous = [], flat
    for name, stage in zip(names, stages):
        commands.append([BIN + "/" + stage[0]] + stage[1:] + ["-q", previous, "-o", work + "/" + name + ".jsonl"] + now)
        previous = work + "/" + name + ".jsonl"
    timings.append(("one process per stage", timed(commands),
                    timed([[BIN + "/lead-export", "permits", "-q"] + tree(work) + [work + "/tiered.jsonl"] + now])))
    work = os.path.join(base, "shards")
    os.makedirs(work + "/shards")
    commands = [["sh", "-c", "cd %s/shards && split -n l/2 -d -a 1 %s in- && mv in-0 in-1.jsonl && mv in-1 in-2.jsonl" % (work, flat)]]
    previous = work + "/shards/in-@i@.jsonl"
    for name, stage in zip(names, stages):
        out = work + "/shards/" + name + "-@i@.jsonl"
        commands.append([in_shards, "2", "--", BIN + "/" + stage[0]] + stage[1:] + ["-q", "--shard", "@i@/@n@", previous, "-o", out] + now)
        previous = out
    commands.append([os.path.join(ROOT, "scripts", "join-shards.sh"), "2", work] + names)
    chain = timed(commands)
    timings.append(("make -j2 SHARDS=2", chain, timed([
        [in_shards, "2", "--", BIN + "/lead-export", "permits", "-q", "--shard", "@i@/@n@"] + tree(work) + [work + "/tiered.jsonl"] + now,
        [BIN + "/lead-export", "permits", "-q", "--join-shards", "2"] + tree(work) + now])))
    if spark:
        work = os.path.join(base, "spark")
        os.makedirs(work)
        steps = []
        for name, stage in zip(names, stages):
            steps += ["--step", "%s.jsonl=%s %s -q %s" % (name, BIN + "/" + stage[0], " ".join(stage[1:]), " ".join(now))]
        chain = timed([spark_run + ["chain", "--partitions", "2", "--out", work, "--input", flat] + steps])
        timings.append(("Spark local[2], 2 partitions", chain, timed([
            spark_run + ["shards", "--partitions", "2", "--out", work, "--rejects", work + "/export.rejects.jsonl",
                         "--then", " ".join([BIN + "/lead-export", "permits", "-q", "--join-shards", "2"] + tree(work) + now),
                         "--", BIN + "/lead-export", "permits", "-q"] + tree(work) + [work + "/tiered.jsonl"] + now])))
    same = []
    for label, other in (("make -j2 SHARDS=2", "shards"), ("Spark", "spark")):
        if not os.path.isdir(os.path.join(base, other)):
            continue
        files = all(subprocess.run(["cmp", "-s", os.path.join(base, "plain", n + ".jsonl"), os.path.join(base, other, n + ".jsonl")]).returncode == 0
                    for n in names)
        exports = subprocess.run(["diff", "-r", "-q", os.path.join(base, "plain", "exports"), os.path.join(base, other, "exports")],
                                 stdout=subprocess.DEVNULL).returncode == 0
        store = subprocess.run(["cmp", "-s", os.path.join(base, "plain", "permits", "permits.jsonl"),
                                os.path.join(base, other, "permits", "permits.jsonl")]).returncode == 0
        same.append("%s: stage files %s, exports %s, store %s" % (label, *("identical" if x else "DIFFER" for x in (files, exports, store))))
    print("\nScale-out: the permits chain over %s permits, three ways\n" % "{:,}".format(records))
    rows = [("how", "chain seconds", "export seconds", "permits/s (chain + export)", "vs one process")]
    for label, chain_s, export_s in timings:
        rows.append((label, "%.1f" % chain_s, "%.1f" % export_s, "{:,.0f}".format(records / (chain_s + export_s)),
                     "%.2fx" % ((timings[0][1] + timings[0][2]) / (chain_s + export_s))))
    table(rows)
    for line in same:
        print("  " + line)

    # ---- events ----
    source = os.path.join(DATA, "events-%d.jsonl" % records)
    if not os.path.exists(source):
        print("generating %d engagement events ..." % records, file=sys.stderr)
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_events.py"), str(records), source + ".tmp"], check=True)
        os.rename(source + ".tmp", source)
    now = ["--now", "2025-01-31T00:00:00Z"]
    fetched = os.path.join(base, "fetched.jsonl")
    run([BIN + "/lead-fetch", "events", "-q", "--from", source, "--state", os.path.join(base, "fetch-state.json"), "-o", fetched] + now, os.devnull)
    with open(fetched) as f:
        run_id = json.loads(f.readline())["run_id"]
    timings = []
    work = os.path.join(base, "events-plain")
    os.makedirs(work)
    timings.append(("one process per stage", timed([
        [BIN + "/lead-flatten", "events", "-q", fetched, "-o", work + "/flattened.jsonl"] + now,
        [BIN + "/lead-score", "events", "-q", work + "/flattened.jsonl", "-o", work + "/scored.jsonl"] + now,
        [BIN + "/lead-export", "events", "-q", "--dir", work + "/events", work + "/scored.jsonl", "-o", work + "/report.json"] + now])))
    work = os.path.join(base, "events-shards")
    os.makedirs(work + "/shards")
    timings.append(("make -j2 SHARDS=2", timed([
        [BIN + "/lead-flatten", "events", "-q", fetched, "-o", work + "/flattened.jsonl"] + now,
        [in_shards, "2", "--", BIN + "/lead-score", "events", "-q", "--shard", "@i@/@n@", work + "/flattened.jsonl",
         "-o", work + "/shards/scored-@i@.jsonl"] + now,
        [os.path.join(ROOT, "scripts", "join-shards.sh"), "2", work, "scored"],
        [in_shards, "2", "--", BIN + "/lead-export", "events", "-q", "--shard", "@i@/@n@", "--dir", work + "/events",
         work + "/scored.jsonl", "-o", work + "/shards/export-@i@.json"] + now,
        [BIN + "/lead-export", "events", "-q", "--join-shards", "2", "--dir", work + "/events", "-o", work + "/report.json"] + now])))
    if spark:
        work = os.path.join(base, "events-spark")
        os.makedirs(work)
        timings.append(("Spark local[2], 2 partitions", timed([
            spark_run + ["chain", "--partitions", "2", "--out", work, "--input", fetched,
                         "--step", "flattened.jsonl=%s events -q %s" % (BIN + "/lead-flatten", " ".join(now))],
            spark_run + ["keyed", "--partitions", "2", "--key", "listing_id", "--run-id-from", fetched, "--out", work,
                         "--input", work + "/flattened.jsonl", "--step", "scored.jsonl=%s events -q %s" % (BIN + "/lead-score", " ".join(now))],
            spark_run + ["shards", "--partitions", "2", "--out", work, "--rejects", work + "/report.rejects.jsonl",
                         "--then", " ".join([BIN + "/lead-export", "events", "-q", "--join-shards", "2", "--dir", work + "/events",
                                             "-o", work + "/report.json"] + now),
                         "--", BIN + "/lead-export", "events", "-q", "--dir", work + "/events", work + "/scored.jsonl"] + now])))
    same = []

    def sorted_lines(path):
        with open(path, "rb") as f:
            return sorted(f)
    for label, other in (("make -j2 SHARDS=2", "events-shards"), ("Spark", "events-spark")):
        if not os.path.isdir(os.path.join(base, other)):
            continue
        files = all(subprocess.run(["cmp", "-s", os.path.join(base, "events-plain", "events", n), os.path.join(base, other, "events", n)]).returncode == 0
                    for n in ("analytics_parts.jsonl", "listing_analytics.jsonl", "listings.jsonl", "state.json"))
        leads = sorted_lines(os.path.join(base, "events-plain", "events", "leads.jsonl")) == sorted_lines(os.path.join(base, other, "events", "leads.jsonl"))
        same.append("%s: analytics files %s, lead records (sorted) %s" % (label, *("identical" if x else "DIFFER" for x in (files, leads))))
    print("\nScale-out: the events chain (flatten, score, export) over %s events, three ways\n" % "{:,}".format(records))
    rows = [("how", "seconds", "events/s", "vs one process")]
    for label, seconds in timings:
        rows.append((label, "%.1f" % seconds, "{:,.0f}".format(records / seconds), "%.2fx" % (timings[0][1] / seconds)))
    table(rows)
    for line in same:
        print("  " + line)
    print("  run %s" % run_id)

    # ---- leads: the dedupe by address_key, then tag and score ----
    first = os.path.join(DATA, "leads-list-%d.csv" % records)
    if not os.path.exists(first):
        print("generating a %d-row lead list ..." % records, file=sys.stderr)
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_leads.py"), str(records), first + ".tmp",
                        str(max(1000, records // 10)), os.path.join(DATA, "leads-update-%d.csv" % records)], check=True)
        os.rename(first + ".tmp", first)
    now = ["--now", "2026-11-23T06:00:00Z"]
    imported = os.path.join(base, "imported.jsonl")
    run([BIN + "/lead-flatten", "leads", "-q", "--map", os.path.join(ROOT, "stages", "flatten", "leads-propstream-preforeclosure.csv"),
         "--logs", os.path.join(base, "import-logs"), first, "-o", imported] + now, os.devnull)
    locked = os.path.join(ROOT, "scripts", "locked.sh")
    timings = []

    def leads_dir(how):
        d = os.path.join(base, "leads-" + how)
        os.makedirs(d + "/leads/shards")
        return d
    work = leads_dir("plain")
    timings.append(("one process per stage", timed([[locked, work + "/leads", "--", "sh", "-c", " && ".join(" ".join(c) for c in [
        [BIN + "/lead-normalize", "-q", "--dedupe", "--master", work + "/leads/leads.jsonl", "--logs", work, imported,
         "-o", work + "/leads/normalized.jsonl"] + now,
        [BIN + "/lead-tag", "leads", "-q", work + "/leads/normalized.jsonl", "-o", work + "/leads/tagged.jsonl"] + now,
        [BIN + "/lead-score", "tags", "-q", work + "/leads/tagged.jsonl", "-o", work + "/leads/leads.jsonl"] + now])]])))
    work = leads_dir("shards")
    part = work + "/leads/shards/"
    timings.append(("make -j2 SHARDS=2", timed([[locked, work + "/leads", "--", "sh", "-c", " && ".join(" ".join(c) for c in [
        [in_shards, "2", "--", BIN + "/lead-normalize", "-q", "--dedupe", "--shard", "@i@/@n@", "--master", work + "/leads/leads.jsonl",
         "--logs", work, imported, "-o", part + "normalized-@i@.jsonl"] + now,
        [in_shards, "2", "--", BIN + "/lead-tag", "leads", "-q", "--shard", "@i@/@n@", part + "normalized-@i@.jsonl", "-o", part + "tagged-@i@.jsonl"] + now,
        [in_shards, "2", "--", BIN + "/lead-score", "tags", "-q", "--shard", "@i@/@n@", part + "tagged-@i@.jsonl", "-o", part + "leads-@i@.jsonl"] + now,
        [os.path.join(ROOT, "scripts", "join-shards.sh"), "2", work + "/leads", "normalized", "tagged", "leads"]])]])))
    if spark:
        work = leads_dir("spark")
        timings.append(("Spark local[2], 2 partitions", timed([[locked, work + "/leads", "--"] + spark_run + [
            "dedupe", "--partitions", "2", "--out", work + "/leads", "--name", "normalized.jsonl",
            "--step", "tagged.jsonl=%s leads -q %s" % (BIN + "/lead-tag", " ".join(now)),
            "--step", "leads.jsonl=%s tags -q %s" % (BIN + "/lead-score", " ".join(now)),
            "--", BIN + "/lead-normalize", "-q", "--dedupe", "--master", work + "/leads/leads.jsonl", "--logs", work, imported] + now])))
    same = []
    for label, other in (("make -j2 SHARDS=2", "leads-shards"), ("Spark", "leads-spark")):
        if not os.path.isdir(os.path.join(base, other)):
            continue
        master = sorted_lines(os.path.join(base, "leads-plain", "leads", "leads.jsonl")) == sorted_lines(os.path.join(base, other, "leads", "leads.jsonl"))
        log = sorted_lines(os.path.join(base, "leads-plain", "leads", "dedupe.jsonl")) == sorted_lines(os.path.join(base, other, "leads", "dedupe.jsonl"))
        same.append("%s: master (sorted) %s, dedupe log (sorted) %s" % (label, *("identical" if x else "DIFFER" for x in (master, log))))
    print("\nScale-out: the leads chain (dedupe, tag, score) over %s imported rows, three ways\n" % "{:,}".format(records))
    rows = [("how", "seconds", "leads/s", "vs one process")]
    for label, seconds in timings:
        rows.append((label, "%.1f" % seconds, "{:,.0f}".format(records / seconds), "%.2fx" % (timings[0][1] / seconds)))
    table(rows)
    for line in same:
        print("  " + line)


def memory_section(records, skip_peers):
    """The keyed stages at 1x and 10x the data, at the default memory budget (LEAD_MEMORY
    unset: 256M): lead-normalize --dedupe (a first import of --records leads, then ten times
    as many), lead-export permits (a first run of --records/2 tiered permits, then ten times
    as many: the permits of the 1x file again under new ids, fed through a pipe), lead-fetch
    events, lead-score events and lead-export events (2 x --records events, then ten times as
    many). Prints the peak RSS of each and its time per record at 1x and 10x (the targets:
    under 300 MB at 10x, and 10x within 1.3 times the time per record of 1x). Heavy: at the
    default --records it reads 10,000,000 leads, 5,000,000 permits and 20,000,000 events."""
    rows = [("stage", "records 1x", "s 1x", "us/record 1x", "peak RSS MB 1x", "records 10x", "s 10x",
             "us/record 10x", "peak RSS MB 10x", "10x / 1x per record")]
    env = {k: v for k, v in os.environ.items() if k != "LEAD_MEMORY"}
    work = os.path.join(DATA, "memory-run")

    def measure(argv, stdin_cmd=None):
        """(seconds, peak RSS MB) of argv at the default budget; stdin from stdin_cmd's output."""
        feeder = subprocess.Popen(stdin_cmd, stdout=subprocess.PIPE) if stdin_cmd else None
        start = time.monotonic()
        timed, rss_path = peak_rss(argv)
        proc = subprocess.Popen(timed, stdin=feeder.stdout if feeder else subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=env)
        if feeder:
            feeder.stdout.close()
        err = proc.stderr.read().decode(errors="replace")
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - start
        if feeder:
            feeder.wait()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit("%s failed:\n%s" % (" ".join(argv), err))
        return seconds, read_rss(rss_path, usage)

    def add(name, n1, one, n10, ten):
        per1, per10 = one[0] / n1 * 1e6, ten[0] / n10 * 1e6
        rows.append((name, "{:,}".format(n1), "%.1f" % one[0], "%.1f" % per1, "%.0f" % one[1], "{:,}".format(n10),
                     "%.1f" % ten[0], "%.1f" % per10, "%.0f" % ten[1], "%.2f" % (per10 / per1)))

    def fresh():
        subprocess.run(["rm", "-rf", work], check=True)
        os.makedirs(work)

    # ---- leads: the dedupe's first import ----
    now = ["--now", "2026-11-23T06:00:00Z"]
    mapfile = os.path.join(ROOT, "stages", "flatten", "leads-propstream-preforeclosure.csv")
    timings = {}
    for n in (records, records * 10):
        listing = os.path.join(DATA, "leads-list-%d.csv" % n)
        if not os.path.exists(listing):
            print("generating a %d-row lead list ..." % n, file=sys.stderr)
            subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_leads.py"), str(n), listing + ".tmp",
                            "1000", os.path.join(DATA, "leads-update-%d.csv" % n)], check=True)
            os.rename(listing + ".tmp", listing)
        fresh()
        imported = os.path.join(work, "imported.jsonl")
        run([BIN + "/lead-flatten", "leads", "-q", "--map", mapfile, "--logs", work, listing, "-o", imported] + now, os.devnull)
        os.makedirs(os.path.join(work, "leads"), exist_ok=True)
        timings[n] = measure([BIN + "/lead-normalize", "-q", "--dedupe", "--master", os.path.join(work, "leads", "leads.jsonl"),
                              "--logs", work, imported, "-o", os.path.join(work, "normalized.jsonl")] + now)
    add("lead-normalize --dedupe (first import)", records, timings[records], records * 10, timings[records * 10])

    # ---- permits: the export's first run ----
    permits = max(1000, records // 2)
    fresh()
    tiered = os.path.join(DATA, "permits-tiered-%d.jsonl" % permits)
    if not os.path.exists(tiered):
        source = permits_csv(permits)
        steps = [[BIN + "/lead-flatten", "permits", "-q", "--map", os.path.join(ROOT, "stages", "flatten", "permits-austin.csv"), source],
                 [BIN + "/lead-normalize", "-q"], [BIN + "/lead-tag", "trades", "-q"], [BIN + "/lead-score", "permits", "-q"],
                 [BIN + "/lead-tier", "-q"]]
        previous = None
        for i, argv in enumerate(steps):
            out = os.path.join(work, "step-%d.jsonl" % i)
            run(argv + ([previous] if previous else []) + ["-o", out] + now, os.devnull)
            if previous:
                os.remove(previous)
            previous = out
        os.rename(previous, tiered)
    copies = "abcdefghij"
    timings = {}
    for n, k in ((permits, 1), (permits * 10, 10)):
        fresh()
        # Each copy of the file under new permit ids (sed keeps the feeding cheap).
        script = "; ".join("sed 's/\"permit_id\":\"\\([^\"]*\\)\"/\"permit_id\":\"\\1-%s\"/' %s" % (c, tiered) for c in copies[:k])
        timings[n] = measure([BIN + "/lead-export", "permits", "-q", "--dir", os.path.join(work, "exports"), "--logs", work, "-"] + now,
                             stdin_cmd=["sh", "-c", script])
    add("lead-export permits (first run)", permits, timings[permits], permits * 10, timings[permits * 10])
    fresh()

    # ---- events: fetch, score and export of one run ----
    now = ["--now", "2025-01-31T00:00:00Z"]
    timings = {"fetch": {}, "score": {}, "export": {}}
    for n in (records * 2, records * 20):
        source = os.path.join(DATA, "events-%d.jsonl" % n)
        if not os.path.exists(source):
            print("generating %d engagement events ..." % n, file=sys.stderr)
            subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_events.py"), str(n), source + ".tmp"], check=True)
            os.rename(source + ".tmp", source)
        fresh()
        f = {k: os.path.join(work, k + ".jsonl") for k in ("fetched", "flattened", "scored")}
        events = os.path.join(work, "events")
        timings["fetch"][n] = measure([BIN + "/lead-fetch", "events", "-q", "--from", source, "--state", os.path.join(events, "state.json"),
                                       "-o", f["fetched"]] + now)
        run([BIN + "/lead-flatten", "events", "-q", f["fetched"], "-o", f["flattened"]] + now, os.devnull)
        os.remove(f["fetched"])
        timings["score"][n] = measure([BIN + "/lead-score", "events", "-q", f["flattened"], "-o", f["scored"]] + now)
        os.remove(f["flattened"])
        timings["export"][n] = measure([BIN + "/lead-export", "events", "-q", "--dir", events, f["scored"],
                                        "-o", os.path.join(work, "report.json")] + now)
    for stage in ("fetch", "score", "export"):
        add("lead-%s events" % stage, records * 2, timings[stage][records * 2], records * 20, timings[stage][records * 20])
    subprocess.run(["rm", "-rf", work], check=True)
    print("\nKeyed stages at 1x and 10x the data, default memory budget (256M)\n")
    table(rows)


SECTIONS = {"stream": stream_section, "listings": listings_section, "leads": leads_section, "diff": diff_section,
            "permits": permits_section, "events": events_section, "scaleout": scaleout_section, "memory": memory_section}
# Not run unless asked (make bench BENCH=memory): it reads ten times the data of the others.
DEFAULT_SECTIONS = [name for name in SECTIONS if name != "memory"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--only", default=",".join(DEFAULT_SECTIONS))
    parser.add_argument("--skip-peers", action="store_true")
    args = parser.parse_args()
    # A section run on its own (BENCH=leads on a fresh clone) generates into bench/data too.
    os.makedirs(DATA, exist_ok=True)
    for name in args.only.split(","):
        SECTIONS[name](args.records, args.skip_peers)


if __name__ == "__main__":
    main()
