use super::*;

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn conn(ip: &str, scheme: &str) -> ClientConnection {
    ClientConnection::from_headers(&h(&[("CF-Connecting-IP", ip)]), scheme)
}

fn spoofed() -> Vec<(String, String)> {
    h(&[
        ("Accept", "*/*"),
        ("X-Forwarded-For", "203.0.113.9"),
        ("x_forwarded_for", "203.0.113.8"),
        ("X-Real-IP", "203.0.113.9"),
        ("True-Client-IP", "203.0.113.9"),
        ("Forwarded", "for=203.0.113.9"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-FORWARDED-PROTO", "http"),
        ("X-Original-URL", "/admin"),
        ("X-Rewrite-URL", "/admin"),
        ("X-HTTP-Method-Override", "DELETE"),
        ("x-http_method-override", "DELETE"),
        ("X-Client-IP", "203.0.113.9"),
        ("X-Forwarded-Prefix", "/admin"),
        ("X-Method-Override", "DELETE"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("Tracestate", "a=b"),
    ])
}

#[test]
fn renders_forwarded_for_ipv4_and_ipv6() {
    assert_eq!(
        conn("192.0.2.60", "https").forwarded_element(),
        "for=192.0.2.60;proto=https"
    );
    assert_eq!(
        conn("2001:DB8:0:0::1", "http").forwarded_element(),
        "for=\"[2001:db8::1]\";proto=http"
    );
    for bad in [
        "",
        "unknown",
        "192.0.2.60, 10.0.0.1",
        "192.0.2.60\r\nx: y",
        "[::1]",
    ] {
        assert_eq!(
            conn(bad, "https").forwarded_element(),
            "for=unknown;proto=https",
            "{bad:?}"
        );
    }
    assert_eq!(ClientConnection::from_headers(&[], "https").ip, None);
}

#[test]
fn strips_client_claims_and_sets_our_own() {
    let mut headers = spoofed();
    let trace = h(&[("traceparent", "00-aa-bb-01")]);
    apply_client_forwarding(&mut headers, &[], &conn("198.51.100.7", "https"), &trace);
    assert_eq!(
        headers,
        h(&[
            ("Accept", "*/*"),
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=198.51.100.7;proto=https"),
            ("x-forwarded-proto", "https"),
            ("traceparent", "00-aa-bb-01"),
        ])
    );
}

#[test]
fn without_client_ip() {
    let mut headers = h(&[("x-forwarded-for", "1.2.3.4")]);
    apply_client_forwarding(
        &mut headers,
        &[],
        &ClientConnection::from_headers(&[], "http"),
        &[],
    );
    assert_eq!(
        headers,
        h(&[
            ("forwarded", "for=unknown;proto=http"),
            ("x-forwarded-proto", "http"),
        ])
    );
}

#[test]
fn allow_list_passes_exact_spellings_through() {
    let mut headers = spoofed();
    let allowed: Vec<String> = [
        "x-forwarded-host",
        "x-forwarded-for",
        "forwarded",
        "x-forwarded-proto",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    apply_client_forwarding(&mut headers, &allowed, &conn("2001:db8::1", "https"), &[]);
    assert_eq!(
        headers,
        h(&[
            ("Accept", "*/*"),
            ("X-Forwarded-For", "203.0.113.9, 2001:db8::1"),
            (
                "Forwarded",
                "for=203.0.113.9, for=\"[2001:db8::1]\";proto=https"
            ),
            ("X-Forwarded-Host", "evil.example"),
            ("X-FORWARDED-PROTO", "http"),
        ])
    );
}

#[test]
fn recognises_every_spelling() {
    for name in CLIENT_FORWARDING_HEADERS {
        assert!(is_client_forwarding_header(name));
        assert!(is_client_forwarding_header(&name.to_ascii_uppercase()));
        assert!(is_client_forwarding_header(&name.replace('-', "_")));
    }
    assert!(!is_client_forwarding_header("x-forwarded-fo"));
    assert!(!is_client_forwarding_header("x-forwarded-forx"));
}
