//! Response caching in the Workers Cache API (this data center only), under
//! the policy's normalised key URL.
//!
//! The policy decides everything: whether the request may use the cache
//! (`check_request`), the key (`cache_key`), how fresh an entry is
//! (`freshness_from_headers`: the origin's lifetimes, RFC 9111 §4.2),
//! whether to serve it, revalidate it or ask the origin (`before_origin` /
//! `after_origin`), the validators to send (`revalidation_headers`) and how
//! a 304 refreshes the entry (`refresh_headers`), whether a response may be
//! stored (`check_response`) and with which headers (`prepare_for_storage`,
//! `prepare_for_serving`), and whether a client's conditional request is
//! met (`client_condition`). The Cache API ignores stale windows, so
//! entries are stored for as long as they may serve, with their own
//! timestamps, and background revalidation runs in `ctx.wait_until`.
//! Concurrent misses for one key share one origin request ([`flight`]).

mod entry;
mod flight;

use std::time::Duration;

use tidegate_policy::auth::Identity;
use tidegate_policy::cache::freshness::CACHE_STATUS_HEADER;
use tidegate_policy::cache::validation::{
    client_condition, not_modified_headers, not_modified_matches, revalidation_headers,
    ClientCondition, CONDITIONAL_REQUEST_HEADERS,
};
use tidegate_policy::cache::{
    after_origin, announced_length, before_origin, body_read_limit, cache_key, check_body,
    check_request, check_response, prepare_for_storage, CacheRule, CacheStatus, LookupDecision,
    RequestParts, RequestPlan, RequestVerdict, ResponseHeaders, ResponseTiming, ResponseVerdict,
    ServeDecision,
};
use url::Url;
use worker::wasm_bindgen::JsValue;
use worker::{web_sys, Context, Response};

use crate::error::EdgeError;
use crate::log::LogLine;
use crate::proxy;
use crate::response::{add_time, header_list, rebuild, with_header, HeaderList, Timings};
use entry::{store, Entry, Refreshed, RefreshedEntry};
use flight::{Flight, FlightGuard};

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

    /// The same request made conditional on an entry's `validators`, in
    /// place of any conditions the client sent (those are the client's,
    /// about its own copy: the edge evaluates them itself).
    fn with_validators(&self, validators: Vec<(String, String)>) -> Self {
        let mut request = self.clone();
        request.headers.retain(|(name, _)| !is_conditional(name));
        request.headers.extend(validators);
        request
    }

    /// Sends it without a body and notes when it went and came back.
    async fn send_timed(&self) -> (Result<Response, EdgeError>, ResponseTiming) {
        let requested_at_ms = crate::now_ms();
        let answer = self.send(None).await;
        let timing = ResponseTiming {
            requested_at_ms,
            received_at_ms: crate::now_ms(),
        };
        (answer, timing)
    }
}

