#!/usr/bin/env bash
# Runs the edge Worker locally under wrangler dev (workerd), loopback only.
# wrangler runs the [build] command first and rebuilds on changes in
# edge-worker/src and shared/src. Port: TIDEGATE_DEV_PORT (default 8787).
# Secrets for local runs go in .dev.vars (read at start only).
set -euo pipefail

TG_TAG=dev
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
load_env
cd "$TIDEGATE_ROOT"

port=${TIDEGATE_DEV_PORT:-8787}
say "wrangler dev on http://127.0.0.1:$port (health: /__tidegate/health); Ctrl-C stops it"
exec "$TESTS_DIR/node_modules/.bin/wrangler" dev --local --ip 127.0.0.1 --port "$port" "$@"
