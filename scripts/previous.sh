#!/bin/sh
# The previous runs' stage outputs, for make diff.
#   previous.sh keep LOGS EXPORTS   after a run: hard-link the staged tree (LOGS and EXPORTS,
#                                   not LOGS/_previous) into LOGS/_previous/run-NNNN/, unless it
#                                   is the tree the newest kept run already holds; keep 5.
#   previous.sh diff LOGS EXPORTS   compare the current tree with the newest kept run that
#                                   differs from it: a lead-diff summary per changed stage file.
# Stages replace their outputs atomically (a new file, a new inode), so a hard link keeps the
# old content at no cost, and "same inode" means "same file".
set -eu
umask 077
action=$1 logs=$2 exports=$3
bin=${LEAD_BIN:-.build/release}
keys=${LEAD_DIFF_KEYS:-stages/diff/keys.csv}
prev="$logs/_previous"
keep=5

# "path inode" of every file of the tree rooted at $1 (with logs/ and exports/ inside). The
# summary logs are left out: a run that changed nothing still logs its stages (cleanup runs
# every time), and is not a run to keep.
listing() {
    (cd "$1" && find logs exports -path logs/_previous -prune -o -type f ! -name .lock ! -name .journal ! -name summaries.jsonl -printf '%p %i\n' 2>/dev/null | LC_ALL=C sort)
}
# A view of the current tree with the same logs/ and exports/ names as a kept run.
current() {
    view=$(mktemp -d "${TMPDIR:-/tmp}/lead-prev.XXXXXX")
    ln -s "$(cd "$logs" && pwd)" "$view/logs"
    if [ -d "$exports" ]; then ln -s "$(cd "$exports" && pwd)" "$view/exports"; else mkdir "$view/exports"; fi
    echo "$view"
}
tree_listing() { (cd "$1" && find -L logs exports -path logs/_previous -prune -o -type f ! -name .lock ! -name .journal ! -name summaries.jsonl -printf '%p %i\n' 2>/dev/null | LC_ALL=C sort); }
runs_newest_first() { ls -1 "$prev" 2>/dev/null | grep '^run-[0-9]*$' | LC_ALL=C sort -r || true; }

case $action in
keep)
    [ -d "$logs" ] || exit 0
    view=$(current)
    trap 'rm -rf "$view"' EXIT
    newest=$(runs_newest_first | head -1)
    if [ -n "$newest" ] && [ "$(tree_listing "$view")" = "$(listing "$prev/$newest")" ]; then
        exit 0
    fi
    n=$(printf '%s' "${newest#run-}" | sed 's/^0*//')
    run=$(printf 'run-%04d' $(( ${n:-0} + 1 )))
    # A copy a killed run left half made is not a kept run.
    rm -rf "$prev"/run-*.tmp
    target=$(cd "$logs" && pwd)/_previous/$run.tmp
    mkdir -p "$target/logs"
    (cd "$logs" && find . -mindepth 1 -maxdepth 1 ! -name _previous ! -name .lock -exec cp -al {} "$target/logs/" \;)
    if [ -d "$exports" ]; then cp -al "$exports" "$target/exports"; else mkdir "$target/exports"; fi
    find "$target" \( -name .lock -o -name .journal \) -type f -delete
    mv "$prev/$run.tmp" "$prev/$run"
    runs_newest_first | tail -n +$((keep + 1)) | while read -r old; do rm -rf "${prev:?}/$old"; done
    ;;
diff)
    view=$(current)
    trap 'rm -rf "$view"' EXIT
    now=$(tree_listing "$view")
    base=
    for run in $(runs_newest_first); do
        if [ "$now" != "$(listing "$prev/$run")" ]; then base=$run; break; fi
    done
    if [ -z "$base" ]; then
        echo "make diff: no earlier run that differs from the current tree (runs are kept in $prev after each make)"
        exit 0
    fi
    echo "make diff: the current tree against $prev/$base"
    old_list=$(listing "$prev/$base")
    printf '%s\n%s\n' "$now" "$old_list" | awk '{print $1}' | LC_ALL=C sort -u | grep -E '\.(jsonl|csv)(\.gz)?$' | while read -r path; do
        new_inode=$(printf '%s\n' "$now" | awk -v p="$path" '$1 == p {print $2}')
        old_inode=$(printf '%s\n' "$old_list" | awk -v p="$path" '$1 == p {print $2}')
        [ "$new_inode" = "$old_inode" ] && continue
        if [ -z "$old_inode" ]; then echo "$path: new file"; continue; fi
        if [ -z "$new_inode" ]; then echo "$path: gone"; continue; fi
        old_file="$prev/$base/$path" new_file="$view/$path"
        if cmp -s "$old_file" "$new_file"; then continue; fi
        rule=$(awk -F, -v p="$path" '
            /^#/ || $1 == "pattern" { next }
            { line = $0; pat = $1; rest = substr(line, length(pat) + 2) }
            { re = pat; gsub(/\./, "\\.", re); gsub(/\*/, "[^/]*", re); if (p ~ "^" re "$") { print rest; exit } }' "$keys")
        key=$(printf '%s' "$rule" | sed -E 's/^"([^"]*)",?/\1\t/; t; s/,/\t/' | cut -f1)
        ignore=$(printf '%s' "$rule" | sed -E 's/^"([^"]*)",?/\1\t/; t; s/,/\t/' | cut -f2)
        if [ -z "$key" ]; then
            echo "$path: changed ($(wc -l <"$old_file" | tr -d ' ') -> $(wc -l <"$new_file" | tr -d ' ') lines, compared whole)"
            continue
        fi
        echo "$path (key $key):"
        "$bin/lead-diff" "$old_file" "$new_file" --key "$key" ${ignore:+--ignore "$ignore"} --summary -q \
            | tail -n +2 | sed 's/^/  /' || true
    done
    ;;
*)
    echo "usage: previous.sh keep|diff LOGS EXPORTS" >&2
    exit 2
    ;;
esac
