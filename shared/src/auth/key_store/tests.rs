use std::time::Duration;

use serde_json::json;

use super::*;
use crate::auth::{hash_key, AuthRejection};

const NOW: u64 = 1_750_000_000_000;

fn settings() -> KvKeyStoreSettings {
    KvKeyStoreSettings {
        cache_entries: 3,
        ..KvKeyStoreSettings::with_binding("KEYS")
    }
}

fn grant(body: serde_json::Value) -> KeyGrant {
    parse_issue_request(body.to_string().as_bytes(), NOW, |_| true).unwrap()
}

fn hash(n: u8) -> [u8; 32] {
    [n; 32]
}

#[test]
fn kv_names_are_stable_and_unambiguous() {
    let h = presented_key_hash("abc").unwrap();
    assert_eq!(kv_record_name(&h), format!("key/{}", hash_key("abc")));
    assert_eq!(parse_hash_hex(&hash_key("abc")), Some(h));
    assert_eq!(parse_hash_hex("zz"), None);
    assert_eq!(kv_id_name("key_1"), "id/key_1");
    assert_eq!(kv_consumer_prefix("acme"), "consumer/acme/");
    assert_eq!(kv_consumer_entry("a/b", "k"), "consumer/a%2Fb/k");
    // One consumer's prefix never lists another's keys.
    assert!(!kv_consumer_prefix("a/b").starts_with(&kv_consumer_prefix("a")));
    assert!(!kv_consumer_prefix("a%2Fb").starts_with(&kv_consumer_prefix("a/b")));
}

#[test]
fn presented_keys_are_bounded() {
    assert!(matches!(
        presented_key_hash(""),
        Err(AuthRejection::MalformedApiKey { .. })
    ));
    assert!(presented_key_hash(&"k".repeat(257)).is_err());
    assert!(presented_key_hash(&"k".repeat(256)).is_ok());
}

