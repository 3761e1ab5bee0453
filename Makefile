# onboard: `make run` serves the API, `make test` runs every test.
SHELL := bash
.SHELLFLAGS := -o pipefail -ec

GOLANGCI_LINT_VERSION := v2.15.0
comma := ,
GOLANGCI_LINT := go run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

# Redocly CLI, pinned; npx installs it on first use (Node.js 20.19 or later).
REDOCLY_CLI_VERSION := 2.77.0
REDOCLY := npx --yes @redocly/cli@$(REDOCLY_CLI_VERSION)

.PHONY: help run build test test-unit bench bench-once bench-scale flood chaos chaos-short lint lint-api fmt

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/\1\t\2/; s/[$$]{2}/$$/g' | expand -t 14

# Built first, with a line to say so: a cold build takes minutes. In a
# terminal the binary runs as a job of its own (set -m), so Ctrl-C reaches
# it alone: it stops gracefully and its exit 0 is make's (make, were it
# interrupted too, would kill itself with SIGINT once the binary exited).
# Without a terminal, exec: a signal to make's process group reaches it.
run: ## Build bin/onboard, then serve on $$HTTP_ADDR (default :8080).
	@echo "building bin/onboard (the first build takes a few minutes)…"
	@tags=$$(scripts/build-tags.sh) && CGO_ENABLED=0 go build -buildvcs=auto -tags "$$tags" -ldflags='-s -w' -o bin/onboard ./cmd/app
	@if [ -t 0 ]; then set -m; bin/onboard; else exec bin/onboard; fi

# The binary is static (CGO_ENABLED=0: every driver is pure Go) and records
# the commit it was built from (`bin/onboard version`) when git is at hand.
# -s -w leave out the symbol table and DWARF, which no stack trace or
# profile needs (they read the runtime's own tables): of the pages the
# binary holds in memory, 6 MB fewer (docs/performance.md). Its build tags
# come from scripts/build-tags.sh: TRANSPORTS (`make build TRANSPORTS='sql
# amqp'`) names the transports to build in, every one by default; a binary
# without the optional brokers' clients holds some 13 MB less.
build: ## Build every package and the static binary into bin/ (TRANSPORTS='sql amqp': only those, and gochannel).
	go build ./...
	tags=$$(scripts/build-tags.sh) && CGO_ENABLED=0 go build -buildvcs=auto -tags "$$tags" -ldflags='-s -w' -o bin/onboard ./cmd/app

# `go test -json` through internal/testsummary: the output of `go test -v`
# without its RUN, PAUSE, CONT and NAME lines, then a summary (packages,
# tests passed, failed and skipped by reason, the variables that would run
# the skipped ones) whose last line reads "N passed, N failed, N skipped".
# The exit status is the tests' (pipefail). Built first, as `go run` would
# add a line of its own after the summary when the tests fail.
TEST_SUMMARY = bin/testsummary

# Integration and end-to-end tests run when TEST_POSTGRES_URL, TEST_MYSQL_URL,
# TEST_AMQP_URL, TEST_NATS_URL, TEST_REDIS_URL, TEST_PUBSUB_EMULATOR_HOST
# (cmd/pubsub-emulator) and TEST_AWS_ENDPOINT_URL (cmd/sqs-emulator) are set; they skip naming the variable
# otherwise, and fail under REQUIRE_SERVICES=1.
# Packages run in parallel, 4 at once (-p 4 over go's default of one per
# core: the integration packages mostly wait on their servers, and the
# end-to-end package, the longest, should not queue behind them). Each
# database test makes a database of its own, and topics, queues and
# exchanges are named per test; each of
# cmd/app's end-to-end deployments has a PUBSUB_NAMESPACE of its own, whose
# RabbitMQ queues and exchanges, NATS streams or Redis keys, it deletes, so those tests run in parallel
# too (internal/e2e: 4 at a time unless -parallel says otherwise).
# The fault scenarios run at their short size (tags chaos, chaos_short), in
# parallel with the other end-to-end tests.
test: ## Run every test with the race detector, then a summary.
	go vet -tags chaos,chaos_short ./...
	test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	go build -o $(TEST_SUMMARY) ./internal/testsummary
	go test -tags chaos,chaos_short -race -count=1 -p 4 -timeout 20m -json ./... 2>&1 | $(TEST_SUMMARY)

