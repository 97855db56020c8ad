//! The holder's side of limiter leases (see `protocol` for the object's side
//! and why leasing stays exact): the slices one isolate holds for one
//! limiter key and quota, the local admission inside them, how much to ask
//! for, and what to hand back.
//!
//! The isolate keeps one [`LeasePool`] per (limiter key, quota). A request
//! first [`LeasePool::take`]s from it; when nothing fits, it calls the object
//! with `want = pool.want(..)` and the pool's [`LeasePool::returns`], then
//! [`LeasePool::add`]s the slice it got (taking its own cost). A request the
//! object refused takes from the pool again: a concurrent request's slice
//! may have arrived meanwhile (slices from concurrent calls are pooled; no
//! request ever waits for another). A request refused by another limit
//! [`LeasePool::put_back`]s what it took. A refusal from the object is
//! noted ([`LeasePool::note_refusal`]) and repeated without a call until the
//! refused request could fit again ([`LeasePool::refusal`]).
//!
//! Sizing ([`LeasePool::want`], [`LeasePool::lead_ms`]): the pool's
//! [`RateMeter`] estimates the key's rate in this isolate from its second
//! request on; a slice should hold the requests of its *life*, which is the
//! configured window for a busy key and, for a key too slow to bring
//! [`SLICE_REQUESTS`] requests in a window (tens a second), as long as those
//! requests take, up to [`LIFE_STRETCH`] windows ([`MAX_LIFE_MS`] at most),
//! where the object will lead the slice by that life (`protocol::lead_for`)
//! and the life is at most the tolerance over [`STRETCH_SHARE`]. So such a
//! key makes about one object call per `SLICE_REQUESTS` requests instead of
//! one per window. What it can cost (under-admission; exactness does not
//! depend on sizing): a slice is still at most `burst / LEASE_SHARE` units,
//! and what its holder does not use is withheld from other isolates until
//! its slots pass (at most its life after the grant, plus `units × T`) or it
//! is handed back on the holder's next call; and a slice granted while the
//! key's TAT is less than the lead ahead of now skips the schedule up to
//! the lead, at most `burst / STRETCH_SHARE` units for a stretched life,
//! which a key whose demand then exceeds its limit never gets back.
//!
//! Clocks: a slice is laid out on the object's clock; the isolate converts
//! its own readings with the offset `object_now − sent + CLOCK_MARGIN_MS`
//! measured on the grant's call, which over-estimates the object's clock
//! (the object read its clock after the call was sent), so slots are placed
//! late, never early. This assumes both clocks advance at the same rate
//! within [`CLOCK_MARGIN_MS`] over a slice's life (at most [`MAX_LIFE_MS`]
//! plus its units' time).
//!
//! ```
//! use tidegate_policy::throttle::{apply, Granted, LeaseConfig, LeasePool, LimiterOp, Quota};
//!
//! let quota = Quota::per_second(1_000);
//! let config = LeaseConfig { window_ms: 250 };
//! let mut pool = LeasePool::default();
//! let now = 1_700_000_000_000;
//! for _ in 0..50 {
//!     pool.observe(now);
//! }
//! let want = pool.want(Some(config), &quota, 1);
//! assert!(want > 1, "a hot key asks for more than its own cost");
//! let op = LimiterOp::Lease { quota, cost: 1, want, returns: pool.returns(), lead_ms: 250 };
//! let (reply, _state) = apply(None, now, &op);
//! let (decision, grant) = (reply.decision.unwrap(), reply.lease.unwrap());
//! let granted = Granted { grant, decision, object_now_ms: reply.now_ms };
//! assert!(pool.add(granted, now, 1, &quota).is_some());
//! // The next requests are admitted from the slice, without a call.
//! assert!(pool.take(now, 1, &quota).is_some());
//! ```

use std::time::Duration;

use super::gcra::{clamp_u64, ms_to_ns, ns_to_duration, GcraState, LimitDecision, Quota};
use super::multi::{combine, MultiDecision};
use super::protocol::{lead_for, Charge, LeaseGrant, LeaseReturn};

/// Milliseconds added to the measured clock offset: the two clocks are read
/// in whole milliseconds, and a Worker's clock stands still while it runs.
pub const CLOCK_MARGIN_MS: u64 = 2;

