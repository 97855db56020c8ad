use std::time::Duration;

use super::*;
use crate::route::Method;

fn rule(s: &str) -> OriginRule {
    OriginRule::parse(s).unwrap()
}

fn policy(origins: &[&str], credentials: bool) -> CorsPolicy {
    let any = origins == ["*"];
    CorsPolicy::new(
        any,
        if any {
            vec![]
        } else {
            origins.iter().map(|o| rule(o)).collect()
        },
        vec![Method::Get, Method::Post, Method::Delete],
        Some(vec!["Authorization".into(), "content-type".into()]),
        vec!["X-Total-Count".into()],
        credentials,
        Duration::from_secs(600),
    )
}

fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn pre<'a>(origin: &'a str, method: &'a str, headers: Option<&'a str>) -> PreflightRequest<'a> {
    PreflightRequest {
        origin,
        method,
        headers,
    }
}

#[test]
fn exact_origins_parse_only_in_serialized_form() {
    assert_eq!(
        rule("https://app.example.com"),
        OriginRule::Exact("https://app.example.com".into())
    );
    assert!(rule("http://localhost:3000").matches("http://localhost:3000"));
    for (text, fixed) in [
        ("https://App.example.com", "https://app.example.com"),
        ("https://app.example.com/", "https://app.example.com"),
        ("https://app.example.com:443", "https://app.example.com"),
        ("https://app.example.com/path", "https://app.example.com"),
    ] {
        assert_eq!(
            OriginRule::parse(text),
            Err(OriginRuleError::NotSerialized(fixed.into())),
            "{text}"
        );
    }
    assert_eq!(OriginRule::parse("null"), Err(OriginRuleError::Null));
    for bad in [
        "app.example.com",
        "ftp://a.example.com",
        "https://",
        "file:///x",
    ] {
        assert_eq!(
            OriginRule::parse(bad),
            Err(OriginRuleError::NotAnOrigin),
            "{bad}"
        );
    }
}

#[test]
fn subdomain_patterns_match_whole_labels_only() {
    let r = rule("https://*.example.com");
    for ok in ["https://a.example.com", "https://a-b.c9.example.com"] {
        assert!(r.matches(ok), "{ok}");
    }
    for bad in [
        "https://example.com",
        "https://evilexample.com",
        "https://.example.com",
        "https://a..example.com",
        "https://a.example.com.evil.com",
        "https://a.example.com:8443",
        "http://a.example.com",
        "https://A.example.com",
        "https://a_b.example.com",
        "https://a/.example.com",
        "https://a@b.example.com",
        "https://evil.com#.example.com",
        "null",
        "",
    ] {
        assert!(!r.matches(bad), "{bad}");
    }
    let ported = rule("https://*.example.com:8443");
    assert!(ported.matches("https://a.example.com:8443"));
    assert!(!ported.matches("https://a.example.com"));
    assert_eq!(ported.to_string(), "https://*.example.com:8443");
}

#[test]
fn subdomain_patterns_are_checked() {
    assert_eq!(
        OriginRule::parse("https://*.com"),
        Err(OriginRuleError::TooBroad)
    );
    assert_eq!(
        OriginRule::parse("https://a.*.example.com"),
        Err(OriginRuleError::MisplacedWildcard)
    );
    assert_eq!(
        OriginRule::parse("https://*.*.example.com"),
        Err(OriginRuleError::MisplacedWildcard)
    );
    assert_eq!(
        OriginRule::parse("https://*example.com"),
        Err(OriginRuleError::MisplacedWildcard)
    );
    assert_eq!(
        OriginRule::parse("https://*.Example.com"),
        Err(OriginRuleError::NotSerialized(
            "https://*.example.com".into()
        ))
    );
    assert_eq!(
        OriginRule::parse("https://*.example.com/"),
        Err(OriginRuleError::NotSerialized(
            "https://*.example.com".into()
        ))
    );
    assert!(OriginRule::parse("https://*.10.0.0.1").is_err());
}

