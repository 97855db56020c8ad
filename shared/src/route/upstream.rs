//! The origin URL a matched request is forwarded to.

use url::Url;

use crate::problem::Problem;

/// Longest upstream URL we build, in bytes (base + path + query).
pub const MAX_UPSTREAM_URL_LEN: usize = 16 * 1024;

/// Why an upstream URL could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// The base URL is not `http` or `https`.
    #[error("upstream base URL must use http or https")]
    UnsupportedScheme,
    /// The base URL has a query or fragment, which the request's would clash with.
    #[error("upstream base URL must not have a query or fragment")]
    BaseHasQueryOrFragment,
    /// The strip prefix does not start with `/`.
    #[error("strip_prefix must be an absolute path starting with `/`, such as `/api`")]
    InvalidStripPrefix,
    /// The request path matched the route but does not start with its strip prefix.
    #[error("request path does not start with the route's strip_prefix on a segment boundary")]
    PrefixNotMatched,
    /// The request path does not start with `/`.
    #[error("request path must start with `/`")]
    PathNotAbsolute,
    /// The request path has a `.` or `..` segment (possibly percent-encoded).
    #[error("request path must not contain `.` or `..` segments")]
    DotSegment,
    /// The request path would be rewritten by URL parsing.
    #[error("request path contains characters that must be percent-encoded (or a backslash)")]
    InvalidPath,
    /// The query would be rewritten by URL parsing.
    #[error("query string contains characters that must be percent-encoded")]
    InvalidQuery,
    /// The URL would exceed [`MAX_UPSTREAM_URL_LEN`].
    #[error("request URL is too long; at most {max} bytes are forwarded")]
    TooLong {
        /// The limit.
        max: usize,
    },
}

impl UpstreamError {
    /// Whether the client's request caused this (400) rather than the route
    /// configuration (500).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Self::PathNotAbsolute
                | Self::DotSegment
                | Self::InvalidPath
                | Self::InvalidQuery
                | Self::TooLong { .. }
        )
    }

    /// The problem to answer with. Configuration errors say only that the
    /// gateway is misconfigured: the client has no use for our origin setup.
    pub fn to_problem(&self) -> Problem {
        if self.is_client_error() {
            let status = if matches!(self, Self::TooLong { .. }) {
                414
            } else {
                400
            };
            Problem::new(status, "invalid-request-target", "Invalid request target")
                .with_detail(self.to_string())
        } else {
            Problem::new(500, "gateway-misconfigured", "Gateway misconfigured")
                .with_detail("This route cannot be forwarded; the gateway operator has been told.")
        }
    }
}

/// Builds the origin URL for a request.
///
/// `upstream_url(base, strip_prefix, path, query)`: take the request path,
/// remove the route's `strip_prefix` (only on a segment boundary), append it
/// to the base URL's path with exactly one `/` between them, and keep the raw
/// query byte-for-byte:
///
/// | base                    | strip_prefix | request          | upstream                     |
/// |-------------------------|--------------|------------------|------------------------------|
/// | `https://o.example/base`| –            | `/users?a=1`     | `https://o.example/base/users?a=1` |
/// | `https://o.example/base/`| `/api`      | `/api/users`     | `https://o.example/base/users` |
/// | `https://o.example`     | `/api`       | `/api`           | `https://o.example/`         |
///
/// The path and query are never silently rewritten: if URL parsing would
/// change them (dot segments that could climb out of the base path, a
/// backslash, characters that must be percent-encoded), the result is an
/// error instead, so the origin sees exactly what the client sent.
///
/// `path` is the raw request path (no query); `raw_query` the raw query
/// without its `?` (`Some("")` for a bare `?`, which is kept).
pub fn upstream_url(
    base: &Url,
    strip_prefix: Option<&str>,
    path: &str,
    raw_query: Option<&str>,
) -> Result<Url, UpstreamError> {
    if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
        return Err(UpstreamError::UnsupportedScheme);
    }
    if base.query().is_some() || base.fragment().is_some() {
        return Err(UpstreamError::BaseHasQueryOrFragment);
    }
    let total = base
        .as_str()
        .len()
        .saturating_add(path.len())
        .saturating_add(raw_query.map_or(0, |q| q.len().saturating_add(1)));
    if total > MAX_UPSTREAM_URL_LEN {
        return Err(UpstreamError::TooLong {
            max: MAX_UPSTREAM_URL_LEN,
        });
    }
    if !path.starts_with('/') {
        return Err(UpstreamError::PathNotAbsolute);
    }
    let rest = match strip_prefix {
        Some(prefix) => strip(prefix, path)?,
        None => path,
    };
    if rest.split('/').any(is_dot_segment) {
        return Err(UpstreamError::DotSegment);
    }

    let mut joined = base.path().trim_end_matches('/').to_owned();
    joined.push_str(rest);
    if joined.is_empty() {
        joined.push('/');
    }

    let mut url = base.clone();
    url.set_path(&joined);
    url.set_query(raw_query);
    // `set_path`/`set_query` percent-encode and normalise what they must;
    // anything they changed would not be what the client sent.
    if url.path() != joined {
        return Err(UpstreamError::InvalidPath);
    }
    if url.query() != raw_query {
        return Err(UpstreamError::InvalidQuery);
    }
    Ok(url)
}

