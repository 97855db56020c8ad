//! Alarm transitions and the schedule: safety first (take traffic off new
//! code), then progression (steps, promotion, known-good).

use super::super::action::{Action, Hold, RemoveReason, RollbackReason};
use super::super::gate::{awaiting_approval, next_planned, planned_steps};
use super::super::record::StageRecord;
use super::super::state::{AlarmState, CanarySnapshot, DeploymentCheck};
use super::super::trigger::Transition;
use super::view::{Canary, Metrics, Role, View};
use super::Outcome;
use crate::health::{BreachKind, EdgeHealthEvent};

/// Alarm transitions and the schedule: safety first, then the cleanup of
/// Tidegate's own promotion leftover, then (schedule only) progression.
pub(super) fn automatic(
    v: &View<'_>,
    next: &StageRecord,
    transition: Option<&Transition>,
) -> Outcome {
    let held = match safety(v) {
        Some(outcome) if outcome.action.kind().is_some() => return outcome,
        held => held,
    };
    // Before a held rollback (no known-good, cooldown): the cleanup does
    // not settle the alarm, so the rollback is still decided next time.
    if let Some(outcome) = promotion_leftover(v).or(held) {
        return outcome;
    }
    match transition {
        Some(t) if v.record.is_handled(&t.alarm, t.timestamp_ms) => {
            Outcome::hold(Hold::Duplicate { transition: t.id() })
        }
        Some(t) => Outcome::hold(transition_hold(v, t)),
        None => progression(v, next),
    }
}

