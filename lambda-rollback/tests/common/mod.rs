//! What the LocalStack test files share: the gate, the event fixtures, a
//! REST API with its stage and alarms, and invoking the handler.
//!
//! Each test file compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_apigateway::types::{DeploymentCanarySettings, IntegrationType, Op, PatchOperation};
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, MetricAlarm, MetricDatum, StandardUnit, StateValue, Statistic,
    StatisticSet,
};
use aws_smithy_types::date_time::Format;
use serde_json::Value;
use tidegate_rollback::service::Budget;
use tidegate_rollback::store::{DynamoStore, HistoryEntry, StageKey, StateStore};
use tidegate_rollback::{config, App, BudgetLayer, Handler};
use tower::{Service, ServiceBuilder, ServiceExt};

pub const EVENT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/tests/fixtures/events/eventbridge-alarm-metric.json"
));
pub const SNS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/tests/fixtures/events/sns-alarm-metric.json"
));
pub const SCHEDULE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/tests/fixtures/events/scheduled-event.json"
));

/// Whether LocalStack tests run (`TIDEGATE_LOCALSTACK_TESTS=1`, set by the
/// `rollback-localstack` stage after starting LocalStack).
pub fn enabled() -> bool {
    if std::env::var("TIDEGATE_LOCALSTACK_TESTS").as_deref() == Ok("1") {
        true
    } else {
        eprintln!("skipped: set TIDEGATE_LOCALSTACK_TESTS=1 with LocalStack running (bash scripts/test.sh rollback-localstack)");
        false
    }
}

/// A name no earlier run used (LocalStack has no reset).
pub fn unique(prefix: &str) -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{n:x}")
}

/// A REST API with a MOCK `GET /`, deployment `d1` on stage `prod`,
/// optionally a canary deployment, a stage alarm and a canary alarm (OK).
pub struct RestApi {
    pub apigw: aws_sdk_apigateway::Client,
    pub cw: aws_sdk_cloudwatch::Client,
    pub api_id: String,
    pub api_name: String,
    pub d1: String,
    pub canary: Option<String>,
    pub stage_alarm: String,
    pub canary_alarm: String,
    /// Tidegate's state table for this API (DynamoDB Local, through
    /// `AWS_ENDPOINT_URL_DYNAMODB`).
    pub store: DynamoStore,
}

/// A fresh state table in DynamoDB Local (`AWS_ENDPOINT_URL_DYNAMODB`).
pub async fn state_table(prefix: &str) -> DynamoStore {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&shared),
        unique(&format!("{prefix}-state")),
    );
    create_state_table(&store).await;
    store
}

/// Creates `store`'s table as `infra/template.yaml` does (on-demand,
/// `pk`/`sk`, TTL on `expires_at`).
pub async fn create_state_table(store: &DynamoStore) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        TimeToLiveSpecification,
    };
    use tidegate_rollback::store::{PK, SK, TTL};
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let client = store.client();
    client
        .create_table()
        .table_name(store.table())
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(PK))
        .attribute_definitions(attr(SK))
        .key_schema(key(PK, KeyType::Hash))
        .key_schema(key(SK, KeyType::Range))
        .send()
        .await
        .unwrap();
    client
        .update_time_to_live()
        .table_name(store.table())
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL)
                .enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

