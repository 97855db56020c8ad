//! The control API, for operators and dashboards:
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/` | HTML status page (same data as `/stages`) |
//! | GET | `/stages` | every managed stage |
//! | GET | `/stages/{api}/{stage}` | one stage: deployment, canary, alarms, last-known-good, pause, recent actions (what, who, why, trigger, outcome, when) |
//! | GET | `/stages/{api}/{stage}/history?limit=N` | the stage's history, newest first: `{"entries": [...]}` (N from 1 to 100, default 20) |
//! | POST | `/stages/{api}/{stage}/{rollback,promote,pause,resume}` | operator command, body `{"reason": "..."}` (pause also takes `"for": "2h"`) |
//! | POST | `/stages/{api}/{stage}/advance` | move the active canary one planned step now (never past a failing health check or an unapproved gate); 409 when there is no canary or it waits for approval |
//! | POST | `/stages/{api}/{stage}/approve` | pass the approval gate the canary waits at; 409 when it waits for none |
//! | POST | `/stages/{api}/{stage}/start` | start a canary, body `{"deployment": "abc123", "steps": [5, 25, {"percent": 50, "approve": true}, 100], "reason": "..."}` (`steps` optional: the stage's `canary_steps`); 409 while a canary is active |
//!
//! Operator commands answer 200 with the stage's report (the decision and
//! what came of it); a command the stage's state refuses is a 409 problem
//! (422 when `start` names a deployment that does not exist, 503 when
//! `GetDeployment` could not tell).
//!
//! ```
//! use lambda_http::http::Method;
//! use tidegate_rollback::http::{route, Route};
//! assert!(matches!(
//!     route(&Method::GET, "/stages/orders-api/prod/history"),
//!     Ok(Route::History { .. })
//! ));
//! assert!(matches!(route(&Method::POST, "/stages/orders-api/prod/approve"), Ok(Route::Command { .. })));
//! ```
//!
//! The caller's identity (`key:<consumer>` or `jwt:<iss>:<sub>`) is recorded
//! with every command, in the audit line and the stage's history.
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

use lambda_http::http::{header, HeaderMap, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};
use tidegate_policy::auth::{
    Algorithm, AuthRejection, AuthRequirement, CredentialHeaders, Identity, Jwk, KeyProvider,
    NativeVerifier, UnverifiedJwt,
};
use tidegate_policy::config::file::CanaryStepEntry;
use tidegate_policy::config::{CanaryStep, Issuer};
use tidegate_policy::problem::Problem;
use tidegate_policy::rollout::{check_steps, Hold, ManualCommand, StartCanary, Trigger};

use crate::config::Settings;
use crate::jwks::IssuerKeys;
use crate::status::{HistoryPage, StageStatus, StatusList, RECENT_ACTIONS};
use crate::store::HistoryEntry;

/// The scope every control-API call needs.
pub const ADMIN_SCOPE: &str = "tidegate:admin";
/// Longest request body accepted.
pub const MAX_BODY: usize = 4 * 1024;
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
    /// Runs an operator command (a [`Trigger::Manual`]) on managed stage
    /// `index`; the report as JSON.
    fn command(&self, index: usize, trigger: Trigger) -> BoxFuture<'_, serde_json::Value>;
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
}

/// A parsed control-API route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
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
pub fn route(method: &Method, path: &str) -> Result<Route, RouteError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let is_get = method == Method::GET || method == Method::HEAD;
    match segments.as_slice() {
        [] if is_get => Ok(Route::Page),
        [] => Err(RouteError::MethodNotAllowed("GET")),
        ["stages"] if is_get => Ok(Route::List),
        ["stages"] => Err(RouteError::MethodNotAllowed("GET")),
        ["stages", api, stage] if is_get => Ok(Route::Show {
            api: (*api).to_owned(),
            stage: (*stage).to_owned(),
        }),
        ["stages", _, _] => Err(RouteError::MethodNotAllowed("GET")),
        ["stages", api, stage, "history"] if is_get => Ok(Route::History {
            api: (*api).to_owned(),
            stage: (*stage).to_owned(),
        }),
        ["stages", _, _, "history"] => Err(RouteError::MethodNotAllowed("GET")),
        ["stages", api, stage, cmd] => match ManualCommand::from_path(cmd) {
            None => Err(RouteError::NotFound),
            Some(_) if method != Method::POST => Err(RouteError::MethodNotAllowed("POST")),
            Some(command) => Ok(Route::Command {
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
pub fn refusal(command: ManualCommand, report: &serde_json::Value) -> Option<Problem> {
    let hold: Hold = report
        .pointer("/decision/action/reason")
        .filter(|_| {
            report.pointer("/decision/action/type") == Some(&serde_json::Value::from("none"))
        })
        .and_then(|v| serde_json::from_value(v.clone()).ok())?;
    let conflict = |slug: &str, title: &str, fix: &str| {
        Some(Problem::new(409, slug, title).with_detail(format!("{hold}; {fix}")))
    };
    match (command, &hold) {
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

/// Serves one control-API request.
pub async fn handle(control: &dyn Control, req: Request, now_ms: u64) -> Response<Body> {
    let path = match req.raw_http_path() {
        "" => req.uri().path(),
        p => p,
    };
    let route = match route(req.method(), path) {
        Ok(r) => r,
        Err(RouteError::NotFound) => {
            return problem(
                &Problem::new(404, "not-found", "Not found").with_detail(
                    "expected GET /, GET /stages, GET /stages/{api}/{stage}, GET /stages/{api}/{stage}/history or POST /stages/{api}/{stage}/{rollback|promote|pause|resume|advance|approve|start}",
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
    let auth = authenticate(
        control.settings(),
        control.issuer_keys(),
        req.headers(),
        now_ms,
    );
    let identity = match auth.await {
        Ok(identity) => identity,
        Err(r) => return rejection(&r),
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
        Route::Page => {
            let data = control.list().await;
            Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
                .body(Body::Text(crate::page::render(&data)))
                .unwrap_or_else(|_| Response::new(Body::Empty))
        }
        Route::List => json(StatusCode::OK, &control.list().await),
        Route::Show { api, stage } => match managed(control.settings(), &api, &stage) {
            Some(i) => match control.show(i).await {
                Some(status) => json(StatusCode::OK, &status),
                None => unknown_stage(&api, &stage),
            },
            None => unknown_stage(&api, &stage),
        },
        Route::History { api, stage } => {
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
        Route::Command {
            api,
            stage,
            command,
        } => {
            let Some(i) = managed(control.settings(), &api, &stage) else {
                return unknown_stage(&api, &stage);
            };
            let body: &[u8] = req.body().as_ref();
            let parsed = if body.len() > MAX_BODY {
                Err(format!("the body is over {MAX_BODY} bytes"))
            } else {
                serde_json::from_slice::<CommandBody>(body).map_err(|e| e.to_string())
            };
            let parsed = parsed.and_then(|b| {
                let until_ms = match (&b.duration, command) {
                    (None, _) => None,
                    (Some(d), ManualCommand::Pause) => {
                        let d = tidegate_policy::config::duration::parse(d)
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
                        operator: identity.qualified_subject(),
                        until_ms,
                        start,
                    };
                    let report = control.command(i, trigger).await;
                    match refusal(command, &report) {
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
                        "expected a JSON object {{\"reason\": \"...\"}} (pause also takes \"for\": \"2h\"; start takes \"deployment\" and \"steps\"): {e}"
                    )),
                    None,
                ),
            }
        }
    }
}
