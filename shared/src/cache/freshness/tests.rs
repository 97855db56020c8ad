use super::*;
use crate::cache::CacheRule;
use proptest::prelude::*;

const NOW: u64 = 1_700_000_000_000;
/// `NOW` as an HTTP date (1700000000 s = Tue, 14 Nov 2023 22:13:20 GMT).
const NOW_DATE: &str = "Tue, 14 Nov 2023 22:13:20 GMT";

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn rule() -> CacheRule {
    CacheRule::new(Duration::from_secs(60))
        .with_stale_while_revalidate(Duration::from_secs(30))
        .with_stale_if_error(Duration::from_secs(300))
}

const AT_NOW: ResponseTiming = ResponseTiming {
    requested_at_ms: NOW,
    received_at_ms: NOW,
};

/// The window of a response with `origin` headers stored at NOW, `age_ms` later.
fn window(rule: &CacheRule, origin: &[(&str, &str)], age_ms: u64) -> Freshness {
    let stored = prepare_for_storage(&h(origin), rule, AT_NOW);
    freshness_from_headers(&stored.headers, rule, NOW + age_ms).freshness
}

fn lifetime(rule: &CacheRule, origin: &[(&str, &str)]) -> Duration {
    lifetimes(rule, ResponseHeaders::origin(&h(origin)), NOW).fresh
}

#[test]
fn rule_windows_without_origin_directives() {
    let at = |ms| window(&rule(), &[], ms);
    assert_eq!(at(0), Freshness::Fresh);
    assert_eq!(at(59_999), Freshness::Fresh);
    assert_eq!(at(60_000), Freshness::StaleWhileRevalidate);
    assert_eq!(at(89_999), Freshness::StaleWhileRevalidate);
    assert_eq!(at(90_000), Freshness::StaleIfError);
    assert_eq!(at(359_999), Freshness::StaleIfError);
    assert_eq!(at(360_000), Freshness::Expired);
}

#[test]
fn lifetime_precedence() {
    let r = rule();
    let secs = Duration::from_secs;
    assert_eq!(lifetime(&r, &[]), secs(60));
    assert_eq!(lifetime(&r, &[("cache-control", "max-age=5")]), secs(5));
    assert_eq!(
        lifetime(&r, &[("cache-control", "max-age=5, s-maxage=7")]),
        secs(7)
    );
    let expires_in_30 = "Tue, 14 Nov 2023 22:13:50 GMT";
    assert_eq!(
        lifetime(&r, &[("date", NOW_DATE), ("expires", expires_in_30)]),
        secs(30)
    );
    // max-age wins over Expires.
    assert_eq!(
        lifetime(
            &r,
            &[("expires", expires_in_30), ("cache-control", "max-age=3")]
        ),
        secs(3)
    );
    // Without Date, the arrival time stands in.
    assert_eq!(lifetime(&r, &[("expires", expires_in_30)]), secs(30));
    // Invalid or past Expires: already expired.
    assert_eq!(lifetime(&r, &[("expires", "0")]), Duration::ZERO);
    assert_eq!(
        lifetime(&r, &[("expires", "Thu, 01 Jan 1970 00:00:00 GMT")]),
        Duration::ZERO
    );
    // max_ttl caps everything.
    let capped = rule().with_max_ttl(secs(10));
    assert_eq!(
        lifetime(&capped, &[("cache-control", "max-age=99")]),
        secs(10)
    );
    assert_eq!(lifetime(&capped, &[]), secs(10));
    // Override ignores the origin's lifetimes.
    let over = rule().with_freshness(FreshnessSource::Override);
    assert_eq!(lifetime(&over, &[("cache-control", "max-age=5")]), secs(60));
}

#[test]
fn heuristic_only_when_asked() {
    let lm = [
        ("date", NOW_DATE),
        ("last-modified", "Tue, 14 Nov 2023 19:26:40 GMT"),
    ];
    // 10 000 s since modification.
    assert_eq!(lifetime(&rule(), &lm), Duration::from_secs(60));
    let heur = rule().with_heuristic(true);
    assert_eq!(lifetime(&heur, &lm), Duration::from_secs(1_000));
    assert_eq!(
        lifetime(&heur.clone().with_max_ttl(Duration::from_secs(100)), &lm),
        Duration::from_secs(100)
    );
    // Explicit freshness beats the heuristic.
    let mut explicit = lm.to_vec();
    explicit.push(("cache-control", "max-age=2"));
    assert_eq!(lifetime(&heur, &explicit), Duration::from_secs(2));
}

