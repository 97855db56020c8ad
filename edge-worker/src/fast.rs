//! The synchronous fast path: a request the policy calls a plain proxy
//! ([`GatewayConfig::proxies_directly`]) whose caller is known at once (a
//! public route, an API key in the `API_KEYS` secret, or a bearer token the
//! isolate's cache of verified tokens may reuse), or whose new bearer token
//! needs only its signature checked (its issuer's keys held fresh, its
//! `CryptoKey` imported: `tidegate_policy::auth::authenticate_or_pend`), is
//! answered with no Rust future.
//!
//! The entry module (`edge-worker/shim.mjs`) calls [`plan`] with the
//! request's method, URL, headers and the Worker's bindings; the headers are
//! read (once, as one string) only when the request qualifies. When it returns
//! a [`FastProxy`], JS awaits the origin fetch that [`FastProxy::send`]
//! starts and hands the outcome back to [`FastProxy::answer`] or
//! [`FastProxy::unreachable`], which return the finished response and write
//! the log line. When it returns a [`FastVerify`], JS first awaits
//! `crypto.subtle.verify` with what it holds and hands the answer to
//! [`FastVerify::resume`], which finishes the plan (claims, scopes, the
//! lease, then the token remembered) and gives the [`FastProxy`], or
//! `undefined` for the full path (a bad signature or any refusal, which the
//! full path checks again and renders; a valid token whose lease had no
//! room, whose verification the full path takes over:
//! [`take_handed_over`]). Everything else (admin endpoints,
//! tokens whose keys must be fetched, refreshed or imported, the KV key
//! store, refused credentials, limits not admitted from a lease, cache,
//! CORS, assertions, health, unsafe methods, errors before the origin) goes
//! to the full path (`fetch` in `lib.rs`) untouched.
//!
//! Each step calls the same functions as the full path (the request id and
//! trace, the forwarding headers, the timed fetch, the hop-by-hop filter,
//! the final headers, problem+json, the log line), so an answer is the same
//! whichever path gave it (`tests/edge/fast-path.spec.ts`); what is saved is
//! the futures executor, the promises crossing into wasm and the worker
//! crate's request and response conversions.
//!
//! [`GatewayConfig::proxies_directly`]: tidegate_policy::config::GatewayConfig::proxies_directly

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use tidegate_policy::auth::{
    AtOnceStep, Identity, PendingToken, TokenCacheUse, TokenDigest, VerifiedBearer,
    DEFAULT_MAX_TOKEN_BYTES,
};
use tidegate_policy::cache::freshness::CACHE_STATUS_HEADER;
use tidegate_policy::cache::CacheStatus;
use tidegate_policy::config::Route;
use tidegate_policy::route::{
    apply_client_forwarding, forwarded_headers, upstream_url, ClientConnection,
    Method as PolicyMethod, RouteMatch, TrustedIdentity, REQUEST_ID_HEADER,
};
use url::Url;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::js_sys::{Object, Promise, Uint8Array};
use worker::{web_sys, Env};

use crate::config::Gateway;
use crate::error::{describe, EdgeError};
use crate::flow::{now_ms, Flow, Phase};
use crate::response::{self, raw_header_list, HeaderList};
use crate::{assertion, auth, begin, config, proxy, throttle, webcrypto};

thread_local! {
    /// Bearer tokens this isolate verified on the fast path and answered,
    /// and those it verified but then left to the full path (a lease with
    /// no room), which verifies them again (`GET {admin}/stats/fast-path`,
    /// for tests and benchmarks).
    static VERIFIED: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    /// Verifications the full path took over from the fast path instead of
    /// verifying again.
    static TAKEN_OVER: Cell<u64> = const { Cell::new(0) };
}

/// Most verifications held for the full path at once: each is taken by its
/// request's full path moments later; past the bound (full paths that never
/// came) the map starts over, and a request whose entry went verifies again.
const MAX_HANDED_OVER: usize = 256;

