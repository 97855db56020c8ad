//! The rollback Lambda's inputs: realistic event fixtures parse into the
//! expected triggers, route to the stages the example configuration manages,
//! and no JSON at all makes the parser panic.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::Value;
use tidegate_policy::config;
use tidegate_policy::rollout::{
    decide, parse, stages_watching, Action, AlarmEvent, AlarmKind, AlarmReading, AlarmSource,
    AlarmState, CanaryMetrics, CanarySnapshot, EventError, HttpRequest, HttpVia, Input,
    RemoveReason, Signals, StageRecord, StageSnapshot,
};

const FIXTURES: [(&str, &str); 14] = [
    (
        "eventbridge-alarm-metric",
        include_str!("fixtures/events/eventbridge-alarm-metric.json"),
    ),
    (
        "eventbridge-alarm-metric-math",
        include_str!("fixtures/events/eventbridge-alarm-metric-math.json"),
    ),
    (
        "eventbridge-alarm-composite",
        include_str!("fixtures/events/eventbridge-alarm-composite.json"),
    ),
    (
        "eventbridge-alarm-composite-suppressed",
        include_str!("fixtures/events/eventbridge-alarm-composite-suppressed.json"),
    ),
    (
        "eventbridge-alarm-configuration-change",
        include_str!("fixtures/events/eventbridge-alarm-configuration-change.json"),
    ),
    (
        "alarm-lambda-action",
        include_str!("fixtures/events/alarm-lambda-action.json"),
    ),
    (
        "sns-alarm-metric",
        include_str!("fixtures/events/sns-alarm-metric.json"),
    ),
    (
        "sns-alarm-metric-math",
        include_str!("fixtures/events/sns-alarm-metric-math.json"),
    ),
    (
        "sns-two-records-one-bad",
        include_str!("fixtures/events/sns-two-records-one-bad.json"),
    ),
    (
        "scheduled-event",
        include_str!("fixtures/events/scheduled-event.json"),
    ),
    (
        "scheduler-event",
        include_str!("fixtures/events/scheduler-event.json"),
    ),
    (
        "apigw-v1-request",
        include_str!("fixtures/events/apigw-v1-request.json"),
    ),
    (
        "apigw-v2-request",
        include_str!("fixtures/events/apigw-v2-request.json"),
    ),
    (
        "function-url-request",
        include_str!("fixtures/events/function-url-request.json"),
    ),
];

fn fixture(name: &str) -> Value {
    let (_, text) = FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fixture {name}"));
    serde_json::from_str(text).unwrap()
}

fn parsed(name: &str) -> Input {
    parse(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The single alarm event of a fixture.
fn alarm(name: &str) -> AlarmEvent {
    match parsed(name) {
        Input::Alarms { events, rejected } if events.len() == 1 && rejected.is_empty() => {
            events.into_iter().next().unwrap()
        }
        other => panic!("{name}: expected one alarm event, got {other:?}"),
    }
}

#[test]
fn eventbridge_metric_alarm() {
    let ev = alarm("eventbridge-alarm-metric");
    assert_eq!(ev.transition.alarm, "orders-api-prod-canary-5xx-rate");
    assert_eq!(ev.transition.new_state, AlarmState::Alarm);
    assert_eq!(ev.transition.previous_state, Some(AlarmState::Ok));
    assert_eq!(ev.transition.timestamp_ms, 1_715_678_467_216);
    assert_eq!(ev.source, AlarmSource::EventBridge);
    assert_eq!(ev.kind, AlarmKind::Metric);
    assert_eq!(
        ev.alarm_arn.as_deref(),
        Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:orders-api-prod-canary-5xx-rate")
    );
    assert!(ev.reason.unwrap().starts_with("Threshold Crossed"));
    assert_eq!(
        ev.transition.id(),
        "orders-api-prod-canary-5xx-rate@1715678467216:ALARM"
    );
}

#[test]
fn eventbridge_metric_math_alarm() {
    let ev = alarm("eventbridge-alarm-metric-math");
    assert_eq!(ev.transition.alarm, "orders-api-prod-5xx-rate");
    assert_eq!(ev.transition.new_state, AlarmState::Ok);
    assert_eq!(ev.transition.previous_state, Some(AlarmState::Alarm));
    assert_eq!(ev.transition.timestamp_ms, 1_715_679_312_011);
    assert_eq!(ev.kind, AlarmKind::MetricMath);
}

#[test]
fn eventbridge_composite_alarm() {
    let ev = alarm("eventbridge-alarm-composite");
    assert_eq!(ev.transition.alarm, "orders-api-prod-unhealthy");
    assert_eq!(ev.transition.timestamp_ms, 1_715_680_971_001);
    assert_eq!(ev.kind, AlarmKind::Composite);
}

#[test]
fn configuration_changes_are_ignored() {
    assert!(matches!(
        parsed("eventbridge-alarm-configuration-change"),
        Input::Ignored { what } if what == "CloudWatch Alarm Configuration Change from aws.cloudwatch"
    ));
}

#[test]
fn alarm_lambda_action() {
    let ev = alarm("alarm-lambda-action");
    assert_eq!(ev.source, AlarmSource::AlarmAction);
    assert_eq!(ev.transition.alarm, "orders-api-prod-5xx-rate");
    assert_eq!(ev.transition.new_state, AlarmState::Alarm);
    assert_eq!(ev.transition.timestamp_ms, 1_715_686_830_112);
    assert_eq!(ev.kind, AlarmKind::MetricMath);
    assert!(ev
        .alarm_arn
        .unwrap()
        .ends_with(":alarm:orders-api-prod-5xx-rate"));
}

#[test]
fn sns_alarms_name_the_same_transition_as_eventbridge() {
    let sns = alarm("sns-alarm-metric");
    assert_eq!(sns.source, AlarmSource::Sns);
    assert_eq!(sns.kind, AlarmKind::Metric);
    // The same transition delivered both ways has the same id, so the second
    // delivery is a duplicate.
    assert_eq!(sns.transition, alarm("eventbridge-alarm-metric").transition);

    let math = alarm("sns-alarm-metric-math");
    assert_eq!(math.kind, AlarmKind::MetricMath);
    assert_eq!(math.transition.timestamp_ms, 1_715_686_830_112);
    assert_eq!(math.transition.previous_state, Some(AlarmState::Ok));
    assert_eq!(math.transition, alarm("alarm-lambda-action").transition);
}

#[test]
fn sns_bad_records_are_rejected_individually() {
    let Input::Alarms { events, rejected } = parsed("sns-two-records-one-bad") else {
        panic!("expected alarms");
    };
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].transition.alarm, "orders-api-prod-5xx-rate");
    assert_eq!(rejected.len(), 1);
    assert!(
        matches!(&rejected[0], EventError::SnsRecord { index: 1, detail } if detail.contains("Sns.Message"))
    );
}

