#!/usr/bin/env bash
# The Tidegate demo (`make demo`): the whole system on this machine, on
# loopback only, and a scenario a person can follow. See docs/demo.md.
#
#   scripts/demo.sh            build, start the stack, play the scenario, summary, stop everything
#   scripts/demo.sh --check    the same, non-interactive: the first failed expectation ends the run
#                              (also TIDEGATE_DEMO_ASSERT=1; the `demo` test stage uses it)
#   scripts/demo.sh --dev      build, start the stack, leave it running with URLs (make dev); Ctrl-C stops it
#   scripts/demo.sh --soak     build, start the stack, then a healthy canary through the edge for
#                              TIDEGATE_SOAK_MINUTES (10) at each of TIDEGATE_SOAK_PERCENTS (1,50) %:
#                              counts false rollbacks (issue 18's budget; make soak)
#   --no-build                 use build/ and the Lambda bootstrap as they are (the test stage: built earlier)
#   --watch-lambda             run the Lambda under full cargo lambda watch (debug build, reloads on
#                              changes to its code) instead of the release bootstrap behind its emulator
#
# The stack: LocalStack (API Gateway + CloudWatch), DynamoDB Local (the
# Lambda's state table tidegate-demo-state), the demo origin standing
# in for the stage (scripts/demo/origin.py), the edge Worker under wrangler
# dev, the rollback Lambda behind cargo lambda watch's emulator (the release
# bootstrap; --dev: under full cargo lambda watch). Every process is started
# in its own process group and stopped by PID on exit, error or Ctrl-C.
#
# Ports (127.0.0.1), overridable:
#   TIDEGATE_LOCALSTACK_PORT        4566   LocalStack
#   TIDEGATE_DYNAMODB_PORT          8000   DynamoDB Local
#   TIDEGATE_DEMO_EDGE_PORT         8787   wrangler dev (the edge)
#   TIDEGATE_DEMO_INSPECTOR_PORT    9229   wrangler dev's inspector
#   TIDEGATE_DEMO_ORIGIN_PORT       8788   the demo origin
#   TIDEGATE_DEMO_LAMBDA_PORT       9000   cargo lambda watch (invoke API, Function URL)
# Logs of every component and the run's files: .cache/demo/<run>/ (printed).
set -euo pipefail

TG_TAG=demo
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
load_env
cd "$TIDEGATE_ROOT"

mode=demo
check=${TIDEGATE_DEMO_ASSERT:-0}
build=1
watch_lambda=0
for arg in "$@"; do
    case $arg in
        --check) check=1 ;;
        --dev) mode=dev ;;
        --soak) mode=soak ;;
        --no-build) build=0 ;;
        --watch-lambda) watch_lambda=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument '$arg'; usage: scripts/demo.sh [--check] [--dev] [--soak] [--no-build] [--watch-lambda]" ;;
    esac
done

LS_PORT=${TIDEGATE_LOCALSTACK_PORT:-4566}
EDGE_PORT=${TIDEGATE_DEMO_EDGE_PORT:-8787}
INSPECTOR_PORT=${TIDEGATE_DEMO_INSPECTOR_PORT:-9229}
ORIGIN_PORT=${TIDEGATE_DEMO_ORIGIN_PORT:-8788}
LAMBDA_PORT=${TIDEGATE_DEMO_LAMBDA_PORT:-9000}
export TIDEGATE_LOCALSTACK_PORT=$LS_PORT
DDB_PORT=${TIDEGATE_DYNAMODB_PORT:-8000}
export TIDEGATE_DYNAMODB_PORT=$DDB_PORT
DDB_URL=http://127.0.0.1:$DDB_PORT
STATE_TABLE=tidegate-demo-state
LS_URL=http://127.0.0.1:$LS_PORT
EDGE_URL=http://127.0.0.1:$EDGE_PORT
ORIGIN_URL=http://127.0.0.1:$ORIGIN_PORT
LAMBDA_URL=http://127.0.0.1:$LAMBDA_PORT
PY="$VENV_DIR/bin/python"
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in scripts/demo/
BOOTSTRAP=${TIDEGATE_DEMO_BOOTSTRAP:-${CARGO_TARGET_DIR:-$TIDEGATE_ROOT/target}/lambda/tidegate-rollback/bootstrap}
CLI=${CARGO_TARGET_DIR:-$TIDEGATE_ROOT/target}/debug/tidegate
DEMO_DIR="$CACHE_DIR/demo"
RUN_ID="$(date -u +%Y%m%d-%H%M%S)-$$"
RUN="$DEMO_DIR/$RUN_ID"