/// How many verifications the full path took over from the fast path.
pub fn taken_over_count() -> u64 {
    TAKEN_OVER.with(Cell::get)
}

/// The fast path's verification of this request's bearer token, handed
/// over when the fast path verified it and then declined (a lease with no
/// room): the full path's authentication takes it instead of verifying
/// again, if the token's times still pass. Its log line then says what the
/// full path's own check would (`auth_cache: "miss"` with a cache).
pub fn take_handed_over(
    gw: &Gateway,
    route: &Route,
    token: &str,
    now: u64,
) -> Option<VerifiedBearer> {
    let mut map = gw.handed_over.try_borrow_mut().ok()?;
    if map.is_empty() || token.len() > DEFAULT_MAX_TOKEN_BYTES {
        return None;
    }
    let verified = map.remove(&(TokenDigest::of(token), route.name.clone()))?;
    drop(map);
    verified.still_valid(now).then(|| {
        TAKEN_OVER.with(|n| n.set(n.get().saturating_add(1)));
        verified
    })
}

/// How many new bearer tokens this isolate verified on the fast path and
/// answered there, and how many it verified and then declined.
pub fn verified_counts() -> (u64, u64) {
    VERIFIED.with(Cell::get)
}

/// Counts one verified token, answered or declined.
fn count_verified(answered: bool) {
    VERIFIED.with(|n| {
        let (a, d) = n.get();
        n.set(if answered {
            (a.saturating_add(1), d)
        } else {
            (a, d.saturating_add(1))
        });
    });
}

/// A planned plain proxy request: the origin request to send, and the
/// request's flow (id, timings, log line) to finish it with.
#[wasm_bindgen]
pub struct FastProxy {
    /// The request id, as the client and the origin see it.
    request_id: String,
    /// Timings and the log line.
    flow: Flow,
    /// When the request arrived (ms since the epoch).
    started: u64,
    /// When the origin request was sent.
    sent: u64,
    /// The method the origin gets.
    method: String,
    /// The upstream URL.
    url: Url,
    /// The origin request's headers, as the policy built them.
    headers: HeaderList,
    /// The route's timeout.
    timeout: Duration,
}

/// A planned request whose bearer token needs only its signature checked
/// (`tidegate_policy::auth::authenticate_or_pend`), with the `CryptoKey`
/// already imported in this isolate: JS awaits `crypto.subtle.verify` with
/// [`Self::algorithm`], [`Self::key`], [`Self::signature`] and
/// [`Self::data`], then hands the answer to [`Self::resume`].
#[wasm_bindgen]
pub struct FastVerify {
    /// The request as the plan read it.
    planned: Planned,
    /// The token, every check but the signature passed.
    pending: Box<PendingToken>,
    /// The imported `CryptoKey`.
    key: JsValue,
    /// WebCrypto's `verify` parameters.
    algorithm: Object,
    /// The decoded signature.
    signature: Uint8Array,
    /// The signing input.
    data: Uint8Array,
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
    path: String,
    scheme: String,
    /// The upstream URL.
    target: Url,
    /// The request's headers.
    headers: HeaderList,
    /// The plan's one clock reading.
    started: u64,
}

/// The fast path's plan for a request: `method`, `url` and `headers` as the
/// runtime gives them, `env` the Worker's bindings. A [`FastProxy`] to send,
/// a [`FastVerify`] whose signature JS checks first, or `undefined`: take
/// the full path (the headers were then not read unless the route
/// qualified).
#[wasm_bindgen(js_name = tidegatePlan)]
pub fn plan(method: &str, url: &str, headers: &web_sys::Headers, env: JsValue) -> JsValue {
    plan_step(method, url, headers, env).unwrap_or(JsValue::UNDEFINED)
}

