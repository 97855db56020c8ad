#!/usr/bin/env bash
# Runs every check, in order, stopping at the first failure:
#   fmt          cargo fmt --check
#   clippy       clippy, native workspace (all but the wasm-only edge crate)
#   clippy-wasm  clippy, edge crate on wasm32
#   test         native tests (cargo-nextest if installed) and doc tests
#   examples     examples/gateway.toml validates; the policy walkthrough holds
#   wasm-policy  tidegate-policy builds for wasm32 on its own
#   worker       worker-build --release of the edge Worker (wrangler's [build])
#   vitest       tests/ suite: Miniflare drives the built Worker
#   wrangler     wrangler deploy --dry-run (offline bundle check)
#   localstack   LocalStack starts on loopback; one API Gateway call with awscli
#   infra        infra/template.yaml: cfn-lint, least-privilege test, deployed to LocalStack
#   lambda       cargo lambda build --release of the rollback function (x86_64, arm64)
#                (in a run with lambda-arm64, arm64 builds in the background meanwhile)
#   rollback-localstack  the rollback Lambda's handler against LocalStack
#                (tests/localstack.rs; tests/faults.rs: injected faults;
#                tests/restart.rs: a LocalStack of its own restarted mid-rollout)
#   lambda-watch cargo lambda invoke of the event fixtures against cargo lambda watch
#   demo         the demo scenario end to end, every step asserted (make demo --check),
#                then its logs grepped for every secret of the run
#   dashboard    the dashboard in headless Chromium against the demo stack: sign in, read
#                the stage, pause and roll back through the forms, checked through the JSON API
#                (tests/dashboard/; screenshots in .cache/dashboard/<run>/)
#   lambda-arm64 waits for that background arm64 build (or builds it)
#   fuzz         each fuzz target for TIDEGATE_FUZZ_SECONDS (scripts/fuzz.sh)
#   audit        RustSec audit of the lock files (audit/checker), offline snapshot
# Usage: scripts/test.sh [STAGE...]   (default: all, in this order)
# Needs `make setup` first (make test does both).
set -euo pipefail

TG_TAG="test"
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
load_env
cd "$TIDEGATE_ROOT"

ALL_STAGES=(fmt audit clippy clippy-wasm test examples wasm-policy worker vitest wrangler localstack infra lambda rollback-localstack lambda-watch demo dashboard lambda-arm64 fuzz)
# Stage lambda's background arm64 build: its pid, log and exit status.
ARM64_PID="$CACHE_DIR/lambda-arm64.pid"
ARM64_LOG="$CACHE_DIR/lambda-arm64.log"
ARM64_RC="$CACHE_DIR/lambda-arm64.rc"
WASM_TARGET=wasm32-unknown-unknown

# Each stage runs in a subshell; stages that start processes stop them with
# their own EXIT trap, so a failure or Ctrl-C never leaves one behind.
trap 'warn "interrupted"; exit 130' INT TERM

stage_fmt() { cargo fmt --all -- --check; }

stage_clippy() {
    cargo clippy --workspace --exclude tidegate-edge --all-targets -- -D warnings
}

stage_clippy_wasm() {
    with_wasm_env cargo clippy -p tidegate-edge --target "$WASM_TARGET" --all-targets -- -D warnings
}

# The native packages, tested one at a time: each build then has the feature
# set the later stages' `-p` builds resolve (rollback-localstack, lambda-watch,
# the demo's CLI, the examples), so they reuse it instead of compiling the AWS
# SDK's tree again. One workspace-wide build unifies features across all
# members (and the wasm-only bench crates), which no `-p` build matches.
NATIVE_PACKAGES=(tidegate-policy tidegate-rollback tidegate-cli)

stage_test() {
    local package
    for package in "${NATIVE_PACKAGES[@]}"; do
        if cargo nextest --version >/dev/null 2>&1; then
            cargo nextest run -p "$package" --no-tests=warn
            # nextest does not run doc tests.
            cargo test -p "$package" --doc
        else
            cargo test -p "$package"
        fi
    done
}

stage_wasm_policy() {
    # The policy crate on its own, exactly as the Worker links it (without
    # native-verify: WebCrypto checks signatures), and with its defaults.
    with_wasm_env cargo build -p tidegate-policy --target "$WASM_TARGET" --no-default-features
    with_wasm_env cargo build -p tidegate-policy --target "$WASM_TARGET"
}

