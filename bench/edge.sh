#!/usr/bin/env bash
# `make bench-edge`: makes sure wrk is there (Debian package, installed with
# apt-get when missing), builds the Worker in release mode and runs
# bench/edge.mjs with the given arguments (e.g. --smoke, --json out.json).
set -euo pipefail

TG_TAG=bench-edge
# shellcheck source=../scripts/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/common.sh"
load_env

if ! command -v wrk >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || die "wrk is missing and this is not a Debian system: install wrk (https://github.com/wg/wrk)"
    say "installing wrk (apt-get install wrk)"
    if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null 2>&1; then sudo=(sudo); else die "wrk is missing: apt-get install wrk (needs root)"; fi
    "${sudo[@]}" apt-get update -qq >/dev/null &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null ||
        die "apt-get install wrk failed"
fi
bash "$TIDEGATE_ROOT/scripts/build-worker.sh" --release
cd "$TIDEGATE_ROOT"
started=$(now_ms)
node bench/edge.mjs "$@"
say "done in $(fmt_ms $(($(now_ms) - started)))"
