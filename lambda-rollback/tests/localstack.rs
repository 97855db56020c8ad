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
use tidegate_policy::rollout::{ManualCommand, Trigger};
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
    let op_outcome = op["outcome"]["status"].as_str().unwrap_or("?").to_owned();
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
