use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use proptest::prelude::*;

const SEC: u64 = 1000;
const HS: Algorithm = Algorithm::HS256;

fn key(kid: &str) -> Jwk {
    serde_json::from_value(serde_json::json!({
        "kty": "oct", "kid": kid, "k": URL_SAFE_NO_PAD.encode([9u8; 32])
    }))
    .unwrap()
}

fn set(kids: &[&str]) -> JwkSet {
    JwkSet {
        keys: kids.iter().map(|k| key(k)).collect(),
    }
}

fn policy() -> JwksCachePolicy {
    JwksCachePolicy {
        ttl: Duration::from_secs(600),
        max_stale: Duration::from_secs(3600),
        refetch_cooldown: Duration::from_secs(30),
        negative_ttl: Duration::from_secs(300),
        max_negative_entries: 3,
    }
}

fn kid_of(l: KeyLookup<'_>) -> Option<String> {
    match l {
        KeyLookup::Found(k) | KeyLookup::FoundStale { jwk: k, .. } => k.common.key_id.clone(),
        _ => None,
    }
}

#[test]
fn the_key_epoch_changes_with_the_set_and_only_while_fresh() {
    let mut c = JwksCache::new(policy());
    assert_eq!(c.key_epoch(0), None, "no keys yet");
    c.on_fetched(set(&["a"]), 0);
    let first = c.key_epoch(0).unwrap();
    c.on_fetched(set(&["a"]), 10 * SEC);
    assert_eq!(c.key_epoch(10 * SEC), Some(first), "the same set refetched");
    assert_eq!(c.key_epoch(610 * SEC), None, "past the ttl: not fresh");
    c.on_fetched(set(&["b"]), 700 * SEC);
    let rotated = c.key_epoch(700 * SEC).unwrap();
    assert!(rotated > first, "a dropped kid is a new epoch");
    c.on_fetched(set(&["b", "c"]), 800 * SEC);
    assert!(
        c.key_epoch(800 * SEC).unwrap() > rotated,
        "so is an added one"
    );
    let pinned = JwksCache::pinned(set(&["a"]), policy());
    assert!(
        pinned.key_epoch(u64::MAX).is_some(),
        "pinned sets never go stale"
    );
}

#[test]
fn empty_cache_fetches_once_then_is_unavailable() {
    let mut c = JwksCache::new(policy());
    assert!(c.needs_refresh(0));
    assert_eq!(c.lookup(Some("a"), HS, 0), KeyLookup::FetchThenRetry);
    assert_eq!(c.lookup(Some("a"), HS, SEC), KeyLookup::Unavailable);
    assert!(!c.needs_refresh(SEC));
    c.on_fetch_failed(2 * SEC);
    assert_eq!(c.consecutive_failures(), 1);
    assert_eq!(c.lookup(Some("a"), HS, 31 * SEC), KeyLookup::Unavailable);
    assert_eq!(c.lookup(Some("a"), HS, 32 * SEC), KeyLookup::FetchThenRetry);
    c.on_fetched(set(&["a"]), 33 * SEC);
    assert_eq!(c.consecutive_failures(), 0);
    assert_eq!(c.fetched_at_ms(), Some(33 * SEC));
    assert_eq!(
        kid_of(c.lookup(Some("a"), HS, 34 * SEC)).as_deref(),
        Some("a")
    );
    assert!(matches!(
        c.lookup(Some("a"), HS, 34 * SEC),
        KeyLookup::Found(_)
    ));
}

#[test]
fn stale_keys_are_served_while_refreshing() {
    let mut c = JwksCache::new(policy());
    c.on_fetched(set(&["a"]), 0);
    assert!(matches!(
        c.lookup(Some("a"), HS, 599 * SEC),
        KeyLookup::Found(_)
    ));
    assert!(!c.needs_refresh(599 * SEC));
    assert!(c.needs_refresh(600 * SEC));
    // Past ttl: the first caller gets the refresh slot, the next does not.
    assert!(matches!(
        c.lookup(Some("a"), HS, 600 * SEC),
        KeyLookup::FoundStale { refresh: true, .. }
    ));
    assert!(matches!(
        c.lookup(Some("a"), HS, 601 * SEC),
        KeyLookup::FoundStale { refresh: false, .. }
    ));
    c.on_fetch_failed(602 * SEC);
    assert!(matches!(
        c.lookup(Some("a"), HS, 632 * SEC),
        KeyLookup::FoundStale { refresh: true, .. }
    ));
    c.on_fetch_failed(633 * SEC);
    // Still served until ttl + max_stale...
    assert!(matches!(
        c.lookup(Some("a"), HS, 4199 * SEC),
        KeyLookup::FoundStale { .. }
    ));
    // ...then no longer: fetch if allowed, else unavailable.
    assert_eq!(c.lookup(Some("a"), HS, 4200 * SEC), KeyLookup::Unavailable);
    assert_eq!(
        c.lookup(Some("a"), HS, 4230 * SEC),
        KeyLookup::FetchThenRetry
    );
    assert_eq!(c.lookup(Some("a"), HS, 4231 * SEC), KeyLookup::Unavailable);
}

