//! The configuration file exactly as written: the serde and JSON Schema view.
//!
//! Values that need more than a type check (durations, URLs, patterns,
//! methods, algorithms) stay text here, so that one typo does not hide the
//! next: the `validate` module reads them all and reports every problem at once.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

/// Declares a text newtype with its own JSON Schema (a string with a pattern or a list of values).
macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $schema:tt) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                Self(text.to_owned())
            }
        }
    };
}

text_type!(
    /// A duration such as `"500ms"`, `"30s"`, `"5m"`, `"1h"`, `"7d"` or `"1h30m"`.
    DurationText,
    {
        "type": "string",
        "pattern": "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$",
        "description": "A duration: digits followed by ms, s, m, h or d, e.g. \"30s\", \"5m\", \"1h30m\".",
        "examples": ["30s", "5m", "1h"]
    }
);

text_type!(
    /// An HTTP method name.
    MethodText,
    {
        "type": "string",
        "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    }
);

text_type!(
    /// A JWT signature algorithm name. `none` is never accepted.
    AlgorithmText,
    {
        "type": "string",
        "enum": ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
                 "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
    }
);

text_type!(
    /// An absolute `http` or `https` URL.
    UrlText,
    { "type": "string", "format": "uri", "pattern": "^https?://" }
);

text_type!(
    /// A route path pattern: `/`-separated literal segments, `{name}` (one segment), `*` (one
    /// segment, or the rest of the path when last).
    PatternText,
    {
        "type": "string",
        "pattern": "^/",
        "description": "A path pattern such as \"/v1/orders/{id}\" or \"/static/*\".",
        "examples": ["/v1/orders/{id}", "/static/*"]
    }
);

/// The whole gateway configuration file, shared by the edge Worker and the rollback Lambda.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayFile {
    /// Lets editors find this schema (`"$schema"` in JSON); ignored by Tidegate.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Gateway-wide settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewaySection>,
    /// Trusted JWT issuers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuers: Vec<IssuerSection>,
    /// API key settings; the keys themselves come from the `API_KEYS` secret or a Workers KV
    /// key store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_keys: Option<ApiKeysSection>,
    /// Plans, `[tiers.NAME]`: limits that replace the routes' limits of the same name for the
    /// callers of that tier (an API key's `tier`, a JWT issuer's `tier_claim`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tiers: BTreeMap<String, TierSection>,
    /// Routes, matched in order: the first match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteSection>,
    /// The API Gateway stages the rollback Lambda manages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackSection>,
    /// The signed identity assertion sent to origins; its keys come from a Worker secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion: Option<AssertionSection>,
    /// Global purges through Cloudflare's zone purge API, besides the per-data-center ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge: Option<PurgeSection>,
    /// Edge-observed release health: the edge judges each managed stage's canary against its
    /// base and signals a breach to the rollback Lambda. Off unless present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthSection>,
}

/// `[health]`: the edge as the rollback loop's sensor. Every threshold has a default.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    /// The rollback Lambda's `POST /edge/health` URL (https; http only for localhost). Absent:
    /// the edge judges and shows its figures but signals nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_url: Option<UrlText>,
    /// The response header naming the release that answered. Default `x-tidegate-release`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_header: Option<String>,
    /// The header value of the canary; any other value is the base. Default `canary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_release: Option<String>,
    /// The sliding window judged. Default `60s` (from 10s to 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<DurationText>,
    /// The short recent span also judged, so a fresh failure is not diluted. Default `5s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_window: Option<DurationText>,
    /// Fewest canary responses before its error rate is judged. Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_requests: Option<u64>,
    /// Fewest canary 5xx before its error rate is judged. Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_errors: Option<u64>,
    /// How much higher (absolute, 0 to 1) the canary's 5xx rate must be than the base's.
    /// Default 0.05.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_margin: Option<f64>,
    /// Critical value of the one-sided two-proportion z-test. Default 3.09 (p = 0.001).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_z: Option<f64>,
    /// How many times the base's p99 latency the canary's must exceed (the histogram's buckets are
    /// about 1.5x apart: below 3 a noisy p99 can fire). Default 3.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_factor: Option<f64>,
    /// Fewest responses on each side before latency is judged. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_min_requests: Option<u64>,
    /// 5xx rate (0 to 1) over which unattributed traffic is a breach (also a canary without
    /// base traffic to compare with). Default 0.25.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_error_rate: Option<f64>,
    /// Fewest unattributed responses before that threshold is judged. Default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_min_requests: Option<u64>,
    /// After a breach is sent, how long before the same release's next one. Default `60s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<DurationText>,
    /// Which routes feed which managed stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<HealthStageSection>,
}

