//! `[routes.cache]`: what is stored, for how long, under which key.

use super::*;

pub(super) fn cache(
    c: &mut Collector,
    path: &str,
    s: &CacheSection,
    methods: &[MethodText],
    requirement: AuthRequirement,
) -> Option<CacheRule> {
    let mut ok = true;
    if !methods.is_empty()
        && !methods
            .iter()
            .any(|m| m.0.eq_ignore_ascii_case("GET") || m.0.eq_ignore_ascii_case("HEAD"))
    {
        c.push(
            path,
            Kind::Conflict(
                "only GET and HEAD responses are cached, and the route serves neither".into(),
            ),
        );
        ok = false;
    }
    let ttl = duration_in(
        c,
        &join(path, "ttl"),
        &s.ttl,
        (
            Duration::from_secs(1),
            duration::MAX_DURATION,
            "between 1s and 366d",
        ),
    );
    let max_ttl = match &s.max_ttl {
        None => Some(None),
        Some(text) => duration_in(
            c,
            &join(path, "max_ttl"),
            text,
            (
                Duration::from_secs(1),
                duration::MAX_DURATION,
                "between 1s and 366d",
            ),
        )
        .map(Some),
    };
    if let (Some(t), Some(Some(max))) = (ttl, max_ttl) {
        if max < t {
            c.push(
                join(path, "max_ttl"),
                Kind::Conflict(
                    "max_ttl caps every lifetime, so it must be at least ttl; raise it or lower ttl"
                        .into(),
                ),
            );
            ok = false;
        }
    }
    let freshness = match s.freshness.unwrap_or(FreshnessName::Origin) {
        FreshnessName::Origin => FreshnessSource::Origin,
        FreshnessName::Override => FreshnessSource::Override,
    };
    let range = (Duration::ZERO, duration::MAX_DURATION, "at most 366d");
    let swr = opt_duration(
        c,
        &join(path, "stale_while_revalidate"),
        s.stale_while_revalidate.as_ref(),
        Duration::ZERO,
        range,
    );
    let sie = opt_duration(
        c,
        &join(path, "stale_if_error"),
        s.stale_if_error.as_ref(),
        Duration::ZERO,
        range,
    );
    let scope = match s.scope.unwrap_or(CacheScopeName::Shared) {
        CacheScopeName::Shared => CacheScope::Shared,
        CacheScopeName::Private => CacheScope::Private,
    };
    if scope == CacheScope::Private && requirement == AuthRequirement::None {
        c.push(
            join(path, "scope"),
            Kind::Conflict(
                "\"private\" keys entries by caller identity, but the route has no authentication"
                    .into(),
            ),
        );
        ok = false;
    }
    let vary_headers = collect(
        s.vary_headers
            .iter()
            .enumerate()
            .map(|(i, h)| header_name(c, &format!("{path}.vary_headers[{i}]"), h)),
    );
    if let Some(names) = &s.vary_query {
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() {
                c.push(
                    format!("{path}.vary_query[{i}]"),
                    Kind::Missing("a query parameter name"),
                );
                ok = false;
            }
        }
    }
    let statuses = match &s.statuses {
        None => Some(crate::cache::DEFAULT_STATUSES.to_vec()),
        Some(list) => collect(list.iter().enumerate().map(|(i, &status)| {
            if (100..=599).contains(&status) && status != 206 {
                Some(status)
            } else {
                c.push(
                    format!("{path}.statuses[{i}]"),
                    Kind::OutOfRange {
                        value: status.to_string(),
                        expected: "an HTTP status from 100 to 599, not 206",
                    },
                );
                None
            }
        })),
    };
    let max_body_bytes = match s.max_body_bytes {
        None => Some(crate::cache::DEFAULT_MAX_BODY_BYTES),
        Some(n) if (1..=crate::cache::MAX_BODY_BYTES_LIMIT).contains(&n) => Some(n),
        Some(n) => {
            c.push(
                join(path, "max_body_bytes"),
                Kind::OutOfRange {
                    value: n.to_string(),
                    expected: "from 1 to 67108864 (64 MiB, half the isolate's memory)",
                },
            );
            None
        }
    };
    let rule = CacheRule {
        freshness,
        ttl: ttl?,
        max_ttl: max_ttl?,
        heuristic: s.heuristic.unwrap_or(false),
        stale_while_revalidate: swr?,
        stale_if_error: sie?,
        vary_headers: vary_headers?,
        vary_query: s.vary_query.clone(),
        scope,
        statuses: statuses?,
        max_body_bytes: max_body_bytes?,
    };
    ok.then_some(rule)
}
