use proptest::prelude::*;

use super::*;

const NOW: u64 = 1_700_000_000_000;

fn key(n: u32) -> String {
    format!("https://api.example/items/{n}?tg-hash=ab{n}")
}

#[test]
fn reads_the_earlier_json_shards() {
    let text = r#"[{"k":"https://a.example/1","e":5},"https://a.example/2"]"#;
    assert_eq!(
        decode_shard(text),
        vec![
            IndexedKey {
                key: "https://a.example/1".into(),
                expires_ms: 5
            },
            IndexedKey {
                key: "https://a.example/2".into(),
                expires_ms: 0
            },
        ]
    );
    assert!(decode_shard("[not json").is_empty());
}

#[test]
fn skips_lines_it_cannot_read() {
    let text =
        "12 https://a.example/1\nnonsense\n-3 https://a.example/2\n7 \n9 https://a.example/3";
    let keys: Vec<_> = decode_shard(text).into_iter().map(|e| e.key).collect();
    assert_eq!(keys, ["https://a.example/1", "https://a.example/3"]);
}

#[test]
fn a_key_with_a_space_is_never_written() {
    let entries = vec![
        IndexedKey {
            key: "https://a.example/a b".into(),
            expires_ms: 1,
        },
        IndexedKey {
            key: key(1),
            expires_ms: 2,
        },
    ];
    assert_eq!(decode_shard(&encode_shard(&entries)), entries[1..].to_vec());
}

#[test]
fn adding_replaces_drops_expired_and_caps() {
    let mut shard = Vec::new();
    for n in 0..40 {
        shard = with_key(shard, &key(n), NOW + 1_000, NOW);
    }
    assert_eq!(shard.len(), MAX_SHARD_KEYS);
    assert_eq!(shard.first().map(|e| e.key.clone()), Some(key(8)));
    // Re-adding moves a key to the newest place, once.
    shard = with_key(shard, &key(8), NOW + 2_000, NOW);
    assert_eq!(shard.iter().filter(|e| e.key == key(8)).count(), 1);
    assert_eq!(shard.last().map(|e| e.expires_ms), Some(NOW + 2_000));
    // Later, everything else expired.
    let later = with_key(shard, &key(99), NOW + 9_000, NOW + 1_500);
    let keys: Vec<_> = later.into_iter().map(|e| e.key).collect();
    assert_eq!(keys, [key(8), key(99)]);
}

#[test]
fn a_shard_lives_as_long_as_its_longest_entry() {
    let shard = with_key(Vec::new(), &key(1), NOW + 90_500, NOW);
    assert_eq!(shard_max_age(&shard, NOW, 60), 91);
    assert_eq!(shard_max_age(&shard, NOW, 600), 600);
    assert_eq!(shard_max_age(&[], NOW, 0), 1);
}

#[test]
fn variants_share_a_shard() {
    let a = format!("https://api.example/items/1?__tg={}", "a".repeat(64));
    let b = format!("https://api.example/items/1?__tg={}", "b".repeat(64));
    assert_eq!(resource_of(&a), "https://api.example/items/1?");
    assert_eq!(shard_of(resource_of(&a)), shard_of(resource_of(&b)));
    assert!(shard_of("anything") < INDEX_SHARDS);
}

proptest! {
    #[test]
    fn never_panics_on_any_text(text in ".{0,400}") {
        let entries = decode_shard(&text);
        prop_assert!(entries.iter().all(|e| !e.key.is_empty()));
    }

    #[test]
    fn round_trips(keys in proptest::collection::vec(("[a-z0-9/?=.-]{1,40}", 0u64..u64::MAX), 0..40)) {
        let entries: Vec<IndexedKey> = keys
            .into_iter()
            .map(|(k, e)| IndexedKey { key: format!("https://h.example/{k}"), expires_ms: e })
            .collect();
        prop_assert_eq!(decode_shard(&encode_shard(&entries)), entries);
    }
}
