//! `[[routes]]`: methods, patterns, upstreams and who may call them.

use super::*;

pub(super) fn routes(
    items: &[Item<RouteSection>],
    known: &Known,
    default_timeout: Duration,
    c: &mut Collector,
) -> Option<Vec<Route>> {
    unique(
        c,
        "route",
        items
            .iter()
            .map(|i| (join(&i.path, "name"), i.value.name.as_str())),
    );
    collect(
        items
            .iter()
            .map(|i| route(&i.path, &i.value, known, default_timeout, c)),
    )
}

pub(super) fn route(
    path: &str,
    s: &RouteSection,
    known: &Known,
    default_timeout: Duration,
    c: &mut Collector,
) -> Option<Route> {
    let name = non_empty(c, &join(path, "name"), &s.name);
    let methods = collect(s.methods.iter().enumerate().map(|(i, m)| {
        Method::from_str(&m.0)
            .map_err(|e| {
                c.push(
                    format!("{path}.methods[{i}]"),
                    Kind::NotOneOf {
                        value: m.0.clone(),
                        expected: e
                            .to_string()
                            .replace("unsupported HTTP method; expected ", ""),
                    },
                )
            })
            .ok()
    }));
    let pattern = match RoutePattern::parse(&s.path.0) {
        Ok(p) => Some(p),
        Err(e) => {
            c.push(
                join(path, "path"),
                Kind::Pattern {
                    value: s.path.0.clone(),
                    reason: e.to_string(),
                },
            );
            None
        }
    };
    if let Some(prefix) = &known.admin_prefix {
        if s.path.0.starts_with(prefix.as_str()) {
            c.push(
                join(path, "path"),
                Kind::Conflict(format!(
                    "is under the admin prefix `{prefix}`, so admin endpoints would hide it"
                )),
            );
        }
    }
    let upstream = upstream(c, &join(path, "upstream"), &s.upstream);
    let strip_prefix = match &s.strip_prefix {
        Some(p) if !p.starts_with('/') || p.len() < 2 || has_pattern_chars(p) => {
            c.push(
                join(path, "strip_prefix"),
                Kind::NotOneOf {
                    value: p.clone(),
                    expected: "a literal path prefix such as \"/api\"".into(),
                },
            );
            None
        }
        Some(p) if !strips_every_match(p, pattern.as_ref(), &s.path.0) => {
            c.push(
                join(path, "strip_prefix"),
                Kind::Conflict(format!(
                    "`{p}` is not a leading run of whole literal segments of `{}`, \
                     so some requests the route matches could not be stripped",
                    s.path.0
                )),
            );
            None
        }
        other => Some(other.clone()),
    };
    let timeout = opt_duration(
        c,
        &join(path, "timeout"),
        s.timeout.as_ref(),
        default_timeout,
        (Duration::from_millis(1), MAX_TIMEOUT, "between 1ms and 5m"),
    );
    let auth = route_auth(c, &join(path, "auth"), &s.auth, known);
    // Judge limits and cache against what the route asks for, even when the
    // rest of its auth block has problems of its own.
    let requirement = requirement_of(s.auth.require);
    let rate_limit = s
        .rate_limit
        .as_ref()
        .map(|r| rate_limit(c, &join(path, "rate_limit"), r, requirement));
    let cache = s
        .cache
        .as_ref()
        .map(|r| cache(c, &join(path, "cache"), r, &s.methods, requirement));
    let cors = s.cors.as_ref().map(|r| {
        cors(
            c,
            &join(path, "cors"),
            r,
            &s.methods,
            requirement,
            &known.api_key_header,
        )
    });
    let forward_client_headers = forward_client_headers(
        c,
        &join(path, "forward_client_headers"),
        &s.forward_client_headers,
    );
    let assert_identity = match s.assert_identity {
        Some(true) if !known.assertion => {
            c.push(
                join(path, "assert_identity"),
                Kind::Conflict(
                    "is true, but there is no [assertion] section; add one (issuer, keys secret) \
                     or remove assert_identity"
                        .into(),
                ),
            );
            None
        }
        Some(on) => Some(on),
        None => Some(known.assertion && requirement != AuthRequirement::None),
    };
    let origin_secret = s
        .origin_secret
        .as_ref()
        .map(|o| origin_secret(c, &join(path, "origin_secret"), o));
    Some(Route {
        name: name?,
        methods: methods?,
        pattern: pattern?,
        upstream: upstream?,
        strip_prefix: strip_prefix?,
        timeout: timeout?,
        forward_credentials: s.forward_credentials.unwrap_or(false),
        auth: auth?,
        rate_limit: optional(rate_limit)?,
        cache: optional(cache)?,
        cors: optional(cors)?,
        forward_client_headers: forward_client_headers?,
        assert_identity: assert_identity?,
        origin_secret: optional(origin_secret)?,
    })
}

