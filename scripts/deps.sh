#!/bin/sh
# Installs the Debian packages LeadETL needs, when they are missing.
#   scripts/deps.sh          build: libcsv, zlib, simdjson, sqlite3
#   scripts/deps.sh test     also what the tests need: chromium (the run report is opened in it),
#                            python3 and, from PyPI, DuckDB, polars and jsonschema (every output
#                            is checked against its schema and read by DuckDB and polars) and
#                            pyspark (the spark-* targets; Java 17 must be on the machine)
#   scripts/deps.sh spark    pyspark from PyPI, for make spark-permits|spark-leads|spark-events
#   scripts/deps.sh bench    also the benchmark's peers and tools: miller, time, python3, and
#                            DuckDB, polars, pandas and usaddress-scourgify from PyPI
# As root it runs apt-get (after apt-get update); otherwise it prints the command to run.
set -eu

packages="libcsv-dev zlib1g-dev libsimdjson-dev libsqlite3-dev"
case "${1:-}" in
test) packages="$packages chromium python3 python3-pip" ;;
bench) packages="$packages miller time python3" ;;
spark) packages="$packages python3 python3-pip" ;;
esac
# pyspark runs on Java: Debian's JRE when the machine has none.
case "${1:-}" in
test | spark) command -v java >/dev/null 2>&1 || packages="$packages openjdk-17-jre-headless" ;;
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

# The dataframe readers come from PyPI: DuckDB and polars read every output in the tests
# (with jsonschema for the schemas); the benchmark's peers are DuckDB, polars and pandas.
pypi=""
case "${1:-}" in
test) pypi="duckdb polars jsonschema pyspark" ;;
spark) pypi="pyspark" ;;
bench) pypi="duckdb polars pandas scourgify:usaddress-scourgify" ;;
esac
# Each entry: the module to import, and after a colon the PyPI package when its name differs.
for entry in $pypi; do
    m=${entry%%:*}
    package=${entry#*:}
    if ! python3 -c "import $m" 2>/dev/null; then
        python3 -m pip install -q "$package" 2>/dev/null || python3 -m pip install -q --break-system-packages "$package" || {
            echo "could not install $package from PyPI" >&2
            [ "$1" = "bench" ] || exit 1
        }
    fi
done
