//! Carrying out decisions for one managed stage: take the stage's lease →
//! read the stage, the record and the signals → decide → (for progress)
//! re-read the alarms → for each plan step re-read the stage, check the
//! expectation, patch → write the record on the version read → history,
//! audit, metric, notification → release the lease. The policy decides;
//! this module only reads, asks and sends.
//!
//! On drift (the stage changed between the read and a step: an operator, the
//! user's pipeline) the stage is read again and decided again, once; if it
//! drifts again the invocation gives up and leaves the stage to the next
//! trigger. Every decision is audited.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tidegate_policy::config::{ManagedStage, RestApiRef};
use tidegate_policy::rollout::{
    self, Decision, LegacyBookkeeping, Signals, StageSnapshot, Trigger,
};

use crate::audit::{self, Outcome};
use crate::aws::{Aws, RestApi};
use crate::store::{HistoryEntry, Lease, StageKey, StateStore, StoreError, Versioned};
use crate::{notify, retry};

/// Decisions per trigger: the first, and one retry after drift.
const MAX_DECISIONS: usize = 2;
/// Longest wait for a lease another invocation holds (it usually finishes
/// in well under a second); never more than half the time left.
const LEASE_WAIT: Duration = Duration::from_secs(5);
/// Pause between attempts to take a held lease.
const LEASE_RETRY: Duration = Duration::from_millis(150);

/// What happened to one stage.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The REST API (as configured).
    pub api: String,
    /// Stage name.
    pub stage: String,
    /// The last decision made, if the stage could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// What came of it.
    pub outcome: Outcome,
}

impl RunReport {
    /// A report of a decision to `action` on `api`/`stage` and what came of
    /// it, for fakes of [`crate::http::Control`] in tests: the rest of the
    /// decision is filler (no plan, the default record, an audit record of a
    /// schedule tick at time 0 on deployment `d1`). Not for real reports.
    #[doc(hidden)]
    pub fn with_action(api: &str, stage: &str, action: rollout::Action, outcome: Outcome) -> Self {
        let attention = action.hold().is_some_and(rollout::Hold::needs_attention);
        let audit = rollout::AuditRecord {
            at_ms: 0,
            rest_api_id: api.to_owned(),
            rest_api_name: None,
            stage: stage.to_owned(),
            trigger: Trigger::Schedule,
            actor: "tidegate".to_owned(),
            summary: action.to_string(),
            action: action.clone(),
            dry_run: false,
            attention,
            deployment_id: "d1".to_owned(),
            canary: None,
            known_good: None,
            firing_alarms: Vec::new(),
            unreadable_alarms: Vec::new(),
            canary_metrics: None,
            paused: false,
        };
        let decision = Decision {
            action,
            dry_run: false,
            attention,
            expectation: rollout::Expectation {
                deployment_id: "d1".to_owned(),
                canary: None,
            },
            record: rollout::StageRecord::default(),
            record_changed: false,
            plan: Vec::new(),
            confirm_alarms: false,
            audit,
        };
        Self {
            api: api.to_owned(),
            stage: stage.to_owned(),
            decision: Some(decision),
            outcome,
        }
    }
}

/// Everything read about a stage: the inputs of [`rollout::decide`].
#[derive(Debug, Clone)]
pub struct StageReading {
    /// The resolved REST API.
    pub api: RestApi,
    /// The stage.
    pub snapshot: StageSnapshot,
    /// Tidegate's record of it, with the version read.
    pub stored: Versioned,
    /// Alarms, metrics, deployments.
    pub signals: Signals,
}

/// Names a managed stage's API for reports.
pub fn api_label(stage: &ManagedStage) -> String {
    match &stage.api {
        RestApiRef::Id(id) => id.clone(),
        RestApiRef::Name(name) => name.clone(),
    }
}

/// What a managed stage that does not exist is reported as: which one, and
/// the likely causes, so the operator knows where to look.
pub fn not_found(stage: &ManagedStage) -> String {
    format!(
        "stage {} of REST API {} not found, nothing done: deleted, or this function reaches \
         another account, region or endpoint than the one it manages",
        stage.stage,
        api_label(stage)
    )
}

fn watched(stage: &ManagedStage) -> Vec<String> {
    stage
        .stage_alarms
        .iter()
        .chain(&stage.canary_alarms)
        .cloned()
        .collect()
}

