//! The edge as the rollback loop's sensor (issue 18): the platform half.
//! The policy (`tidegate_policy::health`) owns the batch format, the window,
//! the judgement, the event and its signature; this module only moves data.
//!
//! - [`record`]: each origin response of a route that feeds a managed stage
//!   is counted into this isolate's batch for that stage (release class from
//!   the attribution header, status, origin latency). The first record of a
//!   batch schedules its flush in `ctx.wait_until` one second later, so an
//!   isolate sends each stage at most one batch a second, off the response
//!   path (the pattern of `purge.rs`'s pending index).
//! - [`HealthMonitor`]: one Durable Object per managed stage
//!   (`idFromName("api/stage")`). It merges batches into its window (memory
//!   only: an evicted object starts a new window), judges on each batch and,
//!   on a breach, sends one signed event to `[health] signal_url`, retried
//!   from its alarm with backoff on no answer, 429 or 5xx, at most once per
//!   release per cooldown. Without `TIDEGATE_HEALTH_SECRET` or `signal_url`
//!   it logs once and judges without signalling.
//! - [`releases`]: the figures of every stage, for
//!   `GET {admin_prefix}health/releases` (the policy's `ReleasesReport`,
//!   which the rollback Lambda's dashboard reads): per release the totals
//!   over the window and one point per second.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;

use tidegate_policy::config::{HealthSettings, Route};
use tidegate_policy::health::{
    delivery_of, judge, release_of, retry_delay_ms, sign, Cooldown, Delivery, EdgeHealthEvent,
    HealthWindow, Judgement, OutcomeBatch, ReleaseClass, ReleasesReport, SignalKey, SignalRecord,
    StageHealth, StageReport, Verdict, SIGNAL_TOLERANCE_MS, SIGNATURE_HEADER,
};
use worker::{
    durable_object, Context, Delay, DurableObject, Env, Fetch, Headers, Method, Request,
    RequestInit, Response, Result, State,
};

use crate::config::Gateway;
use crate::flow::now_ms;

/// The Durable Object namespace binding.
pub const BINDING: &str = "HEALTH";
/// How long an isolate gathers outcomes before sending them.
const FLUSH_AFTER: Duration = Duration::from_secs(1);
/// Base of the object's internal URLs; `.invalid` never resolves.
const OBJECT_BASE: &str = "https://health.tidegate.invalid/";
/// Longest wait for the Lambda's answer to a signal.
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(5);

thread_local! {
    /// This isolate's outcomes not yet sent, per stage key.
    static PENDING: RefCell<BTreeMap<String, OutcomeBatch>> = const { RefCell::new(BTreeMap::new()) };
}

/// Counts one origin response of `route` (nothing when the route feeds no
/// stage). `release` is the attribution header's value.
pub fn record(
    ctx: &Context,
    env: &Env,
    settings: &HealthSettings,
    route: &Route,
    release: Option<&str>,
    status: u16,
    latency_ms: u64,
) {
    let Some(stage) = settings.stage_of_route(&route.name) else {
        return;
    };
    let key = stage.key();
    let class = ReleaseClass::of(release, &settings.canary_release);
    let latency = u32::try_from(latency_ms).unwrap_or(u32::MAX);
    let opened = PENDING.with(|p| {
        let mut pending = p.borrow_mut();
        let batch = pending.entry(key.clone()).or_default();
        let opened = batch.is_empty();
        batch.record(class, status, now_ms(), latency);
        opened
    });
    if !opened {
        return;
    }
    let env = env.clone();
    ctx.wait_until(async move {
        Delay::from(FLUSH_AFTER).await;
        let batch = PENDING.with(|p| p.borrow_mut().remove(&key));
        if let Some(batch) = batch {
            if let Err(e) = send_batch(&env, &key, &batch).await {
                worker::console_warn!("health: batch for {key} not delivered: {e}");
            }
        }
    });
}

fn stub(env: &Env, key: &str) -> Result<worker::Stub> {
    env.durable_object(BINDING)?.id_from_name(key)?.get_stub()
}

fn object_url(what: &str, key: &str) -> String {
    let key = percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC);
    format!("{OBJECT_BASE}{what}?stage={key}")
}

