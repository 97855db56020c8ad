//! The control API, for operators and dashboards:
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/` | the dashboard: every managed stage ([`crate::dashboard`]) |
//! | GET | `/ui/{api}/{stage}` | the dashboard of one stage (`?hours=N` for the chart) |
//! | GET | `/stages` | every managed stage |
//! | GET | `/stages/{api}/{stage}` | one stage: deployment, canary, alarms, last-known-good, pause, recent actions (what, who, why, trigger, outcome, when) |
//! | GET | `/stages/{api}/{stage}/metrics?hours=N` | requests and 5xx rate of the stage and its canary per period, and the actions to mark ([`crate::metrics`]) |
//! | GET | `/stages/{api}/{stage}/edge` | the edge's live figures of the stage ([`crate::live`]: per release requests, 5xx, p50/p99 and one point per second over the edge's window, the verdict, the last signal), as the edge's `health/releases` gives them; 404 when the edge feed is not configured or the edge does not monitor the stage, 502/504 when the edge fails |
//! | GET | `/stages/{api}/{stage}/history?limit=N` | the stage's history, newest first: `{"entries": [...]}` (N from 1 to 100, default 20) |
//! | POST | `/stages/{api}/{stage}/{rollback,promote,pause,resume}` | operator command, body `{"reason": "..."}` (pause also takes `"for": "2h"`); the dashboard's forms post the same fields form-encoded and are answered with a redirect to the stage's page |
//! | POST | `/stages/{api}/{stage}/advance` | move the active canary one planned step now (never past a failing health check or an unapproved gate); 409 when there is no canary or it waits for approval |
//! | POST | `/stages/{api}/{stage}/approve` | pass the approval gate the canary waits at; 409 when it waits for none |
//! | POST | `/stages/{api}/{stage}/start` | start a canary, body `{"deployment": "abc123", "steps": [5, 25, {"percent": 50, "approve": true}, 100], "reason": "..."}` (`steps` optional: the stage's `canary_steps`); 409 while a canary is active |
//! | POST | `/edge/health` | the edge's signed health event ([`crate::edge`]): authenticated by its signature alone, no admin key |
//! | GET, POST | `/signin` | browser sign-in: the form; the admin API key or a JWT exchanged for a session cookie |
//! | POST | `/signout` | ends the browser session |
//!
//! Operator commands answer 200 with the stage's report (the decision and
//! what came of it); a command the stage's state refuses is a 409 problem
//! (422 when `start` names a deployment that does not exist, 503 when
//! `GetDeployment` could not tell).
//!
//! ```
//! use lambda_http::http::Method;
//! use tidegate_rollback::http::{route, ControlRoute};
//! assert!(matches!(
//!     route(&Method::GET, "/stages/orders-api/prod/history"),
//!     Ok(ControlRoute::History { .. })
//! ));
//! assert!(matches!(route(&Method::POST, "/stages/orders-api/prod/approve"), Ok(ControlRoute::Command { .. })));
//! assert!(matches!(route(&Method::GET, "/stages/orders-api/prod/edge"), Ok(ControlRoute::Edge { .. })));
//! ```
//!
//! The caller's identity (`key:<consumer>` or `jwt:<iss>:<sub>`) is recorded
//! with every command, in the audit line and the stage's history; for a
//! browser session, the identity that signed in.
//!
//! # Browser sessions
//! With `TIDEGATE_SESSION_SECRET` set, `POST /signin` checks the credential
//! exactly as a header would be checked (admin scope required) and answers
//! with a session cookie ([`tidegate_policy::session`]: HMAC-SHA256 signed,
//! [`SESSION_TTL_MS`], HttpOnly, Secure, SameSite=Strict). A request with
//! an `Authorization` or API key header is judged by that header alone;
//! otherwise the cookie is used, and a POST made with it must carry the
//! session's CSRF token (form field `csrf` or header `X-CSRF-Token`).
//! Browsers asking for a page without a valid session are sent to
//! `/signin`.
//!
//! `{api}` is the REST API as the config names it (id or name). Every route
//! needs the [`ADMIN_SCOPE`], presented with the edge's credentials: a JWT
//! from a configured issuer (inline `jwks` or fetched `jwks_url`), or an API
//! key from `API_KEYS`. Errors are
//! problem+json (RFC 9457), and never echo credentials.
//!
//! The AWS work sits behind [`Control`], so routing and authentication are
//! testable without AWS.

use std::future::Future;
use std::pin::Pin;

use lambda_http::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};
use tidegate_policy::auth::{
    Algorithm, AuthRejection, AuthRequirement, CredentialHeaders, Identity, Jwk, KeyProvider,
    NativeVerifier, UnverifiedJwt,
};
use tidegate_policy::config::{CanaryStep, CanaryStepEntry, Issuer};
use tidegate_policy::health::StageHealth;
use tidegate_policy::problem::Problem;
use tidegate_policy::rollout::{check_steps, Hold, ManualCommand, StartCanary, Trigger};
use tidegate_policy::session::{self, SessionClaims, SessionError};

