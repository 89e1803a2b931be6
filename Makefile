# gworker's tasks. "make test" is the single entry point for CI (.ci/run).

GO ?= go
# Pinned; see `go list -m -versions honnef.co/go/tools`.
STATICCHECK_VERSION ?= v0.8.2
# How long `make fuzz` runs each fuzz target.
FUZZTIME ?= 10s

.PHONY: all test postgres vet build lint demo fuzz

all: build

## test: install PostgreSQL if missing (root + apt only), then vet and run every test with -race
test: postgres
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 10s ./cronspec/

## postgres: make sure the PostgreSQL server binaries the tests need are installed
postgres:
	@scripts/ensure-postgres.sh

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
