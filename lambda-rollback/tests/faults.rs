//! Faults during a rollback, against a real LocalStack: a small HTTP proxy
//! (in this file) sits between the Lambda's AWS SDK clients and LocalStack
//! and, per REST API, answers `UpdateStage` with throttling or 5xx, stops
//! listening (LocalStack gone mid-scenario), or forwards the patch and then
//! holds or drops the answer (the Lambda timing out mid-action). Alarm
//! events are also delivered twice, late and out of order.
//!
//! What must hold: retries happen; exactly one patch takes effect; a
//! failure leaves the stage as it was and the next invocation converges; a
//! re-invocation after a cut-off action does nothing more; the history in
//! the state table (DynamoDB Local, which the proxy does not touch) records
//! each action once.
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

use aws_sdk_cloudwatch::types::StateValue;
use lambda_http::RequestExt;
use serde_json::Value;
use tidegate_policy::rollout::{parse_time, Hold, ManualCommand, Trigger};
use tidegate_rollback::http::Control;

mod common;
use common::{
    action_type, assert_action, enabled, failed_naming, invoke, invoke_request, outcome,
    plan_steps, Lambda, RestApi, SCHEDULE,
};

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
        read_more(s, &mut buf).await?;
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
            read_more(s, &mut rest).await?;
        }
    } else if let Some(len) = length {
        while rest.len() < len {
            read_more(s, &mut rest).await?;
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

/// Appends what the stream has next to `buf`; `None` at its end or on an
/// error.
async fn read_more(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    use tokio::io::AsyncReadExt;
    let mut chunk = [0u8; 8192];
    let n = s.read(&mut chunk).await.ok()?;
    if n == 0 {
        return None;
    }
    buf.extend_from_slice(&chunk[..n]);
    Some(())
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
}

/// One fault test: the serial lock held, the proxy running, a fresh stage
/// and the handler managing it.
struct Scenario {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    p: &'static Proxy,
    f: Fixture,
    svc: Lambda,
}

impl Scenario {
    /// A stage with a canary at 10 % if `with_canary`; `None` (the test
    /// skips) unless LocalStack tests run.
    async fn start(with_canary: bool) -> Option<Self> {
        if !enabled() {
            return None;
        }
        let serial = SERIAL.lock().await;
        let p = proxy();
        let f = Fixture::new(with_canary).await;
        let svc = f.handler("");
        Some(Self {
            _serial: serial,
            p,
            f,
            svc,
        })
    }

    /// The canary alarm goes to ALARM; its event. `faults` are planned for
    /// the stage's next `UpdateStage` calls.
    async fn canary_alarm_with(&self, faults: &[Fault]) -> String {
        let event = self
            .f
            .alarm_event(&self.f.canary_alarm, StateValue::Alarm)
            .await;
        self.p.plan(&self.f.api_id, faults);
        event
    }

    async fn invoke(&mut self, event: &str) -> Value {
        invoke(&mut self.svc, event).await
    }

    /// (`UpdateStage` calls received, forwarded) for this stage.
    fn updates(&self) -> (usize, usize) {
        self.p.updates(&self.f.api_id)
    }

    /// Nothing took effect: the canary still at 10 %, nothing applied in
    /// the history (failed attempts are recorded as failed).
    async fn assert_no_partial_action(&self) {
        assert_eq!(
            self.f.canary_percent().await,
            Some(10.0),
            "no partial action"
        );
        let history = self.f.history().await;
        assert!(!history.contains(":applied"), "{history}");
    }

    /// The canary is gone and its removal recorded once.
    async fn assert_canary_gone_once(&self) {
        assert_eq!(self.f.canary_percent().await, None);
        self.f.assert_recorded_once("remove_canary").await;
    }

    /// `out` applied `remove_canary`; every step of its plan reached
    /// LocalStack once, after `refused` calls that did not; the canary is
    /// gone and the action recorded once. The plan's steps.
    async fn assert_canary_removed_once(&self, out: &Value, refused: usize) -> usize {
        assert_action(out, "remove_canary", "applied");
        let steps = plan_steps(out);
        assert_eq!(self.updates(), (refused + steps, steps), "{out}");
        self.assert_canary_gone_once().await;
        steps
    }
}

// --- the tests -------------------------------------------------------------------

/// Throttling and 5xx on `UpdateStage`: the SDK retries, and the patch takes
/// effect once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_and_5xx_update_is_retried_and_applied_once() {
    let Some(mut s) = Scenario::start(true).await else {
        return;
    };
    let event = s
        .canary_alarm_with(&[Fault::Throttle, Fault::Unavailable, Fault::Throttle])
        .await;

    let out = s.invoke(&event).await;
    // One step (the canary settings removed), refused three times first.
    let steps = s.assert_canary_removed_once(&out, 3).await;

    let again = s.invoke(&event).await;
    assert_eq!(action_type(&again), "none:duplicate", "{again}");
    assert_eq!(s.updates(), (3 + steps, steps), "nothing sent again");
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
    let Some(mut s) = Scenario::start(true).await else {
        return;
    };
    let attempts = tidegate_rollback::retry::MAX_ATTEMPTS as usize;
    let event = s
        .canary_alarm_with(&vec![Fault::Unavailable; attempts])
        .await;

    let out = s.invoke(&event).await;
    let error = failed_naming(&out, &["UpdateStage", "ServiceUnavailable"]);
    assert_eq!(s.updates(), (attempts, 0));
    s.assert_no_partial_action().await;

    let retry = s.invoke(&event).await;
    s.assert_canary_removed_once(&retry, attempts).await;
    eprintln!("persistent 5xx: failed after {attempts} attempts: {error}");
}

/// LocalStack goes away while the rollback is being sent (the proxy drops
/// the `UpdateStage` and refuses connections until it recovers): clear
/// errors, no partial action, and after recovery the next invocation acts
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localstack_gone_mid_rollback_then_back() {
    let Some(mut s) = Scenario::start(true).await else {
        return;
    };
    let event = s.canary_alarm_with(&[Fault::GoDown]).await;

    let out = s.invoke(&event).await;
    assert!(s.p.is_down());
    assert_eq!(action_type(&out), "remove_canary", "{out}");
    let error = failed_naming(&out, &["UpdateStage"]);
    // While it is gone, the stage cannot even be read: also a clear failure.
    let blind = s.invoke(&event).await;
    let read_error = failed_naming(&blind, &["GetRestApi"]);
    assert_eq!(s.updates(), (1, 0), "no retry reached LocalStack");
    s.assert_no_partial_action().await;

    s.p.recover();
    let back = s.invoke(&event).await;
    s.assert_canary_removed_once(&back, 1).await;
    eprintln!("LocalStack gone: UpdateStage error: {error}; read error: {read_error}");
}

/// Alarm events twice (EventBridge and SNS), late and out of order: a stale
/// ALARM older than the alarm's current OK does nothing, an old OK after the
/// action undoes nothing, and one transition acts once whatever the path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_and_out_of_order_alarm_events() {
    let Some(mut s) = Scenario::start(true).await else {
        return;
    };
    let a = s.f.canary_alarm.clone();

    // ALARM at t1, then OK at t2 > t1; the events arrive newest first.
    let t1 = s.f.set_alarm(&a, StateValue::Alarm).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t2 = s.f.set_alarm(&a, StateValue::Ok).await;
    assert!(parse_time(&t2) > parse_time(&t1), "{t1} {t2}");
    let ok_t2 = s.invoke(&s.f.eventbridge(&a, "OK", &t2)).await;
    assert!(action_type(&ok_t2).starts_with("none:"), "{ok_t2}");
    let stale_alarm = s.invoke(&s.f.eventbridge(&a, "ALARM", &t1)).await;
    assert!(
        action_type(&stale_alarm).starts_with("none:"),
        "a stale ALARM (older than the current OK) must not act: {stale_alarm}"
    );
    assert_eq!(s.f.canary_percent().await, Some(10.0));

    // A real ALARM at t3: via SNS first, then the same transition via
    // EventBridge, twice.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t3 = s.f.set_alarm(&a, StateValue::Alarm).await;
    let via_sns = s.invoke(&s.f.sns(&a, "ALARM", &t3)).await;
    assert_eq!(action_type(&via_sns), "remove_canary", "{via_sns}");
    for _ in 0..2 {
        let dup = s.invoke(&s.f.eventbridge(&a, "ALARM", &t3)).await;
        assert_eq!(action_type(&dup), "none:duplicate", "{dup}");
    }
    // Late arrivals of the older transitions change nothing.
    for (state, at) in [("OK", &t2), ("ALARM", &t1)] {
        let late = s.invoke(&s.f.eventbridge(&a, state, at)).await;
        assert!(action_type(&late).starts_with("none:"), "{late}");
    }
    s.f.assert_on_d1_without_canary().await;
    s.f.assert_recorded_once("remove_canary").await;
    let (_, forwarded) = s.updates();
    eprintln!("out of order: 7 events, {forwarded} UpdateStage calls, 1 action");
}

