//! What the LocalStack test files share: the gate, the event fixtures, a
//! REST API with its stage and alarms, and invoking the handler.
//!
//! Each test file compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_apigateway::types::{DeploymentCanarySettings, IntegrationType};
use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue};
use aws_smithy_types::date_time::Format;
use serde_json::Value;
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
        let deploy = |canary: Option<f64>| {
            let call = apigw
                .create_deployment()
                .rest_api_id(&api_id)
                .stage_name("prod")
                .set_canary_settings(canary.map(|p| {
                    DeploymentCanarySettings::builder()
                        .percent_traffic(p)
                        .build()
                }));
            async move { call.send().await.unwrap().id().unwrap().to_owned() }
        };
        let d1 = deploy(None).await;
        let canary = match canary_percent {
            Some(p) => Some(deploy(Some(p)).await),
            None => None,
        };
        let stage_alarm = format!("{api_name}-stage-5xx");
        let canary_alarm = format!("{api_name}-canary-5xx");
        for name in [&stage_alarm, &canary_alarm] {
            // An extended statistic: LocalStack evaluates only simple
            // alarms (at creation and every period), which would overwrite
            // the states the tests set; this one it leaves alone.
            cw.put_metric_alarm()
                .alarm_name(name)
                .namespace("TidegateTest")
                .metric_name(format!("{name}-errors"))
                .extended_statistic("p99")
                .period(60)
                .evaluation_periods(1)
                .threshold(1.0)
                .comparison_operator(ComparisonOperator::GreaterThanThreshold)
                .send()
                .await
                .unwrap();
        }
        let api = Self {
            apigw,
            cw,
            api_id,
            api_name,
            d1,
            canary,
            stage_alarm,
            canary_alarm,
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
bake_time = "1s"
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
        let settings = config::load(
            |k| (k == config::CONFIG_ENV).then(|| text.clone()),
            |_| Err("no files".into()),
        )
        .unwrap();
        App::new(settings)
    }

    /// The handler as the runtime drives it, managing this stage.
    pub fn handler(
        &self,
        extra: &str,
    ) -> impl Service<
        lambda_http::Request,
        Response = lambda_http::Response<lambda_http::Body>,
        Error = std::convert::Infallible,
    > + Clone {
        ServiceBuilder::new()
            .layer(BudgetLayer)
            .service(Handler::new(self.app("", extra)))
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
        let a = &out.metric_alarms()[0];
        a.state_transitioned_timestamp()
            .or(a.state_updated_timestamp())
            .unwrap()
            .fmt(Format::DateTime)
            .unwrap()
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

    pub async fn stage(&self) -> aws_sdk_apigateway::operation::get_stage::GetStageOutput {
        self.apigw
            .get_stage()
            .rest_api_id(&self.api_id)
            .stage_name("prod")
            .send()
            .await
            .unwrap()
    }
}

/// Sends `event` (JSON, any trigger) through the handler; its JSON answer.
pub async fn invoke<S>(svc: &mut S, event: &str) -> Value
where
    S: Service<
        lambda_http::Request,
        Response = lambda_http::Response<lambda_http::Body>,
        Error = std::convert::Infallible,
    >,
{
    invoke_request(svc, lambda_http::request::from_str(event).unwrap()).await
}

pub async fn invoke_request<S>(svc: &mut S, req: lambda_http::Request) -> Value
where
    S: Service<
        lambda_http::Request,
        Response = lambda_http::Response<lambda_http::Body>,
        Error = std::convert::Infallible,
    >,
{
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
