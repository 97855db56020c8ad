//! JWT bearer tokens: parsing, issuer policy, signature and claim checks.
//!
//! The signature check itself is the caller's (see `signature.rs`): this
//! module prepares it ([`UnverifiedJwt::signature_check`]) and checks the
//! claims once a verifier has said yes. With the `native-verify` feature,
//! [`UnverifiedJwt::verify`] does all three in one go with `jsonwebtoken`,
//! which then only checks signatures (`jsonwebtoken::crypto::verify`). We
//! parse header and claims ourselves so that sizes are bounded, duplicate
//! members are refused, and time comes from the caller: jsonwebtoken's claim
//! validation reads the system clock, which is impure and panics on wasm32.
//!
//! Header members that point at keys — `jku`, `x5u`, `jwk`, `x5c` — are
//! ignored, never followed or trusted: keys come only from the issuer's
//! configured key set, selected by `kid`. Letting a token name its own key
//! would let anyone sign for anyone. `typ` and `cty` are not checked either;
//! the issuer and audience checks keep other kinds of token out.

use std::borrow::Cow;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::claims::{string_claim, Claims};
use super::keys::{select_key, verification_key};
use super::signature::SignatureCheck;
use super::strict_json::{parse_object, StrictJsonError};
use super::{AuthMethod, AuthRejection, Identity, MalformedToken, TokenPart, ValidityWindow};

/// Default bound on a token's length. Real access tokens are 1–4 KiB; the
/// bound caps the work a single header can make us do.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Default clock skew tolerated on `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// Longest `kid` accepted. Unknown kids are remembered in the JWKS negative
/// cache, so their size must be bounded.
pub const MAX_KID_BYTES: usize = 256;

/// What we trust from one token issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerPolicy {
    /// The exact `iss` value of the issuer's tokens.
    pub issuer: String,
    /// Accepted `aud` values; a token must name at least one. Must not be
    /// empty: an empty list matches no token (fail closed).
    pub audiences: Vec<String>,
    /// Algorithms this issuer signs with. Keep asymmetric and HMAC
    /// algorithms apart per issuer; key checks prevent confusion anyway.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Longest accepted lifetime: `exp - iat`, or `exp - now` without `iat`.
    pub max_lifetime: Option<Duration>,
    /// A string claim holding the caller's tier (plan), e.g. `"tier"`.
    pub tier_claim: Option<String>,
}

impl IssuerPolicy {
    /// An issuer with the default leeway, no lifetime cap and no tier claim.
    pub fn new<A, S>(issuer: impl Into<String>, audiences: A, algorithms: &[Algorithm]) -> Self
    where
        A: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            issuer: issuer.into(),
            audiences: audiences.into_iter().map(Into::into).collect(),
            algorithms: algorithms.to_vec(),
            leeway: DEFAULT_LEEWAY,
            max_lifetime: None,
            tier_claim: None,
        }
    }

    /// The same policy with another leeway.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The same policy with a lifetime cap.
    pub fn with_max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = Some(max);
        self
    }

    /// The same policy, reading the tier from claim `name`.
    pub fn with_tier_claim(mut self, name: impl Into<String>) -> Self {
        self.tier_claim = Some(name.into());
        self
    }

    /// Whether tokens of this issuer may use `alg`.
    pub fn allows(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }
}

/// The trusted issuers and the token size bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtPolicy {
    /// Trusted issuers; `iss` picks one.
    pub issuers: Vec<IssuerPolicy>,
    /// Longest accepted token, in bytes.
    pub max_token_bytes: usize,
}

