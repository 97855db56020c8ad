//! What the rollback Lambda reads from AWS before it asks for a decision:
//! the stage ([`StageSnapshot`], one `GetStage`), the alarms
//! ([`AlarmReading`], one `DescribeAlarms`), the canary's metrics
//! ([`CanaryMetrics`], one `GetMetricData`) and which deployments exist.
//!
//! Plain data with no AWS types, so the decision is testable without AWS. A
//! reading that failed is represented, not hidden: [`AlarmState::Unreadable`]
//! and `canary_metrics: None` make the policy halt progression instead of
//! guessing.

use std::collections::{BTreeMap, BTreeSet};

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
    /// `lastUpdatedDate`, ms since the epoch, if reported. Informational:
    /// the policy's own bookkeeping writes update it too.
    pub last_updated_ms: Option<u64>,
    /// Every stage variable, including Tidegate's `tidegate_*` bookkeeping
    /// (see [`super::bookkeeping`]).
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
    /// `INSUFFICIENT_DATA`: readable and not alarming (a quiet canary often
    /// has no data); the error-rate check's `min_requests` covers "too little
    /// evidence" instead.
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

/// One alarm as read with `DescribeAlarms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmReading {
    /// Its state.
    pub state: AlarmState,
    /// When it entered that state (`StateTransitionedTimestamp`, else
    /// `StateUpdatedTimestamp`), ms since the epoch. The same instant as the
    /// state-change event's timestamp, so a scheduled check and a delivered
    /// event name the same transition.
    pub since_ms: Option<u64>,
}

impl AlarmReading {
    /// A reading in `state` since `since_ms`.
    pub const fn new(state: AlarmState, since_ms: u64) -> Self {
        Self {
            state,
            since_ms: Some(since_ms),
        }
    }

    /// A failed read.
    pub const UNREADABLE: Self = Self {
        state: AlarmState::Unreadable,
        since_ms: None,
    };
}

/// The canary's API Gateway metrics over the configured window: sums of
/// `5XXError` and `Count` for the canary's `Stage` dimension.
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

/// Everything read besides the stage itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    /// Alarm name → reading. A configured alarm missing here counts as
    /// [`AlarmState::Unreadable`].
    pub alarms: BTreeMap<String, AlarmReading>,
    /// The canary's metrics; `None` when unread or unreadable (with no canary
    /// the adapter need not read them).
    pub canary_metrics: Option<CanaryMetrics>,
    /// Deployment ids the adapter has verified exist (`GetDeployments`, or
    /// `GetDeployment` on the candidates). The policy never points the stage
    /// at a deployment outside this set; an empty set (listing failed) means
    /// no rollback or promotion is possible.
    pub deployments: BTreeSet<String>,
}

impl Signals {
    /// The reading for `alarm`; unreadable if absent.
    pub fn alarm(&self, alarm: &str) -> AlarmReading {
        self.alarms
            .get(alarm)
            .copied()
            .unwrap_or(AlarmReading::UNREADABLE)
    }

    /// The metrics, if present and sane.
    pub fn sane_metrics(&self) -> Option<CanaryMetrics> {
        self.canary_metrics.filter(CanaryMetrics::is_sane)
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
            canary_metrics: Some(CanaryMetrics {
                errors_5xx: f64::NAN,
                count: 1.0,
            }),
            ..Signals::default()
        };
        assert_eq!(s.sane_metrics(), None);
        assert_eq!(s.alarm("missing"), AlarmReading::UNREADABLE);
    }
}
