//! A route's rate limits applied to one request: the storage keys, the
//! per-caller quotas, the combined check and what the client is told.
//!
//! The adapter's whole part, with `policy = route.rate_limit`:
//!
//! ```text
//! source = KeySource::from_identity(identity, client_ip)
//! keys   = policy.storage_keys(&route.name, &source)?   // LimitKeyError::problem on Err
//! // with the states in one store (Lambda):
//! states = load(keys)                                     // on failure: policy.on_limiter_error()
//! d      = policy.check(&states, now_ms, identity)
//! store(keys, d.states)
//! // or with one limiter object per key (the edge), see throttle::apply:
//! for c in policy.charges(&keys, identity): ask c.key's object (LimiterOp)
//! give back per throttle::give_back, d = throttle::combine(..)
//! // then
//! add policy.headers(&d)
//! if let Some(problem) = policy.rejection(&d) { answer problem }
//! ```

use super::model::{FailureMode, RateLimitPolicy, RouteLimit};
use crate::auth::Identity;
use crate::problem::Problem;
use crate::throttle::{
    check_all, limiter_key, limiter_unavailable_problem, rate_limit_headers, Charge, GcraState,
    KeySource, LimitInput, LimitKeyError, MultiDecision, Quota,
};

impl RouteLimit {
    /// The quota for `identity`: the configured one, or the caller's
    /// override for a limit of this name (`Identity::limit_overrides`, from
    /// the API key record; every route's limit of that name).
    ///
    /// An override scales the whole quota: `limit` becomes the override and
    /// `burst` keeps its ratio to `limit`, rounded up, so a defaulted burst
    /// (equal to the limit) becomes the override too. The burst never drops
    /// below the limit's `cost`, which would make every request fail; an
    /// override of 0 blocks the caller on this limit.
    pub fn quota_for(&self, identity: Option<&Identity>) -> Quota {
        let Some(&limit) = identity.and_then(|i| i.limit_overrides.get(&self.name)) else {
            return self.quota;
        };
        let base = self.quota;
        let burst = if base.limit == 0 {
            limit
        } else {
            let scaled = u128::from(base.burst)
                .saturating_mul(u128::from(limit))
                .div_ceil(u128::from(base.limit));
            u64::try_from(scaled).unwrap_or(u64::MAX)
        };
        Quota {
            limit,
            period: base.period,
            burst: burst.max(self.cost),
        }
    }
}

impl RateLimitPolicy {
    /// The storage key of each limit's state, in limit order, for route
    /// `route_name`. Fails when a limit's key value is missing (see
    /// [`LimitKeyError::problem`] for the answer).
    pub fn storage_keys(
        &self,
        route_name: &str,
        source: &KeySource<'_>,
    ) -> Result<Vec<String>, LimitKeyError> {
        self.limits
            .iter()
            .map(|l| limiter_key(route_name, &l.name, l.key, source))
            .collect()
    }