stage_examples() {
    cargo run -q -p tidegate-policy --example validate -- examples/gateway.toml
    # The policy walkthrough asserts each step and exits non-zero if one fails.
    cargo run -q -p tidegate-policy --example walkthrough -- examples/gateway.toml >/dev/null
    say "examples/gateway.toml validates; the policy walkthrough met every expectation"
}

stage_worker() { bash scripts/build-worker.sh --release; }

stage_vitest() {
    [ -f build/worker/shim.mjs ] || die "build/worker/shim.mjs is missing: run the 'worker' stage first"
    (cd "$TESTS_DIR" && node_modules/.bin/vitest run)
}

stage_wrangler() {
    local out="$CACHE_DIR/wrangler-dry-run" big log
    rm -rf "$out"
    # Cloudflare caps a variable or secret at 5 KB: a larger TIDEGATE_CONFIG
    # handed to the build must fail the dry run, pointing at the embedded file.
    big=$(printf '# padding line of a config far too large for one variable\n%.0s' $(seq 100))
    mkdir -p "$CACHE_DIR"
    log="$CACHE_DIR/wrangler-oversize.log"
    if TIDEGATE_CONFIG="$big" "$TESTS_DIR/node_modules/.bin/wrangler" deploy --dry-run \
        --outdir "$CACHE_DIR/wrangler-oversize" >"$log" 2>&1; then
        die "wrangler deploy --dry-run accepted a TIDEGATE_CONFIG over 5 KB (see $log)"
    fi
    grep -q "over Cloudflare's 5 KB" "$log" && grep -q "TIDEGATE_CONFIG_FILE" "$log" \
        || die "the oversize TIDEGATE_CONFIG failed the dry run without the 5 KB message (see $log)"
    say "wrangler deploy --dry-run refuses a TIDEGATE_CONFIG over 5 KB"
    # Runs the [build] command too (incremental: seconds), as a deploy would.
    "$TESTS_DIR/node_modules/.bin/wrangler" deploy --dry-run --outdir "$out"
    ls "$out"/*.wasm >/dev/null 2>&1 || die "wrangler's dry-run bundle in $out has no .wasm module"
}

stage_localstack() {
    local name id got
    # Stop it afterwards only if this run started it (a `make dev` session's
    # instance stays up).
    if ! bash scripts/localstack.sh status >/dev/null; then
        trap 'bash scripts/localstack.sh stop' EXIT
    fi
    bash scripts/localstack.sh start
    eval "$(bash scripts/localstack.sh env)"
    # LocalStack has no reset: unique names per run.
    name="tidegate-smoke-$(date +%s)-$$"
    id=$(aws --endpoint-url "$AWS_ENDPOINT_URL" apigateway create-rest-api \
        --name "$name" --query id --output text)
    got=$(aws --endpoint-url "$AWS_ENDPOINT_URL" apigateway get-rest-api \
        --rest-api-id "$id" --query name --output text)
    [ "$got" = "$name" ] || die "API Gateway on LocalStack returned name '$got', expected '$name'"
    aws --endpoint-url "$AWS_ENDPOINT_URL" apigateway delete-rest-api --rest-api-id "$id"
    say "API Gateway on LocalStack: created, read back and deleted REST API $id"
}

stage_infra() {
    "$VENV_DIR/bin/cfn-lint" infra/template.yaml
    say "cfn-lint: infra/template.yaml is clean"
    # -B: no __pycache__ in the tree.
    "$VENV_DIR/bin/python" -B -m unittest discover -s infra/tests -p 'test_*.py'
    # Stop it afterwards only if this run started it.
    if ! bash scripts/localstack.sh status >/dev/null; then
        trap 'bash scripts/localstack.sh stop' EXIT
    fi
    bash scripts/localstack.sh start
    eval "$(bash scripts/localstack.sh env)"
    "$VENV_DIR/bin/python" -B infra/tests/localstack_stack.py
}

# Both architectures; arm64 is skipped with a warning if setup could not
# install its std (TIDEGATE_REQUIRE_ARM64=1 makes that an error).
stage_lambda() {
    # In a run that also has the lambda-arm64 stage, the arm64 build goes to
    # the background (niced, its own target dir, so it never holds the build
    # lock the next stages' cargo needs): it overlaps the LocalStack stages,
    # which mostly wait, and lambda-arm64 collects it. Alone: both here.
    if [[ " ${TG_RUN_STAGES:-} " != *" lambda-arm64 "* ]]; then
        bash scripts/build-lambda.sh --all
        return
    fi
    bash scripts/build-lambda.sh
    mkdir -p "$CACHE_DIR"
    rm -f "$ARM64_RC"
    local target_root="${CARGO_TARGET_DIR:-$TIDEGATE_ROOT/target}"
    setsid bash -c 'TIDEGATE_LAMBDA_OUT_ROOT="$4" CARGO_TARGET_DIR="$1" nice -n 19 bash scripts/build-lambda.sh --arm64 >"$2" 2>&1; echo $? >"$3"' \
        _ "$target_root/arm64-background" "$ARM64_LOG" "$ARM64_RC" "$target_root" </dev/null &
    echo $! >"$ARM64_PID"
    say "arm64 build started in the background (pid $!, log ${ARM64_LOG#"$TIDEGATE_ROOT"/}); stage lambda-arm64 collects it"
}

# Waits for the background arm64 build of stage lambda (or, without one,
# builds it here) and reports its result.
stage_lambda_arm64() {
    local pid
    pid=$(cat "$ARM64_PID" 2>/dev/null || true)
    if [ -z "$pid" ]; then
        bash scripts/build-lambda.sh --arm64
        return
    fi
    while kill -0 "$pid" 2>/dev/null; do sleep 2; done
    rm -f "$ARM64_PID"
    cat "$ARM64_LOG"
    [ "$(cat "$ARM64_RC" 2>/dev/null)" = 0 ] || die "the background arm64 build failed (log above: ${ARM64_LOG#"$TIDEGATE_ROOT"/})"
    # The artefact is out (under target/lambda); its build tree is only disk.
    rm -rf "${CARGO_TARGET_DIR:-$TIDEGATE_ROOT/target}/arm64-background"
}

# DynamoDB Local for the rollback Lambda's state table (scripts/dynamodb.sh):
# started unless running, its endpoint exported (AWS_ENDPOINT_URL_DYNAMODB),
# stopped when the stage ends only if this stage started it. Sets STOP_DYNAMODB.
STOP_DYNAMODB=0
STOP_LOCALSTACK=0
use_dynamodb() {
    if ! bash scripts/dynamodb.sh status >/dev/null; then
        STOP_DYNAMODB=1
    fi
    bash scripts/dynamodb.sh start
    eval "$(bash scripts/dynamodb.sh env)"
}

stage_rollback_localstack() {
    # Stop each afterwards only if this run started it (one EXIT trap for
    # both; globals, since the trap runs after the function has returned).
    bash scripts/localstack.sh status >/dev/null || STOP_LOCALSTACK=1
    trap '[ "$STOP_LOCALSTACK" = 0 ] || bash scripts/localstack.sh stop; [ "$STOP_DYNAMODB" = 0 ] || bash scripts/dynamodb.sh stop' EXIT
    bash scripts/localstack.sh start
    eval "$(bash scripts/localstack.sh env)"
    use_dynamodb
    # The tests skip themselves unless this is set (plain `cargo test`).
    TIDEGATE_LOCALSTACK_TESTS=1 cargo test -p tidegate-rollback --test localstack -- --nocapture
    TIDEGATE_LOCALSTACK_TESTS=1 cargo test -p tidegate-rollback --test faults -- --nocapture
    TIDEGATE_LOCALSTACK_TESTS=1 cargo test -p tidegate-rollback --test pipelines -- --nocapture
    # A LocalStack of its own, really stopped and started mid-rollout.
    TIDEGATE_LOCALSTACK_TESTS=1 cargo test -p tidegate-rollback --test restart -- --nocapture
}

# Self-contained (starts LocalStack and DynamoDB Local if needed, stops its own watch).
stage_lambda_watch() { bash lambda-rollback/tests/watch.sh; }

stage_demo() {
    # The same script as `make demo`, non-interactive: every step is an
    # assertion. Reuses the Worker and Lambda built by earlier stages; the
    # script starts LocalStack and DynamoDB Local unless running and stops
    # everything it started, whatever happens.
    bash scripts/demo.sh --check --no-build
    # Issue 7: no secret of the run (keys, HS secret, bearer tokens) in any
    # log or output of the whole demo, read after every process has stopped.
    "$VENV_DIR/bin/python" scripts/demo/secrets_in_logs.py "$CACHE_DIR/demo/latest"
}

# Self-contained: starts the demo's stack (built by earlier stages), stops it.
stage_dashboard() { bash tests/dashboard/run.sh; }

stage_fuzz() { bash scripts/fuzz.sh; }

stage_audit() { bash scripts/audit.sh; }

describe() {
    case $1 in
        fmt) echo "cargo fmt --check" ;;
        clippy) echo "clippy (native workspace, -D warnings)" ;;
        clippy-wasm) echo "clippy (tidegate-edge on wasm32, -D warnings)" ;;
        test) echo "native tests + doc tests" ;;
        examples) echo "example config validates; policy walkthrough holds" ;;
        wasm-policy) echo "tidegate-policy builds for wasm32" ;;
        worker) echo "worker-build --release (edge Worker)" ;;
        vitest) echo "vitest: Miniflare drives the built Worker" ;;
        wrangler) echo "wrangler deploy --dry-run (offline)" ;;
        localstack) echo "LocalStack smoke: API Gateway via awscli" ;;
        infra) echo "AWS template: cfn-lint, least-privilege IAM, deploy to LocalStack" ;;
        lambda) echo "cargo lambda build --release (rollback; x86_64, and arm64 unless lambda-arm64 runs later)" ;;
        lambda-arm64) echo "the arm64 Lambda build (started in the background by stage lambda)" ;;
        rollback-localstack) echo "rollback Lambda handler against LocalStack (+ injected faults)" ;;
        lambda-watch) echo "cargo lambda invoke (event fixtures) against cargo lambda watch" ;;
        demo) echo "demo scenario end to end (make demo, asserted)" ;;
        dashboard) echo "dashboard in headless Chromium against the demo stack" ;;
        fuzz) echo "fuzz targets, ${TIDEGATE_FUZZ_SECONDS:-$([ "${CI:-}" = true ] && echo 15 || echo 45)}s each (cargo fuzz, stable)" ;;
        audit) echo "RustSec audit, offline snapshot (audit/advisory-db)" ;;
        *) return 1 ;;
    esac
}

stop_background_arm64() {
    local pid
    pid=$(cat "$ARM64_PID" 2>/dev/null || true)
    [ -n "$pid" ] || return 0
    kill -TERM -- "-$pid" 2>/dev/null || true
    rm -f "$ARM64_PID"
}

# The target dir's size and the disk's free space: the disk is shared and
# has filled up mid-run before, so every stage's line says where it stands.
disk_report() {
    local target="${CARGO_TARGET_DIR:-$TIDEGATE_ROOT/target}" size free
    size=$(du -sh "$target" 2>/dev/null | cut -f1)
    free=$(df -h --output=avail "$TIDEGATE_ROOT" 2>/dev/null | tail -1 | tr -d ' ')
    echo "target ${size:-0}, ${free:-?} free"
}

main() {
    local stages=("$@") stage i=0 n start t0 rc
    [ ${#stages[@]} -gt 0 ] || stages=("${ALL_STAGES[@]}")
    for stage in "${stages[@]}"; do
        describe "$stage" >/dev/null || die "unknown stage '$stage'; stages: ${ALL_STAGES[*]}"
    done
    n=${#stages[@]}
    start=$(now_ms)
    export TG_RUN_STAGES="${stages[*]}"
    rm -f "$ARM64_PID"
    # A run that stops early stops the background arm64 build too.
    trap 'stop_background_arm64' EXIT
    for stage in "${stages[@]}"; do
        i=$((i + 1))
        say "($i/$n) $stage: $(describe "$stage")"
        t0=$(now_ms)
        # A subshell with set -e of its own: `(...) || rc=$?` would switch
        # errexit off inside the stage.
        set +e
        (
            set -e
            trap 'exit 130' INT TERM
            "stage_${stage//-/_}"
        )
        rc=$?
        set -e
        if [ "$rc" -ne 0 ]; then
            die "FAILED at stage '$stage' ($(describe "$stage")) after $(fmt_ms $(($(now_ms) - t0))), exit $rc ($(disk_report)); rerun it alone with: bash scripts/test.sh $stage"
        fi
        say "($i/$n) $stage: ok in $(fmt_ms $(($(now_ms) - t0))); $(disk_report)"
    done
    say "all $n stages passed in $(fmt_ms $(($(now_ms) - start)))"
}

main "$@"
