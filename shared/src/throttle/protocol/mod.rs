//! The rate-limit protocol between the edge and its limiter objects (one
//! Durable Object per limiter key): the operations and replies on the wire,
//! the object's whole behaviour as one pure step ([`apply`]), what a request
//! charges ([`Charge`], from `RateLimitPolicy::charges`), which limits give
//! back when another refuses ([`give_back`]) and the combined decision
//! (`multi::combine`).
//!
//! The object only loads its state, reads its clock, calls [`apply`] and
//! stores the state it returns; everything it decides is decided here.
//!
//! ```
//! use tidegate_policy::throttle::{apply, LimiterOp, Quota};
//!
//! let quota = Quota::per_second(2);
//! let now = 1_700_000_000_000;
//! let (first, state) = apply(None, now, &LimiterOp::Check { quota, cost: 1 });
//! assert_eq!(first.decision.map(|d| d.remaining), Some(1));
//! let (second, state) = apply(Some(state), now, &LimiterOp::Check { quota, cost: 1 });
//! assert!(second.decision.is_some_and(|d| d.allowed));
//! let (third, _) = apply(Some(state), now, &LimiterOp::Check { quota, cost: 1 });
//! assert!(third.decision.is_some_and(|d| !d.allowed));
//! ```
//!
//! # Leases
//!
//! [`LimiterOp::Lease`] grants a *slice* of the object's schedule instead of
//! one request's units: `n` units (`want` at most, at least `cost`, as many
//! as fit the tolerance) occupy `[start, end)` with `start = max(TAT, now)`
//! and `end = start + n·T`, exactly as `n` direct checks at that instant
//! would have; for a key far below its limit, `start = max(TAT, now +
//! lead)` ([`lead_for`]), so requests that come slower than `T` still find
//! slots after their arrival. The holder admits its own requests inside the slice with a
//! local GCRA (`throttle::LeasePool`): a request at time `s` (the object's
//! clock, estimated from above) takes the slot `[max(used, s), max(used, s) +
//! cost·T)` if it ends by `end`. [`LimiterOp::Return`] hands back the unused
//! tail `[used, end)`, which the object takes back only while the slice is
//! the last thing in its schedule (`TAT == end`).
//!
//! *Why this is exact.* Every admitted request owns a slot of length
//! `cost·T` in the object's schedule: a direct check the one its TAT moved
//! over, a leased request the one it took in its slice. Slots never overlap:
//! slices are laid end to end, a holder's slots are laid end to end inside
//! its slice, and a return shortens the schedule only from its top, over
//! slots nobody holds (the holder drops the slice before sending it). A slot
//! starts no earlier than its request (`max(used, s) ≥ s`, and `s`
//! over-estimates the object's clock) and ends no later than `end ≤ t +
//! burst·T ≤ s + burst·T` (`t ≤ s` is the grant time, and the grant was
//! admitted only if its end fit). So the requests admitted in `[a, b]` own
//! disjoint slots inside `[a, b + burst·T]`: `Σ cost·T ≤ burst·T + (b − a)`,
//! the bound a direct GCRA check at each admission time gives, and at one
//! instant (`a = b`) at most `burst`. Nothing here depends on how leases are
//! sized, on how many holders there are, or on when (or whether) they return.
//!
//! *What it costs.* A slice's units nobody takes before their slot time
//! passes are lost (a direct GCRA loses an idle bucket's time the same way,
//! but a lease also reserves them away from other isolates meanwhile), and
//! the holder's clock estimate runs late by up to the grant's round trip plus
//! a margin, so its slots start that much later. Both are bounded per slice:
//! at most `n` units, and `(round trip + margin) / T` units. A grant made
//! while the key's TAT is less than the lead ahead of now skips the
//! schedule up to `now + lead`: at most `lead / T` units of the burst, which
//! come back only as the key runs under its limit ([`lead_for`] keeps the
//! lead to an eighth of the tolerance; the holder asks for its slice's
//! life, `LeasePool::lead_ms`, at most a 32nd of the tolerance when it is
//! longer than the window).

use serde::{Deserialize, Serialize};

use super::gcra::{
    check, clamp_u64, decision, effective_tat, ms_to_ns, refund, GcraState, LimitDecision, Quota,
};

