//! Issuer signing keys: the policy's `JwksCache` protocol carried out with
//! real fetches.
//!
//! Each issuer has one `JwksCache` per isolate. A lookup says what to do:
//! `FetchThenRetry` → fetch the JWKS here and now, report it, look up again;
//! `FoundStale { refresh: true }` → use the key and refresh in
//! `ctx.wait_until`; `UnknownKid` / `Unavailable` → refuse, unless another
//! request of this isolate is fetching that issuer's keys right now, in which
//! case wait for it (up to the fetch timeout) and look up again, so a cold
//! isolate hit by many requests at once does not refuse all but one.
//!
//! Fetched documents are also kept in the Cache API under the `jwks_url`, so
//! a fresh isolate of this data center starts from them instead of calling
//! the identity provider; only the network is asked when the cached set lacks
//! the token's `kid`.

use std::rc::Rc;
use std::time::Duration;

use serde::Serialize;
use tidegate_policy::auth::{parse_jwks, Algorithm, AuthRejection, Jwk, JwkSet, KeyLookup};
use tidegate_policy::config::{Issuer, JwksSource};
use url::Url;
use worker::{Cache, Context, Delay, Response};

use crate::config::Gateway;
use crate::log::{self, Level};
use crate::proxy;
use crate::response::headers_from;

/// How long a JWKS fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a waiting request checks whether another one's fetch is done.
const WAIT_STEP: Duration = Duration::from_millis(10);
/// Header of the Cache API copy: when the set was fetched, ms since the epoch.
const FETCHED_AT_HEADER: &str = "x-tidegate-fetched-at";

/// What to do after a lookup.
enum Next {
    /// This request holds the fetch slot: fetch, then look up again.
    Fetch,
    /// Refuse with this, unless a fetch by another request is under way.
    RefuseUnlessFetching(AuthRejection),
}

/// The key to verify a token of `issuer` with `kid` and `alg`.
pub async fn key_for(
    gw: &Rc<Gateway>,
    issuer: &Issuer,
    kid: Option<&str>,
    alg: Algorithm,
    ctx: &Context,
) -> Result<Jwk, AuthRejection> {
    let mut fetched = false;
    let mut waited_ms: u64 = 0;
    loop {
        let now = crate::flow::now_ms();
        let next = {
            let mut caches = gw.jwks.borrow_mut();
            let cache = caches
                .entry(issuer.name.clone())
                .or_insert_with(|| issuer.new_jwks_cache());
            match cache.lookup(kid, alg, now) {
                KeyLookup::Found(jwk) => return Ok(jwk.clone()),
                KeyLookup::FoundStale { jwk, refresh } => {
                    let jwk = jwk.clone();
                    if refresh {
                        let (gw, issuer) = (gw.clone(), issuer.clone());
                        ctx.wait_until(async move { fetch_into_cache(&gw, &issuer, None).await });
                    }
                    return Ok(jwk);
                }
                // The cooldown can end while another request's fetch is
                // still in flight (a slow identity provider): wait for that
                // one rather than start a second.
                KeyLookup::FetchThenRetry if !fetched && !is_fetching(gw, &issuer.name) => {
                    Next::Fetch
                }
                KeyLookup::FetchThenRetry | KeyLookup::UnknownKid => {
                    Next::RefuseUnlessFetching(AuthRejection::UnknownKey)
                }
                KeyLookup::Unavailable => {
                    Next::RefuseUnlessFetching(AuthRejection::KeysUnavailable)
                }
            }
        };
        match next {
            Next::Fetch => {
                fetched = true;
                fetch_into_cache(gw, issuer, kid).await;
            }
            Next::RefuseUnlessFetching(rejection) => {
                let limit = u64::try_from(FETCH_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
                if !is_fetching(gw, &issuer.name) || waited_ms >= limit {
                    return Err(rejection);
                }
                let before = crate::flow::now_ms();
                Delay::from(WAIT_STEP).await;
                waited_ms =
                    waited_ms.saturating_add(crate::flow::now_ms().saturating_sub(before).max(1));
            }
        }
    }
}

/// Whether another request is fetching this issuer's keys (a fetch older
/// than the timeout is over, whatever became of it).
fn is_fetching(gw: &Gateway, issuer: &str) -> bool {
    let started = gw.jwks_fetching.borrow().get(issuer).copied();
    started.is_some_and(|at| {
        crate::flow::now_ms().saturating_sub(at)
            < u64::try_from(FETCH_TIMEOUT.as_millis()).unwrap_or(0)
    })
}

/// Clears the "fetching" mark however the fetch ends (even if the request
/// is cancelled mid-way).
struct FetchingMark<'a> {
    gw: &'a Gateway,
    issuer: &'a str,
}

impl Drop for FetchingMark<'_> {
    fn drop(&mut self) {
        if let Ok(mut fetching) = self.gw.jwks_fetching.try_borrow_mut() {
            fetching.remove(self.issuer);
        }
    }
}

