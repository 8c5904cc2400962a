#!/bin/sh
# End-to-end check of `make pipelines` over the bundled fixtures, in scratch trees (never the
# user's local-logs/ or exports/):
#  1. two runs into fresh trees A and B are byte-identical (same --now, same outputs);
#  2. a second run into A rewrites nothing (file dependencies are real).
set -eu
make_cmd=${MAKE:-make}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lead-e2e.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

run() { $make_cmd --no-print-directory pipelines LOGS="$1/local-logs" EXPORTS="$1/exports" >"$1.log" 2>&1 || { cat "$1.log" >&2; exit 1; }; }
snapshot() { (cd "$1" && find . -type f -printf '%p %s %T@\n' | sort); }

mkdir -p "$tmp/a" "$tmp/b"
run "$tmp/a"
run "$tmp/b"
# Photo run logs record how long each download took: compare their lines without "ms".
for f in $(cd "$tmp/a" && find . -path '*/photo-logs/*/run_*.jsonl'); do
    for side in a b; do sed -E 's/"ms":[0-9]+,//' "$tmp/$side/$f" >"$tmp/$side/$f.cmp" && mv "$tmp/$side/$f.cmp" "$tmp/$side/$f"; done
done
if ! diff -r "$tmp/a" "$tmp/b" >"$tmp/diff" 2>&1; then
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
files=$(printf '%s\n' "$after" | grep -c . || true)
echo "e2e: $files output files, identical across runs; a second make rewrote nothing"
