//! Signed identity assertions: what lets an origin trust the edge.
//!
//! The identity headers (`x-tidegate-subject`...) are plain text: an origin
//! that can also be called directly (a public API Gateway stage) cannot tell
//! them from a forgery. For routes that assert identity the edge also sends
//! a short-lived JWT (RFC 7519) signed with EdDSA (Ed25519, RFC 8037) or
//! ES256 (RFC 7518 §3.4), bound to the route's upstream by `aud`, whose
//! public keys the edge serves as a JWK Set (RFC 7517) at
//! `{admin_prefix}.well-known/jwks.json`. Any JWT library verifies it.
//!
//! Everything here is pure: the adapter passes the time, the request id and
//! random bytes for `jti`, signs [`UnsignedAssertion::signing_input`] with
//! the key [`AssertionKeySet::signer`] names, and hands the signature back
//! to [`UnsignedAssertion::finish`].
//!
//! - [`AssertionKeySet::parse`] reads the private keys (a JWK Set in a
//!   Worker secret) and renders the public JWK Set once.
//! - [`build_assertion`] makes the JOSE header and the claims.
//! - [`assertion_audience`] is the `aud` of a route's assertions.
//! - [`origin_credentials`] removes whatever a client sent under the
//!   assertion or origin-secret header names and adds the gateway's values.

mod keys;
mod token;

#[cfg(test)]
mod tests;

pub use keys::{
    AssertionAlgorithm, AssertionKeyError, AssertionKeySet, AssertionSigningKey,
    MAX_ASSERTION_KEYS, MAX_ASSERTION_KID_BYTES,
};
pub use token::{
    assertion_audience, assertion_claims, build_assertion, origin_credential_headers,
    origin_credentials, AssertionClaims, AssertionInput, UnsignedAssertion,
};
