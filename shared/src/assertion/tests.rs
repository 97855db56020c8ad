use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::Signer as _;
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use rand::rngs::OsRng;
use serde_json::{json, Value};

use super::*;
use crate::auth::{AuthMethod, Identity};
use crate::config;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn ed_key(kid: &str) -> (ed25519_dalek::SigningKey, Value) {
    let key = ed25519_dalek::SigningKey::generate(&mut OsRng);
    let jwk = json!({
        "kty": "OKP", "crv": "Ed25519", "kid": kid,
        "x": b64(key.verifying_key().as_bytes()), "d": b64(&key.to_bytes()),
    });
    (key, jwk)
}

fn ec_key(kid: &str) -> (p256::ecdsa::SigningKey, Value) {
    let key = p256::ecdsa::SigningKey::random(&mut OsRng);
    let point = key.verifying_key().to_encoded_point(false);
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
        "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
        "d": b64(&key.to_bytes()),
    });
    (key, jwk)
}

fn identity() -> Identity {
    Identity {
        subject: "user-42".into(),
        key_id: Some("key_acme_1".into()),
        issuer: Some("https://idp.example.com".into()),
        scopes: vec!["orders:read".into(), "orders:write".into()],
        tier: Some("gold".into()),
        limit_overrides: Default::default(),
        method: AuthMethod::Jwt,
    }
}

fn input<'a>(identity: Option<&'a Identity>, now_ms: u64) -> AssertionInput<'a> {
    AssertionInput {
        issuer: "https://edge.example.com",
        audience: "https://origin.example.com",
        ttl: Duration::from_secs(30),
        identity,
        request_id: "req-1",
        now_ms,
        nonce: [7; 16],
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.set_audience(&["https://origin.example.com"]);
    v.set_issuer(&["https://edge.example.com"]);
    v.leeway = 0;
    v
}

fn public_key(set: &AssertionKeySet, index: usize) -> DecodingKey {
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(set.keys()[index].public_jwk().clone()).unwrap();
    DecodingKey::from_jwk(&jwk).unwrap()
}

#[test]
fn an_eddsa_assertion_verifies_with_the_published_key() {
    let (key, jwk) = ed_key("edge-1");
    let set = AssertionKeySet::parse(&json!({ "keys": [jwk] }).to_string()).unwrap();
    let signer = set.signer().unwrap();
    assert_eq!(signer.alg(), AssertionAlgorithm::EdDsa);
    let id = identity();
    let unsigned = build_assertion(signer, &input(Some(&id), now_ms()));
    let sig = key.sign(unsigned.signing_input().as_bytes()).to_bytes();
    let token = unsigned.finish(&sig);

    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some("edge-1"));
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let data =
        decode::<Value>(&token, &public_key(&set, 0), &validation(Algorithm::EdDSA)).unwrap();
    let c = data.claims;
    assert_eq!(c["sub"], "user-42");
    assert_eq!(c["scope"], "orders:read orders:write");
    assert_eq!(c["tier"], "gold");
    assert_eq!(c["key_id"], "key_acme_1");
    assert_eq!(c["auth"], "jwt");
    assert_eq!(c["token_iss"], "https://idp.example.com");
    assert_eq!(c["request_id"], "req-1");
    assert_eq!(c["jti"], b64(&[7; 16]));
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 30);
}

