//! A narrated walk through how Tidegate decides a request, on a simulated
//! clock and with no network: config, issuer keys, the request pipeline
//! (routing, auth, throttling, caching, forwarding) and the rollback policy.
//! Every step checks what it shows and the exit status is non-zero if any
//! expectation fails, so the `examples` test stage doubles as a check.
//!
//! ```text
//! cargo run -q -p tidegate-policy --example walkthrough -- examples/gateway.toml
//! ```

/// Prints an indented line: `say!("format", args)`.
macro_rules! say {
    ($($arg:tt)*) => { show::line(&format!($($arg)*)) };
}

/// Prints a dimmed detail line under the last one.
macro_rules! note {
    ($($arg:tt)*) => { show::detail(&format!($($arg)*)) };
}

#[path = "walkthrough/gateway.rs"]
mod gateway;
#[path = "walkthrough/idp.rs"]
mod idp;
#[path = "walkthrough/show.rs"]
mod show;

use std::process::ExitCode;
use std::time::Duration;

use gateway::{Gateway, Reply, Request, Response};
use idp::Idp;
use serde_json::json;
use show::{advance, bold, dim, fingerprint, lookup, send, span, status, Checks};
use tidegate_policy::auth::{hash_key, ApiKeyStore};
use tidegate_policy::config::{self, GatewayConfig, JwksSource, RestApiRef};

/// The simulated clock starts here: 2025-06-15T15:06:40Z.
const START_MS: u64 = 1_750_000_000_000;
/// The issuer of gateway.toml the walkthrough plays.
const ISSUER: &str = "example-idp";
/// The demo partner's API key. Never printed; only its fingerprint is.
const PARTNER_KEY: &str = "tgk_demo_acme_7Qm2xV9pL4sK8dR3";

/// A variant of the config with eight mistakes, all to be reported at once.
const BROKEN: &str = r#"
[[issuers]]
name = "idp"
issuer = "https://login.example.com/"
audiences = []
algorithms = ["none"]
jwks_url = "http://login.example.com/jwks"

[[routes]]
name = "orders"
methods = ["GET", "FETCH"]
path = "/v1/orders/{id"
upstream = "ftp://origin.example.com"
auth = { require = "jwt", issuers = ["nobody"] }
[routes.rate_limit]
limits = [{ name = "burst", limit = 10, period = "1 second", key = "subject" }]
"#;

/// Where each mistake of [`BROKEN`] is.
const BROKEN_PATHS: [&str; 8] = [
    "issuers[0].audiences",
    "issuers[0].algorithms[0]",
    "issuers[0].jwks_url",
    "routes[0].methods[1]",
    "routes[0].path",
    "routes[0].upstream",
    "routes[0].auth.issuers[0]",
    "routes[0].rate_limit.limits[0].period",
];

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: walkthrough <gateway.toml>");
        return ExitCode::from(2);
    };
    let mut checks = Checks::default();
    if let Err(error) = run(&path, &mut checks) {
        eprintln!("\nwalkthrough stopped: {error}");
        return ExitCode::FAILURE;
    }
    checks.print_summary();
    let failures = checks.failures();
    if failures.is_empty() {
        println!("\n{}", bold("Every expectation held."));
        return ExitCode::SUCCESS;
    }
    let count = failures.len();
    eprintln!("\nwalkthrough FAILED: {count} expectation(s) not met:");
    failures.iter().for_each(|f| eprintln!("  - {f}"));
    ExitCode::FAILURE
}

fn run(path: &str, checks: &mut Checks) -> Result<(), String> {
    let config = load_config(path, checks)?;
    let issuer = config.issuer(ISSUER).ok_or("no issuer `example-idp`")?;
    let audience = issuer.policy.audiences.first().ok_or("no audience")?;
    let idp = Idp::generate(&issuer.policy.issuer, audience)?;
    let mut gw = Gateway::new(&config, partner_keys()?, idp.jwks_body(), START_MS);
    issuer_keys(&mut gw, &config, &idp, checks);
    requests(&mut gw, &idp, checks)?;
    rollback(&config, checks);
    Ok(())
}