#[test]
fn stale_windows() {
    let r = rule();
    let l = |o: &[(&str, &str)]| lifetimes(&r, ResponseHeaders::origin(&h(o)), NOW);
    let own = l(&[(
        "cache-control",
        "max-age=1, stale-while-revalidate=9, stale-if-error=4",
    )]);
    assert_eq!(own.stale_while_revalidate, Duration::from_secs(9));
    assert_eq!(own.stale_if_error, Duration::from_secs(4));
    for forbid in [
        "must-revalidate",
        "proxy-revalidate",
        "s-maxage=1",
        "no-cache",
    ] {
        let l = l(&[("cache-control", forbid)]);
        assert_eq!(l.stale_while_revalidate, Duration::ZERO, "{forbid}");
        assert_eq!(l.stale_if_error, Duration::ZERO, "{forbid}");
        assert!(!l.stale_allowed());
    }
    assert!(l(&[("cache-control", "no-cache, max-age=60")]).always_revalidate);
    assert_eq!(
        window(&r, &[("cache-control", "no-cache, max-age=60")], 0),
        Freshness::Expired
    );
}

#[test]
fn age_counts_upstream_age_date_and_delay() {
    let view = |o: &[(&str, &str)]| initial_age(ResponseHeaders::origin(&h(o)), AT_NOW);
    assert_eq!(view(&[("age", "30")]), Duration::from_secs(30));
    assert_eq!(view(&[("age", "-3")]), Duration::ZERO);
    assert_eq!(view(&[("age", "1.5")]), Duration::ZERO);
    assert_eq!(
        view(&[("age", "99999999999999")]),
        Duration::from_secs(1 << 31)
    );
    // Apparent age: Date 20 s before arrival.
    let date = "Tue, 14 Nov 2023 22:13:00 GMT";
    assert_eq!(view(&[("date", date)]), Duration::from_secs(20));
    assert_eq!(
        view(&[("date", date), ("age", "50")]),
        Duration::from_secs(50)
    );
    // The round trip counts as age.
    let slow = ResponseTiming {
        requested_at_ms: NOW - 2_000,
        received_at_ms: NOW,
    };
    assert_eq!(
        initial_age(ResponseHeaders::origin(&h(&[("age", "1")])), slow),
        Duration::from_secs(3)
    );
    let stored = prepare_for_storage(
        &h(&[("age", "30"), ("cache-control", "max-age=60")]),
        &rule(),
        AT_NOW,
    );
    let check = freshness_from_headers(&stored.headers, &rule(), NOW + 29_999);
    assert_eq!(check.freshness, Freshness::Fresh);
    assert_eq!(check.age, Duration::from_millis(59_999));
    let check = freshness_from_headers(&stored.headers, &rule(), NOW + 30_000);
    assert_eq!(check.freshness, Freshness::StaleWhileRevalidate);
}

#[test]
fn future_and_missing_timestamps() {
    let stored = |at: u64| h(&[(STORED_AT_HEADER, &at.to_string())]);
    let slight = freshness_from_headers(&stored(NOW + 2_000), &rule(), NOW);
    assert_eq!(slight.freshness, Freshness::Fresh);
    assert_eq!(slight.age, Duration::ZERO);
    assert_eq!(
        freshness_from_headers(&stored(NOW + 61_000), &rule(), NOW).freshness,
        Freshness::Expired
    );
    assert_eq!(
        freshness_from_headers(&stored(u64::MAX), &rule(), 0).freshness,
        Freshness::Expired
    );
    assert_eq!(
        freshness_from_headers(&h(&[(STORED_AT_HEADER, "garbage")]), &rule(), NOW).freshness,
        Freshness::Expired
    );
}

#[test]
fn keep_for_validators_and_windows() {
    let r = rule();
    let stored = |o: &[(&str, &str)]| prepare_for_storage(&h(o), &r, AT_NOW).keep;
    assert_eq!(stored(&[]), Duration::from_secs(360));
    assert_eq!(
        stored(&[("cache-control", "max-age=10, must-revalidate")]),
        Duration::from_secs(10)
    );
    assert_eq!(
        stored(&[("cache-control", "no-cache"), ("etag", "\"a\"")]),
        Duration::from_secs(60)
    );
    assert_eq!(stored(&[("cache-control", "no-cache")]), Duration::ZERO);
    assert_eq!(storage_lifetime(&r), Duration::from_secs(360));
    let huge = CacheRule::new(Duration::MAX).with_stale_if_error(Duration::MAX);
    assert_eq!(storage_lifetime(&huge), Duration::MAX);
}