#[test]
fn preflight_allowed_gets_exact_headers() {
    let p = policy(&["https://app.example.com"], true);
    let out = p.preflight(&pre(
        "https://app.example.com",
        "DELETE",
        Some("content-type, Authorization,content-type"),
    ));
    let PreflightOutcome::Allowed(headers) = out else {
        panic!("{out:?}")
    };
    assert_eq!(
        headers,
        vec![
            (
                "access-control-allow-origin".to_owned(),
                "https://app.example.com".to_owned()
            ),
            ("access-control-allow-credentials".into(), "true".into()),
            (
                "access-control-allow-methods".into(),
                "GET, POST, DELETE".into()
            ),
            (
                "access-control-allow-headers".into(),
                "content-type, authorization".into()
            ),
            ("access-control-max-age".into(), "600".into()),
            ("vary".into(), PREFLIGHT_VARY.into()),
        ]
    );
}

#[test]
fn preflight_refusals() {
    let p = policy(&["https://app.example.com", "https://*.example.org"], false);
    let refused = |req| match p.preflight(&req) {
        PreflightOutcome::Refused(r) => Some(r),
        PreflightOutcome::Allowed(_) => None,
    };
    assert_eq!(
        refused(pre("https://evil.example", "GET", None)),
        Some(CorsRefusal::Origin)
    );
    assert_eq!(
        refused(pre("https://evilexample.org", "GET", None)),
        Some(CorsRefusal::Origin)
    );
    assert_eq!(refused(pre("null", "GET", None)), Some(CorsRefusal::Origin));
    assert_eq!(
        refused(pre("https://a.example.org", "PUT", None)),
        Some(CorsRefusal::Method)
    );
    // Browsers compare method names case-sensitively.
    assert_eq!(
        refused(pre("https://a.example.org", "delete", None)),
        Some(CorsRefusal::Method)
    );
    assert_eq!(
        refused(pre("https://a.example.org", "GET", Some("x-secret"))),
        Some(CorsRefusal::Header)
    );
    assert_eq!(
        refused(pre("https://a.example.org", "GET", Some("bad header"))),
        Some(CorsRefusal::Malformed)
    );
    assert_eq!(
        refused(pre("https://a.example.org", "GET", Some("a\r\nb"))),
        Some(CorsRefusal::Malformed)
    );
    assert_eq!(
        refused(pre("https://a.example.org", "POST", Some(" , "))),
        None
    );
    let problem = CorsRefusal::Origin.to_problem();
    assert_eq!(problem.status, 403);
    assert!(!problem.to_json().contains("evil"));
}

#[test]
fn wildcard_origin_without_credentials() {
    let p = policy(&["*"], false);
    let PreflightOutcome::Allowed(headers) = p.preflight(&pre("https://any.example", "GET", None))
    else {
        panic!()
    };
    assert_eq!(get(&headers, "access-control-allow-origin"), Some("*"));
    assert_eq!(get(&headers, "access-control-allow-credentials"), None);
    assert_eq!(get(&headers, "access-control-allow-headers"), None);
    // Actual responses are the same for everyone: no Vary.
    for origin in [Some("https://any.example"), None] {
        let out = p.actual(origin);
        assert_eq!(get(&out, "access-control-allow-origin"), Some("*"));
        assert_eq!(get(&out, "vary"), None);
    }
    // An origin that could split a header is still never echoed anywhere.
    assert!(matches!(
        p.preflight(&pre("https://a\r\nx: y", "GET", None)),
        PreflightOutcome::Refused(CorsRefusal::Origin)
    ));
}

#[test]
fn wildcard_with_credentials_echoes_origin_never_null() {
    let p = CorsPolicy::new(
        true,
        vec![],
        vec![Method::Get],
        None,
        vec![],
        true,
        Duration::ZERO,
    );
    let out = p.actual(Some("https://a.example"));
    assert_eq!(
        get(&out, "access-control-allow-origin"),
        Some("https://a.example")
    );
    assert_eq!(get(&out, "vary"), Some("Origin"));
    assert_eq!(
        get(&p.actual(Some("null")), "access-control-allow-origin"),
        None
    );
}

