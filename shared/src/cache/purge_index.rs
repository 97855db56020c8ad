//! The purge index: which key URLs a caching route stored, so a purge or an
//! invalidation can find every variant of a URL (the Cache API cannot list
//! its keys). The edge keeps it in `INDEX_SHARDS` Cache API entries per
//! route; this module owns what a shard holds and how it is written.
//!
//! A shard is text, one entry per line: the expiry in ms since the epoch, a
//! space, the key URL (a URL never holds a space or a line break), newest
//! last, at most [`MAX_SHARD_KEYS`]. Reading it is a split, where the JSON
//! list it replaces cost a parse into untagged enums on every cache MISS;
//! shards written as JSON (`[{"k": key, "e": expiry}]` or `["key", …]`) are
//! still read.
//!
//! ```
//! use tidegate_policy::cache::{decode_shard, encode_shard, with_key};
//!
//! let now = 1_700_000_000_000;
//! let shard = with_key(Vec::new(), "https://a.example/x?tg-hash=1", now + 60_000, now);
//! let text = encode_shard(&shard);
//! assert_eq!(text, "1700000060000 https://a.example/x?tg-hash=1\n");
//! assert_eq!(decode_shard(&text), shard);
//! ```

use serde::Deserialize;

use super::key::split_key_url;

mod pending;
pub use pending::{PendingIndex, INDEX_BATCH_WINDOW_MS, PURGE_SECOND_PASS_MS};

/// Index shards per route.
pub const INDEX_SHARDS: u64 = 64;

/// Most keys one shard remembers (a route: `INDEX_SHARDS` times this).
pub const MAX_SHARD_KEYS: usize = 32;

/// One indexed key and when its entry expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedKey {
    /// The key URL.
    pub key: String,
    /// Expiry, ms since the epoch; 0 when unknown (written before expiries
    /// were recorded).
    pub expires_ms: u64,
}

/// The resource part a key URL is sharded by (the whole URL if it is not a
/// key URL): every variant of one URL lands in one shard.
pub fn resource_of(key: &str) -> &str {
    split_key_url(key).map_or(key, |(resource, _)| resource)
}

/// The shard a resource is indexed in (FNV-1a: cheap, stable across
/// isolates and builds).
pub fn shard_of(resource: &str) -> u64 {
    let hash = resource.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    hash % INDEX_SHARDS
}

/// A shard's entries as stored; lines or JSON that do not parse are skipped
/// (a lost index entry only means its cache entry expires on its own).
pub fn decode_shard(text: &str) -> Vec<IndexedKey> {
    if text.trim_start().starts_with('[') {
        return decode_json(text);
    }
    text.lines()
        .filter_map(|line| {
            let (expiry, key) = line.split_once(' ')?;
            let expires_ms = expiry.parse().ok()?;
            (!key.is_empty()).then(|| IndexedKey {
                key: key.to_owned(),
                expires_ms,
            })
        })
        .collect()
}

/// The earlier JSON format: `{"k", "e"}` objects or bare key URLs.
fn decode_json(text: &str) -> Vec<IndexedKey> {
    #[derive(Deserialize)]
    struct Entry {
        k: String,
        e: u64,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Entry(Entry),
        Key(String),
    }
    let stored: Vec<Stored> = serde_json::from_str(text).unwrap_or_default();
    stored
        .into_iter()
        .map(|s| match s {
            Stored::Entry(Entry { k, e }) => IndexedKey {
                key: k,
                expires_ms: e,
            },
            Stored::Key(key) => IndexedKey { key, expires_ms: 0 },
        })
        .collect()
}

/// The text a shard is stored as. Keys holding a space or a line break
/// (never a key URL) are left out rather than corrupting the shard.
pub fn encode_shard(entries: &[IndexedKey]) -> String {
    let mut text = String::with_capacity(entries.iter().map(|e| e.key.len() + 16).sum());
    for entry in entries {
        if entry.key.is_empty() || entry.key.contains([' ', '\n', '\r']) {
            continue;
        }
        text.push_str(&entry.expires_ms.to_string());
        text.push(' ');
        text.push_str(&entry.key);
        text.push('\n');
    }
    text
}

/// `entries` with `key` (expiring at `expires_ms`) added as the newest, its
/// older record and expired entries dropped, and the oldest beyond
/// [`MAX_SHARD_KEYS`] forgotten.
pub fn with_key(
    mut entries: Vec<IndexedKey>,
    key: &str,
    expires_ms: u64,
    now_ms: u64,
) -> Vec<IndexedKey> {
    entries.retain(|e| e.key != key && (e.expires_ms == 0 || e.expires_ms > now_ms));
    entries.push(IndexedKey {
        key: key.to_owned(),
        expires_ms,
    });
    let excess = entries.len().saturating_sub(MAX_SHARD_KEYS);
    entries.drain(..excess);
    entries
}

/// `entries` with every key of `batch` added in order, as [`with_key`] adds
/// one: a batch of stores costs one read and one write of the shard.
pub fn with_keys(entries: Vec<IndexedKey>, batch: Vec<IndexedKey>, now_ms: u64) -> Vec<IndexedKey> {
    batch.into_iter().fold(entries, |entries, added| {
        with_key(entries, &added.key, added.expires_ms, now_ms)
    })
}

/// How long (seconds) a shard should live: at least `lifetime_s` (the
/// route's storage lifetime), and as long as its longest-lived entry.
pub fn shard_max_age(entries: &[IndexedKey], now_ms: u64, lifetime_s: u64) -> u64 {
    let longest = entries
        .iter()
        .map(|e| e.expires_ms.saturating_sub(now_ms).div_ceil(1000))
        .max()
        .unwrap_or(0);
    lifetime_s.max(longest).max(1)
}

#[cfg(test)]
mod tests;
