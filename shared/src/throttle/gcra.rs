//! GCRA, the generic cell rate algorithm: an exact rate limiter whose whole
//! state is one timestamp.
//!
//! A [`Quota`] of `limit` per `period` spaces requests one *emission interval*
//! `T = ceil(period / limit)` apart, and tolerates `burst` of them at once.
//! The state is the *theoretical arrival time* (TAT): when the bucket would be
//! empty again if no more requests came. A request of `cost` at `now` is
//! admitted iff `max(TAT, now) + cost·T − now ≤ burst·T`, and then moves the
//! TAT forward by `cost·T`.
//!
//! Consequences worth knowing:
//! - `burst` unit requests arriving at the same instant are all admitted and
//!   the next one is denied: exactly `min(N, burst)` of `N`.
//! - Over any window of length `W`, admitted cost never exceeds
//!   `burst + floor(W / T)`. `T` is rounded *up*, so the sustained rate never
//!   exceeds the configured one.
//! - The state does not depend on the quota, so a changed config never
//!   corrupts stored state. A TAT further ahead than the current quota allows
//!   (the quota was loosened, e.g. 10/day → 10/s) counts as an exhausted
//!   bucket, not as a day-long debt: [`check`] rewrites it to `now + burst·T`,
//!   which is equivalent under the current quota.
//!
//! All arithmetic is done in `u128` nanoseconds and saturates: no input makes
//! these functions panic.

use std::time::Duration;

use serde::{Deserialize, Serialize};

const NS_PER_MS: u128 = 1_000_000;
const NS_PER_SEC: u128 = 1_000_000_000;

/// A rate limit policy: `limit` units per `period`, with up to `burst` units
/// admitted at once.
///
/// Plain, already-validated data built by the config module. Degenerate values
/// do not panic: a `limit` or `burst` of 0 admits nothing, and a zero `period`
/// is treated as a 1 ns emission interval (practically unlimited; the config
/// module should reject it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Quota {
    /// Units admitted per `period` at the sustained rate.
    pub limit: u64,
    /// The span `limit` refers to.
    pub period: Duration,
    /// Units that may be admitted at once from a full bucket; normally `limit`.
    pub burst: u64,
}

impl Quota {
    /// `limit` units per `period`, with a burst of `limit`.
    pub const fn new(limit: u64, period: Duration) -> Self {
        Self {
            limit,
            period,
            burst: limit,
        }
    }

    /// `n` units per second.
    pub const fn per_second(n: u64) -> Self {
        Self::new(n, Duration::from_secs(1))
    }

    /// `n` units per minute.
    pub const fn per_minute(n: u64) -> Self {
        Self::new(n, Duration::from_secs(60))
    }

    /// `n` units per hour.
    pub const fn per_hour(n: u64) -> Self {
        Self::new(n, Duration::from_secs(3_600))
    }

    /// `n` units per day.
    pub const fn per_day(n: u64) -> Self {
        Self::new(n, Duration::from_secs(86_400))
    }

    /// The same quota with a different burst.
    pub const fn with_burst(mut self, burst: u64) -> Self {
        self.burst = burst;
        self
    }

    /// Whether this quota can never admit anything.
    pub const fn admits_nothing(&self) -> bool {
        self.limit == 0 || self.burst == 0
    }

    /// The emission interval `T` in nanoseconds: `ceil(period / limit)`, at
    /// least 1. Rounding up keeps the sustained rate at or below the quota.
    /// Meaningless (returns 1) when `limit` is 0.
    pub fn emission_interval_ns(&self) -> u128 {
        if self.limit == 0 {
            return 1;
        }
        self.period
            .as_nanos()
            .div_ceil(u128::from(self.limit))
            .max(1)
    }

    /// The delay variation tolerance `burst · T` in nanoseconds: how far ahead
    /// of now the TAT may run.
    pub(crate) fn tolerance_ns(&self) -> u128 {
        u128::from(self.burst).saturating_mul(self.emission_interval_ns())
    }
}

/// The stored state of one limiter key: its theoretical arrival time.
///
/// `Default` is the empty bucket. Independent of the quota, so it survives a
/// config change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GcraState {
    /// Theoretical arrival time, nanoseconds since the Unix epoch.
    pub tat_ns: u64,
}

impl GcraState {
    /// Whether the bucket is full again at `now_ms`, so the stored state is
    /// equivalent to [`GcraState::default`] and may be deleted.
    pub fn is_idle(&self, now_ms: u64) -> bool {
        u128::from(self.tat_ns) <= ms_to_ns(now_ms)
    }

