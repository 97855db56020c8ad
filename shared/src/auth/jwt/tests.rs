//! Known-answer tests: tokens are signed here with keys generated here.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{EncodingKey, Header};
use proptest::prelude::*;
use rand::rngs::OsRng;
use rand::RngCore;
use serde_json::{json, Value};

use super::*;
use crate::auth::{
    authorize, EcCurve, NativeVerifier, SignatureCheck, SignatureOutcome, SignatureVerifier,
    VerificationKey,
};

const ISS: &str = "https://idp.example.com/";
const AUD: &str = "https://api.example.com";
const NOW_S: u64 = 1_750_000_000;
const NOW: u64 = NOW_S * 1000;

/// Every algorithm Tidegate verifies.
const ALL: [Algorithm; 12] = crate::auth::keys::SUPPORTED_ALGORITHMS;

/// A signing key and the JWK that verifies it.
struct Signer {
    enc: EncodingKey,
    jwk: Jwk,
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn jwk(v: Value) -> Jwk {
    serde_json::from_value(v).unwrap()
}

/// Generated once per test binary: 2048-bit RSA generation is slow.
fn rsa_key() -> &'static rsa::RsaPrivateKey {
    static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| rsa::RsaPrivateKey::new(&mut OsRng, 2048).unwrap())
}

fn rsa_signer() -> Signer {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa_key();
    Signer {
        enc: EncodingKey::from_rsa_der(key.to_pkcs1_der().unwrap().as_bytes()),
        jwk: jwk(json!({"kty": "RSA", "kid": "rsa-1", "use": "sig",
                        "n": b64(key.n().to_bytes_be()), "e": b64(key.e().to_bytes_be())})),
    }
}

fn hs_signer() -> Signer {
    static SECRET: OnceLock<[u8; 64]> = OnceLock::new();
    let secret = SECRET.get_or_init(|| {
        let mut s = [0u8; 64];
        OsRng.fill_bytes(&mut s);
        s
    });
    Signer {
        enc: EncodingKey::from_secret(secret),
        jwk: jwk(json!({"kty": "oct", "kid": "hs-1", "k": b64(secret)})),
    }
}

fn es256_signer() -> Signer {
    use p256::pkcs8::EncodePrivateKey;
    static KEY: OnceLock<p256::ecdsa::SigningKey> = OnceLock::new();
    let key = KEY.get_or_init(|| p256::ecdsa::SigningKey::random(&mut OsRng));
    let point = key.verifying_key().to_encoded_point(false);
    Signer {
        enc: EncodingKey::from_ec_der(key.to_pkcs8_der().unwrap().as_bytes()),
        jwk: jwk(json!({"kty": "EC", "kid": "es256-1", "crv": "P-256",
                        "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())})),
    }
}

fn es384_signer() -> Signer {
    // No P-384 generator among the dev dependencies: a fixed test key.
    let der = include_bytes!("../testdata/es384_pkcs8.der");
    let hex = include_str!("../testdata/es384_public_point.hex").trim();
    let point: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(point.len(), 97);
    Signer {
        enc: EncodingKey::from_ec_der(der),
        jwk: jwk(json!({"kty": "EC", "kid": "es384-1", "crv": "P-384",
                        "x": b64(&point[1..49]), "y": b64(&point[49..])})),
    }
}

fn ed_signer() -> Signer {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    static KEY: OnceLock<ed25519_dalek::SigningKey> = OnceLock::new();
    let key = KEY.get_or_init(|| ed25519_dalek::SigningKey::generate(&mut OsRng));
    Signer {
        enc: EncodingKey::from_ed_der(key.to_pkcs8_der().unwrap().as_bytes()),
        jwk: jwk(json!({"kty": "OKP", "kid": "ed-1", "crv": "Ed25519",
                        "x": b64(key.verifying_key().to_bytes())})),
    }
}

fn signer(alg: Algorithm) -> Signer {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => hs_signer(),
        Algorithm::ES256 => es256_signer(),
        Algorithm::ES384 => es384_signer(),
        Algorithm::EdDSA => ed_signer(),
        _ => rsa_signer(),
    }
}

/// Every test key, as the issuer's JWKS.
fn all_keys() -> JwkSet {
    JwkSet {
        keys: vec![
            hs_signer().jwk,
            rsa_signer().jwk,
            es256_signer().jwk,
            es384_signer().jwk,
            ed_signer().jwk,
        ],
    }
}

fn issuer(algs: &[Algorithm]) -> IssuerPolicy {
    IssuerPolicy::new(ISS, [AUD, "other-api"], algs)
}

fn claims() -> Value {
    json!({"iss": ISS, "sub": "alice", "aud": AUD, "exp": NOW_S + 300, "iat": NOW_S,
           "scope": "orders:read orders:write"})
}

/// Signs raw header and claims JSON text, so tests can send anything.
fn sign_raw(header: &str, claims: &str, alg: Algorithm, enc: &EncodingKey) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), enc, alg).unwrap();
    format!("{input}.{sig}")
}

/// A token for `alg` with the signer's kid and the given claims.
fn token(alg: Algorithm, claims: &Value) -> String {
    let s = signer(alg);
    let mut header = Header::new(alg);
    header.kid = s.jwk.common.key_id.clone();
    jsonwebtoken::encode(&header, claims, &s.enc).unwrap()
}

fn verify_at(policy: &IssuerPolicy, token: &str, now_ms: u64) -> Result<Identity, AuthRejection> {
    let jwt = UnverifiedJwt::parse(token, DEFAULT_MAX_TOKEN_BYTES)?;
    jwt.verify_with_set(policy, &all_keys(), now_ms)
}

