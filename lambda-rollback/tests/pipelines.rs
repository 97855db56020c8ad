//! Real pipelines, tested in LocalStack: Tidegate keeps working when the
//! user's deploy tooling owns the stage.
//!
//! - CloudFormation: the user's stack owns the REST API, its method, one
//!   `AWS::ApiGateway::Deployment` per release and the
//!   `AWS::ApiGateway::Stage` (with `Variables` and `CanarySetting`).
//! - Terraform: `terraform apply` of an `aws_api_gateway_stage` rewrites the
//!   stage to its configuration between two Tidegate runs.
//! - The CLI: `aws apigateway create-deployment --canary-settings`.
//!
//! Tidegate's state lives in DynamoDB, so none of these rewrites can lose
//! it; the tests check that, and that the next decision is still right.
//!
//! LocalStack's CloudFormation creates the stack's resources, and a stack
//! update creates each release's new deployment, but it applies no update of
//! an `AWS::ApiGateway::Stage` (the stack reports `UPDATE_COMPLETE`, the
//! stage keeps its old `DeploymentId` and `Variables`) and ignores
//! `CanarySetting` even at creation. After each stack update the test
//! therefore applies the changed Stage properties itself, with the UpdateStage
//! patch operations CloudFormation's Stage handler sends (only if the stage
//! does not already show them, so a LocalStack that applies them is used
//! as is).
//!
//! Runs only when `TIDEGATE_LOCALSTACK_TESTS=1`; every name is unique
//! (LocalStack has no reset).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_apigateway::types::{Op, PatchOperation};
use aws_sdk_cloudformation::types::Output;
use aws_sdk_cloudwatch::types::StateValue;
use serde_json::{json, Value};
use tidegate_rollback::store::{StateStore, Versioned};

mod common;
use common::{
    action_type, assert_action, enabled, invoke, plan_steps, put_alarm, state_table, unique,
    AlarmStat, RestApi, SCHEDULE,
};

impl RestApi {
    /// The fixture over an API someone else created (a stack, a CLI):
    /// `d1` live on `prod`, fresh alarms (OK) and a fresh state table.
    async fn adopt(api_id: &str, api_name: &str, d1: &str, prefix: &str) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let cw = aws_sdk_cloudwatch::Client::new(&shared);
        let stage_alarm = format!("{api_name}-stage-5xx");
        let canary_alarm = format!("{api_name}-canary-5xx");
        for name in [&stage_alarm, &canary_alarm] {
            put_alarm(&cw, name, &format!("{name}-errors"), AlarmStat::P99, 10).await;
        }
        let api = Self {
            apigw: aws_sdk_apigateway::Client::new(&shared),
            cw,
            api_id: api_id.to_owned(),
            api_name: api_name.to_owned(),
            d1: d1.to_owned(),
            canary: None,
            stage_alarm,
            canary_alarm,
            store: state_table(prefix).await,
        };
        api.set_alarm(&api.stage_alarm, StateValue::Ok).await;
        api.set_alarm(&api.canary_alarm, StateValue::Ok).await;
        api
    }

    /// Tidegate's record of the stage, with its version.
    async fn record(&self) -> Versioned {
        self.store.load(&self.key()).await.unwrap()
    }

    /// Applies `ops` to `prod` in one UpdateStage.
    async fn patch_stage(&self, ops: Vec<PatchOperation>) {
        self.apigw
            .update_stage()
            .rest_api_id(&self.api_id)
            .stage_name("prod")
            .set_patch_operations(Some(ops))
            .send()
            .await
            .unwrap();
    }

    /// The stage's variables (empty if none).
    async fn variables(&self) -> BTreeMap<String, String> {
        self.stage()
            .await
            .variables()
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Tidegate records the live deployment as known-good: it has watched it
    /// healthy for a bake time, then a schedule tick.
    async fn record_known_good(&self, svc: &mut common::Lambda) {
        self.seen_healthy_for(11).await;
        let tick = invoke(svc, SCHEDULE).await;
        assert_eq!(action_type(&tick), "record_known_good", "{tick}");
    }

    /// Tidegate steps the healthy canary from 10 % to 50 % on a schedule tick
    /// (watched for two minutes, healthy traffic since).
    async fn step_healthy_canary(&self, svc: &mut common::Lambda) {
        self.seen_healthy_for(120).await;
        self.canary_traffic(200.0, 0.0).await;
        let tick = invoke(svc, SCHEDULE).await;
        assert_action(&tick, "set_canary_percent", "applied");
        assert_eq!(self.canary_percent().await, Some(50.0));
    }

    /// A canary alarm: Tidegate removes the canary in one UpdateStage and
    /// leaves no canary settings.
    async fn canary_alarm_removes_canary(&self, svc: &mut common::Lambda) {
        let event = self
            .alarm_event(&self.canary_alarm, StateValue::Alarm)
            .await;
        let out = invoke(svc, &event).await;
        assert_action(&out, "remove_canary", "applied");
        assert_eq!(plan_steps(&out), 1, "{out}");
        self.set_alarm(&self.canary_alarm, StateValue::Ok).await;
    }
}

