//! Parsing a JWKS document (RFC 7517 §5) fetched from an issuer.
//!
//! One odd key must not take an issuer offline, so keys we cannot use
//! (encryption keys, P-521, RSA under 2048 bits, unknown `kty`...) are
//! skipped and reported, not fatal. A document with no usable key at all is
//! an error: the adapter should treat it like a failed fetch and keep serving
//! the keys it has.

use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde_json::Value;

use super::keys::usable_for_any;
use super::strict_json::{parse_value, StrictJsonError};

/// Largest JWKS document accepted. Real ones are a few KiB, more with
/// `x5c` certificate chains.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Most keys accepted in one document. Issuers publish a handful; every
/// kid-less token is checked against each key, so the count is bounded.
pub const MAX_JWKS_KEYS: usize = 100;

/// Why a JWKS document was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The document is larger than [`MAX_JWKS_BYTES`].
    #[error("JWKS document is {size} bytes; at most {max} are accepted")]
    TooLarge {
        /// The document's size.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// The document is not valid JSON.
    #[error("JWKS document is not valid JSON")]
    InvalidJson,
    /// Some JSON object in the document repeats a member name.
    #[error("JWKS document repeats a member name in some object")]
    DuplicateKey,
    /// The document is not an object with a `keys` array.
    #[error("JWKS document must be a JSON object with a \"keys\" array")]
    MissingKeys,
    /// The document lists more than [`MAX_JWKS_KEYS`] keys.
    #[error("JWKS document lists {count} keys; at most {max} are accepted")]
    TooManyKeys {
        /// How many keys the document lists.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// No key in the document can verify any supported algorithm.
    #[error("JWKS document has no usable signing key ({} skipped)", ignored.len())]
    NoUsableKeys {
        /// Every key, with why it was skipped.
        ignored: Vec<IgnoredKey>,
    },
}

/// A key of the document that was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredKey {
    /// Its position in `keys`.
    pub index: usize,
    /// Its `kid`, if it had a string one.
    pub kid: Option<String>,
    /// Why it was skipped.
    pub reason: &'static str,
}

/// A parsed JWKS document: the usable keys, and what was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedJwks {
    /// The keys that can verify at least one supported algorithm.
    pub keys: JwkSet,
    /// Keys skipped, for logs.
    pub ignored: Vec<IgnoredKey>,
}

/// Parses a JWKS document, keeping the keys we can verify with.
pub fn parse_jwks(bytes: &[u8]) -> Result<ParsedJwks, JwksError> {
    if bytes.len() > MAX_JWKS_BYTES {
        return Err(JwksError::TooLarge {
            size: bytes.len(),
            max: MAX_JWKS_BYTES,
        });
    }
    let doc = parse_value(bytes).map_err(|e| match e {
        StrictJsonError::DuplicateKey => JwksError::DuplicateKey,
        StrictJsonError::Syntax | StrictJsonError::NotAnObject => JwksError::InvalidJson,
    })?;
    let Some(Value::Array(entries)) = doc.get("keys") else {
        return Err(JwksError::MissingKeys);
    };
    if entries.len() > MAX_JWKS_KEYS {
        return Err(JwksError::TooManyKeys {
            count: entries.len(),
            max: MAX_JWKS_KEYS,
        });
    }
    let mut keys = Vec::new();
    let mut ignored = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let kid = entry.get("kid").and_then(Value::as_str).map(str::to_owned);
        match serde_json::from_value::<Jwk>(entry.clone()) {
            Ok(jwk) if usable_for_any(&jwk) => keys.push(jwk),
            Ok(_) => ignored.push(IgnoredKey {
                index,
                kid,
                reason: "not usable for any supported signing algorithm",
            }),
            Err(_) => ignored.push(IgnoredKey {
                index,
                kid,
                reason: "unsupported key type or malformed key",
            }),
        }
    }
    if keys.is_empty() {
        return Err(JwksError::NoUsableKeys { ignored });
    }
    Ok(ParsedJwks {
        keys: JwkSet { keys },
        ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::json;

    fn rsa_key(kid: &str) -> Value {
        json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
               "n": URL_SAFE_NO_PAD.encode([0xc5u8; 256]), "e": "AQAB"})
    }

    #[test]
    fn keeps_usable_keys_and_reports_the_rest() {
        let doc = json!({"keys": [
            rsa_key("good"),
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": URL_SAFE_NO_PAD.encode([0xc5u8; 256]), "e": "AQAB"},
            {"kty": "EC", "kid": "p521", "crv": "P-521", "x": "AA", "y": "AA"},
            {"kty": "OKP", "kid": "x25519", "crv": "X25519", "x": "AA"},
            {"kty": "weird", "kid": 7},
            "not an object"
        ]});
        let parsed = parse_jwks(doc.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.keys.keys.len(), 1);
        assert_eq!(parsed.keys.keys[0].common.key_id.as_deref(), Some("good"));
        let ignored: Vec<_> = parsed.ignored.iter().map(|i| i.index).collect();
        assert_eq!(ignored, [1, 2, 3, 4, 5]);
        assert_eq!(parsed.ignored[0].kid.as_deref(), Some("enc"));
        assert_eq!(parsed.ignored[3].kid, None);
    }

    #[test]
    fn refuses_bad_documents() {
        assert_eq!(parse_jwks(b"nope"), Err(JwksError::InvalidJson));
        assert_eq!(parse_jwks(b"[]"), Err(JwksError::MissingKeys));
        assert_eq!(parse_jwks(br#"{"keys": {}}"#), Err(JwksError::MissingKeys));
        assert_eq!(
            parse_jwks(br#"{"keys": [], "keys": []}"#),
            Err(JwksError::DuplicateKey)
        );
        assert!(matches!(
            parse_jwks(br#"{"keys": []}"#),
            Err(JwksError::NoUsableKeys { .. })
        ));
        let big = vec![b' '; MAX_JWKS_BYTES + 1];
        assert!(matches!(parse_jwks(&big), Err(JwksError::TooLarge { .. })));
        let many: Vec<_> = (0..=MAX_JWKS_KEYS)
            .map(|i| rsa_key(&i.to_string()))
            .collect();
        let doc = json!({ "keys": many }).to_string();
        assert_eq!(
            parse_jwks(doc.as_bytes()),
            Err(JwksError::TooManyKeys {
                count: MAX_JWKS_KEYS + 1,
                max: MAX_JWKS_KEYS
            })
        );
    }
}
