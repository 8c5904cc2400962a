# LeadETL: `make` builds the stages in release and runs every pipeline on the bundled
# fixtures, offline, into local-logs/ and exports/. `make test` runs the test suite.
# See README.md for the pipelines and their targets.

SWIFT    ?= swift
BIN      := .build/release
# The clocks. Runs over the bundled fixtures have fixed clocks, so reruns are byte-identical
# (FIXTURE_NOW for the listings and leads fixtures; PERMITS_NOW and EVENTS_NOW_N below).
# Live fetches (SOURCE=spark|reso) and the cron jobs (rescore, permits-retry) use the real
# time. NOW=... fixes the clock of every run but the permits and events fixtures.
FIXTURE_NOW := 2026-11-23T06:00:00Z
NOW      ?=
RECORDS  ?= 1000000
BENCH    ?=
# Where pipeline outputs land; the tests point these at scratch directories.
LOGS     ?= local-logs
EXPORTS  ?= exports

# --now for a run over fixtures recorded at $1 (NOW when given), and for a live run (NOW
# when given, else nothing: the stage takes the real time).
fixture_now = --now $(or $(NOW),$1)
live_now    = $(if $(NOW),--now $(NOW))

SOURCES := $(shell find Sources -type f) Package.swift
STAGES  := fetch flatten normalize tag score tier export cleanup diff
BINARIES := $(STAGES:%=$(BIN)/lead-%)

.PHONY: all build deps test unit cases e2e bench bench-addresses clean cases-record install
.SECONDEXPANSION:

all: build pipelines

deps:
	@scripts/deps.sh

build: deps $(BIN)/.built

# LEAD_PREBUILT=1: the binaries are built already (the tests run make from inside swift
# test, whose build lock a build from there would wait for forever).
ifeq ($(LEAD_PREBUILT),)
$(BIN)/.built: $(SOURCES)
	$(SWIFT) build -c release
	@touch $@
else
$(BIN)/.built: ;
endif

# ---- pipelines ------------------------------------------------------------

.PHONY: pipelines
pipelines: build listings cleanup leads permits events
	@scripts/previous.sh keep $(LOGS) $(EXPORTS)

# ---- MLS listings: fetch -> flatten -> photos, per pipeline; then cleanup ----
# SOURCE=replay (default) reads fixtures/listings/<pipeline>/; SOURCE=spark or SOURCE=reso
# fetch live (the MLS's credentials must be set: SPARK_API_TOKEN, or the variables its
# mls.csv row names), always, since the remote data changes. LISTING_PIPELINES picks the
# pipelines (a pipeline of listing-pipelines.csv per MLS and kind).