fn op(op: Op, path: &str, value: Option<&str>) -> PatchOperation {
    PatchOperation::builder()
        .op(op)
        .path(path)
        .set_value(value.map(str::to_owned))
        .build()
}

/// Patch operations making the stage's variables exactly `wanted`, given
/// the ones it has: remove every other one, set the wanted ones.
fn variable_ops(
    have: &BTreeMap<String, String>,
    wanted: &BTreeMap<String, String>,
) -> Vec<PatchOperation> {
    let mut ops: Vec<PatchOperation> = have
        .keys()
        .filter(|k| !wanted.contains_key(*k))
        .map(|k| op(Op::Remove, &format!("/variables/{k}"), None))
        .collect();
    ops.extend(
        wanted
            .iter()
            .filter(|(k, v)| have.get(*k) != Some(v))
            .map(|(k, v)| op(Op::Replace, &format!("/variables/{k}"), Some(v))),
    );
    ops
}

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------
// CloudFormation

/// The `AWS::ApiGateway::Stage` of one stack version: release numbers.
#[derive(Clone, PartialEq)]
struct StageProps {
    live: u32,
    canary: Option<(u32, f64)>,
    variables: BTreeMap<String, String>,
}

/// The user's stack: REST API `name`, a MOCK `GET /`, one deployment per
/// release in `releases` (logical id `Release<n>`, as SAM names each
/// release's deployment anew), and stage `prod` with `stage`.
fn template(name: &str, releases: &[u32], stage: &StageProps) -> String {
    let mut resources = json!({
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": name}},
        "Get": {"Type": "AWS::ApiGateway::Method", "Properties": {
            "RestApiId": {"Ref": "Api"},
            "ResourceId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
            "HttpMethod": "GET",
            "AuthorizationType": "NONE",
            "Integration": {"Type": "MOCK",
                "RequestTemplates": {"application/json": "{\"statusCode\": 200}"}}
        }},
    });
    let mut outputs = json!({"ApiId": {"Value": {"Ref": "Api"}}});
    for n in releases {
        resources[format!("Release{n}")] = json!({
            "Type": "AWS::ApiGateway::Deployment",
            "DependsOn": "Get",
            "Properties": {"RestApiId": {"Ref": "Api"}, "Description": format!("release {n}")}
        });
        outputs[format!("Release{n}")] = json!({"Value": {"Ref": format!("Release{n}")}});
    }
    let mut props = json!({
        "RestApiId": {"Ref": "Api"},
        "StageName": "prod",
        "DeploymentId": {"Ref": format!("Release{}", stage.live)},
        "Variables": stage.variables,
    });
    if let Some((n, percent)) = stage.canary {
        props["CanarySetting"] = json!({
            "DeploymentId": {"Ref": format!("Release{n}")},
            "PercentTraffic": percent,
        });
    }
    resources["Stage"] = json!({"Type": "AWS::ApiGateway::Stage", "Properties": props});
    json!({"Resources": resources, "Outputs": outputs}).to_string()
}

/// The user's CloudFormation stack and the deployments it created.
struct Stack {
    cfn: aws_sdk_cloudformation::Client,
    name: String,
    api_name: String,
    api_id: String,
    /// Release number → deployment id.
    releases: BTreeMap<u32, String>,
    stage: StageProps,
}

