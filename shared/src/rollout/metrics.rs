//! The canary's `GetMetricData` query, built purely so the window, period
//! and dimensions are tested here and the adapter only translates it.
//!
//! API Gateway publishes canary metrics in `AWS/ApiGateway` with the
//! dimensions `ApiName` and `Stage` = `<stage>/Canary` (configurable as
//! `canary_stage_dimension`, since that spelling is AWS's convention, not a
//! contract).

use serde::{Deserialize, Serialize};

use crate::config::ManagedStage;

/// CloudWatch namespace of API Gateway's metrics.
pub const NAMESPACE: &str = "AWS/ApiGateway";
/// Metric counting 5XX answers.
pub const ERRORS_METRIC: &str = "5XXError";
/// Metric counting requests.
pub const COUNT_METRIC: &str = "Count";
/// Shortest period API Gateway's (standard-resolution) metrics support.
pub const MIN_PERIOD_SECS: u64 = 60;

/// One `GetMetricData` request: `Sum` of [`ERRORS_METRIC`] and
/// [`COUNT_METRIC`] over `[start_ms, end_ms)` in one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryMetricQuery {
    /// `ApiName` dimension.
    pub api_name: String,
    /// `Stage` dimension (the canary's).
    pub stage_dimension: String,
    /// Window start, ms since the epoch.
    pub start_ms: u64,
    /// Window end (now), ms since the epoch.
    pub end_ms: u64,
    /// Period in seconds: the window rounded down to whole minutes, at least
    /// [`MIN_PERIOD_SECS`].
    pub period_secs: u64,
}

/// The query for `stage`'s canary at `now_ms`; `api_name` is the REST API's
/// name as read (used unless `metric_api_name` is configured). `None` when
/// no `ApiName` is known: the metrics are then unreadable.
pub fn canary_query(
    stage: &ManagedStage,
    api_name: Option<&str>,
    now_ms: u64,
) -> Option<CanaryMetricQuery> {
    let api_name = stage.metric_api_name.as_deref().or(api_name)?;
    let period_secs =
        (stage.metric_window.as_secs() / MIN_PERIOD_SECS * MIN_PERIOD_SECS).max(MIN_PERIOD_SECS);
    Some(CanaryMetricQuery {
        api_name: api_name.to_owned(),
        stage_dimension: stage.canary_stage_dimension_value(),
        start_ms: now_ms.saturating_sub(period_secs.saturating_mul(1000)),
        end_ms: now_ms,
        period_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RestApiRef;
    use std::time::Duration;

    fn stage(window: u64, api: Option<&str>) -> ManagedStage {
        ManagedStage {
            api: RestApiRef::Name("orders-api".into()),
            stage: "prod".into(),
            stage_alarms: vec![],
            canary_alarms: vec![],
            error_rate_threshold: 0.05,
            min_requests: 100,
            canary_steps: vec![10.0, 100.0],
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
        let q = canary_query(&stage(300, None), Some("orders-api"), 1_000_000).unwrap();
        assert_eq!(q.api_name, "orders-api");
        assert_eq!(q.stage_dimension, "prod/Canary");
        assert_eq!(q.period_secs, 300);
        assert_eq!((q.start_ms, q.end_ms), (700_000, 1_000_000));
        // Short or ragged windows become whole minutes, at least one.
        assert_eq!(
            canary_query(&stage(10, None), Some("a"), 0)
                .unwrap()
                .period_secs,
            60
        );
        assert_eq!(
            canary_query(&stage(150, None), Some("a"), 0)
                .unwrap()
                .period_secs,
            120
        );
        // Configured ApiName wins; none known means no query.
        let q = canary_query(&stage(60, Some("orders")), Some("x"), 5).unwrap();
        assert_eq!(q.api_name, "orders");
        assert_eq!(q.start_ms, 0);
        assert_eq!(canary_query(&stage(60, None), None, 5), None);
    }
}
