//! What an isolate records per response and sends to its stage's monitor:
//! per release class and per second, requests, 5xx, the first 5xx's time and
//! a fixed log-scale latency histogram. The batch is the wire format between
//! the Worker and the Durable Object (JSON), owned here.
//!
//! ```
//! use tidegate_policy::health::{OutcomeBatch, ReleaseClass};
//! let mut batch = OutcomeBatch::default();
//! batch.record(ReleaseClass::Canary, 503, 1_000_250, 40);
//! batch.record(ReleaseClass::Base, 200, 1_000_300, 12);
//! let json = serde_json::to_string(&batch).unwrap();
//! let back: OutcomeBatch = serde_json::from_str(&json).unwrap();
//! assert_eq!(back, batch);
//! assert_eq!(back.len(), 2);
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Upper bounds (ms) of the latency buckets, about 1.5x apart; the last
/// bucket holds everything slower.
pub const LATENCY_BOUNDS_MS: [u32; 28] = [
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1_000, 1_500, 2_000,
    3_000, 5_000, 7_000, 10_000, 15_000, 20_000, 30_000, 60_000,
];
/// Number of latency buckets: one per bound plus the overflow.
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;
/// Most (release, second) cells an isolate keeps between flushes; older
/// seconds are dropped first (an isolate that cannot flush must not grow).
pub const MAX_BATCH_CELLS: usize = 3 * 30;

/// Which release answered, from the attribution header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseClass {
    /// The header carried the configured canary value.
    Canary,
    /// The header carried any other value.
    Base,
    /// No header: the stage as a whole.
    Unattributed,
}

impl ReleaseClass {
    /// All classes, in a fixed order.
    pub const ALL: [ReleaseClass; 3] = [Self::Canary, Self::Base, Self::Unattributed];

    /// The class of a response whose attribution header is `value`.
    pub fn of(value: Option<&str>, canary_value: &str) -> Self {
        match value.map(str::trim) {
            None => Self::Unattributed,
            Some(v) if v.eq_ignore_ascii_case(canary_value) => Self::Canary,
            Some(_) => Self::Base,
        }
    }

    /// Position in [`ReleaseClass::ALL`].
    pub fn index(self) -> usize {
        match self {
            Self::Canary => 0,
            Self::Base => 1,
            Self::Unattributed => 2,
        }
    }

    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Canary => "canary",
            Self::Base => "base",
            Self::Unattributed => "unattributed",
        }
    }
}

/// Response counts per latency bucket ([`LATENCY_BOUNDS_MS`]). On the wire a
/// list of counts with trailing zeros trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<u32>", into = "Vec<u32>")]
pub struct LatencyHistogram([u32; LATENCY_BUCKETS]);

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self([0; LATENCY_BUCKETS])
    }
}

/// Why a histogram from the wire was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistogramError {
    /// More counts than buckets.
    #[error("a latency histogram has at most {LATENCY_BUCKETS} buckets, got {0}")]
    TooLong(usize),
}

impl TryFrom<Vec<u32>> for LatencyHistogram {
    type Error = HistogramError;
    fn try_from(counts: Vec<u32>) -> Result<Self, Self::Error> {
        if counts.len() > LATENCY_BUCKETS {
            return Err(HistogramError::TooLong(counts.len()));
        }
        let mut h = Self::default();
        for (slot, n) in h.0.iter_mut().zip(counts) {
            *slot = n;
        }
        Ok(h)
    }
}

impl From<LatencyHistogram> for Vec<u32> {
    fn from(h: LatencyHistogram) -> Self {
        let used = h.0.iter().rposition(|&n| n > 0).map_or(0, |i| i + 1);
        h.0.iter().take(used).copied().collect()
    }
}

