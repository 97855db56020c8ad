//! Which requests the edge may answer on its synchronous fast path: the
//! origin request (or the cache lookup) is planned and the answer finished
//! by synchronous calls, with no Durable Object or KV work in between, at
//! most one WebCrypto check and one Cache API lookup, and no `waitUntil`
//! work but the storing of a filled miss. The policy owns the rule so the
//! edge cannot drift from it: every feature that needs asynchronous work of
//! the edge's own takes the full path.

use super::model::{GatewayConfig, Route};
use crate::route::Method;

impl GatewayConfig {
    /// Whether a `method` request matched to `route` may be a plain proxy: no
    /// rate limit but a leased one, no cache, no CORS, no identity assertion to sign, no
    /// release-health recording, and a safe method that no CORS preflight
    /// and no cache invalidation (RFC 9111 §4.4, unsafe methods only) can
    /// concern. Its caller must still be known at once
    /// (`auth::authenticate_or_pend`): a public route, an API key held in
    /// memory, a bearer token the isolate's cache of verified tokens may
    /// reuse, or a new token whose signature alone is left to check.
    pub fn proxies_directly(&self, route: &Route, method: Method) -> bool {
        self.answers_at_once(route, method) && route.cache.is_none() && self.health.is_none()
    }

    /// Whether a `method` request matched to `route` may be answered from a
    /// fresh cache entry with one Cache API lookup and no other
    /// asynchronous work: a route with a cache rule and otherwise what
    /// [`Self::proxies_directly`] asks, except release-health recording,
    /// which only counts origin answers. A miss may be filled there too
    /// ([`Self::fills_misses_directly`]); anything else (a stale entry, one
    /// to revalidate) is then the full path's, handed the lookup.
    pub fn serves_hits_directly(&self, route: &Route, method: Method) -> bool {
        self.answers_at_once(route, method) && route.cache.is_some()
    }

    /// Whether a miss on such a route (nothing stored under the key) may
    /// be filled on the fast path too: the origin request sent and its
    /// answer stored as the full path stores it. What
    /// [`Self::serves_hits_directly`] asks, and no release-health
    /// recording, which counts origin answers.
    pub fn fills_misses_directly(&self, route: &Route, method: Method) -> bool {
        self.serves_hits_directly(route, method) && self.health.is_none()
    }

    /// What both fast-path answers ask: a safe method, no limit but a
    /// leased one, no CORS, no identity assertion to sign.
    fn answers_at_once(&self, route: &Route, method: Method) -> bool {
        let safe = matches!(method, Method::Get | Method::Head);
        let signs = self.assertion.is_some() && route.assert_identity;
        // A limit whose lease is on may admit from the isolate's slices
        // without a call (`throttle::admit_from_leases`, last of the plan's
        // checks); without leases every request asks the object.
        let limit_at_once = route.rate_limit.as_ref().is_none_or(|p| p.lease.is_some());
        safe && limit_at_once && route.cors.is_none() && !signs
    }
}
