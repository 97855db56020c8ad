//! Cache keys: which requests share a stored response.
//!
//! Two requests get the same key iff they would get the same response under
//! the route's [`CacheRule`]:
//! - method: `HEAD` shares `GET`'s key; nothing else is cacheable;
//! - host lowercased, default port dropped; the scheme is not part of the
//!   key (the gateway serves one origin per host, over HTTPS);
//! - path as the URL parser serialised it (no decoding: `/a%2Fb` and `/a/b`
//!   may differ at the origin, so they stay apart); characters a URL cannot
//!   carry raw are percent-encoded;
//! - query parsed as `application/x-www-form-urlencoded`, filtered by
//!   `vary_query`, sorted by name (repeated names keep their order: origins
//!   read `?a=1&a=2` as 1 or as [1, 2], never as `?a=2&a=1`) and re-encoded
//!   canonically — so `a=%41` and `a=A` are one key, `+` and `%20` are both
//!   a space, and `%2B` stays a plus;
//! - the values of `vary_headers` (trimmed, inner whitespace collapsed), in
//!   rule order, an absent header distinct from an empty one;
//! - the caller's identity in [`CacheScope::Private`].
//!
//! [`CacheKey::to_url`] turns the key into a Workers Cache API key: the
//! readable `https://{host}{path}?{query}` plus `__tg=<SHA-256 of the whole
//! canonical key>` last. The hash covers everything, including vary values,
//! identity and any `__tg` the client sent itself, so equal URLs mean equal
//! keys and no client can reach another key's entry.

use percent_encoding::{percent_decode, percent_encode, utf8_percent_encode, AsciiSet, CONTROLS};
use sha2::{Digest, Sha256};

use super::rule::{CacheRule, CacheScope};
use super::{header_values, Headers};

/// Longest host accepted (a DNS name is at most 253 bytes, plus a port).
pub const MAX_HOST_LEN: usize = 300;
/// Longest path or query accepted, in bytes; longer requests are not cached.
pub const MAX_URL_PART_LEN: usize = 8_192;
/// Most query parameters accepted.
pub const MAX_QUERY_PARAMS: usize = 256;
/// Longest canonical key, in bytes (the Cache API URL stays well below
/// Cloudflare's URL limit).
pub const MAX_CANONICAL_LEN: usize = 16_384;

/// Name of the parameter carrying the key's hash in [`CacheKey::to_url`].
pub const HASH_PARAM: &str = "__tg";

/// Characters a path keeps raw: the WHATWG path percent-encode set (controls,
/// space, `"#<>?\`{}`), plus backslash. `%` stays as is, so an already
/// serialised path is unchanged.
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\');

/// Everything but RFC 3986 unreserved characters: the canonical encoding of
/// query names and values, vary values and identities.
const COMPONENT: &AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Why a request has no cache key (and so bypasses the cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CacheKeyError {
    /// Only `GET` and `HEAD` are cacheable.
    #[error("only GET and HEAD requests are cacheable")]
    MethodNotCacheable,
    /// A private-scope rule needs the caller's identity, and there is none.
    #[error("the cache is per caller, but the request has no caller identity")]
    MissingIdentity,
    /// The host is empty or not a valid host name.
    #[error("the request host is not a valid host name")]
    InvalidHost,
    /// The URL, or the key built from it, exceeds the size limits.
    #[error("the request is too large to be cached")]
    TooLarge,
}

/// The parts of a request the key is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestParts<'a> {
    /// The request method, as sent (methods are case-sensitive).
    pub method: &'a str,
    /// `https` or `http`, to know the default port.
    pub scheme: &'a str,
    /// The host, possibly with a port.
    pub host: &'a str,
    /// The path as serialised by a URL parser, starting with `/`.
    pub path: &'a str,
    /// The query without `?`, if any.
    pub query: Option<&'a str>,
    /// The request headers.
    pub headers: &'a Headers,
    /// The caller's identity, for private scope: use
    /// `auth::Identity::qualified_subject`, which cannot collide between
    /// callers (a bare subject can, across issuers and API key consumers).
    pub identity: Option<&'a str>,
}