use crate::config::{Settings, SESSION_SECRET_ENV};
use crate::dashboard::{self, PageContext, Progress, StageDetail};
use crate::execute::RunReport;
use crate::jwks::IssuerKeys;
use crate::live::EdgeUnavailable;
use crate::metrics::{MetricsWindow, StageMetrics};
use crate::status::{HistoryPage, StageStatus, StatusList, RECENT_ACTIONS};
use crate::store::HistoryEntry;

/// The scope every control-API call needs.
pub const ADMIN_SCOPE: &str = "tidegate:admin";
/// Longest request body accepted.
pub const MAX_BODY: usize = 4 * 1024;
/// How long a browser session lasts.
pub const SESSION_TTL_MS: u64 = 60 * 60 * 1000;
/// The header a cookie-authenticated script sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Most history entries one request returns.
pub const MAX_HISTORY: usize = 100;

/// A boxed future, for the object-safe [`Control`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the control API does, implemented over AWS by [`crate::App`].
pub trait Control: Send + Sync {
    /// The loaded settings.
    fn settings(&self) -> &Settings;
    /// The issuers' signing keys (cached per container).
    fn issuer_keys(&self) -> &IssuerKeys;
    /// The status of every managed stage.
    fn list(&self) -> BoxFuture<'_, StatusList>;
    /// The status of managed stage `index`.
    fn show(&self, index: usize) -> BoxFuture<'_, Option<StageStatus>>;
    /// Runs an operator command (a [`Trigger::Manual`]) or the edge's
    /// signal (a [`Trigger::Edge`]) on managed stage `index`: the report
    /// (the decision and what came of it), `None` when there is no managed
    /// stage `index`.
    fn command(&self, index: usize, trigger: Trigger) -> BoxFuture<'_, Option<RunReport>>;
    /// The metrics of managed stage `index` over `window`.
    fn metrics(&self, index: usize, window: MetricsWindow) -> BoxFuture<'_, Option<StageMetrics>>;
    /// The newest `limit` history entries of managed stage `index`, newest
    /// first; `Err` says why they could not be read.
    fn history(
        &self,
        index: usize,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<HistoryEntry>, String>> {
        let _ = (index, limit);
        Box::pin(async { Err("this control API keeps no history".to_owned()) })
    }
    /// Claims the edge event `id` until `until_ms`: `Ok(false)` when it
    /// was claimed already ([`crate::store::StateStore::claim_signal`]).
    fn claim_signal(
        &self,
        id: String,
        until_ms: u64,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<bool, String>> {
        let _ = (id, until_ms, now_ms);
        Box::pin(async { Err("this control API keeps no edge events".to_owned()) })
    }
    /// The edge's live figures of managed stage `index` ([`crate::live`]);
    /// `Err` says why there are none (never fails a page).
    fn edge_health(&self, index: usize) -> BoxFuture<'_, Result<StageHealth, EdgeUnavailable>> {
        let _ = index;
        Box::pin(async { Err(EdgeUnavailable::NotConfigured) })
    }
    /// Gives the claim of edge event `id` back.
    fn forget_signal(&self, id: String) -> BoxFuture<'_, Result<(), String>> {
        let _ = id;
        Box::pin(async { Ok(()) })
    }
}

/// A parsed control-API route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlRoute {
    /// `GET /`.
    Page,
    /// `GET /stages`.
    List,
    /// `GET /stages/{api}/{stage}`.
    Show {
        /// API (id or name).
        api: String,
        /// Stage.
        stage: String,
    },
    /// `GET /stages/{api}/{stage}/history`.
    History {
        /// API (id or name).
        api: String,
        /// Stage.
        stage: String,
    },
    /// `GET /ui/{api}/{stage}`.
    StagePage {
        /// API (id or name).
        api: String,
        /// Stage.
        stage: String,
    },
    /// `GET /stages/{api}/{stage}/metrics`.
    Metrics {
        /// API (id or name).
        api: String,
        /// Stage.
        stage: String,
    },
    /// `GET /stages/{api}/{stage}/edge`.
    Edge {
        /// API (id or name).
        api: String,
        /// Stage.
        stage: String,
    },
    /// `GET /signin`.
    SignInForm,
    /// `POST /signin`.
    SignIn,
    /// `POST /signout`.
    SignOut,
    /// `POST /edge/health`.
    EdgeHealth,
    /// `POST /stages/{api}/{stage}/{command}`.
    Command {
        /// API (id or name).
        api: String,
        /// Stage.
        stage: String,
        /// The command.
        command: ManualCommand,
    },
}