# --------------------------------------------------------------------------
# Processes: each started with setsid (its own process group), stopped by
# group on exit. LocalStack and DynamoDB Local are stopped only if this run
# started them.
# --------------------------------------------------------------------------
PIDS=()   # "name:pid", in start order
started_localstack=0
started_dynamodb=0
cleaned=0

cleanup() {
    local rc=$? entry name pid i left
    [ "$cleaned" = 1 ] && return 0
    cleaned=1
    trap '' INT TERM
    [ ${#PIDS[@]} -gt 0 ] || [ "$started_localstack" = 1 ] || [ "$started_dynamodb" = 1 ] || exit "$rc"
    say ""
    say "stopping the stack"
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        entry=${PIDS[$i]}
        name=${entry%%:*}
        pid=${entry##*:}
        stop_group "$name" "$pid"
    done
    if [ "$started_localstack" = 1 ]; then
        bash scripts/localstack.sh stop >/dev/null 2>&1 || warn "LocalStack did not stop cleanly"
        [ -f "$CACHE_DIR/localstack/localstack.log" ] && cp "$CACHE_DIR/localstack/localstack.log" "$RUN/localstack.log" 2>/dev/null
        say "stopped localstack"
    fi
    if [ "$started_dynamodb" = 1 ]; then
        bash scripts/dynamodb.sh stop >/dev/null 2>&1 || warn "DynamoDB Local did not stop cleanly"
        [ -f "$CACHE_DIR/dynamodb/dynamodb.log" ] && cp "$CACHE_DIR/dynamodb/dynamodb.log" "$RUN/dynamodb.log" 2>/dev/null
        say "stopped dynamodb local"
    fi
    # Nothing of ours may be left: no process in any group we started.
    left=""
    for entry in "${PIDS[@]}"; do
        pid=${entry##*:}
        if group_alive "$pid"; then left="$left ${entry%%:*}($(group_pids "$pid" | tr '\n' ' '))"; fi
    done
    if [ -n "$left" ]; then
        warn "processes left behind:$left"
        [ "$rc" -ne 0 ] || rc=1
    else
        say "all stopped; nothing left running (logs: ${RUN#"$TIDEGATE_ROOT"/}/)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# group_pids PGID: the live processes of a process group, from /proc (no
# procps needed; zombies excluded).
group_pids() {
    local pg=$1 f line fields
    for f in /proc/[0-9]*/stat; do
        read -r line <"$f" 2>/dev/null || continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces or parens.
        read -r -a fields <<<"${line##*) }"
        [ "${fields[2]}" = "$pg" ] && [ "${fields[0]}" != Z ] && echo "${f//[^0-9]/}"
    done
    return 0
}
group_alive() { [ -n "$(group_pids "$1")" ]; }

# stop_group NAME PID: TERM the process group, wait up to 10 s, then KILL.
# (Explicit `return 0`: a bare `return` in a trap handler returns the status
# of the command before the trap, e.g. the failure that triggered it.)
stop_group() {
    local name=$1 pid=$2
    group_alive "$pid" || { say "stopped $name"; return 0; }
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        group_alive "$pid" || break
        sleep 0.2
    done
    if group_alive "$pid"; then
        warn "$name (pid $pid) did not stop in 10s; killing it"
        kill -KILL -- "-$pid" 2>/dev/null || true
        sleep 0.2
    fi
    say "stopped $name (pid $pid)"
}

# start NAME LOGFILE CMD...: in the background, own process group.
start() {
    local name=$1 log=$2
    shift 2
    setsid "$@" </dev/null >"$log" 2>&1 &
    PIDS+=("$name:$!")
    LAST_PID=$!
}

# wait_http NAME URL PID SECONDS LOG: until URL answers any HTTP status.
wait_http() {
    local name=$1 url=$2 pid=$3 secs=$4 log=$5 deadline code
    deadline=$(($(now_ms) + secs * 1000))
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 "$url" 2>/dev/null || true)
        [ -n "$code" ] && [ "$code" != 000 ] && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$log" >&2 || true
            die "$name exited during start (log: ${log#"$TIDEGATE_ROOT"/})"
        fi
        if (($(now_ms) > deadline)); then
            tail -n 30 "$log" >&2 || true
            die "$name did not answer on $url within ${secs}s (log: ${log#"$TIDEGATE_ROOT"/})"
        fi
        sleep 0.3
    done
}

# wait_port NAME PORT PID SECONDS LOG: until 127.0.0.1:PORT accepts connections.
wait_port() {
    local name=$1 port=$2 pid=$3 secs=$4 log=$5 deadline
    deadline=$(($(now_ms) + secs * 1000))
    until port_in_use "$port"; do
        kill -0 "$pid" 2>/dev/null || { tail -n 30 "$log" >&2 || true; die "$name exited during start (log: ${log#"$TIDEGATE_ROOT"/})"; }
        (($(now_ms) < deadline)) || die "$name did not listen on 127.0.0.1:$port within ${secs}s (log: ${log#"$TIDEGATE_ROOT"/})"
        sleep 0.2
    done
}

TIMINGS=()
timed() { # timed LABEL CMD...
    local label=$1 t0
    shift
    t0=$(now_ms)
    "$@"
    TIMINGS+=("$(fmt_ms $(($(now_ms) - t0)))|$label")
}

# --------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------
check_ports() {
    local p name
    for p in "edge:$EDGE_PORT" "inspector:$INSPECTOR_PORT" "origin:$ORIGIN_PORT" "lambda:$LAMBDA_PORT"; do
        name=${p%%:*}
        port_in_use "${p##*:}" &&
            die "127.0.0.1:${p##*:} ($name) is taken; stop what uses it or set TIDEGATE_DEMO_${name^^}_PORT"
    done
    return 0
}

build_cli() {
    # Seconds when up to date (the test stage has built it); the scenario's last step runs it.
    say "building the tidegate CLI (cargo build -p tidegate-cli; log ${RUN#"$TIDEGATE_ROOT"/}/build-cli.log)"
    cargo build -p tidegate-cli >"$RUN/build-cli.log" 2>&1 ||
        { tail -n 30 "$RUN/build-cli.log" >&2; die "the CLI build failed (log: ${RUN#"$TIDEGATE_ROOT"/}/build-cli.log)"; }
}

build_all() {
    build_cli
    if [ "$build" = 0 ]; then
        [ -f build/worker/shim.mjs ] || die "build/worker/shim.mjs is missing: run without --no-build (or bash scripts/test.sh worker)"
        say "using the existing builds (--no-build)"
        return
    fi
    say "building the edge Worker (worker-build --release; seconds when up to date, minutes the first time; log ${RUN#"$TIDEGATE_ROOT"/}/build-worker.log)"
    bash scripts/build-worker.sh --release >"$RUN/build-worker.log" 2>&1 ||
        { tail -n 30 "$RUN/build-worker.log" >&2; die "the Worker build failed (log: ${RUN#"$TIDEGATE_ROOT"/}/build-worker.log)"; }
    say "building the rollback Lambda (cargo lambda build --release; seconds when up to date, up to 10 minutes the first time; log ${RUN#"$TIDEGATE_ROOT"/}/build-lambda.log)"
    bash scripts/build-lambda.sh >"$RUN/build-lambda.log" 2>&1 ||
        { tail -n 30 "$RUN/build-lambda.log" >&2; die "the Lambda build failed (log: ${RUN#"$TIDEGATE_ROOT"/}/build-lambda.log)"; }
}

start_localstack() {
    if bash scripts/localstack.sh status >/dev/null 2>&1; then
        [ "$(cat "$CACHE_DIR/localstack/localstack.port" 2>/dev/null)" = "$LS_PORT" ] ||
            die "a LocalStack of this checkout is running on another port; stop it (bash scripts/localstack.sh stop) or set TIDEGATE_LOCALSTACK_PORT"
        say "LocalStack already running on $LS_URL: reusing it (names are unique per run), leaving it running"
        return
    fi
    started_localstack=1
    bash scripts/localstack.sh start
}

# DynamoDB Local and the Lambda's state table; its name and endpoint join
# the Lambda's environment (lambda.env, written by provision).
start_dynamodb() {
    if bash scripts/dynamodb.sh status >/dev/null 2>&1; then
        [ "$(cat "$CACHE_DIR/dynamodb/dynamodb.port" 2>/dev/null)" = "$DDB_PORT" ] ||
            die "a DynamoDB Local of this checkout is running on another port; stop it (bash scripts/dynamodb.sh stop) or set TIDEGATE_DYNAMODB_PORT"
        say "DynamoDB Local already running on $DDB_URL: reusing it, leaving it running"
    else
        started_dynamodb=1
        bash scripts/dynamodb.sh start
    fi
    bash scripts/dynamodb.sh create-table "$STATE_TABLE"
}

provision() {
    local compat extra=()
    compat=$(sed -n 's/^compatibility_date = "\(.*\)"/\1/p' wrangler.toml)
    # make dev: wrangler rebuilds the Worker when its code changes.
    [ "$mode" = dev ] && [ "$build" = 1 ] && extra+=(--rebuild)
    "$PY" scripts/demo/scenario.py prepare --run-dir "$RUN" --run-id "$RUN_ID" --root "$TIDEGATE_ROOT" \
        --template examples/demo/gateway.toml --origin "$ORIGIN_URL" --endpoint "$LS_URL" \
        --compatibility-date "$compat" --health-url "$LAMBDA_URL/lambda-url/tidegate-rollback/edge/health" \
        --edge-health-url "$EDGE_URL/__tidegate/health/releases" "${extra[@]}"
    "$PY" scripts/demo/scenario.py provision --run-dir "$RUN" --endpoint "$LS_URL"
    # A fresh session secret per run: the dashboard's browser sign-in.
    printf '%s\n' "TIDEGATE_STATE_TABLE=$STATE_TABLE" "AWS_ENDPOINT_URL_DYNAMODB=$DDB_URL" \
        "TIDEGATE_SESSION_SECRET=$(head -c 36 /dev/urandom | base64 | tr -d '\n')" >>"$RUN/lambda.env"
}

start_origin() {
    local api_id api_name
    api_id=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["api_id"])' "$RUN/aws.json")
    api_name=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["api_name"])' "$RUN/aws.json")
    start origin "$RUN/origin.log" "$PY" -u scripts/demo/origin.py --port "$ORIGIN_PORT" \
        --endpoint "$LS_URL" --api-id "$api_id" --api-name "$api_name"
    wait_http origin "$ORIGIN_URL/__demo/stats" "$LAST_PID" 20 "$RUN/origin.log"
    say "origin (the stage's base and canary releases) on $ORIGIN_URL (pid $LAST_PID)"
}

start_edge() {
    # The run's own wrangler config: the built Worker, the rendered gateway
    # config as TIDEGATE_CONFIG, secrets in .dev.vars beside it, state in the
    # run folder (a fresh cache and fresh limiters every run).
    start edge "$RUN/edge.log" "$TESTS_DIR/node_modules/.bin/wrangler" dev \
        --config "$RUN/wrangler.toml" --local --ip 127.0.0.1 --port "$EDGE_PORT" \
        --inspector-port "$INSPECTOR_PORT" --persist-to "$RUN/wrangler-state" --log-level info
    wait_http "wrangler dev" "$EDGE_URL/__tidegate/health" "$LAST_PID" 180 "$RUN/edge.log"
    say "edge (wrangler dev, workerd) on $EDGE_URL (pid $LAST_PID)"
}

start_lambda() {
    if [ "$watch_lambda" = 1 ]; then
        # --watch-lambda: cargo lambda watch builds (debug) and runs the function,
        # and rebuilds it when lambda-rollback/ or shared/ change.
        # CARGO_TARGET_DIR is honoured (its --target-dir is not).
        say "starting the Lambda under cargo lambda watch (the first start compiles a debug build)"
        start lambda "$RUN/lambda.log" cargo lambda watch -A 127.0.0.1 -P "$LAMBDA_PORT" \
            --env-file "$RUN/lambda.env" -p tidegate-rollback --bin tidegate-rollback
    else
        # Default: the release bootstrap `make build` deploys, run against
        # cargo lambda watch's Lambda emulator (invoke API, Function URL,
        # runtime API): no second, debug build of the SDK.
        [ -x "$BOOTSTRAP" ] || die "$BOOTSTRAP is missing: run without --no-build (or bash scripts/test.sh lambda)"
        start lambda-emulator "$RUN/lambda-emulator.log" cargo lambda watch --only-lambda-apis \
            -A 127.0.0.1 -P "$LAMBDA_PORT"
        wait_port "cargo lambda watch" "$LAMBDA_PORT" "$LAST_PID" 60 "$RUN/lambda-emulator.log"
        # The Lambda's environment (config, API keys, LocalStack endpoint)
        # and the runtime API's address, as Lambda would set them.
        (
            set -a
            # shellcheck source=/dev/null
            . "$RUN/lambda.env"
            set +a
            export AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$LAMBDA_PORT/.rt/tidegate-rollback"
            export AWS_LAMBDA_FUNCTION_NAME=tidegate-rollback AWS_LAMBDA_FUNCTION_VERSION=1 \
                AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128
            exec setsid "$BOOTSTRAP"
        ) </dev/null >"$RUN/lambda.log" 2>&1 &
        PIDS+=("lambda:$!")
        LAST_PID=$!
    fi
    wait_http "the Lambda" "$LAMBDA_URL/lambda-url/tidegate-rollback/" "$LAST_PID" 900 "$RUN/lambda.log"
    say "rollback Lambda on $LAMBDA_URL (invoke API and Function URL; pid $LAST_PID)"
}

play() {
    local args=(--run-dir "$RUN" --run-id "$RUN_ID" --endpoint "$LS_URL" --edge "$EDGE_URL"
        --origin "$ORIGIN_URL" --lambda-url "$LAMBDA_URL" --cli "$CLI")
    [ "$check" = 1 ] && args+=(--check)
    set +e
    "$PY" -u scripts/demo/scenario.py play "${args[@]}" 2>&1 | tee "$RUN/scenario.log"
    SCENARIO_RC=${PIPESTATUS[0]}
    set -e
}

soak() {
    set +e
    "$PY" -u scripts/demo/scenario.py soak --run-dir "$RUN" --run-id "$RUN_ID" --endpoint "$LS_URL" \
        --edge "$EDGE_URL" --origin "$ORIGIN_URL" --lambda-url "$LAMBDA_URL" \
        --minutes "${TIDEGATE_SOAK_MINUTES:-10}" --percents "${TIDEGATE_SOAK_PERCENTS:-1,50}" 2>&1 |
        tee "$RUN/soak.log"
    SCENARIO_RC=${PIPESTATUS[0]}
    set -e
}

print_where() {
    local r=${RUN#"$TIDEGATE_ROOT"/}
    say "where to look (run folder $r/):"
    say "   scenario.log        this output        result.json    steps, timings, expectations"
    say "   edge.log            wrangler dev (one JSON line per request)"
    say "   lambda.log          the Lambda (JSON audit lines: decision, action, outcome); lambda-emulator.log"
    say "   origin.log          the stage's traffic split and the metrics it published"
    say "   events/             every event delivered to the Lambda, with its answer"
    say "   control-stage.json  GET /stages/{api}/prod from the control API; status.html the dashboard's list page"
    say "   cli-status.txt      tidegate status {api}/prod: the same timeline from the CLI (docs/cli.md)"
    say "   gateway.toml        the configuration both the edge and the Lambda ran (examples/demo/gateway.toml, filled in)"
}

print_urls() {
    local api_name api_id canary web_key operator_key
    api_name=$(json_field "$RUN/aws.json" api_name)
    api_id=$(json_field "$RUN/aws.json" api_id)
    canary=$(json_field "$RUN/aws.json" canary)
    web_key=$(json_field "$RUN/secrets.json" web_key)
    operator_key=$(json_field "$RUN/secrets.json" operator_key)
    say ""
    say "the stack is running (Ctrl-C stops all of it):"
    say "   edge       $EDGE_URL/v1/catalog/books, $EDGE_URL/v1/orders/42   (health: /__tidegate/health)"
    say "   dashboard  $LAMBDA_URL/lambda-url/tidegate-rollback/   (sign in with the operator key below; /stages for JSON)"
    say "   origin     $ORIGIN_URL/__demo/stats   (the stage's traffic split and counts)"
    say "   LocalStack $LS_URL   (REST API $api_name, id $api_id)"
    say "   DynamoDB   $DDB_URL   (DynamoDB Local; the Lambda's state table $STATE_TABLE)"
    say "demo-only credentials of this run (all in ${RUN#"$TIDEGATE_ROOT"/}/secrets.json):"
    say "   curl -i -H 'x-api-key: $web_key' $EDGE_URL/v1/orders/42"
    say "   curl -H 'x-api-key: $operator_key' $LAMBDA_URL/lambda-url/tidegate-rollback/stages"
    say "release v2 as a canary at 10 %, then make it fail, and watch the Lambda take it off (relay.log):"
    say "   eval \"\$(TIDEGATE_LOCALSTACK_PORT=$LS_PORT bash scripts/localstack.sh env)\""
    say "   eval \"\$(TIDEGATE_DYNAMODB_PORT=$DDB_PORT bash scripts/dynamodb.sh env)\"   # then: aws dynamodb scan --table-name $STATE_TABLE"
    say "   aws apigateway update-stage --rest-api-id $api_id --stage-name prod --patch-operations \\"
    say "     op=replace,path=/canarySettings/deploymentId,value=$canary op=replace,path=/canarySettings/percentTraffic,value=10"
    say "   curl -X POST -d '{\"failing\": true}' $ORIGIN_URL/__demo/canary"
    say "   for i in \$(seq 100); do curl -s -o /dev/null -H 'x-api-key: $web_key' $EDGE_URL/v1/orders/\$i; done"
    say "EventBridge's part runs in the background (relay.log): alarm changes, and a schedule every 10 s"
    say "the same stage and timeline from the tidegate CLI (docs/cli.md; cargo install --path cli):"
    say "   export TIDEGATE_URL=$LAMBDA_URL/lambda-url/tidegate-rollback TIDEGATE_API_KEY=$operator_key TIDEGATE_SIGN=never"
    say "   tidegate status $api_name/prod; tidegate rollout watch $api_name/prod"
}

main() {
    local t0 rc line
    t0=$(now_ms)
    check_ports
    mkdir -p "$RUN"
    ln -sfn "$RUN_ID" "$DEMO_DIR/latest"
    # Keep the last 10 runs.
    find "$DEMO_DIR" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort | head -n -10 |
        while read -r old; do rm -rf "${DEMO_DIR:?}/$old"; done
    say "run $RUN_ID: logs and files in ${RUN#"$TIDEGATE_ROOT"/}/"
    timed "build the Worker and the Lambda" build_all
    timed "start LocalStack" start_localstack
    timed "start DynamoDB Local, create the state table" start_dynamodb
    timed "provision the REST API, deployments and alarms" provision
    timed "start the origin" start_origin
    timed "start the edge (wrangler dev)" start_edge
    timed "start the Lambda (cargo lambda watch)" start_lambda

    if [ "$mode" = dev ]; then
        start relay "$RUN/relay.log" "$PY" -u scripts/demo/scenario.py relay --run-dir "$RUN" --run-id "$RUN_ID" \
            --endpoint "$LS_URL" --edge "$EDGE_URL" --origin "$ORIGIN_URL" --lambda-url "$LAMBDA_URL"
        print_urls
        print_where
        wait
        return
    fi

    if [ "$mode" = soak ]; then
        timed "soak: a healthy canary through the edge" soak
        [ "$SCENARIO_RC" -eq 0 ] || die "false rollbacks in the soak (exit $SCENARIO_RC); see ${RUN#"$TIDEGATE_ROOT"/}/soak.log"
        say "soak complete: no false rollback (figures: ${RUN#"$TIDEGATE_ROOT"/}/soak.json)"
        return
    fi

    say ""
    say "the stack is up in $(fmt_ms $(($(now_ms) - t0))); the scenario:"
    say "  clients call the edge; the edge proxies /v1/orders to the stage. The demo origin plays the"
    say "  stage: it splits requests between v1 (base) and v2 (canary) by the stage's live canary weight"
    say "  in LocalStack and publishes API Gateway's Count/5XXError metrics to LocalStack's CloudWatch,"
    say "  where real alarms evaluate them. This script plays EventBridge (LocalStack emits no alarm"
    say "  events): it delivers alarm state changes and scheduled events to the Lambda."
    timed "play the scenario" play
    rc=$SCENARIO_RC

    say ""
    say "=== demo summary (run $RUN_ID)"
    for line in "${TIMINGS[@]}"; do
        say "   $(printf '%8s' "${line%%|*}")  ${line#*|}"
    done
    say "   $(printf '%8s' "$(fmt_ms $(($(now_ms) - t0)))")  total"
    print_where
    local api_name
    api_name=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["api_name"])' "$RUN/aws.json")
    say "step 10 ran the tidegate CLI; the command that shows the same timeline (make dev keeps the stack up for it):"
    say "   TIDEGATE_URL=$LAMBDA_URL/lambda-url/tidegate-rollback TIDEGATE_SIGN=never \\"
    say "   TIDEGATE_API_KEY=\"\$(jq -r .operator_key ${RUN#"$TIDEGATE_ROOT"/}/secrets.json)\" tidegate status $api_name/prod"
    if [ "$rc" -ne 0 ]; then
        die "the scenario did not go as expected (exit $rc); see ${RUN#"$TIDEGATE_ROOT"/}/scenario.log"
    fi
    say "demo complete"
}

main