impl<'a> RequestParts<'a> {
    /// The parts of a parsed URL.
    pub fn from_url(
        method: &'a str,
        url: &'a url::Url,
        headers: &'a Headers,
        identity: Option<&'a str>,
    ) -> Self {
        Self {
            method,
            scheme: url.scheme(),
            host: &url[url::Position::BeforeHost..url::Position::AfterPort],
            path: url.path(),
            query: url.query(),
            headers,
            identity,
        }
    }
}

/// A normalised cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The canonical form: `{host}{path}?{query}` on the first line, then one
    /// line per vary header (`h:{name}` or `h:{name}={value}`) and, in private
    /// scope, `id:{identity}`; every free-form part percent-encoded, so lines
    /// and separators cannot be forged.
    pub canonical: String,
}

impl CacheKey {
    /// A URL to use as the Workers Cache API key:
    /// `https://{host}{path}?{query}&__tg={sha256(canonical)}`.
    pub fn to_url(&self) -> String {
        let first_line = self
            .canonical
            .split_once('\n')
            .map_or(self.canonical.as_str(), |(first, _)| first);
        let sep = if first_line.ends_with('?') { "" } else { "&" };
        format!(
            "https://{first_line}{sep}{HASH_PARAM}={}",
            hex(&Sha256::digest(self.canonical.as_bytes()))
        )
    }

    /// What every key URL of the same resource starts with, whatever its
    /// vary values or caller: [`Self::to_url`] up to its hash parameter.
    pub fn resource_prefix(&self) -> String {
        let url = self.to_url();
        split_key_url(&url).map_or(url.clone(), |(resource, _)| resource.to_owned())
    }
}

/// A key URL made by [`CacheKey::to_url`], split into the resource part
/// (`https://{host}{path}?{query}&`) and the hex hash; `None` for anything
/// else. The decoder beside its encoder, for purges.
pub fn split_key_url(key_url: &str) -> Option<(&str, &str)> {
    let (resource, hash) = key_url.rsplit_once(HASH_PARAM)?;
    let hash = hash.strip_prefix('=')?;
    let well_formed = resource.starts_with("https://")
        && (resource.ends_with('&') || resource.ends_with('?'))
        && hash.len() == 64
        && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    well_formed.then_some((resource, hash))
}

/// Whether `key_url` is a stored variant (any vary values, any caller) of
/// the resource whose [`CacheKey::resource_prefix`] is `resource`.
pub fn is_variant_of(key_url: &str, resource: &str) -> bool {
    split_key_url(key_url).is_some_and(|(r, _)| r == resource)
}

/// Builds the cache key of `req` under `rule`.
pub fn cache_key(rule: &CacheRule, req: &RequestParts<'_>) -> Result<CacheKey, CacheKeyError> {
    if !matches!(req.method, "GET" | "HEAD") {
        return Err(CacheKeyError::MethodNotCacheable);
    }
    let identity = match rule.scope {
        CacheScope::Private => Some(
            req.identity
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .ok_or(CacheKeyError::MissingIdentity)?,
        ),
        CacheScope::Shared => None,
    };
    let host = normalize_host(req.scheme, req.host)?;
    if req.path.len() > MAX_URL_PART_LEN {
        return Err(CacheKeyError::TooLarge);
    }
    // A URL path always starts with `/`; without it the path would run into
    // the host in the canonical form.
    let slash = if req.path.starts_with('/') { "" } else { "/" };
    let path = format!("{slash}{}", utf8_percent_encode(req.path, PATH));
    let query = canonical_query(req.query.unwrap_or(""), rule.vary_query.as_deref())?;

    let mut canonical = format!("{host}{path}?{query}");
    for name in &rule.vary_headers {
        canonical.push_str("\nh:");
        canonical.push_str(&utf8_percent_encode(name, COMPONENT).to_string());
        if let Some(value) = vary_value(req.headers, name) {
            canonical.push('=');
            canonical.push_str(&utf8_percent_encode(&value, COMPONENT).to_string());
        }
        if canonical.len() > MAX_CANONICAL_LEN {
            return Err(CacheKeyError::TooLarge);
        }
    }
    if let Some(id) = identity {
        canonical.push_str("\nid:");
        canonical.push_str(&utf8_percent_encode(id, COMPONENT).to_string());
    }
    if canonical.len() > MAX_CANONICAL_LEN {
        return Err(CacheKeyError::TooLarge);
    }
    Ok(CacheKey { canonical })
}