impl JwtPolicy {
    /// A policy trusting `issuers`, with the default size bound.
    pub fn new(issuers: Vec<IssuerPolicy>) -> Self {
        Self {
            issuers,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }

    /// Parses `token` under this policy's size bound.
    pub fn parse<'t>(&self, token: &'t str) -> Result<UnverifiedJwt<'t>, AuthRejection> {
        UnverifiedJwt::parse(token, self.max_token_bytes)
    }

    /// The policy of the token's issuer, if trusted and allowing its `alg`.
    ///
    /// Choosing by the unverified `iss` is safe: the signature is then
    /// checked with that issuer's keys only, and `iss` again after that.
    pub fn issuer_for(&self, jwt: &UnverifiedJwt<'_>) -> Result<&IssuerPolicy, AuthRejection> {
        let iss = jwt.issuer().ok_or(AuthRejection::WrongIssuer)?;
        let policy = self
            .issuers
            .iter()
            .find(|p| p.issuer == iss)
            .ok_or(AuthRejection::WrongIssuer)?;
        if policy.allows(jwt.alg()) {
            Ok(policy)
        } else {
            Err(AuthRejection::DisallowedAlgorithm)
        }
    }

    /// Parses and verifies `token` in one go, for key sets the caller
    /// already holds (static HMAC secrets, tests). `keys_for` returns the
    /// issuer's key set, or `None` if it is unavailable (503).
    #[cfg(feature = "native-verify")]
    pub fn verify<'k, F>(
        &self,
        token: &str,
        now_ms: u64,
        keys_for: F,
    ) -> Result<Identity, AuthRejection>
    where
        F: FnOnce(&IssuerPolicy) -> Option<&'k JwkSet>,
    {
        let jwt = self.parse(token)?;
        let issuer = self.issuer_for(&jwt)?;
        let keys = keys_for(issuer).ok_or(AuthRejection::KeysUnavailable)?;
        jwt.verify_with_set(issuer, keys, now_ms)
    }
}

/// What an adapter needs to know before verifying: which issuer's key set to
/// consult and which key in it. All of it is unverified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtHeaderPeek {
    /// The header `alg`.
    pub alg: Algorithm,
    /// The header `kid`.
    pub kid: Option<String>,
    /// The claims `iss`.
    pub issuer: Option<String>,
}

/// A structurally valid JWT whose signature and claims are not checked yet.
#[derive(Clone)]
pub struct UnverifiedJwt<'t> {
    /// `header.claims`, the bytes the signature covers (borrowed from the
    /// token, or owned: [`UnverifiedJwt::into_owned`]).
    signing_input: Cow<'t, str>,
    /// The signature segment, base64url (what jsonwebtoken takes).
    #[cfg(feature = "native-verify")]
    signature: Cow<'t, str>,
    /// The signature segment, decoded.
    signature_bytes: Vec<u8>,
    alg: Algorithm,
    kid: Option<String>,
    claims: Claims,
}

// Never print the token itself.
impl std::fmt::Debug for UnverifiedJwt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnverifiedJwt")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("iss", &self.claims.iss)
            .finish_non_exhaustive()
    }
}

impl<'t> UnverifiedJwt<'t> {
    /// Parses a JWS compact token of at most `max_bytes`.
    ///
    /// Refuses: oversize tokens, anything but three segments, padded or
    /// invalid base64url, non-object or duplicate-member JSON, a missing,
    /// unknown or `none` `alg`, a non-empty `crit`, a bad `kid`, and
    /// registered claims of the wrong type or range.
    pub fn parse(token: &'t str, max_bytes: usize) -> Result<Self, AuthRejection> {
        if token.len() > max_bytes {
            return Err(MalformedToken::TooLong { max: max_bytes }.into());
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(MalformedToken::SegmentCount.into());
        };
        let signing_input = token
            .get(
                ..header_b64
                    .len()
                    .saturating_add(1)
                    .saturating_add(claims_b64.len()),
            )
            .ok_or(MalformedToken::SegmentCount)?;

        let header = decode_object(header_b64, TokenPart::Header)?;
        let alg = match header.get("alg") {
            Some(Value::String(name)) => {
                algorithm(name).ok_or(AuthRejection::DisallowedAlgorithm)?
            }
            _ => return Err(MalformedToken::MissingAlgorithm.into()),
        };
        match header.get("crit") {
            None => {}
            Some(Value::Array(items)) if items.is_empty() => {}
            Some(_) => return Err(MalformedToken::CriticalHeader.into()),
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) if kid.len() <= MAX_KID_BYTES => Some(kid.clone()),
            Some(_) => {
                return Err(MalformedToken::InvalidKeyId { max: MAX_KID_BYTES }.into());
            }
        };