#[test]
fn any_header_echoes_the_requested_ones() {
    let p = CorsPolicy::new(
        false,
        vec![rule("https://a.example.com")],
        vec![Method::Put],
        None,
        vec![],
        false,
        Duration::from_secs(5),
    );
    let PreflightOutcome::Allowed(headers) = p.preflight(&pre(
        "https://a.example.com",
        "PUT",
        Some("x-one,authorization"),
    )) else {
        panic!()
    };
    assert_eq!(
        get(&headers, "access-control-allow-headers"),
        Some("x-one, authorization")
    );
    assert_eq!(get(&headers, "access-control-max-age"), Some("5"));
}

#[test]
fn actual_requests() {
    let p = policy(&["https://app.example.com"], true);
    let out = p.actual(Some("https://app.example.com"));
    assert_eq!(get(&out, "vary"), Some("Origin"));
    assert_eq!(
        get(&out, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(get(&out, "access-control-allow-credentials"), Some("true"));
    let expose = get(&out, "access-control-expose-headers").unwrap();
    for name in [
        "ratelimit",
        "ratelimit-policy",
        "retry-after",
        "x-request-id",
        "x-total-count",
    ] {
        assert!(expose.split(", ").any(|n| n == name), "{expose}");
    }
    // Disallowed or absent origin: only Vary.
    for origin in [Some("https://evil.example"), None] {
        assert_eq!(
            p.actual(origin),
            vec![("vary".to_owned(), "Origin".to_owned())]
        );
    }
}

#[test]
fn expose_star_only_without_credentials() {
    let make = |credentials| {
        CorsPolicy::new(
            false,
            vec![rule("https://a.example.com")],
            vec![Method::Get],
            Some(vec![]),
            vec!["*".into()],
            credentials,
            Duration::ZERO,
        )
    };
    let out = make(false).actual(Some("https://a.example.com"));
    assert_eq!(get(&out, "access-control-expose-headers"), Some("*"));
    let out = make(true).actual(Some("https://a.example.com"));
    assert_eq!(
        get(&out, "access-control-expose-headers"),
        Some(GATEWAY_EXPOSED_HEADERS.join(", ").as_str())
    );
}

#[test]
fn reads_preflights() {
    let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).into(), (*b).into()))
            .collect()
    };
    let headers = h(&[
        ("Origin", "https://a.example"),
        ("Access-Control-Request-Method", "PUT"),
        ("access-control-request-headers", "x-a"),
    ]);
    assert_eq!(
        PreflightRequest::from_headers(&headers),
        Some(pre("https://a.example", "PUT", Some("x-a")))
    );
    assert_eq!(
        PreflightRequest::from_headers(&h(&[("Origin", "https://a.example")])),
        None
    );
    assert_eq!(
        PreflightRequest::from_headers(&h(&[("access-control-request-method", "GET")])),
        None
    );
}

#[test]
fn vary_merging() {
    assert_eq!(merge_vary(None, "Origin"), "Origin");
    assert_eq!(merge_vary(Some(""), "Origin"), "Origin");
    assert_eq!(
        merge_vary(Some("Accept-Encoding"), "Origin"),
        "Accept-Encoding, Origin"
    );
    assert_eq!(
        merge_vary(Some("accept-encoding, origin"), "Origin"),
        "accept-encoding, origin"
    );
    assert_eq!(merge_vary(Some("*"), "Origin"), "*");
    assert_eq!(
        merge_vary(Some("Origin"), PREFLIGHT_VARY),
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn pattern_matches_only_real_subdomains(origin in "\\PC{0,40}|https://[a-z.]{0,12}example\\.com[:0-9]{0,5}") {
            let r = rule("https://*.example.com");
            if r.matches(&origin) {
                let host = origin.strip_prefix("https://").unwrap();
                prop_assert!(host.ends_with(".example.com"));
                prop_assert!(!host.contains([':', '/', '@', '#', '?']));
            }
        }

        #[test]
        fn answers_never_carry_unsafe_values(origin in "\\PC{0,30}", acrh in "\\PC{0,30}") {
            for p in [policy(&["*"], false), policy(&["https://*.example.com"], true)] {
                let mut all = p.actual(Some(&origin));
                if let PreflightOutcome::Allowed(h) = p.preflight(&pre(&origin, "GET", Some(&acrh))) {
                    all.extend(h);
                }
                for (_, v) in all {
                    prop_assert!(!v.contains(['\r', '\n', '\0']));
                }
            }
        }
    }
}
