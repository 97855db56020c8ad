//! Response caching in the Workers Cache API (this data center only), under
//! the policy's normalised key URL.
//!
//! The policy decides everything: whether the request may use the cache
//! (`check_request`), the key (`cache_key`), how fresh an entry is
//! (`freshness_from_headers`), whether to serve it, revalidate it or ask the
//! origin (`before_origin` / `after_origin`), whether a response may be
//! stored (`check_response`) and with which headers (`prepare_for_storage`,
//! `prepare_for_serving`). The Cache API ignores stale-while-revalidate, so
//! entries are stored for the whole stale window with their own timestamp,
//! and revalidation runs in `ctx.wait_until`.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

use tidegate_policy::auth::Identity;
use tidegate_policy::cache::freshness::{
    freshness_from_headers, prepare_for_serving, prepare_for_storage, storage_lifetime,
    CACHE_STATUS_HEADER,
};
use tidegate_policy::cache::{
    after_origin, announced_length, before_origin, body_read_limit, cache_key, check_body,
    check_request, check_response, CacheRule, CacheStatus, LookupDecision, RequestParts,
    RequestPlan, RequestVerdict, ResponseVerdict, ServeDecision,
};
use url::Url;
use worker::js_sys;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::ext::CacheStorageExt;
use worker::{web_sys, Cache, Context, Response};

use crate::error::EdgeError;
use crate::log::LogLine;
use crate::proxy;
use crate::response::{add_time, header_list, rebuild, with_header, HeaderList, Timings};

/// The request the origin gets, kept so it can be sent again to revalidate.
#[derive(Debug, Clone)]
pub struct OriginRequest {
    /// Method.
    pub method: String,
    /// The upstream URL.
    pub url: Url,
    /// Headers, as the policy filtered them.
    pub headers: HeaderList,
    /// The route's timeout.
    pub timeout: Duration,
}

impl OriginRequest {
    /// Sends it with `body` (none for GET and HEAD, the only cached methods).
    async fn send(&self, body: Option<JsValue>) -> Result<Response, EdgeError> {
        proxy::send(
            &self.method,
            &self.url,
            &self.headers,
            body,
            self.timeout,
            false,
        )
        .await
    }
}

thread_local! {
    /// Keys being revalidated by this isolate, so a burst of stale hits
    /// triggers one origin call.
    static REVALIDATING: RefCell<BTreeSet<String>> = const { RefCell::new(BTreeSet::new()) };
}

/// What the client request looks like, for the cache.
pub struct ClientRequest<'a> {
    /// Method as sent.
    pub method: &'a str,
    /// The URL the client called (host and path form the key).
    pub url: &'a Url,
    /// The client's headers.
    pub headers: &'a HeaderList,
    /// The authenticated caller.
    pub identity: Option<&'a Identity>,
    /// The request body, forwarded when the cache is bypassed (GET and HEAD,
    /// the only cached methods, have none).
    pub body: Option<JsValue>,
}

/// Answers a request on a route with a cache rule.
pub async fn serve(
    ctx: &Context,
    route: &str,
    rule: &CacheRule,
    client: &ClientRequest<'_>,
    origin: OriginRequest,
    timings: &mut Timings,
    log: &mut LogLine,
) -> Result<Response, EdgeError> {
    let authenticated = client.identity.is_some();
    let plan = match check_request(client.method, client.headers, authenticated) {
        RequestVerdict::Cache(plan) => plan,
        RequestVerdict::Bypass(reason) => {
            log.cache_bypass = Some(reason.as_str());
            return bypass(&origin, client.body.clone(), timings, log).await;
        }
    };
    let caller = client.identity.map(Identity::qualified_subject);
    let parts =
        RequestParts::from_url(client.method, client.url, client.headers, caller.as_deref());
    let key = match cache_key(rule, &parts) {
        Ok(key) => key.to_url(),
        Err(e) => {
            log.cache_bypass = Some(tidegate_policy::cache::BypassReason::from(e).as_str());
            return bypass(&origin, client.body.clone(), timings, log).await;
        }
    };
    let head = client.method == "HEAD";

    let started = crate::now_ms();
    let stored = match plan.lookup {
        true => Cache::default()
            .get(key.as_str(), false)
            .await
            .ok()
            .flatten(),
        false => None,
    };
    add_time(&mut timings.cache, crate::now_ms().saturating_sub(started));
    let now = crate::now_ms();
    let stored = stored.map(|resp| {
        let headers = header_list(resp.headers());
        let check = freshness_from_headers(&headers, rule, now);
        (resp, headers, check)
    });
    let freshness = stored.as_ref().map(|(_, _, check)| check.freshness);

    let lookup = before_origin(freshness);
    let stored = match (lookup.cache_status(), stored) {
        (Some(status), Some((resp, headers, check))) => {
            if lookup == LookupDecision::ServeStaleAndRevalidate {
                let (route, rule, key) = (route.to_owned(), rule.clone(), key.clone());
                ctx.wait_until(async move {
                    revalidate(origin, &route, rule, plan, key, freshness).await;
                });
            }
            log.cache = Some(status.as_str());
            return Ok(from_entry(resp, &headers, check.age, status, head));
        }
        (_, stored) => stored,
    };

    let started = crate::now_ms();
    let fresh = origin.send(None).await;
    add_time(&mut timings.origin, crate::now_ms().saturating_sub(started));
    let origin_status = fresh.as_ref().ok().map(Response::status_code);
    match (after_origin(freshness, origin_status), stored) {
        (ServeDecision::ServeStale, Some((resp, headers, check))) => {
            if let Err(e) = &fresh {
                log.error = Some(e.log_text());
            }
            log.cache = Some(CacheStatus::Stale.as_str());
            Ok(from_entry(
                resp,
                &headers,
                check.age,
                CacheStatus::Stale,
                head,
            ))
        }
        (decision, _) => {
            let status = decision.cache_status();
            let resp = keep(ctx, route, rule, &plan, &key, fresh?, log)?;
            log.cache = Some(status.as_str());
            Ok(tag(resp, status))
        }
    }
}

