//! Faults during a rollback, against a real LocalStack: a small HTTP proxy
//! (in this file) sits between the Lambda's AWS SDK clients and LocalStack
//! and, per REST API, answers `UpdateStage` with throttling or 5xx, stops
//! listening (LocalStack gone mid-scenario), or forwards the patch and then
//! holds or drops the answer (the Lambda timing out mid-action). Alarm
//! events are also delivered twice, late and out of order.
//!
//! What must hold: retries happen; exactly one patch takes effect; a
//! failure leaves the stage as it was and the next invocation converges; a
//! re-invocation after a cut-off action does nothing more and the action's
//! record (`tidegate_history`, written in the same `UpdateStage` as the
//! action) is there.
//!
//! The Lambda's clients reach LocalStack only through the proxy (the test
//! sets `AWS_ENDPOINT_URL` to it once); the fixtures' own clients talk to
//! LocalStack directly. Runs only when `TIDEGATE_LOCALSTACK_TESTS=1` (stage
//! `rollback-localstack`); the tests take a lock and run one at a time, as
//! the endpoint is process-wide.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_sdk_apigateway::types::{Op, PatchOperation};
use aws_sdk_cloudwatch::types::StateValue;
use lambda_http::RequestExt;
use serde_json::Value;
use tidegate_policy::rollout::events::parse_time;
use tower::Service;

mod common;
use common::{action_type, enabled, invoke, invoke_request, RestApi, SCHEDULE, SNS};

/// One test at a time: the Lambda's endpoint is process-wide.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// --- the fault-injecting proxy ------------------------------------------------

/// What the proxy does with one `UpdateStage` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Forwarded as is (to fault a later call of a plan).
    Pass,
    /// 429 `TooManyRequestsException`, not forwarded.
    Throttle,
    /// 503 `ServiceUnavailableException`, not forwarded.
    Unavailable,
    /// Closes the connection unanswered, not forwarded, and stops listening
    /// until [`Proxy::recover`]: LocalStack went away.
    GoDown,
    /// Forwarded, then the answer is held this long before it is relayed
    /// (the caller has usually given up by then).
    HoldAnswer(Duration),
    /// Forwarded, then the connection is closed without the answer.
    DropAnswer,
}

/// Per REST API: faults still to inject and what was seen.
#[derive(Debug, Default)]
struct ApiPlan {
    faults: VecDeque<Fault>,
    /// `UpdateStage` calls received.
    update_calls: usize,
    /// `UpdateStage` calls that reached LocalStack.
    update_forwarded: usize,
}

#[derive(Debug, Default)]
struct State {
    apis: HashMap<String, ApiPlan>,
    down: bool,
}

struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    state: Mutex<State>,
    wake: tokio::sync::Notify,
}

impl Proxy {
    fn plan(&self, api_id: &str, faults: &[Fault]) {
        let mut s = self.state.lock().unwrap();
        s.apis
            .entry(api_id.to_owned())
            .or_default()
            .faults
            .extend(faults);
    }

    /// (`UpdateStage` calls received, forwarded) for `api_id`.
    fn updates(&self, api_id: &str) -> (usize, usize) {
        let s = self.state.lock().unwrap();
        s.apis
            .get(api_id)
            .map_or((0, 0), |p| (p.update_calls, p.update_forwarded))
    }

    fn is_down(&self) -> bool {
        self.state.lock().unwrap().down
    }

    fn recover(&self) {
        self.state.lock().unwrap().down = false;
    }

    /// The fault for this request, if it is an `UpdateStage` (REST:
    /// `PATCH /restapis/{id}/stages/{name}`); counts it.
    fn fault_for(&self, method: &str, path: &str) -> (Option<String>, Option<Fault>) {
        let api = path
            .strip_prefix("/restapis/")
            .and_then(|rest| rest.split_once("/stages/"))
            .map(|(id, _)| id.to_owned());
        let Some(api) = api.filter(|_| method == "PATCH") else {
            return (None, None);
        };
        let mut s = self.state.lock().unwrap();
        let plan = s.apis.entry(api.clone()).or_default();
        plan.update_calls += 1;
        let fault = plan.faults.pop_front();
        if fault == Some(Fault::GoDown) {
            s.down = true;
        }
        (Some(api), fault)
    }

    fn forwarded(&self, api: &str) {
        let mut s = self.state.lock().unwrap();
        s.apis.entry(api.to_owned()).or_default().update_forwarded += 1;
    }
}