/// `[[health.stages]]`: one managed stage and the routes whose responses it judges.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthStageSection {
    /// The REST API, as `[[rollback.stages]]` names it (`rest_api_id` or `rest_api_name`).
    pub api: String,
    /// The stage name, e.g. `prod`.
    pub stage: String,
    /// Names of the routes (`[[routes]]`) whose origin responses feed this stage.
    pub routes: Vec<String>,
}

/// `[purge]`: also purge every data center through Cloudflare's zone purge API when an
/// unsafe request invalidates cached entries or the admin purge endpoint is called.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeSection {
    /// The Cloudflare zone ID (32 hex characters) of the gateway's hostname.
    pub zone_id: String,
    /// Name of the Worker secret holding an API token with the Cache Purge permission.
    /// Default `CF_PURGE_TOKEN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token_secret: Option<String>,
    /// Base URL of the Cloudflare API (https; http only for localhost, for tests).
    /// Default `https://api.cloudflare.com/client/v4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base: Option<UrlText>,
}

/// `[assertion]`: a short-lived signed JWT telling origins who called.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssertionSection {
    /// The `iss` claim, e.g. `https://gateway.example.com`.
    pub issuer: String,
    /// Request header carrying the assertion. Default `x-tidegate-assertion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Lifetime (`exp` - `iat`), 1s to 60s. Default `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<DurationText>,
    /// Name of the Worker secret holding the private JWK Set. Default `TIDEGATE_ASSERTION_KEYS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_secret: Option<String>,
    /// `max-age` of the public JWKS endpoint, 0s to 1d. Default `5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_max_age: Option<DurationText>,
}

/// `[routes.origin_secret]`: a static header whose value comes from a Worker secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginSecretSection {
    /// Request header sent to the origin, e.g. `x-api-key` for API Gateway API keys.
    pub header: String,
    /// Name of the Worker secret holding the value (never the value itself).
    pub secret: String,
}

/// `[gateway]`: settings for every route.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// Path prefix of the admin endpoints. Default `/__tidegate/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_prefix: Option<String>,
    /// Upstream timeout for routes that set none. Default `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_timeout: Option<DurationText>,
    /// Reuse a well-formed incoming `x-request-id` instead of generating one. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_request_id: Option<bool>,
    /// Send `Server-Timing` (the gateway's phase durations) on every response. Default true;
    /// `false` keeps the durations in the log line only, out of clients' sight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_timing: Option<bool>,
    /// The per-isolate cache of verified JWTs: a token sent again is not verified again
    /// while its `exp`, the TTL and its issuer's keys allow. Default on, 4096 tokens, `5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_cache: Option<TokenCacheSection>,
}

/// `[gateway.token_cache]`: reuse the verification of a JWT sent again.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenCacheSection {
    /// Reuse verified tokens. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Most tokens an isolate remembers, 1 to 100000 (each at most about 2.4 KB). Default 4096.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entries: Option<u64>,
    /// Longest a token is reused without being verified again, `1s` to `1h` (its `exp` and
    /// its issuer's keys bound it too). Default `5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<DurationText>,
}

