#!/usr/bin/env bash
# Dependency audit of Cargo.lock, fuzz/Cargo.lock and audit/checker/Cargo.lock
# against the offline RustSec snapshot in audit/advisory-db (CI cannot reach
# GitHub, where the advisory database lives; refresh the snapshot with
# audit/refresh-advisory-db.sh). The checker (audit/checker) is cargo-audit's
# engine, the rustsec crate, without its git/HTTP stack: it builds in about a
# minute where `cargo install cargo-audit` took over ten.
# Fails on any vulnerability advisory that is
# not listed, with its reason, in audit/ignore.txt; prints the informational
# ones (unmaintained, unsound, notice; yanked crates need the registry and are
# not checked) and warns about locked crates the
# snapshot did not check.
set -euo pipefail

TG_TAG=audit
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
load_env
cd "$TIDEGATE_ROOT"

DB=audit/advisory-db
LOCKS=(Cargo.lock fuzz/Cargo.lock audit/checker/Cargo.lock)
[ -d "$DB/crates" ] || die "$DB is missing: bash audit/refresh-advisory-db.sh /path/to/advisory-db"

target="${CARGO_TARGET_DIR:-$TIDEGATE_ROOT/target}/audit"
say "building the offline checker (audit/checker, rustsec without git/HTTP)"
cargo build -q --release --locked --manifest-path audit/checker/Cargo.toml --target-dir "$target"

# audit/ignore.txt: "RUSTSEC-YYYY-NNNN  why it does not affect us", # comments.
while read -r id why; do
    say "not failing on $id (audit/ignore.txt): ${why:0:100}..."
done < <(grep -E '^RUSTSEC-' audit/ignore.txt 2>/dev/null || true)

uncovered=$(sed -n 's/^name = "\(.*\)"$/\1/p' "${LOCKS[@]}" | LC_ALL=C sort -u | LC_ALL=C comm -23 - "$DB/CRATES")
if [ -n "$uncovered" ]; then
    warn "crates not in the advisory snapshot's list (added since it was taken; refresh it): $(echo "$uncovered" | tr '\n' ' ')"
fi
say "advisory snapshot: $(sed -n 's/^date: //p' "$DB/SNAPSHOT") ($(sed -n 's/^commit: //p' "$DB/SNAPSHOT" | cut -c1-12)), $(find "$DB/crates" -name '*.md' | wc -l) advisories"
"$target/release/tidegate-audit" "$DB" audit/ignore.txt "${LOCKS[@]}"
