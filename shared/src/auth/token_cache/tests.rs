use proptest::prelude::*;

use super::*;
use crate::auth::AuthMethod;

const NOW: u64 = 1_750_000_000_000;

fn identity(sub: &str) -> Identity {
    Identity {
        subject: sub.into(),
        key_id: Some("k1".into()),
        issuer: Some("https://idp.example/".into()),
        scopes: vec!["read".into()],
        tier: None,
        limit_overrides: Default::default(),
        method: AuthMethod::Jwt,
    }
}

fn token(sub: &str, from_ms: u64, until_ms: u64, key_epoch: u64) -> VerifiedToken {
    VerifiedToken {
        issuer: "idp".into(),
        identity: identity(sub),
        window: ValidityWindow { from_ms, until_ms },
        key_epoch,
    }
}

fn cache(max_entries: usize, ttl_ms: u64) -> TokenCache {
    TokenCache::new(TokenCacheSettings {
        enabled: true,
        max_entries,
        ttl: Duration::from_millis(ttl_ms),
    })
}

/// The epoch answer of a request that may use issuer `idp` with keys at 1.
fn epoch_1(name: &str) -> Option<u64> {
    (name == "idp").then_some(1)
}

#[test]
fn a_remembered_token_is_reused_until_its_window_ends_to_the_ms() {
    let mut c = cache(10, 600_000);
    let d = TokenDigest::of("t");
    c.insert(d, token("alice", NOW - 5_000, NOW + 60_000, 1), NOW);
    let hit = c.lookup(&d, NOW + 59_999, epoch_1);
    assert_eq!(hit.map(|i| i.subject), Some("alice".into()));
    assert_eq!(c.lookup(&d, NOW + 60_000, epoch_1), None, "exp + leeway");
    assert!(c.is_empty(), "an expired entry is forgotten");
}

#[test]
fn the_ttl_bounds_reuse_whatever_exp_says() {
    let mut c = cache(10, 1_000);
    let d = TokenDigest::of("t");
    c.insert(d, token("alice", 0, u64::MAX, 1), NOW);
    assert!(c.lookup(&d, NOW + 999, epoch_1).is_some());
    assert!(c.lookup(&d, NOW + 1_000, epoch_1).is_none());
}

#[test]
fn a_new_key_epoch_forgets_the_token() {
    let mut c = cache(10, 600_000);
    let d = TokenDigest::of("t");
    c.insert(d, token("alice", 0, u64::MAX, 1), NOW);
    assert!(c.lookup(&d, NOW, |_| Some(2)).is_none(), "keys rotated");
    assert!(
        c.lookup(&d, NOW, epoch_1).is_none(),
        "and it stays forgotten"
    );
}

#[test]
fn another_routes_issuers_or_stale_keys_miss_but_keep_the_entry() {
    let mut c = cache(10, 600_000);
    let d = TokenDigest::of("t");
    c.insert(d, token("alice", 0, u64::MAX, 1), NOW);
    // A route that takes only issuer `other` (or keys not fresh): `None`.
    let other_route = |name: &str| (name == "other").then_some(1);
    assert!(c.lookup(&d, NOW, other_route).is_none());
    assert!(c.lookup(&d, NOW, |_| None).is_none());
    assert!(
        c.lookup(&d, NOW, epoch_1).is_some(),
        "still good on route A"
    );
}

#[test]
fn a_clock_before_the_window_misses_and_one_before_storing_forgets() {
    let mut c = cache(10, 600_000);
    let d = TokenDigest::of("t");
    c.insert(d, token("alice", NOW - 10, u64::MAX, 1), NOW);
    assert!(c.lookup(&d, NOW - 11, epoch_1).is_none());
    assert!(c.is_empty(), "stored in the future of the clock: stale");
}

#[test]
fn nothing_is_remembered_when_off_outside_the_window_or_oversize() {
    let mut off = TokenCache::new(TokenCacheSettings {
        enabled: false,
        ..TokenCacheSettings::default()
    });
    off.insert(TokenDigest::of("t"), token("a", 0, u64::MAX, 1), NOW);
    assert!(off.is_empty());

    let mut c = cache(10, 600_000);
    c.insert(TokenDigest::of("t"), token("a", NOW + 1, u64::MAX, 1), NOW);
    c.insert(TokenDigest::of("u"), token("a", 0, NOW, 1), NOW);
    let big = "x".repeat(MAX_IDENTITY_BYTES);
    c.insert(TokenDigest::of("v"), token(&big, 0, u64::MAX, 1), NOW);
    assert!(c.is_empty());
}

#[test]
fn when_full_the_soonest_to_expire_goes_first() {
    let mut c = cache(2, 600_000);
    let (a, b, n) = (
        TokenDigest::of("a"),
        TokenDigest::of("b"),
        TokenDigest::of("n"),
    );
    c.insert(a, token("a", 0, NOW + 50_000, 1), NOW);
    c.insert(b, token("b", 0, NOW + 10_000, 1), NOW);
    c.insert(n, token("n", 0, NOW + 30_000, 1), NOW);
    assert_eq!(c.len(), 2);
    assert!(c.lookup(&b, NOW, epoch_1).is_none(), "b expired soonest");
    assert!(c.lookup(&a, NOW, epoch_1).is_some());
    assert!(c.lookup(&n, NOW, epoch_1).is_some());
}

