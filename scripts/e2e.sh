#!/bin/sh
# End-to-end check of `make pipelines` over the bundled fixtures, in scratch trees (never the
# user's local-logs/ or exports/):
#  1. two runs into fresh trees A and B are byte-identical (same --now, same outputs);
#  2. a second run into A rewrites nothing (file dependencies are real);
#  3. make rescore at a later NOW expires assignments and rebuilds the lists;
#  4. make diff then reports what the rescore changed, per stage file;
#  5. permits scored by a failing reasoner land in the retry queue, and make permits-retry
#     with a working one moves them into their tiers;
#  6. make events applied its two runs: the seed's worked example is in the hourly analytics,
#     and the watermark is the second run's end.
set -eu
make_cmd=${MAKE:-make}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lead-e2e.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

run() { $make_cmd --no-print-directory pipelines LOGS="$1/local-logs" EXPORTS="$1/exports" >"$1.log" 2>&1 || { cat "$1.log" >&2; exit 1; }; }
# Every output file, with its size and time (lock files are how runs take turns, not outputs).
# The summary logs are left out: they log every stage that ran, and cleanup runs every time.
snapshot() { (cd "$1" && find . -type f ! -name .lock ! -name summaries.jsonl -printf '%p %s %T@\n' | sort); }

mkdir -p "$tmp/a" "$tmp/b"
run "$tmp/a"
run "$tmp/b"
# Rejects name their input files, which lie in each run's own tree: compare with the tree's path
# taken out (in copies, so that step 2 still sees the real files).
for side in a b; do
    cp -r "$tmp/$side" "$tmp/$side.cmp"
    find "$tmp/$side.cmp" -type f \( -name '*.jsonl' -o -name '*.json' -o -name '*.csv' \) -exec sed -i "s#$tmp/$side/#TREE/#g" {} +
    # The import archive names a copy by its content's hash, and a record names the tree it was
    # read in (_origin): the hashes differ between the two trees, the copies do not.
    find "$tmp/$side.cmp" -type f \( -name '*.jsonl' -o -name '*.json' -o -name '*.csv' \) -exec sed -i -E 's#[0-9]{8}-[0-9a-f]{12}-#DAY-HASH-#g' {} +
    find "$tmp/$side.cmp" -path '*/imports/*' -type f | while read -r f; do
        mv "$f" "$(dirname "$f")/$(basename "$f" | sed -E 's/^[0-9]{8}-[0-9a-f]{12}-/DAY-HASH-/')"
    done
    # Photo run logs are named by each run's real start and record how long each download
    # took: compare their lines without "ms", under one name.
    # The summary logs say when each stage ran and for how long: compare them without that.
    find "$tmp/$side.cmp" -name summaries.jsonl -exec sed -i -E 's/"seconds":[0-9.e-]+,//; s/,"at":"[^"]*"//' {} +
    find "$tmp/$side.cmp" -path '*/photo-logs/*/run_*.jsonl' | while read -r log; do
        sed -E 's/"ms":[0-9]+,//' "$log" >"$(dirname "$log")/run.cmp" && rm "$log"
    done
done
if ! diff -r "$tmp/a.cmp" "$tmp/b.cmp" >"$tmp/diff" 2>&1; then
    echo "e2e: two runs over the fixtures differ:" >&2
    head -50 "$tmp/diff" >&2
    exit 1
fi
before=$(snapshot "$tmp/a")
sleep 1
run "$tmp/a"
after=$(snapshot "$tmp/a")
if [ "$before" != "$after" ]; then
    echo "e2e: a second make rewrote files:" >&2
    printf '%s\n' "$before" >"$tmp/before"; printf '%s\n' "$after" >"$tmp/after"
    diff "$tmp/before" "$tmp/after" >&2 || true
    exit 1