    /// The first millisecond at which [`GcraState::is_idle`] holds, e.g. for
    /// a Durable Object alarm that garbage-collects the key.
    pub fn idle_at_ms(&self) -> u64 {
        self.tat_ns.div_ceil(1_000_000)
    }
}

/// The outcome of one rate-limit check, with what the response headers need.
/// Serialisable, so a Durable Object can send it to the Worker as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitDecision {
    /// Whether the request is admitted.
    pub allowed: bool,
    /// The quota's `limit`, for `RateLimit-Policy`'s `q`.
    pub limit: u64,
    /// The quota's `period`, for `RateLimit-Policy`'s `w`.
    pub window: Duration,
    /// Unit requests that would be admitted right now, after this decision.
    pub remaining: u64,
    /// Time until the bucket is completely full again.
    pub reset_after: Duration,
    /// On deny, the wait until the same request would be admitted. `None` when
    /// admitted, or when it never will be (cost above burst, or a quota that
    /// admits nothing): retrying cannot help then.
    pub retry_after: Option<Duration>,
}

impl LimitDecision {
    /// The time until more quota is available: until [`Self::remaining`]
    /// grows by one unit (the `t` of the `RateLimit` header field; see
    /// `headers`). Zero when the bucket is full. Derived from
    /// `reset_after` (the TAT's lead over now) and the emission interval,
    /// so it does not depend on the burst: `reset_after mod T`, or `T` when
    /// that is zero.
    pub fn replenish_after(&self) -> Duration {
        let ahead = self.reset_after.as_nanos();
        if ahead == 0 || self.limit == 0 {
            return self.reset_after;
        }
        let t = self
            .window
            .as_nanos()
            .div_ceil(u128::from(self.limit))
            .max(1);
        let partial = ahead % t;
        ns_to_duration(if partial == 0 { t.min(ahead) } else { partial })
    }
}

/// Checks a request of `cost` units at `now_ms` against `quota`.
///
/// Returns the decision and the state to store. A denied request consumes
/// nothing: the state comes back unchanged — unless its TAT lies further ahead
/// than this quota's tolerance (left by a stricter quota), in which case it
/// comes back [`normalize`]d, which this quota cannot tell apart. A `cost` of
/// 0 is a pure peek and is treated the same way.
pub fn check(
    state: GcraState,
    now_ms: u64,
    cost: u64,
    quota: &Quota,
) -> (LimitDecision, GcraState) {
    let now = ms_to_ns(now_ms);
    let t = quota.emission_interval_ns();
    let tau = quota.tolerance_ns();
    let tat = effective_tat(state, now, tau);
    let unchanged = normalize(state, now_ms, quota);

    if quota.admits_nothing() {
        let decision = decision(quota, false, now, tat, t, tau, None);
        return (decision, unchanged);
    }
    if cost == 0 {
        return (decision(quota, true, now, tat, t, tau, None), unchanged);
    }

    let new_tat = tat.saturating_add(u128::from(cost).saturating_mul(t));
    let ahead = new_tat.saturating_sub(now);
    if cost <= quota.burst && ahead <= tau {
        let stored = GcraState {
            tat_ns: clamp_u64(new_tat),
        };
        (decision(quota, true, now, new_tat, t, tau, None), stored)
    } else {
        // When cost ≤ burst, waiting `ahead − tau` brings `ahead` down to tau.
        let retry = (cost <= quota.burst).then(|| ns_to_duration(ahead.saturating_sub(tau)));
        (decision(quota, false, now, tat, t, tau, retry), unchanged)
    }
}

/// `state` with its TAT capped at `now + burst·T`, the most a bucket can be
/// exhausted under `quota`. Equivalent to `state` for every check under
/// `quota`; storing it lets a loosened quota take effect as time passes
/// instead of honouring a TAT the old quota left far in the future.
/// Returns `state` itself whenever it is already within the cap.
pub fn normalize(state: GcraState, now_ms: u64, quota: &Quota) -> GcraState {
    let cap = ms_to_ns(now_ms).saturating_add(quota.tolerance_ns());
    if u128::from(state.tat_ns) > cap {
        GcraState {
            tat_ns: clamp_u64(cap),
        }
    } else {
        state
    }
}

/// The current decision for `state` without consuming anything; `allowed`
/// says whether a unit request would be admitted.
pub fn peek(state: GcraState, now_ms: u64, quota: &Quota) -> LimitDecision {
    let (mut decision, _) = check(state, now_ms, 1, quota);
    if decision.allowed {
        decision = check(state, now_ms, 0, quota).0;
    }
    decision
}

