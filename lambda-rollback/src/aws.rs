//! The AWS side: reads a managed stage's state into the policy's plain data
//! ([`StageSnapshot`], [`Signals`]) and sends what a decision asks for.
//! No decisions here.
//!
//! Clients are built once per container, on first use (see [`crate::App`]):
//! building them at init would add the SDK's config loading to every cold
//! start, even for invocations that never call AWS (e.g. `GET /`).

use std::collections::BTreeMap;

use aws_sdk_apigateway::types::{Op, PatchOperation};
use aws_sdk_cloudwatch::types::{
    AlarmType, Dimension, DimensionFilter, Metric, MetricDataQuery, MetricDatum, MetricStat,
    StandardUnit, StatusCode,
};
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::DateTime;
use tidegate_policy::config::{ManagedStage, RestApiRef};
use tidegate_policy::rollout::{
    self, AlarmReading, AlarmState, CanaryMetrics, CanarySnapshot, DeploymentCheck, MetricsReading,
    PatchOp, PatchOpKind, StageSnapshot,
};

use crate::notify::Notification;
use crate::retry;
use crate::store::DynamoStore;

/// Namespace of Tidegate's own metrics.
pub const METRIC_NAMESPACE: &str = "Tidegate";
/// Most alarm names `DescribeAlarms` takes per call.
const ALARMS_PER_CALL: usize = 100;

/// An AWS call failed (after the SDK's retries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{call}: {message}")]
pub struct AwsError {
    /// The API call.
    pub call: &'static str,
    /// The SDK's message, with its context.
    pub message: String,
}

fn err<E: std::error::Error>(call: &'static str) -> impl Fn(E) -> AwsError {
    move |e| AwsError {
        call,
        message: DisplayErrorContext(&e).to_string(),
    }
}

/// The API Gateway, CloudWatch and SNS clients, and the state store.
#[derive(Debug, Clone)]
pub struct Aws {
    apigw: aws_sdk_apigateway::Client,
    cw: aws_sdk_cloudwatch::Client,
    sns: aws_sdk_sns::Client,
    /// Tidegate's records, leases and history (DynamoDB).
    pub store: DynamoStore,
}

/// A REST API, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestApi {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: Option<String>,
}

