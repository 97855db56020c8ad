#!/usr/bin/env bash
# `make bench-micro`: the policy micro-benchmarks, native and wasm.
# 1. criterion on the native build (shared/benches/policy.rs), ~1.5 min;
# 2. the same workloads (shared/benches/support/workloads.rs) built for
#    wasm32 (bench/wasm-policy, release profile like the Worker), bound with
#    the pinned wasm-bindgen CLI and timed under node (V8, as in workerd);
# 3. a side-by-side summary: .cache/bench/micro.md (see BENCHMARKS.md).
set -euo pipefail

TG_TAG=bench-micro
# shellcheck source=../scripts/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/common.sh"
load_env
cd "$TIDEGATE_ROOT"

target="${CARGO_TARGET_DIR:-$TIDEGATE_ROOT/target}"
out="$CACHE_DIR/bench"
mkdir -p "$out"
[ -x "$WASM_BINDGEN_BIN" ] || die "$WASM_BINDGEN_BIN is missing: run 'make setup'"

say "native: cargo bench -p tidegate-policy --bench policy"
cargo bench -p tidegate-policy --bench policy

say "wasm: building bench/wasm-policy for wasm32-unknown-unknown (release)"
with_wasm_env cargo build -p tidegate-bench-wasm --release --target wasm32-unknown-unknown
rm -rf "$out/wasm-policy"
"$WASM_BINDGEN_BIN" --target nodejs --out-dir "$out/wasm-policy" \
    "$target/wasm32-unknown-unknown/release/tidegate_bench_wasm.wasm"

say "wasm: timing under node $(node --version)"
node bench/wasm-policy/run.mjs "$out/wasm-policy" "$out/micro-wasm.json"

say "summary (also in .cache/bench/micro.md)"
node bench/micro-summary.mjs "$target/criterion" "$out/micro-wasm.json" "$out/micro.md"
