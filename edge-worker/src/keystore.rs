//! The Workers KV key store (`[api_keys] store = "kv"`): the KV reads and
//! writes and this isolate's cache. The protocol (KV names, record format,
//! cache decisions, admin requests) is `tidegate_policy::auth`'s.
//!
//! Per request: hash the presented key, ask the isolate's [`ApiKeyCache`];
//! on a miss, one KV `get` of `key/<hash>`, remembered (found or unknown).
//!
//! Admin endpoints under the admin prefix (behind the admin key):
//! - `POST keys`: issue a key (`{"consumer", "scopes", "tier", "limits",
//!   "not_before", "expires_at" | "expires_in"}`); 201 with the key, shown
//!   only in this answer
//! - `GET keys?consumer=NAME[&limit=N][&cursor=C]`: one page of a consumer's
//!   keys (KV `list` with its cursor)
//! - `GET keys/{id}`: one key's summary
//! - `POST keys/{id}/rotate` (`{"overlap": "1h", "expires_in": …}`, all
//!   optional): a new key for the same grant; the old one ends after the overlap
//! - `POST keys/{id}/revoke`: the key stops working

use std::cell::RefCell;

use serde::Serialize;
use tidegate_policy::auth::{
    kv_consumer_entry, kv_consumer_prefix, kv_id_name, kv_record_name, parse_hash_hex,
    parse_issue_request, parse_key_id, parse_list_limit, parse_rotate_request, presented_key_hash,
    ApiKeyCache, AuthRejection, Identity, KeyAdminError, KeyCacheLookup, KeyListPage, KeySummary,
    KvKeyRecord, KvKeyStoreSettings, RevokedKey, MAX_CONSUMER_BYTES,
};
use tidegate_policy::config::GatewayConfig;
use tidegate_policy::problem::Problem;
use worker::kv::KvStore;
use worker::{Env, Headers, Method, Request, Response};

use crate::error::EdgeError;
use crate::flow::{now_ms, Flow};

/// Largest admin request body read, in bytes.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// Seconds KV may take to show a write in other locations (Cloudflare's
/// documented propagation, also its default edge `cacheTtl`).
const KV_PROPAGATION_SECS: u64 = 60;

thread_local! {
    static CACHE: RefCell<ApiKeyCache> = RefCell::new(ApiKeyCache::new());
}

fn store(env: &Env, settings: &KvKeyStoreSettings) -> Result<KvStore, EdgeError> {
    env.kv(&settings.binding).map_err(|_| {
        EdgeError::InvalidConfig(format!(
            "api_keys.kv_binding: no KV namespace is bound as `{0}`; add \
             [[kv_namespaces]] binding = \"{0}\" to wrangler.toml",
            settings.binding
        ))
    })
}

fn kv_error(what: &str, e: impl std::fmt::Display) -> EdgeError {
    EdgeError::KeyStore(format!("{what}: {e}"))
}

/// Authenticates `presented` against the KV key store at `now`: the
/// caller, or why not (`Ok(Err(..))`), or a KV failure.
pub async fn authenticate(
    env: &Env,
    settings: &KvKeyStoreSettings,
    presented: &str,
) -> Result<Result<Identity, AuthRejection>, EdgeError> {
    let hash = match presented_key_hash(presented) {
        Ok(hash) => hash,
        Err(rejection) => return Ok(Err(rejection)),
    };
    let now = now_ms();
    let cached = CACHE.with(|cache| match cache.borrow().lookup(&hash, now, settings) {
        KeyCacheLookup::Found(record) => Some(record.identity_at(now)),
        KeyCacheLookup::Unknown => Some(Err(AuthRejection::UnknownApiKey)),
        KeyCacheLookup::Miss => None,
    });
    if let Some(result) = cached {
        return Ok(result);
    }
    let kv = store(env, settings)?;
    let text = kv
        .get(&kv_record_name(&hash))
        .text()
        .await
        .map_err(|e| kv_error("KV get", e))?;
    let record = match text.as_deref().map(KvKeyRecord::decode) {
        None => None,
        Some(Ok(record)) => Some(record.to_api_key_record(hash)),
        Some(Err(e)) => {
            // A broken record locks its key out; say which, never the hash in full.
            let prefix: String = kv_record_name(&hash).chars().take(12).collect();
            worker::console_warn!("key store: {prefix}…: {e}");
            None
        }
    };
    let now = now_ms();
    let result = record
        .as_ref()
        .map_or(Err(AuthRejection::UnknownApiKey), |r| r.identity_at(now));
    CACHE.with(|cache| cache.borrow_mut().insert(hash, record, now, settings));
    Ok(result)
}

