//! Progressive delivery and rollback for API Gateway stages, as pure
//! decisions. The rollback Lambda is the adapter: it parses its input
//! ([`events`]), reads the stage, alarms, canary metrics and deployments
//! ([`state`]), decodes the stage's [`bookkeeping`], calls [`decide()`], and
//! carries out the [`Decision`]'s [`plan`](Decision::plan) step by step,
//! re-checking each step's [`Expectation`] first ([`patch`]).
//!
//! # Rules
//! - **Managed stages only.** A snapshot that is not the configured stage
//!   gets [`Hold::NotManaged`] and an empty plan; alarms not configured for
//!   the stage get [`Hold::NotWatched`].
//! - **Re-check before patching.** Every plan step carries the stage state
//!   it relies on, including the bookkeeping, which every action rewrites in
//!   the same request.
//! - **Never to a missing deployment.** A rollback target (last-known-good)
//!   or promotion/step target outside [`Signals::deployments`] gives
//!   [`Hold::DeploymentMissing`], which needs attention.
//! - **One action per alarm transition.** A transition is `alarm@time`;
//!   the bookkeeping keeps, per alarm, the time of the newest handled one, so
//!   a redelivered or older event is a [`Hold::Duplicate`]. The scheduled
//!   check reads the same time from `DescribeAlarms`, so it acts only on
//!   transitions no event handled. An alarm that stays in ALARM after its
//!   action is not acted on again ([`Hold::StillAlarming`], attention) until
//!   it transitions again.
//! - **Which alarms count.** Stage alarms always; canary alarms only while a
//!   canary is active (some traffic on a different deployment). Only
//!   `ALARM` is unhealthy; `INSUFFICIENT_DATA` is not (a quiet canary has no
//!   data; `min_requests` guards the error-rate judgement instead).
//! - **Canary unhealthy** (fresh canary or stage alarm in ALARM, or 5XX
//!   rate above `error_rate_threshold` with at least `min_requests`):
//!   [`Action::RemoveCanary`] — traffic to 0 %, then settings removed.
//!   Never delayed, by cooldown or pause.
//! - **Stage unhealthy, no active canary**: [`Action::RollbackStage`] to
//!   last-known-good, removing leftover canary settings first.
//! - **Cooldown** (against flapping) starts at each rollback (canary removal
//!   or stage rollback). Until it ends, a further automatic stage rollback is
//!   deferred (the alarm is not marked handled, so the schedule acts once the
//!   cooldown is over if it is still in ALARM) and canaries do not progress.
//!   Canary steps are spaced by `bake_time`, not by the cooldown. Operator
//!   commands ignore it.
//! - **Unreadable means halt.** An unreadable watched alarm, or unreadable
//!   canary metrics, stops progression and known-good recording and restarts
//!   the bake; it never triggers a rollback, and never prevents one that other
//!   evidence calls for.
//! - **Pause** stops automatic progression (steps, promotion, known-good,
//!   leftover cleanup) and never stops a safety rollback — CodeDeploy's and
//!   Flagger's semantics: a frozen rollout must still be able to retreat.
//!   Resuming restarts the bake timers. Operator promote/rollback still work
//!   while paused.
//! - **Dry-run** computes the same decision, marked [`Decision::dry_run`];
//!   the adapter logs it and sends nothing, bookkeeping included.
//! - **Progression** (schedule only): a healthy active canary whose step has
//!   baked moves to the next of `canary_steps`; after baking at 100 % it is
//!   promoted (AWS's promote, then its settings removed). Canary settings at
//!   0 % or on the stage's own deployment are leftovers and removed, never
//!   progressed.
//! - **Known-good**: a stage deployment continuously healthy for `bake_time`
//!   is recorded ([`Action::RecordKnownGood`]). A promoted deployment bakes
//!   again as the stage's own before it qualifies.
//! - **Priority**: safety, then (transitions) record, then (schedule)
//!   progression, then known-good.

pub mod action;
pub mod audit;
pub mod bookkeeping;
pub mod decide;
pub mod events;
pub mod metrics;
pub mod patch;
pub mod state;
pub mod trigger;

pub use action::{Action, ActionKind, Hold, RemoveReason, RollbackReason};
pub use audit::AuditRecord;
pub use bookkeeping::{Bookkeeping, BookkeepingError};
pub use decide::{decide, is_managed, Decision};
pub use events::{parse, stages_watching, AlarmEvent, EventError, Input};
pub use metrics::{canary_query, CanaryMetricQuery};
pub use patch::{simulate, Drift, Expectation, PatchOp, PatchOpKind, PatchStep, SimulateError};
pub use state::{AlarmReading, AlarmState, CanaryMetrics, CanarySnapshot, Signals, StageSnapshot};
pub use trigger::{ManualCommand, Transition, Trigger};
