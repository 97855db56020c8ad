//! Which caller a limit counts against, and the storage key of its state.
//!
//! The key is `"{route}:{limit}:{value}"`. Every part is percent-encoded down
//! to unreserved characters, so no part can contain the `:` separator and a
//! client cannot forge a value that lands in someone else's bucket. Parts
//! longer than [`MAX_PART_LEN`] are replaced by `#` and their SHA-256 (hex):
//! `#` never appears in an encoded part, so a hashed part cannot collide with
//! a literal one, and keys stay bounded whatever the client sends.
//!
//! When the value a limit is keyed by is absent (keyed by subject on an
//! anonymous request, say), [`limiter_key`] returns a [`LimitKeyError`] rather than
//! falling back to the client IP: a silent fallback would turn a per-caller
//! quota into a per-IP one shared by everyone behind the same NAT, or give
//! anonymous callers a separate, fresh bucket. The adapter decides: usually
//! reject ([`LimitKeyError::problem`]), since a route limited per caller should
//! require a caller.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv6Addr};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::{AuthMethod, Identity};
use crate::problem::Problem;

/// Longest encoded key part kept verbatim; longer ones are hashed.
pub const MAX_PART_LEN: usize = 128;

/// Everything but RFC 3986 unreserved characters gets encoded.
const KEY_PART: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The value of the literal route-wide bucket: `*` is never produced by
/// encoding, so no caller value can equal it.
const ROUTE_WIDE: &str = "*";

/// What a limit counts requests by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKey {
    /// The authenticated subject (e.g. the JWT `sub`).
    Subject,
    /// The API key's id (never the secret itself).
    ApiKey,
    /// The client's IP address; IPv6 addresses count per /64, since one
    /// client usually holds a whole /64.
    ClientIp,
    /// One bucket for the whole route, shared by every caller.
    Route,
}

/// The per-request values a limit may be keyed by, as the adapter knows them.
/// Empty or blank values count as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySource<'a> {
    /// The authenticated subject, if the request carried valid credentials;
    /// [`KeySource::from_identity`] qualifies it by issuer or key consumer.
    pub subject: Option<Cow<'a, str>>,
    /// The id of the API key the request authenticated with.
    pub api_key_id: Option<&'a str>,
    /// The client IP (e.g. `CF-Connecting-IP`).
    pub client_ip: Option<&'a str>,
}

impl<'a> KeySource<'a> {
    /// The values of an authenticated (or anonymous, `None`) request: the
    /// identity's subject, its key id only when it authenticated with an API
    /// key (a JWT's `kid` names the issuer's signing key, shared by every
    /// caller), and the client IP the platform reported.
    pub fn from_identity(identity: Option<&'a Identity>, client_ip: Option<&'a str>) -> Self {
        Self {
            // Qualified, so equal `sub`s of two issuers, or a JWT subject and
            // an API key consumer of the same name, never share a bucket.
            subject: identity.map(|i| Cow::Owned(i.qualified_subject())),
            api_key_id: identity
                .filter(|i| i.method == AuthMethod::ApiKey)
                .and_then(|i| i.key_id.as_deref()),
            client_ip,
        }
    }
}

/// The request lacks the value its limit is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitKeyError {
    /// The limit is per subject, but the request is not authenticated.
    #[error("the rate limit is per subject, but the request has no authenticated subject")]
    MissingSubject,
    /// The limit is per API key, but the request used none.
    #[error("the rate limit is per API key, but the request has no API key")]
    MissingApiKey,
    /// The limit is per client IP, but the adapter had no client IP.
    #[error("the rate limit is per client IP, but the client IP is unknown")]
    MissingClientIp,
}

impl LimitKeyError {
    /// The recommended client response: 401 when credentials are missing
    /// (the route limits per caller, so it needs one), 500 when the gateway
    /// failed to provide the client IP (a deployment fault, not the client's).
    pub fn problem(&self) -> Problem {
        match self {
            Self::MissingSubject | Self::MissingApiKey => {
                Problem::new(401, "authentication-required", "Authentication required")
                    .with_detail("This route limits requests per caller; send credentials.")
            }
            Self::MissingClientIp => Problem::new(500, "internal", "Internal error"),
        }
    }
}

/// The storage key for the state of limit `limit` on route `route`, keyed by
/// `kind` with values from `source`.
pub fn limiter_key(
    route: &str,
    limit: &str,
    kind: LimitKey,
    source: &KeySource<'_>,
) -> Result<String, LimitKeyError> {
    let value = match kind {
        LimitKey::Subject => {
            encode_part(present(source.subject.as_deref()).ok_or(LimitKeyError::MissingSubject)?)
        }
        LimitKey::ApiKey => {
            encode_part(present(source.api_key_id).ok_or(LimitKeyError::MissingApiKey)?)
        }
        LimitKey::ClientIp => {
            let ip = present(source.client_ip).ok_or(LimitKeyError::MissingClientIp)?;
            encode_part(&normalize_ip(ip))
        }
        LimitKey::Route => ROUTE_WIDE.to_owned(),
    };
    Ok(format!(
        "{}:{}:{value}",
        encode_part(route),
        encode_part(limit)
    ))
}

