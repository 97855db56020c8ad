//! The assertion itself: JOSE header, claims, signing input, and the
//! headers the origin gets.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use url::Url;

use super::keys::AssertionSigningKey;
use crate::auth::{AuthMethod, Identity};
use crate::config::GatewayConfig;

/// The claims of an identity assertion, as serialized (RFC 7519 §4.1 names
/// where one exists; absent values are left out, never `null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssertionClaims<'a> {
    /// The gateway (`[assertion].issuer`).
    pub iss: &'a str,
    /// The authenticated subject; absent on an anonymous request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<&'a str>,
    /// The route's upstream ([`assertion_audience`]).
    pub aud: &'a str,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expires at: `iat` + `[assertion].ttl` (at most 60 s).
    pub exp: u64,
    /// A unique id for this assertion (128 random bits, base64url), for
    /// origins that keep a replay cache.
    pub jti: String,
    /// The request id (`x-request-id`), to join origin and edge logs.
    pub request_id: &'a str,
    /// How the caller authenticated: `jwt` or `api_key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<&'static str>,
    /// The API key id or the client token's `kid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<&'a str>,
    /// The granted scopes, space-separated (RFC 8693 §4.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The caller's tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<&'a str>,
    /// The `iss` of the client's token (JWT callers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_iss: Option<&'a str>,
}

/// What an assertion is made of; the adapter supplies time and randomness.
#[derive(Debug, Clone, Copy)]
pub struct AssertionInput<'a> {
    /// The gateway's `iss`.
    pub issuer: &'a str,
    /// The audience: [`assertion_audience`] of the route's upstream.
    pub audience: &'a str,
    /// How long the assertion is valid.
    pub ttl: Duration,
    /// Who called; `None` on an anonymous route.
    pub identity: Option<&'a Identity>,
    /// The request id.
    pub request_id: &'a str,
    /// Now, in milliseconds since the epoch.
    pub now_ms: u64,
    /// 16 random bytes for `jti`.
    pub nonce: [u8; 16],
}

/// An assertion waiting for its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedAssertion {
    signing_input: String,
}

impl UnsignedAssertion {
    /// The JWS signing input, `base64url(header) "." base64url(claims)`:
    /// the bytes to sign.
    pub fn signing_input(&self) -> &str {
        &self.signing_input
    }

    /// The compact JWS: the signing input, `.`, the base64url signature
    /// (raw Ed25519, or ES256's `r || s`, as WebCrypto returns them).
    pub fn finish(self, signature: &[u8]) -> String {
        let mut out = self.signing_input;
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut out);
        out
    }
}

/// The claims for `input`.
pub fn assertion_claims<'a>(input: &AssertionInput<'a>) -> AssertionClaims<'a> {
    let iat = input.now_ms / 1000;
    let identity = input.identity;
    AssertionClaims {
        iss: input.issuer,
        sub: identity.map(|i| i.subject.as_str()),
        aud: input.audience,
        iat,
        exp: iat.saturating_add(input.ttl.as_secs()),
        jti: URL_SAFE_NO_PAD.encode(input.nonce),
        request_id: input.request_id,
        auth: identity.map(|i| match i.method {
            AuthMethod::Jwt => "jwt",
            AuthMethod::ApiKey => "api_key",
        }),
        key_id: identity.and_then(|i| i.key_id.as_deref()),
        scope: identity
            .filter(|i| !i.scopes.is_empty())
            .map(|i| i.scopes.join(" ")),
        tier: identity.and_then(|i| i.tier.as_deref()),
        token_iss: identity.and_then(|i| i.issuer.as_deref()),
    }
}

/// The header and claims of an assertion signed by `key`.
pub fn build_assertion(key: &AssertionSigningKey, input: &AssertionInput<'_>) -> UnsignedAssertion {
    let claims = assertion_claims(input);
    // Serializing plain strings and integers cannot fail.
    let json = serde_json::to_vec(&claims).unwrap_or_default();
    let mut signing_input = String::with_capacity(key.header_b64().len() + json.len() * 4 / 3 + 4);
    signing_input.push_str(key.header_b64());
    signing_input.push('.');
    URL_SAFE_NO_PAD.encode_string(json, &mut signing_input);
    UnsignedAssertion { signing_input }
}

/// The `aud` of a route's assertions: its upstream URL, normalized
/// (lower-case scheme and host, no default port), without the `/` of an
/// empty path: `https://origin.example.com`,
/// `https://abc123.execute-api.eu-west-1.amazonaws.com/prod`.
pub fn assertion_audience(upstream: &Url) -> String {
    let text = upstream.as_str();
    if upstream.path() == "/" && upstream.query().is_none() && upstream.fragment().is_none() {
        text.strip_suffix('/').unwrap_or(text).to_owned()
    } else {
        text.to_owned()
    }
}

/// Whether `a` and `b` name the same header, `_` counting as `-` (CGI-style
/// origins fold both into one variable name).
fn same_header(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).all(|(x, y)| {
            let fold = |c: u8| {
                if c == b'_' {
                    b'-'
                } else {
                    c.to_ascii_lowercase()
                }
            };
            fold(x) == fold(y)
        })
}

/// The origin's headers: `headers` (already filtered by
/// `route::forwarded_headers`) without any header named like one in `strip`
/// (case-insensitive, `_` as `-`), then `add` appended. Every assertion and
/// origin-secret header name of the gateway is stripped on every route, so
/// a client can never supply one.
pub fn origin_credentials(
    headers: Vec<(String, String)>,
    strip: &[&str],
    add: Vec<(String, String)>,
) -> Vec<(String, String)> {
    if strip.is_empty() && add.is_empty() {
        return headers;
    }
    let mut out: Vec<(String, String)> = headers
        .into_iter()
        .filter(|(name, _)| {
            !strip.iter().any(|s| same_header(name, s))
                && !add.iter().any(|(a, _)| same_header(name, a))
        })
        .collect();
    out.extend(add);
    out
}

/// Every header name the gateway sets for origins from secrets: the
/// assertion header and each route's origin-secret header. Empty when
/// neither feature is configured.
pub fn origin_credential_headers(config: &GatewayConfig) -> Vec<&str> {
    let mut names: Vec<&str> = config
        .assertion
        .iter()
        .map(|a| a.header.as_str())
        .chain(
            config
                .routes
                .iter()
                .filter_map(|r| r.origin_secret.as_ref().map(|o| o.header.as_str())),
        )
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}
