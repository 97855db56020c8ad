use super::*;
use crate::cache::{check_request, CacheControl, RequestVerdict};
use Freshness::*;

fn plan(headers: &[(&str, &str)]) -> RequestPlan {
    let h: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    match check_request("GET", &h, false) {
        RequestVerdict::Cache(p) => p,
        RequestVerdict::Bypass(r) => panic!("{r}"),
    }
}

fn entry(freshness: Freshness, age: u64, lifetime: u64) -> FreshnessCheck {
    FreshnessCheck {
        freshness,
        age: Duration::from_secs(age),
        lifetime: Duration::from_secs(lifetime),
        stale_allowed: true,
    }
}

#[test]
fn lookup_serves_fresh_and_swr_entries_at_once() {
    let p = plan(&[]);
    assert_eq!(
        before_origin(Some(&entry(Fresh, 1, 60)), &p),
        LookupDecision::ServeHit
    );
    assert_eq!(
        before_origin(Some(&entry(StaleWhileRevalidate, 70, 60)), &p),
        LookupDecision::ServeStaleAndRevalidate
    );
    for e in [
        Some(entry(StaleIfError, 99, 60)),
        Some(entry(Expired, 999, 60)),
        None,
    ] {
        assert_eq!(before_origin(e.as_ref(), &p), LookupDecision::AskOrigin);
    }
    assert_eq!(
        LookupDecision::ServeHit.cache_status(),
        Some(CacheStatus::Hit)
    );
    assert_eq!(LookupDecision::AskOrigin.cache_status(), None);
}

#[test]
fn request_directives_narrow_the_lookup() {
    let fresh = entry(Fresh, 30, 60);
    let ask = LookupDecision::AskOrigin;
    assert_eq!(
        before_origin(Some(&fresh), &plan(&[("cache-control", "no-cache")])),
        ask
    );
    assert_eq!(
        before_origin(Some(&fresh), &plan(&[("cache-control", "max-age=10")])),
        ask
    );
    assert_eq!(
        before_origin(Some(&fresh), &plan(&[("cache-control", "max-age=30")])),
        LookupDecision::ServeHit
    );
    assert_eq!(
        before_origin(Some(&fresh), &plan(&[("cache-control", "min-fresh=31")])),
        ask
    );
    assert_eq!(
        before_origin(Some(&fresh), &plan(&[("cache-control", "min-fresh=30")])),
        LookupDecision::ServeHit
    );
    let stale = entry(Expired, 100, 60);
    assert_eq!(
        before_origin(Some(&stale), &plan(&[("cache-control", "max-stale")])),
        LookupDecision::ServeStaleAndRevalidate
    );
    assert_eq!(
        before_origin(Some(&stale), &plan(&[("cache-control", "max-stale=40")])),
        LookupDecision::ServeStaleAndRevalidate
    );
    assert_eq!(
        before_origin(Some(&stale), &plan(&[("cache-control", "max-stale=39")])),
        ask
    );
    let forbidden = FreshnessCheck {
        stale_allowed: false,
        ..stale
    };
    assert_eq!(
        before_origin(Some(&forbidden), &plan(&[("cache-control", "max-stale")])),
        ask
    );
    let only = plan(&[("cache-control", "only-if-cached")]);
    assert_eq!(before_origin(None, &only), LookupDecision::Unsatisfiable);
    assert_eq!(
        before_origin(Some(&stale), &only),
        LookupDecision::Unsatisfiable
    );
    assert_eq!(before_origin(Some(&fresh), &only), LookupDecision::ServeHit);
}

#[test]
fn stale_if_error_covers_failures_only() {
    let p = plan(&[]);
    let e = entry(StaleIfError, 90, 60);
    for failure in [None, Some(500), Some(502), Some(503), Some(504)] {
        let d = after_origin(Some(&e), &p, false, failure);
        assert_eq!(d, ServeDecision::ServeStale);
        assert_eq!(d.cache_status(), CacheStatus::Stale);
    }
    for answer in [Some(200), Some(404), Some(501)] {
        let d = after_origin(Some(&e), &p, false, answer);
        assert_eq!(d.cache_status(), CacheStatus::Revalidated);
    }
    // A client that asked for a validated answer gets the failure.
    let strict = plan(&[("cache-control", "no-cache")]);
    assert_eq!(
        after_origin(Some(&e), &strict, false, Some(503)).cache_status(),
        CacheStatus::Miss
    );
}

#[test]
fn a_304_to_the_entry_validators_refreshes_it() {
    let p = plan(&[]);
    let e = entry(Expired, 999, 60);
    assert_eq!(
        after_origin(Some(&e), &p, true, Some(304)),
        ServeDecision::RefreshEntry
    );
    assert_eq!(
        after_origin(Some(&e), &p, true, Some(200)).cache_status(),
        CacheStatus::Revalidated
    );
    // A 304 the entry did not ask for is the client's own, passed on.
    assert_eq!(
        after_origin(None, &p, false, Some(304)).cache_status(),
        CacheStatus::Miss
    );
    assert_eq!(
        after_origin(Some(&e), &p, false, Some(304)).cache_status(),
        CacheStatus::Miss
    );
}

#[test]
fn without_a_usable_entry_the_origin_answers() {
    let p = plan(&[]);
    for e in [Some(entry(Expired, 999, 60)), None] {
        for status in [None, Some(200), Some(503)] {
            let d = after_origin(e.as_ref(), &p, false, status);
            assert_eq!(d.cache_status(), CacheStatus::Miss);
        }
    }
    let _ = CacheControl::default();
}
