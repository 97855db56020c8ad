//! Invalidation after unsafe requests (RFC 9111 §4.4).
//!
//! A non-error answer (2xx or 3xx) to an unsafe method — anything but `GET`,
//! `HEAD`, `OPTIONS` and `TRACE`, including methods the gateway does not
//! know — invalidates the stored responses of the request's target URI, and
//! of the URIs in the response's `Location` and `Content-Location` headers.
//! Those two are resolved against the target URI and used only when they have
//! the same origin (scheme, host and port): otherwise anyone able to answer
//! for one host could evict another's entries.
//!
//! The adapter deletes, for each target, every stored variant a `GET` of it
//! may have left ([`super::key::CacheKey::resource_prefix`]); this module
//! only decides which URLs. Header values are bounded
//! ([`MAX_HEADER_VALUE_LEN`]) and garbage is ignored, never a panic.
//!
//! ```
//! use tidegate_policy::cache::invalidation_targets;
//! use url::Url;
//!
//! let url = Url::parse("https://api.example.com/orders").unwrap();
//! let headers = vec![
//!     ("location".to_owned(), "/orders/42".to_owned()),
//!     ("content-location".to_owned(), "https://evil.example/x".to_owned()),
//! ];
//! let targets: Vec<String> = invalidation_targets("POST", 201, &url, &headers)
//!     .iter()
//!     .map(|u| u.to_string())
//!     .collect();
//! // The target URI and the same-host Location; the other host is ignored.
//! assert_eq!(
//!     targets,
//!     ["https://api.example.com/orders", "https://api.example.com/orders/42"]
//! );
//! // Errors and safe methods invalidate nothing.
//! assert!(invalidation_targets("POST", 500, &url, &headers).is_empty());
//! assert!(invalidation_targets("GET", 200, &url, &headers).is_empty());
//! ```

use url::Url;

use super::key::MAX_URL_PART_LEN;
use super::{first_header, Headers};

/// Longest `Location` or `Content-Location` value considered, in bytes;
/// longer ones are ignored.
pub const MAX_HEADER_VALUE_LEN: usize = MAX_URL_PART_LEN;

/// Most URLs one answer invalidates: the target URI, `Location` and
/// `Content-Location`.
pub const MAX_TARGETS: usize = 3;

/// Whether `method` is safe (RFC 9110 §9.2.1): `GET`, `HEAD`, `OPTIONS` or
/// `TRACE`. Method names are case-sensitive, so `get` is unknown and unsafe.
pub fn is_safe_method(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE")
}

/// Whether an answer with `status` to a `method` request invalidates:
/// an unsafe method and a non-error status (200 to 399).
pub fn invalidates(method: &str, status: u16) -> bool {
    !is_safe_method(method) && (200..400).contains(&status)
}

/// Whether `a` and `b` have the same origin: scheme, host and port (the
/// scheme's default port when none is given).
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().is_some()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The URLs whose stored responses an answer invalidates (RFC 9111 §4.4):
/// none unless [`invalidates`]; else the request URL, then the same-origin
/// `Location` and `Content-Location` (first value of each), resolved against
/// it; fragments dropped, duplicates removed, at most `MAX_TARGETS`.
pub fn invalidation_targets(
    method: &str,
    status: u16,
    request_url: &Url,
    response_headers: &Headers,
) -> Vec<Url> {
    // A URL without a host (an opaque origin) names nothing the cache holds.
    if !invalidates(method, status) || request_url.host_str().is_none() {
        return Vec::new();
    }
    let mut target = request_url.clone();
    target.set_fragment(None);
    let mut targets = vec![target];
    for name in ["location", "content-location"] {
        let Some(value) = first_header(response_headers, name) else {
            continue;
        };
        let Some(mut url) = resolve(request_url, value) else {
            continue;
        };
        url.set_fragment(None);
        if same_origin(request_url, &url) && !targets.contains(&url) {
            targets.push(url);
        }
    }
    targets.truncate(MAX_TARGETS);
    targets
}

