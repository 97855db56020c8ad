#!/usr/bin/env bash
# Builds bench/rust-floor, the thinnest Rust Worker, three times: on the
# worker crate (.cache/bench/rust-floor/worker-crate/build), on wasm-bindgen
# and web-sys alone (.cache/bench/rust-floor/raw/build), and with no Rust
# future at all (.cache/bench/rust-floor/sync/build: JS does the I/O and
# calls two synchronous wasm functions). Compare either with
# Tidegate, paired: `node bench/ab.mjs .cache/bench/rust-floor/raw/build --paths proxy`
# (and `node bench/ab.mjs io-floor|peer --paths proxy` for the same run's
# floor and peer). Measurement only; nothing ships from here.
set -euo pipefail

TG_TAG=rust-floor
# shellcheck source=../scripts/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/common.sh"
load_env
command -v worker-build >/dev/null 2>&1 || die "worker-build is not installed: run 'make setup'"
cd "$TIDEGATE_ROOT/bench/rust-floor"
for variant in worker-crate raw sync; do
    out="$TIDEGATE_ROOT/.cache/bench/rust-floor/$variant/build"
    features=()
    [ "$variant" = worker-crate ] || features=(--features "$variant")
    with_wasm_env worker-build --release --out-dir "$out" "${features[@]}"
    mkdir -p "$out/worker"
    if [ "$variant" = sync ]; then cp sync-shim.mjs "$out/worker/shim.mjs"; else cp shim.mjs "$out/worker/shim.mjs"; fi
    say "built $out ($(($(stat -c %s "$out/index_bg.wasm") / 1024)) KiB wasm)"
done