/// Gives back `cost` units admitted earlier, e.g. when a later limit in a
/// two-phase check (limits held by different Durable Objects) denied the
/// request.
///
/// Never moves the TAT below `now`: a bucket that has refilled meanwhile has
/// nothing to give back.
pub fn refund(state: GcraState, now_ms: u64, cost: u64, quota: &Quota) -> GcraState {
    let now = ms_to_ns(now_ms);
    let tat = u128::from(state.tat_ns);
    if tat <= now {
        return state;
    }
    let give_back = u128::from(cost).saturating_mul(quota.emission_interval_ns());
    GcraState {
        tat_ns: clamp_u64(tat.saturating_sub(give_back).max(now)),
    }
}

/// The TAT the check starts from: never in the past (an idle bucket is full),
/// never further ahead than the tolerance (a TAT left by a stricter quota
/// counts as an exhausted bucket, not as a debt).
pub(crate) fn effective_tat(state: GcraState, now: u128, tau: u128) -> u128 {
    u128::from(state.tat_ns)
        .max(now)
        .min(now.saturating_add(tau))
}

/// Builds a decision given the TAT after it (`tat ≥ now`).
pub(crate) fn decision(
    quota: &Quota,
    allowed: bool,
    now: u128,
    tat: u128,
    t: u128,
    tau: u128,
    retry_after: Option<Duration>,
) -> LimitDecision {
    let ahead = tat.saturating_sub(now);
    let remaining = if quota.admits_nothing() {
        0
    } else {
        // `t ≥ 1`, so the division is defined; the result is at most burst.
        let free = tau.saturating_sub(ahead) / t.max(1);
        u64::try_from(free).unwrap_or(u64::MAX).min(quota.burst)
    };
    LimitDecision {
        allowed,
        limit: quota.limit,
        window: quota.period,
        remaining,
        reset_after: ns_to_duration(ahead),
        retry_after,
    }
}

pub(crate) fn ms_to_ns(ms: u64) -> u128 {
    u128::from(ms).saturating_mul(NS_PER_MS)
}

