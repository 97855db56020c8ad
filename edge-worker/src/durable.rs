//! Exact rate limiting: the `Throttle` Durable Object, one instance per
//! limiter key, and the client that asks it.
//!
//! The object holds one GCRA state (a TAT in nanoseconds) in its SQLite
//! storage and answers `check` / `refund` / `peek` for a quota and cost in one
//! round trip. After reading the request body, the read-modify-write is
//! entirely synchronous (SQLite calls, `gcra::check`, no `await`), so no other
//! request can interleave: N concurrent requests against a burst of L admit
//! exactly min(N, L). Nothing inside the object does outbound I/O. (A class
//! without SQL falls back to the key-value API, whose awaited get and put
//! keep the object's input gate closed, which is just as exclusive.)
//!
//! A route with several limits has one object per limit. The client checks
//! them all at once; if any denies, it refunds the others (two-phase), and
//! `throttle::combine` turns the answers into the decision `check_all` would
//! have made.

use std::time::Duration;

use futures_util::future::{join_all, select, Either};
use serde::{Deserialize, Serialize};
use tidegate_policy::auth::Identity;
use tidegate_policy::config::RateLimitPolicy;
use tidegate_policy::throttle::{self, Decision, GcraState, MultiDecision, Quota};
use worker::{
    durable_object, Delay, DurableObject, Env, Method, Request, RequestInit, Response, Result,
    SqlStorage, SqlStorageValue, State, Storage,
};

use crate::error::EdgeError;

/// The Durable Object namespace binding.
pub const BINDING: &str = "THROTTLE";

/// Longest wait for a limiter object's answer. A round trip takes
/// milliseconds; an object that answers later counts as unreachable and the
/// route's `on_error` (open or closed) decides, instead of every request of
/// the route waiting as long as the object does. A check that times out may
/// still have been counted by the object (no refund is sent for it).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// A request to one limiter object.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Admit `cost` if the quota allows, consuming it.
    Check {
        /// The quota, with the caller's overrides applied.
        quota: Quota,
        /// Units this request costs.
        cost: u64,
    },
    /// Give back `cost` admitted earlier (another limit denied).
    Refund {
        /// The quota the units were admitted under.
        quota: Quota,
        /// Units to give back.
        cost: u64,
    },
    /// Report the state without changing it.
    Peek,
}

/// A limiter object's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    /// The decision (`check`/`refund` only).
    pub decision: Option<Decision>,
    /// The stored TAT after the operation, ns since the epoch (0: empty).
    pub tat_ns: u64,
    /// Whether a state is stored at all.
    pub stored: bool,
    /// The object's clock, ms since the epoch.
    pub now_ms: u64,
}

/// The limiter object: one GCRA state.
#[durable_object]
pub struct Throttle {
    store: Store,
}

/// Where the state lives: SQLite (the deployed class, `new_sqlite_classes`),
/// or the key-value API for a class without SQL (e.g. a test runtime
/// configured without it).
enum Store {
    Sql(SqlStorage),
    Kv(Storage),
}

/// Key of the state in the key-value API.
const KV_KEY: &str = "tat";

impl DurableObject for Throttle {
    fn new(state: State, _env: Env) -> Self {
        let storage = state.storage();
        let sql = storage.sql();
        let created = sql.exec(
            "CREATE TABLE IF NOT EXISTS gcra (id INTEGER PRIMARY KEY CHECK (id = 0), tat TEXT NOT NULL)",
            None,
        );
        let store = match created {
            Ok(_) => Store::Sql(sql),
            Err(_) => Store::Kv(storage),
        };
        Self { store }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let op: Op = crate::body::request_json(&req).await?;
        // From here to the write nothing but storage is awaited (with SQL,
        // nothing at all), and the input gate holds other requests back
        // meanwhile: the read-modify-write is atomic.
        let stored = self.load().await?;
        let now_ms = worker::Date::now().as_millis();
        let state = stored.unwrap_or_default();
        let (decision, next) = match op {
            Op::Check { quota, cost } => {
                let (d, next) = throttle::check(state, now_ms, cost, &quota);
                (Some(d), next)
            }
            Op::Refund { quota, cost } => {
                let next = throttle::refund(state, now_ms, cost, &quota);
                let (peek, _) = throttle::check(next, now_ms, 0, &quota);
                let d = Decision {
                    allowed: true,
                    ..peek
                };
                (Some(d), next)
            }
            Op::Peek => (None, state),
        };
        let exists = stored.is_some() || next != GcraState::default();
        if exists && stored != Some(next) {
            self.save(next).await?;
        }
        Response::from_json(&Reply {
            decision,
            tat_ns: next.tat_ns,
            stored: exists,
            now_ms,
        })
    }
}