fn verify(policy: &IssuerPolicy, token: &str) -> Result<Identity, AuthRejection> {
    verify_at(policy, token, NOW)
}

fn malformed(m: MalformedToken) -> Result<Identity, AuthRejection> {
    Err(AuthRejection::MalformedToken(m))
}

#[test]
fn valid_for_every_algorithm() {
    for alg in ALL {
        let t = token(alg, &claims());
        let policy = JwtPolicy::new(vec![issuer(&[alg])]);
        let jwt = policy.parse(&t).unwrap();
        let p = policy.issuer_for(&jwt).unwrap();
        let id = jwt
            .verify_with_set(p, &all_keys(), NOW)
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(id.subject, "alice");
        assert_eq!(id.issuer.as_deref(), Some(ISS));
        assert_eq!(id.key_id, signer(alg).jwk.common.key_id);
        assert_eq!(id.scopes, ["orders:read", "orders:write"]);
        assert_eq!(id.method, AuthMethod::Jwt);
        assert!(id.limit_overrides.is_empty());
        // And directly with the one key.
        assert!(jwt.verify(p, &signer(alg).jwk, NOW).is_ok(), "{alg:?}");
    }
}

#[test]
fn peek_names_issuer_kid_and_alg() {
    let t = token(Algorithm::ES256, &claims());
    let jwt = UnverifiedJwt::parse(&t, DEFAULT_MAX_TOKEN_BYTES).unwrap();
    assert_eq!(
        jwt.peek(),
        JwtHeaderPeek {
            alg: Algorithm::ES256,
            kid: Some("es256-1".into()),
            issuer: Some(ISS.into()),
        }
    );
    // Debug never prints the token.
    let dbg = format!("{jwt:?}");
    assert!(!dbg.contains(t.split('.').nth(2).unwrap()));
}

#[test]
fn expiry_and_leeway_edges() {
    let p = issuer(&[Algorithm::HS256]).with_leeway(Duration::ZERO);
    let mut c = claims();
    c["exp"] = json!(NOW_S);
    c["iat"] = json!(NOW_S - 10);
    let t = token(Algorithm::HS256, &c);
    assert!(verify_at(&p, &t, NOW - 1).is_ok());
    assert_eq!(verify_at(&p, &t, NOW), Err(AuthRejection::Expired));

    let p = p.with_leeway(Duration::from_secs(60));
    assert!(verify_at(&p, &t, NOW + 59_999).is_ok());
    assert_eq!(verify_at(&p, &t, NOW + 60_000), Err(AuthRejection::Expired));
    assert_eq!(verify_at(&p, &t, u64::MAX), Err(AuthRejection::Expired));
}

#[test]
fn not_before_and_future_iat() {
    let p = issuer(&[Algorithm::HS256]); // default leeway: 60 s
    let mut c = claims();
    c["nbf"] = json!(NOW_S + 60);
    assert!(verify(&p, &token(Algorithm::HS256, &c)).is_ok());
    c["nbf"] = json!(NOW_S + 61);
    assert_eq!(
        verify(&p, &token(Algorithm::HS256, &c)),
        Err(AuthRejection::NotYetValid)
    );
    assert!(verify_at(&p, &token(Algorithm::HS256, &c), NOW + 1000).is_ok());

    let mut c = claims();
    c["iat"] = json!(NOW_S + 61);
    assert_eq!(
        verify(&p, &token(Algorithm::HS256, &c)),
        Err(AuthRejection::NotYetValid)
    );
    c["iat"] = json!(NOW_S + 60);
    assert!(verify(&p, &token(Algorithm::HS256, &c)).is_ok());
}

#[test]
fn audience_must_intersect() {
    let p = issuer(&[Algorithm::RS256]);
    let mut c = claims();
    c["aud"] = json!("someone-else");
    assert_eq!(
        verify(&p, &token(Algorithm::RS256, &c)),
        Err(AuthRejection::WrongAudience)
    );
    c["aud"] = json!(["someone-else", "other-api"]);
    assert!(verify(&p, &token(Algorithm::RS256, &c)).is_ok());
    c["aud"] = json!([]);
    assert_eq!(
        verify(&p, &token(Algorithm::RS256, &c)),
        Err(AuthRejection::WrongAudience)
    );
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        verify(&p, &token(Algorithm::RS256, &c)),
        Err(AuthRejection::WrongAudience)
    );
    // Fail closed when no audience is configured.
    let none = IssuerPolicy::new(ISS, Vec::<String>::new(), &[Algorithm::RS256]);
    assert_eq!(
        verify(&none, &token(Algorithm::RS256, &claims())),
        Err(AuthRejection::WrongAudience)
    );
}

#[test]
fn issuer_must_be_configured() {
    let policy = JwtPolicy::new(vec![issuer(&[Algorithm::RS256])]);
    let mut c = claims();
    c["iss"] = json!("https://evil.example.com/");
    let t = token(Algorithm::RS256, &c);
    let jwt = policy.parse(&t).unwrap();
    assert_eq!(
        policy.issuer_for(&jwt).unwrap_err(),
        AuthRejection::WrongIssuer
    );
    // Verifying under another issuer's policy is refused too.
    assert_eq!(
        verify(&issuer(&[Algorithm::RS256]), &t),
        Err(AuthRejection::WrongIssuer)
    );

    c.as_object_mut().unwrap().remove("iss");
    let t = token(Algorithm::RS256, &c);
    let jwt = policy.parse(&t).unwrap();
    assert_eq!(
        policy.issuer_for(&jwt).unwrap_err(),
        AuthRejection::WrongIssuer
    );
}

