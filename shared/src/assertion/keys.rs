//! The assertion signing keys: a JWK Set of private keys, read once per
//! isolate, and the public JWK Set rendered from it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

/// Most keys in the set: the signing key, the next one and the last one.
pub const MAX_ASSERTION_KEYS: usize = 8;
/// Longest accepted `kid`, in bytes.
pub const MAX_ASSERTION_KID_BYTES: usize = 128;

/// A signature algorithm for assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssertionAlgorithm {
    /// EdDSA over Ed25519 (RFC 8037): an `OKP` key with `crv` `Ed25519`.
    EdDsa,
    /// ECDSA over P-256 with SHA-256 (RFC 7518 §3.4): an `EC` key with `crv` `P-256`.
    Es256,
}

impl AssertionAlgorithm {
    /// The JWS `alg` name: `EdDSA` or `ES256`.
    pub fn jws_name(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
        }
    }

    /// The length of a signature in bytes (Ed25519: 64; ES256: `r || s`, 64).
    pub fn signature_len(self) -> usize {
        64
    }
}

/// One signing key: its `kid`, algorithm, private and public JWK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionSigningKey {
    kid: String,
    alg: AssertionAlgorithm,
    private_jwk: Value,
    public_jwk: Value,
    header_b64: String,
}

impl AssertionSigningKey {
    /// The key id, sent as the JOSE header's `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The signature algorithm.
    pub fn alg(&self) -> AssertionAlgorithm {
        self.alg
    }

    /// The private key as a JWK with only the members WebCrypto imports
    /// (`kty`, `crv`, `x`, `y` for EC, `d`). Never log or serve it.
    pub fn private_jwk(&self) -> &Value {
        &self.private_jwk
    }

    /// The public key as published: `kty`, `crv`, `x` (`y`), `kid`, `alg`, `use`.
    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// The base64url JOSE header of assertions signed with this key:
    /// `{"alg":…,"kid":…,"typ":"JWT"}`.
    pub fn header_b64(&self) -> &str {
        &self.header_b64
    }
}

/// The assertion keys: the first one signs, all are published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionKeySet {
    keys: Vec<AssertionSigningKey>,
    jwks: String,
}

/// What is wrong with the assertion key set (the Worker secret). Messages
/// name the key by index and the member at fault, never key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssertionKeyError {
    /// The text is not a JSON object.
    #[error("is not a JWK Set: {0}; expected {{\"keys\": [{{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"kid\": …, \"x\": …, \"d\": …}}]}}")]
    NotJson(String),
    /// There is no `keys` array, or it is empty.
    #[error("has no keys; expected a JWK Set with a non-empty \"keys\" array")]
    NoKeys,
    /// More keys than [`MAX_ASSERTION_KEYS`].
    #[error("has {0} keys; at most {MAX_ASSERTION_KEYS} are accepted (the signing key, the next and the previous)")]
    TooManyKeys(usize),
    /// A key is not a JSON object.
    #[error("keys[{0}] is not a JSON object")]
    NotObject(usize),
    /// A required member is absent or not a string.
    #[error("keys[{index}].{member} is missing or not a string")]
    Missing {
        /// Position of the key in `keys`.
        index: usize,
        /// The JWK member.
        member: &'static str,
    },
    /// The key type or curve is not one assertions are signed with.
    #[error("keys[{index}] is kty `{kty}` crv `{crv}`; expected OKP/Ed25519 (EdDSA) or EC/P-256 (ES256)")]
    UnsupportedKey {
        /// Position of the key in `keys`.
        index: usize,
        /// The `kty` as written.
        kty: String,
        /// The `crv` as written.
        crv: String,
    },
    /// A key member is not unpadded base64url of the curve's length.
    #[error("keys[{index}].{member} is not {expected} bytes of unpadded base64url")]
    BadMember {
        /// Position of the key in `keys`.
        index: usize,
        /// The JWK member.
        member: &'static str,
        /// The expected length in bytes.
        expected: usize,
    },
    /// `alg` is present and disagrees with the key type.
    #[error("keys[{index}].alg is `{alg}`, but the key signs {expected}")]
    AlgMismatch {
        /// Position of the key in `keys`.
        index: usize,
        /// The `alg` as written.
        alg: String,
        /// The algorithm the key type implies.
        expected: &'static str,
    },
    /// `use` is present and is not `sig`, or `key_ops` lacks `sign`.
    #[error("keys[{index}] is not a signing key (`use` must be \"sig\" and `key_ops`, if given, must contain \"sign\")")]
    NotForSigning {
        /// Position of the key in `keys`.
        index: usize,
    },
    /// A `kid` that is empty, too long or holds control characters.
    #[error("keys[{index}].kid must be 1 to {MAX_ASSERTION_KID_BYTES} printable ASCII characters")]
    BadKid {
        /// Position of the key in `keys`.
        index: usize,
    },
    /// Two keys share a `kid`.
    #[error(
        "keys[{index}].kid `{kid}` is already used by keys[{first}]; each key needs its own kid"
    )]
    DuplicateKid {
        /// Position of the repeated key.
        index: usize,
        /// The repeated `kid`.
        kid: String,
        /// Position of its first use.
        first: usize,
    },
}

