//! Admin endpoints under `gateway.admin_prefix` (default `/__tidegate/`).
//!
//! All need `Authorization: Bearer <ADMIN_KEY>`; the SHA-256 digests of the
//! presented and the configured key are compared in constant time. Without
//! an `ADMIN_KEY` secret every admin path answers 404, as if absent.
//!
//! - `GET health`: `{"status":"ok","version":…,"config":"ok"|"invalid",
//!   "wasm_memory_bytes":…}` (the isolate's linear memory: it only grows, so
//!   a soak that samples it tells a leak in the Worker from workerd's own)
//! - `GET config`: the effective configuration, secrets redacted
//! - `POST purge`: `{"url": "https://host/path?query"}` (optionally with
//!   `"headers": {"accept-language": "en"}` for the vary headers) or
//!   `{"prefix": "/v1/catalog/"}`; this data center, and with `[purge]` every
//!   data center too (Cloudflare's zone purge API, by key URL)
//! - `GET limits/{key}`: the state of one limiter key (the key
//!   percent-encoded as one path segment)
//! - `GET stats/limiter`: `{"calls":…,"requests":…}`, the limiter object
//!   calls this isolate made and the rate-limited requests it checked since
//!   it started (how much leases save; per isolate, so a test or benchmark
//!   reads it from the isolate it loads)
//! - `GET stats/fast-path`: what this isolate's synchronous fast path
//!   (`crate::fast`) did since it started (`crate::fast::FastPathStats`:
//!   new bearer tokens verified and answered, verified and then left to
//!   the full path, and of those taken over without verifying again; fresh
//!   cache entries answered, misses filled, and lookups handed to the full
//!   path), per isolate, as `stats/limiter`
//! - `keys`, `keys/{id}`, `keys/{id}/rotate`, `keys/{id}/revoke`: the KV
//!   key store ([`crate::keystore`])
//!
//! One path is public, with no admin key: `GET .well-known/jwks.json`, the
//! public keys of the identity assertions (see `crate::assertion`).

use std::rc::Rc;

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tidegate_policy::auth::{bearer_token, hash_key};
use tidegate_policy::cache::first_header;
use tidegate_policy::problem::Problem;
use tidegate_policy::route::{allow_header_value, Method as PolicyMethod};
use tidegate_policy::throttle::{self, GcraState, LimiterKeyParts, LimiterOp};
use worker::{Context, Env, Method, Request, Response};

use crate::config::{self, Loaded, ADMIN_KEY_VAR};
use crate::durable;
use crate::error::EdgeError;
use crate::flow::Flow;
use crate::{purge as purging, response};

/// Answers an admin request; `rest` is the path after the prefix.
pub async fn handle(
    mut req: Request,
    headers: &[(String, String)],
    rest: &str,
    env: &Env,
    ctx: &Context,
    loaded: &Loaded,
    flow: &mut Flow,
) -> Result<Response, Problem> {
    if rest == JWKS_PATH {
        return public_jwks(&req, env, loaded, flow).await;
    }
    let admin_key = config::string_binding(env, ADMIN_KEY_VAR).filter(|k| !k.is_empty());
    let Some(admin_key) = admin_key else {
        return Err(not_found());
    };
    let presented = first_header(headers, "authorization").and_then(bearer_token);
    let authorized = presented.is_some_and(|p| {
        let (a, b) = (hash_key(p), hash_key(&admin_key));
        bool::from(a.as_bytes().ct_eq(b.as_bytes()))
    });
    if !authorized {
        flow.extra.push((
            "www-authenticate".to_owned(),
            "Bearer realm=\"tidegate-admin\"".to_owned(),
        ));
        return Err(
            Problem::new(401, "admin-unauthorized", "Admin key required")
                .with_detail("Send the admin key as `Authorization: Bearer <key>`."),
        );
    }

    let method = req.method();
    let allow = |allowed: &[PolicyMethod]| -> Problem {
        Problem::new(405, "method-not-allowed", "Method not allowed").with_detail(format!(
            "This path accepts only: {}.",
            allow_header_value(allowed)
        ))
    };
    if rest == "keys" || rest.starts_with("keys/") {
        let gw = loaded
            .as_ref()
            .map_err(|e| flow.fail(EdgeError::InvalidConfig(e.to_string())))?;
        return crate::keystore::admin(req, rest, env, &gw.config, flow).await;
    }
    if let Some(key) = rest.strip_prefix("limits/") {
        if method != Method::Get {
            flow.extra.push(("allow".into(), "GET".into()));
            return Err(allow(&[PolicyMethod::Get]));
        }
        return limits(env, loaded, key).await.map_err(|e| flow.fail(e));
    }
    match (rest, method) {
        ("health", Method::Get) => Ok(health(loaded)),
        ("health/releases", Method::Get) => {
            let gw = loaded
                .as_ref()
                .map_err(|e| flow.fail(EdgeError::InvalidConfig(e.to_string())))?;
            Ok(response::json(&crate::health::releases(env, gw).await))
        }
        ("stats/limiter", Method::Get) => {
            let (calls, requests) = crate::throttle::counts();
            Ok(response::json(&LimiterStats { calls, requests }))
        }
        ("stats/fast-path", Method::Get) => Ok(response::json(&crate::fast::FastPathStats::now())),
        ("config", Method::Get) => match loaded {
            Ok(gw) => {
                let shown = serde_json::to_value(gw.config.redacted()).unwrap_or_default();
                Ok(response::json(&shown))
            }
            Err(errors) => Err(flow.fail(EdgeError::InvalidConfig(errors.to_string()))),
        },
        ("purge", Method::Post) => {
            let gw = loaded
                .as_ref()
                .map_err(|e| flow.fail(EdgeError::InvalidConfig(e.to_string())))?;
            let body: PurgeRequest = req.json().await.map_err(|_| invalid_purge(PURGE_SHAPE))?;
            purge(env, ctx, gw, body, flow).await
        }
        ("health" | "health/releases" | "config", _) => {
            flow.extra.push(("allow".into(), "GET".into()));
            Err(allow(&[PolicyMethod::Get]))
        }
        ("purge", _) => {
            flow.extra.push(("allow".into(), "POST".into()));
            Err(allow(&[PolicyMethod::Post]))
        }
        _ => Err(not_found()),
    }
}

