//! Control API routing and authentication, driven by the API Gateway /
//! Function URL request fixtures through `lambda_http`, over a fake
//! [`Control`] (no AWS).

use std::sync::Mutex;

use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt, Response};
use serde_json::{json, Value};
use tidegate_policy::auth::hash_key;
use tidegate_policy::rollout::ManualCommand;
use tidegate_rollback::config::{self, Settings};
use tidegate_rollback::http::{self, BoxFuture, Control};

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
            _ => None,
        },
        |_| Err("no files".into()),
    )
    .unwrap()
}

#[derive(Default)]
struct Fake {
    settings: Option<Settings>,
    calls: Mutex<Vec<String>>,
}

impl Fake {
    fn new() -> Self {
        Self {
            settings: Some(settings()),
            calls: Mutex::default(),
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
    fn list(&self) -> BoxFuture<'_, Value> {
        self.calls.lock().unwrap().push("list".into());
        Box::pin(async {
            json!({"stages": [{"api": "orders-api", "stage": "prod", "deployment_id": "d1"}]})
        })
    }
    fn show(&self, index: usize) -> BoxFuture<'_, Value> {
        self.calls.lock().unwrap().push(format!("show {index}"));
        Box::pin(async { json!({"api": "orders-api", "stage": "prod"}) })
    }
    fn command(
        &self,
        index: usize,
        command: ManualCommand,
        reason: String,
    ) -> BoxFuture<'_, Value> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("{command:?} {index} {reason}"));
        Box::pin(async { json!({"outcome": {"status": "nothing_to_do"}}) })
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
    assert_eq!(fake.calls(), ["Pause 0 freeze for the sale"]);
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
        ["Rollback 0 INC-42: checkout 5xx after deploy"]
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
