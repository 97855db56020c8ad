//! HTTP caching policy for the edge: which requests and responses may use the
//! cache, under which key, and how fresh a stored entry is.
//!
//! The adapter does the I/O (Workers Cache API); this module only decides.
//! Flow: [`cacheability::check_request`] → [`key::cache_key`] → look up →
//! [`freshness::freshness`] on a hit, or fetch and
//! [`cacheability::check_response`] before storing with
//! [`freshness::stored_headers`].
//!
//! Headers are passed everywhere as [`Headers`], a slice of `(name, value)`
//! pairs with case-insensitive names — what a Worker gets from iterating a
//! `Headers` object.

pub mod cache_control;
pub mod cacheability;
pub mod freshness;
pub mod key;
pub mod rule;

pub use cache_control::CacheControl;
pub use cacheability::{
    check_request, check_response, BypassReason, RequestPlan, RequestVerdict, ResponseVerdict,
};
pub use freshness::{freshness, storage_lifetime, CacheStatus, Freshness, FreshnessCheck};
pub use key::{cache_key, CacheKey, KeyError, RequestParts};
pub use rule::{CacheRule, CacheScope};

/// Request or response headers: `(name, value)` pairs; names compare
/// case-insensitively, and a name may repeat.
pub type Headers = [(String, String)];

/// The values of every header named `name` (case-insensitive), in order.
pub fn header_values<'a>(headers: &'a Headers, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Whether any header named `name` is present.
pub fn has_header(headers: &Headers, name: &str) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_is_case_insensitive() {
        let h = vec![
            ("Vary".to_owned(), "a".to_owned()),
            ("x".to_owned(), "1".to_owned()),
            ("VARY".to_owned(), "b".to_owned()),
        ];
        assert_eq!(header_values(&h, "vary").collect::<Vec<_>>(), ["a", "b"]);
        assert!(has_header(&h, "X"));
        assert!(!has_header(&h, "y"));
    }
}
