//! The canary's `GetMetricData` query, built purely so the window, period,
//! statistics and dimensions are tested here and the adapter only
//! translates it.
//!
//! API Gateway publishes canary metrics in `AWS/ApiGateway` with the
//! dimensions `ApiName` and `Stage` = `<stage>/Canary` (configurable as
//! `canary_stage_dimension`, since that spelling is AWS's convention, not a
//! documented contract: the adapter checks with `ListMetrics` that it
//! exists). Every canary of a stage shares that dimension in turn, so the
//! window never starts before the current canary did.

use serde::{Deserialize, Serialize};

use crate::config::ManagedStage;

/// CloudWatch namespace of API Gateway's metrics.
pub const APIGW_NAMESPACE: &str = "AWS/ApiGateway";
/// Metric counting 5XX answers (1 per 5XX, 0 otherwise: its `Sum` is the
/// number of errors).
pub const APIGW_ERRORS_METRIC: &str = "5XXError";
/// Statistic read for [`APIGW_ERRORS_METRIC`].
pub const APIGW_ERRORS_STAT: &str = "Sum";
/// Metric counting requests.
pub const APIGW_COUNT_METRIC: &str = "Count";
/// Statistic read for [`APIGW_COUNT_METRIC`]: its documented statistic.
pub const APIGW_COUNT_STAT: &str = "SampleCount";
/// Shortest period API Gateway's (standard-resolution) metrics support.
pub const APIGW_MIN_PERIOD_SECS: u64 = 60;

/// One `GetMetricData` request: [`APIGW_ERRORS_STAT`] of [`APIGW_ERRORS_METRIC`] and
/// [`APIGW_COUNT_STAT`] of [`APIGW_COUNT_METRIC`] over `[start_ms, end_ms)` in one
/// period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryMetricQuery {
    /// `ApiName` dimension.
    pub api_name: String,
    /// `Stage` dimension (the canary's).
    pub stage_dimension: String,
    /// Window start, ms since the epoch, on a whole minute.
    pub start_ms: u64,
    /// Window end (now), ms since the epoch.
    pub end_ms: u64,
    /// Period in seconds: the window rounded up to whole minutes, at least
    /// [`APIGW_MIN_PERIOD_SECS`], so the window is one datapoint.
    pub period_secs: u64,
}

impl CanaryMetricQuery {
    /// Whether the window holds no whole minute since the canary started:
    /// nothing to read yet (the canary has no requests to judge).
    pub fn is_empty(&self) -> bool {
        self.start_ms >= self.end_ms
    }
}

/// The `ApiName` dimension API Gateway publishes for a REST API named
/// `name`: it strips non-ASCII characters.
pub fn api_name_dimension(name: &str) -> String {
    name.chars().filter(char::is_ascii).collect()
}

/// The query for `stage`'s canary at `now_ms`; `api_name` is the REST API's
/// name as read (used, sanitised, unless `metric_api_name` is configured),
/// `canary_since_ms` when the current canary was first seen. `None` when no
/// `ApiName` is known: the metrics are then unreadable.
///
/// The window is the configured `metric_window`, but starts no earlier
/// than the first whole minute after the canary appeared: CloudWatch
/// rounds a start down to the minute, and an earlier canary's errors in the
/// same minute must not count against this one.
pub fn canary_query(
    stage: &ManagedStage,
    api_name: Option<&str>,
    canary_since_ms: u64,
    now_ms: u64,
) -> Option<CanaryMetricQuery> {
    let api_name = match stage.metric_api_name.as_deref() {
        Some(configured) => configured.to_owned(),
        None => api_name_dimension(api_name?),
    };
    const MINUTE_MS: u64 = APIGW_MIN_PERIOD_SECS * 1000;
    let window_start = now_ms.saturating_sub(millis(stage.metric_window));
    let canary_minute = canary_since_ms
        .div_ceil(MINUTE_MS)
        .saturating_mul(MINUTE_MS);
    let start_ms = window_start.max(canary_minute);
    let span_secs = now_ms.saturating_sub(start_ms).div_ceil(1000);
    let period_secs = span_secs.div_ceil(APIGW_MIN_PERIOD_SECS).max(1) * APIGW_MIN_PERIOD_SECS;
    Some(CanaryMetricQuery {
        api_name,
        stage_dimension: stage.canary_stage_dimension_value(),
        start_ms,
        end_ms: now_ms,
        period_secs,
    })
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CanaryStep, RestApiRef};
    use std::time::Duration;

    fn stage(window: u64, api: Option<&str>) -> ManagedStage {
        ManagedStage {
            api: RestApiRef::Name("orders-api".into()),
            stage: "prod".into(),
            stage_alarms: vec![],
            canary_alarms: vec![],
            error_rate_threshold: 0.05,
            min_requests: 100,
            canary_steps: vec![CanaryStep::at(10.0), CanaryStep::at(100.0)],
            bake_time: Duration::from_secs(60),
            cooldown: Duration::ZERO,
            metric_window: Duration::from_secs(window),
            metric_api_name: api.map(str::to_owned),
            canary_stage_dimension: ManagedStage::DEFAULT_CANARY_STAGE_DIMENSION.into(),
            dry_run: false,
        }
    }

    #[test]
    fn window_dimensions_and_period() {
        let q = canary_query(&stage(300, None), Some("orders-api"), 0, 1_000_000).unwrap();
        assert_eq!(q.api_name, "orders-api");
        assert_eq!(q.stage_dimension, "prod/Canary");
        assert_eq!(q.period_secs, 300);
        assert_eq!((q.start_ms, q.end_ms), (700_000, 1_000_000));
        // Short windows are one whole minute at least.
        let q = canary_query(&stage(10, None), Some("a"), 0, 600_000).unwrap();
        assert_eq!((q.start_ms, q.period_secs), (590_000, 60));
        let q = canary_query(&stage(150, None), Some("a"), 0, 600_000).unwrap();
        assert_eq!(q.period_secs, 180);
        // Configured ApiName wins; none known means no query.
        let q = canary_query(&stage(60, Some("orders")), Some("x"), 0, 5).unwrap();
        assert_eq!(q.api_name, "orders");
        assert_eq!(q.start_ms, 0);
        assert_eq!(canary_query(&stage(60, None), None, 0, 5), None);
    }

    #[test]
    fn the_window_starts_no_earlier_than_the_canary() {
        // A canary first seen at 10:00:30 is judged from 10:01:00 on, even
        // with a five-minute window: the earlier canary's errors at 10:00
        // share its dimension.
        let ten = 36_000_000;
        let q = canary_query(&stage(300, None), Some("a"), ten + 30_000, ten + 240_000).unwrap();
        assert_eq!(q.start_ms, ten + 60_000);
        assert_eq!(q.period_secs, 180);
        assert!(!q.is_empty());
        // Before its first whole minute there is nothing to read.
        let q = canary_query(&stage(300, None), Some("a"), ten + 30_000, ten + 50_000).unwrap();
        assert!(q.is_empty());
        // A canary older than the window: the window as configured.
        let q = canary_query(&stage(300, None), Some("a"), 0, ten).unwrap();
        assert_eq!(q.start_ms, ten - 300_000);
    }

    #[test]
    fn api_name_is_sanitised_as_api_gateway_does() {
        assert_eq!(api_name_dimension("orders-api"), "orders-api");
        assert_eq!(
            api_name_dimension("bestellungen-ü-api ✓"),
            "bestellungen--api "
        );
        let q = canary_query(&stage(60, None), Some("Zähler"), 0, 120_000).unwrap();
        assert_eq!(q.api_name, "Zhler");
    }
}
