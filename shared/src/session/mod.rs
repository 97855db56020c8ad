//! Browser sessions for the control API's dashboard: a signed, short-lived
//! token in a cookie, and the CSRF token its forms carry. Pure: the key,
//! the time and the nonce are arguments.
//!
//! A token is `v1.<claims>.<mac>`: the claims (who, issued, expires, a
//! nonce) as base64url JSON, and their HMAC-SHA256 under the
//! [`SessionKey`]. The CSRF token is an HMAC of the whole session token
//! under the same key with another label, so it is tied to one session and
//! cannot be computed without the key (the "HMAC of the session id"
//! pattern): a page of another site can neither read the cookie nor forge
//! the token.
//!
//! ```
//! use tidegate_policy::session::{issue, verify, csrf_token, check_csrf, SessionClaims, SessionKey};
//! let key = SessionKey::new(b"0123456789abcdef0123456789abcdef").unwrap();
//! let token = issue(&key, &SessionClaims::new("key:ops", 1_000, 60_000, "n1"));
//! assert_eq!(verify(&key, &token, 2_000).unwrap().sub, "key:ops");
//! assert!(verify(&key, &token, 61_000).is_err());
//! let csrf = csrf_token(&key, &token);
//! assert!(check_csrf(&key, &token, Some(&csrf)).is_ok());
//! ```

mod cookie;

pub use cookie::{clear_cookie, cookie_value, set_cookie, SESSION_COOKIE};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;
/// Longest token accepted, in bytes (a cookie is at most 4 KB).
pub const MAX_TOKEN_BYTES: usize = 3_000;
/// The token format's version prefix.
const VERSION: &str = "v1";

/// The HMAC key sessions are signed with.
#[derive(Clone)]
pub struct SessionKey(Vec<u8>);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.write_str("SessionKey(..)")
    }
}

/// Why a secret cannot be a [`SessionKey`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionKeyError {
    /// Shorter than [`MIN_SECRET_BYTES`].
    #[error("the session secret has {0} bytes; it needs at least {MIN_SECRET_BYTES} (e.g. `openssl rand -base64 48`)")]
    TooShort(usize),
}

impl SessionKey {
    /// A key from `secret` (at least [`MIN_SECRET_BYTES`]).
    pub fn new(secret: &[u8]) -> Result<Self, SessionKeyError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SessionKeyError::TooShort(secret.len()));
        }
        Ok(Self(secret.to_vec()))
    }

    fn mac(&self, label: &[u8], data: &[u8]) -> Hmac<Sha256> {
        let mut m = crate::mac::hmac_sha256(&self.0);
        m.update(label);
        m.update(b"\0");
        m.update(data);
        m
    }
}

/// What a session token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionClaims {
    /// Who signed in: the qualified identity (`key:<consumer>`,
    /// `jwt:<iss>:<sub>`), recorded with their commands.
    pub sub: String,
    /// Issued at, ms since the epoch.
    pub iat_ms: u64,
    /// Expires at, ms since the epoch.
    pub exp_ms: u64,
    /// Makes tokens of the same caller and instant differ.
    pub nonce: String,
}

impl SessionClaims {
    /// Claims for `sub`, issued at `now_ms`, valid for `ttl_ms`.
    pub fn new(sub: impl Into<String>, now_ms: u64, ttl_ms: u64, nonce: impl Into<String>) -> Self {
        Self {
            sub: sub.into(),
            iat_ms: now_ms,
            exp_ms: now_ms.saturating_add(ttl_ms),
            nonce: nonce.into(),
        }
    }
}

/// Why a session or CSRF token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Not a token of this format (or too long).
    #[error("the session cookie is not a Tidegate session: sign in again")]
    Malformed,
    /// The signature does not match: changed, or signed with another key
    /// (e.g. after the secret was rotated).
    #[error("the session cookie's signature does not match (altered, or the session secret changed): sign in again")]
    BadSignature,
    /// Past its expiry.
    #[error("the session expired at {exp_ms} (ms since the epoch): sign in again")]
    Expired {
        /// When it expired.
        exp_ms: u64,
    },
    /// A cookie-authenticated POST without a CSRF token.
    #[error("this form has no CSRF token (field `csrf` or header X-CSRF-Token): reload the page and try again")]
    CsrfMissing,
    /// A CSRF token that is not this session's.
    #[error("the CSRF token does not belong to this session: reload the page and try again")]
    CsrfMismatch,
}

/// The signed token for `claims`.
pub fn issue(key: &SessionKey, claims: &SessionClaims) -> String {
    let json = serde_json::to_vec(claims).unwrap_or_default();
    let body = URL_SAFE_NO_PAD.encode(json);
    let mac = key.mac(b"session", body.as_bytes()).finalize().into_bytes();
    format!("{VERSION}.{body}.{}", URL_SAFE_NO_PAD.encode(mac))
}

/// The claims of `token` if it is signed with `key` and unexpired at
/// `now_ms`. The signature is checked (in constant time) before anything
/// in the claims is read.
pub fn verify(key: &SessionKey, token: &str, now_ms: u64) -> Result<SessionClaims, SessionError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(SessionError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(VERSION), Some(body), Some(mac), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SessionError::Malformed);
    };
    let mac = URL_SAFE_NO_PAD
        .decode(mac)
        .map_err(|_| SessionError::Malformed)?;
    key.mac(b"session", body.as_bytes())
        .verify_slice(&mac)
        .map_err(|_| SessionError::BadSignature)?;
    let json = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| SessionError::Malformed)?;
    let claims: SessionClaims =
        serde_json::from_slice(&json).map_err(|_| SessionError::Malformed)?;
    if now_ms >= claims.exp_ms {
        return Err(SessionError::Expired {
            exp_ms: claims.exp_ms,
        });
    }
    Ok(claims)
}

/// The CSRF token of session `token`.
pub fn csrf_token(key: &SessionKey, token: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.mac(b"csrf", token.as_bytes()).finalize().into_bytes())
}

/// Checks the CSRF token `presented` with a POST made with session `token`.
pub fn check_csrf(
    key: &SessionKey,
    token: &str,
    presented: Option<&str>,
) -> Result<(), SessionError> {
    let presented = presented
        .filter(|p| !p.is_empty())
        .ok_or(SessionError::CsrfMissing)?;
    let mac = URL_SAFE_NO_PAD
        .decode(presented)
        .map_err(|_| SessionError::CsrfMismatch)?;
    key.mac(b"csrf", token.as_bytes())
        .verify_slice(&mac)
        .map_err(|_| SessionError::CsrfMismatch)
}

#[cfg(test)]
mod tests;
