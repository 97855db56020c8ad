//! A route's rate limits applied to one request: keys, charges, quotas,
//! headers and refusals come from `RateLimitPolicy`, the protocol (ops,
//! leases, what goes back when a limit refuses) from
//! `tidegate_policy::throttle`; this module makes the calls
//! ([`crate::durable::call`]) and keeps the isolate's leases.
//!
//! Leases (`lease = "auto"`, see `docs/configuration.md`): the isolate holds
//! per (limiter key, quota) a `LeasePool` in the [`Gateway`], so a changed
//! configuration starts with none. A request takes from it when it can, and
//! otherwise calls the object itself, asking for a slice sized to the key's
//! rate here and handing back the slices it held; no request waits for
//! another's call.

use std::cell::Cell;
use std::collections::HashMap;

use futures_util::future::join_all;
use tidegate_policy::auth::Identity;
use tidegate_policy::cache::first_header;
use tidegate_policy::config::{PlanChoice, RateLimitPolicy, Route};
use tidegate_policy::problem::Problem;
use tidegate_policy::throttle::{
    self, give_back, Charge, GcraState, Granted, KeySource, LeaseConfig, LeaseGrant, LeasePool,
    LeasePools, LimitDecision, LimiterOp, LimiterReply, MultiDecision, Quota, Taken,
};
use worker::Env;

use crate::config::Gateway;
use crate::durable::{self, LimiterFault};
use crate::error::EdgeError;
use crate::flow::{now_ms, Flow, Phase};

/// The only header the client IP is taken from; `X-Forwarded-For` is never
/// trusted.
pub const CLIENT_IP_HEADER: &str = "cf-connecting-ip";

/// Most limiter keys an isolate holds leases for; past it the map starts
/// over (the dropped slices' units are lost until their time passes, never
/// over-admitted).
pub const MAX_LEASED_KEYS: usize = 4_096;

/// The isolate's lease pools: per limiter key, one pool per quota (a key's
/// callers may have different quotas).
#[derive(Default)]
pub struct Leases {
    pools: HashMap<String, Vec<(Quota, LeasePool)>>,
}

impl LeasePools for Leases {
    fn with_pool<R>(&mut self, charge: &Charge<'_>, f: impl FnOnce(&mut LeasePool) -> R) -> R {
        self.with(charge, f)
    }
}

impl Leases {
    fn with<R>(&mut self, charge: &Charge<'_>, f: impl FnOnce(&mut LeasePool) -> R) -> R {
        if !self.pools.contains_key(charge.key) {
            if self.pools.len() >= MAX_LEASED_KEYS {
                self.pools.clear();
            }
            // The key is copied once per isolate, not per request.
            self.pools.insert(charge.key.to_owned(), Vec::new());
        }
        let Some(pools) = self.pools.get_mut(charge.key) else {
            return f(&mut LeasePool::default());
        };
        let at = match pools.iter().position(|(q, _)| *q == charge.quota) {
            Some(at) => at,
            None => {
                pools.push((charge.quota, LeasePool::default()));
                pools.len() - 1
            }
        };
        match pools.get_mut(at) {
            Some((_, pool)) => f(pool),
            // Unreachable (the index was just found or pushed); a fresh
            // pool keeps this total.
            None => f(&mut LeasePool::default()),
        }
    }
}

