//! Whether a request may use the cache, and whether a response may be stored
//! (RFC 9111 §3 and §5.2, as they apply to a gateway cache).
//!
//! Every "no" carries a [`BypassReason`] the adapter can log and put in
//! metrics; none of them is shown to clients.

use super::cache_control::CacheControl;
use super::freshness::ResponseHeaders;
use super::key::CacheKeyError;
use super::rule::FreshnessSource;
use super::rule::{CacheRule, CacheScope};
use super::targeted::edge_directives;
use super::{first_header, has_header, header_values, Headers};

/// Longest header name kept in [`BypassReason::VaryUnlisted`].
const MAX_REASON_NAME_LEN: usize = 64;

/// Why the cache was not used for a request, or a response not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BypassReason {
    /// Only `GET` and `HEAD` are cacheable.
    #[error("method is not cacheable")]
    MethodNotCacheable,
    /// Range requests go to the origin; partial content is never stored.
    #[error("range request")]
    RangeRequest,
    /// The request said `Cache-Control: no-store`.
    #[error("request has Cache-Control: no-store")]
    RequestNoStore,
    /// A private-scope rule, but the caller has no identity.
    #[error("private cache scope, but the caller has no identity")]
    MissingIdentity,
    /// The host could not be normalised into a key.
    #[error("host is not valid for a cache key")]
    InvalidHost,
    /// The URL or key exceeds the size limits.
    #[error("request too large for a cache key")]
    TooLarge,
    /// A response to `HEAD` has no body to store.
    #[error("responses to HEAD are not stored")]
    HeadResponse,
    /// The status is not in the rule's list.
    #[error("status {0} is not cacheable by this rule")]
    StatusNotCacheable(u16),
    /// `206 Partial Content` is never stored.
    #[error("partial content is not stored")]
    PartialContent,
    /// The response sets a cookie, which must not reach other callers.
    #[error("response has Set-Cookie")]
    SetCookie,
    /// `Vary: *`: no key can describe what the response depends on.
    #[error("response has Vary: *")]
    VaryStar,
    /// The response varies on a header the rule does not key on (name,
    /// lowercased and truncated).
    #[error("response varies on {0}, which the cache rule does not key on")]
    VaryUnlisted(String),
    /// The response said `Cache-Control: no-store`.
    #[error("response has Cache-Control: no-store")]
    ResponseNoStore,
    /// The response said `Cache-Control: private`, and the cache is shared.
    #[error("response has Cache-Control: private and the cache is shared")]
    ResponsePrivate,
    /// An authenticated request in a shared cache, and the response does not
    /// allow sharing with `public`, `s-maxage` or `must-revalidate` (RFC 9111 §3.5).
    #[error(
        "response to an authenticated request is not marked public, s-maxage or must-revalidate"
    )]
    AuthenticatedNotPublic,
    /// The body is larger than the rule's `max_body_bytes`.
    #[error("response body is larger than the cache rule's max_body_bytes")]
    BodyTooLarge,
    /// Fewer (or more) bytes arrived than `Content-Length` announced: the
    /// origin broke off, and a truncated body must never be served to all.
    #[error("response body does not match its Content-Length")]
    BodyIncomplete,
}

impl BypassReason {
    /// A stable slug for logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::MethodNotCacheable => "method",
            Self::RangeRequest => "range-request",
            Self::RequestNoStore => "request-no-store",
            Self::MissingIdentity => "missing-identity",
            Self::InvalidHost => "invalid-host",
            Self::TooLarge => "too-large",
            Self::HeadResponse => "head-response",
            Self::StatusNotCacheable(_) => "status",
            Self::PartialContent => "partial-content",
            Self::SetCookie => "set-cookie",
            Self::VaryStar => "vary-star",
            Self::VaryUnlisted(_) => "vary-unlisted",
            Self::ResponseNoStore => "response-no-store",
            Self::ResponsePrivate => "response-private",
            Self::AuthenticatedNotPublic => "authenticated-not-public",
            Self::BodyTooLarge => "body-too-large",
            Self::BodyIncomplete => "body-incomplete",
        }
    }
}

impl From<CacheKeyError> for BypassReason {
    fn from(e: CacheKeyError) -> Self {
        match e {
            CacheKeyError::MethodNotCacheable => Self::MethodNotCacheable,
            CacheKeyError::MissingIdentity => Self::MissingIdentity,
            CacheKeyError::InvalidHost => Self::InvalidHost,
            CacheKeyError::TooLarge => Self::TooLarge,
        }
    }
}

