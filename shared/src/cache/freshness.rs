//! How long a response stays fresh, how old a stored entry is, and the
//! bookkeeping headers stored with it (RFC 9111 §4.2, RFC 5861, RFC 9213).
//!
//! When a response arrives, [`prepare_for_storage`] records two facts with
//! it: when it arrived (`STORED_AT_HEADER`) and its corrected initial age
//! ([`INITIAL_AGE_HEADER`], §4.2.3: the larger of the apparent age from its
//! `Date` and the upstream `Age` plus the request's round trip). It sets the
//! headers the Cache API would act on aside under internal names and gives
//! the stored copy a `max-age` the Cache API keeps it for. On a hit,
//! [`freshness_from_headers`] works out the entry's lifetime from the
//! origin's headers under the rule *now* (so a config change applies at
//! once), its current age, and which window that age falls in;
//! [`prepare_for_serving`] restores what the client sees.
//!
//! Lifetime, with [`FreshnessSource::Origin`]: the edge's directives
//! ([`edge_directives`]: a targeted field, else `Cache-Control`) give
//! `s-maxage`, else `max-age`; else `Expires − Date` (an invalid `Expires`
//! is already expired); else a heuristic from `Last-Modified` when the rule
//! asks for one; else the rule's `ttl`. `max_ttl` caps them all. The stale
//! windows are the origin's `stale-while-revalidate` / `stale-if-error`,
//! else the rule's; `must-revalidate`, `proxy-revalidate`, `s-maxage` and
//! `no-cache` forbid any (§4.2.4), and `no-cache` makes every use a
//! revalidation.
//!
//! ```
//! use std::time::Duration;
//! use tidegate_policy::cache::{freshness_from_headers, prepare_for_storage, ResponseTiming};
//! use tidegate_policy::cache::{CacheRule, Freshness};
//! let rule = CacheRule::new(Duration::from_secs(3600));
//! let origin = vec![
//!     ("cache-control".to_owned(), "max-age=60".to_owned()),
//!     ("age".to_owned(), "50".to_owned()),
//! ];
//! let now = 1_700_000_000_000;
//! let timing = ResponseTiming { requested_at_ms: now, received_at_ms: now };
//! let stored = prepare_for_storage(&origin, &rule, timing);
//! // The upstream Age counts: 10 s of freshness left.
//! let check = freshness_from_headers(&stored.headers, &rule, now + 9_000);
//! assert_eq!(check.freshness, Freshness::Fresh);
//! assert_eq!(check.age, Duration::from_secs(59));
//! let check = freshness_from_headers(&stored.headers, &rule, now + 10_000);
//! assert_eq!(check.freshness, Freshness::Expired);
//! ```

use std::time::Duration;

use super::cache_control::CacheControl;
use super::http_date::parse_http_date;
use super::rule::{CacheRule, FreshnessSource};
use super::targeted::edge_directives;
use super::{header_values, Headers};

/// Prefix of every header Tidegate adds to stored entries; never served.
pub const INTERNAL_HEADER_PREFIX: &str = "x-tidegate-";
/// When the entry's response arrived: milliseconds since the Unix epoch.
pub const STORED_AT_HEADER: &str = "x-tidegate-stored-at";
/// The entry's corrected initial age (RFC 9111 §4.2.3), milliseconds.
pub const INITIAL_AGE_HEADER: &str = "x-tidegate-initial-age";
/// The origin's `Cache-Control`, kept while the stored copy carries ours.
pub const ORIGIN_CACHE_CONTROL_HEADER: &str = "x-tidegate-origin-cache-control";
/// The entry's status. Entries are stored as 200s, whatever the origin
/// said: a Cache API implementation may refuse statuses it does not know
/// as cacheable (Miniflare's refuses 201 and 500 even with `max-age`),
/// while RFC 9111 §3 stores any final status with explicit freshness.
pub const STATUS_HEADER: &str = "x-tidegate-status";
/// Response header reporting how the cache served a request.
pub const CACHE_STATUS_HEADER: &str = "X-Cache-Status";

