//! The endpoint over a fake [`Control`]: signature, dedupe, stage lookup,
//! the decision's outcome; through [`crate::http::handle`] for the wire.

use std::collections::HashSet;
use std::sync::Mutex;

use lambda_http::http::Method;
use lambda_http::{Body, Request};
use serde_json::Value;
use tidegate_policy::health::{sign, BreachKind, EdgeHealthEvent, SignalKey, SIGNATURE_HEADER};
use tidegate_policy::rollout::{RemoveReason, Trigger};

use super::*;
use crate::config::tests::{env, CONFIG};
use crate::config::{load, Settings, CONFIG_ENV, HEALTH_SECRET_ENV};
use crate::execute::RunReport;
use crate::http::{handle, BoxFuture};
use crate::jwks::IssuerKeys;
use crate::metrics::{MetricsWindow, StageMetrics};
use crate::status::{StageStatus, StatusList};

const SECRET: &str = "edge-health-secret-of-32-bytes!!";
const FIXTURE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/tests/fixtures/events/edge-health-breach.json"
));
const NOW: u64 = 1_715_680_000_500;

fn settings(secret: Option<&str>) -> Settings {
    let pairs: Vec<(&str, &str)> = match secret {
        Some(s) => vec![(CONFIG_ENV, CONFIG), (HEALTH_SECRET_ENV, s)],
        None => vec![(CONFIG_ENV, CONFIG)],
    };
    load(env(&pairs), |p| Err(format!("no file {p}"))).unwrap()
}

fn event() -> EdgeHealthEvent {
    serde_json::from_slice(FIXTURE).unwrap()
}

fn signed(e: &EdgeHealthEvent) -> (String, String) {
    let s = sign(&SignalKey::new(SECRET.as_bytes()).unwrap(), e);
    (s.header, s.body)
}

struct Fake {
    settings: Settings,
    keys: IssuerKeys,
    claimed: Mutex<HashSet<String>>,
    triggers: Mutex<Vec<Trigger>>,
    report: RunReport,
    store_down: bool,
}

impl Fake {
    fn new(secret: Option<&str>) -> Self {
        Self {
            settings: settings(secret),
            keys: IssuerKeys::new(),
            claimed: Mutex::default(),
            triggers: Mutex::default(),
            report: RunReport::with_action(
                "orders-api",
                "prod",
                Action::RemoveCanary {
                    deployment_id: "d2".into(),
                    percent: 50.0,
                    reason: RemoveReason::Edge {
                        release: "canary".into(),
                        breach: BreachKind::ErrorRate,
                        detail: "d".into(),
                    },
                },
                Outcome::Applied { steps: 1 },
            ),
            store_down: false,
        }
    }
    fn runs(&self) -> usize {
        self.triggers.lock().unwrap().len()
    }
}

impl Control for Fake {
    fn settings(&self) -> &Settings {
        &self.settings
    }
    fn issuer_keys(&self) -> &IssuerKeys {
        &self.keys
    }
    fn list(&self) -> BoxFuture<'_, StatusList> {
        Box::pin(async { StatusList { stages: vec![] } })
    }
    fn show(&self, _: usize) -> BoxFuture<'_, Option<StageStatus>> {
        Box::pin(async { None })
    }
    fn command(&self, _: usize, trigger: Trigger) -> BoxFuture<'_, Option<RunReport>> {
        self.triggers.lock().unwrap().push(trigger);
        Box::pin(async { Some(self.report.clone()) })
    }
    fn metrics(&self, _: usize, _: MetricsWindow) -> BoxFuture<'_, Option<StageMetrics>> {
        Box::pin(async { None })
    }
    fn claim_signal(&self, id: String, _: u64, _: u64) -> BoxFuture<'_, Result<bool, String>> {
        let r = if self.store_down {
            Err("DynamoDB unreachable".to_owned())
        } else {
            Ok(self.claimed.lock().unwrap().insert(id))
        };
        Box::pin(async move { r })
    }
    fn forget_signal(&self, id: String) -> BoxFuture<'_, Result<(), String>> {
        self.claimed.lock().unwrap().remove(&id);
        Box::pin(async { Ok(()) })
    }
}

