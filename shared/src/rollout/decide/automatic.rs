//! Alarm transitions and the schedule: safety first (take traffic off new
//! code), then progression (steps, promotion, known-good).

use super::super::action::{Action, Hold, RemoveReason, RollbackReason};
use super::super::bookkeeping::Bookkeeping;
use super::super::state::{AlarmState, CanarySnapshot};
use super::super::trigger::Transition;
use super::view::{Canary, Firing, Metrics, Role, View};
use super::Outcome;

/// Alarm transitions and the schedule: safety first, then (schedule only)
/// progression.
pub(super) fn automatic(
    v: &View<'_>,
    next: &Bookkeeping,
    transition: Option<&Transition>,
) -> Outcome {
    if let Some(outcome) = safety(v) {
        return outcome;
    }
    match transition {
        Some(t) => Outcome::hold(transition_hold(v, t)),
        None => progression(v, next),
    }
}

/// Takes traffic off new code when a fresh alarm fires or the canary's
/// error rate is too high. Pause and dry-run never stop this (dry-run only
/// stops the adapter from carrying it out).
fn safety(v: &View<'_>) -> Option<Outcome> {
    let mut fresh = v.firing.iter().filter(|f| f.fresh);
    match v.canary {
        Canary::Active(c) => {
            let fresh: Vec<&Firing<'_>> = fresh.collect();
            let reason = fresh
                .iter()
                .find(|f| f.role == Role::Canary)
                .map(|f| RemoveReason::CanaryAlarm {
                    alarm: f.alarm.to_owned(),
                })
                .or_else(|| {
                    fresh.first().map(|f| RemoveReason::StageAlarm {
                        alarm: f.alarm.to_owned(),
                    })
                })
                .or(match v.metrics {
                    Metrics::Unhealthy(m) => Some(RemoveReason::ErrorRate {
                        errors_5xx: m.errors_5xx,
                        count: m.count,
                        threshold: v.stage.error_rate_threshold,
                    }),
                    _ => None,
                })?;
            Some(Outcome::act(remove_canary(c, reason)).settling())
        }
        Canary::Absent | Canary::Leftover(_) => {
            let f = fresh.next()?;
            let reason = RollbackReason::StageAlarm {
                alarm: f.alarm.to_owned(),
            };
            Some(rollback_to_known_good(v, reason, true))
        }
    }
}

pub(super) fn remove_canary(c: &CanarySnapshot, reason: RemoveReason) -> Action {
    Action::RemoveCanary {
        deployment_id: c.deployment_id.clone(),
        percent: c.percent_traffic,
        reason,
    }
}

/// Rolls the stage back to its last-known-good deployment, if there is one,
/// it differs, and it still exists. Automatic rollbacks wait out the
/// cooldown of the previous rollback (the alarm may still be settling);
/// that wait is a deferral, not a verdict.
pub(super) fn rollback_to_known_good(
    v: &View<'_>,
    reason: RollbackReason,
    automatic: bool,
) -> Outcome {
    if automatic {
        if let Some(until_ms) = v.cooldown_until() {
            return Outcome::hold(Hold::Cooldown { until_ms });
        }
    }
    let outcome = match &v.book.known_good {
        None => Outcome::hold(Hold::NoKnownGood),
        Some(kg) if kg.deployment_id == v.snap.deployment_id => {
            Outcome::hold(Hold::AlreadyOnKnownGood {
                deployment: kg.deployment_id.clone(),
            })
        }
        Some(kg) if !v.exists(&kg.deployment_id) => Outcome::hold(Hold::DeploymentMissing {
            deployment: kg.deployment_id.clone(),
        }),
        Some(kg) => Outcome::act(Action::RollbackStage {
            from_deployment: v.snap.deployment_id.clone(),
            to_deployment: kg.deployment_id.clone(),
            reason,
            clears_leftover_canary: matches!(v.canary, Canary::Leftover(_)),
        }),
    };
    outcome.settling()
}

/// Why a transition that caused no action was only recorded.
fn transition_hold(v: &View<'_>, t: &Transition) -> Hold {
    if t.new_state == AlarmState::Alarm {
        let canary_only = !v.stage.stage_alarms.contains(&t.alarm);
        if canary_only && !matches!(v.canary, Canary::Active(_)) {
            return Hold::NoActiveCanary {
                alarm: t.alarm.clone(),
            };
        }
        if !v.firing.iter().any(|f| f.alarm == t.alarm) {
            return Hold::AlarmRecovered {
                alarm: t.alarm.clone(),
            };
        }
    }
    Hold::TransitionRecorded { transition: t.id() }
}

