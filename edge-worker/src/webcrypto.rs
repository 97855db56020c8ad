//! JWT signature checks with WebCrypto (`crypto.subtle`): native code in
//! workerd (BoringSSL), so an RS256 check costs a fraction of what RSA
//! compiled to wasm does, and the wasm carries no RSA, ECDSA, Ed25519 or HMAC
//! code at all (`tidegate-policy` is built without `native-verify`).
//!
//! The policy has chosen the key and checked everything else
//! (`UnverifiedJwt::signature_check`); this module only imports the key and
//! asks `verify`. Imported keys are kept per isolate under the policy's
//! `SignatureCheck::key_fingerprint` (issuer, `kid`, algorithm, key
//! material), so a rotated key is imported afresh, never confused with the
//! old one.
//!
//! A key WebCrypto will not import (an exponent BoringSSL refuses, a point
//! off the curve) answers `KeyRefused`, i.e. 401 as for an unknown key, with
//! a warning in the log; there is no wasm fallback, since the wasm verifiers
//! are not in the build. A signature WebCrypto cannot even parse is invalid.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;

use serde::Serialize;
use tidegate_policy::auth::{
    Algorithm, SignatureCheck, SignatureOutcome, SignatureVerifier, VerificationKey,
};
use wasm_bindgen::prelude::*;
use worker::js_sys::{self, Array, Object, Promise, Reflect, Uint8Array};
use worker::wasm_bindgen_futures::JsFuture;

use crate::error::describe;
use crate::log::{self, Level};

#[wasm_bindgen]
extern "C" {
    /// WebCrypto's `SubtleCrypto` (`crypto.subtle`): the one binding of it,
    /// for token checks here and identity assertions (`crate::assertion`).
    pub(crate) type SubtleCrypto;

    /// `importKey(format, keyData, algorithm, extractable, keyUsages)`.
    #[wasm_bindgen(method, catch, js_name = importKey)]
    pub(crate) fn import_key(
        this: &SubtleCrypto,
        format: &str,
        key_data: &JsValue,
        algorithm: &Object,
        extractable: bool,
        key_usages: &Array,
    ) -> Result<Promise, JsValue>;

    /// `sign(algorithm, key, data)`.
    #[wasm_bindgen(method, catch)]
    pub(crate) fn sign(
        this: &SubtleCrypto,
        algorithm: &Object,
        key: &JsValue,
        data: &Uint8Array,
    ) -> Result<Promise, JsValue>;

    /// `verify(algorithm, key, signature, data)`.
    #[wasm_bindgen(method, catch)]
    pub(crate) fn verify(
        this: &SubtleCrypto,
        algorithm: &Object,
        key: &JsValue,
        signature: &Uint8Array,
        data: &Uint8Array,
    ) -> Result<Promise, JsValue>;
}

/// Most imported keys kept per isolate. Issuers publish a handful; the bound
/// only matters after many rotations, and then the map simply starts over.
const MAX_CACHED_KEYS: usize = 64;

thread_local! {
    /// Imported `CryptoKey`s by key fingerprint.
    static KEYS: RefCell<HashMap<[u8; 32], JsValue>> = RefCell::new(HashMap::new());
}

/// The signature checker of the edge: WebCrypto.
pub struct WebCrypto;

impl SignatureVerifier for WebCrypto {
    fn check(&self, check: &SignatureCheck<'_>) -> impl Future<Output = SignatureOutcome> {
        verify_signature(check)
    }
}

async fn verify_signature(check: &SignatureCheck<'_>) -> SignatureOutcome {
    let Some(subtle) = subtle() else {
        warn(
            "webcrypto_unavailable",
            check,
            "no crypto.subtle in this runtime",
        );
        return SignatureOutcome::KeyRefused;
    };
    let params = Params::of(check.alg());
    let key = match key_for(&subtle, check, &params).await {
        Ok(key) => key,
        Err(reason) => {
            warn("webcrypto_import_failed", check, &reason);
            return SignatureOutcome::KeyRefused;
        }
    };
    // Copies: WebCrypto gets bytes it owns, not views into wasm memory.
    let signature = Uint8Array::from(check.signature());
    let data = Uint8Array::from(check.signing_input());
    let Ok(promise) = subtle.verify(&params.verify, &key, &signature, &data) else {
        return SignatureOutcome::Invalid;
    };
    match JsFuture::from(promise).await {
        Ok(valid) if valid.as_bool() == Some(true) => SignatureOutcome::Valid,
        // false, or a signature it refused to parse (wrong length...).
        _ => SignatureOutcome::Invalid,
    }
}

/// The `CryptoKey` for `check`'s key and algorithm: cached, or imported now.
async fn key_for(
    subtle: &SubtleCrypto,
    check: &SignatureCheck<'_>,
    params: &Params,
) -> Result<JsValue, String> {
    let fingerprint = check.key_fingerprint();
    if let Some(key) = KEYS.with(|keys| keys.borrow().get(&fingerprint).cloned()) {
        return Ok(key);
    }
    let usages = Array::of1(&JsValue::from_str("verify"));
    let promise = subtle
        .import_key("jwk", &jwk_of(check.key()), &params.import, false, &usages)
        .map_err(|e| describe(&e))?;
    let key = JsFuture::from(promise).await.map_err(|e| describe(&e))?;
    KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        if keys.len() >= MAX_CACHED_KEYS {
            keys.clear();
        }
        keys.insert(fingerprint, key.clone());
    });
    Ok(key)
}