/// Most slices held per key: concurrent calls each bring one, and a burst
/// of them must all be usable; past it the slice with the least room left
/// is dropped (its units are lost, never over-admitted).
pub const MAX_SLICES: usize = 32;

/// A slice is at most this fraction of the burst (`burst / LEASE_SHARE`),
/// so isolates sharing a key do not starve each other.
pub const LEASE_SHARE: u64 = 8;

/// Below this many requests' units per slice life, no lease: one call per
/// request, as without leases.
pub const MIN_LEASE_UNITS: u64 = 2;

/// Requests a slice should hold: a key too slow to bring this many in one
/// window gets a longer life ([`LeasePool::life_ms`]), so it makes about
/// one object call per this many requests.
pub const SLICE_REQUESTS: u64 = 32;

/// A slice lives at most this many windows.
pub const LIFE_STRETCH: u64 = 8;

/// A slice lives at most this long, ms, whatever the window (the clocks are
/// assumed to run at the same rate within [`CLOCK_MARGIN_MS`] over it).
pub const MAX_LIFE_MS: u64 = 5_000;

/// A life past the window is at most the quota's tolerance over this: the
/// lead it asks for can skip at most `burst / STRETCH_SHARE` units of the
/// schedule (see [`LeasePool::life_ms`]).
pub const STRETCH_SHARE: u64 = 32;

/// Leasing turned on for a route: how long a slice should last at the
/// key's observed rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseConfig {
    /// Target life of a slice, ms: a slice holds the units this isolate is
    /// expected to use in this long.
    pub window_ms: u64,
}

impl LeaseConfig {
    /// The default window.
    pub const DEFAULT_WINDOW: Duration = Duration::from_millis(250);
}

/// Requests per second one isolate sees for one key, counted over spans of
/// at least [`METER_SPAN_MS`]: the last closed span's rate, or the open
/// span's if that is larger. A span starts at the key's first request after
/// [`METER_SPAN_MS`] without one (the meter forgets an idle key), so a key
/// that comes back is measured from its second request on, not from the
/// next whole second: the open span's rate is `(requests − 1) / elapsed`,
/// `elapsed` taken as at least the floor the caller gives (the lease window,
/// and never under [`METER_FLOOR_MS`]): a burst inside one window reads as
/// that many requests per window, not as thousands a second, so a burst
/// that stops leaves about its own size leased (or [`SLICE_REQUESTS`], for
/// a stretched life), not a window of its momentary rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateMeter {
    /// The open span's first request, ms.
    start_ms: u64,
    /// The last request, ms.
    last_ms: u64,
    /// Requests in the open span (0: none seen yet).
    count: u64,
    /// The last closed span's rate, requests per second.
    previous: u64,
}

/// Shortest span the meter closes, and the idle time after which it forgets
/// a key, ms.
pub const METER_SPAN_MS: u64 = 1_000;

/// Least elapsed time, ms, the open span's rate is computed over, whatever
/// the window.
pub const METER_FLOOR_MS: u64 = 100;

impl RateMeter {
    /// Notes one request at `now_ms`.
    pub fn observe(&mut self, now_ms: u64) {
        if self.count == 0 || now_ms.saturating_sub(self.last_ms) >= METER_SPAN_MS {
            *self = Self {
                start_ms: now_ms,
                last_ms: now_ms,
                count: 1,
                previous: 0,
            };
            return;
        }
        let elapsed = now_ms.saturating_sub(self.start_ms);
        if elapsed >= METER_SPAN_MS {
            self.previous =
                clamp_u64(u128::from(self.count).saturating_mul(1_000) / u128::from(elapsed));
            self.start_ms = now_ms;
            self.count = 1;
        } else {
            self.count = self.count.saturating_add(1);
        }
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// The estimated rate, requests per second, the open span's elapsed time
    /// taken as at least `floor_ms` (and [`METER_FLOOR_MS`]).
    pub fn per_second(&self, floor_ms: u64) -> u64 {
        let elapsed = self
            .last_ms
            .saturating_sub(self.start_ms)
            .max(floor_ms)
            .max(METER_FLOOR_MS);
        let open =
            u128::from(self.count.saturating_sub(1)).saturating_mul(1_000) / u128::from(elapsed);
        clamp_u64(open).max(self.previous)
    }
}

/// One held slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slice {
    grant: LeaseGrant,
    /// Where the used part ends, ns on the object's clock.
    used_ns: u64,
    /// Object clock minus isolate clock, ms, estimated from above.
    offset_ms: i64,
    /// The object's decision at the grant (its `remaining` excludes the
    /// whole slice).
    decision: LimitDecision,
}