impl RestApi {
    /// Creates it through `endpoint` (default: `AWS_ENDPOINT_URL`), named
    /// after `prefix`, with a canary at `canary_percent` if given.
    pub async fn create(endpoint: Option<&str>, prefix: &str, canary_percent: Option<f64>) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(url) = endpoint {
            loader = loader.endpoint_url(url);
        }
        let shared = loader.load().await;
        let apigw = aws_sdk_apigateway::Client::new(&shared);
        let cw = aws_sdk_cloudwatch::Client::new(&shared);
        let api_name = unique(prefix);
        let api = apigw
            .create_rest_api()
            .name(&api_name)
            .send()
            .await
            .unwrap();
        let api_id = api.id().unwrap().to_owned();
        let root = apigw
            .get_resources()
            .rest_api_id(&api_id)
            .send()
            .await
            .unwrap()
            .items()
            .iter()
            .find(|r| r.path() == Some("/"))
            .and_then(|r| r.id().map(str::to_owned))
            .unwrap();
        apigw
            .put_method()
            .rest_api_id(&api_id)
            .resource_id(&root)
            .http_method("GET")
            .authorization_type("NONE")
            .send()
            .await
            .unwrap();
        apigw
            .put_integration()
            .rest_api_id(&api_id)
            .resource_id(&root)
            .http_method("GET")
            .r#type(IntegrationType::Mock)
            .request_templates("application/json", r#"{"statusCode": 200}"#)
            .send()
            .await
            .unwrap();
        let d1 = create_deployment(&apigw, &api_id, Some("prod"), None).await;
        let canary = match canary_percent {
            Some(p) => Some(create_deployment(&apigw, &api_id, Some("prod"), Some(p)).await),
            None => None,
        };
        let stage_alarm = format!("{api_name}-stage-5xx");
        let canary_alarm = format!("{api_name}-canary-5xx");
        // Period 10 s (CloudWatch's shortest), one evaluation period: within
        // the tests' 10 s bake time (a longer alarm makes Tidegate refuse to
        // bake, by design).
        for name in [&stage_alarm, &canary_alarm] {
            put_alarm(&cw, name, &format!("{name}-errors"), AlarmStat::P99, 10).await;
        }
        let store = state_table(prefix).await;
        let api = Self {
            apigw,
            cw,
            api_id,
            api_name,
            d1,
            canary,
            stage_alarm,
            canary_alarm,
            store,
        };
        api.set_alarm(&api.stage_alarm, StateValue::Ok).await;
        api.set_alarm(&api.canary_alarm, StateValue::Ok).await;
        api
    }

    /// The `[[rollback.stages]]` entry managing this stage; `extra` goes in it.
    pub fn config(&self, extra: &str) -> String {
        format!(
            r#"
[[rollback.stages]]
rest_api_id = "{}"
stage = "prod"
stage_alarms = ["{}"]
canary_alarms = ["{}"]
canary_steps = [10, 50, 100]
bake_time = "10s"
cooldown = "0s"
min_requests = 1
metric_api_name = "{}"
{extra}
"#,
            self.api_id, self.stage_alarm, self.canary_alarm, self.api_name
        )
    }

    /// The Lambda's state for this stage; `rollback` goes in the
    /// `[rollback]` table, `extra` in the stage's.
    pub fn app(&self, rollback: &str, extra: &str) -> Arc<App> {
        let text = format!("[rollback]\n{rollback}\n{}", self.config(extra));
        let table = self.store.table().to_owned();
        let settings = config::load(
            |k| match k {
                config::CONFIG_ENV => Some(text.clone()),
                config::STATE_TABLE_ENV => Some(table.clone()),
                _ => None,
            },
            |_| Err("no files".into()),
        )
        .unwrap();
        App::new(settings)
    }

    /// The Lambda's state for this stage with `API_KEYS` set to `keys` (a
    /// JSON list of key records), for driving the control API.
    pub fn app_with_keys(&self, keys: &str) -> Arc<App> {
        let text = self.config("");
        let table = self.store.table().to_owned();
        let settings = config::load(
            |k| match k {
                config::CONFIG_ENV => Some(text.clone()),
                config::STATE_TABLE_ENV => Some(table.clone()),
                config::API_KEYS_ENV => Some(keys.to_owned()),
                _ => None,
            },
            |_| Err("no files".into()),
        )
        .unwrap();
        App::new(settings)
    }

    /// A new deployment of the API, on no stage; its id.
    pub async fn new_deployment(&self) -> String {
        create_deployment(&self.apigw, &self.api_id, None, None).await
    }

    /// The handler as the runtime drives it, managing this stage.
    pub fn handler(&self, extra: &str) -> Lambda {
        lambda(self.app("", extra))
    }