#[test]
fn schedules() {
    assert_eq!(
        parsed("scheduled-event"),
        Input::Schedule {
            time_ms: Some(1_715_678_520_000)
        }
    );
    assert_eq!(
        parsed("scheduler-event"),
        Input::Schedule {
            time_ms: Some(1_715_678_580_000)
        }
    );
}

#[test]
fn http_requests_are_classified() {
    let http = |name| match parsed(name) {
        Input::Http(h) => h,
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(
        http("apigw-v1-request"),
        HttpRequest {
            via: HttpVia::ApiGatewayV1,
            method: "POST".into(),
            path: "/stages/orders-api/prod/rollback".into()
        }
    );
    assert_eq!(
        http("apigw-v2-request"),
        HttpRequest {
            via: HttpVia::ApiGatewayV2,
            method: "GET".into(),
            path: "/stages/orders-api/prod".into()
        }
    );
    assert_eq!(
        http("function-url-request"),
        HttpRequest {
            via: HttpVia::FunctionUrl,
            method: "POST".into(),
            path: "/stages/orders-api/prod/pause".into()
        }
    );
}

fn example_policy() -> config::RollbackPolicy {
    let cfg = config::parse(include_str!("../../examples/gateway.toml")).unwrap();
    cfg.rollback.unwrap()
}

#[test]
fn alarms_route_to_the_stages_that_watch_them() {
    let policy = example_policy();
    for name in [
        "eventbridge-alarm-metric",
        "eventbridge-alarm-metric-math",
        "sns-alarm-metric",
    ] {
        let ev = alarm(name);
        let stages = stages_watching(&policy, &ev.transition.alarm);
        assert_eq!(stages.len(), 1, "{name}");
        assert_eq!(stages[0].stage, "prod");
    }
    // The composite alarm is not configured for any stage.
    let ev = alarm("eventbridge-alarm-composite");
    assert!(stages_watching(&policy, &ev.transition.alarm).is_empty());
}

#[test]
fn fixture_to_decision() {
    // The canary alarm fixture, against the example configuration's stage
    // serving d1 with canary d2 at 10 %: the canary is removed, once.
    let policy = example_policy();
    let ev = alarm("eventbridge-alarm-metric");
    let stage = stages_watching(&policy, &ev.transition.alarm)[0];
    let now = ev.transition.timestamp_ms + 2_000;
    let snap = StageSnapshot {
        rest_api_id: "a1b2c3d4e5".into(),
        rest_api_name: Some("orders-api".into()),
        stage_name: "prod".into(),
        deployment_id: "d1".into(),
        canary: Some(CanarySnapshot {
            deployment_id: "d2".into(),
            percent_traffic: 10.0,
            stage_variable_overrides: BTreeMap::new(),
        }),
        last_updated_ms: None,
        variables: BTreeMap::new(),
    };
    let signals = Signals {
        alarms: [
            (
                "orders-api-prod-5xx-rate".to_owned(),
                AlarmReading::new(AlarmState::Ok, 0),
            ),
            (
                ev.transition.alarm.clone(),
                AlarmReading::new(AlarmState::Alarm, ev.transition.timestamp_ms),
            ),
        ]
        .into(),
        canary_metrics: tidegate_policy::rollout::MetricsReading::Read(CanaryMetrics {
            errors_5xx: 12.0,
            count: 61.0,
        }),
        deployments: [
            (
                "d1".to_owned(),
                tidegate_policy::rollout::DeploymentCheck::Exists,
            ),
            (
                "d2".to_owned(),
                tidegate_policy::rollout::DeploymentCheck::Exists,
            ),
        ]
        .into(),
    };
    let book = StageRecord::default();
    let d = decide(stage, &snap, &book, &signals, ev.trigger(), now);
    assert!(
        matches!(&d.action, Action::RemoveCanary { reason: RemoveReason::CanaryAlarm { alarm }, .. } if alarm == "orders-api-prod-canary-5xx-rate"),
        "{}",
        d.action
    );
    let line = serde_json::to_value(&d.audit).unwrap();
    assert_eq!(line["trigger"]["type"], "alarm_transition");
    assert_eq!(line["action"]["type"], "remove_canary");
    assert_eq!(line["stage"], "prod");

    // The SNS copy of the same transition, after the decision was carried out.
    let mut after = snap.clone();
    after.canary = None;
    let book = d.record.clone();
    let again = decide(
        stage,
        &after,
        &book,
        &signals,
        alarm("sns-alarm-metric").trigger(),
        now + 500,
    );
    assert!(matches!(again.action, Action::None { .. }));
    assert!(again.plan.is_empty(), "{}", again.action);
    assert!(matches!(
        serde_json::to_value(&again.action).unwrap()["reason"]["kind"].as_str(),
        Some("duplicate")
    ));
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
        prop_oneof![
            Just("ALARM"),
            Just("OK"),
            Just("INSUFFICIENT_DATA"),
            Just("2024-05-14T09:21:07.216+0000"),
            Just("aws:sns"),
            Just("aws.cloudwatch"),
            Just("CloudWatch Alarm State Change"),
            Just("Scheduled Event"),
            Just("2.0"),
            Just("{\"AlarmName\":1}"),
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            Just("Records".to_owned()),
            Just("EventSource".to_owned()),
            Just("Sns".to_owned()),
            Just("Message".to_owned()),
            Just("detail-type".to_owned()),
            Just("source".to_owned()),
            Just("detail".to_owned()),
            Just("alarmData".to_owned()),
            Just("alarmName".to_owned()),
            Just("state".to_owned()),
            Just("value".to_owned()),
            Just("timestamp".to_owned()),
            Just("configuration".to_owned()),
            Just("metrics".to_owned()),
            Just("requestContext".to_owned()),
            Just("http".to_owned()),
            Just("version".to_owned()),
            "[a-zA-Z-]{1,10}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer in `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        _ => {}
    }
}

proptest! {
    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        let _ = parse(&v);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0..FIXTURES.len(),
        pick in any::<prop::sample::Index>(),
        replacement in arb_json(),
        also_sns_message in ".{0,40}",
    ) {
        let (_, text) = FIXTURES[which];
        let mut v: Value = serde_json::from_str(text).unwrap();
        let mut ps = Vec::new();
        pointers(&v, String::new(), &mut ps);
        let p = pick.get(&ps).clone();
        if let Some(slot) = v.pointer_mut(&p) {
            *slot = replacement;
        }
        if let Some(m) = v.pointer_mut("/Records/0/Sns/Message") {
            if also_sns_message.len() % 2 == 0 {
                *m = Value::String(also_sns_message);
            }
        }
        let _ = parse(&v);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            let _ = parse(&v);
        }
    }
}

/// A composite alarm whose actions a suppressor alarm suppresses
/// (`state.actionsSuppressedBy`), and a muted one: flagged, so they trigger
/// nothing; the same alarms without it are not.
#[test]
fn suppressed_and_muted_alarms_are_flagged() {
    assert!(!alarm("eventbridge-alarm-composite").transition.suppressed);
    assert!(!alarm("eventbridge-alarm-metric").transition.suppressed);
    let ev = alarm("eventbridge-alarm-composite-suppressed");
    assert!(ev.transition.suppressed);
    let mut muted: Value = fixture("eventbridge-alarm-metric");
    muted["detail"]["muteDetail"] = serde_json::json!({"muteRuleNames": ["nightly-maintenance"]});
    match parse(&muted).unwrap() {
        Input::Alarms { events, .. } => assert!(events[0].transition.suppressed),
        other => panic!("{other:?}"),
    }
    // An empty marker is no suppression.
    let mut empty: Value = fixture("eventbridge-alarm-metric");
    empty["detail"]["state"]["actionsSuppressedBy"] = "".into();
    match parse(&empty).unwrap() {
        Input::Alarms { events, .. } => assert!(!events[0].transition.suppressed),
        other => panic!("{other:?}"),
    }
}
