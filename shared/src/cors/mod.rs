//! Cross-origin resource sharing (Fetch standard, §3.2 "CORS protocol").
//!
//! A route's [`CorsPolicy`] is built once from `[routes.cors]`, with every
//! header value it can send rendered in advance. Per request the edge asks
//! it one of two questions, and each answer is a value:
//!
//! - a preflight ([`PreflightRequest`]: `OPTIONS` with `Origin` and
//!   `Access-Control-Request-Method`) gets [`CorsPolicy::preflight`]: the
//!   exact headers of a `204` answer, or a [`CorsRefusal`] (answered `403`
//!   without any CORS header, so the browser blocks the actual request);
//! - any other request of the route gets [`CorsPolicy::actual`]: the
//!   headers to add to its response, whatever the status.
//!
//! Origins are compared as the browser serializes them (`scheme://host[:port]`,
//! lower case, default port omitted): exactly, or against a subdomain pattern
//! such as `https://*.example.com` ([`OriginRule`]), never by substring.

mod origin;
mod policy;
mod vary;

pub use origin::{OriginRule, OriginRuleError};
pub use policy::{
    CorsPolicy, CorsRefusal, PreflightOutcome, PreflightRequest, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, CORS_RESPONSE_HEADERS, DEFAULT_ALLOW_HEADERS,
    DEFAULT_MAX_AGE_SECS, GATEWAY_EXPOSED_HEADERS, MAX_MAX_AGE_SECS, ORIGIN, PREFLIGHT_VARY,
};
pub use vary::merge_vary;

#[cfg(test)]
mod tests;
