//! Issuer signing keys for the control API: the policy's `JwksCache`
//! protocol (the same one the edge drives) carried out with real fetches.
//!
//! One cache per issuer per container, kept across invocations. A lookup
//! says what to do: `FetchThenRetry` → fetch the `jwks_url` now, report it,
//! look up again (once); `FoundStale { refresh: true }` → fetch, then verify
//! with the key in hand (a Lambda container runs one invocation at a time
//! and may be frozen right after answering, so the refresh is not left in
//! the background); `UnknownKid` → 401; `Unavailable` → 503. The cache's
//! fetch slot allows one fetch per `refetch_cooldown`, so tokens with random
//! `kid`s cannot make the Lambda hammer the identity provider.
//!
//! The HTTP client is the one the AWS SDK already links (hyper-util's client
//! over hyper-rustls, system roots), built on first use: no second HTTP or
//! TLS stack in the bootstrap.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lambda_http::http::{header, Request, StatusCode};
use tidegate_policy::auth::{
    parse_jwks, Algorithm, AuthRejection, Jwk, JwkSet, JwksCache, KeyLookup, MAX_JWKS_BYTES,
};
use tidegate_policy::config::{Issuer, JwksSource};

/// How long one JWKS fetch may take, connection included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

/// The HTTPS client the JWKS fetches and the edge feed ([`crate::live`]) use.
pub(crate) type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// The key caches of every issuer, and the client that fills them.
#[derive(Default)]
pub struct IssuerKeys {
    caches: Mutex<BTreeMap<String, JwksCache>>,
    client: OnceLock<Result<HttpsClient, String>>,
}

impl std::fmt::Debug for IssuerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKeys").finish_non_exhaustive()
    }
}

/// What a lookup asks of the caller.
enum Next {
    /// Fetch, then look up again.
    Fetch,
    /// Fetch, then verify with this (stale) key.
    Refresh(Box<Jwk>),
}

impl IssuerKeys {
    /// Empty caches; nothing is fetched or built yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The key to verify a token of `issuer` with header `kid` and `alg`.
    pub async fn key_for(
        &self,
        issuer: &Issuer,
        kid: Option<&str>,
        alg: Algorithm,
        now_ms: u64,
    ) -> Result<Jwk, AuthRejection> {
        let mut fetched = false;
        loop {
            let next = {
                let mut caches = self.caches.lock().unwrap_or_else(PoisonError::into_inner);
                let cache = caches
                    .entry(issuer.name.clone())
                    .or_insert_with(|| issuer.new_jwks_cache());
                match cache.lookup(kid, alg, now_ms) {
                    KeyLookup::Found(jwk)
                    | KeyLookup::FoundStale {
                        jwk,
                        refresh: false,
                    } => return Ok(jwk.clone()),
                    KeyLookup::FoundStale { jwk, refresh: true } => {
                        Next::Refresh(Box::new(jwk.clone()))
                    }
                    KeyLookup::FetchThenRetry if !fetched => Next::Fetch,
                    KeyLookup::FetchThenRetry | KeyLookup::UnknownKid => {
                        return Err(AuthRejection::UnknownKey)
                    }
                    KeyLookup::Unavailable => return Err(AuthRejection::KeysUnavailable),
                }
            };
            self.fetch_into_cache(issuer, now_ms).await;
            match next {
                Next::Fetch => fetched = true,
                Next::Refresh(jwk) => return Ok(*jwk),
            }
        }
    }

    /// Fetches the issuer's JWKS and reports the outcome to its cache.
    async fn fetch_into_cache(&self, issuer: &Issuer, now_ms: u64) {
        let JwksSource::Url(url) = &issuer.jwks else {
            return; // pinned sets never ask for a fetch
        };
        let result = self.fetch(url.as_str()).await;
        let mut caches = self.caches.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(cache) = caches.get_mut(&issuer.name) else {
            return;
        };
        match result {
            Ok(keys) => {
                tracing::info!(issuer = %issuer.name, keys = keys.keys.len(), "JWKS fetched");
                cache.on_fetched(keys, now_ms);
            }
            Err(reason) => {
                tracing::warn!(issuer = %issuer.name, url = %url, reason = %reason, "JWKS fetch failed");
                cache.on_fetch_failed(now_ms);
            }
        }
    }

    /// GETs and parses a JWKS document (at most [`MAX_JWKS_BYTES`]).
    async fn fetch(&self, url: &str) -> Result<JwkSet, String> {
        let client = self.client.get_or_init(build_client).as_ref()?;
        let request = Request::get(url)
            .header(header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let body = tokio::time::timeout(FETCH_TIMEOUT, async {
            let response = client.request(request).await.map_err(|e| e.to_string())?;
            if response.status() != StatusCode::OK {
                return Err(format!("status {}", response.status().as_u16()));
            }
            Limited::new(response.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|_| format!("no answer within {} s", FETCH_TIMEOUT.as_secs()))??;
        parse_jwks(&body)
            .map(|parsed| parsed.keys)
            .map_err(|e| e.to_string())
    }
}

/// An HTTPS (and, for localhost issuers and edges, HTTP) client trusting the system's
/// roots, as the AWS SDK does.
pub(crate) fn build_client() -> Result<HttpsClient, String> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("no TLS root certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}
