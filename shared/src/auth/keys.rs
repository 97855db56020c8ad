//! Which JWK may verify which algorithm.
//!
//! The classic JWT attacks pick a key for the wrong algorithm: an HS256 token
//! "signed" with an RSA public key used as the HMAC secret, or `alg: none`.
//! `none` cannot be represented here at all, and a key verifies an algorithm
//! only when its `kty` (and curve) belong to that algorithm's family and its
//! optional `alg`, `use` and `key_ops` agree. Key material is size-checked
//! too, which also keeps malformed keys away from code that assumes sizes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::jwk::{KeyOperations, PublicKeyUse};
use jsonwebtoken::Algorithm;
#[cfg(feature = "native-verify")]
use jsonwebtoken::DecodingKey;

/// Every algorithm Tidegate verifies.
pub(crate) const SUPPORTED_ALGORITHMS: [Algorithm; 12] = [
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Smallest RSA modulus we accept, in bits (NIST SP 800-131A).
const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus we accept, in bits; the verifier refuses more anyway,
/// and bigger keys only make each verification slower.
const MAX_RSA_BITS: usize = 4096;

/// Why a JWK cannot verify a given algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyMismatch {
    /// The key's `kty` or curve belongs to another algorithm family.
    #[error("the key type or curve does not fit the algorithm")]
    WrongKeyType,
    /// The key's `alg` names a different algorithm.
    #[error("the key's `alg` names a different algorithm")]
    WrongAlgorithm,
    /// The key's `use` is not `sig`, or its `key_ops` lack `verify`.
    #[error("the key is not meant for verifying signatures (`use`/`key_ops`)")]
    NotForSignatures,
    /// The key material is not valid base64url or has an unsafe size.
    #[error("the key material is malformed or of an unacceptable size")]
    InvalidKeyMaterial,
}

/// The public key material of a JWK that passed the checks for one
/// algorithm, as base64url text straight from the JWK: what a signature
/// checker outside this crate (WebCrypto's `importKey("jwk", ...)`) imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationKey<'k> {
    /// An HMAC secret (`kty: oct`), at least as long as the hash output.
    Hmac {
        /// The secret, base64url (JWK `k`).
        k: &'k str,
    },
    /// An RSA public key of 2048 to 4096 bits (`kty: RSA`).
    Rsa {
        /// The modulus, base64url big-endian (JWK `n`).
        n: &'k str,
        /// The public exponent, base64url big-endian (JWK `e`).
        e: &'k str,
    },
    /// A NIST curve point (`kty: EC`) whose coordinates have the curve's size.
    Ec {
        /// The curve, which the algorithm fixes (ES256: P-256, ES384: P-384).
        curve: EcCurve,
        /// The x coordinate, base64url (JWK `x`).
        x: &'k str,
        /// The y coordinate, base64url (JWK `y`).
        y: &'k str,
    },
    /// An Ed25519 public key of 32 bytes (`kty: OKP`, `crv: Ed25519`).
    Ed25519 {
        /// The key, base64url (JWK `x`).
        x: &'k str,
    },
}

/// The NIST curves Tidegate verifies ECDSA signatures on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcCurve {
    /// P-256 (ES256).
    P256,
    /// P-384 (ES384).
    P384,
}

impl EcCurve {
    /// The JWK / WebCrypto name: `P-256` or `P-384`.
    pub fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
        }
    }
}

/// The key material of `jwk` for verifying `alg`, if the pair is safe: the
/// same checks as `usable_for`, then the material in typed form.
pub fn verification_key(jwk: &Jwk, alg: Algorithm) -> Result<VerificationKey<'_>, KeyMismatch> {
    check_metadata(jwk, alg)?;
    check_material(jwk, alg)?;
    // check_material has matched the parameters against `alg` already.
    Ok(match &jwk.algorithm {
        AlgorithmParameters::OctetKey(p) => VerificationKey::Hmac { k: &p.value },
        AlgorithmParameters::RSA(p) => VerificationKey::Rsa { n: &p.n, e: &p.e },
        AlgorithmParameters::EllipticCurve(p) => VerificationKey::Ec {
            curve: match p.curve {
                EllipticCurve::P256 => EcCurve::P256,
                EllipticCurve::P384 => EcCurve::P384,
                _ => return Err(KeyMismatch::WrongKeyType),
            },
            x: &p.x,
            y: &p.y,
        },
        AlgorithmParameters::OctetKeyPair(p) => VerificationKey::Ed25519 { x: &p.x },
    })
}

/// The jsonwebtoken verification key for `jwk` and `alg`, if the pair is safe.
#[cfg(feature = "native-verify")]
pub fn decoding_key_for(jwk: &Jwk, alg: Algorithm) -> Result<DecodingKey, KeyMismatch> {
    check_metadata(jwk, alg)?;
    check_material(jwk, alg)?;
    DecodingKey::from_jwk(jwk).map_err(|_| KeyMismatch::InvalidKeyMaterial)
}

