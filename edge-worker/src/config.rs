//! The gateway configuration and the `API_KEYS` secret, parsed once per
//! isolate and kept with what is built from them (route table, JWKS caches).
//!
//! The text comes from the `TIDEGATE_CONFIG` variable, or (when it is absent
//! or blank) from the file embedded at build time (see `build.rs`). Each
//! request compares the text with the cached one, so a changed variable is
//! picked up without a redeploy of the code.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::thread::LocalKey;

use tidegate_policy::auth::{ApiKeyStore, JwksCache, TokenCache, TokenDigest, VerifiedBearer};
use tidegate_policy::config::{self, GatewayConfig};
use tidegate_policy::route::RouteTable;
use worker::wasm_bindgen::JsValue;
use worker::{js_sys, Env};

use crate::error::EdgeError;
use crate::throttle::Leases;

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
    /// The limiter slices this isolate holds (dropped with the config).
    pub leases: RefCell<Leases>,
    /// Verified tokens (`[gateway.token_cache]`): per configuration, so a
    /// new configuration starts an empty one.
    pub tokens: RefCell<TokenCache>,
    /// New tokens the fast path verified and then left to the full path (a
    /// lease with no room), by digest and route name, for that request's
    /// full path to take instead of verifying again (`crate::fast`,
    /// `auth::authenticate`).
    pub handed_over: RefCell<HashMap<(TokenDigest, String), VerifiedBearer>>,
}

/// What a binding parsed into, or what is wrong with it.
type Parsed<T> = Result<Rc<T>, Rc<String>>;

/// A binding's last parse and the value it came from.
type ParseCache<T> = RefCell<Option<(Source, Parsed<T>)>>;

/// The configuration as loaded: usable, or the errors that make it unusable.
pub type Loaded = Parsed<Gateway>;

/// The API key store as loaded, or what is wrong with the secret.
type LoadedKeys = Parsed<ApiKeyStore>;

thread_local! {
    static CONFIG: ParseCache<Gateway> = const { RefCell::new(None) };
    static API_KEYS: ParseCache<ApiKeyStore> = const { RefCell::new(None) };
    /// The names of the bindings read on every request, as JS strings made
    /// once per isolate (not decoded from wasm memory per read).
    static CONFIG_NAME: JsValue = JsValue::from_str(CONFIG_VAR);
    static API_KEYS_NAME: JsValue = JsValue::from_str(API_KEYS_VAR);
}

/// Where a cached parse came from: the binding's value as the runtime
/// holds it, or nothing (the embedded default). Checking whether the
/// binding changed is one `===` in JS (V8 compares the very string object
/// the runtime hands out each request by pointer), where copying the text
/// into wasm to compare it cost kilobytes of UTF-16 → UTF-8 per request.
#[derive(PartialEq)]
enum Source {
    /// The binding is absent.
    Unset,
    /// The binding's text.
    Text(JsValue),
    /// A binding that is not text: a `[vars]` table in `wrangler.toml`
    /// arrives as an object. Refused, never read as unset.
    NotText(JsValue),
}

impl Source {
    /// The binding `name` (a JS string) holds: one `Reflect.get` and a
    /// `typeof` check, where `Env::var` also decodes the name and asks the
    /// value's constructor for its name, three more calls into JS, on every
    /// request.
    fn read(env: &Env, name: &JsValue) -> Self {
        match js_sys::Reflect::get(env, name) {
            Ok(value) if value.is_string() => Self::Text(value),
            Ok(value) if !value.is_undefined() && !value.is_null() => Self::NotText(value),
            _ => Self::Unset,
        }
    }

    /// Why a binding that is not text is refused: its name, its JS type and
    /// the fix.
    fn not_text(name: &str, value: &JsValue) -> String {
        let kind = value.js_typeof().as_string().unwrap_or_default();
        format!(
            "{name} is a{} {kind}, not text: set it to a string (a table under [vars] in \
             wrangler.toml arrives as an object; write the value as one string, e.g. with \
             TOML's triple quotes, or as a secret)",
            if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "n"
            } else {
                ""
            },
        )
    }
}

/// A string binding (variable or secret), if set.
pub fn string_binding(env: &Env, name: &str) -> Option<String> {
    match Source::read(env, &JsValue::from_str(name)) {
        Source::Text(value) => value.as_string(),
        Source::Unset | Source::NotText(_) => None,
    }
}

/// The gateway configuration for this request. Parsed once per isolate and
/// binding value; checked against the binding each request.
pub fn load(env: &Env) -> Loaded {
    parsed_once(&CONFIG, env, &CONFIG_NAME, load_text)
}

/// What `parse` makes of the text of the binding `name` names (`None` when
/// unset), reused while the binding is the same JS value; parsed again (and
/// kept) when it changed. A binding that is not text is refused here.
fn parsed_once<T>(
    cache: &'static LocalKey<ParseCache<T>>,
    env: &Env,
    name: &'static LocalKey<JsValue>,
    parse: impl FnOnce(&Env, Option<String>) -> Parsed<T>,
) -> Parsed<T> {
    let (source, name) = name.with(|name| (Source::read(env, name), name.as_string()));
    cache.with(|cell| {
        let mut cached = cell.borrow_mut();
        if let Some((seen, parsed)) = cached.as_ref() {
            if *seen == source {
                return parsed.clone();
            }
        }
        let parsed = match &source {
            Source::Text(value) => parse(env, value.as_string()),
            Source::Unset => parse(env, None),
            Source::NotText(value) => Err(Rc::new(Source::not_text(
                name.as_deref().unwrap_or_default(),
                value,
            ))),
        };
        *cached = Some((source, parsed.clone()));
        parsed
    })
}

/// The configuration from the binding's `text` unless it is unset or blank,
/// else from the embedded file; a binding over Cloudflare's cap is refused.
fn load_text(env: &Env, text: Option<String>) -> Loaded {
    match text.filter(|t| !t.trim().is_empty()) {
        Some(text) => {
            check_size(env, CONFIG_VAR, &text).map_err(Rc::new)?;
            parse(&text)
        }
        None => parse(EMBEDDED),
    }
}

fn parse(text: &str) -> Loaded {
    match config::parse(text) {
        Ok(config) => Ok(Rc::new(Gateway {
            table: config.route_table(),
            tokens: RefCell::new(TokenCache::new(config.gateway.token_cache.clone())),
            handed_over: RefCell::new(HashMap::new()),
            config,
            jwks: RefCell::new(BTreeMap::new()),
            jwks_fetching: RefCell::new(BTreeMap::new()),
            leases: RefCell::new(Leases::default()),
        })),
        Err(errors) => Err(Rc::new(errors.to_string())),
    }
}

/// The API key store for this request: empty when `API_KEYS` is not set.
/// Parsed once per isolate and secret value, like [`load`].
pub fn api_keys(env: &Env) -> Result<Rc<ApiKeyStore>, EdgeError> {
    parsed_once(&API_KEYS, env, &API_KEYS_NAME, parse_api_keys)
        .map_err(|e| EdgeError::InvalidApiKeys(e.to_string()))
}

/// The key store the secret's `text` holds (empty when unset or blank).
fn parse_api_keys(env: &Env, text: Option<String>) -> LoadedKeys {
    let text = text.unwrap_or_default();
    check_size(env, API_KEYS_VAR, &text).map_err(Rc::new)?;
    if text.trim().is_empty() {
        return Ok(Rc::new(ApiKeyStore::default()));
    }
    ApiKeyStore::from_json(&text)
        .map(Rc::new)
        .map_err(|errors| {
            let listed: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            Rc::new(listed.join("; "))
        })
}
