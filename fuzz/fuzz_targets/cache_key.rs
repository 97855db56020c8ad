//! Cache-key normalisation of arbitrary URLs, headers, vary rules and
//! identities.
//!
//! Input lines: the request URL; vary headers (comma-separated); vary query
//! (`*` = all, else comma-separated names); scope (`shared`, or `private`
//! and an optional identity); then `name: value` request headers. A URL
//! that `url::Url` rejects is still split naively and fed in raw, as a
//! Worker adapter bug might.
//!
//! Checked on every key: one line per vary header (plus one for the
//! identity), so no part can forge a line; HEAD shares GET's key; the host's
//! ASCII case does not matter; `to_url` is a valid URL ending in `__tg=`.
//!
//! The same headers then go through the freshness and validation rules as
//! a response (stored, classified, served, refreshed by a 304 carrying
//! them) and as a conditional request: no panic, and an entry never gets
//! fresher as it ages.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidegate_policy::cache::{cache_key, CacheRule, CacheScope, RequestParts};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let url_text = lines.next().unwrap_or("");
    let vary_headers = list(lines.next().unwrap_or(""));
    let vary_query = match lines.next().unwrap_or("*") {
        "*" => None,
        names => Some(list(names)),
    };
    let scope_line = lines.next().unwrap_or("shared");
    let (scope, identity) = match scope_line.split_once(' ') {
        Some(("private", id)) => (CacheScope::Private, Some(id)),
        _ if scope_line == "private" => (CacheScope::Private, None),
        _ => (CacheScope::Shared, None),
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();

    let mut rule =
        CacheRule::new(std::time::Duration::from_secs(60)).with_vary_headers(&vary_headers);
    rule.vary_query = vary_query;
    rule.scope = scope;

    if let Ok(url) = url::Url::parse(url_text) {
        check(
            &rule,
            RequestParts::from_url("GET", &url, &headers, identity),
        );
    }
    let (scheme, rest) = url_text.split_once("://").unwrap_or(("https", url_text));
    let (authority, path_query) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let (path, query) = match path_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_query, None),
    };
    check(
        &rule,
        RequestParts {
            method: "GET",
            scheme,
            host: authority,
            path,
            query,
            headers: &headers,
            identity,
        },
    );
    freshness(&rule, &headers, data.len() as u64);
});

/// The freshness and validation rules on `headers` as a response and as a
/// request, with times derived from the input.
fn freshness(rule: &CacheRule, headers: &[(String, String)], seed: u64) {
    use tidegate_policy::cache::{
        client_condition, freshness_from_headers, origin_headers, prepare_for_serving,
        prepare_for_storage, refresh_headers, CacheStatus, Freshness, ResponseHeaders,
        ResponseTiming,
    };
    let now = 1_700_000_000_000u64.wrapping_add(seed.wrapping_mul(7_919));
    let timing = ResponseTiming {
        requested_at_ms: now.saturating_sub(seed),
        received_at_ms: now,
    };
    let stored = prepare_for_storage(headers, rule, timing);
    let rank = |f: Freshness| match f {
        Freshness::Fresh => 0,
        Freshness::StaleWhileRevalidate => 1,
        Freshness::StaleIfError => 2,
        Freshness::Expired => 3,
    };
    let mut last = 0;
    for later in [0u64, 1_000, 60_000, 3_600_000, u64::MAX / 2] {
        let check = freshness_from_headers(&stored.headers, rule, now.saturating_add(later));
        assert!(rank(check.freshness) >= last, "got fresher with age");
        last = rank(check.freshness);
        let _ = prepare_for_serving(&stored.headers, check.age, CacheStatus::Hit);
    }
    let _ = client_condition(headers, ResponseHeaders::stored(&stored.headers));
    let refreshed = refresh_headers(&origin_headers(&stored.headers), headers);
    let _ = prepare_for_storage(&refreshed, rule, timing);
}

fn list(line: &str) -> Vec<String> {
    line.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn check(rule: &CacheRule, req: RequestParts<'_>) {
    let Ok(key) = cache_key(rule, &req) else {
        return;
    };
    let identity_lines = usize::from(rule.scope == CacheScope::Private);
    assert_eq!(
        key.canonical.split('\n').count(),
        1 + rule.vary_headers.len() + identity_lines,
        "a part forged a line: {:?}",
        key.canonical
    );
    let head = RequestParts {
        method: "HEAD",
        ..req
    };
    assert_eq!(cache_key(rule, &head).as_ref(), Ok(&key));
    let upper = req.host.to_ascii_uppercase();
    let shouting = RequestParts {
        host: &upper,
        ..req
    };
    assert_eq!(cache_key(rule, &shouting).as_ref(), Ok(&key), "host case");
    let url = key.to_url();
    let parsed =
        url::Url::parse(&url).unwrap_or_else(|e| panic!("to_url is no URL ({e}): {url:?}"));
    let last = parsed.query_pairs().last().map(|(n, _)| n.into_owned());
    assert_eq!(last.as_deref(), Some("__tg"), "{url:?}");
}
