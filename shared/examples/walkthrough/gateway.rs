//! The edge adapter's request path, simulated: what the Worker does with the
//! policy crate's decisions. Maps stand in for the Durable Object (limiter
//! state), the Cache API and the origin; the clock is a number.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::{ready, Future};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tidegate_policy::auth::{
    self, parse_jwks, Algorithm, ApiKeyStore, AuthRejection, CredentialHeaders, Identity, Jwk,
    JwksCache, KeyLookup, KeyProvider, NativeVerifier, UnverifiedJwt,
};
use tidegate_policy::cache::{
    self, after_origin, before_origin, cache_key, check_request, check_response, first_header,
    freshness_from_headers, prepare_for_serving, prepare_for_storage, CacheRule, CacheStatus,
    LookupDecision, RequestParts, RequestVerdict, ResponseVerdict, ServeDecision,
    CACHE_STATUS_HEADER,
};
use tidegate_policy::config::{GatewayConfig, Issuer, Route};
use tidegate_policy::problem::Problem;
use tidegate_policy::route::{
    forwarded_headers, upstream_url, Method, RequestId, RouteMatch, RouteTable, TrustedIdentity,
};
use tidegate_policy::throttle::{GcraState, KeySource};
use url::Url;

/// Header lists as the Worker sees them.
pub type Headers = Vec<(String, String)>;

/// The host clients call.
pub const HOST: &str = "api.example.com";

/// A client request.
#[derive(Clone)]
pub struct Request {
    /// Method, as sent.
    pub method: &'static str,
    /// Path and query.
    pub target: String,
    /// Headers, as sent.
    pub headers: Headers,
}

impl Request {
    /// A request without headers.
    pub fn new(method: &'static str, target: &str) -> Self {
        let headers = vec![("cf-connecting-ip".into(), "203.0.113.7".into())];
        let target = target.to_owned();
        Self {
            method,
            target,
            headers,
        }
    }

    /// The same request with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same request with `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }
}

/// A stored or origin response (bodies do not matter here).
#[derive(Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Headers,
}

/// What the gateway answered, and what it did on the way.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// The request id the gateway assigned.
    pub request_id: RequestId,
    /// The matched route.
    pub route: Option<String>,
    /// The authenticated subject.
    pub subject: Option<String>,
    /// Response headers the gateway set.
    pub headers: Headers,
    /// The problem body of an error response.
    pub problem: Option<Problem>,
    /// The cache key URL, when the route caches.
    pub cache_key: Option<String>,
    /// The request the origin gets when it is called: URL and headers.
    pub upstream: Option<(Url, Headers)>,
}

impl Response {
    /// The first value of response header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        first_header(&self.headers, name)
    }

    /// The problem's slug, e.g. `invalid-token`; empty on success.
    pub fn slug(&self) -> &str {
        let kind = self.problem.as_ref().map(|p| p.kind.as_str());
        kind.and_then(|k| k.rsplit('/').next()).unwrap_or("")
    }

    /// The `X-Cache-Status` header, or `-`.
    pub fn cache_status(&self) -> &str {
        self.header(CACHE_STATUS_HEADER).unwrap_or("-")
    }

    /// `(route orders-read, subject alice, X-Cache-Status: MISS, ...)`.
    pub fn facts(&self) -> String {
        let mut facts = Vec::new();
        facts.extend(self.route.as_ref().map(|r| format!("route {r}")));
        facts.extend(self.subject.as_ref().map(|s| format!("subject {s}")));
        facts.extend(
            self.problem
                .as_ref()
                .map(|_| format!("problem {}", self.slug())),
        );
        for name in ["X-Cache-Status", "Age", "RateLimit", "Retry-After", "Allow"] {
            facts.extend(self.header(name).map(|v| format!("{name}: {v}")));
        }
        format!("({})", facts.join(", "))
    }
}

/// The simulated gateway, with all its state.
pub struct Gateway<'c> {
    config: &'c GatewayConfig,
    table: RouteTable,
    api_keys: ApiKeyStore,
    /// JWKS caches by issuer name.
    pub jwks: BTreeMap<String, JwksCache>,
    /// What the issuers' `jwks_url`s serve.
    jwks_body: Vec<u8>,
    limiter: BTreeMap<String, GcraState>,
    store: BTreeMap<String, Reply>,
    /// What the origin answers next.
    pub origin: Reply,
    /// Calls made to the origin so far.
    pub origin_calls: usize,
    /// JWKS fetches made so far.
    pub jwks_fetches: usize,
    /// The simulated clock, ms since the Unix epoch.
    pub now_ms: u64,
    /// When the clock started.
    pub start_ms: u64,
    /// Requests handled so far.
    pub requests: u64,
}

