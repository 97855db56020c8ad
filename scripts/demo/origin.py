"""The demo's origin: stands in for the API Gateway stage behind the edge.

LocalStack keeps the stage's real state (deployment, canary settings) but
cannot route traffic to a local origin the way API Gateway does, nor emit
API Gateway's metrics. So this server does those two jobs, openly:

- it reads the stage from LocalStack every few hundred milliseconds and
  sends each request to the "base" or the "canary" release in the
  proportion of the stage's live canary weight (a deterministic split:
  at 10 %, exactly one request in ten goes to the canary);
- it publishes what API Gateway would: `Count` and `5XXError` in the
  `AWS/ApiGateway` namespace, with `ApiName` and `Stage` = `prod` (base)
  or `prod/Canary` (canary), every second, to LocalStack's CloudWatch,
  where the real alarms evaluate them.

The canary release can be told to fail (`POST /__demo/canary` with
`{"failing": true}`): it then answers 500. Healthy traffic can carry the
noise a real API has (`POST /__demo/noise` with `{"error_rate": 0.01,
"jitter_ms": 30}`): both releases alike answer that share with 500 and wait
up to that long, so a soak judges two equally healthy releases. Loopback
only; no credentials are ever logged (the edge forwards none).

Usage: python origin.py --port P --endpoint URL --api-id ID --api-name NAME
"""

import argparse
import json
import math
import random
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
from botocore.config import Config

STAGE_POLL_SECONDS = 0.3
FLUSH_SECONDS = 1.0


class Stage:
    """The stage as LocalStack last showed it, the traffic split and the counters."""

    def __init__(self):
        self.lock = threading.Lock()
        self.deployment = None
        self.canary_deployment = None
        self.canary_percent = 0.0
        self.canary_failing = False
        # Whether answers name their release in x-tidegate-release, as a REST
        # API's integration response header mapped from the stage variable
        # tidegate_release does (docs/edge.md); off plays a stage without it.
        self.attribution = True
        # Noise both releases share (POST /__demo/noise): a healthy API's
        # background 5xx share and latency jitter.
        self.error_rate = 0.0
        self.jitter_ms = 0
        self.requests = 0
        # Totals since start, and the part not yet published.
        self.totals = {"base": [0, 0], "canary": [0, 0]}
        self.pending = {"base": [0, 0], "canary": [0, 0]}
        self.last_error = None

    def pick(self):
        """The release for the next request: canary when the running count
        of canary requests, at the current weight, goes up by one."""
        with self.lock:
            self.requests += 1
            n, p = self.requests, self.canary_percent
            if self.canary_deployment and p > 0 and math.floor(n * p / 100) > math.floor((n - 1) * p / 100):
                return "canary", self.canary_deployment, self.canary_failing
            return "base", self.deployment, False

    def record(self, release, status):
        with self.lock:
            for book in (self.totals, self.pending):
                book[release][0] += 1
                if status >= 500:
                    book[release][1] += 1

    def take_pending(self):
        with self.lock:
            out = self.pending
            self.pending = {"base": [0, 0], "canary": [0, 0]}
            return out

    def snapshot(self):
        with self.lock:
            return {
                "deployment": self.deployment,
                "canary": {"deployment": self.canary_deployment, "percent": self.canary_percent}
                if self.canary_deployment
                else None,
                "canary_failing": self.canary_failing,
                "totals": {k: {"count": v[0], "errors_5xx": v[1]} for k, v in self.totals.items()},
                "last_error": self.last_error,
            }


def poll_stage(stage, apigw, api_id, stage_name):
    while True:
        try:
            s = apigw.get_stage(restApiId=api_id, stageName=stage_name)
            canary = s.get("canarySettings") or {}
            with stage.lock:
                stage.deployment = s.get("deploymentId")
                stage.canary_deployment = canary.get("deploymentId")
                stage.canary_percent = float(canary.get("percentTraffic") or 0.0)
                stage.last_error = None
        except Exception as e:  # keep serving with the last known split
            with stage.lock:
                stage.last_error = f"GetStage: {e}"
        time.sleep(STAGE_POLL_SECONDS)


def publish_metrics(stage, cw, api_name, stage_name):
    dims = {"base": stage_name, "canary": f"{stage_name}/Canary"}
    while True:
        time.sleep(FLUSH_SECONDS)
        pending = stage.take_pending()
        now = datetime.now(timezone.utc)
        data = []
        for release, (count, errors) in pending.items():
            if count == 0:
                continue  # like API Gateway: no requests, no datapoint
            d = [{"Name": "ApiName", "Value": api_name}, {"Name": "Stage", "Value": dims[release]}]
            # As API Gateway does: one sample per request (Count's SampleCount
            # is the request count; 5XXError's Sum the errors).
            data.append({"MetricName": "Count", "Dimensions": d, "Unit": "Count", "Timestamp": now,
                         "StatisticValues": {"SampleCount": count, "Sum": count, "Minimum": 1, "Maximum": 1}})
            data.append({"MetricName": "5XXError", "Dimensions": d, "Unit": "Count", "Timestamp": now,
                         "StatisticValues": {"SampleCount": count, "Sum": errors, "Minimum": 0,
                                             "Maximum": 1 if errors else 0}})
        if not data:
            continue
        try:
            cw.put_metric_data(Namespace="AWS/ApiGateway", MetricData=data)
            summary = ", ".join(f"{r} {c} req/{e} 5xx" for r, (c, e) in pending.items() if c)
            log(f"metrics published to CloudWatch: {summary}")
        except Exception as e:
            log(f"PutMetricData failed: {e}")


