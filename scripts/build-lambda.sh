#!/usr/bin/env bash
# Builds the rollback Lambda with cargo-lambda (from .venv): x86_64 release,
# Amazon Linux 2023 (provided.al2023). Output:
# ${CARGO_TARGET_DIR:-target}/lambda/tidegate-rollback/bootstrap
# Extra arguments go to `cargo lambda build` (e.g. --arm64).
set -euo pipefail

TG_TAG=build-lambda
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
load_env
cd "$TIDEGATE_ROOT"

command -v cargo-lambda >/dev/null 2>&1 || die "cargo-lambda is not installed: run 'make setup'"
# cargo-lambda 1.9.2's --target-dir is broken; it honours CARGO_TARGET_DIR.
cargo lambda build --release -p tidegate-rollback "$@"
out="${CARGO_TARGET_DIR:-$TIDEGATE_ROOT/target}/lambda/tidegate-rollback/bootstrap"
[ -f "$out" ] || die "cargo lambda build finished but $out is missing"
say "built $out ($(($(stat -c %s "$out") / 1024)) KiB)"
