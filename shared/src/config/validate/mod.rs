//! From the file as written to a [`GatewayConfig`]: parse every value, apply
//! defaults, check cross-references, and report every problem with its path.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use url::Url;

use crate::auth::AuthRequirement;
use crate::auth::IssuerPolicy;
use crate::auth::JwksCachePolicy;
use crate::auth::KvKeyStoreSettings;
use crate::auth::TokenCacheSettings;
use crate::cache::{CacheRule, CacheScope, FreshnessSource};
use crate::config::duration;
use crate::config::error::{join, Collector, ConfigErrorKind as Kind};
use crate::config::file::*;
use crate::config::load::{Item, Sections};
use crate::config::model::*;
use crate::route::{Method, RoutePattern};
use crate::throttle::{LeaseConfig, LimitKey, Quota};

mod assertion;
mod cache;
mod cors;
mod health;
mod issuers;
mod limits;
mod purge;
mod read;
mod rollback;
mod routes;
mod tiers;

use assertion::{assertion, header_clashes, origin_secret};
use cache::cache;
use cors::{cors, forward_client_headers};
use issuers::issuers;
use limits::rate_limit;
use read::*;
use rollback::rollback;
use routes::routes;
use tiers::{check_tier_costs, tiers};

/// Longest upstream timeout: a Worker's wall-clock budget is not unlimited.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// Largest leeway on token times.
const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// Validates shape-checked sections. Problems go to `c`; `None` when any part is invalid.
pub(crate) fn validate(s: Sections, c: &mut Collector) -> Option<GatewayConfig> {
    let gateway = gateway(s.gateway.unwrap_or_default(), c);
    let issuers = issuers(&s.issuers, c);
    let api_keys = s.api_keys.map(|section| api_keys(section, c));
    let known = Known {
        issuers: s
            .issuers
            .iter()
            .map(|i| i.value.name.clone())
            .chain(s.broken_issuer_names.iter().cloned())
            .collect(),
        api_keys: s.api_keys_present,
        admin_prefix: gateway.as_ref().map(|g| g.admin_prefix.clone()),
        api_key_header: api_keys
            .as_ref()
            .and_then(|k| k.as_ref().map(|k| k.header.clone()))
            .unwrap_or_else(|| ApiKeySettings::DEFAULT_HEADER.to_owned()),
        assertion: s.assertion.is_some(),
    };
    let assertion = s.assertion.map(|section| assertion(section, c));
    let default_timeout = gateway
        .as_ref()
        .map_or(GatewaySettings::DEFAULT_TIMEOUT, |g| g.default_timeout);
    let routes = routes(&s.routes, &known, default_timeout, c);
    let tiers = tiers(&s.tiers, &s.routes, c);
    if let (Some(tiers), Some(routes)) = (&tiers, &routes) {
        check_tier_costs(tiers, routes, c);
    }
    let has_rollback = s.rollback.is_some();
    let rollback = s.rollback.map(|section| rollback(section, &s.stages, c));
    let purge = s.purge.map(|section| purge::purge(section, c));
    let health = s
        .health
        .map(|section| health::health(section, &s.routes, has_rollback, &s.stages, c));
    header_clashes(assertion.as_ref().and_then(Option::as_ref), &s.routes, c);

    let config = GatewayConfig {
        gateway: gateway?,
        issuers: issuers?,
        api_keys: optional(api_keys)?,
        tiers: tiers?,
        routes: routes?,
        rollback: optional(rollback)?,
        assertion: optional(assertion)?,
        purge: optional(purge)?,
        health: optional(health)?,
    };
    s.complete.then_some(config)
}

/// Names other sections may refer to.
struct Known {
    issuers: Vec<String>,
    api_keys: bool,
    admin_prefix: Option<String>,
    /// The header API keys arrive in (lower case).
    api_key_header: String,
    /// Whether `[assertion]` is present.
    assertion: bool,
}

fn gateway(g: GatewaySection, c: &mut Collector) -> Option<GatewaySettings> {
    let admin_prefix = match g.admin_prefix {
        None => Some(GatewaySettings::DEFAULT_ADMIN_PREFIX.to_owned()),
        Some(p)
            if p.len() >= 3 && p.starts_with('/') && p.ends_with('/') && !has_pattern_chars(&p) =>
        {
            Some(p)
        }
        Some(p) => {
            c.push(
                "gateway.admin_prefix",
                Kind::NotOneOf {
                    value: p,
                    expected: "a literal path starting and ending with `/`, e.g. \"/__tidegate/\""
                        .into(),
                },
            );
            None
        }
    };
    let default_timeout = opt_duration(
        c,
        "gateway.default_timeout",
        g.default_timeout.as_ref(),
        GatewaySettings::DEFAULT_TIMEOUT,
        (Duration::from_millis(1), MAX_TIMEOUT, "between 1ms and 5m"),
    );
    let token_cache = token_cache(g.token_cache.unwrap_or_default(), c);
    Some(GatewaySettings {
        admin_prefix: admin_prefix?,
        default_timeout: default_timeout?,
        trust_request_id: g.trust_request_id.unwrap_or(true),
        server_timing: g.server_timing.unwrap_or(true),
        token_cache: token_cache?,
    })
}

