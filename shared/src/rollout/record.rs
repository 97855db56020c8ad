//! What Tidegate remembers about one managed stage ([`StageRecord`]): plain
//! data the adapter keeps in its store (DynamoDB in the Lambda) and hands
//! back to [`super::decide()`] with the stage it describes.
//!
//! # Why not on the stage
//! Earlier versions kept this in `tidegate_*` stage variables. AWS caps a
//! variable at 512 characters (an UpdateStage over the cap is refused whole,
//! rollback included), and infrastructure-as-code owns the variables:
//! Terraform removes unknown ones on every apply, CloudFormation replaces the
//! map. The record therefore lives beside the stage; the stage keeps only
//! what the user deployed. Old variables are read once by [`super::legacy`].
//!
//! The record is a value: the decision returns the next one, and the adapter
//! writes it conditionally on the version it read, so two writers can never
//! both win.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::CanaryStep;

/// Longest pause reason kept, in characters (longer ones are cut).
pub const REASON_MAX_CHARS: usize = 1_000;
/// Longest operator name kept, in characters.
pub const OPERATOR_MAX_CHARS: usize = 256;

/// A deployment and an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// Deployment id.
    pub deployment_id: String,
    /// ms since the epoch.
    pub at_ms: u64,
}

impl Mark {
    /// `deployment_id` at `at_ms`.
    pub fn new(deployment_id: impl Into<String>, at_ms: u64) -> Self {
        Self {
            deployment_id: deployment_id.into(),
            at_ms,
        }
    }
}

/// The canary step being baked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMark {
    /// The canary's deployment.
    pub deployment_id: String,
    /// Its traffic share.
    pub percent: f64,
    /// Healthy since (step start, or the last moment its health was in doubt).
    pub since_ms: u64,
    /// When this canary deployment was first seen on the stage: its metric
    /// window never starts earlier, so it cannot inherit an earlier canary's
    /// errors (every canary of a stage shares the `{stage}/Canary` metrics).
    pub canary_since_ms: u64,
}

/// Why, by whom and until when a stage is paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// Paused at.
    pub since_ms: u64,
    /// Who paused it (the operator's identity, or `tidegate` when the
    /// Lambda paused it itself).
    #[serde(default)]
    pub by: String,
    /// Their reason (at most `REASON_MAX_CHARS`).
    pub reason: String,
    /// When the pause ends by itself, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
}

impl Pause {
    /// A pause with `reason` and `by` cut to their limits.
    pub fn new(since_ms: u64, by: &str, reason: &str, until_ms: Option<u64>) -> Self {
        Self {
            since_ms,
            by: by.chars().take(OPERATOR_MAX_CHARS).collect(),
            reason: reason.chars().take(REASON_MAX_CHARS).collect(),
            until_ms,
        }
    }

    /// Whether the pause holds at `now_ms`.
    pub fn holds_at(&self, now_ms: u64) -> bool {
        self.until_ms.is_none_or(|u| now_ms < u)
    }
}

/// An operator's approval of the gate a canary waits at: it counts for that
/// deployment at that step only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// The canary's deployment.
    pub deployment_id: String,
    /// The gated step's traffic share.
    pub percent: f64,
    /// Who approved (their qualified identity).
    pub by: String,
    /// Their reason (at most `REASON_MAX_CHARS`).
    pub reason: String,
    /// When, ms since the epoch.
    pub at_ms: u64,
}

/// The steps an operator's `start` gave one canary deployment; they replace
/// the stage's configured `canary_steps` while that deployment is the canary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryPlan {
    /// The canary's deployment.
    pub deployment_id: String,
    /// Its steps.
    pub steps: Vec<CanaryStep>,
}

/// What Tidegate remembers about one managed stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StageRecord {
    /// Last-known-good deployment and when it was recorded.
    pub known_good: Option<Mark>,
    /// The known-good deployment before that one.
    pub previous_known_good: Option<Mark>,
    /// The stage's deployment as last observed, and since when it has been
    /// continuously healthy.
    pub live: Option<Mark>,
    /// The canary step being baked.
    pub step: Option<StepMark>,
    /// Last change made to the stage (any action but recording known-good).
    pub last_action_ms: Option<u64>,
    /// Last canary removal or stage rollback.
    pub last_rollback_ms: Option<u64>,
    /// Set while automatic progression is paused.
    pub paused: Option<Pause>,
    /// Alarm name → timestamp of its newest handled transition. Kept only
    /// for watched alarms.
    pub handled: BTreeMap<String, u64>,
    /// A canary deployment Tidegate itself set to 0 % (the first request of
    /// a promotion); its settings are removed at the next chance, even while
    /// paused or alarming, because leftover canary settings make AWS refuse
    /// the user's plain deployments.
    pub zeroed_canary: Option<String>,
    /// The approval of the gate the canary waits (or waited) at.
    pub approval: Option<Approval>,
    /// Steps given at `start` for the canary's deployment.
    pub canary_plan: Option<CanaryPlan>,
}

impl StageRecord {
    /// Timestamp of the newest handled transition of `alarm`.
    pub fn handled_through(&self, alarm: &str) -> Option<u64> {
        self.handled.get(alarm).copied()
    }

    /// Whether the transition of `alarm` at `at_ms` (or an older one) was
    /// already handled: alarm transitions are ordered in time, so anything not
    /// newer than the last handled one is a duplicate or stale.
    pub fn is_handled(&self, alarm: &str, at_ms: u64) -> bool {
        self.handled_through(alarm).is_some_and(|t| at_ms <= t)
    }

    /// Records the transition of `alarm` at `at_ms` as handled (the
    /// watermark never moves back).
    pub fn mark_handled(&mut self, alarm: &str, at_ms: u64) {
        let entry = self.handled.entry(alarm.to_owned()).or_insert(at_ms);
        *entry = (*entry).max(at_ms);
    }

    /// Drops handled transitions of alarms no longer in `watched` (the
    /// record stays as small as the configuration).
    pub fn retain_watched<'a>(&mut self, watched: impl IntoIterator<Item = &'a String>) {
        let watched: std::collections::BTreeSet<&str> =
            watched.into_iter().map(String::as_str).collect();
        self.handled.retain(|k, _| watched.contains(k.as_str()));
    }

    /// The pause in force at `now_ms`, if any (an expired one is not).
    pub fn pause_at(&self, now_ms: u64) -> Option<&Pause> {
        self.paused.as_ref().filter(|p| p.holds_at(now_ms))
    }

    /// Whether the gate of `deployment` at `percent` was approved.
    pub fn is_approved(&self, deployment: &str, percent: f64) -> bool {
        self.approval
            .as_ref()
            .is_some_and(|a| a.deployment_id == deployment && a.percent == percent)
    }

    /// Forgets the canary's approval and started plan (it is gone).
    pub fn clear_canary(&mut self) {
        self.approval = None;
        self.canary_plan = None;
    }

    /// Records `deployment` as known-good at `now_ms`, keeping the one it
    /// replaces as the previous known-good.
    pub fn set_known_good(&mut self, deployment: &str, now_ms: u64) {
        if let Some(old) = self.known_good.take() {
            if old.deployment_id != deployment {
                self.previous_known_good = Some(old);
            }
        }
        self.known_good = Some(Mark::new(deployment, now_ms));
    }
}

#[cfg(test)]
mod tests;