        let claims = Claims::from_map(decode_object(claims_b64, TokenPart::Claims)?)?;
        let signature_bytes = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| MalformedToken::Base64(TokenPart::Signature))?;
        Ok(Self {
            signing_input: Cow::Borrowed(signing_input),
            #[cfg(feature = "native-verify")]
            signature: Cow::Borrowed(signature),
            signature_bytes,
            alg,
            kid,
            claims,
        })
    }

    /// The header `alg`.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The header `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The (unverified) `iss` claim.
    pub fn issuer(&self) -> Option<&str> {
        self.claims.iss.as_deref()
    }

    /// Issuer, `kid` and `alg`, owned, to pick a key set before verifying.
    pub fn peek(&self) -> JwtHeaderPeek {
        JwtHeaderPeek {
            alg: self.alg,
            kid: self.kid.clone(),
            issuer: self.claims.iss.clone(),
        }
    }

    /// The same token, owning the parts it borrowed from the token text, so
    /// it may outlive that text (the edge's fast path holds it while
    /// WebCrypto checks the signature). Costs a copy of the signing input.
    pub fn into_owned(self) -> UnverifiedJwt<'static> {
        UnverifiedJwt {
            signing_input: Cow::Owned(self.signing_input.into_owned()),
            #[cfg(feature = "native-verify")]
            signature: Cow::Owned(self.signature.into_owned()),
            signature_bytes: self.signature_bytes,
            alg: self.alg,
            kid: self.kid,
            claims: self.claims,
        }
    }

    /// The bytes the signature covers.
    pub(super) fn signing_input(&self) -> &str {
        &self.signing_input
    }

    /// The signature segment as sent (base64url).
    #[cfg(feature = "native-verify")]
    pub(super) fn signature_text(&self) -> &str {
        &self.signature
    }

    /// The decoded signature.
    pub(super) fn signature_bytes(&self) -> &[u8] {
        &self.signature_bytes
    }

    /// Prepares the signature check with the key in `keys` that matches the
    /// token's `kid` and `alg` (see [`select_key`]: without a `kid`, only a
    /// set with exactly one usable key will do).
    pub fn signature_check_in_set<'a>(
        &'a self,
        issuer: &'a IssuerPolicy,
        keys: &'a JwkSet,
    ) -> Result<SignatureCheck<'a>, AuthRejection> {
        if !issuer.allows(self.alg) {
            return Err(AuthRejection::DisallowedAlgorithm);
        }
        let jwk = select_key(keys, self.kid(), self.alg).ok_or(AuthRejection::UnknownKey)?;
        self.signature_check(issuer, jwk)
    }

    /// Prepares the signature check with `jwk` under `issuer`: every check
    /// that needs no cryptography, in this order: algorithm allowed, `iss`,
    /// `kid`, key fits the algorithm. The signature is then the caller's to
    /// check (`signature.rs`), the claims the [`VerifiedSignature`]'s.
    ///
    /// [`VerifiedSignature`]: super::VerifiedSignature
    pub fn signature_check<'a>(
        &'a self,
        issuer: &'a IssuerPolicy,
        jwk: &'a Jwk,
    ) -> Result<SignatureCheck<'a>, AuthRejection> {
        if !issuer.allows(self.alg) {
            return Err(AuthRejection::DisallowedAlgorithm);
        }
        if self.claims.iss.as_deref() != Some(issuer.issuer.as_str()) {
            return Err(AuthRejection::WrongIssuer);
        }
        if let (Some(want), Some(have)) = (self.kid(), jwk.common.key_id.as_deref()) {
            if want != have {
                return Err(AuthRejection::UnknownKey);
            }
        }
        let key = verification_key(jwk, self.alg).map_err(|_| AuthRejection::UnknownKey)?;
        Ok(SignatureCheck::new(self, issuer, jwk, key))
    }

    /// Verifies with the key in `keys` that matches the token's `kid` and
    /// `alg` (see [`select_key`]: without a `kid`, only a set with exactly
    /// one usable key will do).
    #[cfg(feature = "native-verify")]
    pub fn verify_with_set(
        &self,
        issuer: &IssuerPolicy,
        keys: &JwkSet,
        now_ms: u64,
    ) -> Result<Identity, AuthRejection> {
        self.signature_check_in_set(issuer, keys)?
            .verify_natively()?
            .identity(now_ms)
    }

    /// Verifies signature and claims with `jwk` under `issuer`, at `now_ms`,
    /// the signature with jsonwebtoken's RustCrypto verifier.
    ///
    /// Order: algorithm allowed, `iss`, key fits the algorithm, signature,
    /// then `exp`/`nbf`/`iat`, lifetime, `aud` and `sub`. Only the first
    /// failure is reported.
    #[cfg(feature = "native-verify")]
    pub fn verify(
        &self,
        issuer: &IssuerPolicy,
        jwk: &Jwk,
        now_ms: u64,
    ) -> Result<Identity, AuthRejection> {
        self.signature_check(issuer, jwk)?
            .verify_natively()?
            .identity(now_ms)
    }

    /// When the token's times pass under `issuer` (see [`validity_window`]).
    pub(super) fn validity(&self, issuer: &IssuerPolicy) -> Option<ValidityWindow> {
        validity_window(&self.claims, issuer)
    }

    /// The claim checks, once the signature is verified (only
    /// `VerifiedSignature::identity` calls this): `exp`/`nbf`/`iat`,
    /// lifetime, `aud`, `sub`, the tier claim. `key_id` is the verifying
    /// key's `kid`, reported when the token names none.
    pub(super) fn accept_claims(
        &self,
        issuer: &IssuerPolicy,
        key_id: Option<&str>,
        now_ms: u64,
    ) -> Result<Identity, AuthRejection> {
        check_times(&self.claims, issuer, now_ms)?;
        let aud = self.claims.aud.as_deref().unwrap_or_default();
        if !issuer.audiences.iter().any(|a| aud.contains(a)) {
            return Err(AuthRejection::WrongAudience);
        }
        let subject = self
            .claims
            .sub
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or(MalformedToken::MissingClaim("sub"))?;
        let tier = match &issuer.tier_claim {
            Some(name) => string_claim(&self.claims.all, name)?,
            None => None,
        };
        Ok(Identity {
            subject,
            key_id: self.kid.clone().or_else(|| key_id.map(str::to_owned)),
            issuer: Some(issuer.issuer.clone()),
            scopes: self.claims.scopes.clone(),
            tier,
            limit_overrides: Default::default(),
            method: AuthMethod::Jwt,
        })
    }
}

