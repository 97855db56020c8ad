//! Against a real LocalStack: REST API with a MOCK method, deployments, a
//! stage with a canary, alarms driven with SetAlarmState; the handler runs
//! in-process (through the same `tower` service the runtime uses) with the
//! SDK pointed at LocalStack by `AWS_ENDPOINT_URL`.
//!
//! Runs only when `TIDEGATE_LOCALSTACK_TESTS=1` (the `rollback-localstack`
//! stage of scripts/test.sh sets it after starting LocalStack); plain
//! `cargo test` skips it. LocalStack has no reset: every test uses unique
//! names.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_apigateway::types::{DeploymentCanarySettings, Op, PatchOperation};
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, DimensionFilter, MetricDatum, StandardUnit, StateValue,
};
use aws_smithy_types::date_time::Format;
use serde_json::Value;
use tidegate_policy::rollout::ManualCommand;
use tidegate_rollback::http::Control;
use tidegate_rollback::{BudgetLayer, Handler};
use tower::ServiceBuilder;

mod common;
use common::{action_type, enabled, invoke, unique, RestApi, SCHEDULE, SNS};

type Fixture = RestApi;

impl RestApi {
    /// A REST API (`tg-rb-…`) through `AWS_ENDPOINT_URL`, with a canary at
    /// `canary_percent` if given.
    async fn new(canary_percent: Option<f64>) -> Self {
        Self::create(None, "tg-rb", canary_percent).await
    }

    /// Sets an alarm's state; returns the event a state change would send.
    async fn alarm_event(&self, name: &str, state: StateValue) -> String {
        let at = self.set_alarm(name, state.clone()).await;
        self.eventbridge(name, state.as_str(), &at)
    }