/// The `CryptoKey` already imported in this isolate for `check`'s key and
/// algorithm, if any: for the fast path (`crate::fast`), which takes a
/// token only when no import is needed.
pub(crate) fn imported_key(check: &SignatureCheck<'_>) -> Option<JsValue> {
    let fingerprint = check.key_fingerprint();
    KEYS.with(|keys| keys.try_borrow().ok()?.get(&fingerprint).cloned())
}

/// WebCrypto's `verify` parameters for `alg`, as [`verify_signature`]
/// passes them.
pub(crate) fn verify_algorithm(alg: Algorithm) -> Object {
    Params::of(alg).verify
}

/// WebCrypto's algorithm parameters for importing a key and verifying.
struct Params {
    import: Object,
    verify: Object,
}

impl Params {
    fn of(alg: Algorithm) -> Self {
        let name = |n: &str| ("name", JsValue::from_str(n));
        let hash = |h: &str| ("hash", JsValue::from_str(h));
        let hmac = |h| Self::same(&[name("HMAC"), hash(h)]);
        let pkcs1 = |h| Self::same(&[name("RSASSA-PKCS1-v1_5"), hash(h)]);
        // RFC 7518 §3.5: the salt is as long as the hash output.
        let pss = |h, salt: u32| Self {
            import: object(&[name("RSA-PSS"), hash(h)]),
            verify: object(&[name("RSA-PSS"), ("saltLength", JsValue::from(salt))]),
        };
        let ecdsa = |curve: &str, h| Self {
            import: object(&[name("ECDSA"), ("namedCurve", JsValue::from_str(curve))]),
            verify: object(&[name("ECDSA"), hash(h)]),
        };
        match alg {
            Algorithm::HS256 => hmac("SHA-256"),
            Algorithm::HS384 => hmac("SHA-384"),
            Algorithm::HS512 => hmac("SHA-512"),
            Algorithm::RS256 => pkcs1("SHA-256"),
            Algorithm::RS384 => pkcs1("SHA-384"),
            Algorithm::RS512 => pkcs1("SHA-512"),
            Algorithm::PS256 => pss("SHA-256", 32),
            Algorithm::PS384 => pss("SHA-384", 48),
            Algorithm::PS512 => pss("SHA-512", 64),
            Algorithm::ES256 => ecdsa("P-256", "SHA-256"),
            Algorithm::ES384 => ecdsa("P-384", "SHA-384"),
            Algorithm::EdDSA => Self::same(&[name("Ed25519")]),
        }
    }

    fn same(members: &[(&str, JsValue)]) -> Self {
        Self {
            import: object(members),
            verify: object(members),
        }
    }
}

/// The public JWK WebCrypto imports: only the key material, so no `alg`,
/// `use` or `key_ops` of the published key can disagree with the import.
fn jwk_of(key: VerificationKey<'_>) -> Object {
    let s = JsValue::from_str;
    match key {
        VerificationKey::Hmac { k } => object(&[("kty", s("oct")), ("k", s(k))]),
        VerificationKey::Rsa { n, e } => object(&[("kty", s("RSA")), ("n", s(n)), ("e", s(e))]),
        VerificationKey::Ec { curve, x, y } => object(&[
            ("kty", s("EC")),
            ("crv", s(curve.name())),
            ("x", s(x)),
            ("y", s(y)),
        ]),
        VerificationKey::Ed25519 { x } => {
            object(&[("kty", s("OKP")), ("crv", s("Ed25519")), ("x", s(x))])
        }
    }
}

/// A plain JS object with `members` (WebCrypto's algorithm and key
/// dictionaries).
pub(crate) fn object(members: &[(&str, JsValue)]) -> Object {
    let object = Object::new();
    for (name, value) in members {
        // Setting a plain data property on a fresh object cannot fail.
        let _ = Reflect::set(&object, &JsValue::from_str(name), value);
    }
    object
}

/// `globalThis.crypto.subtle`.
pub(crate) fn subtle() -> Option<SubtleCrypto> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto")).ok()?;
    let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle")).ok()?;
    (subtle.is_object()).then(|| subtle.unchecked_into())
}

/// The warning logged when WebCrypto cannot check a token's signature
/// (the token is refused as for an unknown key).
#[derive(Serialize)]
struct SignatureCheckFailed<'a> {
    /// The token's algorithm (`RS256`, `EdDSA`...).
    alg: Algorithm,
    /// `webcrypto_unavailable` or `webcrypto_import_failed`.
    event: &'static str,
    /// The key's `kid`; `null` when it has none.
    kid: Option<&'a str>,
    /// What WebCrypto said, or why it was not asked.
    reason: &'a str,
}

fn warn(event: &'static str, check: &SignatureCheck<'_>, reason: &str) {
    log::event(
        Level::Warn,
        &SignatureCheckFailed {
            alg: check.alg(),
            event,
            kid: check.jwk().common.key_id.as_deref(),
            reason,
        },
    );
}
