//! Rate-limit response headers, per draft-ietf-httpapi-ratelimit-headers
//! (revisions 09/10), plus `Retry-After` (RFC 9110 §10.2.3).
//!
//! ```text
//! RateLimit-Policy: "per-second";q=10;w=1, "daily";q=10000;w=86400
//! RateLimit: "daily";r=0;t=8640
//! Retry-After: 9
//! ```
//!
//! `RateLimit-Policy` lists every policy that applied; `RateLimit` carries only
//! the most restrictive one (a refusing one first) (the draft asks servers to advertise the limit
//! with the lowest remaining, and fewer numbers disclose less capacity
//! information). No partition key (`pk`) is sent: it would echo the limiter
//! key, which may identify the caller.
//!
//! # How GCRA's state maps onto `r` and `t`
//!
//! The draft (revision 10) defines `t` as the seconds until *additional*
//! quota is made available, which for a sliding quota comes before the
//! quota is whole again. A GCRA quota of `limit` per `period` (emission
//! interval `T = ceil(period / limit)`, tolerance `τ = burst·T`) stores one
//! TAT; with `ahead = max(TAT − now, 0)`:
//! - `r` = `floor((τ − ahead) / T)`: the unit requests that fit right now;
//! - `t` = the time until `r` grows by one: `ahead mod T`, or `T` when that
//!   is 0 and `ahead > 0`; 0 when the bucket is full (`ahead = 0`);
//! - `Retry-After` (on a refusal) = the time until *this* request fits:
//!   `ahead + cost·T − τ`. For a unit request refused with `r = 0` that is
//!   exactly `t`, so the two agree; a request costing more waits longer
//!   than `t`, and `Retry-After` is the one to obey (the draft's §6: a
//!   client that got a `Retry-After` uses it).
//!
//! All three are rounded up to whole seconds, so a client that obeys them
//! is never early.

use std::time::Duration;

use super::gcra::LimitDecision;
use super::multi::most_restrictive;

/// Name of the header listing the quota policies.
pub const RATELIMIT_POLICY: &str = "RateLimit-Policy";
/// Name of the header carrying the current service limit.
pub const RATELIMIT: &str = "RateLimit";
/// Name of the header telling a throttled client when to retry.
pub const RETRY_AFTER: &str = "Retry-After";

/// Largest sf-integer (RFC 8941 §3.3.1); larger values are clamped to it.
const SF_INTEGER_MAX: u64 = 999_999_999_999_999;

/// The headers for a set of named decisions (one per limit that applied) and
/// the combined `retry_after` of a denial.
///
/// Returns `(name, value)` pairs; nothing for an empty list. `Retry-After` is
/// added only when `retry_after` is `Some` — a request that can never fit
/// gets no retry hint, since retrying cannot help.
pub fn rate_limit_headers(
    items: &[(&str, &LimitDecision)],
    retry_after: Option<Duration>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(3);
    if let Some(policy) = policy_value(items) {
        out.push((RATELIMIT_POLICY, policy));
    }
    let decisions: Vec<LimitDecision> = items.iter().map(|(_, d)| **d).collect();
    if let Some((name, decision)) = most_restrictive(&decisions).and_then(|i| items.get(i)) {
        out.push((RATELIMIT, ratelimit_value(name, decision)));
    }
    if let Some(wait) = retry_after {
        out.push((RETRY_AFTER, retry_after_value(wait)));
    }
    out
}

/// The `RateLimit-Policy` value: `"name";q=<limit>;w=<window secs>` per item,
/// comma separated. `None` for an empty list (the field must be non-empty).
pub fn policy_value(items: &[(&str, &LimitDecision)]) -> Option<String> {
    if items.is_empty() {
        return None;
    }
    let parts: Vec<String> = items
        .iter()
        .map(|(name, d)| {
            format!(
                "{};q={};w={}",
                sf_string(name),
                sf_integer(d.limit),
                sf_integer(ceil_secs(d.window))
            )
        })
        .collect();
    Some(parts.join(", "))
}

/// The `RateLimit` value for one policy: `"name";r=<remaining>;t=<secs>`,
/// where `t` is the seconds (rounded up) until more quota is available
/// ([`LimitDecision::replenish_after`]; see the module doc).
pub fn ratelimit_value(name: &str, decision: &LimitDecision) -> String {
    format!(
        "{};r={};t={}",
        sf_string(name),
        sf_integer(decision.remaining),
        sf_integer(ceil_secs(decision.replenish_after()))
    )
}

/// The `Retry-After` value: whole seconds, rounded up and at least 1, so a
/// client that obeys it is never early.
pub fn retry_after_value(wait: Duration) -> String {
    retry_after_secs(wait).to_string()
}

/// [`retry_after_value`] as a number, e.g. for a problem's `retry_after`.
pub fn retry_after_secs(wait: Duration) -> u64 {
    sf_integer(ceil_secs(wait).max(1))
}

/// Seconds, rounded up, saturating.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

fn sf_integer(v: u64) -> u64 {
    v.min(SF_INTEGER_MAX)
}

