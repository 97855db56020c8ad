//! Purging cached responses: on request (`POST purge`) and after unsafe
//! requests (RFC 9111 §4.4 invalidation); in this data center through the
//! Cache API and, with `[purge]`, everywhere through Cloudflare's zone purge
//! API.
//!
//! The Cache API cannot list its keys, so each caching route keeps an index
//! of the keys it stored: `INDEX_SHARDS` Cache API entries per route, whose
//! contents the policy owns (`tidegate_policy::cache::{decode_shard,
//! with_key, encode_shard}`: one `expiry key` line per key, newest last, at
//! most `MAX_SHARD_KEYS`). A key is indexed in the shard of its *resource*
//! part (`resource_of`), so every variant of one URL (other vary values,
//! other callers of a private route) sits in one shard: invalidating a URL
//! reads one shard (of the route a GET of it matches), an admin purge by URL
//! one per caching route, and only a purge by prefix reads them all. A shard
//! lives as long as its longest-lived entry. Concurrent stores may lose an
//! index update; the entry it named then simply expires on its own (best
//! effort, like the per-data-center purge itself).
//!
//! An isolate gathers the keys it stores for one shard over a second and
//! writes them in one update (`PendingIndex`): at a few MISSes per second
//! per shard that removes most of the index's Cache API traffic. A purge
//! takes this isolate's pending keys along at once and looks at the index
//! again after `PURGE_SECOND_PASS_MS`, by when every key stored anywhere
//! before it has been written.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;
use tidegate_policy::cache::{
    cache_key, decode_shard, encode_shard, invalidates, invalidation_targets, is_variant_of,
    shard_max_age, shard_of, storage_lifetime, with_keys, CacheRule, CacheScope, IndexedKey,
    PendingIndex, RequestParts, INDEX_BATCH_WINDOW_MS, INDEX_SHARDS, PURGE_SECOND_PASS_MS,
};
use tidegate_policy::config::PurgeSettings;
use tidegate_policy::route::{Method, RouteMatch};
use url::Url;
use worker::{Cache, Context, Env, Response};

use crate::config::{self, Gateway};
use crate::flow::Flow;
use crate::log::{self, Level};
use crate::response::{header_list, HeaderList};

/// Base of the index entries' URLs; `.invalid` never resolves, so no real
/// request can ever share these keys.
const INDEX_BASE: &str = "https://cache-index.tidegate.invalid/";
/// How long a call to the zone purge API may take.
const GLOBAL_PURGE_TIMEOUT: Duration = Duration::from_secs(10);

thread_local! {
    /// This isolate's stored keys not yet written to their shards.
    static PENDING: RefCell<PendingIndex> = RefCell::new(PendingIndex::default());
}

fn index_url(route: &str, shard: u64) -> String {
    let name = percent_encoding::utf8_percent_encode(route, percent_encoding::NON_ALPHANUMERIC);
    format!("{INDEX_BASE}{name}/{shard}")
}

async fn index_read(route: &str, shard: u64) -> Vec<IndexedKey> {
    let Ok(Some(resp)) = Cache::default().get(index_url(route, shard), false).await else {
        return Vec::new();
    };
    let text = crate::body::text(resp).await.unwrap_or_default();
    decode_shard(&text)
}

/// Writes a shard; it lives at least `lifetime`, and as long as its
/// longest-lived entry.
async fn index_write(route: &str, shard: u64, entries: &[IndexedKey], lifetime: Duration) {
    let url = index_url(route, shard);
    if entries.is_empty() {
        let _ = Cache::default().delete(url, false).await;
        return;
    }
    let max_age = shard_max_age(entries, crate::flow::now_ms(), lifetime.as_secs());
    let headers = [
        ("content-type", "text/plain"),
        ("cache-control", &format!("max-age={max_age}")),
    ];
    let Some(entry) = crate::response::text_response(&encode_shard(entries), &headers) else {
        return;
    };
    let _ = Cache::default().put(url, entry).await;
}