/// A header value resolved against `base`, if it is a usable URI reference.
fn resolve(base: &Url, value: &str) -> Option<Url> {
    let value = value.trim();
    if value.is_empty() || value.len() > MAX_HEADER_VALUE_LEN {
        return None;
    }
    let url = base.join(value).ok()?;
    matches!(url.scheme(), "http" | "https").then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn targets(method: &str, status: u16, req: &str, headers: &[(&str, &str)]) -> Vec<String> {
        invalidation_targets(method, status, &url(req), &h(headers))
            .iter()
            .map(Url::to_string)
            .collect()
    }

    #[test]
    fn unsafe_methods_with_non_error_status_invalidate_the_target() {
        for method in ["POST", "PUT", "PATCH", "DELETE", "PURGE", "get", "CONNECT"] {
            for status in [200, 201, 204, 301, 303, 399] {
                assert_eq!(
                    targets(method, status, "https://a.example/x?q=1", &[]),
                    ["https://a.example/x?q=1"],
                    "{method} {status}"
                );
            }
        }
    }

    #[test]
    fn safe_methods_and_errors_do_not() {
        for method in ["GET", "HEAD", "OPTIONS", "TRACE"] {
            assert!(targets(method, 200, "https://a.example/x", &[]).is_empty());
        }
        for status in [0, 100, 101, 199, 400, 404, 409, 500, 503, 999] {
            assert!(targets("POST", status, "https://a.example/x", &[]).is_empty());
        }
    }

    #[test]
    fn location_and_content_location_on_the_same_origin() {
        let got = targets(
            "POST",
            201,
            "https://a.example/orders",
            &[
                ("Location", "/orders/1#frag"),
                ("Content-Location", "https://A.EXAMPLE:443/orders/1/view"),
            ],
        );
        assert_eq!(
            got,
            [
                "https://a.example/orders",
                "https://a.example/orders/1",
                "https://a.example/orders/1/view"
            ]
        );
        // Relative to the request path.
        let got = targets(
            "PUT",
            200,
            "https://a.example/a/b",
            &[("location", "c?x=1")],
        );
        assert_eq!(got, ["https://a.example/a/b", "https://a.example/a/c?x=1"]);
    }

    #[test]
    fn other_origins_are_ignored() {
        for other in [
            "https://b.example/x",
            "http://a.example/x",
            "https://a.example:8443/x",
            "//b.example/x",
            "mailto:x@a.example",
            "data:text/plain,x",
        ] {
            assert_eq!(
                targets("POST", 200, "https://a.example/x?y", &[("location", other)]),
                ["https://a.example/x?y"],
                "{other}"
            );
        }
    }

    #[test]
    fn garbage_and_duplicates() {
        let long = format!("/{}", "a".repeat(MAX_HEADER_VALUE_LEN));
        for bad in ["", "   ", "http://[::1", "https://", long.as_str()] {
            assert_eq!(
                targets("DELETE", 204, "https://a.example/x", &[("location", bad)]),
                ["https://a.example/x"],
                "{bad:?}"
            );
        }
        // The same URL twice, and only the first value of a repeated header.
        let got = targets(
            "POST",
            200,
            "https://a.example/x#f",
            &[
                ("location", "/x"),
                ("content-location", "/y"),
                ("content-location", "/z"),
            ],
        );
        assert_eq!(got, ["https://a.example/x", "https://a.example/y"]);
    }

    #[test]
    fn origin_comparison() {
        assert!(same_origin(
            &url("https://a.example/x"),
            &url("https://a.example:443/y")
        ));
        assert!(!same_origin(
            &url("https://a.example/x"),
            &url("https://a.example:444/x")
        ));
        assert!(!same_origin(&url("data:,x"), &url("data:,x")));
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_bounded(
            method in "[A-Za-z]{0,8}",
            status in any::<u16>(),
            path in "[ -~]{0,40}",
            headers in proptest::collection::vec(
                (prop_oneof![
                    Just("location".to_owned()),
                    Just("Content-Location".to_owned()),
                    "[a-z-]{1,12}",
                ], any::<String>()),
                0..6,
            ),
        ) {
            let base = Url::parse("https://a.example/").unwrap();
            let request = base.join(&path).unwrap_or(base);
            let got = invalidation_targets(&method, status, &request, &headers);
            prop_assert!(got.len() <= MAX_TARGETS);
            prop_assert!(got.iter().all(|u| same_origin(&request, u)));
            if !got.is_empty() {
                prop_assert!(invalidates(&method, status));
            }
        }
    }
}