/// [`plan`]'s step as a JS value ([`FastProxy`] or [`FastVerify`]), or
/// `None` for the full path.
fn plan_step(method: &str, url: &str, headers: &web_sys::Headers, env: JsValue) -> Option<JsValue> {
    let started = now_ms();
    let env: Env = env.unchecked_into();
    let loaded = config::load(&env);
    let gw = Rc::clone(loaded.as_ref().ok()?);
    let url = RequestUrl::split(url)?;
    if url
        .path()
        .starts_with(gw.config.gateway.admin_prefix.as_str())
    {
        return None;
    }
    // The full path's method text: the worker crate's reading of it.
    let method_text = worker::Method::from(method.to_owned()).to_string();
    let policy_method: PolicyMethod = method_text.parse().ok()?;
    let RouteMatch::Matched { index, .. } = gw.table.match_request(policy_method, url.path())
    else {
        return None;
    };
    let route = gw.config.routes.get(index)?;
    if !gw.config.proxies_directly(route, policy_method) {
        return None;
    }
    let target = upstream_url(
        &route.upstream,
        route.strip_prefix.as_deref(),
        url.path(),
        url.query(),
    )
    .ok()?;

    let headers = raw_header_list(headers);
    let step = auth::at_once(&env, &gw, route, &headers, started)?;
    let planned = Planned {
        env,
        loaded,
        index,
        method: method_text,
        path: url.path().to_owned(),
        scheme: url.scheme().to_owned(),
        target,
        headers,
        started,
    };
    match step {
        AtOnceStep::Known(found) => planned
            .proceed(found.identity.as_ref(), found.token_cache, 0)
            .map(JsValue::from),
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
    /// The rest of the plan once the caller is known (`identity`, how the
    /// token cache was used, how long authentication took): the request id,
    /// trace and log line, the origin request's headers and, last, the
    /// lease charge on a limited route. `None`: the full path (nothing
    /// charged).
    fn proceed(
        self,
        identity: Option<&Identity>,
        token_cache: Option<TokenCacheUse>,
        auth_ms: u64,
    ) -> Option<FastProxy> {
        let Self {
            env,
            loaded,
            index,
            method,
            path,
            scheme,
            target,
            headers,
            started,
        } = self;
        let gw = loaded.as_ref().ok()?;
        let route = gw.config.routes.get(index)?;
        let (request_id, mut flow) = begin(&loaded, &headers, method.clone(), path);
        flow.log.route = Some(route.name.clone());
        // Authentication done at once or by one WebCrypto call; the full
        // path reports the phase too.
        flow.timings.add(Phase::Auth, auth_ms);
        flow.log.auth_cache = token_cache.map(TokenCacheUse::label);
        if let Some(id) = identity {
            flow.log.note_caller(id);
        }
        let trusted = identity.map(TrustedIdentity::from);
        let forward = gw.config.forward_policy(route);
        let forwarded = forwarded_headers(&headers, &forward, &request_id, trusted.as_ref());
        let mut origin_headers =
            assertion::unsigned_origin_headers(&env, gw, route, forwarded).ok()?;
        apply_client_forwarding(
            &mut origin_headers,
            &route.forward_client_headers,
            &ClientConnection::from_headers(&headers, &scheme),
            &flow.trace.headers(),
        );
        // Last: a lease is charged only for a request the plan takes.
        throttle::at_once(gw, route, identity, &headers, &mut flow, started)?;
        Some(FastProxy {
            request_id: request_id.as_str().to_owned(),
            flow,
            started,
            sent: started,
            method,
            url: target,
            headers: origin_headers,
            timeout: route.timeout,
        })
    }
}

#[wasm_bindgen]
impl FastVerify {
    /// The imported `CryptoKey`.
    #[wasm_bindgen(getter)]
    pub fn key(&self) -> JsValue {
        self.key.clone()
    }

    /// WebCrypto's `verify` parameters for the token's algorithm.
    #[wasm_bindgen(getter)]
    pub fn algorithm(&self) -> Object {
        self.algorithm.clone()
    }

    /// The decoded signature.
    #[wasm_bindgen(getter)]
    pub fn signature(&self) -> Uint8Array {
        self.signature.clone()
    }

    /// The signed bytes (`base64url(header) "." base64url(claims)`).
    #[wasm_bindgen(getter)]
    pub fn data(&self) -> Uint8Array {
        self.data.clone()
    }

    /// The rest of the plan once WebCrypto answered `valid` (`false` also
    /// when it threw): the claims, the identity and the scopes as the full
    /// path checks them (`PendingToken::finish`), the request's flow and
    /// origin request, the lease charge, and only then the token
    /// remembered as the full path remembers it. `undefined`: the full
    /// path (which checks the token again and renders any refusal; nothing
    /// was charged or remembered).
    pub fn resume(self, valid: bool) -> Option<FastProxy> {
        let Self {
            planned, pending, ..
        } = self;
        let (started, index) = (planned.started, planned.index);
        let gw = Rc::clone(planned.loaded.as_ref().ok()?);
        // The full path checks the claims and remembers the token at the
        // time its authentication began.
        let verified = pending.finish(valid, started)?;
        let auth_ms = now_ms().saturating_sub(started);
        let proxy = planned.proceed(Some(verified.identity()), verified.token_cache(), auth_ms);
        count_verified(proxy.is_some());
        let Some(proxy) = proxy else {
            // Declined after a valid signature (a lease with no room): the
            // full path takes the verification over.
            let route = gw.config.routes.get(index)?;
            if let (Some(digest), Ok(mut map)) =
                (verified.digest(), gw.handed_over.try_borrow_mut())
            {
                if map.len() >= MAX_HANDED_OVER {
                    map.clear();
                }
                map.insert((digest, route.name.clone()), verified);
            }
            return None;
        };
        verified.remember(&gw.tokens, started);
        Some(proxy)
    }
}

/// The parts of a request URL the fast path reads. The runtime hands over
/// its URL already parsed and serialised (WHATWG), so its parts are read off
/// the text, as the worker crate reads the path (`Request::path`), instead
/// of parsing it again with the `url` crate, whose host parsing (IDNA
/// included) was among the path's heaviest Rust items.
struct RequestUrl<'a> {
    /// `http` or `https`.
    scheme: &'a str,
    /// The path, from its `/` to the query or fragment.
    path: &'a str,
    /// The query, without `?`.
    query: Option<&'a str>,
}

