//! How fresh a stored entry is, and the bookkeeping headers stored with it.
//!
//! The adapter stores a response with [`prepare_for_storage`]: the time it was
//! stored goes in [`STORED_AT_HEADER`], and `Cache-Control` is replaced by a
//! `max-age` of [`storage_lifetime`] so the Cache API keeps the entry through
//! its stale windows (the origin's value is kept aside in
//! [`ORIGIN_CACHE_CONTROL_HEADER`]). On a hit, [`freshness_from_headers`]
//! classifies the entry and [`prepare_for_serving`] restores the client-facing
//! headers. A missing or malformed timestamp reads as [`Freshness::Expired`].

use std::time::Duration;

use super::rule::CacheRule;
use super::{header_values, Headers};

/// Prefix of every header Tidegate adds to stored entries; never served.
pub const INTERNAL_HEADER_PREFIX: &str = "x-tidegate-";
/// When the entry was stored: milliseconds since the Unix epoch, decimal.
pub const STORED_AT_HEADER: &str = "x-tidegate-stored-at";
/// The origin's `Cache-Control`, kept while the stored copy carries ours.
pub const ORIGIN_CACHE_CONTROL_HEADER: &str = "x-tidegate-origin-cache-control";
/// Response header reporting how the cache served a request.
pub const CACHE_STATUS_HEADER: &str = "X-Cache-Status";

/// A timestamp this far ahead of now is not clock skew between machines but
/// garbage, and the entry counts as expired.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Which window an entry's age falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Freshness {
    /// Younger than the TTL: serve it.
    Fresh,
    /// Past the TTL but within stale-while-revalidate: serve it and refresh
    /// it in the background.
    StaleWhileRevalidate,
    /// Past those but within stale-if-error: go to the origin, and serve this
    /// only if the origin fails (see [`is_origin_error`]).
    StaleIfError,
    /// Too old to use: go to the origin.
    Expired,
}

/// An entry's freshness and age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreshnessCheck {
    /// The window the entry is in.
    pub freshness: Freshness,
    /// Time since it was stored (0 for slightly-future timestamps).
    pub age: Duration,
}

/// How the cache served a request, for [`CACHE_STATUS_HEADER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheStatus {
    /// Served fresh from the cache.
    Hit,
    /// Not in the cache (or expired): fetched from the origin.
    Miss,
    /// Served stale (while revalidating, or because the origin failed).
    Stale,
    /// A stale entry was refreshed from the origin and that response served.
    Revalidated,
    /// The cache was not used (see the `BypassReason`).
    Bypass,
}

impl CacheStatus {
    /// The header value: `HIT`, `MISS`, `STALE`, `REVALIDATED` or `BYPASS`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Hit => "HIT",
            Self::Miss => "MISS",
            Self::Stale => "STALE",
            Self::Revalidated => "REVALIDATED",
            Self::Bypass => "BYPASS",
        }
    }
}

/// Classifies an entry stored at `stored_at_ms`, at `now_ms`.
pub fn freshness(stored_at_ms: u64, rule: &CacheRule, now_ms: u64) -> FreshnessCheck {
    let skew = Duration::from_millis(stored_at_ms.saturating_sub(now_ms));
    if skew > MAX_CLOCK_SKEW {
        return FreshnessCheck {
            freshness: Freshness::Expired,
            age: Duration::ZERO,
        };
    }
    let age = Duration::from_millis(now_ms.saturating_sub(stored_at_ms));
    let freshness = if age < rule.ttl {
        Freshness::Fresh
    } else if age < rule.ttl.saturating_add(rule.stale_while_revalidate) {
        Freshness::StaleWhileRevalidate
    } else if age < rule.ttl.saturating_add(rule.stale_if_error) {
        Freshness::StaleIfError
    } else {
        Freshness::Expired
    };
    FreshnessCheck { freshness, age }
}

/// Classifies a stored entry by its headers; a missing or malformed
/// [`STORED_AT_HEADER`] reads as expired.
pub fn freshness_from_headers(headers: &Headers, rule: &CacheRule, now_ms: u64) -> FreshnessCheck {
    match parse_stored_at(headers) {
        Some(at) => freshness(at, rule, now_ms),
        None => FreshnessCheck {
            freshness: Freshness::Expired,
            age: Duration::ZERO,
        },
    }
}

