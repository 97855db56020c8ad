//! `[tiers.NAME]`: plans, and their fit with the routes' limits.

use super::*;

pub(super) fn tiers(
    sections: &BTreeMap<String, TierSection>,
    routes: &[Item<RouteSection>],
    c: &mut Collector,
) -> Option<BTreeMap<String, Tier>> {
    // Every limit name some route uses: a tier limit must replace one of them.
    let route_limits: Vec<String> = routes
        .iter()
        .filter_map(|r| r.value.rate_limit.as_ref())
        .flat_map(|rl| rl.limits.iter().map(|l| l.name.clone()))
        .collect();
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (name, section) in sections {
        let path = format!("tiers.{name}");
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid_name {
            c.push(
                path.clone(),
                Kind::NotOneOf {
                    value: name.clone(),
                    expected: "a tier name of 1 to 64 letters, digits, `_`, `-` or `.`".into(),
                },
            );
            ok = false;
        }
        let items: Vec<(String, &TierLimitSection)> = section
            .limits
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("{path}.limits[{i}]"), l))
            .collect();
        unique(
            c,
            "tier limit",
            items
                .iter()
                .map(|(p, l)| (join(p, "name"), l.name.as_str())),
        );
        let limits = collect(
            items
                .iter()
                .map(|(p, l)| tier_limit(c, p, l, &route_limits)),
        );
        match limits {
            Some(limits) if valid_name => {
                out.insert(
                    name.clone(),
                    Tier {
                        name: name.clone(),
                        limits,
                    },
                );
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn tier_limit(
    c: &mut Collector,
    path: &str,
    s: &TierLimitSection,
    route_limits: &[String],
) -> Option<TierLimit> {
    let name = non_empty(c, &join(path, "name"), &s.name);
    if name.is_some() && !route_limits.contains(&s.name) {
        c.push(
            join(path, "name"),
            Kind::UnknownReference {
                what: "route limit",
                name: s.name.clone(),
                known: list_or_none(route_limits),
            },
        );
        return None;
    }
    let range = (1, 1_000_000_000, "between 1 and 1000000000");
    let count = in_range(c, &join(path, "limit"), s.limit, range.0, range.1, range.2);
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
        Some(b) => in_range(c, &join(path, "burst"), b, range.0, range.1, range.2),
        None => count,
    };
    Some(TierLimit {
        name: name?,
        quota: Quota {
            limit: count?,
            period: period?,
            burst: burst?,
        },
    })
}

/// A tier's burst below a route limit's cost would refuse every request of
/// that tier's callers on the route.
pub(super) fn check_tier_costs(
    tiers: &BTreeMap<String, Tier>,
    routes: &[Route],
    c: &mut Collector,
) {
    for tier in tiers.values() {
        for (i, limit) in tier.limits.iter().enumerate() {
            let too_costly = routes.iter().find_map(|r| {
                let rl = r.rate_limit.as_ref()?;
                rl.limits
                    .iter()
                    .find(|l| l.name == limit.name && l.cost > limit.quota.burst)
                    .map(|l| (r.name.clone(), l.cost))
            });
            if let Some((route, cost)) = too_costly {
                c.push(
                    format!("tiers.{}.limits[{i}].burst", tier.name),
                    Kind::Conflict(format!(
                        "is below the cost {cost} of route `{route}`'s limit `{}`, so no request \
                         of this tier could pass; raise the burst (default: the limit)",
                        limit.name
                    )),
                );
            }
        }
    }
}