/// `[[issuers]]`: one trusted JWT issuer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuerSection {
    /// Name routes use to refer to this issuer.
    pub name: String,
    /// Expected `iss` claim, exactly.
    pub issuer: String,
    /// Accepted `aud` values; a token must carry at least one.
    pub audiences: Vec<String>,
    /// Where to fetch the key set (JWKS). Give this or `jwks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<UrlText>,
    /// An inline key set (JWKS document). Give this or `jwks_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// Accepted signature algorithms. `none` is never accepted.
    pub algorithms: Vec<AlgorithmText>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`. Default `60s`, at most `5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leeway: Option<DurationText>,
    /// Longest accepted token lifetime (`exp` - `iat`). Default: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lifetime: Option<DurationText>,
    /// Claim holding the consumer tier, if any (e.g. `tier`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_claim: Option<String>,
    /// How long fetched keys are trusted and how often they may be refetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_cache: Option<JwksCacheSection>,
}

/// `[issuers.jwks_cache]`: JWKS caching and refetch limits.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwksCacheSection {
    /// How long a fetched key set is fresh. Default `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<DurationText>,
    /// How long past `ttl` a key set is still used while the JWKS endpoint fails. Default `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stale: Option<DurationText>,
    /// Least time between two fetches, whatever the token kids. Default `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refetch_cooldown: Option<DurationText>,
    /// How long an unknown `kid` is remembered as unknown. Default `5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_ttl: Option<DurationText>,
}

/// `[api_keys]`: how clients present API keys and where the keys are kept.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeysSection {
    /// Request header carrying the key. Default `x-api-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Where key records are kept: `secret` (the `API_KEYS` secret, at most 5 KB, about 30
    /// keys) or `kv` (a Workers KV namespace, checked after `API_KEYS` when that is set).
    /// Default `secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<KeyStoreName>,
    /// KV namespace binding of the key store (`store = "kv"` only). Default `API_KEYS_KV`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_binding: Option<String>,
    /// How long an isolate reuses a key record read from KV, `0s` to `5m` (`store = "kv"`
    /// only). Bounds how long a revoked key keeps working, with KV's own 60 s. Default `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_ttl: Option<DurationText>,
    /// How long an isolate remembers a key KV does not know, `0s` to `5m` (`store = "kv"`
    /// only). Default `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_ttl: Option<DurationText>,
    /// Most key records, and separately most unknown keys, an isolate remembers, 1 to 100000
    /// (`store = "kv"` only). Default 10000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_entries: Option<u64>,
    /// How long the old key keeps working after a rotation unless the request says otherwise,
    /// `0s` to `366d` (`store = "kv"` only). Default `24h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_overlap: Option<DurationText>,
}

/// Where API key records are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyStoreName {
    /// The `API_KEYS` secret only.
    Secret,
    /// A Workers KV namespace (and the `API_KEYS` secret when set).
    Kv,
}

/// `[tiers.NAME]`: one plan.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TierSection {
    /// Limits replacing the routes' limits of the same `name` for this tier's callers.
    #[serde(default)]
    pub limits: Vec<TierLimitSection>,
}

/// `[[tiers.NAME.limits]]`: the plan's quota for every route limit named `name`. The route's
/// `key` and `cost` stay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TierLimitSection {
    /// The name of the route limits it replaces.
    pub name: String,
    /// Requests (cost units) allowed per `period`.
    pub limit: u64,
    /// The window, e.g. `1s`, `1m`, `1d`.
    pub period: DurationText,
    /// Largest burst admitted at once. Default: `limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
}