#[test]
fn an_es256_assertion_verifies_and_a_tampered_one_does_not() {
    let (key, jwk) = ec_key("edge-ec");
    let set = AssertionKeySet::parse(&json!({ "keys": [jwk] }).to_string()).unwrap();
    let signer = set.signer().unwrap();
    assert_eq!(signer.alg(), AssertionAlgorithm::Es256);
    let id = identity();
    let unsigned = build_assertion(signer, &input(Some(&id), now_ms()));
    let input_text = unsigned.signing_input().to_owned();
    let sig: p256::ecdsa::Signature = key.sign(input_text.as_bytes());
    let token = unsigned.finish(&sig.to_bytes());
    decode::<Value>(&token, &public_key(&set, 0), &validation(Algorithm::ES256)).unwrap();

    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = b64(br#"{"iss":"https://edge.example.com","sub":"admin","aud":"https://origin.example.com","exp":9999999999}"#);
    parts[1] = &forged;
    assert!(decode::<Value>(
        &parts.join("."),
        &public_key(&set, 0),
        &validation(Algorithm::ES256)
    )
    .is_err());
}

#[test]
fn an_expired_assertion_and_another_audience_fail() {
    let (key, jwk) = ed_key("edge-1");
    let set = AssertionKeySet::parse(&json!({ "keys": [jwk] }).to_string()).unwrap();
    let id = identity();
    let old = build_assertion(set.signer().unwrap(), &input(Some(&id), now_ms() - 120_000));
    let sig = key.sign(old.signing_input().as_bytes()).to_bytes();
    let token = old.finish(&sig);
    assert!(decode::<Value>(&token, &public_key(&set, 0), &validation(Algorithm::EdDSA)).is_err());

    let mut other = input(Some(&id), now_ms());
    other.audience = "https://other.example.com";
    let unsigned = build_assertion(set.signer().unwrap(), &other);
    let sig = key.sign(unsigned.signing_input().as_bytes()).to_bytes();
    let token = unsigned.finish(&sig);
    assert!(decode::<Value>(&token, &public_key(&set, 0), &validation(Algorithm::EdDSA)).is_err());
}

#[test]
fn an_anonymous_assertion_has_no_subject_and_no_identity_claims() {
    let (_, jwk) = ed_key("edge-1");
    let set = AssertionKeySet::parse(&json!({ "keys": [jwk] }).to_string()).unwrap();
    let unsigned = build_assertion(set.signer().unwrap(), &input(None, 1_700_000_000_999));
    let claims_b64 = unsigned.signing_input().split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims_b64).unwrap()).unwrap();
    assert_eq!(
        claims,
        json!({
            "iss": "https://edge.example.com", "aud": "https://origin.example.com",
            "iat": 1_700_000_000u64, "exp": 1_700_000_030u64,
            "jti": b64(&[7; 16]), "request_id": "req-1",
        })
    );
}

#[test]
fn the_jose_header_is_fixed_per_key() {
    let (_, jwk) = ed_key("k\"1");
    let set = AssertionKeySet::parse(&json!([jwk]).to_string()).unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(set.signer().unwrap().header_b64())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header, json!({"alg": "EdDSA", "kid": "k\"1", "typ": "JWT"}));
}