    /// Sets an alarm's state; returns the transition's timestamp as
    /// CloudWatch reports it.
    pub async fn set_alarm(&self, name: &str, state: StateValue) -> String {
        self.cw
            .set_alarm_state()
            .alarm_name(name)
            .state_value(state)
            .state_reason("test")
            .send()
            .await
            .unwrap();
        let out = self
            .cw
            .describe_alarms()
            .alarm_names(name)
            .send()
            .await
            .unwrap();
        transitioned_at(&out.metric_alarms()[0])
    }

    /// Sets an alarm's state; returns the EventBridge event of that change.
    pub async fn alarm_event(&self, name: &str, state: StateValue) -> String {
        let at = self.set_alarm(name, state.clone()).await;
        self.eventbridge(name, state.as_str(), &at)
    }

    /// The EventBridge event of a transition of `alarm` to `state` at `at`.
    pub fn eventbridge(&self, alarm: &str, state: &str, at: &str) -> String {
        let mut ev: Value = serde_json::from_str(EVENT).unwrap();
        ev["detail"]["alarmName"] = alarm.into();
        ev["resources"][0] =
            format!("arn:aws:cloudwatch:us-east-1:000000000000:alarm:{alarm}").into();
        ev["detail"]["state"]["value"] = state.into();
        ev["detail"]["state"]["timestamp"] = at.into();
        ev.to_string()
    }

