//! Authentication per route: the policy's pipeline (`auth::authenticate`)
//! decides; this module reads the headers, supplies keys through
//! [`crate::jwks`] and the `API_KEYS` secret, has WebCrypto check token
//! signatures ([`crate::webcrypto`]) and turns a refusal into its problem and
//! `WWW-Authenticate` challenge.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use tidegate_policy::auth::{
    select_credential, Algorithm, AtOnceStep, AuthRejection, Credential, CredentialHeaders,
    Identity, Jwk, KeyProvider, KeysAtOnce, Remembered, TokenCache, TokenCacheUse, UnverifiedJwt,
};
use tidegate_policy::cache::first_header;
use tidegate_policy::config::{Issuer, Route};
use tidegate_policy::problem::Problem;
use worker::{Context, Env};

use crate::config::{self, Gateway};
use crate::flow::{now_ms, Flow, Phase};
use crate::webcrypto::WebCrypto;

/// The caller of `route`: `None` for a public route, or the problem to
/// answer with.
pub async fn authenticate(
    env: &Env,
    ctx: &Context,
    gw: &Rc<Gateway>,
    route: &Route,
    headers: &[(String, String)],
    flow: &mut Flow,
) -> Result<Option<Identity>, Problem> {
    if let Some(identity) = taken_over(gw, route, headers, flow) {
        return Ok(Some(identity));
    }
    let cache_use = Cell::new(None);
    let verifying = verify(env, ctx, gw, route, headers, &cache_use);
    let result = flow.timings.time(Phase::Auth, verifying).await;
    flow.log.auth_cache = cache_use.get().map(TokenCacheUse::label);
    match result {
        Ok(identity) => {
            if let Some(id) = &identity {
                flow.log.note_caller(id);
            }
            Ok(identity)
        }
        Err(Refusal::Auth(rejection)) => {
            flow.log.auth_error = Some(rejection.label());
            if let Some(challenge) = rejection.www_authenticate() {
                flow.extra.push(("www-authenticate".to_owned(), challenge));
            }
            Err(rejection.to_problem())
        }
        Err(Refusal::Edge(e)) => Err(flow.fail(e)),
    }
}

/// The caller when the fast path verified this request's new bearer token
/// and then left the request to this path (a lease with no room): its
/// verification, taken over instead of checking the signature again
/// (`crate::fast::take_handed_over`), remembered and logged as this path's
/// own check of a new token would be.
fn taken_over(
    gw: &Gateway,
    route: &Route,
    headers: &[(String, String)],
    flow: &mut Flow,
) -> Option<Identity> {
    let credentials = credential_headers(gw, headers);
    let Ok(Some(Credential::Bearer(token))) = select_credential(
        route.auth.requirement,
        credentials.authorization,
        credentials.api_key,
    ) else {
        return None;
    };
    let now = now_ms();
    let verified = crate::fast::take_handed_over(gw, route, token, now)?;
    let found = verified.remember(&gw.tokens, now);
    let identity = found.identity?;
    flow.timings.add(Phase::Auth, 0);
    flow.log.auth_cache = found.token_cache.map(TokenCacheUse::label);
    flow.log.note_caller(&identity);
    Some(identity)
}

/// Why a request was not authenticated.
enum Refusal {
    /// The policy refused the credential.
    Auth(AuthRejection),
    /// The gateway could not check it (invalid `API_KEYS`, KV unreachable).
    Edge(crate::error::EdgeError),
}

impl From<AuthRejection> for Refusal {
    fn from(r: AuthRejection) -> Self {
        Self::Auth(r)
    }
}

/// What the pipeline asks the edge for: the route's issuers, keys through
/// [`crate::jwks`] (isolate cache, Cache API, fetch), API keys from the
/// `API_KEYS` secret, then the KV key store ([`crate::keystore`]), and the
/// isolate's cache of verified tokens (`Gateway::tokens`).
struct EdgeKeys<'a> {
    env: &'a Env,
    ctx: &'a Context,
    gw: &'a Rc<Gateway>,
    route: &'a Route,
    /// Whether the token cache was used, for the log line.
    cache_use: &'a Cell<Option<TokenCacheUse>>,
}

impl KeyProvider for EdgeKeys<'_> {
    type Error = Refusal;

    fn issuer(&self, jwt: &UnverifiedJwt<'_>) -> Result<&Issuer, AuthRejection> {
        self.gw.config.issuer_for_token(self.route, jwt)
    }

    async fn signing_key(
        &self,
        issuer: &Issuer,
        kid: Option<&str>,
        alg: Algorithm,
        _now_ms: u64,
    ) -> Result<Jwk, Refusal> {
        // `jwks::key_for` reads the clock itself: it may wait for another
        // request's fetch, and its cache decisions need the time after that.
        Ok(crate::jwks::key_for(self.gw, issuer, kid, alg, self.ctx).await?)
    }

    async fn api_key(&self, key: &str, now_ms: u64) -> Result<Identity, Refusal> {
        let store = config::api_keys(self.env).map_err(Refusal::Edge)?;
        let kv = self.gw.config.api_keys.as_ref().and_then(|k| k.kv.as_ref());
        match (store.authenticate(key, now_ms), kv) {
            // Not in API_KEYS: the KV key store, when configured.
            (Err(AuthRejection::UnknownApiKey), Some(kv)) => {
                Ok(crate::keystore::authenticate(self.env, kv, key)
                    .await
                    .map_err(Refusal::Edge)??)
            }
            (result, _) => Ok(result?),
        }
    }

    fn token_cache(&self) -> Option<&RefCell<TokenCache>> {
        let cache = &self.gw.tokens;
        // Not even the token's digest is computed when the cache is off.
        cache
            .try_borrow()
            .is_ok_and(|c| c.is_enabled())
            .then_some(cache)
    }

    fn issuer_named(&self, name: &str) -> Option<&Issuer> {
        route_issuer(self.gw, self.route, name)
    }

    fn key_epoch(&self, issuer: &Issuer, now_ms: u64) -> Option<u64> {
        key_epoch(self.gw, issuer, now_ms)
    }

    fn note_token_cache(&self, used: TokenCacheUse) {
        self.cache_use.set(Some(used));
    }
}