/// Parses the host the way a URL parser does (lowercase, IDNA, IP address
/// forms), drops the scheme's default port, and rejects anything else — so
/// the host cannot inject URL syntax into the key.
fn normalize_host(scheme: &str, host: &str) -> Result<String, CacheKeyError> {
    if host.len() > MAX_HOST_LEN {
        return Err(CacheKeyError::TooLarge);
    }
    let (name, port) = split_port(host).ok_or(CacheKeyError::InvalidHost)?;
    let name = match url::Host::parse(name).map_err(|_| CacheKeyError::InvalidHost)? {
        url::Host::Domain(d) => {
            let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_');
            if d.is_empty() || !d.bytes().all(plain) {
                return Err(CacheKeyError::InvalidHost);
            }
            d
        }
        ip => ip.to_string(),
    };
    let default_port = if scheme.eq_ignore_ascii_case("http") {
        80
    } else {
        443
    };
    Ok(match port {
        Some(p) if p != default_port => format!("{name}:{p}"),
        _ => name,
    })
}

/// Splits `host[:port]` / `[v6][:port]`; `None` when the port is not a
/// number in 0–65535.
fn split_port(host: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = if host.starts_with('[') {
        match host.split_once(']') {
            Some((v6, "")) => (host.get(..v6.len() + 1)?, None),
            Some((v6, rest)) => (host.get(..v6.len() + 1)?, Some(rest.strip_prefix(':')?)),
            None => return None,
        }
    } else {
        match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    let port = match port {
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
        None => None,
    };
    Some((name, port))
}

/// Parses, filters, sorts and re-encodes a query string.
fn canonical_query(query: &str, keep: Option<&[String]>) -> Result<String, CacheKeyError> {
    if query.len() > MAX_URL_PART_LEN {
        return Err(CacheKeyError::TooLarge);
    }
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = form_decode(name);
        if let Some(keep) = keep {
            if !keep.iter().any(|k| k.as_bytes() == name.as_slice()) {
                continue;
            }
        }
        if pairs.len() >= MAX_QUERY_PARAMS {
            return Err(CacheKeyError::TooLarge);
        }
        pairs.push((name, form_decode(value)));
    }
    // Stable, by name only: reordering a repeated parameter's values would
    // let `?page=2&page=1` poison the entry of `?page=1&page=2`.
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let encoded: Vec<String> = pairs
        .iter()
        .map(|(n, v)| {
            format!(
                "{}={}",
                percent_encode(n, COMPONENT),
                percent_encode(v, COMPONENT)
            )
        })
        .collect();
    Ok(encoded.join("&"))
}

/// The query to send the origin for a `method` request on a route cached
/// under `rule`: for `GET` and `HEAD`, only the parameters `vary_query`
/// keeps, in the client's order and spelling; otherwise (and without
/// `vary_query`) the query as sent. `None` when nothing is left.
///
/// A stored response must depend only on what its key holds: a parameter
/// left out of the key but forwarded could be reflected by the origin into
/// an entry every other client is then served (cache poisoning through an
/// unkeyed input).
pub fn origin_query<'q>(
    rule: &CacheRule,
    method: &str,
    raw_query: Option<&'q str>,
) -> Option<std::borrow::Cow<'q, str>> {
    let raw = raw_query?;
    let keep = match (&rule.vary_query, method) {
        (Some(keep), "GET" | "HEAD") => keep,
        _ => return Some(raw.into()),
    };
    let kept: Vec<&str> = raw
        .split('&')
        .filter(|pair| {
            let name = form_decode(pair.split_once('=').map_or(*pair, |(n, _)| n));
            !pair.is_empty() && keep.iter().any(|k| k.as_bytes() == name.as_slice())
        })
        .collect();
    match kept.len() {
        0 => None,
        n if n == raw.split('&').count() => Some(raw.into()),
        _ => Some(kept.join("&").into()),
    }
}

/// `application/x-www-form-urlencoded` decoding to bytes: `+` is a space,
/// `%XX` a byte, and a `%` not followed by two hex digits stays literal.
fn form_decode(s: &str) -> Vec<u8> {
    let spaced: Vec<u8> = s
        .bytes()
        .map(|b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&spaced).collect()
}

