//! Which `Cache-Control` governs the edge: RFC 9213 targeted fields.
//!
//! An origin can address CDNs apart from browsers. The edge looks, in order,
//! for `Cloudflare-CDN-Cache-Control` (its own target), `CDN-Cache-Control`
//! (every CDN) and `Cache-Control`, and obeys the first that is present and
//! valid; the one it obeys replaces the others entirely (RFC 9213 §2.1), so
//! `Cache-Control: no-store` with `CDN-Cache-Control: max-age=60` is stored
//! for a minute while browsers store nothing. Targeted fields are Structured
//! Field dictionaries (RFC 8941); one that does not parse is ignored.
//!
//! ```
//! use tidegate_policy::cache::{edge_directives, DirectiveSource};
//! use tidegate_policy::cache::ResponseHeaders;
//! let h = vec![
//!     ("Cache-Control".to_owned(), "no-store".to_owned()),
//!     ("CDN-Cache-Control".to_owned(), "max-age=60".to_owned()),
//! ];
//! let (cc, source) = edge_directives(ResponseHeaders::origin(&h));
//! assert_eq!(source, DirectiveSource::CdnCacheControl);
//! assert_eq!(cc.max_age, Some(60));
//! assert!(!cc.no_store);
//! ```

use super::cache_control::CacheControl;
use super::freshness::ResponseHeaders;

/// The fields the edge obeys, most specific first.
pub const TARGETED_FIELDS: [&str; 2] = ["cloudflare-cdn-cache-control", "cdn-cache-control"];

/// Which field the edge's directives came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DirectiveSource {
    /// `Cloudflare-CDN-Cache-Control`.
    CloudflareCdnCacheControl,
    /// `CDN-Cache-Control`.
    CdnCacheControl,
    /// `Cache-Control` (also when absent: no directives).
    CacheControl,
}

/// The directives the edge obeys for a response, and where they came from.
pub fn edge_directives(headers: ResponseHeaders<'_>) -> (CacheControl, DirectiveSource) {
    let sources = [
        DirectiveSource::CloudflareCdnCacheControl,
        DirectiveSource::CdnCacheControl,
    ];
    for (name, source) in TARGETED_FIELDS.into_iter().zip(sources) {
        let mut values = headers.values(name).peekable();
        if values.peek().is_none() {
            continue;
        }
        let values: Vec<&str> = values.collect();
        if values.iter().all(|v| is_sf_dictionary(v)) {
            return (CacheControl::parse(values), source);
        }
    }
    (
        CacheControl::parse(headers.values("cache-control")),
        DirectiveSource::CacheControl,
    )
}

/// Whether `value` parses as an RFC 8941 dictionary (members with a key,
/// an optional bare item and parameters; inner lists are not used by any
/// cache directive and count as invalid).
fn is_sf_dictionary(value: &str) -> bool {
    let value = value.trim_matches(' ');
    if value.is_empty() || value.len() > 4_096 {
        return false;
    }
    split_members(value).all(|member| {
        let mut params = member.trim_matches([' ', '\t']).split(';');
        let Some(first) = params.next() else {
            return false;
        };
        let item_ok = match first.split_once('=') {
            Some((key, item)) => is_key(key) && is_bare_item(item),
            None => is_key(first),
        };
        item_ok
            && params.all(|p| match p.trim_start_matches(' ').split_once('=') {
                Some((key, item)) => is_key(key) && is_bare_item(item),
                None => is_key(p.trim_start_matches(' ')),
            })
    })
}

/// Members split at commas outside strings.
fn split_members(value: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(value.get(start..i).unwrap_or(""));
                start = i.saturating_add(1);
            }
            _ => {}
        }
    }
    parts.push(value.get(start..).unwrap_or(""));
    parts.into_iter()
}

fn is_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'*')
        && bytes.all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.' | b'*')
        })
}

fn is_bare_item(item: &str) -> bool {
    let b = item.as_bytes();
    match b.first() {
        Some(b'"') => {
            item.len() >= 2
                && item.ends_with('"')
                && item.bytes().all(|c| (0x20..0x7f).contains(&c))
        }
        Some(b'?') => item == "?0" || item == "?1",
        Some(c) if c.is_ascii_digit() || *c == b'-' => {
            let digits = item.strip_prefix('-').unwrap_or(item);
            let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
            !int.is_empty()
                && int.len() <= 15
                && int.bytes().all(|c| c.is_ascii_digit())
                && frac.len() <= 3
                && frac.bytes().all(|c| c.is_ascii_digit())
                && (frac.is_empty() || !digits.ends_with('.'))
        }
        Some(c) if c.is_ascii_alphabetic() || *c == b'*' => item
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&c)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn source(pairs: &[(&str, &str)]) -> (CacheControl, DirectiveSource) {
        edge_directives(ResponseHeaders::origin(&h(pairs)))
    }

    #[test]
    fn most_specific_valid_field_wins() {
        let (cc, s) = source(&[
            ("cache-control", "max-age=1"),
            ("cdn-cache-control", "max-age=2"),
            ("cloudflare-cdn-cache-control", "max-age=3"),
        ]);
        assert_eq!(
            (cc.max_age, s),
            (Some(3), DirectiveSource::CloudflareCdnCacheControl)
        );
        let (cc, s) = source(&[
            ("cache-control", "max-age=1"),
            ("cdn-cache-control", "max-age=2"),
        ]);
        assert_eq!((cc.max_age, s), (Some(2), DirectiveSource::CdnCacheControl));
        let (cc, s) = source(&[("cache-control", "max-age=1")]);
        assert_eq!((cc.max_age, s), (Some(1), DirectiveSource::CacheControl));
    }

    #[test]
    fn targeted_field_replaces_cache_control() {
        let (cc, _) = source(&[
            ("cache-control", "private, no-store"),
            ("cdn-cache-control", "max-age=60, stale-while-revalidate=5"),
        ]);
        assert!(!cc.private && !cc.no_store);
        assert_eq!(cc.stale_while_revalidate, Some(5));
        let (cc, _) = source(&[
            ("cache-control", "max-age=60"),
            ("cdn-cache-control", "no-store"),
        ]);
        assert!(cc.no_store);
    }

    #[test]
    fn invalid_targeted_fields_are_ignored() {
        for bad in [
            "MAX-AGE=60",
            "max-age=\"60",
            "max-age=60,,",
            "max-age=6 0",
            "",
            "max-age=(1 2)",
        ] {
            let (cc, s) = source(&[("cache-control", "max-age=1"), ("cdn-cache-control", bad)]);
            assert_eq!(
                (cc.max_age, s),
                (Some(1), DirectiveSource::CacheControl),
                "{bad}"
            );
        }
        for good in [
            "max-age=60",
            "max-age=60, must-revalidate",
            "private=\"set-cookie\", max-age=60",
            "max-age=60;foo=bar, x=?1, y=1.5, z=tok/en",
        ] {
            let (_, s) = source(&[("cdn-cache-control", good)]);
            assert_eq!(s, DirectiveSource::CdnCacheControl, "{good}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(a in ".{0,60}", b in ".{0,60}") {
            let _ = source(&[("cdn-cache-control", &a), ("cloudflare-cdn-cache-control", &b)]);
        }
    }
}
