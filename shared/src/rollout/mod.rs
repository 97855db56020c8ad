//! Progressive delivery and rollback for API Gateway stages, as pure
//! decisions. The rollback Lambda is the adapter: it parses its input
//! ([`parse`]), takes the stage's lease, reads the stage, alarms, canary
//! metrics and the deployments it may move to ([`StageSnapshot`]) and
//! Tidegate's [`StageRecord`] of the stage, calls [`decide()`], and carries
//! out the [`Decision`]'s [`plan`](Decision::plan) step by step, re-checking
//! each step's [`Expectation`] first ([`simulate`]), then writes the next record
//! conditionally on the version it read.
//!
//! # Rules
//! - **Managed stages only.** A snapshot that is not the configured stage
//!   gets [`Hold::NotManaged`] and an empty plan; alarms not configured for
//!   the stage get [`Hold::NotWatched`].
//! - **Nothing on the stage but the release.** Tidegate's memory is the
//!   [`StageRecord`], kept by the adapter; it writes no stage variable, so
//!   the user's pipeline (Terraform, CloudFormation) can own them.
//! - **Re-check before patching.** Every plan step carries the stage state
//!   it relies on and the state it leads to.
//! - **Never to a deployment not known to exist.** A rollback target
//!   (last-known-good) or promotion/step target that `GetDeployment` did not
//!   find gives [`Hold::DeploymentMissing`]; one it could not check gives
//!   [`Hold::DeploymentUnverified`]. Both need attention.
//! - **Canary safety is level-triggered.** An active canary (some traffic on
//!   a different deployment) while any watched alarm is in ALARM, or with
//!   its 5XX rate above `error_rate_threshold` over at least `min_requests`,
//!   is removed ([`Action::RemoveCanary`], one request), whether or not that
//!   alarm transition was seen before, and whatever the cooldown or pause.
//! - **Stage rollbacks are edge-triggered.** With no active canary, a fresh
//!   stage-alarm transition to ALARM rolls the stage back to last-known-good
//!   once ([`Action::RollbackStage`]); the record keeps, per alarm, the time
//!   of the newest handled transition, so a redelivered or older event is a
//!   [`Hold::Duplicate`]. An alarm still in ALARM after its rollback is not
//!   acted on again ([`Hold::StillAlarming`], attention) until it transitions
//!   again.
//! - **Which alarms count.** Stage alarms always; canary alarms only while a
//!   canary is active. Only `ALARM` is unhealthy; `INSUFFICIENT_DATA` is no
//!   evidence either way: it never triggers, and it halts progression and
//!   known-good ([`Hold::NoEvidence`]). An alarm whose actions are
//!   suppressed or muted triggers nothing and halts progression.
//! - **The canary's own metrics.** The window starts no earlier than the
//!   canary ([`canary_query`]), so a canary never inherits its
//!   predecessor's errors; a missing metric dimension or an incomplete read
//!   is unknown, never zero.
//! - **Cooldown** (against flapping) starts at each rollback. Until it ends,
//!   a further automatic stage rollback is deferred (the alarm is not marked
//!   handled, so the schedule acts once the cooldown is over if it is still
//!   in ALARM) and canaries do not progress. Canary steps are spaced by
//!   `bake_time`. Operator commands ignore it.
//! - **Unreadable means halt.** An unreadable watched alarm, or unreadable
//!   canary metrics, stops progression and known-good recording and restarts
//!   the bake; it never triggers a rollback, and never prevents one that other
//!   evidence calls for.
//! - **Pause** (who, why, optionally until when) stops automatic
//!   progression and never stops a safety rollback — CodeDeploy's and
//!   Flagger's semantics: a frozen rollout must still be able to retreat.
//!   Resuming restarts the bake timers.
//! - **Leftovers.** Canary settings Tidegate itself left at 0 % while
//!   promoting are removed at once, even while paused or alarming (they make
//!   AWS refuse the user's plain deployments). Other settings with no effect
//!   (0 %, or the stage's own deployment) are removed by progression.
//! - **Dry-run** computes the same decision, marked [`Decision::dry_run`];
//!   the adapter logs it and sends nothing, record included.
//! - **Progression** (schedule only): a healthy active canary whose step has
//!   baked moves to the next of `canary_steps`; after baking at 100 % it is
//!   promoted (AWS's promote, then its settings removed). A `bake_time`
//!   shorter than a watched alarm's period × evaluation periods halts it
//!   ([`Hold::BakeTimeTooShort`], attention, with the fix).
//! - **Known-good**: a stage deployment continuously healthy for `bake_time`
//!   is recorded ([`Action::RecordKnownGood`]); the adapter re-reads the
//!   alarms right before writing it ([`confirm`]), as before every step and
//!   promotion.
//! - **Manual gates**: a step of `canary_steps` written `{ percent = 50,
//!   approve = true }` holds the canary there, once baked, until an operator
//!   approves ([`Hold::AwaitingApproval`]); the approval ([`Approval`]) is
//!   kept in the record for that deployment and step only. Neither the
//!   schedule nor an operator's `advance` moves past a gate not approved;
//!   `promote` (a deliberate full promotion) does, as Argo's `promote --full`.
//! - **Operator moves**: `advance` takes one planned step now (bake time,
//!   cooldown and pause skipped, never the health check); `start` begins a
//!   canary of an existing deployment at its first step, with its own steps
//!   if given ([`CanaryPlan`]), refused while a canary is active.
//! - **Priority**: safety, then the promotion leftover, then (transitions)
//!   record, then (schedule) progression, then known-good.

mod action;
mod audit;
mod decide;
mod events;
mod gate;
mod legacy;
mod metrics;
mod patch;
mod record;
mod state;
mod trigger;

pub use action::{Action, ActionKind, Hold, RemoveReason, RollbackReason};
pub use audit::AuditRecord;
pub use decide::{canary_since, confirm, decide, deployments_to_check, is_managed, Decision};
pub use events::{
    parse, parse_time, stages_watching, AlarmEvent, AlarmKind, AlarmSource, EventError,
    HttpRequest, HttpVia, Input, MAX_ALARM_NAME,
};
pub use gate::{awaiting_approval, check_steps, next_planned, planned_steps, step_index};
pub use legacy::{BookkeepingError, LegacyBookkeeping};
pub use metrics::{
    api_name_dimension, canary_query, CanaryMetricQuery, APIGW_COUNT_METRIC, APIGW_COUNT_STAT,
    APIGW_ERRORS_METRIC, APIGW_ERRORS_STAT, APIGW_MIN_PERIOD_SECS, APIGW_NAMESPACE,
};
pub use patch::{simulate, Drift, Expectation, PatchOp, PatchOpKind, PatchStep, SimulateError};
pub use record::{Approval, CanaryPlan, Mark, Pause, StageRecord, StepMark};
pub use state::{
    AlarmReading, AlarmState, CanaryMetrics, CanarySnapshot, DeploymentCheck, MetricsReading,
    Signals, StageSnapshot,
};
pub use trigger::{ManualCommand, StartCanary, Transition, Trigger};
