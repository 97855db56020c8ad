use proptest::prelude::*;

use super::*;
use crate::cache::{with_keys, MAX_SHARD_KEYS};

const NOW: u64 = 1_700_000_000_000;

fn key(n: u32, variant: u32) -> String {
    format!("https://api.example/items/{n}?__tg={variant:064x}")
}

#[test]
fn one_batch_per_route_and_shard() {
    let mut pending = PendingIndex::default();
    let shard = pending.add("a", &key(1, 1), NOW + 5, NOW).expect("opens");
    assert_eq!(pending.add("a", &key(1, 2), NOW + 5, NOW), None);
    // Another route's batch is its own, though the shard is the same.
    assert_eq!(pending.add("b", &key(1, 1), NOW + 5, NOW), Some(shard));
    assert_eq!(pending.len(), 3);
    assert_eq!(pending.pending("a", shard).len(), 2);
    assert_eq!(pending.take("a", shard).len(), 2);
    assert!(pending.pending("a", shard).is_empty());
    // Once taken, the next store opens a new batch.
    assert_eq!(pending.add("a", &key(1, 3), NOW + 5, NOW), Some(shard));
}

#[test]
fn a_key_stored_twice_waits_once() {
    let mut pending = PendingIndex::default();
    let shard = pending.add("a", &key(1, 1), NOW + 5, NOW).expect("opens");
    pending.add("a", &key(1, 1), NOW + 9, NOW);
    let batch = pending.take("a", shard);
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].expires_ms, NOW + 9);
}

#[test]
fn taking_an_unknown_batch_is_empty() {
    let mut pending = PendingIndex::default();
    assert!(pending.take("nope", 3).is_empty());
    assert!(pending.is_empty());
}

proptest! {
    /// A batch never holds more than a shard does, and writing it gives the
    /// shard the one-at-a-time updates would have given it.
    #[test]
    fn a_batch_writes_what_single_updates_would(
        stores in proptest::collection::vec((0u32..4, 0u32..80, 1u64..10_000), 0..200),
        existing in proptest::collection::vec((0u32..4, 0u32..80, 0u64..10_000), 0..40),
    ) {
        // A shard as written holds each key once.
        let shard_text = existing.iter().fold(Vec::new(), |entries, (n, v, e)| {
            with_key(entries, &key(*n, *v), NOW + e, NOW)
        });
        let mut pending = PendingIndex::default();
        let mut one_by_one = std::collections::BTreeMap::<u64, Vec<IndexedKey>>::new();
        for (n, v, e) in &stores {
            let k = key(*n, *v);
            pending.add("r", &k, NOW + e, NOW);
            let shard = shard_of(resource_of(&k));
            let entries = one_by_one.remove(&shard).unwrap_or_else(|| shard_text.clone());
            one_by_one.insert(shard, with_key(entries, &k, NOW + e, NOW));
            prop_assert!(pending.pending("r", shard).len() <= MAX_SHARD_KEYS);
        }
        for (shard, expected) in one_by_one {
            let written = with_keys(shard_text.clone(), pending.take("r", shard), NOW);
            prop_assert_eq!(written, expected);
        }
        prop_assert!(pending.is_empty());
    }
}