impl<'c> Gateway<'c> {
    /// A gateway for `config`, starting at `now_ms`.
    pub fn new(
        config: &'c GatewayConfig,
        api_keys: ApiKeyStore,
        jwks_body: Vec<u8>,
        now_ms: u64,
    ) -> Self {
        // Fetching caches for jwks_url issuers, pinned ones for inline keys.
        let jwks = config
            .issuers
            .iter()
            .map(|i| (i.name.clone(), i.new_jwks_cache()));
        Self {
            config,
            table: config.route_table(),
            api_keys,
            jwks: jwks.collect(),
            jwks_body,
            limiter: BTreeMap::new(),
            store: BTreeMap::new(),
            origin: Reply {
                status: 200,
                headers: Vec::new(),
            },
            origin_calls: 0,
            jwks_fetches: 0,
            now_ms,
            start_ms: now_ms,
            requests: 0,
        }
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, by: Duration) {
        self.now_ms += u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
    }

    /// Fetches issuer `name`'s JWKS (from the demo IdP) into its cache.
    pub fn fetch_jwks(&mut self, name: &str) {
        self.jwks_fetches += 1;
        let now = self.now_ms;
        let parsed = parse_jwks(&self.jwks_body);
        if let Some(cache) = self.jwks.get_mut(name) {
            match parsed {
                Ok(parsed) => cache.on_fetched(parsed.keys, now),
                Err(_) => cache.on_fetch_failed(now),
            }
        }
    }