/// The public JWK Set of the identity assertion keys, under the admin prefix.
const JWKS_PATH: &str = ".well-known/jwks.json";

/// `GET`/`HEAD {admin_prefix}.well-known/jwks.json`: no admin key needed.
async fn public_jwks(
    req: &Request,
    env: &Env,
    loaded: &Loaded,
    flow: &mut Flow,
) -> Result<Response, Problem> {
    if !matches!(req.method(), Method::Get | Method::Head) {
        flow.extra.push(("allow".into(), "GET, HEAD".into()));
        return Err(
            Problem::new(405, "method-not-allowed", "Method not allowed")
                .with_detail("This path accepts only: GET, HEAD."),
        );
    }
    crate::assertion::jwks(env, loaded)
        .await
        .map_err(|e| flow.fail(e))
}

fn not_found() -> Problem {
    Problem::new(404, "route-not-found", "No route matches")
        .with_detail("No configured route matches this path.")
}

// The answers below declare their members in alphabetical order: the order
// clients have always seen.

/// The answer to `GET stats/limiter`.
#[derive(Serialize)]
struct LimiterStats {
    /// Limiter object calls this isolate made since it started.
    calls: u64,
    /// Rate-limited requests this isolate checked since it started.
    requests: u64,
}

/// The answer to `GET health`.
#[derive(Serialize)]
struct HealthAnswer {
    /// `ok`, or `invalid` when the configuration does not load.
    config: &'static str,
    /// Why it does not load; absent when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    config_errors: Option<String>,
    /// Always `ok`: the Worker answers.
    status: &'static str,
    /// The crate version of the Worker.
    version: &'static str,
    /// The isolate's wasm linear memory, in bytes.
    wasm_memory_bytes: u64,
}

fn health(loaded: &Loaded) -> Response {
    response::json(&HealthAnswer {
        config: if loaded.is_ok() { "ok" } else { "invalid" },
        config_errors: loaded.as_ref().err().map(ToString::to_string),
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        wasm_memory_bytes: wasm_memory_bytes(),
    })
}

/// Size of this isolate's wasm linear memory (64 KiB pages).
fn wasm_memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    let pages = core::arch::wasm32::memory_size(0) as u64;
    #[cfg(not(target_arch = "wasm32"))]
    let pages = 0;
    pages.saturating_mul(65_536)
}

const PURGE_SHAPE: &str =
    "Expected a JSON object with \"url\" (and optionally \"headers\") or \"prefix\".";

/// The body of `POST purge`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeRequest {
    url: Option<String>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    prefix: Option<String>,
}

fn invalid_purge(detail: &str) -> Problem {
    Problem::new(400, "invalid-purge", "Invalid purge request").with_detail(detail)
}

/// What a purge request names.
enum PurgeTarget {
    /// Every variant of a GET of this URL, `headers` giving the vary values.
    Url(url::Url, Vec<(String, String)>),
    /// Every indexed entry whose path starts with this.
    Prefix(String),
}

impl PurgeTarget {
    fn from_request(body: PurgeRequest) -> Result<Self, Problem> {
        match (body.url, body.prefix) {
            (Some(url), None) => {
                let url = url::Url::parse(&url)
                    .map_err(|_| invalid_purge("\"url\" must be an absolute URL."))?;
                Ok(Self::Url(url, body.headers.into_iter().collect()))
            }
            (None, Some(prefix)) if prefix.starts_with('/') => Ok(Self::Prefix(prefix)),
            (None, Some(_)) => Err(invalid_purge("\"prefix\" must start with `/`.")),
            _ => Err(invalid_purge(PURGE_SHAPE)),
        }
    }

    async fn run(&self, gw: &config::Gateway) -> purging::Purged {
        match self {
            Self::Url(url, headers) => {
                purging::purge_url(gw, url, headers, purging::Reach::AllRoutes).await
            }
            Self::Prefix(prefix) => purging::purge_prefix(gw, prefix).await,
        }
    }
}