/// A route without a cache rule, or a request that may not use the cache:
/// straight to the origin, tagged `BYPASS`.
pub async fn bypass(
    origin: &OriginRequest,
    body: Option<JsValue>,
    timings: &mut Timings,
    log: &mut LogLine,
) -> Result<Response, EdgeError> {
    let started = crate::now_ms();
    let resp = origin.send(body).await;
    add_time(&mut timings.origin, crate::now_ms().saturating_sub(started));
    log.cache = Some(CacheStatus::Bypass.as_str());
    Ok(tag(resp?, CacheStatus::Bypass))
}

/// An origin response for the client, with `X-Cache-Status`.
fn tag(resp: Response, status: CacheStatus) -> Response {
    with_header(resp, CACHE_STATUS_HEADER, status.as_str())
}

/// A stored entry for the client.
fn from_entry(
    resp: Response,
    stored: &HeaderList,
    age: Duration,
    status: CacheStatus,
    head: bool,
) -> Response {
    let code = resp.status_code();
    let headers = prepare_for_serving(stored, age, status);
    rebuild(resp, code, &headers, !head)
}

/// Stores the origin's response in the background when the policy allows;
/// the response for the client.
fn keep(
    ctx: &Context,
    route: &str,
    rule: &CacheRule,
    plan: &RequestPlan,
    key: &str,
    resp: Response,
    log: &mut LogLine,
) -> Result<Response, EdgeError> {
    let code = resp.status_code();
    let headers = header_list(resp.headers());
    match check_response(rule, plan, code, &headers) {
        ResponseVerdict::Bypass(reason) => {
            log.cache_bypass = Some(reason.as_str());
            Ok(resp)
        }
        ResponseVerdict::Store => {
            // A tee of the body: the client's copy streams on meanwhile.
            let (resp, copy) = crate::response::tee(resp)?;
            let stored = prepare_for_storage(&headers, rule, crate::now_ms());
            let (route, key, rule) = (route.to_owned(), key.to_owned(), rule.clone());
            let lifetime = storage_lifetime(&rule);
            ctx.wait_until(async move {
                let Some(entry) = complete_entry(copy, code, &rule, &headers, &stored).await else {
                    return;
                };
                if store(&key, &entry).await {
                    crate::purge::index_add(&route, &key, lifetime).await;
                }
            });
            Ok(resp)
        }
    }
}

/// The entry to store for an origin response, or `None` when the policy
/// refuses its body (`check_body`): it did not arrive whole (the stream
/// failed, or fewer bytes came than `Content-Length` announced: an origin
/// that reset the connection mid-body; a truncated body must never become
/// the answer every client then gets), or it is larger than the rule allows.
/// The body is read first, which `wait_until` allows, and stays in JS; one of
/// unknown length is read no further than the rule's limit.
async fn complete_entry(
    resp: Response,
    code: u16,
    rule: &CacheRule,
    origin_headers: &HeaderList,
    stored_headers: &HeaderList,
) -> Option<web_sys::Response> {
    let limit = body_read_limit(rule);
    let body = match announced_length(origin_headers) {
        Some(_) => Some(crate::body::buffer(resp).await.ok()?),
        None => crate::body::buffer_at_most(resp, limit).await.ok()?,
    };
    let received = body.as_ref().map_or(limit, |b| u64::from(b.byte_length()));
    check_body(rule, origin_headers, received).ok()?;
    crate::response::from_buffer(&body?, code, stored_headers)
}

/// Stores `entry` under `key` in this data center's cache; whether it was
/// stored. The entry goes in as it is, its body a buffer of known length
/// (`Cache::put` would take it through a `worker::Response`, as a stream).
async fn store(key: &str, entry: &web_sys::Response) -> bool {
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let Ok(caches) = global.caches() else {
        return false;
    };
    JsFuture::from(caches.default().put_with_str(key, entry))
        .await
        .is_ok()
}

/// Refreshes a stale entry (stale-while-revalidate), in `ctx.wait_until`.
async fn revalidate(
    origin: OriginRequest,
    route: &str,
    rule: CacheRule,
    plan: RequestPlan,
    key: String,
    freshness: Option<tidegate_policy::cache::Freshness>,
) {
    let claimed = REVALIDATING.with(|r| r.borrow_mut().insert(key.clone()));
    if !claimed {
        return;
    }
    if let Ok(resp) = origin.send(None).await {
        let code = resp.status_code();
        if let ServeDecision::UseOrigin { .. } = after_origin(freshness, Some(code)) {
            let headers = header_list(resp.headers());
            if check_response(&rule, &plan, code, &headers) == ResponseVerdict::Store {
                let stored = prepare_for_storage(&headers, &rule, crate::now_ms());
                let Some(entry) = complete_entry(resp, code, &rule, &headers, &stored).await else {
                    REVALIDATING.with(|r| r.borrow_mut().remove(&key));
                    return;
                };
                if store(&key, &entry).await {
                    crate::purge::index_add(route, &key, storage_lifetime(&rule)).await;
                }
            }
        }
    }
    REVALIDATING.with(|r| r.borrow_mut().remove(&key));
}