/// `[gateway.token_cache]`.
fn token_cache(s: TokenCacheSection, c: &mut Collector) -> Option<TokenCacheSettings> {
    let max_entries = match s.max_entries {
        None => Some(TokenCacheSettings::DEFAULT_MAX_ENTRIES as u64),
        Some(n) => in_range(
            c,
            "gateway.token_cache.max_entries",
            n,
            1,
            TokenCacheSettings::MAX_ENTRIES as u64,
            "between 1 and 100000; set `enabled = false` to turn the cache off",
        ),
    };
    let ttl = opt_duration(
        c,
        "gateway.token_cache.ttl",
        s.ttl.as_ref(),
        TokenCacheSettings::DEFAULT_TTL,
        (
            Duration::from_secs(1),
            TokenCacheSettings::MAX_TTL,
            "between 1s and 1h; set `enabled = false` to turn the cache off",
        ),
    );
    Some(TokenCacheSettings {
        enabled: s.enabled.unwrap_or(true),
        max_entries: usize::try_from(max_entries?).ok()?,
        ttl: ttl?,
    })
}

fn api_keys(s: ApiKeysSection, c: &mut Collector) -> Option<ApiKeySettings> {
    let header = match &s.header {
        None => Some(ApiKeySettings::DEFAULT_HEADER.to_owned()),
        Some(h) => header_name(c, "api_keys.header", h),
    };
    let kv = match s.store.unwrap_or(KeyStoreName::Secret) {
        KeyStoreName::Kv => kv_store(&s, c).map(Some),
        KeyStoreName::Secret => {
            let kv_only = [
                ("kv_binding", s.kv_binding.is_some()),
                ("cache_ttl", s.cache_ttl.is_some()),
                ("negative_ttl", s.negative_ttl.is_some()),
                ("cache_entries", s.cache_entries.is_some()),
                ("rotation_overlap", s.rotation_overlap.is_some()),
            ];
            for (name, _) in kv_only.iter().filter(|(_, set)| *set) {
                c.push(
                    join("api_keys", name),
                    Kind::Conflict(
                        "applies only to a KV key store; add `store = \"kv\"` or remove it".into(),
                    ),
                );
            }
            kv_only.iter().all(|(_, set)| !set).then_some(None)
        }
    };
    Some(ApiKeySettings {
        header: header?,
        kv: kv?,
    })
}

/// `[api_keys]` with `store = "kv"`.
fn kv_store(s: &ApiKeysSection, c: &mut Collector) -> Option<KvKeyStoreSettings> {
    let binding = match &s.kv_binding {
        None => Some(KvKeyStoreSettings::DEFAULT_BINDING.to_owned()),
        Some(b)
            if !b.is_empty()
                && b.len() <= 64
                && b.bytes().all(|x| x.is_ascii_alphanumeric() || x == b'_')
                && !b.starts_with(|x: char| x.is_ascii_digit()) =>
        {
            Some(b.clone())
        }
        Some(b) => {
            c.push(
                "api_keys.kv_binding",
                Kind::NotOneOf {
                    value: b.clone(),
                    expected: "a binding name (letters, digits, `_`; not starting with a digit), \
                               the `binding` of a [[kv_namespaces]] entry in wrangler.toml"
                        .into(),
                },
            );
            None
        }
    };
    let short = (
        Duration::ZERO,
        Duration::from_secs(300),
        "between 0s and 5m",
    );
    let cache_ttl = opt_duration(
        c,
        "api_keys.cache_ttl",
        s.cache_ttl.as_ref(),
        KvKeyStoreSettings::DEFAULT_CACHE_TTL,
        short,
    );
    let negative_ttl = opt_duration(
        c,
        "api_keys.negative_ttl",
        s.negative_ttl.as_ref(),
        KvKeyStoreSettings::DEFAULT_NEGATIVE_TTL,
        short,
    );
    let cache_entries = match s.cache_entries {
        None => Some(KvKeyStoreSettings::DEFAULT_CACHE_ENTRIES as u64),
        Some(n) => in_range(
            c,
            "api_keys.cache_entries",
            n,
            1,
            100_000,
            "between 1 and 100000",
        ),
    };
    let rotation_overlap = opt_duration(
        c,
        "api_keys.rotation_overlap",
        s.rotation_overlap.as_ref(),
        KvKeyStoreSettings::DEFAULT_ROTATION_OVERLAP,
        (
            Duration::ZERO,
            duration::MAX_DURATION,
            "between 0s and 366d",
        ),
    );
    Some(KvKeyStoreSettings {
        binding: binding?,
        cache_ttl: cache_ttl?,
        negative_ttl: negative_ttl?,
        cache_entries: usize::try_from(cache_entries?).ok()?,
        rotation_overlap: rotation_overlap?,
    })
}
