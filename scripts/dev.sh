#!/usr/bin/env bash
# `make dev`: the demo's stack (LocalStack, DynamoDB Local with the Lambda's
# state table, the demo origin, the edge under wrangler dev, the rollback
# Lambda under cargo lambda watch), left running
# with its URLs printed; Ctrl-C stops all of it. See docs/demo.md.
#   scripts/dev.sh              the whole stack (scripts/demo.sh --dev)
#   scripts/dev.sh --edge-only  only the edge: wrangler dev with the embedded
#                               example config (port TIDEGATE_DEV_PORT, 8787);
#                               secrets from .dev.vars
set -euo pipefail

TG_TAG=dev
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
load_env
cd "$TIDEGATE_ROOT"

if [ "${1:-}" = --edge-only ]; then
    shift
    port=${TIDEGATE_DEV_PORT:-8787}
    say "wrangler dev on http://127.0.0.1:$port (health: /__tidegate/health); Ctrl-C stops it"
    exec "$TESTS_DIR/node_modules/.bin/wrangler" dev --local --ip 127.0.0.1 --port "$port" "$@"
fi
exec bash scripts/demo.sh --dev "$@"
