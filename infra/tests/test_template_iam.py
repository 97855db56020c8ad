"""Least privilege of infra/template.yaml, checked on the template itself.

Run: .venv/bin/python -B -m unittest discover -s infra/tests -p 'test_*.py'

The rules (see infra/README.md, "Permissions"):
- the function's role is the only IAM principal the template creates, its
  trust is lambda.amazonaws.com only, it has no managed policies;
- every statement is Allow with Action and Resource (no Not* forms);
- every action is one the Lambda's AWS calls (every .rs file under
  lambda-rollback/src/) need, and every call the source makes has its action
  on its exact resource; a call CALLS lists that the source does not make
  (yet) is reported as a skipped test, not a failure;
- no `*` in actions; `*` as a resource only for the CloudWatch actions that
  have no resource-level permissions (EXCEPTIONS, each with its reason);
  PutMetricData only in the `Tidegate` namespace;
- API Gateway: GET/PATCH only, on the managed stage's ARNs;
- DynamoDB: item calls only, on the state table's ARN only (the created
  table, or the one ExistingStateTableName names);
- logs: only the function's own log group.

Besides the role: the state table's schema, the function's reserved
concurrency, and the invoke permissions of the SNS and alarm-action paths.
"""

from __future__ import annotations

import copy
import pathlib
import re
import unittest

from cfnlint.decode import decode

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
SRC = ROOT / "lambda-rollback" / "src"

APIGW = "arn:${AWS::Partition}:apigateway:${AWS::Region}::"
# Resource ARNs as the template writes them (Fn::Sub strings).
REST_API = APIGW + "/restapis/${ManagedRestApiId}"
STAGE = REST_API + "/stages/${ManagedStageName}"
DEPLOYMENTS = REST_API + "/deployments"
DEPLOYMENT = REST_API + "/deployments/*"
REST_APIS = APIGW + "/restapis"
OWN_LOG_STREAMS = (
    "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}"
    ":log-group:/aws/lambda/${FunctionName}:*"
)
TOPIC = {"Ref": "NotificationTopicArn"}
# The state table: the stack's own, or the existing one named by a parameter
# (an Fn::If; both branches must be granted, nothing else).
STATE_TABLE = "GetAtt:StateTable.Arn"
EXISTING_TABLE = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${ExistingStateTableName}"
TABLES = (STATE_TABLE, EXISTING_TABLE)
# Resources with a `*` that are still exactly scoped.
SCOPED_WILDCARDS = {OWN_LOG_STREAMS, DEPLOYMENT}

# Each SDK call in lambda-rollback/src/ -> the IAM action and the resource
# (or resources: each must be granted) it needs. A call missing here fails
# the test: add it with its exact resource.
CALLS = {
    "get_rest_api": ("apigateway:GET", REST_API),
    "get_rest_apis": ("apigateway:GET", REST_APIS),
    "get_stage": ("apigateway:GET", STAGE),
    "get_deployments": ("apigateway:GET", DEPLOYMENTS),
    "get_deployment": ("apigateway:GET", DEPLOYMENT),
    "update_stage": ("apigateway:PATCH", STAGE),
    "describe_alarms": ("cloudwatch:DescribeAlarms", "*"),
    "get_metric_data": ("cloudwatch:GetMetricData", "*"),
    "list_metrics": ("cloudwatch:ListMetrics", "*"),
    "put_metric_data": ("cloudwatch:PutMetricData", "*"),
    "get_item": ("dynamodb:GetItem", TABLES),
    "put_item": ("dynamodb:PutItem", TABLES),
    "update_item": ("dynamodb:UpdateItem", TABLES),
    "delete_item": ("dynamodb:DeleteItem", TABLES),
    "query": ("dynamodb:Query", TABLES),
}

# DynamoDB operations the source scan recognises (snake_case, as the Rust
# SDK names them): any of them found in the source must be in CALLS.
DYNAMODB_OPERATIONS = {
    "get_item", "put_item", "update_item", "delete_item", "query", "scan",
    "batch_get_item", "batch_write_item", "transact_get_items", "transact_write_items",
    "execute_statement", "batch_execute_statement", "execute_transaction",
    "describe_table", "create_table", "update_table", "delete_table", "list_tables",
    "describe_time_to_live", "update_time_to_live",
}

