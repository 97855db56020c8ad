//! Operator commands from the control API: pause, resume, rollback,
//! promote, advance, approve, start.

use super::super::action::{Action, Hold, RemoveReason, RollbackReason};
use super::super::gate::{awaiting_approval, check_steps, next_planned, planned_steps};
use super::super::record::{Approval, CanaryPlan, Pause, StageRecord, REASON_MAX_CHARS};
use super::super::state::CanarySnapshot;
use super::super::trigger::StartCanary;
use super::automatic::{remove_canary, rollback_to_known_good, unverified};
use super::view::{Canary, View};
use super::Outcome;

/// Pauses automatic progression, recording who, why and until when.
pub(super) fn pause(
    v: &View<'_>,
    next: &mut StageRecord,
    operator: &str,
    reason: &str,
    until_ms: Option<u64>,
) -> Outcome {
    match v.paused {
        Some(p) => Outcome::hold(Hold::Paused {
            reason: p.reason.clone(),
        }),
        None => {
            next.paused = Some(Pause::new(v.now, operator, reason, until_ms));
            Outcome::hold(Hold::PausedNow)
        }
    }
}

pub(super) fn resume(v: &View<'_>, next: &mut StageRecord) -> Outcome {
    if v.paused.is_none() || next.paused.take().is_none() {
        return Outcome::hold(Hold::NotPaused);
    }
    // Time spent paused does not count as baked: an operator who paused was
    // not sure of the stage.
    if let Some(live) = next.live.as_mut() {
        live.at_ms = v.now;
    }
    if let Some(step) = next.step.as_mut() {
        step.since_ms = v.now;
    }
    Outcome::hold(Hold::Resumed)
}

/// Operator rollback: removes an active canary, or else rolls the stage back
/// to last-known-good (clearing leftover canary settings). No cooldown, no
/// pause check; still never to a missing deployment.
pub(super) fn manual_rollback(v: &View<'_>, reason: &str) -> Outcome {
    match v.canary {
        Canary::Active(c) => Outcome::act(remove_canary(
            c,
            RemoveReason::Manual {
                reason: reason.to_owned(),
            },
        ))
        .settling(),
        Canary::Absent | Canary::Leftover(_) => rollback_to_known_good(
            v,
            RollbackReason::Manual {
                reason: reason.to_owned(),
            },
            false,
        ),
    }
}

/// Operator promotion: skips remaining steps, bake time, cooldown and pause,
/// but not the health check (alarms readable, none in ALARM, suppressed or
/// not, and none without data, as [`super::confirm`] checks again before the
/// write; metrics readable and under the threshold; too few requests is the
/// operator's call) nor the deployment's existence.
pub(super) fn manual_promote(v: &View<'_>) -> Outcome {
    let Canary::Active(c) = v.canary else {
        return Outcome::hold(Hold::NoActiveCanaryToPromote);
    };
    if let Some(hold) = operator_health(v, c) {
        return Outcome::hold(hold);
    }
    Outcome::act(Action::PromoteCanary {
        deployment: c.deployment_id.clone(),
        from_deployment: v.snap.deployment_id.clone(),
    })
}

/// Operator advance: the next planned step now (or promotion after the
/// last), skipping bake time, cooldown and pause, but never the health
/// check [`manual_promote`] makes, nor a gate not yet approved.
pub(super) fn manual_advance(v: &View<'_>) -> Outcome {
    let Canary::Active(c) = v.canary else {
        return Outcome::hold(Hold::NoActiveCanaryToAdvance);
    };
    if let Some(hold) = operator_health(v, c) {
        return Outcome::hold(hold);
    }
    if let Some((deployment, percent)) = awaiting_approval(v.stage, v.record, v.snap) {
        return Outcome::hold(Hold::AwaitingApproval {
            deployment,
            percent,
        });
    }
    let steps = planned_steps(v.stage, v.record, &c.deployment_id);
    Outcome::act(match next_planned(steps, c.percent_traffic) {
        Some(to) => Action::SetCanaryPercent {
            deployment_id: c.deployment_id.clone(),
            from: c.percent_traffic,
            to: to.percent,
        },
        None => Action::PromoteCanary {
            deployment: c.deployment_id.clone(),
            from_deployment: v.snap.deployment_id.clone(),
        },
    })
}

