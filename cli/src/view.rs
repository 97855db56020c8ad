//! What the CLI reads of the control API's and the edge's answers.
//!
//! The Lambda owns its wire types (`StageStatus`, `HistoryEntry` and the
//! command report live in lambda-rollback, whose library links four AWS
//! SDKs); these are deserialise-only views of the members the tables show,
//! tolerant of members they do not know, so one CLI works across Lambda
//! versions. Wherever a member's type lives in the policy crate
//! (`CanarySnapshot`, `AlarmReading`, `Mark`, `Pause`, `Approval`,
//! `CanaryStep`, `CanaryStepEntry`, `KeySummary`), that
//! type is used, not copied. `--output json` prints the API's own JSON, not
//! these views, so scripts see every member.
//!
//! ```
//! use tidegate_cli::StageView;
//! let s: StageView = serde_json::from_str(r#"{"api":"a","stage":"prod","deployment_id":"d1","new_member":1}"#).unwrap();
//! assert_eq!(s.deployment_id.as_deref(), Some("d1"));
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tidegate_policy::auth::KeySummary;
use tidegate_policy::config::{CanaryGateEntry, CanaryStep, CanaryStepEntry};
use tidegate_policy::rollout::{AlarmReading, Approval, CanarySnapshot, Mark, Pause, Trigger};

/// `GET /stages`.
#[derive(Debug, Clone, Deserialize)]
pub struct StageList {
    /// Every managed stage.
    #[serde(default)]
    pub stages: Vec<StageView>,
}

/// `GET /stages/{api}/{stage}`.
#[derive(Debug, Clone, Deserialize)]
pub struct StageView {
    /// The REST API as configured.
    pub api: String,
    /// Stage.
    pub stage: String,
    /// Only logging what it would do.
    #[serde(default)]
    pub dry_run: bool,
    /// The deployment the stage serves.
    #[serde(default)]
    pub deployment_id: Option<String>,
    /// The canary.
    #[serde(default)]
    pub canary: Option<CanarySnapshot>,
    /// Watched alarms.
    #[serde(default)]
    pub alarms: BTreeMap<String, AlarmReading>,
    /// Last-known-good.
    #[serde(default)]
    pub known_good: Option<Mark>,
    /// The pause in force.
    #[serde(default)]
    pub paused: Option<Pause>,
    /// The planned steps.
    #[serde(default)]
    pub steps: Vec<CanaryStep>,
    /// The current step's index.
    #[serde(default)]
    pub step_index: Option<usize>,
    /// Waiting at an approval gate.
    #[serde(default)]
    pub awaiting_approval: bool,
    /// The approval given for the canary's gate.
    #[serde(default)]
    pub approval: Option<Approval>,
    /// Newest actions first.
    #[serde(default)]
    pub recent_actions: Vec<HistoryView>,
    /// What could not be read.
    #[serde(default)]
    pub error: Option<String>,
}

impl StageView {
    /// `api/stage`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.api, self.stage)
    }

    /// The canary, if one serves traffic.
    pub fn active_canary(&self) -> Option<&CanarySnapshot> {
        let deployment = self.deployment_id.as_deref().unwrap_or_default();
        self.canary.as_ref().filter(|c| c.is_active(deployment))
    }
}

/// One history entry.
#[derive(Debug, Clone, Deserialize)]
pub struct HistoryView {
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// What.
    pub what: String,
    /// Who.
    #[serde(default)]
    pub who: String,
    /// Why.
    #[serde(default)]
    pub why: String,
    /// What came of it.
    #[serde(default)]
    pub outcome: OutcomeView,
    /// Decided under dry-run.
    #[serde(default)]
    pub dry_run: bool,
    /// What set it off.
    #[serde(default)]
    pub trigger: Option<TriggerView>,
}

/// What set an action off: the policy's [`Trigger`] when this CLI knows its
/// form, otherwise only its `type`, so a newer Lambda's trigger does not
/// make the history unreadable.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TriggerView {
    /// A trigger of a form this CLI knows.
    Known(Trigger),
    /// Any other: its `type` only.
    Other {
        /// The entry's `trigger.type`, empty when it has none.
        #[serde(rename = "type", default)]
        kind: String,
    },
}

impl TriggerView {
    /// One short cell: `alarm <name>`, `schedule`, `operator`,
    /// `edge <release> <breach>`, or the unknown type as it is.
    pub fn describe(&self) -> String {
        match self {
            Self::Known(Trigger::AlarmTransition(t)) => format!("alarm {}", t.alarm),
            Self::Known(Trigger::Schedule) => "schedule".into(),
            Self::Known(Trigger::Manual { .. }) => "operator".into(),
            Self::Known(Trigger::Edge(e)) => format!("edge {} {}", e.release, e.breach.as_str()),
            Self::Other { kind } if kind.is_empty() => "-".into(),
            Self::Other { kind } => kind.clone(),
        }
    }
}