    /// What a request is charged, in limit order: each limit's key (from
    /// [`Self::storage_keys`]), its quota for `identity` and its cost.
    pub fn charges<'k>(&self, keys: &'k [String], identity: Option<&Identity>) -> Vec<Charge<'k>> {
        self.limits
            .iter()
            .zip(keys)
            .map(|(l, key)| Charge {
                key,
                quota: l.quota_for(identity),
                cost: l.cost,
            })
            .collect()
    }

    /// Checks a request against every limit at once, each at its own cost
    /// and with the caller's overrides ([`RouteLimit::quota_for`]).
    /// `states` are the stored states in limit order; missing ones count as
    /// empty buckets. Store the returned `states` whatever the outcome.
    pub fn check(
        &self,
        states: &[GcraState],
        now_ms: u64,
        identity: Option<&Identity>,
    ) -> MultiDecision {
        let inputs: Vec<LimitInput> = self
            .limits
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let state = states.get(i).copied().unwrap_or_default();
                LimitInput::new(l.quota_for(identity), state, l.cost)
            })
            .collect();
        check_all(&inputs, now_ms)
    }

    /// The `RateLimit-Policy`, `RateLimit` and (on a refusal) `Retry-After`
    /// headers for `decision`. A shadow-mode route sends no `Retry-After`:
    /// its requests are never refused.
    pub fn headers(&self, decision: &MultiDecision) -> Vec<(&'static str, String)> {
        let named: Vec<(&str, &_)> = self
            .limits
            .iter()
            .map(|l| l.name.as_str())
            .zip(&decision.decisions)
            .collect();
        let retry_after = decision.retry_after.filter(|_| !self.shadow);
        rate_limit_headers(&named, retry_after)
    }

    /// The 429 problem to answer with, or `None` to let the request through
    /// (admitted, or the route is in shadow mode).
    pub fn rejection(&self, decision: &MultiDecision) -> Option<Problem> {
        if self.shadow {
            return None;
        }
        let names: Vec<&str> = self.limits.iter().map(|l| l.name.as_str()).collect();
        decision.to_problem(&names)
    }

    /// What to do when the limiter state cannot be loaded or stored: `None`
    /// to let the request through (`on_error = "open"`), or the 503 problem
    /// to answer with (`"closed"`).
    pub fn on_limiter_error(&self) -> Option<Problem> {
        match self.on_error {
            FailureMode::Open => None,
            FailureMode::Closed => Some(limiter_unavailable_problem()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::auth::AuthMethod;
    use crate::throttle::LimitKey;

    const NOW: u64 = 1_700_000_000_000;

    fn limit(name: &str, quota: Quota, cost: u64) -> RouteLimit {
        RouteLimit {
            name: name.into(),
            quota,
            key: LimitKey::Subject,
            cost,
        }
    }

    fn caller(overrides: &[(&str, u64)]) -> Identity {
        Identity {
            subject: "acme".into(),
            key_id: Some("key_1".into()),
            issuer: None,
            scopes: Vec::new(),
            tier: None,
            limit_overrides: overrides.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
            method: AuthMethod::ApiKey,
        }
    }

    fn policy(shadow: bool, on_error: FailureMode) -> RateLimitPolicy {
        RateLimitPolicy {
            shadow,
            on_error,
            lease: None,
            limits: vec![
                limit("burst", Quota::per_second(2), 1),
                limit("heavy", Quota::per_minute(100).with_burst(10), 5),
            ],
        }
    }

    #[test]
    fn overrides_scale_the_quota_by_limit_name() {
        let l = limit("rpm", Quota::per_minute(100), 1);
        assert_eq!(l.quota_for(None), l.quota);
        assert_eq!(l.quota_for(Some(&caller(&[("other", 5)]))), l.quota);
        // Defaulted burst (= limit) follows the override.
        let gold = l.quota_for(Some(&caller(&[("rpm", 600)])));
        assert_eq!(gold, Quota::per_minute(600));
        // An explicit burst keeps its ratio, rounded up.
        let smooth = limit("rpm", Quota::per_minute(100).with_burst(10), 1);
        let q = smooth.quota_for(Some(&caller(&[("rpm", 250)])));
        assert_eq!((q.limit, q.burst), (250, 25));
        let q = smooth.quota_for(Some(&caller(&[("rpm", 5)])));
        assert_eq!((q.limit, q.burst), (5, 1));
        assert_eq!(q.period, Duration::from_secs(60));
    }

    #[test]
    fn overrides_never_make_a_request_impossible_but_zero_blocks() {
        let costly = limit("rpm", Quota::per_minute(100).with_burst(20), 4);
        let q = costly.quota_for(Some(&caller(&[("rpm", 10)])));
        assert_eq!(
            (q.limit, q.burst),
            (10, 4),
            "burst 2 would be below the cost"
        );
        let blocked = costly.quota_for(Some(&caller(&[("rpm", 0)])));
        assert!(blocked.admits_nothing());
        let bursty = limit("rpm", Quota::per_minute(100).with_burst(300), 1);
        let huge = bursty.quota_for(Some(&caller(&[("rpm", u64::MAX)])));
        assert_eq!((huge.limit, huge.burst), (u64::MAX, u64::MAX), "saturates");
    }

    #[test]
    fn check_charges_each_limit_its_cost() {
        let p = policy(false, FailureMode::Closed);
        let d = p.check(&[], NOW, None);
        assert!(d.allowed);
        assert_eq!(d.decisions[0].remaining, 1);
        assert_eq!(d.decisions[1].remaining, 5, "cost 5 of burst 10");
        let d = p.check(&d.states, NOW, None);
        assert!(d.allowed);
        let d = p.check(&d.states, NOW, None);
        assert!(!d.allowed);
        let problem = p.rejection(&d).unwrap();
        assert_eq!(problem.status, 429);
        let headers = p.headers(&d);
        let names: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["RateLimit-Policy", "RateLimit", "Retry-After"]);
        assert!(headers[0].1.contains("\"heavy\";q=100;w=60"));
    }

    #[test]
    fn check_applies_the_callers_overrides() {
        let p = policy(false, FailureMode::Closed);
        let gold = caller(&[("burst", 4)]);
        let mut states = Vec::new();
        let mut admitted = 0;
        for _ in 0..6 {
            let d = p.check(&states, NOW, Some(&gold));
            admitted += usize::from(d.allowed);
            states = d.states;
        }
        // 4 fit the overridden burst limit, but "heavy" (burst 10, cost 5) stops at 2.
        assert_eq!(admitted, 2);
        let no_heavy = RateLimitPolicy {
            limits: vec![p.limits[0].clone()],
            ..p
        };
        let mut states = Vec::new();
        let mut admitted = 0;
        for _ in 0..6 {
            let d = no_heavy.check(&states, NOW, Some(&gold));
            admitted += usize::from(d.allowed);
            states = d.states;
        }
        assert_eq!(admitted, 4);
    }

    #[test]
    fn shadow_mode_counts_but_never_refuses() {
        let p = policy(true, FailureMode::Open);
        let mut d = p.check(&[], NOW, None);
        for _ in 0..3 {
            d = p.check(&d.states, NOW, None);
        }
        assert!(!d.allowed);
        assert_eq!(p.rejection(&d), None);
        let names: Vec<&str> = p.headers(&d).iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["RateLimit-Policy", "RateLimit"]);
    }

    #[test]
    fn charges_pair_each_key_with_the_callers_quota_and_cost() {
        let p = policy(false, FailureMode::Closed);
        let keys = vec!["a".to_owned(), "b".to_owned()];
        let gold = caller(&[("burst", 4)]);
        let charges = p.charges(&keys, Some(&gold));
        assert_eq!(charges.len(), 2);
        assert_eq!(
            (charges[0].key, charges[0].quota.limit, charges[0].cost),
            ("a", 4, 1)
        );
        assert_eq!(
            (charges[1].key, charges[1].quota, charges[1].cost),
            ("b", p.limits[1].quota, 5)
        );
    }

    #[test]
    fn storage_keys_follow_the_limits() {
        let p = policy(false, FailureMode::Closed);
        let id = caller(&[]);
        let source = KeySource::from_identity(Some(&id), None);
        assert_eq!(
            p.storage_keys("orders", &source).unwrap(),
            ["orders:burst:key%3Aacme", "orders:heavy:key%3Aacme"]
        );
        assert_eq!(
            p.storage_keys("orders", &KeySource::default()),
            Err(LimitKeyError::MissingSubject)
        );
    }

    #[test]
    fn limiter_errors_follow_on_error() {
        assert_eq!(policy(false, FailureMode::Open).on_limiter_error(), None);
        let closed = policy(false, FailureMode::Closed).on_limiter_error();
        assert_eq!(closed.map(|p| p.status), Some(503));
    }
}