/// `[[routes]]`: one route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    /// Unique name, used in logs, limiter keys and metrics.
    pub name: String,
    /// Methods this route serves; absent or empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<MethodText>,
    /// Path pattern, e.g. `/v1/orders/{id}` or `/static/*`.
    pub path: PatternText,
    /// Origin base URL requests are proxied to, e.g. `https://origin.example.com`.
    pub upstream: UrlText,
    /// Literal path prefix removed before proxying, e.g. `/api`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_prefix: Option<String>,
    /// Upstream timeout. Default: `gateway.default_timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationText>,
    /// Forward the client's `Authorization` and API key headers to the origin. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_credentials: Option<bool>,
    /// Who may call this route. Required: write `auth = { require = "none" }` for a public route.
    pub auth: RouteAuthSection,
    /// Rate limits for this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSection>,
    /// Response caching for this route (GET and HEAD only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSection>,
    /// Cross-origin requests from browsers: preflights answered at the edge, CORS headers on
    /// every response. Absent: no CORS handling (preflights are ordinary OPTIONS requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<CorsSection>,
    /// Client-sent forwarding headers passed to the origin unchanged (by default
    /// `x-forwarded-for`, `x-real-ip`, `true-client-ip`, `forwarded`, `x-forwarded-host`,
    /// `x-forwarded-proto`, `x-original-url`, `x-rewrite-url`, `x-http-method-override` and
    /// similar claims are removed), e.g. `["x-forwarded-host"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forward_client_headers: Vec<String>,
    /// Send the signed identity assertion. Default: true on authenticated routes when
    /// `[assertion]` is configured, false on anonymous ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assert_identity: Option<bool>,
    /// A static header for the origin, its value read from a Worker secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_secret: Option<OriginSecretSection>,
}

/// `[routes.cors]`: which browser origins may call the route, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CorsSection {
    /// Allowed origins: exact (`"https://app.example.com"`), subdomain patterns
    /// (`"https://*.example.com"`), or `["*"]` for any origin (not with credentials).
    pub allow_origins: Vec<String>,
    /// Methods cross-origin requests may use. Default: the route's `methods` (all when it has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_methods: Option<Vec<MethodText>>,
    /// Request headers cross-origin requests may send, or `["*"]` for any. Default
    /// `authorization`, `content-type`, `traceparent`, `tracestate`, `x-request-id`, plus the
    /// API key header on routes that accept API keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_headers: Option<Vec<String>>,
    /// Response headers scripts may read, besides those the gateway adds (`RateLimit`,
    /// `RateLimit-Policy`, `Retry-After`, `x-request-id`, `X-Cache-Status`, `Server-Timing`,
    /// `WWW-Authenticate`), which are always exposed. `["*"]` exposes all (not with credentials).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    /// Let browsers send cookies and HTTP auth, and read the answer. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
    /// How long browsers may cache a preflight answer (`Access-Control-Max-Age`), at most `1d`.
    /// Default `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<DurationText>,
}

/// Which credentials a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthRequirementName {
    /// Anyone may call the route.
    None,
    /// A valid JWT from one of the route's issuers.
    Jwt,
    /// A valid API key.
    ApiKey,
    /// A valid JWT or a valid API key.
    Either,
}

/// `[routes.auth]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteAuthSection {
    /// `none`, `jwt`, `api_key` or `either`.
    pub require: AuthRequirementName,
    /// Scopes the caller must all hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Issuers (by name) accepted on this route; absent means every configured issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuers: Option<Vec<String>>,
}

/// What a rate limit counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitKeyName {
    /// The authenticated subject (JWT `sub` or API key consumer).
    Subject,
    /// The API key id.
    ApiKey,
    /// The client IP from `CF-Connecting-IP`.
    ClientIp,
    /// One counter for the whole route.
    Route,
}

/// What to do when the limiter cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureModeName {
    /// Let the request through.
    Open,
    /// Refuse the request with 503.
    Closed,
}

/// Whether an isolate leases a slice of a limiter key's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeaseModeName {
    /// One limiter call per request.
    Off,
    /// Lease when the key is hot in this isolate.
    Auto,
}

