//! The monitor's sliding window: one-second cells per release class over the
//! last `window` seconds. Memory is bounded by `3 × (window + FUTURE_SLACK_S)`
//! cells of about 130 bytes (at the longest window, 600 s: about 240 KB).
//!
//! ```
//! use tidegate_policy::health::{HealthWindow, OutcomeBatch, ReleaseClass};
//! let mut window = HealthWindow::new(60);
//! let mut batch = OutcomeBatch::default();
//! batch.record(ReleaseClass::Canary, 500, 10_000_100, 30);
//! batch.record(ReleaseClass::Canary, 200, 10_000_200, 10);
//! window.merge(&batch, 10_000_500);
//! let canary = window.figures(ReleaseClass::Canary, 60, 10_000_500);
//! assert_eq!((canary.requests, canary.errors, canary.p99_ms), (2, 1, 30));
//! assert_eq!(window.first_failure_ms(ReleaseClass::Canary, 10_000_500), Some(10_000_100));
//! let series = window.series(ReleaseClass::Canary, 10_000_500);
//! assert_eq!((series.len(), series[0].at_ms, series[0].errors_5xx), (1, 10_000_000, 1));
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::outcome::{LatencyHistogram, OutcomeBatch, ReleaseClass, SecondFigures};
use super::signal::ReleaseFigures;

/// Seconds ahead of the object's clock a cell may be (isolates' clocks
/// differ a little); later cells are dropped.
pub const FUTURE_SLACK_S: u64 = 2;
/// Longest window, seconds.
pub const MAX_WINDOW_S: u64 = 600;

/// What one release did in one second of the window, for the dashboard's
/// chart (at most `window + FUTURE_SLACK_S` of them per release).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SecondPoint {
    /// Start of the second, ms since the epoch.
    pub at_ms: u64,
    /// Responses.
    pub requests: u32,
    /// Of which 5xx.
    pub errors_5xx: u32,
    /// 99th percentile latency, ms (the histogram bucket's upper bound).
    pub p99_ms: u32,
}

/// Per second, one cell per release class.
type Cells = [SecondFigures; 3];

/// The sliding window of one managed stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthWindow {
    window_s: u64,
    seconds: BTreeMap<u64, Cells>,
}

impl HealthWindow {
    /// An empty window of `window_s` seconds (clamped to 1..=600).
    pub fn new(window_s: u64) -> Self {
        Self {
            window_s: window_s.clamp(1, MAX_WINDOW_S),
            seconds: BTreeMap::new(),
        }
    }

    /// The window's length, seconds.
    pub fn window_s(&self) -> u64 {
        self.window_s
    }

    /// The first second inside the window at `now_ms`.
    fn first_second(&self, span_s: u64, now_ms: u64) -> u64 {
        (now_ms / 1_000).saturating_sub(span_s.min(self.window_s).saturating_sub(1))
    }

    /// Adds a batch, dropping cells outside the window, then forgets seconds
    /// that left it.
    pub fn merge(&mut self, batch: &OutcomeBatch, now_ms: u64) {
        let from = self.first_second(self.window_s, now_ms);
        let until = now_ms / 1_000 + FUTURE_SLACK_S;
        for (release, second, figures) in batch.cells() {
            if second < from || second > until {
                continue;
            }
            let cells = self.seconds.entry(second).or_default();
            if let Some(cell) = cells.get_mut(release.index()) {
                cell.merge(figures);
            }
        }
        self.expire(now_ms);
    }

    /// Forgets seconds that left the window.
    pub fn expire(&mut self, now_ms: u64) {
        let from = self.first_second(self.window_s, now_ms);
        self.seconds = self.seconds.split_off(&from);
    }

    /// Seconds held (the memory bound's unit).
    pub fn held_seconds(&self) -> usize {
        self.seconds.len()
    }

    fn cells(
        &self,
        release: ReleaseClass,
        span_s: u64,
        now_ms: u64,
    ) -> impl Iterator<Item = &SecondFigures> {
        let from = self.first_second(span_s, now_ms);
        self.seconds
            .range(from..)
            .filter_map(move |(_, cells)| cells.get(release.index()))
    }

    /// What `release` did over the last `span_s` seconds (at most the window).
    pub fn figures(&self, release: ReleaseClass, span_s: u64, now_ms: u64) -> ReleaseFigures {
        let mut requests = 0u64;
        let mut errors = 0u64;
        let mut latency = LatencyHistogram::default();
        for cell in self.cells(release, span_s, now_ms) {
            requests += u64::from(cell.requests);
            errors += u64::from(cell.errors);
            latency.merge(&cell.latency);
        }
        ReleaseFigures {
            requests,
            errors,
            p50_ms: latency.quantile_ms(0.5),
            p99_ms: latency.quantile_ms(0.99),
        }
    }

    /// The seconds of the window at `now_ms` in which `release` answered,
    /// oldest first; seconds without a response are left out (no traffic,
    /// not zero errors). Bounded by the window's seconds plus the future
    /// slack.
    pub fn series(&self, release: ReleaseClass, now_ms: u64) -> Vec<SecondPoint> {
        let from = self.first_second(self.window_s, now_ms);
        self.seconds
            .range(from..)
            .filter_map(|(&second, cells)| {
                let cell = cells.get(release.index())?;
                (cell.requests > 0).then(|| SecondPoint {
                    at_ms: second.saturating_mul(1_000),
                    requests: cell.requests,
                    errors_5xx: cell.errors,
                    p99_ms: cell.latency.quantile_ms(0.99),
                })
            })
            .collect()
    }

    /// The first 5xx of `release` still inside the window.
    pub fn first_failure_ms(&self, release: ReleaseClass, now_ms: u64) -> Option<u64> {
        self.cells(release, self.window_s, now_ms)
            .find_map(|cell| cell.first_error_ms)
    }

    /// The start of the window at `now_ms`, ms.
    pub fn from_ms(&self, now_ms: u64) -> u64 {
        self.first_second(self.window_s, now_ms) * 1_000
    }
}