/// The proxy, started once on its own thread and runtime (each test has a
/// runtime of its own), with the real endpoint it forwards to.
fn proxy() -> &'static Arc<Proxy> {
    static PROXY: OnceLock<Arc<Proxy>> = OnceLock::new();
    PROXY.get_or_init(|| {
        let real = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (LocalStack)");
        let upstream: SocketAddr = real
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("AWS_ENDPOINT_URL must be http://IP:PORT");
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        drop(std_listener);
        let p = Arc::new(Proxy {
            addr,
            upstream,
            state: Mutex::new(State::default()),
            wake: tokio::sync::Notify::new(),
        });
        let run = p.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(serve(run));
        });
        // Every client the Lambda builds from now on goes through the proxy;
        // the fixtures keep the real endpoint (REAL_ENDPOINT).
        REAL_ENDPOINT.set(real).unwrap();
        std::env::set_var("AWS_ENDPOINT_URL", format!("http://{addr}"));
        p
    })
}

static REAL_ENDPOINT: OnceLock<String> = OnceLock::new();

/// Accepts while up; while down the port is closed (connections refused).
async fn serve(p: Arc<Proxy>) {
    loop {
        let listener = loop {
            match tokio::net::TcpListener::bind(p.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        loop {
            tokio::select! {
                conn = listener.accept() => {
                    if let Ok((conn, _)) = conn {
                        tokio::spawn(handle(p.clone(), conn));
                    }
                }
                _ = p.wake.notified() => {
                    if p.is_down() {
                        break;
                    }
                }
            }
        }
        drop(listener);
        while p.is_down() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One request per connection, answered with `Connection: close`.
async fn handle(p: Arc<Proxy>, mut client: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let Some(req) = read_message(&mut client, true).await else {
        return;
    };
    let (method, path) = {
        let mut words = req.start.split(' ');
        (
            words.next().unwrap_or("").to_owned(),
            words.next().unwrap_or("").to_owned(),
        )
    };
    let (api, fault) = p.fault_for(&method, &path);
    let refuse = |status: &str, code: &str| {
        let body = format!(r#"{{"message":"injected by the test proxy: {code}"}}"#);
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nx-amzn-errortype: {code}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    match fault {
        Some(Fault::Throttle) => {
            let _ = client
                .write_all(refuse("429 Too Many Requests", "TooManyRequestsException").as_bytes())
                .await;
            return;
        }
        Some(Fault::Unavailable) => {
            let _ = client
                .write_all(
                    refuse("503 Service Unavailable", "ServiceUnavailableException").as_bytes(),
                )
                .await;
            return;
        }
        Some(Fault::GoDown) => {
            p.wake.notify_one();
            return;
        }
        _ => {}
    }
    let Some(resp) = forward(p.upstream, &req).await else {
        return;
    };
    if let Some(api) = &api {
        p.forwarded(api);
    }
    match fault {
        Some(Fault::DropAnswer) => return,
        Some(Fault::HoldAnswer(d)) => tokio::time::sleep(d).await,
        _ => {}
    }
    let _ = client.write_all(&resp.encode()).await;
    let _ = client.shutdown().await;
}

/// Sends `req` to LocalStack on a fresh connection and reads the answer.
async fn forward(upstream: SocketAddr, req: &Message) -> Option<Message> {
    use tokio::io::AsyncWriteExt;
    let mut up = tokio::net::TcpStream::connect(upstream).await.ok()?;
    up.write_all(&req.encode()).await.ok()?;
    read_message(&mut up, false).await
}

/// An HTTP/1.1 message: start line, headers (without `Connection`), body.
struct Message {
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    /// Serialised with a `Content-Length` body and `Connection: close`.
    fn encode(&self) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.start);
        for (n, v) in &self.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str(&format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Reads one message; a chunked body is de-chunked. A response without a
/// length is read to EOF.
async fn read_message(s: &mut tokio::net::TcpStream, request: bool) -> Option<Message> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut rest = buf[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let start = lines.next()?.to_owned();
    let mut headers = Vec::new();
    let (mut length, mut chunked) = (None, false);
    for line in lines {
        let (n, v) = line.split_once(':')?;
        let (n, v) = (n.trim(), v.trim());
        match n.to_ascii_lowercase().as_str() {
            "content-length" => length = v.parse::<usize>().ok(),
            "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
            "connection" | "keep-alive" => {}
            _ => headers.push((n.to_owned(), v.to_owned())),
        }
    }
    let body = if chunked {
        loop {
            if let Some(body) = dechunk(&rest) {
                break body;
            }
            let mut chunk = [0u8; 8192];
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            rest.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = length {
        while rest.len() < len {
            let mut chunk = [0u8; 8192];
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(len);
        rest
    } else if request {
        Vec::new()
    } else {
        s.read_to_end(&mut rest).await.ok()?;
        rest
    };
    Some(Message {
        start,
        headers,
        body,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The body of a complete chunked encoding, `None` while incomplete.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(raw, b"\r\n")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return find(raw, b"\r\n").map(|_| body);
        }
        if raw.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

// --- fixture: a REST API on LocalStack -----------------------------------------

type Fixture = RestApi;

impl RestApi {
    /// A REST API (`tg-fault-…`) with a canary at 10 % if `with_canary`.
    /// Its clients talk to LocalStack directly, not through the proxy.
    async fn new(with_canary: bool) -> Self {
        let real = REAL_ENDPOINT.get().expect("proxy() first").clone();
        Self::create(Some(&real), "tg-fault", with_canary.then_some(10.0)).await
    }

    /// The same transition as an SNS notification.
    fn sns(&self, alarm: &str, state: &str, at: &str) -> String {
        let mut ev: Value = serde_json::from_str(SNS).unwrap();
        let mut msg: Value =
            serde_json::from_str(ev["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
        msg["AlarmName"] = alarm.into();
        msg["NewStateValue"] = state.into();
        msg["StateChangeTime"] = at.into();
        ev["Records"][0]["Sns"]["Message"] = msg.to_string().into();
        ev.to_string()
    }

    async fn canary_percent(&self) -> Option<f64> {
        self.stage()
            .await
            .canary_settings()
            .map(|c| c.percent_traffic())
    }

    async fn history(&self) -> String {
        self.stage()
            .await
            .variables()
            .and_then(|v| v.get("tidegate_history").cloned())
            .unwrap_or_default()
    }

    /// Records d1 as known-good (two schedule ticks a bake time apart),
    /// then puts a new deployment live: the state a stage rollback needs.
    async fn new_deployment_after_known_good<S>(&self, svc: &mut S) -> String
    where
        S: Service<
            lambda_http::Request,
            Response = lambda_http::Response<lambda_http::Body>,
            Error = std::convert::Infallible,
        >,
    {
        invoke(svc, SCHEDULE).await;
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let second = invoke(svc, SCHEDULE).await;
        assert_eq!(action_type(&second), "record_known_good", "{second}");
        // Without `stage_name`, then moved: LocalStack's CreateDeployment on
        // an existing stage drops its variables (see tests/localstack.rs).
        let d2 = self
            .apigw
            .create_deployment()
            .rest_api_id(&self.api_id)
            .send()
            .await
            .unwrap()
            .id()
            .unwrap()
            .to_owned();
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

/// `UpdateStage` calls the decision's plan has (one per step).
fn plan_steps(out: &Value) -> usize {
    out["stages"][0]["decision"]["plan"]
        .as_array()
        .map_or(0, Vec::len)
}

fn outcome(out: &Value) -> String {
    out["stages"][0]["outcome"]["status"]
        .as_str()
        .unwrap_or("?")
        .to_owned()
}

// --- the tests -------------------------------------------------------------------

/// Throttling and 5xx on `UpdateStage`: the SDK retries, and the patch takes
/// effect once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_and_5xx_update_is_retried_and_applied_once() {
    if !enabled() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let p = proxy();
    let f = Fixture::new(true).await;
    let mut svc = f.handler("");
    let at = f.set_alarm(&f.canary_alarm, StateValue::Alarm).await;
    let event = f.eventbridge(&f.canary_alarm, "ALARM", &at);
    p.plan(
        &f.api_id,
        &[Fault::Throttle, Fault::Unavailable, Fault::Throttle],
    );

    let out = invoke(&mut svc, &event).await;
    assert_eq!(action_type(&out), "remove_canary", "{out}");
    assert_eq!(outcome(&out), "applied", "{out}");
    // Two steps (traffic to 0 % with the bookkeeping, then the canary
    // settings removed); the first was refused three times.
    let steps = plan_steps(&out);
    assert_eq!(p.updates(&f.api_id), (3 + steps, steps));
    assert_eq!(f.canary_percent().await, None);
    assert_eq!(f.history().await.matches("remove_canary").count(), 1);

    let again = invoke(&mut svc, &event).await;
    assert_eq!(action_type(&again), "none:duplicate", "{again}");
    assert_eq!(
        p.updates(&f.api_id),
        (3 + steps, steps),
        "nothing sent again"
    );
    eprintln!(
        "throttle/5xx: {} UpdateStage calls for a {steps}-step plan, {steps} reached LocalStack, 1 history entry",
        3 + steps
    );
}

/// 5xx on every attempt: a clear failure, nothing changed (no bookkeeping
/// either, so the transition is not marked handled), and the next
/// invocation of the same event converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_5xx_fails_cleanly_and_the_next_invocation_converges() {
    if !enabled() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let p = proxy();
    let f = Fixture::new(true).await;
    let mut svc = f.handler("");
    let at = f.set_alarm(&f.canary_alarm, StateValue::Alarm).await;
    let event = f.eventbridge(&f.canary_alarm, "ALARM", &at);
    let attempts = tidegate_rollback::retry::MAX_ATTEMPTS as usize;
    p.plan(&f.api_id, &vec![Fault::Unavailable; attempts]);

    let out = invoke(&mut svc, &event).await;
    assert_eq!(outcome(&out), "failed", "{out}");
    let error = out["stages"][0]["outcome"]["error"].as_str().unwrap_or("");
    assert!(
        error.contains("UpdateStage") && error.contains("ServiceUnavailable"),
        "{error}"
    );
    assert_eq!(p.updates(&f.api_id), (attempts, 0));
    assert_eq!(f.canary_percent().await, Some(10.0), "no partial action");
    assert!(f.history().await.is_empty());

    let retry = invoke(&mut svc, &event).await;
    assert_eq!(action_type(&retry), "remove_canary", "{retry}");
    assert_eq!(outcome(&retry), "applied", "{retry}");
    let steps = plan_steps(&retry);
    assert_eq!(p.updates(&f.api_id), (attempts + steps, steps));
    assert_eq!(f.canary_percent().await, None);
    assert_eq!(f.history().await.matches("remove_canary").count(), 1);
    eprintln!("persistent 5xx: failed after {attempts} attempts: {error}");
}

/// LocalStack goes away while the rollback is being sent (the proxy drops
/// the `UpdateStage` and refuses connections until it recovers): clear
/// errors, no partial action, and after recovery the next invocation acts
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localstack_gone_mid_rollback_then_back() {
    if !enabled() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let p = proxy();
    let f = Fixture::new(true).await;
    let mut svc = f.handler("");
    let at = f.set_alarm(&f.canary_alarm, StateValue::Alarm).await;
    let event = f.eventbridge(&f.canary_alarm, "ALARM", &at);
    p.plan(&f.api_id, &[Fault::GoDown]);

    let out = invoke(&mut svc, &event).await;
    assert!(p.is_down());
    assert_eq!(action_type(&out), "remove_canary", "{out}");
    assert_eq!(outcome(&out), "failed", "{out}");
    let error = out["stages"][0]["outcome"]["error"].as_str().unwrap_or("");
    assert!(error.contains("UpdateStage"), "{error}");
    // While it is gone, the stage cannot even be read: also a clear failure.
    let blind = invoke(&mut svc, &event).await;
    assert_eq!(outcome(&blind), "failed", "{blind}");
    let read_error = blind["stages"][0]["outcome"]["error"]
        .as_str()
        .unwrap_or("");
    assert!(read_error.contains("GetRestApi"), "{read_error}");
    assert_eq!(p.updates(&f.api_id), (1, 0), "no retry reached LocalStack");
    assert_eq!(f.canary_percent().await, Some(10.0), "no partial action");
    assert!(f.history().await.is_empty());

    p.recover();
    let back = invoke(&mut svc, &event).await;
    assert_eq!(action_type(&back), "remove_canary", "{back}");
    assert_eq!(outcome(&back), "applied", "{back}");
    let steps = plan_steps(&back);
    assert_eq!(p.updates(&f.api_id), (1 + steps, steps));
    assert_eq!(f.canary_percent().await, None);
    assert_eq!(f.history().await.matches("remove_canary").count(), 1);
    eprintln!("LocalStack gone: UpdateStage error: {error}; read error: {read_error}");
}

/// Alarm events twice (EventBridge and SNS), late and out of order: a stale
/// ALARM older than the alarm's current OK does nothing, an old OK after the
/// action undoes nothing, and one transition acts once whatever the path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_and_out_of_order_alarm_events() {
    if !enabled() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let p = proxy();
    let f = Fixture::new(true).await;
    let mut svc = f.handler("");
    let a = f.canary_alarm.clone();

    // ALARM at t1, then OK at t2 > t1; the events arrive newest first.
    let t1 = f.set_alarm(&a, StateValue::Alarm).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t2 = f.set_alarm(&a, StateValue::Ok).await;
    assert!(parse_time(&t2) > parse_time(&t1), "{t1} {t2}");
    let ok_t2 = invoke(&mut svc, &f.eventbridge(&a, "OK", &t2)).await;
    assert!(action_type(&ok_t2).starts_with("none:"), "{ok_t2}");
    let stale_alarm = invoke(&mut svc, &f.eventbridge(&a, "ALARM", &t1)).await;
    assert!(
        action_type(&stale_alarm).starts_with("none:"),
        "a stale ALARM (older than the current OK) must not act: {stale_alarm}"
    );
    assert_eq!(f.canary_percent().await, Some(10.0));

    // A real ALARM at t3: via SNS first, then the same transition via
    // EventBridge, twice.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t3 = f.set_alarm(&a, StateValue::Alarm).await;
    let via_sns = invoke(&mut svc, &f.sns(&a, "ALARM", &t3)).await;
    assert_eq!(action_type(&via_sns), "remove_canary", "{via_sns}");
    for _ in 0..2 {
        let dup = invoke(&mut svc, &f.eventbridge(&a, "ALARM", &t3)).await;
        assert_eq!(action_type(&dup), "none:duplicate", "{dup}");
    }
    // Late arrivals of the older transitions change nothing.
    for (state, at) in [("OK", &t2), ("ALARM", &t1)] {
        let late = invoke(&mut svc, &f.eventbridge(&a, state, at)).await;
        assert!(action_type(&late).starts_with("none:"), "{late}");
    }
    let after = f.stage().await;
    assert!(after.canary_settings().is_none());
    assert_eq!(after.deployment_id(), Some(f.d1.as_str()));
    assert_eq!(f.history().await.matches("remove_canary").count(), 1);
    let (_, forwarded) = p.updates(&f.api_id);
    eprintln!("out of order: 7 events, {forwarded} UpdateStage calls, 1 action");
}

/// The Lambda runs out of time after LocalStack applied the rollback but
/// before the answer came back; re-invoked with the same event, it sees the
/// stage already rolled back and does nothing more. The record of the
/// action is in `tidegate_history`, written by the same `UpdateStage`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_mid_rollback_then_reinvoked_acts_once() {
    if !enabled() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let p = proxy();
    let f = Fixture::new(false).await;
    let mut svc = f.handler("");
    let d2 = f.new_deployment_after_known_good(&mut svc).await;
    let at = f.set_alarm(&f.stage_alarm, StateValue::Alarm).await;
    let event = f.eventbridge(&f.stage_alarm, "ALARM", &at);
    let (calls_before, forwarded_before) = p.updates(&f.api_id);
    // Budget 2.5 s (deadline in 3 s, less the 0.5 s margin); the answer to
    // the rollback's UpdateStage is held 2.9 s, under the SDK's 3 s attempt
    // timeout, so it is the invocation's deadline that cuts it off.
    p.plan(
        &f.api_id,
        &[Fault::HoldAnswer(Duration::from_millis(2_900))],
    );
    let mut ctx = lambda_http::Context::default();
    ctx.deadline = tidegate_rollback::retry::now_ms() + 3_000;
    let req = lambda_http::request::from_str(&event)
        .unwrap()
        .with_lambda_context(ctx);

    let cut = invoke_request(&mut svc, req).await;
    assert_eq!(cut["status"], 504, "{cut}");
    assert_eq!(
        p.updates(&f.api_id),
        (calls_before + 1, forwarded_before + 1)
    );
    let rolled = f.stage().await;
    assert_eq!(rolled.deployment_id(), Some(f.d1.as_str()), "applied");
    assert_eq!(f.history().await.matches("rollback_stage").count(), 1);

    let again = invoke(&mut svc, &event).await;
    assert_eq!(action_type(&again), "none:duplicate", "{again}");
    assert_eq!(p.updates(&f.api_id).1, forwarded_before + 1, "nothing sent");
    // The scheduled check afterwards does not roll back again either.
    let sched = invoke(&mut svc, SCHEDULE).await;
    assert_ne!(action_type(&sched), "rollback_stage", "{sched}");
    assert_eq!(f.stage().await.deployment_id(), Some(f.d1.as_str()));
    let history = f.history().await;
    assert_eq!(history.matches("rollback_stage").count(), 1, "{history}");
    assert!(
        history.contains(&format!("rollback_stage:{}", f.d1)) || history.contains(&d2),
        "{history}"
    );
    eprintln!(
        "timeout mid-rollback: 504, stage on d1, then {}; history: {history}",
        action_type(&sched)
    );
}

/// The answer to an applied `UpdateStage` is lost on the wire: the SDK sends
/// the same patch again. The patch is idempotent (replaces, and removes of
/// what is gone), so the stage and its record end as after one action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answer_is_resent_and_stays_one_action() {
    if !enabled() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let p = proxy();
    let f = Fixture::new(true).await;
    let mut svc = f.handler("");
    let at = f.set_alarm(&f.canary_alarm, StateValue::Alarm).await;
    let event = f.eventbridge(&f.canary_alarm, "ALARM", &at);
    p.plan(&f.api_id, &[Fault::DropAnswer]);

    let out = invoke(&mut svc, &event).await;
    let (calls, forwarded) = p.updates(&f.api_id);
    eprintln!(
        "lost answer: outcome {} after {calls} UpdateStage calls ({forwarded} forwarded)",
        outcome(&out)
    );
    assert_eq!(outcome(&out), "applied", "{out}");
    let steps = plan_steps(&out);
    assert_eq!(
        (calls, forwarded),
        (steps + 1, steps + 1),
        "step 1 sent twice"
    );
    assert_eq!(f.canary_percent().await, None);
    assert_eq!(f.stage().await.deployment_id(), Some(f.d1.as_str()));
    assert_eq!(f.history().await.matches("remove_canary").count(), 1);
    let again = invoke(&mut svc, &event).await;
    assert_eq!(action_type(&again), "none:duplicate", "{again}");
}

/// LocalStack goes away between the two steps of a canary removal: the
/// first (traffic to 0 %, with the bookkeeping and history) is applied, the
/// second (remove the canary settings) fails. The rollback has taken effect
/// (no canary traffic) and is recorded once; the redelivered event is a
/// duplicate, and the next scheduled check clears the leftover settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localstack_gone_between_plan_steps() {
    if !enabled() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let p = proxy();
    let f = Fixture::new(true).await;
    let mut svc = f.handler("");
    let at = f.set_alarm(&f.canary_alarm, StateValue::Alarm).await;
    let event = f.eventbridge(&f.canary_alarm, "ALARM", &at);
    p.plan(&f.api_id, &[Fault::Pass, Fault::GoDown]);

    let out = invoke(&mut svc, &event).await;
    assert_eq!(plan_steps(&out), 2, "{out}");
    assert_eq!(outcome(&out), "failed", "{out}");
    let error = out["stages"][0]["outcome"]["error"].as_str().unwrap_or("");
    assert!(error.starts_with("step 2 of 2: UpdateStage"), "{error}");
    assert_eq!(p.updates(&f.api_id), (2, 1));
    assert_eq!(f.canary_percent().await, Some(0.0), "no canary traffic");
    assert_eq!(f.history().await.matches("remove_canary").count(), 1);

    p.recover();
    let again = invoke(&mut svc, &event).await;
    assert_eq!(action_type(&again), "none:duplicate", "{again}");
    let sched = invoke(&mut svc, SCHEDULE).await;
    eprintln!(
        "gone between steps: then {} / {}",
        action_type(&again),
        action_type(&sched)
    );
    assert_eq!(action_type(&sched), "remove_canary", "{sched}");
    assert_eq!(outcome(&sched), "applied", "{sched}");
    assert_eq!(f.canary_percent().await, None);
    assert_eq!(f.stage().await.deployment_id(), Some(f.d1.as_str()));
    eprintln!("gone between steps: history {}", f.history().await);
}