/// Takes traffic off new code. Level-triggered for canaries: an active
/// canary with any watched alarm in ALARM (seen before or not) or an
/// unhealthy error rate is removed, every time it is found so. A stage
/// rollback is edge-triggered: once per fresh alarm transition, after the
/// cooldown. Pause and dry-run never stop this (dry-run only stops the
/// adapter from carrying it out); suppressed or muted alarms never start it.
fn safety(v: &View<'_>) -> Option<Outcome> {
    match v.canary {
        Canary::Active(c) => {
            let reason = v
                .firing
                .iter()
                .find(|f| f.role == Role::Canary)
                .map(|f| RemoveReason::CanaryAlarm {
                    alarm: f.alarm.to_owned(),
                })
                .or_else(|| {
                    v.firing.first().map(|f| RemoveReason::StageAlarm {
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
            let f = v.firing.iter().find(|f| f.fresh)?;
            let reason = RollbackReason::StageAlarm {
                alarm: f.alarm.to_owned(),
            };
            Some(rollback_to_known_good(v, reason, true))
        }
    }
}

/// The edge's signal, acted on as an alarm transition to ALARM would be,
/// level-triggered: an active canary is removed, unless Tidegate saw it
/// start after the failures began (those belong to an earlier release);
/// without attribution and without a canary, the stage is rolled back as
/// for a fresh stage alarm (after the cooldown). Otherwise the alarms'
/// own safety rule still applies.
pub(super) fn edge(v: &View<'_>, event: &EdgeHealthEvent) -> Outcome {
    let from = event.first_failure_ms.unwrap_or(event.window_from_ms);
    let outcome = match v.canary {
        Canary::Active(c) => {
            // A step mark for this deployment is Tidegate's proof of when the
            // canary began; a canary never seen before is judged on the
            // edge's word (safety first).
            let since = v
                .record
                .step
                .as_ref()
                .filter(|s| s.deployment_id == c.deployment_id)
                .map(|s| s.canary_since_ms);
            match since {
                Some(since) if since > from => Outcome::hold(Hold::EdgeCanaryNewer {
                    deployment: c.deployment_id.clone(),
                    canary_since_ms: since,
                    failures_from_ms: from,
                }),
                _ => Outcome::act(remove_canary(
                    c,
                    RemoveReason::Edge {
                        release: event.release.clone(),
                        breach: event.breach,
                        detail: event.detail.clone(),
                    },
                ))
                .settling(),
            }
        }
        Canary::Absent | Canary::Leftover(_) if event.breach == BreachKind::StageErrorRate => {
            let reason = RollbackReason::Edge {
                breach: event.breach,
                detail: event.detail.clone(),
            };
            rollback_to_known_good(v, reason, true)
        }
        Canary::Absent | Canary::Leftover(_) => Outcome::hold(Hold::EdgeNoCanary {
            release: event.release.clone(),
        }),
    };
    if outcome.action.kind().is_some() {
        return outcome;
    }
    match safety(v) {
        Some(alarms) if alarms.action.kind().is_some() => alarms,
        _ => promotion_leftover(v).unwrap_or(outcome),
    }
}

/// Canary settings Tidegate itself left at 0 % (a promotion whose second
/// request did not land) are removed whatever else is going on: they block
/// the user's plain deployments, which is what an incident needs most.
fn promotion_leftover(v: &View<'_>) -> Option<Outcome> {
    let Canary::Leftover(c) = v.canary else {
        return None;
    };
    let ours = v.record.zeroed_canary.as_deref() == Some(c.deployment_id.as_str());
    ours.then(|| Outcome::act(remove_canary(c, RemoveReason::PromotionLeftover)))
}

pub(super) fn remove_canary(c: &CanarySnapshot, reason: RemoveReason) -> Action {
    Action::RemoveCanary {
        deployment_id: c.deployment_id.clone(),
        percent: c.percent_traffic,
        reason,
    }
}

/// The hold for a deployment not known to exist, if it is not.
pub(super) fn unverified(v: &View<'_>, deployment: &str) -> Option<Hold> {
    match v.signals.deployment(deployment) {
        DeploymentCheck::Exists => None,
        DeploymentCheck::Missing => Some(Hold::DeploymentMissing {
            deployment: deployment.to_owned(),
        }),
        DeploymentCheck::Unknown => Some(Hold::DeploymentUnverified {
            deployment: deployment.to_owned(),
        }),
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
    let outcome = match &v.record.known_good {
        None => Outcome::hold(Hold::NoKnownGood),
        Some(kg) if kg.deployment_id == v.snap.deployment_id => {
            Outcome::hold(Hold::AlreadyOnKnownGood {
                deployment: kg.deployment_id.clone(),
            })
        }
        Some(kg) => match unverified(v, &kg.deployment_id) {
            Some(hold) => Outcome::hold(hold),
            None => Outcome::act(Action::RollbackStage {
                from_deployment: v.snap.deployment_id.clone(),
                to_deployment: kg.deployment_id.clone(),
                reason,
                clears_leftover_canary: matches!(v.canary, Canary::Leftover(_)),
            }),
        },
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
        if v.suppressed.iter().any(|(a, _)| *a == t.alarm) {
            return Hold::AlarmsSuppressed {
                alarms: vec![t.alarm.clone()],
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

fn names(list: &[(&str, Role)]) -> Vec<String> {
    list.iter().map(|(a, _)| (*a).to_owned()).collect()
}

/// Why progression cannot go on, whatever the canary: paused, a
/// misconfigured bake time, or any doubt about the alarms.
pub(super) fn progression_blocked(v: &View<'_>) -> Option<Hold> {
    if let Some(p) = v.paused {
        return Some(Hold::Paused {
            reason: p.reason.clone(),
        });
    }
    if let Some(hold) = &v.bake_too_short {
        return Some(hold.clone());
    }
    alarm_doubt(v)
}

/// The first doubt the alarms cast on health, if any.
pub(super) fn alarm_doubt(v: &View<'_>) -> Option<Hold> {
    if !v.unreadable.is_empty() {
        return Some(Hold::AlarmsUnreadable {
            alarms: names(&v.unreadable),
        });
    }
    if !v.firing.is_empty() {
        return Some(Hold::StillAlarming {
            alarms: v.firing.iter().map(|f| f.alarm.to_owned()).collect(),
        });
    }
    if !v.suppressed.is_empty() {
        return Some(Hold::AlarmsSuppressed {
            alarms: names(&v.suppressed),
        });
    }
    if !v.no_evidence.is_empty() {
        return Some(Hold::NoEvidence {
            alarms: names(&v.no_evidence),
        });
    }
    None
}

/// The scheduled path once nothing calls for a rollback: clean up leftover
/// canary settings, advance a healthy canary past its bake time, promote at
/// 100 %, record a baked deployment as known-good.
fn progression(v: &View<'_>, next: &StageRecord) -> Outcome {
    if let Some(hold) = progression_blocked(v) {
        return Outcome::hold(hold);
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
        // Unhealthy metrics: safety removes such a canary first.
        if let Some(hold) = v.metrics.hold() {
            return Outcome::hold(hold);
        }
        match &v.metrics {
            Metrics::TooFew(count) => Some(Hold::NotEnoughRequests {
                count: *count,
                min: v.stage.min_requests,
            }),
            _ => {
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
    if let Some(hold) = unverified(v, &c.deployment_id) {
        return Outcome::hold(hold);
    }
    // A baked step that requires approval waits for it; the stage's own
    // deployment may still be recorded meanwhile.
    if let Some((deployment, percent)) = awaiting_approval(v.stage, v.record, v.snap) {
        let hold = Hold::AwaitingApproval {
            deployment,
            percent,
        };
        return Outcome::act(known_good_due(v, next).unwrap_or(Action::None { reason: hold }));
    }
    let steps = planned_steps(v.stage, v.record, &c.deployment_id);
    match next_planned(steps, c.percent_traffic) {
        Some(to) => Outcome::act(Action::SetCanaryPercent {
            deployment_id: c.deployment_id.clone(),
            from: c.percent_traffic,
            to: to.percent,
        }),
        None => Outcome::act(Action::PromoteCanary {
            deployment: c.deployment_id.clone(),
            from_deployment: v.snap.deployment_id.clone(),
        }),
    }
}

/// `RecordKnownGood` if the stage's deployment has been healthy for the bake
/// time and is not already the known-good one.
fn known_good_due(v: &View<'_>, next: &StageRecord) -> Option<Action> {
    let live = next.live.as_ref()?;
    let previous = v
        .record
        .known_good
        .as_ref()
        .map(|m| m.deployment_id.clone());
    let baked = v.now.saturating_sub(live.at_ms) >= v.bake_ms();
    (baked && previous.as_deref() != Some(live.deployment_id.as_str())).then(|| {
        Action::RecordKnownGood {
            deployment: live.deployment_id.clone(),
            previous,
        }
    })
}

fn stage_baking(v: &View<'_>, next: &StageRecord) -> Hold {
    let is_known_good = v
        .record
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