/// Origin headers the Cache API would act on or rewrite itself, stored
/// under internal names and restored when served.
const SET_ASIDE: [(&str, &str); 5] = [
    ("cache-control", ORIGIN_CACHE_CONTROL_HEADER),
    // A Cache API implementation may set its own Date on what it returns.
    ("date", "x-tidegate-origin-date"),
    ("cdn-cache-control", "x-tidegate-origin-cdn-cache-control"),
    (
        "cloudflare-cdn-cache-control",
        "x-tidegate-origin-cloudflare-cdn-cache-control",
    ),
    ("expires", "x-tidegate-origin-expires"),
];

/// A timestamp this far ahead of now is not clock skew between machines but
/// garbage, and the entry counts as expired.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The cap on a heuristic lifetime when the rule sets no `max_ttl`.
pub const MAX_HEURISTIC_LIFETIME: Duration = Duration::from_secs(86_400);

/// Which window an entry's age falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Freshness {
    /// Younger than its lifetime: serve it.
    Fresh,
    /// Past its lifetime but within stale-while-revalidate: serve it and
    /// refresh it in the background.
    StaleWhileRevalidate,
    /// Past those but within stale-if-error: go to the origin, and serve this
    /// only if the origin fails (see `is_origin_error`).
    StaleIfError,
    /// Too old to serve without asking the origin (with its validators, if
    /// it has any); also every `no-cache` entry.
    Expired,
}

/// An entry's freshness and age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreshnessCheck {
    /// The window the entry is in.
    pub freshness: Freshness,
    /// Its current age (§4.2.3), what `Age` says when it is served.
    pub age: Duration,
    /// Its freshness lifetime.
    pub lifetime: Duration,
    /// Whether it may ever be served stale (§4.2.4).
    pub stale_allowed: bool,
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

/// A response's headers as its origin sent them: an origin response as it
/// is, or a stored entry read through its set-aside names.
#[derive(Debug, Clone, Copy)]
pub struct ResponseHeaders<'a> {
    headers: &'a Headers,
    stored: bool,
}

impl<'a> ResponseHeaders<'a> {
    /// An origin response's headers.
    pub fn origin(headers: &'a Headers) -> Self {
        Self {
            headers,
            stored: false,
        }
    }

    /// A stored entry's headers (made by [`prepare_for_storage`]).
    pub fn stored(headers: &'a Headers) -> Self {
        Self {
            headers,
            stored: true,
        }
    }

    /// The values of the origin's header `name` (lowercase).
    pub fn values<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        let name = match self.stored {
            true => set_aside_name(name).unwrap_or(name),
            false => name,
        };
        header_values(self.headers, name)
    }

    /// The first value of the origin's header `name` (lowercase).
    pub fn first(&self, name: &str) -> Option<&'a str> {
        self.values(name).next()
    }
}

fn set_aside_name(name: &str) -> Option<&'static str> {
    SET_ASIDE
        .iter()
        .find(|(origin, _)| origin.eq_ignore_ascii_case(name))
        .map(|(_, internal)| *internal)
}

/// When the origin was asked and when its answer arrived, ms since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseTiming {
    /// When the request was sent (`request_time`, §4.2.3).
    pub requested_at_ms: u64,
    /// When the response arrived (`response_time`).
    pub received_at_ms: u64,
}

/// What a response's headers and the rule allow: its lifetime and windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// How long it is fresh, counted from age 0.
    pub fresh: Duration,
    /// Past `fresh`, how long it may be served while refreshed.
    pub stale_while_revalidate: Duration,
    /// Past `fresh`, how long it may stand in for a failing origin.
    pub stale_if_error: Duration,
    /// Every use must be revalidated (`no-cache`).
    pub always_revalidate: bool,
    /// The origin forbids serving it stale (§4.2.4).
    pub stale_forbidden: bool,
    /// The origin gave an explicit lifetime (`s-maxage`, `max-age`, `Expires`).
    pub explicit: bool,
}

