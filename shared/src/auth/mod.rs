//! Who is calling, and may they: JWT bearer tokens, API keys and scopes.
//!
//! Everything here decides; nothing fetches. The adapters read headers, fetch
//! JWKS documents and keep [`JwksCache`] state; this module tells them what a
//! credential is worth:
//!
//! 1. [`select_credential`] picks the credential a route accepts from the
//!    `Authorization` and `x-api-key` headers.
//! 2. A bearer token is parsed with [`UnverifiedJwt::parse`]; its
//!    [`JwtHeaderPeek`] (issuer, `kid`, `alg`) names the key set to consult,
//!    [`JwtPolicy::issuer_for`] picks the issuer policy, [`JwksCache::lookup`]
//!    says whether to fetch, and [`UnverifiedJwt::verify`] checks signature
//!    and claims.
//! 3. An API key goes to [`ApiKeyStore::authenticate`].
//! 4. [`authorize`] checks the route's scopes against the [`Identity`].
//!
//! Every failure is an [`AuthRejection`], which knows its HTTP status, its
//! `WWW-Authenticate` challenge and its problem+json body.

mod api_key;
mod claims;
mod credentials;
mod jwks;
mod jwks_cache;
mod jwt;
mod keys;
mod rejection;
mod requirement;
mod strict_json;
mod timestamp;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use api_key::{hash_key, ApiKeyConfigError, ApiKeyRecord, ApiKeyStore, MAX_API_KEY_BYTES};
pub use credentials::{bearer_token, select_credential, Credential, API_KEY_HEADER};
pub use jwks::{parse_jwks, IgnoredKey, JwksError, ParsedJwks, MAX_JWKS_BYTES, MAX_JWKS_KEYS};
pub use jwks_cache::{JwksCache, JwksCachePolicy, KeyLookup};
pub use jwt::{
    IssuerPolicy, JwtHeaderPeek, JwtPolicy, UnverifiedJwt, DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_BYTES,
    MAX_KID_BYTES,
};
pub use keys::{decoding_key_for, select_key, KeyMismatch};
pub use rejection::{AuthRejection, MalformedToken, TokenPart, REALM};
pub use requirement::{authorize, AuthRequirement, RouteAuth};

/// The algorithms and key types a JWT may use, re-exported so callers need not
/// depend on `jsonwebtoken` themselves. `none` is not among them.
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
pub use jsonwebtoken::Algorithm;

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A signed JWT in `Authorization: Bearer`.
    Jwt,
    /// A key from the `API_KEYS` secret in the `x-api-key` header.
    ApiKey,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The JWT `sub`, or the API key's consumer: what rate limits key on.
    pub subject: String,
    /// The JWT's `kid`, or the API key's id: which credential was used.
    pub key_id: Option<String>,
    /// The JWT `iss`; `None` for API keys.
    pub issuer: Option<String>,
    /// Granted scopes, deduplicated, in the order first seen.
    pub scopes: Vec<String>,
    /// The caller's plan (from the issuer's tier claim or the API key record).
    pub tier: Option<String>,
    /// Per-consumer limit overrides from the API key record, by limit name;
    /// always empty for JWTs.
    pub limit_overrides: BTreeMap<String, u64>,
    /// How the caller authenticated.
    pub method: AuthMethod,
}

impl Identity {
    /// Whether the caller was granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}
