#!/usr/bin/env bash
# Builds the rollback Lambda with cargo-lambda (from .venv; zig from its pip
# package links), release, Amazon Linux 2023 (provided.al2023).
#
# Usage: scripts/build-lambda.sh [--arm64 | --all] [cargo lambda build args...]
#   (default)  x86_64  -> ${CARGO_TARGET_DIR:-target}/lambda/tidegate-rollback/bootstrap
#   --arm64    arm64   -> ${CARGO_TARGET_DIR:-target}/lambda-arm64/tidegate-rollback/bootstrap
#   --all      both, x86_64 first (the second build reuses the host-side
#              artefacts: build scripts and proc macros)
# Each bootstrap's raw and zipped (deflate -9, as a deployment package) sizes
# are printed; a zip over the 5 MB budget fails the build.
#
# arm64 needs rustup's aarch64-unknown-linux-gnu std, which `make setup`
# tries to install. If it is missing, --all builds x86_64 only and warns (a
# machine that cannot reach rustup's server must not fail CI for it);
# --arm64 alone, or TIDEGATE_REQUIRE_ARM64=1, makes it an error.
set -euo pipefail

TG_TAG=build-lambda
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
load_env
cd "$TIDEGATE_ROOT"

FUNCTION=tidegate-rollback
ARM64_TARGET=aarch64-unknown-linux-gnu
ZIP_BUDGET_BYTES=5000000
TARGET_ROOT="${CARGO_TARGET_DIR:-$TIDEGATE_ROOT/target}"
# Where the bootstraps go: the target dir, unless the caller builds in another
# one (test.sh's background arm64 build) and wants them in the usual place.
OUT_ROOT="${TIDEGATE_LAMBDA_OUT_ROOT:-$TARGET_ROOT}"

arches=(x86_64)
case "${1:-}" in
    --arm64) arches=(arm64); shift ;;
    --all) arches=(x86_64 arm64); shift ;;
esac

command -v cargo-lambda >/dev/null 2>&1 || die "cargo-lambda is not installed: run 'make setup'"

arm64_std_present() {
    command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx "$ARM64_TARGET"
}

# zip_size FILE: bytes of FILE zipped as `bootstrap` with deflate -9.
zip_size() {
    "$VENV_DIR/bin/python" - "$1" <<'EOF'
import io, sys, zipfile
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    z.write(sys.argv[1], "bootstrap")
print(len(buf.getvalue()))
EOF
}

build() { # build ARCH [args...]
    local arch=$1 dir flag t0 out raw zipped
    shift
    case $arch in
        x86_64) dir="$OUT_ROOT/lambda" flag=--x86-64 ;;
        arm64) dir="$OUT_ROOT/lambda-arm64" flag=--arm64 ;;
    esac
    t0=$(now_ms)
    say "$arch: cargo lambda build --release $flag"
    # cargo-lambda 1.9.2's --target-dir is broken; it honours CARGO_TARGET_DIR.
    cargo lambda build --release -p "$FUNCTION" "$flag" --lambda-dir "$dir" "$@"
    out="$dir/$FUNCTION/bootstrap"
    [ -f "$out" ] || die "cargo lambda build finished but $out is missing"
    raw=$(stat -c %s "$out")
    zipped=$(zip_size "$out")
    say "$arch: built ${out#"$TIDEGATE_ROOT"/} in $(fmt_ms $(($(now_ms) - t0))): $raw B raw, $zipped B zipped (budget $ZIP_BUDGET_BYTES B)"
    [ "$zipped" -lt "$ZIP_BUDGET_BYTES" ] ||
        die "$arch bootstrap zips to $zipped B, over the $ZIP_BUDGET_BYTES B budget"
}

for arch in "${arches[@]}"; do
    if [ "$arch" = arm64 ] && ! arm64_std_present; then
        msg="the $ARM64_TARGET std is not installed (rustup could not add it during 'make setup'; see .cache/setup/rustup-arm64.log); fix rustup's access to its server and re-run 'make setup'"
        if [ "${#arches[@]}" -eq 1 ] || [ "${TIDEGATE_REQUIRE_ARM64:-0}" = 1 ]; then
            die "cannot build arm64: $msg"
        fi
        warn "arm64 bootstrap NOT built: $msg"
        continue
    fi
    build "$arch" "$@"
done