impl Lifetimes {
    /// Whether the entry may ever be served stale.
    pub fn stale_allowed(&self) -> bool {
        !self.always_revalidate && !self.stale_forbidden
    }
}

/// The lifetimes of a response under `rule`; `received_at_ms` stands in for
/// a missing `Date`.
pub fn lifetimes(rule: &CacheRule, headers: ResponseHeaders<'_>, received_at_ms: u64) -> Lifetimes {
    let (cc, _) = edge_directives(headers);
    let secs = Duration::from_secs;
    if rule.freshness == FreshnessSource::Override {
        return Lifetimes {
            fresh: rule.ttl,
            stale_while_revalidate: rule.stale_while_revalidate,
            stale_if_error: rule.stale_if_error,
            always_revalidate: cc.no_cache,
            stale_forbidden: false,
            explicit: false,
        };
    }
    let explicit = explicit_lifetime(&cc, headers, received_at_ms);
    let fresh = explicit
        .or_else(|| heuristic_lifetime(rule, headers, received_at_ms))
        .unwrap_or(rule.ttl);
    let fresh = rule.max_ttl.map_or(fresh, |max| fresh.min(max));
    let no_stale = cc.forbids_stale();
    let window = |origin: Option<u64>, default: Duration| match no_stale {
        true => Duration::ZERO,
        false => origin.map_or(default, secs),
    };
    Lifetimes {
        fresh,
        stale_while_revalidate: window(cc.stale_while_revalidate, rule.stale_while_revalidate),
        stale_if_error: window(cc.stale_if_error, rule.stale_if_error),
        always_revalidate: cc.no_cache,
        stale_forbidden: no_stale,
        explicit: explicit.is_some(),
    }
}

/// `s-maxage`, `max-age` or `Expires − Date` (§4.2.1), if the origin gave one.
pub fn explicit_lifetime(
    cc: &CacheControl,
    headers: ResponseHeaders<'_>,
    received_at_ms: u64,
) -> Option<Duration> {
    if let Some(s) = cc.s_maxage.or(cc.max_age) {
        return Some(Duration::from_secs(s));
    }
    let expires = headers.first("expires")?;
    let Some(expires) = parse_http_date(expires) else {
        // §5.3: an invalid Expires (such as "0") means already expired.
        return Some(Duration::ZERO);
    };
    let date = date_secs(headers, received_at_ms);
    Some(Duration::from_secs(
        u64::try_from(expires.saturating_sub(date)).unwrap_or(0),
    ))
}

/// 10 % of the time since `Last-Modified` (§4.2.2), when the rule asks for it.
fn heuristic_lifetime(
    rule: &CacheRule,
    headers: ResponseHeaders<'_>,
    received_at_ms: u64,
) -> Option<Duration> {
    if !rule.heuristic {
        return None;
    }
    let modified = parse_http_date(headers.first("last-modified")?)?;
    let since = date_secs(headers, received_at_ms).saturating_sub(modified);
    let tenth = Duration::from_secs(u64::try_from(since / 10).unwrap_or(0));
    Some(tenth.min(rule.max_ttl.unwrap_or(MAX_HEURISTIC_LIFETIME)))
}

/// The response's `Date`, or when it arrived, in epoch seconds.
fn date_secs(headers: ResponseHeaders<'_>, received_at_ms: u64) -> i64 {
    headers
        .first("date")
        .and_then(parse_http_date)
        .unwrap_or_else(|| i64::try_from(received_at_ms / 1_000).unwrap_or(i64::MAX))
}

