#!/usr/bin/env bash
# The `lambda-watch` stage of scripts/test.sh: the rollback Lambda run the way
# a developer runs it, `cargo lambda watch` (a local Lambda Runtime API), fed
# the checked-in event fixtures with `cargo lambda invoke`, the AWS SDK
# pointed at LocalStack, its state table (TIDEGATE_STATE_TABLE, a unique name
# per run) in DynamoDB Local (AWS_ENDPOINT_URL_DYNAMODB). Asserts each answer.
#
# Starts LocalStack and DynamoDB Local if they are not running (and stops
# them afterwards then), and always stops its own `cargo lambda watch` (by
# process group).
# Settings (environment):
#   TIDEGATE_WATCH_PORT        invoke port of cargo lambda watch on 127.0.0.1 (default 9009)
#   TIDEGATE_LOCALSTACK_PORT   as for scripts/localstack.sh
#   TIDEGATE_DYNAMODB_PORT     as for scripts/dynamodb.sh
set -euo pipefail

TG_TAG=lambda-watch
# shellcheck source=../../scripts/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/common.sh"
load_env
cd "$TIDEGATE_ROOT"

PORT=${TIDEGATE_WATCH_PORT:-9009}
FUNCTION=tidegate-rollback
FIXTURES=shared/tests/fixtures/events
WORK="$CACHE_DIR/lambda-watch"
# The key the checked-in HTTP fixtures carry; here it is the admin key.
FIXTURE_KEY=tg_fixture_not_a_key
PY="$VENV_DIR/bin/python"

WATCH_PID=""
STARTED_LOCALSTACK=0
STARTED_DYNAMODB=0
cleanup() {
    if [ -n "$WATCH_PID" ]; then
        kill -TERM -- "-$WATCH_PID" 2>/dev/null || true
        wait "$WATCH_PID" 2>/dev/null || true
    fi
    if [ "$STARTED_LOCALSTACK" = 1 ]; then
        bash scripts/localstack.sh stop || true
    fi
    if [ "$STARTED_DYNAMODB" = 1 ]; then
        bash scripts/dynamodb.sh stop || true
    fi
}
trap cleanup EXIT

command -v cargo-lambda >/dev/null 2>&1 || die "cargo-lambda is not installed: run 'make setup'"
port_in_use "$PORT" && die "127.0.0.1:$PORT is taken; stop that process or set TIDEGATE_WATCH_PORT"
rm -rf "$WORK"
mkdir -p "$WORK"

if ! bash scripts/localstack.sh status >/dev/null; then
    STARTED_LOCALSTACK=1
fi
bash scripts/localstack.sh start
eval "$(bash scripts/localstack.sh env)"
aws_ls() { aws --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }

# The state table in DynamoDB Local (no reset there either: a unique name).
if ! bash scripts/dynamodb.sh status >/dev/null; then
    STARTED_DYNAMODB=1
fi
bash scripts/dynamodb.sh start
eval "$(bash scripts/dynamodb.sh env)"
STATE_TABLE="tg-watch-state-$(date +%s)-$$"
bash scripts/dynamodb.sh create-table "$STATE_TABLE"

# A REST API with a MOCK GET / deployed to `prod` (LocalStack has no reset:
# a unique name per run).
api_name="tg-watch-$(date +%s)-$$"
api_id=$(aws_ls apigateway create-rest-api --name "$api_name" --query id --output text)
root_id=$(aws_ls apigateway get-resources --rest-api-id "$api_id" --query 'items[?path==`/`].id' --output text)
aws_ls apigateway put-method --rest-api-id "$api_id" --resource-id "$root_id" \
    --http-method GET --authorization-type NONE >/dev/null
aws_ls apigateway put-integration --rest-api-id "$api_id" --resource-id "$root_id" \
    --http-method GET --type MOCK --request-templates '{"application/json":"{\"statusCode\": 200}"}' >/dev/null
deployment_id=$(aws_ls apigateway create-deployment --rest-api-id "$api_id" --stage-name prod --query id --output text)
canary_id=$(aws_ls apigateway create-deployment --rest-api-id "$api_id" --stage-name prod \
    --canary-settings percentTraffic=10 --query id --output text)
