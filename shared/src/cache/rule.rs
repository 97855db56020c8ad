//! The caching policy of one route.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Statuses cached by default: the heuristically cacheable ones of RFC 9110
/// §15.1 that make sense for an API gateway (no 206: we never store partial
/// content; no 405/414/501: a route-level error is better not pinned).
pub const DEFAULT_STATUSES: [u16; 7] = [200, 203, 204, 300, 301, 404, 410];

/// Largest body stored by default: 8 MiB. A body is held whole in the
/// isolate's memory (128 MB, shared by every request it serves) while it is
/// checked and stored, so a few concurrent large misses must fit in it.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 8 * 1024 * 1024;

/// The most `max_body_bytes` may be: half the isolate's memory.
pub const MAX_BODY_BYTES_LIMIT: u64 = 64 * 1024 * 1024;

/// Who may share a cached entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheScope {
    /// One entry for every caller, as a shared cache (RFC 9111 §3.5 rules
    /// apply to authenticated requests).
    #[default]
    Shared,
    /// One entry per caller: the identity (subject or API key id) is part of
    /// the key, so responses marked `private` may be stored.
    Private,
}

/// Who decides how long a stored response stays fresh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreshnessSource {
    /// The origin's headers (RFC 9111 §4.2, RFC 9213, RFC 5861); the rule's
    /// `ttl` and stale windows apply only where the origin says nothing.
    #[default]
    Origin,
    /// The rule's `ttl` and stale windows, whatever the origin says about
    /// lifetimes (`no-store`, `private` and `no-cache` still hold).
    Override,
}

/// How a route's responses are cached. Plain, already-validated data built by
/// the config module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRule {
    /// Who decides freshness.
    pub freshness: FreshnessSource,
    /// How long a stored response is fresh when the origin gives no
    /// lifetime (or always, with [`FreshnessSource::Override`]).
    pub ttl: Duration,
    /// The longest lifetime, whatever the origin says.
    pub max_ttl: Option<Duration>,
    /// Whether a response without an explicit lifetime but with
    /// `Last-Modified` gets a heuristic one (RFC 9111 §4.2.2) instead of `ttl`.
    pub heuristic: bool,
    /// After `ttl`, how long a stale response may still be served while it is
    /// refreshed in the background (RFC 5861).
    pub stale_while_revalidate: Duration,
    /// After `ttl`, how long a stale response may be served when the origin
    /// fails (RFC 5861).
    pub stale_if_error: Duration,
    /// Request headers whose values are part of the key, lowercase names, in
    /// this order.
    pub vary_headers: Vec<String>,
    /// Query parameters kept in the key: `None` keeps all, `Some(list)` only
    /// those named (case-sensitive, as query names are).
    pub vary_query: Option<Vec<String>>,
    /// Whether entries are shared by all callers or kept per caller.
    pub scope: CacheScope,
    /// Response statuses that may be stored.
    pub statuses: Vec<u16>,
    /// Largest response body stored, in bytes; larger ones are served and
    /// not stored.
    pub max_body_bytes: u64,
}

impl CacheRule {
    /// A shared rule with the given TTL, origin freshness, no stale serving,
    /// no varying and [`DEFAULT_STATUSES`].
    pub fn new(ttl: Duration) -> Self {
        Self {
            freshness: FreshnessSource::Origin,
            ttl,
            max_ttl: None,
            heuristic: false,
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            vary_headers: Vec::new(),
            vary_query: None,
            scope: CacheScope::Shared,
            statuses: DEFAULT_STATUSES.to_vec(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// The same rule with another source of freshness.
    #[must_use]
    pub fn with_freshness(mut self, source: FreshnessSource) -> Self {
        self.freshness = source;
        self
    }

    /// The same rule with lifetimes capped at `max`.
    #[must_use]
    pub fn with_max_ttl(mut self, max: Duration) -> Self {
        self.max_ttl = Some(max);
        self
    }

    /// The same rule with heuristic freshness on or off.
    #[must_use]
    pub fn with_heuristic(mut self, on: bool) -> Self {
        self.heuristic = on;
        self
    }

    /// The same rule with a stale-while-revalidate window.
    pub fn with_stale_while_revalidate(mut self, span: Duration) -> Self {
        self.stale_while_revalidate = span;
        self
    }

    /// The same rule with a stale-if-error window.
    pub fn with_stale_if_error(mut self, span: Duration) -> Self {
        self.stale_if_error = span;
        self
    }

    /// The same rule varying on these request headers (lowercased here).
    pub fn with_vary_headers<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.vary_headers = names
            .into_iter()
            .map(|n| n.as_ref().to_ascii_lowercase())
            .collect();
        self
    }

    /// The same rule keeping only these query parameters in the key.
    pub fn with_vary_query<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.vary_query = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// The same rule with another scope.
    pub fn with_scope(mut self, scope: CacheScope) -> Self {
        self.scope = scope;
        self
    }

    /// The same rule storing only these statuses.
    pub fn with_statuses(mut self, statuses: impl Into<Vec<u16>>) -> Self {
        self.statuses = statuses.into();
        self
    }

    /// The same rule storing bodies of at most `bytes`.
    pub fn with_max_body_bytes(mut self, bytes: u64) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Whether `name` (any case) is one of the vary headers.
    pub fn varies_on(&self, name: &str) -> bool {
        self.vary_headers
            .iter()
            .any(|v| v.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_builders() {
        let r = CacheRule::new(Duration::from_secs(60))
            .with_stale_while_revalidate(Duration::from_secs(30))
            .with_stale_if_error(Duration::from_secs(600))
            .with_vary_headers(["Accept-Language"])
            .with_vary_query(["page"])
            .with_scope(CacheScope::Private)
            .with_statuses([200]);
        assert_eq!(r.vary_headers, ["accept-language"]);
        assert!(r.varies_on("ACCEPT-LANGUAGE"));
        assert_eq!(r.vary_query, Some(vec!["page".to_owned()]));
        assert_eq!(r.statuses, [200]);
        let d = CacheRule::new(Duration::from_secs(1));
        assert_eq!(d.scope, CacheScope::Shared);
        assert_eq!(d.statuses, DEFAULT_STATUSES);
        assert_eq!(d.vary_query, None);
    }

    #[test]
    fn serde_round_trip() {
        let r = CacheRule::new(Duration::from_secs(5)).with_scope(CacheScope::Private);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""scope":"private""#));
        assert_eq!(serde_json::from_str::<CacheRule>(&json).unwrap(), r);
    }
}