/// The corrected initial age of a response (§4.2.3): the larger of its
/// apparent age (arrival − `Date`) and the upstream `Age` plus the time
/// the request took. An invalid `Age` is ignored.
pub fn initial_age(headers: ResponseHeaders<'_>, timing: ResponseTiming) -> Duration {
    let received = timing.received_at_ms;
    let apparent_ms = headers
        .first("date")
        .and_then(parse_http_date)
        .map_or(0, |date| {
            let date_ms = u64::try_from(date).unwrap_or(0).saturating_mul(1_000);
            received.saturating_sub(date_ms)
        });
    let age_value = headers.first("age").and_then(parse_age).unwrap_or(0);
    let delay_ms = received.saturating_sub(timing.requested_at_ms);
    let corrected_ms = age_value.saturating_mul(1_000).saturating_add(delay_ms);
    Duration::from_millis(apparent_ms.max(corrected_ms))
}

/// An `Age` value: delta-seconds, saturating at 2^31 (RFC 9111 §1.2.2).
fn parse_age(value: &str) -> Option<u64> {
    let v = value.trim_matches([' ', '\t']);
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(v.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10)
            .saturating_add(u64::from(b.saturating_sub(b'0')))
            .min(1 << 31)
    }))
}

/// Classifies a stored entry by its headers at `now_ms`; one without a
/// well-formed `STORED_AT_HEADER` reads as expired.
pub fn freshness_from_headers(stored: &Headers, rule: &CacheRule, now_ms: u64) -> FreshnessCheck {
    let headers = ResponseHeaders::stored(stored);
    let expired = FreshnessCheck {
        freshness: Freshness::Expired,
        age: Duration::ZERO,
        lifetime: Duration::ZERO,
        stale_allowed: false,
    };
    let Some(stored_at) = parse_stored_ms(stored, STORED_AT_HEADER) else {
        return expired;
    };
    if Duration::from_millis(stored_at.saturating_sub(now_ms)) > MAX_CLOCK_SKEW {
        return expired;
    }
    let initial = parse_stored_ms(stored, INITIAL_AGE_HEADER).unwrap_or(0);
    let age = Duration::from_millis(initial.saturating_add(now_ms.saturating_sub(stored_at)));
    let lifetimes = lifetimes(rule, headers, stored_at);
    FreshnessCheck {
        freshness: classify(&lifetimes, age),
        age,
        lifetime: lifetimes.fresh,
        stale_allowed: lifetimes.stale_allowed(),
    }
}

/// The window `age` falls in under `lifetimes`.
pub fn classify(lifetimes: &Lifetimes, age: Duration) -> Freshness {
    let fresh = lifetimes.fresh;
    if lifetimes.always_revalidate {
        Freshness::Expired
    } else if age < fresh {
        Freshness::Fresh
    } else if age < fresh.saturating_add(lifetimes.stale_while_revalidate) {
        Freshness::StaleWhileRevalidate
    } else if age < fresh.saturating_add(lifetimes.stale_if_error) {
        Freshness::StaleIfError
    } else {
        Freshness::Expired
    }
}

/// How long the Cache API should keep an entry: past its lifetime, the
/// longer stale window, and for an entry with a validator at least the
/// rule's `ttl` more, so it can be revalidated with a 304 instead of
/// refetched. Zero means there is no point storing.
pub fn keep_for(rule: &CacheRule, lifetimes: &Lifetimes, has_validator: bool) -> Duration {
    let revalidation = match has_validator {
        true => rule.ttl,
        false => Duration::ZERO,
    };
    let stale = lifetimes
        .stale_while_revalidate
        .max(lifetimes.stale_if_error)
        .max(revalidation);
    // A no-cache entry is never fresh: it is kept only to be revalidated.
    let fresh = match lifetimes.always_revalidate {
        true => Duration::ZERO,
        false => lifetimes.fresh,
    };
    fresh.saturating_add(stale)
}

/// The longest an entry stored under `rule` stays in the cache when the
/// origin gives no lifetime: the TTL plus the longer stale window.
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
    parse_stored_ms(headers, STORED_AT_HEADER)
}

