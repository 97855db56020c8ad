//! Operator commands from the control API: pause, resume, rollback,
//! promote.

use super::super::action::{Action, Hold, RemoveReason, RollbackReason};
use super::super::record::{Pause, StageRecord};
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
    if !v.unreadable.is_empty() {
        return Outcome::hold(Hold::AlarmsUnreadable {
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
        return Outcome::hold(Hold::CanaryUnhealthy {
            detail: format!("in ALARM: {}", in_alarm.join(", ")),
        });
    }
    // No evidence is no evidence for an operator either: the adapter's
    // re-read (`confirm`) would withdraw the promotion anyway.
    if !v.no_evidence.is_empty() {
        return Outcome::hold(Hold::NoEvidence {
            alarms: v.no_evidence.iter().map(|(a, _)| (*a).to_owned()).collect(),
        });
    }
    if let Some(hold) = v.metrics.hold() {
        return Outcome::hold(hold);
    }
    if let Some(hold) = unverified(v, &c.deployment_id) {
        return Outcome::hold(hold);
    }
    Outcome::act(Action::PromoteCanary {
        deployment: c.deployment_id.clone(),
        from_deployment: v.snap.deployment_id.clone(),
    })
}
