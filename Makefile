# msctl developer targets. Tools are pinned and installed once into a cache
# outside the work tree, keyed by version.

GO          ?= go
MODULE      := github.com/msctl/msctl
BIN         := bin
CACHE_DIR   ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/msctl
TOOLS_DIR   := $(CACHE_DIR)/tools

VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
DATE        ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS     := -s -w \
	-X $(MODULE)/internal/buildinfo.version=$(VERSION) \
	-X $(MODULE)/internal/buildinfo.commit=$(COMMIT) \
	-X $(MODULE)/internal/buildinfo.date=$(DATE)

STATICCHECK_VERSION := v0.8.2
GORELEASER_VERSION  := v2.13.0
STATICCHECK := $(TOOLS_DIR)/staticcheck-$(STATICCHECK_VERSION)/staticcheck
GORELEASER  := $(TOOLS_DIR)/goreleaser-$(GORELEASER_VERSION)/goreleaser

# How long the whole test run may take; CI has 90 minutes.
TEST_TIMEOUT ?= 40m

.PHONY: all build demo demo-cluster local local-check test test-go test-unit lint deps completions proto proto-check testcluster testcluster-prepare snapshot release-check clean

all: build

## build: compile msctl into bin/
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/msctl ./cmd/msctl

## demo: the main job on one machine: msctl up, an order, a bad canary rolled back, a good one promoted, msctl down
demo:
	@bash hack/demo.sh

## demo-cluster: deploy the bundled project to a local Kubernetes control plane and show it
demo-cluster:
	@bash hack/demo-cluster.sh

## local: run the four bundled services together (SQLite) and place an order over HTTP
local:
	@bash hack/local.sh

## deps: install what the tests need (Debian packages) and start PostgreSQL
deps:
	@bash hack/deps.sh

## test: everything CI runs: lint, the Go tests (race detector on), release config check
test: deps lint proto-check testcluster-prepare test-go bench-check local-check demo release-check

# The README's command for the four services must keep placing an order.
local-check:
	@bash hack/local.sh --once > /dev/null

# Tests talk to real servers, so results are never taken from Go's cache.
test-go:
	MSCTL_REQUIRE_INTEGRATION=1 $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

## test-unit: the fast tier, no servers and no builds of the services (about a minute warm)
test-unit:
	$(GO) test -short ./...

# Every benchmark once, briefly (-short), so the ones docs/benchmarks.md
# quotes keep working; the figures come from hack/bench.
bench-check:
	MSCTL_REQUIRE_INTEGRATION=1 $(GO) test -short -count=1 -run '^$$' -bench . -benchtime 1x \
		$$(grep -rl --include='*_test.go' '^func Benchmark' . | xargs -n1 dirname | sort -u)

# Builds the control plane's binaries once per machine (minutes on the first
# run) outside any test's timeout; later runs find them cached.
testcluster-prepare:
	$(GO) run ./hack/testcluster -prepare

## lint: gofmt check, go vet, staticcheck
lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

## completions: regenerate the shell completion scripts in completions/
completions:
	$(GO) run ./cmd/msctl completion bash > completions/msctl.bash
	$(GO) run ./cmd/msctl completion zsh > completions/_msctl
	$(GO) run ./cmd/msctl completion fish > completions/msctl.fish
	$(GO) run ./cmd/msctl completion powershell > completions/msctl.ps1

## proto: regenerate the services' gRPC code (committed)
proto:
	@bash hack/proto.sh

# CI fails when the committed generated code differs from what make proto writes.
proto-check: proto
	@git diff --exit-code --stat -- services/ || { echo "generated code is stale: run make proto and commit"; exit 1; }

## testcluster: run a local Kubernetes control plane (kwok nodes) until Ctrl-C
testcluster:
	$(GO) build -o $(BIN)/testcluster ./hack/testcluster
	$(BIN)/testcluster

## snapshot: a local goreleaser build of every platform into dist/
snapshot: $(GORELEASER)
	$(GORELEASER) release --snapshot --clean

release-check: $(GORELEASER)
	$(GORELEASER) check

## clean: remove build output
clean:
	rm -rf $(BIN) dist build

$(STATICCHECK):
	GOBIN=$(dir $@) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(GORELEASER):
	GOBIN=$(dir $@) $(GO) install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION)
