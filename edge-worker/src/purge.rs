//! Purging cached responses, this data center only (`POST purge`).
//!
//! The Cache API cannot list its keys, so for purging by prefix each route
//! keeps an index of the keys it stored: `INDEX_SHARDS` Cache API entries per
//! route, each a JSON list of key URLs (newest last, at most
//! `MAX_SHARD_KEYS`), the key's shard updated after each store. Sharding keeps
//! the per-store cost small (one short list read and written, not the whole
//! route's) at the price of `INDEX_SHARDS` reads per route on a purge, which
//! is rare. Concurrent stores may lose an index update; the entry it named
//! then simply expires on its own (best effort, like the per-data-center
//! purge itself).

use std::time::Duration;

use futures_util::future::join_all;

use tidegate_policy::cache::freshness::storage_lifetime;
use tidegate_policy::cache::key::is_variant_of;
use tidegate_policy::cache::{cache_key, CacheScope, RequestParts};
use tidegate_policy::route::{Method, RouteMatch};
use url::Url;
use worker::{Cache, Response};

use crate::config::Gateway;
use crate::response::HeaderList;

/// Base of the index entries' URLs; `.invalid` never resolves, so no real
/// request can ever share these keys.
const INDEX_BASE: &str = "https://cache-index.tidegate.invalid/";
/// Index entries per route.
const INDEX_SHARDS: u64 = 64;
/// Most keys one shard remembers (a route: `INDEX_SHARDS` times this).
const MAX_SHARD_KEYS: usize = 32;

/// The shard a key URL is indexed in (FNV-1a: cheap, stable across isolates).
fn shard_of(key: &str) -> u64 {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    hash % INDEX_SHARDS
}

fn index_url(route: &str, shard: u64) -> String {
    let name = percent_encoding::utf8_percent_encode(route, percent_encoding::NON_ALPHANUMERIC);
    format!("{INDEX_BASE}{name}/{shard}")
}

async fn index_read(route: &str, shard: u64) -> Vec<String> {
    let Ok(Some(resp)) = Cache::default().get(index_url(route, shard), false).await else {
        return Vec::new();
    };
    crate::body::json(resp).await.unwrap_or_default()
}

async fn index_write(route: &str, shard: u64, keys: &[String], lifetime: Duration) {
    let url = index_url(route, shard);
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
    let shard = shard_of(key);
    let mut keys = index_read(route, shard).await;
    keys.retain(|k| k != key);
    keys.push(key.to_owned());
    let excess = keys.len().saturating_sub(MAX_SHARD_KEYS);
    keys.drain(..excess);
    index_write(route, shard, &keys, lifetime).await;
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
        let shards = join_all((0..INDEX_SHARDS).map(|shard| index_read(&route.name, shard))).await;
        for (shard, keys) in (0..INDEX_SHARDS).zip(shards) {
            let (hit, kept): (Vec<String>, Vec<String>) =
                keys.into_iter().partition(|k| matches(k));
            if hit.is_empty() {
                continue;
            }
            for key in hit {
                if purge_key(&key).await {
                    purged.push(key);
                }
            }
            index_write(&route.name, shard, &kept, storage_lifetime(rule)).await;
        }
    }
    purged
}

/// Purges the entries of a GET of `url`: the key the policy computes for it
/// (with `headers` as the vary header values), plus every indexed variant
/// of the same URL (other vary values, other callers of a private route).
pub async fn purge_url(gw: &Gateway, url: &Url, headers: &HeaderList) -> Vec<String> {
    let mut purged = Vec::new();
    let mut resources = Vec::new();
    if let RouteMatch::Matched { index, .. } = gw.table.match_request(Method::Get, url.path()) {
        if let Some(rule) = gw.config.routes.get(index).and_then(|r| r.cache.as_ref()) {
            // Any identity gives the same readable part; only the hash differs.
            let parts = RequestParts::from_url("GET", url, headers, Some("purge"));
            if let Ok(key) = cache_key(rule, &parts) {
                let key_url = key.to_url();
                resources.push(key.resource_prefix());
                if rule.scope == CacheScope::Shared && purge_key(&key_url).await {
                    purged.push(key_url);
                }
            }
        }
    }
    let indexed = purge_indexed(gw, |k| resources.iter().any(|r| is_variant_of(k, r))).await;
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
