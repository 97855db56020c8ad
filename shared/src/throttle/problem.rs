//! What a client is told when throttling refuses its request.
//!
//! The 429 names the limit that refused (its configured name, as
//! `RateLimit-Policy` does) and when to retry; neither problem names the
//! limiter key or the caller: the key may identify the caller.

use super::headers::retry_after_secs;
use super::multi::MultiDecision;
use crate::problem::{Problem, RateLimitRefusal};

impl MultiDecision {
    /// The 429 `rate-limited` problem for a denied request; `None` when every
    /// limit admits it. `names` are the limits' names, in decision order: the
    /// problem says which one refused (the one `RateLimit` advertises) and
    /// when to retry (as `Retry-After` does). Shadow-mode routes admit
    /// regardless: see `config::RateLimitPolicy::rejection`.
    pub fn to_problem(&self, names: &[&str]) -> Option<Problem> {
        if self.allowed {
            return None;
        }
        let refused = self.most_restrictive().and_then(|i| names.get(i).copied());
        let which = refused.map_or_else(
            || "A rate limit of this route".to_owned(),
            |name| format!("The rate limit {name:?} of this route"),
        );
        let (detail, retry_after) = match self.retry_after {
            Some(wait) => {
                let secs = retry_after_secs(wait);
                (
                    format!(
                        "{which} is exhausted; retry in {secs} s (Retry-After), when this \
                         request fits again. RateLimit says when more quota comes back."
                    ),
                    Some(secs),
                )
            }
            None => (
                format!(
                    "This request costs more than {} can ever admit; retrying will not help.",
                    refused.map_or_else(
                        || "a rate limit of this route".to_owned(),
                        |name| format!("the rate limit {name:?}")
                    )
                ),
                None,
            ),
        };
        let mut problem =
            Problem::new(429, "rate-limited", "Too many requests").with_detail(detail);
        problem.rate_limit = refused.map(|name| {
            Box::new(RateLimitRefusal {
                limit: name.to_owned(),
                retry_after,
            })
        });
        Some(problem)
    }
}

/// The 503 problem for a route whose limiter cannot be reached (its state
/// could not be loaded or stored) and whose `on_error` is `closed`.
pub fn limiter_unavailable_problem() -> Problem {
    Problem::new(503, "limiter-unavailable", "Service unavailable")
        .with_detail("The rate limiter is temporarily unavailable; retry later.")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::throttle::{check_all, GcraState, LimitInput, Quota};

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn admitted_requests_have_no_problem() {
        assert_eq!(check_all(&[], NOW).to_problem(&[]), None);
    }

    #[test]
    fn denied_requests_get_429_without_identifying_details() {
        let mut limit = LimitInput::new(Quota::per_second(1), GcraState::default(), 1);
        limit.state = check_all(&[limit], NOW).states[0];
        let denied = check_all(&[limit], NOW);
        assert_eq!(denied.retry_after, Some(Duration::from_secs(1)));
        let p = denied.to_problem(&["per-second"]).unwrap();
        assert_eq!((p.status, p.kind.ends_with("/rate-limited")), (429, true));
        let refusal = p.rate_limit.as_deref().unwrap();
        assert_eq!(
            (refusal.limit.as_str(), refusal.retry_after),
            ("per-second", Some(1))
        );
        let detail = p.detail.unwrap();
        assert!(
            detail.contains("\"per-second\"") && detail.contains("retry in 1 s"),
            "{detail}"
        );

        let too_big = LimitInput::new(Quota::per_second(1), GcraState::default(), 2);
        let p = check_all(&[too_big], NOW).to_problem(&["tiny"]).unwrap();
        assert_eq!(p.status, 429);
        let refusal = p.rate_limit.as_deref().unwrap();
        assert_eq!(
            (refusal.limit.as_str(), refusal.retry_after),
            ("tiny", None)
        );
        assert!(p.detail.unwrap().contains("will not help"));
    }

    #[test]
    fn the_refusing_limit_is_named_when_another_admits() {
        let roomy = LimitInput::new(Quota::per_second(100), GcraState::default(), 1);
        let mut tight = LimitInput::new(Quota::per_second(1), GcraState::default(), 1);
        tight.state = check_all(&[tight], NOW).states[0];
        let p = check_all(&[roomy, tight], NOW)
            .to_problem(&["roomy", "tight"])
            .unwrap();
        assert_eq!(p.rate_limit.unwrap().limit, "tight");
        // Names missing (a caller passing fewer): still a problem, unnamed.
        let p = check_all(&[roomy, tight], NOW).to_problem(&[]).unwrap();
        assert_eq!(p.rate_limit, None);
        assert!(p.detail.unwrap().starts_with("A rate limit"));
    }

    #[test]
    fn unavailable_limiter_is_503() {
        let p = limiter_unavailable_problem();
        assert_eq!(p.status, 503);
        assert!(p.kind.ends_with("/limiter-unavailable"));
    }
}
