//! A route's CORS policy and its two decisions: preflight and actual request.

use std::time::Duration;

use super::origin::OriginRule;
use crate::problem::Problem;
use crate::route::Method;

/// The request header naming the caller's origin.
pub const ORIGIN: &str = "origin";
/// The preflight header naming the actual request's method.
pub const ACCESS_CONTROL_REQUEST_METHOD: &str = "access-control-request-method";
/// The preflight header listing the actual request's non-safelisted headers.
pub const ACCESS_CONTROL_REQUEST_HEADERS: &str = "access-control-request-headers";

const ALLOW_ORIGIN: &str = "access-control-allow-origin";
const ALLOW_CREDENTIALS: &str = "access-control-allow-credentials";
const ALLOW_METHODS: &str = "access-control-allow-methods";
const ALLOW_HEADERS: &str = "access-control-allow-headers";
const EXPOSE_HEADERS: &str = "access-control-expose-headers";
const MAX_AGE: &str = "access-control-max-age";

/// Every CORS response header. On a route with `cors` the gateway owns them:
/// the origin's own are removed before the policy's are added.
pub const CORS_RESPONSE_HEADERS: [&str; 6] = [
    ALLOW_ORIGIN,
    ALLOW_CREDENTIALS,
    ALLOW_METHODS,
    ALLOW_HEADERS,
    EXPOSE_HEADERS,
    MAX_AGE,
];

/// `Vary` of every preflight answer: it depends on all three request headers.
pub const PREFLIGHT_VARY: &str =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

/// Response headers the gateway itself adds, always exposed to scripts.
pub const GATEWAY_EXPOSED_HEADERS: [&str; 7] = [
    "ratelimit",
    "ratelimit-policy",
    "retry-after",
    "x-request-id",
    "x-cache-status",
    "server-timing",
    "www-authenticate",
];

/// Request headers allowed when `allow_headers` is not set (the API key
/// header of a route that accepts API keys is added to these).
pub const DEFAULT_ALLOW_HEADERS: [&str; 5] = [
    "authorization",
    "content-type",
    "traceparent",
    "tracestate",
    "x-request-id",
];

/// `Access-Control-Max-Age` when `max_age` is not set: 10 minutes.
pub const DEFAULT_MAX_AGE_SECS: u64 = 600;
/// Largest `max_age`: one day (Firefox's own cap; Chromium caps at 2 hours).
pub const MAX_MAX_AGE_SECS: u64 = 86_400;

/// Most names accepted in one `Access-Control-Request-Headers`.
const MAX_REQUEST_HEADERS: usize = 64;

/// A route's CORS policy, validated, with its constant header values
/// rendered once. Build it with [`CorsPolicy::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    /// `allow_origins = ["*"]`: any origin.
    pub any_origin: bool,
    /// The allowed origins, when not `any_origin`.
    pub origins: Vec<OriginRule>,
    /// Methods a preflight may ask for.
    pub methods: Vec<Method>,
    /// `allow_headers = ["*"]`: any request header.
    pub any_header: bool,
    /// Request headers a preflight may ask for, lower case (when not `any_header`).
    pub headers: Vec<String>,
    /// Response headers exposed besides [`GATEWAY_EXPOSED_HEADERS`], lower
    /// case; `*` exposes all (without credentials only).
    pub expose: Vec<String>,
    /// Send `Access-Control-Allow-Credentials: true`.
    pub credentials: bool,
    /// How long browsers may cache a preflight answer.
    pub max_age: Duration,
    methods_value: String,
    expose_value: String,
    max_age_value: String,
}

/// What a preflight asks, read from its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreflightRequest<'a> {
    /// `Origin`.
    pub origin: &'a str,
    /// `Access-Control-Request-Method`.
    pub method: &'a str,
    /// `Access-Control-Request-Headers`, if sent.
    pub headers: Option<&'a str>,
}

/// The answer to a preflight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreflightOutcome {
    /// Answer `204` with exactly these headers (names lower case).
    Allowed(Vec<(String, String)>),
    /// Answer [`CorsRefusal::to_problem`] with [`PREFLIGHT_VARY`] and no CORS header.
    Refused(CorsRefusal),
}

/// Why a preflight is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CorsRefusal {
    /// The `Origin` is not one the route allows.
    #[error("the origin is not allowed on this route")]
    Origin,
    /// `Access-Control-Request-Method` is not one the route allows (names are
    /// case-sensitive, as browsers compare them).
    #[error("the requested method is not allowed on this route")]
    Method,
    /// `Access-Control-Request-Headers` names a header the route does not allow.
    #[error("a requested header is not allowed on this route")]
    Header,
    /// `Access-Control-Request-Headers` is not a list of header names.
    #[error("Access-Control-Request-Headers is not a list of header names")]
    Malformed,
}

impl CorsRefusal {
    /// A short label for logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::Origin => "origin",
            Self::Method => "method",
            Self::Header => "header",
            Self::Malformed => "malformed",
        }
    }

    /// The `403` problem answering a refused preflight. It never echoes
    /// what the request sent.
    pub fn to_problem(self) -> Problem {
        Problem::new(403, "cors-preflight-refused", "CORS preflight refused")
            .with_detail(format!("{self}."))
    }
}