#[test]
fn unknown_kids_are_negative_cached() {
    let mut c = JwksCache::new(policy());
    c.on_fetched(set(&["a"]), 0);
    // Cooldown from the fetch at 0 still runs.
    assert_eq!(c.lookup(Some("x"), HS, 10 * SEC), KeyLookup::UnknownKid);
    assert_eq!(c.lookup(Some("x"), HS, 30 * SEC), KeyLookup::FetchThenRetry);
    c.on_fetched(set(&["a"]), 31 * SEC);
    // The fetch was for "x" and the set lacks it: on_fetched remembers that.
    assert!(c.is_negative("x", 31 * SEC));
    assert_eq!(c.lookup(Some("x"), HS, 31 * SEC), KeyLookup::UnknownKid);
    // After the cooldown, "x" still causes no fetch; a new kid does.
    assert_eq!(c.lookup(Some("x"), HS, 100 * SEC), KeyLookup::UnknownKid);
    assert_eq!(
        c.lookup(Some("y"), HS, 100 * SEC),
        KeyLookup::FetchThenRetry
    );
    // Once the negative entry expires, "x" may fetch again.
    assert!(!c.is_negative("x", 331 * SEC));
    assert_eq!(
        c.lookup(Some("x"), HS, 331 * SEC),
        KeyLookup::FetchThenRetry
    );
}

#[test]
fn a_rotated_in_kid_leaves_the_negative_cache() {
    let mut c = JwksCache::new(policy());
    c.on_fetched(set(&["a"]), 0);
    c.record_unknown("b", 0);
    assert_eq!(c.lookup(Some("b"), HS, 40 * SEC), KeyLookup::UnknownKid);
    c.on_fetched(set(&["a", "b"]), 50 * SEC);
    assert!(!c.is_negative("b", 50 * SEC));
    assert_eq!(
        kid_of(c.lookup(Some("b"), HS, 51 * SEC)).as_deref(),
        Some("b")
    );
}

#[test]
fn negative_cache_is_bounded_and_evicts_oldest() {
    let mut c = JwksCache::new(policy());
    for (i, kid) in ["k1", "k2", "k3", "k4", "k5"].iter().enumerate() {
        c.record_unknown(kid, i as u64 * SEC);
    }
    assert_eq!(c.negative_len(), 3);
    assert!(!c.is_negative("k1", 5 * SEC));
    assert!(!c.is_negative("k2", 5 * SEC));
    assert!(c.is_negative("k3", 5 * SEC));
    assert!(c.is_negative("k5", 5 * SEC));
    // Over-long kids are never stored.
    c.record_unknown(&"z".repeat(MAX_KID_BYTES + 1), 6 * SEC);
    assert!(c.is_negative("k3", 6 * SEC));
    // Expired entries are purged on the next record.
    c.record_unknown("k6", 1000 * SEC);
    assert_eq!(c.negative_len(), 1);

    let mut none = JwksCache::new(JwksCachePolicy {
        max_negative_entries: 0,
        ..policy()
    });
    none.record_unknown("k", 0);
    assert_eq!(none.negative_len(), 0);
}

#[test]
fn kidless_tokens_need_a_single_usable_key() {
    let mut c = JwksCache::new(policy());
    c.on_fetched(set(&["a"]), 0);
    assert_eq!(kid_of(c.lookup(None, HS, SEC)).as_deref(), Some("a"));
    // No RSA key at all: no match for RS256.
    assert_eq!(c.lookup(None, Algorithm::RS256, SEC), KeyLookup::UnknownKid);
    c.on_fetched(set(&["a", "b"]), 2 * SEC);
    assert_eq!(c.lookup(None, HS, 3 * SEC), KeyLookup::UnknownKid);
}