/// Reads everything the policy needs about `stage` of the resolved `api`.
/// `Ok(None)` when the stage does not exist (deleted mid-flight: nothing to
/// do). `migrate` lets a stage with old `tidegate_*` variables and no record
/// be migrated (only the lease holder may). `trigger` is what the read is
/// for, when a decision follows (an operator's `start` names a deployment
/// to check).
pub async fn read(
    aws: &Aws,
    api: &RestApi,
    stage: &ManagedStage,
    now_ms: u64,
    migrate: bool,
    trigger: Option<&Trigger>,
) -> Result<Option<StageReading>, String> {
    let Some(snapshot) = aws
        .stage(api, &stage.stage)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let key = StageKey::new(&api.id, &stage.stage);
    let mut stored = aws.store.load(&key).await.map_err(|e| e.to_string())?;
    if stored.version.is_none() && LegacyBookkeeping::present(&snapshot.variables) {
        let (book, errors) = LegacyBookkeeping::decode_or_pause(&snapshot.variables, now_ms);
        for e in &errors {
            tracing::warn!(stage = %key, error = %e, "old bookkeeping unreadable; stage paused");
        }
        let (record, _old_history) = book.into_record(&watched(stage));
        if migrate {
            stored = migrate_legacy(aws, api, stage, &key, &snapshot, record, now_ms).await?;
        } else {
            stored.record = record;
        }
    }
    let canary_active = snapshot
        .canary
        .as_ref()
        .is_some_and(|c| c.is_active(&snapshot.deployment_id));
    let canary_since = rollout::canary_since(&stored.record, &snapshot, now_ms);
    let targets = rollout::deployments_to_check(&stored.record, &snapshot, trigger);
    let names = watched(stage);
    let (alarms, canary_metrics, deployments) = tokio::join!(
        aws.alarms(&names),
        async {
            if canary_active {
                aws.canary_metrics(stage, api.name.as_deref(), canary_since, now_ms)
                    .await
            } else {
                rollout::MetricsReading::NotRead
            }
        },
        async {
            let mut checks = BTreeMap::new();
            for id in targets {
                let check = aws.deployment(api, &id).await;
                checks.insert(id, check);
            }
            checks
        },
    );
    Ok(Some(StageReading {
        api: api.clone(),
        snapshot,
        stored,
        signals: Signals {
            alarms,
            canary_metrics,
            deployments,
        },
    }))
}

/// Stores the record read from an old stage's `tidegate_*` variables, then
/// removes those variables (and only those) from the stage. Once: the
/// record's write is conditional on there being none.
async fn migrate_legacy(
    aws: &Aws,
    api: &RestApi,
    stage: &ManagedStage,
    key: &StageKey,
    snapshot: &StageSnapshot,
    record: tidegate_policy::rollout::StageRecord,
    now_ms: u64,
) -> Result<Versioned, String> {
    let version = match aws.store.save(key, &record, None, now_ms).await {
        Ok(v) => v,
        // Someone else migrated it first: use theirs.
        Err(StoreError::VersionConflict { .. }) => {
            return aws.store.load(key).await.map_err(|e| e.to_string())
        }
        Err(e) => return Err(e.to_string()),
    };
    let ops = LegacyBookkeeping::cleanup_ops(&snapshot.variables);
    match aws.update_stage(api, &stage.stage, &ops).await {
        Ok(()) => {
            tracing::info!(stage = %key, removed = ops.len(), "migrated tidegate_* stage variables to the state table")
        }
        // The record is stored; the old variables are inert and removed next time.
        Err(e) => tracing::warn!(stage = %key, error = %e, "old tidegate_* variables not removed"),
    }
    Ok(Versioned {
        record,
        version: Some(version),
    })
}

/// Takes the stage's lease, waiting a little for a holder to finish.
async fn take_lease(aws: &Aws, key: &StageKey) -> Result<Lease, StoreError> {
    let owner = crate::invocation_id();
    let start = retry::now_ms();
    let deadline = retry::deadline_ms(start);
    let wait_ms = u64::try_from(LEASE_WAIT.as_millis())
        .unwrap_or(u64::MAX)
        .min(deadline.saturating_sub(start) / 2);
    loop {
        let now = retry::now_ms();
        match aws.store.acquire(key, &owner, deadline, now).await {
            Err(StoreError::LeaseHeld { .. }) if now.saturating_sub(start) < wait_ms => {
                tokio::time::sleep(LEASE_RETRY).await;
            }
            other => return other,
        }
    }
}

