//! The keys an isolate stored but has not yet written to their shards.
//!
//! A shard update is a Cache API read and write, as much traffic as the
//! stored entry itself. The edge gathers the keys one isolate stores for one
//! shard over [`INDEX_BATCH_WINDOW_MS`] and writes them in one update: the
//! store that opens a batch writes it when the window ends (it keeps its
//! request alive that long), the stores that join it cost nothing more.
//!
//! The price is a window in which another isolate's purge cannot see a key
//! in the shard yet. A purge therefore also takes this isolate's pending
//! keys at once, and looks again after [`PURGE_SECOND_PASS_MS`], by when
//! every key stored anywhere before the purge has been written.
//!
//! ```
//! use tidegate_policy::cache::PendingIndex;
//!
//! let mut pending = PendingIndex::default();
//! let now = 1_700_000_000_000;
//! let (alice, bob) = ("a".repeat(64), "b".repeat(64));
//! let variant = |hash: &str| format!("https://a.example/items/1?__tg={hash}");
//! // The first store opens the shard's batch: its caller writes it later.
//! let shard = pending.add("items", &variant(&alice), now + 60_000, now);
//! assert!(shard.is_some());
//! // Another variant of the same resource joins it.
//! assert_eq!(pending.add("items", &variant(&bob), now + 60_000, now), None);
//! let batch = pending.take("items", shard.unwrap());
//! assert_eq!(batch.len(), 2);
//! assert!(pending.is_empty());
//! ```

use std::collections::BTreeMap;

use super::{resource_of, shard_of, with_key, IndexedKey};

/// How long an isolate gathers stored keys before writing their shard.
pub const INDEX_BATCH_WINDOW_MS: u64 = 1_000;

/// When a purge looks at the shards again: every batch open when it ran
/// has been written by then (one window, and as long again for the write).
pub const PURGE_SECOND_PASS_MS: u64 = 3 * INDEX_BATCH_WINDOW_MS;

/// Keys stored in this isolate and not yet written, per route and shard.
/// Each batch holds at most what a shard does (`MAX_SHARD_KEYS`), so the
/// whole is bounded by the routes' shards.
#[derive(Debug, Default)]
pub struct PendingIndex {
    batches: BTreeMap<(String, u64), Vec<IndexedKey>>,
}

impl PendingIndex {
    /// Notes that `route` stored `key`, expiring at `expires_ms`. Returns
    /// the shard when this key opened its batch: the caller then writes it
    /// ([`take`](Self::take)) after [`INDEX_BATCH_WINDOW_MS`]. `None` means
    /// an open batch took the key along.
    pub fn add(&mut self, route: &str, key: &str, expires_ms: u64, now_ms: u64) -> Option<u64> {
        let shard = shard_of(resource_of(key));
        let batch = self.batches.entry((route.to_owned(), shard)).or_default();
        let opened = batch.is_empty();
        *batch = with_key(std::mem::take(batch), key, expires_ms, now_ms);
        opened.then_some(shard)
    }

    /// Takes `route`'s batch for `shard`, to write it (the next store opens
    /// a new one).
    pub fn take(&mut self, route: &str, shard: u64) -> Vec<IndexedKey> {
        self.batches
            .remove(&(route.to_owned(), shard))
            .unwrap_or_default()
    }

    /// The keys of `route`'s batch for `shard`, for a purge to look at.
    pub fn pending(&self, route: &str, shard: u64) -> &[IndexedKey] {
        self.batches
            .get(&(route.to_owned(), shard))
            .map_or(&[], Vec::as_slice)
    }

    /// Whether no key waits.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// How many keys wait, over every batch.
    pub fn len(&self) -> usize {
        self.batches.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests;
