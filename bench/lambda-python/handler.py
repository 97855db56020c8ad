"""Minimal Python (boto3) equivalent of the Rust rollback Lambda's alarm path,
for the comparison in BENCHMARKS.md ("Rollback Lambda vs Python (boto3)").

For a CloudWatch alarm event it makes the same AWS calls, in the same order,
as tidegate-rollback removing a canary: GetRestApi, GetStage,
DescribeAlarms, GetDeployments, GetMetricData, then per plan step a fresh
GetStage and an UpdateStage (canary to 0 %, then canary removed), then
PutMetricData. The Rust function runs the three reads after GetStage
concurrently; this one runs everything sequentially, as a minimal boto3
function would. The decision itself is reduced to "a canary alarm is in
ALARM and the stage has a canary": no bookkeeping, cooldowns or drift
checks beyond comparing the canary before each step.

Configuration (environment): TG_STAGES, a JSON list of
{"rest_api_id", "stage", "stage_alarms", "canary_alarms"}.
Clients are created at import time (init), as AWS recommends for Python.
"""

import datetime
import json
import os
import time

import boto3

STAGES = json.loads(os.environ.get("TG_STAGES", "[]"))
apigw = boto3.client("apigateway")
cloudwatch = boto3.client("cloudwatch")


def _stage(api_id, name):
    return apigw.get_stage(restApiId=api_id, stageName=name)


def _remove_canary(api_id, stage, alarm):
    """Two UpdateStage steps, each after a fresh read, like the Rust plan."""
    now_ms = int(time.time() * 1000)
    steps = [
        [
            {"op": "replace", "path": "/canarySettings/percentTraffic", "value": "0.0"},
            {"op": "replace", "path": "/variables/tidegate_last_rollback", "value": str(now_ms)},
            {"op": "replace", "path": "/variables/tidegate_history", "value": f"{now_ms}:remove_canary:{alarm}"},
        ],
        [{"op": "remove", "path": "/canarySettings"}],
    ]
    for ops in steps:
        if "canarySettings" not in _stage(api_id, stage):
            return "drifted"
        apigw.update_stage(restApiId=api_id, stageName=stage, patchOperations=ops)
    return "applied"


def _evaluate(cfg, alarm):
    api_id, stage = cfg["rest_api_id"], cfg["stage"]
    api = apigw.get_rest_api(restApiId=api_id)
    snapshot = _stage(api_id, stage)
    names = cfg["stage_alarms"] + cfg["canary_alarms"]
    alarms = cloudwatch.describe_alarms(
        AlarmNames=names, AlarmTypes=["MetricAlarm", "CompositeAlarm"], MaxRecords=100
    )
    apigw.get_deployments(restApiId=api_id, limit=500)
    now = datetime.datetime.now(datetime.timezone.utc)
    if "canarySettings" in snapshot:
        dims = [{"Name": "ApiName", "Value": api.get("name", "")}, {"Name": "Stage", "Value": f"{stage}/Canary"}]
        query = lambda qid, metric: {  # noqa: E731
            "Id": qid,
            "ReturnData": True,
            "MetricStat": {
                "Metric": {"Namespace": "AWS/ApiGateway", "MetricName": metric, "Dimensions": dims},
                "Period": 300,
                "Stat": "Sum",
            },
        }
        cloudwatch.get_metric_data(
            MetricDataQueries=[query("errors", "5XXError"), query("count", "Count")],
            StartTime=now - datetime.timedelta(minutes=5),
            EndTime=now,
        )
    firing = {
        a["AlarmName"]
        for a in alarms.get("MetricAlarms", []) + alarms.get("CompositeAlarms", [])
        if a.get("StateValue") == "ALARM"
    }
    if "canarySettings" in snapshot and firing & set(cfg["canary_alarms"]):
        outcome = _remove_canary(api_id, stage, alarm)
        if outcome == "applied":
            cloudwatch.put_metric_data(
                Namespace="Tidegate",
                MetricData=[{
                    "MetricName": "CanaryRemovals",
                    "Value": 1.0,
                    "Unit": "Count",
                    "Dimensions": [{"Name": "ApiId", "Value": api_id}, {"Name": "Stage", "Value": stage}],
                }],
            )
        return {"action": "remove_canary", "outcome": outcome}
    return {"action": "none", "outcome": "nothing_to_do"}


def handler(event, _context=None):
    alarm = (event.get("detail") or {}).get("alarmName", "")
    reports = []
    for cfg in STAGES:
        if alarm in cfg["stage_alarms"] or alarm in cfg["canary_alarms"]:
            reports.append({"api": cfg["rest_api_id"], "stage": cfg["stage"], **_evaluate(cfg, alarm)})
    return {"stages": reports}
