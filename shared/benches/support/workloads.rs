//! The micro-benchmarked workloads, shared word for word by the native
//! criterion bench (`shared/benches/policy.rs`) and the wasm build
//! (`bench/wasm-policy`, included with `#[path]`), so the wasm/native ratio
//! compares the same code on the same inputs.
//!
//! Each workload is built once (keys, tables, rules) and then `run` is the
//! per-request operation being timed. No randomness and no clock: tokens
//! and keys come from the caller, time is a fixed `now`.

use std::time::Duration;

use tidegate_policy::auth::{Algorithm, IssuerPolicy, JwkSet, UnverifiedJwt};
use tidegate_policy::cache::{cache_key, CacheRule, CacheScope, RequestParts};
use tidegate_policy::route::{Method, RouteMatch, RoutePattern, RouteTable};
use tidegate_policy::throttle::{check, GcraState, Quota};

/// Issuer and audience of the benchmark tokens.
pub const ISSUER: &str = "https://idp.bench.example/";
/// Audience of the benchmark tokens.
pub const AUDIENCE: &str = "https://api.bench.example";
/// The fixed "now" of every verification, in Unix seconds; tokens are
/// issued at `NOW_S - 60` and expire at `NOW_S + 3600`.
pub const NOW_S: u64 = 1_750_000_000;

/// The route counts of the matching curve.
pub const ROUTE_COUNTS: [usize; 4] = [10, 100, 1_000, 10_000];
/// Path depths (segments) of the matching curve.
pub const ROUTE_DEPTHS: [usize; 2] = [3, 8];

/// A signed token and the key set that verifies it: parse + verify is what
/// the edge does per request once the issuer's JWKS is cached.
pub struct JwtVerify {
    issuer: IssuerPolicy,
    keys: JwkSet,
    token: String,
}

impl JwtVerify {
    /// A workload from a compact JWS and a JWKS document (JSON).
    pub fn new(alg: Algorithm, token: &str, jwks_json: &str) -> Result<Self, String> {
        let keys: JwkSet = serde_json::from_str(jwks_json).map_err(|e| format!("jwks: {e}"))?;
        let w = Self {
            issuer: IssuerPolicy::new(ISSUER, [AUDIENCE], &[alg]),
            keys,
            token: token.to_owned(),
        };
        // A workload that fails would time the rejection path instead.
        w.verify()
            .map_err(|e| format!("{alg:?} token does not verify: {e}"))?;
        Ok(w)
    }

    fn verify(&self) -> Result<(), String> {
        let jwt = UnverifiedJwt::parse(&self.token, tidegate_policy::auth::DEFAULT_MAX_TOKEN_BYTES)
            .map_err(|e| e.to_string())?;
        jwt.verify_with_set(&self.issuer, &self.keys, NOW_S * 1000)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// One parse + signature + claims check; true if accepted.
    pub fn run(&self) -> bool {
        self.verify().is_ok()
    }
}

/// The claims every benchmark token carries (`sub` and `scope` as a
/// typical access token would).
pub fn claims_json() -> String {
    format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"user-1234","scope":"read write","iat":{},"exp":{}}}"#,
        NOW_S - 60,
        NOW_S + 3600
    )
}

/// One GCRA decision per call on a 100/s quota, time advancing 7 ms per
/// call so both admitted and limited outcomes occur.
pub struct Gcra {
    quota: Quota,
    state: GcraState,
    now_ms: u64,
}

impl Default for Gcra {
    fn default() -> Self {
        Self {
            quota: Quota::per_second(100).with_burst(20),
            state: GcraState::default(),
            now_ms: NOW_S * 1000,
        }
    }
}

impl Gcra {
    /// One decision; true if admitted.
    pub fn run(&mut self) -> bool {
        self.now_ms += 7;
        let (decision, next) = check(self.state, self.now_ms, 1, &self.quota);
        self.state = next;
        decision.allowed
    }
}

/// The cache key of a private, header- and query-varying route, and its
/// Cache API URL (with the SHA-256 of the canonical form), as the edge
/// builds it per cacheable request.
pub struct CacheKeyBuild {
    rule: CacheRule,
    headers: Vec<(String, String)>,
}

