# LeadETL: `make` builds the stages in release and runs every pipeline on the bundled
# fixtures, offline, into local-logs/ and exports/. `make test` runs the test suite.
# See README.md for the pipelines and their targets.

SWIFT    ?= swift
BIN      := .build/release
# The fixed clock for runs over the bundled fixtures, so reruns are byte-identical.
NOW      ?= 2026-11-23T06:00:00Z
RECORDS  ?= 1000000
BENCH    ?=
# Where pipeline outputs land; the tests point these at scratch directories.
LOGS     ?= local-logs
EXPORTS  ?= exports

export LEAD_NOW := $(NOW)

SOURCES := $(shell find Sources -type f) Package.swift
STAGES  := fetch flatten normalize tag score tier export cleanup
BINARIES := $(STAGES:%=$(BIN)/lead-%)

.PHONY: all build deps test unit cases e2e bench clean cases-record

all: build pipelines

deps:
	@scripts/deps.sh

build: deps $(BIN)/.built

$(BIN)/.built: $(SOURCES)
	$(SWIFT) build -c release
	@touch $@

# ---- pipelines (each later issue adds its own targets here) ----------------

.PHONY: pipelines
pipelines: build

# ---- tests ----------------------------------------------------------------

test: build
	LEAD_BIN=$(CURDIR)/$(BIN) $(SWIFT) test -c release
	$(MAKE) --no-print-directory e2e

# End to end over the fixtures, in scratch trees: reruns are byte-identical and a second
# make rewrites nothing (scripts/e2e.sh).
e2e: build
	MAKE="$(MAKE)" scripts/e2e.sh

cases-record: build
	LEAD_BIN=$(CURDIR)/$(BIN) LEAD_CASES_RECORD=1 $(SWIFT) test -c release --filter GoldenCaseTests

# ---- benchmark ------------------------------------------------------------

bench: build
	@scripts/deps.sh bench
	python3 bench/bench.py --records $(RECORDS) $(if $(BENCH),--only $(BENCH))

clean:
	rm -rf .build local-logs exports bench/data