SOURCE   ?= replay
LISTING_PIPELINES ?= active-gps active-crmls closed-gps closed-crmls expired-gps expired-crmls
FETCH_RULES   := $(wildcard stages/fetch/*.csv)
FLATTEN_RULES := $(wildcard stages/flatten/listing-*.csv) stages/cleanup/retention.csv $(FETCH_RULES)

kind_of = $(word 1,$(subst -, ,$1))
mls_of  = $(word 2,$(subst -, ,$1))
listing_dir = $(LOGS)/$(call kind_of,$1)/$(call mls_of,$1)
raw_of  = $(call listing_dir,$1)/all_$(call mls_of,$1)_$(call kind_of,$1)_listings_with_expansions.jsonl
flat_of = $(call listing_dir,$1)/flattened_$(call mls_of,$1)_$(call kind_of,$1)_listings.jsonl
index_of = $(LOGS)/$(call kind_of,$1)/photo-logs/$(call mls_of,$1)/skip_index.json

# BASE_URL: the API root to ask instead of the rules' (another RESO server, a test server).
BASE_URL ?=
ifeq ($(SOURCE),replay)
fetch_source = --replay fixtures/listings/$1
fetch_deps   = $(wildcard fixtures/listings/$1/*.json)
photo_source = --replay fixtures/listings/photos
listing_now  = $(call fixture_now,$(FIXTURE_NOW))
else
# An MLS fetched under replication rules (mls.csv replication column) keeps a
# ModificationTimestamp watermark: each run asks only for what changed since the last.
replication_mls := $(shell awk -F, '/^[ \t]*\#/ { next } !seen++ { for (i = 1; i <= NF; i++) if ($$i == "replication") c = i; next } c && $$c != "" { print $$1 }' stages/fetch/mls.csv)
fetch_source = --api $(if $(filter reso,$(SOURCE)),reso,spark) $(if $(BASE_URL),--base-url $(BASE_URL)) \
	$(if $(and $(filter reso,$(SOURCE)),$(filter $(call mls_of,$1),$(replication_mls))),--watermark $(call listing_dir,$1)/watermark.json)
fetch_deps   = FORCE
photo_source =
listing_now  = $(live_now)
endif

# Each pipeline starts by settling its stores: a change a killed run left half made is
# rolled back and its leftovers removed (lead-cleanup stores), so a run after a crash starts
# clean; it changes nothing otherwise.
LISTING_STORES := $(foreach p,$(LISTING_PIPELINES),$(call listing_dir,$p) $(LOGS)/$(call kind_of,$p)/photo-logs/$(call mls_of,$p) $(LOGS)/$(call kind_of,$p)/photos/$(call mls_of,$p))
.PHONY: settle-listings settle-leads settle-permits settle-events
settle-listings: $(BIN)/.built
	@$(BIN)/lead-cleanup stores -q $(LISTING_STORES)

define listing_pipeline
.PHONY: $1
$1: $(call index_of,$1)

$(call raw_of,$1): $(call fetch_deps,$1) $(FETCH_RULES) $(BIN)/.built | settle-listings
	$(BIN)/lead-fetch listings --pipeline $1 $(call fetch_source,$1) $(listing_now) --state $(call listing_dir,$1)/fetch_state.json -o $$@

$(call flat_of,$1): $(call raw_of,$1) $(FLATTEN_RULES)
	$(BIN)/lead-flatten listings --pipeline $1 $(listing_now) $$(if $$(wildcard $$@),--previous $$@) $$< -o $$@

$(call index_of,$1): $(call flat_of,$1)
	$(BIN)/lead-fetch photos --pipeline $1 --logs $(LOGS) $(photo_source) $(listing_now) $$<
endef
$(foreach p,$(LISTING_PIPELINES),$(eval $(call listing_pipeline,$p)))

.PHONY: active closed expired listings cleanup FORCE
active: active-gps active-crmls
closed: closed-gps closed-crmls
expired: expired-gps expired-crmls
listings: active closed expired

# Removes expired listings (expiresAt before NOW) with their photos; rewrites only what changes.
cleanup: listings
	$(BIN)/lead-cleanup listings $(listing_now) --logs $(LOGS)

FORCE:

# ---- property leads: import -> normalize + dedupe -> tag -> score -> smart lists ----
# Each list in fixtures/leads/ is imported with its column map (stages/flatten/leads-<list>.csv),
# the expired listings join them, and everything is merged into the master
# $(LOGS)/leads/leads.jsonl, which is also the input of the next run (duplicates merge into it).

LEADS       := $(LOGS)/leads
LEAD_LISTS  := county-probate driving-for-dollars propstream-preforeclosure taxlien-delinquent
LEAD_EXPIRED := expired-gps expired-crmls
LEAD_IMPORTS := $(LEAD_LISTS:%=$(LEADS)/imported/%.jsonl) $(LEAD_EXPIRED:%=$(LEADS)/imported/%.jsonl)
LEAD_RULES  := $(wildcard stages/normalize/*.csv stages/tag/*.csv stages/score/*.csv)
SMART_LISTS := $(basename $(notdir $(wildcard stages/export/lists/*.list)))
# The leads fixtures' clock, or the real one for the nightly job (LIVE_CLOCK=1).
LIVE_CLOCK  ?=
leads_now    = $(if $(LIVE_CLOCK),$(live_now),$(call fixture_now,$(FIXTURE_NOW)))

.PHONY: leads lists rescore
leads: lists $(LEADS)/expiring.jsonl

settle-leads: $(BIN)/.built
	@$(BIN)/lead-cleanup stores -q $(LEADS)

$(LEADS)/imported/%.jsonl: fixtures/leads/%.csv stages/flatten/leads-%.csv $(BIN)/.built | settle-leads
	$(BIN)/lead-flatten leads --schema leads-imported --map stages/flatten/leads-$*.csv $(leads_now) --logs $(LOGS) $< -o $@

define expired_leads
$(LEADS)/imported/$1.jsonl: $(call flat_of,$1) stages/flatten/leads-expired-listings.csv | cleanup settle-leads
	$(BIN)/lead-flatten leads --schema leads-imported --map stages/flatten/leads-expired-listings.csv --source $1 $(leads_now) --logs $(LOGS) $$< -o $$@
endef
$(foreach p,$(LEAD_EXPIRED),$(eval $(call expired_leads,$p)))

# The master: normalised and deduped into its last version, tagged, scored; the stage outputs
# in between stay for diffing. The chain reads the master and writes it again: the leads
# store stays locked for the whole of it (scripts/locked.sh), so a second run, or an edit,
# waits instead of being overwritten.
# SHARDS=N (make -j N SHARDS=N leads): the dedupe runs in N shards side by side, each over
# every import and the master, keeping the address_keys that hash to it; tag and score run
# on each shard's part; the parts are joined in shard order (the master holds the same
# leads as a plain run's, in another order).
ifeq ($(SHARDS),)
$(LEADS)/leads.jsonl: $(LEAD_IMPORTS) $(LEAD_RULES) | settle-leads
	scripts/locked.sh $(LEADS) -- sh -c '\
	$(BIN)/lead-normalize --dedupe --schema leads --master $@ --logs $(LOGS) $(leads_now) $(LEAD_IMPORTS) -o $(LEADS)/normalized.jsonl && \
	$(BIN)/lead-tag leads --schema leads $(leads_now) $(LEADS)/normalized.jsonl -o $(LEADS)/tagged.jsonl && \
	$(BIN)/lead-score tags --schema leads $(leads_now) $(LEADS)/tagged.jsonl -o $@'
else
$(LEADS)/leads.jsonl: $(LEAD_IMPORTS) $(LEAD_RULES) | settle-leads
	@umask 077 && mkdir -p $(LEADS)/shards
	scripts/locked.sh $(LEADS) -- sh -c '\
	scripts/in-shards.sh $(SHARDS) -- $(BIN)/lead-normalize --dedupe --schema leads --shard @i@/@n@ --master $@ --logs $(LOGS) $(leads_now) $(LEAD_IMPORTS) -o $(LEADS)/shards/normalized-@i@.jsonl && \
	scripts/in-shards.sh $(SHARDS) -- $(BIN)/lead-tag leads --schema leads --shard @i@/@n@ $(leads_now) $(LEADS)/shards/normalized-@i@.jsonl -o $(LEADS)/shards/tagged-@i@.jsonl && \
	scripts/in-shards.sh $(SHARDS) -- $(BIN)/lead-score tags --schema leads --shard @i@/@n@ $(leads_now) $(LEADS)/shards/tagged-@i@.jsonl -o $(LEADS)/shards/leads-@i@.jsonl && \
	scripts/join-shards.sh $(SHARDS) $(LEADS) normalized tagged leads'
endif


lists: $(SMART_LISTS:%=$(EXPORTS)/lists/%.csv)

$(EXPORTS)/lists/%.csv: $(LEADS)/leads.jsonl stages/export/lists/%.list stages/tag/zip-counties.csv
	$(BIN)/lead-export list $* $(leads_now) --logs $(LOGS) --exports $(EXPORTS)

$(LEADS)/expiring.jsonl: $(LEADS)/leads.jsonl
	$(BIN)/lead-tag expiring --schema leads-expiring --within 7d $(leads_now) --logs $(LOGS) -o $@

# The nightly job: expiry brought up to now (the real time, or NOW) and every lead rescored,
# then the lists again.
rescore: build
	$(BIN)/lead-score tags --schema leads --recalculate $(live_now) --logs $(LOGS)
	$(MAKE) --no-print-directory lists $(LEADS)/expiring.jsonl LIVE_CLOCK=1
	@scripts/previous.sh keep $(LOGS) $(EXPORTS)

# ---- contractor permit leads: fetch -> flatten -> normalize -> trades -> score -> tier -> exports ----
# Every row of stages/fetch/permit-sources.csv is a source: a new city is one column map
# (stages/flatten/permits-<city>.csv) and one row, with no change here. Each source's permits
# are fetched since its watermark and flattened with the row's map, then all sources go
# through one chain; every stage's output stays in $(PERMITS)/ for diffing, and the exports
# tree under $(EXPORTS)/ keeps every scored permit not yet sold or delivered.
# `make permits` runs every row of kind files (offline: the bundled fixtures are the week of
# 2016-03-07, so their clock is PERMITS_NOW, that week's end); `make permits PERMITS_LIVE=1`
# runs every row, live ones (Socrata) included, on the real clock (or NOW);
# PERMIT_SOURCES="austin dallas" picks rows by name.

PERMITS        := $(LOGS)/permits
PERMITS_NOW    ?= 2016-03-14T06:00:00Z
PERMITS_LIVE   ?=
# source|kind|map|location of each row (the cells hold no commas or spaces).
permit_rows    := $(shell awk -F, '/^[ \t]*\#/ || NF < 8 { next } !seen++ { next } { print $$1 "|" $$2 "|" $$8 "|" $$3 }' stages/fetch/permit-sources.csv)
permit_cell     = $(word $2,$(subst |, ,$(filter $1|%,$(permit_rows))))
PERMIT_SOURCES ?= $(foreach r,$(permit_rows),$(if $(or $(PERMITS_LIVE),$(filter files,$(word 2,$(subst |, ,$r)))),$(word 1,$(subst |, ,$r))))
permit_map      = stages/flatten/$(call permit_cell,$1,3)
permit_kind     = $(call permit_cell,$1,2)
permits_now     = $(if $(PERMITS_LIVE),$(live_now),--now $(or $(NOW),$(PERMITS_NOW)))
PERMIT_FLAT    := $(PERMIT_SOURCES:%=$(PERMITS)/flattened-%.jsonl)
PERMIT_RULES   := stages/tag/trades.csv stages/tag/commercial.csv $(wildcard stages/score/permit-*.csv stages/tier/*.csv)
REASONER       ?=
REASONER_TIMEOUT ?= 30

.PHONY: permits permits-retry permits-live-fetch
# The fetched rows are a stage output like the others: kept, never treated as intermediate.
.SECONDARY: $(PERMIT_SOURCES:%=$(PERMITS)/raw-%.jsonl)
permits: $(PERMITS)/report.json

settle-permits: $(BIN)/.built
	@$(BIN)/lead-cleanup stores -q $(PERMITS) $(EXPORTS)

# A files source is fetched again when its files change; a live one on every run.
permits-live-fetch:
$(PERMITS)/raw-%.jsonl: $$(if $$(filter files,$$(call permit_kind,$$*)),$$(wildcard $$(call permit_cell,$$*,4)/*.csv),permits-live-fetch) \
		stages/fetch/permit-sources.csv $(BIN)/.built | settle-permits
	$(BIN)/lead-fetch permits --source $* --state $(PERMITS)/fetch-$*.json $(permits_now) -o $@

$(PERMITS)/flattened-%.jsonl: $(PERMITS)/raw-%.jsonl $$(call permit_map,$$*)
	$(BIN)/lead-flatten permits --schema permits-flattened --map $(call permit_map,$*) --logs $(LOGS) $(permits_now) $< -o $@

# SHARDS=N (with make -j N): the per-record stages (normalize, trades, score, tier) run in N
# shards, each over its part of the flattened permits (split by lines, in order), then the
# parts are joined in order, so every stage file is the one a plain run writes; each shard's
# rejects are gathered into the stage's rejects file. The export runs in N shards too, each
# placing the permits of the trades it owns (lead-export permits --shard), then
# --join-shards makes the store and the tree of their parts; the store and the tree stay
# locked from the first shard to the join.
SHARDS ?=
reasoner_opts = $(if $(REASONER),--reasoner $(REASONER) --reasoner-timeout $(REASONER_TIMEOUT))
ifeq ($(SHARDS),)
$(PERMITS)/report.json: $(PERMIT_FLAT) $(PERMIT_RULES) $(wildcard stages/normalize/*.csv) | settle-permits
	$(BIN)/lead-normalize --schema permits-normalized $(permits_now) $(PERMIT_FLAT) -o $(PERMITS)/normalized.jsonl
	$(BIN)/lead-tag trades --schema permits-tagged $(permits_now) $(PERMITS)/normalized.jsonl -o $(PERMITS)/tagged.jsonl
	$(BIN)/lead-score permits --schema permits-scored $(permits_now) $(reasoner_opts) $(PERMITS)/tagged.jsonl -o $(PERMITS)/scored.jsonl
	$(BIN)/lead-tier --schema permits-tiered $(permits_now) $(PERMITS)/scored.jsonl -o $(PERMITS)/tiered.jsonl
	$(BIN)/lead-export permits $(permits_now) --dir $(EXPORTS) --logs $(LOGS) $(PERMITS)/tiered.jsonl
else
SHARD_IDS    := $(shell seq 1 $(SHARDS))
SHARD_DIR    := $(PERMITS)/shards
SHARD_TIERED := $(SHARD_IDS:%=$(SHARD_DIR)/tiered-%.jsonl)
.PRECIOUS: $(SHARD_DIR)/flattened.jsonl $(SHARD_TIERED)
$(SHARD_DIR)/flattened.jsonl: $(PERMIT_FLAT) | settle-permits
	@umask 077 && mkdir -p $(@D) && cat $(PERMIT_FLAT) > $@.part && mv $@.part $@
# Shards side by side share the cores: cores / SHARDS worker threads each.
$(SHARD_DIR)/tiered-%.jsonl: export LEAD_THREADS = $(shell n=$$(( $$(nproc) / $(SHARDS) )); [ $$n -ge 1 ] || n=1; echo $$n)
$(SHARD_DIR)/tiered-%.jsonl: $(SHARD_DIR)/flattened.jsonl $(PERMIT_RULES) $(wildcard stages/normalize/*.csv)
	@umask 077 && split -n l/$*/$(SHARDS) $< > $(SHARD_DIR)/in-$*.jsonl
	$(BIN)/lead-normalize --schema permits-normalized --shard $*/$(SHARDS) $(permits_now) $(SHARD_DIR)/in-$*.jsonl -o $(SHARD_DIR)/normalized-$*.jsonl
	$(BIN)/lead-tag trades --schema permits-tagged --shard $*/$(SHARDS) $(permits_now) $(SHARD_DIR)/normalized-$*.jsonl -o $(SHARD_DIR)/tagged-$*.jsonl
	$(BIN)/lead-score permits --schema permits-scored --shard $*/$(SHARDS) $(permits_now) $(reasoner_opts) $(SHARD_DIR)/tagged-$*.jsonl -o $(SHARD_DIR)/scored-$*.jsonl
	$(BIN)/lead-tier --schema permits-tiered --shard $*/$(SHARDS) $(permits_now) $(SHARD_DIR)/scored-$*.jsonl -o $@
$(PERMITS)/report.json: $(SHARD_TIERED) | settle-permits
	scripts/join-shards.sh $(SHARDS) $(PERMITS) normalized tagged scored tiered
	scripts/locked.sh $(EXPORTS) -- scripts/locked.sh $(PERMITS) -- sh -c '\
	now="$(or $(permits_now),--now $$(date -u +%Y-%m-%dT%H:%M:%SZ))" && \
	scripts/in-shards.sh $(SHARDS) -- $(BIN)/lead-export permits --shard @i@/@n@ $$now --dir $(EXPORTS) --logs $(LOGS) $(PERMITS)/tiered.jsonl && \
	$(BIN)/lead-export permits --join-shards $(SHARDS) $$now --dir $(EXPORTS) --logs $(LOGS)'
	@umask 077; r=$$(ls lead-export.rejects.shard-*-of-$(SHARDS).jsonl 2>/dev/null || true); \
	if [ -n "$$r" ]; then cat $$r > lead-export.rejects.jsonl.part && mv lead-export.rejects.jsonl.part lead-export.rejects.jsonl && rm -f $$r; fi
endif

# The retry cron job: the permits waiting in the retry queue (their own records, whatever run
# they came from) scored again with REASONER, into their tiers; on the real clock, or NOW.
permits-retry: build
	@test -n "$(REASONER)" || { echo "make permits-retry needs REASONER=<command>" >&2; exit 2; }
	$(BIN)/lead-score permits --schema permits-scored $(live_now) --reasoner $(REASONER) --reasoner-timeout $(REASONER_TIMEOUT) --retry-from $(LOGS) \
		-o $(PERMITS)/retried.jsonl
	$(BIN)/lead-tier --schema permits-tiered $(live_now) $(PERMITS)/retried.jsonl -o $(PERMITS)/retried-tiered.jsonl
	$(BIN)/lead-export permits $(live_now) --dir $(EXPORTS) --logs $(LOGS) $(PERMITS)/retried-tiered.jsonl

# ---- engagement events: fetch -> flatten -> score -> export, one run per export, in order ----
# Each run fetches the events of its window (the watermark in $(EVENTS)/state.json to its
# clock) from a PostHog export in fixtures/events/, and lead-export events appends its lead
# records and upserts the hourly analytics; its stage files stay in $(EVENTS)/run-N/. The
# runs are applied with --force: make reruns one only when its inputs changed, and then the
# run's rows are replaced, never added twice; a later run follows.

EVENTS         := $(LOGS)/events
EVENTS_NOW_1   ?= 2025-01-16T12:30:00Z
EVENTS_NOW_2   ?= 2025-01-18T00:00:00Z
EVENT_EXPORT_1 := fixtures/events/export-1.jsonl
EVENT_EXPORT_2 := fixtures/events/export-2.json
EVENT_RULES    := stages/fetch/events.csv stages/flatten/events.csv stages/flatten/event-fields.csv stages/score/event-weights.csv

.PHONY: events
events: $(EVENTS)/run-2/report.json

settle-events: $(BIN)/.built
	@$(BIN)/lead-cleanup stores -q $(EVENTS)

# SHARDS=N: lead-score events runs in N shards side by side, each over the whole run keeping
# the listings that hash to it (the run record with shard 1); the parts are joined in shard
# order. The export runs in N shards by listing too (lead-export events --shard), and
# --join-shards applies the run from their parts, the store locked from the first shard to
# the join; their rejects are gathered into the run's. Fetch and flatten run once.
ifeq ($(SHARDS),)
event_score = $(BIN)/lead-score events --schema events-scored --now $(EVENTS_NOW_$1) $(EVENTS)/run-$1/flattened.jsonl -o $(EVENTS)/run-$1/scored.jsonl
event_export = $(BIN)/lead-export events --force --now $(EVENTS_NOW_$1) --dir $(EVENTS) $(EVENTS)/run-$1/scored.jsonl -o $(EVENTS)/run-$1/report.json
else
event_export = scripts/locked.sh $(EVENTS) -- sh -c '\
	scripts/in-shards.sh $(SHARDS) -- $(BIN)/lead-export events --force --shard @i@/@n@ --now $(EVENTS_NOW_$1) --dir $(EVENTS) $(EVENTS)/run-$1/scored.jsonl -o $(EVENTS)/run-$1/shards/export-@i@.json && \
	$(BIN)/lead-export events --join-shards $(SHARDS) --now $(EVENTS_NOW_$1) --dir $(EVENTS) -o $(EVENTS)/run-$1/report.json' && \
	umask 077 && r=$$$$(ls $(EVENTS)/run-$1/shards/export-*.rejects.shard-*-of-$(SHARDS).jsonl 2>/dev/null || true) && \
	if [ -n "$$$$r" ]; then cat $$$$r > $(EVENTS)/run-$1/report.rejects.jsonl.part && mv $(EVENTS)/run-$1/report.rejects.jsonl.part $(EVENTS)/run-$1/report.rejects.jsonl && rm -f $$$$r; fi
event_score = umask 077 && mkdir -p $(EVENTS)/run-$1/shards && \
	scripts/in-shards.sh $(SHARDS) -- $(BIN)/lead-score events --schema events-scored --shard @i@/@n@ --now $(EVENTS_NOW_$1) $(EVENTS)/run-$1/flattened.jsonl -o $(EVENTS)/run-$1/shards/scored-@i@.jsonl && \
	scripts/join-shards.sh $(SHARDS) $(EVENTS)/run-$1 scored
endif

# $1: the run; $2: the run before it.
define event_run
$(EVENTS)/run-$1/report.json: $(EVENT_EXPORT_$1) $(EVENT_RULES) $(BIN)/.built $(if $2,$(EVENTS)/run-$2/report.json) | settle-events
	$(BIN)/lead-fetch events --schema events-fetched --from $(EVENT_EXPORT_$1) --state $(EVENTS)/state.json --now $(EVENTS_NOW_$1) -o $(EVENTS)/run-$1/fetched.jsonl
	$(BIN)/lead-flatten events --schema events-flattened --now $(EVENTS_NOW_$1) $(EVENTS)/run-$1/fetched.jsonl -o $(EVENTS)/run-$1/flattened.jsonl
	$(call event_score,$1)
	$(call event_export,$1)
endef
$(eval $(call event_run,1,))
$(eval $(call event_run,2,1))

# ---- the same pipelines under Apache Spark (pyspark in local mode; scripts/deps.sh spark) ----
# The fetches and flattens of provider files run as in the plain targets; the chains after
# them run under Spark (scripts/spark-run.py): each partition streamed through the stage as
# RDD.pipe does, as shard i of n, keyed stages partitioned by their key, the exports as n
# shards joined by the driver. They leave the plain targets' outputs (in another order where
# a stage groups by key).
SPARK_PARTITIONS ?= 2
SPARK_BIN   = $(abspath $(BIN))
SPARK_RUN   = SPARK_PARTITIONS=$(SPARK_PARTITIONS) python3 scripts/spark-run.py
.PHONY: spark-permits spark-leads spark-events
spark-permits: $(PERMIT_FLAT) $(PERMIT_RULES) | settle-permits
	$(SPARK_RUN) chain --out $(PERMITS) --input $(PERMIT_FLAT) \
	  --step "normalized.jsonl=$(SPARK_BIN)/lead-normalize --schema permits-normalized $(permits_now)" \
	  --step "tagged.jsonl=$(SPARK_BIN)/lead-tag trades --schema permits-tagged $(permits_now)" \
	  --step "scored.jsonl=$(SPARK_BIN)/lead-score permits --schema permits-scored $(permits_now) $(reasoner_opts)" \
	  --step "tiered.jsonl=$(SPARK_BIN)/lead-tier --schema permits-tiered $(permits_now)"
	now="$(or $(permits_now),--now $$(date -u +%Y-%m-%dT%H:%M:%SZ))" && \
	scripts/locked.sh $(EXPORTS) -- scripts/locked.sh $(PERMITS) -- env $(SPARK_RUN) shards --partitions $(SPARK_PARTITIONS) --out $(PERMITS) \
	  --rejects $(abspath lead-export.rejects.jsonl) \
	  --then "$(BIN)/lead-export permits --join-shards $(SPARK_PARTITIONS) $$now --dir $(EXPORTS) --logs $(LOGS)" \
	  -- $(SPARK_BIN)/lead-export permits $$now --dir $(abspath $(EXPORTS)) --logs $(abspath $(LOGS)) $(abspath $(PERMITS))/tiered.jsonl

spark-leads: $(LEAD_IMPORTS) $(LEAD_RULES) | settle-leads
	scripts/locked.sh $(LEADS) -- sh -c '$(SPARK_RUN) dedupe --out $(LEADS) --name normalized.jsonl \
	  --step "tagged.jsonl=$(SPARK_BIN)/lead-tag leads --schema leads $(leads_now)" \
	  --step "leads.jsonl=$(SPARK_BIN)/lead-score tags --schema leads $(leads_now)" \
	  -- $(SPARK_BIN)/lead-normalize --dedupe --schema leads --master $(abspath $(LEADS))/leads.jsonl --logs $(abspath $(LOGS)) $(leads_now) $(abspath $(LEAD_IMPORTS))'
	$(MAKE) --no-print-directory lists $(LEADS)/expiring.jsonl

# $1: the run; $2: the run before it.
define spark_event_run
spark-events-$1: $(EVENT_EXPORT_$1) $(EVENT_RULES) $(BIN)/.built $(if $2,spark-events-$2) | settle-events
	$(BIN)/lead-fetch events --schema events-fetched --from $(EVENT_EXPORT_$1) --state $(EVENTS)/state.json --now $(EVENTS_NOW_$1) -o $(EVENTS)/run-$1/fetched.jsonl
	$(SPARK_RUN) chain --out $(EVENTS)/run-$1 --input $(EVENTS)/run-$1/fetched.jsonl \
	  --step "flattened.jsonl=$(SPARK_BIN)/lead-flatten events --schema events-flattened --now $(EVENTS_NOW_$1)"
	$(SPARK_RUN) keyed --key listing_id --run-id-from $(EVENTS)/run-$1/fetched.jsonl --out $(EVENTS)/run-$1 --input $(EVENTS)/run-$1/flattened.jsonl \
	  --step "scored.jsonl=$(SPARK_BIN)/lead-score events --schema events-scored --now $(EVENTS_NOW_$1)"
	scripts/locked.sh $(EVENTS) -- env $(SPARK_RUN) shards --partitions $(SPARK_PARTITIONS) --out $(EVENTS)/run-$1 \
	  --rejects $(abspath $(EVENTS)/run-$1/report.rejects.jsonl) \
	  --then "$(BIN)/lead-export events --join-shards $(SPARK_PARTITIONS) --now $(EVENTS_NOW_$1) --dir $(EVENTS) -o $(EVENTS)/run-$1/report.json" \
	  -- $(SPARK_BIN)/lead-export events --force --now $(EVENTS_NOW_$1) --dir $(abspath $(EVENTS)) $(abspath $(EVENTS))/run-$1/scored.jsonl
endef
$(eval $(call spark_event_run,1,))
$(eval $(call spark_event_run,2,1))
spark-events: spark-events-2
.PHONY: spark-events-1 spark-events-2

# The run report's source: each stage adds its summary line to its pipeline's summary log,
# <logs>/<pipeline>/summaries.jsonl (LEAD_SUMMARIES), the listings' to <logs>/listings/.
# Store settling is bookkeeping, not a step of the funnel: it logs nothing.
$(LOGS)/active/% $(LOGS)/closed/% $(LOGS)/expired/% cleanup: export LEAD_SUMMARIES = $(LOGS)/listings/summaries.jsonl
$(LEADS)/% $(EXPORTS)/lists/% rescore spark-leads: export LEAD_SUMMARIES = $(LEADS)/summaries.jsonl
$(PERMITS)/% permits-retry spark-permits: export LEAD_SUMMARIES = $(PERMITS)/summaries.jsonl
$(EVENTS)/% spark-events-%: export LEAD_SUMMARIES = $(EVENTS)/summaries.jsonl
settle-listings settle-leads settle-permits settle-events: export LEAD_SUMMARIES =

# Every stage writes its outputs atomically and its stores commit as one: a run killed half
# way leaves whole files (old or new), so make must never delete a target of a killed recipe
# (it would throw away a change the store has committed, and the next run would redo it).
.PRECIOUS: $(foreach p,$(LISTING_PIPELINES),$(call raw_of,$p) $(call flat_of,$p) $(call index_of,$p)) \
	$(LEAD_IMPORTS) $(LEADS)/leads.jsonl $(LEADS)/expiring.jsonl $(SMART_LISTS:%=$(EXPORTS)/lists/%.csv) \
	$(PERMIT_SOURCES:%=$(PERMITS)/raw-%.jsonl) $(PERMIT_FLAT) $(PERMITS)/report.json \
	$(EVENTS)/run-1/report.json $(EVENTS)/run-2/report.json

# The run report: one HTML page of what the runs left (their summary logs, rejects and
# outputs, against the kept earlier runs), $(LOGS)/report.html; it needs no network to view.
.PHONY: report
report: $(BIN)/.built
	$(BIN)/lead-export report --logs $(LOGS) -o $(LOGS)/report.html

# The database: the staged tree loaded into $(LOGS)/leadetl.sqlite (tables of
# stages/export/db-tables.csv, views of db-views.sql), only the rows that changed, atomically.
.PHONY: db
db: $(BIN)/.built
	$(BIN)/lead-export db --logs $(LOGS) --to $(LOGS)/leadetl.sqlite

# What the last run changed: each stage file against the newest kept run that differs
# (kept in $(LOGS)/_previous/ after every make; keys per file in stages/diff/keys.csv).
.PHONY: diff
diff: build
	@LEAD_BIN=$(BIN) scripts/previous.sh diff $(LOGS) $(EXPORTS)

# ---- tests ----------------------------------------------------------------

test: build
	@scripts/deps.sh test
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

# The address standardiser side by side with usaddress-scourgify on the labelled sets.
bench-addresses: build
	@scripts/deps.sh bench
	@python3 -c "import scourgify" 2>/dev/null || pip install -q usaddress-scourgify
	@mkdir -p bench/data/addresses
	@swift build -c release --build-tests -q
	@LEAD_ADDRESS_REPORT=$(CURDIR)/bench/data/addresses LEAD_BIN=$(CURDIR)/.build/release swift test -c release --skip-build --filter labelledAddresses -q >/dev/null
	@python3 bench/addresses.py bench/data/addresses

clean:
	rm -rf .build local-logs exports bench/data

# Man pages (from the argument parser, by swift-argument-parser's generate-manual plugin)
# and bash, zsh and fish completions, into $(BIN)/man and $(BIN)/completions.
MAN_DIR  := $(BIN)/man
COMP_DIR := $(BIN)/completions
PROGRAMS := $(STAGES:%=lead-%)
.PHONY: man completions uninstall
man: $(BIN)/.built
	@mkdir -p $(MAN_DIR)
	$(SWIFT) package --allow-writing-to-directory $(MAN_DIR) generate-manual --output-directory $(MAN_DIR) >/dev/null
completions: $(BIN)/.built
	@mkdir -p $(COMP_DIR)/bash $(COMP_DIR)/zsh $(COMP_DIR)/fish
	@for p in $(PROGRAMS); do \
		$(BIN)/$$p --generate-completion-script bash >$(COMP_DIR)/bash/$$p && \
		$(BIN)/$$p --generate-completion-script zsh >$(COMP_DIR)/zsh/_$$p && \
		$(BIN)/$$p --generate-completion-script fish >$(COMP_DIR)/fish/$$p.fish || exit 1; \
	done

# The stages, their man pages, completions and rules, installed: PREFIX/bin/lead-* find
# their rules in PREFIX/share/leadetl/stages (or $$LEAD_STAGES, or stages/ in the working
# directory). With LEAD_PREBUILT=1 the man pages are installed if `make man` made them.
PREFIX ?= /usr/local
DEST   := $(DESTDIR)$(PREFIX)
install: $(BIN)/.built completions $(if $(LEAD_PREBUILT),,man)
	install -d $(DEST)/bin $(DEST)/share/leadetl $(DEST)/share/man/man1 $(DEST)/share/bash-completion/completions \
		$(DEST)/share/zsh/site-functions $(DEST)/share/fish/vendor_completions.d
	install -m 0755 $(BINARIES) $(DEST)/bin/
	rm -rf $(DEST)/share/leadetl/stages
	cp -R stages $(DEST)/share/leadetl/stages
	chmod -R u=rwX,go=rX $(DEST)/share/leadetl/stages
	install -m 0644 VERSION $(DEST)/share/leadetl/VERSION
	@if ls $(MAN_DIR)/*.1 >/dev/null 2>&1; then install -m 0644 $(MAN_DIR)/*.1 $(DEST)/share/man/man1/; fi
	install -m 0644 $(COMP_DIR)/bash/* $(DEST)/share/bash-completion/completions/
	install -m 0644 $(COMP_DIR)/zsh/* $(DEST)/share/zsh/site-functions/
	install -m 0644 $(COMP_DIR)/fish/* $(DEST)/share/fish/vendor_completions.d/

uninstall:
	rm -f $(PROGRAMS:%=$(DEST)/bin/%) $(PROGRAMS:%=$(DEST)/share/man/man1/%.1) \
		$(PROGRAMS:%=$(DEST)/share/man/man1/%.*.1) $(PROGRAMS:%=$(DEST)/share/bash-completion/completions/%) \
		$(PROGRAMS:%=$(DEST)/share/zsh/site-functions/_%) $(PROGRAMS:%=$(DEST)/share/fish/vendor_completions.d/%.fish)
	rm -rf $(DEST)/share/leadetl
