//! JWT header/claims parsing (strict JSON, registered claim types, `alg`,
//! `crit`, `kid`) and JWKS documents, on arbitrary input. Three input forms,
//! so the fuzzer can mutate the JSON directly instead of having to find it
//! through base64url:
//! - `{header JSON}\n{claims JSON}\nsignature`: encoded into a token here;
//! - `{...}` on one line: a JWKS document;
//! - anything else: a raw token, or an `Authorization` value (`Bearer ...`).
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use tidegate_policy::auth::{
    bearer_token, decoding_key_for, parse_jwks, select_key, Algorithm, IssuerPolicy, JwtPolicy,
    UnverifiedJwt, DEFAULT_MAX_TOKEN_BYTES, MAX_KID_BYTES,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.starts_with('{') && !text.contains('\n') {
        // Every kept key goes through the key checks a verification would do.
        if let Ok(parsed) = parse_jwks(data) {
            for jwk in &parsed.keys.keys {
                for alg in ALGORITHMS {
                    let _ = decoding_key_for(jwk, alg);
                    let _ = select_key(&parsed.keys, jwk.common.key_id.as_deref(), alg);
                }
            }
        }
        return;
    }
    let token = match text.split_once('\n') {
        Some((header, rest)) if text.starts_with('{') => {
            let (claims, signature) = rest.split_once('\n').unwrap_or((rest, ""));
            format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(claims),
                signature
            )
        }
        _ => bearer_token(text).unwrap_or(text).to_owned(),
    };
    check_token(&token);
});

const ALGORITHMS: [Algorithm; 5] = [
    Algorithm::HS256,
    Algorithm::RS256,
    Algorithm::PS384,
    Algorithm::ES256,
    Algorithm::EdDSA,
];

fn check_token(token: &str) {
    let Ok(jwt) = UnverifiedJwt::parse(token, DEFAULT_MAX_TOKEN_BYTES) else {
        return;
    };
    assert!(token.len() <= DEFAULT_MAX_TOKEN_BYTES);
    assert_eq!(token.split('.').count(), 3);
    assert!(jwt.kid().map_or(true, |kid| kid.len() <= MAX_KID_BYTES));
    let peek = jwt.peek();
    assert_eq!(peek.alg, jwt.alg());
    assert_eq!(peek.kid.as_deref(), jwt.kid());
    assert_eq!(peek.issuer.as_deref(), jwt.issuer());
    let policy = JwtPolicy::new(vec![IssuerPolicy::new(
        "https://issuer.example",
        ["api"],
        &[Algorithm::RS256, Algorithm::ES256, Algorithm::HS256],
    )]);
    if let Ok(issuer) = policy.issuer_for(&jwt) {
        assert_eq!(Some(issuer.issuer.as_str()), jwt.issuer());
    }
}