#[test]
fn bad_signatures() {
    let p = issuer(&ALL);
    for alg in ALL {
        let t = token(alg, &claims());
        // Tampered claims, original signature.
        let mut c = claims();
        c["sub"] = json!("mallory");
        let forged = token(alg, &c);
        let (forged_input, _) = forged.rsplit_once('.').unwrap();
        let (_, sig) = t.rsplit_once('.').unwrap();
        let spliced = format!("{forged_input}.{sig}");
        assert_eq!(
            verify(&p, &spliced),
            Err(AuthRejection::BadSignature),
            "{alg:?}"
        );
        // Empty signature.
        let (input, _) = t.rsplit_once('.').unwrap();
        assert_eq!(
            verify(&p, &format!("{input}.")),
            Err(AuthRejection::BadSignature),
            "{alg:?}"
        );
    }
    // Signed by a key the issuer does not publish, under a known kid.
    let other = rsa::RsaPrivateKey::new(&mut OsRng, 2048).unwrap();
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let enc = EncodingKey::from_rsa_der(other.to_pkcs1_der().unwrap().as_bytes());
    let t = sign_raw(
        r#"{"alg":"RS256","kid":"rsa-1"}"#,
        &claims().to_string(),
        Algorithm::RS256,
        &enc,
    );
    assert_eq!(verify(&p, &t), Err(AuthRejection::BadSignature));
}