/// Operator approval of the gate the canary waits at: recorded (who, why,
/// when); the canary moves on at the next scheduled run once baked, or at
/// once with `advance`.
pub(super) fn approve(
    v: &View<'_>,
    next: &mut StageRecord,
    operator: &str,
    reason: &str,
) -> Outcome {
    let Some((deployment, percent)) = awaiting_approval(v.stage, v.record, v.snap) else {
        return Outcome::hold(Hold::NotAwaitingApproval);
    };
    next.approval = Some(Approval {
        deployment_id: deployment.clone(),
        percent,
        by: operator.to_owned(),
        reason: reason.chars().take(REASON_MAX_CHARS).collect(),
        at_ms: v.now,
    });
    Outcome::hold(Hold::Approved {
        deployment,
        percent,
    })
}

/// Operator start: a canary of an existing deployment at its first step
/// (its own steps, or the stage's `canary_steps`). Refused while a canary
/// is active; leftover settings are replaced.
pub(super) fn start(v: &View<'_>, next: &mut StageRecord, start: Option<&StartCanary>) -> Outcome {
    let invalid = |detail: &str| {
        Outcome::hold(Hold::InvalidStart {
            detail: detail.to_owned(),
        })
    };
    if let Canary::Active(c) = v.canary {
        return Outcome::hold(Hold::CanaryAlreadyActive {
            deployment: c.deployment_id.clone(),
        });
    }
    let Some(s) = start.filter(|s| !s.deployment.trim().is_empty()) else {
        return invalid("no deployment given: send {\"deployment\": \"<deployment id>\"}");
    };
    if s.deployment == v.snap.deployment_id {
        return invalid("the stage already serves that deployment");
    }
    let steps = s.steps.as_deref().unwrap_or(&v.stage.canary_steps);
    if let Err(e) = check_steps(steps) {
        return invalid(&e);
    }
    let Some(first) = steps.first() else {
        return invalid("no steps");
    };
    if let Some(hold) = unverified(v, &s.deployment) {
        return Outcome::hold(hold);
    }
    next.canary_plan = s.steps.as_ref().map(|steps| CanaryPlan {
        deployment_id: s.deployment.clone(),
        steps: steps.clone(),
    });
    Outcome::act(Action::StartCanary {
        deployment_id: s.deployment.clone(),
        percent: first.percent,
    })
}

/// What an operator's move forward may not skip: alarms readable, none in
/// ALARM (suppressed or not), none without data, metrics readable and under
/// the threshold (too few requests is the operator's call), the canary's
/// deployment known to exist.
fn operator_health(v: &View<'_>, c: &CanarySnapshot) -> Option<Hold> {
    if !v.unreadable.is_empty() {
        return Some(Hold::AlarmsUnreadable {
            alarms: v.unreadable.iter().map(|(a, _)| (*a).to_owned()).collect(),
        });
    }
    let in_alarm: Vec<&str> = v
        .firing
        .iter()
        .map(|f| f.alarm)
        .chain(v.suppressed.iter().map(|(a, _)| *a))
        .collect();
    if !in_alarm.is_empty() {
        return Some(Hold::CanaryUnhealthy {
            detail: format!("in ALARM: {}", in_alarm.join(", ")),
        });
    }
    // No evidence is no evidence for an operator either: the adapter's
    // re-read (`confirm`) would withdraw the move anyway.
    if !v.no_evidence.is_empty() {
        return Some(Hold::NoEvidence {
            alarms: v.no_evidence.iter().map(|(a, _)| (*a).to_owned()).collect(),
        });
    }
    if let Some(hold) = v.metrics.hold() {
        return Some(hold);
    }
    unverified(v, &c.deployment_id)
}
