//! Signed identity assertions and origin secrets, carried out.
//!
//! The policy (`tidegate_policy::assertion`) reads the key set, builds the
//! JOSE header and claims and says which headers the origin gets; this
//! module reads the Worker secrets, signs with WebCrypto and serves the
//! public JWK Set at `{admin_prefix}.well-known/jwks.json`.
//!
//! The key set secret is parsed, and its signing key imported as a
//! non-extractable `CryptoKey`, once per isolate (again only when the
//! secret's text changes). On import the key signs a probe that its
//! published public key must verify, so a JWK whose `d` does not belong to
//! its `x`/`y` is refused before any origin sees an assertion no one can
//! verify. When neither `[assertion]` nor any `origin_secret` is configured,
//! a request pays one empty check.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;
use tidegate_policy::assertion::{
    assertion_audience, build_assertion, origin_credential_headers, origin_credentials,
    AssertionAlgorithm, AssertionInput, AssertionKeySet, AssertionSigningKey,
};
use tidegate_policy::auth::Identity;
use tidegate_policy::config::{AssertionSettings, Route};
use tidegate_policy::problem::Problem;
use tidegate_policy::route::RequestId;
use wasm_bindgen::prelude::*;
use worker::js_sys::{self, Array, Object, Uint8Array};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Env, Headers, Response};

use crate::config::{string_binding, Gateway, Loaded};
use crate::error::{describe, EdgeError};
use crate::log::{self, Level};
use crate::webcrypto::{object, subtle};

/// The parsed key set and the signing key, imported.
struct Signer {
    keys: AssertionKeySet,
    crypto_key: JsValue,
}

type LoadedSigner = Result<Rc<Signer>, Rc<String>>;

thread_local! {
    /// The key set by the secret's text it was read from.
    static SIGNER: RefCell<Option<(String, LoadedSigner)>> = const { RefCell::new(None) };
}

/// The headers for the origin: `headers` without any client-sent assertion
/// or origin-secret header, plus the route's assertion and origin secret.
pub async fn origin_headers(
    env: &Env,
    gw: &Gateway,
    route: &Route,
    identity: Option<&Identity>,
    request_id: &RequestId,
    headers: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, EdgeError> {
    let Some(settings) = gw
        .config
        .assertion
        .as_ref()
        .filter(|_| route.assert_identity)
    else {
        return unsigned_origin_headers(env, gw, route, headers);
    };
    // Never empty: it holds the assertion's own header.
    let strip = origin_credential_headers(&gw.config);
    let signer = signer(env, settings).await?;
    let key = signer
        .keys
        .signer()
        .ok_or_else(|| EdgeError::AssertionKeys("no signing key".into()))?;
    let audience = assertion_audience(&route.upstream);
    let input = AssertionInput {
        issuer: &settings.issuer,
        audience: &audience,
        ttl: settings.ttl,
        identity,
        request_id: request_id.as_str(),
        now_ms: crate::flow::now_ms(),
        nonce: nonce(),
    };
    let unsigned = build_assertion(key, &input);
    let signature = sign_with(
        &signer.crypto_key,
        key.alg(),
        unsigned.signing_input().as_bytes(),
    )
    .await
    .map_err(EdgeError::AssertionSigning)?;
    let mut add = vec![(settings.header.clone(), unsigned.finish(&signature))];
    add.extend(origin_secret(env, route)?);
    Ok(origin_credentials(headers, &strip, add))
}

/// [`origin_headers`] for a route that signs no assertion (the fast path
/// takes no other): synchronous.
pub fn unsigned_origin_headers(
    env: &Env,
    gw: &Gateway,
    route: &Route,
    headers: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, EdgeError> {
    let strip = origin_credential_headers(&gw.config);
    if strip.is_empty() {
        return Ok(headers);
    }
    let add = origin_secret(env, route)?.into_iter().collect();
    Ok(origin_credentials(headers, &strip, add))
}

/// The route's origin secret header, from its Worker secret.
fn origin_secret(env: &Env, route: &Route) -> Result<Option<(String, String)>, EdgeError> {
    let Some(secret) = &route.origin_secret else {
        return Ok(None);
    };
    let value = string_binding(env, &secret.secret)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| EdgeError::MissingSecret(secret.secret.clone()))?;
    // A header value may not hold CR, LF, NUL or other controls.
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(EdgeError::UnusableSecret(secret.secret.clone()));
    }
    Ok(Some((secret.header.clone(), value)))
}

