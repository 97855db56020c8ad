#!/usr/bin/env bash
# LocalStack (open-source 2026.3.0, from .venv) on the host, without Docker,
# bound to 127.0.0.1 only. Used by the tests and the demo.
#
#   scripts/localstack.sh start    start in the background, wait until healthy
#   scripts/localstack.sh stop     stop the instance this script started (by PID)
#   scripts/localstack.sh status   running? (exit 0) or not (exit 3)
#   scripts/localstack.sh env      print `export ...` lines for AWS clients:
#                                  eval "$(scripts/localstack.sh env)"
#
# State, PID file and log live in .cache/localstack/. Settings (environment):
#   TIDEGATE_LOCALSTACK_DIR       that folder, for a second instance of its own
#                                 (with its own port; tests/restart.rs does so)
#   TIDEGATE_LOCALSTACK_PORT      port on 127.0.0.1 (default 4566)
#   TIDEGATE_LOCALSTACK_SERVICES  services to enable (default below)
#   TIDEGATE_LOCALSTACK_TIMEOUT   seconds to wait for health (default 90)
#   TIDEGATE_LOCALSTACK_STOP_TIMEOUT  seconds a stop waits before SIGKILL (default 20)
#
# DynamoDB: LocalStack's own provider runs DynamoDB Local, which it would
# download (a Java 21 and the jar) at first use; that cannot work offline. So
# when `dynamodb` is among the services, prepare_dynamodb (below) puts what
# its package installer looks for in place first, under FILESYSTEM_ROOT's
# var/lib/localstack/lib/: `java/21` -> this machine's Java (>= 17 is what
# DynamoDB Local needs), and `dynamodb-local/2/` -> the jars `make setup`
# installed (.tools/dynamodb), started through our loopback launcher. The
# installer then finds both "installed" and downloads nothing. (The CloudFormation
# stack of infra/template.yaml creates its state table there.)
set -euo pipefail

TG_TAG=localstack
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

LS_DIR="${TIDEGATE_LOCALSTACK_DIR:-$CACHE_DIR/localstack}"
PID_FILE="$LS_DIR/localstack.pid"
PORT_FILE="$LS_DIR/localstack.port"
LOG_FILE="$LS_DIR/localstack.log"
DEFAULT_SERVICES=apigateway,cloudwatch,events,sns,sqs,cloudformation,iam,sts,logs,dynamodb
# Shared by every instance: the launcher jar LocalStack's DynamoDB starts.
DDB_SHIM_DIR="$CACHE_DIR/dynamodb/localstack-shim"

# The port of the running instance, else the configured one.
port() {
    if [ -f "$PORT_FILE" ] && running; then
        cat "$PORT_FILE"
    else
        echo "${TIDEGATE_LOCALSTACK_PORT:-4566}"
    fi
}
url() { echo "http://127.0.0.1:$(port)"; }

# Our instance is running: the PID file names a live LocalStack process
# (checking the command line guards against a reused PID).
running() {
    local pid
    [ -f "$PID_FILE" ] || return 1
    pid=$(cat "$PID_FILE")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'localstack.runtime.main'
}

healthy() { curl -fsS --max-time 2 "$(url)/_localstack/health" >/dev/null 2>&1; }

