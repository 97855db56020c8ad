//! Native micro-benchmarks of the policy's per-request functions.
//! Run with `make bench-micro` (or `cargo bench -p tidegate-policy --bench
//! policy`); the same workloads run in wasm under node (bench/wasm-policy),
//! and bench/micro-summary.mjs puts both side by side. Figures go to
//! BENCHMARKS.md, never into tests.

#[path = "support/cpu_time.rs"]
mod cpu_time;
#[path = "support/workloads.rs"]
mod workloads;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cpu_time::ThreadCpuTime;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use jsonwebtoken::{Algorithm, EncodingKey};
use rand::rngs::OsRng;
use rand::RngCore;
use serde_json::json;

use workloads::{
    CacheKeyBuild, Gcra, JwtVerify, RouteMatchLinear, RouteMatchTrie, ROUTE_COUNTS, ROUTE_DEPTHS,
};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh key for `alg`: its signing key and its one-key JWKS (JSON).
fn fresh_key(alg: Algorithm) -> (EncodingKey, String) {
    let (enc, jwk) = match alg {
        Algorithm::HS256 => {
            let mut secret = [0u8; 32];
            OsRng.fill_bytes(&mut secret);
            (
                EncodingKey::from_secret(&secret),
                json!({"kty": "oct", "kid": "k1", "k": b64(secret)}),
            )
        }
        Algorithm::RS256 => {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            use rsa::traits::PublicKeyParts;
            let key = rsa::RsaPrivateKey::new(&mut OsRng, 2048).expect("rsa keygen");
            let der = key.to_pkcs1_der().expect("pkcs1");
            (
                EncodingKey::from_rsa_der(der.as_bytes()),
                json!({"kty": "RSA", "kid": "k1", "n": b64(key.n().to_bytes_be()),
                       "e": b64(key.e().to_bytes_be())}),
            )
        }
        Algorithm::ES256 => {
            use p256::pkcs8::EncodePrivateKey;
            let key = p256::ecdsa::SigningKey::random(&mut OsRng);
            let point = key.verifying_key().to_encoded_point(false);
            let der = key.to_pkcs8_der().expect("pkcs8");
            (
                EncodingKey::from_ec_der(der.as_bytes()),
                json!({"kty": "EC", "kid": "k1", "crv": "P-256",
                       "x": b64(point.x().expect("x")), "y": b64(point.y().expect("y"))}),
            )
        }
        Algorithm::EdDSA => {
            use ed25519_dalek::pkcs8::EncodePrivateKey;
            let key = ed25519_dalek::SigningKey::generate(&mut OsRng);
            let der = key.to_pkcs8_der().expect("pkcs8");
            (
                EncodingKey::from_ed_der(der.as_bytes()),
                json!({"kty": "OKP", "kid": "k1", "crv": "Ed25519",
                       "x": b64(key.verifying_key().to_bytes())}),
            )
        }
        other => panic!("no benchmark key for {other:?}"),
    };
    (enc, json!({ "keys": [jwk] }).to_string())
}

fn jwt_verify(c: &mut Criterion<ThreadCpuTime>) {
    let mut group = c.benchmark_group("jwt_verify");
    for (name, alg) in [
        ("HS256", Algorithm::HS256),
        ("RS256", Algorithm::RS256),
        ("ES256", Algorithm::ES256),
        ("EdDSA", Algorithm::EdDSA),
    ] {
        let (enc, jwks) = fresh_key(alg);
        let header = format!(r#"{{"alg":"{name}","typ":"JWT","kid":"k1"}}"#);
        let input = format!("{}.{}", b64(header), b64(workloads::claims_json()));
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &enc, alg).expect("sign");
        let w = JwtVerify::new(alg, &format!("{input}.{sig}"), &jwks).expect("workload");
        group.bench_function(name, |b| b.iter(|| w.run()));
    }
    group.finish();
}

fn gcra(c: &mut Criterion<ThreadCpuTime>) {
    let mut w = Gcra::default();
    c.bench_function("gcra_check", |b| b.iter(|| w.run()));
}

fn cache_key(c: &mut Criterion<ThreadCpuTime>) {
    let w = CacheKeyBuild::default();
    c.bench_function("cache_key_url", |b| b.iter(|| w.run()));
}

fn route_match(c: &mut Criterion<ThreadCpuTime>) {
    let mut group = c.benchmark_group("route_match");
    for depth in ROUTE_DEPTHS {
        for n in ROUTE_COUNTS {
            let mut w = RouteMatchTrie::new(n, depth).expect("table");
            group.bench_with_input(BenchmarkId::new(format!("trie_d{depth}"), n), &n, |b, _| {
                b.iter(|| w.run())
            });
        }
    }
    // The baseline at one depth is enough to show the contrast.
    for n in ROUTE_COUNTS {
        let mut w = RouteMatchLinear::new(n, 3).expect("routes");
        group.bench_with_input(BenchmarkId::new("linear_d3", n), &n, |b, _| {
            b.iter(|| w.run())
        });
    }
    group.finish();
}

/// Bounded: 0.5 s warm-up (wall) + 1 s of samples (thread CPU time) per
/// function, 22 functions: about 35 s of CPU; more wall time when the
/// machine is busy, since only this thread's CPU time counts.
fn bounded() -> Criterion<ThreadCpuTime> {
    Criterion::default()
        .with_measurement(ThreadCpuTime::default())
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30)
        .without_plots()
}

criterion_group! {
    name = policy;
    config = bounded();
    targets = jwt_verify, gcra, cache_key, route_match
}
criterion_main!(policy);
