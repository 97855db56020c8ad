//! `[rollback]`: the managed API Gateway stages and their rollout policy.

use super::*;
use crate::config::error::index;

pub(super) fn rollback(
    s: RollbackSection,
    stages: &[Item<StageSection>],
    c: &mut Collector,
) -> Option<RollbackPolicy> {
    let topic = match s.notification_topic_arn {
        Some(arn) if !(arn.starts_with("arn:") && arn.contains(":sns:")) => {
            c.push(
                "rollback.notification_topic_arn",
                Kind::NotOneOf {
                    value: arn,
                    expected:
                        "an SNS topic ARN, e.g. \"arn:aws:sns:us-east-1:123456789012:tidegate\""
                            .into(),
                },
            );
            None
        }
        other => Some(other),
    };
    let edge_health_url = match &s.edge {
        None => Some(None),
        Some(edge) => local_or_https(
            c,
            "rollback.edge.health_url",
            &edge.health_url,
            "the edge's admin key",
        )
        .map(Some),
    };
    let keys: Vec<(String, String)> = stages
        .iter()
        .map(|i| {
            let api = i
                .value
                .rest_api_id
                .as_deref()
                .or(i.value.rest_api_name.as_deref())
                .unwrap_or_default();
            (i.path.clone(), format!("{api}/{}", i.value.stage))
        })
        .collect();
    unique(
        c,
        "stage",
        keys.iter().map(|(p, k)| (p.clone(), k.as_str())),
    );
    let global_dry_run = s.dry_run.unwrap_or(false);
    let stages = collect(
        stages
            .iter()
            .map(|i| stage(c, &i.path, &i.value, global_dry_run)),
    );
    Some(RollbackPolicy {
        notification_topic_arn: topic?,
        edge_health_url: edge_health_url?,
        stages: stages?,
    })
}

pub(super) fn stage(
    c: &mut Collector,
    path: &str,
    s: &StageSection,
    global_dry_run: bool,
) -> Option<ManagedStage> {
    let api = match (&s.rest_api_id, &s.rest_api_name) {
        (Some(id), None) => non_empty(c, &join(path, "rest_api_id"), id).map(RestApiRef::Id),
        (None, Some(name)) => {
            non_empty(c, &join(path, "rest_api_name"), name).map(RestApiRef::Name)
        }
        (Some(_), Some(_)) => {
            c.push(
                path,
                Kind::Conflict("has both `rest_api_id` and `rest_api_name`; keep one".into()),
            );
            None
        }
        (None, None) => {
            c.push(path, Kind::Missing("`rest_api_id` or `rest_api_name`"));
            None
        }
    };
    let stage_name = non_empty(c, &join(path, "stage"), &s.stage);
    let mut ok = true;
    if s.stage_alarms.is_empty() && s.canary_alarms.is_empty() {
        c.push(path, Kind::Missing("`stage_alarms` or `canary_alarms`: a stage with no alarms would never be rolled back"));
        ok = false;
    }
    for (field, list) in [
        ("stage_alarms", &s.stage_alarms),
        ("canary_alarms", &s.canary_alarms),
    ] {
        for (i, alarm) in list.iter().enumerate() {
            if alarm.trim().is_empty() {
                c.push(
                    format!("{path}.{field}[{i}]"),
                    Kind::Missing("an alarm name"),
                );
                ok = false;
            }
        }
    }
    let threshold = s
        .error_rate_threshold
        .unwrap_or(ManagedStage::DEFAULT_ERROR_RATE_THRESHOLD);
    let threshold = if threshold.is_finite() && threshold > 0.0 && threshold <= 1.0 {
        Some(threshold)
    } else {
        c.push(
            join(path, "error_rate_threshold"),
            Kind::OutOfRange {
                value: threshold.to_string(),
                expected: "a fraction above 0 and at most 1, e.g. 0.05 for 5 %",
            },
        );
        None
    };
    let min_requests = in_range(
        c,
        &join(path, "min_requests"),
        s.min_requests.unwrap_or(ManagedStage::DEFAULT_MIN_REQUESTS),
        1,
        u64::from(u32::MAX),
        "at least 1",
    );
    let steps = canary_steps(c, &join(path, "canary_steps"), s.canary_steps.as_deref());
    let positive = (
        Duration::from_secs(1),
        duration::MAX_DURATION,
        "between 1s and 366d",
    );
    let bake_time = opt_duration(
        c,
        &join(path, "bake_time"),
        s.bake_time.as_ref(),
        ManagedStage::DEFAULT_BAKE_TIME,
        positive,
    );
    let cooldown = opt_duration(
        c,
        &join(path, "cooldown"),
        s.cooldown.as_ref(),
        ManagedStage::DEFAULT_COOLDOWN,
        (Duration::ZERO, duration::MAX_DURATION, "at most 366d"),
    );
    let window = opt_duration(
        c,
        &join(path, "metric_window"),
        s.metric_window.as_ref(),
        ManagedStage::DEFAULT_METRIC_WINDOW,
        (
            Duration::from_secs(10),
            Duration::from_secs(86_400),
            "between 10s and 1d",
        ),
    );
    let dimension = s
        .canary_stage_dimension
        .clone()
        .unwrap_or_else(|| ManagedStage::DEFAULT_CANARY_STAGE_DIMENSION.to_owned());
    let dimension = non_empty(c, &join(path, "canary_stage_dimension"), &dimension);
    let metric_api_name = s
        .metric_api_name
        .as_ref()
        .map(|n| non_empty(c, &join(path, "metric_api_name"), n));
    let stage = ManagedStage {
        api: api?,
        stage: stage_name?,
        stage_alarms: s.stage_alarms.clone(),
        canary_alarms: s.canary_alarms.clone(),
        error_rate_threshold: threshold?,
        min_requests: min_requests?,
        canary_steps: steps?,
        bake_time: bake_time?,
        cooldown: cooldown?,
        metric_window: window?,
        metric_api_name: optional(metric_api_name)?,
        canary_stage_dimension: dimension?,
        dry_run: s.dry_run.unwrap_or(global_dry_run),
    };
    ok.then_some(stage)
}

