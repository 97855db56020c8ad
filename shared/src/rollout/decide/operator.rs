//! Operator commands from the control API: pause, resume, rollback,
//! promote.

use super::super::action::{Action, Hold, RemoveReason, RollbackReason};
use super::super::bookkeeping::Bookkeeping;
use super::automatic::{remove_canary, rollback_to_known_good};
use super::view::{Canary, Metrics, View};
use super::Outcome;

pub(super) fn pause(v: &View<'_>, next: &mut Bookkeeping, reason: &str) -> Outcome {
    match &v.book.paused {
        Some(p) => Outcome::hold(Hold::Paused {
            reason: p.reason.clone(),
        }),
        None => {
            next.paused = Some(Bookkeeping::pause(v.now, reason));
            Outcome::hold(Hold::PausedNow)
        }
    }
}

pub(super) fn resume(v: &View<'_>, next: &mut Bookkeeping) -> Outcome {
    if next.paused.take().is_none() {
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
/// but not the health check (alarms readable and quiet, metrics readable and
/// under the threshold; too few requests is accepted) nor the deployment's
/// existence.
pub(super) fn manual_promote(v: &View<'_>) -> Outcome {
    let Canary::Active(c) = v.canary else {
        return Outcome::hold(Hold::NoActiveCanaryToPromote);
    };
    if !v.unreadable.is_empty() {
        return Outcome::hold(Hold::AlarmsUnreadable {
            alarms: v.unreadable.iter().map(|(a, _)| (*a).to_owned()).collect(),
        });
    }
    if !v.firing.is_empty() {
        let names: Vec<&str> = v.firing.iter().map(|f| f.alarm).collect();
        return Outcome::hold(Hold::CanaryUnhealthy {
            detail: format!("in ALARM: {}", names.join(", ")),
        });
    }
    match v.metrics {
        Metrics::Unreadable => return Outcome::hold(Hold::MetricsUnreadable),
        Metrics::Unhealthy(m) => {
            return Outcome::hold(Hold::CanaryUnhealthy {
                detail: format!("5XX rate {}/{}", m.errors_5xx, m.count),
            })
        }
        Metrics::TooFew(_) | Metrics::Healthy | Metrics::NotNeeded => {}
    }
    if !v.exists(&c.deployment_id) {
        return Outcome::hold(Hold::DeploymentMissing {
            deployment: c.deployment_id.clone(),
        });
    }
    Outcome::act(Action::PromoteCanary {
        deployment: c.deployment_id.clone(),
        from_deployment: v.snap.deployment_id.clone(),
    })
}