impl AssertionKeySet {
    /// Reads a JWK Set of private keys (`{"keys": [...]}`; a bare array is
    /// also accepted). Every problem is reported, each naming its key.
    pub fn parse(text: &str) -> Result<Self, Vec<AssertionKeyError>> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| vec![AssertionKeyError::NotJson(e.to_string())])?;
        let list = match &value {
            Value::Object(set) => match set.get("keys") {
                Some(Value::Array(keys)) => keys,
                _ => return Err(vec![AssertionKeyError::NoKeys]),
            },
            Value::Array(keys) => keys,
            _ => return Err(vec![AssertionKeyError::NotJson("not an object".into())]),
        };
        if list.is_empty() {
            return Err(vec![AssertionKeyError::NoKeys]);
        }
        if list.len() > MAX_ASSERTION_KEYS {
            return Err(vec![AssertionKeyError::TooManyKeys(list.len())]);
        }
        let mut errors = Vec::new();
        let mut keys: Vec<AssertionSigningKey> = Vec::new();
        for (index, jwk) in list.iter().enumerate() {
            match signing_key(index, jwk) {
                Ok(key) => {
                    if let Some(first) = keys.iter().position(|k| k.kid == key.kid) {
                        errors.push(AssertionKeyError::DuplicateKid {
                            index,
                            kid: key.kid.clone(),
                            first,
                        });
                    }
                    keys.push(key);
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let public: Vec<&Value> = keys.iter().map(|k| &k.public_jwk).collect();
        let jwks = json!({ "keys": public }).to_string();
        Ok(Self { keys, jwks })
    }

    /// The key that signs: the first one.
    pub fn signer(&self) -> Option<&AssertionSigningKey> {
        self.keys.first()
    }

    /// Every key, in order.
    pub fn keys(&self) -> &[AssertionSigningKey] {
        &self.keys
    }

    /// The public JWK Set document (RFC 7517 §5), public members only.
    pub fn jwks_document(&self) -> &str {
        &self.jwks
    }
}

fn signing_key(index: usize, jwk: &Value) -> Result<AssertionSigningKey, Vec<AssertionKeyError>> {
    let Value::Object(jwk) = jwk else {
        return Err(vec![AssertionKeyError::NotObject(index)]);
    };
    let mut errors = Vec::new();
    let text = |member: &'static str, errors: &mut Vec<AssertionKeyError>| -> Option<String> {
        let found = jwk.get(member).and_then(Value::as_str).map(str::to_owned);
        if found.is_none() {
            errors.push(AssertionKeyError::Missing { index, member });
        }
        found
    };
    let kty = text("kty", &mut errors);
    let crv = text("crv", &mut errors);
    let kid = text("kid", &mut errors);
    let (Some(kty), Some(crv)) = (kty, crv) else {
        return Err(errors);
    };
    let alg = match (kty.as_str(), crv.as_str()) {
        ("OKP", "Ed25519") => AssertionAlgorithm::EdDsa,
        ("EC", "P-256") => AssertionAlgorithm::Es256,
        _ => {
            errors.push(AssertionKeyError::UnsupportedKey { index, kty, crv });
            return Err(errors);
        }
    };
    let mut members: Vec<&'static str> = vec!["x"];
    if alg == AssertionAlgorithm::Es256 {
        members.push("y");
    }
    members.push("d");
    let mut material = Map::new();
    material.insert("kty".into(), Value::from(kty.as_str()));
    material.insert("crv".into(), Value::from(crv.as_str()));
    for member in members {
        if let Some(value) = text(member, &mut errors) {
            let ok = URL_SAFE_NO_PAD
                .decode(value.as_bytes())
                .is_ok_and(|bytes| bytes.len() == 32);
            if ok {
                material.insert(member.into(), Value::from(value));
            } else {
                errors.push(AssertionKeyError::BadMember {
                    index,
                    member,
                    expected: 32,
                });
            }
        }
    }
    if let Some(written) = jwk.get("alg") {
        if written.as_str() != Some(alg.jws_name()) {
            errors.push(AssertionKeyError::AlgMismatch {
                index,
                alg: written
                    .as_str()
                    .map_or_else(|| written.to_string(), str::to_owned),
                expected: alg.jws_name(),
            });
        }
    }
    let use_ok = jwk.get("use").is_none_or(|u| u.as_str() == Some("sig"));
    let ops_ok = jwk.get("key_ops").is_none_or(|ops| {
        ops.as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("sign")))
    });
    if !use_ok || !ops_ok {
        errors.push(AssertionKeyError::NotForSigning { index });
    }
    if let Some(kid) = &kid {
        let printable = kid.bytes().all(|b| (0x20..0x7f).contains(&b));
        if kid.is_empty() || kid.len() > MAX_ASSERTION_KID_BYTES || !printable {
            errors.push(AssertionKeyError::BadKid { index });
        }
    }
    let Some(kid) = kid.filter(|_| errors.is_empty()) else {
        return Err(errors);
    };
    let mut public = material.clone();
    public.remove("d");
    public.insert("kid".into(), Value::from(kid.as_str()));
    public.insert("alg".into(), Value::from(alg.jws_name()));
    public.insert("use".into(), Value::from("sig"));
    let header = json!({ "alg": alg.jws_name(), "kid": kid, "typ": "JWT" }).to_string();
    Ok(AssertionSigningKey {
        header_b64: URL_SAFE_NO_PAD.encode(header),
        kid,
        alg,
        private_jwk: Value::Object(material),
        public_jwk: Value::Object(public),
    })
}
