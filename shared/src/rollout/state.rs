//! What the rollback Lambda reads from AWS before it asks for a decision:
//! the stage ([`StageSnapshot`], one `GetStage`), the alarms
//! ([`AlarmReading`], one `DescribeAlarms`), the canary's metrics
//! ([`MetricsReading`]: `ListMetrics`, then one `GetMetricData`) and whether
//! the deployments a decision may move to exist ([`DeploymentCheck`], one
//! `GetDeployment` each).
//!
//! Plain data with no AWS types, so the decision is testable without AWS. A
//! reading that failed is represented, not hidden: [`AlarmState::Unreadable`],
//! [`MetricsReading::Unreadable`] and [`DeploymentCheck::Unknown`] make the
//! policy halt instead of guessing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One API Gateway stage as `GetStage` returned it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSnapshot {
    /// The REST API's id.
    pub rest_api_id: String,
    /// The REST API's name, when the adapter resolved it (needed to match a
    /// stage configured by `rest_api_name`).
    pub rest_api_name: Option<String>,
    /// Stage name.
    pub stage_name: String,
    /// The deployment the stage serves (outside the canary share).
    pub deployment_id: String,
    /// Canary settings, if the stage has any (even at 0 %).
    pub canary: Option<CanarySnapshot>,
    /// `lastUpdatedDate`, ms since the epoch, if reported. Informational.
    pub last_updated_ms: Option<u64>,
    /// Every stage variable. Tidegate writes none; older versions kept
    /// `tidegate_*` bookkeeping here, migrated once (see `legacy`).
    pub variables: BTreeMap<String, String>,
}

/// A stage's `canarySettings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanarySnapshot {
    /// The canary's deployment. Empty if AWS reported none: such a canary
    /// can be removed but never promoted (no deployment has id "").
    pub deployment_id: String,
    /// Share of traffic on the canary, 0 to 100.
    pub percent_traffic: f64,
    /// Stage variables the canary overrides; copied to the stage on promotion.
    pub stage_variable_overrides: BTreeMap<String, String>,
}

impl CanarySnapshot {
    /// Whether this canary really serves different code: some traffic, and a
    /// deployment other than the stage's. Anything else is leftover settings
    /// (AWS's promote leaves them behind at 0 %) and is cleaned up, never
    /// progressed.
    pub fn is_active(&self, stage_deployment_id: &str) -> bool {
        self.percent_traffic.is_finite()
            && self.percent_traffic > 0.0
            && self.deployment_id != stage_deployment_id
    }
}

/// The state of one CloudWatch alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    /// `OK`.
    Ok,
    /// `ALARM`: the only state that counts as unhealthy.
    Alarm,
    /// `INSUFFICIENT_DATA`: readable, not alarming, and no evidence of health
    /// either: it never triggers a rollback, and it halts progression and
    /// known-good recording until the alarm has data.
    InsufficientData,
    /// The adapter could not read it (missing alarm, access denied, throttled
    /// past the retry budget). Halts progression; never triggers a rollback.
    Unreadable,
}

impl AlarmState {
    /// Parses CloudWatch's spelling (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
    pub fn from_aws(s: &str) -> Option<Self> {
        match s {
            "OK" => Some(Self::Ok),
            "ALARM" => Some(Self::Alarm),
            "INSUFFICIENT_DATA" => Some(Self::InsufficientData),
            _ => None,
        }
    }

    /// CloudWatch's spelling; `UNREADABLE` for [`AlarmState::Unreadable`].
    pub fn as_aws(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Alarm => "ALARM",
            Self::InsufficientData => "INSUFFICIENT_DATA",
            Self::Unreadable => "UNREADABLE",
        }
    }
}

/// One alarm as read with `DescribeAlarms` (or as an event reported it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmReading {
    /// Its state.
    pub state: AlarmState,
    /// When it entered that state (`StateTransitionedTimestamp`, else
    /// `StateUpdatedTimestamp`), ms since the epoch. The same instant as the
    /// state-change event's timestamp, so a scheduled check and a delivered
    /// event name the same transition.
    pub since_ms: Option<u64>,
    /// Its actions are suppressed (a composite alarm's `ActionsSuppressedBy`)
    /// or muted (an alarm mute rule): it triggers nothing, and while in ALARM
    /// it still halts progression (it is no evidence of health).
    #[serde(default)]
    pub suppressed: bool,
    /// How long it needs to see a breach before it fires: period ×
    /// evaluation periods, ms (metric alarms; `None` for composite alarms or
    /// when unknown). A bake time shorter than this records a deployment as
    /// good before its alarm could have fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation_ms: Option<u64>,
}

impl AlarmReading {
    /// A reading in `state` since `since_ms`.
    pub const fn new(state: AlarmState, since_ms: u64) -> Self {
        Self {
            state,
            since_ms: Some(since_ms),
            suppressed: false,
            evaluation_ms: None,
        }
    }

    /// The same reading with its actions suppressed or muted.
    #[must_use]
    pub const fn suppressed(mut self) -> Self {
        self.suppressed = true;
        self
    }

    /// The same reading with its evaluation span (period × evaluation
    /// periods), ms.
    #[must_use]
    pub const fn evaluating_over(mut self, ms: u64) -> Self {
        self.evaluation_ms = Some(ms);
        self
    }

    /// A failed read.
    pub const UNREADABLE: Self = Self {
        state: AlarmState::Unreadable,
        since_ms: None,
        suppressed: false,
        evaluation_ms: None,
    };
}

