//! The synchronous fast path: a request the policy lets the edge answer
//! without futures of its own ([`GatewayConfig::proxies_directly`], a plain
//! proxy; [`GatewayConfig::serves_hits_directly`], a fresh entry of a cached
//! route) whose caller is known at once (a public route, an API key in the
//! `API_KEYS` secret, or a bearer token the isolate's cache of verified
//! tokens may reuse), or whose new bearer token needs only its signature
//! checked (its issuer's keys held fresh, its `CryptoKey` imported:
//! `tidegate_policy::auth::authenticate_or_pend`), is answered with no Rust
//! future.
//!
//! The entry module (`edge-worker/shim.mjs`) calls [`plan`] with the
//! request's method, URL, headers and the Worker's bindings; the headers are
//! read (once, as one string) only when the request qualifies. It returns
//! one of three steps, each awaited by JS and finished by one more
//! synchronous call:
//! - a [`FastProxy`] ([`proxy`]): JS awaits the origin fetch that
//!   [`FastProxy::send`] starts and hands the outcome to
//!   [`FastProxy::answer`] or [`FastProxy::unreachable`], which return the
//!   finished response and write the log line;
//! - a [`FastLookup`] ([`lookup`]): JS awaits the Cache API's `match` of
//!   [`FastLookup::key`] and hands what it found to [`FastLookup::serve`],
//!   which answers a fresh entry (the lease charged last), gives a
//!   [`FastProxy`] that fills a miss (its answer stored in the background,
//!   as the full path stores it), or hands the lookup to the full path,
//!   which then does not look up again;
//! - a [`FastVerify`] ([`verify`]): JS awaits `crypto.subtle.verify` and
//!   hands the answer to [`FastVerify::resume`], which finishes the plan
//!   (claims, scopes) and gives the next step, or `undefined` for the full
//!   path (a bad signature or any refusal, which the full path checks again
//!   and renders).
//!
//! A step that declines after a new token's signature was verified hands
//! the verification to the full path ([`take_handed_over`]). Everything else
//! (admin endpoints, tokens whose keys must be fetched, refreshed or
//! imported, the KV key store, refused credentials, limits not admitted
//! from a lease, entries that are not fresh, misses another request is
//! filling or that must not be stored, CORS,
//! assertions, unsafe methods, errors before the origin) goes to the full
//! path (`fetch` in `lib.rs`) untouched.
//!
//! Each step calls the same functions as the full path (the request id and
//! trace, the forwarding headers, the timed fetch, the hop-by-hop filter,
//! the cache key and freshness, the final headers, problem+json, the log
//! line), so an answer is the same whichever path gave it
//! (`tests/edge/fast-path.spec.ts`); what is saved is the futures executor,
//! the promises crossing into wasm and the worker crate's request and
//! response conversions.
//!
//! [`GatewayConfig::proxies_directly`]: tidegate_policy::config::GatewayConfig::proxies_directly
//! [`GatewayConfig::serves_hits_directly`]: tidegate_policy::config::GatewayConfig::serves_hits_directly

mod lookup;
mod proxy;
mod verify;

use std::cell::Cell;
use std::rc::Rc;

use serde::Serialize;
use tidegate_policy::auth::{AtOnce, AtOnceStep, Identity, TokenCacheUse, VerifiedBearer};
use tidegate_policy::config::Route;
use tidegate_policy::route::{
    apply_client_forwarding, forwarded_headers, upstream_url, ClientConnection,
    Method as PolicyMethod, RequestId, RouteMatch, TrustedIdentity,
};
use url::Url;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::js_sys::Uint8Array;
use worker::{web_sys, Env};

pub use lookup::{take_handed_match, FastLookup};
pub use proxy::FastProxy;
pub use verify::{take_handed_over, FastVerify};

use crate::config::Gateway;
use crate::flow::{now_ms, Flow, Phase};
use crate::response::{raw_header_list, HeaderList};
use crate::{assertion, auth, begin, config, throttle, webcrypto};

