use super::*;
use proptest::prelude::*;

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn condition(request: &[(&str, &str)], entry: &[(&str, &str)]) -> ClientCondition {
    client_condition(&h(request), ResponseHeaders::origin(&h(entry)))
}

#[test]
fn entity_tags() {
    let t = parse_entity_tag("W/\"a\"").unwrap();
    assert!(t.weak && t.opaque == "a");
    assert!(parse_entity_tag("\"\"").is_some());
    for bad in ["a", "\"a", "w/\"a\"", "\"a\"b\"", "W/ \"a\""] {
        assert!(parse_entity_tag(bad).is_none(), "{bad}");
    }
    // RFC 9110 §8.8.3.2's table.
    let (w1, w2, s1) = (
        parse_entity_tag("W/\"1\"").unwrap(),
        parse_entity_tag("W/\"2\"").unwrap(),
        parse_entity_tag("\"1\"").unwrap(),
    );
    assert!(!w1.strong_eq(&w1) && w1.weak_eq(&w1));
    assert!(!w1.strong_eq(&w2) && !w1.weak_eq(&w2));
    assert!(!w1.strong_eq(&s1) && w1.weak_eq(&s1));
    assert!(s1.strong_eq(&s1) && s1.weak_eq(&s1));
}

#[test]
fn if_none_match_uses_the_weak_comparison() {
    let entry = [("etag", "\"v1\"")];
    assert_eq!(
        condition(&[("if-none-match", "\"v1\"")], &entry),
        ClientCondition::NotModified
    );
    assert_eq!(
        condition(&[("if-none-match", "W/\"v1\"")], &entry),
        ClientCondition::NotModified
    );
    assert_eq!(
        condition(&[("if-none-match", "\"x\", W/\"v1\"")], &entry),
        ClientCondition::NotModified
    );
    assert_eq!(
        condition(
            &[("if-none-match", "\"x\""), ("if-none-match", "\"v1\"")],
            &entry
        ),
        ClientCondition::NotModified
    );
    assert_eq!(
        condition(&[("if-none-match", "\"a,b\", \"v1\"")], &entry),
        ClientCondition::NotModified
    );
    assert_eq!(
        condition(&[("if-none-match", "\"v2\"")], &entry),
        ClientCondition::Modified
    );
    assert_eq!(
        condition(&[("if-none-match", "*")], &entry),
        ClientCondition::NotModified
    );
    assert_eq!(
        condition(&[("if-none-match", "\"v1\"")], &[]),
        ClientCondition::Modified
    );
    // If-None-Match present: If-Modified-Since is ignored.
    assert_eq!(
        condition(
            &[
                ("if-none-match", "\"v2\""),
                ("if-modified-since", "Sun, 06 Nov 2094 08:49:37 GMT")
            ],
            &[
                ("etag", "\"v1\""),
                ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT")
            ]
        ),
        ClientCondition::Modified
    );
}

#[test]
fn if_modified_since() {
    let entry = [("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT")];
    let ims = |d| condition(&[("if-modified-since", d)], &entry);
    assert_eq!(
        ims("Sun, 06 Nov 1994 08:49:37 GMT"),
        ClientCondition::NotModified
    );
    assert_eq!(
        ims("Mon, 07 Nov 1994 08:49:37 GMT"),
        ClientCondition::NotModified
    );
    assert_eq!(
        ims("Sat, 05 Nov 1994 08:49:37 GMT"),
        ClientCondition::Modified
    );
    assert_eq!(ims("garbage"), ClientCondition::None);
    // Date stands in for a missing Last-Modified.
    assert_eq!(
        condition(
            &[("if-modified-since", "Mon, 07 Nov 1994 08:49:37 GMT")],
            &[("date", "Sun, 06 Nov 1994 08:49:37 GMT")]
        ),
        ClientCondition::NotModified
    );
    assert_eq!(condition(&[], &entry), ClientCondition::None);
}

#[test]
fn revalidation_sends_the_entry_validators() {
    let entry = h(&[
        ("etag", "W/\"v1\""),
        ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
    ]);
    assert_eq!(
        revalidation_headers(ResponseHeaders::origin(&entry)),
        h(&[
            ("if-none-match", "W/\"v1\""),
            ("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT")
        ])
    );
    assert!(revalidation_headers(ResponseHeaders::origin(&h(&[("etag", "v1")]))).is_empty());
}