/// Fetches the issuer's JWKS and reports the outcome to its cache. `kid`
/// is the key the triggering token names: a Cache API copy is only used when
/// it holds that key (or the token names none).
async fn fetch_into_cache(gw: &Rc<Gateway>, issuer: &Issuer, kid: Option<&str>) {
    let JwksSource::Url(url) = &issuer.jwks else {
        return; // pinned sets never ask for a fetch
    };
    gw.jwks_fetching
        .borrow_mut()
        .insert(issuer.name.clone(), crate::flow::now_ms());
    let mark = FetchingMark {
        gw,
        issuer: &issuer.name,
    };
    let cold = gw
        .jwks
        .borrow()
        .get(&issuer.name)
        .is_none_or(|c| c.keys().is_none());
    if cold {
        if let Some((keys, fetched_at)) = from_cache_api(url, issuer, kid).await {
            if let Some(cache) = gw.jwks.borrow_mut().get_mut(&issuer.name) {
                cache.on_fetched(keys, fetched_at);
            }
            return;
        }
    }
    let result = fetch(url).await;
    let now = crate::flow::now_ms();
    let to_store = {
        let mut caches = gw.jwks.borrow_mut();
        let cache = caches.get_mut(&issuer.name);
        match (result, cache) {
            (Ok((keys, body)), Some(cache)) => {
                cache.on_fetched(keys, now);
                Some(body)
            }
            (Err(reason), Some(cache)) => {
                cache.on_fetch_failed(now);
                log::event(
                    Level::Warn,
                    &JwksFetchFailed {
                        event: "jwks_fetch_failed",
                        issuer: &issuer.name,
                        reason: &reason,
                    },
                );
                None
            }
            (_, None) => None,
        }
    };
    // Waiting requests may go on now; the copy for other isolates follows.
    drop(mark);
    if let Some(body) = to_store {
        let policy = &issuer.jwks_cache;
        let lifetime = policy.ttl.saturating_add(policy.max_stale);
        store_in_cache_api(url, body, now, lifetime).await;
    }
}

/// The warning logged when fetching an issuer's JWKS failed.
#[derive(Serialize)]
struct JwksFetchFailed<'a> {
    /// Always `jwks_fetch_failed`.
    event: &'static str,
    /// The issuer's configured name.
    issuer: &'a str,
    /// What went wrong: the fetch, a status other than 200, the body or
    /// the document.
    reason: &'a str,
}

/// Fetches and parses a JWKS document: the usable keys and the raw body.
async fn fetch(url: &Url) -> Result<(JwkSet, Vec<u8>), String> {
    let headers = vec![("accept".to_owned(), "application/json".to_owned())];
    let resp = proxy::send("GET", url, &headers, None, FETCH_TIMEOUT, true)
        .await
        .map_err(|e| e.log_text())?;
    if resp.status_code() != 200 {
        return Err(format!("status {}", resp.status_code()));
    }
    let body = crate::body::bytes(resp).await.map_err(|e| e.to_string())?;
    let parsed = parse_jwks(&body).map_err(|e| e.to_string())?;
    Ok((parsed.keys, body))
}

/// The Cache API copy of the issuer's set, if it is still usable under the
/// issuer's policy and holds `kid`.
async fn from_cache_api(url: &Url, issuer: &Issuer, kid: Option<&str>) -> Option<(JwkSet, u64)> {
    let resp = Cache::default().get(url.as_str(), false).await.ok()??;
    let fetched_at: u64 = resp.headers().get(FETCHED_AT_HEADER).ok()??.parse().ok()?;
    let policy = &issuer.jwks_cache;
    let usable_ms = policy.ttl.saturating_add(policy.max_stale).as_millis();
    let age = crate::flow::now_ms().saturating_sub(fetched_at);
    if u128::from(age) >= usable_ms {
        return None;
    }
    let body = crate::body::bytes(resp).await.ok()?;
    let keys = parse_jwks(&body).ok()?.keys;
    let has_kid = kid.is_none_or(|kid| {
        keys.keys
            .iter()
            .any(|k| k.common.key_id.as_deref() == Some(kid))
    });
    has_kid.then_some((keys, fetched_at))
}

/// Keeps a fetched document in the Cache API for other isolates.
async fn store_in_cache_api(url: &Url, body: Vec<u8>, fetched_at: u64, lifetime: Duration) {
    let headers: Vec<(String, String)> = vec![
        ("content-type".into(), "application/json".into()),
        (
            "cache-control".into(),
            format!("max-age={}", lifetime.as_secs()),
        ),
        (FETCHED_AT_HEADER.into(), fetched_at.to_string()),
    ];
    let resp: Response = Response::builder()
        .with_headers(headers_from(&headers))
        .fixed(body);
    let _ = Cache::default().put(url.as_str(), resp).await;
}
