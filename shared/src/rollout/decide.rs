//! The rollout decision: one managed stage, what was read, what happened →
//! one [`Decision`]. Pure; the rules are listed in the [module
//! docs](super).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::action::{Action, ActionKind, Hold, RemoveReason, RollbackReason};
use super::audit::{AuditCanary, AuditRecord};
use super::bookkeeping::{Bookkeeping, Mark, StepMark};
use super::patch::{self, Expectation, PatchStep};
use super::state::{
    AlarmReading, AlarmState, CanaryMetrics, CanarySnapshot, Signals, StageSnapshot,
};
use super::trigger::{ManualCommand, Transition, Trigger};
use crate::config::{ManagedStage, RestApiRef};

/// The answer for one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// The stage is in dry-run: log everything, send nothing (not even the
    /// bookkeeping).
    pub dry_run: bool,
    /// A person should be told (see [`Hold::needs_attention`]).
    pub attention: bool,
    /// What the stage looked like when decided; the first step re-checks it.
    pub expectation: Expectation,
    /// The bookkeeping after this decision (written by the plan).
    pub bookkeeping: Bookkeeping,
    /// The `UpdateStage` requests, in order; empty when nothing changes.
    pub plan: Vec<PatchStep>,
    /// The audit record to log.
    pub audit: AuditRecord,
}

impl Decision {
    /// Whether the adapter has anything to send (ignoring dry-run).
    pub fn writes(&self) -> bool {
        !self.plan.is_empty()
    }
}

/// Whether `snapshot` is the stage `stage` manages.
pub fn is_managed(stage: &ManagedStage, snapshot: &StageSnapshot) -> bool {
    snapshot.stage_name == stage.stage
        && match &stage.api {
            RestApiRef::Id(id) => snapshot.rest_api_id == *id,
            RestApiRef::Name(name) => snapshot.rest_api_name.as_deref() == Some(name.as_str()),
        }
}

/// Decides what to do with one managed stage.
///
/// `book` is the stage's bookkeeping as decoded from `snapshot.variables`
/// (see [`Bookkeeping::decode_or_pause`]); `now_ms` is the current time.
pub fn decide(
    stage: &ManagedStage,
    snapshot: &StageSnapshot,
    book: &Bookkeeping,
    signals: &Signals,
    trigger: Trigger,
    now_ms: u64,
) -> Decision {
    let view = View::new(stage, snapshot, book, signals, &trigger, now_ms);
    let (action, next, managed) = decide_action(&view, &trigger);
    let plan = if managed {
        patch::plan(&action, snapshot, &next)
    } else {
        Vec::new() // never touch a stage we do not manage
    };
    let attention = action.hold().is_some_and(Hold::needs_attention);
    let audit = AuditRecord {
        at_ms: now_ms,
        rest_api_id: snapshot.rest_api_id.clone(),
        rest_api_name: snapshot.rest_api_name.clone(),
        stage: snapshot.stage_name.clone(),
        summary: action.to_string(),
        trigger,
        action: action.clone(),
        dry_run: stage.dry_run,
        attention,
        deployment_id: snapshot.deployment_id.clone(),
        canary: snapshot.canary.as_ref().map(|c| AuditCanary {
            deployment_id: c.deployment_id.clone(),
            percent_traffic: c.percent_traffic,
        }),
        known_good: book.known_good.as_ref().map(|m| m.deployment_id.clone()),
        firing_alarms: view.firing.iter().map(|f| f.alarm.to_owned()).collect(),
        unreadable_alarms: view
            .unreadable
            .iter()
            .map(|(a, _)| (*a).to_owned())
            .collect(),
        canary_metrics: signals.canary_metrics,
        paused: book.paused.is_some(),
    };
    Decision {
        action,
        dry_run: stage.dry_run,
        attention,
        expectation: Expectation::of(snapshot),
        bookkeeping: next,
        plan,
        audit,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Stage,
    Canary,
}

/// A watched alarm in ALARM.
struct Firing<'a> {
    alarm: &'a str,
    role: Role,
    since_ms: Option<u64>,
    /// Its transition has not been handled yet (unknown `since` counts as
    /// not handled: without it there is no way to tell).
    fresh: bool,
}