/// Whether `jwk` may verify `alg` (see [`decoding_key_for`]).
pub(crate) fn usable_for(jwk: &Jwk, alg: Algorithm) -> bool {
    check_metadata(jwk, alg).is_ok() && check_material(jwk, alg).is_ok()
}

/// Whether `jwk` may verify any supported algorithm.
pub(crate) fn usable_for_any(jwk: &Jwk) -> bool {
    SUPPORTED_ALGORITHMS.iter().any(|alg| usable_for(jwk, *alg))
}

/// The key in `set` to verify a token with header `kid` and `alg`.
///
/// With a `kid`, the first key with that id usable for `alg`. Without one,
/// the key usable for `alg` only if it is the only such key: guessing among
/// several would let the token pick, and trying each would multiply the cost
/// of a bogus token by the size of the set.
pub fn select_key<'a>(set: &'a JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<&'a Jwk> {
    select_key_index(set, kid, alg).and_then(|i| set.keys.get(i))
}

/// The position in `set.keys` of the key [`select_key`] picks.
pub(crate) fn select_key_index(set: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<usize> {
    let mut usable = set
        .keys
        .iter()
        .enumerate()
        .filter(|(_, k)| usable_for(k, alg));
    match kid {
        Some(kid) => usable
            .find(|(_, k)| k.common.key_id.as_deref() == Some(kid))
            .map(|(i, _)| i),
        None => match (usable.next(), usable.next()) {
            (Some((only, _)), None) => Some(only),
            _ => None,
        },
    }
}

fn check_metadata(jwk: &Jwk, alg: Algorithm) -> Result<(), KeyMismatch> {
    if let Some(key_alg) = jwk.common.key_algorithm {
        if algorithm_of(key_alg) != Some(alg) {
            return Err(KeyMismatch::WrongAlgorithm);
        }
    }
    if let Some(key_use) = &jwk.common.public_key_use {
        if *key_use != PublicKeyUse::Signature {
            return Err(KeyMismatch::NotForSignatures);
        }
    }
    if let Some(ops) = &jwk.common.key_operations {
        if !ops.contains(&KeyOperations::Verify) {
            return Err(KeyMismatch::NotForSignatures);
        }
    }
    Ok(())
}

fn check_material(jwk: &Jwk, alg: Algorithm) -> Result<(), KeyMismatch> {
    use Algorithm::*;
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::OctetKey(p), HS256 | HS384 | HS512) => {
            // RFC 7518 §3.2: at least as long as the hash output.
            let min = match alg {
                HS256 => 32,
                HS384 => 48,
                _ => 64,
            };
            let k = decode(&p.value)?;
            if k.len() < min {
                return Err(KeyMismatch::InvalidKeyMaterial);
            }
        }
        (AlgorithmParameters::RSA(p), RS256 | RS384 | RS512 | PS256 | PS384 | PS512) => {
            let n = decode(&p.n)?;
            let e = decode(&p.e)?;
            let bits = bit_length(&n);
            let e_len = e.iter().skip_while(|b| **b == 0).count();
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) || !(1..=8).contains(&e_len) {
                return Err(KeyMismatch::InvalidKeyMaterial);
            }
        }
        (AlgorithmParameters::EllipticCurve(p), ES256 | ES384) => {
            let size = match (&p.curve, alg) {
                (EllipticCurve::P256, ES256) => 32,
                (EllipticCurve::P384, ES384) => 48,
                _ => return Err(KeyMismatch::WrongKeyType),
            };
            if decode(&p.x)?.len() != size || decode(&p.y)?.len() != size {
                return Err(KeyMismatch::InvalidKeyMaterial);
            }
        }
        (AlgorithmParameters::OctetKeyPair(p), EdDSA) => {
            if p.curve != EllipticCurve::Ed25519 {
                return Err(KeyMismatch::WrongKeyType);
            }
            // Exactly 32 bytes: the verifier slices the first 32 unchecked.
            if decode(&p.x)?.len() != 32 {
                return Err(KeyMismatch::InvalidKeyMaterial);
            }
        }
        _ => return Err(KeyMismatch::WrongKeyType),
    }
    Ok(())
}

fn decode(b64: &str) -> Result<Vec<u8>, KeyMismatch> {
    URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| KeyMismatch::InvalidKeyMaterial)
}

/// The bit length of a big-endian unsigned integer.
fn bit_length(be: &[u8]) -> usize {
    let mut digits = be.iter().skip_while(|b| **b == 0);
    match digits.next() {
        None => 0,
        Some(first) => {
            let rest = digits.count();
            rest.saturating_mul(8)
                .saturating_add(8usize.saturating_sub(first.leading_zeros() as usize))
        }
    }
}

