//! `[health]`: the edge's release-health sensor. Every threshold has a
//! default; the stages name routes of this file and, when the file also has
//! `[rollback]`, one of its stages.

use super::*;
use crate::health::{JudgeSettings, MAX_WINDOW_S};

pub(super) fn health(
    s: HealthSection,
    routes: &[Item<RouteSection>],
    has_rollback: bool,
    rollback_stages: &[Item<StageSection>],
    c: &mut Collector,
) -> Option<HealthSettings> {
    let d = JudgeSettings::default();
    let signal_url = match &s.signal_url {
        None => Some(None),
        Some(text) => signal_url(c, text).map(Some),
    };
    let release_header = match &s.release_header {
        None => Some(HealthSettings::DEFAULT_RELEASE_HEADER.to_owned()),
        Some(h) => header_name(c, "health.release_header", h),
    };
    let canary_release = match &s.canary_release {
        None => Some(HealthSettings::DEFAULT_CANARY_RELEASE.to_owned()),
        Some(v) => non_empty(c, "health.canary_release", v.trim()),
    };
    let window = opt_duration(
        c,
        "health.window",
        s.window.as_ref(),
        Duration::from_secs(d.window_s),
        (
            Duration::from_secs(10),
            Duration::from_secs(MAX_WINDOW_S),
            "between 10s and 10m",
        ),
    );
    let fast_window = opt_duration(
        c,
        "health.fast_window",
        s.fast_window.as_ref(),
        Duration::from_secs(d.fast_window_s),
        (
            Duration::from_secs(1),
            Duration::from_secs(MAX_WINDOW_S),
            "between 1s and the window",
        ),
    );
    if let (Some(w), Some(f)) = (window, fast_window) {
        if f > w {
            c.push(
                "health.fast_window",
                Kind::Conflict(format!(
                    "is longer than `health.window` ({}s); make it shorter, e.g. \"10s\"",
                    w.as_secs()
                )),
            );
        }
    }
    let count = |c: &mut Collector, name: &str, v: Option<u64>, default: u64| match v {
        None => Some(default),
        Some(v) => in_range(
            c,
            &join("health", name),
            v,
            1,
            1_000_000,
            "between 1 and 1000000",
        ),
    };
    let min_requests = count(c, "min_requests", s.min_requests, d.min_requests);
    let min_errors = count(c, "min_errors", s.min_errors, d.min_errors);
    let latency_min_requests = count(
        c,
        "latency_min_requests",
        s.latency_min_requests,
        d.latency_min_requests,
    );
    let stage_min_requests = count(
        c,
        "stage_min_requests",
        s.stage_min_requests,
        d.stage_min_requests,
    );
    let error_margin = number(
        c,
        "error_margin",
        s.error_margin,
        d.error_margin,
        (0.0, 1.0, "a fraction from 0 to 1, e.g. 0.05 for 5 points"),
    );
    let critical_z = number(
        c,
        "critical_z",
        s.critical_z,
        d.critical_z,
        (
            1.0,
            10.0,
            "between 1 and 10 (2.33 is p = 0.01, 3.09 is p = 0.001)",
        ),
    );
    let latency_factor = number(
        c,
        "latency_factor",
        s.latency_factor,
        d.latency_factor,
        (1.5, 100.0, "between 1.5 and 100, e.g. 3.0"),
    );
    let stage_error_rate = number(
        c,
        "stage_error_rate",
        s.stage_error_rate,
        d.stage_error_rate,
        (0.0, 1.0, "a fraction from 0 to 1, e.g. 0.25"),
    );
    let cooldown = opt_duration(
        c,
        "health.cooldown",
        s.cooldown.as_ref(),
        HealthSettings::DEFAULT_COOLDOWN,
        (
            Duration::from_secs(1),
            Duration::from_secs(3_600),
            "between 1s and 1h",
        ),
    );
    let stages = stages(&s.stages, routes, has_rollback, rollback_stages, c);
    let window_s = window?.as_secs();
    let fast_window_s = fast_window?.as_secs();
    if fast_window_s > window_s {
        return None;
    }
    Some(HealthSettings {
        signal_url: signal_url?,
        release_header: release_header?,
        canary_release: canary_release?,
        judge: JudgeSettings {
            window_s,
            fast_window_s,
            min_requests: min_requests?,
            min_errors: min_errors?,
            error_margin: error_margin?,
            critical_z: critical_z?,
            latency_factor: latency_factor?,
            latency_min_requests: latency_min_requests?,
            stage_error_rate: stage_error_rate?,
            stage_min_requests: stage_min_requests?,
        },
        cooldown: cooldown?,
        stages: stages?,
    })
}