# The fast tier: every test that needs no service, packages in parallel
# (4 at once: a test binary links while others run).
# -short skips the integration tests whatever TEST_* variables are set (and
# REQUIRE_SERVICES), and the end-to-end tests that run the built binary; the
# fault scenarios are not built (no chaos tag). Results are cached as usual.
# The quick loop runs without the race detector: its instrumented binaries
# took most of the time in linking alone. `make test`, which CI runs, runs
# every test with it; RACE=1 runs this tier with it too. There, SQLite's C,
# translated to Go (modernc.org/sqlite/lib), is built without the race
# detector's instrumentation, which made every query about three times
# slower. The C library it runs on (modernc.org/libc) stays instrumented:
# its locks order the goroutines that share a database, and uninstrumented,
# the detector misses that order and reports races that are none. Packages
# start in the order given: service, whose tests run longest, ahead of the
# rest.
UNIT_RACE = $(if $(RACE),-race -gcflags='modernc.org/sqlite/lib=-race=false')
test-unit: ## Run the tests that need no service (-short; about 30 s after a first run; RACE=1: with the race detector), then a summary.
	go build -o $(TEST_SUMMARY) ./internal/testsummary
	go test -short $(UNIT_RACE) -p 4 -timeout 5m -json ./service/... ./... 2>&1 | $(TEST_SUMMARY)

# Benchmarks of the hot paths beside bcrypt, on every database whose URL is
# set; with PostgreSQL and RabbitMQ, the backlog drain and the idle cost too.
# scripts/bench-load.sh then runs cmd/baseline and the built service under
# cmd/loadgen, and prints every figure beside the baseline and its target
# (BENCH_POSTGRES_URL, BENCH_AMQP_URL; the machine's servers by default).
# The sealed-against-plain reads take their p99s of 100,000 reads a side:
# the default benchmark time gives a few thousand, whose tail varies by 10 %.
bench: ## Go benchmarks (hot paths, backlog drain, idle cost), then the load generator.
	go test -run '^$$' -bench . -skip SealedVsPlain -benchmem ./...
	go test -run '^$$' -bench SealedVsPlain -benchtime 100000x ./service/ ./adapters/
	scripts/bench-load.sh

# bench-once runs every Go benchmark one iteration, so that CI finds one
# that no longer runs; the backlog drain and the idle cost take minutes
# each and are left to `make bench`.
bench-once: ## Run each Go benchmark once (not the drain or the idle cost), to see that they run.
	go test -run '^$$' -bench . -benchtime 1x -skip 'BacklogDrain|IdleDatabaseCPU' ./...

# The service at a million stored users beside an empty database, on
# PostgreSQL: scripts/bench-scale.sh seeds them once with `loadgen seed`
# (about three minutes; the database is kept for the next run), then runs
# the service on each, alternating, and prints the figures beside the
# targets (BENCH_SCALE_USERS, BENCH_SCALE_ROUNDS, BENCH_SCALE_PUBSUB).
bench-scale: ## The load generator at a million stored users beside an empty database.
	scripts/bench-scale.sh

# The registration limit under a flood: scripts/flood.sh runs the built
# service on a SQLite file of its own and cmd/loadgen -flood against it, all
# on 127.0.0.0/8; it needs no other service.
flood: ## Flood POST /users from one address; time the 429s, another client's 201s and a third's reads.
	scripts/flood.sh

# The fault scenarios of cmd/app/chaos_test.go (the chaos build tag): kills,
# RabbitMQ and database cuts through an embedded toxiproxy, two replicas,
# SIGTERM under load. Needs the same TEST_* variables as the integration tests.
CHAOS_TEST = go test -race -count=1 -p 1 -timeout 30m -v -run TestChaos ./cmd/app/ 2>&1 | { grep -vE '^\s*=== (RUN|PAUSE|CONT|NAME)' || true; }
chaos: ## Run the fault scenarios at full size.
	$(subst go test,go test -tags chaos,$(CHAOS_TEST))

chaos-short: ## Run the fault scenarios at a small size.
	$(subst go test,go test -tags chaos$(comma)chaos_short,$(CHAOS_TEST))

lint: ## golangci-lint, pinned.
	$(GOLANGCI_LINT) run --build-tags chaos,chaos_short ./...

# The API's contract under redocly.yaml's rules. Redocly exits non-zero on
# an error alone, so the problems are written one a line (stylish writes
# nothing on standard output when there are none) and any line fails the
# target, a warning too; --lint-config=error fails on a problem of
# redocly.yaml itself.
lint-api: ## Lint api/openapi.yaml with Redocly CLI, pinned: any error or warning fails.
	@problems=$$(mktemp); trap 'rm -f "$$problems"' EXIT; \
	$(REDOCLY) lint --lint-config=error --format=stylish --max-problems=1000 api/openapi.yaml | tee "$$problems"; \
	if [ -s "$$problems" ]; then echo "lint-api: api/openapi.yaml has warnings" >&2; exit 1; fi

fmt: ## gofmt every file.
	gofmt -w .
