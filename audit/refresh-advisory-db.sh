#!/usr/bin/env bash
# Refreshes the offline RustSec advisory snapshot in audit/advisory-db/ from a
# checkout of https://github.com/rustsec/advisory-db (CI has no GitHub access,
# so scripts/audit.sh checks against this snapshot; see
# RELIABILITY.md, "Dependency audit").
#
#   bash audit/refresh-advisory-db.sh /path/to/advisory-db
#
# Keeps only the advisories of crates in our lock files (Cargo.lock,
# fuzz/Cargo.lock and audit/checker/Cargo.lock), and records which crates were checked (CRATES) and the
# snapshot's commit and date (SNAPSHOT). Re-run it after adding a dependency:
# the audit stage warns about crates the snapshot did not cover.
# The advisories are CC0 data (LICENSE.txt is copied along).
set -euo pipefail

TG_TAG=audit
# shellcheck source=../scripts/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/common.sh"
cd "$TIDEGATE_ROOT"

src=${1:-}
[ -n "$src" ] && [ -d "$src/crates" ] ||
    die "usage: bash audit/refresh-advisory-db.sh /path/to/advisory-db (a checkout of github.com/rustsec/advisory-db, with crates/)"
out=audit/advisory-db

lock_crates() { sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.lock fuzz/Cargo.lock audit/checker/Cargo.lock | LC_ALL=C sort -u; }

rm -rf "$out"
mkdir -p "$out/crates"
kept=0
while read -r crate; do
    if [ -d "$src/crates/$crate" ]; then
        cp -R "$src/crates/$crate" "$out/crates/"
        kept=$((kept + 1))
    fi
done < <(lock_crates)
lock_crates >"$out/CRATES"
cp "$src/LICENSE.txt" "$out/LICENSE.txt"
{
    echo "source: https://github.com/rustsec/advisory-db"
    if git -C "$src" rev-parse HEAD >/dev/null 2>&1; then
        echo "commit: $(git -C "$src" rev-parse HEAD)"
        echo "date: $(git -C "$src" log -1 --format=%cI)"
    fi
    echo "crates checked: $(wc -l <"$out/CRATES") (from Cargo.lock and fuzz/Cargo.lock)"
    echo "crates with advisories kept: $kept"
} >"$out/SNAPSHOT"
say "advisory snapshot: $(find "$out/crates" -name '*.md' | wc -l) advisories of $kept crates; $(sed -n 's/^date: //p' "$out/SNAPSHOT")"