impl<'a> RequestUrl<'a> {
    /// The parts of an `http` or `https` URL; `None` (the full path) for
    /// anything else.
    fn split(url: &'a str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let rest = rest.split('#').next().unwrap_or_default();
        // The authority ends at the path's `/`: a serialised http(s) URL
        // always has one; anything else goes the full way.
        let target = rest.get(rest.find(['/', '?'])?..)?;
        if !target.starts_with('/') {
            return None;
        }
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        Some(Self {
            scheme,
            path,
            query,
        })
    }

    fn path(&self) -> &'a str {
        self.path
    }

    fn query(&self) -> Option<&'a str> {
        self.query
    }

    fn scheme(&self) -> &'a str {
        self.scheme
    }
}

#[wasm_bindgen]
impl FastProxy {
    /// Sends the origin request with the client's `body` (`null` for none):
    /// a promise of the `Response`, of `null` when the route's timeout
    /// passed first, or rejected with the fetch's error.
    pub fn send(&mut self, body: JsValue) -> Promise {
        self.sent = now_ms();
        proxy::start(
            &self.method,
            &self.url,
            &self.headers,
            &body,
            self.timeout,
            false,
        )
    }

    /// The response for the origin's `answer` (what [`Self::send`]'s promise
    /// resolved to), with the log line written. Errs only when even the
    /// problem response cannot be built.
    pub fn answer(self, answer: JsValue) -> Result<web_sys::Response, JsValue> {
        let result = if answer.is_null() {
            Err(EdgeError::OriginTimeout(self.timeout))
        } else {
            answer.dyn_into::<web_sys::Response>().map_err(|_| {
                EdgeError::OriginUnreachable(
                    "fetch resolved to something other than a Response".into(),
                )
            })
        };
        self.finish(result)
    }