/// `[routes.rate_limit]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    /// Count and add headers, but never refuse. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<bool>,
    /// `open` or `closed` when the limiter is unreachable. Default `closed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<FailureModeName>,
    /// `auto`: an isolate that sees a key often leases a slice of its budget
    /// and admits from it without a round trip (exact; see the docs).
    /// `off`: one limiter call per request. Default `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseModeName>,
    /// How long a lease should last at the key's observed rate, 10ms to 5s.
    /// Default `250ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_window: Option<DurationText>,
    /// The limits; a request must pass all of them.
    pub limits: Vec<LimitSection>,
}

/// `[[routes.rate_limit.limits]]`: one limit, e.g. 10 per second per subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitSection {
    /// Name, unique within the route; shown in `RateLimit-Policy`.
    pub name: String,
    /// Requests (cost units) allowed per `period`.
    pub limit: u64,
    /// The window, e.g. `1s`, `1m`, `1d`.
    pub period: DurationText,
    /// What to count by: `subject`, `api_key`, `client_ip` or `route`.
    pub key: LimitKeyName,
    /// Cost of one request. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<u64>,
    /// Largest burst admitted at once. Default: `limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
}

/// Whether cached responses are shared between callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CacheScopeName {
    /// One entry serves every caller.
    Shared,
    /// Entries are keyed by the caller's identity.
    Private,
}

/// Who decides how long a cached response stays fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FreshnessName {
    /// The origin's headers (`Cloudflare-CDN-Cache-Control`, `CDN-Cache-Control`,
    /// `Cache-Control` `s-maxage`/`max-age`, `Expires`); `ttl` when they give no lifetime.
    Origin,
    /// Always `ttl` and the rule's stale windows, whatever the origin says about lifetimes.
    Override,
}

/// `[routes.cache]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    /// How long a stored response is fresh when the origin gives no lifetime (with
    /// `freshness = "override"`: always).
    pub ttl: DurationText,
    /// `origin` (default): the origin's headers decide freshness, `ttl` when they say
    /// nothing. `override`: `ttl` and the rule's stale windows always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness: Option<FreshnessName>,
    /// The longest a response stays fresh, whatever the origin says. At least `ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ttl: Option<DurationText>,
    /// With no lifetime from the origin, use 10% of the time since `Last-Modified`
    /// (RFC 9111 §4.2.2, at most `max_ttl` or 1 day) instead of `ttl`. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heuristic: Option<bool>,
    /// How long past its lifetime a stale response is served while it is refreshed, when the
    /// origin sends no `stale-while-revalidate`. Default `0s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_while_revalidate: Option<DurationText>,
    /// How long past its lifetime a stale response is served when the origin fails, when the
    /// origin sends no `stale-if-error`. Default `0s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_if_error: Option<DurationText>,
    /// Request headers whose values are part of the cache key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vary_headers: Vec<String>,
    /// Query parameters kept in the cache key; absent means all of them. On GET and HEAD only
    /// these reach the origin (an unkeyed parameter could be reflected into a shared entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vary_query: Option<Vec<String>>,
    /// `shared` or `private`. Default `shared`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<CacheScopeName>,
    /// Response statuses that may be stored. With `freshness = "origin"`, a response with
    /// `max-age`, `s-maxage` or `Expires` may also be stored if its status is 2xx or 3xx (not 206
    /// or 304), 404, 405, 410, 414 or 501; other errors only when listed here, since a client can
    /// provoke them. Default 200, 203, 204, 300, 301, 404, 410.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statuses: Option<Vec<u16>>,
    /// Largest response body stored, in bytes (1 to 67108864); larger responses are served
    /// and not stored. Default 8388608 (8 MiB): a body is held whole in the isolate's memory
    /// while it is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
}

/// `[rollback]`: what the rollback Lambda manages.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackSection {
    /// Log the actions that would be taken and change nothing, for every stage. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// SNS topic ARN notified of every action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_topic_arn: Option<String>,
    /// Where the dashboard reads the edge's live release figures. Absent: the stage pages show
    /// no edge panel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<RollbackEdgeSection>,
    /// The managed stages. Nothing else is ever touched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageSection>,
}