impl Slice {
    fn object_ns(&self, now_ms: u64) -> u128 {
        let ms = i128::from(now_ms).saturating_add(i128::from(self.offset_ms));
        ms_to_ns(u64::try_from(ms.max(0)).unwrap_or(u64::MAX))
    }
}

/// A slice as the object granted it, with its decision and clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    /// The slice.
    pub grant: LeaseGrant,
    /// The object's decision (its `remaining` excludes the whole slice).
    pub decision: LimitDecision,
    /// The object's clock when it granted, ms.
    pub object_now_ms: u64,
}

/// What [`LeasePool::take`] took, for [`LeasePool::put_back`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    end_ns: u64,
    before_ns: u64,
    after_ns: u64,
}

/// The slices one isolate holds for one limiter key and quota, and the
/// key's rate as this isolate sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeasePool {
    slices: Vec<Slice>,
    meter: RateMeter,
    refused: Option<Refusal>,
}

/// The object's last refusal, repeated locally until more quota can come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Refusal {
    /// Isolate clock, ms: refuse locally before this.
    until_ms: u64,
    /// Isolate clock when the refusal arrived.
    received_ms: u64,
    decision: LimitDecision,
}

impl LeasePool {
    /// Notes a request for this key at `now_ms` (the isolate's clock).
    pub fn observe(&mut self, now_ms: u64) {
        self.meter.observe(now_ms);
    }

    /// How long a slice should last, ms: long enough to hold
    /// [`SLICE_REQUESTS`] requests at the rate this isolate sees the key, at
    /// least the configured window and at most [`LIFE_STRETCH`] windows,
    /// [`MAX_LIFE_MS`] and the quota's tolerance over [`STRETCH_SHARE`]. A
    /// busy key (`SLICE_REQUESTS` or more per window) gets the window; a
    /// moderately busy one (tens of requests a second) a longer life, so its
    /// slice is not spent on a handful of requests. A life longer than the
    /// window only where the object will lead the slice by it
    /// (`protocol::lead_for`): without the lead, a slice's slots pass with
    /// time whatever its life, and a bigger slice would lose more of them.
    /// The lead is what a longer life costs: a slice granted while the
    /// key's TAT is less than the lead ahead of now skips the schedule up to
    /// `now + lead`, units nobody is admitted in; they come back only as the
    /// key runs under its limit, so a key whose demand then exceeds its limit
    /// loses them (up to `lead / T`: `burst / STRETCH_SHARE` for a stretched
    /// life, `window / T` as before for the window).
    pub fn life_ms(&self, config: LeaseConfig, quota: &Quota) -> u64 {
        let window = config.window_ms;
        let tolerance_ms = clamp_u64(quota.tolerance_ns() / 1_000_000);
        let longest = window
            .saturating_mul(LIFE_STRETCH)
            .min(MAX_LIFE_MS)
            .min(tolerance_ms / STRETCH_SHARE)
            .max(window);
        let rate = self.meter.per_second(window);
        if rate == 0 {
            return window;
        }
        let life = SLICE_REQUESTS
            .saturating_mul(1_000)
            .div_ceil(rate)
            .clamp(window, longest);
        if life > window && lead_for(life, quota) == 0 {
            return window;
        }
        life
    }

    /// Units to ask the object for, the request's own `cost` included: the
    /// units this isolate is expected to use within the slice's life
    /// ([`Self::life_ms`]) at the rate it sees, at most `burst /
    /// LEASE_SHARE`; just `cost` (no lease) with leasing off or below
    /// [`MIN_LEASE_UNITS`] requests' worth in that life.
    pub fn want(&self, config: Option<LeaseConfig>, quota: &Quota, cost: u64) -> u64 {
        let Some(config) = config else {
            return cost;
        };
        let expected = u128::from(self.meter.per_second(config.window_ms))
            .saturating_mul(u128::from(cost))
            .saturating_mul(u128::from(self.life_ms(config, quota)))
            / 1_000;
        let expected = clamp_u64(expected);
        if expected < MIN_LEASE_UNITS.saturating_mul(cost.max(1)) {
            return cost;
        }
        expected.min(quota.burst / LEASE_SHARE).max(cost)
    }