async fn send_batch(env: &Env, key: &str, batch: &OutcomeBatch) -> Result<()> {
    let body = serde_json::to_string(batch).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let req = Request::new_with_init(&object_url("batch", key), &init)?;
    let resp = stub(env, key)?.fetch_with_request(req).await?;
    if resp.status_code() >= 300 {
        return Err(worker::Error::RustError(format!(
            "the monitor answered {}",
            resp.status_code()
        )));
    }
    Ok(())
}

/// The live figures of every stage.
pub async fn releases(env: &Env, gw: &Gateway) -> ReleasesReport {
    let mut stages = Vec::new();
    let configured = gw.config.health.as_ref().map_or(&[][..], |h| &h.stages);
    for stage in configured {
        let key = stage.key();
        let read = async {
            let req = Request::new(&object_url("figures", &key), Method::Get)?;
            let mut resp = stub(env, &key)?.fetch_with_request(req).await?;
            resp.json::<StageHealth>().await
        };
        let (health, error) = match read.await {
            Ok(h) => (Some(h), None),
            Err(e) => (None, Some(e.to_string())),
        };
        stages.push(StageReport { key, health, error });
    }
    ReleasesReport { stages }
}

/// The monitor of one managed stage.
#[durable_object]
pub struct HealthMonitor {
    state: State,
    env: Env,
    window: RefCell<Option<HealthWindow>>,
    cooldown: RefCell<Option<Cooldown>>,
    last: RefCell<Option<Judgement>>,
    signal: RefCell<Option<SignalRecord>>,
    stage: RefCell<Option<(String, String)>>,
    warned: Cell<bool>,
}

impl DurableObject for HealthMonitor {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            window: RefCell::new(None),
            cooldown: RefCell::new(None),
            last: RefCell::new(None),
            signal: RefCell::new(None),
            stage: RefCell::new(None),
            warned: Cell::new(false),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let url = req.url()?;
        let key = url
            .query_pairs()
            .find(|(k, _)| k == "stage")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let loaded = crate::config::load(&self.env);
        let Ok(gw) = loaded.as_ref() else {
            return Response::error("invalid gateway configuration", 503);
        };
        let Some(settings) = gw.config.health.as_ref() else {
            return Response::error("no [health] in the gateway configuration", 404);
        };
        let Some(stage) = settings.stage(&key) else {
            return Response::error("not a [[health.stages]] stage", 404);
        };
        *self.stage.borrow_mut() = Some((stage.api.clone(), stage.stage.clone()));
        match url.path() {
            "/batch" => {
                let mut req = req;
                let batch: OutcomeBatch = match req.json().await {
                    Ok(b) => b,
                    Err(e) => return Response::error(format!("not a batch: {e}"), 400),
                };
                self.ingest(settings, &batch).await;
                Response::empty().map(|r| r.with_status(204))
            }
            "/figures" => {
                let mut health = StageHealth::of(
                    &stage.api,
                    &stage.stage,
                    self.window.borrow().as_ref(),
                    &settings.judge,
                    now_ms(),
                );
                health.last_signal = self.signal.borrow().clone();
                health.signalling_off = self.signalling_off(settings);
                Response::from_json(&health)
            }
            _ => Response::error("not found", 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        // A retry of the pending signal.
        let loaded = crate::config::load(&self.env);
        if let Some(settings) = loaded
            .as_ref()
            .ok()
            .and_then(|gw| gw.config.health.as_ref())
        {
            self.attempt(settings).await;
        }
        Response::empty()
    }
}

impl HealthMonitor {
    fn signalling_off(&self, settings: &HealthSettings) -> Option<String> {
        if settings.signal_url.is_none() {
            return Some("no `[health] signal_url`".into());
        }
        match self.env.secret(HealthSettings::SECRET_NAME) {
            Err(_) => Some(format!("no `{}` secret", HealthSettings::SECRET_NAME)),
            Ok(secret) => SignalKey::new(secret.to_string().as_bytes())
                .err()
                .map(|e| e.to_string()),
        }
    }