#[test]
fn a_304_is_matched_to_its_entry() {
    let entry = h(&[
        ("etag", "\"v1\""),
        ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
    ]);
    let e = ResponseHeaders::origin(&entry);
    assert!(not_modified_matches(e, &h(&[("etag", "\"v1\"")])));
    assert!(!not_modified_matches(e, &h(&[("etag", "\"v2\"")])));
    assert!(not_modified_matches(e, &[]));
    assert!(not_modified_matches(
        e,
        &h(&[("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT")])
    ));
    assert!(!not_modified_matches(
        e,
        &h(&[("last-modified", "Mon, 07 Nov 1994 08:49:37 GMT")])
    ));
}

#[test]
fn a_304_refreshes_headers_except_framing() {
    let entry = h(&[
        ("content-type", "text/plain"),
        ("content-length", "10"),
        ("cache-control", "max-age=1"),
        ("x-a", "1"),
        ("x-a", "2"),
        ("etag", "\"v1\""),
    ]);
    let nm = h(&[
        ("cache-control", "max-age=60"),
        ("content-length", "0"),
        ("x-a", "3"),
        ("x-new", "n"),
        ("connection", "x-hop"),
        ("x-hop", "1"),
        ("age", "5"),
    ]);
    assert_eq!(
        refresh_headers(&entry, &nm),
        h(&[
            ("content-type", "text/plain"),
            ("content-length", "10"),
            ("etag", "\"v1\""),
            ("cache-control", "max-age=60"),
            ("x-a", "3"),
            ("x-new", "n"),
            ("age", "5"),
        ])
    );
}

#[test]
fn not_modified_keeps_the_listed_fields() {
    let served = h(&[
        ("content-type", "text/plain"),
        ("etag", "\"v1\""),
        ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ("cache-control", "max-age=60"),
        ("vary", "accept"),
        ("age", "3"),
        ("X-Cache-Status", "HIT"),
    ]);
    assert_eq!(
        not_modified_headers(&served),
        h(&[
            ("etag", "\"v1\""),
            ("cache-control", "max-age=60"),
            ("vary", "accept"),
            ("age", "3"),
            ("X-Cache-Status", "HIT"),
        ])
    );
    let no_etag = h(&[("last-modified", "x")]);
    assert_eq!(not_modified_headers(&no_etag), no_etag);
}

proptest! {
    #[test]
    fn never_panics(inm in ".{0,60}", ims in ".{0,40}", etag in ".{0,20}") {
        let _ = condition(&[("if-none-match", &inm), ("if-modified-since", &ims)], &[("etag", &etag)]);
        let _ = condition(&[("if-modified-since", &ims)], &[("last-modified", &etag)]);
        let entry = h(&[("etag", &etag)]);
        let _ = not_modified_matches(ResponseHeaders::origin(&entry), &h(&[("etag", &inm)]));
    }
}

#[test]
fn a_refresh_is_stored_unless_it_changes_nothing_on_an_always_stale_entry() {
    use std::time::Duration;
    let lifetimes = |fresh: u64, always: bool| Lifetimes {
        fresh: Duration::from_secs(fresh),
        stale_while_revalidate: Duration::ZERO,
        stale_if_error: Duration::ZERO,
        always_revalidate: always,
        stale_forbidden: always,
        explicit: true,
    };
    let before = h(&[
        ("etag", "\"v1\""),
        ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
    ]);
    let same = h(&[
        ("date", "Mon, 07 Nov 1994 08:49:37 GMT"),
        ("etag", "\"v1\""),
    ]);
    let changed = h(&[("etag", "\"v1\""), ("x-new", "1")]);
    assert!(!refresh_worth_storing(&before, &same, &lifetimes(0, false)));
    assert!(!refresh_worth_storing(&before, &same, &lifetimes(60, true)));
    assert!(refresh_worth_storing(
        &before,
        &changed,
        &lifetimes(0, false)
    ));
    assert!(refresh_worth_storing(&before, &same, &lifetimes(60, false)));
    // A refresh restarts a stale-while-revalidate window.
    let swr = Lifetimes {
        stale_while_revalidate: Duration::from_secs(30),
        ..lifetimes(0, false)
    };
    assert!(refresh_worth_storing(&before, &same, &swr));
}