/// The combined, whitespace-normalised value of header `name`, or `None` when
/// the request does not carry it.
fn vary_value(headers: &Headers, name: &str) -> Option<String> {
    let mut values = header_values(headers, name).peekable();
    values.peek()?;
    let joined: Vec<String> = values
        .map(|v| v.split_ascii_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    Some(joined.join(", "))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn rule() -> CacheRule {
        CacheRule::new(Duration::from_secs(60))
    }

    fn req<'a>(query: Option<&'a str>, headers: &'a Headers) -> RequestParts<'a> {
        RequestParts {
            method: "GET",
            scheme: "https",
            host: "api.example.com",
            path: "/v1/items",
            query,
            headers,
            identity: None,
        }
    }

    fn key(rule: &CacheRule, r: &RequestParts<'_>) -> String {
        cache_key(rule, r).unwrap().canonical
    }

    fn hdrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn basic_key_and_url() {
        let k = cache_key(&rule(), &req(Some("b=2&a=1"), &[])).unwrap();
        assert_eq!(k.canonical, "api.example.com/v1/items?a=1&b=2");
        let url = k.to_url();
        assert!(url.starts_with("https://api.example.com/v1/items?a=1&b=2&__tg="));
        assert_eq!(
            url.len(),
            "https://api.example.com/v1/items?a=1&b=2&__tg=".len() + 64
        );
        assert!(url::Url::parse(&url).is_ok());
        let empty = cache_key(&rule(), &req(None, &[])).unwrap();
        assert!(empty
            .to_url()
            .starts_with("https://api.example.com/v1/items?__tg="));
        assert_eq!(empty, cache_key(&rule(), &req(Some(""), &[])).unwrap());
    }

    #[test]
    fn methods() {
        let get = cache_key(&rule(), &req(None, &[])).unwrap();
        let head = cache_key(
            &rule(),
            &RequestParts {
                method: "HEAD",
                ..req(None, &[])
            },
        )
        .unwrap();
        assert_eq!(get, head);
        for m in ["POST", "PUT", "DELETE", "OPTIONS", "get"] {
            let r = RequestParts {
                method: m,
                ..req(None, &[])
            };
            assert_eq!(
                cache_key(&rule(), &r),
                Err(CacheKeyError::MethodNotCacheable)
            );
        }
    }

    #[test]
    fn host_normalization() {
        let base = key(&rule(), &req(None, &[]));
        for host in ["API.Example.COM", "api.example.com:443"] {
            assert_eq!(
                key(
                    &rule(),
                    &RequestParts {
                        host,
                        ..req(None, &[])
                    }
                ),
                base
            );
        }
        let other_port = key(
            &rule(),
            &RequestParts {
                host: "api.example.com:8443",
                ..req(None, &[])
            },
        );
        assert_ne!(other_port, base);
        let http = RequestParts {
            scheme: "http",
            host: "api.example.com:80",
            ..req(None, &[])
        };
        assert_eq!(key(&rule(), &http), base);
        for host in [
            "", "a/b", "a@b", "a b", ":443", "a?b", "a#b", "a:b", "a:99999", "[::1", "[::1]x",
            "a*b",
        ] {
            let r = RequestParts {
                host,
                ..req(None, &[])
            };
            assert_eq!(
                cache_key(&rule(), &r),
                Err(CacheKeyError::InvalidHost),
                "{host}"
            );
        }
        let v6 = RequestParts {
            host: "[2001:DB8:0::1]:443",
            ..req(None, &[])
        };
        assert!(key(&rule(), &v6).starts_with("[2001:db8::1]/v1"));
        let v6_port = RequestParts {
            host: "[::1]:8080",
            ..req(None, &[])
        };
        assert!(key(&rule(), &v6_port).starts_with("[::1]:8080/v1"));
        let idn = RequestParts {
            host: "Bücher.example",
            ..req(None, &[])
        };
        assert!(key(&rule(), &idn).starts_with("xn--bcher-kva.example/"));
    }

    #[test]
    fn path_is_not_decoded() {
        let enc = RequestParts {
            path: "/a%2Fb",
            ..req(None, &[])
        };
        let raw = RequestParts {
            path: "/a/b",
            ..req(None, &[])
        };
        assert_ne!(key(&rule(), &enc), key(&rule(), &raw));
        let odd = RequestParts {
            path: "/a b?c#d\n",
            ..req(None, &[])
        };
        assert_eq!(key(&rule(), &odd), "api.example.com/a%20b%3Fc%23d%0A?");
        let empty = RequestParts {
            path: "",
            ..req(None, &[])
        };
        assert_eq!(key(&rule(), &empty), "api.example.com/?");
        let relative = RequestParts {
            path: "x",
            ..req(None, &[])
        };
        assert_eq!(key(&rule(), &relative), "api.example.com/x?");
    }

    #[test]
    fn query_encoding_variants_share_a_key() {
        let k = |q| key(&rule(), &req(Some(q), &[]));
        assert_eq!(k("a=%41"), k("a=A"));
        assert_eq!(k("q=a+b"), k("q=a%20b"));
        assert_ne!(k("q=a+b"), k("q=a%2Bb"));
        assert_eq!(k("x=%c3%a9"), k("x=%C3%A9"));
        assert_eq!(k("flag"), k("flag="));
        assert_eq!(k("a=1&&b=2&"), k("b=2&a=1"));
        assert_eq!(k("bad=%zz"), k("bad=%25zz"));
        assert_ne!(k("a=1&a=2"), k("a=1"));
        // Repeated names keep their order (first-value origins differ).
        assert_ne!(k("a=2&a=1"), k("a=1&a=2"));
        assert_eq!(k("a=2&b=0&a=1"), k("b=0&a=2&a=1"));
        assert_eq!(k("q=a+b"), "api.example.com/v1/items?q=a%20b");
    }

    #[test]
    fn origin_query_forwards_only_keyed_params_on_get_and_head() {
        let r = rule().with_vary_query(["page", "sort"]);
        let q = |m, raw| origin_query(&r, m, raw).map(|c| c.into_owned());
        assert_eq!(
            q("GET", Some("utm=x&page=2&sort=a")),
            Some("page=2&sort=a".into())
        );
        assert_eq!(
            q("HEAD", Some("p%61ge=%32&evil=<b>")),
            Some("p%61ge=%32".into())
        );
        assert_eq!(
            q("GET", Some("page=1&page=2")),
            Some("page=1&page=2".into())
        );
        assert_eq!(q("GET", Some("utm=x&&ref=y")), None);
        assert_eq!(q("GET", Some("")), None);
        assert_eq!(q("GET", None), None);
        // Not cacheable: the origin gets what the client sent.
        assert_eq!(q("POST", Some("utm=x&page=2")), Some("utm=x&page=2".into()));
        // Without vary_query every parameter is keyed.
        let all = rule();
        assert_eq!(
            origin_query(&all, "GET", Some("a=1&b")).as_deref(),
            Some("a=1&b")
        );
    }

    #[test]
    fn vary_query_keeps_only_listed_params() {
        let r = rule().with_vary_query(["page", "sort"]);
        let a = key(&r, &req(Some("utm_source=x&page=2&sort=asc"), &[]));
        let b = key(&r, &req(Some("sort=asc&page=2&fbclid=123"), &[]));
        assert_eq!(a, b);
        assert_eq!(a, "api.example.com/v1/items?page=2&sort=asc");
        let none = rule().with_vary_query(Vec::<String>::new());
        assert_eq!(
            key(&none, &req(Some("a=1"), &[])),
            key(&none, &req(None, &[]))
        );
    }

    #[test]
    fn vary_headers() {
        let r = rule().with_vary_headers(["Accept-Language", "x-tenant"]);
        let h1 = hdrs(&[("accept-language", "  en-GB,   fr ")]);
        let h2 = hdrs(&[("Accept-Language", "en-GB, fr")]);
        assert_eq!(key(&r, &req(None, &h1)), key(&r, &req(None, &h2)));
        assert_eq!(
            key(&r, &req(None, &h2)),
            "api.example.com/v1/items?\nh:accept-language=en-GB%2C%20fr\nh:x-tenant"
        );
        let split = hdrs(&[("accept-language", "en-GB"), ("accept-language", "fr")]);
        assert_eq!(key(&r, &req(None, &split)), key(&r, &req(None, &h2)));
        let empty = hdrs(&[("x-tenant", "")]);
        assert_ne!(key(&r, &req(None, &empty)), key(&r, &req(None, &[])));
        // A header the rule does not vary on is ignored.
        let other = hdrs(&[("cookie", "a=b")]);
        assert_eq!(key(&r, &req(None, &other)), key(&r, &req(None, &[])));
    }

    #[test]
    fn private_scope_keys_per_identity() {
        let r = rule().with_scope(CacheScope::Private);
        assert_eq!(
            cache_key(&r, &req(None, &[])),
            Err(CacheKeyError::MissingIdentity)
        );
        let anon = RequestParts {
            identity: Some("  "),
            ..req(None, &[])
        };
        assert_eq!(cache_key(&r, &anon), Err(CacheKeyError::MissingIdentity));
        let alice = RequestParts {
            identity: Some("alice"),
            ..req(None, &[])
        };
        let bob = RequestParts {
            identity: Some("bob"),
            ..req(None, &[])
        };
        assert_ne!(key(&r, &alice), key(&r, &bob));
        assert!(key(&r, &alice).ends_with("\nid:alice"));
        // Shared scope ignores identity.
        assert_eq!(key(&rule(), &alice), key(&rule(), &bob));
    }

    #[test]
    fn key_urls_split_back_into_resource_and_hash() {
        let rule = rule().with_scope(CacheScope::Private);
        let none = hdrs(&[]);
        let as_caller = |path: &'static str, who: &'static str| {
            let mut r = req(Some("b=2&a=1"), &none);
            r.path = path;
            r.identity = Some(who);
            cache_key(&rule, &r).unwrap()
        };
        let alice = as_caller("/items/1", "alice");
        let url = alice.to_url();
        let (resource, hash) = split_key_url(&url).unwrap();
        assert_eq!(resource, alice.resource_prefix());
        assert_eq!(format!("{resource}{HASH_PARAM}={hash}"), url);
        // Another caller: another hash, the same resource.
        let bob = as_caller("/items/1", "bob");
        assert_ne!(bob.to_url(), url);
        assert!(is_variant_of(&bob.to_url(), resource));
        // Another path is not a variant, nor is one sharing a prefix.
        assert!(!is_variant_of(
            &as_caller("/items/10", "alice").to_url(),
            resource
        ));
        for junk in [
            "",
            "https://x/?__tg=zz",
            "https://x/?__tg=",
            "http://x/?__tg=00",
        ] {
            assert_eq!(split_key_url(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn forged_hash_param_does_not_collide() {
        let r = rule().with_vary_headers(["x-v"]);
        let h = hdrs(&[("x-v", "1")]);
        let real = cache_key(&r, &req(None, &h)).unwrap().to_url();
        let hash = real.rsplit_once("__tg=").unwrap().1.to_owned();
        let forged_q = format!("__tg={hash}");
        let forged = cache_key(&r, &req(Some(&forged_q), &[])).unwrap().to_url();
        assert_ne!(real, forged);
    }

    #[test]
    fn size_limits() {
        let long = "a=".to_owned() + &"x".repeat(MAX_URL_PART_LEN);
        assert_eq!(
            cache_key(&rule(), &req(Some(&long), &[])),
            Err(CacheKeyError::TooLarge)
        );
        let many = vec!["a=1"; MAX_QUERY_PARAMS + 1].join("&");
        assert_eq!(
            cache_key(&rule(), &req(Some(&many), &[])),
            Err(CacheKeyError::TooLarge)
        );
        // Params dropped by vary_query do not count.
        let r = rule().with_vary_query(["b"]);
        assert!(cache_key(&r, &req(Some(&many), &[])).is_ok());
        let big = hdrs(&[("x-big", &"\u{7f}".repeat(MAX_CANONICAL_LEN))]);
        let r = rule().with_vary_headers(["x-big"]);
        assert_eq!(
            cache_key(&r, &req(None, &big)),
            Err(CacheKeyError::TooLarge)
        );
        let long_host = "a".repeat(MAX_HOST_LEN + 1);
        let r = RequestParts {
            host: &long_host,
            ..req(None, &[])
        };
        assert_eq!(cache_key(&rule(), &r), Err(CacheKeyError::TooLarge));
    }

    #[test]
    fn from_url() {
        let url = url::Url::parse("https://user:pw@API.example.com:8443/p%20q?b=1&a=2").unwrap();
        let parts = RequestParts::from_url("GET", &url, &[], None);
        assert_eq!(parts.host, "api.example.com:8443");
        assert_eq!(parts.path, "/p%20q");
        assert_eq!(key(&rule(), &parts), "api.example.com:8443/p%20q?a=2&b=1");
        let url = url::Url::parse("https://example.com:443/").unwrap();
        assert_eq!(
            RequestParts::from_url("GET", &url, &[], None).host,
            "example.com"
        );
    }

    /// A form-urlencoding of `s` in one of several equivalent styles.
    fn encode_style(s: &str, style: u8) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            let unreserved = b.is_ascii_alphanumeric() || b"-._~".contains(&b);
            match style % 3 {
                // Encode every byte, uppercase hex.
                0 => out.push_str(&format!("%{b:02X}")),
                // Minimal, lowercase hex, space as '+'.
                1 if unreserved => out.push(char::from(b)),
                1 if b == b' ' => out.push('+'),
                1 => out.push_str(&format!("%{b:02x}")),
                // Minimal, space as %20.
                _ if unreserved => out.push(char::from(b)),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }

    proptest! {
        #[test]
        fn order_of_distinct_names_and_encoding_do_not_matter(
            pairs in proptest::collection::vec(("\\PC{0,8}", "\\PC{0,8}"), 0..8),
            style_a in 0u8..3,
            style_b in 0u8..3,
            rotate in 0usize..8,
        ) {
            let q = |ps: &[(String, String)], style| ps.iter()
                .map(|(n, v)| format!("{}={}", encode_style(n, style), encode_style(v, style)))
                .collect::<Vec<_>>()
                .join("&");
            // Repeated names keep their order by design; shuffle distinct ones.
            let mut seen = std::collections::BTreeSet::new();
            let pairs: Vec<(String, String)> =
                pairs.into_iter().filter(|(n, _)| seen.insert(n.clone())).collect();
            let qa = q(&pairs, style_a);
            let mut shuffled = pairs.clone();
            if !shuffled.is_empty() {
                let len = shuffled.len();
                shuffled.rotate_left(rotate % len);
                shuffled.reverse();
            }
            let qb = q(&shuffled, style_b);
            let r = rule();
            prop_assert_eq!(
                cache_key(&r, &req(Some(&qa), &[])),
                cache_key(&r, &req(Some(&qb), &[]))
            );
        }

        #[test]
        fn different_vary_values_give_different_keys(a in "\\PC{0,40}", b in "\\PC{0,40}") {
            let norm = |s: &str| s.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
            prop_assume!(norm(&a) != norm(&b));
            let r = rule().with_vary_headers(["x-v"]);
            let ha = hdrs(&[("x-v", &a)]);
            let hb = hdrs(&[("x-v", &b)]);
            let ka = cache_key(&r, &req(None, &ha)).unwrap();
            let kb = cache_key(&r, &req(None, &hb)).unwrap();
            prop_assert_ne!(ka.to_url(), kb.to_url());
            prop_assert_ne!(ka, kb);
        }

        #[test]
        fn different_identities_give_different_keys(a in "\\PC{1,40}", b in "\\PC{1,40}") {
            prop_assume!(a.trim() != b.trim() && !a.trim().is_empty() && !b.trim().is_empty());
            let r = rule().with_scope(CacheScope::Private);
            let ka = cache_key(&r, &RequestParts { identity: Some(&a), ..req(None, &[]) }).unwrap();
            let kb = cache_key(&r, &RequestParts { identity: Some(&b), ..req(None, &[]) }).unwrap();
            prop_assert_ne!(ka.to_url(), kb.to_url());
        }

        #[test]
        fn never_panics_and_urls_parse(
            method in "GET|HEAD|.{0,5}",
            scheme in "https|http|.{0,5}",
            host in ".{0,40}",
            path in ".{0,60}",
            query in proptest::option::of(".{0,80}"),
            hv in ".{0,40}",
            identity in proptest::option::of(".{0,20}"),
            private: bool,
        ) {
            let headers = hdrs(&[("x-v", &hv)]);
            let scope = if private { CacheScope::Private } else { CacheScope::Shared };
            let r = rule().with_vary_headers(["x-v"]).with_scope(scope);
            let parts = RequestParts {
                method: &method, scheme: &scheme, host: &host, path: &path,
                query: query.as_deref(), headers: &headers, identity: identity.as_deref(),
            };
            if let Ok(k) = cache_key(&r, &parts) {
                prop_assert!(k.canonical.len() <= MAX_CANONICAL_LEN);
                let url = k.to_url();
                let parsed = url::Url::parse(&url);
                prop_assert!(parsed.is_ok(), "{} does not parse", url);
            }
        }
    }
}
