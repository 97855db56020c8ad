//! HTTP caching policy for the edge: which requests and responses may use the
//! cache, under which key, and how fresh a stored entry is.
//!
//! The adapter does the I/O (Workers Cache API); this module only decides.
//! Flow: [`cacheability::check_request`] → [`key::cache_key`] → look up →
//! [`freshness::freshness_from_headers`] on a hit → [`serve::before_origin`]
//! says whether to answer from the entry or ask the origin (with the
//! entry's [`validation::revalidation_headers`]), and
//! [`serve::after_origin`] what to answer once it replied (a 304 refreshes
//! the entry: [`validation::refresh_headers`]); an origin response is stored
//! only if [`cacheability::check_response`] allows, with
//! [`freshness::prepare_for_storage`]. A client's conditional request is
//! answered from an entry by [`validation::client_condition`]. After an
//! unsafe request, [`invalidation::invalidation_targets`] names the URLs
//! whose entries to drop.
//!
//! Evaluated and not used: the `http-cache-semantics` crate (RFC 7234 era).
//! It works on `http` crate types, so every hit would convert the Worker's
//! headers into a `HeaderMap`; its policy is a serde blob to store beside
//! each entry; it knows neither RFC 9213 targeted fields nor
//! `stale-if-error`; and its API takes `SystemTime`, whose `now()` panics on
//! wasm32-unknown-unknown.
//!
//! Headers are passed everywhere as [`Headers`], a slice of `(name, value)`
//! pairs with case-insensitive names — what a Worker gets from iterating a
//! `Headers` object.

mod cache_control;
mod cacheability;
mod freshness;
mod http_date;
mod invalidation;
mod key;
mod purge_index;
mod rule;
mod serve;
mod targeted;
mod validation;

pub use cache_control::CacheControl;
pub use cacheability::{
    announced_length, body_read_limit, check_body, check_request, check_response, BypassReason,
    RequestPlan, RequestVerdict, ResponseVerdict,
};
pub use freshness::{
    freshness_from_headers, lifetimes, origin_headers, parse_stored_at, prepare_for_serving,
    prepare_for_storage, storage_lifetime, stored_status, CacheStatus, Freshness, FreshnessCheck,
    Lifetimes, ResponseHeaders, ResponseTiming, StoredEntry, CACHE_STATUS_HEADER, STATUS_HEADER,
};
pub use http_date::parse_http_date;
pub use invalidation::{invalidates, invalidation_targets, is_safe_method};
pub use key::{
    cache_key, is_variant_of, origin_query, split_key_url, CacheKey, CacheKeyError, RequestParts,
};
pub use purge_index::{
    decode_shard, encode_shard, resource_of, shard_max_age, shard_of, with_key, with_keys,
    IndexedKey, PendingIndex, INDEX_BATCH_WINDOW_MS, INDEX_SHARDS, MAX_SHARD_KEYS,
    PURGE_SECOND_PASS_MS,
};
pub use rule::{
    CacheRule, CacheScope, FreshnessSource, DEFAULT_MAX_BODY_BYTES, DEFAULT_STATUSES,
    MAX_BODY_BYTES_LIMIT,
};
pub use serve::{after_origin, before_origin, LookupDecision, ServeDecision};
pub use targeted::{edge_directives, DirectiveSource};
pub use validation::{
    client_condition, not_modified_headers, not_modified_matches, refresh_headers,
    refresh_worth_storing, revalidation_headers, ClientCondition, EntityTag,
    CONDITIONAL_REQUEST_HEADERS,
};

/// Request or response headers: `(name, value)` pairs; names compare
/// case-insensitively, and a name may repeat.
pub type Headers = [(String, String)];

/// The values of every header named `name` (case-insensitive), in order.
///
/// The values borrow from `headers` only, so `name` may be a temporary.
pub fn header_values<'h, 'n>(
    headers: &'h Headers,
    name: &'n str,
) -> impl Iterator<Item = &'h str> + use<'h, 'n> {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The first value of the header named `name` (case-insensitive), if any.
pub fn first_header<'h>(headers: &'h Headers, name: &str) -> Option<&'h str> {
    header_values(headers, name).next()
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
        // The name may be a temporary: the value outlives it.
        let first = first_header(&h, &String::from("VARY"));
        assert_eq!(first, Some("a"));
        assert_eq!(first_header(&h, "y"), None);
        assert!(!has_header(&h, "y"));
    }
}
