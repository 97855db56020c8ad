//! The judgement: the canary against its base over the window and over a
//! short recent span, so that a canary that starts failing is not diluted by
//! a healthy past. Error rate: a one-sided pooled two-proportion z-test at a
//! configured critical value AND an absolute margin AND a minimum sample
//! (canary requests and errors), so a handful of errors at low traffic does
//! not fire; p99 latency: worse by a factor, with a minimum sample on both
//! sides; unattributed traffic: a fixed 5xx threshold with a minimum sample.
//!
//! ```
//! use tidegate_policy::health::{judge, HealthWindow, JudgeSettings, OutcomeBatch, ReleaseClass, Verdict, BreachKind};
//! let settings = JudgeSettings::default();
//! let mut window = HealthWindow::new(settings.window_s);
//! let mut batch = OutcomeBatch::default();
//! for i in 0..20u64 {
//!     batch.record(ReleaseClass::Base, 200, 50_000_000 + i * 100, 10);
//!     batch.record(ReleaseClass::Canary, 502, 50_000_000 + i * 100, 10);
//! }
//! window.merge(&batch, 50_002_000);
//! let j = judge(&settings, &window, 50_002_000);
//! assert_eq!(j.verdict, Verdict::Breach(BreachKind::ErrorRate));
//! let event = j.event("e-1", "shop", "prod", "canary", 50_002_000).unwrap();
//! assert_eq!(event.canary.errors, 20);
//! ```

use serde::{Deserialize, Serialize};

use super::outcome::ReleaseClass;
use super::signal::{BreachKind, EdgeHealthEvent, ReleaseFigures};
use super::window::HealthWindow;

/// The judgement's thresholds (`[health]` in the gateway config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeSettings {
    /// The sliding window, seconds.
    pub window_s: u64,
    /// The short recent span also judged, seconds (at most the window).
    pub fast_window_s: u64,
    /// Fewest canary responses before its error rate is judged.
    pub min_requests: u64,
    /// Fewest canary 5xx before its error rate is judged.
    pub min_errors: u64,
    /// How much higher (absolute, 0..1) the canary's 5xx rate must be.
    pub error_margin: f64,
    /// The z-test's critical value (one-sided; 3.09 is p = 0.001).
    pub critical_z: f64,
    /// How many times the base's p99 latency the canary's must exceed.
    pub latency_factor: f64,
    /// Fewest responses on each side before latency is judged.
    pub latency_min_requests: u64,
    /// The 5xx rate (0..1) over which unattributed traffic (or a canary
    /// without enough base traffic to compare with) is a breach.
    pub stage_error_rate: f64,
    /// Fewest unattributed responses before that threshold is judged.
    pub stage_min_requests: u64,
}

impl Default for JudgeSettings {
    fn default() -> Self {
        Self {
            window_s: 60,
            fast_window_s: 5,
            min_requests: 5,
            min_errors: 5,
            error_margin: 0.05,
            critical_z: 3.09,
            latency_factor: 3.0,
            latency_min_requests: 100,
            stage_error_rate: 0.25,
            stage_min_requests: 20,
        }
    }
}

/// The outcome of a judgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "breach")]
pub enum Verdict {
    /// Enough traffic, nothing wrong.
    Healthy,
    /// Too little traffic to judge anything.
    Undecided,
    /// A breach of this kind.
    Breach(BreachKind),
}

/// A verdict with the figures it rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// The verdict.
    pub verdict: Verdict,
    /// The span judged (seconds): the window or the fast span.
    pub span_s: u64,
    /// Start of the window, ms.
    pub window_from_ms: u64,
    /// The first 5xx of the failing release (of the canary when healthy).
    pub first_failure_ms: Option<u64>,
    /// The canary over the span.
    pub canary: ReleaseFigures,
    /// The base over the whole window.
    pub base: ReleaseFigures,
    /// Unattributed responses over the span.
    pub unattributed: ReleaseFigures,
    /// The z statistic of the error-rate test, when computed.
    pub z: Option<f64>,
    /// One sentence: what was judged and why.
    pub detail: String,
}

/// The one-sided pooled two-proportion z statistic of `a`'s error rate over
/// `b`'s; 0 when undefined (no responses, or all or none failed on both).
pub fn two_proportion_z(a: &ReleaseFigures, b: &ReleaseFigures) -> f64 {
    let (n1, n2) = (a.requests as f64, b.requests as f64);
    if a.requests == 0 || b.requests == 0 {
        return 0.0;
    }
    let pooled = (a.errors + b.errors) as f64 / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se.is_finite() && se > 0.0 {
        (a.error_rate() - b.error_rate()) / se
    } else {
        0.0
    }
}

