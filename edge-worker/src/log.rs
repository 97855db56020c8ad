//! One JSON log line per request (Workers Logs / `wrangler tail` pick it up
//! from the console). It never holds a token, API key, secret or query
//! string: only ids, names, labels and durations. Events beside it (a JWKS
//! fetch that failed, a global purge...) are lines of their own ([`event`]),
//! each typed by the module that writes it.

use serde::Serialize;
use tidegate_policy::auth::Identity;

use crate::flow::Timings;

/// What the log line says about a request; filled in as the request runs.
#[derive(Debug, Default, Serialize)]
pub struct LogLine {
    /// The request id.
    pub id: String,
    /// The method.
    pub method: String,
    /// The path, without the query (which may carry anything).
    pub path: String,
    /// The W3C trace id (32 hex digits), continued or started at the edge.
    pub trace_id: String,
    /// The matched route's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The response status.
    pub status: u16,
    /// The authenticated subject (JWT `sub` or API key consumer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The API key id or the token's `kid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Whether a bearer token's verification was reused from the isolate's
    /// token cache (`hit`) or done in full (`miss`); absent without a token
    /// or with the cache off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_cache: Option<&'static str>,
    /// Why authentication failed (`AuthRejection::label`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_error: Option<&'static str>,
    /// A caller's tier that no `[tiers]` entry names (the routes' own
    /// limits applied).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_tier: Option<String>,
    /// `X-Cache-Status`, for proxied requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<&'static str>,
    /// Why the cache was bypassed or a response not stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_bypass: Option<&'static str>,
    /// The limiter's decision: `allowed`, `denied`, `shadow-denied`,
    /// `error-open` or `error-closed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limiter: Option<&'static str>,
    /// Limiter object calls the request made (0: admitted or refused from
    /// the isolate's lease alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limiter_calls: Option<u32>,
    /// CORS preflight handling: `preflight` (answered) or
    /// `preflight-refused-<origin|method|header|malformed>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<&'static str>,
    /// How many URLs an unsafe request invalidated (RFC 9111 §4.4: the
    /// target, same-origin `Location` / `Content-Location`); their entries
    /// are dropped after the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalidated: Option<usize>,
    /// What failed, for adapter errors (never client data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Phase durations in milliseconds.
    pub ms: Durations,
}

/// Phase durations in milliseconds.
#[derive(Debug, Default, Serialize)]
pub struct Durations {
    /// Authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<u64>,
    /// Rate limiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle: Option<u64>,
    /// Cache lookups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<u64>,
    /// The origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<u64>,
    /// The whole request, as the gateway saw it.
    pub total: u64,
}

impl LogLine {
    /// Notes the authenticated caller: its subject and key id.
    pub fn note_caller(&mut self, identity: &Identity) {
        self.subject = Some(identity.subject.clone());
        self.key_id = identity.key_id.clone();
    }

    /// Writes the line, with the phase timings.
    pub fn emit(mut self, timings: &Timings) {
        self.ms = Durations {
            auth: timings.auth,
            throttle: timings.throttle,
            cache: timings.cache,
            origin: timings.origin,
            total: timings.total.unwrap_or(0),
        };
        // One string, one `console.log` call: workerd's cheapest way to
        // write a line (an object costs three times as much:
        // bench/log-cost.mjs), and no `format!` copy on the way.
        event(Level::Info, &self);
    }
}

/// The console method an event line goes to (Workers Logs keeps the level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `console.log`.
    Info,
    /// `console.warn`.
    Warn,
    /// `console.error`.
    Error,
}

/// Writes one JSON event line beside the requests' own lines (a JWKS fetch
/// that failed, a global purge...): `line` serialized, as one string. The
/// event types declare their members in alphabetical order, the order
/// these lines have always had.
pub fn event<T: Serialize + ?Sized>(level: Level, line: &T) {
    let Ok(line) = serde_json::to_string(line) else {
        return;
    };
    let line = line.into();
    match level {
        Level::Info => worker::web_sys::console::log_1(&line),
        Level::Warn => worker::web_sys::console::warn_1(&line),
        Level::Error => worker::web_sys::console::error_1(&line),
    }
}