say "REST API $api_id ($api_name), stage prod on deployment $deployment_id, canary $canary_id at 10%"

# The alarms the checked-in alarm fixtures name, in OK. (An extended
# statistic: LocalStack does not evaluate those, so the states set here stay.)
STAGE_ALARM=orders-api-prod-5xx-rate
CANARY_ALARM=orders-api-prod-canary-5xx-rate
for alarm in "$STAGE_ALARM" "$CANARY_ALARM"; do
    aws_ls cloudwatch put-metric-alarm --alarm-name "$alarm" --namespace TidegateWatch \
        --metric-name "$alarm" --extended-statistic p99 --period 60 --evaluation-periods 1 \
        --threshold 1 --comparison-operator GreaterThanThreshold
    aws_ls cloudwatch set-alarm-state --alarm-name "$alarm" --state-value OK --state-reason lambda-watch
done

# The stage watches the alarms the checked-in alarm fixtures name.
cat >"$WORK/gateway.toml" <<EOF
[[rollback.stages]]
rest_api_id = "$api_id"
stage = "prod"
stage_alarms = ["$STAGE_ALARM"]
canary_alarms = ["$CANARY_ALARM"]
EOF
key_hash=$(printf '%s' "$FIXTURE_KEY" | sha256sum | cut -d' ' -f1)
api_keys="[{\"id\":\"ci\",\"consumer\":\"lambda-watch\",\"sha256\":\"$key_hash\",\"scopes\":[\"tidegate:admin\"]}]"

# Built first so that the first invoke does not wait on a compile.
say "building the function (debug, as cargo lambda watch runs it)"
cargo build -q -p tidegate-rollback --bin "$FUNCTION"

say "starting cargo lambda watch on 127.0.0.1:$PORT (log ${WORK#"$TIDEGATE_ROOT"/}/watch.log)"
set -m
env TIDEGATE_CONFIG_FILE="$WORK/gateway.toml" API_KEYS="$api_keys" RUST_LOG=info \
    TIDEGATE_STATE_TABLE="$STATE_TABLE" AWS_ENDPOINT_URL_DYNAMODB="$AWS_ENDPOINT_URL_DYNAMODB" \
    cargo lambda watch --ignore-changes -A 127.0.0.1 -P "$PORT" \
    </dev/null >"$WORK/watch.log" 2>&1 &
WATCH_PID=$!
set +m
t0=$(now_ms)
until port_in_use "$PORT"; do
    kill -0 "$WATCH_PID" 2>/dev/null || {
        tail -n 30 "$WORK/watch.log" >&2
        die "cargo lambda watch exited before listening"
    }
    (($(now_ms) - t0 < 60000)) || die "cargo lambda watch is not listening on $PORT after 60 s (log $WORK/watch.log)"
    sleep 0.2
done
say "watch listening after $(fmt_ms $(($(now_ms) - t0)))"

# invoke NAME FILE: prints the function's answer, kept in $WORK/NAME.json.
invoke() {
    local name=$1 file=$2
    cargo lambda invoke --invoke-address 127.0.0.1 --invoke-port "$PORT" \
        --data-file "$file" "$FUNCTION" >"$WORK/$name.json" 2>"$WORK/$name.err" || {
        cat "$WORK/$name.err" >&2
        tail -n 30 "$WORK/watch.log" >&2
        die "cargo lambda invoke with $file failed"
    }
}

# check NAME PYTHON-EXPR: asserts EXPR over `out` (the answer as JSON; for
# HTTP answers also `status` and `body`, the body parsed when it is JSON).
check() {
    local name=$1 expr=$2
    "$PY" - "$WORK/$name.json" "$expr" <<'EOF' || die "$name: expected $2; got $(cat "$WORK/$name.json")"
import json, sys
out = json.load(open(sys.argv[1]))
status = out.get("statusCode") if isinstance(out, dict) else None
body = out.get("body") if isinstance(out, dict) else None
try:
    body = json.loads(body)
except Exception:
    pass
sys.exit(0 if eval(sys.argv[2]) else 1)
EOF
    say "$name: ok ($expr)"
}