    /// The response when [`Self::send`]'s promise rejected with `error`
    /// (connection refused, DNS, TLS...): 502, with the log line written.
    pub fn unreachable(self, error: JsValue) -> Result<web_sys::Response, JsValue> {
        let reason = worker::Error::from(error).to_string();
        self.finish(Err(EdgeError::OriginUnreachable(reason)))
    }
}

impl FastProxy {
    /// The client's response for the origin's answer or failure, as the
    /// full path builds it (`cache::bypass`, then `lib.rs`'s `finish` and
    /// `into_raw`), and the log line.
    fn finish(
        mut self,
        result: Result<web_sys::Response, EdgeError>,
    ) -> Result<web_sys::Response, JsValue> {
        let now = now_ms();
        self.flow
            .timings
            .add(Phase::Origin, now.saturating_sub(self.sent));
        self.flow.log.cache = Some(CacheStatus::Bypass.as_str());
        self.flow.timings.total = Some(now.saturating_sub(self.started));
        let raw = result
            .and_then(|resp| self.pass_on(&resp))
            .or_else(|e| self.problem(e));
        self.flow.log.status = raw.as_ref().map_or(500, web_sys::Response::status);
        self.flow.log.emit(&self.flow.timings);
        raw.map_err(|e| JsValue::from_str(&e.to_string()))
    }

    /// The origin's response with a final status, its hop-by-hop fields
    /// dropped and the edge's headers set; the body streams through.
    fn pass_on(&self, resp: &web_sys::Response) -> Result<web_sys::Response, EdgeError> {
        let status = resp.status();
        if !proxy::passable(status) {
            return Err(EdgeError::OriginStatus(status));
        }
        let hop = proxy::hop_fields(&resp.headers());
        let hop: Vec<&str> = hop.iter().map(String::as_str).collect();
        let timing = self.flow.timings.header();
        // As the full path: the rate-limit headers (`flow.extra`), then the
        // request id and timings (`response::finish`).
        let mut set: Vec<(&str, &str)> = vec![(CACHE_STATUS_HEADER, CacheStatus::Bypass.as_str())];
        set.extend(
            self.flow
                .extra
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        );
        set.push((REQUEST_ID_HEADER, self.request_id.as_str()));
        set.push(("server-timing", timing.as_str()));
        let headers = response::edited_copy(&resp.headers(), &hop, &set);
        rebuild::response(resp, &headers.0).map_err(|e| EdgeError::ResponseRefused {
            status,
            reason: describe(&e),
        })
    }

    /// The problem+json response for `e`, noted in the log line.
    fn problem(&mut self, e: EdgeError) -> Result<web_sys::Response, EdgeError> {
        let problem = self.flow.fail(e).with_request_id(self.request_id.as_str());
        let mut resp = response::problem(&problem);
        crate::finish(&mut resp, &self.request_id, &self.flow);
        response::into_raw(resp)
    }
}

/// The client's response from the origin's, in one call into JS.
mod rebuild {
    use worker::wasm_bindgen::{self, prelude::wasm_bindgen, JsValue};
    use worker::web_sys;

    #[wasm_bindgen(inline_js = "
export function tidegateRebuild(resp, headers) {
  return new Response(resp.body, { status: resp.status, headers });
}")]
    extern "C" {
        /// A response with `resp`'s status and body (a stream, passed on, not
        /// read) and `headers`; throws what the runtime refuses.
        #[wasm_bindgen(js_name = tidegateRebuild, catch)]
        pub fn response(
            resp: &web_sys::Response,
            headers: &web_sys::Headers,
        ) -> Result<web_sys::Response, JsValue>;
    }
}
