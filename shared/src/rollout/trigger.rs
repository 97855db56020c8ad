//! Why a decision is being asked for.

use serde::{Deserialize, Serialize};

use super::state::AlarmState;
use crate::config::CanaryStep;
use crate::health::EdgeHealthEvent;

/// What woke the Lambda up for this stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    /// A watched alarm changed state (EventBridge or SNS).
    AlarmTransition(Transition),
    /// The every-minute re-evaluation: catches missed events, advances
    /// healthy canaries, records known-good deployments.
    Schedule,
    /// An operator, through the control API.
    Manual {
        /// What they asked for.
        command: ManualCommand,
        /// Why (kept in the audit record and the history).
        reason: String,
        /// Who: the caller's qualified identity (`key:<consumer>`,
        /// `jwt:<iss>:<sub>`), recorded with the action.
        #[serde(default)]
        operator: String,
        /// For [`ManualCommand::Pause`]: when the pause ends by itself.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until_ms: Option<u64>,
        /// For [`ManualCommand::Start`]: what to start.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start: Option<StartCanary>,
    },
    /// The edge judged a release of the stage unhealthy and sent a signed
    /// event (issue 18): acted on as an alarm transition to ALARM, with the
    /// edge's figures in the audit record and the history.
    Edge(EdgeHealthEvent),
}

/// What an operator's `start` asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartCanary {
    /// The deployment to roll out.
    pub deployment: String,
    /// Its steps; `None` for the stage's configured `canary_steps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<CanaryStep>>,
}

/// An operator's command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManualCommand {
    /// Remove the active canary, or roll the stage back to last-known-good.
    Rollback,
    /// Promote the active canary now (skips remaining steps and bake time,
    /// not the health check).
    Promote,
    /// Stop automatic progression (rollbacks still happen).
    Pause,
    /// Resume automatic progression; bake timers restart.
    Resume,
    /// Move the active canary one planned step now (skips bake time,
    /// cooldown and pause, never the health check nor an unapproved gate).
    Advance,
    /// Pass the approval gate the canary waits at.
    Approve,
    /// Start a canary of a deployment at its first step (the deployment and
    /// steps are in [`Trigger::Manual::start`]).
    Start,
}

impl ManualCommand {
    /// The control API's path segment, as in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rollback => "rollback",
            Self::Promote => "promote",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Advance => "advance",
            Self::Approve => "approve",
            Self::Start => "start",
        }
    }

    /// Every command.
    pub const ALL: [Self; 7] = [
        Self::Rollback,
        Self::Promote,
        Self::Pause,
        Self::Resume,
        Self::Advance,
        Self::Approve,
        Self::Start,
    ];

    /// Parses the control API's path segment (`rollback`, `promote`, …).
    pub fn from_path(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// One alarm state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Alarm name.
    pub alarm: String,
    /// The state it entered.
    pub new_state: AlarmState,
    /// The state it left, when the event says.
    pub previous_state: Option<AlarmState>,
    /// When it changed, ms since the epoch.
    pub timestamp_ms: u64,
    /// The event says the alarm's actions are suppressed
    /// (`actionsSuppressedBy`) or muted: it triggers nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

impl Trigger {
    /// Who asked: the operator for commands, `tidegate` for automation.
    pub fn actor(&self) -> &str {
        match self {
            Self::Manual { operator, .. } if !operator.is_empty() => operator,
            Self::Manual { .. } => "operator",
            Self::Edge(_) => "edge",
            Self::AlarmTransition(_) | Self::Schedule => "tidegate",
        }
    }
}

impl Transition {
    /// The transition's id: `alarm@timestamp_ms:STATE`.
    ///
    /// The previous state is left out on purpose: `DescribeAlarms` (the
    /// scheduled check) does not report it, and the id must be the same
    /// whichever path saw the transition first.
    pub fn id(&self) -> String {
        format!(
            "{}@{}:{}",
            self.alarm,
            self.timestamp_ms,
            self.new_state.as_aws()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_serde() {
        let t = Transition {
            alarm: "orders-5xx".into(),
            new_state: AlarmState::Alarm,
            previous_state: Some(AlarmState::Ok),
            timestamp_ms: 42,
            suppressed: false,
        };
        assert_eq!(t.id(), "orders-5xx@42:ALARM");
        let v = serde_json::to_value(Trigger::AlarmTransition(t.clone())).unwrap();
        assert_eq!(v["type"], "alarm_transition");
        assert_eq!(v["new_state"], "ALARM");
        assert_eq!(
            serde_json::from_value::<Trigger>(v).unwrap(),
            Trigger::AlarmTransition(t)
        );
        assert_eq!(
            serde_json::to_value(Trigger::Schedule).unwrap()["type"],
            "schedule"
        );
    }

    #[test]
    fn edge_serde() {
        let e = crate::health::EdgeHealthEvent {
            id: "e-1".into(),
            api: "shop".into(),
            stage: "prod".into(),
            release: "canary".into(),
            breach: crate::health::BreachKind::ErrorRate,
            issued_ms: 10,
            window_from_ms: 5,
            first_failure_ms: Some(6),
            canary: crate::health::ReleaseFigures::default(),
            base: None,
            detail: "d".into(),
        };
        let v = serde_json::to_value(Trigger::Edge(e.clone())).unwrap();
        assert_eq!(v["type"], "edge");
        assert_eq!(v["breach"], "error_rate");
        assert_eq!(
            serde_json::from_value::<Trigger>(v).unwrap(),
            Trigger::Edge(e.clone())
        );
        assert_eq!(Trigger::Edge(e).actor(), "edge");
    }

    #[test]
    fn commands_from_path() {
        assert_eq!(
            ManualCommand::from_path("promote"),
            Some(ManualCommand::Promote)
        );
        assert_eq!(ManualCommand::from_path("Promote"), None);
        for c in ManualCommand::ALL {
            assert_eq!(ManualCommand::from_path(c.as_str()), Some(c));
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::Value::String(c.as_str().into())
            );
        }
    }
}
