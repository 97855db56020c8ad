//! What can go wrong in the adapter itself (the runtime, the origin, the
//! limiter, the configuration), and the problem each one answers with.
//!
//! Policy refusals (auth, routing, rate limits) are not here: the policy crate
//! renders those. Details of these errors go to the log line only; clients
//! get a fixed, secret-free message.

use std::time::Duration;

use tidegate_policy::problem::Problem;

use crate::durable::LimiterFault;

/// An adapter-side failure.
#[derive(Debug)]
#[non_exhaustive]
pub enum EdgeError {
    /// The gateway configuration (`TIDEGATE_CONFIG` or the embedded file) is
    /// invalid; the text lists every problem with its path (no secrets).
    InvalidConfig(String),
    /// The `API_KEYS` secret is not a valid list of key records; the text
    /// names the record fields at fault, never a hash or key.
    InvalidApiKeys(String),
    /// The origin could not be reached (connection refused, DNS, TLS...).
    OriginUnreachable(String),
    /// The origin did not answer within the route's timeout.
    OriginTimeout(Duration),
    /// The origin answered with a status HTTP does not allow in a final
    /// response (outside 200–599: 999, 600, a bare 103...): it cannot be
    /// passed on, since the platform refuses to build such a response.
    OriginStatus(u16),
    /// The runtime refused to build a response (a status or a body the
    /// platform does not allow together); the text says why.
    ResponseRefused {
        /// The status the response would have had.
        status: u16,
        /// The runtime's reason.
        reason: String,
    },
    /// The throttle Durable Object could not be called or answered badly.
    Limiter(LimiterFault),
    /// A Workers runtime call failed where it should not.
    Runtime(String),
    /// The KV key store could not be read or written.
    KeyStore(String),
    /// A Worker secret the configuration names is not set (the binding's
    /// name; never a value).
    MissingSecret(String),
    /// A Worker secret holds characters a header value cannot carry (the
    /// binding's name).
    UnusableSecret(String),
    /// The assertion key set secret is invalid; the text names the binding,
    /// the key and the member at fault, never key material.
    AssertionKeys(String),
    /// WebCrypto failed to sign an assertion.
    AssertionSigning(String),
    /// The JWKS endpoint was asked for, but no `[assertion]` is configured.
    NoAssertionKeys,
    /// The client said `Cache-Control: only-if-cached` and the cache holds
    /// nothing that may answer it (RFC 9111 §5.2.1.7).
    NotCached,
}

impl EdgeError {
    /// The problem+json a client gets.
    pub fn to_problem(&self) -> Problem {
        match self {
            Self::InvalidConfig(errors) => {
                Problem::new(500, "invalid-config", "Invalid gateway configuration")
                    .with_detail(errors.clone())
            }
            Self::InvalidApiKeys(errors) => {
                Problem::new(500, "invalid-config", "Invalid gateway configuration")
                    .with_detail(format!("API_KEYS: {errors}"))
            }
            Self::OriginUnreachable(_) => Problem::new(502, "bad-gateway", "Bad gateway")
                .with_detail("The origin could not be reached."),
            Self::OriginTimeout(timeout) => Problem::new(504, "gateway-timeout", "Gateway timeout")
                .with_detail(format!(
                    "The origin did not answer within {} ms.",
                    timeout.as_millis()
                )),
            Self::OriginStatus(status) => Problem::new(502, "bad-gateway", "Bad gateway")
                .with_detail(format!(
                    "The origin answered with status {status}, which HTTP does not allow in a final response (200-599)."
                )),
            Self::ResponseRefused { .. } => Problem::new(502, "bad-gateway", "Bad gateway")
                .with_detail("The origin's answer could not be passed on."),
            Self::Limiter(_) => tidegate_policy::throttle::limiter_unavailable_problem(),
            Self::Runtime(_) | Self::AssertionSigning(_) => {
                Problem::new(500, "internal", "Internal error")
                    .with_detail("The gateway failed to handle this request.")
            }
            Self::MissingSecret(binding) => {
                Problem::new(500, "missing-secret", "Gateway secret missing").with_detail(format!(
                    "The Worker secret `{binding}` named in the gateway configuration is not set; \
                     set it with `wrangler secret put {binding}`."
                ))
            }
            Self::UnusableSecret(binding) => {
                Problem::new(500, "invalid-secret", "Gateway secret unusable").with_detail(format!(
                    "The Worker secret `{binding}` holds control characters a header value cannot carry."
                ))
            }
            Self::AssertionKeys(errors) => {
                Problem::new(500, "invalid-config", "Invalid gateway configuration")
                    .with_detail(errors.clone())
            }
            Self::NoAssertionKeys => crate::assertion::no_jwks_problem(),
            Self::KeyStore(_) => {
                Problem::new(503, "key-store-unavailable", "Key store unavailable")
                    .with_detail("The API key store could not be reached; retry shortly.")
            }
            Self::NotCached => Problem::new(504, "not-cached", "Not cached").with_detail(
                "The request said only-if-cached, and no stored response may answer it.",
            ),
        }
    }

    /// A short description for the log line (its `Display`).
    pub fn log_text(&self) -> String {
        self.to_string()
    }
}

impl std::fmt::Display for EdgeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidConfig(_) => f.write_str("invalid config"),
            Self::InvalidApiKeys(_) => f.write_str("invalid API_KEYS"),
            Self::OriginUnreachable(e) => write!(f, "origin unreachable: {e}"),
            Self::OriginTimeout(t) => write!(f, "origin timeout after {} ms", t.as_millis()),
            Self::OriginStatus(status) => write!(f, "origin answered status {status}"),
            Self::ResponseRefused { status, reason } => {
                write!(f, "runtime refused a {status} response: {reason}")
            }
            Self::Limiter(fault) => write!(f, "{fault}"),
            Self::Runtime(e) => write!(f, "runtime: {e}"),
            Self::KeyStore(e) => write!(f, "key store: {e}"),
            Self::MissingSecret(binding) => write!(f, "worker secret {binding} is not set"),
            Self::UnusableSecret(binding) => {
                write!(f, "worker secret {binding} holds control characters")
            }
            Self::AssertionKeys(errors) => write!(f, "invalid assertion keys: {errors}"),
            Self::AssertionSigning(e) => write!(f, "assertion signing failed: {e}"),
            Self::NoAssertionKeys => f.write_str("no assertion keys configured"),
            Self::NotCached => f.write_str("only-if-cached and nothing stored"),
        }
    }
}

impl std::error::Error for EdgeError {}

impl From<worker::Error> for EdgeError {
    fn from(e: worker::Error) -> Self {
        Self::Runtime(e.to_string())
    }
}

/// A JS exception as text for the log: its name and message (never key
/// data), or the thrown string.
pub fn describe(error: &worker::wasm_bindgen::JsValue) -> String {
    use worker::wasm_bindgen::JsCast;
    match error.dyn_ref::<worker::js_sys::Error>() {
        Some(e) => format!("{}: {}", String::from(e.name()), String::from(e.message())),
        None => error
            .as_string()
            .unwrap_or_else(|| "non-Error exception".to_owned()),
    }
}