/// What this isolate's fast path did since it started
/// (`GET {admin}/stats/fast-path`, for tests and benchmarks).
#[derive(Debug, Serialize)]
pub struct FastPathStats {
    /// New bearer tokens verified on the fast path and answered there.
    pub verified: u64,
    /// New bearer tokens verified and then left to the full path (a lease
    /// with no room, a cache lookup that found no fresh entry).
    pub verified_then_declined: u64,
    /// Of those, the verifications the full path took over instead of
    /// verifying again.
    pub taken_over: u64,
    /// Fresh cache entries answered on the fast path.
    pub cache_hits: u64,
    /// Cache misses filled on the fast path (the origin asked, the answer
    /// stored as the full path stores it).
    pub cache_filled: u64,
    /// Cache lookups handed to the full path (an entry that is not fresh, a
    /// miss another request is filling, a lease with no room).
    pub cache_handed_over: u64,
}

impl FastPathStats {
    /// This isolate's counts.
    pub fn now() -> Self {
        let (verified, verified_then_declined) = verify::verified_counts();
        let (cache_hits, cache_handed_over) = lookup::lookup_counts();
        Self {
            verified,
            verified_then_declined,
            taken_over: verify::taken_over_count(),
            cache_hits,
            cache_filled: lookup::fill_count(),
            cache_handed_over,
        }
    }
}

/// Adds one to a step's (answered here, left to the full path) counts.
fn count_outcome(counts: &Cell<(u64, u64)>, answered: bool) {
    let (here, left) = counts.get();
    counts.set(if answered {
        (here.saturating_add(1), left)
    } else {
        (here, left.saturating_add(1))
    });
}

/// What the plan read of a request that qualifies, for the steps after
/// authentication.
struct Planned {
    env: Env,
    loaded: config::Loaded,
    /// The route's index in the configuration.
    index: usize,
    /// The full path's method text.
    method: String,
    /// The method as the policy reads it.
    policy_method: PolicyMethod,
    /// The request's `ExecutionContext` (a filled miss is stored in its
    /// `waitUntil`).
    ctx: JsValue,
    scheme: String,
    /// The host, with a port that is not the scheme's default.
    host: String,
    path: String,
    /// The query, without `?`.
    query: Option<String>,
    /// The request's headers.
    headers: HeaderList,
    /// The plan's one clock reading.
    started: u64,
}

/// The caller as the plan found it.
enum Caller {
    /// Known at once: a public route, an API key, a remembered token.
    Known(AtOnce),
    /// A new bearer token verified on the fast path, and how long that took
    /// (ms): remembered once its request is answered here, handed to the
    /// full path if the plan declines after all.
    Verified(VerifiedBearer, u64),
}

impl Caller {
    fn identity(&self) -> Option<&Identity> {
        match self {
            Self::Known(found) => found.identity.as_ref(),
            Self::Verified(verified, _) => Some(verified.identity()),
        }
    }

    fn token_cache(&self) -> Option<TokenCacheUse> {
        match self {
            Self::Known(found) => found.token_cache,
            Self::Verified(verified, _) => verified.token_cache(),
        }
    }

    /// How long authentication took: nothing when known at once, one
    /// WebCrypto call otherwise.
    fn auth_ms(&self) -> u64 {
        match self {
            Self::Known(_) => 0,
            Self::Verified(_, ms) => *ms,
        }
    }
}

/// The fast path's plan for a request: `method`, `url` and `headers` as the
/// runtime gives them, `env` the Worker's bindings, `ctx` its
/// `ExecutionContext`. A [`FastProxy`] to
/// send, a [`FastLookup`] to look up, a [`FastVerify`] whose signature JS
/// checks first, or `undefined`: take the full path (the headers were then
/// not read unless the route qualified).
#[wasm_bindgen(js_name = tidegatePlan)]
pub fn plan(
    method: &str,
    url: &str,
    headers: &web_sys::Headers,
    env: JsValue,
    ctx: JsValue,
) -> JsValue {
    plan_step(method, url, headers, env, ctx).unwrap_or(JsValue::UNDEFINED)
}

