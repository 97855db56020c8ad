//! `[routes.rate_limit]`: limits, their keys and costs.

use super::*;

/// The shortest lease window: below it a slice is barely worth a call.
const LEASE_WINDOW_MIN: Duration = Duration::from_millis(10);
/// The longest: a slice's units are reserved away from other isolates
/// while it lasts.
const LEASE_WINDOW_MAX: Duration = Duration::from_secs(5);

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
    let window = match &s.lease_window {
        Some(text) => duration_in(
            c,
            &join(path, "lease_window"),
            text,
            (LEASE_WINDOW_MIN, LEASE_WINDOW_MAX, "between 10ms and 5s"),
        ),
        None => Some(LeaseConfig::DEFAULT_WINDOW),
    };
    let lease = match s.lease.unwrap_or(LeaseModeName::Auto) {
        LeaseModeName::Off => Some(None),
        LeaseModeName::Auto => window.map(|w| {
            Some(LeaseConfig {
                window_ms: u64::try_from(w.as_millis()).unwrap_or(u64::MAX),
            })
        }),
    };
    Some(RateLimitPolicy {
        shadow: s.shadow.unwrap_or(false),
        on_error: match s.on_error.unwrap_or(FailureModeName::Closed) {
            FailureModeName::Open => FailureMode::Open,
            FailureModeName::Closed => FailureMode::Closed,
        },
        lease: lease?,
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
        (
            Duration::from_secs(1),
            duration::MAX_DURATION,
            "between 1s and 366d",
        ),
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
