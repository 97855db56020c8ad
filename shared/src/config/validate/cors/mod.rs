//! `[routes.cors]` and `forward_client_headers`.

use super::*;
use crate::cors::{
    CorsPolicy, OriginRule, DEFAULT_ALLOW_HEADERS, DEFAULT_MAX_AGE_SECS, MAX_MAX_AGE_SECS,
};
use crate::route::{is_client_forwarding_header, CLIENT_FORWARDING_HEADERS};

pub(super) fn cors(
    c: &mut Collector,
    path: &str,
    s: &CorsSection,
    methods: &[MethodText],
    requirement: AuthRequirement,
    api_key_header: &str,
) -> Option<CorsPolicy> {
    let mut ok = true;
    let credentials = s.allow_credentials.unwrap_or(false);
    let origins_path = join(path, "allow_origins");
    let any_origin = s.allow_origins.iter().any(|o| o == "*");
    if s.allow_origins.is_empty() {
        c.push(
            &origins_path,
            Kind::Missing("at least one origin, e.g. [\"https://app.example.com\"]"),
        );
        ok = false;
    }
    if any_origin && s.allow_origins.len() > 1 {
        c.push(
            &origins_path,
            Kind::Conflict("`*` already allows every origin; remove the other entries".into()),
        );
        ok = false;
    }
    if any_origin && credentials {
        c.push(
            join(path, "allow_credentials"),
            Kind::Conflict(
                "browsers refuse `Access-Control-Allow-Origin: *` with credentials (Fetch \
                 standard); list the origins in allow_origins (patterns such as \
                 \"https://*.example.com\" work), or set allow_credentials = false"
                    .into(),
            ),
        );
        ok = false;
    }
    let origins = collect(
        s.allow_origins
            .iter()
            .enumerate()
            .filter(|(_, o)| *o != "*")
            .map(|(i, o)| {
                OriginRule::parse(o)
                    .map_err(|e| {
                        c.push(
                            format!("{origins_path}[{i}]"),
                            Kind::Url {
                                value: o.clone(),
                                reason: e.to_string(),
                            },
                        )
                    })
                    .ok()
            }),
    );
    let route_methods: Vec<Method> = methods
        .iter()
        .filter_map(|m| Method::from_str(&m.0).ok())
        .collect();
    let methods = match &s.allow_methods {
        None if route_methods.is_empty() => Some(Method::ALL.to_vec()),
        None => Some(route_methods),
        Some(list) => {
            if list.is_empty() {
                c.push(
                    join(path, "allow_methods"),
                    Kind::Missing("at least one method (leave it out for the route's methods)"),
                );
                ok = false;
            }
            collect(list.iter().enumerate().map(|(i, m)| {
                let at = format!("{path}.allow_methods[{i}]");
                match Method::from_str(&m.0) {
                    Ok(method) if route_methods.is_empty() || route_methods.contains(&method) => {
                        Some(method)
                    }
                    Ok(method) => {
                        c.push(
                            at,
                            Kind::Conflict(format!(
                                "the route does not serve {method}; add it to the route's \
                                 methods or remove it here"
                            )),
                        );
                        None
                    }
                    Err(_) => {
                        c.push(
                            at,
                            Kind::NotOneOf {
                                value: m.0.clone(),
                                expected: "one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
                                    .into(),
                            },
                        );
                        None
                    }
                }
            }))
        }
    };
    let headers_path = join(path, "allow_headers");
    let allow_headers = match &s.allow_headers {
        None => {
            let mut names: Vec<String> = DEFAULT_ALLOW_HEADERS
                .iter()
                .map(|h| (*h).to_owned())
                .collect();
            let takes_keys = matches!(
                requirement,
                AuthRequirement::ApiKey | AuthRequirement::Either
            );
            if takes_keys && !names.iter().any(|n| n == api_key_header) {
                names.push(api_key_header.to_owned());
            }
            Some(Some(names))
        }
        Some(list) => {
            star_or_names(c, &headers_path, list).map(|(star, names)| (!star).then_some(names))
        }
    };
    let expose_path = join(path, "expose_headers");
    let expose = star_or_names(c, &expose_path, &s.expose_headers).map(|(star, mut names)| {
        if star {
            names.push("*".to_owned());
        }
        names
    });
    if credentials && s.expose_headers.iter().any(|h| h == "*") {
        c.push(
            expose_path,
            Kind::Conflict(
                "with credentials browsers read `*` as a header named `*` (Fetch standard); \
                 list the headers instead"
                    .into(),
            ),
        );
        ok = false;
    }
    let max_age = match &s.max_age {
        None => Some(Duration::from_secs(DEFAULT_MAX_AGE_SECS)),
        Some(text) => {
            let at = join(path, "max_age");
            let d = duration_in(
                c,
                &at,
                text,
                (
                    Duration::ZERO,
                    Duration::from_secs(MAX_MAX_AGE_SECS),
                    "from 0s to 1d",
                ),
            )?;
            if d.subsec_nanos() != 0 {
                c.push(
                    at,
                    Kind::OutOfRange {
                        value: text.0.clone(),
                        expected: "whole seconds (Access-Control-Max-Age counts seconds)",
                    },
                );
                return None;
            }
            Some(d)
        }
    };
    let policy = CorsPolicy::new(
        any_origin,
        origins?,
        methods?,
        allow_headers?,
        expose?,
        credentials,
        max_age?,
    );
    ok.then_some(policy)
}

/// A list that is either `["*"]` or header names: `(true, [])` or `(false, names)`.
fn star_or_names(c: &mut Collector, path: &str, list: &[String]) -> Option<(bool, Vec<String>)> {
    let star = list.iter().any(|h| h == "*");
    if star && list.len() > 1 {
        c.push(
            path,
            Kind::Conflict("`*` already covers every header; remove the other entries".into()),
        );
        return None;
    }
    if star {
        return Some((true, Vec::new()));
    }
    let names = collect(
        list.iter()
            .enumerate()
            .map(|(i, h)| header_name(c, &format!("{path}[{i}]"), h)),
    )?;
    Some((false, names))
}

pub(super) fn forward_client_headers(
    c: &mut Collector,
    path: &str,
    list: &[String],
) -> Option<Vec<String>> {
    collect(list.iter().enumerate().map(|(i, name)| {
        let lower = name.to_ascii_lowercase();
        if is_client_forwarding_header(&lower) && !lower.contains('_') {
            Some(lower)
        } else {
            c.push(
                format!("{path}[{i}]"),
                Kind::NotOneOf {
                    value: name.clone(),
                    expected: format!(
                        "one of {} (other headers are forwarded anyway)",
                        CLIENT_FORWARDING_HEADERS.join(", ")
                    ),
                },
            );
            None
        }
    }))
}

#[cfg(test)]
mod tests;
