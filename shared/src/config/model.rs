//! The validated configuration: every value parsed, every default applied,
//! every cross-reference checked. Adapters only ever see this form.

use std::collections::BTreeMap;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use url::Url;

use crate::auth::AuthRequirement;
use crate::auth::IssuerPolicy;
use crate::auth::JwksCachePolicy;
use crate::auth::KvKeyStoreSettings;
use crate::auth::TokenCacheSettings;
use crate::cache::CacheRule;
use crate::cors::CorsPolicy;
use crate::route::{Method, RoutePattern};
use crate::throttle::{LeaseConfig, LimitKey, Quota};

/// A validated gateway configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    /// Gateway-wide settings.
    pub gateway: GatewaySettings,
    /// Trusted JWT issuers, in file order.
    pub issuers: Vec<Issuer>,
    /// API key settings, when any route accepts API keys.
    pub api_keys: Option<ApiKeySettings>,
    /// Plans by tier name.
    pub tiers: BTreeMap<String, Tier>,
    /// Routes, in match order.
    pub routes: Vec<Route>,
    /// Stages the rollback Lambda manages, if any.
    pub rollback: Option<RollbackPolicy>,
    /// The signed identity assertion, if configured.
    pub assertion: Option<AssertionSettings>,
    /// Global purges through Cloudflare's zone purge API, if configured.
    pub purge: Option<PurgeSettings>,
    /// `[health]`, when present.
    pub health: Option<HealthSettings>,
}

/// `[health]`: what the edge records and judges, and where it signals.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSettings {
    /// The rollback Lambda's `POST /edge/health`; `None`: judge without signalling.
    pub signal_url: Option<Url>,
    /// The attribution header (lower case).
    pub release_header: String,
    /// Its canary value.
    pub canary_release: String,
    /// The judgement's thresholds.
    pub judge: crate::health::JudgeSettings,
    /// Between two breaches sent for the same release.
    pub cooldown: Duration,
    /// The managed stages and their routes.
    pub stages: Vec<HealthStage>,
}

impl HealthSettings {
    /// Default attribution header.
    pub const DEFAULT_RELEASE_HEADER: &'static str = "x-tidegate-release";
    /// Default canary value of that header.
    pub const DEFAULT_CANARY_RELEASE: &'static str = "canary";
    /// Default cooldown.
    pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(60);
    /// The Worker secret (and Lambda variable) holding the signal's HMAC key.
    pub const SECRET_NAME: &'static str = "TIDEGATE_HEALTH_SECRET";

    /// The stage fed by the route named `route`.
    pub fn stage_of_route(&self, route: &str) -> Option<&HealthStage> {
        self.stages
            .iter()
            .find(|s| s.routes.iter().any(|r| r == route))
    }

    /// The stage whose key ([`HealthStage::key`]) is `key`.
    pub fn stage(&self, key: &str) -> Option<&HealthStage> {
        self.stages.iter().find(|s| s.key() == key)
    }
}

/// One managed stage the edge judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthStage {
    /// The REST API, as the rollback Lambda names it.
    pub api: String,
    /// The stage name.
    pub stage: String,
    /// The routes feeding it.
    pub routes: Vec<String>,
}

impl HealthStage {
    /// `api/stage`: the monitor's name (one Durable Object each).
    pub fn key(&self) -> String {
        format!("{}/{}", self.api, self.stage)
    }
}

/// Where global purges go: Cloudflare's zone purge API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeSettings {
    /// The zone ID, 32 lowercase hex characters.
    pub zone_id: String,
    /// Name of the Worker secret holding the API token.
    pub api_token_secret: String,
    /// Base URL of the API, without a trailing slash.
    pub api_base: Url,
}

impl PurgeSettings {
    /// Default name of the token secret.
    pub const DEFAULT_API_TOKEN_SECRET: &'static str = "CF_PURGE_TOKEN";
    /// Default API base.
    pub const DEFAULT_API_BASE: &'static str = "https://api.cloudflare.com/client/v4";
    /// Most URLs one purge call may name (Cloudflare's limit on most plans).
    pub const MAX_FILES_PER_CALL: usize = 30;

    /// The purge endpoint: `{api_base}/zones/{zone_id}/purge_cache`.
    pub fn purge_url(&self) -> String {
        format!(
            "{}/zones/{}/purge_cache",
            self.api_base.as_str().trim_end_matches('/'),
            self.zone_id
        )
    }
}

/// How identity assertions are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionSettings {
    /// The `iss` claim.
    pub issuer: String,
    /// Request header carrying the assertion, lower case.
    pub header: String,
    /// Lifetime of an assertion (1 s to 60 s).
    pub ttl: Duration,
    /// Name of the Worker secret holding the private JWK Set.
    pub keys_secret: String,
    /// `max-age` of the public JWKS document.
    pub jwks_max_age: Duration,
}

