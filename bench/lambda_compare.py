"""The rollback Lambda (Rust bootstrap) against a minimal Python (boto3)
function doing the same AWS calls (bench/lambda-python/), measured the same
way: each run starts the function cold under the Runtime API stand-in
(bench/lambda_runtime.py) and hands it K canary-alarm events, one per fresh
REST API in LocalStack; the first is the cold invocation, the others warm.

Per run and function: init (spawn -> first poll, wall and process CPU), alarm event -> stage
patched (event handed out -> response; the handler answers after its last
UpdateStage, and the stage is then read back to check the canary is gone),
peak RSS (VmHWM). Plus zipped sizes. Rust and Python runs alternate so both
see the same machine load; figures are medians with min-max.

Usage (LocalStack running, `eval "$(bash scripts/localstack.sh env)"`):
  python3 bench/lambda_compare.py --rust-bootstrap <bootstrap> [--runs 5] [--events 3] [--json out.json]
Needs boto3 (the project's .venv). Bounded: runs x events invocations, each
run times out after 60 s.
"""

import argparse
import datetime
import io
import json
import os
import platform
import statistics
import sys
import time
import zipfile

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lambda_runtime import run_function  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PY_DIR = os.path.join(HERE, "lambda-python")
# boto3 and what it imports: in the AWS Python runtime, not in the zip.
PY_DEPS = ["boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3"]


def zipped_size(files):
    """Size of a deflate-9 zip of `files` ({arcname: path})."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for arc, path in sorted(files.items()):
            z.write(path, arc)
    return len(buf.getvalue())


def package_files(module):
    """{arcname: path} of an installed package (or single-module) `module`."""
    mod = __import__(module)
    path = mod.__file__
    if os.path.basename(path) != "__init__.py":
        return {os.path.basename(path): path}
    root = os.path.dirname(path)
    base = os.path.dirname(root)
    out = {}
    for d, _, names in os.walk(root):
        if "__pycache__" in d:
            continue
        for n in names:
            p = os.path.join(d, n)
            out[os.path.relpath(p, base)] = p
    return out


def sizes(rust_bootstrap):
    py = {n: os.path.join(PY_DIR, n) for n in ("handler.py", "bootstrap.py")}
    with_deps = dict(py)
    for m in PY_DEPS:
        with_deps.update(package_files(m))
    return {
        "rust_raw": os.path.getsize(rust_bootstrap),
        "rust_zip": zipped_size({"bootstrap": rust_bootstrap}),
        "python_raw": sum(os.path.getsize(p) for p in py.values()),
        "python_zip": zipped_size(py),
        "python_deps_raw": sum(os.path.getsize(p) for p in with_deps.values()),
        "python_deps_zip": zipped_size(with_deps),
    }


class Fixtures:
    """REST APIs with a canary at 10 % and a canary alarm in ALARM."""

    def __init__(self):
        self.apigw = boto3.client("apigateway")
        self.cw = boto3.client("cloudwatch")
        self.count = 0

    def create(self):
        self.count += 1
        name = f"tg-bench-{time.time_ns():x}-{self.count}"
        api_id = self.apigw.create_rest_api(name=name)["id"]
        root = next(r["id"] for r in self.apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
        self.apigw.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
        self.apigw.put_integration(
            restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK",
            requestTemplates={"application/json": '{"statusCode": 200}'},
        )
        self.apigw.create_deployment(restApiId=api_id, stageName="prod")
        self.apigw.create_deployment(restApiId=api_id, stageName="prod", canarySettings={"percentTraffic": 10.0})
        stage_alarm, canary_alarm = f"{name}-stage-5xx", f"{name}-canary-5xx"
        for alarm in (stage_alarm, canary_alarm):
            # An extended statistic: LocalStack leaves its state alone (see
            # lambda-rollback/tests/localstack.rs).
            self.cw.put_metric_alarm(
                AlarmName=alarm, Namespace="TidegateBench", MetricName=f"{alarm}-errors",
                ExtendedStatistic="p99", Period=60, EvaluationPeriods=1, Threshold=1.0,
                ComparisonOperator="GreaterThanThreshold",
            )
            self.cw.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="bench")
        self.cw.set_alarm_state(AlarmName=canary_alarm, StateValue="ALARM", StateReason="bench")
        alarm = self.cw.describe_alarms(AlarmNames=[canary_alarm])["MetricAlarms"][0]
        at = alarm.get("StateTransitionedTimestamp") or alarm["StateUpdatedTimestamp"]
        stamp = at.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
        event = {
            "version": "0", "id": f"bench-{self.count}", "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch", "account": "000000000000", "time": stamp[:19] + "Z",
            "region": os.environ.get("AWS_REGION", "us-east-1"),
            "resources": [f"arn:aws:cloudwatch:us-east-1:000000000000:alarm:{canary_alarm}"],
            "detail": {"alarmName": canary_alarm, "state": {"value": "ALARM", "reason": "bench", "timestamp": stamp},
                       "previousState": {"value": "OK", "reason": "bench", "timestamp": stamp}},
        }
        return {"api_id": api_id, "api_name": name, "stage_alarm": stage_alarm,
                "canary_alarm": canary_alarm, "event": json.dumps(event)}

    def canary_gone(self, fx):
        return "canarySettings" not in self.apigw.get_stage(restApiId=fx["api_id"], stageName="prod")


def rust_config(fixtures):
    return "\n".join(
        f"""[[rollback.stages]]
