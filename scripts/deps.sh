#!/bin/sh
# Installs the Debian packages LeadETL needs, when they are missing.
#   scripts/deps.sh          build: libcsv, zlib, simdjson, sqlite3
#   scripts/deps.sh test     also what the tests need: chromium (the run report is opened in it)
#   scripts/deps.sh bench    also the benchmark's peers and tools: miller, time, python3, and
#                            DuckDB, polars and pandas from PyPI
# As root it runs apt-get (after apt-get update); otherwise it prints the command to run.
set -eu

packages="libcsv-dev zlib1g-dev libsimdjson-dev libsqlite3-dev"
case "${1:-}" in
test) packages="$packages chromium" ;;
bench) packages="$packages miller time python3" ;;
esac

missing=""
for p in $packages; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" != "0" ]; then
        echo "LeadETL needs these Debian packages:$missing" >&2
        echo "Install them with:  sudo apt-get update && sudo apt-get install -y$missing" >&2
        exit 1
    fi
    echo "installing:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq $missing >/dev/null
fi

# The benchmark's dataframe peers come from PyPI (issue 15: DuckDB, polars, pandas).
if [ "${1:-}" = "bench" ]; then
    for m in duckdb polars pandas; do
        if ! python3 -c "import $m" 2>/dev/null; then
            python3 -m pip install -q "$m" 2>/dev/null || python3 -m pip install -q --break-system-packages "$m" || \
                echo "could not install $m from PyPI: the benchmark runs without it" >&2
        fi
    done
fi

