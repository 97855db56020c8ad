#!/usr/bin/env bash
# Builds the edge Worker into build/ (build/worker/shim.mjs, build/index.js,
# build/index_bg.wasm) with worker-build, using the pinned wasm-bindgen,
# binaryen's wasm-opt and esbuild from .tools/env.sh, so nothing is
# downloaded. This is wrangler.toml's [build] command.
# Usage: scripts/build-worker.sh [--dev]   (default --release)
set -euo pipefail

TG_TAG=build-worker
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
load_env

profile=--release
case "${1:-}" in
    "") ;;
    --dev | --release) profile=$1 ;;
    *) die "usage: $0 [--dev|--release]" ;;
esac

command -v worker-build >/dev/null 2>&1 || die "worker-build is not installed: run 'make setup'"
for bin in "$WASM_BINDGEN_BIN" "$WASM_OPT_BIN" "$ESBUILD_BIN"; do
    [ -x "$bin" ] || die "$bin is missing: run 'make setup'"
done

cd "$TIDEGATE_ROOT/edge-worker"
# --out-dir is relative to the crate: ../build is the repo's build/.
with_wasm_env worker-build "$profile" --out-dir ../build
wasm="$TIDEGATE_ROOT/build/index_bg.wasm"
if [ ! -f "$wasm" ] || [ ! -f "$TIDEGATE_ROOT/build/index.js" ]; then
    die "worker-build finished but build/index.js or build/index_bg.wasm is missing"
fi
# Our entry module: worker-build's re-exports plus the Durable Object wrapper
# that RPC needs (see the file).
mkdir -p "$TIDEGATE_ROOT/build/worker"
cp "$TIDEGATE_ROOT/edge-worker/shim.mjs" "$TIDEGATE_ROOT/build/worker/shim.mjs"
say "built build/worker/shim.mjs; wasm $(($(stat -c %s "$wasm") / 1024)) KiB raw, $(($(gzip -c "$wasm" | wc -c) / 1024)) KiB gzip"