#[test]
fn parse_stored_at_values() {
    let h1 = |v: &str| h(&[("X-Tidegate-Stored-At", v)]);
    assert_eq!(parse_stored_at(&h1(" 123 ")), Some(123));
    for bad in ["", "-1", "1e3", "12a", "99999999999999999999999", "+5"] {
        assert_eq!(parse_stored_at(&h1(bad)), None, "{bad}");
    }
    assert_eq!(parse_stored_at(&[]), None);
    let two = h(&[(STORED_AT_HEADER, "1"), (STORED_AT_HEADER, "2")]);
    assert_eq!(parse_stored_at(&two), None);
}

#[test]
fn storage_and_serving_round_trip() {
    let origin = h(&[
        ("Content-Type", "application/json"),
        ("Cache-Control", "public, max-age=5"),
        ("CDN-Cache-Control", "max-age=50"),
        ("Expires", "0"),
        ("Age", "3"),
        ("Connection", "x-hop, close"),
        ("X-Hop", "1"),
        ("Keep-Alive", "timeout=5"),
        ("X-Tidegate-Stored-At", "1"),
    ]);
    let stored = prepare_for_storage(&origin, &rule(), AT_NOW);
    assert_eq!(parse_stored_at(&stored.headers), Some(NOW));
    assert_eq!(
        header_values(&stored.headers, "cache-control").collect::<Vec<_>>(),
        ["max-age=350"]
    );
    assert!(header_values(&stored.headers, "cdn-cache-control")
        .next()
        .is_none());
    assert!(header_values(&stored.headers, "age").next().is_none());
    // The targeted field governs the edge: 50 s fresh, then the rule's sie.
    assert_eq!(stored.keep, Duration::from_secs(350));

    let served = prepare_for_serving(
        &stored.headers,
        Duration::from_millis(4_500),
        CacheStatus::Hit,
    );
    assert_eq!(
        served,
        h(&[
            ("Content-Type", "application/json"),
            ("cache-control", "public, max-age=5"),
            ("cdn-cache-control", "max-age=50"),
            ("expires", "0"),
            ("age", "4"),
            (CACHE_STATUS_HEADER, "HIT"),
        ])
    );
}

#[test]
fn status_strings() {
    let all = [
        (CacheStatus::Hit, "HIT"),
        (CacheStatus::Miss, "MISS"),
        (CacheStatus::Stale, "STALE"),
        (CacheStatus::Revalidated, "REVALIDATED"),
        (CacheStatus::Bypass, "BYPASS"),
    ];
    for (s, text) in all {
        assert_eq!(s.as_str(), text);
    }
}

proptest! {
    #[test]
    fn never_panics(
        cc in ".{0,40}", expires in ".{0,40}", date in ".{0,40}", age in ".{0,20}",
        requested in any::<u64>(), received in any::<u64>(), now in any::<u64>(),
    ) {
        let origin = h(&[("cache-control", &cc), ("expires", &expires), ("date", &date), ("age", &age)]);
        let timing = ResponseTiming { requested_at_ms: requested, received_at_ms: received };
        let stored = prepare_for_storage(&origin, &rule(), timing);
        let _ = freshness_from_headers(&stored.headers, &rule(), now);
    }

    #[test]
    fn older_is_never_fresher(max_age in 0u64..1_000, a in 0u64..2_000_000, b in 0u64..2_000_000) {
        let cc = format!("max-age={max_age}");
        let stored = prepare_for_storage(&h(&[("cache-control", &cc)]), &rule(), AT_NOW);
        let rank = |f| match f {
            Freshness::Fresh => 0, Freshness::StaleWhileRevalidate => 1,
            Freshness::StaleIfError => 2, Freshness::Expired => 3,
        };
        let (young, old) = (a.min(b), a.max(b));
        let fy = freshness_from_headers(&stored.headers, &rule(), NOW + young).freshness;
        let fo = freshness_from_headers(&stored.headers, &rule(), NOW + old).freshness;
        prop_assert!(rank(fy) <= rank(fo));
    }
}