/// The Lambda runs out of time after LocalStack applied the rollback but
/// before the answer came back; re-invoked with the same event, it sees the
/// stage already on its known-good deployment and does nothing more. The
/// cut-off invocation leaves its audit line and history item (`interrupted`)
/// and its lease, which lapses at its deadline, so the re-invocation waits
/// for it rather than racing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_mid_rollback_then_reinvoked_acts_once() {
    let Some(mut s) = Scenario::start(false).await else {
        return;
    };
    let _d2 = s.f.new_deployment_after_known_good(&mut s.svc).await;
    let event = s.f.alarm_event(&s.f.stage_alarm, StateValue::Alarm).await;
    let (calls_before, forwarded_before) = s.updates();
    // Budget 2.5 s (deadline in 3 s, less the 0.5 s margin); the answer to
    // the rollback's UpdateStage is held 2.9 s, under the SDK's 3 s attempt
    // timeout, so it is the invocation's deadline that cuts it off.
    s.p.plan(
        &s.f.api_id,
        &[Fault::HoldAnswer(Duration::from_millis(2_900))],
    );
    let mut ctx = lambda_http::Context::default();
    ctx.deadline = tidegate_rollback::retry::now_ms() + 3_000;
    let req = lambda_http::request::from_str(&event)
        .unwrap()
        .with_lambda_context(ctx);

    let cut = invoke_request(&mut s.svc, req).await;
    assert_eq!(cut["status"], 504, "{cut}");
    assert_eq!(s.updates(), (calls_before + 1, forwarded_before + 1));
    let rolled = s.f.stage().await;
    assert_eq!(rolled.deployment_id(), Some(s.f.d1.as_str()), "applied");
    // The cut-off plan still leaves its history item (written on a task of
    // its own once the invocation's future was dropped).
    let mut history = String::new();
    for _ in 0..30 {
        history = s.f.history().await;
        if history.contains("rollback_stage:interrupted") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(history.contains("rollback_stage:interrupted"), "{history}");

    let again = s.invoke(&event).await;
    assert_eq!(action_type(&again), "none:already_on_known_good", "{again}");
    assert_eq!(s.updates().1, forwarded_before + 1, "nothing sent");
    // The scheduled check afterwards does not roll back again either.
    let sched = s.invoke(SCHEDULE).await;
    assert_ne!(action_type(&sched), "rollback_stage", "{sched}");
    assert_eq!(s.f.stage().await.deployment_id(), Some(s.f.d1.as_str()));
    let history = s.f.history().await;
    assert!(!history.contains("rollback_stage:applied"), "{history}");
    eprintln!(
        "timeout mid-rollback: 504, stage on d1, then {} / {}; history: {history}",
        action_type(&again),
        action_type(&sched)
    );
}

