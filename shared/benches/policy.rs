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
use tidegate_policy::auth::{
    hash_key, presented_key_hash, ApiKeyCache, ApiKeyStore, AuthMethod, Identity, KeyCacheLookup,
    KvKeyRecord, KvKeyStoreSettings, TokenCache, TokenCacheSettings, TokenDigest, ValidityWindow,
    VerifiedToken,
};

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

/// The policy's work on a cache HIT: classify a stored entry (typical
/// headers of a JSON API response) and build the headers served from it.
fn cache_hit_serve(c: &mut Criterion<ThreadCpuTime>) {
    use tidegate_policy::cache::{freshness_from_headers, prepare_for_serving};
    use tidegate_policy::cache::{CacheRule, CacheStatus};
    let rule = CacheRule::new(Duration::from_secs(3600));
    let stored: Vec<(String, String)> = [
        ("content-type", "application/json"),
        ("content-length", "1234"),
        ("date", "Fri, 04 Dec 2026 16:00:00 GMT"),
        ("etag", "\"5d8c72a5edda8d6a\""),
        ("server", "origin"),
        ("vary", "accept-encoding"),
        ("x-request-id", "0f8a7c2e-6a1b-4cde-9d1e-2f3a4b5c6d7e"),
        ("x-tidegate-origin-cache-control", "public, max-age=3600"),
        ("cache-control", "max-age=3600"),
        ("x-tidegate-stored-at", "1796400000000"),
        ("x-tidegate-initial-age", "0"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
    .collect();
    c.bench_function("cache_hit_serve", |b| {
        b.iter(|| {
            let check = freshness_from_headers(&stored, &rule, 1_796_400_100_000);
            prepare_for_serving(&stored, check.age, CacheStatus::Hit)
        })
    });
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

/// The KV key store's CPU per request: a cache hit among 10,000 cached
/// records (hash, lookup, identity), and on a miss the record's decoding
/// (the KV read itself is I/O, not CPU).
fn api_key_kv(c: &mut Criterion<ThreadCpuTime>) {
    const NOW: u64 = 1_750_000_000_000;
    let settings = KvKeyStoreSettings::with_binding("API_KEYS_KV");
    let mut cache = ApiKeyCache::new();
    let text = |i: u32| {
        json!({"v": 1, "id": format!("key_{i:020}"), "consumer": format!("consumer-{i}"),
               "tier": "gold", "scopes": ["orders:read", "orders:write"], "created_at": 1_700_000_000u64})
        .to_string()
    };
    for i in 0..10_000u32 {
        let key = format!("tdg_bench_{i:040}");
        let hash = presented_key_hash(&key).expect("hash");
        let record = KvKeyRecord::decode(&text(i)).expect("record");
        cache.insert(hash, Some(record.to_api_key_record(hash)), NOW, &settings);
    }
    let key = "tdg_bench_0000000000000000000000000000000000004242";
    c.bench_function("api_key_kv_cache_hit", |b| {
        b.iter(|| {
            let hash = presented_key_hash(key).expect("hash");
            match cache.lookup(&hash, NOW, &settings) {
                KeyCacheLookup::Found(record) => record.identity_at(NOW).is_ok(),
                _ => false,
            }
        })
    });
    let stored = text(4242);
    c.bench_function("api_key_kv_record_decode", |b| {
        b.iter(|| {
            let hash = presented_key_hash(key).expect("hash");
            KvKeyRecord::decode(&stored)
                .map(|r| r.to_api_key_record(hash))
                .is_ok()
        })
    });
}

/// What a repeated token costs with the token cache (issue 16): a hit among
/// 4,096 remembered tokens (SHA-256 of a 900-byte token, lookup, identity
/// clone), to compare with `jwt_verify` (a miss); and the `API_KEYS` secret
/// path (SHA-256 of the key, lookup among 30 records), which has no cache.
fn token_cache(c: &mut Criterion<ThreadCpuTime>) {
    const NOW: u64 = 1_750_000_000_000;
    let mut cache = TokenCache::new(TokenCacheSettings::default());
    let token = |i: usize| format!("eyJhbGciOiJSUzI1NiJ9.{i:0>600}.{:0>300}", i);
    for i in 0..TokenCacheSettings::DEFAULT_MAX_ENTRIES {
        let identity = Identity {
            subject: format!("user-{i}"),
            key_id: Some("k1".into()),
            issuer: Some("https://idp.example/".into()),
            scopes: vec!["orders:read".into(), "orders:write".into()],
            tier: Some("gold".into()),
            limit_overrides: Default::default(),
            method: AuthMethod::Jwt,
        };
        let window = ValidityWindow {
            from_ms: 0,
            until_ms: NOW + 3_600_000,
        };
        let remembered = VerifiedToken {
            issuer: "idp".into(),
            identity,
            window,
            key_epoch: 1,
        };
        cache.insert(TokenDigest::of(&token(i)), remembered, NOW);
    }
    let hot = token(2048);
    c.bench_function("token_cache_hit", |b| {
        b.iter(|| {
            cache
                .lookup(&TokenDigest::of(&hot), NOW, |_| Some(1))
                .is_some()
        })
    });
    let records: Vec<_> = (0..30)
        .map(|i| {
            json!({"id": format!("key_{i}"), "consumer": format!("c{i}"),
                   "sha256": hash_key(&format!("tg_bench_key_{i:032}")), "scopes": ["feed:read"]})
        })
        .collect();
    let store = ApiKeyStore::from_json(&json!(records).to_string()).expect("store");
    let key = format!("tg_bench_key_{:032}", 17);
    c.bench_function("api_key_secret", |b| {
        b.iter(|| store.authenticate(&key, NOW).is_ok())
    });
}

/// Bounded: 0.5 s warm-up (wall) + 1 s of samples (thread CPU time) per
/// function, 26 functions: about 41 s of CPU; more wall time when the
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
    targets = jwt_verify, gcra, cache_key, cache_hit_serve, route_match, api_key_kv, token_cache
}
criterion_main!(policy);