/// True when every path the pattern matches starts with `prefix` on a segment
/// boundary. Without a parsed pattern, judge by its text.
fn strips_every_match(prefix: &str, pattern: Option<&RoutePattern>, text: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    let literal = pattern.map_or_else(|| text.to_owned(), RoutePattern::literal_prefix);
    literal == prefix
        || literal
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

pub(super) fn upstream(c: &mut Collector, path: &str, text: &UrlText) -> Option<Url> {
    let url = url(c, path, &text.0)?;
    let reason = if !url.username().is_empty() || url.password().is_some() {
        Some("must not hold credentials (they would show in logs and the config endpoint)")
    } else if url.query().is_some() || url.fragment().is_some() {
        Some("must not have a query or fragment; the request's own query is forwarded")
    } else {
        None
    };
    if let Some(reason) = reason {
        c.push(
            path,
            Kind::Url {
                value: text.0.clone(),
                reason: reason.into(),
            },
        );
        return None;
    }
    Some(url)
}

pub(super) fn route_auth(
    c: &mut Collector,
    path: &str,
    s: &RouteAuthSection,
    known: &Known,
) -> Option<RouteAuth> {
    let requirement = requirement_of(s.require);
    let mut ok = true;
    let wants_jwt = matches!(requirement, AuthRequirement::Jwt | AuthRequirement::Either);
    let wants_key = matches!(
        requirement,
        AuthRequirement::ApiKey | AuthRequirement::Either
    );
    if wants_jwt && known.issuers.is_empty() {
        c.push(
            join(path, "require"),
            Kind::Conflict("accepts JWTs but no [[issuers]] are configured; add one".into()),
        );
        ok = false;
    }
    if wants_key && !known.api_keys {
        c.push(
            join(path, "require"),
            Kind::Conflict("accepts API keys but there is no [api_keys] section; add one".into()),
        );
        ok = false;
    }
    if requirement == AuthRequirement::None && !s.scopes.is_empty() {
        c.push(
            join(path, "scopes"),
            Kind::Conflict("scopes need an authenticated caller, but `require` is \"none\"".into()),
        );
        ok = false;
    }
    for (i, scope) in s.scopes.iter().enumerate() {
        if scope.trim().is_empty() || scope.contains(char::is_whitespace) {
            c.push(
                format!("{path}.scopes[{i}]"),
                Kind::NotOneOf {
                    value: scope.clone(),
                    expected: "a scope name without spaces".into(),
                },
            );
            ok = false;
        }
    }
    if let Some(names) = &s.issuers {
        if !wants_jwt {
            c.push(
                join(path, "issuers"),
                Kind::Conflict("lists issuers but the route does not accept JWTs".into()),
            );
            ok = false;
        }
        for (i, name) in names.iter().enumerate() {
            if !known.issuers.contains(name) {
                c.push(
                    format!("{path}.issuers[{i}]"),
                    Kind::UnknownReference {
                        what: "issuer",
                        name: name.clone(),
                        known: list_or_none(&known.issuers),
                    },
                );
                ok = false;
            }
        }
    }
    ok.then(|| RouteAuth {
        requirement,
        scopes: s.scopes.clone(),
        issuers: s.issuers.clone(),
    })
}

pub(super) fn requirement_of(name: AuthRequirementName) -> AuthRequirement {
    match name {
        AuthRequirementName::None => AuthRequirement::None,
        AuthRequirementName::Jwt => AuthRequirement::Jwt,
        AuthRequirementName::ApiKey => AuthRequirement::ApiKey,
        AuthRequirementName::Either => AuthRequirement::Either,
    }
}
