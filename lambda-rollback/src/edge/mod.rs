//! `POST /edge/health`: the edge's signed breach event (issue 18), acted on
//! as an alarm transition to ALARM.
//!
//! Authenticated by its signature alone (the edge holds no admin key):
//! [`tidegate_policy::health::verify`] with `TIDEGATE_HEALTH_SECRET`. A
//! verified event for a managed stage is claimed once by its id in the
//! state table (a conditional put kept [`DEDUPE_MS`], twice the
//! signature's tolerance, so a replay the signature still admits is always
//! caught), then decided with [`Trigger::Edge`] by the same path as alarms
//! and commands: the stage is re-read and an active canary removed
//! (level-triggered), with the audit record and the history saying
//! `trigger: edge` and the edge's figures.
//!
//! | answer | when |
//! |---|---|
//! | 202 [`EdgeAnswer`] | decided (acted on, or nothing to do) |
//! | 200 [`EdgeAnswer`] `"outcome": "duplicate"` | this id was handled already: the edge stops retrying |
//! | 401 problem | missing, malformed, altered or stale signature (slug per [`SignalError`]) |
//! | 400 problem | a body that is not an event |
//! | 404 problem | no `TIDEGATE_HEALTH_SECRET` (feature off), or not a managed stage |
//! | 503 problem | AWS could not be read or written: the edge retries |
//!
//! ```
//! use tidegate_policy::health::SignalError;
//! use tidegate_rollback::edge::signal_problem;
//! let p = signal_problem(&SignalError::OutsideTolerance { skew_ms: 400_000 });
//! assert_eq!(p.status, 401);
//! assert!(p.kind.ends_with("/stale-signature"));
//! ```

use lambda_http::http::HeaderMap;
use serde::{Deserialize, Serialize};
use tidegate_policy::health::{verify, SignalError, SIGNAL_TOLERANCE_MS, SIGNATURE_HEADER};
use tidegate_policy::problem::Problem;
use tidegate_policy::rollout::{Action, Trigger};

use crate::audit::Outcome;
use crate::http::Control;

/// How long a handled event id is remembered: twice the signature's
/// tolerance (a signature from a clock ahead by the tolerance stays
/// admissible for twice it).
pub const DEDUPE_MS: u64 = 2 * SIGNAL_TOLERANCE_MS;

/// What the endpoint answers when it took the event (202) or had seen it
/// (200).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeAnswer {
    /// The event's id.
    pub id: String,
    /// `duplicate`, or what came of the decision (the report's outcome:
    /// `applied`, `nothing_to_do`, `dry_run`, `drifted`, …).
    pub outcome: String,
    /// The decision's action (none for a duplicate).
    pub action: Option<Action>,
}

/// The problem for a refused event.
pub fn signal_problem(e: &SignalError) -> Problem {
    let (status, slug, title) = match e {
        SignalError::MissingSignature => (401, "missing-signature", "Signature missing"),
        SignalError::MalformedSignature => (401, "malformed-signature", "Signature malformed"),
        SignalError::OutsideTolerance { .. } => (401, "stale-signature", "Signature too old"),
        SignalError::BadSignature => (401, "bad-signature", "Signature does not match"),
        SignalError::TimestampMismatch => (401, "timestamp-mismatch", "Signature time mismatch"),
        SignalError::TooLarge(_) => (400, "event-too-large", "Event too large"),
        SignalError::BadBody(_) => (400, "invalid-event", "Not an edge health event"),
    };
    Problem::new(status, slug, title).with_detail(e.to_string())
}

/// What [`receive`] answers: a status and a typed body.
#[derive(Debug, Clone, PartialEq)]
pub enum EdgeReply {
    /// 202 or 200 with the answer.
    Answer(u16, EdgeAnswer),
    /// A problem+json.
    Problem(Problem),
}

fn unavailable(detail: String) -> EdgeReply {
    EdgeReply::Problem(
        Problem::new(503, "aws-unavailable", "Not handled, retry").with_detail(detail),
    )
}

/// Checks, dedupes and acts on one event.
pub async fn receive(
    control: &dyn Control,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: u64,
) -> EdgeReply {
    let settings = control.settings();
    let Some(key) = &settings.health_key else {
        return EdgeReply::Problem(
            Problem::new(404, "edge-signal-off", "Edge health signal is off").with_detail(format!(
                "set {} in the Lambda's environment (the Worker's secret of the same name) to accept the edge's events",
                crate::config::HEALTH_SECRET_ENV
            )),
        );
    };
    let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let event = match verify(key, header, body, now_ms) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "edge health event refused");
            return EdgeReply::Problem(signal_problem(&e));
        }
    };
    let Some(index) = settings
        .policy
        .stages
        .iter()
        .position(|s| crate::execute::api_label(s) == event.api && s.stage == event.stage)
    else {
        return EdgeReply::Problem(
            Problem::new(404, "unknown-stage", "Not a managed stage").with_detail(format!(
                "{}/{} is not in the [[rollback.stages]] of the configuration",
                event.api, event.stage
            )),
        );
    };
    let id = event.id.clone();
    match control
        .claim_signal(id.clone(), now_ms.saturating_add(DEDUPE_MS), now_ms)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return EdgeReply::Answer(
                200,
                EdgeAnswer {
                    id,
                    outcome: "duplicate".into(),
                    action: None,
                },
            )
        }
        Err(e) => return unavailable(format!("the event id could not be recorded: {e}")),
    }
    tracing::info!(id = %id, api = %event.api, stage = %event.stage, release = %event.release,
        breach = event.breach.as_str(), detail = %event.detail, "edge health event");
    let report = control.command(index, Trigger::Edge(event)).await;
    let (outcome, action) = match report {
        Some(r) => (r.outcome, r.decision.map(|d| d.action)),
        None => (
            Outcome::Failed {
                error: "no report".into(),
            },
            None,
        ),
    };
    // Not handled (AWS failed, time ran out, another invocation held the
    // stage): forget the id so the edge's retry is acted on.
    let failure = match &outcome {
        Outcome::Failed { error } => Some(error.clone()),
        Outcome::Interrupted { applied, steps } => Some(format!(
            "interrupted after {applied} of {steps} steps; the retry re-reads the stage"
        )),
        Outcome::Yielded { holder, .. } => Some(format!("invocation {holder} holds the stage")),
        _ => None,
    };
    if let Some(error) = failure {
        if let Err(e) = control.forget_signal(id.clone()).await {
            tracing::warn!(id = %id, error = %e, "edge event claim not released");
        }
        return unavailable(error);
    }
    EdgeReply::Answer(
        202,
        EdgeAnswer {
            id,
            outcome: outcome.status().into(),
            action,
        },
    )
}

#[cfg(test)]
mod tests;