/// The issuer called `name`, if `route` takes it.
fn route_issuer<'g>(gw: &'g Gateway, route: &Route, name: &str) -> Option<&'g Issuer> {
    gw.config.route_issuers(route).find(|i| i.name == name)
}

/// The epoch of `issuer`'s key set in this isolate, if fresh at `now_ms`.
fn key_epoch(gw: &Gateway, issuer: &Issuer, now_ms: u64) -> Option<u64> {
    // An issuer whose keys no request has looked up yet has no cache
    // here: nothing verified with it can be remembered (or reused).
    let caches = gw.jwks.try_borrow().ok()?;
    caches.get(&issuer.name)?.key_epoch(now_ms)
}

/// The caller of `route` when it is known without waiting, for the fast
/// path (`crate::fast`): no identity on a public route, an API key found in
/// the `API_KEYS` secret, or a bearer token the isolate's cache of verified
/// tokens may reuse (a hit, as the full path would note it); or, for a
/// bearer token not remembered whose issuer's keys this isolate holds fresh
/// (what [`crate::jwks::key_for`] would answer with no I/O), the token with
/// every check but its signature passed
/// ([`AtOnceStep::NeedsSignature`]). `None` for everything the full
/// pipeline must do (keys to fetch or refresh, the KV key store,
/// refusals). The rules are the policy's (`authenticate_or_pend`), fed the
/// same issuers, keys and key epochs as [`EdgeKeys`] feeds the pipeline.
/// `now`: the plan's one clock reading (the clock stands still while a
/// Worker runs).
pub fn at_once(
    env: &Env,
    gw: &Gateway,
    route: &Route,
    headers: &[(String, String)],
    now: u64,
) -> Option<AtOnceStep> {
    let remembered = Remembered {
        cache: &gw.tokens,
        key_epoch: |name: &str| key_epoch(gw, route_issuer(gw, route, name)?, now),
    };
    tidegate_policy::auth::authenticate_or_pend(
        route.auth.requirement,
        &route.auth.scopes,
        credential_headers(gw, headers),
        |key| {
            let store = config::api_keys(env).ok()?;
            let kv = gw.config.api_keys.as_ref().and_then(|k| k.kv.as_ref());
            match store.authenticate(key, now) {
                // Not in API_KEYS: the KV key store must be asked.
                Err(AuthRejection::UnknownApiKey) if kv.is_some() => None,
                result => Some(result),
            }
        },
        Some(remembered),
        Some(&HeldKeys { gw, route }),
        now,
    )
}

/// The keys this isolate holds, for [`at_once`]: what [`EdgeKeys`] would
/// give the pipeline with no fetch, refresh or wait.
struct HeldKeys<'a> {
    gw: &'a Gateway,
    route: &'a Route,
}

impl KeysAtOnce for HeldKeys<'_> {
    fn issuer(&self, jwt: &UnverifiedJwt<'_>) -> Result<&Issuer, AuthRejection> {
        self.gw.config.issuer_for_token(self.route, jwt)
    }

    fn signing_key_at_once(
        &self,
        issuer: &Issuer,
        kid: Option<&str>,
        alg: Algorithm,
        now_ms: u64,
    ) -> Option<Jwk> {
        // An issuer no request has looked up yet has no cache: the full
        // path creates it and fetches.
        let caches = self.gw.jwks.try_borrow().ok()?;
        caches
            .get(&issuer.name)?
            .key_at_once(kid, alg, now_ms)
            .cloned()
    }

    fn key_epoch(&self, issuer: &Issuer, now_ms: u64) -> Option<u64> {
        key_epoch(self.gw, issuer, now_ms)
    }
}

/// The credentials a request carries, as the pipeline reads them.
fn credential_headers<'h>(gw: &Gateway, headers: &'h [(String, String)]) -> CredentialHeaders<'h> {
    CredentialHeaders {
        authorization: first_header(headers, "authorization"),
        // workerd joins repeated field lines with ", ": the pipeline sees it.
        authorization_repeated: false,
        api_key: first_header(headers, gw.config.api_key_header()),
    }
}

async fn verify(
    env: &Env,
    ctx: &Context,
    gw: &Rc<Gateway>,
    route: &Route,
    headers: &[(String, String)],
    cache_use: &Cell<Option<TokenCacheUse>>,
) -> Result<Option<Identity>, Refusal> {
    let credentials = credential_headers(gw, headers);
    let keys = EdgeKeys {
        env,
        ctx,
        gw,
        route,
        cache_use,
    };
    tidegate_policy::auth::authenticate(
        route.auth.requirement,
        &route.auth.scopes,
        credentials,
        &keys,
        &WebCrypto,
        now_ms(),
    )
    .await
}
