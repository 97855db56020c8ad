"""Deploys infra/template.yaml into a running LocalStack and reads it back.

Run by `scripts/test.sh infra` (which starts LocalStack and exports the
AWS_* variables of `scripts/localstack.sh env`); by hand:
    eval "$(bash scripts/localstack.sh env)"
    .venv/bin/python infra/tests/localstack_stack.py

Lambda cannot run here (no Docker), so the stack is created with
CreateFunction=false: the state table, the role and its policy, both rules,
the log group and the alarms are created and compared with what the template
should produce. Then a second stack with AutomationState=DISABLED (the
emergency stop) reusing the first one's table (ExistingStateTableName), and
deletes: the table is retained (DeletionPolicy Retain) and deleted here.
Names are unique per run: LocalStack has no reset.

The state table needs LocalStack's DynamoDB, which would download Java and
DynamoDB Local at first use; scripts/localstack.sh puts both in place from
`make setup`'s install so it works offline (see its header).

The stack is driven with CreateStack/UpdateStack and a short poll rather
than `aws cloudformation deploy`, whose waiters poll every 30 s.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import time

import boto3

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = (ROOT / "infra" / "template.yaml").read_text()
POLL_SECONDS = 0.5
DEADLINE_SECONDS = 90


class Failure(Exception):
    """A read-back did not match."""


def expect(got, want, what: str) -> None:
    if got != want:
        raise Failure(f"{what}:\n  got  {got!r}\n  want {want!r}")


def say(msg: str) -> None:
    print(f"==> [infra] {msg}", flush=True)


def wait_stack(cfn, name: str, want: str) -> None:
    """Polls until the stack leaves *_IN_PROGRESS; fails unless it is `want`."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        try:
            status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        except cfn.exceptions.ClientError as e:
            if want == "DELETE_COMPLETE" and "does not exist" in str(e):
                return
            raise
        if not status.endswith("_IN_PROGRESS"):
            break
        if time.monotonic() > deadline:
            raise Failure(f"stack {name} still {status} after {DEADLINE_SECONDS}s")
        time.sleep(POLL_SECONDS)
    if status != want:
        events = cfn.describe_stack_events(StackName=name)["StackEvents"]
        reasons = [
            f"  {e['LogicalResourceId']}: {e['ResourceStatus']} {e.get('ResourceStatusReason', '')}"
            for e in events
            if e["ResourceStatus"].endswith("FAILED")
        ]
        raise Failure(f"stack {name} ended {status}, want {want}:\n" + "\n".join(reasons))


def params(values: dict[str, str]) -> list[dict]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def expected_policy(region: str, account: str, api_id: str, function: str, topic: str, table: str) -> list[dict]:
    apigw = f"arn:aws:apigateway:{region}::/restapis"
    stage = f"{apigw}/{api_id}/stages/prod"
    return [
        {
            "Sid": "ReadManagedStage",
            "Effect": "Allow",
            "Action": "apigateway:GET",
            "Resource": [
                f"{apigw}/{api_id}", stage, f"{apigw}/{api_id}/deployments", f"{apigw}/{api_id}/deployments/*",
            ],
        },
        {"Sid": "UpdateManagedStage", "Effect": "Allow", "Action": "apigateway:PATCH", "Resource": stage},
        {"Sid": "ListRestApis", "Effect": "Allow", "Action": "apigateway:GET", "Resource": apigw},
        {
            "Sid": "ReadAlarmsAndMetrics",
            "Effect": "Allow",
            "Action": ["cloudwatch:DescribeAlarms", "cloudwatch:GetMetricData", "cloudwatch:ListMetrics"],
            "Resource": "*",
        },
        {
            "Sid": "PutTidegateMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "Tidegate"}},
        },
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{function}:*",
        },
        {
            "Sid": "StateTable",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query"],
            "Resource": f"arn:aws:dynamodb:{region}:{account}:table/{table}",
        },
        {"Sid": "NotifyTopic", "Effect": "Allow", "Action": "sns:Publish", "Resource": topic},
    ]


