//! Carrying out decisions for one managed stage: read → decide → for each
//! plan step re-read, check the expectation, patch. The policy decides; this
//! module only reads, asks and sends.
//!
//! On drift (the stage changed between the read and a step: another
//! invocation, an operator, a deploy) the stage is read again and decided
//! again, once; if it drifts again the invocation gives up and leaves the
//! stage to the next trigger. Every decision is audited.

use serde::Serialize;
use tidegate_policy::config::ManagedStage;
use tidegate_policy::rollout::{self, Bookkeeping, Decision, Signals, StageSnapshot, Trigger};

use crate::audit::{self, Outcome};
use crate::aws::{Aws, RestApi};
use crate::{notify, retry};

/// Decisions per trigger: the first, and one retry after drift.
const MAX_DECISIONS: usize = 2;

/// What happened to one stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
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

/// Everything read about a stage: the inputs of [`rollout::decide`].
#[derive(Debug, Clone)]
pub struct StageView {
    /// The resolved REST API.
    pub api: RestApi,
    /// The stage.
    pub snapshot: StageSnapshot,
    /// Its bookkeeping (a malformed one pauses it).
    pub book: Bookkeeping,
    /// Alarms, metrics, deployments.
    pub signals: Signals,
}

/// Names a managed stage's API for reports.
pub fn api_label(stage: &ManagedStage) -> String {
    match &stage.api {
        tidegate_policy::config::RestApiRef::Id(id) => id.clone(),
        tidegate_policy::config::RestApiRef::Name(name) => name.clone(),
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

/// Reads everything the policy needs about `stage`. `Ok(None)` when the API
/// or the stage does not exist (deleted mid-flight: nothing to do).
pub async fn read(
    aws: &Aws,
    stage: &ManagedStage,
    now_ms: u64,
) -> Result<Option<StageView>, String> {
    let Some(api) = aws.rest_api(&stage.api).await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let Some(snapshot) = aws
        .stage(&api, &stage.stage)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let names: Vec<String> = stage
        .stage_alarms
        .iter()
        .chain(&stage.canary_alarms)
        .cloned()
        .collect();
    let canary_active = snapshot
        .canary
        .as_ref()
        .is_some_and(|c| c.is_active(&snapshot.deployment_id));
    let (alarms, canary_metrics, deployments) = tokio::join!(
        aws.alarms(&names),
        async {
            if canary_active {
                aws.canary_metrics(stage, api.name.as_deref(), now_ms).await
            } else {
                None
            }
        },
        aws.deployments(&api),
    );
    let (book, errors) = Bookkeeping::decode_or_pause(&snapshot.variables, now_ms);
    for e in errors {
        tracing::warn!(stage = %stage.stage, error = %e, "bookkeeping unreadable; stage paused");
    }
    Ok(Some(StageView {
        api,
        snapshot,
        book,
        signals: Signals {
            alarms,
            canary_metrics,
            deployments,
        },
    }))
}

/// Evaluates one managed stage for `trigger` and carries out the decision;
/// notifies `topic_arn` (SNS) of the action, if given.
pub async fn run(
    aws: &Aws,
    stage: &ManagedStage,
    trigger: Trigger,
    topic_arn: Option<&str>,
) -> StageReport {
    let mut report = StageReport {
        api: api_label(stage),
        stage: stage.stage.clone(),
        decision: None,
        outcome: Outcome::NothingToDo,
    };
    for _ in 0..MAX_DECISIONS {
        let now = retry::now_ms();
        let view = match read(aws, stage, now).await {
            Ok(Some(v)) => v,
            Ok(None) => {
                tracing::warn!(api = %report.api, stage = %stage.stage, "managed stage not found; nothing done");
                report.outcome = Outcome::Failed {
                    error: not_found(stage),
                };
                return report;
            }
            Err(e) => {
                tracing::error!(api = %report.api, stage = %stage.stage, error = %e, "stage unreadable");
                report.outcome = Outcome::Failed { error: e };
                return report;
            }
        };
        let decision = rollout::decide(
            stage,
            &view.snapshot,
            &view.book,
            &view.signals,
            trigger.clone(),
            now,
        );
        let outcome = carry_out(aws, &view.api, stage, &decision).await;
        audit::log(&decision.audit, &outcome);
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
            break;
        }
    }
    report
}

/// Sends the plan, re-checking the stage before each step.
async fn carry_out(aws: &Aws, api: &RestApi, stage: &ManagedStage, d: &Decision) -> Outcome {
    if !d.writes() {
        return Outcome::NothingToDo;
    }
    if d.dry_run {
        return Outcome::DryRun;
    }
    let mut in_flight = audit::InFlight::new(&d.audit, d.plan.len());
    let outcome = send_plan(aws, api, stage, d, &mut in_flight).await;
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
            return Outcome::Failed {
                error: format!("step {} of {}: {e}", i + 1, d.plan.len()),
            };
        }
        in_flight.applied(i + 1);
    }
    Outcome::Applied {
        steps: d.plan.len(),
    }
}
