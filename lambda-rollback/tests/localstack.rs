//! Against a real LocalStack: REST API with a MOCK method, deployments, a
//! stage with a canary, alarms driven with SetAlarmState; the handler runs
//! in-process (through the same `tower` service the runtime uses) with the
//! SDK pointed at LocalStack by `AWS_ENDPOINT_URL`.
//!
//! Runs only when `TIDEGATE_LOCALSTACK_TESTS=1` (the `rollback-localstack`
//! stage of scripts/test.sh sets it after starting LocalStack); plain
//! `cargo test` skips it. LocalStack has no reset: every test uses unique
//! names.

use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::types::{DimensionFilter, MetricDatum, StandardUnit, StateValue};
use serde_json::Value;
use tidegate_policy::rollout::{Action, ManualCommand, Trigger};
use tidegate_rollback::http::Control;
use tidegate_rollback::store::StateStore;

mod common;
use common::{
    action_type, assert_action, enabled, error, invoke, lambda, outcome, put_alarm,
    transitioned_at, unique, AlarmStat, RestApi, SCHEDULE,
};

type Fixture = RestApi;

impl RestApi {
    /// A REST API (`tg-rb-…`) through `AWS_ENDPOINT_URL`, with a canary at
    /// `canary_percent` if given.
    async fn new(canary_percent: Option<f64>) -> Self {
        Self::create(None, "tg-rb", canary_percent).await
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
}

/// A fresh fixture (see [`RestApi::new`]) if LocalStack tests run.
async fn fixture(canary_percent: Option<f64>) -> Option<Fixture> {
    if !enabled() {
        return None;
    }
    Some(Fixture::new(canary_percent).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_alarm_removes_the_canary_once() {
    let Some(f) = fixture(Some(10.0)).await else {
        return;
    };
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
    assert_action(&out, "remove_canary", "applied");
    // One request: no intermediate 0 % state, no leftover settings.
    assert_eq!(common::plan_steps(&out), 1, "{out}");
    f.assert_on_d1_without_canary().await;
    f.assert_no_tidegate_variables().await;

    // Redelivered: nothing more happens.
    let again = invoke(&mut svc, &event).await;
    assert_eq!(action_type(&again), "none:duplicate", "{again}");
    f.assert_recorded_once("remove_canary").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_changes_nothing() {
    let Some(f) = fixture(Some(10.0)).await else {
        return;
    };
    let mut svc = f.handler("dry_run = true");
    let event = f.alarm_event(&f.canary_alarm, StateValue::Alarm).await;
    let out = invoke(&mut svc, &event).await;
    assert_action(&out, "remove_canary", "dry_run");
    let after = f.stage().await;
    let c = after.canary_settings().expect("canary still there");
    assert_eq!(c.percent_traffic(), 10.0);
    assert!(after
        .variables()
        .is_none_or(|v| !v.keys().any(|k| k.starts_with("tidegate_"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_alarm_rolls_back_to_known_good() {
    let Some(f) = fixture(None).await else {
        return;
    };
    let mut svc = f.handler("");
    // Two ticks a bake time apart record d1 as known-good; a new deployment
    // goes live on the stage, then the stage alarm fires.
    let d2 = f.new_deployment_after_known_good(&mut svc).await;
    assert_eq!(f.stage().await.deployment_id(), Some(d2.as_str()));
    let event = f.alarm_event(&f.stage_alarm, StateValue::Alarm).await;
    let out = invoke(&mut svc, &event).await;
    assert_eq!(action_type(&out), "rollback_stage", "{out}");
    assert_eq!(f.stage().await.deployment_id(), Some(f.d1.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_steps_a_healthy_canary() {
    let Some(f) = fixture(Some(10.0)).await else {
        return;
    };
    // Tidegate has watched this canary for two minutes, and it had
    // healthy traffic since.
    f.seen_healthy_for(120).await;
    f.canary_traffic(200.0, 0.0).await;
    let mut svc = f.handler("");
    let tick = invoke(&mut svc, SCHEDULE).await;
    assert_eq!(action_type(&tick), "set_canary_percent", "{tick}");
    assert_eq!(f.canary_percent().await, Some(50.0));
    f.assert_no_tidegate_variables().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_stage_is_reported_not_patched() {
    let Some(f) = fixture(Some(10.0)).await else {
        return;
    };
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
    assert_eq!(outcome(&out), "failed", "{out}");
    let error = error(&out);
    assert!(error.starts_with("stage prod of REST API "), "{out}");
    assert!(
        error.contains(&f.api_id) && error.contains("not found"),
        "{out}"
    );
}

/// A real simple alarm, evaluated by LocalStack on metric data (period 10 s),
/// delivered wrapped in SNS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_alarm_via_sns_removes_the_canary() {
    let Some(mut f) = fixture(Some(10.0)).await else {
        return;
    };
    let real = format!("{}-real", f.api_name);
    let metric = format!("{real}-errors");
    put_alarm(&f.cw, &real, &metric, AlarmStat::Sum, 10).await;
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
    let event = f.sns(&real, "ALARM", &transitioned_at(&alarm));
    let out = invoke(&mut svc, &event).await;
    assert_eq!(action_type(&out), "remove_canary", "{out}");
    assert!(f.stage().await.canary_settings().is_none());
}

/// Two invocations racing on one alarm event: the stage ends in the same
/// state as with one, and the action is recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_invocations_act_once() {
    let Some(f) = fixture(Some(10.0)).await else {
        return;
    };
    let svc = f.handler("");
    let event = f.alarm_event(&f.canary_alarm, StateValue::Alarm).await;
    let (mut a, mut b) = (svc.clone(), svc);
    let (ra, rb) = tokio::join!(invoke(&mut a, &event), invoke(&mut b, &event));
    let kinds = [action_type(&ra), action_type(&rb)];
    assert!(kinds.contains(&"remove_canary".to_owned()), "{ra}\n{rb}");
    f.assert_on_d1_without_canary().await;
    f.assert_recorded_once("remove_canary").await;
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
    let Some(f) = fixture(Some(10.0)).await else {
        return;
    };
    let topic = Topic::new(&unique("tg-rb-topic")).await;
    let app = f.app(&format!("notification_topic_arn = \"{}\"", topic.arn), "");
    let mut svc = lambda(app.clone());

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
    let d3 = f.deploy_canary(10.0).await;
    f.canary_traffic(200.0, 0.0).await;
    let report = app
        .command(
            0,
            Trigger::Manual {
                command: ManualCommand::Promote,
                reason: "ship it".into(),
                operator: "key:oncall".into(),
                until_ms: None,
                start: None,
            },
        )
        .await
        .expect("stage 0 is managed");
    assert!(
        matches!(
            report.decision.as_ref().map(|d| &d.action),
            Some(Action::PromoteCanary { .. })
        ),
        "{report:?}"
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
    let Some(f) = fixture(Some(10.0)).await else {
        return;
    };
    let missing = format!(
        "arn:aws:sns:us-east-1:000000000000:{}",
        unique("tg-rb-missing")
    );
    let app = f.app(&format!("notification_topic_arn = \"{missing}\""), "");
    let mut svc = lambda(app);
    let event = f.alarm_event(&f.canary_alarm, StateValue::Alarm).await;
    let out = invoke(&mut svc, &event).await;
    assert_action(&out, "remove_canary", "applied");
    assert!(f.stage().await.canary_settings().is_none());
    assert!(f.action_counted("Rollbacks").await);
}

/// Eight invocations racing on one stage (alarm events by EventBridge and
/// SNS, schedule ticks, an operator's rollback) while its canary alarm
/// fires: exactly one takes the canary off, the others find nothing left
/// to do (or wait for the lease, or yield), and the history holds that one
/// action, complete (what, who, why, trigger, outcome).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_racing_invocations_act_once() {
    let Some(f) = fixture(Some(10.0)).await else {
        return;
    };
    let svc = f.handler("");
    let at = f.set_alarm(&f.canary_alarm, StateValue::Alarm).await;
    let events = [
        f.eventbridge(&f.canary_alarm, "ALARM", &at),
        f.sns(&f.canary_alarm, "ALARM", &at),
        f.eventbridge(&f.canary_alarm, "ALARM", &at),
        SCHEDULE.to_owned(),
        f.sns(&f.canary_alarm, "ALARM", &at),
        SCHEDULE.to_owned(),
        f.eventbridge(&f.canary_alarm, "ALARM", &at),
    ];
    let app = f.app("", "");
    let operator = tokio::spawn(async move {
        app.command(
            0,
            Trigger::Manual {
                command: ManualCommand::Rollback,
                reason: "race".into(),
                operator: "key:oncall".into(),
                until_ms: None,
                start: None,
            },
        )
        .await
    });
    let runs: Vec<_> = events
        .iter()
        .map(|e| {
            let mut svc = svc.clone();
            let e = e.clone();
            tokio::spawn(async move { invoke(&mut svc, &e).await })
        })
        .collect();
    let mut outs = Vec::new();
    for r in runs {
        outs.push(r.await.unwrap());
    }
    let op = operator.await.unwrap();
    let mut applied = 0;
    let mut summary = Vec::new();
    for out in &outs {
        if outcome(out) == "applied" {
            applied += 1;
        }
        summary.push(format!("{}/{}", action_type(out), outcome(out)));
    }
    let op_outcome = op.as_ref().map_or("?", |r| r.outcome.status()).to_owned();
    if op_outcome == "applied" {
        applied += 1;
    }
    summary.push(format!("operator/{op_outcome}"));
    assert_eq!(applied, 1, "{summary:?}");
    f.assert_on_d1_without_canary().await;
    f.assert_recorded_once("remove_canary").await;
    f.assert_no_tidegate_variables().await;
    let entries = f.history_entries().await;
    let done = entries
        .iter()
        .find(|e| e.what == "remove_canary")
        .expect("the removal is in the history");
    assert!(!done.who.is_empty() && !done.why.is_empty(), "{done:?}");
    eprintln!(
        "8 racing invocations: {summary:?}; history: {}",
        f.history().await
    );
}

/// A lease left behind by an invocation that crashed (it never released
/// it): the next invocation waits, and once the lease lapses at the crashed
/// one's deadline, takes the stage and completes. A lease that would outlast
/// the wait makes the invocation yield, and say who holds the stage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_invocations_lease_expires() {
    let Some(f) = fixture(Some(10.0)).await else {
        return;
    };
    let mut svc = f.handler("");
    let now = tidegate_rollback::retry::now_ms();
    f.store
        .acquire(&f.key(), "crashed-invocation", now + 1_500, now)
        .await
        .unwrap();
    let event = f.alarm_event(&f.canary_alarm, StateValue::Alarm).await;
    let started = Instant::now();
    let out = invoke(&mut svc, &event).await;
    assert_action(&out, "remove_canary", "applied");
    assert!(
        started.elapsed() >= Duration::from_millis(1_000),
        "it waited"
    );
    f.assert_on_d1_without_canary().await;

    // Held well beyond the wait: yield, naming the holder.
    let now = tidegate_rollback::retry::now_ms();
    f.store
        .acquire(&f.key(), "long-runner", now + 60_000, now)
        .await
        .unwrap();
    let out = invoke(&mut svc, SCHEDULE).await;
    assert_eq!(outcome(&out), "yielded", "{out}");
    assert_eq!(
        out["stages"][0]["outcome"]["holder"], "long-runner",
        "{out}"
    );
    eprintln!(
        "crashed lease: waited {:?}, then applied; a held lease yields",
        started.elapsed()
    );
}

/// A stage managed by an older Tidegate keeps its bookkeeping in
/// `tidegate_*` stage variables: it is migrated once into the state table,
/// the old variables are removed, and the user's own variables stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrates_stage_variables_once() {
    use aws_sdk_apigateway::types::{Op, PatchOperation};
    let Some(f) = fixture(None).await else {
        return;
    };
    let old = [
        ("tidegate_known_good", format!("{},1700000000000", f.d1)),
        ("tidegate_paused", "1700000000000,INC-7~20freeze".to_owned()),
        ("tidegate_last_rollback", "1700000000000".to_owned()),
        ("backend", "https://orders.internal".to_owned()),
    ];
    let mut patch = f
        .apigw
        .update_stage()
        .rest_api_id(&f.api_id)
        .stage_name("prod");
    for (k, v) in &old {
        patch = patch.patch_operations(
            PatchOperation::builder()
                .op(Op::Replace)
                .path(format!("/variables/{k}"))
                .value(v)
                .build(),
        );
    }
    patch.send().await.unwrap();
    let mut svc = f.handler("");
    let out = invoke(&mut svc, SCHEDULE).await;
    assert_eq!(action_type(&out), "none:paused", "{out}");
    let stored = f.store.load(&f.key()).await.unwrap();
    assert!(stored.version.is_some());
    let kg = stored
        .record
        .known_good
        .clone()
        .expect("known-good migrated");
    assert_eq!(kg.deployment_id, f.d1);
    assert_eq!(
        stored.record.paused.as_ref().map(|p| p.reason.as_str()),
        Some("INC-7 freeze")
    );
    f.assert_no_tidegate_variables().await;
    let vars = f.stage().await.variables().cloned().unwrap_or_default();
    assert_eq!(
        vars.get("backend").map(String::as_str),
        Some("https://orders.internal")
    );
    // Once: a second run finds the record and changes no variable.
    let again = invoke(&mut svc, SCHEDULE).await;
    assert_eq!(action_type(&again), "none:paused", "{again}");
    let after = f.store.load(&f.key()).await.unwrap();
    assert_eq!(after.record.known_good, stored.record.known_good);
    eprintln!(
        "migration: {} variables read, record version {:?}",
        old.len() - 1,
        after.version
    );
}

/// REST API names are not unique: a stage configured by a name two APIs
/// share is refused with both ids and the fix, and nothing is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_api_name_is_refused() {
    let Some(f) = fixture(Some(10.0)).await else {
        return;
    };
    let twin = f
        .apigw
        .create_rest_api()
        .name(&f.api_name)
        .send()
        .await
        .unwrap();
    let twin_id = twin.id().unwrap().to_owned();
    let text = f.config("").replace(
        &format!("rest_api_id = \"{}\"", f.api_id),
        &format!("rest_api_name = \"{}\"", f.api_name),
    );
    let table = f.store.table().to_owned();
    let settings = tidegate_rollback::config::load(
        |k| match k {
            tidegate_rollback::config::CONFIG_ENV => Some(text.clone()),
            tidegate_rollback::config::STATE_TABLE_ENV => Some(table.clone()),
            _ => None,
        },
        |_| Err("no files".into()),
    )
    .unwrap();
    let mut svc = lambda(tidegate_rollback::App::new(settings));
    let event = f.alarm_event(&f.canary_alarm, StateValue::Alarm).await;
    let out = invoke(&mut svc, &event).await;
    let error = common::failed_naming(&out, &[&f.api_id, &twin_id, "rest_api_id"]);
    assert_eq!(f.canary_percent().await, Some(10.0), "nothing touched");
    eprintln!("ambiguous name: {error}");
}

/// The control API's admin key in these tests.
const ADMIN_KEY: &str = "tg_localstack_admin";

/// The Lambda's state for `f` with [`ADMIN_KEY`] as an admin API key.
fn control_app(f: &Fixture) -> std::sync::Arc<tidegate_rollback::App> {
    let keys = serde_json::json!([{
        "id": "k1", "consumer": "oncall",
        "sha256": tidegate_policy::auth::hash_key(ADMIN_KEY), "scopes": ["tidegate:admin"],
    }]);
    f.app_with_keys(&keys.to_string())
}

/// One control-API request (`path` may carry a query) with the admin key;
/// the status and the JSON body.
async fn control(
    app: std::sync::Arc<tidegate_rollback::App>,
    method: &'static str,
    path: String,
    payload: String,
) -> (u16, Value) {
    use lambda_http::{Body, RequestExt};
    let raw = path.split('?').next().unwrap_or_default().to_owned();
    let req = lambda_http::http::Request::builder()
        .method(method)
        .uri(path)
        .header("x-api-key", ADMIN_KEY)
        .body(Body::from(payload))
        .unwrap()
        .with_raw_http_path(raw);
    let now = tidegate_rollback::retry::now_ms();
    let resp = tidegate_rollback::http::handle(app.as_ref(), req, now).await;
    let body = serde_json::from_slice(resp.body().as_ref()).unwrap_or(Value::Null);
    (resp.status().as_u16(), body)
}

/// A command report's action (`none:<reason>` for no action).
fn action(report: &Value) -> String {
    let a = &report["decision"]["action"];
    match a["type"].as_str() {
        Some("none") => format!("none:{}", a["reason"]["kind"].as_str().unwrap_or("?")),
        other => other.unwrap_or("?").to_owned(),
    }
}

/// The control API end to end (issue 17): an operator starts a canary with
/// its own steps (one gated), advances it one step, the schedule holds it
/// at the gate, advance is refused there, approve passes it, promote ships
/// it; the status shows the steps and the wait, the history every command
/// with who and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_advance_gate_approve_promote() {
    let Some(f) = fixture(None).await else {
        return;
    };
    let app = control_app(&f);
    let base = format!("/stages/{}/prod", f.api_id);
    let call = |method: &'static str, path: String, payload: &str| {
        control(app.clone(), method, path, payload.to_owned())
    };

    // Start: one UpdateStage creates the canary at its first step.
    let d2 = f.new_deployment().await;
    let start = serde_json::json!({
        "deployment": d2,
        "steps": [10, {"percent": 50, "approve": true}, 100],
        "reason": "release 42",
    });
    let (status, report) = call("POST", format!("{base}/start"), &start.to_string()).await;
    assert_eq!(
        (status, action(&report).as_str()),
        (200, "start_canary"),
        "{report}"
    );
    assert_eq!(report["outcome"]["status"], "applied", "{report}");
    let stage = f.stage().await;
    let canary = stage.canary_settings().expect("canary settings");
    assert_eq!(canary.deployment_id(), Some(d2.as_str()));
    assert_eq!(canary.percent_traffic(), 10.0);
    assert_eq!(stage.deployment_id(), Some(f.d1.as_str()));

    // A second start while it runs is a conflict.
    let (status, problem) = call("POST", format!("{base}/start"), &start.to_string()).await;
    assert_eq!(status, 409, "{problem}");

    // Advance: one step now, healthy metrics, no bake.
    f.canary_traffic(200.0, 0.0).await;
    let (status, report) = call("POST", format!("{base}/advance"), r#"{"reason":"fast"}"#).await;
    assert_eq!(
        (status, action(&report).as_str()),
        (200, "set_canary_percent"),
        "{report}"
    );
    assert_eq!(f.canary_percent().await, Some(50.0));

    // Baked at the gate: the schedule waits, and says so.
    f.seen_healthy_for(120).await;
    f.canary_traffic(200.0, 0.0).await;
    let mut svc = lambda(app.clone());
    let mut tick = invoke(&mut svc, SCHEDULE).await;
    if action_type(&tick) == "record_known_good" {
        // The stage's own deployment is due first (the fixture's record
        // had none); the canary waits meanwhile.
        tick = invoke(&mut svc, SCHEDULE).await;
    }
    assert_eq!(action_type(&tick), "none:awaiting_approval", "{tick}");
    assert_eq!(f.canary_percent().await, Some(50.0));
    let (status, shown) = call("GET", base.clone(), "").await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["awaiting_approval"], true, "{shown}");
    assert_eq!(shown["step_index"], 1, "{shown}");
    assert_eq!(
        shown["steps"],
        serde_json::json!([
            {"percent": 10.0, "approve": false},
            {"percent": 50.0, "approve": true},
            {"percent": 100.0, "approve": false},
        ])
    );

    // Advance does not pass the gate; approve does, once.
    let (status, problem) = call("POST", format!("{base}/advance"), r#"{"reason":"x"}"#).await;
    assert_eq!(status, 409, "{problem}");
    let (status, report) = call(
        "POST",
        format!("{base}/approve"),
        r#"{"reason":"dashboards green"}"#,
    )
    .await;
    assert_eq!(
        (status, action(&report).as_str()),
        (200, "none:approved"),
        "{report}"
    );
    let (status, problem) = call("POST", format!("{base}/approve"), r#"{"reason":"again"}"#).await;
    assert_eq!(status, 409, "{problem}");
    let (_, shown) = call("GET", base.clone(), "").await;
    assert_eq!(shown["awaiting_approval"], false, "{shown}");
    assert_eq!(shown["approval"]["by"], "key:oncall", "{shown}");

    // The schedule moves on past the approved gate; promote ships it.
    let tick = invoke(&mut svc, SCHEDULE).await;
    assert_eq!(action_type(&tick), "set_canary_percent", "{tick}");
    assert_eq!(f.canary_percent().await, Some(100.0));
    f.canary_traffic(200.0, 0.0).await;
    let (status, report) = call("POST", format!("{base}/promote"), r#"{"reason":"ship"}"#).await;
    assert_eq!(
        (status, action(&report).as_str()),
        (200, "promote_canary"),
        "{report}"
    );
    let stage = f.stage().await;
    assert_eq!(stage.deployment_id(), Some(d2.as_str()));
    assert!(stage.canary_settings().is_none());

    // The history, newest first, with who and why.
    let (status, page) = call("GET", format!("{base}/history?limit=50"), "").await;
    assert_eq!(status, 200, "{page}");
    let entries: Vec<Value> = page["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["what"] != "record_known_good")
        .collect();
    let whats: Vec<&str> = entries.iter().filter_map(|e| e["what"].as_str()).collect();
    assert_eq!(
        whats,
        [
            "promote_canary",
            "set_canary_percent",
            "approve",
            "approve",
            "advance",
            "set_canary_percent",
            "start",
            "start_canary",
        ],
        "{page}"
    );
    let started = &entries[7];
    assert_eq!(started["who"], "key:oncall", "{started}");
    assert_eq!(started["trigger"]["reason"], "release 42", "{started}");
    assert_eq!(started["outcome"]["status"], "applied", "{started}");
    assert_eq!(entries[3]["trigger"]["reason"], "dashboards green");
    assert_eq!(
        entries[2]["outcome"]["status"], "nothing_to_do",
        "a refused approve changes nothing"
    );
    let (status, page) = call("GET", format!("{base}/history?limit=2"), "").await;
    assert_eq!(
        (status, page["entries"].as_array().map(Vec::len)),
        (200, Some(2))
    );
}

/// `start` over leftover canary settings (0 %, with variable overrides):
/// removed first, then the new canary at the configured first step with
/// none of the old overrides; a deployment that does not exist is a 422
/// that changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_replaces_leftover_settings() {
    use aws_sdk_apigateway::types::{Op, PatchOperation};
    let Some(f) = fixture(Some(10.0)).await else {
        return;
    };
    let replace = |path: &str, value: &str| {
        PatchOperation::builder()
            .op(Op::Replace)
            .path(path)
            .value(value)
            .build()
    };
    f.apigw
        .update_stage()
        .rest_api_id(&f.api_id)
        .stage_name("prod")
        .patch_operations(replace("/canarySettings/percentTraffic", "0.0"))
        .patch_operations(replace(
            "/canarySettings/stageVariableOverrides/color",
            "blue",
        ))
        .send()
        .await
        .unwrap();
    let app = control_app(&f);
    let base = format!("/stages/{}/prod", f.api_id);
    let (status, problem) = control(
        app.clone(),
        "POST",
        format!("{base}/start"),
        r#"{"deployment":"nosuchdeploy","reason":"typo"}"#.into(),
    )
    .await;
    // AWS answers NotFound (422 here); LocalStack answers GetDeployment for
    // an unknown id with a 500, which is "could not check" (503).
    assert!(matches!(status, 422 | 503), "{status} {problem}");
    assert_eq!(f.canary_percent().await, Some(0.0));

    let d3 = f.new_deployment().await;
    let body = serde_json::json!({"deployment": d3, "reason": "release 43"});
    let (status, report) = control(
        app.clone(),
        "POST",
        format!("{base}/start"),
        body.to_string(),
    )
    .await;
    assert_eq!(
        (status, action(&report).as_str()),
        (200, "start_canary"),
        "{report}"
    );
    assert_eq!(
        report["outcome"],
        serde_json::json!({"status": "applied", "steps": 2})
    );
    let stage = f.stage().await;
    let canary = stage.canary_settings().expect("canary settings");
    assert_eq!(canary.deployment_id(), Some(d3.as_str()));
    assert_eq!(canary.percent_traffic(), 10.0);
    assert!(
        canary
            .stage_variable_overrides()
            .is_none_or(|o| o.is_empty()),
        "{canary:?}"
    );
    let (_, shown) = control(app, "GET", base, String::new()).await;
    assert_eq!(shown["step_index"], 0, "{shown}");
    assert_eq!(shown["steps"].as_array().map(Vec::len), Some(3), "{shown}");
    assert_eq!(shown["awaiting_approval"], false, "{shown}");
}

/// The edge's signal (issue 18): a signed breach event on `POST
/// /edge/health` removes a canary at 50 % in one request, the history says
/// `trigger: edge` with the figures, and the same event again is a
/// duplicate (the id claimed in the state table).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edges_signal_removes_the_canary() {
    use tidegate_policy::health::{sign, BreachKind, EdgeHealthEvent, ReleaseFigures, SignalKey};
    let Some(f) = fixture(Some(50.0)).await else {
        return;
    };
    f.seen_healthy_for(60).await;
    const SECRET: &str = "localstack-edge-secret-32-bytes!";
    let text = f.config("");
    let table = f.store.table().to_owned();
    let settings = tidegate_rollback::config::load(
        |k| match k {
            tidegate_rollback::config::CONFIG_ENV => Some(text.clone()),
            tidegate_rollback::config::STATE_TABLE_ENV => Some(table.clone()),
            tidegate_rollback::config::HEALTH_SECRET_ENV => Some(SECRET.to_owned()),
            _ => None,
        },
        |_| Err("no files".into()),
    )
    .unwrap();
    let app = tidegate_rollback::App::new(settings);
    let now = tidegate_rollback::retry::now_ms();
    let event = EdgeHealthEvent {
        id: unique("edge"),
        api: f.api_id.clone(),
        stage: "prod".into(),
        release: "canary".into(),
        breach: BreachKind::ErrorRate,
        issued_ms: now,
        window_from_ms: now - 10_000,
        first_failure_ms: Some(now - 2_000),
        canary: ReleaseFigures {
            requests: 14,
            errors: 7,
            p50_ms: 12,
            p99_ms: 48,
        },
        base: Some(ReleaseFigures {
            requests: 16,
            errors: 0,
            p50_ms: 11,
            p99_ms: 40,
        }),
        detail: "canary 5xx 50.0% vs base 0.0%".into(),
    };
    let signed = sign(&SignalKey::new(SECRET.as_bytes()).unwrap(), &event);
    let post = |app: std::sync::Arc<tidegate_rollback::App>,
                signed: tidegate_policy::health::SignedEvent| async move {
        use lambda_http::{Body, RequestExt};
        let req = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/edge/health")
            .header("tidegate-signature", signed.header)
            .body(Body::from(signed.body))
            .unwrap()
            .with_raw_http_path("/edge/health");
        let resp =
            tidegate_rollback::http::handle(app.as_ref(), req, tidegate_rollback::retry::now_ms())
                .await;
        let body: Value = serde_json::from_slice(resp.body().as_ref()).unwrap_or(Value::Null);
        (resp.status().as_u16(), body)
    };
    let started = Instant::now();
    let (status, body) = post(app.clone(), signed.clone()).await;
    eprintln!("edge signal -> canary removed in {:?}", started.elapsed());
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["outcome"], "applied", "{body}");
    assert_eq!(body["action"]["type"], "remove_canary", "{body}");
    assert_eq!(body["action"]["reason"]["kind"], "edge", "{body}");
    f.assert_on_d1_without_canary().await;
    f.assert_recorded_once("remove_canary").await;
    let entries = f.history_entries().await;
    let entry = entries
        .iter()
        .find(|e| e.what == "remove_canary")
        .expect("a history entry");
    assert_eq!(entry.who, "edge");
    match &entry.trigger {
        Trigger::Edge(e) => assert_eq!(e.canary.errors, 7),
        other => panic!("trigger {other:?}"),
    }
    // The same event again: a duplicate, not acted on.
    let (status, body) = post(app.clone(), signed).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "duplicate", "{body}");
    f.assert_recorded_once("remove_canary").await;
}