fi
# 3. the nightly rescoring, three months on: assignments expire, scores fall, lists follow.
$make_cmd --no-print-directory rescore NOW=2027-03-01T06:00:00Z LOGS="$tmp/a/local-logs" EXPORTS="$tmp/a/exports" >"$tmp/rescore.log" 2>&1 || { cat "$tmp/rescore.log" >&2; exit 1; }
master="$tmp/a/local-logs/leads/leads.jsonl"
if cmp -s "$master" "$tmp/b/local-logs/leads/leads.jsonl" || ! grep -q '"name":"Expired - Foreclosure"' "$master"; then
    echo "e2e: make rescore did not expire the Foreclosure assignments of 2026 by 2027-03-01" >&2
    exit 1
fi
if cmp -s "$tmp/a/exports/lists/hot-foreclosures.csv" "$tmp/b/exports/lists/hot-foreclosures.csv"; then
    echo "e2e: make rescore did not rebuild the smart lists" >&2
    exit 1
fi
# 4. make diff: the rescored tree against the run before it, a summary per changed stage file.
$make_cmd --no-print-directory diff LOGS="$tmp/a/local-logs" EXPORTS="$tmp/a/exports" >"$tmp/diff.log" 2>&1 || { cat "$tmp/diff.log" >&2; exit 1; }
if ! grep -q '^logs/leads/leads.jsonl (key address_key):' "$tmp/diff.log" || ! grep -q '^    score: [0-9]* changed' "$tmp/diff.log"; then
    echo "e2e: make diff did not report the rescored master:" >&2
    cat "$tmp/diff.log" >&2
    exit 1
fi
# 5. the retry round trip of the permits pipeline.
c="$tmp/c"
mkdir -p "$c"
permits() { $make_cmd --no-print-directory "$@" LOGS="$c/local-logs" EXPORTS="$c/exports" REASONER_TIMEOUT=1 >>"$c.log" 2>&1 || { cat "$c.log" >&2; exit 1; }; }
permits permits REASONER=fixtures/permits/reasoners/flaky.sh
queue="$c/exports/pending_retry/retry_queue.csv"
queued=$(($(wc -l <"$queue") - 1))
if [ "$queued" -lt 10 ]; then
    echo "e2e: the failing reasoner sent only $queued permits to $queue" >&2
    exit 1
fi
first=$(sed -n 2p "$queue" | cut -d, -f1)
permits permits-retry REASONER=fixtures/permits/reasoners/steady.sh
if [ "$(wc -l <"$queue")" -ne 1 ]; then
    echo "e2e: make permits-retry left permits in $queue" >&2
    exit 1
fi
if ! grep -rqF "$first," "$c/exports"/*/*/tier_*.csv "$c/exports/flagged/needs_review.csv"; then
    echo "e2e: permit $first did not move from the retry queue into a tier file" >&2
    exit 1
fi
# 6. the events runs of make pipelines in tree A.
ev="$tmp/a/local-logs/events"
if ! grep -qF '{"listing_id":"listing-123","date":"2025-01-15","hour":10,"total_views":' "$ev/listing_analytics.jsonl" \
   || ! grep -F '"listing-123","date":"2025-01-15","hour":10,' "$ev/listing_analytics.jsonl" | grep -qF '"total_leads":2,"phone_leads":2,' \
   || ! grep -F '"listing-123","date":"2025-01-15","hour":10,' "$ev/listing_analytics.jsonl" | grep -qF '"unique_leads":1,'; then
    echo "e2e: the hour of the seed's example (listing-123, 2025-01-15 10:00) is not phone_leads 2, total_leads 2, unique_leads 1" >&2
    exit 1
fi
if ! grep -qF '"watermark":"2025-01-18T00:00:00Z"' "$ev/state.json" || [ "$(grep -o '"run_id"' "$ev/state.json" | wc -l)" -ne 2 ]; then
    echo "e2e: make events did not apply its two runs:" >&2
    cat "$ev/state.json" >&2
    exit 1
fi
files=$(printf '%s\n' "$after" | grep -c . || true)
echo "e2e: $files output files, identical across runs; a second make rewrote nothing; make rescore expired and rescored; make diff reported it; $queued permits went to the retry queue and back into tiers; make events applied two runs"
