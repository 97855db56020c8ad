//! The rollout decision: one managed stage, what was read, what happened →
//! one [`Decision`]. Pure; the rules are listed in the [module
//! docs](super).
//!
//! [`decide`] builds a [`View`] of the stage once, brings the bake marks up
//! to date, then asks the rules: [`automatic`] for alarm transitions and the
//! schedule (safety first, then progression), [`operator`] for commands.

mod automatic;
mod operator;
mod view;

use serde::{Deserialize, Serialize};

use super::action::{Action, ActionKind, Hold, RemoveReason};
use super::audit::{AuditCanary, AuditRecord};
use super::bookkeeping::{Bookkeeping, Mark, StepMark};
use super::patch::{self, Expectation, PatchStep};
use super::state::{Signals, StageSnapshot};
use super::trigger::{ManualCommand, Trigger};
use crate::config::{ManagedStage, RestApiRef};
use automatic::automatic;
use operator::{manual_promote, manual_rollback, pause, resume};
use view::{observe, View};

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
mod tests;