/// Why a request matched no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No such path.
    NotFound,
    /// Path exists, method does not.
    MethodNotAllowed(&'static str),
}

/// Matches `method path`.
pub fn route(method: &Method, path: &str) -> Result<ControlRoute, RouteError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let is_get = method == Method::GET || method == Method::HEAD;
    match segments.as_slice() {
        [] if is_get => Ok(ControlRoute::Page),
        [] => Err(RouteError::MethodNotAllowed("GET")),
        ["stages"] if is_get => Ok(ControlRoute::List),
        ["stages"] => Err(RouteError::MethodNotAllowed("GET")),
        ["stages", api, stage] if is_get => Ok(ControlRoute::Show {
            api: (*api).to_owned(),
            stage: (*stage).to_owned(),
        }),
        ["stages", _, _] => Err(RouteError::MethodNotAllowed("GET")),
        ["stages", api, stage, "metrics"] if is_get => Ok(ControlRoute::Metrics {
            api: (*api).to_owned(),
            stage: (*stage).to_owned(),
        }),
        ["stages", _, _, "metrics"] => Err(RouteError::MethodNotAllowed("GET")),
        ["ui", api, stage] if is_get => Ok(ControlRoute::StagePage {
            api: (*api).to_owned(),
            stage: (*stage).to_owned(),
        }),
        ["ui", _, _] => Err(RouteError::MethodNotAllowed("GET")),
        ["signin"] if is_get => Ok(ControlRoute::SignInForm),
        ["signin"] if method == Method::POST => Ok(ControlRoute::SignIn),
        ["signin"] => Err(RouteError::MethodNotAllowed("GET, POST")),
        ["signout"] if method == Method::POST => Ok(ControlRoute::SignOut),
        ["signout"] => Err(RouteError::MethodNotAllowed("POST")),
        ["edge", "health"] if method == Method::POST => Ok(ControlRoute::EdgeHealth),
        ["edge", "health"] => Err(RouteError::MethodNotAllowed("POST")),
        ["stages", api, stage, "history"] if is_get => Ok(ControlRoute::History {
            api: (*api).to_owned(),
            stage: (*stage).to_owned(),
        }),
        ["stages", _, _, "history"] => Err(RouteError::MethodNotAllowed("GET")),
        ["stages", api, stage, "edge"] if is_get => Ok(ControlRoute::Edge {
            api: (*api).to_owned(),
            stage: (*stage).to_owned(),
        }),
        ["stages", _, _, "edge"] => Err(RouteError::MethodNotAllowed("GET")),
        ["stages", api, stage, cmd] => match ManualCommand::from_path(cmd) {
            None => Err(RouteError::NotFound),
            Some(_) if method != Method::POST => Err(RouteError::MethodNotAllowed("POST")),
            Some(command) => Ok(ControlRoute::Command {
                api: (*api).to_owned(),
                stage: (*stage).to_owned(),
                command,
            }),
        },
        _ => Err(RouteError::NotFound),
    }
}

/// Authenticates the caller (JWT or API key) and checks the admin scope,
/// through the policy's pipeline. JWT keys come from the issuer's inline
/// `jwks` or its `jwks_url` (fetched and cached in `keys`, see
/// [`crate::jwks`]).
pub async fn authenticate(
    settings: &Settings,
    keys: &IssuerKeys,
    headers: &HeaderMap,
    now_ms: u64,
) -> Result<Identity, AuthRejection> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let requirement = match (
        settings.gateway.issuers.is_empty(),
        settings.api_keys.is_empty(),
    ) {
        (false, false) | (true, true) => AuthRequirement::Either,
        (false, true) => AuthRequirement::Jwt,
        (true, false) => AuthRequirement::ApiKey,
    };
    let credentials = CredentialHeaders {
        authorization: get(header::AUTHORIZATION.as_str()),
        authorization_repeated: headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .nth(1)
            .is_some(),
        api_key: get(settings.gateway.api_key_header()),
    };
    let provider = ControlKeys { settings, keys };
    tidegate_policy::auth::authenticate(
        requirement,
        &[ADMIN_SCOPE.to_owned()],
        credentials,
        &provider,
        &NativeVerifier,
        now_ms,
    )
    .await?
    .ok_or(AuthRejection::MissingCredentials {
        accepted: requirement,
    })
}

/// What the pipeline asks the control API for: any configured issuer, its
/// keys from `keys`, API keys from the config.
struct ControlKeys<'a> {
    settings: &'a Settings,
    keys: &'a IssuerKeys,
}

