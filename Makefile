# esimflow — run `make help` for the targets.
SHELL := bash
GO    ?= go
# Every module of the workspace: `go test ./...` at the root matches nothing.
MODULES := $(shell $(GO) list -m -f '{{.Dir}}')
PKGS    := $(addsuffix /...,$(MODULES))
# Modules outside go.work, built with GOWORK=off: deploy/ holds only tests, whose
# dependencies (the compose loader, Docker's Dockerfile parser) must not change
# the versions the workspace's modules build and test with.
STANDALONE := $(CURDIR)/deploy

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

FUZZTIME ?= 60s

# The chaos suite: DURATION of load and faults in all (split between the NATS
# servers when NATS=both), SEED to replay a schedule (empty = from the clock;
# the seed is printed first either way). make test's short run (TestChaos)
# has a fixed seed and server; ESIMFLOW_CHAOS_SEED and ESIMFLOW_CHAOS_NATS
# override them.
DURATION ?= 90s
NATS     ?= both
SEED     ?=
# CLUSTER=1: the chaos suite on a 3-node JetStream cluster and a Redis Cluster.
CLUSTER  ?=
# DROP=0.2: the provider never sends a fifth of the webhooks (chaos.Config.Drop).
DROP     ?=

# Container images: deploy/<name>/Dockerfile each, built from the repository root.
IMAGES       := esimflow ingest processor notifier
IMAGE_PREFIX ?= esimflow
IMAGE_TAG    ?= dev

.PHONY: secrets help run simulate cluster test chaos chaos-bugs test-scale bench-processor lint build tidy bench bench-go fuzz images image-builds

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

run: ## run the whole system in one process (embedded NATS, data in ./data)
	@mkdir -p bin
	$(GO) build -o bin/esimflow ./cmd/esimflow
	ESIMFLOW_LOG_FORMAT=$${ESIMFLOW_LOG_FORMAT:-text} bin/esimflow run

simulate: ## in another terminal while `make run` runs: play a provider against it and check esimflow ends as it must (ARGS="--esims 200 --rate 100" and more: bin/esimflow simulate --help)
	@mkdir -p bin
	$(GO) build -o bin/esimflow ./cmd/esimflow
	bin/esimflow simulate --check $(ARGS)

cluster: ## a local NATS JetStream cluster (3 nodes) and Redis Cluster (3 primaries + 3 replicas); prints the ESIMFLOW_* settings; Ctrl-C stops it
	$(GO) run ./chaos/cmd/cluster

test: ## run every module's tests with -race (uses local Redis/NATS when up)
	@echo "redis: $${ESIMFLOW_TEST_REDIS_URL:-none (Redis tests skip)}  external nats: $${ESIMFLOW_TEST_NATS_URL:-none (in-process only)}"
	$(GO) test -race -count=1 -timeout 8m $(PKGS)
	$(GO) test -race -count=1 -tags failpoints ./shared/failpoint/
	@for m in $(STANDALONE); do (cd $$m && GOWORK=off $(GO) test -race -count=1 -timeout 8m ./...) || exit 1; done

chaos: ## the chaos suite: services as processes, seeded faults, an oracle (DURATION=90s, SEED=, NATS=both|system|newest, CLUSTER=1: NATS and Redis clusters with node faults, DROP=0.2: webhooks never sent)
	$(GO) run ./chaos/cmd/chaos -duration $(DURATION) -nats $(NATS) $(if $(SEED),-seed $(SEED)) $(if $(CLUSTER),-cluster) $(if $(DROP),-drop $(DROP))

chaos-bugs: ## show each chaos check catching a planted bug (about 8 minutes)
	ESIMFLOW_CHAOS_BUGS=1 $(GO) test -count=1 -timeout 30m -run '^TestPlantedBugs$$' -v ./chaos/