rest_api_id = "{fx['api_id']}"
stage = "prod"
stage_alarms = ["{fx['stage_alarm']}"]
canary_alarms = ["{fx['canary_alarm']}"]
canary_steps = [10, 50, 100]
bake_time = "1s"
cooldown = "0s"
min_requests = 1
metric_api_name = "{fx['api_name']}"
"""
        for fx in fixtures
    )


def python_config(fixtures):
    return json.dumps([
        {"rest_api_id": fx["api_id"], "stage": "prod",
         "stage_alarms": [fx["stage_alarm"]], "canary_alarms": [fx["canary_alarm"]]}
        for fx in fixtures
    ])


def applied(kind, body):
    """Whether the function reports the canary removed (its own words)."""
    try:
        out = json.loads(body)
        if isinstance(out, str):  # a pass-through body may come back as a JSON string
            out = json.loads(out)
        stage = out["stages"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return False
    if kind == "rust":
        return stage["decision"]["action"]["type"] == "remove_canary" and stage["outcome"]["status"] == "applied"
    return stage["action"] == "remove_canary" and stage["outcome"] == "applied"


def aws_env():
    keep = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION", "AWS_DEFAULT_REGION", "TIDEGATE_STATE_TABLE")
    return {k: os.environ[k] for k in keep if k in os.environ}


def one_run(kind, fixtures_maker, rust_bootstrap, events, log_path):
    fixtures = [fixtures_maker.create() for _ in range(events)]
    env = aws_env()
    if kind == "rust":
        cmd = [rust_bootstrap]
        env.update(TIDEGATE_CONFIG=rust_config(fixtures), RUST_LOG="info")
    else:
        cmd = [sys.executable, os.path.join(PY_DIR, "bootstrap.py")]
        env.update(TG_STAGES=python_config(fixtures))
    out = run_function(cmd, env, [fx["event"] for fx in fixtures], timeout_s=60, log_path=log_path)
    problems = []
    if "error" in out or "init_error" in out:
        problems.append(out.get("error") or out.get("init_error"))
    for i, (fx, inv) in enumerate(zip(fixtures, out["invocations"])):
        if inv["status"] != "response" or not applied(kind, inv["body"]):
            problems.append(f"event {i}: {inv['status']} {inv['body'][:300]}")
        elif not fixtures_maker.canary_gone(fx):
            problems.append(f"event {i}: reported applied but the canary is still on the stage")
    if problems:
        raise SystemExit(f"{kind}: " + "; ".join(problems) + f" (log: {log_path})")
    return {
        "init_ms": out["init_ms"],
        "init_cpu_ms": out["init_cpu_ms"],
        "cold_ms": out["invocations"][0]["ms"],
        "warm_ms": [inv["ms"] for inv in out["invocations"][1:]],
        "peak_rss_kib": out["peak_rss_kib"],
    }


def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def fmt(s, unit="ms", digits=1):
    return f"{s['median']:.{digits}f} {unit} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rust-bootstrap", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--events", type=int, default=3, help="events per cold process (first cold, rest warm)")
    ap.add_argument("--only", choices=("rust", "python"), help="measure one function (debugging)")
    ap.add_argument("--json")
    ap.add_argument("--log", default=".cache/bench/lambda-compare.log")
    args = ap.parse_args()
    if "AWS_ENDPOINT_URL" not in os.environ:
        raise SystemExit('AWS_ENDPOINT_URL is not set: start LocalStack and eval "$(bash scripts/localstack.sh env)"')
    if not os.access(args.rust_bootstrap, os.X_OK):
        raise SystemExit(f"{args.rust_bootstrap} is not an executable: run bash scripts/build-lambda.sh")
    os.makedirs(os.path.dirname(args.log) or ".", exist_ok=True)

    fixtures = Fixtures()
    runs = {"rust": [], "python": []}
    for r in range(args.runs):
        order = ("rust", "python") if r % 2 == 0 else ("python", "rust")
        for kind in order:
            if args.only and kind != args.only:
                continue
            res = one_run(kind, fixtures, args.rust_bootstrap, args.events, args.log)
            runs[kind].append(res)
            print(f"  run {r + 1}/{args.runs} {kind:6} init {res['init_ms']:7.1f} ms (CPU {res['init_cpu_ms']:6.1f}), alarm->patched cold "
                  f"{res['cold_ms']:7.1f} ms, warm {', '.join(f'{w:.1f}' for w in res['warm_ms'])} ms, "
                  f"peak RSS {res['peak_rss_kib'] / 1024:.1f} MiB", flush=True)

    if args.only:
        return
    summary = {}
    for kind, rs in runs.items():
        summary[kind] = {
            "init_ms": spread([x["init_ms"] for x in rs]),
            "init_cpu_ms": spread([x["init_cpu_ms"] for x in rs]),
            "cold_ms": spread([x["cold_ms"] for x in rs]),
            "init_plus_cold_ms": spread([x["init_ms"] + x["cold_ms"] for x in rs]),
            "warm_ms": spread([w for x in rs for w in x["warm_ms"]]) if args.events > 1 else None,
            "peak_rss_mib": spread([x["peak_rss_kib"] / 1024 for x in rs]),
        }
    size = sizes(args.rust_bootstrap)
    load = os.getloadavg()
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}, python {platform.python_version()}, boto3 {boto3.__version__}",
        "loadavg": [round(x, 2) for x in load],
        "command": " ".join(sys.argv),
        "runs": args.runs, "events": args.events,
    }

    rs_, py = summary["rust"], summary["python"]
    ratio = lambda key: py[key]["median"] / rs_[key]["median"]  # noqa: E731
    rows = [
        ("init (spawn → first poll)", fmt(rs_["init_ms"], digits=2), fmt(py["init_ms"]), f"{ratio('init_ms'):.0f}×"),
        ("init, CPU time of the process", fmt(rs_["init_cpu_ms"], digits=2), fmt(py["init_cpu_ms"]), f"{ratio('init_cpu_ms'):.0f}×"),
        ("alarm event → stage patched, cold (1st invocation)", fmt(rs_["cold_ms"]), fmt(py["cold_ms"]), f"{ratio('cold_ms'):.1f}×"),
        ("init + 1st invocation", fmt(rs_["init_plus_cold_ms"]), fmt(py["init_plus_cold_ms"]), f"{ratio('init_plus_cold_ms'):.1f}×"),
    ]
    if rs_["warm_ms"]:
        rows.append(("alarm event → stage patched, warm", fmt(rs_["warm_ms"]), fmt(py["warm_ms"]), f"{ratio('warm_ms'):.1f}×"))
    rows += [
        ("peak RSS (VmHWM)", fmt(rs_["peak_rss_mib"], "MiB"), fmt(py["peak_rss_mib"], "MiB"), f"{ratio('peak_rss_mib'):.1f}×"),
        ("zipped (deflate -9)", f"{size['rust_zip']:,} B", f"{size['python_zip']:,} B code only; {size['python_deps_zip']:,} B with boto3 & deps",
         ""),
    ]
    lines = ["| measure | Rust (bootstrap) | Python 3 + boto3 | Python ÷ Rust |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    print()
    print("\n".join(lines))
    print(f"\n{meta['machine']}; load average {meta['loadavg']}; {meta['date']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "sizes": size, "summary": summary, "runs": runs}, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