/// The scheduled path once nothing calls for a rollback: clean up leftover
/// canary settings, advance a healthy canary past its bake time, promote at
/// 100 %, record a baked deployment as known-good. Halts when paused, when
/// any watched alarm can't be read or is still in ALARM, and when canary
/// metrics can't be read.
fn progression(v: &View<'_>, next: &Bookkeeping) -> Outcome {
    if let Some(p) = &v.book.paused {
        return Outcome::hold(Hold::Paused {
            reason: p.reason.clone(),
        });
    }
    if !v.unreadable.is_empty() {
        return Outcome::hold(Hold::AlarmsUnreadable {
            alarms: v.unreadable.iter().map(|(a, _)| (*a).to_owned()).collect(),
        });
    }
    if !v.firing.is_empty() {
        return Outcome::hold(Hold::StillAlarming {
            alarms: v.firing.iter().map(|f| f.alarm.to_owned()).collect(),
        });
    }
    let c = match v.canary {
        Canary::Leftover(c) => return Outcome::act(remove_canary(c, RemoveReason::Leftover)),
        Canary::Absent => {
            return Outcome::act(known_good_due(v, next).unwrap_or_else(|| Action::None {
                reason: stage_baking(v, next),
            }))
        }
        Canary::Active(c) => c,
    };
    let waiting = if let Some(until_ms) = v.cooldown_until() {
        Some(Hold::Cooldown { until_ms })
    } else {
        match v.metrics {
            Metrics::Unreadable => return Outcome::hold(Hold::MetricsUnreadable),
            Metrics::Unhealthy(m) => {
                // Safety removes such a canary first; kept for completeness.
                return Outcome::hold(Hold::CanaryUnhealthy {
                    detail: format!("5XX rate {}/{}", m.errors_5xx, m.count),
                });
            }
            Metrics::TooFew(count) => Some(Hold::NotEnoughRequests {
                count,
                min: v.stage.min_requests,
            }),
            Metrics::Healthy | Metrics::NotNeeded => {
                let since = next.step.as_ref().map_or(v.now, |s| s.since_ms);
                let left = v.bake_ms().saturating_sub(v.now.saturating_sub(since));
                (left > 0).then(|| Hold::Baking {
                    deployment: c.deployment_id.clone(),
                    remaining_ms: left,
                })
            }
        }
    };
    if let Some(hold) = waiting {
        // While the canary waits, the stage's own deployment may be due.
        return Outcome::act(known_good_due(v, next).unwrap_or(Action::None { reason: hold }));
    }
    if !v.exists(&c.deployment_id) {
        return Outcome::hold(Hold::DeploymentMissing {
            deployment: c.deployment_id.clone(),
        });
    }
    match next_step(&v.stage.canary_steps, c.percent_traffic) {
        Some(to) => Outcome::act(Action::SetCanaryPercent {
            deployment_id: c.deployment_id.clone(),
            from: c.percent_traffic,
            to,
        }),
        None => Outcome::act(Action::PromoteCanary {
            deployment: c.deployment_id.clone(),
            from_deployment: v.snap.deployment_id.clone(),
        }),
    }
}

/// The first configured step above `current`; `None` at 100 % (or above).
pub(super) fn next_step(steps: &[f64], current: f64) -> Option<f64> {
    if current >= 100.0 {
        return None;
    }
    steps.iter().copied().find(|s| *s > current)
}

/// `RecordKnownGood` if the stage's deployment has been healthy for the bake
/// time and is not already the known-good one.
fn known_good_due(v: &View<'_>, next: &Bookkeeping) -> Option<Action> {
    let live = next.live.as_ref()?;
    let previous = v.book.known_good.as_ref().map(|m| m.deployment_id.clone());
    let baked = v.now.saturating_sub(live.at_ms) >= v.bake_ms();
    (baked && previous.as_deref() != Some(live.deployment_id.as_str())).then(|| {
        Action::RecordKnownGood {
            deployment: live.deployment_id.clone(),
            previous,
        }
    })
}

fn stage_baking(v: &View<'_>, next: &Bookkeeping) -> Hold {
    let is_known_good = v
        .book
        .known_good
        .as_ref()
        .is_some_and(|m| m.deployment_id == v.snap.deployment_id);
    match &next.live {
        Some(live) if !is_known_good => Hold::Baking {
            deployment: live.deployment_id.clone(),
            remaining_ms: v.bake_ms().saturating_sub(v.now.saturating_sub(live.at_ms)),
        },
        _ => Hold::Steady,
    }
}