/// `GET {admin_prefix}.well-known/jwks.json`: the public keys, public and
/// cacheable; 404 when no `[assertion]` is configured.
pub async fn jwks(env: &Env, loaded: &Loaded) -> Result<Response, EdgeError> {
    let settings = loaded
        .as_ref()
        .ok()
        .and_then(|gw| gw.config.assertion.clone());
    let Some(settings) = settings else {
        return Err(EdgeError::NoAssertionKeys);
    };
    let signer = signer(env, &settings).await?;
    let headers = Headers::new();
    let _ = headers.set("content-type", "application/jwk-set+json");
    let _ = headers.set(
        "cache-control",
        &format!("public, max-age={}", settings.jwks_max_age.as_secs()),
    );
    Ok(Response::builder()
        .with_headers(headers)
        .fixed(signer.keys.jwks_document().as_bytes().to_vec()))
}

/// The problem for a JWKS request when none is configured.
pub fn no_jwks_problem() -> Problem {
    Problem::new(404, "route-not-found", "No route matches")
        .with_detail("This gateway signs no identity assertions, so it publishes no keys.")
}

/// The key set for `settings`: cached, or read and imported now.
async fn signer(env: &Env, settings: &AssertionSettings) -> Result<Rc<Signer>, EdgeError> {
    let binding = settings.keys_secret.as_str();
    let text = string_binding(env, binding)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| EdgeError::MissingSecret(binding.to_owned()))?;
    let cached = SIGNER.with(|cell| match cell.borrow().as_ref() {
        Some((source, loaded)) if *source == text => Some(loaded.clone()),
        _ => None,
    });
    let loaded = match cached {
        Some(loaded) => loaded,
        None => {
            let loaded = load(binding, &text).await.map(Rc::new).map_err(Rc::new);
            if let Err(e) = &loaded {
                log::event(
                    Level::Error,
                    &AssertionKeysInvalid {
                        detail: e.as_str(),
                        event: "assertion_keys_invalid",
                    },
                );
            }
            SIGNER.with(|cell| *cell.borrow_mut() = Some((text, loaded.clone())));
            loaded
        }
    };
    loaded.map_err(|e| EdgeError::AssertionKeys(e.to_string()))
}

/// The error logged when the key set secret does not parse or its signing
/// key does not import; requests needing an assertion answer 500 until the
/// secret changes.
#[derive(Serialize)]
struct AssertionKeysInvalid<'a> {
    /// What is wrong with it, prefixed with the secret's name.
    detail: &'a str,
    /// Always `assertion_keys_invalid`.
    event: &'static str,
}

/// The public half of the signing key as imported to verify the probe:
/// only the key material of the published JWK (no `kid`, `alg` or `use`).
/// A member the key lacks (`y` of an Ed25519 key) is `null`.
#[derive(Serialize)]
struct ProbeJwk<'a> {
    /// The curve: `Ed25519` or `P-256`.
    crv: Option<&'a str>,
    /// The key type: `OKP` or `EC`.
    kty: Option<&'a str>,
    /// The public point's x coordinate (Ed25519: the public key), base64url.
    x: Option<&'a str>,
    /// The public point's y coordinate (P-256 only), base64url.
    y: Option<&'a str>,
}

impl<'a> ProbeJwk<'a> {
    /// The members of `key`'s published JWK (all strings, as the policy
    /// writes them).
    fn of(key: &'a AssertionSigningKey) -> Self {
        let public = key.public_jwk();
        let member = |name: &str| public.get(name).and_then(|v| v.as_str());
        Self {
            crv: member("crv"),
            kty: member("kty"),
            x: member("x"),
            y: member("y"),
        }
    }
}