# Actions allowed on Resource "*", and why AWS requires it.
EXCEPTIONS = {
    "cloudwatch:DescribeAlarms": (
        "returns composite alarms only when scoped to * (DescribeAlarms API "
        "reference); the Lambda reads metric and composite alarms"
    ),
    "cloudwatch:GetMetricData": "no resource types (Service Authorization Reference)",
    "cloudwatch:ListMetrics": (
        "no resource types (Service Authorization Reference); the Lambda checks "
        "that the canary's Stage dimension exists before trusting its metrics"
    ),
    "cloudwatch:PutMetricData": (
        "no resource types; limited by the cloudwatch:namespace condition key instead"
    ),
}

# Everything else the role may do besides CALLS: its logs and the optional topic.
EXTRA = {
    ("logs:CreateLogStream", OWN_LOG_STREAMS),
    ("logs:PutLogEvents", OWN_LOG_STREAMS),
    ("sns:Publish", "Ref:NotificationTopicArn"),
}

IAM_TYPES = {
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::IAM::User",
    "AWS::IAM::Group",
    "AWS::IAM::RolePolicy",
}


def load_template() -> dict:
    template, matches = decode(str(TEMPLATE))
    if matches:
        raise AssertionError(f"{TEMPLATE} does not parse: {matches}")
    return template


def branches(node):
    """Every value `node` can take: both sides of each Fn::If, without AWS::NoValue."""
    if isinstance(node, dict) and set(node) == {"Fn::If"}:
        _, yes, no = node["Fn::If"]
        return branches(yes) + branches(no)
    if node == {"Ref": "AWS::NoValue"}:
        return []
    return [node]


def as_list(node) -> list:
    return node if isinstance(node, list) else [node]


def resource_key(node) -> str:
    """A comparable spelling of one Resource entry (one branch of an Fn::If)."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
        return node["Fn::Sub"]
    if isinstance(node, dict) and set(node) == {"Ref"}:
        return f"Ref:{node['Ref']}"
    if isinstance(node, dict) and set(node) == {"Fn::GetAtt"}:
        att = node["Fn::GetAtt"]
        return "GetAtt:" + (att if isinstance(att, str) else ".".join(att))
    raise AssertionError(f"resource {node!r} is neither a string, a plain Fn::Sub, a Ref nor a GetAtt")


def resource_keys(resource) -> list[str]:
    """Every resource a statement's Resource can name, both sides of each Fn::If."""
    return [resource_key(b) for r in as_list(resource) for b in branches(r)]


def statements(template: dict) -> list[dict]:
    """Every statement of the role's inline policies, Fn::If branches included."""
    out = []
    role = template["Resources"]["Role"]["Properties"]
    for policy in role.get("Policies", []):
        for st in as_list(policy["PolicyDocument"]["Statement"]):
            out.extend(branches(st))
    return out


def grants(template: dict) -> set[tuple[str, str]]:
    """(action, resource) pairs the role's policies allow."""
    pairs = set()
    for st in statements(template):
        for action in as_list(st["Action"]):
            for res in resource_keys(st["Resource"]):
                pairs.add((action, res))
    return pairs


def needed(call: str) -> set[tuple[str, str]]:
    """The (action, resource) pairs one call in CALLS needs."""
    action, res = CALLS[call]
    return {(action, r) for r in (res if isinstance(res, tuple) else (res,))}