    /// Whether `Tidegate/<metric>` has a datapoint for this API's `prod`.
    async fn action_counted(&self, metric: &str) -> bool {
        let out = self
            .cw
            .list_metrics()
            .namespace("Tidegate")
            .metric_name(metric)
            .dimensions(
                DimensionFilter::builder()
                    .name("ApiId")
                    .value(&self.api_id)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.metrics().iter().any(|m| {
            m.dimensions()
                .iter()
                .any(|d| d.name() == Some("Stage") && d.value() == Some("prod"))
        })
    }

    async fn canary_traffic(&self, count: f64, errors: f64) {
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
        let datum = |name: &str, v: f64| {
            MetricDatum::builder()
                .metric_name(name)
                .value(v)
                .unit(StandardUnit::Count)
                .set_dimensions(Some(dims.to_vec()))
                .timestamp(aws_smithy_types::DateTime::from(SystemTime::now()))
                .build()
        };
        self.cw
            .put_metric_data()
            .namespace("AWS/ApiGateway")
            .metric_data(datum("Count", count))
            .metric_data(datum("5XXError", errors))
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_alarm_removes_the_canary_once() {
    if !enabled() {
        return;
    }
    let f = Fixture::new(Some(10.0)).await;
    let before = f.stage().await;
    assert_eq!(
        before.canary_settings().and_then(|c| c.deployment_id()),
        f.canary.as_deref()
    );
    let mut svc = f.handler("");
    let event = f.alarm_event(&f.canary_alarm, StateValue::Alarm).await;

    let started = Instant::now();
    let out = invoke(&mut svc, &event).await;
    let took = started.elapsed();
    eprintln!("alarm event -> canary removed in {took:?}");
    assert_eq!(action_type(&out), "remove_canary", "{out}");
    assert_eq!(out["stages"][0]["outcome"]["status"], "applied", "{out}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let after = f.stage().await;
    assert!(after.canary_settings().is_none(), "{after:?}");
    assert_eq!(after.deployment_id(), Some(f.d1.as_str()));

    // Redelivered: nothing more happens.
    let again = invoke(&mut svc, &event).await;
    assert_eq!(action_type(&again), "none:duplicate", "{again}");
    let vars: HashMap<String, String> = f.stage().await.variables().cloned().unwrap_or_default();
    let history = vars.get("tidegate_history").cloned().unwrap_or_default();
    assert_eq!(history.matches("remove_canary").count(), 1, "{history}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_changes_nothing() {
    if !enabled() {
        return;
    }
    let f = Fixture::new(Some(10.0)).await;
    let mut svc = f.handler("dry_run = true");
    let event = f.alarm_event(&f.canary_alarm, StateValue::Alarm).await;
    let out = invoke(&mut svc, &event).await;
    assert_eq!(action_type(&out), "remove_canary", "{out}");
    assert_eq!(out["stages"][0]["outcome"]["status"], "dry_run", "{out}");
    let after = f.stage().await;
    let c = after.canary_settings().expect("canary still there");
    assert_eq!(c.percent_traffic(), 10.0);
    assert!(after
        .variables()
        .is_none_or(|v| !v.keys().any(|k| k.starts_with("tidegate_"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_alarm_rolls_back_to_known_good() {
    if !enabled() {
        return;
    }
    let f = Fixture::new(None).await;
    let mut svc = f.handler("");
    // Two ticks a bake time apart record d1 as known-good.
    let first = invoke(&mut svc, SCHEDULE).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let second = invoke(&mut svc, SCHEDULE).await;
    assert_eq!(
        action_type(&second),
        "record_known_good",
        "{first}\n{second}"
    );

    // A new deployment goes live on the stage, then the stage alarm fires.
    // (Created without `stage_name` and moved with UpdateStage: LocalStack's
    // CreateDeployment on an existing stage drops its variables, and with
    // them Tidegate's bookkeeping.)
    let d2 = f
        .apigw
        .create_deployment()
        .rest_api_id(&f.api_id)
        .send()
        .await
        .unwrap()
        .id()
        .unwrap()
        .to_owned();
    f.apigw
        .update_stage()
        .rest_api_id(&f.api_id)
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
    assert_eq!(f.stage().await.deployment_id(), Some(d2.as_str()));
    let event = f.alarm_event(&f.stage_alarm, StateValue::Alarm).await;
    let out = invoke(&mut svc, &event).await;
    assert_eq!(action_type(&out), "rollback_stage", "{out}");
    assert_eq!(f.stage().await.deployment_id(), Some(f.d1.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_steps_a_healthy_canary() {
    if !enabled() {
        return;
    }
    let f = Fixture::new(Some(10.0)).await;
    f.canary_traffic(200.0, 0.0).await;
    let mut svc = f.handler("");
    let first = invoke(&mut svc, SCHEDULE).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let second = invoke(&mut svc, SCHEDULE).await;
    assert_eq!(
        action_type(&second),
        "set_canary_percent",
        "{first}\n{second}"
    );
    let c = f.stage().await;
    assert_eq!(c.canary_settings().map(|c| c.percent_traffic()), Some(50.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_stage_is_reported_not_patched() {
    if !enabled() {
        return;
    }
    let f = Fixture::new(Some(10.0)).await;
    let mut svc = f.handler("");
    let event = f.alarm_event(&f.canary_alarm, StateValue::Alarm).await;
    f.apigw
        .delete_stage()
        .rest_api_id(&f.api_id)
        .stage_name("prod")
        .send()
        .await
        .unwrap();
    let out = invoke(&mut svc, &event).await;
    assert_eq!(out["stages"][0]["outcome"]["status"], "failed", "{out}");
    assert_eq!(out["stages"][0]["outcome"]["error"], "stage not found");
}

/// A real simple alarm, evaluated by LocalStack on metric data (period 10 s),
/// delivered wrapped in SNS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_alarm_via_sns_removes_the_canary() {
    if !enabled() {
        return;
    }
    let mut f = Fixture::new(Some(10.0)).await;
    let real = format!("{}-real", f.api_name);
    let metric = format!("{real}-errors");
    f.cw.put_metric_alarm()
        .alarm_name(&real)
        .namespace("TidegateTest")
        .metric_name(&metric)
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(10)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();
    f.canary_alarm = real.clone();
    let mut svc = f.handler("");
    let deadline = Instant::now() + Duration::from_secs(45);
    let alarm = loop {
        f.cw.put_metric_data()
            .namespace("TidegateTest")
            .metric_data(
                MetricDatum::builder()
                    .metric_name(&metric)
                    .value(5.0)
                    .unit(StandardUnit::Count)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let out =
            f.cw.describe_alarms()
                .alarm_names(&real)
                .send()
                .await
                .unwrap();
        let a = out.metric_alarms()[0].clone();
        if a.state_value() == Some(&StateValue::Alarm) {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "LocalStack never evaluated {real}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let at = alarm
        .state_transitioned_timestamp()
        .or(alarm.state_updated_timestamp())
        .unwrap()
        .fmt(Format::DateTime)
        .unwrap();
    let mut ev: Value = serde_json::from_str(SNS).unwrap();
    let mut msg: Value =
        serde_json::from_str(ev["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    msg["AlarmName"] = real.clone().into();
    msg["NewStateValue"] = "ALARM".into();
    msg["StateChangeTime"] = at.into();
    ev["Records"][0]["Sns"]["Message"] = msg.to_string().into();
    let out = invoke(&mut svc, &ev.to_string()).await;
    assert_eq!(action_type(&out), "remove_canary", "{out}");
    assert!(f.stage().await.canary_settings().is_none());
}

/// Two invocations racing on one alarm event: the stage ends in the same
/// state as with one, and the action is recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_invocations_act_once() {
    if !enabled() {
        return;
    }
    let f = Fixture::new(Some(10.0)).await;
    let svc = f.handler("");
    let event = f.alarm_event(&f.canary_alarm, StateValue::Alarm).await;
    let (mut a, mut b) = (svc.clone(), svc);
    let (ra, rb) = tokio::join!(invoke(&mut a, &event), invoke(&mut b, &event));
    let kinds = [action_type(&ra), action_type(&rb)];
    assert!(kinds.contains(&"remove_canary".to_owned()), "{ra}\n{rb}");
    let after = f.stage().await;
    assert!(after.canary_settings().is_none(), "{after:?}");
    assert_eq!(after.deployment_id(), Some(f.d1.as_str()));
    let history = after
        .variables()
        .and_then(|v| v.get("tidegate_history").cloned())
        .unwrap_or_default();
    assert_eq!(history.matches("remove_canary").count(), 1, "{history}");
}

/// An SNS topic with an SQS queue subscribed: what the topic receives.
struct Topic {
    sqs: aws_sdk_sqs::Client,
    arn: String,
    queue_url: String,
}

impl Topic {
    async fn new(name: &str) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let sns = aws_sdk_sns::Client::new(&shared);
        let sqs = aws_sdk_sqs::Client::new(&shared);
        let arn = sns
            .create_topic()
            .name(name)
            .send()
            .await
            .unwrap()
            .topic_arn()
            .unwrap()
            .to_owned();
        let queue_url = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .unwrap();
        sns.subscribe()
            .topic_arn(&arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .unwrap();
        Self {
            sqs,
            arn,
            queue_url,
        }
    }

    /// The next SNS envelope (`Subject`, `Message`, ...) on the queue.
    async fn next(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .wait_time_seconds(2)
                .send()
                .await
                .unwrap();
            if let Some(m) = out.messages().first() {
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
                return serde_json::from_str(m.body().unwrap()).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "no SNS message reached the queue"
            );
        }
    }
}

/// A rollback and a promotion each publish to the configured SNS topic and
/// count in `Tidegate/Rollbacks` / `Tidegate/Promotions`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_notify_sns_and_count_metrics() {
    if !enabled() {
        return;
    }
    let f = Fixture::new(Some(10.0)).await;
    let topic = Topic::new(&unique("tg-rb-topic")).await;
    let app = f.app(&format!("notification_topic_arn = \"{}\"", topic.arn), "");
    let mut svc = ServiceBuilder::new()
        .layer(BudgetLayer)
        .service(Handler::new(app.clone()));

    // Rollback: the canary alarm fires.
    let event = f.alarm_event(&f.canary_alarm, StateValue::Alarm).await;
    let out = invoke(&mut svc, &event).await;
    assert_eq!(action_type(&out), "remove_canary", "{out}");
    let note = topic.next().await;
    let subject = note["Subject"].as_str().unwrap_or_default();
    assert_eq!(
        subject,
        format!("Tidegate remove_canary: {}/prod", f.api_name),
        "{note}"
    );
    let body: Value = serde_json::from_str(note["Message"].as_str().unwrap()).unwrap();
    assert_eq!(body["type"], "tidegate.action", "{body}");
    assert_eq!(body["action"], "remove_canary", "{body}");
    assert_eq!(body["rest_api_id"], f.api_id.as_str(), "{body}");
    assert_eq!(body["stage"], "prod", "{body}");
    assert_eq!(body["outcome"]["status"], "applied", "{body}");
    assert_eq!(body["trigger"]["type"], "alarm_transition", "{body}");
    assert!(
        f.action_counted("Rollbacks").await,
        "no Tidegate/Rollbacks datapoint"
    );
    assert!(!f.action_counted("Promotions").await);

    // Promotion: a new healthy canary, promoted by an operator.
    f.set_alarm(&f.canary_alarm, StateValue::Ok).await;
    let d3 = f
        .apigw
        .create_deployment()
        .rest_api_id(&f.api_id)
        .stage_name("prod")
        .canary_settings(
            DeploymentCanarySettings::builder()
                .percent_traffic(10.0)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .id()
        .unwrap()
        .to_owned();
    f.canary_traffic(200.0, 0.0).await;
    let report = app
        .command(0, ManualCommand::Promote, "ship it".into())
        .await;
    assert_eq!(
        report["decision"]["action"]["type"], "promote_canary",
        "{report}"
    );
    assert_eq!(f.stage().await.deployment_id(), Some(d3.as_str()));
    let note = topic.next().await;
    let body: Value = serde_json::from_str(note["Message"].as_str().unwrap()).unwrap();
    assert_eq!(body["action"], "promote_canary", "{note}");
    assert_eq!(body["trigger"]["type"], "manual", "{body}");
    assert!(
        f.action_counted("Promotions").await,
        "no Tidegate/Promotions datapoint"
    );
}

/// A topic that does not exist: the action still happens (and is counted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_notification_does_not_block_the_action() {
    if !enabled() {
        return;
    }
    let f = Fixture::new(Some(10.0)).await;
    let missing = format!(
        "arn:aws:sns:us-east-1:000000000000:{}",
        unique("tg-rb-missing")
    );
    let app = f.app(&format!("notification_topic_arn = \"{missing}\""), "");
    let mut svc = ServiceBuilder::new()
        .layer(BudgetLayer)
        .service(Handler::new(app));
    let event = f.alarm_event(&f.canary_alarm, StateValue::Alarm).await;
    let out = invoke(&mut svc, &event).await;
    assert_eq!(action_type(&out), "remove_canary", "{out}");
    assert_eq!(out["stages"][0]["outcome"]["status"], "applied", "{out}");
    assert!(f.stage().await.canary_settings().is_none());
    assert!(f.action_counted("Rollbacks").await);
}