#[test]
fn records_round_trip_and_decode_strictly_enough() {
    let issued = grant(json!({
        "consumer": "acme", "scopes": ["orders:read"], "tier": "gold",
        "limits": {"rpm": 5}, "expires_in": "1h"
    }))
    .issue(&[7; 32], &[1; 10], NOW);
    let text = issued.record.encode();
    assert_eq!(KvKeyRecord::decode(&text).unwrap(), issued.record);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["v"], 1);
    assert_eq!(value["expires_at"], NOW / 1000 + 3600);
    assert!(!text.contains(&issued.key), "the key is never stored");

    // Minimal hand-written records (bulk loads) decode; unknown members are ignored.
    let r = KvKeyRecord::decode(r#"{"v":1,"id":"k1","consumer":"c","created_at":0,"later":1}"#)
        .unwrap();
    assert_eq!((r.id.as_str(), r.tier, r.disabled), ("k1", None, false));
    assert!(matches!(
        KvKeyRecord::decode(r#"{"v":2,"id":"k1","consumer":"c","created_at":0}"#),
        Err(KeyRecordError::Version(2))
    ));
    assert_eq!(
        KvKeyRecord::decode(r#"{"v":1,"id":"","consumer":"c","created_at":0}"#),
        Err(KeyRecordError::Empty)
    );
    assert!(matches!(
        KvKeyRecord::decode("[]"),
        Err(KeyRecordError::Shape(_))
    ));
}

#[test]
fn stored_records_authenticate_with_exact_expiry_and_revocation() {
    let issued = grant(json!({"consumer": "acme", "tier": "gold", "expires_in": "10s"}))
        .issue(&[9; 32], &[2; 10], NOW);
    assert!(issued.key.starts_with(API_KEY_PREFIX));
    assert_eq!(issued.key.len(), API_KEY_PREFIX.len() + 43);
    assert_eq!(presented_key_hash(&issued.key).unwrap(), issued.hash);
    let record = issued.record.to_api_key_record(issued.hash);
    let id = record.identity_at(NOW).unwrap();
    assert_eq!(id.subject, "acme");
    assert_eq!(id.key_id.as_deref(), Some(issued.record.id.as_str()));
    assert_eq!(id.tier.as_deref(), Some("gold"));
    assert_eq!(
        record.identity_at(NOW + 10_000),
        Err(AuthRejection::ApiKeyExpired)
    );
    let revoked = issued.record.revoked(NOW + 1000);
    assert_eq!(
        revoked.to_api_key_record(issued.hash).identity_at(NOW),
        Err(AuthRejection::ApiKeyDisabled)
    );
    assert_eq!(revoked.revoked(NOW + 9000).revoked_at, Some(NOW / 1000 + 1));
    assert_eq!(
        revoked.summary(&issued.hash).at(NOW).status,
        Some(KeyStatus::Revoked)
    );
}

#[test]
fn issue_requests_are_validated() {
    let parse =
        |v: serde_json::Value| parse_issue_request(v.to_string().as_bytes(), NOW, |t| t == "gold");
    assert_eq!(
        parse(json!({})).unwrap_err(),
        KeyAdminError::Missing("consumer")
    );
    assert_eq!(
        parse(json!({"consumer": "a", "expires": 1})).unwrap_err(),
        KeyAdminError::UnknownMember("expires".into())
    );
    assert_eq!(
        parse(json!({"consumer": "a", "tier": "platinum"})).unwrap_err(),
        KeyAdminError::UnknownTier("platinum".into())
    );
    assert!(parse(json!({"consumer": "a", "tier": "gold"})).is_ok());
    for bad in [
        json!({"consumer": ""}),
        json!({"consumer": "x".repeat(129)}),
        json!({"consumer": "a\nb"}),
        json!({"consumer": "a", "scopes": ["has space"]}),
        json!({"consumer": "a", "scopes": "one"}),
        json!({"consumer": "a", "limits": {"rpm": -1}}),
        json!({"consumer": "a", "expires_at": NOW / 1000 - 1}),
        json!({"consumer": "a", "expires_at": "2020-01-01T00:00:00Z"}),
        json!({"consumer": "a", "expires_in": "soon"}),
        json!({"consumer": "a", "expires_in": "1h", "expires_at": NOW / 1000 + 10}),
        json!({"consumer": "a", "not_before": NOW / 1000 + 100, "expires_at": NOW / 1000 + 50}),
    ] {
        assert!(
            matches!(parse(bad.clone()), Err(KeyAdminError::Invalid { .. })),
            "{bad}"
        );
    }
    assert_eq!(
        parse_issue_request(b"[]", NOW, |_| true),
        Err(KeyAdminError::InvalidJson)
    );
    assert_eq!(
        parse_issue_request(br#"{"consumer":"a","consumer":"b"}"#, NOW, |_| true),
        Err(KeyAdminError::InvalidJson)
    );
    let g = parse(json!({"consumer": "a", "expires_at": "2030-01-01T00:00:00Z"})).unwrap();
    assert_eq!(g.expires_at, Some(1_893_456_000));
    assert_eq!(KeyAdminError::NotFound("k".into()).to_problem().status, 404);
    assert_eq!(KeyAdminError::Revoked("k".into()).to_problem().status, 409);
    assert_eq!(KeyAdminError::InvalidJson.to_problem().status, 400);
}

#[test]
fn rotation_overlaps_then_retires_the_old_key() {
    let old = grant(json!({"consumer": "acme", "scopes": ["a"], "tier": "gold"}))
        .issue(&[1; 32], &[1; 10], NOW);
    let req = parse_rotate_request(b"", NOW, Duration::from_secs(3600)).unwrap();
    assert_eq!(req.overlap, Duration::from_secs(3600));
    let (new, retired) = old
        .record
        .rotate(&old.hash, &req, &[2; 32], &[2; 10], NOW)
        .unwrap();
    assert_ne!(new.key, old.key);
    assert_eq!(new.record.consumer, "acme");
    assert_eq!(new.record.scopes, ["a"]);
    assert_eq!(new.record.tier.as_deref(), Some("gold"));
    assert_eq!(new.record.expires_at, None);
    assert_eq!(retired.expires_at, Some(NOW / 1000 + 3600));
    assert_eq!(retired.replaced_by.as_deref(), Some(new.record.id.as_str()));
    assert_eq!(new.replaces.as_ref().unwrap().id, old.record.id);
    let r = retired.to_api_key_record(old.hash);
    assert!(r.identity_at(NOW + 3_599_000).is_ok());
    assert!(r.identity_at(NOW + 3_600_000).is_err());

    // The overlap never extends an earlier expiry.
    let req = parse_rotate_request(
        br#"{"overlap":"7d","expires_in":"30d"}"#,
        NOW,
        Duration::ZERO,
    )
    .unwrap();
    let (newer, again) = retired
        .rotate(&old.hash, &req, &[3; 32], &[3; 10], NOW)
        .unwrap();
    assert_eq!(again.expires_at, Some(NOW / 1000 + 3600));
    assert_eq!(newer.record.expires_at, Some(NOW / 1000 + 30 * 86400));

    let revoked = old.record.revoked(NOW);
    assert_eq!(
        revoked.rotate(&old.hash, &req, &[4; 32], &[4; 10], NOW),
        Err(KeyAdminError::Revoked(old.record.id.clone()))
    );
    assert!(parse_rotate_request(br#"{"overlap":5}"#, NOW, Duration::ZERO).is_err());
    assert!(parse_rotate_request(br#"{"grace":"1h"}"#, NOW, Duration::ZERO).is_err());
}

#[test]
fn answers_never_show_hashes_in_full() {
    let issued = grant(json!({"consumer": "acme"})).issue(&[5; 32], &[6; 10], NOW);
    let shown = serde_json::to_value(&issued).unwrap();
    let full = hash_key(&issued.key);
    assert_eq!(shown["key"], issued.key.as_str());
    assert_eq!(shown["id"], "key_06060606060606060606");
    assert_eq!(shown["hash_prefix"], &full[..8]);
    assert_eq!(shown["status"], "active");
    assert!(!shown.to_string().contains(&full));
    let summary = serde_json::to_string(&issued.summary).unwrap();
    assert!(!summary.contains(&issued.key));
    assert!(summary.len() < 1024, "fits KV metadata");
}

#[test]
fn ids_and_list_limits() {
    assert_eq!(parse_key_id("key_0a"), Ok("key_0a"));
    assert!(parse_key_id("").is_err());
    assert!(parse_key_id("a/b").is_err());
    assert!(parse_key_id(&"k".repeat(65)).is_err());
    assert_eq!(parse_list_limit(None), Ok(DEFAULT_LIST_LIMIT));
    assert_eq!(parse_list_limit(Some("1000")), Ok(1000));
    assert!(parse_list_limit(Some("0")).is_err());
    assert!(parse_list_limit(Some("1001")).is_err());
    assert!(parse_list_limit(Some("x")).is_err());
}

#[test]
fn cache_keeps_found_and_unknown_for_their_ttls() {
    let s = settings();
    let mut cache = ApiKeyCache::new();
    let rec = grant(json!({"consumer": "acme"}))
        .issue(&[1; 32], &[1; 10], NOW)
        .record
        .to_api_key_record(hash(1));
    assert_eq!(cache.lookup(&hash(1), NOW, &s), KeyCacheLookup::Miss);
    cache.insert(hash(1), Some(rec.clone()), NOW, &s);
    cache.insert(hash(2), None, NOW, &s);
    assert_eq!(
        cache.lookup(&hash(1), NOW + 29_999, &s),
        KeyCacheLookup::Found(&rec)
    );
    assert_eq!(
        cache.lookup(&hash(1), NOW + 30_000, &s),
        KeyCacheLookup::Miss
    );
    assert_eq!(
        cache.lookup(&hash(2), NOW + 9_999, &s),
        KeyCacheLookup::Unknown
    );
    assert_eq!(
        cache.lookup(&hash(2), NOW + 10_000, &s),
        KeyCacheLookup::Miss
    );
    // A clock that goes backwards does not make entries eternal.
    assert_eq!(cache.lookup(&hash(1), NOW - 1, &s), KeyCacheLookup::Miss);
    // A found record replaces a negative entry and the other way round.
    cache.insert(hash(2), Some(rec.clone()), NOW, &s);
    assert_eq!(cache.lookup(&hash(2), NOW, &s), KeyCacheLookup::Found(&rec));
    cache.insert(hash(2), None, NOW, &s);
    assert_eq!(cache.lookup(&hash(2), NOW, &s), KeyCacheLookup::Unknown);
    cache.forget(&hash(2));
    assert_eq!(cache.lookup(&hash(2), NOW, &s), KeyCacheLookup::Miss);
    // Zero TTLs cache nothing.
    let off = KvKeyStoreSettings {
        cache_ttl: Duration::ZERO,
        negative_ttl: Duration::ZERO,
        ..settings()
    };
    cache.insert(hash(3), Some(rec.clone()), NOW, &off);
    cache.insert(hash(4), None, NOW, &off);
    assert_eq!(cache.lookup(&hash(3), NOW, &s), KeyCacheLookup::Miss);
    assert_eq!(cache.lookup(&hash(4), NOW, &s), KeyCacheLookup::Miss);
}

#[test]
fn cache_is_bounded_and_unknown_floods_keep_found_records() {
    let s = settings();
    let mut cache = ApiKeyCache::new();
    let rec = grant(json!({"consumer": "acme"}))
        .issue(&[1; 32], &[1; 10], NOW)
        .record
        .to_api_key_record(hash(1));
    cache.insert(hash(1), Some(rec.clone()), NOW, &s);
    for n in 10..200u8 {
        cache.insert(hash(n), None, NOW, &s);
    }
    assert_eq!(cache.sizes(), (1, 3));
    assert_eq!(cache.lookup(&hash(1), NOW, &s), KeyCacheLookup::Found(&rec));
    // The oldest go first.
    assert_eq!(cache.lookup(&hash(196), NOW, &s), KeyCacheLookup::Miss);
    assert_eq!(cache.lookup(&hash(199), NOW, &s), KeyCacheLookup::Unknown);
    // Re-inserting one hash many times does not grow anything.
    for _ in 0..100 {
        cache.insert(hash(1), Some(rec.clone()), NOW, &s);
    }
    assert_eq!(cache.sizes(), (1, 3));
    for n in 2..6u8 {
        cache.insert(hash(n), Some(rec.clone()), NOW, &s);
    }
    assert_eq!(cache.sizes().0, 3);
    assert_eq!(cache.lookup(&hash(1), NOW, &s), KeyCacheLookup::Miss);
}

mod props {
    use proptest::prelude::*;

    use super::super::*;

    fn record() -> impl Strategy<Value = KvKeyRecord> {
        (
            "[a-z0-9_]{1,24}",
            "\\PC{1,40}",
            proptest::option::of("[a-z]{1,10}"),
            proptest::collection::vec("[a-z:]{1,12}", 0..4),
            proptest::collection::btree_map("[a-z-]{1,8}", any::<u64>(), 0..3),
            (any::<u32>(), proptest::option::of(any::<u32>())),
            (
                proptest::option::of(any::<u32>()),
                proptest::option::of(any::<u32>()),
            ),
            proptest::option::of("[a-z0-9_]{1,24}"),
            any::<bool>(),
        )
            .prop_map(
                |(id, consumer, tier, scopes, limits, (created, nb), (exp, revoked), by, off)| {
                    KvKeyRecord {
                        v: KvKeyRecord::VERSION,
                        id,
                        consumer,
                        tier,
                        scopes,
                        limits,
                        created_at: u64::from(created),
                        not_before: nb.map(u64::from),
                        expires_at: exp.map(u64::from),
                        revoked_at: revoked.map(u64::from),
                        replaced_by: by,
                        disabled: off,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn records_round_trip(r in record()) {
            prop_assert_eq!(KvKeyRecord::decode(&r.encode()), Ok(r));
        }

        #[test]
        fn summaries_round_trip_through_kv_metadata(r in record(), hash in any::<[u8; 32]>()) {
            let summary = r.summary(&hash);
            let text = serde_json::to_string(&summary).unwrap();
            prop_assert_eq!(serde_json::from_str::<KeySummary>(&text).unwrap(), summary);
        }

        #[test]
        fn consumer_prefixes_never_overlap(a in "\\PC{1,20}", b in "\\PC{1,20}") {
            let (pa, pb) = (kv_consumer_prefix(&a), kv_consumer_prefix(&b));
            prop_assert_eq!(pa.starts_with(&pb), a == b);
            prop_assert!(kv_consumer_entry(&a, "key_1").starts_with(&pa));
        }

        #[test]
        fn hashes_round_trip_through_their_kv_names(hash in any::<[u8; 32]>()) {
            let name = kv_record_name(&hash);
            prop_assert_eq!(parse_hash_hex(name.trim_start_matches("key/")), Some(hash));
        }
    }
}

#[test]
fn key_status_names_are_their_json() {
    for status in [
        KeyStatus::Active,
        KeyStatus::Pending,
        KeyStatus::Expired,
        KeyStatus::Revoked,
    ] {
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(json, format!("\"{}\"", status.as_str()));
    }
}
