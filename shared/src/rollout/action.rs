//! What a decision asks for ([`Action`]) and, when it asks for nothing, why
//! ([`Hold`]). Serialisable for the audit log and the control API.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::health::BreachKind;

/// The one thing a decision asks the adapter to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Send no more traffic to the canary and remove its settings.
    RemoveCanary {
        /// The canary's deployment.
        deployment_id: String,
        /// Its traffic share before removal.
        percent: f64,
        /// Why.
        reason: RemoveReason,
    },
    /// Point the stage back at its last-known-good deployment.
    RollbackStage {
        /// The deployment served now.
        from_deployment: String,
        /// The last-known-good deployment.
        to_deployment: String,
        /// Why.
        reason: RollbackReason,
        /// Whether leftover canary settings (0 % or the stage's own
        /// deployment) are removed first: a stage with canary settings cannot
        /// move to another deployment.
        clears_leftover_canary: bool,
    },
    /// Move the canary to its next traffic step.
    SetCanaryPercent {
        /// The canary's deployment.
        deployment_id: String,
        /// Current share.
        from: f64,
        /// Next share.
        to: f64,
    },
    /// Start a canary of a deployment at its first step (an operator's
    /// `start`); replaces leftover canary settings, if any.
    StartCanary {
        /// The deployment to roll out.
        deployment_id: String,
        /// Its first traffic share.
        percent: f64,
    },
    /// Promote the canary as AWS defines it, then remove its settings.
    PromoteCanary {
        /// The canary's deployment, which the stage will serve.
        deployment: String,
        /// The deployment served until now.
        from_deployment: String,
    },
    /// Record the stage's deployment as last-known-good (the record only).
    RecordKnownGood {
        /// The deployment.
        deployment: String,
        /// The previous last-known-good, if any.
        previous: Option<String>,
    },
    /// Nothing to change on the stage (the record may still be updated).
    None {
        /// Why.
        reason: Hold,
    },
}

/// The kinds of [`Action`] that change something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// [`Action::RemoveCanary`].
    RemoveCanary,
    /// [`Action::RollbackStage`].
    RollbackStage,
    /// [`Action::SetCanaryPercent`].
    SetCanaryPercent,
    /// [`Action::StartCanary`].
    StartCanary,
    /// [`Action::PromoteCanary`].
    PromoteCanary,
    /// [`Action::RecordKnownGood`].
    RecordKnownGood,
}

impl ActionKind {
    /// Every kind.
    pub const ALL: [Self; 6] = [
        Self::RemoveCanary,
        Self::RollbackStage,
        Self::SetCanaryPercent,
        Self::StartCanary,
        Self::PromoteCanary,
        Self::RecordKnownGood,
    ];

    /// snake_case name, as in JSON and the history.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RemoveCanary => "remove_canary",
            Self::RollbackStage => "rollback_stage",
            Self::SetCanaryPercent => "set_canary_percent",
            Self::StartCanary => "start_canary",
            Self::PromoteCanary => "promote_canary",
            Self::RecordKnownGood => "record_known_good",
        }
    }

    /// Parses [`ActionKind::as_str`].
    pub fn from_str_opt(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether this is a safety action (takes traffic off new code).
    pub fn is_rollback(self) -> bool {
        matches!(self, Self::RemoveCanary | Self::RollbackStage)
    }

    /// The `Tidegate` CloudWatch metric this kind counts towards, if any.
    pub fn metric_name(self) -> Option<&'static str> {
        match self {
            Self::RemoveCanary | Self::RollbackStage => Some("Rollbacks"),
            Self::PromoteCanary => Some("Promotions"),
            Self::SetCanaryPercent | Self::StartCanary | Self::RecordKnownGood => None,
        }
    }
}

impl Action {
    /// The kind, or `None` for [`Action::None`].
    pub fn kind(&self) -> Option<ActionKind> {
        match self {
            Self::RemoveCanary { .. } => Some(ActionKind::RemoveCanary),
            Self::RollbackStage { .. } => Some(ActionKind::RollbackStage),
            Self::SetCanaryPercent { .. } => Some(ActionKind::SetCanaryPercent),
            Self::StartCanary { .. } => Some(ActionKind::StartCanary),
            Self::PromoteCanary { .. } => Some(ActionKind::PromoteCanary),
            Self::RecordKnownGood { .. } => Some(ActionKind::RecordKnownGood),
            Self::None { .. } => None,
        }
    }