/// A storage key made by [`limiter_key`], split back into its encoded
/// parts: the decoder beside its encoder (the admin endpoint finds a key's
/// limit with it). Parts stay encoded: a long part is only its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterKeyParts<'k> {
    route: &'k str,
    limit: &'k str,
    value: &'k str,
}

impl<'k> LimiterKeyParts<'k> {
    /// The parts of `key`, or `None` when [`limiter_key`] cannot have made
    /// it (not three parts, or a part with characters encoding never
    /// leaves).
    pub fn parse(key: &'k str) -> Option<Self> {
        let mut parts = key.split(':');
        let (route, limit, value) = (parts.next()?, parts.next()?, parts.next()?);
        let well_formed = parts.next().is_none()
            && [route, limit].into_iter().all(is_encoded_part)
            && (value == ROUTE_WIDE || is_encoded_part(value));
        well_formed.then_some(Self {
            route,
            limit,
            value,
        })
    }

    /// Whether this key holds the state of limit `limit` on route `route`.
    pub fn belongs_to(&self, route: &str, limit: &str) -> bool {
        self.route == encode_part(route) && self.limit == encode_part(limit)
    }

    /// Whether this is the route-wide bucket ([`LimitKey::Route`]).
    pub fn is_route_wide(&self) -> bool {
        self.value == ROUTE_WIDE
    }
}

/// Whether `part` is something [`encode_part`] returns: unreserved
/// characters and `%XX` escapes, or `#` and a SHA-256 in hex.
fn is_encoded_part(part: &str) -> bool {
    if let Some(hex) = part.strip_prefix('#') {
        return hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    }
    let bytes = part.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            i += 1;
        } else {
            return false;
        }
    }
    part.len() <= MAX_PART_LEN
}

fn present(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.trim().is_empty())
}

/// Canonical text of an IP so spellings of one address share a bucket;
/// IPv6 masked to its /64. Unparseable input is kept (trimmed) behind a `?`,
/// which no normalised address starts with, so it cannot alias one.
fn normalize_ip(raw: &str) -> String {
    let raw = raw.trim();
    match raw.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let masked = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", Ipv6Addr::from(masked))
            }
        },
        Err(_) => format!("?{raw}"),
    }
}

