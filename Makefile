# Herald — see README.md. `make run` starts a development server on
# http://localhost:8080/; `make test` runs every test.

GO       ?= go
BIN      ?= bin/herald
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/heraldhq/herald/server.Version=$(VERSION)
export CGO_ENABLED := 1

# Node packages used by tests (independent verifiers and clients).
NODE_TEST_DIRS := signing/testdata/node server/testdata/node server/testdata/axe
NODE_STAMPS    := $(addsuffix /node_modules/.package-lock.json,$(NODE_TEST_DIRS))

.PHONY: all build run test testdeps lint generate migration migration-hash assets bench clean

# Flags for the end-to-end benchmark, e.g. BENCH_FLAGS="--quick" or
# BENCH_FLAGS="--scenarios throughput --scale 2".
BENCH_FLAGS ?=

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/herald

run:
	$(GO) run -ldflags '$(LDFLAGS)' ./cmd/herald serve --dev

test: testdeps
	$(GO) test -race -count=1 -timeout 14m ./...

# Installs the test's node packages from their lockfiles when node is present.
testdeps: $(NODE_STAMPS)

%/node_modules/.package-lock.json: %/package-lock.json %/package.json
	@if command -v npm >/dev/null 2>&1; then \
		echo "npm ci in $*"; cd $* && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: tests that need node will be skipped"; fi

lint:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './ent/*' -not -path '*/node_modules/*') ent/schema ent/entc.go); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Regenerates ent (and graph/ent.graphqls) and gqlgen output.
generate:
	$(GO) run -mod=mod ./ent/entc.go
	$(GO) run -mod=mod github.com/99designs/gqlgen generate

# After a change to ent/schema: regenerates ent's code and writes the
# versioned migrations (SQLite and PostgreSQL, in db/migrations) that take
# the database there, e.g. `make migration name=add_app_quotas`. The files
# only add and change (expand); contract=1 also drops what ent/schema no
# longer has, a release after the code stopped using it. See
# docs/upgrading.md. The PostgreSQL one is planned on a throwaway cluster.
migration:
	@test -n "$(name)" || { echo "usage: make migration name=what_changed (e.g. name=add_app_quotas) [contract=1]"; exit 2; }
	$(MAKE) --no-print-directory generate
	$(GO) run ./internal/cmd/newmigration -name '$(name)' $(if $(contract),-contract)

# Rewrites db/migrations/*/atlas.sum after a migration was edited by hand.
migration-hash:
	$(GO) run ./internal/cmd/newmigration -rehash

# Runs the end-to-end benchmark (herald and a receiver in separate
# processes, load through the GraphQL API; results in
# bench/results/latest.json), then the Go micro-benchmarks.
bench: build
	$(GO) build -o bin/herald-bench ./cmd/herald-bench
	./bin/herald-bench --herald $(BIN) $(BENCH_FLAGS)
	$(GO) test -run '^$$' -bench . -benchmem ./signing ./bus ./dispatch ./metrics ./stats

# Re-vendors GraphiQL and the console's browser assets from npm, and
# builds the customer portal (server/webui/app) with Vite.
assets:
	./server/webui/vendor.sh
	./server/webui/app/build.sh

clean:
	rm -rf bin
