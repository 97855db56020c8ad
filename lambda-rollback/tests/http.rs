//! Control API routing and authentication, driven by the API Gateway /
//! Function URL request fixtures through `lambda_http`, over a fake
//! [`Control`] (no AWS).

#[path = "support/jwks_server.rs"]
mod jwks_server;

use std::sync::Mutex;

use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt, Response};
use serde_json::{json, Value};
use tidegate_policy::auth::hash_key;
use tidegate_policy::health::StageHealth;
use tidegate_policy::rollout::{Action, Hold, Trigger};
use tidegate_rollback::audit::Outcome;
use tidegate_rollback::config::{self, Settings};
use tidegate_rollback::execute::RunReport;
use tidegate_rollback::http::{self, BoxFuture, Control};
use tidegate_rollback::jwks::IssuerKeys;
use tidegate_rollback::live::EdgeUnavailable;
use tidegate_rollback::metrics::{MetricsWindow, StageMetrics};
use tidegate_rollback::status::{StageStatus, StatusList};
use tidegate_rollback::store::HistoryEntry;

const NOW_MS: u64 = 1_715_680_000_000;
const ADMIN_KEY: &str = "tg_fixture_not_a_key";
const READER_KEY: &str = "tg_reader_key";

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/tests/fixtures/events/",
            $name
        ))
    };
}

fn settings() -> Settings {
    let cfg = r#"
[[issuers]]
name = "ops"
issuer = "https://ops.example.com/"
audiences = ["tidegate-rollback"]
algorithms = ["HS256"]
jwks = { keys = [{ kty = "oct", k = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY", kid = "1" }] }

[[rollback.stages]]
rest_api_name = "orders-api"
stage = "prod"
stage_alarms = ["orders-api-prod-5xx-rate"]
"#;
    let keys = json!([
        {"id": "k1", "consumer": "oncall", "sha256": hash_key(ADMIN_KEY), "scopes": ["tidegate:admin"]},
        {"id": "k2", "consumer": "viewer", "sha256": hash_key(READER_KEY), "scopes": ["read"]},
    ])
    .to_string();
    config::load(
        |k| match k {
            config::CONFIG_ENV => Some(cfg.to_owned()),
            config::API_KEYS_ENV => Some(keys.clone()),
            config::STATE_TABLE_ENV => Some("tidegate-test".into()),
            _ => None,
        },
        |_| Err("no files".into()),
    )
    .unwrap()
}

#[derive(Default)]
struct Fake {
    settings: Option<Settings>,
    keys: IssuerKeys,
    calls: Mutex<Vec<String>>,
    /// The report `command` answers with (default: nothing to do).
    report: Mutex<Option<RunReport>>,
    /// What `edge_health` answers (default: not configured).
    edge: Mutex<Option<Result<StageHealth, EdgeUnavailable>>>,
}

impl Fake {
    fn new() -> Self {
        Self::with(settings())
    }
    fn with(settings: Settings) -> Self {
        Self {
            settings: Some(settings),
            ..Self::default()
        }
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Control for Fake {
    fn settings(&self) -> &Settings {
        self.settings.as_ref().unwrap()
    }
    fn issuer_keys(&self) -> &IssuerKeys {
        &self.keys
    }
    fn list(&self) -> BoxFuture<'_, StatusList> {
        self.calls.lock().unwrap().push("list".into());
        Box::pin(async {
            let mut s = StageStatus::new("orders-api", "prod", false);
            s.deployment_id = Some("d1".into());
            StatusList { stages: vec![s] }
        })
    }
    fn show(&self, index: usize) -> BoxFuture<'_, Option<StageStatus>> {
        self.calls.lock().unwrap().push(format!("show {index}"));
        Box::pin(async { Some(StageStatus::new("orders-api", "prod", false)) })
    }
    fn command(&self, index: usize, trigger: Trigger) -> BoxFuture<'_, Option<RunReport>> {
        let Trigger::Manual {
            command,
            reason,
            operator,
            until_ms,
            start,
        } = trigger
        else {
            panic!("not an operator command: {trigger:?}");
        };
        let until = until_ms.map(|u| format!(" until {u}")).unwrap_or_default();
        let start = start
            .map(|s| format!(" start {} {:?}", s.deployment, s.steps))
            .unwrap_or_default();
        self.calls.lock().unwrap().push(format!(
            "{command:?} {index} {reason} by {operator}{until}{start}"
        ));
        let report = self.report.lock().unwrap().clone();
        Box::pin(async move {
            Some(report.unwrap_or_else(|| RunReport {
                api: "orders-api".into(),
                stage: "prod".into(),
                decision: None,
                outcome: Outcome::NothingToDo,
            }))
        })
    }
    fn history(
        &self,
        index: usize,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<HistoryEntry>, String>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("history {index} {limit}"));
        Box::pin(async { Ok(Vec::new()) })
    }
    fn metrics(&self, index: usize, window: MetricsWindow) -> BoxFuture<'_, Option<StageMetrics>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("metrics {index} {}h", window.hours));
        Box::pin(async move { Some(StageMetrics::new("orders-api", "prod", &window)) })
    }
    fn edge_health(&self, index: usize) -> BoxFuture<'_, Result<StageHealth, EdgeUnavailable>> {
        self.calls.lock().unwrap().push(format!("edge {index}"));
        let answer = self.edge.lock().unwrap().clone();
        Box::pin(async move { answer.unwrap_or(Err(EdgeUnavailable::NotConfigured)) })
    }
}