/// The planned steps: each entry's percentage in range (reported at the
/// entry, or at its `percent` when written as a table), then the list
/// strictly increasing and ending at 100.
pub(super) fn canary_steps(
    c: &mut Collector,
    path: &str,
    steps: Option<&[CanaryStepEntry]>,
) -> Option<Vec<CanaryStep>> {
    let Some(entries) = steps else {
        return Some(ManagedStage::DEFAULT_CANARY_STEPS.to_vec());
    };
    let mut ok = true;
    let steps: Vec<CanaryStep> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let (at, step) = match e {
                CanaryStepEntry::Percent(p) => (index(path, i), CanaryStep::at(*p)),
                CanaryStepEntry::Gate(g) => (
                    join(&index(path, i), "percent"),
                    CanaryStep {
                        percent: g.percent,
                        approve: g.approve,
                    },
                ),
            };
            if !(step.percent.is_finite() && step.percent > 0.0 && step.percent <= 100.0) {
                c.push(
                    at,
                    Kind::OutOfRange {
                        value: step.percent.to_string(),
                        expected: "a percentage above 0 and at most 100, e.g. 25",
                    },
                );
                ok = false;
            }
            step
        })
        .collect();
    if !ok {
        return None;
    }
    let increasing = steps
        .windows(2)
        .all(|w| matches!(w, [a, b] if a.percent < b.percent));
    if steps.is_empty() || !increasing || steps.last().map(|s| s.percent) != Some(100.0) {
        let shown: Vec<String> = steps.iter().map(|s| s.percent.to_string()).collect();
        c.push(
            path,
            Kind::NotOneOf {
                value: format!("[{}]", shown.join(", ")),
                expected: "steps strictly increasing and ending at 100, e.g. \
                           [5, 25, { percent = 50, approve = true }, 100]"
                    .to_owned(),
            },
        );
        return None;
    }
    Some(steps)
}