/// A shard as stored, with this isolate's keys for it that wait to be
/// written (what a purge must see).
async fn index_read_with_pending(route: &str, shard: u64) -> Vec<IndexedKey> {
    let pending = PENDING.with(|p| p.borrow().pending(route, shard).to_vec());
    let stored = index_read(route, shard).await;
    with_keys(stored, pending, crate::flow::now_ms())
}

/// Records that `key` was stored for `route`, its entry living `lifetime`.
/// The store that opens its shard's batch writes the batch when the window
/// ends (run it in `ctx.wait_until`: it keeps the request that long);
/// the others return at once.
pub async fn index_add(route: &str, key: &str, lifetime: Duration) {
    let now = crate::flow::now_ms();
    let expiry = now.saturating_add(u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX));
    let Some(shard) = PENDING.with(|p| p.borrow_mut().add(route, key, expiry, now)) else {
        return;
    };
    worker::Delay::from(Duration::from_millis(INDEX_BATCH_WINDOW_MS)).await;
    let batch = PENDING.with(|p| p.borrow_mut().take(route, shard));
    if batch.is_empty() {
        return;
    }
    let stored = index_read(route, shard).await;
    let entries = with_keys(stored, batch, crate::flow::now_ms());
    index_write(route, shard, &entries, lifetime).await;
}

/// Deletes one key URL from this data center's cache; whether it was there.
async fn purge_key(key: &str) -> bool {
    matches!(
        Cache::default().delete(key, false).await,
        Ok(worker::CacheDeletionOutcome::Success)
    )
}

/// What a purge found and deleted.
#[derive(Debug, Default)]
pub struct Purged {
    /// Keys deleted from this data center's cache (they were stored here).
    pub deleted: Vec<String>,
    /// Every key URL the purge named, deleted here or not: what a global
    /// purge should drop elsewhere.
    pub named: Vec<String>,
}

impl Purged {
    fn note(&mut self, key: String, deleted: bool) {
        if deleted && !self.deleted.contains(&key) {
            self.deleted.push(key.clone());
        }
        if !self.named.contains(&key) {
            self.named.push(key);
        }
    }
}

/// Deletes the keys `matches` selects from one shard of `route`'s index.
async fn purge_shard(
    route: &str,
    rule: &CacheRule,
    shard: u64,
    entries: Vec<IndexedKey>,
    matches: &impl Fn(&str) -> bool,
    out: &mut Purged,
) {
    let (hit, kept): (Vec<IndexedKey>, Vec<IndexedKey>) =
        entries.into_iter().partition(|entry| matches(&entry.key));
    if hit.is_empty() {
        return;
    }
    for entry in hit {
        let deleted = purge_key(&entry.key).await;
        out.note(entry.key, deleted);
    }
    index_write(route, shard, &kept, storage_lifetime(rule)).await;
}

/// Which routes' indexes a purge by URL looks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Only the caching route a GET of the URL matches (invalidations: the
    /// only route that can have stored it under this config).
    MatchedRoute,
    /// Every caching route (the admin purge: entries stored under an earlier
    /// config too).
    AllRoutes,
}