fn request(text: &str) -> lambda_http::Request {
    lambda_http::request::from_str(text).unwrap()
}

fn with_header(
    mut req: lambda_http::Request,
    name: &'static str,
    value: &str,
) -> lambda_http::Request {
    req.headers_mut().insert(name, value.parse().unwrap());
    req
}

fn without_auth(mut req: lambda_http::Request) -> lambda_http::Request {
    req.headers_mut().remove("authorization");
    req.headers_mut().remove("x-api-key");
    req
}

fn body(r: &Response<Body>) -> Value {
    serde_json::from_slice(r.body().as_ref()).unwrap_or(Value::Null)
}

fn content_type(r: &Response<Body>) -> &str {
    r.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn hs256(claims: Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("1".into());
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
    )
    .unwrap()
}

#[tokio::test]
async fn function_url_pause_with_admin_api_key() {
    let fake = Fake::new();
    let req = request(fixture!("function-url-request.json"));
    let resp = http::handle(&fake, req, NOW_MS).await;
    assert_eq!(resp.status(), 200, "{:?}", body(&resp));
    // The operator's identity goes with the command.
    assert_eq!(fake.calls(), ["Pause 0 freeze for the sale by key:oncall"]);
}

/// A pause can end by itself (`"for": "2h"`); `for` on another command, or
/// a duration that does not parse, is a 400 that changes nothing.
#[tokio::test]
async fn pause_for_a_while() {
    let with_body = |text: &str| {
        let mut ev: Value = serde_json::from_str(fixture!("function-url-request.json")).unwrap();
        ev["body"] = text.into();
        request(&ev.to_string())
    };
    let fake = Fake::new();
    let resp = http::handle(&fake, with_body(r#"{"reason":"sale","for":"2h"}"#), NOW_MS).await;
    assert_eq!(resp.status(), 200, "{:?}", body(&resp));
    assert_eq!(
        fake.calls(),
        [format!(
            "Pause 0 sale by key:oncall until {}",
            NOW_MS + 7_200_000
        )]
    );
    for bad in [
        r#"{"reason":"x","for":"soon"}"#,
        r#"{"reason":"x","for":""}"#,
    ] {
        let fake = Fake::new();
        let resp = http::handle(&fake, with_body(bad), NOW_MS).await;
        assert_eq!(resp.status(), 400, "{bad}: {:?}", body(&resp));
        assert!(fake.calls().is_empty());
    }
}

#[tokio::test]
async fn api_key_without_admin_scope_is_forbidden() {
    let fake = Fake::new();
    let req = with_header(
        without_auth(request(fixture!("function-url-request.json"))),
        "x-api-key",
        READER_KEY,
    );
    let resp = http::handle(&fake, req, NOW_MS).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(content_type(&resp), "application/problem+json");
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn malformed_bearer_is_rejected_without_echo() {
    let fake = Fake::new();
    let req = request(fixture!("apigw-v1-request.json"));
    let resp = http::handle(&fake, req, NOW_MS).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    let text = String::from_utf8_lossy(resp.body().as_ref()).to_string();
    assert!(!text.contains("fixture-not-a-token"), "{text}");
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn missing_credentials_are_401() {
    let fake = Fake::new();
    let req = without_auth(request(fixture!("apigw-v2-request.json")));
    let resp = http::handle(&fake, req, NOW_MS).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(content_type(&resp), "application/problem+json");
}

#[tokio::test]
async fn two_authorization_headers_are_an_invalid_request() {
    let fake = Fake::new();
    let token = hs256(json!({
        "iss": "https://ops.example.com/", "aud": "tidegate-rollback", "sub": "alice",
        "scope": "tidegate:admin", "iat": NOW_MS / 1000 - 10, "exp": NOW_MS / 1000 + 300,
    }));
    let mut req = with_header(
        request(fixture!("apigw-v1-request.json")),
        "authorization",
        &format!("Bearer {token}"),
    );
    req.headers_mut()
        .append("authorization", format!("Bearer {token}").parse().unwrap());
    let resp = http::handle(&fake, req, NOW_MS).await;
    assert_eq!(resp.status(), 400, "{:?}", body(&resp));
    assert_eq!(
        body(&resp)["type"],
        "https://tidegate.dev/problems/invalid-request"
    );
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="invalid_request""#),
        "{challenge}"
    );
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn jwt_with_admin_scope_rolls_back_via_rest_api() {
    let fake = Fake::new();
    let token = hs256(json!({
        "iss": "https://ops.example.com/", "aud": "tidegate-rollback", "sub": "alice",
        "scope": "tidegate:admin", "iat": NOW_MS / 1000 - 10, "exp": NOW_MS / 1000 + 300,
    }));
    let req = with_header(
        request(fixture!("apigw-v1-request.json")),
        "authorization",
        &format!("Bearer {token}"),
    );
    let resp = http::handle(&fake, req, NOW_MS).await;
    assert_eq!(resp.status(), 200, "{:?}", body(&resp));
    assert_eq!(
        fake.calls(),
        ["Rollback 0 INC-42: checkout 5xx after deploy by jwt:https%3A//ops.example.com/:alice"]
    );

    // The same token without the scope: 403.
    let token = hs256(json!({
        "iss": "https://ops.example.com/", "aud": "tidegate-rollback", "sub": "alice",
        "iat": NOW_MS / 1000 - 10, "exp": NOW_MS / 1000 + 300,
    }));
    let req = with_header(
        request(fixture!("apigw-v1-request.json")),
        "authorization",
        &format!("Bearer {token}"),
    );
    assert_eq!(http::handle(&fake, req, NOW_MS).await.status(), 403);
}

#[tokio::test]
async fn get_stage_and_list_and_page() {
    let fake = Fake::new();
    let req = with_header(
        without_auth(request(fixture!("apigw-v2-request.json"))),
        "x-api-key",
        ADMIN_KEY,
    );
    let resp = http::handle(&fake, req, NOW_MS).await;
    assert_eq!(resp.status(), 200, "{:?}", body(&resp));
    assert_eq!(body(&resp)["stage"], "prod");
    assert_eq!(fake.calls(), ["show 0"]);

    for (path, ctype) in [
        ("/stages", "application/json"),
        ("/", "text/html; charset=utf-8"),
    ] {
        let mut req = lambda_http::http::Request::builder()
            .method("GET")
            .uri(path)
            .header("x-api-key", ADMIN_KEY)
            .body(Body::Empty)
            .unwrap();
        req = req.with_raw_http_path(path);
        let resp = http::handle(&fake, req, NOW_MS).await;
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(content_type(&resp), ctype, "{path}");
    }
}

#[tokio::test]
async fn routing_errors_are_problems() {
    let fake = Fake::new();
    let cases: [(&str, &str, &str, u16); 6] = [
        ("GET", "/nope", "", 404),
        ("DELETE", "/stages", "", 405),
        ("GET", "/stages/orders-api/prod/rollback", "", 405),
        ("POST", "/stages/orders-api/prod/explode", "", 404),
        (
            "POST",
            "/stages/other-api/prod/rollback",
            r#"{"reason":"x"}"#,
            404,
        ),
        (
            "POST",
            "/stages/orders-api/prod/rollback",
            r#"{"reason":"  "}"#,
            422,
        ),
    ];
    for (method, path, payload, status) in cases {
        let req = lambda_http::http::Request::builder()
            .method(method)
            .uri(path)
            .header("x-api-key", ADMIN_KEY)
            .body(Body::from(payload))
            .unwrap()
            .with_raw_http_path(path);
        let resp = http::handle(&fake, req, NOW_MS).await;
        assert_eq!(resp.status(), status, "{method} {path}");
        assert_eq!(
            content_type(&resp),
            "application/problem+json",
            "{method} {path}"
        );
    }
    let req = lambda_http::http::Request::builder()
        .method("POST")
        .uri("/stages/orders-api/prod/rollback")
        .header("x-api-key", ADMIN_KEY)
        .body(Body::from("not json"))
        .unwrap()
        .with_raw_http_path("/stages/orders-api/prod/rollback");
    assert_eq!(http::handle(&fake, req, NOW_MS).await.status(), 400);
    assert!(fake.calls().is_empty());
}

#[test]
fn non_http_events_pass_through() {
    for text in [
        fixture!("eventbridge-alarm-metric.json"),
        fixture!("sns-alarm-metric.json"),
        fixture!("scheduled-event.json"),
        fixture!("alarm-lambda-action.json"),
    ] {
        let req = request(text);
        assert!(
            matches!(req.request_context_ref(), Some(RequestContext::PassThrough)),
            "{text}"
        );
    }
    for text in [
        fixture!("apigw-v1-request.json"),
        fixture!("apigw-v2-request.json"),
        fixture!("function-url-request.json"),
    ] {
        let req = request(text);
        assert!(!matches!(
            req.request_context_ref(),
            Some(RequestContext::PassThrough)
        ));
    }
}

/// A pass-through invocation the Lambda cannot read is answered with why,
/// never run as if it were an empty event; no AWS client is needed for it.
#[tokio::test]
async fn unreadable_events_are_rejected_with_the_reason() {
    use tower::Service;
    let mut handler =
        tidegate_rollback::service::Handler::new(tidegate_rollback::App::new(settings()));
    let scheduled = request(fixture!("scheduled-event.json"));
    let not_json = scheduled.map(|_| Body::from("{not json"));
    let resp = handler.call(not_json).await.unwrap();
    assert_eq!(resp.status(), 200);
    let out = body(&resp);
    assert_eq!(out["status"], "rejected", "{out}");
    let error = out["error"].as_str().unwrap();
    assert!(error.starts_with("the event is not JSON: "), "{error}");

    let unknown = request(fixture!("scheduled-event.json")).map(|_| Body::from(r#"{"hello": 1}"#));
    let out = body(&handler.call(unknown).await.unwrap());
    assert_eq!(out["status"], "rejected", "{out}");
    assert!(!out["error"].as_str().unwrap().is_empty(), "{out}");
}

/// Settings whose only issuer fetches its keys from `jwks_url`.
fn settings_with_jwks_url(jwks_url: &str) -> Settings {
    let cfg = format!(
        r#"
[[issuers]]
name = "idp"
issuer = "https://idp.example.com/"
audiences = ["tidegate-rollback"]
algorithms = ["RS256"]
jwks_url = "{jwks_url}"
jwks_cache = {{ refetch_cooldown = "30s" }}

[[rollback.stages]]
rest_api_name = "orders-api"
stage = "prod"
stage_alarms = ["orders-api-prod-5xx-rate"]
"#
    );
    config::load(
        |k| match k {
            config::CONFIG_ENV => Some(cfg.clone()),
            config::STATE_TABLE_ENV => Some("tidegate-test".into()),
            _ => None,
        },
        |_| Err("no files".into()),
    )
    .unwrap()
}

fn list_with_bearer(token: &str) -> lambda_http::Request {
    lambda_http::http::Request::builder()
        .method("GET")
        .uri("/stages")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::Empty)
        .unwrap()
        .with_raw_http_path("/stages")
}

fn admin_claims() -> Value {
    json!({
        "iss": "https://idp.example.com/", "aud": "tidegate-rollback", "sub": "oncall",
        "scope": "tidegate:admin", "iat": NOW_MS / 1000 - 10, "exp": NOW_MS / 1000 + 600,
    })
}

#[tokio::test]
async fn jwt_from_a_jwks_url_issuer_is_fetched_once_and_cached() {
    let k1 = jwks_server::RsaSigner::new("k1");
    let server = jwks_server::JwksServer::start(&[&k1.jwk]).await;
    let fake = Fake::with(settings_with_jwks_url(&server.url()));
    let token = k1.sign(&admin_claims());

    let resp = http::handle(&fake, list_with_bearer(&token), NOW_MS).await;
    assert_eq!(resp.status(), 200, "{:?}", body(&resp));
    assert_eq!(server.hits(), 1);
    // The container keeps the set: no second fetch.
    let resp = http::handle(&fake, list_with_bearer(&token), NOW_MS + 1_000).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(server.hits(), 1);
    // Valid signature, but no admin scope: 403, still no fetch.
    let mut claims = admin_claims();
    claims["scope"] = "read".into();
    let resp = http::handle(&fake, list_with_bearer(&k1.sign(&claims)), NOW_MS + 2_000).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn unknown_kid_refetches_after_the_cooldown_only() {
    let k1 = jwks_server::RsaSigner::new("k1");
    let k2 = jwks_server::RsaSigner::new("k2");
    let server = jwks_server::JwksServer::start(&[&k1.jwk]).await;
    let fake = Fake::with(settings_with_jwks_url(&server.url()));
    let first = http::handle(&fake, list_with_bearer(&k1.sign(&admin_claims())), NOW_MS).await;
    assert_eq!(first.status(), 200);
    assert_eq!(server.hits(), 1);

    // The issuer rotates to k2. Within the cooldown a k2 token is refused
    // without a fetch, however many arrive.
    server.serve(&[&k1.jwk, &k2.jwk]);
    let k2_token = k2.sign(&admin_claims());
    for i in 0..3 {
        let resp = http::handle(&fake, list_with_bearer(&k2_token), NOW_MS + 1_000 + i).await;
        assert_eq!(resp.status(), 401, "{:?}", body(&resp));
        assert_eq!(content_type(&resp), "application/problem+json");
    }
    assert_eq!(server.hits(), 1);

    // After the cooldown the unknown kid triggers one refetch, which finds it.
    let later = NOW_MS + 31_000;
    let resp = http::handle(&fake, list_with_bearer(&k2_token), later).await;
    assert_eq!(resp.status(), 200, "{:?}", body(&resp));
    assert_eq!(server.hits(), 2);
    let resp = http::handle(&fake, list_with_bearer(&k2_token), later + 1).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(server.hits(), 2);

    // A kid the issuer does not have: one fetch after the cooldown, then
    // remembered as unknown (no fetch even after another cooldown).
    let stranger = jwks_server::RsaSigner::new("k9");
    let token = stranger.sign(&admin_claims());
    let at = later + 31_000;
    assert_eq!(
        http::handle(&fake, list_with_bearer(&token), at)
            .await
            .status(),
        401
    );
    assert_eq!(server.hits(), 3);
    assert_eq!(
        http::handle(&fake, list_with_bearer(&token), at + 31_000)
            .await
            .status(),
        401
    );
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn unreachable_jwks_url_is_503() {
    let k1 = jwks_server::RsaSigner::new("k1");
    // A port with nothing listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let fake = Fake::with(settings_with_jwks_url(&format!(
        "http://127.0.0.1:{closed}/jwks.json"
    )));
    let token = k1.sign(&admin_claims());
    let resp = http::handle(&fake, list_with_bearer(&token), NOW_MS).await;
    assert_eq!(resp.status(), 503, "{:?}", body(&resp));
    assert_eq!(content_type(&resp), "application/problem+json");
    assert!(fake.calls().is_empty());
}

fn post(path: &str, payload: &str) -> lambda_http::Request {
    lambda_http::http::Request::builder()
        .method("POST")
        .uri(path)
        .header("x-api-key", ADMIN_KEY)
        .body(Body::from(payload))
        .unwrap()
        .with_raw_http_path(path)
}

fn get(uri: &str, path: &str) -> lambda_http::Request {
    lambda_http::http::Request::builder()
        .method("GET")
        .uri(uri)
        .header("x-api-key", ADMIN_KEY)
        .body(Body::Empty)
        .unwrap()
        .with_raw_http_path(path)
}

/// Advance, approve and start reach the policy as operator commands with
/// the caller's identity; start carries its deployment and steps (numbers
/// and gates mixed, as in `canary_steps`).
#[tokio::test]
async fn advance_approve_and_start_are_commands() {
    let fake = Fake::new();
    for cmd in ["advance", "approve"] {
        let path = format!("/stages/orders-api/prod/{cmd}");
        let resp = http::handle(&fake, post(&path, r#"{"reason":"looks good"}"#), NOW_MS).await;
        assert_eq!(resp.status(), 200, "{cmd}: {:?}", body(&resp));
    }
    let resp = http::handle(
        &fake,
        post(
            "/stages/orders-api/prod/start",
            r#"{"deployment":"abc123","steps":[5,{"percent":50,"approve":true},100],"reason":"release 42"}"#,
        ),
        NOW_MS,
    )
    .await;
    assert_eq!(resp.status(), 200, "{:?}", body(&resp));
    let resp = http::handle(
        &fake,
        post(
            "/stages/orders-api/prod/start",
            r#"{"deployment":"abc123","reason":"release 43"}"#,
        ),
        NOW_MS,
    )
    .await;
    assert_eq!(resp.status(), 200, "{:?}", body(&resp));
    assert_eq!(
        fake.calls(),
        [
            "Advance 0 looks good by key:oncall".to_owned(),
            "Approve 0 looks good by key:oncall".to_owned(),
            "Start 0 release 42 by key:oncall start abc123 Some([CanaryStep { percent: 5.0, approve: false }, CanaryStep { percent: 50.0, approve: true }, CanaryStep { percent: 100.0, approve: false }])".to_owned(),
            "Start 0 release 43 by key:oncall start abc123 None".to_owned(),
        ]
    );
}

/// A start without a deployment, with steps that are no plan, or
/// `deployment` on another command is a 400 that reaches nothing.
#[tokio::test]
async fn bad_start_bodies_are_400() {
    for (cmd, payload, says) in [
        ("start", r#"{"reason":"x"}"#, "start needs `deployment`"),
        (
            "start",
            r#"{"reason":"x","deployment":" "}"#,
            "start needs `deployment`",
        ),
        (
            "start",
            r#"{"reason":"x","deployment":"d","steps":[50,10,100]}"#,
            "strictly increasing",
        ),
        (
            "start",
            r#"{"reason":"x","deployment":"d","steps":[10,50]}"#,
            "end at 100",
        ),
        (
            "start",
            r#"{"reason":"x","deployment":"d","steps":[0,100]}"#,
            "above 0",
        ),
        (
            "start",
            r#"{"reason":"x","deployment":"d","steps":["5"]}"#,
            "percentage",
        ),
        (
            "advance",
            r#"{"reason":"x","deployment":"d"}"#,
            "only taken by start",
        ),
        (
            "approve",
            r#"{"reason":"x","steps":[100]}"#,
            "only taken by start",
        ),
    ] {
        let fake = Fake::new();
        let path = format!("/stages/orders-api/prod/{cmd}");
        let resp = http::handle(&fake, post(&path, payload), NOW_MS).await;
        assert_eq!(resp.status(), 400, "{payload}");
        let detail = body(&resp)["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(detail.contains(says), "{payload}: {detail}");
        assert!(fake.calls().is_empty(), "{payload}");
    }
}

/// A command the stage's state refuses is a 409 (422 for a start of a
/// deployment that does not exist) naming the fix; other holds stay 200.
#[tokio::test]
async fn refused_commands_are_conflicts() {
    let report = |hold: Hold| {
        RunReport::with_action(
            "orders-api",
            "prod",
            Action::None { reason: hold },
            Outcome::NothingToDo,
        )
    };
    for (cmd, hold, status, slug) in [
        (
            "approve",
            Hold::NotAwaitingApproval,
            409,
            "not-awaiting-approval",
        ),
        (
            "advance",
            Hold::NoActiveCanaryToAdvance,
            409,
            "no-active-canary",
        ),
        (
            "advance",
            Hold::AwaitingApproval {
                deployment: "d2".into(),
                percent: 50.0,
            },
            409,
            "awaiting-approval",
        ),
        (
            "start",
            Hold::CanaryAlreadyActive {
                deployment: "d2".into(),
            },
            409,
            "canary-active",
        ),
        (
            "start",
            Hold::DeploymentMissing {
                deployment: "d9".into(),
            },
            422,
            "unknown-deployment",
        ),
        (
            "start",
            Hold::DeploymentUnverified {
                deployment: "d9".into(),
            },
            503,
            "deployment-unverified",
        ),
        ("advance", Hold::Paused { reason: "x".into() }, 200, ""),
        (
            "approve",
            Hold::Approved {
                deployment: "d2".into(),
                percent: 50.0,
            },
            200,
            "",
        ),
    ] {
        let fake = Fake::new();
        *fake.report.lock().unwrap() = Some(report(hold.clone()));
        let path = format!("/stages/orders-api/prod/{cmd}");
        let payload = if cmd == "start" {
            r#"{"reason":"x","deployment":"d9"}"#
        } else {
            r#"{"reason":"x"}"#
        };
        let resp = http::handle(&fake, post(&path, payload), NOW_MS).await;
        assert_eq!(resp.status(), status, "{cmd} {hold:?}");
        if status == 200 {
            // The report itself, as the command's answer.
            let b = body(&resp);
            assert_eq!(b["decision"]["action"]["type"], "none", "{b}");
            assert_eq!(
                b["decision"]["action"]["reason"],
                serde_json::to_value(&hold).unwrap(),
                "{b}"
            );
            assert_eq!(b["outcome"]["status"], "nothing_to_do", "{b}");
        } else {
            assert_eq!(content_type(&resp), "application/problem+json");
            let b = body(&resp);
            assert!(
                b["type"].as_str().unwrap_or_default().ends_with(slug),
                "{b}"
            );
        }
    }
}

/// `GET .../history?limit=N`: the entries, newest first, N from 1 to 100
/// (default 20); anything else is a 400.
#[tokio::test]
async fn history_route_and_limit() {
    let fake = Fake::new();
    let path = "/stages/orders-api/prod/history";
    let resp = http::handle(&fake, get(&format!("{path}?limit=5"), path), NOW_MS).await;
    assert_eq!(resp.status(), 200, "{:?}", body(&resp));
    assert_eq!(body(&resp), json!({"entries": []}));
    let resp = http::handle(&fake, get(path, path), NOW_MS).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(fake.calls(), ["history 0 5", "history 0 20"]);
    for bad in ["limit=0", "limit=101", "limit=x", "limit="] {
        let fake = Fake::new();
        let resp = http::handle(&fake, get(&format!("{path}?{bad}"), path), NOW_MS).await;
        assert_eq!(resp.status(), 400, "{bad}");
        assert!(fake.calls().is_empty());
    }
    let resp = http::handle(&fake, post(path, "{}"), NOW_MS).await;
    assert_eq!(resp.status(), 405);
    let other = "/stages/other-api/prod/history";
    assert_eq!(
        http::handle(&fake, get(other, other), NOW_MS)
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn edge_route_passes_the_figures_through() {
    let path = "/stages/orders-api/prod/edge";
    let fake = Fake::new();
    let resp = http::handle(&fake, get(path, path), NOW_MS).await;
    assert_eq!(resp.status(), 404, "{:?}", body(&resp));
    assert!(body(&resp)["detail"]
        .as_str()
        .unwrap()
        .contains("[rollback.edge] health_url"));
    let health: StageHealth = serde_json::from_str(
        r#"{"api": "orders-api", "stage": "prod", "at_ms": 1715680000000, "window_s": 60,
            "judgement": null, "last_signal": null}"#,
    )
    .unwrap();
    *fake.edge.lock().unwrap() = Some(Ok(health));
    let resp = http::handle(&fake, get(path, path), NOW_MS).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(body(&resp)["window_s"], 60);
    for (e, status) in [
        (EdgeUnavailable::Timeout, 504),
        (EdgeUnavailable::Unreachable("refused".into()), 502),
        (EdgeUnavailable::Refused(401), 502),
        (EdgeUnavailable::NotMonitored, 404),
        (EdgeUnavailable::NoKey, 404),
    ] {
        *fake.edge.lock().unwrap() = Some(Err(e.clone()));
        let resp = http::handle(&fake, get(path, path), NOW_MS).await;
        assert_eq!(resp.status(), status, "{e}");
        assert_eq!(body(&resp)["detail"], e.to_string());
    }
    assert_eq!(
        http::handle(&fake, post(path, "{}"), NOW_MS).await.status(),
        405
    );
    let other = "/stages/other-api/prod/edge";
    assert_eq!(
        http::handle(&fake, get(other, other), NOW_MS)
            .await
            .status(),
        404
    );
    // The stage page asks the edge too, and shows why it has nothing.
    *fake.edge.lock().unwrap() = Some(Err(EdgeUnavailable::Timeout));
    let page = "/ui/orders-api/prod";
    let resp = http::handle(&fake, get(page, page), NOW_MS).await;
    assert_eq!(resp.status(), 200);
    let html = text(&resp);
    assert!(html.contains("Live at the edge"), "{html}");
    assert!(html.contains("the edge did not answer within 2 s"));
}

#[test]
fn history_limits_parse() {
    assert_eq!(http::history_limit(None), Ok(20));
    assert_eq!(http::history_limit(Some("a=b&limit=7")), Ok(7));
    assert_eq!(http::history_limit(Some("limit=100")), Ok(100));
    assert!(http::history_limit(Some("limit=-1")).is_err());
}

// ---------------------------------------------------------------------------
// Dashboard, metrics and browser sessions.
// ---------------------------------------------------------------------------

const SESSION_SECRET: &str = "a session secret of at least 32 bytes!!";

fn session_settings() -> Settings {
    let mut s = settings();
    s.session_key =
        Some(tidegate_policy::session::SessionKey::new(SESSION_SECRET.as_bytes()).unwrap());
    s
}

/// A request as a browser sends it: no credential headers.
fn browser(
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> lambda_http::Request {
    let (path_only, query) = path.split_once('?').unwrap_or((path, ""));
    let mut b = lambda_http::http::Request::builder()
        .method(method)
        .uri(path)
        .header("accept", "text/html,application/xhtml+xml");
    if let Some(c) = cookie {
        b = b.header("cookie", format!("other=1; tidegate_session={c}"));
    }
    if form.is_some() {
        b = b.header("content-type", "application/x-www-form-urlencoded");
    }
    let body = form.map_or(Body::Empty, |f| Body::Text(f.to_owned()));
    let params: std::collections::HashMap<String, String> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    b.body(body)
        .unwrap()
        .with_raw_http_path(path_only)
        .with_query_string_parameters(params)
}

fn location(r: &Response<Body>) -> &str {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn text(r: &Response<Body>) -> String {
    String::from_utf8_lossy(r.body().as_ref()).into_owned()
}

/// Signs in with `credential`; the session token from the cookie.
async fn sign_in(fake: &Fake, credential: &str) -> String {
    let form = format!("credential={}", credential.replace('+', "%2B"));
    let resp = http::handle(fake, browser("POST", "/signin", None, Some(&form)), NOW_MS).await;
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    assert_eq!(location(&resp), "./");
    let cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    cookie
        .strip_prefix("tidegate_session=")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned()
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn metrics_route_is_typed_and_checks_hours() {
    let fake = Fake::new();
    let req = with_header(
        browser("GET", "/stages/orders-api/prod/metrics?hours=6", None, None),
        "x-api-key",
        ADMIN_KEY,
    );
    let resp = http::handle(&fake, req, NOW_MS).await;
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    assert_eq!(content_type(&resp), "application/json");
    assert_eq!(body(&resp)["hours"], 6);
    assert_eq!(body(&resp)["period_secs"], 300);
    assert_eq!(fake.calls(), ["metrics 0 6h"]);
    let req = with_header(
        browser(
            "GET",
            "/stages/orders-api/prod/metrics?hours=99",
            None,
            None,
        ),
        "x-api-key",
        ADMIN_KEY,
    );
    let resp = http::handle(&fake, req, NOW_MS).await;
    assert_eq!(resp.status(), 400);
    assert!(body(&resp)["detail"].as_str().unwrap().contains("hours"));
    let req = browser("GET", "/stages/orders-api/prod/metrics", None, None);
    assert_eq!(http::handle(&fake, req, NOW_MS).await.status(), 401);
}

#[tokio::test]
async fn browsers_are_sent_to_sign_in_which_says_when_it_is_off() {
    let fake = Fake::new();
    for path in ["/", "/ui/orders-api/prod"] {
        let resp = http::handle(&fake, browser("GET", path, None, None), NOW_MS).await;
        assert_eq!(resp.status(), 303, "{path}");
        let want = if path == "/" {
            "./signin"
        } else {
            "../../signin"
        };
        assert_eq!(location(&resp), want);
    }
    let resp = http::handle(&fake, browser("GET", "/signin", None, None), NOW_MS).await;
    assert_eq!(resp.status(), 200);
    assert!(text(&resp).contains("TIDEGATE_SESSION_SECRET is not set"));
    let resp = http::handle(
        &fake,
        browser("POST", "/signin", None, Some("credential=x")),
        NOW_MS,
    )
    .await;
    assert_eq!(resp.status(), 503);
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn sign_in_then_dashboard_then_a_command_with_csrf() {
    let fake = Fake::with(session_settings());
    let token = sign_in(&fake, ADMIN_KEY).await;
    let resp = http::handle(&fake, browser("GET", "/", Some(&token), None), NOW_MS).await;
    assert_eq!(resp.status(), 200);
    assert!(text(&resp).contains("Signed in as <code>key:oncall</code>"));
    let resp = http::handle(
        &fake,
        browser("GET", "/ui/orders-api/prod?hours=1", Some(&token), None),
        NOW_MS,
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let page = text(&resp);
    assert!(page.contains("action=\"../../stages/orders-api/prod/rollback\""));
    let csrf = csrf_of(&page);

    // Without the token, or with another session's: refused, nothing run.
    let form = "reason=bad+canary";
    let resp = http::handle(
        &fake,
        browser(
            "POST",
            "/stages/orders-api/prod/rollback",
            Some(&token),
            Some(form),
        ),
        NOW_MS,
    )
    .await;
    assert_eq!(resp.status(), 403);
    assert!(body(&resp)["detail"].as_str().unwrap().contains("CSRF"));
    let other = sign_in(&fake, ADMIN_KEY).await;
    let other_csrf = {
        let r = http::handle(&fake, browser("GET", "/", Some(&other), None), NOW_MS).await;
        csrf_of(&text(&r))
    };
    assert_ne!(other_csrf, csrf);
    let bad = format!("{form}&csrf={other_csrf}");
    let resp = http::handle(
        &fake,
        browser(
            "POST",
            "/stages/orders-api/prod/rollback",
            Some(&token),
            Some(&bad),
        ),
        NOW_MS,
    )
    .await;
    assert_eq!(resp.status(), 403);
    assert!(!fake.calls().iter().any(|c| c.starts_with("Rollback")));

    // With it: run as the identity that signed in, then back to the page.
    let good = format!("{form}&csrf={csrf}");
    let resp = http::handle(
        &fake,
        browser(
            "POST",
            "/stages/orders-api/prod/rollback",
            Some(&token),
            Some(&good),
        ),
        NOW_MS,
    )
    .await;
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    assert_eq!(
        location(&resp),
        "../../../ui/orders-api/prod?done=rollback&outcome=nothing_to_do"
    );
    assert!(fake
        .calls()
        .contains(&"Rollback 0 bad canary by key:oncall".to_owned()));
    let resp = http::handle(
        &fake,
        browser(
            "GET",
            "/ui/orders-api/prod?done=rollback&outcome=nothing_to_do",
            Some(&token),
            None,
        ),
        NOW_MS,
    )
    .await;
    assert!(text(&resp).contains("rollback: nothing to do"));

    // A script in the session sends the token as a header with JSON.
    let mut req = browser("POST", "/stages/orders-api/prod/resume", Some(&token), None);
    req.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    req.headers_mut()
        .insert("x-csrf-token", csrf.parse().unwrap());
    *req.body_mut() = Body::Text(r#"{"reason":"from a script"}"#.into());
    let resp = http::handle(&fake, req, NOW_MS).await;
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    assert!(fake
        .calls()
        .contains(&"Resume 0 from a script by key:oncall".to_owned()));

    // An empty reason is refused.
    let empty = format!("reason=&csrf={csrf}");
    let resp = http::handle(
        &fake,
        browser(
            "POST",
            "/stages/orders-api/prod/pause",
            Some(&token),
            Some(&empty),
        ),
        NOW_MS,
    )
    .await;
    assert_eq!(resp.status(), 422);

    // Sign-out needs the token too, and clears the cookie.
    let resp = http::handle(
        &fake,
        browser("POST", "/signout", Some(&token), Some("")),
        NOW_MS,
    )
    .await;
    assert_eq!(resp.status(), 403);
    let resp = http::handle(
        &fake,
        browser(
            "POST",
            "/signout",
            Some(&token),
            Some(&format!("csrf={csrf}")),
        ),
        NOW_MS,
    )
    .await;
    assert_eq!(resp.status(), 303);
    assert!(resp
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
}

#[tokio::test]
async fn expired_tampered_and_refused_sessions() {
    let fake = Fake::with(session_settings());
    // A key without the admin scope gets no session.
    let resp = http::handle(
        &fake,
        browser(
            "POST",
            "/signin",
            None,
            Some(&format!("credential={READER_KEY}")),
        ),
        NOW_MS,
    )
    .await;
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("set-cookie").is_none());
    assert!(text(&resp).contains("Sign-in refused"));
    // A JWT with the scope gets one, as its identity.
    let token = hs256(admin_claims_now());
    let session = sign_in(&fake, &token).await;
    let resp = http::handle(&fake, browser("GET", "/", Some(&session), None), NOW_MS).await;
    assert!(
        text(&resp).contains("jwt:https%3A//ops.example.com/:alice"),
        "{}",
        text(&resp)
    );
    // Expired: a JSON caller gets a problem saying so; a browser the sign-in page.
    let later = NOW_MS + http::SESSION_TTL_MS;
    let req = browser("GET", "/stages", Some(&session), None);
    let resp = http::handle(&fake, req, later).await;
    assert_eq!(resp.status(), 401);
    assert!(body(&resp)["detail"].as_str().unwrap().contains("expired"));
    let resp = http::handle(&fake, browser("GET", "/", Some(&session), None), later).await;
    assert_eq!(resp.status(), 303);
    // Tampered: a changed character in the claims.
    let mut chars: Vec<char> = session.chars().collect();
    chars[5] = if chars[5] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    let resp = http::handle(
        &fake,
        browser("GET", "/stages", Some(&tampered), None),
        NOW_MS,
    )
    .await;
    assert_eq!(resp.status(), 401);
    assert!(body(&resp)["detail"]
        .as_str()
        .unwrap()
        .contains("signature"));
    // Header credentials win over a cookie, and need no CSRF token.
    let req = with_header(
        browser(
            "POST",
            "/stages/orders-api/prod/pause",
            Some(&tampered),
            Some("reason=api"),
        ),
        "x-api-key",
        ADMIN_KEY,
    );
    let resp = http::handle(&fake, req, NOW_MS).await;
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    assert!(fake
        .calls()
        .contains(&"Pause 0 api by key:oncall".to_owned()));
}

fn admin_claims_now() -> Value {
    json!({
        "iss": "https://ops.example.com/", "aud": "tidegate-rollback", "sub": "alice",
        "scope": "tidegate:admin", "iat": NOW_MS / 1000 - 10, "exp": NOW_MS / 1000 + 300,
    })
}
