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
mod tests;
