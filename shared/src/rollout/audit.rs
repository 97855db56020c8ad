//! The structured record every decision leaves: logged as one JSON line by
//! the adapter, and the source of the control API's "recent actions".

use serde::{Deserialize, Serialize};

use super::action::Action;
use super::state::CanaryMetrics;
use super::trigger::Trigger;

/// One decision, as logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When it was decided, ms since the epoch.
    pub at_ms: u64,
    /// REST API id of the stage.
    pub rest_api_id: String,
    /// REST API name, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rest_api_name: Option<String>,
    /// Stage name.
    pub stage: String,
    /// What asked for the decision.
    pub trigger: Trigger,
    /// Who: the operator's identity for commands, `tidegate` otherwise.
    #[serde(default)]
    pub actor: String,
    /// What was decided.
    pub action: Action,
    /// One line for people.
    pub summary: String,
    /// Decided under dry-run: logged, not carried out.
    pub dry_run: bool,
    /// A person should look.
    pub attention: bool,
    /// The stage's deployment when decided.
    pub deployment_id: String,
    /// The canary when decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<AuditCanary>,
    /// Last-known-good when decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_good: Option<String>,
    /// Watched alarms in ALARM.
    pub firing_alarms: Vec<String>,
    /// Watched alarms whose state couldn't be read.
    pub unreadable_alarms: Vec<String>,
    /// The canary's metrics, if read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_metrics: Option<CanaryMetrics>,
    /// Whether progression was paused when decided.
    pub paused: bool,
}

/// The canary part of an [`AuditRecord`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditCanary {
    /// Deployment.
    pub deployment_id: String,
    /// Traffic share.
    pub percent_traffic: f64,
}
