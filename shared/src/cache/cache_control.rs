//! A tolerant `Cache-Control` parser (RFC 9111 §5.2).
//!
//! Directive names are case-insensitive, values may be tokens or quoted
//! strings (with commas and escapes inside), several header lines combine,
//! and anything unrecognised is ignored rather than rejected: a cache must
//! keep working on whatever an origin or client sends.

use super::{header_values, Headers};

/// The directives the caching rules look at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheControl {
    /// `no-store`: must not be stored.
    pub no_store: bool,
    /// `no-cache` (also field-qualified, `no-cache="Set-Cookie"`, which we
    /// treat as unqualified to stay on the safe side).
    pub no_cache: bool,
    /// `private` (also field-qualified, likewise).
    pub private: bool,
    /// `public`.
    pub public: bool,
    /// `must-revalidate`.
    pub must_revalidate: bool,
    /// `max-age`, seconds. An invalid value reads as 0 (RFC 9111 §4.2.1: treat
    /// as stale); repeated ones keep the smallest.
    pub max_age: Option<u64>,
    /// `s-maxage`, seconds, read like `max-age`.
    pub s_maxage: Option<u64>,
    /// `proxy-revalidate`: `must-revalidate` for shared caches.
    pub proxy_revalidate: bool,
    /// `stale-while-revalidate`, seconds (RFC 5861 §3).
    pub stale_while_revalidate: Option<u64>,
    /// `stale-if-error`, seconds (RFC 5861 §4).
    pub stale_if_error: Option<u64>,
    /// Request `max-stale`: `Some(None)` accepts any staleness, `Some(Some(n))`
    /// up to `n` seconds.
    pub max_stale: Option<Option<u64>>,
    /// Request `min-fresh`, seconds.
    pub min_fresh: Option<u64>,
    /// Request `only-if-cached`.
    pub only_if_cached: bool,
}

impl CacheControl {
    /// Parses the `Cache-Control` headers in `headers`.
    pub fn from_headers(headers: &Headers) -> Self {
        Self::parse(header_values(headers, "cache-control"))
    }

    /// Whether the response forbids serving it stale (RFC 9111 §4.2.4): a
    /// shared cache honours `must-revalidate`, `proxy-revalidate`,
    /// `s-maxage` and `no-cache`.
    pub fn forbids_stale(&self) -> bool {
        self.must_revalidate || self.proxy_revalidate || self.s_maxage.is_some() || self.no_cache
    }

    /// Parses `Cache-Control` field values (one per header line).
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut cc = Self::default();
        for value in values {
            for directive in split_directives(value) {
                cc.apply(directive);
            }
        }
        cc
    }

    fn apply(&mut self, directive: &str) {
        let (name, value) = match directive.split_once('=') {
            Some((n, v)) => (n.trim(), Some(unquote(v.trim()))),
            None => (directive.trim(), None),
        };
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("no-store") {
            self.no_store = true;
        } else if is("no-cache") {
            self.no_cache = true;
        } else if is("private") {
            self.private = true;
        } else if is("public") {
            self.public = true;
        } else if is("must-revalidate") {
            self.must_revalidate = true;
        } else if is("max-age") {
            self.max_age = min_some(self.max_age, delta_seconds(value));
        } else if is("s-maxage") {
            self.s_maxage = min_some(self.s_maxage, delta_seconds(value));
        } else if is("proxy-revalidate") {
            self.proxy_revalidate = true;
        } else if is("stale-while-revalidate") {
            self.stale_while_revalidate =
                min_some(self.stale_while_revalidate, delta_seconds(value));
        } else if is("stale-if-error") {
            self.stale_if_error = min_some(self.stale_if_error, delta_seconds(value));
        } else if is("max-stale") {
            self.max_stale = Some(value.map(|v| delta_seconds(Some(v))));
        } else if is("min-fresh") {
            self.min_fresh = min_some(self.min_fresh, delta_seconds(value));
        } else if is("only-if-cached") {
            self.only_if_cached = true;
        }
    }
}

/// Splits a field value at commas outside quoted strings.
fn split_directives(value: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
        } else if in_quotes && c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_quotes = !in_quotes;
        } else if c == ',' && !in_quotes {
            parts.push(value.get(start..i).unwrap_or(""));
            start = i + 1;
        }
    }
    parts.push(value.get(start..).unwrap_or(""));
    parts.into_iter().filter(|p| !p.trim().is_empty())
}

/// Strips surrounding quotes; escapes inside do not matter for the
/// directives we read (their values are numbers or ignored field lists).
fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .map(|rest| rest.strip_suffix('"').unwrap_or(rest))
        .unwrap_or(v)
}

/// A delta-seconds value; saturates when huge, 0 when absent or invalid.
fn delta_seconds(value: Option<&str>) -> u64 {
    let Some(v) = value.filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())) else {
        return 0;
    };
    v.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10)
            .saturating_add(u64::from(b.saturating_sub(b'0')))
    })
}

fn min_some(current: Option<u64>, new: u64) -> Option<u64> {
    Some(current.map_or(new, |c| c.min(new)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cc(v: &str) -> CacheControl {
        CacheControl::parse([v])
    }

    #[test]
    fn common_directives() {
        let c = cc("public, max-age=60, s-maxage=\"120\", must-revalidate");
        assert!(c.public && c.must_revalidate);
        assert_eq!(c.max_age, Some(60));
        assert_eq!(c.s_maxage, Some(120));
        assert!(!c.no_store && !c.no_cache && !c.private);
    }

    #[test]
    fn case_insensitive_and_multi_line() {
        let c = CacheControl::parse(["No-Store", "PRIVATE"]);
        assert!(c.no_store && c.private);
        let h = vec![("Cache-Control".to_owned(), "no-cache".to_owned())];
        assert!(CacheControl::from_headers(&h).no_cache);
    }

    #[test]
    fn quoted_values_may_hold_commas() {
        let c = cc(r#"private="set-cookie, x-\"a,b\"", max-age=5"#);
        assert!(c.private);
        assert_eq!(c.max_age, Some(5));
        assert!(!c.no_store);
        assert!(cc(r#"no-cache="Set-Cookie""#).no_cache);
    }

    #[test]
    fn stale_extensions_and_request_directives() {
        let c = cc("stale-while-revalidate=30, stale-if-error=\"600\", proxy-revalidate");
        assert_eq!(c.stale_while_revalidate, Some(30));
        assert_eq!(c.stale_if_error, Some(600));
        assert!(c.proxy_revalidate && c.forbids_stale());
        assert!(!cc("max-age=5").forbids_stale());
        assert!(cc("s-maxage=5").forbids_stale());
        let r = cc("max-stale, min-fresh=10, only-if-cached");
        assert_eq!(r.max_stale, Some(None));
        assert_eq!(r.min_fresh, Some(10));
        assert!(r.only_if_cached);
        assert_eq!(cc("max-stale=7").max_stale, Some(Some(7)));
    }

    #[test]
    fn garbage_is_tolerated() {
        let c = cc(",,; ===, max-age=abc, \"unterminated, no-store");
        assert_eq!(c.max_age, Some(0));
        // The unterminated quote swallows the rest: no-store is not seen.
        assert!(!c.no_store);
        assert_eq!(
            cc("max-age=99999999999999999999999").max_age,
            Some(u64::MAX)
        );
        assert_eq!(cc("max-age=10, max-age=3").max_age, Some(3));
        assert_eq!(cc("max-age").max_age, Some(0));
        assert_eq!(cc(""), CacheControl::default());
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*") {
            let _ = cc(&s);
        }
    }
}