thread_local! {
    /// Limiter object calls this isolate made, and requests it checked
    /// (`GET {admin}/stats/limiter`).
    static COUNTS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Limiter object calls and checked requests since the isolate started.
pub fn counts() -> (u64, u64) {
    COUNTS.with(Cell::get)
}

fn count(calls: u64, requests: u64) {
    COUNTS.with(|c| {
        let (a, b) = c.get();
        c.set((a.saturating_add(calls), b.saturating_add(requests)));
    });
}

/// Counts the request against the route's limits. Adds the rate-limit
/// headers to `flow.extra`; `Err` is the problem to answer with (429, or 503
/// when the limiter is unreachable and the route fails closed).
pub async fn apply(
    env: &Env,
    gw: &Gateway,
    route: &Route,
    identity: Option<&Identity>,
    plan: PlanChoice<'_>,
    headers: &[(String, String)],
    flow: &mut Flow,
) -> Result<(), Problem> {
    let Some(policy) = &route.rate_limit else {
        return Ok(());
    };
    // The caller's plan replaces the quotas of the limits it names.
    if let PlanChoice::Unknown(tier) = plan {
        flow.log.unknown_tier = Some(tier.chars().take(64).collect());
    }
    let policy = &*policy.for_plan(plan.tier());
    let keys = storage_keys(policy, route, identity, headers).map_err(|e| e.problem())?;
    let calls = Cell::new(0_u32);
    let checking = check(env, gw, policy, &keys, identity, &calls);
    let result = flow.timings.time(Phase::Throttle, checking).await;
    flow.log.limiter_calls = Some(calls.get());
    count(u64::from(calls.get()), 1);
    let decision = match result {
        Ok(decision) => decision,
        Err(e) => {
            flow.log.error = Some(e.log_text());
            return match policy.on_limiter_error() {
                None => {
                    flow.log.limiter = Some("error-open");
                    Ok(())
                }
                Some(problem) => {
                    flow.log.limiter = Some("error-closed");
                    Err(problem)
                }
            };
        }
    };
    record(policy, &decision, flow);
    policy.rejection(&decision).map_or(Ok(()), Err)
}

/// The limiter keys of `policy` for this request.
fn storage_keys(
    policy: &RateLimitPolicy,
    route: &Route,
    identity: Option<&Identity>,
    headers: &[(String, String)],
) -> Result<Vec<String>, throttle::LimitKeyError> {
    let source = KeySource::from_identity(identity, first_header(headers, CLIENT_IP_HEADER));
    policy.storage_keys(&route.name, &source)
}

/// The decision in the log line and the rate-limit headers.
fn record(policy: &RateLimitPolicy, decision: &MultiDecision, flow: &mut Flow) {
    flow.log.limiter = Some(match (decision.allowed, policy.shadow) {
        (true, _) => "allowed",
        (false, true) => "shadow-denied",
        (false, false) => "denied",
    });
    let rendered = policy.headers(decision);
    flow.extra
        .extend(rendered.into_iter().map(|(n, v)| (n.to_owned(), v)));
}

/// The route's limits for the fast path (`crate::fast`), which calls it
/// after every other check of its plan: `Some(())` when the route has none,
/// or when every limit admits the request from the isolate's leases with no
/// object call (`throttle::admit_from_leases`), with the log line and
/// headers as [`apply`] writes them for that answer; `None` (nothing
/// charged, nothing written) when the full path must decide. `now`: the
/// plan's one clock reading.
pub fn at_once(
    gw: &Gateway,
    route: &Route,
    identity: Option<&Identity>,
    headers: &[(String, String)],
    flow: &mut Flow,
    now: u64,
) -> Option<()> {
    let Some(policy) = &route.rate_limit else {
        return Some(());
    };
    let plan = gw.config.plan_for(identity);
    let policy = &*policy.for_plan(plan.tier());
    policy.lease?;
    let keys = storage_keys(policy, route, identity, headers).ok()?;
    let charges = policy.charges(&keys, identity);
    let mut leases = gw.leases.try_borrow_mut().ok()?;
    let decision = throttle::admit_from_leases(&mut *leases, &charges, now)?;
    drop(leases);
    if let PlanChoice::Unknown(tier) = plan {
        flow.log.unknown_tier = Some(tier.chars().take(64).collect());
    }
    // No call, no time passed: the full path still reports the phase.
    flow.timings.add(Phase::Throttle, 0);
    flow.log.limiter_calls = Some(0);
    count(0, 1);
    record(policy, &decision, flow);
    Some(())
}

/// How one limit answered.
enum Outcome {
    /// Admitted from a slice (held, or just granted and pooled); what was
    /// taken goes back to the pool if another limit refuses.
    Pooled(LimitDecision, Taken, GcraState),
    /// Admitted by the object alone: a plain check (`None`) or a slice of
    /// exactly this request's cost.
    Direct(LimitDecision, Option<LeaseGrant>, GcraState),
    /// Refused.
    Refused(LimitDecision, GcraState),
}

impl Outcome {
    fn decision(&self) -> LimitDecision {
        match self {
            Self::Pooled(d, ..) | Self::Direct(d, ..) | Self::Refused(d, _) => *d,
        }
    }
}

/// Checks a request against every limit of `policy`, keyed by `keys`:
/// each from its lease or its object, all at once; if any refuses (or
/// fails), the others give back what they admitted (`throttle::give_back`)
/// and `throttle::combine` makes the decision `check_all` would have.
async fn check(
    env: &Env,
    gw: &Gateway,
    policy: &RateLimitPolicy,
    keys: &[String],
    identity: Option<&Identity>,
    calls: &Cell<u32>,
) -> Result<MultiDecision, EdgeError> {
    let charges = policy.charges(keys, identity);
    let outcomes = join_all(charges.iter().map(|c| one(env, gw, c, policy.lease, calls))).await;
    // A failed limit counts as refusing, so the others give back.
    let admitted: Vec<bool> = outcomes
        .iter()
        .map(|o| o.as_ref().is_ok_and(|o| o.decision().allowed))
        .collect();
    let back = give_back(&admitted);
    let settled = join_all(charges.iter().zip(outcomes).zip(back).map(
        |((charge, outcome), back)| async move {
            let outcome = outcome?;
            if !back {
                return Ok(outcome);
            }
            settle(env, gw, charge, outcome, calls).await
        },
    ))
    .await;
    let mut decisions = Vec::with_capacity(settled.len());
    let mut states = Vec::with_capacity(settled.len());
    for outcome in settled {
        let (d, state) = match outcome? {
            Outcome::Pooled(d, _, s) | Outcome::Direct(d, _, s) | Outcome::Refused(d, s) => (d, s),
        };
        decisions.push(d);
        states.push(state);
    }
    Ok(throttle::combine(decisions, states))
}

/// One limit: from the isolate's lease when it has room, else from the
/// object (asking for a slice when the key is hot here).
async fn one(
    env: &Env,
    gw: &Gateway,
    charge: &Charge<'_>,
    lease: Option<LeaseConfig>,
    calls: &Cell<u32>,
) -> Result<Outcome, EdgeError> {
    let (quota, cost) = (charge.quota, charge.cost);
    let Some(config) = lease else {
        let reply = ask(env, charge.key, &LimiterOp::Check { quota, cost }, calls).await?;
        let d = decision_of(&reply)?;
        let state = state_of(&reply);
        return Ok(match d.allowed {
            true => Outcome::Direct(d, None, state),
            false => Outcome::Refused(d, state),
        });
    };
    let now = now_ms();
    let local = gw.leases.borrow_mut().with(charge, |pool| {
        pool.observe(now);
        if let Some(taken) = pool.take(now, cost, &quota) {
            return Ok(Ok(taken));
        }
        match pool.refusal(now) {
            Some(refused) => Ok(Err(refused)),
            None => Err((
                pool.want(Some(config), &quota, cost),
                pool.lead_ms(Some(config), &quota),
                pool.returns(),
            )),
        }
    });
    let (want, lead_ms, returns) = match local {
        Ok(Ok((d, taken))) => return Ok(Outcome::Pooled(d, taken, GcraState::default())),
        Ok(Err(refused)) => return Ok(Outcome::Refused(refused, GcraState::default())),
        Err(ask_for) => ask_for,
    };
    let op = LimiterOp::Lease {
        quota,
        cost,
        want,
        returns,
        lead_ms,
    };
    let reply = ask(env, charge.key, &op, calls).await?;
    let d = decision_of(&reply)?;
    let state = state_of(&reply);
    let mut leases = gw.leases.borrow_mut();
    match reply.lease {
        Some(grant) if grant.units > cost => {
            let granted = Granted {
                grant,
                decision: d,
                object_now_ms: reply.now_ms,
            };
            Ok(leases
                .with(charge, |pool| pool.add(granted, now, cost, &quota))
                .map_or(Outcome::Direct(d, Some(grant), state), |(d, taken)| {
                    Outcome::Pooled(d, taken, state)
                }))
        }
        Some(grant) => Ok(Outcome::Direct(d, Some(grant), state)),
        // A concurrent request's slice may have come in meanwhile; if not,
        // the refusal stands for the next requests until quota can come.
        None => Ok(leases.with(charge, |pool| {
            let received = now_ms();
            match pool.take(received, cost, &quota) {
                Some((d, taken)) => Outcome::Pooled(d, taken, state),
                None => {
                    pool.note_refusal(d, now, received);
                    Outcome::Refused(d, state)
                }
            }
        })),
    }
}

/// Gives back what `outcome` admitted (another limit refused): to the pool
/// for free, or to the object.
async fn settle(
    env: &Env,
    gw: &Gateway,
    charge: &Charge<'_>,
    outcome: Outcome,
    calls: &Cell<u32>,
) -> Result<Outcome, EdgeError> {
    let (quota, cost) = (charge.quota, charge.cost);
    let op = match &outcome {
        Outcome::Refused(..) => return Ok(outcome),
        Outcome::Pooled(d, taken, state) => {
            let back = gw
                .leases
                .borrow_mut()
                .with(charge, |pool| pool.put_back(taken));
            let d = match back {
                true => LimitDecision {
                    remaining: d.remaining.saturating_add(cost),
                    ..*d
                },
                false => *d,
            };
            return Ok(Outcome::Pooled(d, *taken, *state));
        }
        Outcome::Direct(_, Some(grant), _) => LimiterOp::Return {
            quota,
            returns: vec![grant.unused()],
        },
        Outcome::Direct(_, None, _) => LimiterOp::Refund { quota, cost },
    };
    // A refund that fails leaves the units counted: the request is refused
    // anyway, and the next ones are at worst under-admitted.
    match ask(env, charge.key, &op, calls).await {
        Ok(reply) => Ok(Outcome::Direct(
            decision_of(&reply)?,
            None,
            state_of(&reply),
        )),
        Err(_) => Ok(outcome),
    }
}

/// One call to the object of `key`, counted.
async fn ask(
    env: &Env,
    key: &str,
    op: &LimiterOp,
    calls: &Cell<u32>,
) -> Result<LimiterReply, EdgeError> {
    calls.set(calls.get().saturating_add(1));
    durable::call(env, key, op).await
}

fn decision_of(reply: &LimiterReply) -> Result<LimitDecision, EdgeError> {
    Ok(reply.decision.ok_or(LimiterFault::NoDecision)?)
}

const fn state_of(reply: &LimiterReply) -> GcraState {
    GcraState {
        tat_ns: reply.tat_ns,
    }
}