    /// The same transition as an SNS notification.
    pub fn sns(&self, alarm: &str, state: &str, at: &str) -> String {
        let mut ev: Value = serde_json::from_str(SNS).unwrap();
        let mut msg: Value =
            serde_json::from_str(ev["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
        msg["AlarmName"] = alarm.into();
        msg["NewStateValue"] = state.into();
        msg["StateChangeTime"] = at.into();
        ev["Records"][0]["Sns"]["Message"] = msg.to_string().into();
        ev.to_string()
    }

    pub async fn stage(&self) -> aws_sdk_apigateway::operation::get_stage::GetStageOutput {
        self.apigw
            .get_stage()
            .rest_api_id(&self.api_id)
            .stage_name("prod")
            .send()
            .await
            .unwrap()
    }

    /// The canary's share of traffic, `None` without a canary.
    pub async fn canary_percent(&self) -> Option<f64> {
        self.stage()
            .await
            .canary_settings()
            .map(|c| c.percent_traffic())
    }

    /// The stage's key in the state table.
    pub fn key(&self) -> StageKey {
        StageKey::new(&self.api_id, "prod")
    }

    /// The stage's history in the state table, newest first.
    pub async fn history_entries(&self) -> Vec<HistoryEntry> {
        self.store.history(&self.key(), 100).await.unwrap()
    }

    /// The history as `what:outcome` lines, newest first (empty if none).
    pub async fn history(&self) -> String {
        self.history_entries()
            .await
            .iter()
            .map(|e| {
                let outcome = serde_json::to_value(&e.outcome).unwrap();
                format!("{}:{}", e.what, outcome["status"].as_str().unwrap_or("?"))
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Asserts `action` was applied exactly once, by the history.
    pub async fn assert_recorded_once(&self, action: &str) {
        let history = self.history().await;
        assert_eq!(
            history.matches(&format!("{action}:applied")).count(),
            1,
            "{history}"
        );
    }

    /// Asserts Tidegate left no variable of its own on the stage.
    pub async fn assert_no_tidegate_variables(&self) {
        let stage = self.stage().await;
        let ours: Vec<&String> = stage
            .variables()
            .map(|v| v.keys().filter(|k| k.starts_with("tidegate_")).collect())
            .unwrap_or_default();
        assert!(ours.is_empty(), "Tidegate wrote stage variables: {ours:?}");
    }

    /// Asserts the stage serves d1 and has no canary: rolled back.
    pub async fn assert_on_d1_without_canary(&self) {
        let after = self.stage().await;
        assert!(after.canary_settings().is_none(), "{after:?}");
        assert_eq!(after.deployment_id(), Some(self.d1.as_str()), "{after:?}");
    }

    /// Stores a record saying Tidegate has watched the stage's deployment
    /// and its current canary (if any) healthy for `secs` seconds: the bake
    /// time a test would otherwise sleep through (the canary's metric window
    /// starts no earlier than that).
    pub async fn seen_healthy_for(&self, secs: u64) {
        use tidegate_policy::rollout::{Mark, StageRecord, StepMark};
        let now = tidegate_rollback::retry::now_ms();
        let since = now - secs * 1000;
        let stage = self.stage().await;
        let current = self.store.load(&self.key()).await.unwrap();
        let record = StageRecord {
            live: Some(Mark::new(stage.deployment_id().unwrap(), since)),
            step: stage.canary_settings().map(|c| StepMark {
                deployment_id: c.deployment_id().unwrap_or_default().to_owned(),
                percent: c.percent_traffic(),
                since_ms: since,
                canary_since_ms: since,
            }),
            ..current.record
        };
        self.store
            .save(&self.key(), &record, current.version, now)
            .await
            .unwrap();
    }

    /// Pushes `count` requests and `errors` 5XX of the canary
    /// (`AWS/ApiGateway`, `Stage = prod/Canary`) as API Gateway does: one
    /// statistic set per metric, one sample per request (`Count`'s
    /// `SampleCount` is the request count, `5XXError`'s `Sum` the errors).
    pub async fn canary_traffic(&self, count: f64, errors: f64) {
        let dims = [
            Dimension::builder()
                .name("ApiName")
                .value(&self.api_name)
                .build(),
            Dimension::builder()
                .name("Stage")
                .value("prod/Canary")
                .build(),
        ];
        let datum = |name: &str, sum: f64, max: f64| {
            MetricDatum::builder()
                .metric_name(name)
                .statistic_values(
                    StatisticSet::builder()
                        .sample_count(count)
                        .sum(sum)
                        .minimum(0.0)
                        .maximum(max)
                        .build(),
                )
                .unit(StandardUnit::Count)
                .set_dimensions(Some(dims.to_vec()))
                .timestamp(aws_smithy_types::DateTime::from(SystemTime::now()))
                .build()
        };
        self.cw
            .put_metric_data()
            .namespace("AWS/ApiGateway")
            .metric_data(datum("Count", count, 1.0))
            .metric_data(datum(
                "5XXError",
                errors,
                if errors > 0.0 { 1.0 } else { 0.0 },
            ))
            .send()
            .await
            .unwrap();
    }

    /// A new deployment with a canary at `percent`, created on the stage.
    pub async fn deploy_canary(&self, percent: f64) -> String {
        create_deployment(&self.apigw, &self.api_id, Some("prod"), Some(percent)).await
    }

    /// Records d1 as known-good (healthy for a bake time, then a schedule
    /// tick), then puts a new deployment live: the state a stage rollback
    /// needs.
    /// The deployment is created without `stage_name` and moved with
    /// UpdateStage, as a pipeline that manages the stage itself does.
    pub async fn new_deployment_after_known_good(&self, svc: &mut Lambda) -> String {
        self.seen_healthy_for(11).await;
        let tick = invoke(svc, SCHEDULE).await;
        assert_eq!(action_type(&tick), "record_known_good", "{tick}");
        let d2 = create_deployment(&self.apigw, &self.api_id, None, None).await;
        self.apigw
            .update_stage()
            .rest_api_id(&self.api_id)
            .stage_name("prod")
            .patch_operations(
                PatchOperation::builder()
                    .op(Op::Replace)
                    .path("/deploymentId")
                    .value(&d2)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        d2
    }
}

/// A deployment of `api_id`, on `stage` if given, with a canary at
/// `canary_percent` if given; its id.
async fn create_deployment(
    apigw: &aws_sdk_apigateway::Client,
    api_id: &str,
    stage: Option<&str>,
    canary_percent: Option<f64>,
) -> String {
    apigw
        .create_deployment()
        .rest_api_id(api_id)
        .set_stage_name(stage.map(str::to_owned))
        .set_canary_settings(canary_percent.map(|p| {
            DeploymentCanarySettings::builder()
                .percent_traffic(p)
                .build()
        }))
        .send()
        .await
        .unwrap()
        .id()
        .unwrap()
        .to_owned()
}

/// How a test alarm summarises its metric.
pub enum AlarmStat {
    /// An extended statistic: LocalStack evaluates only simple alarms (at
    /// creation and every period), which would overwrite the states the
    /// tests set; this one it leaves alone.
    P99,
    /// A simple one, which LocalStack evaluates on the metric's data.
    Sum,
}

/// Alarm `name` on `TidegateTest/<metric>` above 1 over one `period`
/// (seconds).
pub async fn put_alarm(
    cw: &aws_sdk_cloudwatch::Client,
    name: &str,
    metric: &str,
    stat: AlarmStat,
    period: i32,
) {
    let (statistic, extended) = match stat {
        AlarmStat::P99 => (None, Some("p99".to_owned())),
        AlarmStat::Sum => (Some(Statistic::Sum), None),
    };
    cw.put_metric_alarm()
        .alarm_name(name)
        .namespace("TidegateTest")
        .metric_name(metric)
        .set_statistic(statistic)
        .set_extended_statistic(extended)
        .period(period)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();
}

/// When the alarm last changed state, as CloudWatch reports it.
pub fn transitioned_at(a: &MetricAlarm) -> String {
    a.state_transitioned_timestamp()
        .or(a.state_updated_timestamp())
        .unwrap()
        .fmt(Format::DateTime)
        .unwrap()
}

/// The handler as the runtime drives it: bounded by the invocation's budget.
pub type Lambda = Budget<Handler>;

/// The handler over `app`, as the runtime drives it.
pub fn lambda(app: Arc<App>) -> Lambda {
    ServiceBuilder::new()
        .layer(BudgetLayer)
        .service(Handler::new(app))
}

/// Sends `event` (JSON, any trigger) through the handler; its JSON answer.
pub async fn invoke(svc: &mut Lambda, event: &str) -> Value {
    invoke_request(svc, lambda_http::request::from_str(event).unwrap()).await
}

pub async fn invoke_request(svc: &mut Lambda, req: lambda_http::Request) -> Value {
    let resp = svc.ready().await.unwrap().call(req).await.unwrap();
    serde_json::from_slice(resp.body().as_ref()).unwrap()
}

/// The first stage's action (`none:<reason>` for no action).
pub fn action_type(out: &Value) -> String {
    let a = &out["stages"][0]["decision"]["action"];
    match a["type"].as_str() {
        Some("none") => format!("none:{}", a["reason"]["kind"].as_str().unwrap_or("?")),
        Some(t) => t.to_owned(),
        None => format!("no decision: {out}"),
    }
}

/// The first stage's outcome (`applied`, `failed`, `dry_run`, ...).
pub fn outcome(out: &Value) -> String {
    out["stages"][0]["outcome"]["status"]
        .as_str()
        .unwrap_or("?")
        .to_owned()
}

/// The first stage's error (empty if none).
pub fn error(out: &Value) -> &str {
    out["stages"][0]["outcome"]["error"].as_str().unwrap_or("")
}

/// `UpdateStage` calls the decision's plan has (one per step).
pub fn plan_steps(out: &Value) -> usize {
    out["stages"][0]["decision"]["plan"]
        .as_array()
        .map_or(0, Vec::len)
}

/// Asserts the first stage decided `action` and its outcome is `status`.
pub fn assert_action(out: &Value, action: &str, status: &str) {
    assert_eq!(action_type(out), action, "{out}");
    assert_eq!(outcome(out), status, "{out}");
}

/// Asserts the first stage's action failed with an error naming each of
/// `names`; the error.
pub fn failed_naming<'a>(out: &'a Value, names: &[&str]) -> &'a str {
    assert_eq!(outcome(out), "failed", "{out}");
    let error = error(out);
    for name in names {
        assert!(error.contains(name), "no {name} in the error: {out}");
    }
    error
}
