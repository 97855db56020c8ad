//! Writing entries: an origin response stored once its body has arrived
//! whole, an entry refreshed by a 304 written back, and the background
//! refresh of stale entries. Each lands the key's flight with what it
//! stored, so coalesced requests are answered from it.

use tidegate_policy::cache::{
    after_origin, announced_length, body_read_limit, check_body, check_response,
    not_modified_matches, prepare_for_storage, CacheRule, RequestPlan, ResponseTiming,
    ResponseVerdict, ServeDecision,
};
use worker::js_sys::ArrayBuffer;
use worker::{web_sys, Context, Response};

use super::entry::{store, Entry, EntryData, Refreshed, RefreshedEntry};
use super::flight::{self, FlightGuard};
use super::{OriginRequest, Slot};
use crate::error::EdgeError;
use crate::log::LogLine;
use crate::response::{header_list, HeaderList};

/// Stores a 304-refreshed entry (unless its new headers forbid it) and
/// lands the flight with it; the entry to answer from.
pub(super) fn keep_refreshed(
    ctx: &Context,
    slot: &Slot,
    plan: &RequestPlan,
    refreshed: RefreshedEntry,
    guard: Option<FlightGuard>,
) -> Result<Entry, EdgeError> {
    let entry = refreshed.data.to_entry(&slot.rule)?;
    if storable(slot, plan, &refreshed) {
        if let Some(guard) = guard {
            guard.land(&refreshed.data);
        }
        let slot = slot.clone();
        ctx.wait_until(async move { write(&slot, &refreshed.data).await });
    }
    Ok(entry)
}

/// Whether a refreshed entry may be written back: its new headers still
/// allow storing, and for some time.
fn storable(slot: &Slot, plan: &RequestPlan, refreshed: &RefreshedEntry) -> bool {
    let data = &refreshed.data;
    !data.keep.is_zero()
        && check_response(&slot.rule, plan, data.status, &refreshed.origin)
            == ResponseVerdict::Store
}

/// Puts an entry in this data center's cache and the route's purge index.
async fn write(slot: &Slot, data: &EntryData) {
    let Ok(raw) = data.to_raw() else {
        return;
    };
    if store(&slot.key, &raw).await {
        crate::purge::index_add(&slot.route, &slot.key, data.keep).await;
    }
}

/// Stores the origin's response in the background when the policy allows
/// (landing the flight with it); the response for the client.
pub(super) fn keep(
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
    resp: web_sys::Response,
    origin_headers: &HeaderList,
    timing: ResponseTiming,
    guard: Option<FlightGuard>,
) {
    let status = resp.status();
    let stored = prepare_for_storage(origin_headers, &slot.rule, timing);
    if stored.keep.is_zero() {
        return;
    }
    let Some(body) = complete_body(resp, &slot.rule, origin_headers).await else {
        return;
    };
    let data = EntryData {
        status,
        headers: stored.headers,
        body,
        keep: stored.keep,
    };
    if let Some(guard) = guard {
        guard.land(&data);
    }
    write(slot, &data).await;
}

/// The body to store for an origin response, or `None` when the policy
/// refuses its body (`check_body`): it did not arrive whole (the stream
/// failed, or fewer bytes came than `Content-Length` announced: an origin
/// that reset the connection mid-body; a truncated body must never become
/// the answer every client then gets), or it is larger than the rule allows.
/// The body is read first, which `wait_until` allows, and stays in JS; one of
/// unknown length is read no further than the rule's limit.
async fn complete_body(
    resp: web_sys::Response,
    rule: &CacheRule,
    origin_headers: &HeaderList,
) -> Option<ArrayBuffer> {
    let limit = body_read_limit(rule);
    let body = match announced_length(origin_headers) {
        Some(_) => Some(crate::body::buffer_raw(&resp).await.ok()?),
        None => crate::body::buffer_at_most(&resp, limit).await.ok()?,
    };
    let received = body.as_ref().map_or(limit, |b| u64::from(b.byte_length()));
    check_body(rule, origin_headers, received).ok()?;
    body
}

/// Refreshes a stale entry in the background (stale-while-revalidate), in
/// `ctx.wait_until`: conditionally when it has validators, once per key
/// however many stale hits ask.
pub(super) async fn revalidate(origin: OriginRequest, slot: Slot, plan: RequestPlan) {
    let Some(guard) = flight::claim(&slot.key) else {
        return;
    };
    let Some(entry) = Entry::lookup(&slot.key, &slot.rule).await else {
        return;
    };
    let (request, conditional) = origin.revalidating(Some(&entry));
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
            if storable(&slot, &plan, &refreshed) {
                guard.land(&refreshed.data);
                write(&slot, &refreshed.data).await;
            }
        }
        ServeDecision::UseOrigin { .. } => {
            let headers = header_list(resp.headers());
            if check_response(&slot.rule, &plan, code, &headers) == ResponseVerdict::Store {
                let Ok(raw) = crate::response::into_raw(resp) else {
                    return;
                };
                store_response(&slot, raw, &headers, timing, Some(guard)).await;
            }
        }
        ServeDecision::ServeStale => {}
    }
}