enum Canary<'a> {
    Absent,
    Active(&'a CanarySnapshot),
    Leftover(&'a CanarySnapshot),
}

enum Metrics {
    NotNeeded,
    Unreadable,
    TooFew(f64),
    Healthy,
    Unhealthy(CanaryMetrics),
}

/// Everything the rules look at, computed once.
struct View<'a> {
    stage: &'a ManagedStage,
    snap: &'a StageSnapshot,
    book: &'a Bookkeeping,
    signals: &'a Signals,
    now: u64,
    canary: Canary<'a>,
    /// Relevant alarms in ALARM: stage alarms, plus canary alarms while a
    /// canary is active (a canary alarm with no canary is stale).
    firing: Vec<Firing<'a>>,
    /// Relevant alarms that could not be read.
    unreadable: Vec<(&'a str, Role)>,
    metrics: Metrics,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl<'a> View<'a> {
    fn new(
        stage: &'a ManagedStage,
        snap: &'a StageSnapshot,
        book: &'a Bookkeeping,
        signals: &'a Signals,
        trigger: &Trigger,
        now: u64,
    ) -> Self {
        let canary = match &snap.canary {
            None => Canary::Absent,
            Some(c) if c.is_active(&snap.deployment_id) => Canary::Active(c),
            Some(c) => Canary::Leftover(c),
        };
        let active = matches!(canary, Canary::Active(_));
        let watched = stage.stage_alarms.iter().map(|a| (a, Role::Stage)).chain(
            stage
                .canary_alarms
                .iter()
                .filter(|_| active)
                .map(|a| (a, Role::Canary)),
        );
        let mut firing = Vec::new();
        let mut unreadable = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (alarm, role) in watched {
            if !seen.insert(alarm.as_str()) {
                continue;
            }
            let reading = effective_reading(alarm, signals, trigger);
            match reading.state {
                AlarmState::Alarm => firing.push(Firing {
                    alarm,
                    role,
                    since_ms: reading.since_ms,
                    fresh: reading.since_ms.is_none_or(|s| !book.is_handled(alarm, s)),
                }),
                AlarmState::Unreadable => unreadable.push((alarm.as_str(), role)),
                AlarmState::Ok | AlarmState::InsufficientData => {}
            }
        }
        let metrics = if active {
            match signals.sane_metrics() {
                None => Metrics::Unreadable,
                // u64 → f64 may round above 2^53; irrelevant for counts.
                Some(m) if m.count < stage.min_requests as f64 => Metrics::TooFew(m.count),
                Some(m) if m.error_rate() > stage.error_rate_threshold => Metrics::Unhealthy(m),
                Some(_) => Metrics::Healthy,
            }
        } else {
            Metrics::NotNeeded
        };
        Self {
            stage,
            snap,
            book,
            signals,
            now,
            canary,
            firing,
            unreadable,
            metrics,
        }
    }

    fn bake_ms(&self) -> u64 {
        millis(self.stage.bake_time)
    }

    /// When automatic rollbacks and progression may resume after the last
    /// rollback, if that is still in the future.
    fn cooldown_until(&self) -> Option<u64> {
        let until = self
            .book
            .last_rollback_ms?
            .saturating_add(millis(self.stage.cooldown));
        (self.now < until).then_some(until)
    }

    fn exists(&self, deployment: &str) -> bool {
        self.signals.deployments.contains(deployment)
    }
}

/// The reading that counts for `alarm`: the triggering event's state, unless
/// the read shows a newer state.
fn effective_reading(alarm: &str, signals: &Signals, trigger: &Trigger) -> AlarmReading {
    let read = signals.alarm(alarm);
    match trigger {
        Trigger::AlarmTransition(t) if t.alarm == alarm => match read.since_ms {
            Some(s) if s > t.timestamp_ms => read,
            _ => AlarmReading::new(t.new_state, t.timestamp_ms),
        },
        _ => read,
    }
}

/// An action and whether it settles the fresh firing alarms (their
/// transitions are then recorded as handled).
struct Outcome {
    action: Action,
    settles_fresh: bool,
}

impl Outcome {
    fn act(action: Action) -> Self {
        Self {
            action,
            settles_fresh: false,
        }
    }

    fn hold(reason: Hold) -> Self {
        Self::act(Action::None { reason })
    }

    fn settling(mut self) -> Self {
        self.settles_fresh = true;
        self
    }
}

/// The action, the bookkeeping after it, and whether the stage is managed.
fn decide_action(v: &View<'_>, trigger: &Trigger) -> (Action, Bookkeeping, bool) {
    if !is_managed(v.stage, v.snap) {
        let hold = Hold::NotManaged {
            rest_api_id: v.snap.rest_api_id.clone(),
            stage: v.snap.stage_name.clone(),
        };
        return (Action::None { reason: hold }, v.book.clone(), false);
    }
    if let Trigger::AlarmTransition(t) = trigger {
        let watched =
            v.stage.stage_alarms.contains(&t.alarm) || v.stage.canary_alarms.contains(&t.alarm);
        let early = if !watched {
            Some(Hold::NotWatched {
                alarm: t.alarm.clone(),
            })
        } else if v.book.is_handled(&t.alarm, t.timestamp_ms) {
            Some(Hold::Duplicate { transition: t.id() })
        } else {
            None
        };
        if let Some(reason) = early {
            return (Action::None { reason }, v.book.clone(), true);
        }
    }

    let mut next = v.book.clone();
    observe(v, &mut next);
    let outcome = match trigger {
        Trigger::Manual { command, reason } => match command {
            ManualCommand::Pause => pause(v, &mut next, reason),
            ManualCommand::Resume => resume(v, &mut next),
            ManualCommand::Rollback => manual_rollback(v, reason),
            ManualCommand::Promote => manual_promote(v),
        },
        Trigger::AlarmTransition(t) => automatic(v, &next, Some(t)),
        Trigger::Schedule => automatic(v, &next, None),
    };

    apply_effects(v, &mut next, &outcome.action);
    let deferred = matches!(
        outcome.action,
        Action::None {
            reason: Hold::Cooldown { .. }
        }
    );
    if outcome.settles_fresh {
        for f in v.firing.iter().filter(|f| f.fresh) {
            if let Some(s) = f.since_ms {
                next.mark_handled(f.alarm, s);
            }
        }
    }
    if let (Trigger::AlarmTransition(t), false) = (trigger, deferred) {
        next.mark_handled(&t.alarm, t.timestamp_ms);
    }
    (outcome.action, next, true)
}

/// Brings the bake marks up to date with what the stage shows: a new
/// deployment or canary step starts baking now, and doubt about health
/// (an alarm firing or unreadable, canary metrics bad or unreadable)
/// restarts the bake.
fn observe(v: &View<'_>, next: &mut Bookkeeping) {
    let dep = &v.snap.deployment_id;
    let live = match next.live.take() {
        Some(m) if m.deployment_id == *dep => m,
        _ => Mark::new(dep.clone(), v.now),
    };
    let stage_doubt = v.firing.iter().any(|f| f.role == Role::Stage)
        || v.unreadable.iter().any(|(_, r)| *r == Role::Stage);
    next.live = Some(Mark {
        at_ms: if stage_doubt { v.now } else { live.at_ms },
        ..live
    });

    next.step = match v.canary {
        Canary::Active(c) => {
            let step = match next.step.take() {
                Some(s) if s.deployment_id == c.deployment_id && s.percent == c.percent_traffic => {
                    s
                }
                _ => StepMark {
                    deployment_id: c.deployment_id.clone(),
                    percent: c.percent_traffic,
                    since_ms: v.now,
                },
            };
            let doubt = !v.firing.is_empty()
                || !v.unreadable.is_empty()
                || matches!(v.metrics, Metrics::Unreadable | Metrics::Unhealthy(_));
            Some(StepMark {
                since_ms: if doubt { v.now } else { step.since_ms },
                ..step
            })
        }
        Canary::Absent | Canary::Leftover(_) => None,
    };
}

/// Alarm transitions and the schedule: safety first, then (schedule only)
/// progression.
fn automatic(v: &View<'_>, next: &Bookkeeping, transition: Option<&Transition>) -> Outcome {
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

fn remove_canary(c: &CanarySnapshot, reason: RemoveReason) -> Action {
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
fn rollback_to_known_good(v: &View<'_>, reason: RollbackReason, automatic: bool) -> Outcome {
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
pub fn next_step(steps: &[f64], current: f64) -> Option<f64> {
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

fn pause(v: &View<'_>, next: &mut Bookkeeping, reason: &str) -> Outcome {
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

fn resume(v: &View<'_>, next: &mut Bookkeeping) -> Outcome {
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
fn manual_rollback(v: &View<'_>, reason: &str) -> Outcome {
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
fn manual_promote(v: &View<'_>) -> Outcome {
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

/// Records what an action does to the bookkeeping.
fn apply_effects(v: &View<'_>, next: &mut Bookkeeping, action: &Action) {
    let now = v.now;
    match action {
        Action::RemoveCanary {
            deployment_id,
            reason,
            ..
        } => {
            next.last_action_ms = Some(now);
            if !matches!(reason, RemoveReason::Leftover) {
                next.last_rollback_ms = Some(now);
            }
            next.step = None;
            next.push_history(now, ActionKind::RemoveCanary, deployment_id);
        }
        Action::RollbackStage { to_deployment, .. } => {
            next.last_action_ms = Some(now);
            next.last_rollback_ms = Some(now);
            next.live = Some(Mark::new(to_deployment.clone(), now));
            next.step = None;
            next.push_history(now, ActionKind::RollbackStage, to_deployment);
        }
        Action::SetCanaryPercent {
            deployment_id, to, ..
        } => {
            next.last_action_ms = Some(now);
            next.step = Some(StepMark {
                deployment_id: deployment_id.clone(),
                percent: *to,
                since_ms: now,
            });
            next.push_history(now, ActionKind::SetCanaryPercent, deployment_id);
        }
        Action::PromoteCanary { deployment, .. } => {
            next.last_action_ms = Some(now);
            // The promoted deployment bakes again as the stage's own before
            // it becomes known-good.
            next.live = Some(Mark::new(deployment.clone(), now));
            next.step = None;
            next.push_history(now, ActionKind::PromoteCanary, deployment);
        }
        Action::RecordKnownGood { deployment, .. } => {
            next.known_good = Some(Mark::new(deployment.clone(), now));
            next.push_history(now, ActionKind::RecordKnownGood, deployment);
        }
        Action::None { .. } => {}
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
