//! The audit trail: one JSON line per decision on stdout (CloudWatch Logs
//! keeps it), with what was decided and what came of it.

use serde::Serialize;
use tidegate_policy::rollout::AuditRecord;

/// What came of a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Every plan step was sent.
    Applied {
        /// `UpdateStage` requests sent.
        steps: usize,
    },
    /// Nothing to send.
    NothingToDo,
    /// Dry-run: logged, nothing sent.
    DryRun,
    /// The stage changed under us; the decision was dropped.
    Drifted {
        /// How it differed.
        drift: String,
    },
    /// An AWS call failed.
    Failed {
        /// The error.
        error: String,
    },
}

/// The audit line for `record` and its `outcome`.
pub fn line(record: &AuditRecord, outcome: &Outcome) -> String {
    #[derive(Serialize)]
    struct Line<'a> {
        level: &'static str,
        r#type: &'static str,
        #[serde(flatten)]
        record: &'a AuditRecord,
        outcome: &'a Outcome,
    }
    let level = if record.attention || matches!(outcome, Outcome::Failed { .. }) {
        "WARN"
    } else {
        "INFO"
    };
    serde_json::to_string(&Line {
        level,
        r#type: "tidegate.audit",
        record,
        outcome,
    })
    .unwrap_or_else(|e| format!(r#"{{"level":"ERROR","type":"tidegate.audit","error":"{e}"}}"#))
}

/// Writes the audit line.
pub fn log(record: &AuditRecord, outcome: &Outcome) {
    println!("{}", line(record, outcome));
}