/// Answers `rest` (`keys` or `keys/…`) of the admin endpoints.
pub async fn admin(
    mut req: Request,
    rest: &str,
    env: &Env,
    config: &GatewayConfig,
    flow: &mut Flow,
) -> Result<Response, Problem> {
    let Some(settings) = config.api_keys.as_ref().and_then(|k| k.kv.as_ref()) else {
        return Err(
            Problem::new(404, "key-store-not-configured", "No key store").with_detail(
                "Key management needs a KV key store: set `store = \"kv\"` in [api_keys].",
            ),
        );
    };
    let method = req.method();
    let path: Vec<&str> = rest.split('/').collect();
    let result = match (path.as_slice(), method) {
        (["keys"], Method::Post) => {
            let body = body(&mut req).await?;
            issue(env, config, settings, &body).await
        }
        (["keys"], Method::Get) => {
            let url = req
                .url()
                .map_err(|e| flow.fail(EdgeError::Runtime(e.to_string())))?;
            list(env, settings, &url).await
        }
        (["keys", id], Method::Get) => show(env, settings, id).await,
        (["keys", id, "rotate"], Method::Post) => {
            let body = body(&mut req).await?;
            rotate(env, settings, id, &body).await
        }
        (["keys", id, "revoke"], Method::Post) => revoke(env, settings, id).await,
        (["keys"], _) => return Err(not_allowed(flow, "GET, POST")),
        (["keys", _], _) => return Err(not_allowed(flow, "GET")),
        (["keys", _, "rotate" | "revoke"], _) => return Err(not_allowed(flow, "POST")),
        _ => {
            return Err(Problem::new(404, "route-not-found", "No route matches")
                .with_detail("No configured route matches this path."))
        }
    };
    result.map_err(|e| match e {
        Failure::Request(e) => e.to_problem(),
        Failure::Edge(e) => flow.fail(e),
    })
}

fn not_allowed(flow: &mut Flow, allow: &str) -> Problem {
    flow.extra.push(("allow".into(), allow.into()));
    Problem::new(405, "method-not-allowed", "Method not allowed")
        .with_detail(format!("This path accepts only: {allow}."))
}

/// Why an admin key operation failed.
enum Failure {
    /// The request was wrong (400, 404, 409).
    Request(KeyAdminError),
    /// KV or the runtime failed.
    Edge(EdgeError),
}

impl From<KeyAdminError> for Failure {
    fn from(e: KeyAdminError) -> Self {
        Self::Request(e)
    }
}

impl From<EdgeError> for Failure {
    fn from(e: EdgeError) -> Self {
        Self::Edge(e)
    }
}

async fn body(req: &mut Request) -> Result<Vec<u8>, Problem> {
    let bytes = req.bytes().await.map_err(|_| {
        Problem::new(400, "invalid-key-request", "Invalid key request")
            .with_detail("The request body could not be read.")
    })?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(
            Problem::new(413, "body-too-large", "Request body too large")
                .with_detail(format!("Key requests are at most {MAX_BODY_BYTES} bytes.")),
        );
    }
    Ok(bytes)
}

/// `status` with a JSON body that must never be stored by a cache.
fn answer(status: u16, value: &impl Serialize) -> Response {
    let headers = Headers::new();
    let _ = headers.set("content-type", "application/json");
    let _ = headers.set("cache-control", "no-store");
    let body = serde_json::to_vec(value).unwrap_or_default();
    Response::builder()
        .with_status(status)
        .with_headers(headers)
        .fixed(body)
}

/// `N` bytes from the runtime's CSPRNG; never a predictable fallback.
fn random<const N: usize>() -> Result<[u8; N], EdgeError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| EdgeError::Runtime(format!("no random bytes for a new key: {e}")))?;
    Ok(bytes)
}

/// Writes a record and its consumer index entry.
async fn put_record(kv: &KvStore, hash: &[u8; 32], record: &KvKeyRecord) -> Result<(), EdgeError> {
    kv.put(&kv_record_name(hash), record.encode())
        .map_err(|e| kv_error("KV put", e))?
        .execute()
        .await
        .map_err(|e| kv_error("KV put", e))?;
    kv.put(&kv_consumer_entry(&record.consumer, &record.id), "")
        .map_err(|e| kv_error("KV put", e))?
        .metadata(record.summary(hash))
        .map_err(|e| kv_error("KV metadata", e))?
        .execute()
        .await
        .map_err(|e| kv_error("KV put", e))
}

/// Stores a newly issued key: record, id → hash, index.
async fn put_new(kv: &KvStore, hash: &[u8; 32], record: &KvKeyRecord) -> Result<(), EdgeError> {
    put_record(kv, hash, record).await?;
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    kv.put(&kv_id_name(&record.id), hex)
        .map_err(|e| kv_error("KV put", e))?
        .execute()
        .await
        .map_err(|e| kv_error("KV put", e))
}