test-scale: ## the full scale test: 3 processors, 20 000 events for 2 000 eSIMs (about a minute)
	ESIMFLOW_TEST_SCALE=full $(GO) test -race -count=1 -timeout 15m -run 'TestScaleOut' -v ./processor/

bench-processor: ## processor throughput with Redis and NATS KV, per-message and batched (docs/adr/0004, 0005)
	$(GO) test -run XXX -bench 'Throughput' -benchtime 20000x -count 3 ./processor/

lint: ## gofmt, go vet, and a GOWORK=off build of each module on its own
	@out=$$(gofmt -l $(MODULES) $(STANDALONE)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@for m in $(STANDALONE); do (cd $$m && GOWORK=off $(GO) vet ./...) || exit 1; done
	@for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) build ./...) || exit 1; done

build: ## build the binaries into ./bin
	@mkdir -p bin
	$(GO) build -o bin/esimflow ./cmd/esimflow
	$(GO) build -o bin/ingest ./ingest/cmd/ingest
	$(GO) build -o bin/processor ./processor/cmd/processor
	$(GO) build -o bin/notifier ./notifier/cmd/notifier

bench: build ## the benchmark harness: every stage against its baseline, table in bench/results/<date>.md (BENCH_QUICK=1: a fast pass; BENCH_PEERS=1: with the Redpanda Connect peer; BENCH_ONLY=http,pipeline,…: those scenarios alone; BENCH_PROFILE=1: CPU profiles of the services under load)
	$(GO) build -o bin/esimbench ./bench/cmd/esimbench
	bin/esimbench

bench-go: ## run the Go benchmarks of every module (speed goals live here, not in tests)
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

fuzz: ## fuzz the webhook handler, the body normalizer, the event decoder and the provider adapters, FUZZTIME each (default 60s)
	cd ingest && $(GO) test -run '^$$' -fuzz '^FuzzWebhook$$' -fuzztime $(FUZZTIME) .
	cd ingest && $(GO) test -run '^$$' -fuzz '^FuzzNormalize$$' -fuzztime $(FUZZTIME) .
	cd shared && $(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./event
	cd shared && $(GO) test -run '^$$' -fuzz '^FuzzAdapters$$' -fuzztime $(FUZZTIME) ./provider
	cd ingest && $(GO) test -run '^$$' -fuzz '^FuzzForm$$' -fuzztime $(FUZZTIME) .
	cd ingest && $(GO) test -run '^$$' -fuzz '^FuzzSignatureHeader$$' -fuzztime $(FUZZTIME) ./verify

images: ## docker build esimflow/{esimflow,ingest,processor,notifier}:dev (IMAGE_PREFIX, IMAGE_TAG)
	@command -v docker >/dev/null || { echo "make images: no docker command here; install Docker (or run the docker build lines in deploy/*/Dockerfile elsewhere)" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make images: docker is installed but no Docker engine answers (docker info fails); start one, or build elsewhere" >&2; exit 1; }
	@for i in $(IMAGES); do \
		echo "docker build -f deploy/$$i/Dockerfile -t $(IMAGE_PREFIX)/$$i:$(IMAGE_TAG) ."; \
		docker build -f deploy/$$i/Dockerfile -t $(IMAGE_PREFIX)/$$i:$(IMAGE_TAG) . || exit 1; \
	done

image-builds: ## without Docker: run each Dockerfile's build stage on a copy of only what it copies; check the binaries are static
	cd deploy && GOWORK=off ESIMFLOW_TEST_IMAGE_BUILDS=1 $(GO) test -count=1 -timeout 20m -run '^TestImagesBuildStage$$' -v .

tidy: ## go mod tidy in every module
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy) || exit 1; done
	@for m in $(STANDALONE); do (cd $$m && GOWORK=off $(GO) mod tidy) || exit 1; done

secrets: ## write random admin/ingest/Grafana secrets for docker compose into deploy/secrets/*.env (existing ones kept)
	@sh deploy/secrets/generate.sh