    /// How far ahead of now (ms) the slice may start (`LimiterOp::Lease`'s
    /// `lead_ms`): its life ([`Self::life_ms`]), so that a key far below its
    /// limit finds slots after every request of that life (the object uses
    /// the lead only where it is cheap: `protocol::lead_for`). 0 with
    /// leasing off.
    pub fn lead_ms(&self, config: Option<LeaseConfig>, quota: &Quota) -> u64 {
        config.map_or(0, |c| self.life_ms(c, quota))
    }

    /// Admits `cost` from a held slice at `now_ms` (the isolate's clock):
    /// the decision to report and what was taken, or `None` when no slice
    /// has room. Slices ending soonest are used first.
    pub fn take(
        &mut self,
        now_ms: u64,
        cost: u64,
        quota: &Quota,
    ) -> Option<(LimitDecision, Taken)> {
        let t = quota.emission_interval_ns();
        let need = u128::from(cost).saturating_mul(t);
        let found = self
            .slices
            .iter_mut()
            .filter(|s| {
                let at = u128::from(s.used_ns).max(s.object_ns(now_ms));
                at.saturating_add(need) <= u128::from(s.grant.end_ns)
            })
            .min_by_key(|s| s.grant.end_ns)?;
        let now = found.object_ns(now_ms);
        let before = found.used_ns;
        let after = clamp_u64(u128::from(before).max(now).saturating_add(need));
        found.used_ns = after;
        let taken = Taken {
            end_ns: found.grant.end_ns,
            before_ns: before,
            after_ns: after,
        };
        Some((local_decision(found, now, t), taken))
    }

    /// Hands back what `taken` took (another limit refused the request).
    /// Only while nothing was taken from the slice since: a later slot
    /// cannot slide into the past. Returns whether it went back.
    pub fn put_back(&mut self, taken: &Taken) -> bool {
        let slice = self
            .slices
            .iter_mut()
            .find(|s| s.grant.end_ns == taken.end_ns && s.used_ns == taken.after_ns);
        match slice {
            Some(s) => {
                s.used_ns = taken.before_ns;
                true
            }
            None => false,
        }
    }

    /// Every held slice, handed back for the next call to the object (which
    /// is made because none of them has room); the pool keeps none.
    pub fn returns(&mut self) -> Vec<LeaseReturn> {
        self.slices
            .drain(..)
            .map(|s| LeaseReturn {
                start_ns: s.grant.start_ns,
                end_ns: s.grant.end_ns,
                used_ns: s.used_ns,
            })
            .collect()
    }

    /// Adds the slice the object granted on a call sent at `sent_ms` (the
    /// isolate's clock), and admits the calling request from it at the
    /// object's decision time (its first slot, as a direct check would):
    /// the decision to report and what was taken. `None` when the slice has
    /// no room for `cost` (it was not granted for this request). A full
    /// pool drops its slice with the least room, unreturned (its units are lost,
    /// never over-admitted).
    pub fn add(
        &mut self,
        granted: Granted,
        sent_ms: u64,
        cost: u64,
        quota: &Quota,
    ) -> Option<(LimitDecision, Taken)> {
        let Granted {
            grant,
            decision,
            object_now_ms,
        } = granted;
        let t = quota.emission_interval_ns();
        let first = u128::from(grant.start_ns).saturating_add(u128::from(cost).saturating_mul(t));
        if first > u128::from(grant.end_ns) {
            return None;
        }
        let offset = i128::from(object_now_ms) - i128::from(sent_ms) + i128::from(CLOCK_MARGIN_MS);
        let offset_ms =
            i64::try_from(offset).unwrap_or(if offset < 0 { i64::MIN } else { i64::MAX });
        if self.slices.len() >= MAX_SLICES {
            if let Some(i) = self
                .slices
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.grant.end_ns.saturating_sub(s.used_ns))
                .map(|(i, _)| i)
            {
                self.slices.swap_remove(i);
            }
        }
        let slice = Slice {
            grant,
            used_ns: clamp_u64(first),
            offset_ms,
            decision,
        };
        self.slices.push(slice);
        self.refused = None;
        let taken = Taken {
            end_ns: grant.end_ns,
            before_ns: grant.start_ns,
            after_ns: slice.used_ns,
        };
        Some((local_decision(&slice, ms_to_ns(object_now_ms), t), taken))
    }

    /// Notes the object's refusal of a call sent at `sent_ms` and answered
    /// at `received_ms` (the isolate's clock): until `sent_ms +
    /// retry_after`, no earlier than quota can come back, [`Self::refusal`]
    /// repeats it without a call. Refusing is never over-admission; a
    /// slice another isolate hands back meanwhile goes unused until then
    /// (under-admission bounded by one `retry_after`, at most one emission
    /// interval for a unit cost).
    pub fn note_refusal(&mut self, decision: LimitDecision, sent_ms: u64, received_ms: u64) {
        let Some(retry) = decision.retry_after.filter(|_| !decision.allowed) else {
            return;
        };
        let retry_ms = u64::try_from(retry.as_millis()).unwrap_or(u64::MAX);
        self.refused = Some(Refusal {
            until_ms: sent_ms.saturating_add(retry_ms),
            received_ms,
            decision,
        });
    }

    /// The noted refusal, still valid at `now_ms` (the isolate's clock),
    /// with its waits shortened by the time since it arrived.
    pub fn refusal(&mut self, now_ms: u64) -> Option<LimitDecision> {
        let r = self.refused?;
        if now_ms >= r.until_ms {
            self.refused = None;
            return None;
        }
        let elapsed = Duration::from_millis(now_ms.saturating_sub(r.received_ms));
        Some(LimitDecision {
            reset_after: r.decision.reset_after.saturating_sub(elapsed),
            retry_after: r.decision.retry_after.map(|w| w.saturating_sub(elapsed)),
            ..r.decision
        })
    }

    /// Whether the pool holds any slice.
    pub fn is_empty(&self) -> bool {
        self.slices.is_empty()
    }
}