#[test]
fn expired_entries_are_swept_before_any_live_one_is_evicted() {
    let mut c = cache(2, 600_000);
    let (a, b, n) = (
        TokenDigest::of("a"),
        TokenDigest::of("b"),
        TokenDigest::of("n"),
    );
    c.insert(a, token("a", 0, NOW + 10, 1), NOW);
    c.insert(b, token("b", 0, NOW + 90_000, 1), NOW);
    c.insert(n, token("n", 0, NOW + 20_000, 1), NOW + 10);
    assert!(c.lookup(&b, NOW + 10, epoch_1).is_some());
    assert!(c.lookup(&n, NOW + 10, epoch_1).is_some());
}

#[test]
fn reinserting_a_token_replaces_its_entry() {
    let mut c = cache(2, 600_000);
    let d = TokenDigest::of("t");
    c.insert(d, token("old", 0, NOW + 10, 1), NOW);
    c.insert(d, token("new", 0, NOW + 99_000, 2), NOW + 5);
    assert_eq!(c.len(), 1);
    let hit = c.lookup(&d, NOW + 50_000, |_| Some(2));
    assert_eq!(hit.map(|i| i.subject), Some("new".into()));
}

#[test]
fn the_digest_is_never_printed() {
    let d = TokenDigest::of("secret-token");
    assert_eq!(format!("{d:?}"), "TokenDigest(<redacted>)");
    assert_ne!(TokenDigest::of("a"), TokenDigest::of("b"));
}

#[derive(Debug, Clone)]
enum Op {
    Insert {
        token: u8,
        from: u64,
        until: u64,
        epoch: u64,
    },
    Lookup {
        token: u8,
        epoch: Option<u64>,
    },
    Tick(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<u8>(), 0u64..5_000, 0u64..20_000, 0u64..3).prop_map(
            |(token, from, until, epoch)| {
                Op::Insert {
                    token,
                    from,
                    until,
                    epoch,
                }
            }
        ),
        (any::<u8>(), proptest::option::of(0u64..3))
            .prop_map(|(token, epoch)| Op::Lookup { token, epoch }),
        (0u64..3_000).prop_map(Op::Tick),
    ]
}

proptest! {
    /// Against a model with no bound: the bound is respected, the map and
    /// the expiry index agree, and a hit is only ever what was remembered
    /// last for that token, inside its window, younger than the TTL and
    /// under the same key epoch.
    #[test]
    fn the_cache_only_answers_what_the_checks_would(
        max in 1usize..8,
        ttl in 1u64..10_000,
        ops in proptest::collection::vec(op(), 1..200),
    ) {
        let mut c = cache(max, ttl);
        // token → (subject, window, epoch, stored at)
        let mut model: HashMap<u8, (String, ValidityWindow, u64, u64)> = HashMap::new();
        let mut now = 1_000u64;
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Insert { token: t, from, until, epoch } => {
                    let sub = format!("s{i}");
                    let window = ValidityWindow { from_ms: from, until_ms: until };
                    c.insert(TokenDigest::of(&t.to_string()), token(&sub, from, until, epoch), now);
                    if window.contains(now) {
                        model.insert(t, (sub, window, epoch, now));
                    }
                }
                Op::Lookup { token: t, epoch } => {
                    let hit = c.lookup(&TokenDigest::of(&t.to_string()), now, |_| epoch);
                    if let Some(id) = hit {
                        let Some((sub, window, at_epoch, stored)) = model.get(&t) else {
                            return Err(TestCaseError::fail("a hit for a token never remembered"));
                        };
                        prop_assert_eq!(&id.subject, sub);
                        prop_assert!(window.contains(now));
                        prop_assert!(now - stored < ttl);
                        prop_assert_eq!(Some(*at_epoch), epoch);
                    }
                }
                Op::Tick(ms) => now += ms,
            }
            prop_assert!(c.len() <= max);
            prop_assert_eq!(c.entries.len(), c.expiry.len());
        }
    }

    /// Without pressure on the bound, a remembered token is found exactly
    /// while its window and the TTL allow, under its epoch.
    #[test]
    fn a_lone_token_is_found_exactly_while_usable(
        from in 0u64..5_000,
        until in 0u64..20_000,
        stored in 0u64..10_000,
        ttl in 1u64..10_000,
        later in 0u64..30_000,
    ) {
        let mut c = cache(4, ttl);
        let d = TokenDigest::of("t");
        c.insert(d, token("a", from, until, 1), stored);
        let remembered = from <= stored && stored < until;
        let at = stored + later;
        let usable = remembered && at < until && later < ttl;
        prop_assert_eq!(c.lookup(&d, at, epoch_1).is_some(), usable);
    }
}
