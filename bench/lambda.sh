#!/usr/bin/env bash
# `make bench-lambda`: the rollback Lambda against a minimal Python (boto3)
# function (bench/lambda-python/), both under the Runtime API stand-in
# (bench/lambda_runtime.py) and against LocalStack: init, alarm event ->
# stage patched, peak RSS, zipped size. Starts LocalStack if it is not
# running (and stops it afterwards then). Extra arguments go to
# bench/lambda_compare.py (e.g. --runs 7 --events 3).
set -euo pipefail

TG_TAG=bench-lambda
# shellcheck source=../scripts/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/common.sh"
load_env
cd "$TIDEGATE_ROOT"

bash scripts/build-lambda.sh
bootstrap="${CARGO_TARGET_DIR:-$TIDEGATE_ROOT/target}/lambda/tidegate-rollback/bootstrap"

# Stop afterwards only what this script started.
STARTED=()
stop_started() { local s; for s in "${STARTED[@]}"; do bash "scripts/$s.sh" stop || true; done; }
trap stop_started EXIT
bash scripts/localstack.sh status >/dev/null || STARTED+=(localstack)
bash scripts/localstack.sh start
eval "$(bash scripts/localstack.sh env)"
# The Rust function keeps its state in DynamoDB (DynamoDB Local here).
bash scripts/dynamodb.sh status >/dev/null || STARTED+=(dynamodb)
bash scripts/dynamodb.sh start
eval "$(bash scripts/dynamodb.sh env)"
export TIDEGATE_STATE_TABLE="tidegate-bench-$(date +%s)"
bash scripts/dynamodb.sh create-table "$TIDEGATE_STATE_TABLE"

mkdir -p "$CACHE_DIR/bench"
say "python3 bench/lambda_compare.py (python $(python3 -c 'import platform; print(platform.python_version())'))"
python3 bench/lambda_compare.py --rust-bootstrap "$bootstrap" \
    --json "$CACHE_DIR/bench/lambda-compare.json" "$@"