/// The answer to an applied `UpdateStage` is lost on the wire: the SDK sends
/// the same patch again, and API Gateway refuses it (there are no canary
/// settings left to remove). The Lambda re-reads the stage, finds it as the
/// step leaves it, and reports the action as done, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answer_is_resent_and_stays_one_action() {
    let Some(mut s) = Scenario::start(true).await else {
        return;
    };
    let event = s.canary_alarm_with(&[Fault::DropAnswer]).await;

    let out = s.invoke(&event).await;
    let (calls, forwarded) = s.updates();
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
    s.assert_canary_gone_once().await;
    assert_eq!(s.f.stage().await.deployment_id(), Some(s.f.d1.as_str()));
    let again = s.invoke(&event).await;
    assert_eq!(action_type(&again), "none:duplicate", "{again}");
}

/// LocalStack goes away between the two requests of a promotion: the first
/// (AWS's promote: the stage on the canary's deployment, the canary at 0 %)
/// lands, the second (remove the canary settings) fails. Those settings would
/// make AWS refuse the user's plain deployments, so the next decision removes
/// them — even with the stage paused and its alarm firing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localstack_gone_between_promotion_steps() {
    let Some(mut s) = Scenario::start(true).await else {
        return;
    };
    let canary = s.f.canary.clone().unwrap();
    let app = s.f.app("", "");
    let operator = |command, reason: &str| Trigger::Manual {
        command,
        reason: reason.into(),
        operator: "key:oncall".into(),
        until_ms: None,
        start: None,
    };
    s.p.plan(&s.f.api_id, &[Fault::Pass, Fault::GoDown]);
    let out = app
        .command(0, operator(ManualCommand::Promote, "ship it"))
        .await
        .expect("stage 0 is managed");
    let out = serde_json::json!({ "stages": [out] });
    assert_eq!(plan_steps(&out), 2, "{out}");
    let error = failed_naming(&out, &["UpdateStage"]);
    assert!(error.starts_with("step 2 of 2: UpdateStage"), "{error}");
    let stage = s.f.stage().await;
    assert_eq!(stage.deployment_id(), Some(canary.as_str()));
    assert_eq!(s.f.canary_percent().await, Some(0.0), "left at 0 %");

    s.p.recover();
    let paused = app
        .command(0, operator(ManualCommand::Pause, "incident"))
        .await
        .expect("stage 0 is managed");
    assert_eq!(
        paused.decision.as_ref().and_then(|d| d.action.hold()),
        Some(&Hold::PausedNow),
        "{paused:?}"
    );
    s.f.set_alarm(&s.f.stage_alarm, StateValue::Alarm).await;
    let sched = s.invoke(SCHEDULE).await;
    assert_action(&sched, "remove_canary", "applied");
    assert_eq!(
        sched["stages"][0]["decision"]["action"]["reason"]["kind"], "promotion_leftover",
        "{sched}"
    );
    assert_eq!(s.f.canary_percent().await, None);
    assert_eq!(s.f.stage().await.deployment_id(), Some(canary.as_str()));
    eprintln!(
        "gone between promotion steps: history {}",
        s.f.history().await
    );
}
