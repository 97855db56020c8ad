//! A JWT's signature check, split from its parsing and claim checks so the
//! caller may do the cryptography: the Lambda (and the tests) with
//! jsonwebtoken's RustCrypto verifier ([`NativeVerifier`], feature
//! `native-verify`), the edge Worker with WebCrypto, which is native code in
//! workerd and far faster than RSA compiled to wasm.
//!
//! 1. [`UnverifiedJwt::signature_check`] runs every check that needs no
//!    cryptography (algorithm allowed, `iss`, `kid`, the key fits the
//!    algorithm) and yields a [`SignatureCheck`]: signing input, decoded
//!    signature, algorithm and key material.
//! 2. A [`SignatureVerifier`] answers a [`SignatureOutcome`] for it.
//! 3. Only a valid outcome gives a [`VerifiedSignature`], which nothing
//!    outside this module can build; its [`VerifiedSignature::identity`]
//!    checks the claims. So claims can never be accepted without a signature
//!    check having said yes.
//!
//! [`UnverifiedJwt::signature_check`]: super::UnverifiedJwt::signature_check

use std::future::Future;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::Algorithm;
use sha2::{Digest, Sha256};

use super::jwt::{algorithm_name, IssuerPolicy, UnverifiedJwt};
use super::keys::VerificationKey;
use super::{AuthRejection, Identity, ValidityWindow};

/// What a signature checker found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureOutcome {
    /// The signature is valid for the signing input under the key.
    Valid,
    /// The signature does not verify (wrong key, tampered, malformed):
    /// [`AuthRejection::BadSignature`].
    Invalid,
    /// The checker refused the key itself (e.g. a point off the curve, an
    /// exponent it does not support): [`AuthRejection::UnknownKey`], as if
    /// the issuer had published no usable key.
    KeyRefused,
}

/// Something that checks signatures, synchronously or not.
pub trait SignatureVerifier {
    /// Whether `check`'s signature is valid: [`SignatureCheck::signature`]
    /// over [`SignatureCheck::signing_input`] under
    /// [`SignatureCheck::key`], for [`SignatureCheck::alg`].
    fn check(&self, check: &SignatureCheck<'_>) -> impl Future<Output = SignatureOutcome>;
}

/// Everything a signature checker needs, after every check that needs no
/// cryptography has passed.
pub struct SignatureCheck<'a> {
    jwt: &'a UnverifiedJwt<'a>,
    issuer: &'a IssuerPolicy,
    jwk: &'a Jwk,
    key: VerificationKey<'a>,
}

// Never print the signing input or the signature (they are the token).
impl std::fmt::Debug for SignatureCheck<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureCheck")
            .field("alg", &self.jwt.alg())
            .field("kid", &self.jwt.kid())
            .field("issuer", &self.issuer.issuer)
            .finish_non_exhaustive()
    }
}

impl<'a> SignatureCheck<'a> {
    /// Only [`UnverifiedJwt::signature_check`] builds one, after its checks.
    pub(super) fn new(
        jwt: &'a UnverifiedJwt<'a>,
        issuer: &'a IssuerPolicy,
        jwk: &'a Jwk,
        key: VerificationKey<'a>,
    ) -> Self {
        Self {
            jwt,
            issuer,
            jwk,
            key,
        }
    }