    async fn ingest(&self, settings: &HealthSettings, batch: &OutcomeBatch) {
        let now = now_ms();
        let judgement = {
            let mut window = self.window.borrow_mut();
            let window = window.get_or_insert_with(|| HealthWindow::new(settings.judge.window_s));
            window.merge(batch, now);
            judge(&settings.judge, window, now)
        };
        *self.last.borrow_mut() = Some(judgement.clone());
        let Verdict::Breach(kind) = judgement.verdict else {
            return;
        };
        let class = release_of(kind);
        let cooldown_ms = u64::try_from(settings.cooldown.as_millis()).unwrap_or(u64::MAX);
        let allowed = {
            let mut cooldown = self.cooldown.borrow_mut();
            let cooldown = cooldown.get_or_insert_with(|| Cooldown::new(cooldown_ms));
            let allowed = cooldown.allows(class, now);
            if allowed {
                cooldown.mark(class, now);
            }
            allowed
        };
        if !allowed {
            return;
        }
        let (api, stage) = self.stage.borrow().clone().unwrap_or_default();
        let id = event_id(&api, &stage, now);
        let Some(event) = judgement.event(&id, &api, &stage, &settings.canary_release, now) else {
            return;
        };
        worker::console_warn!("health: breach on {api}/{stage}: {}", event.detail);
        if let Some(why) = self.signalling_off(settings) {
            if !self.warned.replace(true) {
                worker::console_warn!("health: not signalling ({why})");
            }
            return;
        }
        *self.signal.borrow_mut() = Some(SignalRecord {
            event,
            attempts: 0,
            last_status: None,
            delivery: Delivery::Retry,
        });
        self.attempt(settings).await;
    }

    /// One attempt at sending the pending signal; schedules the next on failure.
    async fn attempt(&self, settings: &HealthSettings) {
        let Some(mut record) = self.signal.borrow().clone() else {
            return;
        };
        if record.delivery != Delivery::Retry {
            return;
        }
        let now = now_ms();
        // A signature older than the tolerance would be refused: stop.
        if now.saturating_sub(record.event.issued_ms) > SIGNAL_TOLERANCE_MS {
            record.delivery = Delivery::GiveUp;
            *self.signal.borrow_mut() = Some(record);
            return;
        }
        let status = match self.post(settings, &record.event).await {
            Ok(status) => Some(status),
            Err(e) => {
                worker::console_warn!("health: signal not delivered: {e}");
                None
            }
        };
        record.attempts += 1;
        record.last_status = status;
        worker::console_log!(
            "health: signal {} attempt {} answered {:?}",
            record.event.id,
            record.attempts,
            status
        );
        record.delivery = delivery_of(status);
        if record.delivery == Delivery::Retry {
            match retry_delay_ms(record.attempts) {
                Some(delay) => {
                    // A Duration is an offset from now (an i64 would be one too).
                    let after = Duration::from_millis(delay);
                    if let Err(e) = self.state.storage().set_alarm(after).await {
                        worker::console_warn!("health: retry not scheduled: {e}");
                    }
                }
                None => record.delivery = Delivery::GiveUp,
            }
        }
        *self.signal.borrow_mut() = Some(record);
    }

    async fn post(&self, settings: &HealthSettings, event: &EdgeHealthEvent) -> Result<u16> {
        let url = settings
            .signal_url
            .as_ref()
            .ok_or_else(|| worker::Error::RustError("no signal_url".into()))?;
        let secret = self.env.secret(HealthSettings::SECRET_NAME)?.to_string();
        let key = SignalKey::new(secret.as_bytes())
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        // Signed now (same id): the receiver checks the time and dedupes the id.
        let mut fresh = event.clone();
        fresh.issued_ms = now_ms();
        let signed = sign(&key, &fresh);
        let headers = Headers::new();
        headers.set("content-type", "application/json")?;
        headers.set(SIGNATURE_HEADER, &signed.header)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(signed.body.into()));
        let req = Request::new_with_init(url.as_str(), &init)?;
        let fetch = Fetch::Request(req);
        let call = fetch.send();
        let timeout = Delay::from(SIGNAL_TIMEOUT);
        futures_util::pin_mut!(call);
        match futures_util::future::select(call, timeout).await {
            futures_util::future::Either::Left((resp, _)) => Ok(resp?.status_code()),
            futures_util::future::Either::Right(_) => Err(worker::Error::RustError(
                "the Lambda did not answer in time".into(),
            )),
        }
    }
}

/// A unique event id: the stage, the time and random bytes.
fn event_id(api: &str, stage: &str, now: u64) -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::getrandom(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("edge-{api}-{stage}-{now}-{hex}")
}