#[test]
fn the_jwks_publishes_every_key_in_order_without_private_members() {
    let (_, a) = ed_key("new");
    let (_, b) = ec_key("old");
    let set =
        AssertionKeySet::parse(&json!({ "keys": [a.clone(), b.clone()] }).to_string()).unwrap();
    let doc: Value = serde_json::from_str(set.jwks_document()).unwrap();
    let keys = doc["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(set.signer().unwrap().kid(), "new");
    assert_eq!(
        keys[0],
        json!({"kty": "OKP", "crv": "Ed25519", "x": a["x"], "kid": "new", "alg": "EdDSA", "use": "sig"})
    );
    assert_eq!(
        keys[1],
        json!({"kty": "EC", "crv": "P-256", "x": b["x"], "y": b["y"], "kid": "old", "alg": "ES256", "use": "sig"})
    );
    assert!(!set.jwks_document().contains("\"d\""));
    assert!(!set.jwks_document().contains(a["d"].as_str().unwrap()));
    // The private JWK WebCrypto imports holds only key material.
    let private = set.signer().unwrap().private_jwk();
    assert_eq!(
        private,
        &json!({"kty": "OKP", "crv": "Ed25519", "x": a["x"], "d": a["d"]})
    );
    // Parsed by jsonwebtoken as a JWK Set, as origins' libraries do.
    let parsed: jsonwebtoken::jwk::JwkSet = serde_json::from_str(set.jwks_document()).unwrap();
    assert_eq!(parsed.keys.len(), 2);
}

fn errors(text: &str) -> Vec<AssertionKeyError> {
    AssertionKeySet::parse(text).unwrap_err()
}

#[test]
fn key_set_errors_name_the_key_and_member() {
    assert!(matches!(
        errors("not json")[..],
        [AssertionKeyError::NotJson(_)]
    ));
    assert_eq!(errors("{}"), vec![AssertionKeyError::NoKeys]);
    assert_eq!(errors(r#"{"keys": []}"#), vec![AssertionKeyError::NoKeys]);
    assert_eq!(errors("[1]"), vec![AssertionKeyError::NotObject(0)]);
    let many: Vec<Value> = (0..9).map(|i| ed_key(&i.to_string()).1).collect();
    assert_eq!(
        errors(&json!(many).to_string()),
        vec![AssertionKeyError::TooManyKeys(9)]
    );

    let (_, good) = ed_key("a");
    let mut rsa = good.clone();
    rsa["kty"] = "RSA".into();
    rsa["crv"] = "none".into();
    assert_eq!(
        errors(&json!([good, rsa]).to_string()),
        vec![AssertionKeyError::UnsupportedKey {
            index: 1,
            kty: "RSA".into(),
            crv: "none".into()
        }]
    );

    let mut public_only = good.clone();
    public_only.as_object_mut().unwrap().remove("d");
    assert_eq!(
        errors(&json!([public_only]).to_string()),
        vec![AssertionKeyError::Missing {
            index: 0,
            member: "d"
        }]
    );

    let (_, mut ec) = ec_key("e");
    ec["y"] = "AAAA".into();
    ec["alg"] = "ES384".into();
    ec["use"] = "enc".into();
    assert_eq!(
        errors(&json!([ec]).to_string()),
        vec![
            AssertionKeyError::BadMember {
                index: 0,
                member: "y",
                expected: 32
            },
            AssertionKeyError::AlgMismatch {
                index: 0,
                alg: "ES384".into(),
                expected: "ES256"
            },
            AssertionKeyError::NotForSigning { index: 0 },
        ]
    );

    let mut ops = good.clone();
    ops["key_ops"] = json!(["verify"]);
    assert_eq!(
        errors(&json!([ops]).to_string()),
        vec![AssertionKeyError::NotForSigning { index: 0 }]
    );

    let mut padded = good.clone();
    padded["x"] = format!("{}=", good["x"].as_str().unwrap()).into();
    assert_eq!(
        errors(&json!([padded]).to_string()),
        vec![AssertionKeyError::BadMember {
            index: 0,
            member: "x",
            expected: 32
        }]
    );

    let mut no_kid = good.clone();
    no_kid.as_object_mut().unwrap().remove("kid");
    assert_eq!(
        errors(&json!([no_kid]).to_string()),
        vec![AssertionKeyError::Missing {
            index: 0,
            member: "kid"
        }]
    );
    let mut bad_kid = good.clone();
    bad_kid["kid"] = "a\nb".into();
    assert_eq!(
        errors(&json!([bad_kid]).to_string()),
        vec![AssertionKeyError::BadKid { index: 0 }]
    );

    let (_, twin) = ed_key("a");
    assert_eq!(
        errors(&json!([good, twin]).to_string()),
        vec![AssertionKeyError::DuplicateKid {
            index: 1,
            kid: "a".into(),
            first: 0
        }]
    );
}

#[test]
fn key_set_error_messages_never_show_key_material() {
    let (_, mut jwk) = ed_key("a");
    let d = jwk["d"].as_str().unwrap().to_owned();
    jwk["x"] = "short".into();
    for e in errors(&json!([jwk]).to_string()) {
        let text = e.to_string();
        assert!(text.contains("keys[0]"), "{text}");
        assert!(!text.contains(&d));
    }
}

#[test]
fn the_audience_is_the_normalized_upstream() {
    let url = |s: &str| url::Url::parse(s).unwrap();
    assert_eq!(
        assertion_audience(&url("https://Origin.Example.com")),
        "https://origin.example.com"
    );
    assert_eq!(
        assertion_audience(&url("https://origin.example.com/")),
        "https://origin.example.com"
    );
    assert_eq!(
        assertion_audience(&url("https://o.example.com:443/")),
        "https://o.example.com"
    );
    assert_eq!(
        assertion_audience(&url("http://127.0.0.1:8080")),
        "http://127.0.0.1:8080"
    );
    assert_eq!(
        assertion_audience(&url("https://abc.execute-api.eu-west-1.amazonaws.com/prod")),
        "https://abc.execute-api.eu-west-1.amazonaws.com/prod"
    );
}

#[test]
fn client_sent_credential_headers_are_replaced() {
    let headers = vec![
        ("accept".to_owned(), "*/*".to_owned()),
        ("X-Edge-Assertion".to_owned(), "forged".to_owned()),
        ("x_edge_assertion".to_owned(), "forged".to_owned()),
        ("x-api-key".to_owned(), "client".to_owned()),
    ];
    let out = origin_credentials(
        headers.clone(),
        &["x-edge-assertion", "x-other-secret"],
        vec![("x-api-key".into(), "origin".into())],
    );
    assert_eq!(
        out,
        vec![
            ("accept".to_owned(), "*/*".to_owned()),
            ("x-api-key".to_owned(), "origin".to_owned())
        ]
    );
    assert_eq!(origin_credentials(headers.clone(), &[], vec![]), headers);
}

const BASE: &str = r#"
[api_keys]

[[routes]]
name = "orders"
path = "/orders"
upstream = "https://origin.example.com"
auth = { require = "api_key" }

[[routes]]
name = "public"
path = "/public"
upstream = "https://origin.example.com"
auth = { require = "none" }
"#;

#[test]
fn config_defaults_turn_assertions_on_for_authenticated_routes() {
    let text = format!("[assertion]\nissuer = \"https://edge.example.com\"\n{BASE}");
    let c = config::parse(&text).unwrap();
    let a = c.assertion.as_ref().unwrap();
    assert_eq!(a.header, "x-tidegate-assertion");
    assert_eq!(a.ttl, Duration::from_secs(30));
    assert_eq!(a.keys_secret, "TIDEGATE_ASSERTION_KEYS");
    assert_eq!(a.jwks_max_age, Duration::from_secs(300));
    assert!(c.routes[0].assert_identity);
    assert!(!c.routes[1].assert_identity);
    assert_eq!(origin_credential_headers(&c), vec!["x-tidegate-assertion"]);
    // The round trip keeps every setting.
    assert_eq!(config::parse(&c.to_toml_string()).unwrap(), c);

    let plain = config::parse(BASE).unwrap();
    assert!(plain.assertion.is_none() && !plain.routes[0].assert_identity);
    assert!(origin_credential_headers(&plain).is_empty());
}

#[test]
fn config_reads_every_setting_and_origin_secrets() {
    let text = format!(
        "[assertion]\nissuer = \"edge\"\nheader = \"X-Edge-Assertion\"\nttl = \"60s\"\n\
         keys_secret = \"EDGE_KEYS\"\njwks_max_age = \"1h\"\n{BASE}\
         assert_identity = true\norigin_secret = {{ header = \"x-api-key\", secret = \"ORIGIN_KEY_PROD\" }}\n"
    );
    let c = config::parse(&text).unwrap();
    let a = c.assertion.as_ref().unwrap();
    assert_eq!(
        (a.header.as_str(), a.ttl, a.keys_secret.as_str()),
        ("x-edge-assertion", Duration::from_secs(60), "EDGE_KEYS")
    );
    assert!(c.routes[1].assert_identity);
    let secret = c.routes[1].origin_secret.as_ref().unwrap();
    assert_eq!(
        (secret.header.as_str(), secret.secret.as_str()),
        ("x-api-key", "ORIGIN_KEY_PROD")
    );
    assert_eq!(
        origin_credential_headers(&c),
        vec!["x-api-key", "x-edge-assertion"]
    );
    assert_eq!(config::parse(&c.to_toml_string()).unwrap(), c);
}

#[test]
fn config_errors_name_the_field_and_the_fix() {
    let text = format!(
        "[assertion]\nissuer = \" \"\nheader = \"host\"\nttl = \"61s\"\nkeys_secret = \"1-bad\"\n\
         jwks_max_age = \"2d\"\n{BASE}origin_secret = {{ header = \"bad header\", secret = \"sk_live_abc-123\" }}\n"
    );
    let text = config::parse(&text).unwrap_err().to_string();
    for needle in [
        "assertion.issuer",
        "assertion.header",
        "assertion.ttl",
        "between 1s and 60s",
        "assertion.keys_secret",
        "assertion.jwks_max_age",
        "routes[1].origin_secret.header",
        "routes[1].origin_secret.secret",
        "the value itself never goes in the file",
    ] {
        assert!(text.contains(needle), "{needle} not in {text}");
    }

    let orphan = format!("{BASE}assert_identity = true\n");
    let text = config::parse(&orphan).unwrap_err().to_string();
    assert!(
        text.contains("routes[1].assert_identity") && text.contains("[assertion]"),
        "{text}"
    );

    let missing = format!("[assertion]\nttl = \"5s\"\n{BASE}");
    assert!(config::parse(&missing)
        .unwrap_err()
        .to_string()
        .contains("issuer"));
}

#[test]
fn an_origin_secret_may_not_use_the_assertion_header() {
    let text = format!(
        "[assertion]\nissuer = \"edge\"\nheader = \"x-edge\"\n{BASE}\
         origin_secret = {{ header = \"X-Edge\", secret = \"ORIGIN_KEY\" }}\n"
    );
    let text = config::parse(&text).unwrap_err().to_string();
    assert!(text.contains("routes[1].origin_secret.header"), "{text}");
    assert!(text.contains("assertion.header"), "{text}");
}