/// [`plan`]'s step as a JS value, or `None` for the full path.
fn plan_step(
    method: &str,
    url: &str,
    headers: &web_sys::Headers,
    env: JsValue,
    ctx: JsValue,
) -> Option<JsValue> {
    let started = now_ms();
    let env: Env = env.unchecked_into();
    let loaded = config::load(&env);
    let gw = Rc::clone(loaded.as_ref().ok()?);
    let url = RequestUrl::split(url)?;
    if url
        .path
        .starts_with(gw.config.gateway.admin_prefix.as_str())
    {
        return None;
    }
    // The full path's method text: the worker crate's reading of it.
    let method_text = worker::Method::from(method.to_owned()).to_string();
    let policy_method: PolicyMethod = method_text.parse().ok()?;
    let RouteMatch::Matched { index, .. } = gw.table.match_request(policy_method, url.path) else {
        return None;
    };
    let route = gw.config.routes.get(index)?;
    if !gw.config.proxies_directly(route, policy_method)
        && !gw.config.serves_hits_directly(route, policy_method)
    {
        return None;
    }

    let headers = raw_header_list(headers);
    let step = auth::at_once(&env, &gw, route, &headers, started)?;
    let planned = Planned {
        env,
        loaded,
        index,
        method: method_text,
        policy_method,
        ctx,
        scheme: url.scheme.to_owned(),
        host: url.host.to_owned(),
        path: url.path.to_owned(),
        query: url.query.map(str::to_owned),
        headers,
        started,
    };
    match step {
        AtOnceStep::Known(found) => planned.next(Caller::Known(found)),
        AtOnceStep::NeedsSignature(pending) => {
            // Only with the key already imported: an import is the full
            // path's (it awaits it, and keeps the key for the next one).
            let (key, algorithm, signature, data) = {
                let check = pending.signature_check().ok()?;
                let key = webcrypto::imported_key(&check)?;
                // Copies: WebCrypto gets bytes it owns, not views into wasm
                // memory (as the full path's verifier).
                (
                    key,
                    webcrypto::verify_algorithm(check.alg()),
                    Uint8Array::from(check.signature()),
                    Uint8Array::from(check.signing_input()),
                )
            };
            Some(JsValue::from(FastVerify {
                planned,
                pending,
                key,
                algorithm,
                signature,
                data,
            }))
        }
    }
}

impl Planned {
    /// The step once the caller is known: a [`FastLookup`] on a cached
    /// route, else a [`FastProxy`]; `None` for the full path, which then
    /// takes over a new token's verification.
    fn next(self, caller: Caller) -> Option<JsValue> {
        let gw = Rc::clone(self.loaded.as_ref().ok()?);
        let route = gw.config.routes.get(self.index)?;
        if let Some(rule) = &route.cache {
            return match lookup::cache_key(&self, rule, caller.identity()) {
                Some((key, plan)) => Some(FastLookup::new(self, caller, key, plan).into()),
                None => {
                    caller.declined(&gw, route);
                    None
                }
            };
        }
        let started = self.started;
        match self.proceed(&caller) {
            Some(proxy) => {
                caller.admitted(&gw, started);
                Some(proxy.into())
            }
            None => {
                caller.declined(&gw, route);
                None
            }
        }
    }

    /// The request's id and flow once `caller` is known: the trace and the
    /// log line begun as the full path begins them, with the route, the
    /// authentication phase and the caller noted.
    fn flow(&self, route: &Route, caller: &Caller) -> (RequestId, Flow) {
        let (request_id, mut flow) = begin(
            &self.loaded,
            &self.headers,
            self.method.clone(),
            self.path.clone(),
        );
        flow.log.route = Some(route.name.clone());
        // Authentication done at once or by one WebCrypto call; the full
        // path reports the phase too.
        flow.timings.add(Phase::Auth, caller.auth_ms());
        flow.log.auth_cache = caller.token_cache().map(TokenCacheUse::label);
        if let Some(id) = caller.identity() {
            flow.log.note_caller(id);
        }
        (request_id, flow)
    }

