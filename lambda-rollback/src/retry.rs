//! Retries of AWS calls: throttling and 5xx are retried with exponential
//! backoff and full jitter, within the Lambda's time budget.
//!
//! The SDK's *standard* retry mode already does exactly that (it classifies
//! throttling errors, 5xx and transient I/O as retryable, backs off
//! exponentially with jitter, and keeps a client-side retry-token bucket so
//! a brown-out does not become a retry storm), so this module only
//! configures it rather than wrapping every call. The time budget is
//! enforced twice: per call ([`timeouts`]) and for the whole invocation
//! ([`budget`], from the Lambda context's deadline).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

/// Attempts per call (1 + 3 retries).
pub const MAX_ATTEMPTS: u32 = 4;
/// First backoff; doubled per retry, randomised (full jitter).
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Longest single backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Time kept back from the Lambda's deadline to log and answer.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(500);
/// Budget when the deadline is unknown (tests, local runs).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(30);

/// The SDK retry policy.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// Per-call timeouts: one slow attempt must leave time for a retry.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(10))
        .build()
}

/// Deadlines below this are not times (ms since the epoch; this one is in
/// 2001) and are treated as unknown: `cargo lambda watch` sends a fixed
/// `600000`, and taken as a time it would leave no budget at all.
pub const EARLIEST_DEADLINE_MS: u64 = 1_000_000_000_000;

/// Time left for work before the invocation's deadline (ms since the epoch,
/// as the Lambda context gives it), keeping [`DEADLINE_MARGIN`] back;
/// [`DEFAULT_BUDGET`] when the deadline is missing or not a time.
pub fn budget(deadline_ms: u64, now_ms: u64) -> Duration {
    if deadline_ms < EARLIEST_DEADLINE_MS {
        return DEFAULT_BUDGET;
    }
    Duration::from_millis(deadline_ms.saturating_sub(now_ms)).saturating_sub(DEADLINE_MARGIN)
}

tokio::task_local! {
    /// The current invocation's deadline for work, ms since the epoch.
    static DEADLINE_MS: u64;
}

/// Runs `work` with `deadline_ms` as the invocation's deadline for work
/// (set by the budget layer; read by [`deadline_ms`]).
pub async fn with_deadline<F: std::future::Future>(deadline_ms: u64, work: F) -> F::Output {
    DEADLINE_MS.scope(deadline_ms, work).await
}

/// The invocation's deadline for work (see [`with_deadline`]), or
/// [`DEFAULT_BUDGET`] from `now_ms` outside one. A stage lease never
/// outlives it.
pub fn deadline_ms(now_ms: u64) -> u64 {
    DEADLINE_MS.try_with(|d| *d).unwrap_or_else(|_| {
        now_ms.saturating_add(u64::try_from(DEFAULT_BUDGET.as_millis()).unwrap_or(u64::MAX))
    })
}

/// The current time in ms since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_keeps_a_margin() {
        const NOW: u64 = 1_715_680_000_000;
        assert_eq!(budget(0, NOW), DEFAULT_BUDGET);
        // cargo lambda watch's fixed "deadline" is a duration, not a time.
        assert_eq!(budget(600_000, NOW), DEFAULT_BUDGET);
        assert_eq!(budget(NOW + 6_000, NOW), Duration::from_millis(5_500));
        assert_eq!(budget(NOW - 3_000, NOW), Duration::ZERO);
    }

    #[test]
    fn standard_mode_with_jitter() {
        let r = retry_config();
        assert_eq!(r.max_attempts(), MAX_ATTEMPTS);
        assert_eq!(r.mode(), aws_config::retry::RetryMode::Standard);
        assert_eq!(r.initial_backoff(), INITIAL_BACKOFF);
    }
}