    /// What `issuer`'s JWKS cache says about an ES256 key `kid`, by name.
    pub fn key_lookup(&mut self, issuer: &str, kid: &str) -> &'static str {
        let now = self.now_ms;
        let cache = self.jwks.get_mut(issuer);
        match cache.map(|c| c.lookup(Some(kid), Algorithm::ES256, now)) {
            Some(KeyLookup::Found(_)) => "Found",
            Some(KeyLookup::FoundStale { .. }) => "FoundStale",
            Some(KeyLookup::FetchThenRetry) => "FetchThenRetry",
            Some(KeyLookup::UnknownKid) => "UnknownKid",
            Some(KeyLookup::Unavailable) | None => "Unavailable",
        }
    }

    /// Handles one request end to end.
    pub fn handle(&mut self, req: &Request) -> Response {
        self.requests += 1;
        // Random bytes come from the adapter; here, from a counter.
        let random: [u8; 16] = Sha256::digest(self.requests.to_be_bytes())[..16]
            .try_into()
            .unwrap_or_default();
        let request_id = match self.config.gateway.trust_request_id {
            true => RequestId::from_headers(&req.headers, random),
            false => RequestId::from_random(random),
        };
        let mut resp = Response {
            status: 200,
            request_id,
            route: None,
            subject: None,
            headers: Vec::new(),
            problem: None,
            cache_key: None,
            upstream: None,
        };
        if let Err(problem) = self.run(req, &mut resp) {
            resp.status = problem.status;
            resp.problem = Some(problem.with_request_id(resp.request_id.as_str()));
        }
        resp
    }

    fn run(&mut self, req: &Request, resp: &mut Response) -> Result<(), Problem> {
        let config = self.config;
        let (path, query) = match req.target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (req.target.as_str(), None),
        };
        let method: Method = req
            .method
            .parse()
            .map_err(|_| Problem::new(501, "method", "Not implemented"))?;
        let matched = self.table.match_request(method, path);
        let RouteMatch::Matched { index, .. } = matched else {
            let allow = matched.allow_header().map(|v| ("Allow".to_owned(), v));
            resp.headers.extend(allow);
            return Err(matched.to_problem().unwrap_or_else(internal));
        };
        let route = config.routes.get(index).ok_or_else(internal)?;
        resp.route = Some(route.name.clone());

        let identity = self.authenticate(route, req).map_err(|r| reject(r, resp))?;
        resp.subject = identity.as_ref().map(|i| i.subject.clone());
        self.throttle(route, identity.as_ref(), req, resp)?;

        let url = upstream_url(&route.upstream, route.strip_prefix.as_deref(), path, query)
            .map_err(|e| e.to_problem())?;
        let policy = config.forward_policy(route);
        let trusted = identity.as_ref().map(TrustedIdentity::from);
        let forwarded =
            forwarded_headers(&req.headers, &policy, &resp.request_id, trusted.as_ref());
        resp.upstream = Some((url, forwarded));

        let reply = match &route.cache {
            Some(rule) => self.through_cache(rule, req, path, query, identity.as_ref(), resp),
            None => self.call_origin(),
        };
        resp.status = reply.status;
        resp.headers.extend(reply.headers);
        Ok(())
    }

    /// The policy's credential pipeline over this gateway's keys. Every step
    /// here is synchronous, so its future is ready at the first poll.
    fn authenticate(
        &mut self,
        route: &Route,
        req: &Request,
    ) -> Result<Option<Identity>, AuthRejection> {
        let config = self.config;
        let now_ms = self.now_ms;
        let headers = CredentialHeaders {
            authorization: first_header(&req.headers, "authorization"),
            authorization_repeated: false,
            api_key: first_header(&req.headers, config.api_key_header()),
        };
        let keys = WalkthroughKeys {
            config,
            route,
            gateway: RefCell::new(self),
        };
        let pipeline = auth::authenticate(
            route.auth.requirement,
            &route.auth.scopes,
            headers,
            &keys,
            &NativeVerifier,
            now_ms,
        );
        now_or_never(pipeline).unwrap_or(Err(AuthRejection::KeysUnavailable))
    }

    /// The JWKS cache protocol: look up, fetch when told, look up again. A
    /// kid the fetch did not bring is negative-cached by the cache itself.
    fn key_for(
        &mut self,
        issuer: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Jwk, AuthRejection> {
        for attempt in 0..2 {
            let now = self.now_ms;
            let cache = self
                .jwks
                .get_mut(issuer)
                .ok_or(AuthRejection::KeysUnavailable)?;
            match cache.lookup(kid, alg, now) {
                KeyLookup::Found(jwk) => return Ok(jwk.clone()),
                KeyLookup::FoundStale { jwk, refresh } => {
                    let jwk = jwk.clone();
                    if refresh {
                        self.fetch_jwks(issuer); // in the background, really
                    }
                    return Ok(jwk);
                }
                KeyLookup::FetchThenRetry if attempt == 0 => self.fetch_jwks(issuer),
                KeyLookup::FetchThenRetry | KeyLookup::UnknownKid => {
                    return Err(AuthRejection::UnknownKey)
                }
                KeyLookup::Unavailable => return Err(AuthRejection::KeysUnavailable),
            }
        }
        Err(AuthRejection::UnknownKey)
    }

    fn throttle(
        &mut self,
        route: &Route,
        id: Option<&Identity>,
        req: &Request,
        resp: &mut Response,
    ) -> Result<(), Problem> {
        let Some(policy) = &route.rate_limit else {
            return Ok(());
        };
        let client_ip = first_header(&req.headers, "cf-connecting-ip");
        let source = KeySource::from_identity(id, client_ip);
        let keys = policy
            .storage_keys(&route.name, &source)
            .map_err(|e| e.problem())?;
        // The Durable Object's part: load, check, store. A storage failure
        // would go to policy.on_limiter_error().
        let states: Vec<GcraState> = keys
            .iter()
            .map(|k| self.limiter.get(k).copied().unwrap_or_default())
            .collect();
        let decision = policy.check(&states, self.now_ms, id);
        for (key, state) in keys.into_iter().zip(&decision.states) {
            self.limiter.insert(key, *state);
        }
        let headers = policy.headers(&decision).into_iter();
        resp.headers
            .extend(headers.map(|(name, value)| (name.to_owned(), value)));
        policy.rejection(&decision).map_or(Ok(()), Err)
    }

    fn through_cache(
        &mut self,
        rule: &CacheRule,
        req: &Request,
        path: &str,
        query: Option<&str>,
        id: Option<&Identity>,
        resp: &mut Response,
    ) -> Reply {
        let plan = match check_request(req.method, &req.headers, id.is_some()) {
            RequestVerdict::Cache(plan) => plan,
            RequestVerdict::Bypass(_) => return self.bypass(),
        };
        let caller = id.map(Identity::qualified_subject);
        let parts = RequestParts {
            method: req.method,
            scheme: "https",
            host: HOST,
            path,
            query,
            headers: &req.headers,
            identity: caller.as_deref(),
        };
        let key = match cache_key(rule, &parts) {
            Ok(key) => key.to_url(),
            Err(_) => return self.bypass(),
        };
        resp.cache_key = Some(key.clone());
        let now = self.now_ms;
        let stored = self.store.get(&key).cloned();
        let check = stored
            .as_ref()
            .map(|s| freshness_from_headers(&s.headers, rule, now));
        let serve = |status: CacheStatus| {
            let (s, c) = stored.as_ref().zip(check)?;
            let headers = prepare_for_serving(&s.headers, c.age, status);
            Some(Reply {
                status: s.status,
                headers,
            })
        };
        let lookup = before_origin(check.as_ref(), &plan);
        if let Some(status) = lookup.cache_status() {
            if lookup == LookupDecision::ServeStaleAndRevalidate {
                let fresh = self.call_origin(); // in ctx.waitUntil, really
                let decision = after_origin(check.as_ref(), &plan, false, Some(fresh.status));
                if let ServeDecision::UseOrigin { .. } = decision {
                    self.keep(rule, &plan, &key, &fresh);
                }
            }
            return serve(status).unwrap_or_else(|| self.bypass());
        }
        // A real adapter passes None when the origin is unreachable or times
        // out, and sends the entry's validators (the edge does; this origin
        // has none, so it never answers 304).
        let fresh = self.call_origin();
        match after_origin(check.as_ref(), &plan, false, Some(fresh.status)) {
            ServeDecision::ServeStale | ServeDecision::RefreshEntry => {
                serve(CacheStatus::Stale).unwrap_or(fresh)
            }
            ServeDecision::UseOrigin { status } => {
                self.keep(rule, &plan, &key, &fresh);
                tag(fresh, status)
            }
        }
    }

    fn keep(&mut self, rule: &CacheRule, plan: &cache::RequestPlan, key: &str, reply: &Reply) {
        if check_response(rule, plan, reply.status, &reply.headers) == ResponseVerdict::Store {
            let timing = cache::ResponseTiming {
                requested_at_ms: self.now_ms,
                received_at_ms: self.now_ms,
            };
            let headers = prepare_for_storage(&reply.headers, rule, timing).headers;
            self.store.insert(
                key.to_owned(),
                Reply {
                    status: reply.status,
                    headers,
                },
            );
        }
    }

    fn bypass(&mut self) -> Reply {
        tag(self.call_origin(), CacheStatus::Bypass)
    }

    fn call_origin(&mut self) -> Reply {
        self.origin_calls += 1;
        self.origin.clone()
    }
}