/// How a cacheable request uses the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPlan {
    /// Whether a stored entry must be revalidated before use, whatever its
    /// freshness: the client asked for a fresh answer (`no-cache`,
    /// `max-age=0`, `Pragma: no-cache`). The origin's answer may be stored.
    pub revalidate: bool,
    /// Whether the response may be stored at all (false for `HEAD`).
    pub store: bool,
    /// Whether the request is authenticated; in shared scope its response is
    /// then stored only if marked `public`, `s-maxage` or `must-revalidate`.
    pub authenticated: bool,
    /// The request's own directives (`max-age`, `min-fresh`, `max-stale`,
    /// `only-if-cached`), applied on lookup.
    pub directives: CacheControl,
}

/// The request-side decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestVerdict {
    /// The cache may be used as planned.
    Cache(RequestPlan),
    /// The cache is not used at all.
    Bypass(BypassReason),
}

/// The response-side decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseVerdict {
    /// Store the response.
    Store,
    /// Do not store it.
    Bypass(BypassReason),
}

/// Decides how a request uses the cache. `authenticated` is whether the
/// gateway authenticated the caller; a request carrying `Authorization`
/// counts as authenticated either way.
pub fn check_request(method: &str, headers: &Headers, authenticated: bool) -> RequestVerdict {
    let head = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return RequestVerdict::Bypass(BypassReason::MethodNotCacheable),
    };
    if has_header(headers, "range") {
        return RequestVerdict::Bypass(BypassReason::RangeRequest);
    }
    let cc = CacheControl::from_headers(headers);
    if cc.no_store {
        return RequestVerdict::Bypass(BypassReason::RequestNoStore);
    }
    // Pragma: no-cache counts only without Cache-Control (RFC 9111 §5.4).
    let pragma_no_cache = !has_header(headers, "cache-control")
        && header_values(headers, "pragma")
            .flat_map(|v| v.split(','))
            .any(|d| d.trim().eq_ignore_ascii_case("no-cache"));
    let fresh_wanted = cc.no_cache || cc.max_age == Some(0) || pragma_no_cache;
    RequestVerdict::Cache(RequestPlan {
        revalidate: fresh_wanted,
        store: !head,
        authenticated: authenticated || has_header(headers, "authorization"),
        directives: cc,
    })
}

/// Decides whether a response may be stored under `rule`, for a request
/// planned as `plan`.
pub fn check_response(
    rule: &CacheRule,
    plan: &RequestPlan,
    status: u16,
    headers: &Headers,
) -> ResponseVerdict {
    match response_bypass(rule, plan, status, headers) {
        Some(reason) => ResponseVerdict::Bypass(reason),
        None => ResponseVerdict::Store,
    }
}

fn response_bypass(
    rule: &CacheRule,
    plan: &RequestPlan,
    status: u16,
    headers: &Headers,
) -> Option<BypassReason> {
    if !plan.store {
        return Some(BypassReason::HeadResponse);
    }
    if status == 206 {
        return Some(BypassReason::PartialContent);
    }
    if announced_length(headers).is_some_and(|n| n > rule.max_body_bytes) {
        return Some(BypassReason::BodyTooLarge);
    }
    let view = ResponseHeaders::origin(headers);
    let (cc, _) = edge_directives(view);
    // With origin freshness, an explicit lifetime makes any final status
    // storable (RFC 9111 §3) but errors a client can provoke: a 400, 431 or
    // 500 caused by one request's odd header must not become everyone's
    // answer (CPDoS). Only the resource-level errors RFC 9110 §15.1 calls
    // heuristically cacheable go along; the rule's list adds the rest. A 304
    // is never a whole response.
    let explicit = rule.freshness == FreshnessSource::Origin
        && (cc.s_maxage.is_some() || cc.max_age.is_some() || view.first("expires").is_some());
    let status_ok = rule.statuses.contains(&status)
        || (explicit
            && (matches!(status, 200..=399 | 404 | 405 | 410 | 414 | 501) && status != 304));
    if !status_ok {
        return Some(BypassReason::StatusNotCacheable(status));
    }
    if has_header(headers, "set-cookie") {
        return Some(BypassReason::SetCookie);
    }
    if cc.no_store {
        return Some(BypassReason::ResponseNoStore);
    }
    let shared = rule.scope == CacheScope::Shared;
    if cc.private && shared {
        return Some(BypassReason::ResponsePrivate);
    }
    if let Some(reason) = vary_bypass(rule, headers) {
        return Some(reason);
    }
    if shared && plan.authenticated && !(cc.public || cc.s_maxage.is_some() || cc.must_revalidate) {
        return Some(BypassReason::AuthenticatedNotPublic);
    }
    None
}

