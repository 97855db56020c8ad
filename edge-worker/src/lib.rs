//! Tidegate's edge gateway on Cloudflare Workers.
//!
//! A thin adapter: it turns a Workers request into inputs for
//! `tidegate-policy`, carries out the decisions the policy returns (fetch a
//! JWKS, ask a Durable Object, use the Cache API, call the origin) and renders
//! every error as RFC 9457 problem+json. The request path never panics: the
//! wasm instance is shared by every request of the isolate.
//!
//! Per request: request id → admin endpoints or route match → authenticate →
//! throttle → cache or proxy; every response carries `x-request-id` and
//! `Server-Timing`, and one JSON log line is written.
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]

mod admin;
mod assertion;
mod auth;
mod body;
mod cache;
mod config;
mod cors;
mod durable;
mod error;
mod fast;
mod flow;
mod health;
mod jwks;
mod keystore;
mod log;
mod proxy;
mod purge;
mod response;
mod throttle;
mod webcrypto;

use std::rc::Rc;

use tidegate_policy::cache::origin_query;
use tidegate_policy::config::{GatewaySettings, Route};
use tidegate_policy::problem::Problem;
use tidegate_policy::route::{
    apply_client_forwarding, forwarded_headers, upstream_url, ClientConnection,
    Method as PolicyMethod, RequestId, RouteMatch, TrustedIdentity,
};
use tidegate_policy::trace::{TraceContext, TRACE_RANDOM_BYTES};
use worker::{event, web_sys, Context, Env, Request, Response, Result};

pub use durable::Throttle;
pub use health::HealthMonitor;

use crate::cache::{ClientRequest, OriginRequest};
use crate::config::Gateway;
use crate::error::EdgeError;
use crate::flow::{now_ms, Flow, Timings};
use crate::log::LogLine;
use crate::response::{header_list, HeaderList};

/// Bytes from the runtime's CSPRNG (the policy takes randomness as input).
/// Zeroes if the runtime has none, which still yields well-formed ids.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    let _ = getrandom::getrandom(&mut bytes);
    bytes
}

/// The Worker's entry point. It hands the platform a `web_sys::Response`
/// it built itself ([`response::into_raw`]): the glue's own conversion of a
/// `worker::Response` unwraps, and a panic there would poison the isolate.
#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<web_sys::Response> {
    let started = now_ms();
    let loaded = config::load(&env);
    let headers = header_list(req.headers());
    let (request_id, mut flow) = begin(&loaded, &headers, req.method().to_string(), req.path());
    let resp = match handle(req, headers, &env, &ctx, &loaded, &request_id, &mut flow).await {
        Ok(resp) => resp,
        Err(problem) => response::problem(&problem.with_request_id(request_id.as_str())),
    };
    deliver(resp, request_id.as_str(), flow, started)
        .map_err(|e| worker::Error::RustError(e.to_string()))
}

/// `resp` as the platform's response, with what every response carries
/// ([`finish`]; a problem+json 500 if the runtime refuses it), and the log
/// line written. Errs only when even the problem response is refused.
fn deliver(
    mut resp: Response,
    request_id: &str,
    mut flow: Flow,
    started: u64,
) -> std::result::Result<web_sys::Response, EdgeError> {
    flow.timings.total = Some(now_ms().saturating_sub(started));
    finish(&mut resp, request_id, &flow);
    let raw = response::into_raw(resp).or_else(|e| {
        let problem = flow.fail(e).with_request_id(request_id);
        let mut resp = response::problem(&problem);
        finish(&mut resp, request_id, &flow);
        response::into_raw(resp)
    });
    flow.log.status = raw.as_ref().map_or(500, web_sys::Response::status);
    flow.log.emit(&flow.timings);
    raw
}

/// The request's id and its flow: the id trusted from the request's headers
/// when the configuration allows it, else new; the trace continued or
/// started; the log line begun.
fn begin(
    loaded: &config::Loaded,
    headers: &HeaderList,
    method: String,
    path: String,
) -> (RequestId, Flow) {
    let settings = loaded.as_ref().ok().map(|gw| &gw.config.gateway);
    let trust_id = settings.is_none_or(|g| g.trust_request_id);
    let server_timing = settings.is_none_or(|g| g.server_timing);
    // One draw: a new request id and a new trace id share the first 16 bytes.
    let random: [u8; TRACE_RANDOM_BYTES] = random_bytes();
    let id_random = random.first_chunk::<16>().copied().unwrap_or_default();
    let request_id = if trust_id {
        RequestId::from_headers(headers, id_random)
    } else {
        RequestId::from_random(id_random)
    };
    let trace = TraceContext::from_headers(headers, random);
    let flow = Flow {
        timings: Timings {
            withheld: !server_timing,
            ..Timings::default()
        },
        log: LogLine {
            id: request_id.as_str().to_owned(),
            method,
            path,
            trace_id: trace.trace_id(),
            ..LogLine::default()
        },
        extra: Vec::new(),
        trace,
        cors: None,
    };
    (request_id, flow)
}

/// Adds what every response carries: request id, `Server-Timing`, the
/// flow's extra headers and, on a route with `cors`, its CORS headers.
fn finish(resp: &mut Response, request_id: &str, flow: &Flow) {
    response::finish(resp, request_id, &flow.timings, &flow.extra);
    if let Some(list) = &flow.cors {
        cors::finish(resp, list);
    }
}