def problems(template: dict) -> list[str]:
    """Every least-privilege violation in `template`; empty when it holds."""
    found = []
    resources = template.get("Resources", {})
    iam = {name: r["Type"] for name, r in resources.items() if r.get("Type") in IAM_TYPES}
    if iam != {"Role": "AWS::IAM::Role"}:
        found.append(f"IAM resources must be exactly the function's Role, found {iam}")
        if "Role" not in iam:
            return found

    role = resources["Role"]["Properties"]
    if role.get("ManagedPolicyArns"):
        found.append("Role has ManagedPolicyArns: every permission must be inline and checked here")
    for st in as_list(role["AssumeRolePolicyDocument"]["Statement"]):
        if st.get("Principal") != {"Service": "lambda.amazonaws.com"} or st.get("Action") != "sts:AssumeRole":
            found.append(f"trust statement {st!r}: only lambda.amazonaws.com may assume the role")

    function = resources.get("Function", {}).get("Properties", {})
    if function.get("Role") != {"Fn::GetAtt": ["Role", "Arn"]}:
        found.append("Function must run as Role")
    if function.get("FunctionName") != {"Ref": "FunctionName"}:
        found.append("Function's name must be the FunctionName parameter (its log ARN uses it)")
    log_group = resources.get("LogGroup", {}).get("Properties", {})
    if log_group.get("LogGroupName") != {"Fn::Sub": "/aws/lambda/${FunctionName}"}:
        found.append("LogGroup must be /aws/lambda/${FunctionName}, the function's own")

    for st in statements(template):
        sid = st.get("Sid", "<no Sid>")
        if st.get("Effect") != "Allow" or {"NotAction", "NotResource", "NotPrincipal"} & set(st):
            found.append(f"{sid}: only Allow statements with Action and Resource")
            continue
        actions = as_list(st.get("Action", []))
        res = resource_keys(st.get("Resource", []))
        for action in actions:
            if "*" in action:
                found.append(f"{sid}: wildcard action {action}")
            if action.startswith("apigateway:") and action not in ("apigateway:GET", "apigateway:PATCH"):
                found.append(f"{sid}: API Gateway action {action}: only GET and PATCH")
            if action.startswith("dynamodb:") and sorted(res) != sorted(TABLES):
                found.append(f"{sid}: {action} must be on the state table's ARN only, got {res}")
        for r in res:
            if r == "*":
                bad = [a for a in actions if a not in EXCEPTIONS]
                if bad:
                    found.append(f"{sid}: Resource * for {bad}, which support resource-level permissions")
            elif "*" in r and r not in SCOPED_WILDCARDS:
                found.append(f"{sid}: wildcard in resource {r}")
        if "cloudwatch:PutMetricData" in actions:
            cond = st.get("Condition", {})
            if cond != {"StringEquals": {"cloudwatch:namespace": "Tidegate"}}:
                found.append(f"{sid}: PutMetricData must be conditioned on cloudwatch:namespace = Tidegate, got {cond!r}")
            if len(actions) != 1:
                found.append(f"{sid}: PutMetricData's namespace condition must not cover other actions")

    allowed = set().union(*(needed(c) for c in CALLS)) | EXTRA
    for pair in sorted(grants(template) - allowed):
        found.append(f"grant {pair} is not needed by any SDK call in lambda-rollback/src")
    for call in sorted(CALLS):
        for pair in sorted(needed(call) - grants(template)):
            found.append(f"the Lambda calls {call} but the role lacks {pair}")
    return found


def source_text() -> str:
    """Every .rs file under lambda-rollback/src/ (aws.rs, store/*.rs, ...)."""
    return "\n".join(p.read_text() for p in sorted(SRC.rglob("*.rs")))


def sdk_calls(text: str | None = None) -> set[str]:
    """The SDK operations the source calls: methods called on the API Gateway,
    CloudWatch or DynamoDB client fields (`.apigw.get_stage()`,
    `self.ddb.put_item()`), and any DynamoDB operation whose builder chain sets
    `table_name(` before its `.send()`, whatever the client is called."""
    text = source_text() if text is None else text
    calls = set(re.findall(r"\.(?:apigw|cw|ddb|dynamodb|dynamo)\s*\.\s*([a-z_]+)\(\)", text, re.S))
    for m in re.finditer(r"\.\s*([a-z_]+)\(\)", text):
        if m.group(1) in DYNAMODB_OPERATIONS:
            chain = text[m.end():m.end() + 2000].split(".send()", 1)[0]
            if "table_name(" in chain:
                calls.add(m.group(1))
    return calls