/// `path` without `prefix`, which must end on a segment boundary: `/api`
/// strips `/api` and `/api/x` but not `/apix`. `""` and `/` strip nothing.
fn strip<'a>(prefix: &str, path: &'a str) -> Result<&'a str, UpstreamError> {
    if prefix.is_empty() {
        return Ok(path);
    }
    if !prefix.starts_with('/') {
        return Err(UpstreamError::InvalidStripPrefix);
    }
    let prefix = prefix.trim_end_matches('/');
    let rest = path
        .strip_prefix(prefix)
        .ok_or(UpstreamError::PrefixNotMatched)?;
    if rest.is_empty() || rest.starts_with('/') {
        Ok(rest)
    } else {
        Err(UpstreamError::PrefixNotMatched)
    }
}

/// The segments URL parsing treats as `.` or `..` (WHATWG URL also decodes `%2e`).
fn is_dot_segment(seg: &str) -> bool {
    let lower = seg.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "." | ".." | "%2e" | ".%2e" | "%2e." | "%2e%2e"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn base(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn up(
        b: &str,
        strip: Option<&str>,
        path: &str,
        q: Option<&str>,
    ) -> Result<String, UpstreamError> {
        upstream_url(&base(b), strip, path, q).map(|u| u.to_string())
    }

    #[test]
    fn joins_with_exactly_one_slash() {
        let want = Ok("https://o.example/base/users".to_owned());
        assert_eq!(up("https://o.example/base", None, "/users", None), want);
        assert_eq!(up("https://o.example/base/", None, "/users", None), want);
        assert_eq!(up("https://o.example/base//", None, "/users", None), want);
        assert_eq!(
            up("https://o.example", None, "/users", None),
            Ok("https://o.example/users".into())
        );
        assert_eq!(
            up("https://o.example/", None, "/", None),
            Ok("https://o.example/".into())
        );
        assert_eq!(
            up("https://o.example/base", None, "/", None),
            Ok("https://o.example/base/".into())
        );
        assert_eq!(
            up("http://o.example:8080/b", None, "/x/", None),
            Ok("http://o.example:8080/b/x/".into())
        );
    }

    #[test]
    fn strips_prefix_on_segment_boundary_only() {
        let b = "https://o.example/base";
        assert_eq!(
            up(b, Some("/api"), "/api/users", None),
            Ok("https://o.example/base/users".into())
        );
        assert_eq!(
            up(b, Some("/api/"), "/api/users", None),
            Ok("https://o.example/base/users".into())
        );
        assert_eq!(
            up(b, Some("/api"), "/api", None),
            Ok("https://o.example/base".into())
        );
        assert_eq!(
            up(b, Some("/api"), "/api/", None),
            Ok("https://o.example/base/".into())
        );
        assert_eq!(
            up("https://o.example", Some("/api"), "/api", None),
            Ok("https://o.example/".into())
        );
        assert_eq!(
            up(b, Some("/"), "/x", None),
            Ok("https://o.example/base/x".into())
        );
        assert_eq!(
            up(b, Some(""), "/x", None),
            Ok("https://o.example/base/x".into())
        );
        assert_eq!(
            up(b, Some("/api"), "/apix", None),
            Err(UpstreamError::PrefixNotMatched)
        );
        assert_eq!(
            up(b, Some("/api"), "/other", None),
            Err(UpstreamError::PrefixNotMatched)
        );
        assert_eq!(
            up(b, Some("api"), "/api", None),
            Err(UpstreamError::InvalidStripPrefix)
        );
    }

    #[test]
    fn query_is_preserved_byte_for_byte() {
        let b = "https://o.example/base";
        for q in [
            "a=1&b=2",
            "",
            "x=%2F%20&&=",
            "a=b=c?d/e",
            "q=caf%C3%A9",
            "sort=-name,+id",
        ] {
            let url = upstream_url(&base(b), None, "/p", Some(q)).unwrap();
            assert_eq!(url.query(), Some(q));
            assert_eq!(url.as_str(), format!("https://o.example/base/p?{q}"));
        }
        assert_eq!(
            upstream_url(&base(b), None, "/p", None).unwrap().query(),
            None
        );
    }

    #[test]
    fn raw_path_bytes_are_kept() {
        assert_eq!(
            up("https://o.example", None, "/a%2Fb/%41//c;v=1", None),
            Ok("https://o.example/a%2Fb/%41//c;v=1".into())
        );
    }

    #[test]
    fn rejects_rewritten_or_escaping_paths() {
        let b = "https://o.example/base";
        for p in ["/../secret", "/a/./b", "/a/%2e%2E/x", "/.%2e", "/%2e"] {
            assert_eq!(up(b, None, p, None), Err(UpstreamError::DotSegment), "{p}");
        }
        for p in ["/a\\b", "/a b", "/a?b", "/a#b", "/caf\u{e9}", "/a\r\nX: y"] {
            assert_eq!(up(b, None, p, None), Err(UpstreamError::InvalidPath), "{p}");
        }
        for q in ["a b", "a#b", "x='1'", "\u{e9}", "a\nb"] {
            assert_eq!(
                up(b, None, "/p", Some(q)),
                Err(UpstreamError::InvalidQuery),
                "{q:?}"
            );
        }
        assert_eq!(up(b, None, "p", None), Err(UpstreamError::PathNotAbsolute));
        assert_eq!(up(b, None, "", None), Err(UpstreamError::PathNotAbsolute));
    }

    #[test]
    fn rejects_bad_bases_and_long_urls() {
        assert_eq!(
            up("ftp://o.example/", None, "/", None),
            Err(UpstreamError::UnsupportedScheme)
        );
        assert_eq!(
            up("mailto:x@y", None, "/", None),
            Err(UpstreamError::UnsupportedScheme)
        );
        assert_eq!(
            up("https://o.example/?a", None, "/", None),
            Err(UpstreamError::BaseHasQueryOrFragment)
        );
        assert_eq!(
            up("https://o.example/#f", None, "/", None),
            Err(UpstreamError::BaseHasQueryOrFragment)
        );
        let long = format!("/{}", "a".repeat(MAX_UPSTREAM_URL_LEN));
        assert_eq!(
            up("https://o.example", None, &long, None),
            Err(UpstreamError::TooLong {
                max: MAX_UPSTREAM_URL_LEN
            })
        );
    }

    #[test]
    fn problems_do_not_leak_configuration() {
        let p = UpstreamError::PrefixNotMatched.to_problem();
        assert_eq!(p.status, 500);
        assert!(!p.to_json().contains("strip_prefix"));
        assert_eq!(UpstreamError::DotSegment.to_problem().status, 400);
        assert_eq!(UpstreamError::TooLong { max: 1 }.to_problem().status, 414);
    }

    proptest! {
        #[test]
        fn never_panics_and_preserves_what_it_accepts(
            path in "\\PC{0,40}|[/a.%2eE?#\\\\]{0,20}",
            query in proptest::option::of("\\PC{0,30}"),
            strip in proptest::option::of("[/a]{0,5}"),
        ) {
            let b = base("https://o.example/base/");
            if let Ok(url) = upstream_url(&b, strip.as_deref(), &path, query.as_deref()) {
                prop_assert_eq!(url.query(), query.as_deref());
                prop_assert!(url.path().starts_with("/base"));
                prop_assert!(url.path().ends_with(path.trim_start_matches(strip.as_deref().unwrap_or("").trim_end_matches('/'))));
            }
        }
    }
}