/// Where an adapter keeps its lease pools (one per limiter key and quota).
pub trait LeasePools {
    /// Runs `f` on the pool of `charge`'s key and quota (an empty one if
    /// none is held yet).
    fn with_pool<R>(&mut self, charge: &Charge<'_>, f: impl FnOnce(&mut LeasePool) -> R) -> R;
}

/// A request charged `charges` admitted from held slices alone at `now_ms`
/// (the isolate's clock), with no call to any object, for the edge's
/// synchronous fast path: the decision `throttle::combine` makes of each
/// limit's, exactly what the full path decides when every limit is admitted
/// from its pool. `None` when any charge finds no room in its pool (a cold
/// key, a spent slice, a noted refusal: the object must be asked, by the
/// full path), after handing back, in reverse order, what the others took:
/// a declined request charges nothing. The pools observe the request only
/// when it is admitted here (the full path observes a declined one), so
/// each request is counted once by the rate meters.
pub fn admit_from_leases(
    pools: &mut impl LeasePools,
    charges: &[Charge<'_>],
    now_ms: u64,
) -> Option<MultiDecision> {
    let mut taken: Vec<(LimitDecision, Taken)> = Vec::with_capacity(charges.len());
    for charge in charges {
        let got = pools.with_pool(charge, |pool| pool.take(now_ms, charge.cost, &charge.quota));
        match got {
            Some(got) => taken.push(got),
            None => {
                for (charge, (_, t)) in charges.iter().zip(&taken).rev() {
                    pools.with_pool(charge, |pool| pool.put_back(t));
                }
                return None;
            }
        }
    }
    for charge in charges {
        pools.with_pool(charge, |pool| pool.observe(now_ms));
    }
    let states = vec![GcraState::default(); taken.len()];
    Some(combine(taken.into_iter().map(|(d, _)| d).collect(), states))
}

/// The decision for a request admitted from `slice` at `now` (ns, the
/// object's clock): the object's `remaining` at the grant (which excludes
/// the whole slice) plus the unit requests still left in the slice, so it
/// never claims more than the object could have granted this key then.
fn local_decision(slice: &Slice, now: u128, t: u128) -> LimitDecision {
    let end = u128::from(slice.grant.end_ns);
    let left = end.saturating_sub(u128::from(slice.used_ns)) / t.max(1);
    let left = u64::try_from(left).unwrap_or(u64::MAX);
    LimitDecision {
        allowed: true,
        remaining: slice.decision.remaining.saturating_add(left),
        reset_after: ns_to_duration(end.saturating_sub(now)),
        retry_after: None,
        ..slice.decision
    }
}

#[cfg(test)]
mod tests;
