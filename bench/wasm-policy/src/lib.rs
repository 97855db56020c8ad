//! The policy micro-benchmark workloads (shared/benches/support/workloads.rs,
//! the very file the native criterion bench uses) exported to JS. Each
//! export is built once, then `run(iterations)` loops inside wasm so the
//! JS↔wasm boundary is crossed once per batch, not per operation; the
//! caller times the batch with `process.hrtime`.
#![forbid(unsafe_code)]

#[path = "../../../shared/benches/support/workloads.rs"]
#[allow(dead_code)]
mod workloads;

use tidegate_policy::auth::Algorithm;
use wasm_bindgen::prelude::*;

fn js_err(e: String) -> JsError {
    JsError::new(&e)
}

/// JWT parse + verify (HS256, RS256, ES256 or EdDSA).
#[wasm_bindgen]
pub struct JwtVerifyBench(workloads::JwtVerify);

#[wasm_bindgen]
impl JwtVerifyBench {
    /// `alg` is the JOSE name; `jwks` the issuer's key set (JSON).
    #[wasm_bindgen(constructor)]
    pub fn new(alg: &str, token: &str, jwks: &str) -> Result<JwtVerifyBench, JsError> {
        let alg: Algorithm = alg
            .parse()
            .map_err(|_| JsError::new(&format!("unknown algorithm {alg}")))?;
        workloads::JwtVerify::new(alg, token, jwks)
            .map(Self)
            .map_err(js_err)
    }

    /// Verifies `iterations` times; returns how many were accepted.
    pub fn run(&self, iterations: u32) -> u32 {
        (0..iterations).map(|_| u32::from(self.0.run())).sum()
    }

    /// The claims the token must carry (so JS signs the same ones).
    pub fn claims() -> String {
        workloads::claims_json()
    }
}

/// One GCRA decision per operation.
#[wasm_bindgen]
#[derive(Default)]
pub struct GcraBench(workloads::Gcra);

#[wasm_bindgen]
impl GcraBench {
    #[wasm_bindgen(constructor)]
    pub fn new() -> GcraBench {
        Self::default()
    }

    /// Decides `iterations` times; returns how many were admitted.
    pub fn run(&mut self, iterations: u32) -> u32 {
        (0..iterations).map(|_| u32::from(self.0.run())).sum()
    }
}

/// Cache key + Cache API URL per operation.
#[wasm_bindgen]
#[derive(Default)]
pub struct CacheKeyBench(workloads::CacheKeyBuild);

#[wasm_bindgen]
impl CacheKeyBench {
    #[wasm_bindgen(constructor)]
    pub fn new() -> CacheKeyBench {
        Self::default()
    }

    /// Builds `iterations` keys; returns the sum of the URL lengths.
    pub fn run(&self, iterations: u32) -> u32 {
        (0..iterations)
            .map(|_| u32::try_from(self.0.run()).unwrap_or(u32::MAX))
            .fold(0, u32::wrapping_add)
    }
}

/// Route matching with the trie, or the linear baseline.
#[wasm_bindgen]
pub struct RouteMatchBench {
    trie: Option<workloads::RouteMatchTrie>,
    linear: Option<workloads::RouteMatchLinear>,
}

#[wasm_bindgen]
impl RouteMatchBench {
    /// `n` routes of `depth` segments; `linear` picks the baseline.
    #[wasm_bindgen(constructor)]
    pub fn new(n: usize, depth: usize, linear: bool) -> Result<RouteMatchBench, JsError> {
        Ok(if linear {
            Self {
                trie: None,
                linear: Some(workloads::RouteMatchLinear::new(n, depth).map_err(js_err)?),
            }
        } else {
            Self {
                trie: Some(workloads::RouteMatchTrie::new(n, depth).map_err(js_err)?),
                linear: None,
            }
        })
    }

    /// Matches `iterations` paths; returns how many matched.
    pub fn run(&mut self, iterations: u32) -> u32 {
        let mut matched = 0;
        for _ in 0..iterations {
            let hit = match (&mut self.trie, &mut self.linear) {
                (Some(t), _) => t.run(),
                (None, Some(l)) => l.run(),
                (None, None) => false,
            };
            matched += u32::from(hit);
        }
        matched
    }
}