impl<'a> PreflightRequest<'a> {
    /// The preflight in `headers`, if it is one: an `OPTIONS` request (the
    /// caller checks the method) carrying both `Origin` and
    /// `Access-Control-Request-Method`. Anything else is an ordinary request.
    pub fn from_headers(headers: &'a [(String, String)]) -> Option<Self> {
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        Some(Self {
            origin: find(ORIGIN)?,
            method: find(ACCESS_CONTROL_REQUEST_METHOD)?,
            headers: find(ACCESS_CONTROL_REQUEST_HEADERS),
        })
    }
}

impl CorsPolicy {
    /// A policy; `expose` and `headers` are lower-cased here. `*` origins
    /// with credentials (which the config refuses) echo the origin instead.
    pub fn new(
        any_origin: bool,
        origins: Vec<OriginRule>,
        methods: Vec<Method>,
        allowed_headers: Option<Vec<String>>,
        expose: Vec<String>,
        credentials: bool,
        max_age: Duration,
    ) -> Self {
        let any_header = allowed_headers.is_none();
        let headers: Vec<String> = allowed_headers
            .unwrap_or_default()
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        let expose: Vec<String> = expose.iter().map(|h| h.to_ascii_lowercase()).collect();
        let methods_value = methods
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let expose_value = if !credentials && expose.iter().any(|h| h == "*") {
            "*".to_owned()
        } else {
            let mut names: Vec<&str> = GATEWAY_EXPOSED_HEADERS.to_vec();
            for name in &expose {
                if name != "*" && !names.contains(&name.as_str()) {
                    names.push(name);
                }
            }
            names.join(", ")
        };
        Self {
            any_origin,
            origins,
            methods,
            any_header,
            headers,
            expose,
            credentials,
            max_age,
            methods_value,
            expose_value,
            max_age_value: max_age.as_secs().to_string(),
        }
    }

    /// Whether the answer is the same for every origin (`*` without credentials).
    fn wildcard(&self) -> bool {
        self.any_origin && !self.credentials
    }

    /// Whether `origin` may read this route's responses.
    pub fn allows_origin(&self, origin: &str) -> bool {
        if self.any_origin {
            return is_origin_like(origin) && !(self.credentials && origin == "null");
        }
        self.origins.iter().any(|rule| rule.matches(origin))
    }

    /// The answer to a preflight; see the [module docs](super).
    pub fn preflight(&self, req: &PreflightRequest<'_>) -> PreflightOutcome {
        if !self.allows_origin(req.origin) {
            return PreflightOutcome::Refused(CorsRefusal::Origin);
        }
        if !self.methods.iter().any(|m| m.as_str() == req.method) {
            return PreflightOutcome::Refused(CorsRefusal::Method);
        }
        let mut requested: Vec<String> = Vec::new();
        for name in req.headers.unwrap_or("").split(',') {
            let name = name.trim_matches([' ', '\t']);
            if name.is_empty() {
                continue;
            }
            if !is_token(name) || requested.len() >= MAX_REQUEST_HEADERS {
                return PreflightOutcome::Refused(CorsRefusal::Malformed);
            }
            let name = name.to_ascii_lowercase();
            if !self.any_header && !self.headers.contains(&name) {
                return PreflightOutcome::Refused(CorsRefusal::Header);
            }
            if !requested.contains(&name) {
                requested.push(name);
            }
        }
        let mut out = Vec::with_capacity(6);
        self.push_origin(&mut out, req.origin);
        out.push((ALLOW_METHODS.to_owned(), self.methods_value.clone()));
        if !requested.is_empty() {
            out.push((ALLOW_HEADERS.to_owned(), requested.join(", ")));
        }
        out.push((MAX_AGE.to_owned(), self.max_age_value.clone()));
        out.push(("vary".to_owned(), PREFLIGHT_VARY.to_owned()));
        PreflightOutcome::Allowed(out)
    }

    /// The headers to add to any response of the route to a request with
    /// `origin` (its `Origin` header, if any), whatever the status. A
    /// `vary` entry is to be merged into the response's `Vary` (see
    /// [`merge_vary`](super::merge_vary)); every other entry replaces the
    /// header of that name.
    pub fn actual(&self, origin: Option<&str>) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(4);
        if self.wildcard() {
            // The same answer for every origin, or none: nothing to vary on.
            out.push((ALLOW_ORIGIN.to_owned(), "*".to_owned()));
            out.push((EXPOSE_HEADERS.to_owned(), self.expose_value.clone()));
            return out;
        }
        out.push(("vary".to_owned(), "Origin".to_owned()));
        if let Some(origin) = origin.filter(|o| self.allows_origin(o)) {
            self.push_origin(&mut out, origin);
            out.push((EXPOSE_HEADERS.to_owned(), self.expose_value.clone()));
        }
        out
    }

    /// `Access-Control-Allow-Origin` (and `-Credentials`) for an allowed origin.
    fn push_origin(&self, out: &mut Vec<(String, String)>, origin: &str) {
        if self.wildcard() {
            out.push((ALLOW_ORIGIN.to_owned(), "*".to_owned()));
        } else {
            out.push((ALLOW_ORIGIN.to_owned(), origin.to_owned()));
        }
        if self.credentials {
            out.push((ALLOW_CREDENTIALS.to_owned(), "true".to_owned()));
        }
    }
}

/// A plausible `Origin` value to echo: `null` or `scheme://host[:port]`
/// made of URL host characters only (nothing that could split a header).
fn is_origin_like(origin: &str) -> bool {
    if origin == "null" {
        return true;
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && !rest.is_empty()
        && rest.len() <= 512
        && rest.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        })
}

/// An RFC 9110 token.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
