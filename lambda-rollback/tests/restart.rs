//! LocalStack really restarted in the middle of a canary rollout (issue 7).
//!
//! The test starts a LocalStack of its own (`scripts/localstack.sh` with its
//! own port and state folder, so the shared instance and the other tests are
//! untouched), steps a canary forward, stops that LocalStack while the canary
//! is out and its alarm fires, and starts it again. `tests/faults.rs` covers
//! an outage *during* one `UpdateStage` through its proxy; this file is the
//! real process going away and coming back.
//!
//! Open-source LocalStack keeps no state across a restart, so what comes
//! back is an empty AWS: the REST API the Lambda manages no longer exists.
//! What must hold: while LocalStack is down, every invocation answers a
//! clear failure that names the call (no panic, nothing applied); once it is
//! back, the same clients (built before the restart, their pooled
//! connections dead) report the managed API as missing and create, change or
//! guess nothing; once the operator has recreated the stage, the next alarm
//! removes the canary exactly once.
//!
//! Runs only when `TIDEGATE_LOCALSTACK_TESTS=1` (stage `rollback-localstack`).
//! One test in this binary: it points the process-wide `AWS_ENDPOINT_URL` at
//! its own instance.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use aws_sdk_cloudwatch::types::StateValue;
use aws_smithy_types::date_time::Format;

mod common;
use common::{action_type, assert_action, enabled, failed_naming, invoke, RestApi, SCHEDULE};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A LocalStack this test started, stopped (by its PID file) when dropped.
struct OwnLocalStack {
    dir: PathBuf,
    port: u16,
}

impl OwnLocalStack {
    /// Starts one on a free loopback port, with state under
    /// `.cache/localstack-restart/`; waits until it is healthy.
    fn start() -> Self {
        let dir = repo_root().join(".cache/localstack-restart");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let ls = Self { dir, port };
        ls.script("start");
        ls
    }

    fn script(&self, command: &str) {
        let status = Command::new("bash")
            .arg(repo_root().join("scripts/localstack.sh"))
            .arg(command)
            .env("TIDEGATE_LOCALSTACK_DIR", &self.dir)
            .env("TIDEGATE_LOCALSTACK_PORT", self.port.to_string())
            // Its shutdown sometimes waits out the whole grace period (with
            // the SDK's pooled connections open); its state is throwaway.
            .env("TIDEGATE_LOCALSTACK_STOP_TIMEOUT", "3")
            .status()
            .unwrap();
        assert!(
            status.success(),
            "scripts/localstack.sh {command}: {status}"
        );
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the process; its port then refuses connections.
    fn stop(&self) {
        self.script("stop");
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err(),
            "LocalStack still answers on {}",
            self.port
        );
    }

    /// Starts it again on the same port, with the same state folder.
    fn restart(&self) {
        self.script("start");
    }
}

impl Drop for OwnLocalStack {
    fn drop(&mut self) {
        self.script("stop");
    }
}

/// Now, as CloudWatch writes a transition's timestamp.
fn now() -> String {
    aws_smithy_types::DateTime::from(SystemTime::now())
        .fmt(Format::DateTime)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localstack_restarted_mid_rollout() {
    if !enabled() {
        return;
    }
    let ls = OwnLocalStack::start();
    // Before any client exists; this binary has no other test.
    std::env::set_var("AWS_ENDPOINT_URL", ls.url());

    // A canary rollout under way: baked with healthy traffic, 10 % → 50 %.
    let f = RestApi::create(None, "tg-restart", Some(10.0)).await;
    f.seen_healthy_for(120).await;
    f.canary_traffic(200.0, 0.0).await;
    let mut svc = f.handler("");
    let tick = invoke(&mut svc, SCHEDULE).await;
    assert_action(&tick, "set_canary_percent", "applied");
    assert_eq!(f.canary_percent().await, Some(50.0), "{tick}");

    // LocalStack goes away; the canary's alarm fires meanwhile (the event is
    // built here: CloudWatch is down too).
    ls.stop();
    let alarm = f.eventbridge(&f.canary_alarm, "ALARM", &now());
    let down = invoke(&mut svc, &alarm).await;
    let down_error = failed_naming(&down, &["GetRestApi", "Connection refused"]);
    let tick = invoke(&mut svc, SCHEDULE).await;
    failed_naming(&tick, &["Connection refused"]);

    // Back, and empty: the same handler and clients answer that the API is
    // gone, and leave AWS as they found it.
    ls.restart();
    let back = invoke(&mut svc, &alarm).await;
    let gone_error = failed_naming(&back, &["not found", &f.api_id]);
    let apis = f.apigw.get_rest_apis().send().await.unwrap();
    assert!(apis.items().is_empty(), "the Lambda created {apis:?}");
    let tick = invoke(&mut svc, SCHEDULE).await;
    failed_naming(&tick, &["not found"]);

    // The operator recreates the stage (a new API on the restarted
    // LocalStack): its alarm removes the canary once, a redelivery is a
    // duplicate.
    let g = RestApi::create(None, "tg-restart", Some(10.0)).await;
    let mut svc = g.handler("");
    let alarm = g.alarm_event(&g.canary_alarm, StateValue::Alarm).await;
    let out = invoke(&mut svc, &alarm).await;
    assert_action(&out, "remove_canary", "applied");
    assert_eq!(g.canary_percent().await, None);
    g.assert_recorded_once("remove_canary").await;
    let again = invoke(&mut svc, &alarm).await;
    assert_eq!(action_type(&again), "none:duplicate", "{again}");
    eprintln!(
        "LocalStack restarted: while down: {down_error}; after the restart: {gone_error}; \
         recreated stage: canary removed once"
    );
}