impl AssertionSettings {
    /// Default assertion header.
    pub const DEFAULT_HEADER: &'static str = "x-tidegate-assertion";
    /// Default lifetime.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
    /// Longest lifetime.
    pub const MAX_TTL: Duration = Duration::from_secs(60);
    /// Default key secret name.
    pub const DEFAULT_KEYS_SECRET: &'static str = "TIDEGATE_ASSERTION_KEYS";
    /// Default JWKS `max-age`.
    pub const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(300);
}

/// A static header for a route's origin, its value in a Worker secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginSecret {
    /// Header name, lower case.
    pub header: String,
    /// Name of the Worker secret holding the value.
    pub secret: String,
}

/// Gateway-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySettings {
    /// Path prefix of the admin endpoints, starting and ending with `/`.
    pub admin_prefix: String,
    /// Upstream timeout for routes that set none.
    pub default_timeout: Duration,
    /// Reuse a well-formed incoming request id.
    pub trust_request_id: bool,
    /// Send `Server-Timing` on every response.
    pub server_timing: bool,
    /// The per-isolate cache of verified tokens.
    pub token_cache: TokenCacheSettings,
}

impl GatewaySettings {
    /// Default admin endpoint prefix.
    pub const DEFAULT_ADMIN_PREFIX: &'static str = "/__tidegate/";
    /// Default upstream timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            admin_prefix: Self::DEFAULT_ADMIN_PREFIX.to_owned(),
            default_timeout: Self::DEFAULT_TIMEOUT,
            trust_request_id: true,
            server_timing: true,
            token_cache: TokenCacheSettings::default(),
        }
    }
}

/// A trusted JWT issuer.
#[derive(Debug, Clone, PartialEq)]
pub struct Issuer {
    /// Name routes refer to.
    pub name: String,
    /// How its tokens are checked.
    pub policy: IssuerPolicy,
    /// Where its keys come from.
    pub jwks: JwksSource,
    /// How fetched keys are cached.
    pub jwks_cache: JwksCachePolicy,
}

/// Where an issuer's signing keys come from.
#[derive(Debug, Clone, PartialEq)]
pub enum JwksSource {
    /// Fetched from this URL by the adapter.
    Url(Url),
    /// Written in the config file.
    Inline(JwkSet),
}

/// How clients present API keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeySettings {
    /// Request header carrying the key, lowercase.
    pub header: String,
    /// The Workers KV key store, when `store = "kv"`.
    pub kv: Option<KvKeyStoreSettings>,
}

/// A plan: quotas that replace the routes' limits of the same name for the
/// callers of its tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    /// The tier name.
    pub name: String,
    /// Its quotas, by route limit name.
    pub limits: Vec<TierLimit>,
}

/// One quota of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierLimit {
    /// The name of the route limits it replaces.
    pub name: String,
    /// The plan's quota.
    pub quota: Quota,
}

impl ApiKeySettings {
    /// Default API key header.
    pub const DEFAULT_HEADER: &'static str = "x-api-key";
}

/// One route.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Unique name.
    pub name: String,
    /// Methods served; empty means any.
    pub methods: Vec<Method>,
    /// Path pattern.
    pub pattern: RoutePattern,
    /// Origin base URL.
    pub upstream: Url,
    /// Literal prefix removed before proxying.
    pub strip_prefix: Option<String>,
    /// Upstream timeout.
    pub timeout: Duration,
    /// Forward the client's credentials to the origin.
    pub forward_credentials: bool,
    /// Who may call the route.
    pub auth: RouteAuth,
    /// Rate limits, if any.
    pub rate_limit: Option<RateLimitPolicy>,
    /// Response caching, if any.
    pub cache: Option<CacheRule>,
    /// CORS, if any.
    pub cors: Option<CorsPolicy>,
    /// Client-sent forwarding headers passed through, lower case.
    pub forward_client_headers: Vec<String>,
    /// Send the signed identity assertion (only when `[assertion]` is configured).
    pub assert_identity: bool,
    /// A static header for the origin, from a Worker secret.
    pub origin_secret: Option<OriginSecret>,
}

/// Who may call a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteAuth {
    /// Which credentials are accepted.
    pub requirement: AuthRequirement,
    /// Scopes the caller must all hold.
    pub scopes: Vec<String>,
    /// Issuer names accepted; `None` means all configured issuers.
    pub issuers: Option<Vec<String>>,
}

/// What to do when the limiter cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// Let the request through.
    Open,
    /// Refuse it with 503.
    Closed,
}

/// A route's rate limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitPolicy {
    /// Count and add headers but never refuse.
    pub shadow: bool,
    /// Behaviour when the limiter is unreachable.
    pub on_error: FailureMode,
    /// Leasing of hot keys' budget (`None`: off).
    pub lease: Option<LeaseConfig>,
    /// Limits a request must all pass.
    pub limits: Vec<RouteLimit>,
}