fn tag(mut reply: Reply, status: CacheStatus) -> Reply {
    reply
        .headers
        .push((CACHE_STATUS_HEADER.into(), status.as_str().into()));
    reply
}

fn reject(rejection: AuthRejection, resp: &mut Response) -> Problem {
    if let Some(challenge) = rejection.www_authenticate() {
        resp.headers.push(("WWW-Authenticate".into(), challenge));
    }
    rejection.to_problem()
}

fn internal() -> Problem {
    Problem::new(500, "internal", "Internal error")
}

/// What the pipeline asks the walkthrough for: the route's issuers, keys
/// from the gateway's JWKS caches (fetching when they say so), API keys from
/// its store.
struct WalkthroughKeys<'g, 'c, 'r> {
    config: &'c GatewayConfig,
    route: &'r Route,
    gateway: RefCell<&'g mut Gateway<'c>>,
}

impl KeyProvider for WalkthroughKeys<'_, '_, '_> {
    type Error = AuthRejection;

    fn issuer(&self, jwt: &UnverifiedJwt<'_>) -> Result<&Issuer, AuthRejection> {
        self.config.issuer_for_token(self.route, jwt)
    }

    fn signing_key(
        &self,
        issuer: &Issuer,
        kid: Option<&str>,
        alg: Algorithm,
        _now_ms: u64,
    ) -> impl Future<Output = Result<Jwk, AuthRejection>> {
        // The issuer's name picks its JWKS cache.
        ready(self.gateway.borrow_mut().key_for(&issuer.name, kid, alg))
    }

    fn api_key(
        &self,
        key: &str,
        now_ms: u64,
    ) -> impl Future<Output = Result<Identity, AuthRejection>> {
        ready(self.gateway.borrow().api_keys.authenticate(key, now_ms))
    }
}

/// The output of a future that is ready at its first poll, or `None`.
fn now_or_never<F: Future>(future: F) -> Option<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(future).poll(&mut cx) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}
