//! What the control API shows of a managed stage: typed, read from AWS and
//! the state table, serialised as it is for `GET /stages` and rendered by
//! [`crate::page`].
//!
//! ```
//! use tidegate_rollback::status::StageStatus;
//! let s = StageStatus::new("orders-api", "prod", false);
//! assert_eq!(serde_json::to_value(&s).unwrap()["stage"], "prod");
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tidegate_policy::config::CanaryStep;
use tidegate_policy::rollout::{
    AlarmReading, Approval, CanarySnapshot, Mark, MetricsReading, Pause, StepMark,
};

use crate::store::HistoryEntry;

/// History entries shown per stage.
pub const RECENT_ACTIONS: usize = 20;

/// Every managed stage (`GET /stages`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusList {
    /// One per `[[rollback.stages]]` entry, in order.
    pub stages: Vec<StageStatus>,
}

/// A stage's action history (`GET /stages/{api}/{stage}/history?limit=N`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryPage {
    /// The newest entries, newest first: what, who, why, trigger, outcome,
    /// when.
    pub entries: Vec<HistoryEntry>,
}

/// One managed stage (`GET /stages/{api}/{stage}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageStatus {
    /// The REST API as configured (id or name).
    pub api: String,
    /// Stage name.
    pub stage: String,
    /// Whether Tidegate only logs what it would do.
    pub dry_run: bool,
    /// The resolved REST API id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rest_api_id: Option<String>,
    /// The deployment the stage serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// Its canary settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanarySnapshot>,
    /// Every watched alarm's state.
    #[serde(default)]
    pub alarms: BTreeMap<String, AlarmReading>,
    /// The canary's metrics over its window.
    #[serde(default)]
    pub canary_metrics: MetricsReading,
    /// The last-known-good deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_good: Option<Mark>,
    /// The one before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_known_good: Option<Mark>,
    /// The canary step being baked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<StepMark>,
    /// The planned steps: the active canary's (its `start`'s, or the
    /// configured `canary_steps`), else the configured ones.
    #[serde(default)]
    pub steps: Vec<CanaryStep>,
    /// The index in `steps` of the active canary's step; `None` without an
    /// active canary.
    #[serde(default)]
    pub step_index: Option<usize>,
    /// The canary is at a step that requires approval and none was given:
    /// it moves on only after `approve`.
    #[serde(default)]
    pub awaiting_approval: bool,
    /// The approval given for the canary's gate, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// The pause in force: who, why, until when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<Pause>,
    /// The newest actions, newest first: what, who, why, trigger, outcome,
    /// when.
    #[serde(default)]
    pub recent_actions: Vec<HistoryEntry>,
    /// Why some of this could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StageStatus {
    /// A status with only the configured names filled in.
    pub fn new(api: impl Into<String>, stage: impl Into<String>, dry_run: bool) -> Self {
        Self {
            api: api.into(),
            stage: stage.into(),
            dry_run,
            rest_api_id: None,
            deployment_id: None,
            canary: None,
            alarms: BTreeMap::new(),
            canary_metrics: MetricsReading::NotRead,
            known_good: None,
            previous_known_good: None,
            step: None,
            steps: Vec::new(),
            step_index: None,
            awaiting_approval: false,
            approval: None,
            paused: None,
            recent_actions: Vec::new(),
            error: None,
        }
    }
}
