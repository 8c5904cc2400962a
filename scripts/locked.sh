#!/bin/sh
# Runs a command with a store directory locked, for a chain of stages that reads a store and
# writes it again (make leads: normalize reads the master, score writes it):
#   scripts/locked.sh DIR -- COMMAND [ARG...]
# The lock is the store's own, DIR/.lock (flock), the one every stage takes: a second run, or
# a stage run by hand against the same store, waits (saying who holds it) until the command
# ends; LEAD_NO_WAIT=1 makes it exit 2 instead. The stages the command starts see DIR in
# LEAD_LOCKS and do not lock it again. The kernel drops the lock when the holder dies.
set -eu
umask 077
dir=$1
shift
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "usage: locked.sh DIR -- COMMAND [ARG...]" >&2; exit 2; }
mkdir -p "$dir"
real=$(cd "$dir" && pwd -P)
lock="$real/.lock"
exec 9<>"$lock"
if ! flock -n 9; then
    holder=$(cat "$lock" 2>/dev/null || true)
    if [ "${LEAD_NO_WAIT:-}" = 1 ]; then
        echo "locked.sh: $real is locked by ${holder:-another run} (LEAD_NO_WAIT=1)" >&2
        exit 2
    fi
    echo "locked.sh: waiting for $real: locked by ${holder:-another run}" >&2
    flock 9
fi
printf 'pid %s %s since %s\n' "$$" "$*" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" | cut -c1-300 >"$lock"
LEAD_LOCKS="$real${LEAD_LOCKS:+:$LEAD_LOCKS}" "$@" && status=0 || status=$?
: >"$lock"
exit $status
