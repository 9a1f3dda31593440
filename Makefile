# esimflow — run `make help` for the targets.
SHELL := bash
GO    ?= go
# Every module of the workspace: `go test ./...` at the root matches nothing.
MODULES := $(shell $(GO) list -m -f '{{.Dir}}')
PKGS    := $(addsuffix /...,$(MODULES))

# Point the tests at this machine's Redis and NATS when they answer and the
# variables are not set; tests that need them skip with the reason otherwise.
port_open = $(shell (exec 3<>/dev/tcp/127.0.0.1/$(1)) 2>/dev/null && echo yes)
ifeq ($(origin ESIMFLOW_TEST_REDIS_URL),undefined)
ifeq ($(call port_open,6379),yes)
export ESIMFLOW_TEST_REDIS_URL := redis://127.0.0.1:6379
endif
endif
ifeq ($(origin ESIMFLOW_TEST_NATS_URL),undefined)
ifeq ($(call port_open,4222),yes)
export ESIMFLOW_TEST_NATS_URL := nats://127.0.0.1:4222
endif
endif

.PHONY: help run test test-scale bench lint build tidy fmt

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

run: ## run the whole system in one process (embedded NATS, data in ./data)
	@mkdir -p bin
	$(GO) build -o bin/esimflow ./cmd/esimflow
	ESIMFLOW_LOG_FORMAT=$${ESIMFLOW_LOG_FORMAT:-text} bin/esimflow run

test: ## run every module's tests with -race (uses local Redis/NATS when up)
	@echo "redis: $${ESIMFLOW_TEST_REDIS_URL:-none (Redis tests skip)}  external nats: $${ESIMFLOW_TEST_NATS_URL:-none (in-process only)}"
	$(GO) test -race -count=1 -timeout 8m $(PKGS)

test-scale: ## the full scale test: 3 processors, 20 000 events for 2 000 eSIMs (about a minute)
	ESIMFLOW_TEST_SCALE=full $(GO) test -race -count=1 -timeout 15m -run 'TestScaleOut' -v ./processor/

bench: ## processor throughput with Redis, per-message and batched (see docs/adr/0003)
	$(GO) test -run XXX -bench Throughput -benchtime 20000x -count 3 ./processor/

lint: ## gofmt, go vet, and a GOWORK=off build of each module on its own
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) build ./...) || exit 1; done

build: ## build the binaries into ./bin
	@mkdir -p bin
	$(GO) build -o bin/esimflow ./cmd/esimflow
	$(GO) build -o bin/ingest ./ingest/cmd/ingest
	$(GO) build -o bin/processor ./processor/cmd/processor
	$(GO) build -o bin/notifier ./notifier/cmd/notifier

tidy: ## go mod tidy in every module
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy) || exit 1; done
