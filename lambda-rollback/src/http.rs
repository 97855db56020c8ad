//! The control API, for operators and dashboards:
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/` | HTML status page (same data as `/stages`) |
//! | GET | `/stages` | every managed stage |
//! | GET | `/stages/{api}/{stage}` | one stage: deployment, canary, alarms, last-known-good, pause, recent actions (what, who, why, trigger, outcome, when) |
//! | POST | `/stages/{api}/{stage}/{rollback,promote,pause,resume}` | operator command, body `{"reason": "..."}` (pause also takes `"for": "2h"`) |
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
use tidegate_policy::config::Issuer;
use tidegate_policy::problem::Problem;
use tidegate_policy::rollout::{ManualCommand, Trigger};

use crate::config::Settings;
use crate::jwks::IssuerKeys;
use crate::status::{StageStatus, StatusList};

/// The scope every control-API call needs.
pub const ADMIN_SCOPE: &str = "tidegate:admin";
/// Longest request body accepted.
pub const MAX_BODY: usize = 4 * 1024;

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
                    "expected GET /, GET /stages, GET /stages/{api}/{stage} or POST /stages/{api}/{stage}/{rollback|promote|pause|resume}",
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
                Ok((b.reason, until_ms))
            });
            match parsed {
                Ok((reason, until_ms)) if !reason.trim().is_empty() => {
                    let trigger = Trigger::Manual {
                        command,
                        reason,
                        operator: identity.qualified_subject(),
                        until_ms,
                    };
                    json(StatusCode::OK, &control.command(i, trigger).await)
                }
                Ok(_) => problem(
                    &Problem::new(422, "reason-required", "A reason is required")
                        .with_detail("send {\"reason\": \"...\"} with a non-empty reason; it goes to the audit log"),
                    None,
                ),
                Err(e) => problem(
                    &Problem::new(400, "invalid-body", "Invalid request body").with_detail(format!(
                        "expected a JSON object {{\"reason\": \"...\"}} (pause also takes \"for\": \"2h\"): {e}"
                    )),
                    None,
                ),
            }
        }
    }
}
