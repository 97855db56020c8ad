//! Who is calling, and may they: JWT bearer tokens, API keys and scopes.
//!
//! Everything here decides; nothing fetches. The adapters read headers, fetch
//! JWKS documents and keep [`JwksCache`] state; this module tells them what a
//! credential is worth:
//!
//! [`authenticate`] runs all of it, over the adapter's [`KeyProvider`]; the
//! steps, for those who need one alone:
//!
//! 1. [`select_credential`] picks the credential a route accepts from the
//!    `Authorization` and `x-api-key` headers.
//! 2. A bearer token is first looked up in the adapter's [`TokenCache`] of
//!    verified tokens, if it keeps one (by [`TokenDigest`]); otherwise it is
//!    parsed with [`UnverifiedJwt::parse`]; its
//!    [`JwtHeaderPeek`] (issuer, `kid`, `alg`) names the key set to consult,
//!    [`JwtPolicy::issuer_for`] picks the issuer policy (or, from the
//!    config, `GatewayConfig::issuer_for_token` the issuer with its JWKS
//!    cache), [`JwksCache::lookup`] says whether to fetch,
//!    [`UnverifiedJwt::signature_check`] prepares the signature check, a
//!    [`SignatureVerifier`] (WebCrypto at the edge, [`NativeVerifier`]
//!    elsewhere) does it, and [`VerifiedSignature::identity`] checks the
//!    claims; [`UnverifiedJwt::verify`] is all three with the native verifier.
//! 3. An API key goes to [`ApiKeyStore::authenticate`] (the `API_KEYS`
//!    secret) or, with a KV key store, to [`presented_key_hash`], the
//!    isolate's [`ApiKeyCache`] and on a miss one KV read of
//!    [`kv_record_name`], decoded by [`KvKeyRecord::decode`].
//! 4. [`authorize`] checks the route's scopes against the [`Identity`],
//!    which then feeds the origin headers (`route::TrustedIdentity::from`),
//!    the limiter keys and the private cache ([`Identity::qualified_subject`]).
//!
//! Every failure is an [`AuthRejection`], which knows its HTTP status, its
//! `WWW-Authenticate` challenge and its problem+json body.

mod api_key;
mod claims;
mod credentials;
mod identity;
mod jwks;
mod jwks_cache;
mod jwt;
mod key_store;
mod keys;
mod pipeline;
mod rejection;
mod requirement;
mod signature;
mod strict_json;
pub(crate) mod timestamp;
mod token_cache;

pub use api_key::{
    hash_key, ApiKeyConfigError, ApiKeyEntry, ApiKeyRecord, ApiKeyStore, MAX_API_KEY_BYTES,
};
pub use credentials::{
    bearer_token, select_credential, trim_http_whitespace, Credential, API_KEY_HEADER,
};
pub use identity::{AuthMethod, Identity};
pub use jwks::{parse_jwks, IgnoredKey, JwksError, ParsedJwks, MAX_JWKS_BYTES, MAX_JWKS_KEYS};
pub use jwks_cache::{JwksCache, JwksCachePolicy, KeyLookup};
pub use jwt::{
    IssuerPolicy, JwtHeaderPeek, JwtPolicy, UnverifiedJwt, DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_BYTES,
    MAX_KID_BYTES,
};
pub use key_store::{
    kv_consumer_entry, kv_consumer_prefix, kv_id_name, kv_record_name, new_api_key, new_key_id,
    parse_hash_hex, parse_issue_request, parse_key_id, parse_list_limit, parse_rotate_request,
    presented_key_hash, ApiKeyCache, IssuedKey, KeyAdminError, KeyCacheLookup, KeyGrant,
    KeyListPage, KeyRecordError, KeyStatus, KeySummary, KvKeyRecord, KvKeyStoreSettings,
    RevokedKey, RotateRequest, API_KEY_PREFIX, DEFAULT_LIST_LIMIT, MAX_CONSUMER_BYTES,
    MAX_LIST_LIMIT,
};
#[cfg(feature = "native-verify")]
pub use keys::decoding_key_for;
pub use keys::{select_key, verification_key, EcCurve, KeyMismatch, VerificationKey};
pub use pipeline::{
    authenticate, authenticate_at_once, authenticate_or_pend, AtOnce, AtOnceStep,
    CredentialHeaders, KeyProvider, KeysAtOnce, PendingToken, Remembered, VerifiedBearer,
};
pub use rejection::{AuthRejection, InvalidRequest, MalformedToken, TokenPart, REALM};
pub use requirement::{authorize, AuthPolicy, AuthRequirement};
#[cfg(feature = "native-verify")]
pub use signature::NativeVerifier;
pub use signature::{SignatureCheck, SignatureOutcome, SignatureVerifier, VerifiedSignature};
pub use token_cache::{
    TokenCache, TokenCacheSettings, TokenCacheUse, TokenDigest, ValidityWindow, VerifiedToken,
    ENTRY_OVERHEAD_BYTES, MAX_IDENTITY_BYTES,
};

/// The algorithms and key types a JWT may use, re-exported so callers need not
/// depend on `jsonwebtoken` themselves. `none` is not among them.
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
pub use jsonwebtoken::Algorithm;
