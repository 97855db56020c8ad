//! `GET /stages/{api}/{stage}/metrics?hours=N`: the stage's and the
//! canary's requests and 5xx error rate per period over the last hours,
//! with the actions of the history to mark on the chart. The dashboard's
//! chart ([`crate::dashboard`]) draws exactly this document.
//!
//! The canary's series reads the `Stage` dimension the stage is configured
//! with (`canary_stage_dimension`, default `{stage}/Canary`): AWS documents
//! that a canary has its own metrics, not that dimension's spelling, so a
//! series that reads nothing says which dimensions it looked for.
//!
//! ```
//! use tidegate_rollback::metrics::MetricsWindow;
//! let hour = 3_600_000;
//! let w = MetricsWindow::new(3, 10 * hour + 59_000).unwrap();
//! assert_eq!(w.period_secs, 60);
//! assert_eq!((w.start_ms, w.end_ms), (7 * hour, 10 * hour + 59_000));
//! ```

mod window;

/// History entries read for the chart's marks.
pub const CHART_ACTIONS: usize = 200;

pub use window::{merge_points, MetricsWindow, WindowError, DEFAULT_HOURS, MAX_HOURS};

use serde::{Deserialize, Serialize};

use crate::store::HistoryEntry;

/// One period of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// Period start, ms since the epoch.
    pub at_ms: u64,
    /// Requests in the period (`Count`, `SampleCount`).
    pub requests: f64,
    /// 5xx answers in the period (`5XXError`, `Sum`).
    pub errors_5xx: f64,
    /// `errors_5xx / requests`; `None` without requests.
    pub error_rate: Option<f64>,
}

/// One series: the whole stage's, or the canary's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSeries {
    /// The `Stage` dimension read (`prod`, `prod/Canary`).
    pub stage_dimension: String,
    /// Periods with data, oldest first (periods without requests are left
    /// out by CloudWatch).
    pub points: Vec<MetricPoint>,
    /// Why the series could not be read; `points` is then empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An action of the history, as the chart marks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChartAction {
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// What (`remove_canary`, `pause`, …).
    pub what: String,
    /// Who.
    pub who: String,
    /// Why.
    pub why: String,
    /// The outcome's status (`applied`, `nothing_to_do`, …).
    pub outcome: String,
}

impl ChartAction {
    /// The chart's view of a history entry.
    pub fn from_entry(e: &HistoryEntry) -> Self {
        Self {
            at_ms: e.at_ms,
            what: e.what.clone(),
            who: e.who.clone(),
            why: e.why.clone(),
            outcome: e.outcome.status().to_owned(),
        }
    }
}

/// The metrics document of one managed stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageMetrics {
    /// The REST API as configured.
    pub api: String,
    /// Stage name.
    pub stage: String,
    /// Hours covered.
    pub hours: u32,
    /// Window start, ms since the epoch.
    pub start_ms: u64,
    /// Window end, ms since the epoch.
    pub end_ms: u64,
    /// Seconds per point.
    pub period_secs: u64,
    /// The whole stage (base and canary traffic together).
    pub stage_series: MetricSeries,
    /// The canary alone.
    pub canary_series: MetricSeries,
    /// Actions from the history inside the window, oldest first.
    pub actions: Vec<ChartAction>,
    /// Why the stage or its history could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StageMetrics {
    /// An empty document for `window`.
    pub fn new(api: impl Into<String>, stage: impl Into<String>, window: &MetricsWindow) -> Self {
        Self {
            api: api.into(),
            stage: stage.into(),
            hours: window.hours,
            start_ms: window.start_ms,
            end_ms: window.end_ms,
            period_secs: window.period_secs,
            stage_series: MetricSeries::default(),
            canary_series: MetricSeries::default(),
            actions: Vec::new(),
            error: None,
        }
    }

    /// Keeps the history entries inside the window, oldest first.
    pub fn mark(&mut self, newest_first: &[HistoryEntry]) {
        self.actions = newest_first
            .iter()
            .rev()
            .filter(|e| (self.start_ms..=self.end_ms).contains(&e.at_ms))
            .map(ChartAction::from_entry)
            .collect();
    }
}

#[cfg(test)]
mod tests;