impl LatencyHistogram {
    /// Counts one response of `latency_ms`.
    pub fn record(&mut self, latency_ms: u32) {
        let i = LATENCY_BOUNDS_MS.partition_point(|&bound| bound < latency_ms);
        if let Some(slot) = self.0.get_mut(i) {
            *slot = slot.saturating_add(1);
        }
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    /// Responses counted.
    pub fn total(&self) -> u64 {
        self.0.iter().map(|&n| u64::from(n)).sum()
    }

    /// The upper bound (ms) of the bucket holding quantile `q` (0..=1), 0
    /// when empty; the overflow bucket reports twice the last bound.
    pub fn quantile_ms(&self, q: f64) -> u32 {
        let total = self.total();
        if total == 0 {
            return 0;
        }
        // The rank of the quantile, 1-based, at least 1.
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &n) in self.0.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                return LATENCY_BOUNDS_MS.get(i).copied().unwrap_or(120_000);
            }
        }
        120_000
    }
}

/// One release's outcomes in one second.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondFigures {
    /// Responses.
    pub requests: u32,
    /// Of which 5xx.
    pub errors: u32,
    /// When the first 5xx of this second was seen (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error_ms: Option<u64>,
    /// Latency histogram.
    pub latency: LatencyHistogram,
}

impl SecondFigures {
    /// Counts one response.
    pub fn record(&mut self, status: u16, at_ms: u64, latency_ms: u32) {
        self.requests = self.requests.saturating_add(1);
        if (500..600).contains(&status) {
            self.errors = self.errors.saturating_add(1);
            self.first_error_ms = Some(self.first_error_ms.map_or(at_ms, |t| t.min(at_ms)));
        }
        self.latency.record(latency_ms);
    }

    /// Adds another cell of the same release and second.
    pub fn merge(&mut self, other: &Self) {
        self.requests = self.requests.saturating_add(other.requests);
        self.errors = self.errors.saturating_add(other.errors);
        self.first_error_ms = match (self.first_error_ms, other.first_error_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.latency.merge(&other.latency);
    }
}

/// One cell of a batch on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchCell {
    /// Which release.
    pub release: ReleaseClass,
    /// The second (since the epoch).
    pub second: u64,
    /// What was seen.
    #[serde(flatten)]
    pub figures: SecondFigures,
}

/// An isolate's outcomes for one stage since its last flush, at most
/// [`MAX_BATCH_CELLS`] cells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<BatchCell>", into = "Vec<BatchCell>")]
pub struct OutcomeBatch {
    cells: BTreeMap<(u64, ReleaseClass), SecondFigures>,
}

impl From<Vec<BatchCell>> for OutcomeBatch {
    fn from(cells: Vec<BatchCell>) -> Self {
        let mut batch = Self::default();
        for cell in cells {
            batch.add(cell.release, cell.second, &cell.figures);
        }
        batch
    }
}

impl From<OutcomeBatch> for Vec<BatchCell> {
    fn from(batch: OutcomeBatch) -> Self {
        batch
            .cells
            .into_iter()
            .map(|((second, release), figures)| BatchCell {
                release,
                second,
                figures,
            })
            .collect()
    }
}

impl OutcomeBatch {
    /// Counts one response of `release` with `status`, seen at `at_ms`,
    /// that took `latency_ms`.
    pub fn record(&mut self, release: ReleaseClass, status: u16, at_ms: u64, latency_ms: u32) {
        self.cell(release, at_ms / 1_000)
            .record(status, at_ms, latency_ms);
        self.trim();
    }

    /// Adds a cell (merging with one of the same release and second).
    pub fn add(&mut self, release: ReleaseClass, second: u64, figures: &SecondFigures) {
        self.cell(release, second).merge(figures);
        self.trim();
    }

    /// Cells held.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The cells, oldest second first.
    pub fn cells(&self) -> impl Iterator<Item = (ReleaseClass, u64, &SecondFigures)> {
        self.cells.iter().map(|(&(s, r), f)| (r, s, f))
    }

    fn cell(&mut self, release: ReleaseClass, second: u64) -> &mut SecondFigures {
        self.cells.entry((second, release)).or_default()
    }

    fn trim(&mut self) {
        while self.cells.len() > MAX_BATCH_CELLS {
            self.cells.pop_first();
        }
    }
}