/// How long the Cache API should keep an entry: the TTL plus the longer stale
/// window. Zero means there is no point storing.
pub fn storage_lifetime(rule: &CacheRule) -> Duration {
    rule.ttl
        .saturating_add(rule.stale_while_revalidate.max(rule.stale_if_error))
}

/// Whether an origin status counts as a failure for stale-if-error
/// (RFC 5861 §4: 500, 502, 503, 504).
pub fn is_origin_error(status: u16) -> bool {
    matches!(status, 500 | 502 | 503 | 504)
}

/// The stored-at timestamp, if exactly one well-formed value is present.
pub fn parse_stored_at(headers: &Headers) -> Option<u64> {
    let mut values = header_values(headers, STORED_AT_HEADER);
    let value = values.next()?.trim();
    if values.next().is_some() || value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// The headers to store with a response: the origin's, minus any internal
/// ones it sent and any `Age`, with `Cache-Control` swapped for a `max-age`
/// of the storage lifetime and the stored-at time added.
pub fn prepare_for_storage(
    headers: &Headers,
    rule: &CacheRule,
    now_ms: u64,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(headers.len().saturating_add(3));
    for (name, value) in headers {
        if is_internal(name) || name.eq_ignore_ascii_case("age") {
            continue;
        }
        if name.eq_ignore_ascii_case("cache-control") {
            out.push((ORIGIN_CACHE_CONTROL_HEADER.to_owned(), value.clone()));
        } else {
            out.push((name.clone(), value.clone()));
        }
    }
    out.push((
        "cache-control".to_owned(),
        format!("max-age={}", storage_lifetime(rule).as_secs()),
    ));
    out.push((STORED_AT_HEADER.to_owned(), now_ms.to_string()));
    out
}

/// The headers to serve from a stored entry: internal and storage headers
/// dropped, the origin's `Cache-Control` restored, `Age` and
/// [`CACHE_STATUS_HEADER`] set.
pub fn prepare_for_serving(
    stored: &Headers,
    age: Duration,
    status: CacheStatus,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(stored.len().saturating_add(2));
    for (name, value) in stored {
        if name.eq_ignore_ascii_case(ORIGIN_CACHE_CONTROL_HEADER) {
            out.push(("cache-control".to_owned(), value.clone()));
        } else if !is_internal(name)
            && !name.eq_ignore_ascii_case("cache-control")
            && !name.eq_ignore_ascii_case("age")
            && !name.eq_ignore_ascii_case(CACHE_STATUS_HEADER)
        {
            out.push((name.clone(), value.clone()));
        }
    }
    out.push(("age".to_owned(), age.as_secs().to_string()));
    out.push((CACHE_STATUS_HEADER.to_owned(), status.as_str().to_owned()));
    out
}

fn is_internal(name: &str) -> bool {
    name.get(..INTERNAL_HEADER_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(INTERNAL_HEADER_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_700_000_000_000;

    fn rule() -> CacheRule {
        CacheRule::new(Duration::from_secs(60))
            .with_stale_while_revalidate(Duration::from_secs(30))
            .with_stale_if_error(Duration::from_secs(300))
    }

    fn at(age_ms: u64) -> Freshness {
        freshness(NOW - age_ms, &rule(), NOW).freshness
    }

    #[test]
    fn windows() {
        assert_eq!(at(0), Freshness::Fresh);
        assert_eq!(at(59_999), Freshness::Fresh);
        assert_eq!(at(60_000), Freshness::StaleWhileRevalidate);
        assert_eq!(at(89_999), Freshness::StaleWhileRevalidate);
        assert_eq!(at(90_000), Freshness::StaleIfError);
        assert_eq!(at(359_999), Freshness::StaleIfError);
        assert_eq!(at(360_000), Freshness::Expired);
        assert_eq!(
            freshness(NOW - 5_000, &rule(), NOW).age,
            Duration::from_secs(5)
        );
    }

    #[test]
    fn swr_longer_than_sie() {
        let r = CacheRule::new(Duration::from_secs(10))
            .with_stale_while_revalidate(Duration::from_secs(60))
            .with_stale_if_error(Duration::from_secs(5));
        assert_eq!(
            freshness(NOW - 30_000, &r, NOW).freshness,
            Freshness::StaleWhileRevalidate
        );
        assert_eq!(
            freshness(NOW - 70_000, &r, NOW).freshness,
            Freshness::Expired
        );
        assert_eq!(storage_lifetime(&r), Duration::from_secs(70));
    }

    #[test]
    fn zero_ttl_is_never_fresh() {
        let r = CacheRule::new(Duration::ZERO);
        assert_eq!(freshness(NOW, &r, NOW).freshness, Freshness::Expired);
        assert_eq!(storage_lifetime(&r), Duration::ZERO);
    }

    #[test]
    fn future_timestamps() {
        let slight = freshness(NOW + 2_000, &rule(), NOW);
        assert_eq!(slight.freshness, Freshness::Fresh);
        assert_eq!(slight.age, Duration::ZERO);
        assert_eq!(
            freshness(NOW + 61_000, &rule(), NOW).freshness,
            Freshness::Expired
        );
        assert_eq!(
            freshness(u64::MAX, &rule(), 0).freshness,
            Freshness::Expired
        );
    }

    #[test]
    fn lifetime() {
        assert_eq!(storage_lifetime(&rule()), Duration::from_secs(360));
        let huge = CacheRule::new(Duration::MAX).with_stale_if_error(Duration::MAX);
        assert_eq!(storage_lifetime(&huge), Duration::MAX);
    }

    #[test]
    fn parse_stored_at_values() {
        let h = |v: &str| vec![("X-Tidegate-Stored-At".to_owned(), v.to_owned())];
        assert_eq!(parse_stored_at(&h(" 123 ")), Some(123));
        for bad in ["", "-1", "1e3", "12a", "99999999999999999999999", "+5"] {
            assert_eq!(parse_stored_at(&h(bad)), None, "{bad}");
        }
        assert_eq!(parse_stored_at(&[]), None);
        let two = vec![
            (STORED_AT_HEADER.to_owned(), "1".to_owned()),
            (STORED_AT_HEADER.to_owned(), "2".to_owned()),
        ];
        assert_eq!(parse_stored_at(&two), None);
        assert_eq!(
            freshness_from_headers(&h("garbage"), &rule(), NOW).freshness,
            Freshness::Expired
        );
        assert_eq!(
            freshness_from_headers(&h(&NOW.to_string()), &rule(), NOW + 1).freshness,
            Freshness::Fresh
        );
    }

    #[test]
    fn storage_and_serving_round_trip() {
        let origin = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("Cache-Control".to_owned(), "public, max-age=5".to_owned()),
            ("Age".to_owned(), "3".to_owned()),
            ("X-Tidegate-Stored-At".to_owned(), "1".to_owned()),
        ];
        let stored = prepare_for_storage(&origin, &rule(), NOW);
        assert_eq!(parse_stored_at(&stored), Some(NOW));
        assert_eq!(
            header_values(&stored, "cache-control").collect::<Vec<_>>(),
            ["max-age=360"]
        );
        assert!(header_values(&stored, "age").next().is_none());

        let served = prepare_for_serving(&stored, Duration::from_millis(4_500), CacheStatus::Hit);
        assert_eq!(
            served,
            vec![
                ("Content-Type".to_owned(), "application/json".to_owned()),
                ("cache-control".to_owned(), "public, max-age=5".to_owned()),
                ("age".to_owned(), "4".to_owned()),
                (CACHE_STATUS_HEADER.to_owned(), "HIT".to_owned()),
            ]
        );
    }

    #[test]
    fn status_strings() {
        let all = [
            (CacheStatus::Hit, "HIT"),
            (CacheStatus::Miss, "MISS"),
            (CacheStatus::Stale, "STALE"),
            (CacheStatus::Revalidated, "REVALIDATED"),
            (CacheStatus::Bypass, "BYPASS"),
        ];
        for (s, v) in all {
            assert_eq!(s.as_str(), v);
        }
        assert!(is_origin_error(503) && !is_origin_error(404));
    }

    proptest! {
        #[test]
        fn never_panics(stored_at: u64, now: u64, ttl: u64, swr: u64, sie: u64, v in ".*") {
            let r = CacheRule::new(Duration::from_millis(ttl))
                .with_stale_while_revalidate(Duration::from_millis(swr))
                .with_stale_if_error(Duration::from_millis(sie));
            let _ = freshness(stored_at, &r, now);
            let h = vec![(STORED_AT_HEADER.to_owned(), v)];
            let _ = freshness_from_headers(&h, &r, now);
            let _ = storage_lifetime(&r);
        }
    }
}
