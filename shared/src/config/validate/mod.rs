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
use crate::cache::{CacheRule, CacheScope};
use crate::config::duration;
use crate::config::error::{join, Collector, ConfigErrorKind as Kind};
use crate::config::file::*;
use crate::config::load::{Item, Sections};
use crate::config::model::*;
use crate::route::{Method, RoutePattern};
use crate::throttle::{LimitKey, Quota};

mod assertion;
mod cache;
mod issuers;
mod limits;
mod read;
mod rollback;
mod routes;

use assertion::{assertion, header_clashes, origin_secret};
use cache::cache;
use issuers::issuers;
use limits::rate_limit;
use read::*;
use rollback::rollback;
use routes::routes;

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
        assertion: s.assertion.is_some(),
    };
    let assertion = s.assertion.map(|section| assertion(section, c));
    let default_timeout = gateway
        .as_ref()
        .map_or(GatewaySettings::DEFAULT_TIMEOUT, |g| g.default_timeout);
    let routes = routes(&s.routes, &known, default_timeout, c);
    let rollback = s.rollback.map(|section| rollback(section, &s.stages, c));
    header_clashes(assertion.as_ref().and_then(Option::as_ref), &s.routes, c);

    let config = GatewayConfig {
        gateway: gateway?,
        issuers: issuers?,
        api_keys: optional(api_keys)?,
        routes: routes?,
        rollback: optional(rollback)?,
        assertion: optional(assertion)?,
    };
    s.complete.then_some(config)
}

/// Names other sections may refer to.
struct Known {
    issuers: Vec<String>,
    api_keys: bool,
    admin_prefix: Option<String>,
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
    Some(GatewaySettings {
        admin_prefix: admin_prefix?,
        default_timeout: default_timeout?,
        trust_request_id: g.trust_request_id.unwrap_or(true),
    })
}

fn api_keys(s: ApiKeysSection, c: &mut Collector) -> Option<ApiKeySettings> {
    let header = match s.header {
        None => ApiKeySettings::DEFAULT_HEADER.to_owned(),
        Some(h) => header_name(c, "api_keys.header", &h)?,
    };
    Some(ApiKeySettings { header })
}