def log(msg):
    print(f"{datetime.now(timezone.utc).strftime('%H:%M:%S.%f')[:-3]} {msg}", flush=True)


def make_handler(stage):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # our own log line instead
            pass

        def send_json(self, status, body, headers=()):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def do_POST(self):
            if self.path == "/__demo/attribution":
                return self.set_attribution()
            if self.path == "/__demo/noise":
                return self.set_noise()
            if self.path != "/__demo/canary":
                return self.send_json(404, {"error": "not found"})
            length = int(self.headers.get("content-length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                failing = body["failing"]
                if not isinstance(failing, bool):
                    raise ValueError
            except (ValueError, KeyError):
                return self.send_json(400, {"error": 'expected {"failing": true|false}'})
            with stage.lock:
                stage.canary_failing = failing
            log(f"canary release told to {'FAIL (answers 500)' if failing else 'be healthy'}")
            self.send_json(200, {"canary_failing": failing})

        def set_attribution(self):
            length = int(self.headers.get("content-length") or 0)
            try:
                on = json.loads(self.rfile.read(length) or b"{}")["attribution"]
                if not isinstance(on, bool):
                    raise ValueError
            except (ValueError, KeyError):
                return self.send_json(400, {"error": 'expected {"attribution": true|false}'})
            with stage.lock:
                stage.attribution = on
            log(f"x-tidegate-release {'set' if on else 'left out'} on answers")
            self.send_json(200, {"attribution": on})

        def set_noise(self):
            length = int(self.headers.get("content-length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                rate, jitter = body["error_rate"], body.get("jitter_ms", 0)
                if not (isinstance(rate, (int, float)) and 0 <= rate <= 1):
                    raise ValueError
                if not (isinstance(jitter, int) and 0 <= jitter <= 1000):
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                return self.send_json(400, {"error": 'expected {"error_rate": 0..1, "jitter_ms": 0..1000}'})
            with stage.lock:
                stage.error_rate, stage.jitter_ms = float(rate), jitter
            log(f"noise on both releases: {rate:.2%} answer 500, up to {jitter} ms of jitter")
            self.send_json(200, {"error_rate": rate, "jitter_ms": jitter})

        def do_GET(self):
            if self.path == "/__demo/stats":
                return self.send_json(200, stage.snapshot())
            release, deployment, failing = stage.pick()
            subject = self.headers.get("x-tidegate-subject", "-")
            with stage.lock:
                error_rate, jitter_ms = stage.error_rate, stage.jitter_ms
            if jitter_ms:
                time.sleep(random.uniform(0, jitter_ms) / 1000)
            if not failing and error_rate and random.random() < error_rate:
                status, body = 500, {"error": "background noise (told to by the demo's soak)"}
                headers = [("cache-control", "no-store")]
            elif failing:
                status, body = 500, {"error": "the canary release is failing (told to by the demo)"}
                headers = [("cache-control", "no-store")]
            else:
                status = 200
                body = {"path": self.path, "release": release, "deployment": deployment, "subject": subject}
                # The catalogue may be stored by shared caches (the edge).
                public = self.path.startswith("/v1/catalog/")
                headers = [("cache-control", "public, max-age=30" if public else "no-store")]
            headers += [("x-demo-release", release), ("x-demo-deployment", deployment or "-")]
            with stage.lock:
                if stage.attribution:
                    headers.append(("x-tidegate-release", release))
            self.send_json(status, body, headers)
            stage.record(release, status)
            log(f"{self.command} {self.path} -> {release} ({deployment}) {status} subject={subject}")

        do_HEAD = do_GET

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--endpoint", required=True, help="LocalStack URL")
    ap.add_argument("--api-id", required=True)
    ap.add_argument("--api-name", required=True)
    ap.add_argument("--stage", default="prod")
    args = ap.parse_args()

    cfg = Config(retries={"max_attempts": 2}, connect_timeout=2, read_timeout=5)
    session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    apigw = session.client("apigateway", endpoint_url=args.endpoint, config=cfg)
    cw = session.client("cloudwatch", endpoint_url=args.endpoint, config=cfg)

    stage = Stage()
    threading.Thread(target=poll_stage, args=(stage, apigw, args.api_id, args.stage), daemon=True).start()
    threading.Thread(target=publish_metrics, args=(stage, cw, args.api_name, args.stage), daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(stage))
    server.daemon_threads = True
    log(f"demo origin on http://127.0.0.1:{args.port} for {args.api_name}/{args.stage} ({args.api_id})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