#[test]
fn random_kids_cause_one_fetch_per_cooldown() {
    let mut c = JwksCache::new(JwksCachePolicy::default());
    c.on_fetched(set(&["a"]), 0);
    let mut fetches = 0;
    for i in 0..10_000u64 {
        let now = 30 * SEC + i; // ten seconds of requests, all after the cooldown
        let kid = format!("random-{i}");
        if c.lookup(Some(&kid), HS, now) == KeyLookup::FetchThenRetry {
            fetches += 1;
            c.on_fetched(set(&["a"]), now);
            assert_eq!(c.lookup(Some(&kid), HS, now), KeyLookup::UnknownKid);
            assert!(c.is_negative(&kid, now));
        }
    }
    assert_eq!(fetches, 1);
    assert!(c.negative_len() <= c.policy().max_negative_entries);
}

#[test]
fn a_failed_fetch_negative_caches_nothing() {
    let mut c = JwksCache::new(policy());
    c.on_fetched(set(&["a"]), 0);
    assert_eq!(c.lookup(Some("x"), HS, 30 * SEC), KeyLookup::FetchThenRetry);
    c.on_fetch_failed(30 * SEC);
    assert!(!c.is_negative("x", 30 * SEC));
    // A later refresh not asked for by "x" does not negative-cache it.
    assert!(c.try_begin_fetch(60 * SEC));
    c.on_fetched(set(&["a"]), 60 * SEC);
    assert!(!c.is_negative("x", 60 * SEC));
    assert_eq!(c.negative_len(), 0);
}

#[test]
fn a_kid_found_by_the_fetch_is_not_negative_cached() {
    let mut c = JwksCache::new(policy());
    assert_eq!(c.lookup(Some("b"), HS, 0), KeyLookup::FetchThenRetry);
    c.on_fetched(set(&["a", "b"]), 0);
    assert!(!c.is_negative("b", 0));
    assert!(matches!(c.lookup(Some("b"), HS, 0), KeyLookup::Found(_)));
}

#[test]
fn pinned_sets_never_fetch() {
    let mut c = JwksCache::pinned(set(&["a"]), policy());
    assert!(c.is_pinned());
    assert!(!c.needs_refresh(0));
    assert!(!c.try_begin_fetch(0));
    assert!(matches!(c.lookup(Some("a"), HS, 0), KeyLookup::Found(_)));
    // Never stale, however old.
    let later = u64::MAX / 2;
    assert!(matches!(
        c.lookup(Some("a"), HS, later),
        KeyLookup::Found(_)
    ));
    assert_eq!(c.lookup(Some("x"), HS, later), KeyLookup::UnknownKid);
    assert_eq!(c.lookup(None, Algorithm::RS256, 0), KeyLookup::UnknownKid);
    // Reports of fetches nobody asked for change nothing.
    c.on_fetched(set(&["b"]), 1);
    c.on_fetch_failed(2);
    assert_eq!(kid_of(c.lookup(Some("a"), HS, 3)).as_deref(), Some("a"));
    assert_eq!(c.consecutive_failures(), 0);
}