impl Throttle {
    async fn load(&self) -> Result<Option<GcraState>> {
        let text = match &self.store {
            Store::Sql(sql) => {
                #[derive(Deserialize)]
                struct Row {
                    tat: String,
                }
                let rows: Vec<Row> = sql
                    .exec("SELECT tat FROM gcra WHERE id = 0", None)?
                    .to_array()?;
                rows.into_iter().next().map(|r| r.tat)
            }
            Store::Kv(storage) => storage.get::<String>(KV_KEY).await?,
        };
        text.map(|t| {
            t.parse()
                .map(|tat_ns| GcraState { tat_ns })
                .map_err(|_| worker::Error::RustError("corrupt limiter state".into()))
        })
        .transpose()
    }

    async fn save(&self, state: GcraState) -> Result<()> {
        // Text: a u64 of nanoseconds does not fit a JS number exactly.
        let tat = state.tat_ns.to_string();
        match &self.store {
            Store::Sql(sql) => {
                sql.exec(
                    "INSERT INTO gcra (id, tat) VALUES (0, ?) \
                     ON CONFLICT (id) DO UPDATE SET tat = excluded.tat",
                    vec![SqlStorageValue::String(tat)],
                )?;
            }
            Store::Kv(storage) => storage.put(KV_KEY, tat).await?,
        }
        Ok(())
    }
}

/// Sends `op` to the object of limiter key `key`.
pub async fn call(env: &Env, key: &str, op: &Op) -> std::result::Result<Reply, EdgeError> {
    let limiter = |e: worker::Error| EdgeError::Limiter(e.to_string());
    let stub = env
        .durable_object(BINDING)
        .and_then(|ns| ns.id_from_name(key)?.get_stub())
        .map_err(limiter)?;
    let body = serde_json::to_string(op).map_err(|e| EdgeError::Limiter(e.to_string()))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(worker::wasm_bindgen::JsValue::from_str(&body)));
    let req = Request::new_with_init("https://throttle.tidegate/", &init).map_err(limiter)?;
    let sending = Box::pin(stub.fetch_with_request(req));
    let resp = match select(sending, Box::pin(Delay::from(CALL_TIMEOUT))).await {
        Either::Left((sent, _)) => sent.map_err(limiter)?,
        Either::Right(_) => {
            return Err(EdgeError::Limiter(format!(
                "limiter object did not answer within {} ms",
                CALL_TIMEOUT.as_millis()
            )))
        }
    };
    if resp.status_code() != 200 {
        return Err(EdgeError::Limiter(format!(
            "limiter object answered {}",
            resp.status_code()
        )));
    }
    crate::body::json(resp).await.map_err(limiter)
}

/// Checks a request against every limit of `policy`, keyed by `keys` (from
/// `policy.storage_keys`): one object per key, all asked at once; if any
/// denies (or fails), the others give back what they admitted.
pub async fn check(
    env: &Env,
    policy: &RateLimitPolicy,
    keys: &[String],
    identity: Option<&Identity>,
) -> std::result::Result<MultiDecision, EdgeError> {
    let charges: Vec<(Quota, u64)> = policy
        .limits
        .iter()
        .map(|l| (l.quota_for(identity), l.cost))
        .collect();
    let limits = || keys.iter().zip(charges.iter().copied());
    let replies = join_all(limits().map(|(key, (quota, cost))| async move {
        call(env, key, &Op::Check { quota, cost }).await
    }))
    .await;
    let admitted: Vec<bool> = replies
        .iter()
        .map(|r| matches!(r, Ok(Reply { decision: Some(d), .. }) if d.allowed))
        .collect();
    let refunds = match admitted.iter().all(|a| *a) {
        true => Vec::new(),
        false => {
            let calls = limits()
                .zip(&admitted)
                .map(|((key, (quota, cost)), &took)| async move {
                    match took {
                        true => Some(call(env, key, &Op::Refund { quota, cost }).await),
                        false => None,
                    }
                });
            join_all(calls).await
        }
    };
    let mut refunds = refunds.into_iter();
    let mut decisions = Vec::with_capacity(replies.len());
    let mut states = Vec::with_capacity(replies.len());
    for reply in replies {
        // A refunded limit reports its state after the refund.
        let reply = match refunds.next().flatten() {
            Some(Ok(refunded)) => refunded,
            _ => reply?,
        };
        states.push(GcraState {
            tat_ns: reply.tat_ns,
        });
        decisions.push(decision_of(&reply)?);
    }
    Ok(throttle::combine(decisions, states))
}

fn decision_of(reply: &Reply) -> std::result::Result<Decision, EdgeError> {
    reply
        .decision
        .ok_or_else(|| EdgeError::Limiter("limiter object sent no decision".into()))
}