    /// The reason, for [`Action::None`].
    pub fn hold(&self) -> Option<&Hold> {
        match self {
            Self::None { reason } => Some(reason),
            _ => None,
        }
    }
}

/// Why a canary is removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RemoveReason {
    /// A canary alarm went to ALARM.
    CanaryAlarm {
        /// Alarm name.
        alarm: String,
    },
    /// A stage alarm went to ALARM while a canary was active: the canary is
    /// the likeliest cause, and the stage cannot move until it is gone.
    StageAlarm {
        /// Alarm name.
        alarm: String,
    },
    /// The canary's 5XX rate exceeded the threshold with enough requests.
    ErrorRate {
        /// 5XX responses.
        errors_5xx: f64,
        /// Requests.
        count: f64,
        /// Threshold, a fraction.
        threshold: f64,
    },
    /// The edge judged the canary (or, without attribution, the stage)
    /// unhealthy from the responses it served.
    Edge {
        /// The release judged (`stage` without attribution).
        release: String,
        /// The test it failed.
        breach: BreachKind,
        /// The edge's one-line judgement, with its figures.
        detail: String,
    },
    /// An operator asked for a rollback.
    Manual {
        /// Their reason.
        reason: String,
    },
    /// Settings left behind with no effect (0 % traffic, or the stage's own
    /// deployment, as AWS's promote leaves them): cleaned up.
    Leftover,
    /// Settings Tidegate itself set to 0 % while promoting, whose removal did
    /// not land: cleaned up at once, even while paused or alarming (leftover
    /// canary settings make AWS refuse plain deployments).
    PromotionLeftover,
}

/// Why a stage is rolled back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RollbackReason {
    /// A stage alarm went to ALARM.
    StageAlarm {
        /// Alarm name.
        alarm: String,
    },
    /// The edge judged the stage's unattributed traffic unhealthy.
    Edge {
        /// The test it failed.
        breach: BreachKind,
        /// The edge's one-line judgement, with its figures.
        detail: String,
    },
    /// An operator asked for a rollback.
    Manual {
        /// Their reason.
        reason: String,
    },
}