/// A request to one limiter object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LimiterOp {
    /// Admit `cost` if the quota allows, consuming it.
    Check {
        /// The quota, with the caller's overrides applied.
        quota: Quota,
        /// Units this request costs.
        cost: u64,
    },
    /// Give back `cost` admitted earlier by a `Check` (another limit
    /// denied).
    Refund {
        /// The quota the units were admitted under.
        quota: Quota,
        /// Units to give back.
        cost: u64,
    },
    /// Report the state without changing it.
    Peek,
    /// Take the slices in `returns` back, then admit `cost` and lease up to
    /// `want` units in all (see the module docs).
    Lease {
        /// The quota, with the caller's overrides applied.
        quota: Quota,
        /// Units the calling request itself costs.
        cost: u64,
        /// Units wanted in all, the request's own cost included; at most
        /// `cost` asks for a plain check (whose slice can still be returned).
        want: u64,
        /// Slices the caller is done with.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        returns: Vec<LeaseReturn>,
        /// How far ahead of now (ms) the slice may start, so requests the
        /// caller admits from it over that long find slots after their own
        /// arrival; the object uses it only where it is cheap (see
        /// `lead_for`). 0: the slice starts at `max(TAT, now)`.
        #[serde(default, skip_serializing_if = "is_zero")]
        lead_ms: u64,
    },
    /// Take the slices in `returns` back.
    Return {
        /// The quota, for the decision in the reply.
        quota: Quota,
        /// Slices the caller is done with.
        returns: Vec<LeaseReturn>,
    },
}

/// A limiter object's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimiterReply {
    /// The decision (every op but `peek`).
    pub decision: Option<LimitDecision>,
    /// The stored TAT after the operation, ns since the epoch (0: empty).
    pub tat_ns: u64,
    /// Whether a state is stored at all.
    pub stored: bool,
    /// The object's clock, ms since the epoch.
    pub now_ms: u64,
    /// The slice granted by an admitted `lease`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseGrant>,
}

/// A slice of an object's schedule, granted to one caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaseGrant {
    /// Units in the slice (the request's own cost included).
    pub units: u64,
    /// Where the slice starts, ns since the epoch (the object's clock).
    pub start_ns: u64,
    /// Where it ends: the object's TAT right after the grant.
    pub end_ns: u64,
}

/// A slice handed back: `[used_ns, end_ns)` was never used and never will be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaseReturn {
    /// The slice's start, as granted.
    pub start_ns: u64,
    /// The slice's end, as granted.
    pub end_ns: u64,
    /// Where its used part ends (`start_ns` when nothing was used).
    pub used_ns: u64,
}

impl LeaseGrant {
    /// The whole slice handed back unused (the request it was granted for
    /// was refused by another limit).
    pub const fn unused(&self) -> LeaseReturn {
        LeaseReturn {
            start_ns: self.start_ns,
            end_ns: self.end_ns,
            used_ns: self.start_ns,
        }
    }
}

/// One limit a request is charged: the object's key, the quota (overrides
/// applied) and the cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge<'a> {
    /// The limiter key (`RateLimitPolicy::storage_keys`).
    pub key: &'a str,
    /// The quota for this caller.
    pub quota: Quota,
    /// Units this request costs under this limit.
    pub cost: u64,
}

/// The object's step: carries out `op` at `now_ms` on the `stored` state
/// (`None`: nothing stored) and returns the reply and the state to store
/// (store it when it differs from `stored`; `reply.stored` says whether any
/// state exists at all).
pub fn apply(stored: Option<GcraState>, now_ms: u64, op: &LimiterOp) -> (LimiterReply, GcraState) {
    let state = stored.unwrap_or_default();
    let (decision, next, lease) = match op {
        LimiterOp::Check { quota, cost } => {
            let (d, next) = check(state, now_ms, *cost, quota);
            (Some(d), next, None)
        }
        LimiterOp::Refund { quota, cost } => {
            let next = refund(state, now_ms, *cost, quota);
            (Some(settled(next, now_ms, quota)), next, None)
        }
        LimiterOp::Peek => (None, state, None),
        LimiterOp::Lease {
            quota,
            cost,
            want,
            returns,
            lead_ms,
        } => {
            let returned = take_back(state, now_ms, returns);
            let ask = Ask {
                cost: *cost,
                want: *want,
                lead_ms: *lead_ms,
            };
            let (d, next, lease) = grant(returned, now_ms, ask, quota);
            (Some(d), next, lease)
        }
        LimiterOp::Return { quota, returns } => {
            let next = take_back(state, now_ms, returns);
            (Some(settled(next, now_ms, quota)), next, None)
        }
    };
    let exists = stored.is_some() || next != GcraState::default();
    let reply = LimiterReply {
        decision,
        tat_ns: next.tat_ns,
        stored: exists,
        now_ms,
        lease,
    };
    (reply, next)
}

