#!/usr/bin/env bash
# Dependency audit: `cargo audit` of Cargo.lock and fuzz/Cargo.lock against
# the offline RustSec snapshot in audit/advisory-db (CI cannot reach GitHub,
# where the advisory database lives; refresh the snapshot with
# audit/refresh-advisory-db.sh). Fails on any vulnerability advisory that is
# not listed, with its reason, in audit/ignore.txt; prints the informational
# ones (unmaintained, unsound, yanked) and warns about locked crates the
# snapshot did not check.
set -euo pipefail

TG_TAG=audit
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
load_env
cd "$TIDEGATE_ROOT"

DB=audit/advisory-db
cargo audit --version >/dev/null 2>&1 ||
    die "cargo-audit is missing: run 'make setup' (it installs cargo-audit $CARGO_AUDIT_VERSION into .tools/cargo)"
[ -d "$DB/crates" ] || die "$DB is missing: bash audit/refresh-advisory-db.sh /path/to/advisory-db"

# audit/ignore.txt: "RUSTSEC-YYYY-NNNN  why it does not affect us", # comments.
ignores=()
while read -r id why; do
    ignores+=(--ignore "$id")
    say "not failing on $id (audit/ignore.txt): ${why:0:100}..."
done < <(grep -E '^RUSTSEC-' audit/ignore.txt 2>/dev/null || true)

uncovered=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.lock fuzz/Cargo.lock | LC_ALL=C sort -u | LC_ALL=C comm -23 - "$DB/CRATES")
if [ -n "$uncovered" ]; then
    warn "crates not in the advisory snapshot's list (added since it was taken; refresh it): $(echo "$uncovered" | tr '\n' ' ')"
fi
say "advisory snapshot: $(sed -n 's/^date: //p' "$DB/SNAPSHOT") ($(sed -n 's/^commit: //p' "$DB/SNAPSHOT" | cut -c1-12)), $(find "$DB/crates" -name '*.md' | wc -l) advisories"
for lock in Cargo.lock fuzz/Cargo.lock; do
    say "cargo audit --file $lock"
    cargo audit --no-fetch --db "$DB" --file "$lock" "${ignores[@]}"
done