// ---- 1. Config ------------------------------------------------------------

fn load_config(path: &str, checks: &mut Checks) -> Result<GatewayConfig, String> {
    checks.section("Load and validate the configuration");
    checks.step(&format!("{path}: parse, apply defaults, check references"));
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let config = config::parse(&text).map_err(|e| format!("{path}: {e}"))?;
    config.routes.iter().for_each(show::route_summary);
    let routes = ["catalog", "orders-read", "partner-feed"].map(|r| config.route(r).is_some());
    let count = config.routes.len();
    let loaded = routes == [true; 3] && config.issuer(ISSUER).is_some();
    checks.expect(
        loaded,
        format!("{count} routes and issuer `{ISSUER}` loaded"),
    );

    checks.step("a broken variant is refused, with every problem listed");
    let errors = config::parse(BROKEN).err().map(|e| e.0).unwrap_or_default();
    errors.iter().for_each(|e| say!("{} {e}", dim("-")));
    let reported = |path: &&str| errors.iter().any(|e| e.path == *path);
    let all = BROKEN_PATHS.iter().all(reported);
    checks.expect(
        all,
        "all 8 planted mistakes reported at once, each at its path",
    );
    let problems = errors.len();
    checks.result(format!(
        "{count} routes loaded; broken variant: {problems} problems"
    ));
    Ok(config)
}

// ---- 2. Issuer keys -------------------------------------------------------

fn issuer_keys(gw: &mut Gateway, config: &GatewayConfig, idp: &Idp, checks: &mut Checks) {
    checks.section("Issuer keys and the JWKS cache");
    let url = match config.issuer(ISSUER).map(|i| &i.jwks) {
        Some(JwksSource::Url(url)) => url.to_string(),
        _ => "(inline)".into(),
    };
    checks.step("the demo IdP `example-idp` generates an ES256 key pair");
    let (kid, size) = (idp.kid().to_owned(), idp.jwks_body().len());
    say!("public key kid {kid}; the private key never leaves the IdP");
    say!("its JWKS ({size} bytes) is what {url} serves");

    checks.step("first token from this issuer: the cache is empty");
    let first = lookup(gw, ISSUER, &kid);
    gw.fetch_jwks(ISSUER);
    say!("adapter fetches {url}, hands the set to on_fetched()");
    let second = lookup(gw, ISSUER, &kid);
    let ok = (first, second) == ("FetchThenRetry", "Found");
    checks.expect(ok, "FetchThenRetry, then Found");

    checks.step("a token naming an unknown kid (forged, or a key not published yet)");
    let cooldown = gw.jwks.get(ISSUER).map(|c| c.policy().refetch_cooldown);
    let cooldown = cooldown.unwrap_or_default();
    advance(gw, cooldown, "the refetch cooldown");
    let (fetches, unknown) = (gw.jwks_fetches, "9f86d081");
    let first = lookup(gw, ISSUER, unknown);
    gw.fetch_jwks(ISSUER);
    say!("adapter refetches; the kid is still missing");
    say!("on_fetched() negative-caches the kid this fetch was for; the adapter keeps no state");
    let second = lookup(gw, ISSUER, unknown);
    advance(gw, cooldown, "another cooldown: a fetch is allowed again");
    let third = lookup(gw, ISSUER, unknown);
    let one_fetch = gw.jwks_fetches == fetches + 1;
    let ok = (first, second, third) == ("FetchThenRetry", "UnknownKid", "UnknownKid");
    checks.expect(
        ok && one_fetch,
        "one refetch, then UnknownKid from the negative cache",
    );
    let fetches = gw.jwks_fetches;
    checks.result(format!(
        "{fetches} JWKS fetches; unknown kid negative-cached"
    ));
}