def check_table(ddb, table: str) -> None:
    """The state table as the Lambda expects it (same as scripts/dynamodb.sh create-table)."""
    t = ddb.describe_table(TableName=table)["Table"]
    expect(
        sorted((k["AttributeName"], k["KeyType"]) for k in t["KeySchema"]),
        [("pk", "HASH"), ("sk", "RANGE")],
        f"key schema of {table}",
    )
    expect(
        sorted((a["AttributeName"], a["AttributeType"]) for a in t["AttributeDefinitions"]),
        [("pk", "S"), ("sk", "S")],
        f"attribute definitions of {table}",
    )
    expect(t.get("BillingModeSummary", {}).get("BillingMode"), "PAY_PER_REQUEST", f"billing mode of {table}")
    expect(t.get("GlobalSecondaryIndexes", []), [], f"indexes of {table}")
    ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    expect((ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")), ("ENABLED", "expires_at"), f"TTL of {table}")
    # Not point-in-time recovery: LocalStack's AWS::DynamoDB::Table provider
    # ignores PointInTimeRecoverySpecification (it applies TTL only); the
    # template's setting is checked by test_template_iam.py.


def rate_alarm_metrics(api_name: str, stage_dimension: str, min_requests: int) -> list[dict]:
    def stat(metric_id: str, metric: str) -> dict:
        return {
            "Id": metric_id,
            "ReturnData": False,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/ApiGateway",
                    "MetricName": metric,
                    "Dimensions": [
                        {"Name": "ApiName", "Value": api_name},
                        {"Name": "Stage", "Value": stage_dimension},
                    ],
                },
                "Period": 60,
                "Stat": "Sum",
            },
        }

    return [
        stat("errors", "5XXError"),
        stat("requests", "Count"),
        {"Id": "rate", "Expression": f"IF(requests >= {min_requests}, errors / requests, 0)", "ReturnData": True},
    ]