/// The canary's API Gateway metrics over its window (see
/// [`super::metrics::canary_query`]): `Sum` of `5XXError` and `SampleCount`
/// of `Count` for the canary's `Stage` dimension.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CanaryMetrics {
    /// Requests answered with a 5XX.
    pub errors_5xx: f64,
    /// All requests.
    pub count: f64,
}

impl CanaryMetrics {
    /// Whether both sums are finite and non-negative; anything else is
    /// treated as unreadable.
    pub fn is_sane(&self) -> bool {
        self.errors_5xx.is_finite()
            && self.count.is_finite()
            && self.errors_5xx >= 0.0
            && self.count >= 0.0
    }

    /// `errors_5xx / count`, or 0 with no requests.
    pub fn error_rate(&self) -> f64 {
        if self.count > 0.0 {
            self.errors_5xx / self.count
        } else {
            0.0
        }
    }
}

/// What reading the canary's metrics gave.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum MetricsReading {
    /// Not read (no active canary, so none were needed).
    #[default]
    NotRead,
    /// Read, complete.
    Read(CanaryMetrics),
    /// `ListMetrics` shows no metric with the canary's dimensions: the
    /// canary's traffic is not measured under them (a wrong `ApiName` or
    /// `Stage` dimension, or a canary that never had traffic). Never read as
    /// zero: progression halts and a person is told the fix.
    DimensionMissing {
        /// The `ApiName` dimension looked for.
        api_name: String,
        /// The `Stage` dimension looked for.
        stage_dimension: String,
    },
    /// The read failed, or `GetMetricData` did not answer `Complete`.
    Unreadable {
        /// Why, for the audit log.
        reason: String,
    },
}

impl MetricsReading {
    /// The metrics, if read completely and sane.
    pub fn sane(&self) -> Option<CanaryMetrics> {
        match self {
            Self::Read(m) if m.is_sane() => Some(*m),
            _ => None,
        }
    }
}

/// Whether a deployment the decision may point the stage at exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentCheck {
    /// `GetDeployment` found it.
    Exists,
    /// `GetDeployment` answered NotFound: deleted.
    Missing,
    /// The call failed (throttled, denied, timed out): unknown, never read as
    /// missing or present.
    Unknown,
}

/// Everything read besides the stage itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    /// Alarm name → reading. A configured alarm missing here counts as
    /// [`AlarmState::Unreadable`].
    pub alarms: BTreeMap<String, AlarmReading>,
    /// The canary's metrics.
    pub canary_metrics: MetricsReading,
    /// Deployment id → whether it exists, for the ids
    /// [`super::deployments_to_check`] names. The policy never points the
    /// stage at a deployment not known to exist here.
    pub deployments: BTreeMap<String, DeploymentCheck>,
}

impl Signals {
    /// The reading for `alarm`; unreadable if absent.
    pub fn alarm(&self, alarm: &str) -> AlarmReading {
        self.alarms
            .get(alarm)
            .copied()
            .unwrap_or(AlarmReading::UNREADABLE)
    }

    /// Whether `deployment` is known to exist.
    pub fn deployment(&self, deployment: &str) -> DeploymentCheck {
        self.deployments
            .get(deployment)
            .copied()
            .unwrap_or(DeploymentCheck::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_state_names_round_trip() {
        for s in [
            AlarmState::Ok,
            AlarmState::Alarm,
            AlarmState::InsufficientData,
        ] {
            assert_eq!(AlarmState::from_aws(s.as_aws()), Some(s));
        }
        assert_eq!(AlarmState::from_aws("UNREADABLE"), None);
        assert_eq!(AlarmState::from_aws("alarm"), None);
        assert_eq!(
            serde_json::to_string(&AlarmState::InsufficientData).unwrap(),
            "\"INSUFFICIENT_DATA\""
        );
    }

    #[test]
    fn canary_activity() {
        let c = |dep: &str, p: f64| CanarySnapshot {
            deployment_id: dep.into(),
            percent_traffic: p,
            stage_variable_overrides: BTreeMap::new(),
        };
        assert!(c("new", 5.0).is_active("old"));
        assert!(!c("new", 0.0).is_active("old"));
        assert!(!c("old", 50.0).is_active("old"));
        assert!(!c("new", f64::NAN).is_active("old"));
    }

    #[test]
    fn metrics_sanity_and_rate() {
        let m = CanaryMetrics {
            errors_5xx: 5.0,
            count: 100.0,
        };
        assert!(m.is_sane());
        assert!((m.error_rate() - 0.05).abs() < 1e-12);
        let none = CanaryMetrics {
            errors_5xx: 0.0,
            count: 0.0,
        };
        assert_eq!(none.error_rate(), 0.0);
        for bad in [f64::NAN, f64::INFINITY, -1.0] {
            assert!(!CanaryMetrics {
                errors_5xx: bad,
                count: 1.0
            }
            .is_sane());
        }
        let s = Signals {
            canary_metrics: MetricsReading::Read(CanaryMetrics {
                errors_5xx: f64::NAN,
                count: 1.0,
            }),
            ..Signals::default()
        };
        assert_eq!(s.canary_metrics.sane(), None);
        assert_eq!(s.alarm("missing"), AlarmReading::UNREADABLE);
        assert_eq!(s.deployment("d1"), DeploymentCheck::Unknown);
    }
}
