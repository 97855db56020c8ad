//! Edge-observed release health (issue 18): what the edge sees of each
//! release of a managed stage, the judgement of a canary against its base,
//! and the signed event that tells the rollback Lambda about a breach.
//!
//! Pure like the rest of the crate: the clock, the secret and the event id
//! are arguments.
//!
//! ```
//! use tidegate_policy::health::{sign, verify, EdgeHealthEvent, ReleaseFigures, SignalKey, BreachKind};
//! let key = SignalKey::new(b"0123456789abcdef0123456789abcdef").unwrap();
//! let event = EdgeHealthEvent {
//!     id: "e-1".into(),
//!     api: "shop".into(),
//!     stage: "prod".into(),
//!     release: "canary".into(),
//!     breach: BreachKind::ErrorRate,
//!     issued_ms: 1_000_000,
//!     window_from_ms: 990_000,
//!     first_failure_ms: Some(991_000),
//!     canary: ReleaseFigures { requests: 40, errors: 20, p50_ms: 12, p99_ms: 40 },
//!     base: Some(ReleaseFigures { requests: 400, errors: 1, p50_ms: 11, p99_ms: 35 }),
//!     detail: "canary 5xx 50.0% vs base 0.3% (z = 9.1 > 2.33)".into(),
//! };
//! let signed = sign(&key, &event);
//! let back = verify(&key, Some(&signed.header), signed.body.as_bytes(), 1_000_500).unwrap();
//! assert_eq!(back, event);
//! // Too old: refused, whatever the signature.
//! assert!(verify(&key, Some(&signed.header), signed.body.as_bytes(), 1_000_000 + 600_000).is_err());
//! ```

mod delivery;
mod judge;
mod outcome;
mod report;
mod signal;
mod window;

pub use delivery::{
    delivery_of, release_of, retry_delay_ms, Cooldown, Delivery, MAX_SIGNAL_ATTEMPTS,
};
pub use judge::{judge, two_proportion_z, JudgeSettings, Judgement, Verdict};
pub use outcome::{
    BatchCell, HistogramError, LatencyHistogram, OutcomeBatch, ReleaseClass, SecondFigures,
    LATENCY_BOUNDS_MS, LATENCY_BUCKETS, MAX_BATCH_CELLS,
};
pub use report::{
    ReleaseSeries, ReleasesReport, SignalRecord, StageHealth, StageReport, MAX_REPORT_BYTES,
};
pub use signal::{
    sign, verify, BreachKind, EdgeHealthEvent, ReleaseFigures, SignalError, SignalKey,
    SignalKeyError, SignedEvent, MAX_SIGNAL_BYTES, SIGNAL_TOLERANCE_MS, SIGNATURE_HEADER,
};
pub use window::{HealthWindow, SecondPoint, FUTURE_SLACK_S, MAX_WINDOW_S};

#[cfg(test)]
mod tests;