def check_created(clients, names: dict, region: str, account: str) -> None:
    cfn, iam, events, cw, logs = (clients[k] for k in ("cfn", "iam", "events", "cw", "logs"))
    stack = names["stack"]
    resources = cfn.describe_stack_resources(StackName=stack)["StackResources"]
    expect(
        sorted(r["LogicalResourceId"] for r in resources),
        ["AlarmStateRule", "CanaryErrorRateAlarm", "LogGroup", "Role", "ScheduleRule", "StageErrorRateAlarm", "StateTable"],
        "resources created with CreateFunction=false",
    )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}

    # The state table: created by the stack, named by CloudFormation.
    names["table"] = outputs["StateTableName"]
    expect(
        next(r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == "StateTable"),
        names["table"],
        "StateTableName output",
    )
    check_table(clients["ddb"], names["table"])
    say(f"DynamoDB: state table {names['table']} (pk/sk, PAY_PER_REQUEST, TTL on expires_at)")

    # The role: trust, no managed policies, exactly the expected inline policy.
    role = outputs["RoleName"]
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(trust)
    expect(
        [(s["Principal"], s["Action"]) for s in trust["Statement"]],
        [({"Service": "lambda.amazonaws.com"}, "sts:AssumeRole")],
        "trust policy",
    )
    expect(iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"], [], "managed policies")
    expect(iam.list_role_policies(RoleName=role)["PolicyNames"], ["tidegate-rollback"], "inline policies")
    doc = iam.get_role_policy(RoleName=role, PolicyName="tidegate-rollback")["PolicyDocument"]
    if isinstance(doc, str):
        doc = json.loads(doc)
    expect(
        doc["Statement"],
        expected_policy(region, account, names["api_id"], names["function"], names["topic"], names["table"]),
        "the role's policy, read back from IAM",
    )
    say(f"IAM role {role}: trust and policy ({len(doc['Statement'])} statements) as expected")

    # The rules: the alarm-state pattern with every watched name, the schedule, no targets.
    alarm_rule = events.describe_rule(Name=outputs["AlarmStateRuleName"])
    expect(alarm_rule["State"], "ENABLED", "alarm-state rule state")
    expect(
        json.loads(alarm_rule["EventPattern"]),
        {
            "source": ["aws.cloudwatch"],
            "detail-type": ["CloudWatch Alarm State Change"],
            "detail": {"alarmName": [names["stage_alarm"], names["canary_alarm"], *names["extra_alarms"]]},
        },
        "alarm-state rule pattern",
    )
    schedule = events.describe_rule(Name=outputs["ScheduleRuleName"])
    expect((schedule["State"], schedule.get("ScheduleExpression")), ("ENABLED", "rate(1 minute)"), "schedule rule")
    for rule in (outputs["AlarmStateRuleName"], outputs["ScheduleRuleName"]):
        expect(events.list_targets_by_rule(Rule=rule)["Targets"], [], f"targets of {rule} without a function")
    say(f"EventBridge: {alarm_rule['Name']} (pattern on {len(names['extra_alarms']) + 2} alarms), {schedule['Name']}")

    # The alarms: metric math over 5XXError/Count, stage and canary dimensions.
    alarms = {
        a["AlarmName"]: a
        for a in cw.describe_alarms(AlarmNames=[names["stage_alarm"], names["canary_alarm"]])["MetricAlarms"]
    }
    for name, dimension, threshold in (
        (names["stage_alarm"], "prod", 0.1),
        (names["canary_alarm"], "prod/Canary", 0.05),
    ):
        if name not in alarms:
            raise Failure(f"alarm {name} was not created")
        a = alarms[name]
        expect(
            (a["ComparisonOperator"], a["Threshold"], a["EvaluationPeriods"], a["TreatMissingData"]),
            ("GreaterThanThreshold", threshold, 1, "notBreaching"),
            f"alarm {name} settings",
        )
        metrics = [{k: v for k, v in m.items() if k != "Label"} for m in a["Metrics"]]
        expect(metrics, rate_alarm_metrics(names["api_name"], dimension, 10), f"alarm {name} metric math")
    say(f"CloudWatch: alarms {names['stage_alarm']} (Stage=prod) and {names['canary_alarm']} (Stage=prod/Canary)")

    # Name only: LocalStack's AWS::Logs::LogGroup ignores RetentionInDays.
    groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{names['function']}")["logGroups"]
    expect([g["logGroupName"] for g in groups], [f"/aws/lambda/{names['function']}"], "log group")


def check_tight(clients, stack: str, names: dict, region: str, account: str) -> None:
    cfn, iam, events = clients["cfn"], clients["iam"], clients["events"]
    resources = sorted(r["LogicalResourceId"] for r in cfn.describe_stack_resources(StackName=stack)["StackResources"])
    expect(resources, ["AlarmStateRule", "LogGroup", "Role", "ScheduleRule"], "resources of the tight variant (existing table)")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}
    expect(outputs["StateTableName"], names["table"], "StateTableName with ExistingStateTableName")
    for rule in (f"{stack}-alarm-state", f"{stack}-schedule"):
        expect(events.describe_rule(Name=rule)["State"], "DISABLED", f"{rule} with AutomationState=DISABLED")
    pattern = json.loads(events.describe_rule(Name=f"{stack}-alarm-state")["EventPattern"])
    expect(pattern["detail"]["alarmName"], [names["stage_alarm"], names["canary_alarm"]], "watched alarms, no extras")
    role = next(r["PhysicalResourceId"] for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]
                if r["LogicalResourceId"] == "Role")
    doc = iam.get_role_policy(RoleName=role, PolicyName="tidegate-rollback")["PolicyDocument"]
    if isinstance(doc, str):
        doc = json.loads(doc)
    expect(
        [s["Sid"] for s in doc["Statement"]],
        ["ReadManagedStage", "UpdateManagedStage", "ReadAlarmsAndMetrics", "PutTidegateMetrics", "WriteOwnLogs", "StateTable"],
        "statements without name lookup and topic",
    )
    expect(
        doc["Statement"][-1]["Resource"],
        f"arn:aws:dynamodb:{region}:{account}:table/{names['table']}",
        "the DynamoDB grant on the existing table",
    )