/// One limit of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteLimit {
    /// Name, unique within the route.
    pub name: String,
    /// How much, how often.
    pub quota: Quota,
    /// What is counted by.
    pub key: LimitKey,
    /// Cost of one request.
    pub cost: u64,
}

/// The stages the rollback Lambda manages.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackPolicy {
    /// SNS topic notified of every action.
    pub notification_topic_arn: Option<String>,
    /// The edge's `GET {admin_prefix}health/releases`, which the dashboard
    /// plots (`[rollback.edge] health_url`); `None`: no edge panel.
    pub edge_health_url: Option<Url>,
    /// Managed stages; nothing else is touched.
    pub stages: Vec<ManagedStage>,
}

/// How a managed stage names its REST API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestApiRef {
    /// By id, e.g. `a1b2c3d4e5`.
    Id(String),
    /// By name, resolved at run time.
    Name(String),
}

/// One managed API Gateway stage and its rollout policy.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedStage {
    /// The REST API.
    pub api: RestApiRef,
    /// Stage name.
    pub stage: String,
    /// Alarms on the whole stage.
    pub stage_alarms: Vec<String>,
    /// Alarms on the canary only.
    pub canary_alarms: Vec<String>,
    /// Canary 5XX error rate (0 to 1] above which the canary is unhealthy.
    pub error_rate_threshold: f64,
    /// Fewest requests before the error rate is judged.
    pub min_requests: u64,
    /// Canary traffic steps, strictly increasing, ending at 100; a step
    /// may require an operator's approval before the canary moves on.
    pub canary_steps: Vec<CanaryStep>,
    /// How long each step must stay healthy.
    pub bake_time: Duration,
    /// After a rollback, how long no other automatic rollback or canary step happens.
    pub cooldown: Duration,
    /// Window of metric data read for the error rate.
    pub metric_window: Duration,
    /// `ApiName` metric dimension, if it differs from the API name.
    pub metric_api_name: Option<String>,
    /// `Stage` dimension of canary metrics, with `{stage}` unexpanded.
    pub canary_stage_dimension: String,
    /// Log instead of acting.
    pub dry_run: bool,
}

impl ManagedStage {
    /// Default canary error-rate threshold (5 %).
    pub const DEFAULT_ERROR_RATE_THRESHOLD: f64 = 0.05;
    /// Default minimum request count.
    pub const DEFAULT_MIN_REQUESTS: u64 = 100;
    /// Default canary steps (no approval gates).
    pub const DEFAULT_CANARY_STEPS: [CanaryStep; 5] = [
        CanaryStep::at(5.0),
        CanaryStep::at(10.0),
        CanaryStep::at(25.0),
        CanaryStep::at(50.0),
        CanaryStep::at(100.0),
    ];
    /// Default bake time per step.
    pub const DEFAULT_BAKE_TIME: Duration = Duration::from_secs(300);
    /// Default cooldown after a rollback.
    pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(600);
    /// Default metric window.
    pub const DEFAULT_METRIC_WINDOW: Duration = Duration::from_secs(300);
    /// Default canary `Stage` dimension template.
    pub const DEFAULT_CANARY_STAGE_DIMENSION: &'static str = "{stage}/Canary";

    /// The canary's `Stage` metric dimension value for this stage.
    pub fn canary_stage_dimension_value(&self) -> String {
        self.canary_stage_dimension.replace("{stage}", &self.stage)
    }
}

/// One planned canary step: its traffic share and whether the canary waits
/// there for an operator's approval before it moves on (a manual gate).
///
/// ```
/// use tidegate_policy::config::CanaryStep;
/// let gate = CanaryStep::at(50.0).gated();
/// assert!(gate.approve && gate.percent == 50.0);
/// assert_eq!(
///     serde_json::to_string(&gate).unwrap(),
///     r#"{"percent":50.0,"approve":true}"#
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CanaryStep {
    /// Share of the stage's traffic on the canary, above 0 and at most 100.
    pub percent: f64,
    /// Once baked at this step, the canary waits for `approve`.
    #[serde(default)]
    pub approve: bool,
}

impl CanaryStep {
    /// A step at `percent` with no gate.
    #[must_use]
    pub const fn at(percent: f64) -> Self {
        Self {
            percent,
            approve: false,
        }
    }

    /// The same step, requiring approval.
    #[must_use]
    pub const fn gated(mut self) -> Self {
        self.approve = true;
        self
    }
}

/// `50%`, or `50% (approve)` for a gate.
impl std::fmt::Display for CanaryStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}%", self.percent)?;
        if self.approve {
            f.write_str(" (approve)")?;
        }
        Ok(())
    }
}