fn parse_stored_ms(headers: &Headers, name: &str) -> Option<u64> {
    let mut values = header_values(headers, name);
    let value = values.next()?.trim();
    if values.next().is_some() || value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// The status of a stored entry: its [`STATUS_HEADER`], else `stored_as`
/// (the status the Cache API returned it with: entries stored before the
/// header existed).
pub fn stored_status(headers: &Headers, stored_as: u16) -> u16 {
    super::first_header(headers, STATUS_HEADER)
        .and_then(|v| v.trim().parse().ok())
        .filter(|s| (200..=599).contains(s))
        .unwrap_or(stored_as)
}

/// Whether a response carries a validator (`ETag` or `Last-Modified`).
pub fn has_validator(headers: ResponseHeaders<'_>) -> bool {
    headers.first("etag").is_some() || headers.first("last-modified").is_some()
}

/// A response ready for the Cache API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// The headers to store it with.
    pub headers: Vec<(String, String)>,
    /// How long the Cache API should keep it; zero: do not store it.
    pub keep: Duration,
}

/// The entry to store for an origin response: its headers minus hop-by-hop
/// ones (§3.1), any `Age` (recorded as the initial age instead) and any
/// internal ones it sent; the lifetime headers set aside; our `max-age`
/// and the timing facts added.
pub fn prepare_for_storage(
    headers: &Headers,
    rule: &CacheRule,
    timing: ResponseTiming,
) -> StoredEntry {
    let view = ResponseHeaders::origin(headers);
    let lifetimes = lifetimes(rule, view, timing.received_at_ms);
    let keep = keep_for(rule, &lifetimes, has_validator(view));
    let initial = initial_age(view, timing);
    let hop = crate::route::connection_tokens(headers);
    let mut out: Vec<(String, String)> = Vec::with_capacity(headers.len().saturating_add(4));
    for (name, value) in headers {
        let skip = is_internal(name)
            || name.eq_ignore_ascii_case("age")
            || crate::route::is_hop_by_hop(name)
            || hop.contains(&name.to_ascii_lowercase());
        if skip {
            continue;
        }
        match set_aside_name(name) {
            Some(internal) => out.push((internal.to_owned(), value.clone())),
            None => out.push((name.clone(), value.clone())),
        }
    }
    out.push((
        "cache-control".to_owned(),
        format!("max-age={}", keep.as_secs()),
    ));
    out.push((
        STORED_AT_HEADER.to_owned(),
        timing.received_at_ms.to_string(),
    ));
    out.push((
        INITIAL_AGE_HEADER.to_owned(),
        initial.as_millis().to_string(),
    ));
    StoredEntry { headers: out, keep }
}

/// A stored entry's headers as the origin sent them: set-aside ones under
/// their own names, internal and platform ones dropped.
pub fn origin_headers(stored: &Headers) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(stored.len().saturating_add(2));
    for (name, value) in stored {
        if let Some((origin, _)) = SET_ASIDE
            .iter()
            .find(|(_, internal)| internal.eq_ignore_ascii_case(name))
        {
            out.push(((*origin).to_owned(), value.clone()));
        } else if !is_internal(name)
            && set_aside_name(name).is_none()
            && !name.eq_ignore_ascii_case("age")
            && !name.eq_ignore_ascii_case(CACHE_STATUS_HEADER)
        {
            // A set-aside field under its own name is the platform's (our
            // storage `Cache-Control`, a `Date` the Cache API stamped).
            out.push((name.clone(), value.clone()));
        }
    }
    out
}

/// The headers to serve from a stored entry: [`origin_headers`], with
/// `Age` (whole seconds, §5.1) and [`CACHE_STATUS_HEADER`] set.
pub fn prepare_for_serving(
    stored: &Headers,
    age: Duration,
    status: CacheStatus,
) -> Vec<(String, String)> {
    let mut out = origin_headers(stored);
    out.push(("age".to_owned(), age.as_secs().to_string()));
    out.push((CACHE_STATUS_HEADER.to_owned(), status.as_str().to_owned()));
    out
}

pub(crate) fn is_internal(name: &str) -> bool {
    name.get(..INTERNAL_HEADER_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(INTERNAL_HEADER_PREFIX))
}

#[cfg(test)]
mod tests;