// ---- 3. Requests ----------------------------------------------------------

fn requests(gw: &mut Gateway, idp: &Idp, checks: &mut Checks) -> Result<(), String> {
    checks.section("Requests through the pipeline");
    routing(gw, checks);
    let alice = auth(gw, idp, checks)?;
    throttle(gw, &alice, checks);
    caching(gw, checks);
    let (requests, calls) = (gw.requests, gw.origin_calls);
    checks.result(format!("{requests} requests, {calls} origin calls"));
    Ok(())
}

fn routing(gw: &mut Gateway, checks: &mut Checks) {
    checks.step("request ids and routing");
    let req = Request::new("GET", "/v1/inventory/7").header("x-request-id", "trace-1");
    let r = send(gw, req);
    let json = r.problem.as_ref().map(|p| p.to_json()).unwrap_or_default();
    note!("{json}");
    let ok = r.status == 404 && r.request_id.as_str() == "trace-1";
    checks.expect(
        ok,
        "404 problem; the client's well-formed request id is reused",
    );

    let req = Request::new("DELETE", "/v1/catalog/books").header("x-request-id", "<b>");
    let r = send(gw, req);
    note!("x-request-id: {}", r.request_id.as_str());
    let ok = r.status == 405 && r.header("Allow") == Some("GET, HEAD");
    let fresh = r.request_id.as_str() != "<b>";
    checks.expect(
        ok && fresh,
        "405 with Allow; a malformed request id gets a fresh UUID",
    );
}

/// Authentication cases, then what the origin receives; returns alice's token.
fn auth(gw: &mut Gateway, idp: &Idp, checks: &mut Checks) -> Result<String, String> {
    checks.step("authentication and scopes");
    let now = gw.now_ms;
    let alice = idp.token("alice", "orders:read catalog:read", now, 3600)?;
    let bob = idp.token("bob", "catalog:read", now, 3600)?;
    let expired = idp.token("alice", "orders:read", now - 7_200_000, 3600)?;
    let forged = idp.unsigned_token("alice", "orders:read", now);
    let [a, b, e, f] = [&alice, &bob, &expired, &forged].map(|t| fingerprint(t.as_bytes()));
    note!("token fingerprints: alice {a}, bob {b}, expired {e}, alg=none {f}");

    let spoofed = Request::new("GET", "/v1/orders/42")
        .bearer(&alice)
        .header("x-request-id", "trace-alice-1")
        .header("x-tidegate-subject", "admin")
        .header("connection", "keep-alive");
    let ok = send(gw, spoofed);
    let served = ok.status == 200 && ok.subject.as_deref() == Some("alice");
    let what = "valid token with orders:read -> 200 as alice; cache MISS, stored per caller";
    checks.expect(served && ok.cache_status() == "MISS", what);

    let orders = || Request::new("GET", "/v1/orders/42");
    #[rustfmt::skip]
    let cases = [
        (orders(),                  401, "missing-credentials", "no credentials -> 401"),
        (orders().bearer(&expired), 401, "invalid-token",       "expired token -> 401"),
        (orders().bearer(&forged),  401, "invalid-token",       "alg=none token -> 401"),
        (orders().bearer(&bob),     403, "insufficient-scope",  "no orders:read scope -> 403"),
    ];
    for (req, code, slug, what) in cases {
        let r = send(gw, req);
        let challenged = r.header("WWW-Authenticate").is_some();
        checks.expect(r.status == code && r.slug() == slug && challenged, what);
    }

    let key = fingerprint(PARTNER_KEY.as_bytes());
    note!("partner API key fingerprint {key}");
    let feed = || Request::new("GET", "/partners/acme/feed");
    let r = send(gw, feed().header("x-api-key", PARTNER_KEY));
    let ok_key = r.status == 200 && r.subject.as_deref() == Some("acme");
    checks.expect(ok_key, "API key -> 200 as consumer acme");
    let r = send(gw, feed().header("x-api-key", "tgk_guess"));
    let refused = r.status == 401 && r.slug() == "invalid-api-key";
    checks.expect(refused, "unknown API key -> 401");

    forwarding(&ok, checks);
    Ok(alice)
}