async fn load(binding: &str, text: &str) -> Result<Signer, String> {
    let keys = AssertionKeySet::parse(text).map_err(|errors| {
        let listed: Vec<String> = errors.iter().map(|e| format!("{binding} {e}")).collect();
        listed.join("; ")
    })?;
    let key = keys
        .signer()
        .ok_or_else(|| format!("{binding} has no keys"))?;
    let crypto_key = import(key)
        .await
        .map_err(|e| format!("{binding} keys[0] {e}"))?;
    Ok(Signer { keys, crypto_key })
}

/// Imports the signing key and proves it matches its published public key.
async fn import(key: &AssertionSigningKey) -> Result<JsValue, String> {
    let subtle = subtle().ok_or("cannot be used: no crypto.subtle in this runtime")?;
    let describe = |e: JsValue| format!("cannot be imported: {}", describe(&e));
    let params = import_params(key.alg());
    let private = js_sys::JSON::parse(&key.private_jwk().to_string()).map_err(describe)?;
    let sign_usage = Array::of1(&JsValue::from_str("sign"));
    let promise = subtle
        .import_key("jwk", &private, &params, false, &sign_usage)
        .map_err(describe)?;
    let crypto_key = JsFuture::from(promise).await.map_err(describe)?;

    let public = serde_json::to_string(&ProbeJwk::of(key))
        .map_err(|e| format!("cannot be imported: {e}"))?;
    let public = js_sys::JSON::parse(&public).map_err(describe)?;
    let verify_usage = Array::of1(&JsValue::from_str("verify"));
    let promise = subtle
        .import_key("jwk", &public, &params, false, &verify_usage)
        .map_err(describe)?;
    let public_key = JsFuture::from(promise).await.map_err(describe)?;
    let probe = b"tidegate assertion key check";
    let signature = sign_with(&crypto_key, key.alg(), probe).await?;
    let promise = subtle
        .verify(
            &sign_params(key.alg()),
            &public_key,
            &Uint8Array::from(signature.as_slice()),
            &Uint8Array::from(&probe[..]),
        )
        .map_err(describe)?;
    match JsFuture::from(promise).await {
        Ok(valid) if valid.as_bool() == Some(true) => Ok(crypto_key),
        _ => Err("has a private key `d` that does not belong to its public key".into()),
    }
}

/// Signs `input` (raw Ed25519, or ES256's `r || s`).
async fn sign_with(
    key: &JsValue,
    alg: AssertionAlgorithm,
    input: &[u8],
) -> Result<Vec<u8>, String> {
    let subtle = subtle().ok_or("no crypto.subtle in this runtime")?;
    let data = Uint8Array::from(input);
    let promise = subtle
        .sign(&sign_params(alg), key, &data)
        .map_err(|e| describe(&e))?;
    let buffer = JsFuture::from(promise).await.map_err(|e| describe(&e))?;
    let signature = Uint8Array::new(&buffer).to_vec();
    if signature.len() == alg.signature_len() {
        Ok(signature)
    } else {
        Err(format!("signature of {} bytes", signature.len()))
    }
}

fn import_params(alg: AssertionAlgorithm) -> Object {
    match alg {
        AssertionAlgorithm::EdDsa => object(&[("name", "Ed25519".into())]),
        AssertionAlgorithm::Es256 => {
            object(&[("name", "ECDSA".into()), ("namedCurve", "P-256".into())])
        }
    }
}

fn sign_params(alg: AssertionAlgorithm) -> Object {
    match alg {
        AssertionAlgorithm::EdDsa => object(&[("name", "Ed25519".into())]),
        AssertionAlgorithm::Es256 => {
            object(&[("name", "ECDSA".into()), ("hash", "SHA-256".into())])
        }
    }
}

/// 16 bytes from the runtime's CSPRNG for `jti`.
fn nonce() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    let _ = getrandom::getrandom(&mut bytes);
    bytes
}