#[test]
fn alg_none_is_never_accepted() {
    let p = issuer(&ALL);
    let body = b64(claims().to_string());
    for alg in ["none", "None", "NONE", "nOnE", "", "HS1", "RS256 "] {
        let header = b64(json!({"alg": alg}).to_string());
        for sig in ["", "AAAA"] {
            let t = format!("{header}.{body}.{sig}");
            assert_eq!(
                verify(&p, &t),
                Err(AuthRejection::DisallowedAlgorithm),
                "{alg:?}"
            );
        }
    }
    let header = b64(r#"{"typ":"JWT"}"#);
    assert_eq!(
        verify(&p, &format!("{header}.{body}.")),
        malformed(MalformedToken::MissingAlgorithm)
    );
}

#[test]
fn algorithm_must_be_allowed_for_the_issuer() {
    let policy = JwtPolicy::new(vec![issuer(&[Algorithm::RS256])]);
    let t = token(Algorithm::PS256, &claims());
    let jwt = policy.parse(&t).unwrap();
    assert_eq!(
        policy.issuer_for(&jwt).unwrap_err(),
        AuthRejection::DisallowedAlgorithm
    );
    assert_eq!(
        jwt.verify_with_set(&policy.issuers[0], &all_keys(), NOW),
        Err(AuthRejection::DisallowedAlgorithm)
    );
}

#[test]
fn hs256_with_the_rsa_public_key_as_secret_is_refused() {
    use rsa::pkcs1::EncodeRsaPublicKey;
    let rsa = rsa_signer();
    let public_der = rsa_key().to_public_key().to_pkcs1_der().unwrap();
    let jwk_json = serde_json::to_vec(&rsa.jwk).unwrap();
    for secret in [public_der.as_bytes(), jwk_json.as_slice()] {
        let t = sign_raw(
            r#"{"alg":"HS256","kid":"rsa-1"}"#,
            &claims().to_string(),
            Algorithm::HS256,
            &EncodingKey::from_secret(secret),
        );
        // The usual setup: the issuer signs with RS256 only.
        let policy = JwtPolicy::new(vec![issuer(&[Algorithm::RS256])]);
        let jwt = policy.parse(&t).unwrap();
        assert_eq!(
            policy.issuer_for(&jwt).unwrap_err(),
            AuthRejection::DisallowedAlgorithm
        );
        // Even a misconfigured issuer allowing both never uses the RSA key for HMAC.
        let both = issuer(&[Algorithm::RS256, Algorithm::HS256]);
        let rsa_only = JwkSet {
            keys: vec![rsa.jwk.clone()],
        };
        assert_eq!(
            jwt.verify_with_set(&both, &rsa_only, NOW),
            Err(AuthRejection::UnknownKey)
        );
        assert_eq!(
            jwt.verify(&both, &rsa.jwk, NOW),
            Err(AuthRejection::UnknownKey)
        );
    }
    // And the reverse: an RS256 token never verifies against an `oct` key.
    let t = token(Algorithm::RS256, &claims());
    let jwt = UnverifiedJwt::parse(&t, DEFAULT_MAX_TOKEN_BYTES).unwrap();
    let mut oct = hs_signer().jwk;
    oct.common.key_id = Some("rsa-1".into());
    assert_eq!(
        jwt.verify(&issuer(&ALL), &oct, NOW),
        Err(AuthRejection::UnknownKey)
    );
}

#[test]
fn key_selection() {
    let p = issuer(&ALL);
    // Unknown kid.
    let t = sign_raw(
        r#"{"alg":"RS256","kid":"rsa-2"}"#,
        &claims().to_string(),
        Algorithm::RS256,
        &rsa_signer().enc,
    );
    assert_eq!(verify(&p, &t), Err(AuthRejection::UnknownKey));
    let jwt = UnverifiedJwt::parse(&t, DEFAULT_MAX_TOKEN_BYTES).unwrap();
    assert_eq!(
        jwt.verify(&p, &rsa_signer().jwk, NOW),
        Err(AuthRejection::UnknownKey)
    );

    // No kid: fine with one usable key, refused with two.
    let t = sign_raw(
        r#"{"alg":"RS256"}"#,
        &claims().to_string(),
        Algorithm::RS256,
        &rsa_signer().enc,
    );
    let id = verify(&p, &t).unwrap();
    assert_eq!(id.key_id.as_deref(), Some("rsa-1"));
    let mut second = rsa_signer().jwk;
    second.common.key_id = Some("rsa-2".into());
    let two = JwkSet {
        keys: vec![rsa_signer().jwk, second],
    };
    let jwt = UnverifiedJwt::parse(&t, DEFAULT_MAX_TOKEN_BYTES).unwrap();
    assert_eq!(
        jwt.verify_with_set(&p, &two, NOW),
        Err(AuthRejection::UnknownKey)
    );

    // A JWK pinned to RS256 does not verify PS256.
    let mut pinned = rsa_signer().jwk;
    pinned.common.key_algorithm = Some(jsonwebtoken::jwk::KeyAlgorithm::RS256);
    let t = token(Algorithm::PS256, &claims());
    let jwt = UnverifiedJwt::parse(&t, DEFAULT_MAX_TOKEN_BYTES).unwrap();
    assert_eq!(jwt.verify(&p, &pinned, NOW), Err(AuthRejection::UnknownKey));
}

#[test]
fn structural_garbage_is_malformed() {
    let p = issuer(&ALL);
    let good = token(Algorithm::HS256, &claims());
    let (h, rest) = good.split_once('.').unwrap();
    let (c, s) = rest.split_once('.').unwrap();

    let huge = format!("{h}.{}.{s}", "A".repeat(DEFAULT_MAX_TOKEN_BYTES));
    assert_eq!(
        verify(&p, &huge),
        malformed(MalformedToken::TooLong {
            max: DEFAULT_MAX_TOKEN_BYTES
        })
    );
    for t in [
        String::new(),
        format!("{h}.{c}"),
        format!("{h}.{c}.{s}.x"),
        "...".into(),
    ] {
        let r = verify(&p, &t);
        assert!(
            matches!(
                r,
                Err(AuthRejection::MalformedToken(
                    MalformedToken::SegmentCount
                        | MalformedToken::Base64(_)
                        | MalformedToken::Json(_)
                ))
            ),
            "{t:?}: {r:?}"
        );
    }
    assert_eq!(
        verify(&p, &format!("{h}.{c}")),
        malformed(MalformedToken::SegmentCount)
    );
    assert_eq!(
        verify(&p, &format!("{h}.{c}.{s}.")),
        malformed(MalformedToken::SegmentCount)
    );
    // Padding, standard-alphabet characters and whitespace are not base64url.
    assert_eq!(
        verify(&p, &format!("{h}=.{c}.{s}")),
        malformed(MalformedToken::Base64(TokenPart::Header))
    );
    assert_eq!(
        verify(&p, &format!("{h}.{c}+.{s}")),
        malformed(MalformedToken::Base64(TokenPart::Claims))
    );
    assert_eq!(
        verify(&p, &format!("{h}.{c}.{s}/")),
        malformed(MalformedToken::Base64(TokenPart::Signature))
    );
    assert_eq!(
        verify(&p, &format!(" {h}.{c}.{s}")),
        malformed(MalformedToken::Base64(TokenPart::Header))
    );
    // Valid base64url, not a JSON object.
    assert_eq!(
        verify(&p, &format!("{}.{c}.{s}", b64("[1]"))),
        malformed(MalformedToken::Json(TokenPart::Header))
    );
    assert_eq!(
        verify(&p, &format!("{h}.{}.{s}", b64("{"))),
        malformed(MalformedToken::Json(TokenPart::Claims))
    );
}

#[test]
fn duplicate_members_are_refused() {
    let p = issuer(&ALL);
    let enc = &hs_signer().enc;
    let claims_text = claims().to_string();
    let dup_claims = claims_text.replacen('{', r#"{"sub":"mallory","#, 1);
    let t = sign_raw(
        r#"{"alg":"HS256","kid":"hs-1"}"#,
        &dup_claims,
        Algorithm::HS256,
        enc,
    );
    assert_eq!(
        verify(&p, &t),
        malformed(MalformedToken::DuplicateKey(TokenPart::Claims))
    );
    let t = sign_raw(
        r#"{"alg":"HS256","alg":"none","kid":"hs-1"}"#,
        &claims_text,
        Algorithm::HS256,
        enc,
    );
    assert_eq!(
        verify(&p, &t),
        malformed(MalformedToken::DuplicateKey(TokenPart::Header))
    );
}

#[test]
fn numeric_dates_must_be_numbers_in_range() {
    let p = issuer(&[Algorithm::HS256]);
    let expected = "a number of seconds since 1970 (no later than year 9999)";
    for (exp, ok) in [
        (json!((NOW_S + 10).to_string()), false),
        (json!(1e20), false),
        (json!(u64::MAX), false),
        (json!(-1), false),
        (json!(NOW_S as f64 + 10.5), true),
        (json!(NOW_S + 10), true),
    ] {
        let mut c = claims();
        c["exp"] = exp.clone();
        let r = verify(&p, &token(Algorithm::HS256, &c));
        if ok {
            assert!(r.is_ok(), "{exp}: {r:?}");
        } else {
            assert_eq!(
                r,
                malformed(MalformedToken::InvalidClaim {
                    claim: "exp".into(),
                    expected
                }),
                "{exp}"
            );
        }
    }
    // Fractional seconds count.
    let mut c = claims();
    c["exp"] = json!(NOW_S as f64 + 0.5);
    let t = token(Algorithm::HS256, &c);
    let p0 = p.clone().with_leeway(Duration::ZERO);
    assert!(verify_at(&p0, &t, NOW + 499).is_ok());
    assert_eq!(verify_at(&p0, &t, NOW + 500), Err(AuthRejection::Expired));
    // A huge number in the raw text, beyond f64.
    let raw = format!(r#"{{"iss":"{ISS}","sub":"a","aud":"{AUD}","exp":1e400}}"#);
    let t = sign_raw(
        r#"{"alg":"HS256"}"#,
        &raw,
        Algorithm::HS256,
        &hs_signer().enc,
    );
    assert!(matches!(
        verify(&p, &t),
        Err(AuthRejection::MalformedToken(_))
    ));
    // `nbf` and `iat` are checked the same way.
    let mut c = claims();
    c["nbf"] = json!("0");
    assert!(matches!(
        verify(&p, &token(Algorithm::HS256, &c)),
        Err(AuthRejection::MalformedToken(
            MalformedToken::InvalidClaim { .. }
        ))
    ));
    // `exp` is required.
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        verify(&p, &token(Algorithm::HS256, &c)),
        malformed(MalformedToken::MissingClaim("exp"))
    );
}

#[test]
fn max_lifetime() {
    let p = issuer(&[Algorithm::HS256]).with_max_lifetime(Duration::from_secs(3600));
    let mut c = claims();
    c["exp"] = json!(NOW_S + 3600);
    assert!(verify(&p, &token(Algorithm::HS256, &c)).is_ok());
    c["exp"] = json!(NOW_S + 3601);
    assert_eq!(
        verify(&p, &token(Algorithm::HS256, &c)),
        Err(AuthRejection::LifetimeTooLong)
    );
    // Old iat, short remaining life: the lifetime is exp - iat.
    c["iat"] = json!(NOW_S - 3000);
    c["exp"] = json!(NOW_S + 601);
    assert_eq!(
        verify(&p, &token(Algorithm::HS256, &c)),
        Err(AuthRejection::LifetimeTooLong)
    );
    // Without iat, exp - now.
    c.as_object_mut().unwrap().remove("iat");
    assert!(verify(&p, &token(Algorithm::HS256, &c)).is_ok());
    c["exp"] = json!(NOW_S + 3601);
    assert_eq!(
        verify(&p, &token(Algorithm::HS256, &c)),
        Err(AuthRejection::LifetimeTooLong)
    );
}

#[test]
fn scopes_tier_and_subject() {
    let p = issuer(&[Algorithm::EdDSA]).with_tier_claim("plan");
    let mut c = claims();
    c["scp"] = json!(["orders:write", "admin"]);
    c["plan"] = json!("gold");
    let id = verify(&p, &token(Algorithm::EdDSA, &c)).unwrap();
    assert_eq!(id.scopes, ["orders:read", "orders:write", "admin"]);
    assert_eq!(id.tier.as_deref(), Some("gold"));
    assert!(authorize(&id, &["admin".into(), "orders:read".into()]).is_ok());
    assert_eq!(
        authorize(&id, &["billing".into()]).unwrap_err().status(),
        403
    );
    // No tier claim configured: ignored.
    assert_eq!(
        verify(&issuer(&[Algorithm::EdDSA]), &token(Algorithm::EdDSA, &c))
            .unwrap()
            .tier,
        None
    );
    c["plan"] = json!(3);
    assert_eq!(
        verify(&p, &token(Algorithm::EdDSA, &c)),
        malformed(MalformedToken::InvalidClaim {
            claim: "plan".into(),
            expected: "a string"
        })
    );
    let mut c = claims();
    c.as_object_mut().unwrap().remove("scope");
    assert!(verify(&p, &token(Algorithm::EdDSA, &c))
        .unwrap()
        .scopes
        .is_empty());
    c["sub"] = json!("");
    assert_eq!(
        verify(&p, &token(Algorithm::EdDSA, &c)),
        malformed(MalformedToken::MissingClaim("sub"))
    );
    c.as_object_mut().unwrap().remove("sub");
    assert_eq!(
        verify(&p, &token(Algorithm::EdDSA, &c)),
        malformed(MalformedToken::MissingClaim("sub"))
    );
}

#[test]
fn crit_and_key_url_headers() {
    let p = issuer(&ALL);
    let enc = &hs_signer().enc;
    let body = claims().to_string();
    let t = sign_raw(
        r#"{"alg":"HS256","kid":"hs-1","crit":["exp"],"exp":1}"#,
        &body,
        Algorithm::HS256,
        enc,
    );
    assert_eq!(verify(&p, &t), malformed(MalformedToken::CriticalHeader));
    let t = sign_raw(
        r#"{"alg":"HS256","kid":"hs-1","crit":"b64"}"#,
        &body,
        Algorithm::HS256,
        enc,
    );
    assert_eq!(verify(&p, &t), malformed(MalformedToken::CriticalHeader));
    let t = sign_raw(
        r#"{"alg":"HS256","kid":"hs-1","crit":[]}"#,
        &body,
        Algorithm::HS256,
        enc,
    );
    assert!(verify(&p, &t).is_ok());

    // A token carrying its own key (and key URLs) signed with that key:
    // the embedded key is ignored, so the signature fails against ours.
    use p256::pkcs8::EncodePrivateKey;
    let attacker = p256::ecdsa::SigningKey::random(&mut OsRng);
    let point = attacker.verifying_key().to_encoded_point(false);
    let header = json!({
        "alg": "ES256", "kid": "es256-1",
        "jwk": {"kty": "EC", "crv": "P-256", "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())},
        "jku": "https://evil.example.com/jwks.json", "x5u": "https://evil.example.com/cert",
        "x5c": ["MIIB"]
    });
    let t = sign_raw(
        &header.to_string(),
        &body,
        Algorithm::ES256,
        &EncodingKey::from_ec_der(attacker.to_pkcs8_der().unwrap().as_bytes()),
    );
    assert_eq!(verify(&p, &t), Err(AuthRejection::BadSignature));

    // kid must be a bounded string.
    let long_kid = json!({"alg": "HS256", "kid": "k".repeat(MAX_KID_BYTES + 1)}).to_string();
    let t = sign_raw(&long_kid, &body, Algorithm::HS256, enc);
    assert_eq!(
        verify(&p, &t),
        malformed(MalformedToken::InvalidKeyId { max: MAX_KID_BYTES })
    );
    let t = sign_raw(r#"{"alg":"HS256","kid":7}"#, &body, Algorithm::HS256, enc);
    assert_eq!(
        verify(&p, &t),
        malformed(MalformedToken::InvalidKeyId { max: MAX_KID_BYTES })
    );
}

#[test]
fn policy_verify_convenience() {
    let policy = JwtPolicy::new(vec![issuer(&[Algorithm::HS256])]);
    let keys = all_keys();
    let t = token(Algorithm::HS256, &claims());
    assert_eq!(
        policy.verify(&t, NOW, |_| Some(&keys)).unwrap().subject,
        "alice"
    );
    assert_eq!(
        policy.verify(&t, NOW, |_| None),
        Err(AuthRejection::KeysUnavailable)
    );
    let small = JwtPolicy {
        max_token_bytes: 10,
        ..policy.clone()
    };
    assert_eq!(
        small.verify(&t, NOW, |_| Some(&keys)),
        malformed(MalformedToken::TooLong { max: 10 })
    );
}

#[test]
fn rejections_never_echo_the_token() {
    let p = issuer(&ALL);
    let t = token(Algorithm::HS256, &claims());
    let tampered = format!("{t}x");
    let err = verify(&p, &tampered).unwrap_err();
    let problem = err.to_problem().to_json();
    let header = err.www_authenticate().unwrap();
    for part in tampered.split('.') {
        assert!(!problem.contains(part) && !header.contains(part));
    }
}

proptest! {
    /// Arbitrary input never panics the parser.
    #[test]
    fn parse_never_panics(s in "\\PC{0,400}") {
        let _ = UnverifiedJwt::parse(&s, DEFAULT_MAX_TOKEN_BYTES);
    }

    /// Arbitrary JSON-ish segments with a valid-looking structure never panic
    /// parsing or verification, whatever the key type.
    #[test]
    fn verify_never_panics(
        header in "\\{\"alg\":\"(HS256|RS256|PS512|ES256|ES384|EdDSA)\"(,\"kid\":\"[a-z0-9-]{0,8}\")?\\}",
        body in "\\{(\"(exp|nbf|iat|aud|iss|sub|scope|scp)\":(-?[0-9]{1,25}(\\.[0-9]{1,3})?|\"[a-z]{0,5}\"|\\[\\]|null|true),?){0,6}\\}",
        sig in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let t = format!("{}.{}.{}", b64(&header), b64(&body), b64(&sig));
        if let Ok(jwt) = UnverifiedJwt::parse(&t, DEFAULT_MAX_TOKEN_BYTES) {
            let p = issuer(&ALL);
            let _ = jwt.verify_with_set(&p, &all_keys(), NOW);
            for k in all_keys().keys {
                let _ = jwt.verify(&p, &k, NOW);
            }
        }
    }
}

// ------------------------------------------------- the split signature path

/// Runs a future that never waits (the native verifier's, the test ones).
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => panic!("the verifier waited"),
    }
}

/// Parse, check, `verifier`, claims: what an adapter with its own
/// signature checker (WebCrypto at the edge) does.
fn verify_split<V: SignatureVerifier>(
    policy: &IssuerPolicy,
    token: &str,
    keys: &JwkSet,
    verifier: &V,
) -> Result<Identity, AuthRejection> {
    let jwt = UnverifiedJwt::parse(token, DEFAULT_MAX_TOKEN_BYTES)?;
    let check = jwt.signature_check_in_set(policy, keys)?;
    ready(check.verify_with(verifier))?.identity(NOW)
}

/// Tokens covering every answer of the old path, for every algorithm.
fn corpus() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for alg in ALL {
        let name = format!("{alg:?}");
        let good = token(alg, &claims());
        let (input, sig) = good.rsplit_once('.').unwrap();
        let mut c = claims();
        c["sub"] = json!("mallory");
        let forged = token(alg, &c);
        let (forged_input, _) = forged.rsplit_once('.').unwrap();
        let mut flipped = URL_SAFE_NO_PAD.decode(sig).unwrap();
        flipped[0] ^= 1;
        let mut expired = claims();
        expired["exp"] = json!(NOW_S - 3600);
        let mut wrong_aud = claims();
        wrong_aud["aud"] = json!("someone-else");
        let mut no_sub = claims();
        no_sub.as_object_mut().unwrap().remove("sub");
        for (case, t) in [
            ("valid", good.clone()),
            ("spliced", format!("{forged_input}.{sig}")),
            ("empty signature", format!("{input}.")),
            ("flipped bit", format!("{input}.{}", b64(&flipped))),
            ("truncated", format!("{input}.{}", &sig[..sig.len() / 2])),
            ("expired", token(alg, &expired)),
            ("wrong aud", token(alg, &wrong_aud)),
            ("no sub", token(alg, &no_sub)),
        ] {
            out.push((format!("{name} {case}"), t));
        }
    }
    let body = claims().to_string();
    let rsa = &rsa_signer().enc;
    let other = rsa::RsaPrivateKey::new(&mut OsRng, 2048).unwrap();
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let other = EncodingKey::from_rsa_der(other.to_pkcs1_der().unwrap().as_bytes());
    for (case, header, alg, enc) in [
        (
            "unknown kid",
            r#"{"alg":"RS256","kid":"rsa-2"}"#,
            Algorithm::RS256,
            rsa,
        ),
        ("no kid", r#"{"alg":"RS256"}"#, Algorithm::RS256, rsa),
        (
            "other key",
            r#"{"alg":"RS256","kid":"rsa-1"}"#,
            Algorithm::RS256,
            &other,
        ),
        (
            "ES256 on the RSA kid",
            r#"{"alg":"ES256","kid":"rsa-1"}"#,
            Algorithm::ES256,
            &es256_signer().enc,
        ),
        (
            "HS256 on the RSA kid",
            r#"{"alg":"HS256","kid":"rsa-1"}"#,
            Algorithm::HS256,
            &hs_signer().enc,
        ),
    ] {
        out.push((case.to_owned(), sign_raw(header, &body, alg, enc)));
    }
    let mut evil = claims();
    evil["iss"] = json!("https://evil.example.com/");
    out.push(("wrong iss".into(), token(Algorithm::RS256, &evil)));
    out
}

#[test]
fn split_path_answers_as_the_native_path() {
    let keys = all_keys();
    for policy in [issuer(&ALL), issuer(&[Algorithm::RS256, Algorithm::ES256])] {
        for (case, t) in corpus() {
            let native = verify(&policy, &t);
            let split = verify_split(&policy, &t, &keys, &NativeVerifier);
            assert_eq!(split, native, "{case}");
        }
    }
    // The corpus does reach every signature outcome.
    let p = issuer(&ALL);
    let answers: Vec<_> = corpus().iter().map(|(_, t)| verify(&p, t)).collect();
    assert!(answers.iter().any(Result::is_ok));
    assert!(answers.contains(&Err(AuthRejection::BadSignature)));
    assert!(answers.contains(&Err(AuthRejection::UnknownKey)));
    assert!(answers.contains(&Err(AuthRejection::Expired)));
}

/// A verifier that answers the same whatever it is asked.
struct Always(SignatureOutcome);

impl SignatureVerifier for Always {
    fn check(&self, _: &SignatureCheck<'_>) -> impl std::future::Future<Output = SignatureOutcome> {
        std::future::ready(self.0)
    }
}

#[test]
fn the_verifiers_answer_decides() {
    let p = issuer(&ALL);
    let keys = all_keys();
    let t = token(Algorithm::RS256, &claims());
    let with = |outcome| verify_split(&p, &t, &keys, &Always(outcome));
    assert_eq!(
        with(SignatureOutcome::Invalid),
        Err(AuthRejection::BadSignature)
    );
    assert_eq!(
        with(SignatureOutcome::KeyRefused),
        Err(AuthRejection::UnknownKey)
    );
    assert_eq!(with(SignatureOutcome::Valid).unwrap().subject, "alice");
    // Checks before the signature stand whatever the verifier would say.
    let mut c = claims();
    c["iss"] = json!("https://evil.example.com/");
    let evil = token(Algorithm::RS256, &c);
    assert_eq!(
        verify_split(&p, &evil, &keys, &Always(SignatureOutcome::Valid)),
        Err(AuthRejection::WrongIssuer)
    );
    let hs_on_rsa = sign_raw(
        r#"{"alg":"HS256","kid":"rsa-1"}"#,
        &claims().to_string(),
        Algorithm::HS256,
        &hs_signer().enc,
    );
    assert_eq!(
        verify_split(&p, &hs_on_rsa, &keys, &Always(SignatureOutcome::Valid)),
        Err(AuthRejection::UnknownKey)
    );
    // Claims are still checked after a valid signature.
    let mut c = claims();
    c["exp"] = json!(NOW_S - 3600);
    let old = token(Algorithm::RS256, &c);
    assert_eq!(
        verify_split(&p, &old, &keys, &Always(SignatureOutcome::Valid)),
        Err(AuthRejection::Expired)
    );
}

/// Checks the exposed bytes with the RustCrypto crates directly, as an
/// outside verifier (WebCrypto) sees them: signing input, raw signature
/// (ECDSA as r || s), key material from the JWK.
struct RawBytes;

impl RawBytes {
    fn outcome(check: &SignatureCheck<'_>) -> Option<bool> {
        use p256::ecdsa::signature::Verifier;
        use sha2::{Digest, Sha256, Sha384, Sha512};
        let msg = check.signing_input();
        let sig = check.signature();
        let dec = |s: &str| URL_SAFE_NO_PAD.decode(s).unwrap();
        Some(match (check.key(), check.alg()) {
            (VerificationKey::Rsa { n, e }, alg) => {
                let key = rsa::RsaPublicKey::new(
                    rsa::BigUint::from_bytes_be(&dec(n)),
                    rsa::BigUint::from_bytes_be(&dec(e)),
                )
                .unwrap();
                let r = match alg {
                    Algorithm::RS256 => key.verify(
                        rsa::Pkcs1v15Sign::new::<Sha256>(),
                        &Sha256::digest(msg),
                        sig,
                    ),
                    Algorithm::RS384 => key.verify(
                        rsa::Pkcs1v15Sign::new::<Sha384>(),
                        &Sha384::digest(msg),
                        sig,
                    ),
                    Algorithm::RS512 => key.verify(
                        rsa::Pkcs1v15Sign::new::<Sha512>(),
                        &Sha512::digest(msg),
                        sig,
                    ),
                    Algorithm::PS256 => {
                        key.verify(rsa::Pss::new::<Sha256>(), &Sha256::digest(msg), sig)
                    }
                    Algorithm::PS384 => {
                        key.verify(rsa::Pss::new::<Sha384>(), &Sha384::digest(msg), sig)
                    }
                    _ => key.verify(rsa::Pss::new::<Sha512>(), &Sha512::digest(msg), sig),
                };
                r.is_ok()
            }
            (
                VerificationKey::Ec {
                    curve: EcCurve::P256,
                    x,
                    y,
                },
                _,
            ) => {
                let point = p256::EncodedPoint::from_affine_coordinates(
                    dec(x).as_slice().into(),
                    dec(y).as_slice().into(),
                    false,
                );
                let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point).unwrap();
                p256::ecdsa::Signature::from_slice(sig).is_ok_and(|s| key.verify(msg, &s).is_ok())
            }
            (VerificationKey::Ed25519 { x }, _) => {
                let key =
                    ed25519_dalek::VerifyingKey::from_bytes(&dec(x).try_into().unwrap()).unwrap();
                ed25519_dalek::Signature::from_slice(sig).is_ok_and(|s| key.verify(msg, &s).is_ok())
            }
            // No HMAC or P-384 verifier among the dev dependencies.
            _ => return None,
        })
    }
}

impl SignatureVerifier for RawBytes {
    fn check(
        &self,
        check: &SignatureCheck<'_>,
    ) -> impl std::future::Future<Output = SignatureOutcome> {
        std::future::ready(match Self::outcome(check) {
            Some(true) => SignatureOutcome::Valid,
            Some(false) => SignatureOutcome::Invalid,
            None => native_only(check),
        })
    }
}

fn native_only(check: &SignatureCheck<'_>) -> SignatureOutcome {
    ready(NativeVerifier.check(check))
}

#[test]
fn exposed_bytes_verify_with_plain_crypto_libraries() {
    let p = issuer(&ALL);
    let keys = all_keys();
    for (case, t) in corpus() {
        assert_eq!(
            verify_split(&p, &t, &keys, &RawBytes),
            verify(&p, &t),
            "{case}"
        );
    }
    // ES256 signatures are 64 raw bytes (r || s), not DER.
    let t = token(Algorithm::ES256, &claims());
    let jwt = UnverifiedJwt::parse(&t, DEFAULT_MAX_TOKEN_BYTES).unwrap();
    let check = jwt.signature_check_in_set(&p, &keys).unwrap();
    assert_eq!(check.signature().len(), 64);
    assert_eq!(
        check.signing_input(),
        t.rsplit_once('.').unwrap().0.as_bytes()
    );
    assert!(matches!(
        check.key(),
        VerificationKey::Ec {
            curve: EcCurve::P256,
            ..
        }
    ));
}

#[test]
fn key_fingerprints_tell_keys_apart() {
    let p = issuer(&ALL);
    let keys = all_keys();
    let fingerprint = |t: &str, keys: &JwkSet| {
        let jwt = UnverifiedJwt::parse(t, DEFAULT_MAX_TOKEN_BYTES).unwrap();
        let check = jwt.signature_check_in_set(&p, keys).unwrap();
        // Debug shows neither the signing input nor the signature.
        let dbg = format!("{check:?}");
        assert!(!dbg.contains(t.rsplit_once('.').unwrap().1), "{dbg}");
        check.key_fingerprint()
    };
    let rs = fingerprint(&token(Algorithm::RS256, &claims()), &keys);
    // Same token kind, same key: same fingerprint.
    let mut c = claims();
    c["sub"] = json!("bob");
    assert_eq!(fingerprint(&token(Algorithm::RS256, &c), &keys), rs);
    // Same key, other algorithm: another one.
    assert_ne!(fingerprint(&token(Algorithm::PS256, &claims()), &keys), rs);
    // A rotated key under the same kid: another one.
    let other = rsa::RsaPrivateKey::new(&mut OsRng, 2048).unwrap();
    use rsa::traits::PublicKeyParts;
    let rotated = JwkSet {
        keys: vec![jwk(json!({"kty": "RSA", "kid": "rsa-1",
            "n": b64(other.n().to_bytes_be()), "e": b64(other.e().to_bytes_be())}))],
    };
    assert_ne!(
        fingerprint(&token(Algorithm::RS256, &claims()), &rotated),
        rs
    );
}

// ------------------------------------------------- the validity window

proptest! {
    /// The window a token cache re-checks is exactly where `check_times`
    /// passes, to the millisecond, for any times, leeway and lifetime cap.
    #[test]
    fn validity_window_is_exactly_where_the_times_pass(
        exp in proptest::option::of(0u64..4_000_000),
        nbf in proptest::option::of(0u64..4_000_000),
        iat in proptest::option::of(0u64..4_000_000),
        leeway in 0u64..200_000,
        max_lifetime in proptest::option::of(0u64..2_000_000),
        now in 0u64..4_500_000,
    ) {
        let claims = Claims {
            iss: None, sub: None, aud: None,
            exp_ms: exp, nbf_ms: nbf, iat_ms: iat,
            scopes: vec![], all: Default::default(),
        };
        let mut policy = issuer(&ALL).with_leeway(Duration::from_millis(leeway));
        if let Some(max) = max_lifetime {
            policy = policy.with_max_lifetime(Duration::from_millis(max));
        }
        let window = super::validity_window(&claims, &policy);
        for at in [now, window.map_or(now, |w| w.from_ms), window.map_or(now, |w| w.until_ms)] {
            for t in [at.saturating_sub(1), at, at.saturating_add(1)] {
                let passes = super::check_times(&claims, &policy, t).is_ok();
                prop_assert_eq!(window.is_some_and(|w| w.contains(t)), passes, "at {}", t);
            }
        }
    }
}
