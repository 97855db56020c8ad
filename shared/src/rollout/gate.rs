//! Where a canary stands in its planned steps, and whether it waits at a
//! manual approval gate. Shared by [`super::decide()`] and the adapters'
//! status views, so both say the same.
//!
//! ```
//! use tidegate_policy::config::CanaryStep;
//! use tidegate_policy::rollout::{next_planned, step_index};
//! let steps = [CanaryStep::at(5.0), CanaryStep::at(50.0).gated(), CanaryStep::at(100.0)];
//! assert_eq!(step_index(&steps, 50.0), Some(1));
//! assert_eq!(step_index(&steps, 1.0), None);
//! assert_eq!(next_planned(&steps, 50.0).map(|s| s.percent), Some(100.0));
//! assert_eq!(next_planned(&steps, 100.0), None);
//! ```

use super::record::StageRecord;
use super::state::StageSnapshot;
use crate::config::{CanaryStep, ManagedStage};

/// The steps the canary of `deployment` follows: those its `start` gave,
/// else the stage's configured `canary_steps`.
pub fn planned_steps<'a>(
    stage: &'a ManagedStage,
    record: &'a StageRecord,
    deployment: &str,
) -> &'a [CanaryStep] {
    match &record.canary_plan {
        Some(p) if p.deployment_id == deployment && !p.steps.is_empty() => &p.steps,
        _ => &stage.canary_steps,
    }
}

/// The index of the step the canary at `percent` is on: the last step at or
/// below it (a share set by hand between steps counts as the step below);
/// `None` below the first step.
pub fn step_index(steps: &[CanaryStep], percent: f64) -> Option<usize> {
    steps.iter().rposition(|s| s.percent <= percent)
}

/// The first planned step above `percent`; `None` at 100 % (or above), when
/// the next move is promotion.
pub fn next_planned(steps: &[CanaryStep], percent: f64) -> Option<CanaryStep> {
    if percent >= 100.0 {
        return None;
    }
    steps.iter().copied().find(|s| s.percent > percent)
}

/// The gate the active canary of `snapshot` waits at, as (deployment,
/// percent): its current step requires approval and none was given for it.
pub fn awaiting_approval(
    stage: &ManagedStage,
    record: &StageRecord,
    snapshot: &StageSnapshot,
) -> Option<(String, f64)> {
    let c = snapshot
        .canary
        .as_ref()
        .filter(|c| c.is_active(&snapshot.deployment_id))?;
    let steps = planned_steps(stage, record, &c.deployment_id);
    let step = steps
        .iter()
        .find(|s| s.percent == c.percent_traffic)
        .filter(|s| s.approve)?;
    (!record.is_approved(&c.deployment_id, step.percent))
        .then(|| (c.deployment_id.clone(), step.percent))
}

/// Why `steps` cannot be a canary's plan, if they cannot: the rules of the
/// configuration's `canary_steps` (each above 0 and at most 100, strictly
/// increasing, ending at 100).
pub fn check_steps(steps: &[CanaryStep]) -> Result<(), String> {
    if let Some(bad) = steps
        .iter()
        .find(|s| !(s.percent.is_finite() && s.percent > 0.0 && s.percent <= 100.0))
    {
        return Err(format!(
            "step {} is out of range: each step is a percentage above 0 and at most 100",
            bad.percent
        ));
    }
    let increasing = steps
        .windows(2)
        .all(|w| matches!(w, [a, b] if a.percent < b.percent));
    if !increasing || steps.last().map(|s| s.percent) != Some(100.0) {
        return Err(
            "steps must be strictly increasing and end at 100, e.g. [5, 25, 50, 100]".to_owned(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