/// An sf-string (RFC 8941 §3.3.3): printable ASCII in quotes, with `"` and
/// `\` escaped. Other characters cannot be represented and become `?`.
fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len().saturating_add(2));
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throttle::gcra::{check, GcraState, Quota};

    fn decision(remaining: u64, reset_ms: u64, allowed: bool) -> LimitDecision {
        LimitDecision {
            allowed,
            limit: 100,
            window: Duration::from_secs(60),
            remaining,
            reset_after: Duration::from_millis(reset_ms),
            retry_after: None,
        }
    }

    #[test]
    fn single_policy() {
        let (d, _) = check(GcraState::default(), 0, 1, &Quota::per_minute(100));
        let h = rate_limit_headers(&[("default", &d)], None);
        assert_eq!(
            h,
            vec![
                (RATELIMIT_POLICY, r#""default";q=100;w=60"#.to_owned()),
                (RATELIMIT, r#""default";r=99;t=1"#.to_owned()),
            ]
        );
    }

    #[test]
    fn several_policies_and_retry_after() {
        let sec = decision(4, 500, true);
        let day = decision(0, 86_399_001, false);
        let h = rate_limit_headers(
            &[("burst", &sec), ("daily", &day)],
            Some(Duration::from_millis(1)),
        );
        assert_eq!(
            h,
            vec![
                (
                    RATELIMIT_POLICY,
                    r#""burst";q=100;w=60, "daily";q=100;w=60"#.to_owned()
                ),
                // `t`: more quota in 201 ms (86 399 001 mod the 600 ms interval).
                (RATELIMIT, r#""daily";r=0;t=1"#.to_owned()),
                (RETRY_AFTER, "1".to_owned()),
            ]
        );
    }

    /// A quota of 10 per minute (T = 6 s), 3 used at t = 0.
    #[test]
    fn t_is_when_more_quota_comes_not_when_it_is_whole() {
        let quota = Quota::per_minute(10);
        let mut state = GcraState::default();
        for _ in 0..3 {
            state = check(state, 0, 1, &quota).1;
        }
        let (d, _) = check(state, 1_000, 0, &quota);
        assert_eq!((d.remaining, d.reset_after), (7, Duration::from_secs(17)));
        // The next unit comes back at 6 s (5 s from now), the whole quota at 18 s.
        assert_eq!(d.replenish_after(), Duration::from_secs(5));
        assert_eq!(ratelimit_value("q", &d), r#""q";r=7;t=5"#);
        // A full bucket: nothing more to come.
        let (full, _) = check(GcraState::default(), 0, 0, &quota);
        assert_eq!(ratelimit_value("q", &full), r#""q";r=10;t=0"#);
    }

    proptest::proptest! {
        /// For any state and instant: `r` grows by exactly one when
        /// `replenish_after` has passed, not a nanosecond before; and a
        /// refused unit request's `Retry-After` equals that `t`.
        #[test]
        fn replenish_after_is_the_next_unit(
            limit in 1u64..1_000,
            period_ms in 1u64..100_000,
            burst in 1u64..50,
            used in 0u64..60,
            at in 0u64..200_000,
        ) {
            let quota = Quota { limit, period: Duration::from_millis(period_ms), burst };
            let mut state = GcraState::default();
            for _ in 0..used {
                state = check(state, 0, 1, &quota).1;
            }
            let now = at % (period_ms * 2 + 1);
            let (d, _) = check(state, now, 0, &quota);
            let wait = d.replenish_after();
            if d.reset_after.is_zero() {
                proptest::prop_assert!(wait.is_zero());
                proptest::prop_assert_eq!(d.remaining, burst);
            } else {
                let nanos = u64::try_from(wait.as_nanos()).unwrap();
                // Times in ms: check just at and just before, in ns steps via TAT arithmetic.
                let later = LimitDecision { reset_after: d.reset_after - wait, ..d };
                let before = LimitDecision { reset_after: d.reset_after - wait + Duration::from_nanos(1), ..d };
                let r = |x: &LimitDecision| {
                    let t = quota.emission_interval_ns();
                    let tau = u128::from(burst) * t;
                    u64::try_from((tau - x.reset_after.as_nanos().min(tau)) / t).unwrap().min(burst)
                };
                proptest::prop_assert_eq!(r(&d), d.remaining);
                proptest::prop_assert_eq!(r(&later), d.remaining + 1, "wait {}ns", nanos);
                proptest::prop_assert_eq!(r(&before), d.remaining);
                let (unit, _) = check(state, now, 1, &quota);
                if !unit.allowed {
                    proptest::prop_assert_eq!(unit.retry_after, Some(wait));
                }
            }
        }
    }

    #[test]
    fn empty_renders_nothing() {
        assert!(rate_limit_headers(&[], None).is_empty());
        assert_eq!(policy_value(&[]), None);
    }

    #[test]
    fn names_are_escaped() {
        let d = decision(1, 0, true);
        assert_eq!(
            ratelimit_value("a\"b\\c\ndé", &d),
            r#""a\"b\\c?d?";r=1;t=0"#
        );
    }

    #[test]
    fn retry_after_rounds_up_to_at_least_one() {
        assert_eq!(retry_after_value(Duration::ZERO), "1");
        assert_eq!(retry_after_value(Duration::from_millis(1)), "1");
        assert_eq!(retry_after_value(Duration::from_millis(1001)), "2");
        assert_eq!(retry_after_value(Duration::from_secs(30)), "30");
        assert_eq!(retry_after_value(Duration::MAX), "999999999999999");
    }

    #[test]
    fn integers_are_clamped() {
        let d = LimitDecision {
            limit: u64::MAX,
            window: Duration::MAX,
            ..decision(u64::MAX, 0, true)
        };
        assert_eq!(
            policy_value(&[("x", &d)]).unwrap(),
            r#""x";q=999999999999999;w=999999999999999"#
        );
    }
}