fn pct(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// Judges `window` at `now_ms`: the fast span first (a fresh failure shows
/// there first), then the whole window.
pub fn judge(settings: &JudgeSettings, window: &HealthWindow, now_ms: u64) -> Judgement {
    let fast = settings.fast_window_s.clamp(1, window.window_s());
    let mut spans = vec![fast];
    if window.window_s() > fast {
        spans.push(window.window_s());
    }
    let mut last = None;
    for span in spans {
        let j = judge_span(settings, window, span, now_ms);
        if matches!(j.verdict, Verdict::Breach(_)) {
            return j;
        }
        // Report the longest span's figures when nothing breached.
        last = Some(j);
    }
    last.unwrap_or_else(|| judge_span(settings, window, fast, now_ms))
}

fn judge_span(
    settings: &JudgeSettings,
    window: &HealthWindow,
    span_s: u64,
    now_ms: u64,
) -> Judgement {
    let canary = window.figures(ReleaseClass::Canary, span_s, now_ms);
    // The base is the reference: always over the whole window, so a short
    // canary span is compared with a stable rate (a larger sample, a tighter test).
    let base = window.figures(ReleaseClass::Base, window.window_s(), now_ms);
    let unattributed = window.figures(ReleaseClass::Unattributed, span_s, now_ms);
    let mut j = Judgement {
        verdict: Verdict::Undecided,
        span_s,
        window_from_ms: window.from_ms(now_ms),
        first_failure_ms: window.first_failure_ms(ReleaseClass::Canary, now_ms),
        canary,
        base,
        unattributed,
        z: None,
        detail: String::new(),
    };
    let mut judged = Vec::new();
    let canary_sample = canary.requests >= settings.min_requests;
    if canary_sample && base.requests >= settings.min_requests {
        let z = two_proportion_z(&canary, &base);
        j.z = Some(z);
        let margin = canary.error_rate() - base.error_rate();
        let sentence = format!(
            "canary 5xx {} of {} over {span_s}s vs base {} of {} over {}s (z = {z:.2}, critical {:.2}; margin {})",
            pct(canary.error_rate()),
            canary.requests,
            pct(base.error_rate()),
            base.requests,
            window.window_s(),
            settings.critical_z,
            pct(settings.error_margin),
        );
        if canary.errors >= settings.min_errors
            && z > settings.critical_z
            && margin > settings.error_margin
        {
            j.verdict = Verdict::Breach(BreachKind::ErrorRate);
            j.detail = sentence;
            return j;
        }
        judged.push(sentence);
    } else if canary_sample {
        // No base to compare with (canary at or near 100 %): the fixed threshold.
        let sentence = format!(
            "canary 5xx {} of {} over {span_s}s, too little base traffic; threshold {}",
            pct(canary.error_rate()),
            canary.requests,
            pct(settings.stage_error_rate),
        );
        if canary.errors >= settings.min_errors && canary.error_rate() > settings.stage_error_rate {
            j.verdict = Verdict::Breach(BreachKind::ErrorRate);
            j.detail = sentence;
            return j;
        }
        judged.push(sentence);
    }
    if canary.requests >= settings.latency_min_requests
        && base.requests >= settings.latency_min_requests
    {
        let sentence = format!(
            "canary p99 {} ms over {span_s}s vs base {} ms (factor {:.1})",
            canary.p99_ms, base.p99_ms, settings.latency_factor
        );
        if f64::from(canary.p99_ms) > settings.latency_factor * f64::from(base.p99_ms) {
            j.verdict = Verdict::Breach(BreachKind::Latency);
            j.detail = sentence;
            return j;
        }
        judged.push(sentence);
    }
    if unattributed.requests >= settings.stage_min_requests {
        let sentence = format!(
            "stage 5xx {} of {} unattributed over {span_s}s; threshold {}",
            pct(unattributed.error_rate()),
            unattributed.requests,
            pct(settings.stage_error_rate),
        );
        if unattributed.errors >= settings.min_errors
            && unattributed.error_rate() > settings.stage_error_rate
        {
            j.verdict = Verdict::Breach(BreachKind::StageErrorRate);
            j.first_failure_ms = window.first_failure_ms(ReleaseClass::Unattributed, now_ms);
            j.detail = sentence;
            return j;
        }
        judged.push(sentence);
    }
    if judged.is_empty() {
        j.detail = format!(
            "too little traffic over {span_s}s to judge (canary {}, base {}, unattributed {})",
            canary.requests, base.requests, unattributed.requests
        );
    } else {
        j.verdict = Verdict::Healthy;
        j.detail = judged.join("; ");
    }
    j
}

impl Judgement {
    /// The event reporting this breach to the rollback Lambda; `None` unless
    /// the verdict is a breach. `canary_label` names the canary release.
    pub fn event(
        &self,
        id: &str,
        api: &str,
        stage: &str,
        canary_label: &str,
        issued_ms: u64,
    ) -> Option<EdgeHealthEvent> {
        let Verdict::Breach(breach) = self.verdict else {
            return None;
        };
        let (release, canary, base) = match breach {
            BreachKind::StageErrorRate => ("stage", self.unattributed, None),
            BreachKind::ErrorRate | BreachKind::Latency => (
                canary_label,
                self.canary,
                (self.base.requests > 0).then_some(self.base),
            ),
        };
        Some(EdgeHealthEvent {
            id: id.to_owned(),
            api: api.to_owned(),
            stage: stage.to_owned(),
            release: release.to_owned(),
            breach,
            issued_ms,
            window_from_ms: self.window_from_ms,
            first_failure_ms: self.first_failure_ms,
            canary,
            base,
            detail: self.detail.clone(),
        })
    }
}
