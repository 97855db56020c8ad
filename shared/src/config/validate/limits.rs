//! `[routes.rate_limit]`: limits, their keys and costs.

use super::*;

pub(super) fn rate_limit(
    c: &mut Collector,
    path: &str,
    s: &RateLimitSection,
    requirement: AuthRequirement,
) -> Option<RateLimitPolicy> {
    if s.limits.is_empty() {
        c.push(join(path, "limits"), Kind::Missing("at least one limit"));
        return None;
    }
    let items: Vec<(String, &LimitSection)> = s
        .limits
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("{path}.limits[{i}]"), l))
        .collect();
    unique(
        c,
        "limit",
        items
            .iter()
            .map(|(p, l)| (join(p, "name"), l.name.as_str())),
    );
    let limits = collect(items.iter().map(|(p, l)| limit(c, p, l, requirement)));
    Some(RateLimitPolicy {
        shadow: s.shadow.unwrap_or(false),
        on_error: match s.on_error.unwrap_or(FailureModeName::Closed) {
            FailureModeName::Open => FailureMode::Open,
            FailureModeName::Closed => FailureMode::Closed,
        },
        limits: limits?,
    })
}

pub(super) fn limit(
    c: &mut Collector,
    path: &str,
    s: &LimitSection,
    requirement: AuthRequirement,
) -> Option<RouteLimit> {
    let name = non_empty(c, &join(path, "name"), &s.name);
    let count = in_range(
        c,
        &join(path, "limit"),
        s.limit,
        1,
        1_000_000_000,
        "between 1 and 1000000000",
    );
    let period = duration_in(
        c,
        &join(path, "period"),
        &s.period,
        (Duration::from_secs(1), duration::MAX, "between 1s and 366d"),
    );
    let burst = match s.burst {
        Some(b) => in_range(
            c,
            &join(path, "burst"),
            b,
            1,
            1_000_000_000,
            "between 1 and 1000000000",
        ),
        None => count,
    };
    let cost = s.cost.unwrap_or(1);
    let cost = match burst {
        Some(burst) => in_range(
            c,
            &join(path, "cost"),
            cost,
            1,
            burst,
            "at least 1 and at most the burst (default: the limit), or no request could ever pass",
        ),
        None => Some(cost),
    };
    let key = match s.key {
        LimitKeyName::Subject => LimitKey::Subject,
        LimitKeyName::ApiKey => LimitKey::ApiKey,
        LimitKeyName::ClientIp => LimitKey::ClientIp,
        LimitKeyName::Route => LimitKey::Route,
    };
    let needs = match key {
        LimitKey::Subject if requirement == AuthRequirement::None => {
            Some("counts by subject but the route has no authentication; use client_ip or route")
        }
        LimitKey::ApiKey if matches!(requirement, AuthRequirement::None | AuthRequirement::Jwt) => {
            Some("counts by API key but the route does not accept API keys; use subject")
        }
        _ => None,
    };
    if let Some(message) = needs {
        c.push(join(path, "key"), Kind::Conflict(message.into()));
        return None;
    }
    Some(RouteLimit {
        name: name?,
        quota: Quota {
            limit: count?,
            period: period?,
            burst: burst?,
        },
        key,
        cost: cost?,
    })
}