/// `Vary: *`, or a varied-on header the key does not include (except
/// `Accept-Encoding`, which the platform handles when it compresses).
fn vary_bypass(rule: &CacheRule, headers: &Headers) -> Option<BypassReason> {
    let names = || {
        header_values(headers, "vary")
            .flat_map(|v| v.split(','))
            .map(str::trim)
    };
    if names().any(|n| n == "*") {
        return Some(BypassReason::VaryStar);
    }
    for name in names() {
        if name.is_empty() || name.eq_ignore_ascii_case("accept-encoding") || rule.varies_on(name) {
            continue;
        }
        let shown: String = name
            .chars()
            .take(MAX_REASON_NAME_LEN)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        return Some(BypassReason::VaryUnlisted(shown));
    }
    None
}

/// The body length `Content-Length` announces, when it is the length of
/// the body the gateway reads: not for an encoded body (the runtime decodes
/// gzip and br, so the announced length is not what arrives), nor when the
/// header is absent or not a number.
pub fn announced_length(headers: &Headers) -> Option<u64> {
    let encoded = first_header(headers, "content-encoding")
        .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
    if encoded {
        return None;
    }
    first_header(headers, "content-length").and_then(|v| v.trim().parse().ok())
}

/// How many body bytes to read, at most, before storing a response that
/// [`check_response`] allowed: one more than the rule allows, so a body
/// over the limit is recognised without reading it all.
pub fn body_read_limit(rule: &CacheRule) -> u64 {
    rule.max_body_bytes.saturating_add(1)
}

