#!/usr/bin/env bash
# Builds the fuzz targets in fuzz/ once, then runs each for a bounded time,
# starting from its checked-in corpus (fuzz/corpus/<target>). Fails on the
# first crash, printing the reproducer's path and the command to replay it.
#
#   bash scripts/fuzz.sh [TARGET...]        (default: every target)
#   TIDEGATE_FUZZ_SECONDS=300 bash scripts/fuzz.sh config
#
# 45 s per target by default; 15 s under CI (CI=true), where the whole run
# must stay under its time budget: a regression the corpus already reaches
# shows in seconds; long searches are run by hand (TIDEGATE_FUZZ_SECONDS=300).
#
# Stable Rust: `--sanitizer none` needs no -Z flags (AddressSanitizer would,
# and our code is unsafe-free; see RELIABILITY.md, "Fuzzing"). New inputs go
# to .cache/fuzz/corpus/<target>, not into the checked-in corpus: to keep
# good ones, minimise them (cargo fuzz cmin) and copy them over by hand.
set -euo pipefail

TG_TAG=fuzz
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
load_env
cd "$TIDEGATE_ROOT"

default_seconds=45
[ "${CI:-}" != true ] || default_seconds=15
SECONDS_PER_TARGET=${TIDEGATE_FUZZ_SECONDS:-$default_seconds}
[[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]] ||
    die "TIDEGATE_FUZZ_SECONDS must be a positive number of seconds, not '$SECONDS_PER_TARGET'"
ALL_TARGETS=(config route_match jwt_parse cache_key rollout_event)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
# Instrumented builds must not mix with the normal ones.
FUZZ_TARGET_DIR="${CARGO_TARGET_DIR:-$TIDEGATE_ROOT/target}/fuzz"
WORK="$CACHE_DIR/fuzz"
FUZZ_FLAGS=(--sanitizer none --target-dir "$FUZZ_TARGET_DIR" --fuzz-dir fuzz)

cargo fuzz --version >/dev/null 2>&1 ||
    die "cargo-fuzz is missing: run 'make setup' (it installs cargo-fuzz $CARGO_FUZZ_VERSION into .tools/cargo)"

t0=$(now_ms)
if [ ${#TARGETS[@]} -eq 1 ]; then
    cargo fuzz build "${FUZZ_FLAGS[@]}" "${TARGETS[0]}"
else
    cargo fuzz build "${FUZZ_FLAGS[@]}"
fi
say "built ${#TARGETS[@]} target(s) in $(fmt_ms $(($(now_ms) - t0)))"

# One libFuzzer run (one core) per target; as many at once as the machine has
# cores, each writing its own log and exit status, reported in order.
run_target() {
    local target=$1 log="$WORK/$1.log" t0
    t0=$(now_ms)
    rc=0
    cargo fuzz run "${FUZZ_FLAGS[@]}" "$target" "$WORK/corpus/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$WORK/artifacts/$target/" -print_final_stats=1 >"$log" 2>&1 || rc=$?
    echo "$rc $(($(now_ms) - t0))" >"$WORK/$target.rc"
}

report_target() {
    local target=$1 log="$WORK/$1.log" rc ms runs speed cov artifact
    read -r rc ms <"$WORK/$target.rc" || die "$target: the run left no exit status (log: ${log#"$TIDEGATE_ROOT"/})"
    if [ "$rc" -ne 0 ]; then
        tail -n 40 "$log" >&2
        # libFuzzer names the reproducer on its "Test unit written to" line.
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
        [ -n "$artifact" ] || die "$target: libFuzzer exited $rc with no reproducer (log: ${log#"$TIDEGATE_ROOT"/})"
        die "$target crashed: reproducer $artifact (log: ${log#"$TIDEGATE_ROOT"/}); replay with: cargo fuzz run --sanitizer none --fuzz-dir fuzz $target $artifact"
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(grep -E '^#[0-9]+' "$log" | tail -n1 | sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\) corp: \([0-9]*\).*/cov \1, features \2, corpus \3/p')
    say "$target: no crash in $(fmt_ms "$ms"): ${runs:-?} runs (${speed:-?}/s), ${cov:-no coverage line}"
}

for target in "${TARGETS[@]}"; do
    [ -d "fuzz/corpus/$target" ] || die "no seed corpus fuzz/corpus/$target (targets: ${ALL_TARGETS[*]})"
    mkdir -p "$WORK/corpus/$target" "$WORK/artifacts/$target"
    rm -f "$WORK/$target.rc"
done
parallel=$(nproc 2>/dev/null || echo 1)
batch=()
for target in "${TARGETS[@]}"; do
    run_target "$target" &
    batch+=("$target")
    if [ ${#batch[@]} -ge "$parallel" ]; then
        wait
        for done_target in "${batch[@]}"; do report_target "$done_target"; done
        batch=()
    fi
done
wait
for done_target in "${batch[@]}"; do report_target "$done_target"; done
