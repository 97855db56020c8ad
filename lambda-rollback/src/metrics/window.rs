//! The metrics window: which hours, in which periods (pure).

use std::collections::BTreeMap;

use super::MetricPoint;

/// Hours shown when the request names none.
pub const DEFAULT_HOURS: u32 = 3;
/// Most hours one request may ask for.
pub const MAX_HOURS: u32 = 48;

/// A rejected `hours` parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// Not a whole number from 1 to [`MAX_HOURS`].
    #[error("`hours` must be a whole number from 1 to {MAX_HOURS}, got {0:?}")]
    Hours(String),
}

/// The window of a metrics request: `[start_ms, end_ms]` in periods of
/// `period_secs`, the start on a whole period, the end now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsWindow {
    /// Hours covered.
    pub hours: u32,
    /// Start, ms since the epoch.
    pub start_ms: u64,
    /// End, ms since the epoch.
    pub end_ms: u64,
    /// Seconds per point: 1 min up to 3 h, 5 min up to 12 h, else 15 min
    /// (at most a few hundred points per series: a readable chart, one
    /// `GetMetricData` page).
    pub period_secs: u64,
}

impl MetricsWindow {
    /// The window of the `hours` before `now_ms`; `None` if `hours` is out
    /// of range.
    pub fn new(hours: u32, now_ms: u64) -> Option<Self> {
        if !(1..=MAX_HOURS).contains(&hours) {
            return None;
        }
        let period_secs = match hours {
            0..=3 => 60,
            4..=12 => 300,
            _ => 900,
        };
        // The start on a whole period (CloudWatch's periods are aligned to
        // it); the end is now, so the current period and the actions just
        // taken are in the window.
        let period_ms = period_secs * 1000;
        let start_ms = (now_ms - now_ms % period_ms).saturating_sub(u64::from(hours) * 3_600_000);
        Some(Self {
            hours,
            start_ms,
            end_ms: now_ms,
            period_secs,
        })
    }

    /// Parses the query's `hours` (absent: [`DEFAULT_HOURS`]).
    pub fn from_hours(hours: Option<&str>, now_ms: u64) -> Result<Self, WindowError> {
        match hours {
            None => Self::new(DEFAULT_HOURS, now_ms).ok_or(WindowError::Hours(String::new())),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .and_then(|h| Self::new(h, now_ms))
                .ok_or_else(|| WindowError::Hours(v.chars().take(20).collect())),
        }
    }
}

/// Joins CloudWatch's two answers (timestamps and values of the request
/// count, and of the 5xx count) into points, oldest first.
pub fn merge_points(requests: &[(u64, f64)], errors: &[(u64, f64)]) -> Vec<MetricPoint> {
    let mut by_time: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for &(t, v) in requests {
        by_time.entry(t).or_default().0 += v;
    }
    for &(t, v) in errors {
        by_time.entry(t).or_default().1 += v;
    }
    by_time
        .into_iter()
        .map(|(at_ms, (requests, errors_5xx))| MetricPoint {
            at_ms,
            requests,
            errors_5xx,
            error_rate: (requests > 0.0).then(|| (errors_5xx / requests).clamp(0.0, 1.0)),
        })
        .collect()
}