/// Purges the entries of a GET of `url`: the key the policy computes for it
/// (with `headers` as the vary header values), plus every indexed variant
/// of the same URL (other vary values, other callers of a private route).
/// Reads one index shard per route in `reach`.
pub async fn purge_url(gw: &Gateway, url: &Url, headers: &HeaderList, reach: Reach) -> Purged {
    let mut out = Purged::default();
    // Any identity gives the same readable part; only the hash differs.
    let parts = RequestParts::from_url("GET", url, headers, Some("purge"));
    let matched = match gw.table.match_request(Method::Get, url.path()) {
        RouteMatch::Matched { index, .. } => Some(index),
        _ => None,
    };
    if let Some(rule) = matched
        .and_then(|index| gw.config.routes.get(index))
        .and_then(|r| r.cache.as_ref())
    {
        if let Ok(key) = cache_key(rule, &parts) {
            if rule.scope == CacheScope::Shared {
                let key_url = key.to_url();
                let deleted = purge_key(&key_url).await;
                out.note(key_url, deleted);
            }
        }
    }
    // Each route's rule keys the URL its own way (vary_query), so each
    // route's shard is the one of the resource under its rule.
    let mut shards = Vec::new();
    for (index, route) in gw.config.routes.iter().enumerate() {
        let Some(rule) = &route.cache else {
            continue;
        };
        if reach == Reach::MatchedRoute && matched != Some(index) {
            continue;
        }
        let Ok(key) = cache_key(rule, &parts) else {
            continue;
        };
        shards.push((route, rule, key.resource_prefix()));
    }
    let read = join_all(
        shards
            .iter()
            .map(|(route, _, resource)| index_read_with_pending(&route.name, shard_of(resource))),
    )
    .await;
    for ((route, rule, resource), entries) in shards.iter().zip(read) {
        let matches = |k: &str| is_variant_of(k, resource);
        purge_shard(
            &route.name,
            rule,
            shard_of(resource),
            entries,
            &matches,
            &mut out,
        )
        .await;
    }
    out
}

/// Purges every indexed entry whose path starts with `prefix` (reads every
/// shard of every caching route).
pub async fn purge_prefix(gw: &Gateway, prefix: &str) -> Purged {
    let mut out = Purged::default();
    let matches = |k: &str| Url::parse(k).is_ok_and(|u| u.path().starts_with(prefix));
    for route in &gw.config.routes {
        let Some(rule) = &route.cache else {
            continue;
        };
        let shards =
            join_all((0..INDEX_SHARDS).map(|shard| index_read_with_pending(&route.name, shard)))
                .await;
        for (shard, entries) in (0..INDEX_SHARDS).zip(shards) {
            purge_shard(&route.name, rule, shard, entries, &matches, &mut out).await;
        }
    }
    out
}

/// Why a global purge (Cloudflare's zone purge API) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobalPurgeError {
    /// The Worker secret holding the API token is missing or empty.
    MissingToken(String),
    /// The call could not be made (connection, TLS, timeout...).
    Unreachable(String),
    /// The API answered with a non-success status.
    Status(u16),
    /// The request body could not be written.
    Encode(String),
}

impl fmt::Display for GlobalPurgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingToken(name) => write!(f, "the Worker secret {name} is missing or empty"),
            Self::Unreachable(why) => write!(f, "zone purge API unreachable: {why}"),
            Self::Status(status) => write!(f, "zone purge API answered {status}"),
            Self::Encode(why) => write!(f, "zone purge request not encoded: {why}"),
        }
    }
}

impl std::error::Error for GlobalPurgeError {}

/// Asks Cloudflare's zone purge API to drop `files` in every data center:
/// `POST {api_base}/zones/{zone_id}/purge_cache` with `{"files": [...]}`, at
/// most [`PurgeSettings::MAX_FILES_PER_CALL`] per call. Returns how many
/// files were sent; stops at the first failing call.
pub async fn purge_globally(
    env: &Env,
    settings: &PurgeSettings,
    files: &[String],
) -> Result<usize, GlobalPurgeError> {
    if files.is_empty() {
        return Ok(0);
    }
    let token = config::string_binding(env, &settings.api_token_secret)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| GlobalPurgeError::MissingToken(settings.api_token_secret.clone()))?;
    let endpoint = Url::parse(&settings.purge_url())
        .map_err(|e| GlobalPurgeError::Unreachable(e.to_string()))?;
    let headers = vec![
        (
            "authorization".to_owned(),
            format!("Bearer {}", token.trim()),
        ),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    let mut sent = 0;
    for batch in files.chunks(PurgeSettings::MAX_FILES_PER_CALL) {
        let body = serde_json::to_string(&ZonePurgeBody { files: batch })
            .map_err(|e| GlobalPurgeError::Encode(e.to_string()))?;
        let resp = crate::proxy::send(
            "POST",
            &endpoint,
            &headers,
            Some(worker::wasm_bindgen::JsValue::from_str(&body)),
            GLOBAL_PURGE_TIMEOUT,
            false,
        )
        .await
        .map_err(|e| GlobalPurgeError::Unreachable(e.log_text()))?;
        let status = resp.status_code();
        if !(200..300).contains(&status) {
            return Err(GlobalPurgeError::Status(status));
        }
        sent += batch.len();
    }
    Ok(sent)
}