/// Everything after the request id: admin endpoints, or the gateway path.
async fn handle(
    req: Request,
    headers: HeaderList,
    env: &Env,
    ctx: &Context,
    loaded: &config::Loaded,
    request_id: &RequestId,
    flow: &mut Flow,
) -> std::result::Result<Response, Problem> {
    let path = req.path();
    let admin_prefix = match loaded {
        Ok(gw) => gw.config.gateway.admin_prefix.as_str(),
        Err(_) => GatewaySettings::DEFAULT_ADMIN_PREFIX,
    };
    if let Some(rest) = path.strip_prefix(admin_prefix) {
        flow.log.route = Some("admin".to_owned());
        let rest = rest.to_owned();
        return admin::handle(req, &headers, &rest, env, ctx, loaded, flow).await;
    }
    let gw = loaded
        .as_ref()
        .map_err(|errors| flow.fail(EdgeError::InvalidConfig(errors.to_string())))?;
    gateway(req, headers, env, ctx, gw, request_id, flow).await
}

/// The gateway path: route, authenticate, throttle, then cache or proxy.
async fn gateway(
    req: Request,
    headers: HeaderList,
    env: &Env,
    ctx: &Context,
    gw: &Rc<Gateway>,
    request_id: &RequestId,
    flow: &mut Flow,
) -> std::result::Result<Response, Problem> {
    let config = &gw.config;
    let url = req
        .url()
        .map_err(|e| flow.fail(EdgeError::Runtime(e.to_string())))?;
    let method_text = req.method().to_string();
    let method: PolicyMethod = method_text.parse().map_err(|_| {
        Problem::new(501, "method-not-implemented", "Method not implemented")
            .with_detail("The gateway does not forward this method.")
    })?;
    if method == PolicyMethod::Options {
        if let Some(answer) = cors::preflight(gw, &headers, url.path(), flow) {
            return answer;
        }
    }
    let matched = gw.table.match_request(method, url.path());
    let RouteMatch::Matched { index, .. } = matched else {
        if let Some(allow) = matched.allow_header() {
            flow.extra.push(("allow".to_owned(), allow));
        }
        return Err(matched.to_problem().unwrap_or_else(internal));
    };
    let route: &Route = config.routes.get(index).ok_or_else(internal)?;
    flow.log.route = Some(route.name.clone());
    flow.cors = cors::actual(route, &headers);

    let identity = auth::authenticate(env, ctx, gw, route, &headers, flow).await?;
    let plan = config.plan_for(identity.as_ref());
    throttle::apply(env, gw, route, identity.as_ref(), plan, &headers, flow).await?;

    // On a cached route the origin sees only the keyed query parameters.
    let query = match &route.cache {
        Some(rule) => origin_query(rule, &method_text, url.query()),
        None => url.query().map(Into::into),
    };
    let target = upstream_url(
        &route.upstream,
        route.strip_prefix.as_deref(),
        url.path(),
        query.as_deref(),
    )
    .map_err(|e| e.to_problem())?;
    let trusted = identity.as_ref().map(TrustedIdentity::from);
    let forward = config.forward_policy(route);
    let forwarded = forwarded_headers(&headers, &forward, request_id, trusted.as_ref());
    let mut origin_headers =
        assertion::origin_headers(env, gw, route, identity.as_ref(), request_id, forwarded)
            .await
            .map_err(|e| flow.fail(e))?;
    apply_client_forwarding(
        &mut origin_headers,
        &route.forward_client_headers,
        &ClientConnection::from_headers(&headers, url.scheme()),
        &flow.trace.headers(),
    );
    let origin = OriginRequest {
        method: method_text.clone(),
        url: target,
        headers: origin_headers,
        timeout: route.timeout,
    };

    let body = req.inner().body().map(worker::wasm_bindgen::JsValue::from);
    let result = match &route.cache {
        Some(rule) => {
            let client = ClientRequest {
                method: &method_text,
                url: &url,
                headers: &headers,
                identity: identity.as_ref(),
                body,
                matched: fast::take_handed_match(req.inner()),
            };
            cache::serve(
                ctx,
                &route.name,
                rule,
                &client,
                origin,
                &mut flow.timings,
                &mut flow.log,
            )
            .await
        }
        None => cache::bypass(&origin, body, &mut flow.timings, &mut flow.log).await,
    };
    if let (Some(settings), Some(latency)) = (&config.health, flow.timings.origin) {
        // An origin answer (not a cache hit): what the release did.
        let status = match &result {
            Ok(resp) => resp.status_code(),
            Err(e) => e.to_problem().status,
        };
        let release = match &result {
            Ok(resp) => resp.headers().get(&settings.release_header).ok().flatten(),
            Err(_) => None,
        };
        health::record(
            ctx,
            env,
            settings,
            route,
            release.as_deref(),
            status,
            latency,
        );
    }
    let resp = result.map_err(|e| flow.fail(e))?;
    // RFC 9111 §4.4: a non-error answer to an unsafe method invalidates.
    let answered = purge::Answered {
        method: &method_text,
        url: &url,
        headers: &headers,
        resp: &resp,
    };
    purge::after_unsafe(ctx, env, gw, &answered, flow);
    Ok(resp)
}

/// The fallback problem for "cannot happen" branches.
fn internal() -> Problem {
    Problem::new(500, "internal", "Internal error")
}