impl KeyProvider for ControlKeys<'_> {
    type Error = AuthRejection;

    fn issuer(&self, jwt: &UnverifiedJwt<'_>) -> Result<&Issuer, AuthRejection> {
        self.settings.gateway.token_issuer(jwt)
    }

    async fn signing_key(
        &self,
        issuer: &Issuer,
        kid: Option<&str>,
        alg: Algorithm,
        now_ms: u64,
    ) -> Result<Jwk, AuthRejection> {
        self.keys.key_for(issuer, kid, alg, now_ms).await
    }

    async fn api_key(&self, key: &str, now_ms: u64) -> Result<Identity, AuthRejection> {
        self.settings.api_keys.authenticate(key, now_ms)
    }
}

/// The body of an operator command.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandBody {
    reason: String,
    /// For pause: how long until it ends by itself, e.g. `"2h"`.
    #[serde(default, rename = "for")]
    duration: Option<String>,
    /// For start: the deployment to roll out.
    #[serde(default)]
    deployment: Option<String>,
    /// For start: its steps, as `canary_steps` writes them.
    #[serde(default)]
    steps: Option<Vec<CanaryStepEntry>>,
}

impl CommandBody {
    /// What `start` asks for; `Err` names the field and the fix. Other
    /// commands take neither field.
    fn start(&self, command: ManualCommand) -> Result<Option<StartCanary>, String> {
        if command != ManualCommand::Start {
            return match (&self.deployment, &self.steps) {
                (None, None) => Ok(None),
                _ => Err("`deployment` and `steps` are only taken by start".to_owned()),
            };
        }
        let deployment = match self.deployment.as_deref().map(str::trim) {
            Some(d) if !d.is_empty() => d.to_owned(),
            _ => {
                return Err(
                    "start needs `deployment`: the id of the deployment to roll out".to_owned(),
                )
            }
        };
        let steps = self.steps.as_ref().map(|entries| {
            entries
                .iter()
                .map(|e| match e {
                    CanaryStepEntry::Percent(p) => CanaryStep::at(*p),
                    CanaryStepEntry::Gate(g) => CanaryStep {
                        percent: g.percent,
                        approve: g.approve,
                    },
                })
                .collect::<Vec<_>>()
        });
        if let Some(steps) = &steps {
            check_steps(steps).map_err(|e| format!("`steps`: {e}"))?;
        }
        Ok(Some(StartCanary { deployment, steps }))
    }
}

/// The `limit` query parameter of the history route: 1 to [`MAX_HISTORY`],
/// default [`RECENT_ACTIONS`].
pub fn history_limit(query: Option<&str>) -> Result<usize, String> {
    let value = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == "limit")
        .map(|(_, v)| v);
    match value {
        None => Ok(RECENT_ACTIONS),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_HISTORY).contains(&n) => Ok(n),
            _ => Err(format!(
                "`limit` must be a whole number from 1 to {MAX_HISTORY}, got `{v}`"
            )),
        },
    }
}

/// The problem for a command the stage's state refused, if it was refused:
/// the decision's hold for `command`.
pub fn refusal(command: ManualCommand, report: &RunReport) -> Option<Problem> {
    let hold = report.decision.as_ref()?.action.hold()?;
    let conflict = |slug: &str, title: &str, fix: &str| {
        Some(Problem::new(409, slug, title).with_detail(format!("{hold}; {fix}")))
    };
    match (command, hold) {
        (ManualCommand::Approve, Hold::NotAwaitingApproval) => conflict(
            "not-awaiting-approval",
            "The canary does not wait for approval",
            "approve is for a canary at a step with `approve = true` (see `awaiting_approval` in GET /stages/{api}/{stage})",
        ),
        (ManualCommand::Advance, Hold::NoActiveCanaryToAdvance) => conflict(
            "no-active-canary",
            "No active canary",
            "start one with POST /stages/{api}/{stage}/start",
        ),
        (ManualCommand::Advance, Hold::AwaitingApproval { .. }) => conflict(
            "awaiting-approval",
            "The canary waits for approval",
            "approve it first with POST /stages/{api}/{stage}/approve",
        ),
        (ManualCommand::Start, Hold::CanaryAlreadyActive { .. }) => conflict(
            "canary-active",
            "A canary is already active",
            "promote or roll it back first",
        ),
        (ManualCommand::Start, Hold::InvalidStart { .. }) => conflict(
            "cannot-start",
            "The canary cannot start",
            "name a deployment the stage does not serve",
        ),
        (ManualCommand::Start, Hold::DeploymentMissing { .. }) => Some(
            Problem::new(422, "unknown-deployment", "No such deployment").with_detail(format!(
                "{hold}; give the id of an existing deployment of this REST API (aws apigateway get-deployments)"
            )),
        ),
        (ManualCommand::Start, Hold::DeploymentUnverified { .. }) => Some(
            Problem::new(503, "deployment-unverified", "Deployment not verified").with_detail(
                format!("{hold}; nothing was changed: send the command again"),
            ),
        ),
        _ => None,
    }
}