/// The answer to `POST purge`.
#[derive(Serialize)]
struct PurgeAnswer {
    /// How many entries this data center dropped.
    purged: usize,
    /// Their keys.
    keys: Vec<String>,
    /// "this data center" or "every data center".
    scope: &'static str,
    /// The zone purge's outcome, with `[purge]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    global: Option<GlobalAnswer>,
}

/// What the zone purge API did for `POST purge`.
#[derive(Serialize)]
struct GlobalAnswer {
    files: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn purge(
    env: &Env,
    ctx: &Context,
    gw: &Rc<config::Gateway>,
    body: PurgeRequest,
    flow: &Flow,
) -> Result<Response, Problem> {
    let target = PurgeTarget::from_request(body)?;
    let purged = target.run(gw).await;
    let (scope, global) = match &gw.config.purge {
        None => ("this data center", None),
        Some(settings) => {
            let outcome = purging::purge_globally(env, settings, &purged.named).await;
            purging::log_global(&flow.log.id, purged.named.len(), &outcome);
            match outcome {
                Ok(files) => (
                    "every data center",
                    Some(GlobalAnswer { files, error: None }),
                ),
                Err(e) => (
                    "this data center",
                    Some(GlobalAnswer {
                        files: 0,
                        error: Some(e.to_string()),
                    }),
                ),
            }
        }
    };
    // Entries other isolates stored just before this purge are indexed
    // within a batch window: look again then, off the response path.
    let (gw, env, request_id, first) = (
        Rc::clone(gw),
        env.clone(),
        flow.log.id.clone(),
        purged.named,
    );
    ctx.wait_until(async move {
        let late = purging::second_pass(&first, || async { target.run(&gw).await.named }).await;
        purging::global_purge(&env, &gw, &request_id, &late).await;
    });
    Ok(response::json(&PurgeAnswer {
        purged: purged.deleted.len(),
        keys: purged.deleted,
        scope,
        global,
    }))
}

/// The state of limiter key `raw` (one percent-encoded path segment).
async fn limits(env: &Env, loaded: &Loaded, raw: &str) -> Result<Response, EdgeError> {
    let key = percent_decode_str(raw).decode_utf8_lossy().into_owned();
    let reply = durable::call(env, &key, &LimiterOp::Peek).await?;
    // Which configured limit the key belongs to, decoded by the policy.
    let parts = LimiterKeyParts::parse(&key);
    let limit = parts.zip(loaded.as_ref().ok()).and_then(|(parts, gw)| {
        gw.config.routes.iter().find_map(|route| {
            let policy = route.rate_limit.as_ref()?;
            policy
                .limits
                .iter()
                .find(|limit| parts.belongs_to(&route.name, &limit.name))
                .map(|limit| (route.name.clone(), limit.clone()))
        })
    });
    let state = GcraState {
        tat_ns: reply.tat_ns,
    };
    let mut body = LimitState {
        idle: state.is_idle(reply.now_ms),
        key,
        limit: None,
        now_ms: reply.now_ms,
        quota: None,
        remaining: None,
        reset_after_ms: None,
        route: None,
        stored: reply.stored,
        tat_ns: reply.tat_ns,
    };
    if let Some((route, limit)) = limit {
        let peek = throttle::peek(state, reply.now_ms, &limit.quota);
        body.route = Some(route);
        body.quota = Some(QuotaView {
            burst: limit.quota.burst,
            limit: limit.quota.limit,
            period_ms: limit.quota.period.as_millis() as u64,
        });
        body.limit = Some(limit.name);
        body.remaining = Some(peek.remaining);
        body.reset_after_ms = Some(peek.reset_after.as_millis() as u64);
    }
    Ok(response::json(&body))
}

/// The answer to `GET limits/{key}`: the limiter object's state for the
/// key and, when the key belongs to a configured limit, that limit and what
/// it would admit now (the five optional members come together).
#[derive(Serialize)]
struct LimitState {
    /// Whether the bucket is full again now (the stored state is as good as
    /// none).
    idle: bool,
    /// The limiter key, percent-decoded.
    key: String,
    /// The limit's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<String>,
    /// The object's clock, ms since the epoch.
    now_ms: u64,
    /// The limit's quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    quota: Option<QuotaView>,
    /// Units the limit would admit now.
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining: Option<u64>,
    /// Milliseconds until the bucket is completely full again.
    #[serde(skip_serializing_if = "Option::is_none")]
    reset_after_ms: Option<u64>,
    /// The route the limit belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<String>,
    /// Whether a state is stored at all.
    stored: bool,
    /// The stored theoretical arrival time (GCRA), ns since the epoch (0:
    /// empty).
    tat_ns: u64,
}

/// A quota as `GET limits/{key}` shows it.
#[derive(Serialize)]
struct QuotaView {
    /// Units that may be admitted at once from a full bucket.
    burst: u64,
    /// Units admitted per period at the sustained rate.
    limit: u64,
    /// The period, in milliseconds.
    period_ms: u64,
}
