# gworker's tasks. "make test" is the single entry point for CI (.ci/run).

GO ?= go
# Pinned; see `go list -m -versions honnef.co/go/tools`.
STATICCHECK_VERSION ?= v0.8.2
# How long `make fuzz` runs each fuzz target.
FUZZTIME ?= 10s

# Where scripts/ensure-node.sh installs Node 22 and graphile-worker for the
# interop tests (package interop), which read GWORKER_NODE_DIR: outside the
# repository, so a fresh clone on the same machine reuses it.
GWORKER_CACHE_DIR ?= $(HOME)/.cache/gworker
GWORKER_NODE_DIR ?= $(GWORKER_CACHE_DIR)/node
export GWORKER_NODE_DIR

.PHONY: all test postgres pgbouncer node chromium vet build lint demo fuzz

all: build

## test: install PostgreSQL, PgBouncer and the Node side of the interop tests if missing, then vet and run every test with -race
## (GWORKER_SKIP_NODE_INTEROP=1 skips the tests against Node graphile-worker, and says so)
test: postgres pgbouncer node chromium
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 10s ./cronspec/
	@if [ "$${GWORKER_SKIP_NODE_INTEROP:-}" = 1 ]; then \
		echo "make test: GWORKER_SKIP_NODE_INTEROP=1: the interop tests against Node graphile-worker 0.18 were SKIPPED"; fi

## postgres: make sure the PostgreSQL server binaries the tests need are installed
postgres:
	@scripts/ensure-postgres.sh

## pgbouncer: make sure the pgbouncer binary the PgBouncer tests (package pgbouncer) start is installed
pgbouncer:
	@scripts/ensure-pgbouncer.sh

## chromium: make sure a headless Chromium for the admin page's browser tests is installed
chromium:
	@scripts/ensure-chromium.sh

## node: install Node 22 and the pinned graphile-worker releases into $(GWORKER_NODE_DIR) if missing (npm registry)
node:
	@scripts/ensure-node.sh

vet:
	$(GO) vet ./...

## build: compile every package and command
build:
	$(GO) build ./...

## lint: gofmt, go vet and staticcheck
lint:
	@unformatted=$$(gofmt -l .); \
	if [ -n "$$unformatted" ]; then echo "gofmt -l: these files need formatting:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## demo: 5,000 jobs through a worker, on a throwaway PostgreSQL unless DATABASE_URL is set
demo: postgres
	$(GO) run ./examples/demo

## fuzz: run each fuzz target briefly (FUZZTIME each)
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' "$$pkg" | grep '^Fuzz' || true); do \
			echo "fuzz: $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
		done; \
	done

# Where `make chaos` writes its results table (Markdown).
CHAOS_REPORT ?= chaos-report.md

.PHONY: chaos

## chaos: the fault suite's long variant (package faults, GWORKER_CHAOS=1): longer and repeated
## database faults, heavier load over more worker processes; bounded, it ends by itself and
## writes the table of docs/reliability.md to CHAOS_REPORT
chaos: postgres
	GWORKER_CHAOS=1 GWORKER_FAULTS_REPORT=$(abspath $(CHAOS_REPORT)) $(GO) test -count=1 -timeout 45m -v -run . ./faults/
