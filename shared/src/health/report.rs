//! What the edge shows of its managed stages: the answer of
//! `GET {admin_prefix}health/releases`. The Worker's monitors write it and
//! the rollback Lambda's dashboard reads it, so both use these types.
//!
//! ```
//! use tidegate_policy::health::{
//!     HealthWindow, JudgeSettings, OutcomeBatch, ReleaseClass, ReleasesReport, StageHealth,
//!     StageReport,
//! };
//! let settings = JudgeSettings::default();
//! let mut window = HealthWindow::new(settings.window_s);
//! let mut batch = OutcomeBatch::default();
//! batch.record(ReleaseClass::Base, 200, 10_000_100, 12);
//! batch.record(ReleaseClass::Canary, 502, 10_000_200, 40);
//! window.merge(&batch, 10_000_500);
//! let health = StageHealth::of("shop", "prod", Some(&window), &settings, 10_000_500);
//! let canary = health.release(ReleaseClass::Canary).unwrap();
//! assert_eq!((canary.figures.requests, canary.figures.errors), (1, 1));
//! assert_eq!(canary.points.len(), 1);
//! let report = ReleasesReport {
//!     stages: vec![StageReport { key: "shop/prod".into(), health: Some(health), error: None }],
//! };
//! let json = serde_json::to_string(&report).unwrap();
//! let back: ReleasesReport = serde_json::from_str(&json).unwrap();
//! assert_eq!(back, report);
//! assert!(back.stage("shop", "prod").is_some() && back.stage("shop", "beta").is_none());
//! ```

use serde::{Deserialize, Serialize};

use super::delivery::Delivery;
use super::judge::{judge, JudgeSettings, Judgement};
use super::outcome::ReleaseClass;
use super::signal::{EdgeHealthEvent, ReleaseFigures};
use super::window::{HealthWindow, SecondPoint};

/// Largest `GET {admin_prefix}health/releases` answer a reader should
/// accept, bytes: three releases of a 600 s window per stage at about 70
/// bytes a second, for a few stages, with room to spare.
pub const MAX_REPORT_BYTES: usize = 4 * 1024 * 1024;

/// One release class over the window: its totals and its seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseSeries {
    /// Which release.
    pub release: ReleaseClass,
    /// Its figures over the whole window.
    pub figures: ReleaseFigures,
    /// The seconds it answered in, oldest first ([`HealthWindow::series`]).
    #[serde(default)]
    pub points: Vec<SecondPoint>,
}

/// What a stage's monitor shows of its stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageHealth {
    /// The REST API.
    pub api: String,
    /// The stage.
    pub stage: String,
    /// When the figures were taken (the monitor's clock), ms since the epoch.
    #[serde(default)]
    pub at_ms: u64,
    /// The window's length, seconds (0 before the first batch).
    #[serde(default)]
    pub window_s: u64,
    /// The latest judgement, `None` before the first batch.
    pub judgement: Option<Judgement>,
    /// Each release class over the window (empty before the first batch).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<ReleaseSeries>,
    /// The last signal sent, if any.
    pub last_signal: Option<SignalRecord>,
    /// Why signals are not sent, when they are not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signalling_off: Option<String>,
}

impl StageHealth {
    /// The figures of `api`/`stage` from its `window` (none before the first
    /// batch) at `now_ms`, judged with `settings`; no signal recorded yet.
    pub fn of(
        api: &str,
        stage: &str,
        window: Option<&HealthWindow>,
        settings: &JudgeSettings,
        now_ms: u64,
    ) -> Self {
        let releases = window.map_or_else(Vec::new, |w| {
            ReleaseClass::ALL
                .iter()
                .map(|&release| ReleaseSeries {
                    release,
                    figures: w.figures(release, w.window_s(), now_ms),
                    points: w.series(release, now_ms),
                })
                .collect()
        });
        Self {
            api: api.to_owned(),
            stage: stage.to_owned(),
            at_ms: now_ms,
            window_s: window.map_or(0, HealthWindow::window_s),
            judgement: window.map(|w| judge(settings, w, now_ms)),
            releases,
            last_signal: None,
            signalling_off: None,
        }
    }

    /// The series of `release`, if the monitor has a window.
    pub fn release(&self, release: ReleaseClass) -> Option<&ReleaseSeries> {
        self.releases.iter().find(|r| r.release == release)
    }

    /// Start of the window, ms since the epoch.
    pub fn window_from_ms(&self) -> u64 {
        // The second `now` is in counts as the window's last.
        (self.at_ms / 1_000)
            .saturating_sub(self.window_s.saturating_sub(1))
            .saturating_mul(1_000)
    }
}

/// A signal the monitor sent (or is still trying to send).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalRecord {
    /// The event.
    pub event: EdgeHealthEvent,
    /// Attempts so far.
    pub attempts: u32,
    /// The Lambda's last status, `None` when it did not answer.
    pub last_status: Option<u16>,
    /// Where it stands.
    pub delivery: Delivery,
}

/// The answer of `GET {admin_prefix}health/releases`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReleasesReport {
    /// One entry per `[[health.stages]]`.
    pub stages: Vec<StageReport>,
}

impl ReleasesReport {
    /// The entry of `api`/`stage` (the API as `[[rollback.stages]]` names it).
    pub fn stage(&self, api: &str, stage: &str) -> Option<&StageReport> {
        // Compared whole: either name may hold a `/`.
        let key = format!("{api}/{stage}");
        self.stages.iter().find(|s| s.key == key)
    }
}

/// One stage in [`ReleasesReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    /// `api/stage`.
    pub key: String,
    /// The monitor's figures, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<StageHealth>,
    /// Why the monitor could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