impl Default for CacheKeyBuild {
    fn default() -> Self {
        let pairs = [
            ("accept", "application/json"),
            ("accept-encoding", "gzip, br"),
            ("accept-language", "en-GB,en;q=0.8"),
            ("user-agent", "bench/1.0"),
            ("authorization", "Bearer x"),
        ];
        Self {
            rule: CacheRule::new(Duration::from_secs(60))
                .with_vary_headers(["accept", "accept-language"])
                .with_vary_query(["page", "size", "sort"])
                .with_scope(CacheScope::Private),
            headers: pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }
}

impl CacheKeyBuild {
    /// One key + URL; returns the URL's length (0 if not cacheable).
    pub fn run(&self) -> usize {
        let req = RequestParts {
            method: "GET",
            scheme: "https",
            host: "api.example.com",
            path: "/v1/orders/12345/items",
            query: Some("utm_source=x&sort=desc&page=2&size=50"),
            headers: &self.headers,
            identity: Some("jwt:https://idp.bench.example/:user-1234"),
        };
        cache_key(&self.rule, &req).map_or(0, |k| k.to_url().len())
    }
}

/// Route `i` of a table of depth `depth` (at least 3 segments):
/// `/api/r{i}/s2/…/s{depth-2}/{id}`. The route's own literal at depth 2
/// spreads the routes over one wide trie level, the worst case for a
/// per-node lookup; the trailing parameter is captured on every match.
pub fn route_pattern(i: usize, depth: usize) -> String {
    let mut p = format!("/api/r{i}");
    for level in 2..depth.saturating_sub(1) {
        p.push_str(&format!("/s{level}"));
    }
    p.push_str("/{id}");
    p
}

/// A request path that matches route `i` of [`route_pattern`].
pub fn route_path(i: usize, depth: usize) -> String {
    route_pattern(i, depth).replace("{id}", "8f14e45f")
}

/// Paths probed per table: 16 routes spread over the table, the last route
/// included (the worst case for any scan in priority order).
fn probe_indices(n: usize) -> Vec<usize> {
    let probes = 16.min(n).max(1);
    (1..=probes).map(|k| k * n / probes - 1).collect()
}

/// `RouteTable::match_request` on a table of `n` routes of depth `depth`,
/// cycling through [`probe_indices`].
pub struct RouteMatchTrie {
    table: RouteTable,
    paths: Vec<String>,
    next: usize,
}

impl RouteMatchTrie {
    /// Builds the table (not timed).
    pub fn new(n: usize, depth: usize) -> Result<Self, String> {
        let routes = (0..n)
            .map(|i| {
                RoutePattern::parse(&route_pattern(i, depth))
                    .map(|p| (vec![Method::Get], p))
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let w = Self {
            table: RouteTable::new(routes),
            paths: probe_indices(n)
                .into_iter()
                .map(|i| route_path(i, depth))
                .collect(),
            next: 0,
        };
        for (k, path) in w.paths.iter().enumerate() {
            if !matches!(
                w.table.match_request(Method::Get, path),
                RouteMatch::Matched { .. }
            ) {
                return Err(format!("probe {k} ({path}) does not match"));
            }
        }
        Ok(w)
    }

    /// One match; true if a route matched.
    pub fn run(&mut self) -> bool {
        self.next = (self.next + 1) % self.paths.len().max(1);
        self.paths.get(self.next).is_some_and(|path| {
            matches!(
                self.table.match_request(Method::Get, path),
                RouteMatch::Matched { .. }
            )
        })
    }
}

/// Baseline: the same routes tried one by one with
/// `RoutePattern::match_path`, what a table without a trie would do.
pub struct RouteMatchLinear {
    patterns: Vec<RoutePattern>,
    paths: Vec<String>,
    next: usize,
}

impl RouteMatchLinear {
    /// Builds the list (not timed).
    pub fn new(n: usize, depth: usize) -> Result<Self, String> {
        Ok(Self {
            patterns: (0..n)
                .map(|i| RoutePattern::parse(&route_pattern(i, depth)).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?,
            paths: probe_indices(n)
                .into_iter()
                .map(|i| route_path(i, depth))
                .collect(),
            next: 0,
        })
    }

    /// One scan; true if a route matched.
    pub fn run(&mut self) -> bool {
        self.next = (self.next + 1) % self.paths.len().max(1);
        self.paths
            .get(self.next)
            .is_some_and(|path| self.patterns.iter().any(|p| p.match_path(path).is_some()))
    }
}