/// The instants at which [`check_times`] accepts `c` under `policy`, as one
/// window (`None` without `exp`, which is never accepted). Exact to the
/// millisecond: `check_times(c, policy, now).is_ok()` exactly when the window
/// contains `now` (a property test holds them together), so a cache may
/// re-check a token's times without its claims.
pub(super) fn validity_window(c: &Claims, policy: &IssuerPolicy) -> Option<ValidityWindow> {
    let leeway = millis(policy.leeway);
    let exp = c.exp_ms?;
    // `nbf > now + leeway` refuses, so `now >= nbf - leeway` accepts; the
    // same for `iat`.
    let mut from_ms = [c.nbf_ms, c.iat_ms]
        .into_iter()
        .flatten()
        .map(|t| t.saturating_sub(leeway))
        .max()
        .unwrap_or(0);
    if let Some(max) = policy.max_lifetime {
        match c.iat_ms {
            // Then the lifetime check does not depend on the time.
            Some(iat) if exp.saturating_sub(iat) > millis(max) => return None,
            Some(_) => {}
            // `exp - now > max` refuses, so `now >= exp - max` accepts.
            None => from_ms = from_ms.max(exp.saturating_sub(millis(max))),
        }
    }
    Some(ValidityWindow {
        from_ms,
        until_ms: exp.saturating_add(leeway),
    })
}

fn check_times(c: &Claims, policy: &IssuerPolicy, now_ms: u64) -> Result<(), AuthRejection> {
    let leeway = millis(policy.leeway);
    let exp = c.exp_ms.ok_or(MalformedToken::MissingClaim("exp"))?;
    // RFC 7519 §4.1.4: the current time must be before `exp`.
    if now_ms >= exp.saturating_add(leeway) {
        return Err(AuthRejection::Expired);
    }
    let latest_start = now_ms.saturating_add(leeway);
    if c.nbf_ms.is_some_and(|nbf| nbf > latest_start)
        || c.iat_ms.is_some_and(|iat| iat > latest_start)
    {
        return Err(AuthRejection::NotYetValid);
    }
    if let Some(max) = policy.max_lifetime {
        let start = c.iat_ms.unwrap_or(now_ms);
        if exp.saturating_sub(start) > millis(max) {
            return Err(AuthRejection::LifetimeTooLong);
        }
    }
    Ok(())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn decode_object(
    b64: &str,
    part: TokenPart,
) -> Result<serde_json::Map<String, Value>, MalformedToken> {
    let bytes = URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| MalformedToken::Base64(part))?;
    parse_object(&bytes).map_err(|e| match e {
        StrictJsonError::DuplicateKey => MalformedToken::DuplicateKey(part),
        StrictJsonError::Syntax | StrictJsonError::NotAnObject => MalformedToken::Json(part),
    })
}

/// The RFC 7518 name of `alg`.
pub(super) fn algorithm_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
    }
}

/// The supported algorithm named `name` (case-sensitive, RFC 7518). `none`
/// and everything else is `None`.
fn algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
