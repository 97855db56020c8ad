//! Exact rate limiting: the `Throttle` Durable Object, one instance per
//! limiter key, and the client that asks it.
//!
//! The object holds one GCRA state (a TAT in nanoseconds) in its SQLite
//! storage and answers `check` / `refund` / `peek` for a quota and cost in one
//! round trip. Callers use its RPC method `decide` (a JSON op in, a JSON reply
//! out): no HTTP request or response is built on either side, which is most
//! of what a `fetch` to the object costs. `fetch` answers the same ops for
//! tools that speak HTTP. Each op is one synchronous read-modify-write (SQLite
//! calls and `gcra::check`, no `await`), so no other call can interleave: N
//! concurrent requests against a burst of L admit exactly min(N, L). Nothing
//! inside the object does outbound I/O.
//!
//! RPC needs the class to extend `DurableObject` from `cloudflare:workers`,
//! which the class wasm-bindgen exports does not: `edge-worker/shim.mjs`
//! (the Worker's entry module) wraps it.
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
use wasm_bindgen::prelude::*;
use worker::js_sys::{self, Promise};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{
    durable_object, Delay, DurableObject, Env, Request, Response, Result, SqlStorage,
    SqlStorageValue, State,
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

/// Why an object without SQLite storage cannot count.
const NO_SQLITE: &str = "the Throttle class has no SQLite storage: list it under \
     `new_sqlite_classes` in wrangler.toml's [[migrations]] (Durable Objects on the free plan \
     are SQLite-backed)";

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
    /// `None` when the class was deployed without SQLite storage.
    sql: Option<SqlStorage>,
}

impl DurableObject for Throttle {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        let created = sql.exec(
            "CREATE TABLE IF NOT EXISTS gcra (id INTEGER PRIMARY KEY CHECK (id = 0), tat TEXT NOT NULL)",
            None,
        );
        Self {
            sql: created.ok().map(|_| sql),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let op: Op = crate::body::request_json(&req).await?;
        match self.apply(op) {
            Ok(reply) => Response::from_json(&reply),
            Err(message) => Response::error(message, 500),
        }
    }
}

#[wasm_bindgen]
impl Throttle {
    /// The RPC method: one JSON [`Op`] in, one JSON [`Reply`] out.
    pub fn decide(&self, op: &str) -> std::result::Result<String, JsValue> {
        let reply = serde_json::from_str(op)
            .map_err(|e| format!("not a limiter op: {e}"))
            .and_then(|op| self.apply(op))
            .and_then(|reply| serde_json::to_string(&reply).map_err(|e| e.to_string()));
        reply.map_err(|message| js_sys::Error::new(&message).into())
    }
}

impl Throttle {
    /// Carries out `op` on the stored state. Synchronous from read to write,
    /// so it is atomic.
    fn apply(&self, op: Op) -> std::result::Result<Reply, String> {
        let sql = self.sql.as_ref().ok_or(NO_SQLITE)?;
        let stored = load(sql)?;
        let now_ms = crate::flow::now_ms();
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
            save(sql, next)?;
        }
        Ok(Reply {
            decision,
            tat_ns: next.tat_ns,
            stored: exists,
            now_ms,
        })
    }
}

fn load(sql: &SqlStorage) -> std::result::Result<Option<GcraState>, String> {
    #[derive(Deserialize)]
    struct Row {
        tat: String,
    }
    let rows: Vec<Row> = sql
        .exec("SELECT tat FROM gcra WHERE id = 0", None)
        .and_then(|cursor| cursor.to_array())
        .map_err(|e| format!("reading the limiter state: {e}"))?;
    rows.into_iter()
        .next()
        .map(|row| {
            row.tat
                .parse()
                .map(|tat_ns| GcraState { tat_ns })
                .map_err(|_| format!("corrupt limiter state {:?}", row.tat))
        })
        .transpose()
}

fn save(sql: &SqlStorage, state: GcraState) -> std::result::Result<(), String> {
    // Text: a u64 of nanoseconds does not fit a JS number exactly.
    sql.exec(
        "INSERT INTO gcra (id, tat) VALUES (0, ?) \
         ON CONFLICT (id) DO UPDATE SET tat = excluded.tat",
        vec![SqlStorageValue::String(state.tat_ns.to_string())],
    )
    .map(|_| ())
    .map_err(|e| format!("writing the limiter state: {e}"))
}

#[wasm_bindgen]
extern "C" {
    /// A limiter object's stub, seen through its RPC method.
    #[wasm_bindgen(extends = js_sys::Object)]
    type ThrottleRpc;

    /// Calls the object's `decide`; the result is a thenable.
    #[wasm_bindgen(method, catch)]
    fn decide(this: &ThrottleRpc, op: &str) -> std::result::Result<JsValue, JsValue>;
}

/// How a call to a limiter object failed.
#[derive(Debug)]
pub enum LimiterFault {
    /// The binding or the object's stub could not be had, or the call
    /// threw; the runtime's message.
    Call(String),
    /// The operation could not be serialised.
    Encode(String),
    /// The object did not answer within [`CALL_TIMEOUT`].
    Timeout(Duration),
    /// The object answered something other than a string.
    NonString,
    /// The object's string is not a reply; the parser's message.
    Garbage(String),
    /// The reply carries no decision where the operation needs one.
    NoDecision,
}

impl std::fmt::Display for LimiterFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Call(e) => write!(f, "limiter object call failed: {e}"),
            Self::Encode(e) => write!(f, "limiter operation not serialisable: {e}"),
            Self::Timeout(t) => write!(
                f,
                "limiter object did not answer within {} ms",
                t.as_millis()
            ),
            Self::NonString => f.write_str("limiter object answered a non-string"),
            Self::Garbage(e) => write!(f, "limiter object answered garbage: {e}"),
            Self::NoDecision => f.write_str("limiter object sent no decision"),
        }
    }
}

impl std::error::Error for LimiterFault {}

impl From<LimiterFault> for EdgeError {
    fn from(fault: LimiterFault) -> Self {
        Self::Limiter(fault)
    }
}

/// Sends `op` to the object of limiter key `key`.
pub async fn call(env: &Env, key: &str, op: &Op) -> std::result::Result<Reply, EdgeError> {
    let failed = |e: worker::Error| LimiterFault::Call(e.to_string());
    let rejected = |e: JsValue| failed(worker::Error::from(e));
    let stub = env
        .durable_object(BINDING)
        .and_then(|ns| ns.id_from_name(key)?.get_stub())
        .map_err(failed)?
        .into_rpc::<ThrottleRpc>();
    let op = serde_json::to_string(op).map_err(|e| LimiterFault::Encode(e.to_string()))?;
    let pending = stub.decide(&op).map_err(rejected)?;
    let answer = JsFuture::from(Promise::resolve(&pending));
    let answer = match select(answer, Box::pin(Delay::from(CALL_TIMEOUT))).await {
        Either::Left((answer, _)) => answer.map_err(rejected)?,
        Either::Right(_) => return Err(LimiterFault::Timeout(CALL_TIMEOUT).into()),
    };
    let text = answer.as_string().ok_or(LimiterFault::NonString)?;
    Ok(serde_json::from_str(&text).map_err(|e| LimiterFault::Garbage(e.to_string()))?)
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
    Ok(reply.decision.ok_or(LimiterFault::NoDecision)?)
}