# What LocalStack's DynamoDB package installer checks for (see the header):
#   <var_libs>/java/21/bin/java                 -> the system Java (>= 17)
#   <var_libs>/dynamodb-local/2/DynamoDBLocal.jar  (its install marker)
#   <var_libs>/dynamodb-local/2/ddb-local-loader-0.1.jar  (its -javaagent)
# LocalStack runs `java -javaagent:<loader> -Djava.library.path=<dir>/DynamoDBLocal_lib
# -jar <dir>/DynamoDBLocal.jar -port N -inMemory`. Our DynamoDBLocal.jar is a
# small jar whose Main-Class is scripts/dynamodb/LoopbackDynamoDBLocal (so the
# server binds 127.0.0.1, not every interface, on its random port) and whose
# Class-Path names the real jar beside it; the loader is the same jar (its
# Premain-Class does nothing: the real loader only patches the GSI limit).
prepare_dynamodb() {
    local var_libs="$1/var/lib/localstack/lib" java_bin java_home lib
    command -v java >/dev/null 2>&1 ||
        die "LocalStack's DynamoDB needs Java >= 17: run 'make setup' (or leave dynamodb out of TIDEGATE_LOCALSTACK_SERVICES)"
    lib=$(dynamodb_lib_dir)
    java_bin=$(readlink -f "$(command -v java)")
    java_home=${java_bin%/bin/java}
    [ -x "$java_home/bin/java" ] || die "cannot tell JAVA_HOME from $java_bin"
    dynamodb_build_launcher "$DDB_SHIM_DIR/classes"
    if [ ! -f "$DDB_SHIM_DIR/DynamoDBLocal.jar" ] || [ "$DDB_SHIM_DIR/classes/.stamp" -nt "$DDB_SHIM_DIR/DynamoDBLocal.jar" ]; then
        mkdir -p "$DDB_SHIM_DIR/classes/META-INF"
        printf '%s\n' 'Manifest-Version: 1.0' 'Main-Class: LoopbackDynamoDBLocal' \
            'Premain-Class: LoopbackDynamoDBLocal' 'Class-Path: DynamoDBLocal-aws.jar' \
            >"$DDB_SHIM_DIR/classes/META-INF/MANIFEST.MF"
        (cd "$DDB_SHIM_DIR/classes" && "$VENV_DIR/bin/python" -m zipfile -c "$DDB_SHIM_DIR/DynamoDBLocal.jar.tmp" \
            META-INF LoopbackDynamoDBLocal.class) || die "could not build $DDB_SHIM_DIR/DynamoDBLocal.jar"
        mv "$DDB_SHIM_DIR/DynamoDBLocal.jar.tmp" "$DDB_SHIM_DIR/DynamoDBLocal.jar"
        ln -sfn DynamoDBLocal.jar "$DDB_SHIM_DIR/ddb-local-loader-0.1.jar"
    fi
    ln -sfn "$lib/DynamoDBLocal.jar" "$DDB_SHIM_DIR/DynamoDBLocal-aws.jar"
    ln -sfn "$lib/DynamoDBLocal_lib" "$DDB_SHIM_DIR/DynamoDBLocal_lib"
    mkdir -p "$var_libs/java" "$var_libs/dynamodb-local"
    ln -sfn "$java_home" "$var_libs/java/21"
    ln -sfn "$DDB_SHIM_DIR" "$var_libs/dynamodb-local/2"
}

cmd_start() {
    local port pid started
    if running; then
        say "already running (pid $(cat "$PID_FILE"), $(url))"
        wait_healthy "$(now_ms)"
        return
    fi
    [ -x "$VENV_DIR/bin/python" ] || die ".venv is missing: run 'make setup'"
    port=${TIDEGATE_LOCALSTACK_PORT:-4566}
    port_in_use "$port" &&
        die "127.0.0.1:$port is taken by another process; stop it or set TIDEGATE_LOCALSTACK_PORT"
    mkdir -p "$LS_DIR/fs"
    started=$(now_ms)
    local services=${TIDEGATE_LOCALSTACK_SERVICES:-$DEFAULT_SERVICES}
    case ",$services," in *,dynamodb,*) prepare_dynamodb "$LS_DIR/fs" ;; esac
    # The host-mode settings (see docs/setup.md): OVERRIDE_IN_DOCKER=0 because
    # the sandbox has /.dockerenv; hypercorn because the default server binds
    # 0.0.0.0 whatever GATEWAY_LISTEN says; no DNS server, no cert download.
    # setsid: its own process group, so stop can end it and its children.
    env OVERRIDE_IN_DOCKER=0 \
        FILESYSTEM_ROOT="$LS_DIR/fs" \
        GATEWAY_SERVER=hypercorn \
        GATEWAY_LISTEN="127.0.0.1:$port" \
        LOCALSTACK_HOST="127.0.0.1:$port" \
        DNS_ADDRESS=0 \
        SKIP_SSL_CERT_DOWNLOAD=1 \
        DISABLE_EVENTS=1 \
        DYNAMODB_IN_MEMORY=1 \
        SERVICES="$services" \
        setsid "$VENV_DIR/bin/python" -m localstack.runtime.main \
        </dev/null >"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"
    echo "$port" >"$PORT_FILE"
    say "starting (pid $pid, http://127.0.0.1:$port, log ${LOG_FILE#"$TIDEGATE_ROOT"/})"
    wait_healthy "$started"
}

wait_healthy() {
    service_wait_healthy LocalStack "$1" "${TIDEGATE_LOCALSTACK_TIMEOUT:-90}" 0.3
}

cmd_stop() { service_stop "${TIDEGATE_LOCALSTACK_STOP_TIMEOUT:-20}"; }

cmd_status() {
    if running; then
        if healthy; then
            say "running (pid $(cat "$PID_FILE"), $(url), healthy)"
        else
            say "running (pid $(cat "$PID_FILE"), $(url), not answering /_localstack/health yet)"
        fi
        return 0
    fi
    say "not running"
    return 3
}

cmd_env() {
    cat <<EOF
export AWS_ENDPOINT_URL=$(url)
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_EC2_METADATA_DISABLED=true
export AWS_PAGER=
EOF
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *)
        echo "usage: $0 start|stop|status|env" >&2
        exit 2
        ;;
esac
