"""Least privilege of infra/template.yaml, checked on the template itself.

Run: .venv/bin/python -B -m unittest discover -s infra/tests -p 'test_*.py'

The rules (see infra/README.md, "Permissions"):
- the function's role is the only IAM principal the template creates, its
  trust is lambda.amazonaws.com only, it has no managed policies;
- every statement is Allow with Action and Resource (no Not* forms);
- every action is one the Lambda's AWS calls (lambda-rollback/src/aws.rs)
  need, and every call aws.rs makes has its action on its exact resource;
- no `*` in actions; `*` as a resource only for the CloudWatch actions that
  have no resource-level permissions (EXCEPTIONS, each with its reason);
  PutMetricData only in the `Tidegate` namespace;
- API Gateway: GET/PATCH only, on the managed stage's ARNs;
- logs: only the function's own log group.
"""

from __future__ import annotations

import copy
import pathlib
import re
import unittest

from cfnlint.decode import decode

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
AWS_RS = ROOT / "lambda-rollback" / "src" / "aws.rs"

APIGW = "arn:${AWS::Partition}:apigateway:${AWS::Region}::"
# Resource ARNs as the template writes them (Fn::Sub strings).
REST_API = APIGW + "/restapis/${ManagedRestApiId}"
STAGE = REST_API + "/stages/${ManagedStageName}"
DEPLOYMENTS = REST_API + "/deployments"
REST_APIS = APIGW + "/restapis"
OWN_LOG_STREAMS = (
    "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}"
    ":log-group:/aws/lambda/${FunctionName}:*"
)
TOPIC = {"Ref": "NotificationTopicArn"}

# Each SDK call in aws.rs -> the IAM action and resource it needs.
# A call missing here fails the test: add it with its exact resource.
CALLS = {
    "get_rest_api": ("apigateway:GET", REST_API),
    "get_rest_apis": ("apigateway:GET", REST_APIS),
    "get_stage": ("apigateway:GET", STAGE),
    "get_deployments": ("apigateway:GET", DEPLOYMENTS),
    "update_stage": ("apigateway:PATCH", STAGE),
    "describe_alarms": ("cloudwatch:DescribeAlarms", "*"),
    "get_metric_data": ("cloudwatch:GetMetricData", "*"),
    "put_metric_data": ("cloudwatch:PutMetricData", "*"),
}

# Actions allowed on Resource "*", and why AWS requires it.
EXCEPTIONS = {
    "cloudwatch:DescribeAlarms": (
        "returns composite alarms only when scoped to * (DescribeAlarms API "
        "reference); the Lambda reads metric and composite alarms"
    ),
    "cloudwatch:GetMetricData": "no resource types (Service Authorization Reference)",
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
    """A comparable spelling of one Resource entry."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
        return node["Fn::Sub"]
    if isinstance(node, dict) and set(node) == {"Ref"}:
        return f"Ref:{node['Ref']}"
    raise AssertionError(f"resource {node!r} is neither a string, a plain Fn::Sub nor a Ref")


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
            for res in as_list(st["Resource"]):
                pairs.add((action, resource_key(res)))
    return pairs


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
        res = [resource_key(r) for r in as_list(st.get("Resource", []))]
        for action in actions:
            if "*" in action:
                found.append(f"{sid}: wildcard action {action}")
            if action.startswith("apigateway:") and action not in ("apigateway:GET", "apigateway:PATCH"):
                found.append(f"{sid}: API Gateway action {action}: only GET and PATCH")
        for r in res:
            if r == "*":
                bad = [a for a in actions if a not in EXCEPTIONS]
                if bad:
                    found.append(f"{sid}: Resource * for {bad}, which support resource-level permissions")
            elif "*" in r and r != OWN_LOG_STREAMS:
                found.append(f"{sid}: wildcard in resource {r}")
        if "cloudwatch:PutMetricData" in actions:
            cond = st.get("Condition", {})
            if cond != {"StringEquals": {"cloudwatch:namespace": "Tidegate"}}:
                found.append(f"{sid}: PutMetricData must be conditioned on cloudwatch:namespace = Tidegate, got {cond!r}")
            if len(actions) != 1:
                found.append(f"{sid}: PutMetricData's namespace condition must not cover other actions")

    allowed = set(CALLS.values()) | EXTRA
    for pair in sorted(grants(template) - allowed):
        found.append(f"grant {pair} is not needed by any call in aws.rs")
    for call, pair in sorted(CALLS.items()):
        if pair not in grants(template):
            found.append(f"aws.rs calls {call} but the role lacks {pair}")
    return found


def sdk_calls() -> set[str]:
    """The client methods aws.rs calls (`.get_stage()`, `.update_stage()`, ...)."""
    text = AWS_RS.read_text()
    return set(re.findall(r"\.(?:apigw|cw)\s*\.\s*([a-z_]+)\(\)", text, re.S))


class TemplateIamTest(unittest.TestCase):
    def setUp(self):
        self.template = load_template()

    def test_least_privilege(self):
        self.assertEqual(problems(self.template), [])

    def test_every_aws_call_is_mapped(self):
        calls = sdk_calls()
        self.assertTrue(calls, f"found no SDK calls in {AWS_RS}: the pattern is stale")
        unmapped = calls - set(CALLS)
        self.assertEqual(unmapped, set(), "aws.rs makes calls this test (and the role) do not cover")
        self.assertEqual(set(CALLS) - calls, set(), "CALLS lists calls aws.rs no longer makes")

    def test_exceptions_are_exactly_the_star_grants(self):
        star = {a for a, r in grants(self.template) if r == "*"}
        self.assertEqual(star, set(EXCEPTIONS))

    def test_optional_grants_sit_behind_their_conditions(self):
        by_sid = {}
        for st in self.template["Resources"]["Role"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]:
            if "Fn::If" in st:
                by_sid[st["Fn::If"][1]["Sid"]] = st["Fn::If"][0]
        self.assertEqual(by_sid, {"ListRestApis": "WithNameLookup", "NotifyTopic": "WithTopic"})

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


if __name__ == "__main__":
    unittest.main()