/// Why a decision changes nothing on the stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Hold {
    /// The snapshot is not the managed stage the decision was asked about.
    NotManaged {
        /// REST API id of the snapshot.
        rest_api_id: String,
        /// Stage name of the snapshot.
        stage: String,
    },
    /// The alarm is not one of this stage's alarms.
    NotWatched {
        /// Alarm name.
        alarm: String,
    },
    /// This transition (or a newer one of the same alarm) was already handled.
    Duplicate {
        /// Transition id.
        transition: String,
    },
    /// A transition that calls for no action was recorded.
    TransitionRecorded {
        /// Transition id.
        transition: String,
    },
    /// A transition to ALARM whose alarm has since left ALARM.
    AlarmRecovered {
        /// Alarm name.
        alarm: String,
    },
    /// A canary alarm fired while no canary is active.
    NoActiveCanary {
        /// Alarm name.
        alarm: String,
    },
    /// Automatic progression is paused.
    Paused {
        /// The operator's reason.
        reason: String,
    },
    /// The stage was paused now.
    PausedNow,
    /// The stage was resumed now; bake timers restart.
    Resumed,
    /// Resume asked for, but the stage was not paused.
    NotPaused,
    /// Too soon after the previous action.
    Cooldown {
        /// When acting becomes possible again, ms since the epoch.
        until_ms: u64,
    },
    /// A rollback is called for but no known-good deployment was recorded.
    NoKnownGood,
    /// A rollback is called for but the stage already serves the
    /// last-known-good deployment.
    AlreadyOnKnownGood {
        /// That deployment.
        deployment: String,
    },
    /// The deployment to move to no longer exists (or could not be verified).
    DeploymentMissing {
        /// Its id.
        deployment: String,
    },
    /// Alarms whose state can't be read halt progression.
    AlarmsUnreadable {
        /// Their names.
        alarms: Vec<String>,
    },
    /// Alarms still in ALARM after their transition was handled: nothing more
    /// is done automatically until they transition again.
    StillAlarming {
        /// Their names.
        alarms: Vec<String>,
    },
    /// The canary's metrics can't be read, or the read was not complete:
    /// progression halts.
    MetricsUnreadable,
    /// No canary metric exists with the dimensions Tidegate looks for
    /// (`ListMetrics`): never read as zero; progression halts.
    CanaryMetricsMissing {
        /// The `ApiName` dimension looked for.
        api_name: String,
        /// The `Stage` dimension looked for.
        stage_dimension: String,
    },
    /// Watched alarms in `INSUFFICIENT_DATA`: no evidence of health, so no
    /// progression and no known-good (never a rollback either).
    NoEvidence {
        /// Their names.
        alarms: Vec<String>,
    },
    /// Watched alarms in ALARM whose actions are suppressed or muted: they
    /// trigger nothing, and halt progression.
    AlarmsSuppressed {
        /// Their names.
        alarms: Vec<String>,
    },
    /// `bake_time` is shorter than a watched alarm needs to fire: a
    /// configuration error; progression and known-good halt until fixed.
    BakeTimeTooShort {
        /// The alarm.
        alarm: String,
        /// The configured bake time, ms.
        bake_ms: u64,
        /// Its period × evaluation periods, ms.
        needed_ms: u64,
    },
    /// Whether the deployment to move to exists could not be checked
    /// (`GetDeployment` failed): unknown, not missing; retried next time.
    DeploymentUnverified {
        /// Its id.
        deployment: String,
    },
    /// Too few canary requests to judge its error rate yet.
    NotEnoughRequests {
        /// Requests in the window.
        count: f64,
        /// Requests needed.
        min: u64,
    },
    /// The current step (or a new deployment) is baking.
    Baking {
        /// The deployment baking.
        deployment: String,
        /// Time left, ms.
        remaining_ms: u64,
    },
    /// Healthy, and nothing left to do.
    Steady,
    /// Promotion asked for, but no canary is active.
    NoActiveCanaryToPromote,
    /// Promotion asked for, but the canary is not healthy.
    CanaryUnhealthy {
        /// What is wrong.
        detail: String,
    },
    /// The canary has baked at a step that requires approval and waits for
    /// an operator's `approve`.
    AwaitingApproval {
        /// The canary's deployment.
        deployment: String,
        /// The gated step's traffic share.
        percent: f64,
    },
    /// The gate was approved now; the canary moves on at its next step.
    Approved {
        /// The canary's deployment.
        deployment: String,
        /// The gated step's traffic share.
        percent: f64,
    },
    /// Approval asked for, but the canary does not wait at a gate.
    NotAwaitingApproval,
    /// Advance asked for, but no canary is active.
    NoActiveCanaryToAdvance,
    /// Start asked for while a canary is active.
    CanaryAlreadyActive {
        /// The active canary's deployment.
        deployment: String,
    },
    /// The edge reported a canary breach but no canary is active (already
    /// removed, or promoted): nothing to take traffic off.
    EdgeNoCanary {
        /// The release the edge judged.
        release: String,
    },
    /// The edge's failures began before the active canary started: they
    /// belong to an earlier release, so this one is left alone (recorded).
    EdgeCanaryNewer {
        /// The active canary's deployment.
        deployment: String,
        /// When Tidegate first saw that canary, ms since the epoch.
        canary_since_ms: u64,
        /// When the edge's failures began (its first failure, else its
        /// window's start), ms since the epoch.
        failures_from_ms: u64,
    },
    /// Start asked for with nothing to start: no deployment, the stage's
    /// own deployment, or steps that are not a plan.
    InvalidStart {
        /// What is wrong, and the fix.
        detail: String,
    },
}

impl Hold {
    /// Whether a person should be told (SNS, error-level log): the policy
    /// wanted to protect the stage and could not, or can no longer see.
    pub fn needs_attention(&self) -> bool {
        matches!(
            self,
            Self::NoKnownGood
                | Self::AlreadyOnKnownGood { .. }
                | Self::DeploymentMissing { .. }
                | Self::AlarmsUnreadable { .. }
                | Self::StillAlarming { .. }
                | Self::MetricsUnreadable
                | Self::CanaryMetricsMissing { .. }
                | Self::BakeTimeTooShort { .. }
                | Self::DeploymentUnverified { .. }
        )
    }
}