/// Evaluates one managed stage for `trigger` and carries out the decision;
/// notifies `topic_arn` (SNS) of the action, if given.
pub async fn run(
    aws: &Aws,
    stage: &ManagedStage,
    trigger: Trigger,
    topic_arn: Option<&str>,
) -> RunReport {
    let mut report = RunReport {
        api: api_label(stage),
        stage: stage.stage.clone(),
        decision: None,
        outcome: Outcome::NothingToDo,
    };
    let api = match aws.rest_api(&stage.api).await {
        Ok(Some(api)) => api,
        Ok(None) => {
            tracing::warn!(api = %report.api, stage = %stage.stage, "managed stage not found; nothing done");
            report.outcome = Outcome::Failed {
                error: not_found(stage),
            };
            return report;
        }
        Err(e) => {
            tracing::error!(api = %report.api, stage = %stage.stage, error = %e, "REST API unreadable");
            report.outcome = Outcome::Failed {
                error: e.to_string(),
            };
            return report;
        }
    };
    let key = StageKey::new(&api.id, &stage.stage);
    let lease = match take_lease(aws, &key).await {
        Ok(l) => l,
        Err(StoreError::LeaseHeld {
            owner, until_ms, ..
        }) => {
            tracing::warn!(stage = %key, holder = %owner, until_ms, "another invocation holds the stage; yielding");
            report.outcome = Outcome::Yielded {
                holder: owner,
                until_ms,
            };
            return report;
        }
        Err(e) => {
            tracing::error!(stage = %key, error = %e, "stage lease unavailable; nothing done");
            report.outcome = Outcome::Failed {
                error: e.to_string(),
            };
            return report;
        }
    };
    decide_and_act(aws, &api, stage, &key, trigger, topic_arn, &mut report).await;
    if let Err(e) = aws.store.release(&lease).await {
        // It lapses by itself at the invocation's deadline.
        tracing::warn!(stage = %key, error = %e, "stage lease not released");
    }
    report
}

async fn decide_and_act(
    aws: &Aws,
    api: &RestApi,
    stage: &ManagedStage,
    key: &StageKey,
    trigger: Trigger,
    topic_arn: Option<&str>,
    report: &mut RunReport,
) {
    for _ in 0..MAX_DECISIONS {
        let now = retry::now_ms();
        let view = match read(aws, api, stage, now, !stage.dry_run, Some(&trigger)).await {
            Ok(Some(v)) => v,
            Ok(None) => {
                tracing::warn!(stage = %key, "managed stage not found; nothing done");
                report.outcome = Outcome::Failed {
                    error: not_found(stage),
                };
                return;
            }
            Err(e) => {
                tracing::error!(stage = %key, error = %e, "stage unreadable");
                report.outcome = Outcome::Failed { error: e };
                return;
            }
        };
        let decision = rollout::decide(
            stage,
            &view.snapshot,
            &view.stored.record,
            &view.signals,
            trigger.clone(),
            now,
        );
        let outcome = carry_out(aws, &view, stage, key, &decision).await;
        audit::log(&decision.audit, &outcome);
        if let Some(entry) = history_entry(&decision, &outcome) {
            if let Err(e) = aws.store.append(key, &entry).await {
                tracing::warn!(stage = %key, error = %e, "history entry not written");
            }
        }
        // After the action, side by side: neither can block or undo it.
        let metric = decision
            .action
            .kind()
            .and_then(|k| k.metric_name())
            .filter(|_| matches!(outcome, Outcome::Applied { .. }));
        let note = topic_arn.zip(notify::for_decision(&decision, &outcome));
        tokio::join!(
            async {
                if let Some(metric) = metric {
                    aws.count_action(metric, &view.api, &stage.stage).await;
                }
            },
            async {
                if let Some((topic, note)) = &note {
                    aws.publish(topic, note).await;
                }
            },
        );
        let drifted = matches!(outcome, Outcome::Drifted { .. });
        report.decision = Some(decision);
        report.outcome = outcome;
        if !drifted {
            return;
        }
    }
}

/// The history entry of a decision: actions (whatever came of them) and
/// operator commands (what [`notify::action_name`] names); not the
/// schedule's quiet minutes.
fn history_entry(d: &Decision, outcome: &Outcome) -> Option<HistoryEntry> {
    let what = notify::action_name(&d.audit)?;
    if matches!(outcome, Outcome::Drifted { .. }) {
        return None; // decided again; that one is recorded
    }
    Some(HistoryEntry {
        at_ms: d.audit.at_ms,
        what: what.to_owned(),
        who: d.audit.actor.clone(),
        why: d.audit.summary.clone(),
        trigger: d.audit.trigger.clone(),
        action: d.action.clone(),
        outcome: outcome.clone(),
        deployment_id: d.audit.deployment_id.clone(),
        dry_run: d.dry_run,
    })
}

