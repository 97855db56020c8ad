#!/usr/bin/env bash
# The dashboard in headless Chromium against the demo stack (the `dashboard`
# stage of scripts/test.sh; needs Chromium from `make setup` and the builds
# of the earlier stages, as the demo stage does).
#
#   bash tests/dashboard/run.sh [--update-docs] [demo.sh args...]
#
# Starts the demo's stack (scripts/demo.sh --dev --no-build), sends some
# traffic through the edge, puts the demo's v2 on the stage as a canary at
# 10 %, then runs chromium.mjs: sign in with the operator key, read the
# stage, pause and roll back through the forms with reasons, check each
# through the JSON API, sign out. Screenshots and logs go to
# .cache/dashboard/<run>/ (printed); --update-docs copies the stage's
# screenshot to docs/dashboard.png. The stack is stopped whatever happens.
set -euo pipefail

TG_TAG=dashboard
# shellcheck source=../../scripts/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/common.sh"
load_env
cd "$TIDEGATE_ROOT"

update_docs=0
if [ "${1:-}" = --update-docs ]; then
    update_docs=1
    shift
fi
CHROMIUM=${CHROMIUM:-$(command -v chromium || true)}
[ -n "$CHROMIUM" ] || die "Chromium is not installed: run 'make setup' (it installs Debian's chromium) or set CHROMIUM"
export CHROMIUM
OUT="$CACHE_DIR/dashboard/$(date -u +%Y%m%d-%H%M%S)-$$"
mkdir -p "$OUT"
LAMBDA_URL="http://127.0.0.1:${TIDEGATE_DEMO_LAMBDA_PORT:-9000}/lambda-url/tidegate-rollback/"
EDGE_URL="http://127.0.0.1:${TIDEGATE_DEMO_EDGE_PORT:-8787}"

# demo.sh stops everything it started when it gets TERM (its EXIT trap).
setsid bash scripts/demo.sh --dev --no-build "$@" </dev/null >"$OUT/stack.log" 2>&1 &
STACK=$!
stop_stack() {
    local rc=$?
    if kill -0 "$STACK" 2>/dev/null; then
        kill -TERM "$STACK" 2>/dev/null || true
        for _ in $(seq 1 150); do kill -0 "$STACK" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$STACK" 2>/dev/null && { warn "the demo stack did not stop in 30 s; killing its group"; kill -KILL -- "-$STACK" 2>/dev/null || true; }
    fi
    say "stack stopped (log: ${OUT#"$TIDEGATE_ROOT"/}/stack.log)"
    exit "$rc"
}
trap stop_stack EXIT
trap 'exit 130' INT TERM

say "starting the demo stack (log: ${OUT#"$TIDEGATE_ROOT"/}/stack.log)"
deadline=$(($(now_ms) + 900 * 1000))
until grep -q "the stack is running" "$OUT/stack.log" 2>/dev/null; do
    kill -0 "$STACK" 2>/dev/null || { tail -n 30 "$OUT/stack.log" >&2; die "the demo stack exited during start"; }
    (($(now_ms) < deadline)) || { tail -n 30 "$OUT/stack.log" >&2; die "the demo stack did not come up in 900 s"; }
    sleep 1
done
RUN_ID=$(sed -n 's/.*run \([0-9]\{8\}-[0-9]\{6\}-[0-9]*\): logs.*/\1/p' "$OUT/stack.log" | head -n 1)
RUN="$CACHE_DIR/demo/$RUN_ID"
[ -n "$RUN_ID" ] && [ -f "$RUN/aws.json" ] || die "cannot find the demo run's folder in the stack log"
API_NAME=$(json_field "$RUN/aws.json" api_name)
API_ID=$(json_field "$RUN/aws.json" api_id)
CANARY=$(json_field "$RUN/aws.json" canary)
WEB_KEY=$(json_field "$RUN/secrets.json" web_key)
OPERATOR_KEY=$(json_field "$RUN/secrets.json" operator_key)
say "stack up: REST API $API_NAME ($API_ID), demo run ${RUN#"$TIDEGATE_ROOT"/}"

# Some traffic for the chart, then v2 as a canary at 10 % (as an operator's
# deploy would put it there).
for i in $(seq 1 40); do curl -s -o /dev/null -H "x-api-key: $WEB_KEY" "$EDGE_URL/v1/orders/$i" || true; done
eval "$(bash scripts/localstack.sh env)"
aws apigateway update-stage --rest-api-id "$API_ID" --stage-name prod --patch-operations \
    "op=replace,path=/canarySettings/deploymentId,value=$CANARY" \
    "op=replace,path=/canarySettings/percentTraffic,value=10" >/dev/null
for i in $(seq 41 80); do curl -s -o /dev/null -H "x-api-key: $WEB_KEY" "$EDGE_URL/v1/orders/$i" || true; done
say "canary $CANARY at 10 %; 80 requests sent through the edge"

node tests/dashboard/chromium.mjs --url "$LAMBDA_URL" --key "$OPERATOR_KEY" --api "$API_NAME" \
    --stage prod --out "$OUT" 2>&1 | tee "$OUT/chromium.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || die "the dashboard spec failed (log: ${OUT#"$TIDEGATE_ROOT"/}/chromium.log)"
if [ "$update_docs" = 1 ]; then
    cp "$OUT/stage.png" docs/dashboard.png
    say "docs/dashboard.png updated"
fi
say "dashboard spec passed; screenshots in ${OUT#"$TIDEGATE_ROOT"/}/"