pub(crate) fn clamp_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Nanoseconds to a `Duration`, saturating at `u64::MAX` seconds.
pub(crate) fn ns_to_duration(ns: u128) -> Duration {
    let secs = ns / NS_PER_SEC;
    match u64::try_from(secs) {
        // `ns % NS_PER_SEC < 1e9` always fits in a u32.
        Ok(secs) => Duration::new(secs, u32::try_from(ns % NS_PER_SEC).unwrap_or(0)),
        Err(_) => Duration::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_700_000_000_000;

    /// Runs unit requests at the same instant, returning how many were admitted.
    fn admit_simultaneous(quota: &Quota, n: u64, now: u64) -> (u64, GcraState) {
        let mut state = GcraState::default();
        let mut admitted = 0;
        for _ in 0..n {
            let (d, s) = check(state, now, 1, quota);
            state = s;
            admitted += u64::from(d.allowed);
        }
        (admitted, state)
    }

    #[test]
    fn presets() {
        assert_eq!(Quota::per_second(5).period, Duration::from_secs(1));
        assert_eq!(Quota::per_minute(5).period, Duration::from_secs(60));
        assert_eq!(Quota::per_hour(5).period, Duration::from_secs(3600));
        assert_eq!(Quota::per_day(5).period, Duration::from_secs(86400));
        assert_eq!(Quota::per_day(5).burst, 5);
        assert_eq!(Quota::per_second(5).with_burst(9).burst, 9);
    }

    #[test]
    fn emission_interval_rounds_up() {
        // 1 s / 3 = 333_333_333.3… ns, rounded up.
        assert_eq!(Quota::per_second(3).emission_interval_ns(), 333_333_334);
        assert_eq!(Quota::per_second(1).emission_interval_ns(), 1_000_000_000);
        assert_eq!(Quota::new(5, Duration::ZERO).emission_interval_ns(), 1);
    }

    #[test]
    fn limit_simultaneous_requests_are_admitted_and_next_denied() {
        let q = Quota::per_second(10);
        let (admitted, state) = admit_simultaneous(&q, 25, NOW);
        assert_eq!(admitted, 10);
        let (d, s) = check(state, NOW, 1, &q);
        assert!(!d.allowed);
        assert_eq!(s, state, "deny changes nothing");
        assert_eq!(d.remaining, 0);
        assert_eq!(d.retry_after, Some(Duration::from_millis(100)));
        assert_eq!(d.reset_after, Duration::from_secs(1));
    }

    #[test]
    fn replenishes_at_the_sustained_rate() {
        let q = Quota::per_second(10);
        let (_, state) = admit_simultaneous(&q, 10, NOW);
        assert!(!check(state, NOW + 99, 1, &q).0.allowed);
        let (d, state) = check(state, NOW + 100, 1, &q);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        assert!(!check(state, NOW + 100, 1, &q).0.allowed);
    }

    #[test]
    fn remaining_and_reset_count_down() {
        let q = Quota::per_minute(3);
        let (d, s) = check(GcraState::default(), NOW, 1, &q);
        assert!(d.allowed);
        assert_eq!(d.remaining, 2);
        assert_eq!(d.reset_after, Duration::from_secs(20));
        assert_eq!(d.limit, 3);
        assert_eq!(d.window, Duration::from_secs(60));
        let (d, _) = check(s, NOW, 2, &q);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.reset_after, Duration::from_secs(60));
    }

    #[test]
    fn cost_above_burst_never_fits() {
        let q = Quota::per_second(5);
        let (d, s) = check(GcraState::default(), NOW, 6, &q);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, None);
        assert_eq!(s, GcraState::default());
        assert_eq!(d.remaining, 5);
    }

    #[test]
    fn cost_zero_is_a_peek() {
        let q = Quota::per_second(5);
        let (_, state) = admit_simultaneous(&q, 2, NOW);
        let (d, s) = check(state, NOW, 0, &q);
        assert!(d.allowed);
        assert_eq!(s, state);
        assert_eq!(d.remaining, 3);
        assert_eq!(peek(state, NOW, &q).remaining, 3);
    }

    #[test]
    fn peek_reports_denial_without_consuming() {
        let q = Quota::per_second(2);
        let (_, state) = admit_simultaneous(&q, 2, NOW);
        let d = peek(state, NOW, &q);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(Duration::from_millis(500)));
    }

    #[test]
    fn zero_limit_or_burst_admits_nothing() {
        for q in [Quota::per_second(0), Quota::per_second(5).with_burst(0)] {
            for cost in [0, 1, 7] {
                let (d, s) = check(GcraState::default(), NOW, cost, &q);
                assert!(!d.allowed, "{q:?} cost {cost}");
                assert_eq!(d.retry_after, None);
                assert_eq!(d.remaining, 0);
                assert_eq!(s, GcraState::default());
            }
        }
    }

    #[test]
    fn burst_above_limit() {
        let q = Quota::per_second(2).with_burst(5);
        let (admitted, _) = admit_simultaneous(&q, 9, NOW);
        assert_eq!(admitted, 5);
    }

    #[test]
    fn loosened_quota_does_not_carry_a_long_debt() {
        // Exhaust a daily quota, then switch to a per-second one.
        let day = Quota::per_day(10);
        let (_, state) = admit_simultaneous(&day, 10, NOW);
        let sec = Quota::per_second(10);
        // The bucket counts as exhausted under the new quota: full again in 1 s.
        let (d, state) = check(state, NOW, 1, &sec);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(Duration::from_millis(100)));
        assert_eq!(d.reset_after, Duration::from_secs(1));
        assert_eq!(state, normalize(state, NOW, &sec));
        assert!(check(state, NOW + 1_000, 10, &sec).0.allowed);
        // Within the cap, normalize is the identity.
        assert_eq!(normalize(state, NOW, &sec), state);
    }

    #[test]
    fn refund_restores_the_bucket() {
        let q = Quota::per_second(3);
        let (_, state) = admit_simultaneous(&q, 3, NOW);
        let state = refund(state, NOW, 1, &q);
        let (d, _) = check(state, NOW, 1, &q);
        assert!(d.allowed);
        // Refunding more than is outstanding stops at an empty bucket.
        let s = refund(state, NOW, 100, &q);
        assert_eq!(u128::from(s.tat_ns), ms_to_ns(NOW));
        // An idle bucket has nothing to refund.
        let idle = GcraState { tat_ns: 5 };
        assert_eq!(refund(idle, NOW, 3, &q), idle);
    }

    #[test]
    fn idle_state() {
        let q = Quota::per_second(1);
        let (_, s) = check(GcraState::default(), NOW, 1, &q);
        assert!(!s.is_idle(NOW));
        assert_eq!(s.idle_at_ms(), NOW + 1000);
        assert!(s.is_idle(NOW + 1000));
    }

    #[test]
    fn extreme_values_do_not_panic() {
        let quotas = [
            Quota::new(u64::MAX, Duration::MAX).with_burst(u64::MAX),
            Quota::new(1, Duration::MAX),
            Quota::new(u64::MAX, Duration::ZERO),
            Quota::new(1, Duration::from_nanos(1)),
        ];
        for q in quotas {
            for now in [0, 1, NOW, u64::MAX] {
                for tat in [0, NOW, u64::MAX] {
                    for cost in [0, 1, u64::MAX] {
                        let s = GcraState { tat_ns: tat };
                        let _ = check(s, now, cost, &q);
                        let _ = refund(s, now, cost, &q);
                        let _ = peek(s, now, &q);
                    }
                }
            }
        }
    }

    #[test]
    fn huge_period_stays_strict() {
        let q = Quota::new(1, Duration::MAX);
        let (d, s) = check(GcraState::default(), NOW, 1, &q);
        assert!(d.allowed);
        assert!(!check(s, NOW + 86_400_000, 1, &q).0.allowed);
    }

    #[test]
    fn ns_to_duration_saturates() {
        assert_eq!(ns_to_duration(u128::MAX), Duration::MAX);
        assert_eq!(ns_to_duration(1_500_000_000), Duration::from_millis(1500));
    }

    fn arb_quota() -> impl Strategy<Value = Quota> {
        (1u64..20, 1u64..5_000, 1u64..30).prop_map(|(limit, period_ms, burst)| {
            Quota::new(limit, Duration::from_millis(period_ms)).with_burst(burst)
        })
    }

    proptest! {
        /// Over every window [t_i, t_j] spanned by admitted requests, the
        /// admitted cost is at most burst + floor(W / T). Windows not bounded
        /// by admitted requests contain no more, so this covers all windows.
        #[test]
        fn admitted_cost_respects_the_gcra_bound(
            quota in arb_quota(),
            mut arrivals in proptest::collection::vec((0u64..20_000, 1u64..6), 1..200),
        ) {
            arrivals.sort_by_key(|a| a.0);
            let mut state = GcraState::default();
            let mut admitted: Vec<(u64, u64)> = Vec::new();
            for (at, cost) in arrivals {
                let (d, s) = check(state, NOW + at, cost, &quota);
                if d.allowed {
                    admitted.push((at, cost));
                } else {
                    prop_assert_eq!(s, state);
                }
                state = s;
            }
            let t = quota.emission_interval_ns();
            for i in 0..admitted.len() {
                let mut sum = 0u64;
                for j in i..admitted.len() {
                    sum += admitted[j].1;
                    let w_ns = u128::from(admitted[j].0 - admitted[i].0) * NS_PER_MS;
                    let bound = u128::from(quota.burst) + w_ns / t;
                    prop_assert!(u128::from(sum) <= bound,
                        "window {} ns admitted {} > bound {}", w_ns, sum, bound);
                    if w_ns < t {
                        prop_assert!(sum <= quota.burst);
                    }
                }
            }
        }

        #[test]
        fn simultaneous_unit_requests_admit_min_n_burst(
            quota in arb_quota(), n in 0u64..60, now in 0u64..u64::MAX / 2_000_000,
        ) {
            let (admitted, _) = admit_simultaneous(&quota, n, now);
            prop_assert_eq!(admitted, n.min(quota.burst));
        }

        #[test]
        fn refund_restores_admissibility(
            quota in arb_quota(),
            tat_offset in 0u64..10_000_000_000,
            cost in 1u64..6,
            probe in 0u64..40,
        ) {
            let before = GcraState { tat_ns: clamp_u64(ms_to_ns(NOW)) + tat_offset };
            let (d, after) = check(before, NOW, cost, &quota);
            prop_assume!(d.allowed);
            let restored = refund(after, NOW, cost, &quota);
            prop_assert_eq!(
                check(restored, NOW, probe, &quota).0,
                check(before, NOW, probe, &quota).0
            );
        }

        #[test]
        fn never_panics(
            limit: u64, period_ns: u64, burst: u64, tat: u64, now: u64, cost: u64,
        ) {
            let q = Quota::new(limit, Duration::from_nanos(period_ns)).with_burst(burst);
            let s = GcraState { tat_ns: tat };
            let (d, s2) = check(s, now, cost, &q);
            prop_assert!(d.remaining <= q.burst);
            if !d.allowed {
                prop_assert_eq!(s2, normalize(s, now, &q));
                prop_assert!(s2.tat_ns <= s.tat_ns);
            }
            let _ = refund(s, now, cost, &q);
            let _ = peek(s, now, &q);
        }
    }
}