/// Confirms progress against fresh alarms, sends the plan (re-checking the
/// stage before each step), then writes the record on the version read.
async fn carry_out(
    aws: &Aws,
    view: &StageReading,
    stage: &ManagedStage,
    key: &StageKey,
    d: &Decision,
) -> Outcome {
    if !d.writes() {
        return Outcome::NothingToDo;
    }
    if d.dry_run {
        return Outcome::DryRun;
    }
    if d.confirm_alarms {
        let fresh = aws.alarms(&watched(stage)).await;
        let now = retry::now_ms();
        if let Err(hold) = rollout::confirm(stage, &view.snapshot, &d.record, &fresh, now) {
            return Outcome::Withdrawn {
                reason: hold.to_string(),
            };
        }
    }
    // Cut off mid-plan, the history still gets its (interrupted) item:
    // written on a task of its own, since the invocation's future is gone.
    let hook = {
        let (store, key, decision) = (aws.store.clone(), key.clone(), d.clone());
        Box::new(move |outcome: Outcome| {
            let Some(entry) = history_entry(&decision, &outcome) else {
                return;
            };
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = store.append(&key, &entry).await {
                        tracing::warn!(stage = %key, error = %e, "history entry of an interrupted plan not written");
                    }
                });
            }
        })
    };
    let mut in_flight = audit::InFlight::new(&d.audit, d.plan.len()).on_interrupt(hook);
    let sent = send_plan(aws, &view.api, stage, d, &mut in_flight).await;
    let applied = match &sent {
        Outcome::Applied { steps } => *steps,
        Outcome::Failed { .. } => in_flight.applied_steps(),
        _ => 0,
    };
    // Record what landed: the whole plan; of a partial one, only a
    // promotion's (its 0 % canary goes in the record for cleanup). A partial
    // rollback over leftover settings is not recorded: the alarm stays
    // unhandled and the next run rolls back the rest.
    let promotion = matches!(
        d.action,
        tidegate_policy::rollout::Action::PromoteCanary { .. }
    );
    let landed = d.plan.is_empty() || applied == d.plan.len() || (promotion && applied > 0);
    let outcome = if landed && d.record_changed {
        match aws
            .store
            .save(key, &d.record, view.stored.version, retry::now_ms())
            .await
        {
            Ok(_) => sent,
            Err(e) if matches!(sent, Outcome::Applied { .. }) => {
                // The stage changed, the record did not: the next decision
                // sees the stage as it is (every plan is idempotent on it).
                tracing::error!(stage = %key, error = %e, "record not written after the action");
                Outcome::Failed {
                    error: format!("applied, but the record was not written: {e}"),
                }
            }
            Err(e) => {
                tracing::error!(stage = %key, error = %e, "record not written");
                sent
            }
        }
    } else {
        sent
    };
    in_flight.finish();
    outcome
}

async fn send_plan(
    aws: &Aws,
    api: &RestApi,
    stage: &ManagedStage,
    d: &Decision,
    in_flight: &mut audit::InFlight<'_>,
) -> Outcome {
    for (i, step) in d.plan.iter().enumerate() {
        let fresh = match aws.stage(api, &stage.stage).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                return Outcome::Failed {
                    error: format!("stage vanished before step {}", i + 1),
                }
            }
            Err(e) => {
                return Outcome::Failed {
                    error: e.to_string(),
                }
            }
        };
        if let Err(drift) = step.expect.check(&fresh) {
            return Outcome::Drifted {
                drift: drift.to_string(),
            };
        }
        if let Err(e) = aws.update_stage(api, &stage.stage, &step.ops).await {
            // An earlier attempt may have landed with its answer lost, and
            // the SDK's retry then found nothing to do ("no canary settings
            // to remove"): if the stage now looks as the step leaves it, the
            // step is done.
            let landed = matches!(
                aws.stage(api, &stage.stage).await,
                Ok(Some(s)) if step.after.check(&s).is_ok()
            );
            if !landed {
                return Outcome::Failed {
                    error: format!("step {} of {}: {e}", i + 1, d.plan.len()),
                };
            }
            tracing::warn!(step = i + 1, error = %e, "UpdateStage failed, but the stage shows the step landed (answer lost); counted as done");
        }
        in_flight.applied(i + 1);
    }
    Outcome::Applied {
        steps: d.plan.len(),
    }
}