fn pct(p: f64) -> String {
    format!("{p}%")
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RemoveCanary {
                deployment_id,
                percent,
                reason,
            } => write!(
                f,
                "remove canary {deployment_id} (at {}): {reason}",
                pct(*percent)
            ),
            Self::RollbackStage {
                from_deployment,
                to_deployment,
                reason,
                clears_leftover_canary,
            } => {
                write!(
                    f,
                    "roll stage back from {from_deployment} to last-known-good {to_deployment}: {reason}"
                )?;
                if *clears_leftover_canary {
                    f.write_str(" (after removing leftover canary settings)")?;
                }
                Ok(())
            }
            Self::SetCanaryPercent {
                deployment_id,
                from,
                to,
            } => write!(
                f,
                "move canary {deployment_id} from {} to {}",
                pct(*from),
                pct(*to)
            ),
            Self::StartCanary {
                deployment_id,
                percent,
            } => write!(f, "start canary {deployment_id} at {}", pct(*percent)),
            Self::PromoteCanary {
                deployment,
                from_deployment,
            } => write!(
                f,
                "promote canary {deployment} (replacing {from_deployment}) and remove its settings"
            ),
            Self::RecordKnownGood {
                deployment,
                previous,
            } => match previous {
                Some(p) => write!(f, "record {deployment} as last-known-good (was {p})"),
                None => write!(f, "record {deployment} as last-known-good"),
            },
            Self::None { reason } => write!(f, "no action: {reason}"),
        }
    }
}

impl fmt::Display for RemoveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CanaryAlarm { alarm } => write!(f, "canary alarm {alarm} is in ALARM"),
            Self::StageAlarm { alarm } => {
                write!(
                    f,
                    "stage alarm {alarm} is in ALARM while a canary is active"
                )
            }
            Self::ErrorRate {
                errors_5xx,
                count,
                threshold,
            } => write!(
                f,
                "canary 5XX rate {errors_5xx}/{count} is above {}",
                pct(threshold * 100.0)
            ),
            Self::Edge {
                release,
                breach,
                detail,
            } => write!(
                f,
                "the edge judged release {release} unhealthy ({}): {detail}",
                breach.as_str()
            ),
            Self::Manual { reason } => write!(f, "operator: {reason}"),
            Self::Leftover => f.write_str("leftover canary settings with no effect"),
            Self::PromotionLeftover => {
                f.write_str("canary settings left at 0 % by Tidegate's promotion")
            }
        }
    }
}

