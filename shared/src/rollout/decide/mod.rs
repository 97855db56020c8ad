//! The rollout decision: one managed stage, what was read, what happened →
//! one [`Decision`]. Pure; the rules are listed in the [module
//! docs](super).
//!
//! [`decide`] builds a view of the stage once, brings the bake marks up
//! to date, then asks the rules: `automatic` for alarm transitions and the
//! schedule (safety first, then progression), `operator` for commands.

mod automatic;
mod operator;
mod view;

use serde::{Deserialize, Serialize};

use super::action::{Action, Hold, RemoveReason};
use super::audit::{AuditCanary, AuditRecord};
use super::patch::{self, Expectation, PatchStep};
use super::record::{Mark, StageRecord, StepMark};
use super::state::{AlarmReading, Signals, StageSnapshot};
use super::trigger::{ManualCommand, Trigger};
use crate::config::{ManagedStage, RestApiRef};
use automatic::{automatic, edge};
use operator::{approve, manual_advance, manual_promote, manual_rollback, pause, resume, start};
pub use view::canary_since;
use view::{observe, View};

/// The answer for one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// The stage is in dry-run: log everything, send nothing (neither the
    /// stage's plan nor the record).
    pub dry_run: bool,
    /// A person should be told (see [`Hold::needs_attention`]).
    pub attention: bool,
    /// What the stage looked like when decided; the first step re-checks it.
    pub expectation: Expectation,
    /// The record after this decision, written (conditionally on the version
    /// read) once the plan has landed.
    pub record: StageRecord,
    /// Whether [`Decision::record`] differs from the record read.
    pub record_changed: bool,
    /// The `UpdateStage` requests, in order; empty when the stage does not
    /// change.
    pub plan: Vec<PatchStep>,
    /// The action makes progress on the strength of healthy alarms (a step,
    /// a promotion, a known-good record): the adapter re-reads the alarms
    /// right before carrying it out and drops it unless [`confirm`] passes,
    /// so an alarm that fired since the read is never outrun.
    pub confirm_alarms: bool,
    /// The audit record to log.
    pub audit: AuditRecord,
}

