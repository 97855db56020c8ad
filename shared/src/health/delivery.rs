//! Sending a breach: one event per release per cooldown, retried with
//! backoff on a network failure, a 429 or a 5xx, stopped on any 2xx
//! (`200 duplicate` included) or a 4xx (retrying cannot fix a bad secret).
//!
//! ```
//! use tidegate_policy::health::{delivery_of, retry_delay_ms, Cooldown, Delivery, ReleaseClass};
//! assert_eq!(delivery_of(Some(202)), Delivery::Delivered);
//! assert_eq!(delivery_of(Some(503)), Delivery::Retry);
//! assert_eq!(delivery_of(None), Delivery::Retry);
//! assert_eq!(delivery_of(Some(401)), Delivery::GiveUp);
//! assert_eq!(retry_delay_ms(1), Some(500));
//! assert_eq!(retry_delay_ms(99), None);
//! let mut cooldown = Cooldown::new(60_000);
//! assert!(cooldown.allows(ReleaseClass::Canary, 1_000));
//! cooldown.mark(ReleaseClass::Canary, 1_000);
//! assert!(!cooldown.allows(ReleaseClass::Canary, 30_000));
//! assert!(cooldown.allows(ReleaseClass::Canary, 61_000));
//! ```

use serde::{Deserialize, Serialize};

use super::outcome::ReleaseClass;

/// Most sending attempts of one event (the first included).
pub const MAX_SIGNAL_ATTEMPTS: u32 = 6;

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// The Lambda took it (2xx, including `200 duplicate`).
    Delivered,
    /// Try again later (no answer, 429, 5xx).
    Retry,
    /// Stop: the Lambda refused it (4xx) and will refuse it again.
    GiveUp,
}

/// What an attempt's answer (`None`: no answer) means.
pub fn delivery_of(status: Option<u16>) -> Delivery {
    match status {
        Some(200..=299) => Delivery::Delivered,
        None | Some(429) | Some(500..=599) => Delivery::Retry,
        Some(_) => Delivery::GiveUp,
    }
}

/// The wait before attempt `attempt + 1` after `attempt` failed (1-based):
/// 0.5 s, 1 s, 2 s, 4 s, 8 s; `None` when attempts are exhausted.
pub fn retry_delay_ms(attempt: u32) -> Option<u64> {
    if attempt == 0 || attempt >= MAX_SIGNAL_ATTEMPTS {
        return None;
    }
    Some(500u64 << (attempt - 1).min(10))
}

/// When each release class last had a breach sent, so one is not re-sent
/// every second while the Lambda acts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cooldown {
    period_ms: u64,
    last_ms: [Option<u64>; 3],
}

impl Cooldown {
    /// A cooldown of `period_ms`.
    pub fn new(period_ms: u64) -> Self {
        Self {
            period_ms,
            last_ms: [None; 3],
        }
    }

    /// Whether a breach of `release` may be sent at `now_ms`.
    pub fn allows(&self, release: ReleaseClass, now_ms: u64) -> bool {
        match self.last_ms.get(release.index()).copied().flatten() {
            None => true,
            Some(last) => now_ms.saturating_sub(last) >= self.period_ms,
        }
    }

    /// Records a breach of `release` sent at `now_ms`.
    pub fn mark(&mut self, release: ReleaseClass, now_ms: u64) {
        if let Some(slot) = self.last_ms.get_mut(release.index()) {
            *slot = Some(now_ms);
        }
    }
}

/// The release class a breach of `kind` is about (the cooldown's key).
pub fn release_of(kind: super::signal::BreachKind) -> ReleaseClass {
    match kind {
        super::signal::BreachKind::StageErrorRate => ReleaseClass::Unattributed,
        super::signal::BreachKind::ErrorRate | super::signal::BreachKind::Latency => {
            ReleaseClass::Canary
        }
    }
}