#[test]
fn presets_are_ordered_sensibly() {
    for p in [
        JwksCachePolicy::default(),
        JwksCachePolicy::frequent_rotation(),
        JwksCachePolicy::stable(),
    ] {
        assert!(p.refetch_cooldown < p.ttl);
        assert!(p.negative_ttl <= p.ttl);
        assert!(p.max_negative_entries > 0);
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// A request with kid index (0..3 exist, the rest do not) after `dt` ms.
    Request { kid: u16, dt: u64, fetch_ok: bool },
    /// A background refresh check after `dt` ms.
    Background { dt: u64, fetch_ok: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (any::<u16>(), 0u64..20_000, any::<bool>())
            .prop_map(|(kid, dt, fetch_ok)| Op::Request { kid, dt, fetch_ok }),
        1 => (0u64..200_000, any::<bool>())
            .prop_map(|(dt, fetch_ok)| Op::Background { dt, fetch_ok }),
    ]
}

proptest! {
    /// Whatever kids the tokens carry, and whatever the fetches return,
    /// fetch attempts are at least `refetch_cooldown` apart, and the negative
    /// cache stays bounded.
    #[test]
    fn fetches_respect_the_cooldown(ops in proptest::collection::vec(op(), 1..300)) {
        let policy = JwksCachePolicy { max_negative_entries: 16, ..JwksCachePolicy::default() };
        let cooldown = policy.refetch_cooldown.as_millis() as u64;
        let mut c = JwksCache::new(policy);
        let mut now = 0u64;
        let mut fetches: Vec<u64> = Vec::new();
        let good = set(&["k0", "k1", "k2"]);
        let fetch = |c: &mut JwksCache, now: u64, ok: bool, fetches: &mut Vec<u64>| {
            fetches.push(now);
            if ok { c.on_fetched(good.clone(), now) } else { c.on_fetch_failed(now) }
        };
        for op in ops {
            match op {
                Op::Request { kid, dt, fetch_ok } => {
                    now += dt;
                    let kid = format!("k{}", kid % 64);
                    match c.lookup(Some(&kid), HS, now) {
                        KeyLookup::FetchThenRetry => {
                            fetch(&mut c, now, fetch_ok, &mut fetches);
                            let missing = kid_of(c.lookup(Some(&kid), HS, now)).is_none();
                            // After a good fetch: negative-cached exactly when missing.
                            if fetch_ok {
                                prop_assert_eq!(c.is_negative(&kid, now), missing);
                            }
                        }
                        KeyLookup::FoundStale { refresh: true, .. } => {
                            fetch(&mut c, now, fetch_ok, &mut fetches);
                        }
                        _ => {}
                    }
                }
                Op::Background { dt, fetch_ok } => {
                    now += dt;
                    if c.needs_refresh(now) && c.try_begin_fetch(now) {
                        fetch(&mut c, now, fetch_ok, &mut fetches);
                    }
                }
            }
            prop_assert!(c.negative_len() <= 16);
        }
        for pair in fetches.windows(2) {
            prop_assert!(pair[1] - pair[0] >= cooldown, "fetches at {:?}", fetches);
        }
    }
}

#[test]
fn key_at_once_is_a_fresh_or_pinned_hit_and_claims_nothing() {
    let mut c = JwksCache::new(policy());
    assert!(c.key_at_once(Some("a"), HS, 0).is_none(), "no keys yet");
    c.on_fetched(set(&["a", "b"]), 0);
    let before = c.clone();
    assert_eq!(
        c.key_at_once(Some("a"), HS, 599 * SEC)
            .and_then(|k| k.common.key_id.clone()),
        Some("a".to_owned())
    );
    assert!(c.key_at_once(Some("z"), HS, SEC).is_none(), "unknown kid");
    assert!(
        c.key_at_once(Some("a"), HS, 600 * SEC).is_none(),
        "past the ttl: stale, lookup's to refresh"
    );
    assert!(c.key_at_once(None, HS, SEC).is_none(), "no kid, two keys");
    assert_eq!(c, before, "nothing claimed or recorded");
    let pinned = JwksCache::pinned(set(&["a"]), policy());
    assert!(pinned.key_at_once(Some("a"), HS, u64::MAX).is_some());
}

proptest! {
    /// Wherever a cache's history has led it, `key_at_once` answers a key
    /// exactly when `lookup` would answer `Found` with that key, and changes
    /// nothing.
    #[test]
    fn key_at_once_agrees_with_lookup(ops in proptest::collection::vec(op(), 1..200)) {
        let mut c = JwksCache::new(JwksCachePolicy { max_negative_entries: 16, ..policy() });
        let mut now = 0u64;
        let good = set(&["k0", "k1", "k2"]);
        for op in ops {
            match op {
                Op::Request { kid, dt, fetch_ok } => {
                    now += dt * 50;
                    let kid = format!("k{}", kid % 8);
                    let before = c.clone();
                    let at_once = c.key_at_once(Some(&kid), HS, now).cloned();
                    prop_assert_eq!(&c, &before);
                    let found = match c.lookup(Some(&kid), HS, now) {
                        KeyLookup::Found(k) => Some(k.clone()),
                        KeyLookup::FetchThenRetry => {
                            if fetch_ok { c.on_fetched(good.clone(), now) } else { c.on_fetch_failed(now) }
                            None
                        }
                        KeyLookup::FoundStale { refresh: true, .. } => {
                            if fetch_ok { c.on_fetched(good.clone(), now) } else { c.on_fetch_failed(now) }
                            None
                        }
                        _ => None,
                    };
                    prop_assert_eq!(at_once, found);
                }
                Op::Background { dt, fetch_ok } => {
                    now += dt;
                    if c.needs_refresh(now) && c.try_begin_fetch(now) {
                        if fetch_ok { c.on_fetched(good.clone(), now) } else { c.on_fetch_failed(now) }
                    }
                }
            }
        }
    }
}