/// `[rollback.edge]`: the edge Worker the rollback Lambda's dashboard reads its live release
/// figures from (`[health]` on the edge). The edge's admin key comes from the Lambda's
/// `TIDEGATE_EDGE_ADMIN_KEY` environment variable, never from this file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackEdgeSection {
    /// The edge's `GET {admin_prefix}health/releases` URL, e.g.
    /// `https://edge.example.com/__tidegate/health/releases` (https; http only for localhost).
    pub health_url: UrlText,
}

/// `[[rollback.stages]]`: one managed API Gateway stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageSection {
    /// REST API id. Give this or `rest_api_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_api_id: Option<String>,
    /// REST API name, resolved to an id at run time. Give this or `rest_api_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_api_name: Option<String>,
    /// Stage name, e.g. `prod`.
    pub stage: String,
    /// CloudWatch alarms watching the whole stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stage_alarms: Vec<String>,
    /// CloudWatch alarms watching the canary only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canary_alarms: Vec<String>,
    /// Canary 5XX error rate (0 to 1) above which the canary is unhealthy. Default 0.05.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate_threshold: Option<f64>,
    /// Fewest canary requests in the window before its error rate is judged. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_requests: Option<u64>,
    /// Canary traffic percentages, strictly increasing, ending at 100; a step written
    /// `{ percent = 50, approve = true }` waits there for an operator's approval. Default
    /// [5, 10, 25, 50, 100].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_steps: Option<Vec<CanaryStepEntry>>,
    /// How long each step (and a new deployment) must stay healthy. Default `5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_time: Option<DurationText>,
    /// After a rollback, how long no other automatic rollback or canary step happens. Default `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<DurationText>,
    /// Window of metric data read for the error rate. Default `5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_window: Option<DurationText>,
    /// `ApiName` dimension of the API's CloudWatch metrics. Default: `rest_api_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_api_name: Option<String>,
    /// `Stage` dimension value of canary metrics; `{stage}` is replaced. Default `{stage}/Canary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_stage_dimension: Option<String>,
    /// Log instead of acting, for this stage. Default: `rollback.dry_run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
}

/// One entry of `canary_steps`: a percentage, or a table with `percent` and
/// `approve` (a manual gate).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum CanaryStepEntry {
    /// `25`: a step with no gate.
    Percent(f64),
    /// `{ percent = 50, approve = true }`.
    Gate(CanaryGateEntry),
}

/// A `canary_steps` entry written as a table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryGateEntry {
    /// Traffic percentage, above 0 and at most 100.
    pub percent: f64,
    /// Wait at this step for an operator's `approve` before moving on. Default false.
    #[serde(default)]
    pub approve: bool,
}

impl CanaryStepEntry {
    /// The percentage written.
    pub fn percent(&self) -> f64 {
        match self {
            Self::Percent(p) => *p,
            Self::Gate(g) => g.percent,
        }
    }
}

// By hand rather than `untagged`, whose error ("did not match any variant")
// names neither the field nor the fix; the table goes through the derived
// struct so a bad field inside it keeps its own path.
impl<'de> Deserialize<'de> for CanaryStepEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = CanaryStepEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a percentage like 25, or a table like { percent = 50, approve = true }",
                )
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(CanaryStepEntry::Percent(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                #[allow(clippy::cast_precision_loss)] // validation bounds it to 0..=100
                Ok(CanaryStepEntry::Percent(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                #[allow(clippy::cast_precision_loss)] // validation bounds it to 0..=100
                Ok(CanaryStepEntry::Percent(v as f64))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                CanaryGateEntry::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(CanaryStepEntry::Gate)
            }
        }
        d.deserialize_any(Visit)
    }
}