/// The decision after units went back: the state as it now is, reported
/// as admitted (the request itself was refused elsewhere).
fn settled(state: GcraState, now_ms: u64, quota: &Quota) -> LimitDecision {
    let (peek, _) = check(state, now_ms, 0, quota);
    LimitDecision {
        allowed: true,
        ..peek
    }
}

/// Takes back each returned slice that is the top of the schedule, in
/// order (a later return can uncover an earlier one's end).
fn take_back(state: GcraState, now_ms: u64, returns: &[LeaseReturn]) -> GcraState {
    let now = clamp_u64(ms_to_ns(now_ms));
    returns.iter().fold(state, |s, r| {
        // Only the top: anything laid after the slice would slide over
        // slots its holder may still be using.
        if s.tat_ns != r.end_ns || r.end_ns == 0 {
            return s;
        }
        let used = r.used_ns.clamp(r.start_ns.min(r.end_ns), r.end_ns);
        GcraState {
            tat_ns: used.max(now).min(s.tat_ns),
        }
    })
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a lease asks for.
#[derive(Debug, Clone, Copy)]
struct Ask {
    cost: u64,
    want: u64,
    lead_ms: u64,
}

/// The lead a slice may start ahead of now: `lead_ms` when it holds at
/// least [`MIN_LEAD_SLOTS`] slots (shorter, the slice's own slots already
/// outlast the caller's requests) and ties up at most an eighth of the
/// tolerance; else none. A key far below its limit sees requests much
/// sparser than its emission interval `T`, so a slice at `max(TAT, now)`
/// would pass (its slots in the past) before the next request: led, its
/// slots lie after every request of the lead. The cost is the gap between
/// the TAT and the lead, in the future only for at most the lead: up to
/// `lead / T` units of the burst, while the key runs at its limit.
pub fn lead_for(lead_ms: u64, quota: &Quota) -> u128 {
    let lead = ms_to_ns(lead_ms);
    let t = quota.emission_interval_ns();
    let useful = lead >= t.saturating_mul(MIN_LEAD_SLOTS);
    let cheap = lead.saturating_mul(8) <= quota.tolerance_ns();
    if useful && cheap {
        lead
    } else {
        0
    }
}

/// Fewest emission intervals a lead must span to be used.
pub const MIN_LEAD_SLOTS: u128 = 4;

/// Admits `cost` and leases up to `want` units in all, as many as fit.
fn grant(
    state: GcraState,
    now_ms: u64,
    ask: Ask,
    quota: &Quota,
) -> (LimitDecision, GcraState, Option<LeaseGrant>) {
    let Ask {
        cost,
        want,
        lead_ms,
    } = ask;
    let now = ms_to_ns(now_ms);
    let t = quota.emission_interval_ns();
    let tau = quota.tolerance_ns();
    let lead = match want > cost {
        true => lead_for(lead_ms, quota),
        false => 0,
    };
    let start = effective_tat(state, now, tau).max(now.saturating_add(lead));
    let ahead = start.saturating_sub(now);
    let fit = u64::try_from(tau.saturating_sub(ahead) / t.max(1)).unwrap_or(u64::MAX);
    if quota.admits_nothing() || cost == 0 || fit < cost {
        // Exactly a direct check's answer (a refusal, or a cost-0 peek).
        let (d, next) = check(state, now_ms, cost, quota);
        return (d, next, None);
    }
    let units = want.max(cost).min(fit);
    let end = start.saturating_add(u128::from(units).saturating_mul(t));
    let d = decision(quota, true, now, end, t, tau, None);
    let grant = LeaseGrant {
        units,
        start_ns: clamp_u64(start),
        end_ns: clamp_u64(end),
    };
    (
        d,
        GcraState {
            tat_ns: grant.end_ns,
        },
        Some(grant),
    )
}

/// Which limits give back what they admitted, given whether each admitted
/// (a limit that could not be asked counts as refusing): all the admitted
/// ones when any refused, none when all admitted (two-phase: each object is
/// asked on its own, so a refusal is only known afterwards).
pub fn give_back(admitted: &[bool]) -> Vec<bool> {
    let refused = admitted.iter().any(|a| !a);
    admitted.iter().map(|a| refused && *a).collect()
}

#[cfg(test)]
mod tests;