impl Aws {
    /// Clients from the environment (region, credentials, and
    /// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>`, which the SDK
    /// honours), with Tidegate's retry and timeout settings; the store on
    /// `state_table`.
    pub async fn from_env(state_table: &str) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(retry::retry_config())
            .timeout_config(retry::timeouts())
            .load()
            .await;
        Self {
            apigw: aws_sdk_apigateway::Client::new(&shared),
            cw: aws_sdk_cloudwatch::Client::new(&shared),
            sns: aws_sdk_sns::Client::new(&shared),
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&shared), state_table),
        }
    }

    /// The REST API a managed stage names; `None` if it does not exist.
    pub async fn rest_api(&self, api: &RestApiRef) -> Result<Option<RestApi>, AwsError> {
        match api {
            RestApiRef::Id(id) => match self.apigw.get_rest_api().rest_api_id(id).send().await {
                Ok(out) => Ok(Some(RestApi {
                    id: id.clone(),
                    name: out.name().map(str::to_owned),
                })),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_not_found_exception()) =>
                {
                    Ok(None)
                }
                Err(e) => Err(err("GetRestApi")(e)),
            },
            RestApiRef::Name(name) => {
                // REST API names are not unique: refuse an ambiguous one
                // rather than act on whichever AWS lists first.
                let mut pages = self
                    .apigw
                    .get_rest_apis()
                    .limit(500)
                    .into_paginator()
                    .items()
                    .send();
                let mut ids = Vec::new();
                while let Some(api) = pages.next().await {
                    let api = api.map_err(err("GetRestApis"))?;
                    if api.name() == Some(name.as_str()) {
                        ids.extend(api.id().map(str::to_owned));
                    }
                }
                match ids.as_slice() {
                    [] => Ok(None),
                    [id] => Ok(Some(RestApi {
                        id: id.clone(),
                        name: Some(name.clone()),
                    })),
                    _ => Err(AwsError {
                        call: "GetRestApis",
                        message: format!(
                            "{} REST APIs are named {name:?} (ids {}): REST API names are not \
                             unique, so Tidegate will not guess; name the stage by \
                             `rest_api_id` in [[rollback.stages]]",
                            ids.len(),
                            ids.join(", ")
                        ),
                    }),
                }
            }
        }
    }

    /// The stage, or `None` if it does not exist (deleted).
    pub async fn stage(
        &self,
        api: &RestApi,
        stage: &str,
    ) -> Result<Option<StageSnapshot>, AwsError> {
        let out = match self
            .apigw
            .get_stage()
            .rest_api_id(&api.id)
            .stage_name(stage)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(err("GetStage")(e)),
        };
        let map =
            |m: Option<&std::collections::HashMap<String, String>>| -> BTreeMap<String, String> {
                m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default()
            };
        Ok(Some(StageSnapshot {
            rest_api_id: api.id.clone(),
            rest_api_name: api.name.clone(),
            stage_name: out.stage_name().unwrap_or(stage).to_owned(),
            deployment_id: out.deployment_id().unwrap_or_default().to_owned(),
            canary: out.canary_settings().map(|c| CanarySnapshot {
                deployment_id: c.deployment_id().unwrap_or_default().to_owned(),
                percent_traffic: c.percent_traffic(),
                stage_variable_overrides: map(c.stage_variable_overrides()),
            }),
            last_updated_ms: out
                .last_updated_date()
                .and_then(|d| d.to_millis().ok())
                .and_then(|ms| u64::try_from(ms).ok()),
            variables: map(out.variables()),
        }))
    }

    /// The states of `names`. An alarm that does not exist, or a failed
    /// read, is absent from the map, which the policy reads as unreadable.
    pub async fn alarms(&self, names: &[String]) -> BTreeMap<String, AlarmReading> {
        let mut out = BTreeMap::new();
        for chunk in names.chunks(ALARMS_PER_CALL) {
            let resp = self
                .cw
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .max_records(100)
                .send()
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %err("DescribeAlarms")(e), "alarm states unreadable");
                    continue;
                }
            };
            // (name, state, since, suppressed, period × evaluation periods)
            let readings = resp
                .metric_alarms()
                .iter()
                .map(|a| {
                    let span = a
                        .period()
                        .zip(a.evaluation_periods())
                        .and_then(|(p, e)| u64::try_from(i64::from(p) * i64::from(e)).ok())
                        .map(|secs| secs.saturating_mul(1000));
                    (
                        a.alarm_name(),
                        a.state_value().map(|s| s.as_str()),
                        a.state_transitioned_timestamp()
                            .or(a.state_updated_timestamp()),
                        false,
                        span,
                    )
                })
                .chain(resp.composite_alarms().iter().map(|a| {
                    (
                        a.alarm_name(),
                        a.state_value().map(|s| s.as_str()),
                        a.state_transitioned_timestamp()
                            .or(a.state_updated_timestamp()),
                        a.actions_suppressed_by().is_some(),
                        None,
                    )
                }));
            for (name, state, since, suppressed, span) in readings {
                let (Some(name), Some(state)) = (name, state.and_then(AlarmState::from_aws)) else {
                    continue;
                };
                out.insert(
                    name.to_owned(),
                    AlarmReading {
                        state,
                        since_ms: since
                            .and_then(|d| d.to_millis().ok())
                            .and_then(|ms| u64::try_from(ms).ok()),
                        suppressed,
                        evaluation_ms: span,
                    },
                );
            }
        }
        out
    }

    /// The canary's `5XXError` (`Sum`) and `Count` (`SampleCount`) over its
    /// window (the query is the policy's [`rollout::canary_query`], which
    /// starts no earlier than the canary, first seen at `canary_since_ms`).
    /// A dimension `ListMetrics` does not know, a failed call, or a result
    /// that is not `Complete` is reported as such, never as zero.
    pub async fn canary_metrics(
        &self,
        stage: &ManagedStage,
        api_name: Option<&str>,
        canary_since_ms: u64,
        now_ms: u64,
    ) -> MetricsReading {
        let Some(q) = rollout::canary_query(stage, api_name, canary_since_ms, now_ms) else {
            return MetricsReading::Unreadable {
                reason: "the REST API's name is unknown: set `metric_api_name`".into(),
            };
        };
        if q.is_empty() {
            // Not a whole minute since the canary appeared: nothing to judge.
            return MetricsReading::Read(CanaryMetrics {
                errors_5xx: 0.0,
                count: 0.0,
            });
        }
        let unreadable = |reason: String| {
            tracing::warn!(%reason, "canary metrics unreadable");
            MetricsReading::Unreadable { reason }
        };
        let dims = [("ApiName", &q.api_name), ("Stage", &q.stage_dimension)];
        let mut pages = self
            .cw
            .list_metrics()
            .namespace(rollout::APIGW_NAMESPACE)
            .metric_name(rollout::APIGW_COUNT_METRIC)
            .set_dimensions(Some(
                dims.iter()
                    .map(|(k, v)| DimensionFilter::builder().name(*k).value(*v).build())
                    .collect(),
            ))
            .into_paginator()
            .send();
        let mut listed = false;
        while let Some(page) = pages.next().await {
            match page {
                Ok(p) if !p.metrics().is_empty() => {
                    listed = true;
                    break;
                }
                Ok(_) => {}
                Err(e) => return unreadable(err("ListMetrics")(e).to_string()),
            }
        }
        if !listed {
            return MetricsReading::DimensionMissing {
                api_name: q.api_name.clone(),
                stage_dimension: q.stage_dimension.clone(),
            };
        }
        let dims = [
            ("ApiName", q.api_name.as_str()),
            ("Stage", q.stage_dimension.as_str()),
        ];
        let query = |id: &str, metric: &str, stat: &str| {
            metric_query(dims, id, metric, stat, q.period_secs)
        };
        let (Ok(start), Ok(end)) = (i64::try_from(q.start_ms), i64::try_from(q.end_ms)) else {
            return unreadable("window out of range".into());
        };
        let mut pages = self
            .cw
            .get_metric_data()
            .metric_data_queries(query(
                "errors",
                rollout::APIGW_ERRORS_METRIC,
                rollout::APIGW_ERRORS_STAT,
            ))
            .metric_data_queries(query(
                "count",
                rollout::APIGW_COUNT_METRIC,
                rollout::APIGW_COUNT_STAT,
            ))
            .start_time(DateTime::from_millis(start))
            .end_time(DateTime::from_millis(end))
            .into_paginator()
            .send();
        let (mut errors, mut count) = (0.0, 0.0);
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e) => return unreadable(err("GetMetricData")(e).to_string()),
            };
            for r in page.metric_data_results() {
                if r.status_code() != Some(&StatusCode::Complete) {
                    return unreadable(format!(
                        "GetMetricData answered {:?} for {}",
                        r.status_code(),
                        r.id().unwrap_or("?")
                    ));
                }
                let sum: f64 = r.values().iter().sum();
                match r.id() {
                    Some("errors") => errors += sum,
                    Some("count") => count += sum,
                    _ => {}
                }
            }
        }
        MetricsReading::Read(CanaryMetrics {
            errors_5xx: errors,
            count,
        })
    }

    /// Requests (`Count`, `SampleCount`) and 5xx answers (`5XXError`,
    /// `Sum`) of one `Stage` dimension per period of `window`, for the
    /// dashboard's chart. A result that is not `Complete` is an error, never
    /// zeros.
    pub async fn metric_series(
        &self,
        api_name: &str,
        stage_dimension: &str,
        window: &crate::metrics::MetricsWindow,
    ) -> Result<Vec<crate::metrics::MetricPoint>, AwsError> {
        let dims = [("ApiName", api_name), ("Stage", stage_dimension)];
        let query = |id: &str, metric: &str, stat: &str| {
            metric_query(dims, id, metric, stat, window.period_secs)
        };
        let range = |ms: u64| i64::try_from(ms).map(DateTime::from_millis);
        let (Ok(start), Ok(end)) = (range(window.start_ms), range(window.end_ms)) else {
            return Err(AwsError {
                call: "GetMetricData",
                message: "window out of range".into(),
            });
        };
        let mut pages = self
            .cw
            .get_metric_data()
            .metric_data_queries(query(
                "requests",
                rollout::APIGW_COUNT_METRIC,
                rollout::APIGW_COUNT_STAT,
            ))
            .metric_data_queries(query(
                "errors",
                rollout::APIGW_ERRORS_METRIC,
                rollout::APIGW_ERRORS_STAT,
            ))
            .start_time(start)
            .end_time(end)
            .into_paginator()
            .send();
        let (mut requests, mut errors) = (Vec::new(), Vec::new());
        while let Some(page) = pages.next().await {
            let page = page.map_err(err("GetMetricData"))?;
            for r in page.metric_data_results() {
                if r.status_code() != Some(&StatusCode::Complete) {
                    return Err(AwsError {
                        call: "GetMetricData",
                        message: format!(
                            "answered {:?} for {}",
                            r.status_code(),
                            r.id().unwrap_or("?")
                        ),
                    });
                }
                let points =
                    r.timestamps().iter().zip(r.values()).filter_map(|(t, v)| {
                        u64::try_from(t.to_millis().ok()?).ok().map(|t| (t, *v))
                    });
                match r.id() {
                    Some("requests") => requests.extend(points),
                    Some("errors") => errors.extend(points),
                    _ => {}
                }
            }
        }
        Ok(crate::metrics::merge_points(&requests, &errors))
    }

    /// Whether deployment `id` of the API exists (`GetDeployment`): a failed
    /// call is unknown, not missing.
    pub async fn deployment(&self, api: &RestApi, id: &str) -> DeploymentCheck {
        match self
            .apigw
            .get_deployment()
            .rest_api_id(&api.id)
            .deployment_id(id)
            .send()
            .await
        {
            Ok(_) => DeploymentCheck::Exists,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                DeploymentCheck::Missing
            }
            Err(e) => {
                tracing::warn!(error = %err("GetDeployment")(e), deployment = id, "deployment unverified");
                DeploymentCheck::Unknown
            }
        }
    }

    /// One `UpdateStage` with the plan step's operations.
    pub async fn update_stage(
        &self,
        api: &RestApi,
        stage: &str,
        ops: &[PatchOp],
    ) -> Result<(), AwsError> {
        let ops = ops
            .iter()
            .map(|o| {
                PatchOperation::builder()
                    .op(match o.op {
                        PatchOpKind::Replace => Op::Replace,
                        PatchOpKind::Remove => Op::Remove,
                        PatchOpKind::Copy => Op::Copy,
                    })
                    .path(&o.path)
                    .set_value(o.value.clone())
                    .set_from(o.from.clone())
                    .build()
            })
            .collect();
        self.apigw
            .update_stage()
            .rest_api_id(&api.id)
            .stage_name(stage)
            .set_patch_operations(Some(ops))
            .send()
            .await
            .map(|_| ())
            .map_err(err("UpdateStage"))
    }

    /// Counts one action in `Tidegate/<metric>` (e.g. `Rollbacks`), by API
    /// and stage. Best effort: a failure is logged, the action stands.
    pub async fn count_action(&self, metric: &str, api: &RestApi, stage: &str) {
        let datum = MetricDatum::builder()
            .metric_name(metric)
            .value(1.0)
            .unit(StandardUnit::Count)
            .dimensions(Dimension::builder().name("ApiId").value(&api.id).build())
            .dimensions(Dimension::builder().name("Stage").value(stage).build())
            .build();
        if let Err(e) = self
            .cw
            .put_metric_data()
            .namespace(METRIC_NAMESPACE)
            .metric_data(datum)
            .send()
            .await
        {
            tracing::warn!(error = %err("PutMetricData")(e), metric, "action metric not sent");
        }
    }

    /// Publishes `note` to the SNS topic `topic_arn`. Best effort: a
    /// failure is logged, the action stands.
    pub async fn publish(&self, topic_arn: &str, note: &Notification) {
        if let Err(e) = self
            .sns
            .publish()
            .topic_arn(topic_arn)
            .subject(&note.subject)
            .message(&note.message)
            .send()
            .await
        {
            tracing::warn!(error = %err("Publish")(e), topic_arn, subject = %note.subject, "action notification not sent");
        }
    }
}

/// One `GetMetricData` query: the API Gateway `metric` with `dims`, as
/// `stat` per `period_secs`, returned under `id`.
fn metric_query(
    dims: [(&str, &str); 2],
    id: &str,
    metric: &str,
    stat: &str,
    period_secs: u64,
) -> MetricDataQuery {
    let mut m = Metric::builder()
        .namespace(rollout::APIGW_NAMESPACE)
        .metric_name(metric);
    for (k, v) in dims {
        m = m.dimensions(Dimension::builder().name(k).value(v).build());
    }
    MetricDataQuery::builder()
        .id(id)
        .return_data(true)
        .metric_stat(
            MetricStat::builder()
                .metric(m.build())
                .period(i32::try_from(period_secs).unwrap_or(i32::MAX))
                .stat(stat)
                .build(),
        )
        .build()
}
