//! The per-isolate cache of KV lookups: found records and unknown hashes,
//! each bounded in entries, time always an argument.

use std::collections::{HashMap, VecDeque};

use crate::auth::ApiKeyRecord;

use super::record::KvKeyStoreSettings;

/// What the cache knows about a hash at some instant.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyCacheLookup<'a> {
    /// A record read less than `cache_ttl` ago: check it, no KV read.
    Found(&'a ApiKeyRecord),
    /// Read as unknown less than `negative_ttl` ago: refuse, no KV read.
    Unknown,
    /// Nothing usable: read `key/<hash>` from KV, then [`ApiKeyCache::insert`].
    Miss,
}

/// A bounded map of hash → (value, stored at). Oldest entries go first: all
/// entries of one map share a TTL, so insertion order is expiry order.
#[derive(Debug)]
struct Bounded<V> {
    entries: HashMap<[u8; 32], (V, u64, u64)>,
    order: VecDeque<([u8; 32], u64)>,
    next_seq: u64,
}

impl<V> Default for Bounded<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
        }
    }
}

impl<V> Bounded<V> {
    fn get(&self, hash: &[u8; 32], now_ms: u64, ttl_ms: u64) -> Option<&V> {
        let (value, at, _) = self.entries.get(hash)?;
        // A clock that went backwards makes the entry stale, not eternal.
        (now_ms >= *at && now_ms - *at < ttl_ms).then_some(value)
    }

    fn insert(&mut self, hash: [u8; 32], value: V, now_ms: u64, max: usize) {
        if max == 0 {
            return;
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.entries.insert(hash, (value, now_ms, seq));
        self.order.push_back((hash, seq));
        while self.entries.len() > max || self.order.len() > max.saturating_mul(2) {
            let Some((old, old_seq)) = self.order.pop_front() else {
                break;
            };
            // Only the newest insertion of a hash owns its entry.
            if self
                .entries
                .get(&old)
                .is_some_and(|(_, _, s)| *s == old_seq)
            {
                self.entries.remove(&old);
            }
        }
    }

    fn remove(&mut self, hash: &[u8; 32]) {
        self.entries.remove(hash);
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Records and unknown hashes read from the KV key store by this isolate.
///
/// Found records and unknown hashes are bounded separately, so a flood of
/// made-up keys cannot push the valid keys out.
#[derive(Debug, Default)]
pub struct ApiKeyCache {
    found: Bounded<ApiKeyRecord>,
    unknown: Bounded<()>,
}

impl ApiKeyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// What is known about `hash` at `now_ms` under `settings`.
    pub fn lookup(
        &self,
        hash: &[u8; 32],
        now_ms: u64,
        settings: &KvKeyStoreSettings,
    ) -> KeyCacheLookup<'_> {
        let ttl = millis(settings.cache_ttl);
        if let Some(record) = self.found.get(hash, now_ms, ttl) {
            return KeyCacheLookup::Found(record);
        }
        let ttl = millis(settings.negative_ttl);
        if self.unknown.get(hash, now_ms, ttl).is_some() {
            return KeyCacheLookup::Unknown;
        }
        KeyCacheLookup::Miss
    }

    /// Remembers what KV answered for `hash` at `now_ms`: the record, or
    /// `None` for no (usable) record. A TTL of zero stores nothing.
    pub fn insert(
        &mut self,
        hash: [u8; 32],
        record: Option<ApiKeyRecord>,
        now_ms: u64,
        settings: &KvKeyStoreSettings,
    ) {
        let max = settings.cache_entries;
        match record {
            Some(record) => {
                self.unknown.remove(&hash);
                if !settings.cache_ttl.is_zero() {
                    self.found.insert(hash, record, now_ms, max);
                }
            }
            None => {
                self.found.remove(&hash);
                if !settings.negative_ttl.is_zero() {
                    self.unknown.insert(hash, (), now_ms, max);
                }
            }
        }
    }

    /// Forgets `hash` (after this isolate revoked or rotated its key).
    pub fn forget(&mut self, hash: &[u8; 32]) {
        self.found.remove(hash);
        self.unknown.remove(hash);
    }

    /// How many records and unknown hashes are held.
    pub fn sizes(&self) -> (usize, usize) {
        (self.found.len(), self.unknown.len())
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
