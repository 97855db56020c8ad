//! A fake control API and edge key admin API on 127.0.0.1, and a runner of
//! the `tidegate` binary against it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

/// The API key the fake accepts.
pub const KEY: &str = "tdg_test_admin";
/// The edge ADMIN_KEY the fake accepts.
pub const ADMIN: &str = "edge-admin";

/// One request the fake saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the fake answers.
#[derive(Default)]
pub struct State {
    /// Successive answers to GET of the stage; the last one stays.
    pub stage: VecDeque<Value>,
    pub seen: Vec<Seen>,
    /// Outcome status of commands.
    pub outcome: Option<Value>,
}

pub struct Fake {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
}

pub fn stage(deployment: &str, canary: Option<(&str, f64)>, step_index: Option<usize>) -> Value {
    let mut s = json!({
        "api": "orders-api", "stage": "prod", "dry_run": false, "rest_api_id": "abc123",
        "deployment_id": deployment,
        "alarms": {"orders-5xx": {"state": "OK", "since_ms": 1_700_000_000_000u64, "suppressed": false}},
        "canary_metrics": {"not_read": null},
        "known_good": {"deployment_id": "d1", "at_ms": 1_700_000_000_000u64},
        "steps": [{"percent": 5.0, "approve": false}, {"percent": 25.0, "approve": false},
                  {"percent": 50.0, "approve": true}, {"percent": 100.0, "approve": false}],
        "step_index": step_index,
        "awaiting_approval": false,
        "recent_actions": [history_entry()],
    });
    if let Some((d, p)) = canary {
        s["canary"] =
            json!({"deployment_id": d, "percent_traffic": p, "stage_variable_overrides": {}});
    }
    s
}

pub fn history_entry() -> Value {
    json!({"at_ms": 1_700_000_100_000u64, "what": "pause", "who": "key:ops", "why": "operator pause: freeze",
           "trigger": {"type": "manual", "command": "pause", "reason": "freeze", "operator": "key:ops"}, "action": {"kind": "none"},
           "outcome": {"status": "applied", "steps": 0}, "deployment_id": "d1", "dry_run": false,
           "future_member": true})
}

fn problem(status: u16, slug: &str, title: &str, detail: &str) -> (u16, Value) {
    (
        status,
        json!({"type": format!("https://tidegate.dev/problems/{slug}"), "title": title, "status": status, "detail": detail}),
    )
}

impl Fake {
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        state
            .lock()
            .unwrap()
            .stage
            .push_back(stage("d2", Some(("d3", 25.0)), Some(1)));
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    let state = Arc::clone(&shared);
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| {
                            let state = Arc::clone(&state);
                            async move { Ok::<_, Infallible>(answer(&state, req).await) }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
        });
        let addr = rx.recv().unwrap();
        Self { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.with(|s| s.seen.clone())
    }

    /// Runs `tidegate` with `args`, the fake's URL and API key.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut all = vec![
            "--url".to_owned(),
            self.url(),
            "--api-key".into(),
            KEY.into(),
        ];
        all.extend(args.iter().map(|s| (*s).to_owned()));
        tidegate(&all, &[])
    }
}

/// `tidegate args` with a clean environment plus `env`.
pub fn tidegate(args: &[String], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidegate"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

async fn answer(state: &Mutex<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or("/".into(), |p| p.to_string()),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let (status, value) = route(state, &seen);
    state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .seen
        .push(seen);
    let mut r = Response::new(Full::new(Bytes::from(
        serde_json::to_vec_pretty(&value).unwrap(),
    )));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    let ct = if status >= 400 {
        "application/problem+json"
    } else {
        "application/json"
    };
    r.headers_mut().insert("content-type", ct.parse().unwrap());
    r
}

fn route(state: &Mutex<State>, seen: &Seen) -> (u16, Value) {
    let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
    let (path, query) = seen.path.split_once('?').unwrap_or((&seen.path, ""));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.first() == Some(&"__tidegate") {
        if seen.header("authorization") != Some(&format!("Bearer {ADMIN}")) {
            return problem(401, "unauthorized", "Unauthorized", "send the admin key");
        }
        let summary = json!({"id": "key_0011223344556677aabb", "consumer": "acme", "created_at": 1_700_000_000u64,
                             "hash_prefix": "9a1c04d2", "status": "active"});
        return match (seen.method.as_str(), &segments[1..]) {
            ("POST", ["keys"]) => {
                let mut v = summary;
                v["key"] = json!("tdg_fromtheedge");
                v["scopes"] = json!(["orders:read"]);
                (201, v)
            }
            ("GET", ["keys"]) => (
                200,
                json!({"consumer": "acme", "keys": [summary], "list_complete": true}),
            ),
            ("POST", ["keys", id, "rotate"]) if *id == "key_0011223344556677aabb" => {
                let mut v = summary.clone();
                v["key"] = json!("tdg_rotated");
                v["id"] = json!("key_ffeeddccbbaa99887766");
                v["replaces"] = summary;
                (201, v)
            }
            ("POST", ["keys", id, "revoke"]) if *id == "key_0011223344556677aabb" => {
                let mut v = summary;
                v["status"] = json!("revoked");
                v["effective_within_seconds"] = json!(90);
                (200, v)
            }
            ("POST", ["keys", id, _]) => problem(
                404,
                "key-not-found",
                "No such key",
                &format!("no key has id `{id}`"),
            ),
            _ => problem(404, "not-found", "Not found", "no such path"),
        };
    }
    if seen.header("x-api-key") != Some(KEY)
        && !seen
            .header("authorization")
            .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 "))
    {
        return problem(
            401,
            "missing-credentials",
            "Unauthorized",
            "send an API key",
        );
    }
    let current = st.stage.front().cloned().unwrap_or(Value::Null);
    match (seen.method.as_str(), segments.as_slice()) {
        ("GET", ["stages"]) => (200, json!({"stages": [current]})),
        ("GET", ["stages", "orders-api", "prod"]) => {
            if st.stage.len() > 1 {
                st.stage.pop_front();
            }
            (200, current)
        }
        ("GET", ["stages", "orders-api", "prod", "history"]) => {
            assert!(query.starts_with("limit="), "{query}");
            (200, json!({"entries": [history_entry()]}))
        }
        ("GET", ["stages", api, stage, ..]) | ("POST", ["stages", api, stage, ..])
            if (*api, *stage) != ("orders-api", "prod") =>
        {
            problem(
                404,
                "unknown-stage",
                "Not a managed stage",
                &format!("{api}/{stage} is not in the [[rollback.stages]] of the configuration"),
            )
        }
        ("POST", ["stages", _, _, cmd]) => {
            let body: Value = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
            if body["reason"].as_str().is_none_or(|r| r.trim().is_empty()) {
                return problem(
                    422,
                    "reason-required",
                    "A reason is required",
                    "send a reason",
                );
            }
            if *cmd == "approve" && !current["awaiting_approval"].as_bool().unwrap_or(false) {
                return problem(
                    409,
                    "not-awaiting-approval",
                    "Nothing to approve",
                    "the canary is not waiting at an approval gate",
                );
            }
            let outcome = st
                .outcome
                .clone()
                .unwrap_or(json!({"status": "applied", "steps": 1}));
            (
                200,
                json!({"api": "orders-api", "stage": "prod",
                         "decision": {"audit": {"summary": format!("operator {cmd}: {}", body["reason"].as_str().unwrap_or_default())}},
                         "outcome": outcome}),
            )
        }
        _ => problem(404, "not-found", "Not found", "no such path"),
    }
}
