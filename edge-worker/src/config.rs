//! The gateway configuration and the `API_KEYS` secret, parsed once per
//! isolate and kept with what is built from them (route table, JWKS caches).
//!
//! The text comes from the `TIDEGATE_CONFIG` variable, or (when it is absent
//! or blank) from the file embedded at build time (see `build.rs`). Each
//! request compares the text with the cached one, so a changed variable is
//! picked up without a redeploy of the code.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use tidegate_policy::auth::{ApiKeyStore, JwksCache};
use tidegate_policy::config::{self, GatewayConfig};
use tidegate_policy::route::RouteTable;
use worker::Env;

use crate::error::EdgeError;

/// The configuration embedded at build time.
const EMBEDDED: &str = include_str!(concat!(env!("OUT_DIR"), "/gateway.toml"));

/// Variable holding the gateway configuration (TOML or JSON).
pub const CONFIG_VAR: &str = "TIDEGATE_CONFIG";
/// Secret holding the API key records.
pub const API_KEYS_VAR: &str = "API_KEYS";
/// Secret holding the admin key.
pub const ADMIN_KEY_VAR: &str = "ADMIN_KEY";
/// Set to `true` to accept `TIDEGATE_CONFIG` and `API_KEYS` values over
/// Cloudflare's 5 KB cap. Only for local tests: Cloudflare refuses such
/// values on upload, so a deployed Worker never sees one.
pub const SKIP_SIZE_CHECK_VAR: &str = "TIDEGATE_SKIP_SIZE_CHECK";

/// Refuses a variable or secret over Cloudflare's 5 KB cap, as production
/// would have (Miniflare and `wrangler dev` accept it).
fn check_size(env: &Env, name: &str, text: &str) -> Result<(), String> {
    match tidegate_policy::config::check_binding_size(name, text) {
        Ok(()) => Ok(()),
        Err(_) if string_binding(env, SKIP_SIZE_CHECK_VAR).as_deref() == Some("true") => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// A valid configuration and the per-isolate state built from it.
pub struct Gateway {
    /// The validated configuration.
    pub config: GatewayConfig,
    /// Its routes, compiled for matching.
    pub table: RouteTable,
    /// One JWKS cache per issuer name, built on first use.
    pub jwks: RefCell<BTreeMap<String, JwksCache>>,
    /// Issuers whose JWKS is being fetched right now, with when it started,
    /// so concurrent requests wait for that fetch instead of failing.
    pub jwks_fetching: RefCell<BTreeMap<String, u64>>,
}

/// The configuration as loaded: usable, or the errors that make it unusable.
pub type Loaded = Result<Rc<Gateway>, Rc<String>>;

/// The API key store as loaded, or what is wrong with the secret.
type LoadedKeys = Result<Rc<ApiKeyStore>, Rc<String>>;

thread_local! {
    static CONFIG: RefCell<Option<(String, Loaded)>> = const { RefCell::new(None) };
    static API_KEYS: RefCell<Option<(String, LoadedKeys)>> =
        const { RefCell::new(None) };
}

/// A string binding (variable or secret), if set.
pub fn string_binding(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string())
}

/// The gateway configuration for this request.
pub fn load(env: &Env) -> Loaded {
    let var = string_binding(env, CONFIG_VAR).filter(|t| !t.trim().is_empty());
    if let Some(Err(e)) = var.as_deref().map(|t| check_size(env, CONFIG_VAR, t)) {
        return Err(Rc::new(e));
    }
    let text = var.unwrap_or_else(|| EMBEDDED.to_owned());
    CONFIG.with(|cell| {
        let mut cached = cell.borrow_mut();
        if let Some((source, loaded)) = cached.as_ref() {
            if *source == text {
                return loaded.clone();
            }
        }
        let loaded = parse(&text);
        *cached = Some((text, loaded.clone()));
        loaded
    })
}

fn parse(text: &str) -> Loaded {
    match config::parse(text) {
        Ok(config) => Ok(Rc::new(Gateway {
            table: config.route_table(),
            config,
            jwks: RefCell::new(BTreeMap::new()),
            jwks_fetching: RefCell::new(BTreeMap::new()),
        })),
        Err(errors) => Err(Rc::new(errors.to_string())),
    }
}

/// The API key store for this request: empty when `API_KEYS` is not set.
pub fn api_keys(env: &Env) -> Result<Rc<ApiKeyStore>, EdgeError> {
    let text = string_binding(env, API_KEYS_VAR).unwrap_or_default();
    check_size(env, API_KEYS_VAR, &text).map_err(EdgeError::InvalidApiKeys)?;
    API_KEYS.with(|cell| {
        let mut cached = cell.borrow_mut();
        let loaded = match cached.as_ref() {
            Some((source, loaded)) if *source == text => loaded.clone(),
            _ => {
                let loaded = if text.trim().is_empty() {
                    Ok(Rc::new(ApiKeyStore::default()))
                } else {
                    ApiKeyStore::from_json(&text)
                        .map(Rc::new)
                        .map_err(|errors| {
                            let listed: Vec<String> =
                                errors.iter().map(|e| e.to_string()).collect();
                            Rc::new(listed.join("; "))
                        })
                };
                *cached = Some((text, loaded.clone()));
                loaded
            }
        };
        loaded.map_err(|e| EdgeError::InvalidApiKeys(e.to_string()))
    })
}