def main() -> int:
    region = os.environ.get("AWS_REGION", "us-east-1")
    session = boto3.session.Session(region_name=region)
    clients = {k: session.client(s) for k, s in (
        ("cfn", "cloudformation"), ("iam", "iam"), ("events", "events"), ("cw", "cloudwatch"),
        ("logs", "logs"), ("apigw", "apigateway"), ("sns", "sns"), ("sts", "sts"), ("ddb", "dynamodb"),
    )}
    cfn = clients["cfn"]
    account = clients["sts"].get_caller_identity()["Account"]
    run = f"{int(time.time())}-{os.getpid()}"
    prefix = f"tg-infra-{run}"
    names = {
        "stack": prefix,
        "function": prefix,
        "api_name": f"{prefix}-api",
        "stage_alarm": f"{prefix}-prod-5xx-rate",
        "canary_alarm": f"{prefix}-prod-canary-5xx-rate",
        "extra_alarms": [f"{prefix}-prod-latency", f"{prefix}-prod-4xx"],
    }
    names["api_id"] = clients["apigw"].create_rest_api(name=names["api_name"])["id"]
    names["topic"] = clients["sns"].create_topic(Name=f"{prefix}-actions")["TopicArn"]
    values = {
        "CreateFunction": "false",
        "FunctionName": names["function"],
        "ManagedRestApiId": names["api_id"],
        "ManagedStageName": "prod",
        "MetricApiName": names["api_name"],
        "StageAlarmName": names["stage_alarm"],
        "CanaryAlarmName": names["canary_alarm"],
        "ExtraWatchedAlarmNames": ",".join(names["extra_alarms"]),
        "NotificationTopicArn": names["topic"],
        "StageErrorRateThreshold": "0.1",
    }
    created = created_tight = False
    try:
        t0 = time.monotonic()
        cfn.create_stack(StackName=names["stack"], TemplateBody=TEMPLATE, Parameters=params(values),
                         Capabilities=["CAPABILITY_IAM"])
        created = True
        wait_stack(cfn, names["stack"], "CREATE_COMPLETE")
        say(f"stack {names['stack']} created in {time.monotonic() - t0:.1f}s")
        check_created(clients, names, region, account)
        names["role"] = next(
            r["PhysicalResourceId"]
            for r in cfn.describe_stack_resources(StackName=names["stack"])["StackResources"]
            if r["LogicalResourceId"] == "Role"
        )

        # The tight variant: rules disabled (the emergency stop), no example
        # alarms, no name lookup, no topic, the first stack's table as an
        # existing one. A second stack, because LocalStack cannot update an
        # AWS::Events::Rule.
        t0 = time.monotonic()
        tight = f"{names['stack']}-tight"
        cfn.create_stack(StackName=tight, TemplateBody=TEMPLATE, Capabilities=["CAPABILITY_IAM"],
                         Parameters=params({
                             **values, "FunctionName": tight, "AutomationState": "DISABLED",
                             "CreateExampleAlarms": "false", "AllowRestApiNameLookup": "false",
                             "NotificationTopicArn": "", "ExtraWatchedAlarmNames": "",
                             "ExistingStateTableName": names["table"],
                         }))
        created_tight = True
        wait_stack(cfn, tight, "CREATE_COMPLETE")
        check_tight(clients, tight, names, region, account)
        cfn.delete_stack(StackName=tight)
        wait_stack(cfn, tight, "DELETE_COMPLETE")
        created_tight = False
        say(f"tight variant: rules DISABLED, no alarms, the existing table, 6 statements (create, check, delete in {time.monotonic() - t0:.1f}s)")

        t0 = time.monotonic()
        cfn.delete_stack(StackName=names["stack"])
        wait_stack(cfn, names["stack"], "DELETE_COMPLETE")
        created = False
        left = clients["cw"].describe_alarms(AlarmNames=[names["stage_alarm"], names["canary_alarm"]])["MetricAlarms"]
        expect([a["AlarmName"] for a in left], [], "alarms after delete")
        rules = clients["events"].list_rules(NamePrefix=names["function"])["Rules"]
        expect([r["Name"] for r in rules], [], "rules after delete")
        try:
            clients["iam"].get_role(RoleName=names["role"])
            raise Failure(f"role {names['role']} still exists after delete")
        except clients["iam"].exceptions.NoSuchEntityException:
            pass
        # DeletionPolicy Retain: the table (known-good, audit) outlives the stack.
        check_table(clients["ddb"], names["table"])
        say(f"stack deleted in {time.monotonic() - t0:.1f}s; role, alarms and rules gone, state table retained")
    except Failure as e:
        print(f"==> [infra] FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        for stack, exists in ((names["stack"], created), (f"{names['stack']}-tight", created_tight)):
            if exists:
                try:
                    cfn.delete_stack(StackName=stack)
                except Exception as e:  # cleanup only; the failure is already reported
                    print(f"==> [infra] could not delete stack {stack}: {e}", file=sys.stderr)
        clients["apigw"].delete_rest_api(restApiId=names["api_id"])
        clients["sns"].delete_topic(TopicArn=names["topic"])
        if "table" in names:  # retained by the stack: ours to delete
            try:
                clients["ddb"].delete_table(TableName=names["table"])
            except Exception as e:  # cleanup only
                print(f"==> [infra] could not delete table {names['table']}: {e}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
