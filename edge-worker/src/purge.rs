//! Purging cached responses, this data center only (`POST purge`).
//!
//! The Cache API cannot list its keys, so for purging by prefix each route
//! keeps an index of the keys it stored: one Cache API entry per route
//! holding a JSON list of key URLs (newest last, at most `MAX_INDEX_KEYS`),
//! updated after each store. Concurrent stores may lose an index update; the
//! entry it named then simply expires on its own (best effort, like the
//! per-data-center purge itself).

use std::time::Duration;

use tidegate_policy::cache::freshness::storage_lifetime;
use tidegate_policy::cache::key::HASH_PARAM;
use tidegate_policy::cache::{cache_key, CacheScope, RequestParts};
use tidegate_policy::route::{Method, RouteMatch};
use url::Url;
use worker::{Cache, Response};

use crate::config::Gateway;
use crate::response::HeaderList;

/// Base of the index entries' URLs; `.invalid` never resolves, so no real
/// request can ever share these keys.
const INDEX_BASE: &str = "https://cache-index.tidegate.invalid/";
/// Most keys one route's index remembers.
const MAX_INDEX_KEYS: usize = 1000;

fn index_url(route: &str) -> String {
    let name = percent_encoding::utf8_percent_encode(route, percent_encoding::NON_ALPHANUMERIC);
    format!("{INDEX_BASE}{name}")
}

async fn index_read(route: &str) -> Vec<String> {
    let Ok(Some(mut resp)) = Cache::default().get(index_url(route), false).await else {
        return Vec::new();
    };
    resp.json().await.unwrap_or_default()
}

async fn index_write(route: &str, keys: &[String], lifetime: Duration) {
    let url = index_url(route);
    if keys.is_empty() {
        let _ = Cache::default().delete(url, false).await;
        return;
    }
    let body = serde_json::to_vec(keys).unwrap_or_default();
    let headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        (
            "cache-control".to_owned(),
            format!("max-age={}", lifetime.as_secs().max(1)),
        ),
    ];
    let entry = Response::builder()
        .with_headers(crate::response::headers_from(&headers))
        .fixed(body);
    let _ = Cache::default().put(url, entry).await;
}

/// Records that `key` was stored for `route`.
pub async fn index_add(route: &str, key: &str, lifetime: Duration) {
    let mut keys = index_read(route).await;
    keys.retain(|k| k != key);
    keys.push(key.to_owned());
    let excess = keys.len().saturating_sub(MAX_INDEX_KEYS);
    keys.drain(..excess);
    index_write(route, &keys, lifetime).await;
}

/// Deletes one key URL from this data center's cache; whether it was there.
async fn purge_key(key: &str) -> bool {
    matches!(
        Cache::default().delete(key, false).await,
        Ok(worker::CacheDeletionOutcome::Success)
    )
}

/// Deletes from every caching route's index the keys `matches` selects;
/// returns those that were still cached.
async fn purge_indexed(gw: &Gateway, matches: impl Fn(&str) -> bool) -> Vec<String> {
    let mut purged = Vec::new();
    for route in &gw.config.routes {
        let Some(rule) = &route.cache else {
            continue;
        };
        let keys = index_read(&route.name).await;
        let (hit, kept): (Vec<String>, Vec<String>) = keys.into_iter().partition(|k| matches(k));
        if hit.is_empty() {
            continue;
        }
        for key in hit {
            if purge_key(&key).await {
                purged.push(key);
            }
        }
        index_write(&route.name, &kept, storage_lifetime(rule)).await;
    }
    purged
}

/// Purges the entries of a GET of `url`: the key the policy computes for it
/// (with `headers` as the vary header values), plus every indexed variant
/// of the same URL (other vary values, other callers of a private route).
pub async fn purge_url(gw: &Gateway, url: &Url, headers: &HeaderList) -> Vec<String> {
    let mut purged = Vec::new();
    let mut prefixes = Vec::new();
    if let RouteMatch::Matched { index, .. } = gw.table.match_request(Method::Get, url.path()) {
        if let Some(rule) = gw.config.routes.get(index).and_then(|r| r.cache.as_ref()) {
            // Any identity gives the same readable part; only the hash differs.
            let parts = RequestParts::from_url("GET", url, headers, Some("purge"));
            if let Ok(key) = cache_key(rule, &parts) {
                let key_url = key.to_url();
                if let Some((readable, _)) = key_url.rsplit_once(HASH_PARAM) {
                    prefixes.push(readable.to_owned());
                }
                if rule.scope == CacheScope::Shared && purge_key(&key_url).await {
                    purged.push(key_url);
                }
            }
        }
    }
    let indexed = purge_indexed(gw, |k| {
        prefixes.iter().any(|p| {
            k.strip_prefix(p.as_str())
                .is_some_and(|h| h.starts_with(HASH_PARAM))
        })
    })
    .await;
    for key in indexed {
        if !purged.contains(&key) {
            purged.push(key);
        }
    }
    purged
}

/// Purges every indexed entry whose path starts with `prefix`.
pub async fn purge_prefix(gw: &Gateway, prefix: &str) -> Vec<String> {
    purge_indexed(gw, |k| {
        Url::parse(k).is_ok_and(|u| u.path().starts_with(prefix))
    })
    .await
}
