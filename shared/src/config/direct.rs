//! Which requests the edge may answer on its synchronous fast path: the
//! origin request is planned and the answer finished by two synchronous
//! calls, with no Durable Object, Cache API, KV, WebCrypto or `waitUntil`
//! work in between. The policy owns the rule so the edge cannot drift from
//! it: every feature that needs asynchronous work of the edge's own takes
//! the full path.

use super::model::{GatewayConfig, Route};
use crate::route::Method;

impl GatewayConfig {
    /// Whether a `method` request matched to `route` may be a plain proxy: no
    /// rate limit but a leased one, no cache, no CORS, no identity assertion to sign, no
    /// release-health recording, and a safe method that no CORS preflight
    /// and no cache invalidation (RFC 9111 §4.4, unsafe methods only) can
    /// concern. Its caller must still be known at once
    /// (`auth::authenticate_at_once`): a public route, an API key held in
    /// memory, or a bearer token the isolate's cache of verified tokens may
    /// reuse (a token it does not remember needs WebCrypto: the full path).
    pub fn proxies_directly(&self, route: &Route, method: Method) -> bool {
        let safe = matches!(method, Method::Get | Method::Head);
        let signs = self.assertion.is_some() && route.assert_identity;
        // A limit whose lease is on may admit from the isolate's slices
        // without a call (`throttle::admit_from_leases`, last of the plan's
        // checks); without leases every request asks the object.
        let limit_at_once = route.rate_limit.as_ref().is_none_or(|p| p.lease.is_some());
        safe && limit_at_once
            && route.cache.is_none()
            && route.cors.is_none()
            && !signs
            && self.health.is_none()
    }
}