# variant NAME FIXTURE PYTHON-STATEMENTS: a copy of FIXTURE changed by the
# statements (over `ev`), for the HTTP requests that must name our stage.
variant() {
    local name=$1 fixture=$2 code=$3
    "$PY" - "$FIXTURES/$fixture" "$WORK/$name.event.json" "$api_id" "$code" <<'EOF'
import json, sys
ev = json.load(open(sys.argv[1]))
api = sys.argv[3]
exec(sys.argv[4])
json.dump(ev, open(sys.argv[2], "w"))
EOF
}

started=$(now_ms)
invoke schedule "$FIXTURES/scheduled-event.json"
check schedule "out['status'] == 'ok' and out['stages'][0]['api'] == '$api_id' and out['stages'][0]['decision']['audit']['trigger']['type'] == 'schedule' and out['stages'][0]['decision']['audit']['unreadable_alarms'] == []"

# The canary alarm fires; the EventBridge fixture reports it: canary removed.
aws_ls cloudwatch set-alarm-state --alarm-name "$CANARY_ALARM" --state-value ALARM --state-reason lambda-watch
invoke eventbridge "$FIXTURES/eventbridge-alarm-metric.json"
check eventbridge "out['stages'][0]['decision']['action']['type'] == 'remove_canary' and out['stages'][0]['outcome']['status'] == 'applied'"
canary_left=$(aws_ls apigateway get-stage --rest-api-id "$api_id" --stage-name prod --query canarySettings --output text)
[ "$canary_left" = None ] || die "eventbridge: the stage still has canary settings: $canary_left"
say "eventbridge: the stage's canary is gone in LocalStack"

# The same alarm through SNS: a transition for the same stage, nothing left to do.
invoke sns "$FIXTURES/sns-alarm-metric.json"
check sns "out['stages'][0]['api'] == '$api_id' and out['stages'][0]['decision']['audit']['trigger']['alarm'] == '$CANARY_ALARM' and out['stages'][0]['decision']['action']['type'] == 'none'"

invoke alarm-action "$FIXTURES/alarm-lambda-action.json"
check alarm-action "out['stages'][0]['decision']['audit']['trigger']['alarm'] == '$STAGE_ALARM'"

# The Function URL fixture as checked in: our admin key, a stage we do not
# manage (404 after authentication); without the key, 401.
invoke url-fixture "$FIXTURES/function-url-request.json"
check url-fixture "status == 404 and body['type'].endswith('unknown-stage')"
variant url-no-key function-url-request.json "del ev['headers']['x-api-key']"
invoke url-no-key "$WORK/url-no-key.event.json"
check url-no-key "status == 401 and body['status'] == 401"

variant url-list function-url-request.json "
ev['rawPath'] = ev['requestContext']['http']['path'] = '/stages'
ev['requestContext']['http']['method'] = 'GET'
ev.pop('body', None)"
invoke url-list "$WORK/url-list.event.json"
check url-list "status == 200 and body['stages'][0]['rest_api_id'] == '$api_id' and body['stages'][0]['deployment_id'] == '$deployment_id'"

variant url-pause function-url-request.json "
ev['rawPath'] = ev['requestContext']['http']['path'] = '/stages/%s/prod/pause' % api"
invoke url-pause "$WORK/url-pause.event.json"
check url-pause "status == 200 and body['outcome']['status'] == 'applied'"

variant apigw-show apigw-v1-request.json "
ev['path'] = ev['requestContext']['path'] = '/stages/%s/prod' % api
ev['resource'] = '/{proxy+}'
ev['httpMethod'] = ev['requestContext']['httpMethod'] = 'GET'
ev['body'] = None
ev['headers'] = {'x-api-key': '$FIXTURE_KEY'}
ev['multiValueHeaders'] = {'x-api-key': ['$FIXTURE_KEY']}"
invoke apigw-show "$WORK/apigw-show.event.json"
check apigw-show "status == 200 and body['stage'] == 'prod' and bool(body['paused'])"

say "$(grep -c '"tidegate.audit"' "$WORK/watch.log" || true) audit lines in the function's log"
say "all invocations answered as expected in $(fmt_ms $(($(now_ms) - started)))"