/// A problem+json response.
pub fn problem(p: &Problem, extra: Option<(header::HeaderName, String)>) -> Response<Body> {
    let mut b = Response::builder()
        .status(p.status)
        .header(header::CONTENT_TYPE, "application/problem+json");
    if let Some((name, value)) = extra {
        b = b.header(name, value);
    }
    b.body(Body::Text(p.to_json()))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Text(text))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

fn rejection(r: &AuthRejection) -> Response<Body> {
    problem(
        &r.to_problem(),
        r.www_authenticate().map(|v| (header::WWW_AUTHENTICATE, v)),
    )
}

/// The index of the managed stage `api`/`stage` names.
fn managed(settings: &Settings, api: &str, stage: &str) -> Option<usize> {
    settings
        .policy
        .stages
        .iter()
        .position(|s| crate::execute::api_label(s) == api && s.stage == stage)
}

/// Who is calling, and how they proved it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Caller {
    /// An `Authorization` or API key header (the CLI, scripts, a signing
    /// proxy): no CSRF token needed.
    Header(String),
    /// A browser session cookie: POSTs need its CSRF token.
    Session {
        /// The identity that signed in.
        who: String,
        /// The session token (the CSRF token is derived from it).
        token: String,
    },
}

impl Caller {
    fn operator(&self) -> String {
        match self {
            Self::Header(who) | Self::Session { who, .. } => who.clone(),
        }
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether the request carries credentials in headers (then the cookie is
/// ignored).
fn has_credential_headers(settings: &Settings, headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION)
        || headers.contains_key(settings.gateway.api_key_header())
}

/// The session cookie's token, if any.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| session::cookie_value(h, session::SESSION_COOKIE))
        .map(str::to_owned)
}

/// Why a request has no caller.
enum Unauthenticated {
    /// The credential headers were missing or refused.
    Credentials(AuthRejection),
    /// The session cookie was refused (expired, altered).
    Session(SessionError),
}

async fn identify(
    control: &dyn Control,
    headers: &HeaderMap,
    now_ms: u64,
) -> Result<Caller, Unauthenticated> {
    let settings = control.settings();
    if !has_credential_headers(settings, headers) {
        if let (Some(key), Some(token)) = (&settings.session_key, session_cookie(headers)) {
            return session::verify(key, &token, now_ms)
                .map(|c| Caller::Session { who: c.sub, token })
                .map_err(Unauthenticated::Session);
        }
    }
    authenticate(settings, control.issuer_keys(), headers, now_ms)
        .await
        .map(|i| Caller::Header(i.qualified_subject()))
        .map_err(Unauthenticated::Credentials)
}

/// Whether the client asked for HTML (a browser navigating).
fn wants_html(headers: &HeaderMap) -> bool {
    header_str(headers, header::ACCEPT.as_str()).is_some_and(|a| a.contains("text/html"))
}

fn is_form(headers: &HeaderMap) -> bool {
    header_str(headers, header::CONTENT_TYPE.as_str())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
}

fn html(status: u16, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
        .header("x-frame-options", "DENY")
        .body(Body::Text(body))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// A 303 to `location` (relative to the request's path), optionally
/// setting a cookie.
fn see_other(location: &str, cookie: Option<String>) -> Response<Body> {
    let mut b = Response::builder()
        .status(303)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store");
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        b = b.header(header::SET_COOKIE, c);
    }
    b.body(Body::Empty)
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// How many segments below the root `path` is (for relative links).
fn depth(path: &str) -> usize {
    path.split('/')
        .filter(|s| !s.is_empty())
        .count()
        .saturating_sub(1)
}

/// The body fields of a command, from JSON or a form.
struct CommandFields {
    body: CommandBody,
    csrf: Option<String>,
}

fn command_fields(headers: &HeaderMap, body: &[u8]) -> Result<CommandFields, String> {
    if body.len() > MAX_BODY {
        return Err(format!("the body is over {MAX_BODY} bytes"));
    }
    let header_csrf = header_str(headers, CSRF_HEADER).map(str::to_owned);
    if is_form(headers) {
        let mut f = CommandFields {
            body: CommandBody {
                reason: String::new(),
                duration: None,
                deployment: None,
                steps: None,
            },
            csrf: header_csrf,
        };
        for (k, v) in form_urlencoded::parse(body) {
            match &*k {
                "reason" => f.body.reason = v.into_owned(),
                "for" if !v.trim().is_empty() => f.body.duration = Some(v.into_owned()),
                "deployment" if !v.trim().is_empty() => f.body.deployment = Some(v.into_owned()),
                "csrf" => f.csrf = Some(v.into_owned()),
                _ => {}
            }
        }
        return Ok(f);
    }
    let b = serde_json::from_slice::<CommandBody>(body).map_err(|e| e.to_string())?;
    Ok(CommandFields {
        body: b,
        csrf: header_csrf,
    })
}

/// The one-line notice a redirect after a form post carries back
/// (`?done=<command>&outcome=<status>`), rebuilt from known words only.
fn notice(req: &Request) -> Option<String> {
    let q = req.query_string_parameters();
    let done = q
        .first("done")
        .filter(|d| ManualCommand::from_path(d).is_some())?;
    let outcome = q
        .first("outcome")
        .filter(|o| !o.is_empty() && o.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .unwrap_or("sent");
    Some(format!("{done}: {}", outcome.replace('_', " ")))
}

fn session_problem(e: &SessionError) -> Response<Body> {
    let (status, kind) = match e {
        SessionError::CsrfMissing | SessionError::CsrfMismatch => (403, "csrf"),
        _ => (401, "session"),
    };
    problem(
        &Problem::new(status, kind, "Session refused").with_detail(e.to_string()),
        None,
    )
}

fn signin_disabled(settings: &Settings) -> Option<String> {
    settings.session_key.is_none().then(|| {
        format!(
            "Browser sign-in is off: {SESSION_SECRET_ENV} is not set. Set it in the Lambda's \
             environment to a random secret of at least 32 bytes (e.g. `openssl rand -base64 48`); \
             until then use the API with an Authorization or API key header (e.g. `tidegate dashboard`)."
        )
    })
}

/// `POST /signin`: the credential checked as a header would be, then a
/// session cookie.
async fn sign_in(control: &dyn Control, req: &Request, now_ms: u64) -> Response<Body> {
    let settings = control.settings();
    let ctx = PageContext::new(now_ms);
    let Some(key) = &settings.session_key else {
        return html(
            503,
            dashboard::render_signin(&ctx, None, signin_disabled(settings).as_deref()),
        );
    };
    let body: &[u8] = req.body().as_ref();
    let credential = if body.len() > MAX_BODY {
        None
    } else {
        form_urlencoded::parse(body)
            .find(|(k, _)| k == "credential")
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let Some(credential) = credential else {
        return html(
            400,
            dashboard::render_signin(&ctx, Some("Enter the admin API key or a JWT."), None),
        );
    };
    // A JWT has three dot-separated parts; anything else is an API key.
    let mut headers = HeaderMap::new();
    let pair = if credential.split('.').count() == 3 {
        HeaderValue::from_str(&format!("Bearer {credential}"))
            .ok()
            .map(|v| (header::AUTHORIZATION, v))
    } else {
        match (
            header::HeaderName::from_bytes(settings.gateway.api_key_header().as_bytes()).ok(),
            HeaderValue::from_str(&credential).ok(),
        ) {
            (Some(n), Some(v)) => Some((n, v)),
            _ => None,
        }
    };
    let Some((name, value)) = pair else {
        return html(
            401,
            dashboard::render_signin(&ctx, Some("That credential is not valid."), None),
        );
    };
    headers.insert(name, value);
    match authenticate(settings, control.issuer_keys(), &headers, now_ms).await {
        Ok(identity) => {
            let claims = SessionClaims::new(
                identity.qualified_subject(),
                now_ms,
                SESSION_TTL_MS,
                crate::invocation_id(),
            );
            let token = session::issue(key, &claims);
            tracing::info!(who = %claims.sub, "dashboard sign-in");
            see_other(
                "./",
                Some(session::set_cookie(&token, SESSION_TTL_MS / 1000)),
            )
        }
        Err(r) => {
            let p = r.to_problem();
            let why = format!(
                "Sign-in refused: {}",
                p.detail.as_deref().unwrap_or(&p.title)
            );
            html(p.status, dashboard::render_signin(&ctx, Some(&why), None))
        }
    }
}

/// Serves one control-API request.
pub async fn handle(control: &dyn Control, req: Request, now_ms: u64) -> Response<Body> {
    let path = match req.raw_http_path() {
        "" => req.uri().path(),
        p => p,
    }
    .to_owned();
    let route = match route(req.method(), &path) {
        Ok(r) => r,
        Err(RouteError::NotFound) => {
            return problem(
                &Problem::new(404, "not-found", "Not found").with_detail(
                    "expected GET /, GET /ui/{api}/{stage}, GET /stages, GET /stages/{api}/{stage}, GET /stages/{api}/{stage}/metrics, GET /stages/{api}/{stage}/history, POST /stages/{api}/{stage}/{rollback|promote|pause|resume|advance|approve|start}, GET or POST /signin, POST /signout, POST /edge/health",
                ),
                None,
            )
        }
        Err(RouteError::MethodNotAllowed(allow)) => {
            return problem(
                &Problem::new(405, "method-not-allowed", "Method not allowed")
                    .with_detail(format!("this path takes {allow}")),
                Some((header::ALLOW, allow.to_owned())),
            )
        }
    };
    let settings = control.settings();
    let page_ctx = PageContext::new(now_ms).at_depth(depth(&path));
    match route {
        ControlRoute::SignInForm => {
            return html(
                200,
                dashboard::render_signin(&page_ctx, None, signin_disabled(settings).as_deref()),
            )
        }
        ControlRoute::SignIn => return sign_in(control, &req, now_ms).await,
        // Signed by the edge: no admin credential, no session.
        ControlRoute::EdgeHealth => {
            return match crate::edge::receive(control, req.headers(), req.body().as_ref(), now_ms)
                .await
            {
                crate::edge::EdgeReply::Answer(status, answer) => json(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::ACCEPTED),
                    &answer,
                ),
                crate::edge::EdgeReply::Problem(p) => problem(&p, None),
            }
        }
        ControlRoute::SignOut => {
            // Only the session's own form may end it (CSRF), but an
            // expired or unreadable session is simply cleared.
            if let (Some(key), Some(token)) = (&settings.session_key, session_cookie(req.headers()))
            {
                if session::verify(key, &token, now_ms).is_ok() {
                    let csrf = form_urlencoded::parse(req.body().as_ref())
                        .find(|(k, _)| k == "csrf")
                        .map(|(_, v)| v.into_owned())
                        .or_else(|| header_str(req.headers(), CSRF_HEADER).map(str::to_owned));
                    if let Err(e) = session::check_csrf(key, &token, csrf.as_deref()) {
                        return session_problem(&e);
                    }
                }
            }
            return see_other("signin", Some(session::clear_cookie()));
        }
        _ => {}
    }
    let is_page = matches!(route, ControlRoute::Page | ControlRoute::StagePage { .. });
    let caller = match identify(control, req.headers(), now_ms).await {
        Ok(c) => c,
        // A browser without a (valid) session goes to the sign-in page.
        Err(_)
            if is_page
                && wants_html(req.headers())
                && !has_credential_headers(settings, req.headers()) =>
        {
            return see_other(&format!("{}signin", page_ctx.base()), None)
        }
        Err(Unauthenticated::Credentials(r)) => return rejection(&r),
        Err(Unauthenticated::Session(e)) => return session_problem(&e),
    };
    let page_ctx = match (&caller, &settings.session_key) {
        (Caller::Session { who, token }, Some(key)) => {
            page_ctx.session(who.clone(), session::csrf_token(key, token))
        }
        _ => page_ctx,
    };
    let unknown_stage = |api: &str, stage: &str| {
        problem(
            &Problem::new(404, "unknown-stage", "Not a managed stage").with_detail(format!(
                "{api}/{stage} is not in the [[rollback.stages]] of the configuration"
            )),
            None,
        )
    };
    match route {
        ControlRoute::SignInForm
        | ControlRoute::SignIn
        | ControlRoute::SignOut
        | ControlRoute::EdgeHealth => unknown_stage("", ""),
        ControlRoute::Page => {
            let data = control.list().await;
            html(200, dashboard::render_list(&data, &page_ctx))
        }
        ControlRoute::StagePage { api, stage } => {
            let Some(i) = managed(settings, &api, &stage) else {
                return unknown_stage(&api, &stage);
            };
            let window = match MetricsWindow::from_hours(
                req.query_string_parameters().first("hours"),
                now_ms,
            ) {
                Ok(w) => w,
                Err(e) => {
                    return problem(
                        &Problem::new(400, "invalid-query", "Invalid query")
                            .with_detail(e.to_string()),
                        None,
                    )
                }
            };
            // The edge's answer (at most EDGE_TIMEOUT) is awaited alongside AWS's.
            let (status, metrics, edge) = tokio::join!(
                control.show(i),
                control.metrics(i, window),
                control.edge_health(i)
            );
            let Some(status) = status else {
                return unknown_stage(&api, &stage);
            };
            let page_ctx = match notice(&req) {
                Some(n) => page_ctx.notice(n),
                None => page_ctx,
            };
            let view = StageDetail {
                progress: Progress::of(&status),
                status: &status,
                metrics: metrics.as_ref(),
                edge: Some(&edge),
            };
            html(200, dashboard::render_stage(&view, &page_ctx))
        }
        ControlRoute::List => json(StatusCode::OK, &control.list().await),
        ControlRoute::Show { api, stage } => match managed(settings, &api, &stage) {
            Some(i) => match control.show(i).await {
                Some(status) => json(StatusCode::OK, &status),
                None => unknown_stage(&api, &stage),
            },
            None => unknown_stage(&api, &stage),
        },
        ControlRoute::Metrics { api, stage } => {
            let Some(i) = managed(settings, &api, &stage) else {
                return unknown_stage(&api, &stage);
            };
            match MetricsWindow::from_hours(req.query_string_parameters().first("hours"), now_ms) {
                Ok(window) => match control.metrics(i, window).await {
                    Some(m) => json(StatusCode::OK, &m),
                    None => unknown_stage(&api, &stage),
                },
                Err(e) => problem(
                    &Problem::new(400, "invalid-query", "Invalid query").with_detail(e.to_string()),
                    None,
                ),
            }
        }
        ControlRoute::Edge { api, stage } => {
            let Some(i) = managed(settings, &api, &stage) else {
                return unknown_stage(&api, &stage);
            };
            match control.edge_health(i).await {
                Ok(health) => json(StatusCode::OK, &health),
                Err(e) => {
                    let (status, kind, title) = match e {
                        EdgeUnavailable::NotConfigured
                        | EdgeUnavailable::NoKey
                        | EdgeUnavailable::NotMonitored => (404, "edge-off", "No edge figures"),
                        EdgeUnavailable::Timeout => (504, "edge-unavailable", "Edge unavailable"),
                        _ => (502, "edge-unavailable", "Edge unavailable"),
                    };
                    problem(
                        &Problem::new(status, kind, title).with_detail(e.to_string()),
                        None,
                    )
                }
            }
        }
        ControlRoute::History { api, stage } => {
            let Some(i) = managed(control.settings(), &api, &stage) else {
                return unknown_stage(&api, &stage);
            };
            // The URI carries the query string for Function URL and HTTP API
            // events; REST API events have it parsed only.
            let query = req.uri().query().map(str::to_owned).or_else(|| {
                req.query_string_parameters_ref()
                    .and_then(|q| q.first("limit"))
                    .map(|v| format!("limit={v}"))
            });
            let limit = match history_limit(query.as_deref()) {
                Ok(n) => n,
                Err(e) => {
                    return problem(
                        &Problem::new(400, "invalid-query", "Invalid query").with_detail(e),
                        None,
                    )
                }
            };
            match control.history(i, limit).await {
                Ok(entries) => json(StatusCode::OK, &HistoryPage { entries }),
                Err(e) => problem(
                    &Problem::new(503, "history-unavailable", "History unavailable").with_detail(e),
                    None,
                ),
            }
        }
        ControlRoute::Command {
            api,
            stage,
            command,
        } => {
            let Some(i) = managed(settings, &api, &stage) else {
                return unknown_stage(&api, &stage);
            };
            let form = is_form(req.headers());
            let parsed = command_fields(req.headers(), req.body().as_ref());
            if let (Caller::Session { token, .. }, Some(key)) = (&caller, &settings.session_key) {
                let csrf = parsed.as_ref().ok().and_then(|f| f.csrf.as_deref());
                if let Err(e) = session::check_csrf(key, token, csrf) {
                    return session_problem(&e);
                }
            }
            let parsed = parsed.and_then(|f| {
                let b = f.body;
                let until_ms = match (&b.duration, command) {
                    (None, _) => None,
                    (Some(d), ManualCommand::Pause) => {
                        let d = tidegate_policy::config::parse_duration(d)
                            .map_err(|e| format!("`for`: {e}"))?;
                        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                        Some(now_ms.saturating_add(ms))
                    }
                    (Some(_), _) => return Err("`for` is only taken by pause".to_owned()),
                };
                let start = b.start(command)?;
                Ok((b.reason, until_ms, start))
            });
            match parsed {
                Ok((reason, until_ms, start)) if !reason.trim().is_empty() => {
                    let trigger = Trigger::Manual {
                        command,
                        reason,
                        operator: caller.operator(),
                        until_ms,
                        start,
                    };
                    let Some(report) = control.command(i, trigger).await else {
                        return unknown_stage(&api, &stage);
                    };
                    let refused = refusal(command, &report);
                    if form {
                        // Back to the stage's page (relative: works under
                        // any prefix), with what came of it.
                        let outcome = match &refused {
                            Some(_) => "refused",
                            None => report.outcome.status(),
                        };
                        let name = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("");
                        return see_other(
                            &format!(
                                "{}ui/{}/{}?done={name}&outcome={}",
                                page_ctx.base(),
                                dashboard::path_segment(&api),
                                dashboard::path_segment(&stage),
                                dashboard::path_segment(outcome)
                            ),
                            None,
                        );
                    }
                    match refused {
                        Some(p) => problem(&p, None),
                        None => json(StatusCode::OK, &report),
                    }
                }
                Ok(_) => problem(
                    &Problem::new(422, "reason-required", "A reason is required")
                        .with_detail("send {\"reason\": \"...\"} with a non-empty reason; it goes to the audit log"),
                    None,
                ),
                Err(e) => problem(
                    &Problem::new(400, "invalid-body", "Invalid request body").with_detail(format!(
                        "expected a JSON object {{\"reason\": \"...\"}} (pause also takes \"for\": \"2h\"; start takes \"deployment\" and \"steps\"), or the same fields form-encoded: {e}"
                    )),
                    None,
                ),
            }
        }
    }
}