impl fmt::Display for RollbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StageAlarm { alarm } => write!(f, "stage alarm {alarm} is in ALARM"),
            Self::Edge { breach, detail } => write!(
                f,
                "the edge judged the stage unhealthy ({}): {detail}",
                breach.as_str()
            ),
            Self::Manual { reason } => write!(f, "operator: {reason}"),
        }
    }
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotManaged { rest_api_id, stage } => {
                write!(f, "stage {rest_api_id}/{stage} is not the managed stage")
            }
            Self::NotWatched { alarm } => write!(f, "alarm {alarm} is not watched for this stage"),
            Self::Duplicate { transition } => {
                write!(f, "transition {transition} was already handled")
            }
            Self::TransitionRecorded { transition } => {
                write!(f, "transition {transition} recorded")
            }
            Self::AlarmRecovered { alarm } => write!(f, "alarm {alarm} has since left ALARM"),
            Self::NoActiveCanary { alarm } => {
                write!(f, "canary alarm {alarm} fired but no canary is active")
            }
            Self::Paused { reason } => write!(f, "paused ({reason})"),
            Self::PausedNow => f.write_str("paused"),
            Self::Resumed => f.write_str("resumed; bake timers restart"),
            Self::NotPaused => f.write_str("not paused"),
            Self::Cooldown { until_ms } => write!(f, "cooling down until {until_ms}"),
            Self::NoKnownGood => {
                f.write_str("rollback needed but no last-known-good deployment is recorded")
            }
            Self::AlreadyOnKnownGood { deployment } => write!(
                f,
                "rollback needed but the stage already serves last-known-good {deployment}"
            ),
            Self::DeploymentMissing { deployment } => {
                write!(f, "deployment {deployment} no longer exists")
            }
            Self::AlarmsUnreadable { alarms } => {
                write!(
                    f,
                    "alarm state unreadable, progression halted: {}",
                    alarms.join(", ")
                )
            }
            Self::StillAlarming { alarms } => write!(
                f,
                "still in ALARM after the action taken for it: {}",
                alarms.join(", ")
            ),
            Self::MetricsUnreadable => f.write_str("canary metrics unreadable, progression halted"),
            Self::CanaryMetricsMissing {
                api_name,
                stage_dimension,
            } => write!(
                f,
                "no AWS/ApiGateway metric with ApiName={api_name} and Stage={stage_dimension}, \
                 progression halted: check that the canary has had traffic, or set \
                 `metric_api_name` / `canary_stage_dimension` in [[rollback.stages]] to the \
                 dimensions your canary's metrics use"
            ),
            Self::NoEvidence { alarms } => write!(
                f,
                "no evidence of health (INSUFFICIENT_DATA): {}",
                alarms.join(", ")
            ),
            Self::AlarmsSuppressed { alarms } => write!(
                f,
                "in ALARM with actions suppressed or muted (no action taken, progression halted): {}",
                alarms.join(", ")
            ),
            Self::BakeTimeTooShort {
                alarm,
                bake_ms,
                needed_ms,
            } => write!(
                f,
                "`bake_time` ({}s) is shorter than alarm {alarm}'s period × evaluation periods \
                 ({}s), so a deployment would be recorded as good before the alarm could fire: \
                 set `bake_time` in [[rollback.stages]] to at least {}s (plus API Gateway's \
                 1–2 minutes of metric delay); progression and known-good are halted",
                bake_ms.div_ceil(1000),
                needed_ms.div_ceil(1000),
                needed_ms.div_ceil(1000)
            ),
            Self::DeploymentUnverified { deployment } => write!(
                f,
                "could not check that deployment {deployment} exists (GetDeployment failed); retried next time"
            ),
            Self::NotEnoughRequests { count, min } => {
                write!(f, "canary has {count} requests, needs {min} to be judged")
            }
            Self::Baking {
                deployment,
                remaining_ms,
            } => write!(
                f,
                "{deployment} baking, {}s left",
                remaining_ms.div_ceil(1000)
            ),
            Self::Steady => f.write_str("healthy, nothing to do"),
            Self::NoActiveCanaryToPromote => f.write_str("no active canary to promote"),
            Self::CanaryUnhealthy { detail } => write!(f, "canary not healthy: {detail}"),
            Self::AwaitingApproval {
                deployment,
                percent,
            } => write!(
                f,
                "canary {deployment} waits at {} for an operator's approval",
                pct(*percent)
            ),
            Self::Approved {
                deployment,
                percent,
            } => write!(
                f,
                "canary {deployment} approved at {}; it moves on at its next step",
                pct(*percent)
            ),
            Self::NotAwaitingApproval => f.write_str("the canary does not wait for approval"),
            Self::NoActiveCanaryToAdvance => f.write_str("no active canary to advance"),
            Self::CanaryAlreadyActive { deployment } => write!(
                f,
                "canary {deployment} is active: promote or roll it back before starting another"
            ),
            Self::InvalidStart { detail } => write!(f, "cannot start a canary: {detail}"),
            Self::EdgeNoCanary { release } => write!(
                f,
                "the edge judged release {release} unhealthy but no canary is active"
            ),
            Self::EdgeCanaryNewer {
                deployment,
                canary_since_ms,
                failures_from_ms,
            } => write!(
                f,
                "the edge's failures began at {failures_from_ms}, before canary {deployment} started at {canary_since_ms}: not its failures"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_match_serde() {
        for k in ActionKind::ALL {
            assert_eq!(ActionKind::from_str_opt(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::Value::String(k.as_str().into())
            );
        }
        assert_eq!(ActionKind::from_str_opt("nope"), None);
        assert_eq!(ActionKind::RollbackStage.metric_name(), Some("Rollbacks"));
        assert_eq!(ActionKind::PromoteCanary.metric_name(), Some("Promotions"));
        assert_eq!(ActionKind::RecordKnownGood.metric_name(), None);
    }

    #[test]
    fn actions_serialise_tagged() {
        let a = Action::RemoveCanary {
            deployment_id: "d2".into(),
            percent: 10.0,
            reason: RemoveReason::CanaryAlarm { alarm: "c".into() },
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["type"], "remove_canary");
        assert_eq!(v["reason"]["kind"], "canary_alarm");
        assert_eq!(serde_json::from_value::<Action>(v).unwrap(), a);
        assert_eq!(
            a.to_string(),
            "remove canary d2 (at 10%): canary alarm c is in ALARM"
        );
        let n = Action::None {
            reason: Hold::Cooldown { until_ms: 5 },
        };
        assert_eq!(
            serde_json::to_value(&n).unwrap()["reason"]["kind"],
            "cooldown"
        );
        assert_eq!(n.kind(), None);
        assert!(n.hold().is_some());
    }

    #[test]
    fn attention() {
        assert!(Hold::NoKnownGood.needs_attention());
        assert!(Hold::AlarmsUnreadable { alarms: vec![] }.needs_attention());
        assert!(!Hold::Steady.needs_attention());
        assert!(!Hold::Cooldown { until_ms: 0 }.needs_attention());
    }
}