class TemplateIamTest(unittest.TestCase):
    def setUp(self):
        self.template = load_template()

    def test_least_privilege(self):
        self.assertEqual(problems(self.template), [])

    def test_every_aws_call_is_mapped(self):
        calls = sdk_calls()
        self.assertTrue(calls, f"found no SDK calls under {SRC}: the pattern is stale")
        unmapped = calls - set(CALLS)
        self.assertEqual(unmapped, set(), "lambda-rollback/src makes calls this test (and the role) do not cover")

    def test_every_mapped_call_is_made(self):
        # Not a failure: the role may grant a call before the code making it
        # lands (the DynamoDB store). Shown as a skip with the calls' names.
        missing = set(CALLS) - sdk_calls()
        if missing:
            self.skipTest(f"CALLS lists calls lambda-rollback/src does not make (yet): {sorted(missing)}")

    def test_source_scan_finds_dynamodb_calls(self):
        # The scan itself, on a store written the way the SDK is used.
        sample = '''
            self.client.put_item().table_name(&self.table).item("pk", s(pk))
                .condition_expression("attribute_not_exists(pk)").send().await?;
            let out = ddb.query().table_name(t).key_condition_expression("pk = :p").send().await?;
            let url_query = uri.query();
            self.ddb.get_item().key("pk", k).send().await?;
        '''
        self.assertEqual(sdk_calls(sample), {"put_item", "query", "get_item"})

    def test_exceptions_are_exactly_the_star_grants(self):
        star = {a for a, r in grants(self.template) if r == "*"}
        self.assertEqual(star, set(EXCEPTIONS))

    def test_optional_grants_sit_behind_their_conditions(self):
        by_sid = {}
        for st in self.template["Resources"]["Role"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]:
            if "Fn::If" in st:
                by_sid[st["Fn::If"][1]["Sid"]] = st["Fn::If"][0]
        self.assertEqual(by_sid, {"ListRestApis": "WithNameLookup", "NotifyTopic": "WithTopic"})

    # ---- The state table, concurrency and the invoke paths ------------------
    def resource(self, name) -> dict:
        return self.template["Resources"][name]

    def test_state_table_schema(self):
        table = self.resource("StateTable")
        self.assertEqual(table["Type"], "AWS::DynamoDB::Table")
        self.assertEqual(table["Condition"], "CreateStateTable")
        self.assertEqual(self.template["Conditions"]["CreateStateTable"], {"Fn::Equals": [{"Ref": "ExistingStateTableName"}, ""]})
        self.assertEqual(self.template["Parameters"]["ExistingStateTableName"]["Default"], "")
        # Retained: it holds known-good and the audit history.
        self.assertEqual((table["DeletionPolicy"], table["UpdateReplacePolicy"]), ("Retain", "Retain"))
        props = table["Properties"]
        self.assertEqual(
            props["KeySchema"],
            [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        )
        self.assertEqual(
            props["AttributeDefinitions"],
            [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        )
        self.assertEqual(props["BillingMode"], "PAY_PER_REQUEST")
        self.assertNotIn("ProvisionedThroughput", props)
        self.assertEqual(props["TimeToLiveSpecification"], {"AttributeName": "expires_at", "Enabled": True})
        self.assertEqual(props["PointInTimeRecoverySpecification"], {"PointInTimeRecoveryEnabled": True})
        self.assertNotIn("GlobalSecondaryIndexes", props)

    def test_function_gets_the_table_name(self):
        env = self.resource("Function")["Properties"]["Environment"]["Variables"]
        self.assertEqual(
            env["TIDEGATE_STATE_TABLE"],
            {"Fn::If": ["CreateStateTable", {"Ref": "StateTable"}, {"Ref": "ExistingStateTableName"}]},
        )

    def test_dynamodb_grant_is_on_the_table_only(self):
        dynamo = [st for st in statements(self.template) if any(a.startswith("dynamodb:") for a in as_list(st["Action"]))]
        self.assertEqual(len(dynamo), 1, "one statement for the state table")
        st = dynamo[0]
        self.assertEqual(
            sorted(as_list(st["Action"])),
            ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"],
        )
        self.assertEqual(
            st["Resource"],
            {"Fn::If": ["CreateStateTable", {"Fn::GetAtt": ["StateTable", "Arn"]}, {"Fn::Sub": EXISTING_TABLE}]},
        )

    def test_one_invocation_at_a_time(self):
        self.assertEqual(self.resource("Function")["Properties"]["ReservedConcurrentExecutions"], 1)

    def test_alarm_action_permission(self):
        perm = self.resource("AlarmActionInvokePermission")
        self.assertEqual(perm["Condition"], "WithFunction")
        props = perm["Properties"]
        self.assertEqual(
            (props["Action"], props["Principal"], props["FunctionName"]),
            ("lambda:InvokeFunction", "lambda.alarms.cloudwatch.amazonaws.com", {"Ref": "Function"}),
        )
        self.assertEqual(props["SourceAccount"], {"Ref": "AWS::AccountId"})
        self.assertEqual(
            props["SourceArn"],
            {"Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"},
        )

    def test_sns_path(self):
        self.assertEqual(self.template["Parameters"]["AlarmTopicArn"]["Default"], "")
        self.assertEqual(
            self.template["Conditions"]["WithAlarmTopic"],
            {"Fn::And": [{"Condition": "WithFunction"}, {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}]},
        )
        perm = self.resource("AlarmTopicInvokePermission")
        self.assertEqual(perm["Condition"], "WithAlarmTopic")
        self.assertEqual(
            {k: perm["Properties"][k] for k in ("Action", "Principal", "SourceArn", "FunctionName")},
            {
                "Action": "lambda:InvokeFunction",
                "Principal": "sns.amazonaws.com",
                "SourceArn": {"Ref": "AlarmTopicArn"},
                "FunctionName": {"Ref": "Function"},
            },
        )
        sub = self.resource("AlarmTopicSubscription")
        self.assertEqual((sub["Type"], sub["Condition"]), ("AWS::SNS::Subscription", "WithAlarmTopic"))
        self.assertEqual(
            sub["Properties"],
            {"TopicArn": {"Ref": "AlarmTopicArn"}, "Protocol": "lambda", "Endpoint": {"Fn::GetAtt": ["Function", "Arn"]}},
        )

    def test_every_invoke_permission_is_scoped(self):
        # Service principals name their source; only the public URL's grants
        # (AuthType NONE) go to "*", and those hold through the URL only.
        for name, r in self.template["Resources"].items():
            if r["Type"] != "AWS::Lambda::Permission":
                continue
            props = r["Properties"]
            if props["Principal"] == "*":
                self.assertEqual(r["Condition"], "WithPublicUrl", name)
                self.assertTrue(props.get("FunctionUrlAuthType") == "NONE" or props.get("InvokedViaFunctionUrl") is True, name)
            else:
                self.assertIn("SourceArn", props, f"{name}: a service principal without SourceArn")

    # The checker itself: each kind of over-grant is caught.
    def mutated(self, sid, edit) -> list[str]:
        """The problems found once `edit` changed statement `sid` (None: removed it)."""
        t = copy.deepcopy(self.template)
        sts = t["Resources"]["Role"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        index = next(i for i, st in enumerate(sts) if st.get("Sid") == sid)
        if edit is None:
            sts.pop(index)
        else:
            edit(sts[index])
        return problems(t)

    def test_catches_wildcard_action(self):
        self.assertTrue(self.mutated("ReadManagedStage", lambda s: s.update(Action="apigateway:*")))

    def test_catches_wildcard_resource(self):
        self.assertTrue(self.mutated("UpdateManagedStage", lambda s: s.update(Resource="*")))
        self.assertTrue(
            self.mutated(
                "UpdateManagedStage", lambda s: s.update(Resource={"Fn::Sub": REST_API + "/stages/*"})
            )
        )

    def test_catches_other_apigateway_verbs(self):
        self.assertTrue(self.mutated("UpdateManagedStage", lambda s: s.update(Action="apigateway:DELETE")))

    def test_catches_unconditioned_put_metric_data(self):
        self.assertTrue(self.mutated("PutTidegateMetrics", lambda s: s.pop("Condition")))

    def test_catches_foreign_logs(self):
        other = {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"}
        self.assertTrue(self.mutated("WriteOwnLogs", lambda s: s.update(Resource=other)))

    def test_catches_missing_permission(self):
        self.assertTrue(self.mutated("UpdateManagedStage", None))
        self.assertTrue(self.mutated("StateTable", None))

    def test_catches_dynamodb_beyond_the_table(self):
        self.assertTrue(self.mutated("StateTable", lambda s: s.update(Resource="*")))
        index = {"Fn::Sub": EXISTING_TABLE + "/index/*"}
        self.assertTrue(self.mutated("StateTable", lambda s: s.update(Resource=index)))
        self.assertTrue(self.mutated("StateTable", lambda s: s["Action"].append("dynamodb:Scan")))


if __name__ == "__main__":
    unittest.main()