/// `GET /stages/{api}/{stage}/history`.
#[derive(Debug, Clone, Deserialize)]
pub struct HistoryPage {
    /// Newest first.
    #[serde(default)]
    pub entries: Vec<HistoryView>,
}

/// What came of a decision (`{"status": "applied", …}`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OutcomeView {
    /// `applied`, `nothing_to_do`, `dry_run`, `drifted`, `yielded`,
    /// `withdrawn`, `failed`, `interrupted`.
    #[serde(default)]
    pub status: String,
    /// For `failed`.
    #[serde(default)]
    pub error: Option<String>,
    /// For `drifted`.
    #[serde(default)]
    pub drift: Option<String>,
    /// For `withdrawn`.
    #[serde(default)]
    pub reason: Option<String>,
    /// For `yielded`.
    #[serde(default)]
    pub holder: Option<String>,
}

impl OutcomeView {
    /// Whether the command took effect (or had nothing to do).
    pub fn succeeded(&self) -> bool {
        matches!(
            self.status.as_str(),
            "applied" | "nothing_to_do" | "dry_run"
        )
    }

    /// `status` with its detail.
    pub fn describe(&self) -> String {
        let detail = [&self.error, &self.drift, &self.reason]
            .into_iter()
            .flatten()
            .next()
            .cloned()
            .or_else(|| self.holder.as_ref().map(|h| format!("held by {h}")));
        match detail {
            Some(d) => format!("{}: {d}", self.status),
            None => self.status.clone(),
        }
    }
}

/// The answer to an operator command.
#[derive(Debug, Clone, Deserialize)]
pub struct CommandReport {
    /// The REST API.
    #[serde(default)]
    pub api: String,
    /// Stage.
    #[serde(default)]
    pub stage: String,
    /// The decision made.
    #[serde(default)]
    pub decision: Option<DecisionView>,
    /// What came of it.
    #[serde(default)]
    pub outcome: OutcomeView,
}

/// The part of a decision shown.
#[derive(Debug, Clone, Deserialize)]
pub struct DecisionView {
    /// Its audit record.
    #[serde(default)]
    pub audit: Option<AuditView>,
}

/// The part of an audit record shown.
#[derive(Debug, Clone, Deserialize)]
pub struct AuditView {
    /// One line for people.
    #[serde(default)]
    pub summary: String,
}

/// The edge's answer to issuing or rotating a key.
#[derive(Debug, Clone, Deserialize)]
pub struct IssuedKeyView {
    /// The key, shown this once.
    pub key: String,
    /// Its summary.
    #[serde(flatten)]
    pub summary: KeySummary,
    /// For a rotation: the old key.
    #[serde(default)]
    pub replaces: Option<KeySummary>,
}

/// The edge's answer to a revocation.
#[derive(Debug, Clone, Deserialize)]
pub struct RevokedKeyView {
    /// The key.
    #[serde(flatten)]
    pub summary: KeySummary,
    /// Seconds until every location refuses it.
    #[serde(default)]
    pub effective_within_seconds: u64,
}

/// One page of a consumer's keys.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyListView {
    /// The keys.
    #[serde(default)]
    pub keys: Vec<KeySummary>,
    /// For the next page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// The body of an operator command (`POST /stages/{api}/{stage}/{command}`).
#[derive(Debug, Clone, Serialize)]
pub struct CommandBody {
    /// Why.
    pub reason: String,
    /// Pause only: how long.
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// The body of `POST /stages/{api}/{stage}/start`.
#[derive(Debug, Clone, Serialize)]
pub struct StartBody {
    /// The deployment to roll out.
    pub deployment: String,
    /// The steps; absent: the stage's canary_steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<CanaryStepEntry>>,
    /// Why.
    pub reason: String,
}

/// One `--steps` item: `25`, or `50:approve` (a gate), as `canary_steps`
/// writes it.
pub fn parse_step(text: &str) -> Result<CanaryStepEntry, String> {
    let (number, approve) = match text.trim().split_once(':') {
        Some((n, "approve")) => (n, true),
        Some(_) => {
            return Err(format!(
                "`{text}`: a step is a percentage, or PERCENT:approve for a gate"
            ))
        }
        None => (text.trim(), false),
    };
    let percent: f64 = number
        .parse()
        .map_err(|_| format!("`{text}`: a step is a percentage such as 25, or 50:approve"))?;
    Ok(if approve {
        CanaryStepEntry::Gate(CanaryGateEntry { percent, approve })
    } else {
        CanaryStepEntry::Percent(percent)
    })
}

/// The body of the edge's `POST keys` (and, for a local key, what the
/// policy's `parse_issue_request` reads, so both paths validate alike).
#[derive(Debug, Clone, Default, Serialize)]
pub struct IssueBody {
    /// Owner.
    pub consumer: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// RFC 3339 expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Expiry as a duration from now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
}

/// The body of the edge's `POST keys/{id}/rotate`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RotateBody {
    /// How long the old key keeps working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlap: Option<String>,
    /// RFC 3339 expiry of the new key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Expiry of the new key as a duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
}