fn forwarding(r: &Response, checks: &mut Checks) {
    checks.step("what the origin receives for alice's request");
    let Some((url, headers)) = &r.upstream else {
        checks.expect(false, "alice's request was forwarded");
        return;
    };
    say!("{} {url}", bold("GET"));
    headers.iter().for_each(|(n, v)| note!("{n}: {v}"));
    let values = |name: &str| -> Vec<&str> {
        let named = headers.iter().filter(|(n, _)| n == name);
        named.map(|(_, v)| v.as_str()).collect()
    };
    let ok = url.as_str() == "https://origin.example.com/api/orders/42";
    checks.expect(
        ok,
        "strip_prefix /v1 + upstream base: /v1/orders/42 -> /api/orders/42",
    );
    let stripped = ["authorization", "connection"].map(|h| values(h).is_empty());
    let subject = values("x-tidegate-subject") == ["alice"];
    let what = "Authorization, hop-by-hop and the spoofed x-tidegate-subject stripped";
    checks.expect(stripped == [true; 2] && subject, what);
    let added = values("x-request-id") == ["trace-alice-1"];
    let scopes = values("x-tidegate-scopes").len() == 1;
    checks.expect(added && scopes, "identity headers and the request id added");
}

fn throttle(gw: &mut Gateway, alice: &str, checks: &mut Checks) {
    checks.step("12 simultaneous requests against orders-read's 10/s burst limit");
    advance(gw, Duration::from_secs(1), "alice's bucket is full again");
    let req = Request::new("GET", "/v1/orders/42").bearer(alice);
    let burst: Vec<Response> = (0..12).map(|_| gw.handle(&req)).collect();
    let codes: Vec<String> = burst.iter().map(|r| status(r.status)).collect();
    say!("statuses: {}", codes.join(" "));
    for (nth, r) in [("10th", &burst[9]), ("11th", &burst[10])] {
        say!("{nth}: {} {}", status(r.status), r.facts());
        let policy = r.header("RateLimit-Policy").unwrap_or("-");
        note!("RateLimit-Policy: {policy}");
    }
    let admitted = burst.iter().filter(|r| r.status == 200).count();
    let denied: Vec<&Response> = burst.iter().filter(|r| r.status == 429).collect();
    let retry = denied.iter().all(|r| r.header("Retry-After") == Some("1"));
    let got = format!("got {admitted} admitted, {} denied", denied.len());
    let what = format!("exactly 10 of 12 admitted, 2 get 429 + Retry-After: 1 ({got})");
    checks.expect(admitted == 10 && denied.len() == 2 && retry, what);
    advance(gw, Duration::from_secs(1), "one second later");
    let r = send(gw, req);
    checks.expect(r.status == 200, "admitted again");
}

