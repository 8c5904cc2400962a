#!/bin/sh
# Joins the stage files of N shards in shard order: DIR/shards/<name>-<i>.jsonl into
# DIR/<name>.jsonl (atomically), and their rejects (<name>-<i>.rejects.shard-<i>-of-N.jsonl)
# into DIR/<name>.rejects.jsonl, which is removed when no shard rejected anything.
#   scripts/join-shards.sh N DIR NAME...
set -eu
umask 077
n=$1
dir=$2
shift 2
for name in "$@"; do
    parts=""
    rejects=""
    i=1
    while [ "$i" -le "$n" ]; do
        parts="$parts $dir/shards/$name-$i.jsonl"
        r="$dir/shards/$name-$i.rejects.shard-$i-of-$n.jsonl"
        [ -f "$r" ] && rejects="$rejects $r"
        i=$((i + 1))
    done
    # shellcheck disable=SC2086
    cat $parts > "$dir/$name.jsonl.part" && mv "$dir/$name.jsonl.part" "$dir/$name.jsonl"
    if [ -n "$rejects" ]; then
        # shellcheck disable=SC2086
        cat $rejects > "$dir/$name.rejects.jsonl.part" && mv "$dir/$name.rejects.jsonl.part" "$dir/$name.rejects.jsonl"
        # shellcheck disable=SC2086
        rm -f $rejects
    else
        rm -f "$dir/$name.rejects.jsonl"
    fi
done