/// Percent-encodes a key part; hashes it when too long.
fn encode_part(part: &str) -> String {
    let encoded = utf8_percent_encode(part, KEY_PART).to_string();
    if encoded.len() <= MAX_PART_LEN {
        return encoded;
    }
    let digest = Sha256::digest(part.as_bytes());
    let mut out = String::with_capacity(65);
    out.push('#');
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn src<'a>(
        subject: Option<&'a str>,
        key: Option<&'a str>,
        ip: Option<&'a str>,
    ) -> KeySource<'a> {
        KeySource {
            subject: subject.map(Cow::Borrowed),
            api_key_id: key,
            client_ip: ip,
        }
    }

    #[test]
    fn source_from_identity_takes_the_key_id_of_api_keys_only() {
        let mut id = Identity {
            subject: "acme".into(),
            key_id: Some("key_1".into()),
            issuer: None,
            scopes: Vec::new(),
            tier: None,
            limit_overrides: Default::default(),
            method: AuthMethod::ApiKey,
        };
        let ip = Some("192.0.2.1");
        assert_eq!(
            KeySource::from_identity(Some(&id), ip),
            src(Some("key:acme"), Some("key_1"), ip)
        );
        id.method = AuthMethod::Jwt;
        id.issuer = Some("https://idp/".into());
        assert_eq!(
            KeySource::from_identity(Some(&id), ip),
            src(Some("jwt:https%3A//idp/:acme"), None, ip),
            "a JWT subject is qualified by its issuer, never shared with a key consumer"
        );
        assert_eq!(KeySource::from_identity(None, ip), src(None, None, ip));
    }

    #[test]
    fn builds_keys_per_kind() {
        let s = src(Some("user-1"), Some("k_42"), Some("203.0.113.9"));
        assert_eq!(
            limiter_key("orders", "per-second", LimitKey::Subject, &s).unwrap(),
            "orders:per-second:user-1"
        );
        assert_eq!(
            limiter_key("orders", "daily", LimitKey::ApiKey, &s).unwrap(),
            "orders:daily:k_42"
        );
        assert_eq!(
            limiter_key("orders", "ip", LimitKey::ClientIp, &s).unwrap(),
            "orders:ip:203.0.113.9"
        );
        assert_eq!(
            limiter_key("orders", "all", LimitKey::Route, &s).unwrap(),
            "orders:all:*"
        );
    }

    #[test]
    fn missing_inputs_are_errors_not_fallbacks() {
        let anon = src(None, Some("  "), Some("203.0.113.9"));
        assert_eq!(
            limiter_key("r", "l", LimitKey::Subject, &anon),
            Err(LimitKeyError::MissingSubject)
        );
        assert_eq!(
            limiter_key("r", "l", LimitKey::ApiKey, &anon),
            Err(LimitKeyError::MissingApiKey)
        );
        assert_eq!(
            limiter_key("r", "l", LimitKey::ClientIp, &KeySource::default()),
            Err(LimitKeyError::MissingClientIp)
        );
        assert_eq!(LimitKeyError::MissingSubject.problem().status, 401);
        assert_eq!(LimitKeyError::MissingClientIp.problem().status, 500);
        assert_eq!(LimitKeyError::MissingClientIp.problem().detail, None);
    }

    #[test]
    fn separators_in_values_cannot_collide() {
        let a = limiter_key("r", "l:x", LimitKey::Subject, &src(Some("y"), None, None)).unwrap();
        let b = limiter_key("r", "l", LimitKey::Subject, &src(Some("x:y"), None, None)).unwrap();
        assert_ne!(a, b);
        assert_eq!(b, "r:l:x%3Ay");
        let star = limiter_key("r", "l", LimitKey::Subject, &src(Some("*"), None, None)).unwrap();
        assert_ne!(
            star,
            limiter_key("r", "l", LimitKey::Route, &KeySource::default()).unwrap()
        );
    }

    #[test]
    fn long_values_are_hashed_and_bounded() {
        let long = "a".repeat(10_000);
        let k = limiter_key("r", "l", LimitKey::Subject, &src(Some(&long), None, None)).unwrap();
        assert!(k.starts_with("r:l:#"));
        assert_eq!(k.len(), "r:l:#".len() + 64);
        let other = "a".repeat(10_001);
        assert_ne!(
            k,
            limiter_key("r", "l", LimitKey::Subject, &src(Some(&other), None, None)).unwrap()
        );
    }

    #[test]
    fn ips_are_normalized() {
        let key =
            |ip| limiter_key("r", "l", LimitKey::ClientIp, &src(None, None, Some(ip))).unwrap();
        assert_eq!(key("2001:db8:0:0:1::1"), key("2001:db8::ffff:1"));
        assert_eq!(key("2001:db8::1"), "r:l:2001%3Adb8%3A%3A%2F64");
        assert_ne!(key("2001:db8::1"), key("2001:db9::1"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_eq!(key(" 192.0.2.1 "), "r:l:192.0.2.1");
        assert_eq!(key("not-an-ip"), "r:l:%3Fnot-an-ip");
        assert_ne!(key("2001:db8::/64"), key("2001:db8::1"));
    }

    #[test]
    fn serde_names() {
        assert_eq!(
            serde_json::to_string(&LimitKey::ClientIp).unwrap(),
            r#""client_ip""#
        );
        let k: LimitKey = serde_json::from_str(r#""api_key""#).unwrap();
        assert_eq!(k, LimitKey::ApiKey);
    }

    proptest! {
        #[test]
        fn distinct_values_give_distinct_keys(a in ".{0,200}", b in ".{0,200}") {
            prop_assume!(a != b && !a.trim().is_empty() && !b.trim().is_empty());
            let ka = limiter_key("r", "l", LimitKey::Subject, &src(Some(&a), None, None)).unwrap();
            let kb = limiter_key("r", "l", LimitKey::Subject, &src(Some(&b), None, None)).unwrap();
            prop_assert_ne!(ka, kb);
        }

        #[test]
        fn keys_parse_back_to_their_limit(route in ".{0,200}", limit in ".{0,200}", v in ".{0,200}", other in ".{0,20}") {
            for kind in [LimitKey::Subject, LimitKey::ApiKey, LimitKey::ClientIp, LimitKey::Route] {
                let source = KeySource { subject: Some(v.as_str().into()), api_key_id: Some(&v), client_ip: Some(&v) };
                let Ok(key) = limiter_key(&route, &limit, kind, &source) else { continue };
                let parts = LimiterKeyParts::parse(&key).unwrap();
                prop_assert!(parts.belongs_to(&route, &limit));
                prop_assert_eq!(parts.is_route_wide(), kind == LimitKey::Route);
                if other != route {
                    prop_assert!(!parts.belongs_to(&other, &limit));
                }
            }
        }

        #[test]
        fn parsing_any_text_never_panics(key in ".*") {
            let _ = LimiterKeyParts::parse(&key);
        }

        #[test]
        fn keys_are_bounded_and_never_panic(route in ".*", limit in ".*", v in ".*") {
            for kind in [LimitKey::Subject, LimitKey::ApiKey, LimitKey::ClientIp, LimitKey::Route] {
                let s = src(Some(&v), Some(&v), Some(&v));
                if let Ok(k) = limiter_key(&route, &limit, kind, &s) {
                    prop_assert!(k.len() <= 3 * MAX_PART_LEN + 2);
                    prop_assert_eq!(k.matches(':').count(), 2);
                }
            }
        }
    }
}
