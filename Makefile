# Tidegate: one entry point for setup, build, checks and the demo.
# Everything installs into project-local folders (.tools/, .venv/, .cache/,
# tests/node_modules/); see docs/setup.md. CI runs `make test` (.ci/run).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
# Recipes that need the tools source the environment setup wrote.
ENV := . ./.tools/env.sh

.PHONY: help setup test build lint demo dev bench bench-edge bench-edge-smoke bench-micro bench-lambda soak health-soak clean distclean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## Install toolchains and packages (idempotent; seconds when done)
	@bash scripts/setup.sh

test: setup ## setup, then every check: fmt, audit, clippy, tests, Worker in workerd, LocalStack, infra, Lambda, demo, fuzz
	@bash scripts/test.sh

build: setup ## Build the Worker (worker-build --release) and the Lambda (cargo lambda)
	@bash scripts/build-worker.sh --release
	@bash scripts/build-lambda.sh

lint: setup ## cargo fmt --check and clippy -D warnings (native + edge on wasm32)
	@bash scripts/test.sh fmt clippy clippy-wasm

demo: setup ## The whole system on loopback and a release that fails and is rolled back (docs/demo.md)
	@bash scripts/demo.sh $(DEMO_ARGS)

dev: setup ## The demo's stack, left running for exploration (URLs printed; Ctrl-C stops it)
	@bash scripts/dev.sh $(DEV_ARGS)

# Benchmarks: figures for BENCHMARKS.md, never assertions. Each sub-target is bounded in time.

bench-edge: setup ## Edge: Tidegate vs floor vs TS peer in one workerd, wrk load, budgets (~5 min); see BENCHMARKS.md
	@bash bench/edge.sh $(BENCH_ARGS)

bench-edge-smoke: setup ## The edge benchmark in smoke mode (~2 min): checks the harness; figures not meaningful
	@bash bench/edge.sh --smoke $(BENCH_ARGS)

soak: setup ## Load and soak `wrangler dev` (60 s, 16 in flight; SOAK_ARGS="--duration 300"); see RELIABILITY.md
	@bash scripts/build-worker.sh --release
	@$(ENV) && node tests/reliability/soak.mjs $(SOAK_ARGS)

health-soak: setup ## Issue 18: a healthy canary through the edge, 10 min at 1 % and at 50 %, counts false rollbacks (~25 min)
	@bash scripts/demo.sh --soak $(DEMO_ARGS)

bench-micro: setup ## Policy micro-benchmarks: criterion (native) and the same code in wasm under node; see BENCHMARKS.md
	@bash bench/micro.sh

bench-lambda: setup ## Rollback Lambda vs a Python (boto3) equivalent: init, alarm -> patched (LocalStack), RSS, zip
	@bash bench/lambda.sh $(BENCH_ARGS)

bench: bench-edge bench-micro bench-lambda ## Every benchmark (figures go to BENCHMARKS.md by hand)

clean: ## Remove build outputs: build/, .wrangler/, test caches, cargo clean (honours CARGO_TARGET_DIR)
	@if [ -f .cache/localstack/localstack.pid ]; then bash scripts/localstack.sh stop; fi
	@if [ -f .cache/dynamodb/dynamodb.pid ]; then bash scripts/dynamodb.sh stop; fi
	rm -rf build .wrangler .cache/wrangler-dry-run .cache/wrangler .cache/localstack .cache/dynamodb .cache/worker-build .cache/demo
	cargo clean

distclean: clean ## clean, and remove the installed tools (.tools/, .venv/, .cache/, tests/node_modules/)
	rm -rf .tools .venv .cache tests/node_modules
