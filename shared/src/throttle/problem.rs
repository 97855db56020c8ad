//! What a client is told when throttling refuses its request.
//!
//! Neither problem names the limit's key, the caller or the remaining
//! capacity: the `RateLimit` and `Retry-After` headers ([`super::headers`])
//! say what a client may know, and the limiter key may identify the caller.

use super::multi::MultiDecision;
use crate::problem::Problem;

impl MultiDecision {
    /// The 429 `rate-limited` problem for a denied request; `None` when every
    /// limit admits it. Shadow-mode routes admit regardless: see
    /// `config::RateLimitPolicy::rejection`.
    pub fn to_problem(&self) -> Option<Problem> {
        (!self.allowed).then(|| {
            let detail = match self.retry_after {
                Some(_) => {
                    "A rate limit of this route is exhausted; retry after the time in \
                            the Retry-After header (see also RateLimit)."
                }
                None => {
                    "This request costs more than a rate limit of this route can ever \
                         admit; retrying will not help."
                }
            };
            Problem::new(429, "rate-limited", "Too many requests").with_detail(detail)
        })
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
        assert_eq!(check_all(&[], NOW).to_problem(), None);
    }

    #[test]
    fn denied_requests_get_429_without_identifying_details() {
        let mut limit = LimitInput::new(Quota::per_second(1), GcraState::default(), 1);
        limit.state = check_all(&[limit], NOW).states[0];
        let denied = check_all(&[limit], NOW);
        assert_eq!(denied.retry_after, Some(Duration::from_secs(1)));
        let p = denied.to_problem().unwrap();
        assert_eq!((p.status, p.kind.ends_with("/rate-limited")), (429, true));
        assert!(p.detail.unwrap().contains("Retry-After"));

        let too_big = LimitInput::new(Quota::per_second(1), GcraState::default(), 2);
        let p = check_all(&[too_big], NOW).to_problem().unwrap();
        assert_eq!(p.status, 429);
        assert!(p.detail.unwrap().contains("will not help"));
    }

    #[test]
    fn unavailable_limiter_is_503() {
        let p = limiter_unavailable_problem();
        assert_eq!(p.status, 503);
        assert!(p.kind.ends_with("/limiter-unavailable"));
    }
}