fn caching(gw: &mut Gateway, checks: &mut Checks) {
    checks.step("the public catalogue: shared cache with stale serving");
    let headers = [
        ("content-type", "application/json"),
        ("cache-control", "public, max-age=60"),
        ("vary", "accept-language"),
    ];
    let headers = headers.map(|(n, v)| (n.to_owned(), v.to_owned())).to_vec();
    gw.origin = Reply {
        status: 200,
        headers,
    };
    let calls = gw.origin_calls;
    let catalog = |query: &str| {
        let req = Request::new("GET", &format!("/v1/catalog/books?{query}"));
        req.header("accept-language", "en")
    };
    let miss = send(gw, catalog("page=2&utm_source=mail"));
    note!("cache key {}", miss.cache_key.as_deref().unwrap_or("-"));
    let hit = send(gw, catalog("utm_source=ads&page=2"));
    let statuses = (miss.cache_status(), hit.cache_status());
    let same_key = miss.cache_key == hit.cache_key;
    let what = "MISS is stored; HIT for the same page (utm_source is not in vary_query)";
    checks.expect(statuses == ("MISS", "HIT") && same_key, what);
    checks.expect(gw.origin_calls == calls + 1, "the origin was called once");

    let swr = Duration::from_secs(70);
    advance(gw, swr, "past ttl, within stale_while_revalidate");
    let stale = send(gw, catalog("page=2"));
    let ok = stale.cache_status() == "STALE" && gw.origin_calls == calls + 2;
    checks.expect(ok, "STALE served at once; revalidated in the background");

    advance(gw, Duration::from_secs(300), "within stale_if_error");
    gw.origin = Reply {
        status: 503,
        headers: Vec::new(),
    };
    let saved = send(gw, catalog("page=2"));
    let ok = saved.status == 200 && saved.cache_status() == "STALE";
    let refreshed = saved.header("Age") == Some("300");
    checks.expect(
        ok && refreshed,
        "origin 503 -> the stale copy (refreshed 300s ago) is served",
    );
}

/// The `API_KEYS` secret: one record holding the partner key's SHA-256.
fn partner_keys() -> Result<ApiKeyStore, String> {
    let record = json!({ "id": "key_acme_1", "consumer": "acme", "sha256": hash_key(PARTNER_KEY),
                         "tier": "gold", "scopes": ["feed:read"] });
    let secret = json!([record]).to_string();
    ApiKeyStore::from_json(&secret).map_err(|errors| format!("API_KEYS: {errors:?}"))
}

// ---- 4. Rollback ----------------------------------------------------------

fn rollback(config: &GatewayConfig, checks: &mut Checks) {
    checks.section("Rollback policy");
    note!("the Lambda's decision logic comes later; this is the policy it applies");
    let Some(policy) = &config.rollback else {
        checks.expect(false, "the config manages at least one stage");
        return;
    };
    checks.step("managed stages and their rollout plan");
    let topic = policy.notification_topic_arn.as_deref();
    say!("notify: {}", topic.unwrap_or("(no SNS topic)"));
    for s in &policy.stages {
        let api = match &s.api {
            RestApiRef::Id(id) => format!("REST API id {id}"),
            RestApiRef::Name(name) => format!("REST API `{name}`"),
        };
        let mode = ["acts (dry_run = false)", "dry run: logs only"][usize::from(s.dry_run)];
        say!("{} stage {}, {mode}", bold(&api), bold(&s.stage));
        let steps: Vec<String> = s.canary_steps.iter().map(ToString::to_string).collect();
        let (steps, bake, cooldown) = (steps.join(" -> "), span(s.bake_time), span(s.cooldown));
        note!("canary {steps}, each step baked {bake}; cooldown {cooldown}");
        let (stage, canary) = (&s.stage_alarms, &s.canary_alarms);
        note!("alarms: stage {stage:?}, canary {canary:?}");
        let (rate, window) = (s.error_rate_threshold * 100.0, span(s.metric_window));
        let (min, dim) = (s.min_requests, s.canary_stage_dimension_value());
        note!("unhealthy: canary 5XX/Count > {rate}% over {window}, once >= {min} requests");
        note!("canary metrics: Stage={dim}");
        let increasing = s
            .canary_steps
            .windows(2)
            .all(|w| w[0].percent < w[1].percent);
        let ends =
            s.canary_steps.last().map(|p| p.percent) == Some(100.0) && !s.bake_time.is_zero();
        let what = format!("{}: steps increase to 100%, bake time set", s.stage);
        checks.expect(increasing && ends, what);
    }
    let stages = policy.stages.len();
    checks.result(format!("{stages} managed stage(s)"));
}
