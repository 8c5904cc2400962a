#!/bin/sh
# Runs N copies of a stage side by side, shard i of N each: @i@ and @n@ in the arguments
# become the shard's number and N; each gets cores / N worker threads (LEAD_THREADS). Waits
# for all; exits with the first failure's status, naming the shard.
#   scripts/in-shards.sh N -- COMMAND [ARG...]
set -eu
n=$1
shift
[ "${1:-}" = "--" ] && shift
# The shards share the machine: each gets cores / N worker threads unless LEAD_THREADS says.
if [ -z "${LEAD_THREADS:-}" ]; then
    cores=$(nproc 2>/dev/null || echo 1)
    LEAD_THREADS=$((cores / n))
    [ "$LEAD_THREADS" -ge 1 ] || LEAD_THREADS=1
fi
export LEAD_THREADS

run_shard() {
    i=$1
    shift
    for a in "$@"; do
        shift
        set -- "$@" "$(printf '%s' "$a" | sed "s/@i@/$i/g; s/@n@/$n/g")"
    done
    echo "$*"
    exec "$@"
}

pids=""
i=1
while [ "$i" -le "$n" ]; do
    run_shard "$i" "$@" &
    pids="$pids $!"
    i=$((i + 1))
done
status=0
i=1
for pid in $pids; do
    s=0
    wait "$pid" || s=$?
    if [ "$s" -ne 0 ]; then
        echo "in-shards.sh: shard $i/$n failed (exit $s)" >&2
        [ "$status" -ne 0 ] || status=$s
    fi
    i=$((i + 1))
done
exit "$status"