impl Stack {
    /// Creates the stack with release 1 live and `variables`.
    async fn create(variables: BTreeMap<String, String>) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let cfn = aws_sdk_cloudformation::Client::new(&shared);
        let name = unique("tg-cfn");
        let api_name = format!("{name}-api");
        let stage = StageProps {
            live: 1,
            canary: None,
            variables,
        };
        cfn.create_stack()
            .stack_name(&name)
            .template_body(template(&api_name, &[1], &stage))
            .send()
            .await
            .unwrap();
        let mut stack = Self {
            cfn,
            name,
            api_name,
            api_id: String::new(),
            releases: BTreeMap::new(),
            stage,
        };
        let outputs = stack.wait("CREATE_COMPLETE", &[1]).await;
        stack.read_outputs(&outputs);
        stack
    }

    /// Waits until the stack reaches `status` with an output for every
    /// release in `releases`; its outputs. LocalStack can report the new
    /// status a moment before the new outputs (or, just after the request,
    /// still the previous status), so both are waited for; a failed or
    /// rolled-back stack fails at once.
    async fn wait(&self, status: &str, releases: &[u32]) -> Vec<Output> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self
                .cfn
                .describe_stacks()
                .stack_name(&self.name)
                .send()
                .await
                .unwrap();
            let s = &out.stacks()[0];
            let now = s.stack_status().unwrap().as_str();
            assert!(
                !now.contains("FAILED") && !now.contains("ROLLBACK"),
                "stack went to {now}: {s:?}"
            );
            let complete = releases.iter().all(|n| {
                s.outputs()
                    .iter()
                    .any(|o| o.output_key() == Some(format!("Release{n}").as_str()))
            });
            if now == status && complete {
                return s.outputs().to_vec();
            }
            assert!(
                Instant::now() < deadline,
                "stack not {status} with outputs for {releases:?} after 60 s: {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn read_outputs(&mut self, outputs: &[Output]) {
        for o in outputs {
            let (k, v) = (o.output_key().unwrap(), o.output_value().unwrap());
            if k == "ApiId" {
                self.api_id = v.to_owned();
            } else if let Some(n) = k.strip_prefix("Release") {
                self.releases.insert(n.parse().unwrap(), v.to_owned());
            }
        }
    }

    /// A stack update to `stage`, with deployments for `releases`: creates
    /// the new releases' deployments, then brings the stage to the template
    /// as CloudFormation's Stage handler would (see the module doc). Returns
    /// whether LocalStack applied the Stage update itself.
    async fn update(&mut self, f: &RestApi, releases: &[u32], stage: StageProps) -> bool {
        self.cfn
            .update_stack()
            .stack_name(&self.name)
            .template_body(template(&self.api_name, releases, &stage))
            .send()
            .await
            .unwrap();
        let outputs = self.wait("UPDATE_COMPLETE", releases).await;
        self.read_outputs(&outputs);
        let before = std::mem::replace(&mut self.stage, stage);
        let now = f.stage().await;
        let live = &self.releases[&self.stage.live];
        let canary = self
            .stage
            .canary
            .map(|(n, p)| (self.releases[&n].clone(), p));
        let have_canary = now.canary_settings().map(|c| {
            (
                c.deployment_id().unwrap_or_default().to_owned(),
                c.percent_traffic(),
            )
        });
        let have_vars = f.variables().await;
        let applied = now.deployment_id() == Some(live.as_str())
            && have_vars == self.stage.variables
            && (before.canary == self.stage.canary || have_canary == canary);
        if applied {
            return true;
        }
        // Only what changed in the template, as CloudFormation patches.
        let mut ops = Vec::new();
        if before.variables != self.stage.variables {
            ops.extend(variable_ops(&have_vars, &self.stage.variables));
        }
        if before.canary != self.stage.canary {
            match &canary {
                Some((id, p)) => {
                    ops.push(op(Op::Replace, "/canarySettings/deploymentId", Some(id)));
                    let p = p.to_string();
                    ops.push(op(Op::Replace, "/canarySettings/percentTraffic", Some(&p)));
                }
                None => ops.push(op(Op::Remove, "/canarySettings", None)),
            }
        }
        if before.live != self.stage.live {
            ops.push(op(Op::Replace, "/deploymentId", Some(live)));
        }
        if !ops.is_empty() {
            f.patch_stage(ops).await;
        }
        false
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudformation_stack_owns_the_stage() {
    if !enabled() {
        return;
    }
    let started = Instant::now();
    // Release 1: the stack creates the API and its stage.
    let mut stack = Stack::create(vars(&[("backend", "v1")])).await;
    let f = RestApi::adopt(
        &stack.api_id,
        &stack.api_name,
        &stack.releases[&1],
        "tg-cfn",
    )
    .await;
    assert_eq!(f.stage().await.deployment_id(), Some(f.d1.as_str()));
    assert_eq!(f.variables().await, vars(&[("backend", "v1")]));
    let mut svc = f.handler("");
    f.record_known_good(&mut svc).await;

    // Release 2 ships as a canary at 10 %, with its own variables.
    let release2 = StageProps {
        live: 1,
        canary: Some((2, 10.0)),
        variables: vars(&[("backend", "v2")]),
    };
    let cfn_applied = stack.update(&f, &[1, 2], release2.clone()).await;
    let d2 = stack.releases[&2].clone();
    let stage = f.stage().await;
    assert_eq!(
        stage.canary_settings().and_then(|c| c.deployment_id()),
        Some(d2.as_str())
    );
    assert_eq!(f.canary_percent().await, Some(10.0));

    // Healthy: Tidegate steps it.
    f.step_healthy_canary(&mut svc).await;
    let kept = f.record().await;
    assert_eq!(
        kept.record
            .known_good
            .as_ref()
            .map(|m| m.deployment_id.as_str()),
        Some(f.d1.as_str())
    );

    // A stack update in between rewrites the stage's variables.
    let config_change = StageProps {
        variables: vars(&[("backend", "v2"), ("feature", "on")]),
        ..release2
    };
    stack.update(&f, &[1, 2], config_change).await;
    assert_eq!(
        f.variables().await,
        vars(&[("backend", "v2"), ("feature", "on")])
    );
    // Nothing of Tidegate's was in the stage: its record is as it was,
    // Tidegate's step (50 %) too, since the template's canary did not change.
    let after = f.record().await;
    assert_eq!(after.record, kept.record);
    assert_eq!(after.version, kept.version);
    assert_eq!(f.canary_percent().await, Some(50.0));
    f.assert_no_tidegate_variables().await;

    // The next decision still works: the canary alarms, Tidegate removes it.
    f.canary_alarm_removes_canary(&mut svc).await;
    f.assert_on_d1_without_canary().await;
    let last = f.record().await;
    assert_eq!(
        last.record
            .known_good
            .as_ref()
            .map(|m| m.deployment_id.as_str()),
        Some(f.d1.as_str())
    );
    assert_eq!(
        f.variables().await,
        vars(&[("backend", "v2"), ("feature", "on")])
    );
    f.assert_no_tidegate_variables().await;
    eprintln!(
        "cloudformation: stack {} (LocalStack applied the Stage update: {cfn_applied}): \
         known-good, canary stepped 10->50, stack update kept the record (v{:?}), \
         canary alarm removed the canary in one request; history {}; {:?}",
        stack.name,
        after.version,
        f.history().await,
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// Terraform

/// An `aws_api_gateway_stage`'s configuration.
struct TerraformStage {
    deployment_id: String,
    variables: BTreeMap<String, String>,
    canary: Option<(String, f64)>,
}

/// `terraform apply`: the stage becomes exactly the configuration (other
/// variables removed, the deployment and canary settings the configured
/// ones), in one UpdateStage.
async fn terraform_apply(f: &RestApi, config: &TerraformStage) {
    let mut ops = variable_ops(&f.variables().await, &config.variables);
    ops.push(op(
        Op::Replace,
        "/deploymentId",
        Some(&config.deployment_id),
    ));
    match &config.canary {
        Some((id, p)) => {
            ops.push(op(Op::Replace, "/canarySettings/deploymentId", Some(id)));
            let p = p.to_string();
            ops.push(op(Op::Replace, "/canarySettings/percentTraffic", Some(&p)));
        }
        None => {
            if f.stage().await.canary_settings().is_some() {
                ops.push(op(Op::Remove, "/canarySettings", None));
            }
        }
    }
    f.patch_stage(ops).await;
    let stage = f.stage().await;
    assert_eq!(stage.deployment_id(), Some(config.deployment_id.as_str()));
    assert_eq!(f.variables().await, config.variables);
    let canary = stage.canary_settings().map(|c| {
        (
            c.deployment_id().unwrap_or_default().to_owned(),
            c.percent_traffic(),
        )
    });
    assert_eq!(canary, config.canary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_apply_rewrites_the_stage() {
    if !enabled() {
        return;
    }
    let started = Instant::now();
    let f = RestApi::create(None, "tg-tf", None).await;
    let mut svc = f.handler("");
    // Terraform created the stage: d1, its variables.
    let mut config = TerraformStage {
        deployment_id: f.d1.clone(),
        variables: vars(&[("backend", "v1"), ("tier", "gold")]),
        canary: None,
    };
    terraform_apply(&f, &config).await;
    f.record_known_good(&mut svc).await;

    // A canary d2 at 10 % (the configuration's), which Tidegate steps to 50 %;
    // someone adds a variable by hand.
    let d2 = f.deploy_canary(10.0).await;
    config.canary = Some((d2.clone(), 10.0));
    f.step_healthy_canary(&mut svc).await;
    f.patch_stage(vec![op(Op::Replace, "/variables/hotfix", Some("1"))])
        .await;
    let kept = f.record().await;

    // terraform apply: back to the configuration (the canary at 10 %).
    terraform_apply(&f, &config).await;
    let after = f.record().await;
    assert_eq!(after.record, kept.record);
    assert_eq!(
        after
            .record
            .known_good
            .as_ref()
            .map(|m| m.deployment_id.as_str()),
        Some(f.d1.as_str())
    );
    f.assert_no_tidegate_variables().await;

    // The canary the apply restored alarms: Tidegate removes it.
    f.canary_alarm_removes_canary(&mut svc).await;
    f.assert_on_d1_without_canary().await;

    // The configuration moves to d2, without a canary; applied, then the stage
    // alarm: Tidegate rolls back to the recorded known-good d1.
    config.deployment_id = d2.clone();
    config.canary = None;
    terraform_apply(&f, &config).await;
    assert_eq!(
        f.record().await.record.known_good.map(|m| m.deployment_id),
        Some(f.d1.clone())
    );
    f.assert_no_tidegate_variables().await;
    let event = f.alarm_event(&f.stage_alarm, StateValue::Alarm).await;
    let out = invoke(&mut svc, &event).await;
    assert_action(&out, "rollback_stage", "applied");
    f.assert_on_d1_without_canary().await;
    assert_eq!(f.variables().await, config.variables);
    f.assert_no_tidegate_variables().await;
    eprintln!(
        "terraform: two applies rewrote the stage (variables, deploymentId, canary); \
         record intact; canary alarm removed the restored canary; stage alarm rolled \
         d2 back to known-good {}; history {}; {:?}",
        f.d1,
        f.history().await,
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// The CLI

/// The AWS CLI: the project's `.venv/bin/aws`, else `aws` on PATH.
fn aws_cli() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/aws");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("aws")
    }
}

/// `aws apigateway create-deployment` on `prod` with `extra` arguments; the
/// new deployment's id. Panics unless the CLI succeeds.
async fn cli_create_deployment(f: &RestApi, extra: &[&str]) -> String {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let mut cmd = Command::new(aws_cli());
    cmd.args(["--endpoint-url", &endpoint, "--output", "json"])
        .args(["apigateway", "create-deployment", "--rest-api-id"])
        .args([&f.api_id, "--stage-name", "prod"])
        .args(extra);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("run the aws CLI");
    assert!(
        out.status.success(),
        "aws apigateway create-deployment {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_canary_deployment() {
    if !enabled() {
        return;
    }
    let started = Instant::now();
    let f = RestApi::create(None, "tg-cli", None).await;
    let mut svc = f.handler("");
    f.record_known_good(&mut svc).await;

    let canary = cli_create_deployment(&f, &["--canary-settings", "percentTraffic=10"]).await;
    let stage = f.stage().await;
    assert_eq!(stage.deployment_id(), Some(f.d1.as_str()));
    assert_eq!(
        stage.canary_settings().and_then(|c| c.deployment_id()),
        Some(canary.as_str())
    );
    assert_eq!(f.canary_percent().await, Some(10.0));

    f.step_healthy_canary(&mut svc).await;
    f.canary_alarm_removes_canary(&mut svc).await;
    f.assert_on_d1_without_canary().await;
    f.assert_no_tidegate_variables().await;

    // No canary settings left: a plain deployment is accepted and goes live.
    let plain = cli_create_deployment(&f, &[]).await;
    let stage = f.stage().await;
    assert_eq!(stage.deployment_id(), Some(plain.as_str()));
    assert!(stage.canary_settings().is_none(), "{stage:?}");
    eprintln!(
        "cli: create-deployment --canary-settings percentTraffic=10 ({canary}) stepped to 50, \
         removed on a canary alarm in one UpdateStage; plain create-deployment ({plain}) \
         accepted; history {}; {:?}",
        f.history().await,
        started.elapsed()
    );
}