/// Whether a body of `received` bytes, read whole (or up to
/// [`body_read_limit`]), may be stored for a response with `headers`.
pub fn check_body(rule: &CacheRule, headers: &Headers, received: u64) -> Result<(), BypassReason> {
    if received > rule.max_body_bytes {
        return Err(BypassReason::BodyTooLarge);
    }
    match announced_length(headers) {
        Some(n) if n != received => Err(BypassReason::BodyIncomplete),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    type Header = (String, String);

    fn hdrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn rule() -> CacheRule {
        CacheRule::new(Duration::from_secs(60)).with_vary_headers(["accept-language"])
    }

    const PLAN: RequestPlan = RequestPlan {
        revalidate: false,
        store: true,
        authenticated: false,
        directives: CacheControl {
            no_store: false,
            no_cache: false,
            private: false,
            public: false,
            must_revalidate: false,
            max_age: None,
            s_maxage: None,
            proxy_revalidate: false,
            stale_while_revalidate: None,
            stale_if_error: None,
            max_stale: None,
            min_fresh: None,
            only_if_cached: false,
        },
    };

    #[test]
    fn a_body_over_the_limit_is_not_stored() {
        let small = rule().with_max_body_bytes(100);
        let announced = |n: &str| hdrs(&[("content-length", n)]);
        assert_eq!(
            check_response(&small, &PLAN, 200, &announced("101")),
            ResponseVerdict::Bypass(BypassReason::BodyTooLarge)
        );
        assert_eq!(
            check_response(&small, &PLAN, 200, &announced("100")),
            ResponseVerdict::Store
        );
        // Encoded: the announced length is not what is read, so only the read decides.
        let gzip = hdrs(&[("content-length", "101"), ("content-encoding", "gzip")]);
        assert_eq!(
            check_response(&small, &PLAN, 200, &gzip),
            ResponseVerdict::Store
        );
        assert_eq!(check_body(&small, &gzip, 100), Ok(()));
        assert_eq!(
            check_body(&small, &gzip, 101),
            Err(BypassReason::BodyTooLarge)
        );
        assert_eq!(body_read_limit(&small), 101);
        assert_eq!(
            body_read_limit(&rule().with_max_body_bytes(u64::MAX)),
            u64::MAX
        );
    }

    #[test]
    fn a_body_that_does_not_match_its_length_is_not_stored() {
        let r = rule();
        let announced = hdrs(&[("content-length", "10")]);
        assert_eq!(check_body(&r, &announced, 10), Ok(()));
        assert_eq!(
            check_body(&r, &announced, 9),
            Err(BypassReason::BodyIncomplete)
        );
        assert_eq!(
            check_body(&r, &announced, 11),
            Err(BypassReason::BodyIncomplete)
        );
        // No length, or one that is not a number: only the limit applies.
        assert_eq!(check_body(&r, &[], 10), Ok(()));
        assert_eq!(
            check_body(&r, &hdrs(&[("content-length", "ten")]), 10),
            Ok(())
        );
        assert_eq!(
            check_body(
                &r,
                &hdrs(&[("content-encoding", "identity"), ("content-length", "3")]),
                2
            ),
            Err(BypassReason::BodyIncomplete)
        );
        assert_eq!(
            announced_length(&hdrs(&[("content-length", " 42 ")])),
            Some(42)
        );
    }

    fn plan(verdict: RequestVerdict) -> RequestPlan {
        match verdict {
            RequestVerdict::Cache(p) => p,
            RequestVerdict::Bypass(r) => panic!("unexpected bypass {r}"),
        }
    }

    #[test]
    fn request_methods() {
        assert_eq!(plan(check_request("GET", &[], false)), PLAN);
        let head = plan(check_request("HEAD", &[], false));
        assert!(!head.revalidate && !head.store);
        for m in ["POST", "PATCH", "get"] {
            assert_eq!(
                check_request(m, &[], false),
                RequestVerdict::Bypass(BypassReason::MethodNotCacheable)
            );
        }
    }

    #[test]
    fn request_cache_control() {
        let bypass = |h: &[(&str, &str)]| check_request("GET", &hdrs(h), false);
        assert_eq!(
            bypass(&[("Cache-Control", "NO-STORE")]),
            RequestVerdict::Bypass(BypassReason::RequestNoStore)
        );
        assert_eq!(
            bypass(&[("range", "bytes=0-10")]),
            RequestVerdict::Bypass(BypassReason::RangeRequest)
        );
        for h in [
            ("cache-control", "no-cache"),
            ("cache-control", "max-age=0"),
            ("pragma", "no-cache"),
        ] {
            let p = plan(bypass(&[h]));
            assert!(p.revalidate && p.store, "{h:?}");
        }
        // Pragma is ignored when Cache-Control is present.
        let p = plan(bypass(&[
            ("cache-control", "max-age=5"),
            ("pragma", "no-cache"),
        ]));
        assert!(!p.revalidate);
        assert_eq!(p.directives.max_age, Some(5));
    }

    #[test]
    fn authorization_header_counts_as_authenticated() {
        let p = plan(check_request(
            "GET",
            &hdrs(&[("Authorization", "Bearer x")]),
            false,
        ));
        assert!(p.authenticated);
        assert!(plan(check_request("GET", &[], true)).authenticated);
    }

    #[test]
    fn storable_response() {
        let h = hdrs(&[
            ("content-type", "application/json"),
            ("vary", "Accept-Encoding, Accept-Language"),
        ]);
        assert_eq!(
            check_response(&rule(), &PLAN, 200, &h),
            ResponseVerdict::Store
        );
        assert_eq!(
            check_response(&rule(), &PLAN, 404, &[]),
            ResponseVerdict::Store
        );
    }

    #[test]
    fn response_bypasses() {
        let r = rule();
        let cases: Vec<(u16, Vec<Header>, BypassReason)> = vec![
            (206, vec![], BypassReason::PartialContent),
            (500, vec![], BypassReason::StatusNotCacheable(500)),
            (200, hdrs(&[("Set-Cookie", "a=b")]), BypassReason::SetCookie),
            (
                200,
                hdrs(&[("vary", "accept"), ("vary", "*")]),
                BypassReason::VaryStar,
            ),
            (200, hdrs(&[("vary", "*")]), BypassReason::VaryStar),
            (
                200,
                hdrs(&[("Vary", "Cookie")]),
                BypassReason::VaryUnlisted("cookie".into()),
            ),
            (
                200,
                hdrs(&[("cache-control", "public, no-store")]),
                BypassReason::ResponseNoStore,
            ),
            (
                500,
                hdrs(&[("cache-control", "no-cache")]),
                BypassReason::StatusNotCacheable(500),
            ),
            (
                200,
                hdrs(&[
                    ("cache-control", "max-age=60"),
                    ("cdn-cache-control", "no-store"),
                ]),
                BypassReason::ResponseNoStore,
            ),
            (
                200,
                hdrs(&[("cache-control", "Private")]),
                BypassReason::ResponsePrivate,
            ),
        ];
        for (status, h, reason) in cases {
            assert_eq!(
                check_response(&r, &PLAN, status, &h),
                ResponseVerdict::Bypass(reason.clone()),
                "{reason}"
            );
            assert!(!reason.as_str().is_empty());
        }
        let head = RequestPlan {
            store: false,
            ..PLAN
        };
        assert_eq!(
            check_response(&r, &head, 200, &[]),
            ResponseVerdict::Bypass(BypassReason::HeadResponse)
        );
    }

    #[test]
    fn explicit_freshness_makes_any_final_status_storable() {
        let r = rule();
        for (status, h) in [
            (201, vec![("cache-control", "max-age=5")]),
            (302, vec![("expires", "0")]),
            (410, vec![("cdn-cache-control", "s-maxage=5")]),
            (501, vec![("cache-control", "max-age=5")]),
        ] {
            assert_eq!(
                check_response(&r, &PLAN, status, &hdrs(&h)),
                ResponseVerdict::Store,
                "{status}"
            );
        }
        for status in [304, 206] {
            let h = hdrs(&[("cache-control", "max-age=5")]);
            assert!(matches!(
                check_response(&r, &PLAN, status, &h),
                ResponseVerdict::Bypass(_)
            ));
        }
        // Override: only the rule's list.
        let over = rule().with_freshness(FreshnessSource::Override);
        let h = hdrs(&[("cache-control", "max-age=5")]);
        assert_eq!(
            check_response(&over, &PLAN, 500, &h),
            ResponseVerdict::Bypass(BypassReason::StatusNotCacheable(500))
        );
        // no-cache is stored (and revalidated on every use).
        let h = hdrs(&[("cache-control", "no-cache")]);
        assert_eq!(check_response(&r, &PLAN, 200, &h), ResponseVerdict::Store);
        // A targeted field lifts Cache-Control's private/no-store for the edge.
        let h = hdrs(&[
            ("cache-control", "private, no-store"),
            ("cdn-cache-control", "max-age=60"),
        ]);
        assert_eq!(check_response(&r, &PLAN, 200, &h), ResponseVerdict::Store);
    }

    #[test]
    fn private_scope_may_store_private_responses() {
        let r = rule().with_scope(CacheScope::Private);
        let h = hdrs(&[("cache-control", "private, max-age=60")]);
        assert_eq!(check_response(&r, &PLAN, 200, &h), ResponseVerdict::Store);
    }

    #[test]
    fn authenticated_shared_needs_public_or_s_maxage() {
        let r = rule();
        let auth = RequestPlan {
            authenticated: true,
            ..PLAN
        };
        assert_eq!(
            check_response(&r, &auth, 200, &hdrs(&[("cache-control", "max-age=60")])),
            ResponseVerdict::Bypass(BypassReason::AuthenticatedNotPublic)
        );
        for cc in ["public", "s-maxage=30", "must-revalidate"] {
            let h = hdrs(&[("cache-control", cc)]);
            assert_eq!(
                check_response(&r, &auth, 200, &h),
                ResponseVerdict::Store,
                "{cc}"
            );
        }
        // Per-caller entries need no such marking.
        let private = r.with_scope(CacheScope::Private);
        assert_eq!(
            check_response(&private, &auth, 200, &[]),
            ResponseVerdict::Store
        );
    }

    #[test]
    fn key_errors_convert() {
        assert_eq!(
            BypassReason::from(CacheKeyError::TooLarge),
            BypassReason::TooLarge
        );
        assert_eq!(
            BypassReason::from(CacheKeyError::MissingIdentity).as_str(),
            "missing-identity"
        );
    }

    #[test]
    fn vary_reason_is_bounded() {
        let long = "x".repeat(1000);
        let h = hdrs(&[("vary", &long)]);
        match check_response(&rule(), &PLAN, 200, &h) {
            ResponseVerdict::Bypass(BypassReason::VaryUnlisted(n)) => assert_eq!(n.len(), 64),
            other => panic!("{other:?}"),
        }
    }

    proptest! {
        #[test]
        fn never_panics(
            method in ".{0,6}", status: u16,
            names in proptest::collection::vec("[a-zA-Z-]{1,16}", 0..6),
            values in proptest::collection::vec(".{0,40}", 0..6),
            authenticated: bool,
        ) {
            let h: Vec<(String, String)> = names.into_iter().zip(values).collect();
            if let RequestVerdict::Cache(p) = check_request(&method, &h, authenticated) {
                let _ = check_response(&rule(), &p, status, &h);
            }
        }
    }
}
