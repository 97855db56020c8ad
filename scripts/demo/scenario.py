"""The demo's scenario driver (run by scripts/demo.sh; see docs/demo.md).

Subcommands, all working in one run folder (.cache/demo/<run>/):
  prepare    demo-only secrets, the rendered gateway config, the wrangler
             config and the Lambda's environment file
  provision  in LocalStack: the REST API, its base deployment on stage
             `prod`, the canary deployment (not yet live) and the two alarms
  play       the scenario, step by step, with an expectation on each step
  relay      (make dev) plays EventBridge: delivers alarm state changes and a
             scheduled event every few seconds to the Lambda, until stopped

What is emulated, and why (LocalStack cannot do it): API Gateway's traffic
split and metrics are done by the demo origin (origin.py); EventBridge's
delivery of alarm state changes and schedules is done here. The alarms are
real CloudWatch alarms in LocalStack, evaluated on the published metrics.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

import boto3
from botocore.config import Config

FUNCTION = "tidegate-rollback"
STAGE = "prod"
ISSUER = "https://idp.demo.tidegate.test/"
AUDIENCE = "https://api.demo.tidegate.test"
# The canary's last step before it starts failing (of canary_steps in
# examples/demo/gateway.toml).
CANARY_TARGET = 50.0
START_PERCENT = 10.0
BAKE_SECONDS = 10.0


# --------------------------------------------------------------------------
# Output and expectations
# --------------------------------------------------------------------------

class Expectations:
    """Every step states what must hold. With --check the first miss ends
    the run (exit 1); without it, a miss is reported and the story goes on,
    and the run still exits 1 at the end."""

    def __init__(self, check):
        self.check = check
        self.missed = []

    def expect(self, ok, what, detail=""):
        if ok:
            say(f"   ok: {what}")
            return True
        msg = f"{what}{': ' + detail if detail else ''}"
        self.missed.append(msg)
        if self.check:
            fail(f"expectation failed: {msg}")
        warn(f"expectation failed: {msg}")
        return False


def say(msg):
    print(f"==> [demo] {msg}", flush=True)


def warn(msg):
    print(f"==> [demo] WARNING: {msg}", file=sys.stderr, flush=True)


def fail(msg):
    print(f"==> [demo] ERROR: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def fmt_s(seconds):
    return f"{seconds:.1f}s"


# --------------------------------------------------------------------------
# prepare: secrets and rendered configuration
# --------------------------------------------------------------------------

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def key_record(key_id, consumer, key, scopes, limits=None):
    rec = {"id": key_id, "consumer": consumer, "sha256": hashlib.sha256(key.encode()).hexdigest(), "scopes": scopes}
    if limits:
        rec["limits"] = limits
    return rec


def cmd_prepare(a):
    run = Path(a.run_dir)
    names = {
        "api_name": f"tidegate-demo-{a.run_id}",
        "stage_alarm": f"tidegate-demo-{a.run_id}-prod-5xx",
        "canary_alarm": f"tidegate-demo-{a.run_id}-prod-canary-5xx",
    }
    # Demo-only credentials, new for every run, kept in the run folder
    # (mode 600) so `make dev` can print them; never used anywhere else.
    sec = {
        "hs_secret": b64url(secrets.token_bytes(32)),
        "web_key": "tgdemo_web_" + secrets.token_hex(16),
        "trial_key": "tgdemo_trial_" + secrets.token_hex(16),
        "operator_key": "tgdemo_operator_" + secrets.token_hex(16),
        "edge_admin_key": "tgdemo_edgeadmin_" + secrets.token_hex(16),
        "health_secret": b64url(secrets.token_bytes(36)),
    }
    api_keys = [
        key_record("key_web", "web-app", sec["web_key"], ["catalog:read", "orders:read"]),
        key_record("key_trial", "trial-user", sec["trial_key"], ["orders:read"], {"per-caller": 3}),
        key_record("key_operator", "operator", sec["operator_key"], ["tidegate:admin"]),
    ]
    values = {
        "ORIGIN": a.origin,
        "API_NAME": names["api_name"],
        "STAGE_ALARM": names["stage_alarm"],
        "CANARY_ALARM": names["canary_alarm"],
        "HS_SECRET": sec["hs_secret"],
        "HEALTH_URL": a.health_url,
        "EDGE_HEALTH_URL": a.edge_health_url,
    }
    lines = []
    # Placeholders are filled outside comments only (the header names them).
    for n, line in enumerate(Path(a.template).read_text().splitlines(), 1):
        if not line.lstrip().startswith("#"):
            line = re.sub(r"\{\{([A-Z_]+)\}\}", lambda m: values.get(m.group(1), m.group(0)), line)
            if "{{" in line:
                fail(f"{a.template}:{n}: unknown placeholder in: {line.strip()}")
        lines.append(line)
    text = "\n".join(lines) + "\n"
    (run / "gateway.toml").write_text(text)

    # wrangler config for this run: the built Worker, the rendered config as
    # the TIDEGATE_CONFIG var (a TOML basic string: JSON's escapes are valid
    # TOML), its own state folder. Secrets go in .dev.vars beside it.
    root = Path(a.root)
    build = ""
    if a.rebuild:
        build = (
            "\n[build]\n"
            f"command = {json.dumps('bash ' + str(root / 'scripts/build-worker.sh'))}\n"
            f"cwd = {json.dumps(str(root))}\n"
            f"watch_dir = {json.dumps([str(root / 'edge-worker/src'), str(root / 'shared/src')])}\n"
        )
    (run / "wrangler.toml").write_text(
        "# Generated by scripts/demo/scenario.py for one demo run.\n"
        'name = "tidegate-edge-demo"\n'
        f"main = {json.dumps(str(root / 'build/worker/shim.mjs'))}\n"
        f"compatibility_date = {json.dumps(a.compatibility_date)}\n"
        f"{build}\n"
        "[vars]\n"
        f"TIDEGATE_CONFIG = {json.dumps(text)}\n\n"
        "[[kv_namespaces]]\n"
        'binding = "API_KEYS_KV"\nid = "tidegate-demo-keys"\n\n'
        "[[durable_objects.bindings]]\n"
        'name = "THROTTLE"\nclass_name = "Throttle"\n\n'
        "[[durable_objects.bindings]]\n"
        'name = "HEALTH"\nclass_name = "HealthMonitor"\n\n'
        '[[migrations]]\ntag = "v1"\nnew_sqlite_classes = ["Throttle"]\n\n'
        '[[migrations]]\ntag = "v2"\nnew_sqlite_classes = ["HealthMonitor"]\n'
    )
    keys_json = json.dumps(api_keys, separators=(",", ":"))
    write_private(run / ".dev.vars", f"API_KEYS='{keys_json}'\nADMIN_KEY='{sec['edge_admin_key']}'\n"
                  f"TIDEGATE_HEALTH_SECRET='{sec['health_secret']}'\n")
    write_private(
        run / "lambda.env",
        f"TIDEGATE_CONFIG_FILE={run / 'gateway.toml'}\n"
        f"API_KEYS='{keys_json}'\n"
        f"AWS_ENDPOINT_URL={a.endpoint}\n"
        "AWS_REGION=us-east-1\nAWS_DEFAULT_REGION=us-east-1\n"
        "AWS_ACCESS_KEY_ID=test\nAWS_SECRET_ACCESS_KEY=test\nAWS_EC2_METADATA_DISABLED=true\n"
        "RUST_LOG=info\n"
        f"TIDEGATE_HEALTH_SECRET={sec['health_secret']}\n"
        # The dashboard's "Live at the edge" panel reads the edge with its admin key.
        f"TIDEGATE_EDGE_ADMIN_KEY={sec['edge_admin_key']}\n",
    )
    write_private(run / "secrets.json", json.dumps(sec, indent=2) + "\n")
    (run / "names.json").write_text(json.dumps(names, indent=2) + "\n")
    say(f"config rendered: {rel(run / 'gateway.toml')} (API {names['api_name']}); demo-only keys in {rel(run / 'secrets.json')}")


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def rel(path):
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------
# AWS (LocalStack)
# --------------------------------------------------------------------------

def clients(endpoint):
    cfg = Config(retries={"max_attempts": 3}, connect_timeout=3, read_timeout=10)
    s = boto3.session.Session(region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    return s.client("apigateway", endpoint_url=endpoint, config=cfg), s.client(
        "cloudwatch", endpoint_url=endpoint, config=cfg
    )


def alarm_definition(name, stage_dimension, api_name, description):
    # A simple alarm (LocalStack evaluates those; metric-math ones never):
    # at least 3 5XX errors in a 10-second period. Production alarms would
    # use a 1-minute period and an error *rate*; see docs/demo.md.
    return dict(
        AlarmName=name,
        AlarmDescription=description,
        Namespace="AWS/ApiGateway",
        MetricName="5XXError",
        Dimensions=[{"Name": "ApiName", "Value": api_name}, {"Name": "Stage", "Value": stage_dimension}],
        Statistic="Sum",
        Period=10,
        EvaluationPeriods=1,
        Threshold=3,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching",
    )


def cmd_provision(a):
    run = Path(a.run_dir)
    names = json.loads((run / "names.json").read_text())
    apigw, cw = clients(a.endpoint)
    api = apigw.create_rest_api(name=names["api_name"], description="Tidegate demo")
    api_id = api["id"]
    # A create that timed out on a loaded machine and was retried leaves a
    # second API of the same name, and the Lambda (rightly) will not guess
    # between them: keep only the one we got.
    for other in apigw.get_rest_apis(limit=500).get("items") or []:
        if other.get("name") == names["api_name"] and other["id"] != api_id:
            apigw.delete_rest_api(restApiId=other["id"])
            warn(f"deleted {other['id']}, a duplicate of {api_id} left by a retried CreateRestApi")
    root = next(r["id"] for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    proxy = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="{proxy+}")["id"]
    for rid in (root, proxy):
        apigw.put_method(restApiId=api_id, resourceId=rid, httpMethod="ANY", authorizationType="NONE")
        apigw.put_integration(
            restApiId=api_id,
            resourceId=rid,
            httpMethod="ANY",
            type="MOCK",
            requestTemplates={"application/json": '{"statusCode": 200}'},
        )
    base = apigw.create_deployment(restApiId=api_id, stageName=STAGE, description="v1 (known-good)")["id"]
    # The release to come: a deployment not yet on the stage. (Put on the
    # stage later by UpdateStage: LocalStack's CreateDeployment on an
    # existing stage would drop its variables, i.e. Tidegate's bookkeeping.)
    canary = apigw.create_deployment(restApiId=api_id, description="v2 (the release)")["id"]
    cw.put_metric_alarm(
        **alarm_definition(names["stage_alarm"], STAGE, names["api_name"], "5XX errors on the prod stage")
    )
    cw.put_metric_alarm(
        **alarm_definition(
            names["canary_alarm"], f"{STAGE}/Canary", names["api_name"], "5XX errors on the prod canary"
        )
    )
    aws = {"api_id": api_id, "api_name": names["api_name"], "stage": STAGE, "base": base, "canary": canary, **names}
    (run / "aws.json").write_text(json.dumps(aws, indent=2) + "\n")
    say(
        f"REST API {names['api_name']} ({api_id}): stage {STAGE} on deployment {base} (v1); "
        f"deployment {canary} (v2) ready as the canary; alarms {names['stage_alarm']}, {names['canary_alarm']}"
    )


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def http(method, url, headers=None, body=None, timeout=30):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Response(r.status, r.getheaders(), r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, e.headers.items(), e.read())


def jwt(secret_b64, claims, kid="demo-1"):
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    signing = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    key = base64.urlsafe_b64decode(secret_b64 + "=" * (-len(secret_b64) % 4))
    sig = hmac.new(key, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{b64url(sig)}"


def user_token(secret_b64, sub, scope):
    now = int(time.time())
    return jwt(secret_b64, {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "scope": scope, "iat": now, "exp": now + 900})


# --------------------------------------------------------------------------
# play: the scenario
# --------------------------------------------------------------------------

class Load:
    """Clients at a steady rate through the edge, on a thread: counts by
    release and status, and the time of the first failing response."""

    def __init__(self, demo, rate=10.0):
        self.demo, self.period = demo, 1.0 / rate
        self.seen = {"base": 0, "canary": 0, "5xx": 0, "other": 0}
        self.first_failure = None
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        callers = [self.demo.web, self.demo.alice]
        i, next_at = 0, time.monotonic()
        while not self.stop_event.is_set():
            r = self.demo.edge(f"/v1/orders/{2000 + i}", callers[i % 2])
            if r.status >= 500:
                self.seen["5xx"] += 1
                if self.first_failure is None:
                    self.first_failure = time.monotonic()
            elif r.status != 200:
                self.seen["other"] += 1
            release = r.headers.get("x-demo-release")
            if release in ("base", "canary"):
                self.seen[release] += 1
            i += 1
            next_at += self.period
            time.sleep(max(0.0, next_at - time.monotonic()))

    def stop(self):
        self.stop_event.set()
        self.thread.join()
        return self.seen

    def total(self):
        return self.seen["base"] + self.seen["canary"] + self.seen["other"]


class Demo:
    def __init__(self, a):
        self.a = a
        self.run = Path(a.run_dir)
        self.aws = json.loads((self.run / "aws.json").read_text())
        self.sec = json.loads((self.run / "secrets.json").read_text())
        self.apigw, self.cw = clients(a.endpoint)
        self.x = Expectations(a.check)
        self.steps = []  # (title, seconds)
        self.facts = []
        self.events_dir = self.run / "events"
        self.events_dir.mkdir(exist_ok=True)
        self.invocations = 0
        self.alice = {"authorization": "Bearer " + user_token(self.sec["hs_secret"], "alice", "catalog:read orders:read")}
        self.web = {"x-api-key": self.sec["web_key"]}
        self.trial = {"x-api-key": self.sec["trial_key"]}
        self.operator = {"x-api-key": self.sec["operator_key"]}

    # -- helpers -----------------------------------------------------------

    def edge(self, path, headers):
        return http("GET", self.a.edge + path, headers)

    def stage(self):
        return self.apigw.get_stage(restApiId=self.aws["api_id"], stageName=STAGE)

    def put_canary(self, percent):
        """v2 on the stage as its canary at `percent` (UpdateStage, as a pipeline would)."""
        self.apigw.update_stage(
            restApiId=self.aws["api_id"],
            stageName=STAGE,
            patchOperations=[
                {"op": "replace", "path": "/canarySettings/deploymentId", "value": self.aws["canary"]},
                {"op": "replace", "path": "/canarySettings/percentTraffic", "value": str(percent)},
            ],
        )

    def invoke(self, event, label):
        """Delivers an event to the Lambda as its trigger would (the Lambda
        invoke API that `cargo lambda watch` serves); saves both sides."""
        self.invocations += 1
        n = self.invocations
        (self.events_dir / f"{n:02d}-{label}.event.json").write_text(json.dumps(event, indent=2) + "\n")
        r = http("POST", f"{self.a.lambda_url}/2015-03-31/functions/{FUNCTION}/invocations", body=event, timeout=60)
        out = r.json()
        (self.events_dir / f"{n:02d}-{label}.response.json").write_text(
            json.dumps(out, indent=2) + "\n" if out is not None else r.body.decode(errors="replace")
        )
        if r.status != 200 or not isinstance(out, dict):
            fail(f"the Lambda answered {r.status} to the {label} event: {r.body[:300]!r}")
        return out

    @staticmethod
    def action(out):
        try:
            a = out["stages"][0]["decision"]["action"]
        except (KeyError, IndexError, TypeError):
            return "no-decision", out
        if a.get("type") == "none":
            return "none:" + str((a.get("reason") or {}).get("kind")), a
        return a.get("type"), a

    @staticmethod
    def outcome(out):
        try:
            return out["stages"][0]["outcome"]["status"]
        except (KeyError, IndexError, TypeError):
            return None

    def tick(self):
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "000000000000",
            "time": now,
            "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:000000000000:rule/tidegate-demo-schedule"],
            "detail": {},
        }
        return self.invoke(event, "schedule")

    def traffic(self, n, who=None):
        """n requests to the stage through the edge; counts by release and status."""
        seen = {"base": 0, "canary": 0, "5xx": 0, "other": 0}
        callers = [who] if who else [self.web, self.alice]
        for i in range(n):
            r = self.edge(f"/v1/orders/{1000 + i}", callers[i % len(callers)])
            if r.status >= 500:
                seen["5xx"] += 1
            elif r.status != 200:
                seen["other"] += 1
            release = r.headers.get("x-demo-release")
            if release in ("base", "canary"):
                seen[release] += 1
        return seen

    def step(self, title, fn):
        say("")
        say(f"--- {title}")
        t0 = time.monotonic()
        fn()
        took = time.monotonic() - t0
        self.steps.append((title, took))
        say(f"   ({fmt_s(took)})")

    # -- the steps -----------------------------------------------------------

    def s_cache(self):
        path = f"/v1/catalog/books?run={self.a.run_id}"
        first = self.edge(path, self.alice)
        say(f"alice (JWT) GET {path.split('?')[0]} -> {first.status}, X-Cache-Status: {first.headers.get('x-cache-status')}")
        second = self.edge(path, self.web)
        say(f"web-app (API key) GET the same -> {second.status}, X-Cache-Status: {second.headers.get('x-cache-status')}")
        self.x.expect(first.status == 200 and second.status == 200, "both reads answered 200", f"{first.status}, {second.status}")
        self.x.expect(first.headers.get("x-cache-status") == "MISS", "first read is a cache MISS (went to the origin)")
        self.x.expect(second.headers.get("x-cache-status") == "HIT", "second read is a cache HIT (served by the edge)")
        self.x.expect("x-request-id" in first.headers, "every response carries x-request-id")

    def s_refused(self):
        forged = jwt(b64url(secrets.token_bytes(32)), {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory",
                                                       "scope": "orders:read", "iat": int(time.time()), "exp": int(time.time()) + 600})
        r = self.edge("/v1/orders/1", {"authorization": "Bearer " + forged})
        problem = r.json() or {}
        say(f"mallory (JWT signed with the wrong key) -> {r.status} {r.headers.get('content-type')}: {problem.get('title')}")
        self.x.expect(r.status == 401, "a token with a bad signature is refused with 401", str(r.status))
        self.x.expect(r.headers.get("content-type", "").startswith("application/problem+json"), "the refusal is problem+json")
        self.x.expect("www-authenticate" in r.headers, "the refusal says how to authenticate (WWW-Authenticate)")
        r = self.edge("/v1/orders/1", {"x-api-key": "tgdemo_not_a_key"})
        say(f"an unknown API key -> {r.status}")
        self.x.expect(r.status == 401, "an unknown API key is refused with 401", str(r.status))

    def s_throttle(self):
        statuses, limited = [], None
        for i in range(8):
            r = self.edge(f"/v1/orders/{i}", self.trial)
            statuses.append(r.status)
            if r.status == 429 and limited is None:
                limited = r
        say(f"trial-user (API key, limit 3 per minute) sends 8 requests -> {' '.join(map(str, statuses))}")
        self.x.expect(statuses[:3] == [200] * 3, "the first 3 requests pass", str(statuses))
        self.x.expect(statuses[3:] == [429] * 5, "every request over the limit is refused with 429", str(statuses))
        if limited is not None:
            h = limited.headers
            say(f"429 headers: Retry-After: {h.get('retry-after')}; RateLimit-Policy: {h.get('ratelimit-policy')}; RateLimit: {h.get('ratelimit')}")
            self.x.expect("retry-after" in h, "the 429 has Retry-After")
            self.x.expect("ratelimit" in h and "ratelimit-policy" in h, "the 429 has RateLimit and RateLimit-Policy headers")

    def s_known_good(self):
        say(f"stage {STAGE} runs deployment {self.aws['base']} (v1); the Lambda's schedule ticks until it has baked {BAKE_SECONDS:.0f}s")
        self.traffic(10)
        deadline = time.monotonic() + BAKE_SECONDS + 20
        kind = None
        while time.monotonic() < deadline:
            kind, _ = self.action(self.tick())
            say(f"scheduled event -> {kind}")
            if kind == "record_known_good":
                break
            time.sleep(1.0)
        self.x.expect(kind == "record_known_good", f"deployment {self.aws['base']} is recorded as known-good", str(kind))

    def s_canary_release(self):
        self.put_canary(START_PERCENT)
        say(f"v2 ({self.aws['canary']}) goes out as a canary on {STAGE} at {START_PERCENT:.0f} % (UpdateStage)")
        time.sleep(0.8)  # the origin reads the stage every 0.3 s
        seen = self.traffic(40)
        say(f"40 requests through the edge -> base {seen['base']}, canary {seen['canary']}, 5xx {seen['5xx']}")
        self.x.expect(seen["canary"] == 4 and seen["base"] == 36, "the stage splits 10 % of requests to the canary", str(seen))
        self.x.expect(seen["5xx"] == 0, "no errors while the canary is healthy")

    def s_step_up(self):
        percent = START_PERCENT
        # The canary is judged on metrics from the first whole minute after
        # it appeared (an earlier canary's errors share its dimension), then
        # each step bakes BAKE_SECONDS: up to about two minutes here.
        deadline = time.monotonic() + 150
        while percent < CANARY_TARGET and time.monotonic() < deadline:
            seen = self.traffic(30)
            time.sleep(1.2)  # the origin publishes metrics every second
            out = self.tick()
            kind, act = self.action(out)
            if kind == "set_canary_percent":
                percent = float(act.get("to_percent", act.get("percent", percent)))
                cur = (self.stage().get("canarySettings") or {}).get("percentTraffic")
                say(f"traffic {seen['base']} base / {seen['canary']} canary, no errors; scheduled event -> canary {cur:.0f} %")
                percent = float(cur or percent)
            else:
                say(f"traffic {seen['base']} base / {seen['canary']} canary; scheduled event -> {kind} (baking)")
        self.x.expect(percent >= CANARY_TARGET, f"the healthy canary stepped up to {CANARY_TARGET:.0f} %", f"at {percent} %")
        self.facts.append(f"canary stepped {START_PERCENT:.0f} % -> {percent:.0f} % while healthy")

    def s_failure(self):
        # This failure shows the alarm path alone: answers carry no release
        # header, so the edge cannot tell the canary from the base (and the
        # demo's stage threshold is above the 50 % this failure makes).
        r = http("POST", self.a.origin + "/__demo/attribution", body={"attribution": False})
        self.x.expect(r.status == 200, "the origin leaves out x-tidegate-release (the alarm path alone)")
        r = http("POST", self.a.origin + "/__demo/canary", body={"failing": True})
        self.x.expect(r.status == 200, "the origin's canary release is told to fail")
        failing_at = time.monotonic()
        self.failing_at = failing_at
        say("v2 now answers 500; clients keep calling through the edge; the origin publishes 5XXError for prod/Canary")
        say(f"waiting for LocalStack to evaluate alarm {self.aws['canary_alarm']} (period 10 s, >= 3 errors)")
        load = Load(self)
        alarm = None
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            a = self.cw.describe_alarms(AlarmNames=[self.aws["canary_alarm"]])["MetricAlarms"][0]
            if a["StateValue"] == "ALARM":
                alarm = a
                break
            time.sleep(0.5)
        self.alarm_fired_at = time.monotonic()
        self.x.expect(alarm is not None, f"alarm {self.aws['canary_alarm']} fired (state ALARM)")
        if alarm is None:
            load.stop()
            fail("the canary alarm never fired; nothing more to show")
        say(f"ALARM after {fmt_s(self.alarm_fired_at - failing_at)}: {alarm['StateReason']}")
        self.facts.append(f"alarm fired {fmt_s(self.alarm_fired_at - failing_at)} after the canary started failing")
        self.alarm = alarm
        self.load = load

    def alarm_event(self, alarm):
        ts = alarm["StateUpdatedTimestamp"].astimezone(timezone.utc)
        stamp = ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}+0000"
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch",
            "account": "000000000000",
            "time": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1",
            "resources": [alarm["AlarmArn"]],
            "detail": {
                "alarmName": alarm["AlarmName"],
                "state": {"value": alarm["StateValue"], "reason": alarm.get("StateReason", ""), "timestamp": stamp},
                "previousState": {"value": "OK", "reason": "", "timestamp": stamp},
                "configuration": {
                    "description": alarm.get("AlarmDescription", ""),
                    "metrics": [{
                        "id": "m1",
                        "metricStat": {
                            "metric": {
                                "namespace": alarm["Namespace"],
                                "name": alarm["MetricName"],
                                "dimensions": {d["Name"]: d["Value"] for d in alarm["Dimensions"]},
                            },
                            "period": alarm["Period"],
                            "stat": alarm["Statistic"],
                        },
                        "returnData": True,
                    }],
                },
            },
        }

    def s_rollback(self):
        say("EventBridge's part (LocalStack emits no alarm events): the state change goes to the Lambda")
        t0 = time.monotonic()
        out = self.invoke(self.alarm_event(self.alarm), "alarm")
        took = time.monotonic() - t0
        kind, act = self.action(out)
        say(f"Lambda -> {kind} ({self.outcome(out)}) in {fmt_s(took)}")
        self.x.expect(kind == "remove_canary" and self.outcome(out) == "applied", "the Lambda removed the canary", f"{kind}/{self.outcome(out)}")
        removed_at = time.monotonic()
        self.facts.append(f"canary removed {fmt_s(removed_at - self.failing_at)} after it started failing "
                          f"({fmt_s(removed_at - self.alarm_fired_at)} after the alarm fired)")
        again = self.invoke(self.alarm_event(self.alarm), "alarm-redelivered")
        kind2, _ = self.action(again)
        say(f"the same event delivered again -> {kind2}")
        self.x.expect(kind2 == "none:duplicate", "a redelivered event changes nothing", kind2)
        load = self.load
        first = load.first_failure or self.failing_at
        errors_until_removed = load.seen["5xx"]
        self.paths = getattr(self, "paths", {})
        self.paths["alarm"] = {"first_failure_to_removal_s": round(removed_at - first, 2),
                               "client_errors": errors_until_removed}
        time.sleep(1.0)
        load.stop()
        s = self.stage()
        say(f"stage {STAGE}: deployment {s.get('deploymentId')}, canary {s.get('canarySettings') or 'none'}")
        self.x.expect(s.get("deploymentId") == self.aws["base"], f"the stage stays on known-good {self.aws['base']}")
        self.x.expect(not s.get("canarySettings"), "no canary on the stage")
        seen = self.traffic(20)
        say(f"20 more requests -> base {seen['base']}, canary {seen['canary']}, 5xx {seen['5xx']}")
        self.x.expect(seen["base"] == 20 and seen["5xx"] == 0, "all traffic is back on v1, without errors", str(seen))
        lt = self.load.seen
        self.facts.append(f"while failing, clients saw {lt['5xx']} errors in {self.load.total()} requests")
        a = self.paths["alarm"]
        say(f"alarm path: first failing response -> canary removed in {a['first_failure_to_removal_s']:.1f}s, "
            f"{a['client_errors']} client errors")

    def s_edge(self):
        """The same failure, judged by the edge: no alarm event is delivered
        in this phase (the scenario plays EventBridge and stays silent)."""
        http("POST", self.a.origin + "/__demo/canary", body={"failing": False})
        r = http("POST", self.a.origin + "/__demo/attribution", body={"attribution": True})
        self.x.expect(r.status == 200, "the origin names the release in x-tidegate-release again")
        self.put_canary(CANARY_TARGET)
        say(f"v2 ({self.aws['canary']}) back as a canary at {CANARY_TARGET:.0f} %; clients at 10 requests/s; "
            "alarm events are not delivered in this phase")
        time.sleep(0.8)  # the origin reads the stage every 0.3 s
        load = Load(self)
        time.sleep(3.0)  # a few healthy seconds: the edge sees both releases
        r = http("POST", self.a.origin + "/__demo/canary", body={"failing": True})
        self.x.expect(r.status == 200, "the origin's canary release is told to fail again")
        removed_at = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not self.stage().get("canarySettings"):
                removed_at = time.monotonic()
                break
            time.sleep(0.1)
        errors = load.seen["5xx"]
        first = load.first_failure
        time.sleep(1.0)
        load.stop()
        http("POST", self.a.origin + "/__demo/canary", body={"failing": False})
        self.x.expect(removed_at is not None, "the edge's signal removed the canary (no alarm event delivered)")
        if removed_at is None or first is None:
            return
        took = removed_at - first
        self.paths["edge"] = {"first_failure_to_removal_s": round(took, 2), "client_errors": errors}
        say(f"edge path: first failing response -> canary removed in {took:.1f}s, {errors} client errors")
        self.x.expect(took <= 5.0, "through the edge, first failure to canary removed within 5 s", fmt_s(took))
        st = http("GET", f"{self.a.lambda_url}/lambda-url/{FUNCTION}/stages/{self.aws['api_name']}/{STAGE}",
                  self.operator).json() or {}
        latest = next((h for h in st.get("recent_actions") or [] if h.get("what") == "remove_canary"), {})
        trig = latest.get("trigger") or {}
        say(f"history: {latest.get('what')} by {latest.get('who')} (trigger {trig.get('type')}): {str(latest.get('why'))[:120]}")
        self.x.expect(trig.get("type") == "edge", "the history says trigger edge, with the edge's figures", str(trig.get("type")))
        h = http("GET", self.a.edge + "/__tidegate/health/releases",
                 {"authorization": "Bearer " + self.sec["edge_admin_key"]})
        (self.run / "health-releases.json").write_bytes(h.body)
        say(f"edge GET /__tidegate/health/releases -> {h.status} (saved: {rel(self.run / 'health-releases.json')})")
        self.x.expect(h.status == 200, "the edge shows its live figures per release")
        a = self.paths["alarm"]
        self.facts.append(f"alarm path: first failing response to canary removed {fmt_s(a['first_failure_to_removal_s'])}, "
                          f"{a['client_errors']} client errors")
        self.facts.append(f"edge path: first failing response to canary removed {fmt_s(took)}, {errors} client errors")

    def s_control(self):
        lam = f"{self.a.lambda_url}/lambda-url/{FUNCTION}"
        r = http("GET", f"{lam}/stages")
        self.x.expect(r.status == 401, "the control API refuses a call without credentials", str(r.status))
        r = http("GET", f"{lam}/stages/{self.aws['api_name']}/{STAGE}", self.operator)
        st = r.json() or {}
        (self.run / "control-stage.json").write_text(json.dumps(st, indent=2) + "\n")
        self.x.expect(r.status == 200, "the operator's key (scope tidegate:admin) reads the stage", str(r.status))
        history = st.get("recent_actions") or []
        say(f"GET /stages/{self.aws['api_name']}/{STAGE}: deployment {st.get('deployment_id')}, "
            f"known-good {(st.get('known_good') or {}).get('deployment_id')}, canary {st.get('canary')}")
        say("recent actions (the timeline, from the state table: what, who, why, outcome):")
        for h in reversed(history):
            outcome = (h.get("outcome") or {}).get("status")
            say(f"   {h.get('what')} by {h.get('who')} ({(h.get('trigger') or {}).get('type')}) -> {outcome}: {str(h.get('why'))[:110]}")
        joined = " ".join(json.dumps(h) for h in history)
        self.x.expect((st.get("known_good") or {}).get("deployment_id") == self.aws["base"], "known-good is v1")
        self.x.expect("remove_canary" in joined, "the timeline shows the canary's removal")
        self.x.expect("set_canary_percent" in joined, "the timeline shows the canary's steps")
        page = http("GET", f"{lam}/", self.operator)
        (self.run / "status.html").write_text(page.body.decode(errors="replace"))
        self.x.expect(page.status == 200 and b"<html" in page.body.lower(), "the status page renders")
        say(f"status page saved: {rel(self.run / 'status.html')} (live: {lam}/ with the operator key)")
        h = http("GET", self.a.edge + "/__tidegate/health", {"authorization": "Bearer " + self.sec["edge_admin_key"]})
        say(f"edge health (admin key): {h.status} {h.body.decode(errors='replace')[:120]}")
        self.x.expect(h.status == 200, "the edge's admin health endpoint answers")

    def cli(self, *args, key=None, admin_key=None):
        """Runs the tidegate CLI against the control API; (exit code, stdout, stderr)."""
        import subprocess
        env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/nonexistent"),
               "TIDEGATE_URL": f"{self.a.lambda_url}/lambda-url/{FUNCTION}", "TIDEGATE_SIGN": "never",
               "TIDEGATE_API_KEY": key or self.sec["operator_key"], "AWS_EC2_METADATA_DISABLED": "true"}
        if admin_key:
            env["TIDEGATE_ADMIN_KEY"] = admin_key
        r = subprocess.run([self.a.cli, *args], env=env, capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout, r.stderr

    def s_cli(self):
        target = f"{self.aws['api_name']}/{STAGE}"
        rc, out, err = self.cli("status", target)
        (self.run / "cli-status.txt").write_text(out)
        self.x.expect(rc == 0, "tidegate status shows the stage", f"exit {rc}: {err.strip()}")
        say(f"tidegate status {target} (TIDEGATE_URL={self.a.lambda_url}/lambda-url/{FUNCTION}, "
            "TIDEGATE_API_KEY=the operator key in secrets.json):")
        for line in out.splitlines():
            say("   " + line)
        self.x.expect("remove_canary" in out and "set_canary_percent" in out,
                      "the CLI shows the same timeline as the control API")
        rc, out, err = self.cli("rollout", "history", target, "--limit", "10")
        self.x.expect(rc == 0 and "remove_canary" in out and "record_known_good" in out,
                      "tidegate rollout history lists the actions", f"exit {rc}: {err.strip()}")
        rc, _, err = self.cli("rollout", "approve", target, "--reason", "nothing waits")
        self.x.expect(rc == 5, "approve with no canary at a gate exits 5 (409)", f"exit {rc}: {err.strip()}")
        rc, out, err = self.cli("-o", "json", "status", target)
        st = json.loads(out) if rc == 0 else {}
        self.x.expect(st.get("deployment_id") == self.aws["base"], "tidegate -o json status: the stage serves v1",
                      f"exit {rc}: {err.strip()}")
        rc, _, err = self.cli("status", f"{self.aws['api_name']}/no-such-stage")
        self.x.expect(rc == 4, "an unknown stage exits 4", f"exit {rc}: {err.strip()}")
        rc, _, err = self.cli("status", key="tgdemo_not_a_key")
        self.x.expect(rc == 3, "a wrong key exits 3", f"exit {rc}: {err.strip()}")
        rc, out, err = self.cli("rollout", "pause", target, "--for", "1h", "--reason", "demo: freeze releases")
        say(f"tidegate rollout pause {target} --for 1h --reason ...: {out.strip() or err.strip()}")
        self.x.expect(rc == 0, "tidegate rollout pause", f"exit {rc}: {err.strip()}")
        rc, out, _ = self.cli("-o", "json", "status", target)
        paused = (json.loads(out) if rc == 0 else {}).get("paused") or {}
        self.x.expect(paused.get("by") == "key:operator" and paused.get("reason") == "demo: freeze releases",
                      "the pause records the operator and the reason", str(paused))
        rc, out, err = self.cli("rollout", "resume", target, "--reason", "demo: thaw")
        say(f"tidegate rollout resume {target} --reason ...: {out.strip() or err.strip()}")
        self.x.expect(rc == 0, "tidegate rollout resume", f"exit {rc}: {err.strip()}")
        rc, out, _ = self.cli("-o", "json", "status", target)
        self.x.expect(rc == 0 and not json.loads(out).get("paused"), "the stage is no longer paused")
        # API keys through the edge's key admin API (Workers KV, simulated by wrangler dev).
        edge = ("--edge", self.a.edge)
        admin = self.sec["edge_admin_key"]
        rc, out, err = self.cli("-o", "json", "keys", "new", "--consumer", "cli-demo", "--scopes", "orders:read",
                                "--expires", "1h", *edge, admin_key=admin)
        issued = json.loads(out) if rc == 0 else {}
        self.x.expect(str(issued.get("key", "")).startswith("tdg_"), "tidegate keys new --edge issues a key",
                      f"exit {rc}: {err.strip()}")
        fresh = {"x-api-key": issued.get("key", "")}
        r = self.edge("/v1/orders/7", fresh)
        say(f"tidegate keys new --edge: {issued.get('id')} for cli-demo; the edge answers it with {r.status}")
        self.x.expect(r.status == 200, "the edge accepts the new key")
        rc, out, err = self.cli("keys", "list", "--consumer", "cli-demo", *edge, admin_key=admin)
        self.x.expect(rc == 0 and str(issued.get("id")) in out, "tidegate keys list shows it", f"exit {rc}: {err.strip()}")
        rc, out, err = self.cli("keys", "revoke", str(issued.get("id")), *edge, admin_key=admin)
        say(f"tidegate keys revoke: {out.strip() or err.strip()}")
        self.x.expect(rc == 0, "tidegate keys revoke", f"exit {rc}: {err.strip()}")
        r = self.edge("/v1/orders/7", fresh)
        self.x.expect(r.status == 401, "the edge refuses the revoked key", str(r.status))

    def play(self):
        t0 = time.monotonic()
        self.step("1. Clients at the edge: cache MISS, then HIT", self.s_cache)
        self.step("2. Bad credentials are refused", self.s_refused)
        self.step("3. A client over its limit is throttled", self.s_throttle)
        self.step("4. The running deployment is recorded as known-good", self.s_known_good)
        self.step(f"5. A release goes out as a canary at {START_PERCENT:.0f} %", self.s_canary_release)
        self.step("6. The healthy canary steps up", self.s_step_up)
        self.step("7. The canary starts failing; its alarm fires", self.s_failure)
        self.step("8. The Lambda drops the canary; the stage stays on known-good", self.s_rollback)
        self.step("9. It fails again; this time the edge's signal removes it", self.s_edge)
        self.step("10. The control API and status page show the timeline", self.s_control)
        if self.a.cli:
            self.step("11. The tidegate CLI shows the same timeline and steers the stage", self.s_cli)
        total = time.monotonic() - t0
        say("")
        say("=== scenario summary")
        for title, took in self.steps:
            say(f"   {fmt_s(took):>7}  {title}")
        say(f"   {fmt_s(total):>7}  total")
        for f in self.facts:
            say(f"   - {f}")
        result = {"steps": [{"title": t, "seconds": round(s, 2)} for t, s in self.steps], "facts": self.facts,
                  "paths": getattr(self, "paths", {}), "missed": self.x.missed}
        (self.run / "result.json").write_text(json.dumps(result, indent=2) + "\n")
        if self.x.missed:
            warn(f"{len(self.x.missed)} expectation(s) failed: " + "; ".join(self.x.missed))
            return 1
        say("every expectation held")
        return 0


def cmd_play(a):
    return Demo(a).play()


# --------------------------------------------------------------------------
# soak: a healthy canary through the edge, counting false rollbacks
# --------------------------------------------------------------------------

class Soak:
    """Issue 18's budget: no false rollback in a 10-minute run of a healthy
    canary at 1 % and at 50 % traffic. Both releases answer alike (the
    origin's shared noise: a background 5xx share and latency jitter); no
    alarm or scheduled event reaches the Lambda, so only the edge's signal
    could remove the canary. Every removal is counted as a false rollback
    and the canary is put back, so one bad minute cannot hide the rest."""

    def __init__(self, a):
        self.a = a
        self.demo = Demo(a)
        self.results = []

    def edge_actions(self, since):
        """The Lambda's history entries triggered by the edge since `since` (epoch s)."""
        d = self.demo
        st = http("GET", f"{self.a.lambda_url}/lambda-url/{FUNCTION}/stages/{d.aws['api_name']}/{STAGE}",
                  d.operator).json() or {}
        out = []
        for h in st.get("recent_actions") or []:
            at = (h.get("at_ms") or 0) / 1000
            if (h.get("trigger") or {}).get("type") == "edge" and at >= since:
                out.append({"what": h.get("what"), "why": h.get("why")})
        return out

    def phase(self, percent):
        d = self.demo
        seconds = self.a.minutes * 60
        d.alice = {"authorization": "Bearer " + user_token(d.sec["hs_secret"], "alice", "catalog:read orders:read")}
        self.demo.put_canary(percent)
        say(f"--- healthy canary at {percent:g} % for {fmt_s(seconds)} at {self.a.rate:g} requests/s; "
            f"both releases: {self.a.error_rate:.1%} 5xx, up to {self.a.jitter_ms} ms jitter")
        time.sleep(0.8)  # the origin reads the stage every 0.3 s
        since = time.time()
        load = Load(d, rate=self.a.rate)
        removals = []
        end = time.monotonic() + seconds
        next_note = time.monotonic() + 60
        while time.monotonic() < end:
            if not d.stage().get("canarySettings"):
                removals.append(round(time.time() - since, 1))
                warn(f"the canary was removed {removals[-1]}s into the run: a false rollback; putting it back")
                self.demo.put_canary(percent)
            if time.monotonic() >= next_note:
                seen = load.seen
                say(f"   {int(time.time() - since):>4}s: base {seen['base']}, canary {seen['canary']}, "
                    f"5xx {seen['5xx']}, false rollbacks {len(removals)}")
                next_note += 60
            time.sleep(0.5)
        seen = load.stop()
        h = http("GET", self.a.edge + "/__tidegate/health/releases",
                 {"authorization": "Bearer " + d.sec["edge_admin_key"]})
        (d.run / f"soak-{percent:g}-releases.json").write_bytes(h.body)
        report = h.json() or {}
        stage_health = ((report.get("stages") or [{}])[0] or {}).get("health") or {}
        signal = ((stage_health.get("last_signal") or {}).get("event")) or {}
        signalled = signal if (signal.get("issued_ms") or 0) / 1000 >= since else None
        verdict = stage_health.get("judgement")
        edge_actions = self.edge_actions(since)
        result = {
            "canary_percent": percent,
            "seconds": seconds,
            "requests": {"base": seen["base"], "canary": seen["canary"], "5xx": seen["5xx"], "other": seen["other"]},
            "false_rollbacks": len(removals),
            "removed_at_s": removals,
            "edge_triggered_actions": edge_actions,
            "last_signal_in_phase": signalled,
            "last_judgement": verdict,
        }
        self.results.append(result)
        say(f"   healthy canary at {percent:g} %: {seen['base']} base and {seen['canary']} canary requests, "
            f"{seen['5xx']} 5xx; false rollbacks: {len(removals)}; edge-triggered actions in the history: "
            f"{len(edge_actions)}")
        if signalled:
            warn(f"the edge signalled a breach during the phase: {signal.get('detail')}")
        return max(len(removals), len(edge_actions), 1 if signalled else 0)

    def run(self):
        r = http("POST", self.a.origin + "/__demo/noise",
                 body={"error_rate": self.a.error_rate, "jitter_ms": self.a.jitter_ms})
        if r.status != 200:
            fail(f"the origin refused the noise settings: {r.status} {r.body[:200]!r}")
        # The running deployment recorded as known-good first (as step 4
        # does), so the Lambda manages the stage and would act on a signal.
        kind, _ = self.demo.action(self.demo.tick())
        say(f"scheduled event before the soak; Lambda: {kind}")
        bad = sum(self.phase(p) for p in self.a.percents)
        (self.demo.run / "soak.json").write_text(json.dumps({"phases": self.results}, indent=2) + "\n")
        say(f"soak: {bad} false rollback(s) in {len(self.results)} phase(s); "
            f"figures in {rel(self.demo.run / 'soak.json')}")
        return 1 if bad else 0


def cmd_soak(a):
    return Soak(a).run()


# --------------------------------------------------------------------------
# relay: EventBridge's part for `make dev`
# --------------------------------------------------------------------------

def cmd_relay(a):
    d = Demo(a)
    names = [d.aws["stage_alarm"], d.aws["canary_alarm"]]
    last = {}
    next_tick = 0.0
    say(f"relay: alarm state changes of {', '.join(names)} and a scheduled event every {a.every:.0f}s go to the Lambda")
    while True:
        try:
            for alarm in d.cw.describe_alarms(AlarmNames=names)["MetricAlarms"]:
                key = (alarm["StateValue"], alarm["StateUpdatedTimestamp"])
                if alarm["AlarmName"] in last and last[alarm["AlarmName"]] != key:
                    kind, _ = d.action(d.invoke(d.alarm_event(alarm), "alarm"))
                    say(f"relay: {alarm['AlarmName']} -> {alarm['StateValue']}; Lambda: {kind}")
                last[alarm["AlarmName"]] = key
            if time.monotonic() >= next_tick:
                kind, _ = d.action(d.tick())
                say(f"relay: scheduled event; Lambda: {kind}")
                next_tick = time.monotonic() + a.every
        except Exception as e:  # keep relaying; the stack may be restarting
            warn(f"relay: {e}")
        time.sleep(1.0)


def main():
    ap = argparse.ArgumentParser(description="Tidegate demo scenario driver")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--template", required=True)
    p.add_argument("--origin", required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--compatibility-date", required=True)
    p.add_argument("--health-url", required=True, help="the Lambda's POST /edge/health URL")
    p.add_argument("--edge-health-url", required=True, help="the edge's GET health/releases URL (the dashboard's edge panel)")
    p.add_argument("--rebuild", action="store_true", help="wrangler rebuilds the Worker on changes (make dev)")
    p = sub.add_parser("provision")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--endpoint", required=True)
    for name in ("play", "relay", "soak"):
        p = sub.add_parser(name)
        p.add_argument("--run-dir", required=True)
        p.add_argument("--run-id", required=True)
        p.add_argument("--endpoint", required=True)
        p.add_argument("--edge", required=True)
        p.add_argument("--origin", required=True)
        p.add_argument("--lambda-url", required=True)
        p.add_argument("--check", action="store_true")
        p.add_argument("--every", type=float, default=10.0)
        p.add_argument("--cli", help="the tidegate binary (step 10 runs it against the control API)")
        if name == "soak":
            p.add_argument("--minutes", type=float, default=10.0, help="per phase")
            p.add_argument("--percents", type=lambda v: [float(x) for x in v.split(",")], default=[1.0, 50.0],
                           help="canary weights, one phase each (comma-separated)")
            p.add_argument("--rate", type=float, default=10.0, help="client requests per second")
            p.add_argument("--error-rate", type=float, default=0.01, help="both releases' background 5xx share")
            p.add_argument("--jitter-ms", type=int, default=30, help="both releases' latency jitter")
    a = ap.parse_args()
    return {"prepare": cmd_prepare, "provision": cmd_provision, "play": cmd_play, "relay": cmd_relay,
            "soak": cmd_soak}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
