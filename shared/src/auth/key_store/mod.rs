//! The Workers KV key store: API keys kept in a KV namespace instead of the
//! 5 KB `API_KEYS` secret, with the per-isolate cache and the admin
//! operations (issue, rotate, revoke, list by consumer).
//!
//! Everything here is pure: the adapter reads and writes KV, draws the
//! random bytes and reads the clock; this module says which KV names to use,
//! what the values hold, whether a cached answer may still be used and what
//! an admin request means.
//!
//! # KV layout (one namespace)
//!
//! | KV name | value | written by |
//! |---|---|---|
//! | `key/<sha256 hex>` | the record's JSON ([`KvKeyRecord`]) | issue, rotate, revoke |
//! | `id/<id>` | the 64 hex digits of the key's SHA-256 | issue, rotate |
//! | `consumer/<consumer, %-encoded>/<id>` | empty; its KV metadata is the [`KeySummary`] | issue, rotate, revoke |
//!
//! A request needs only `key/<hash>`: one KV `get` on a cache miss, none on a
//! hit. `id/…` lets rotate and revoke address a key by its non-secret id;
//! `consumer/…` lets `GET keys?consumer=` list a consumer's keys from
//! `list()` alone (metadata travels with the listing).
//!
//! # Caching and the revocation bound
//!
//! Each isolate keeps found records for `cache_ttl` and unknown hashes for
//! `negative_ttl` ([`ApiKeyCache`]); the record's own expiry is checked on
//! every request, so it is exact. A revoked key stops working everywhere
//! within `cache_ttl` + KV's propagation (Cloudflare documents up to 60 s for
//! a write to be visible in other locations), and at once in the isolate
//! that revoked it (it forgets the hash).

mod admin;
mod cache;
mod record;
#[cfg(test)]
mod tests;

pub use admin::{
    new_api_key, new_key_id, parse_issue_request, parse_key_id, parse_list_limit,
    parse_rotate_request, IssuedKey, KeyAdminError, KeyGrant, KeyListPage, RevokedKey,
    RotateRequest, API_KEY_PREFIX, DEFAULT_LIST_LIMIT, MAX_CONSUMER_BYTES, MAX_LIST_LIMIT,
};
pub use cache::{ApiKeyCache, KeyCacheLookup};
pub use record::{
    kv_consumer_entry, kv_consumer_prefix, kv_id_name, kv_record_name, parse_hash_hex,
    presented_key_hash, KeyRecordError, KeyStatus, KeySummary, KvKeyRecord, KvKeyStoreSettings,
};