    /// The origin request once `caller` is known, with `query` (the
    /// request's own, or on a cached route its keyed parameters), and the
    /// request's id and flow; `None` for the full path.
    fn outbound(&self, route: &Route, caller: &Caller, query: Option<&str>) -> Option<Outbound> {
        let gw = self.loaded.as_ref().ok()?;
        let url = upstream_url(
            &route.upstream,
            route.strip_prefix.as_deref(),
            &self.path,
            query,
        )
        .ok()?;
        let (request_id, flow) = self.flow(route, caller);
        let trusted = caller.identity().map(TrustedIdentity::from);
        let forward = gw.config.forward_policy(route);
        let forwarded = forwarded_headers(&self.headers, &forward, &request_id, trusted.as_ref());
        let mut headers =
            assertion::unsigned_origin_headers(&self.env, gw, route, forwarded).ok()?;
        apply_client_forwarding(
            &mut headers,
            &route.forward_client_headers,
            &ClientConnection::from_headers(&self.headers, &self.scheme),
            &flow.trace.headers(),
        );
        Some(Outbound {
            request_id,
            flow,
            url,
            headers,
        })
    }

    /// The plain proxy step once the caller is known: the origin request
    /// and, last, the lease charge on a limited route. `None`: the full
    /// path (nothing charged).
    fn proceed(self, caller: &Caller) -> Option<FastProxy> {
        let gw = Rc::clone(self.loaded.as_ref().ok()?);
        let route = gw.config.routes.get(self.index)?;
        let mut outbound = self.outbound(route, caller, self.query.as_deref())?;
        // Last: a lease is charged only for a request the plan takes.
        self.charge(&gw, route, caller, &mut outbound.flow)?;
        Some(FastProxy::new(self, route, outbound, None))
    }

    /// Charges `caller`'s lease on a limited `route`, noting the admission
    /// in `flow`: the last check before a step is taken. `None` when the
    /// lease has no room (the full path; nothing charged).
    fn charge(&self, gw: &Gateway, route: &Route, caller: &Caller, flow: &mut Flow) -> Option<()> {
        throttle::at_once(
            gw,
            route,
            caller.identity(),
            &self.headers,
            flow,
            self.started,
        )
    }
}

/// A planned request's origin request, id and flow.
struct Outbound {
    request_id: RequestId,
    flow: Flow,
    url: Url,
    headers: HeaderList,
}

/// The parts of a request URL the fast path reads. The runtime hands over
/// its URL already parsed and serialised (WHATWG), so its parts are read off
/// the text, as the worker crate reads the path (`Request::path`), instead
/// of parsing it again with the `url` crate, whose host parsing (IDNA
/// included) was among the path's heaviest Rust items.
struct RequestUrl<'a> {
    /// `http` or `https`.
    scheme: &'a str,
    /// The host as serialised (lower case, IDNA applied, a default port
    /// left out), with its port if any.
    host: &'a str,
    /// The path, from its `/` to the query or fragment.
    path: &'a str,
    /// The query, without `?`.
    query: Option<&'a str>,
}

impl<'a> RequestUrl<'a> {
    /// The parts of an `http` or `https` URL; `None` (the full path) for
    /// anything else, and for a URL with credentials in it.
    fn split(url: &'a str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let rest = rest.split('#').next().unwrap_or_default();
        // The authority ends at the path's `/`: a serialised http(s) URL
        // always has one; anything else goes the full way.
        let at = rest.find(['/', '?'])?;
        let (host, target) = (rest.get(..at)?, rest.get(at..)?);
        if !target.starts_with('/') || host.is_empty() || host.contains('@') {
            return None;
        }
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        Some(Self {
            scheme,
            host,
            path,
            query,
        })
    }
}