/// One JSON log line about a global purge (it runs after the request's own
/// line was written).
pub fn log_global(request_id: &str, files: usize, outcome: &Result<usize, GlobalPurgeError>) {
    log::event(
        Level::Info,
        &GlobalPurgeLine {
            error: outcome.as_ref().err().map(ToString::to_string),
            event: "global-purge",
            files,
            id: request_id,
        },
    );
}

/// The body of a zone purge API call: `{"files": [...]}`.
#[derive(Serialize)]
struct ZonePurgeBody<'a> {
    /// The URLs to drop (Cache API key URLs).
    files: &'a [String],
}

/// The log line of a global purge.
#[derive(Serialize)]
struct GlobalPurgeLine<'a> {
    /// Why it failed; `null` when every call succeeded.
    error: Option<String>,
    /// Always `global-purge`.
    event: &'static str,
    /// How many URLs it was asked to drop.
    files: usize,
    /// The id of the request that purged.
    id: &'a str,
}

/// A request the origin answered, as invalidation needs it.
pub struct Answered<'a> {
    /// The request method.
    pub method: &'a str,
    /// The client's URL (the gateway's host, not the origin's).
    pub url: &'a Url,
    /// The client's request headers (for the vary values of the keys).
    pub headers: &'a HeaderList,
    /// The answer the client gets.
    pub resp: &'a Response,
}

/// RFC 9111 §4.4: after the origin answered an unsafe request with `resp`,
/// drops (off the response path, in `ctx.wait_until`) every stored variant
/// of the invalidated URLs, here and, with `[purge]`, everywhere. Notes the
/// number of invalidated URLs in the log line.
pub fn after_unsafe(
    ctx: &Context,
    env: &Env,
    gw: &Rc<Gateway>,
    answered: &Answered<'_>,
    flow: &mut Flow,
) {
    let Answered {
        method,
        url,
        headers,
        resp,
    } = answered;
    if !invalidates(method, resp.status_code()) {
        return;
    }
    let targets = invalidation_targets(
        method,
        resp.status_code(),
        url,
        &header_list(resp.headers()),
    );
    if targets.is_empty() {
        return;
    }
    flow.log.invalidated = Some(targets.len());
    let (gw, env, headers) = (Rc::clone(gw), env.clone(), (*headers).clone());
    let request_id = flow.log.id.clone();
    ctx.wait_until(async move {
        let purge_all = || async {
            let mut named = Vec::new();
            for target in &targets {
                let purged = purge_url(&gw, target, &headers, Reach::MatchedRoute).await;
                for key in purged.named {
                    if !named.contains(&key) {
                        named.push(key);
                    }
                }
            }
            named
        };
        let named = purge_all().await;
        global_purge(&env, &gw, &request_id, &named).await;
        let late = second_pass(&named, purge_all).await;
        global_purge(&env, &gw, &request_id, &late).await;
    });
}

/// With `[purge]`, asks every data center to drop `named` too, and logs it.
pub async fn global_purge(env: &Env, gw: &Gateway, request_id: &str, named: &[String]) {
    if named.is_empty() {
        return;
    }
    if let Some(settings) = &gw.config.purge {
        let outcome = purge_globally(env, settings, named).await;
        log_global(request_id, named.len(), &outcome);
    }
}

/// Runs a purge again once every isolate has written the keys it stored
/// before the first pass (their batches were still open then); returns the
/// keys it named that `first` did not. Run it in `ctx.wait_until`.
pub async fn second_pass<F, Fut>(first: &[String], pass: F) -> Vec<String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    worker::Delay::from(Duration::from_millis(PURGE_SECOND_PASS_MS)).await;
    let mut late = pass().await;
    late.retain(|key| !first.contains(key));
    late
}
