//! The demo identity provider: one ES256 key pair, its JWKS, and tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{EncodingKey, Header};
use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePrivateKey;
use serde_json::json;
use sha2::{Digest, Sha256};
use tidegate_policy::auth::{Algorithm, Jwk, JwkSet};

use super::show::fingerprint;

/// The issuer `example-idp` of gateway.toml, played by the walkthrough.
pub struct Idp {
    issuer: String,
    audience: String,
    kid: String,
    signing: EncodingKey,
    jwks: JwkSet,
}

impl Idp {
    /// Generates the key pair. The private key is derived from a fixed seed
    /// so every run prints the same story; a real IdP draws it from a CSPRNG.
    pub fn generate(issuer: &str, audience: &str) -> Result<Self, String> {
        let seed = Sha256::digest(b"tidegate walkthrough: demo ES256 key");
        let key = SigningKey::from_slice(&seed).map_err(|e| format!("demo key: {e}"))?;
        let der = key
            .to_pkcs8_der()
            .map_err(|e| format!("demo key PKCS#8: {e}"))?;
        let point = key.verifying_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err("demo key: public point has no coordinates".into());
        };
        // The kid is a fingerprint of the public key, as many IdPs do.
        let kid = format!("demo-{}", fingerprint(point.as_bytes()));
        let jwk: Jwk = serde_json::from_value(json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }))
        .map_err(|e| format!("demo JWK: {e}"))?;
        Ok(Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            kid,
            signing: EncodingKey::from_ec_der(der.as_bytes()),
            jwks: JwkSet { keys: vec![jwk] },
        })
    }

    /// The `kid` of the signing key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The body its `jwks_url` serves.
    pub fn jwks_body(&self) -> Vec<u8> {
        serde_json::to_vec(&self.jwks).unwrap_or_default()
    }

    /// A signed ES256 access token issued at `iat_ms`, valid for `ttl_s`.
    pub fn token(&self, sub: &str, scope: &str, iat_ms: u64, ttl_s: u64) -> Result<String, String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(
            &header,
            &self.claims(sub, scope, iat_ms, ttl_s),
            &self.signing,
        )
        .map_err(|e| format!("signing a demo token: {e}"))
    }

    /// The same claims with `"alg": "none"` and no signature: the classic forgery.
    pub fn unsigned_token(&self, sub: &str, scope: &str, iat_ms: u64) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(self.claims(sub, scope, iat_ms, 3600).to_string());
        format!("{header}.{claims}.")
    }

    fn claims(&self, sub: &str, scope: &str, iat_ms: u64, ttl_s: u64) -> serde_json::Value {
        let iat = iat_ms / 1000;
        json!({ "iss": self.issuer, "aud": self.audience, "sub": sub, "scope": scope,
                "tier": "gold", "iat": iat, "exp": iat + ttl_s })
    }
}
