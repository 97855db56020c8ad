//! The fast path's cache step: on a cached route whose caller is known, JS
//! looks up the entry's key with the Cache API and hands what it found to
//! one synchronous call, which answers a fresh entry as the full path
//! would (`X-Cache-Status: HIT`, `Age`, the client's conditional request,
//! the lease charged last). A miss (nothing stored) is filled here too when
//! the policy allows it (`GatewayConfig::fills_misses_directly`) and no other
//! request is filling the key: the step becomes a [`FastProxy`] whose answer
//! is stored as the full path stores it. Anything else (an entry that is
//! stale or must be revalidated, a lease with no room, a key being filled)
//! goes to the full path with the lookup handed over, so it asks the Cache
//! API once.

use std::cell::Cell;
use std::rc::Rc;

use tidegate_policy::auth::Identity;
use tidegate_policy::cache::{
    before_origin, cache_key as policy_cache_key, check_request, origin_query, CacheRule,
    CacheStatus, LookupDecision, RequestParts, RequestPlan, RequestVerdict,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::js_sys::{Array, WeakMap};
use worker::{web_sys, Context};

use super::proxy::Fill;
use super::{Caller, FastProxy, Outbound, Planned};
use crate::cache::{Entry, Filling, HandedMatch};
use crate::error::EdgeError;
use crate::flow::{now_ms, Flow, Phase};
use crate::response;

thread_local! {
    /// Lookups handed to the full path, by request (the JS object the
    /// runtime gave both paths): a weak map, so a lookup whose full path
    /// never ran goes with its request.
    static HANDED: WeakMap = WeakMap::new();
    /// Fresh entries answered here, and lookups handed to the full path.
    static COUNTS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    /// Misses filled here.
    static FILLS: Cell<u64> = const { Cell::new(0) };
}

/// How many fresh entries this isolate answered on the fast path, and how
/// many lookups it handed to the full path.
pub(super) fn lookup_counts() -> (u64, u64) {
    COUNTS.with(Cell::get)
}

/// How many misses this isolate filled on the fast path.
pub(super) fn fill_count() -> u64 {
    FILLS.with(Cell::get)
}

/// Counts one miss filled here.
fn count_fill() {
    FILLS.with(|n| n.set(n.get().saturating_add(1)));
}

/// Counts one lookup, answered or handed over.
fn count(answered: bool) {
    COUNTS.with(|n| super::count_outcome(n, answered));
}

/// The lookup the fast path made for `request` and left to the full path,
/// if any (taken: a second call finds none).
pub fn take_handed_match(request: &web_sys::Request) -> Option<HandedMatch> {
    let held = HANDED.with(|map| {
        let held = map.get(request);
        map.delete(request);
        held
    });
    let held: Array = held.dyn_into().ok()?;
    Some(HandedMatch {
        key: held.get(0).as_string()?,
        found: held.get(1).dyn_into().ok(),
        lookup_ms: held.get(2).as_f64().map_or(0, |ms| ms as u64),
    })
}

/// Hands `lookup` to `request`'s full path.
fn hand_over(request: &web_sys::Request, lookup: HandedMatch) {
    let found = lookup.found.map_or(JsValue::NULL, JsValue::from);
    let held = Array::of3(
        &JsValue::from_str(&lookup.key),
        &found,
        &JsValue::from_f64(lookup.lookup_ms as f64),
    );
    HANDED.with(|map| {
        map.set(request, &held);
    });
}

/// The cache key for a planned request on a route with `rule`, and the
/// request's cache plan, as the full path's `cache::serve` finds them;
/// `None` when the request may not use the cache (the full path bypasses
/// it).
pub(super) fn cache_key(
    planned: &Planned,
    rule: &CacheRule,
    identity: Option<&Identity>,
) -> Option<(String, RequestPlan)> {
    let RequestVerdict::Cache(plan) =
        check_request(&planned.method, &planned.headers, identity.is_some())
    else {
        return None;
    };
    let caller = identity.map(Identity::qualified_subject);
    let parts = RequestParts {
        method: &planned.method,
        scheme: &planned.scheme,
        host: &planned.host,
        path: &planned.path,
        query: planned.query.as_deref(),
        headers: &planned.headers,
        identity: caller.as_deref(),
    };
    let key = policy_cache_key(rule, &parts).ok()?.to_url();
    Some((key, plan))
}

impl Planned {
    /// The origin request that fills a miss of `key` for `caller`, charged
    /// to its lease, and the cache's hold on the key; `None` for the full
    /// path (the route records release health, the request may not store,
    /// another request is filling the key, a lease with no room), with
    /// nothing charged or held.
    fn fill(
        &self,
        caller: &Caller,
        key: &str,
        plan: RequestPlan,
        lookup_ms: u64,
    ) -> Option<(Outbound, Filling)> {
        let gw = self.loaded.as_ref().ok()?;
        let route = gw.config.routes.get(self.index)?;
        let rule = route.cache.as_ref()?;
        if !gw.config.fills_misses_directly(route, self.policy_method) {
            return None;
        }
        let filling = Filling::lead(&route.name, rule, key, plan)?;
        // As the full path: the origin sees only the keyed parameters.
        let query = origin_query(rule, &self.method, self.query.as_deref());
        let mut outbound = self.outbound(route, caller, query.as_deref())?;
        outbound.flow.timings.add(Phase::Cache, lookup_ms);
        self.charge(gw, route, caller, &mut outbound.flow)?;
        Some((outbound, filling))
    }
}

/// A planned lookup on a cached route: JS awaits the Cache API's `match`
/// of [`Self::key`] and hands what it found to [`Self::serve`].
#[wasm_bindgen]
pub struct FastLookup {
    planned: Planned,
    caller: Caller,
    /// The entry's key URL.
    key: String,
    /// The request's cache plan (the client's directives).
    plan: RequestPlan,
    /// When the lookup was handed to JS (for `Server-Timing`'s `cache`).
    asked: u64,
}

impl FastLookup {
    pub(super) fn new(planned: Planned, caller: Caller, key: String, plan: RequestPlan) -> Self {
        Self {
            planned,
            caller,
            key,
            plan,
            asked: now_ms(),
        }
    }
}

#[wasm_bindgen]
impl FastLookup {
    /// The key URL to look up in `caches.default`.
    #[wasm_bindgen(getter)]
    pub fn key(&self) -> String {
        self.key.clone()
    }

    /// The answer for what the Cache API `found` under the key (`null` or
    /// `undefined`: nothing): a fresh entry's response, with the log line
    /// written; a [`FastProxy`] that fills a miss (JS sends it, its answer
    /// is stored as the full path stores it); or `undefined`: the full
    /// path, handed the lookup for `request` (and a new token's
    /// verification), nothing charged. Errs only when even the problem
    /// response cannot be built.
    pub fn serve(
        self,
        found: Option<web_sys::Response>,
        request: &web_sys::Request,
    ) -> Result<JsValue, JsValue> {
        let lookup_ms = now_ms().saturating_sub(self.asked);
        let Self {
            planned,
            caller,
            key,
            plan,
            ..
        } = self;
        // Cannot fail: the plan found the same route in the same config.
        let Ok(gw) = planned.loaded.as_ref().map(Rc::clone) else {
            return Ok(JsValue::UNDEFINED);
        };
        let Some((route, Some(rule))) = gw
            .config
            .routes
            .get(planned.index)
            .map(|r| (r, r.cache.as_ref()))
        else {
            return Ok(JsValue::UNDEFINED);
        };
        let entry = found.map(|raw| Entry::from_raw(raw, rule));
        let fresh = entry
            .as_ref()
            .is_some_and(|e| before_origin(Some(&e.check), &plan) == LookupDecision::ServeHit);
        let decline = |entry: Option<Entry>, caller: Caller, key: String| {
            caller.declined(&gw, route);
            count(false);
            let found = entry.map(Entry::into_raw);
            hand_over(
                request,
                HandedMatch {
                    key,
                    found,
                    lookup_ms,
                },
            );
            Ok(JsValue::UNDEFINED)
        };
        let entry = match entry {
            Some(entry) if fresh => entry,
            None => {
                let Some((outbound, filling)) = planned.fill(&caller, &key, plan, lookup_ms) else {
                    return decline(None, caller, key);
                };
                caller.admitted(&gw, planned.started);
                count_fill();
                let fill = Fill {
                    filling,
                    ctx: Context::new(planned.ctx.clone().unchecked_into()),
                };
                return Ok(FastProxy::new(planned, route, outbound, Some(fill)).into());
            }
            other => return decline(other, caller, key),
        };
        let (request_id, mut flow) = planned.flow(route, &caller);
        // Last before answering: the lease, charged only for a request
        // answered here.
        if planned.charge(&gw, route, &caller, &mut flow).is_none() {
            return decline(Some(entry), caller, key);
        }
        flow.timings.add(Phase::Cache, lookup_ms);
        flow.log.cache = Some(CacheStatus::Hit.as_str());
        caller.admitted(&gw, planned.started);
        count(true);
        answer(entry, &planned, request_id.as_str(), flow)
    }
}

/// A fresh `entry`'s answer to the planned request, with what every
/// response carries set over its headers as the full path's `finish` sets
/// them (the rate-limit headers, then the request id and timings), and the
/// log line written.
fn answer(
    entry: Entry,
    planned: &Planned,
    request_id: &str,
    mut flow: Flow,
) -> Result<JsValue, JsValue> {
    flow.timings.total = Some(now_ms().saturating_sub(planned.started));
    let timing = flow.timings.header();
    let last = response::carried(&flow.extra, request_id, &timing);
    let head = planned.method == "HEAD";
    let stored_status = entry.status;
    if let Some(raw) = entry.answer_raw(CacheStatus::Hit, &planned.headers, head, &last) {
        flow.log.status = raw.status();
        flow.log.emit(&flow.timings);
        return Ok(raw.into());
    }
    // The runtime refused the entry's response: the full path's
    // problem+json for it.
    let refused = EdgeError::ResponseRefused {
        status: stored_status,
        reason: "the runtime refused a stored entry's response".to_owned(),
    };
    let problem = flow.fail(refused).with_request_id(request_id);
    crate::deliver(
        response::problem(&problem),
        request_id,
        flow,
        planned.started,
    )
    .map(JsValue::from)
    .map_err(|e| JsValue::from_str(&e.to_string()))
}