fn is_conditional(name: &str) -> bool {
    CONDITIONAL_REQUEST_HEADERS
        .iter()
        .any(|c| c.eq_ignore_ascii_case(name))
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

/// Where an entry goes: the route (for the purge index), its rule and key.
#[derive(Clone)]
struct Slot {
    route: String,
    rule: CacheRule,
    key: String,
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
    let slot = Slot {
        route: route.to_owned(),
        rule: rule.clone(),
        key,
    };
    let head = client.method == "HEAD";

    let started = crate::now_ms();
    let stored = Entry::lookup(&slot.key, rule).await;
    add_time(&mut timings.cache, crate::now_ms().saturating_sub(started));

    let lookup = before_origin(stored.as_ref().map(|e| &e.check), &plan);
    match (lookup, stored) {
        (LookupDecision::Unsatisfiable, _) => Err(EdgeError::NotCached),
        (LookupDecision::ServeHit | LookupDecision::ServeStaleAndRevalidate, Some(entry)) => {
            let status = lookup.cache_status().unwrap_or(CacheStatus::Hit);
            if lookup == LookupDecision::ServeStaleAndRevalidate {
                let (origin, slot) = (origin.clone(), slot.clone());
                ctx.wait_until(async move { revalidate(origin, slot, plan).await });
            }
            log.cache = Some(status.as_str());
            Ok(entry.answer(status, client.headers, head))
        }
        (_, stored) => ask_origin(ctx, &slot, &plan, client, &origin, stored, timings, log).await,
    }
}

/// The origin's part: coalesced with concurrent misses, conditional when
/// the entry has validators, and what `after_origin` makes of the answer.
#[allow(clippy::too_many_arguments)]
async fn ask_origin(
    ctx: &Context,
    slot: &Slot,
    plan: &RequestPlan,
    client: &ClientRequest<'_>,
    origin: &OriginRequest,
    stored: Option<Entry>,
    timings: &mut Timings,
    log: &mut LogLine,
) -> Result<Response, EdgeError> {
    let head = client.method == "HEAD";
    let guard = match plan.store {
        true => match flight::join(&slot.key) {
            Flight::Leader(guard) => Some(guard),
            Flight::Follower(waiting) => {
                let started = crate::now_ms();
                let landed = waiting.await;
                add_time(&mut timings.origin, crate::now_ms().saturating_sub(started));
                if let Ok(raw) = landed {
                    let entry = Entry::from_response(Response::from(raw), &slot.rule);
                    log.cache = Some(CacheStatus::Hit.as_str());
                    return Ok(entry.answer(CacheStatus::Hit, client.headers, head));
                }
                None
            }
        },
        false => None,
    };
    let validators = stored
        .as_ref()
        .map(|e| revalidation_headers(e.view()))
        .unwrap_or_default();
    let conditional = !validators.is_empty();
    let request = match conditional {
        true => origin.with_validators(validators),
        false => origin.clone(),
    };
    let started = crate::now_ms();
    let (fresh, timing) = request.send_timed().await;
    add_time(&mut timings.origin, crate::now_ms().saturating_sub(started));
    let origin_status = fresh.as_ref().ok().map(Response::status_code);
    let decision = after_origin(
        stored.as_ref().map(|e| &e.check),
        plan,
        conditional,
        origin_status,
    );
    match (decision, stored) {
        (ServeDecision::ServeStale, Some(entry)) => {
            if let Err(e) = &fresh {
                log.error = Some(e.log_text());
            }
            log.cache = Some(CacheStatus::Stale.as_str());
            Ok(entry.answer(CacheStatus::Stale, client.headers, head))
        }
        (ServeDecision::RefreshEntry, Some(entry)) => {
            let not_modified = header_list(fresh?.headers());
            let refreshed = match not_modified_matches(entry.view(), &not_modified) {
                true => entry.refreshed(&not_modified, &slot.rule, timing).await,
                false => None,
            };
            log.cache = Some(CacheStatus::Revalidated.as_str());
            match refreshed {
                Some(Refreshed::Store(refreshed)) => {
                    let entry = keep_refreshed(ctx, slot, plan, refreshed, guard)?;
                    Ok(entry.answer(CacheStatus::Revalidated, client.headers, head))
                }
                Some(Refreshed::ServeOnly(entry)) => {
                    Ok(entry.answer(CacheStatus::Revalidated, client.headers, head))
                }
                // The 304 is about another representation: ask in full.
                None => {
                    let (fresh, timing) = origin.send_timed().await;
                    let resp = keep(ctx, slot, plan, fresh?, timing, guard, log)?;
                    Ok(tag(resp, CacheStatus::Revalidated))
                }
            }
        }
        (decision, _) => {
            let status = decision.cache_status();
            let resp = keep(ctx, slot, plan, fresh?, timing, guard, log)?;
            log.cache = Some(status.as_str());
            let resp = match conditional && has_condition(client.headers) {
                true => answer_condition(resp, client.headers),
                false => resp,
            };
            Ok(tag(resp, status))
        }
    }
}

/// Whether the client's request is conditional.
fn has_condition(headers: &HeaderList) -> bool {
    headers.iter().any(|(n, _)| is_conditional(n))
}

/// A fresh origin response, for a client whose own condition was replaced
/// by the entry's validators: a 304 when the condition is met by it.
fn answer_condition(resp: Response, request: &HeaderList) -> Response {
    let code = resp.status_code();
    if !(200..300).contains(&code) {
        return resp;
    }
    let headers = header_list(resp.headers());
    match client_condition(request, ResponseHeaders::origin(&headers)) {
        ClientCondition::NotModified => rebuild(resp, 304, &not_modified_headers(&headers), false),
        _ => resp,
    }
}

/// Stores a 304-refreshed entry (unless its new headers forbid it) and
/// lands the flight with it; the entry to answer from.
fn keep_refreshed(
    ctx: &Context,
    slot: &Slot,
    plan: &RequestPlan,
    refreshed: RefreshedEntry,
    guard: Option<FlightGuard>,
) -> Result<Entry, EdgeError> {
    let code = refreshed.raw.status();
    let storable = check_response(&slot.rule, plan, code, &refreshed.origin)
        == ResponseVerdict::Store
        && !refreshed.stored.keep.is_zero();
    let client = refreshed
        .raw
        .clone()
        .map_err(|e| EdgeError::Runtime(crate::error::describe(&e)))?;
    if storable {
        if let Some(guard) = guard {
            guard.land(&refreshed.raw);
        }
        let (slot, keep) = (slot.clone(), refreshed.stored.keep);
        ctx.wait_until(async move {
            if store(&slot.key, &refreshed.raw).await {
                crate::purge::index_add(&slot.route, &slot.key, keep).await;
            }
        });
    }
    Ok(Entry::from_response(Response::from(client), &slot.rule))
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

/// Stores the origin's response in the background when the policy allows
/// (landing the flight with it); the response for the client.
fn keep(
    ctx: &Context,
    slot: &Slot,
    plan: &RequestPlan,
    resp: Response,
    timing: ResponseTiming,
    guard: Option<FlightGuard>,
    log: &mut LogLine,
) -> Result<Response, EdgeError> {
    let code = resp.status_code();
    let headers = header_list(resp.headers());
    if let ResponseVerdict::Bypass(reason) = check_response(&slot.rule, plan, code, &headers) {
        log.cache_bypass = Some(reason.as_str());
        return Ok(resp);
    }
    // A tee of the body: the client's copy streams on meanwhile.
    let (resp, copy) = crate::response::tee(resp)?;
    let slot = slot.clone();
    ctx.wait_until(async move {
        store_response(&slot, copy, &headers, timing, guard).await;
    });
    Ok(resp)
}

/// Reads an origin response whole and stores it, landing the flight with
/// it; the guard is dropped (followers ask for themselves) if the policy
/// refuses its body or it should not be kept at all.
async fn store_response(
    slot: &Slot,
    resp: Response,
    origin_headers: &HeaderList,
    timing: ResponseTiming,
    guard: Option<FlightGuard>,
) {
    let code = resp.status_code();
    let stored = prepare_for_storage(origin_headers, &slot.rule, timing);
    if stored.keep.is_zero() {
        return;
    }
    let Some(entry) = complete_entry(resp, code, &slot.rule, origin_headers, &stored.headers).await
    else {
        return;
    };
    if let Some(guard) = guard {
        guard.land(&entry);
    }
    if store(&slot.key, &entry).await {
        crate::purge::index_add(&slot.route, &slot.key, stored.keep).await;
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

/// Refreshes a stale entry in the background (stale-while-revalidate), in
/// `ctx.wait_until`: conditionally when it has validators, once per key
/// however many stale hits ask.
async fn revalidate(origin: OriginRequest, slot: Slot, plan: RequestPlan) {
    let Some(guard) = flight::claim(&slot.key) else {
        return;
    };
    let Some(entry) = Entry::lookup(&slot.key, &slot.rule).await else {
        return;
    };
    let validators = revalidation_headers(entry.view());
    let conditional = !validators.is_empty();
    let request = match conditional {
        true => origin.with_validators(validators),
        false => origin,
    };
    let (fresh, timing) = request.send_timed().await;
    let Ok(resp) = fresh else {
        return;
    };
    let code = resp.status_code();
    match after_origin(Some(&entry.check), &plan, conditional, Some(code)) {
        ServeDecision::RefreshEntry => {
            let not_modified = header_list(resp.headers());
            if !not_modified_matches(entry.view(), &not_modified) {
                return;
            }
            let Some(Refreshed::Store(refreshed)) =
                entry.refreshed(&not_modified, &slot.rule, timing).await
            else {
                return;
            };
            let storable =
                check_response(&slot.rule, &plan, refreshed.raw.status(), &refreshed.origin)
                    == ResponseVerdict::Store;
            if storable && !refreshed.stored.keep.is_zero() {
                guard.land(&refreshed.raw);
                if store(&slot.key, &refreshed.raw).await {
                    crate::purge::index_add(&slot.route, &slot.key, refreshed.stored.keep).await;
                }
            }
        }
        ServeDecision::UseOrigin { .. } => {
            let headers = header_list(resp.headers());
            if check_response(&slot.rule, &plan, code, &headers) == ResponseVerdict::Store {
                store_response(&slot, resp, &headers, timing, Some(guard)).await;
            }
        }
        ServeDecision::ServeStale => {}
    }
}