fn number(
    c: &mut Collector,
    name: &str,
    value: Option<f64>,
    default: f64,
    (min, max, expected): (f64, f64, &'static str),
) -> Option<f64> {
    match value {
        None => Some(default),
        Some(v) if v.is_finite() && v >= min && v <= max => Some(v),
        Some(v) => {
            c.push(
                join("health", name),
                Kind::OutOfRange {
                    value: v.to_string(),
                    expected,
                },
            );
            None
        }
    }
}

/// The Lambda's URL: https (http only for localhost, for tests).
fn signal_url(c: &mut Collector, text: &UrlText) -> Option<Url> {
    local_or_https(c, "health.signal_url", text, "the signal")
}

fn stages(
    sections: &[HealthStageSection],
    routes: &[Item<RouteSection>],
    has_rollback: bool,
    rollback_stages: &[Item<StageSection>],
    c: &mut Collector,
) -> Option<Vec<HealthStage>> {
    if sections.is_empty() {
        c.push(
            "health.stages",
            Kind::Missing(
                "at least one `[[health.stages]]` with api, stage and the routes feeding it",
            ),
        );
        return None;
    }
    let route_names: Vec<String> = routes.iter().map(|r| r.value.name.clone()).collect();
    let managed: Vec<String> = rollback_stages
        .iter()
        .flat_map(|i| {
            let s = &i.value;
            [s.rest_api_id.as_deref(), s.rest_api_name.as_deref()]
                .into_iter()
                .flatten()
                .map(move |api| format!("{api}/{}", s.stage))
        })
        .collect();
    let keys: Vec<(String, String)> = sections
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                format!("health.stages[{i}]"),
                format!("{}/{}", s.api, s.stage),
            )
        })
        .collect();
    unique(
        c,
        "health stage",
        keys.iter().map(|(p, k)| (p.clone(), k.as_str())),
    );
    let route_uses: Vec<(String, &str)> = sections
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            s.routes
                .iter()
                .enumerate()
                .map(move |(j, r)| (format!("health.stages[{i}].routes[{j}]"), r.as_str()))
        })
        .collect();
    // A route feeds one stage: its responses cannot be judged twice.
    unique(c, "health route", route_uses.iter().cloned());
    let mut ok = true;
    for (path, route) in &route_uses {
        if !route_names.iter().any(|n| n == route) {
            c.push(
                path.clone(),
                Kind::UnknownReference {
                    what: "route",
                    name: (*route).to_owned(),
                    known: list_or_none(&route_names),
                },
            );
            ok = false;
        }
    }
    let mut out = Vec::new();
    for (i, s) in sections.iter().enumerate() {
        let path = format!("health.stages[{i}]");
        let api = non_empty(c, &join(&path, "api"), s.api.trim());
        let stage = non_empty(c, &join(&path, "stage"), s.stage.trim());
        if s.routes.is_empty() {
            c.push(
                join(&path, "routes"),
                Kind::Missing("the names of the routes feeding this stage"),
            );
            ok = false;
        }
        if let (Some(api), Some(stage)) = (&api, &stage) {
            let key = format!("{api}/{stage}");
            if has_rollback && !managed.contains(&key) {
                c.push(
                    path.clone(),
                    Kind::UnknownReference {
                        what: "rollback stage",
                        name: key,
                        known: list_or_none(&managed),
                    },
                );
                ok = false;
            }
        }
        out.push(HealthStage {
            api: api?,
            stage: stage?,
            routes: s.routes.clone(),
        });
    }
    ok.then_some(out)
}
