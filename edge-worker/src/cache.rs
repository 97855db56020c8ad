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
mod store;

use std::time::Duration;

use tidegate_policy::auth::Identity;
use tidegate_policy::cache::{
    after_origin, before_origin, cache_key, check_request, client_condition, not_modified_headers,
    not_modified_matches, revalidation_headers, CacheRule, CacheStatus, ClientCondition,
    LookupDecision, RequestParts, RequestPlan, RequestVerdict, ResponseHeaders, ResponseTiming,
    ServeDecision, CACHE_STATUS_HEADER, CONDITIONAL_REQUEST_HEADERS,
};
use url::Url;
use worker::wasm_bindgen::JsValue;
use worker::{Context, Response};

use crate::error::EdgeError;
use crate::flow::{now_ms, Phase, Timings};
use crate::log::LogLine;
use crate::proxy;
use crate::response::{header_list, rebuild, with_header, HeaderList};
use entry::Refreshed;

pub use entry::Entry;
use flight::{Flight, FlightGuard};
use store::{keep, keep_refreshed, revalidate};

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

    /// The request to send for a stored `entry`: made conditional on its
    /// validators, in place of any conditions the client sent (those are the
    /// client's, about its own copy: the edge evaluates them itself), and
    /// whether it is conditional. As it is without an entry or validators.
    fn revalidating(&self, entry: Option<&Entry>) -> (Self, bool) {
        let validators = entry
            .map(|e| revalidation_headers(e.view()))
            .unwrap_or_default();
        if validators.is_empty() {
            return (self.clone(), false);
        }
        let mut request = self.clone();
        request.headers.retain(|(name, _)| !is_conditional(name));
        request.headers.extend(validators);
        (request, true)
    }

    /// Sends it without a body and notes when it went and came back.
    async fn send_timed(&self) -> (Result<Response, EdgeError>, ResponseTiming) {
        let requested_at_ms = now_ms();
        let answer = self.send(None).await;
        let timing = ResponseTiming {
            requested_at_ms,
            received_at_ms: now_ms(),
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
    /// The fast path's lookup for this request, when it made one and left
    /// the request to the full path (`crate::fast`).
    pub matched: Option<HandedMatch>,
}

/// A Cache API lookup the fast path made and handed to the full path,
/// which answers from it instead of looking up again.
pub struct HandedMatch {
    /// The key looked up.
    pub key: String,
    /// The stored response found under it, if any.
    pub found: Option<worker::web_sys::Response>,
    /// How long the lookup took, ms.
    pub lookup_ms: u64,
}

/// A miss the fast path fills (`crate::fast`): nothing is stored under the
/// key and this request leads the key's flight, so concurrent misses wait
/// for what it stores. Dropped unanswered, it ends the flight with nothing
/// and those waiting ask the origin themselves.
pub struct Filling {
    slot: Slot,
    plan: RequestPlan,
    guard: FlightGuard,
}

impl Filling {
    /// Leads the flight for `key` (on route `route`, with `rule`) for a
    /// request planned as `plan` that found nothing stored, when the request
    /// may store what it gets and no other request is asking for the key;
    /// `None` otherwise (the full path then waits for that request, or asks
    /// without storing, or refuses an `only-if-cached` request).
    pub fn lead(route: &str, rule: &CacheRule, key: &str, plan: RequestPlan) -> Option<Self> {
        if !plan.store || before_origin(None, &plan) != LookupDecision::AskOrigin {
            return None;
        }
        let guard = flight::claim(key)?;
        Some(Self {
            slot: Slot {
                route: route.to_owned(),
                rule: rule.clone(),
                key: key.to_owned(),
            },
            plan,
            guard,
        })
    }

    /// The client's response for the origin's answer (`fresh`, received as
    /// `timing` says), as the full path gives it for a miss: stored in the
    /// background when the policy allows it (the flight landed with it), and
    /// tagged with its cache status.
    pub fn answered(
        self,
        ctx: &Context,
        fresh: Result<Response, EdgeError>,
        timing: ResponseTiming,
        log: &mut LogLine,
    ) -> Result<Response, EdgeError> {
        let origin_status = fresh.as_ref().ok().map(Response::status_code);
        let status = after_origin(None, &self.plan, false, origin_status).cache_status();
        let resp = keep(
            ctx,
            &self.slot,
            &self.plan,
            fresh?,
            timing,
            Some(self.guard),
            log,
        )?;
        log.cache = Some(status.as_str());
        Ok(tag(resp, status))
    }
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

    // The fast path's lookup of this very key, if it made one.
    let stored = match client.matched.as_ref().filter(|m| m.key == slot.key) {
        Some(matched) => {
            timings.add(Phase::Cache, matched.lookup_ms);
            matched.found.clone().map(|raw| Entry::from_raw(raw, rule))
        }
        None => {
            timings
                .time(Phase::Cache, Entry::lookup(&slot.key, rule))
                .await
        }
    };

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
                // The leader's wait for headers, plus time to read the body.
                let waited = waiting.landed(origin.timeout.saturating_mul(2));
                let landed = timings.time(Phase::Origin, waited).await;
                if let Some(data) = landed {
                    let entry = data.to_entry(&slot.rule)?;
                    log.cache = Some(CacheStatus::Hit.as_str());
                    return Ok(entry.answer(CacheStatus::Hit, client.headers, head));
                }
                None
            }
        },
        false => None,
    };
    let (request, conditional) = origin.revalidating(stored.as_ref());
    let (fresh, timing) = timings.time(Phase::Origin, request.send_timed()).await;
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

/// A route without a cache rule, or a request that may not use the cache:
/// straight to the origin, tagged `BYPASS`.
pub async fn bypass(
    origin: &OriginRequest,
    body: Option<JsValue>,
    timings: &mut Timings,
    log: &mut LogLine,
) -> Result<Response, EdgeError> {
    let resp = timings.time(Phase::Origin, origin.send(body)).await;
    log.cache = Some(CacheStatus::Bypass.as_str());
    Ok(tag(resp?, CacheStatus::Bypass))
}

/// An origin response for the client, with `X-Cache-Status`.
fn tag(resp: Response, status: CacheStatus) -> Response {
    with_header(resp, CACHE_STATUS_HEADER, status.as_str())
}