impl Decision {
    /// Whether the adapter has anything to send (ignoring dry-run).
    pub fn writes(&self) -> bool {
        !self.plan.is_empty() || self.record_changed
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

/// The deployments a decision on `snapshot` for `trigger` may point the
/// stage at: the known-good one (rollback), the canary's (step, promotion)
/// and the one an operator's `start` names. The adapter checks each with
/// `GetDeployment` into [`Signals::deployments`].
pub fn deployments_to_check(
    record: &StageRecord,
    snapshot: &StageSnapshot,
    trigger: Option<&Trigger>,
) -> Vec<String> {
    let started = match trigger {
        Some(Trigger::Manual {
            start: Some(s),
            command: ManualCommand::Start,
            ..
        }) => Some(s.deployment.clone()),
        _ => None,
    };
    let mut ids: Vec<String> = record
        .known_good
        .iter()
        .map(|m| m.deployment_id.clone())
        .chain(snapshot.canary.iter().map(|c| c.deployment_id.clone()))
        .chain(started)
        .filter(|d| !d.is_empty() && *d != snapshot.deployment_id)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Decides what to do with one managed stage.
///
/// `record` is what the adapter's store holds for the stage (the default
/// for a stage never seen); `now_ms` is the current time.
pub fn decide(
    stage: &ManagedStage,
    snapshot: &StageSnapshot,
    record: &StageRecord,
    signals: &Signals,
    trigger: Trigger,
    now_ms: u64,
) -> Decision {
    let view = View::new(stage, snapshot, record, signals, &trigger, now_ms);
    let (action, next, managed) = decide_action(&view, &trigger);
    let plan = if managed {
        patch::plan(&action, snapshot)
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
        actor: trigger.actor().to_owned(),
        trigger,
        action: action.clone(),
        dry_run: stage.dry_run,
        attention,
        deployment_id: snapshot.deployment_id.clone(),
        canary: snapshot.canary.as_ref().map(|c| AuditCanary {
            deployment_id: c.deployment_id.clone(),
            percent_traffic: c.percent_traffic,
        }),
        known_good: record.known_good.as_ref().map(|m| m.deployment_id.clone()),
        firing_alarms: view.firing.iter().map(|f| f.alarm.to_owned()).collect(),
        unreadable_alarms: view
            .unreadable
            .iter()
            .map(|(a, _)| (*a).to_owned())
            .collect(),
        canary_metrics: signals.canary_metrics.sane(),
        paused: view.paused.is_some(),
    };
    let confirm_alarms = matches!(
        action,
        Action::SetCanaryPercent { .. }
            | Action::PromoteCanary { .. }
            | Action::RecordKnownGood { .. }
    );
    Decision {
        action,
        dry_run: stage.dry_run,
        attention,
        expectation: Expectation::of(snapshot),
        record_changed: managed && next != *record,
        record: next,
        plan,
        confirm_alarms,
        audit,
    }
}

/// Whether alarms re-read right before carrying out a progression
/// ([`Decision::confirm_alarms`]) still show no doubt: every watched alarm
/// readable, none in ALARM (suppressed or not), none without data. `Err`
/// names what stands in the way; the decision is then dropped.
pub fn confirm(
    stage: &ManagedStage,
    snapshot: &StageSnapshot,
    record: &StageRecord,
    alarms: &std::collections::BTreeMap<String, AlarmReading>,
    now_ms: u64,
) -> Result<(), Hold> {
    let signals = Signals {
        alarms: alarms.clone(),
        ..Signals::default()
    };
    let view = View::new(
        stage,
        snapshot,
        record,
        &signals,
        &Trigger::Schedule,
        now_ms,
    );
    match automatic::alarm_doubt(&view) {
        Some(hold) => Err(hold),
        None => Ok(()),
    }
}

/// An action and whether it settles the firing alarms (their transitions
/// are then recorded as handled).
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

/// The action, the record after it, and whether the stage is managed.
fn decide_action(v: &View<'_>, trigger: &Trigger) -> (Action, StageRecord, bool) {
    if !is_managed(v.stage, v.snap) {
        let hold = Hold::NotManaged {
            rest_api_id: v.snap.rest_api_id.clone(),
            stage: v.snap.stage_name.clone(),
        };
        return (Action::None { reason: hold }, v.record.clone(), false);
    }
    if let Trigger::AlarmTransition(t) = trigger {
        let watched =
            v.stage.stage_alarms.contains(&t.alarm) || v.stage.canary_alarms.contains(&t.alarm);
        if !watched {
            let hold = Hold::NotWatched {
                alarm: t.alarm.clone(),
            };
            return (Action::None { reason: hold }, v.record.clone(), true);
        }
    }

    let mut next = v.record.clone();
    next.retain_watched(v.stage.stage_alarms.iter().chain(&v.stage.canary_alarms));
    observe(v, &mut next);
    let outcome = match trigger {
        Trigger::Manual {
            command,
            reason,
            operator,
            until_ms,
            start: started,
        } => match command {
            ManualCommand::Pause => pause(v, &mut next, operator, reason, *until_ms),
            ManualCommand::Resume => resume(v, &mut next),
            ManualCommand::Rollback => manual_rollback(v, reason),
            ManualCommand::Promote => manual_promote(v),
            ManualCommand::Advance => manual_advance(v),
            ManualCommand::Approve => approve(v, &mut next, operator, reason),
            ManualCommand::Start => start(v, &mut next, started.as_ref()),
        },
        Trigger::AlarmTransition(t) => automatic(v, &next, Some(t)),
        Trigger::Schedule => automatic(v, &next, None),
        Trigger::Edge(event) => edge(v, event),
    };

    apply_effects(v, &mut next, &outcome.action);
    // A transition acted on later is not handled yet: one deferred by the
    // cooldown, or one whose alarm's actions are suppressed or muted (once
    // they no longer are, it counts as the schedule would count it).
    let deferred = matches!(
        outcome.action,
        Action::None {
            reason: Hold::Cooldown { .. }
        }
    ) || matches!(trigger, Trigger::AlarmTransition(t)
        if v.suppressed.iter().any(|(a, _)| *a == t.alarm));
    if outcome.settles_fresh {
        for f in &v.firing {
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

/// Records what an action does to the record.
fn apply_effects(v: &View<'_>, next: &mut StageRecord, action: &Action) {
    let now = v.now;
    match action {
        Action::RemoveCanary { reason, .. } => {
            next.last_action_ms = Some(now);
            if !matches!(
                reason,
                RemoveReason::Leftover | RemoveReason::PromotionLeftover
            ) {
                next.last_rollback_ms = Some(now);
            }
            next.step = None;
            next.zeroed_canary = None;
            next.clear_canary();
        }
        Action::RollbackStage { to_deployment, .. } => {
            next.last_action_ms = Some(now);
            next.last_rollback_ms = Some(now);
            next.live = Some(Mark::new(to_deployment.clone(), now));
            next.step = None;
            next.zeroed_canary = None;
            next.clear_canary();
        }
        Action::SetCanaryPercent {
            deployment_id, to, ..
        } => {
            next.last_action_ms = Some(now);
            next.step = Some(StepMark {
                deployment_id: deployment_id.clone(),
                percent: *to,
                since_ms: now,
                canary_since_ms: canary_since(v.record, v.snap, now),
            });
        }
        Action::StartCanary {
            deployment_id,
            percent,
        } => {
            next.last_action_ms = Some(now);
            next.approval = None;
            next.zeroed_canary = None;
            // A new canary: its metric window starts now, never earlier.
            next.step = Some(StepMark {
                deployment_id: deployment_id.clone(),
                percent: *percent,
                since_ms: now,
                canary_since_ms: now,
            });
        }
        Action::PromoteCanary { deployment, .. } => {
            next.last_action_ms = Some(now);
            next.clear_canary();
            // The promoted deployment bakes again as the stage's own before
            // it becomes known-good.
            next.live = Some(Mark::new(deployment.clone(), now));
            next.step = None;
            // The plan's first request leaves the canary at 0 %; if the
            // second does not land, this makes the next decision remove it.
            next.zeroed_canary = Some(deployment.clone());
        }
        Action::RecordKnownGood { deployment, .. } => {
            next.set_known_good(deployment, now);
        }
        Action::None { .. } => {}
    }
}

#[cfg(test)]
mod tests;
