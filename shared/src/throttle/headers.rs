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
//! the most restrictive one (the draft asks servers to advertise the limit
//! with the lowest remaining, and fewer numbers disclose less capacity
//! information). No partition key (`pk`) is sent: it would echo the limiter
//! key, which may identify the caller.

use std::time::Duration;

use super::gcra::Decision;
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
pub fn render(
    items: &[(&str, &Decision)],
    retry_after: Option<Duration>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(3);
    if let Some(policy) = policy_value(items) {
        out.push((RATELIMIT_POLICY, policy));
    }
    let decisions: Vec<Decision> = items.iter().map(|(_, d)| **d).collect();
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
pub fn policy_value(items: &[(&str, &Decision)]) -> Option<String> {
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
/// where `t` is the seconds (rounded up) until the quota is fully restored.
pub fn ratelimit_value(name: &str, decision: &Decision) -> String {
    format!(
        "{};r={};t={}",
        sf_string(name),
        sf_integer(decision.remaining),
        sf_integer(ceil_secs(decision.reset_after))
    )
}

/// The `Retry-After` value: whole seconds, rounded up and at least 1, so a
/// client that obeys it is never early.
pub fn retry_after_value(wait: Duration) -> String {
    sf_integer(ceil_secs(wait).max(1)).to_string()
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

    fn decision(remaining: u64, reset_ms: u64, allowed: bool) -> Decision {
        Decision {
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
        let h = render(&[("default", &d)], None);
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
        let h = render(
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
                (RATELIMIT, r#""daily";r=0;t=86400"#.to_owned()),
                (RETRY_AFTER, "1".to_owned()),
            ]
        );
    }

    #[test]
    fn empty_renders_nothing() {
        assert!(render(&[], None).is_empty());
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
        let d = Decision {
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