fn post(header: Option<&str>, body: &str) -> Request {
    let mut b = lambda_http::http::Request::builder()
        .method(Method::POST)
        .uri("https://tidegate.example/edge/health")
        .header("content-type", "application/json");
    if let Some(h) = header {
        b = b.header(SIGNATURE_HEADER, h);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

async fn send(fake: &Fake, header: Option<&str>, body: &str, now: u64) -> (u16, Value) {
    let resp = handle(fake, post(header, body), now).await;
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let v: Value = serde_json::from_slice(resp.body().as_ref()).unwrap_or(Value::Null);
    if status >= 400 {
        assert_eq!(ct, "application/problem+json", "{v}");
    }
    (status, v)
}

#[tokio::test]
async fn a_signed_breach_is_decided_once_and_replays_are_duplicates() {
    let fake = Fake::new(Some(SECRET));
    let (h, b) = signed(&event());
    let (status, v) = send(&fake, Some(&h), &b, NOW).await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["outcome"], "applied");
    assert_eq!(v["action"]["type"], "remove_canary");
    assert_eq!(v["id"], event().id);
    match &fake.triggers.lock().unwrap()[0] {
        Trigger::Edge(e) => assert_eq!(*e, event()),
        other => panic!("{other:?}"),
    }
    // The same signed bytes again (a retry or a replay): not acted on.
    let (status, v) = send(&fake, Some(&h), &b, NOW + 1_000).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["outcome"], "duplicate");
    assert!(v["action"].is_null());
    assert_eq!(fake.runs(), 1);
}

#[tokio::test]
async fn signatures_are_checked_with_a_slug_per_error() {
    let fake = Fake::new(Some(SECRET));
    let (h, b) = signed(&event());
    let slug = |v: &Value| {
        v["type"]
            .as_str()
            .unwrap_or("")
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_owned()
    };
    let (s, v) = send(&fake, None, &b, NOW).await;
    assert_eq!((s, slug(&v).as_str()), (401, "missing-signature"));
    let (s, v) = send(&fake, Some("v1=abc"), &b, NOW).await;
    assert_eq!((s, slug(&v).as_str()), (401, "malformed-signature"));
    let (s, v) = send(
        &fake,
        Some(&h),
        &b.replace("\"errors\":7", "\"errors\":1"),
        NOW,
    )
    .await;
    assert_eq!((s, slug(&v).as_str()), (401, "bad-signature"));
    let (s, v) = send(&fake, Some(&h), &b, NOW + 10 * 60_000).await;
    assert_eq!((s, slug(&v).as_str()), (401, "stale-signature"));
    let other = signed(&event());
    let wrong = other.0.replace(&other.0[other.0.len() - 4..], "0000");
    let (s, v) = send(&fake, Some(&wrong), &b, NOW).await;
    assert_eq!((s, slug(&v).as_str()), (401, "bad-signature"));
    assert_eq!(fake.runs(), 0);
    assert!(fake.claimed.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_signed_body_that_is_not_a_valid_event_is_a_400() {
    let fake = Fake::new(Some(SECRET));
    let mut e = event();
    e.id = String::new();
    let (h, b) = signed(&e);
    let (s, v) = send(&fake, Some(&h), &b, NOW).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["type"].as_str().unwrap().ends_with("/invalid-event"));
    assert_eq!(fake.runs(), 0);
}

#[tokio::test]
async fn an_unknown_stage_is_a_404_and_not_claimed() {
    let fake = Fake::new(Some(SECRET));
    let mut e = event();
    e.stage = "staging".into();
    let (h, b) = signed(&e);
    let (s, v) = send(&fake, Some(&h), &b, NOW).await;
    assert_eq!(s, 404, "{v}");
    assert!(v["type"].as_str().unwrap().ends_with("/unknown-stage"));
    assert_eq!(fake.runs(), 0);
}

#[tokio::test]
async fn without_the_secret_the_endpoint_is_off() {
    let fake = Fake::new(None);
    let (h, b) = signed(&event());
    let (s, v) = send(&fake, Some(&h), &b, NOW).await;
    assert_eq!(s, 404, "{v}");
    assert!(v["type"].as_str().unwrap().ends_with("/edge-signal-off"));
    assert!(v["detail"].as_str().unwrap().contains(HEALTH_SECRET_ENV));
}

#[tokio::test]
async fn aws_trouble_is_a_503_and_the_retry_is_acted_on() {
    let mut fake = Fake::new(Some(SECRET));
    fake.report = RunReport {
        api: "orders-api".into(),
        stage: "prod".into(),
        decision: None,
        outcome: Outcome::Failed {
            error: "GetStage: throttled".into(),
        },
    };
    let (h, b) = signed(&event());
    let (s, v) = send(&fake, Some(&h), &b, NOW).await;
    assert_eq!(s, 503, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("throttled"));
    // The claim was given back: the retry runs again.
    let (s, _) = send(&fake, Some(&h), &b, NOW + 2_000).await;
    assert_eq!(s, 503);
    assert_eq!(fake.runs(), 2);
    let mut down = Fake::new(Some(SECRET));
    down.store_down = true;
    let (s, _) = send(&down, Some(&h), &b, NOW).await;
    assert_eq!(s, 503);
    assert_eq!(down.runs(), 0);
}

#[tokio::test]
async fn other_methods_are_refused() {
    let fake = Fake::new(Some(SECRET));
    let req = lambda_http::http::Request::builder()
        .method(Method::GET)
        .uri("https://tidegate.example/edge/health")
        .body(Body::Empty)
        .unwrap();
    let resp = handle(&fake, req, NOW).await;
    assert_eq!(resp.status(), 405);
}