/// The signing algorithm a JWK `alg` names, if we support it.
fn algorithm_of(key_alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match key_alg {
        KeyAlgorithm::HS256 => Algorithm::HS256,
        KeyAlgorithm::HS384 => Algorithm::HS384,
        KeyAlgorithm::HS512 => Algorithm::HS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        KeyAlgorithm::RSA1_5
        | KeyAlgorithm::RSA_OAEP
        | KeyAlgorithm::RSA_OAEP_256
        | KeyAlgorithm::UNKNOWN_ALGORITHM => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwk(v: serde_json::Value) -> Jwk {
        serde_json::from_value(v).unwrap()
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn oct(len: usize) -> Jwk {
        jwk(json!({"kty": "oct", "k": b64(&vec![7u8; len])}))
    }

    fn rsa(bits: usize) -> Jwk {
        let mut n = vec![0xffu8; bits / 8];
        n.insert(0, 0); // a leading zero must not count
        jwk(json!({"kty": "RSA", "n": b64(&n), "e": "AQAB"}))
    }

    #[test]
    fn families_never_cross() {
        let hs = oct(64);
        let rs = rsa(2048);
        let ec = jwk(json!({"kty": "EC", "crv": "P-256", "x": b64(&[1; 32]), "y": b64(&[2; 32])}));
        let ed = jwk(json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&[3; 32])}));
        for alg in SUPPORTED_ALGORITHMS {
            let name = format!("{alg:?}");
            assert_eq!(usable_for(&hs, alg), name.starts_with("HS"), "{name}");
            assert_eq!(
                usable_for(&rs, alg),
                name.starts_with("RS") || name.starts_with("PS"),
                "{name}"
            );
            assert_eq!(usable_for(&ec, alg), alg == Algorithm::ES256, "{name}");
            assert_eq!(usable_for(&ed, alg), alg == Algorithm::EdDSA, "{name}");
        }
    }

    #[test]
    fn key_metadata_must_agree() {
        let mut k = rsa(2048);
        k.common.key_algorithm = Some(KeyAlgorithm::RS256);
        assert!(usable_for(&k, Algorithm::RS256));
        assert_eq!(
            verification_key(&k, Algorithm::PS256).unwrap_err(),
            KeyMismatch::WrongAlgorithm
        );
        k.common.key_algorithm = Some(KeyAlgorithm::RSA_OAEP);
        assert!(!usable_for_any(&k));
        k.common.key_algorithm = None;
        k.common.public_key_use = Some(PublicKeyUse::Encryption);
        assert_eq!(
            verification_key(&k, Algorithm::RS256).unwrap_err(),
            KeyMismatch::NotForSignatures
        );
        k.common.public_key_use = Some(PublicKeyUse::Signature);
        k.common.key_operations = Some(vec![KeyOperations::Encrypt]);
        assert!(!usable_for(&k, Algorithm::RS256));
        k.common.key_operations = Some(vec![KeyOperations::Verify]);
        assert!(usable_for(&k, Algorithm::RS256));
    }

    #[test]
    fn key_sizes_are_checked() {
        assert!(!usable_for(&oct(31), Algorithm::HS256));
        assert!(usable_for(&oct(32), Algorithm::HS256));
        assert!(!usable_for(&oct(32), Algorithm::HS384));
        assert!(!usable_for(&oct(63), Algorithm::HS512));
        assert!(!usable_for(&rsa(1024), Algorithm::RS256));
        assert!(usable_for(&rsa(4096), Algorithm::RS256));
        assert!(!usable_for(&rsa(4104), Algorithm::RS256));
        let short_ed = jwk(json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&[3; 16])}));
        assert_eq!(
            verification_key(&short_ed, Algorithm::EdDSA).unwrap_err(),
            KeyMismatch::InvalidKeyMaterial
        );
        let p384_as_256 =
            jwk(json!({"kty": "EC", "crv": "P-384", "x": b64(&[1; 48]), "y": b64(&[2; 48])}));
        assert!(!usable_for(&p384_as_256, Algorithm::ES256));
        assert!(usable_for(&p384_as_256, Algorithm::ES384));
        let bad_b64 = jwk(json!({"kty": "oct", "k": "!!!"}));
        assert!(!usable_for_any(&bad_b64));
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[1]), 1);
        assert_eq!(bit_length(&[0, 0x80, 0]), 16);
    }

    #[test]
    fn selection_without_kid_needs_a_single_candidate() {
        let mut a = oct(32);
        a.common.key_id = Some("a".into());
        let mut b = rsa(2048);
        b.common.key_id = Some("b".into());
        let set = JwkSet {
            keys: vec![a.clone(), b.clone()],
        };
        assert_eq!(select_key(&set, None, Algorithm::HS256), Some(&a));
        assert_eq!(select_key(&set, None, Algorithm::RS256), Some(&b));
        assert_eq!(select_key(&set, Some("a"), Algorithm::HS256), Some(&a));
        assert_eq!(select_key(&set, Some("a"), Algorithm::RS256), None);
        assert_eq!(select_key(&set, Some("c"), Algorithm::HS256), None);
        let mut c = oct(32);
        c.common.key_id = Some("c".into());
        let set = JwkSet {
            keys: vec![a, b, c.clone()],
        };
        assert_eq!(select_key(&set, None, Algorithm::HS256), None);
        assert_eq!(select_key(&set, Some("c"), Algorithm::HS256), Some(&c));
    }
}