/// The record with id `id`, and its key's hash.
async fn find(kv: &KvStore, id: &str) -> Result<([u8; 32], KvKeyRecord), Failure> {
    let id = parse_key_id(id)?;
    let not_found = || Failure::Request(KeyAdminError::NotFound(id.to_owned()));
    let hex = kv
        .get(&kv_id_name(id))
        .text()
        .await
        .map_err(|e| kv_error("KV get", e))?
        .ok_or_else(not_found)?;
    let hash = parse_hash_hex(&hex)
        .ok_or_else(|| kv_error("KV value", format!("id/{id} is not a SHA-256 hex digest")))?;
    let text = kv
        .get(&kv_record_name(&hash))
        .text()
        .await
        .map_err(|e| kv_error("KV get", e))?
        .ok_or_else(not_found)?;
    let record = KvKeyRecord::decode(&text).map_err(|e| kv_error("KV record", e))?;
    Ok((hash, record))
}

fn forget(hash: &[u8; 32]) {
    CACHE.with(|cache| cache.borrow_mut().forget(hash));
}

async fn issue(
    env: &Env,
    config: &GatewayConfig,
    settings: &KvKeyStoreSettings,
    body: &[u8],
) -> Result<Response, Failure> {
    let now = now_ms();
    let grant = parse_issue_request(body, now, |tier| {
        config.tiers.is_empty() || config.tiers.contains_key(tier)
    })?;
    let kv = store(env, settings)?;
    let issued = grant.issue(&random::<32>()?, &random::<10>()?, now);
    put_new(&kv, &issued.hash, &issued.record).await?;
    forget(&issued.hash);
    Ok(answer(201, &issued))
}

async fn rotate(
    env: &Env,
    settings: &KvKeyStoreSettings,
    id: &str,
    body: &[u8],
) -> Result<Response, Failure> {
    let now = now_ms();
    let request = parse_rotate_request(body, now, settings.rotation_overlap)?;
    let kv = store(env, settings)?;
    let (old_hash, old) = find(&kv, id).await?;
    let (issued, retired) =
        old.rotate(&old_hash, &request, &random::<32>()?, &random::<10>()?, now)?;
    put_new(&kv, &issued.hash, &issued.record).await?;
    put_record(&kv, &old_hash, &retired).await?;
    forget(&old_hash);
    forget(&issued.hash);
    Ok(answer(201, &issued))
}

async fn revoke(env: &Env, settings: &KvKeyStoreSettings, id: &str) -> Result<Response, Failure> {
    let now = now_ms();
    let kv = store(env, settings)?;
    let (hash, record) = find(&kv, id).await?;
    let revoked = record.revoked(now);
    put_record(&kv, &hash, &revoked).await?;
    forget(&hash);
    Ok(answer(
        200,
        &RevokedKey {
            summary: revoked.summary(&hash).at(now),
            effective_within_seconds: settings
                .cache_ttl
                .as_secs()
                .saturating_add(KV_PROPAGATION_SECS),
        },
    ))
}

async fn show(env: &Env, settings: &KvKeyStoreSettings, id: &str) -> Result<Response, Failure> {
    let kv = store(env, settings)?;
    let (hash, record) = find(&kv, id).await?;
    #[derive(Serialize)]
    struct Shown {
        #[serde(flatten)]
        summary: KeySummary,
        scopes: Vec<String>,
        limits: std::collections::BTreeMap<String, u64>,
    }
    Ok(answer(
        200,
        &Shown {
            summary: record.summary(&hash).at(now_ms()),
            scopes: record.scopes,
            limits: record.limits,
        },
    ))
}

async fn list(
    env: &Env,
    settings: &KvKeyStoreSettings,
    url: &url::Url,
) -> Result<Response, Failure> {
    let mut consumer = None;
    let mut limit = None;
    let mut cursor = None;
    for (name, value) in url.query_pairs() {
        match name.as_ref() {
            "consumer" => consumer = Some(value.into_owned()),
            "limit" => limit = Some(value.into_owned()),
            "cursor" => cursor = Some(value.into_owned()),
            _ => {}
        }
    }
    let consumer = consumer
        .filter(|c| !c.is_empty() && c.len() <= MAX_CONSUMER_BYTES)
        .ok_or(KeyAdminError::Missing("consumer"))?;
    let limit = parse_list_limit(limit.as_deref())?;
    let kv = store(env, settings)?;
    let mut listing = kv.list().prefix(kv_consumer_prefix(&consumer)).limit(limit);
    if let Some(cursor) = cursor.filter(|c| !c.is_empty()) {
        listing = listing.cursor(cursor);
    }
    let page = listing
        .execute()
        .await
        .map_err(|e| kv_error("KV list", e))?;
    let now = now_ms();
    let keys = page
        .keys
        .into_iter()
        .filter_map(|k| serde_json::from_value::<KeySummary>(k.metadata?).ok())
        .map(|s| s.at(now))
        .collect();
    Ok(answer(
        200,
        &KeyListPage {
            consumer,
            keys,
            cursor: page.cursor.filter(|c| !c.is_empty() && !page.list_complete),
            list_complete: page.list_complete,
        },
    ))
}
