# Herald — see README.md. `make run` starts a development server on
# http://localhost:8080/; `make test` runs every test.

GO       ?= go
BIN      ?= bin/herald
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X github.com/heraldhq/herald/server.Version=$(VERSION)
export CGO_ENABLED := 1

# Node packages used by tests (independent verifiers and clients).
NODE_TEST_DIRS := signing/testdata/node server/testdata/node server/testdata/axe sdk/typescript api/compat examples/node
NODE_STAMPS    := $(addsuffix /node_modules/.package-lock.json,$(NODE_TEST_DIRS))

.PHONY: all build run test testdeps fuzz-short fuzz lint generate migration migration-hash image image-test size assets bench clean

# Flags for the end-to-end benchmark, e.g. BENCH_FLAGS="--quick" or
# BENCH_FLAGS="--scenarios throughput --scale 2".
BENCH_FLAGS ?=

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/herald

run:
	$(GO) run -ldflags '$(LDFLAGS)' ./cmd/herald serve --dev

# The image test (deploy/image) builds the container image: it runs on its
# own after the rest, so that its build does not compete with timing-sensitive
# tests for the CPU.
test: testdeps
	$(GO) test -race -count=1 -timeout 14m $$($(GO) list ./... | grep -v '/deploy/image$$')
	$(GO) test -count=1 -timeout 10m ./deploy/image
	$(MAKE) --no-print-directory fuzz-short

# Fuzz targets: package:target:inputs. make test runs each for its count
# of inputs, a few seconds each; make fuzz runs each for FUZZTIME. The
# short run counts inputs rather than time: with a duration, Go 1.26's
# fuzzing coordinator can fail a target with a bare "context deadline
# exceeded" when the time is up while a busy machine's worker is still on
# an input (go.dev/issue/75804, fixed in Go 1.27); a count has no deadline.
FUZZ_TARGETS := ./filter:FuzzFilter:150000 ./filter:FuzzDecode_MakesWhatEncodingJSONMakes:100000 ./server:FuzzScopes:500 ./graph/scalar:FuzzJSON:50000 ./dispatch:FuzzEnvelope:200
FUZZTIME ?= 10m

fuzz-short:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; n=$${rest#*:}; \
		echo "fuzz $$name ($$n inputs)"; \
		out=$$($(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime "$${n}x" "$$pkg" 2>&1) || { \
			echo "$$out" | tail -60; exit 1; }; \
	done

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; \
		echo "fuzz $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) "$$pkg" || exit 1; \
	done

# Installs the test's node packages from their lockfiles when node is
# present, and builds the TypeScript client (the Node examples use it).
testdeps: $(NODE_STAMPS) sdk/typescript/dist/index.js

SDK_TS_SRC := $(wildcard sdk/typescript/src/*.ts sdk/typescript/src/generated/*.ts) sdk/typescript/tsconfig.json

sdk/typescript/dist/index.js: sdk/typescript/node_modules/.package-lock.json $(SDK_TS_SRC)
	@if command -v node >/dev/null 2>&1; then \
		echo "building sdk/typescript"; cd sdk/typescript && node node_modules/typescript/bin/tsc -p tsconfig.json; \
	fi

# The Node examples install the TypeScript client from its directory.
examples/node/node_modules/.package-lock.json: sdk/typescript/dist/index.js

%/node_modules/.package-lock.json: %/package-lock.json %/package.json
	@if command -v npm >/dev/null 2>&1; then \
		echo "npm ci in $*"; cd $* && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: tests that need node will be skipped"; fi

lint:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './ent/*' -not -path '*/node_modules/*') ent/schema ent/entc.go); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Regenerates ent (and graph/ent.graphqls), the destination types' GraphQL
# (graph/destinations.graphqls, from their specs), gqlgen output, the Go
# client's operations (genqlient) and the TypeScript client's operation
# types (GraphQL Code Generator, installed from sdk/typescript's lockfile).
generate: sdk/typescript/node_modules/.package-lock.json
	$(GO) run -mod=mod ./ent/entc.go
	$(GO) run ./internal/gendest graph/destinations.graphqls
	$(GO) run -mod=mod github.com/99designs/gqlgen generate
	$(GO) run -mod=mod github.com/Khan/genqlient client/genqlient.yaml
	cd sdk/typescript && node node_modules/@graphql-codegen/cli/cjs/bin.js --config codegen.ts

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
	$(GO) test -run '^$$' -bench . -benchmem ./signing ./bus ./dispatch ./metrics ./stats ./client

# The container image (Dockerfile), with podman or docker, whichever is
# installed. GO_IMAGE is the build stage's base; where registries cannot be
# reached, deploy/image/go-builder.sh makes one from Debian's packages
# (CI does: see .ci/run). IMAGE_BUILD_FLAGS go to the engine's build, e.g.
# --isolation=chroot for podman where containers cannot run.
IMAGE             ?= localhost/herald:$(VERSION)
GO_IMAGE          ?= docker.io/library/golang:1.26.8-bookworm
ENGINE            ?= $(shell command -v podman 2>/dev/null || command -v docker 2>/dev/null)
IMAGE_BUILD_FLAGS ?=
image:
	@test -n "$(ENGINE)" || { echo "make image needs podman or docker"; exit 1; }
	$(ENGINE) build $(IMAGE_BUILD_FLAGS) --build-arg GO_IMAGE=$(GO_IMAGE) \
		--build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) -t $(IMAGE) .

# Runs the image as a real container (where a container runtime works, as
# on a laptop): it must start, answer /readyz, and stop cleanly on SIGTERM.
image-test: image
	./deploy/image/container-test.sh $(ENGINE) $(IMAGE)

# Builds the image's binary with its symbols and says which modules make
# it big (internal/cmd/binsize).
size:
	$(GO) build -trimpath -tags 'netgo osusergo timetzdata sqlite_omit_load_extension' \
		-ldflags '-extldflags=-static' -o bin/herald-static-syms ./cmd/herald
	$(GO) run ./internal/cmd/binsize bin/herald-static-syms

# Re-vendors GraphiQL's browser assets from npm, and builds the web app
# (the console and the customer portal, server/webui/app) with Vite.
assets:
	./server/webui/vendor.sh
	./server/webui/app/build.sh

clean:
	rm -rf bin
