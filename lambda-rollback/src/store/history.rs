//! One action-history item: what was done, by whom, why, on what trigger,
//! with what outcome, and when.

use serde::{Deserialize, Serialize};
use tidegate_policy::rollout::{Action, Trigger};

use crate::audit::Outcome;

/// How long history items are kept (DynamoDB TTL).
pub const HISTORY_RETENTION_DAYS: u64 = 90;

/// One entry of a stage's action history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When it was decided, ms since the epoch.
    pub at_ms: u64,
    /// What: the action's snake_case kind, or the operator command for
    /// commands that changed no traffic (`pause`, `resume`).
    pub what: String,
    /// Who: the operator's identity, or `tidegate`.
    pub who: String,
    /// Why: the decision's one-line summary (with the operator's reason).
    pub why: String,
    /// What asked for it.
    pub trigger: Trigger,
    /// The action, in full.
    pub action: Action,
    /// What came of it.
    pub outcome: Outcome,
    /// The stage's deployment when decided.
    pub deployment_id: String,
    /// Decided under dry-run.
    #[serde(default)]
    pub dry_run: bool,
}