    /// The bytes the signature covers: `base64url(header) "." base64url(claims)`.
    pub fn signing_input(&self) -> &'a [u8] {
        self.jwt.signing_input().as_bytes()
    }

    /// The decoded signature. ECDSA signatures are JWS's raw `r || s`
    /// (IEEE P1363), which is also what WebCrypto takes.
    pub fn signature(&self) -> &'a [u8] {
        self.jwt.signature_bytes()
    }

    /// The token's algorithm, allowed for the issuer and fitting the key.
    pub fn alg(&self) -> Algorithm {
        self.jwt.alg()
    }

    /// The selected key's material.
    pub fn key(&self) -> VerificationKey<'a> {
        self.key
    }

    /// The selected key as published (for verifiers that take a JWK).
    pub fn jwk(&self) -> &'a Jwk {
        self.jwk
    }

    /// Identifies this key for this algorithm and issuer, for caching what a
    /// verifier builds from it (an imported WebCrypto key): SHA-256 over the
    /// issuer, the `kid`, the algorithm and the key material, so a rotated
    /// key under a reused `kid` never hits an entry of the old one.
    pub fn key_fingerprint(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        let kid = self.jwk.common.key_id.as_deref().unwrap_or_default();
        // Length-prefixed, so no choice of parts can collide with another.
        let mut part = |bytes: &[u8]| {
            h.update(u64::try_from(bytes.len()).unwrap_or(u64::MAX).to_be_bytes());
            h.update(bytes);
        };
        part(self.issuer.issuer.as_bytes());
        part(kid.as_bytes());
        part(algorithm_name(self.alg()).as_bytes());
        match self.key {
            VerificationKey::Hmac { k } => {
                part(b"oct");
                part(k.as_bytes());
            }
            VerificationKey::Rsa { n, e } => {
                part(b"RSA");
                part(n.as_bytes());
                part(e.as_bytes());
            }
            VerificationKey::Ec { curve, x, y } => {
                part(curve.name().as_bytes());
                part(x.as_bytes());
                part(y.as_bytes());
            }
            VerificationKey::Ed25519 { x } => {
                part(b"Ed25519");
                part(x.as_bytes());
            }
        }
        h.finalize().into()
    }

    /// Asks `verifier`; a valid signature gives the proof claims need.
    pub async fn verify_with<V: SignatureVerifier>(
        self,
        verifier: &V,
    ) -> Result<VerifiedSignature<'a>, AuthRejection> {
        let outcome = verifier.check(&self).await;
        self.conclude(outcome)
    }

    /// Checks the signature here, with jsonwebtoken's RustCrypto verifier.
    #[cfg(feature = "native-verify")]
    pub fn verify_natively(self) -> Result<VerifiedSignature<'a>, AuthRejection> {
        let outcome = native_outcome(&self);
        self.conclude(outcome)
    }

    /// The proof for `outcome` (for the fast path, whose verifier answers
    /// outside any future: `PendingToken::finish`).
    pub(super) fn conclude(
        self,
        outcome: SignatureOutcome,
    ) -> Result<VerifiedSignature<'a>, AuthRejection> {
        match outcome {
            SignatureOutcome::Valid => Ok(VerifiedSignature {
                jwt: self.jwt,
                issuer: self.issuer,
                key_id: self.jwk.common.key_id.as_deref(),
            }),
            SignatureOutcome::Invalid => Err(AuthRejection::BadSignature),
            SignatureOutcome::KeyRefused => Err(AuthRejection::UnknownKey),
        }
    }
}

/// Proof that a token's signature was checked and found valid; the only way
/// to its claims. Built only by [`SignatureCheck`] from a valid outcome.
#[derive(Debug)]
pub struct VerifiedSignature<'a> {
    jwt: &'a UnverifiedJwt<'a>,
    issuer: &'a IssuerPolicy,
    /// The `kid` of the key that verified it.
    key_id: Option<&'a str>,
}

impl VerifiedSignature<'_> {
    /// When the token's `exp`/`nbf`/`iat` (with the issuer's leeway and
    /// lifetime cap) pass: [`VerifiedSignature::identity`] accepts the times
    /// exactly at the instants inside it. `None` when they never pass.
    pub fn validity(&self) -> Option<ValidityWindow> {
        self.jwt.validity(self.issuer)
    }

    /// Checks the claims at `now_ms`: `exp`/`nbf`/`iat` with the issuer's
    /// leeway, lifetime, `aud`, `sub` and the tier claim; the caller's
    /// identity if they pass.
    pub fn identity(self, now_ms: u64) -> Result<Identity, AuthRejection> {
        self.jwt.accept_claims(self.issuer, self.key_id, now_ms)
    }
}

/// jsonwebtoken's RustCrypto verifier, in this process.
#[cfg(feature = "native-verify")]
#[derive(Debug, Clone, Copy, Default)]
pub struct NativeVerifier;

#[cfg(feature = "native-verify")]
impl SignatureVerifier for NativeVerifier {
    fn check(&self, check: &SignatureCheck<'_>) -> impl Future<Output = SignatureOutcome> {
        std::future::ready(native_outcome(check))
    }
}

#[cfg(feature = "native-verify")]
fn native_outcome(check: &SignatureCheck<'_>) -> SignatureOutcome {
    let Ok(key) = super::keys::decoding_key_for(check.jwk, check.alg()) else {
        return SignatureOutcome::KeyRefused;
    };
    match jsonwebtoken::crypto::verify(
        check.jwt.signature_text(),
        check.signing_input(),
        &key,
        check.alg(),
    ) {
        Ok(true) => SignatureOutcome::Valid,
        Ok(false) => SignatureOutcome::Invalid,
        // The verifier refused the key itself (e.g. a point off the curve).
        Err(_) => SignatureOutcome::KeyRefused,
    }
}
