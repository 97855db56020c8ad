//! The AWS side: reads a managed stage's state into the policy's plain data
//! ([`StageSnapshot`], [`Signals`]) and sends what a decision asks for.
//! No decisions here.
//!
//! Clients are built once per container, on first use (see [`crate::App`]):
//! building them at init would add the SDK's config loading to every cold
//! start, even for invocations that never call AWS (e.g. `GET /`).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_apigateway::types::{Op, PatchOperation};
use aws_sdk_cloudwatch::types::{
    AlarmType, Dimension, Metric, MetricDataQuery, MetricDatum, MetricStat, StandardUnit,
};
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::DateTime;
use tidegate_policy::config::{ManagedStage, RestApiRef};
use tidegate_policy::rollout::{
    self, AlarmReading, AlarmState, CanaryMetrics, CanarySnapshot, PatchOp, PatchOpKind,
    StageSnapshot,
};

use crate::notify::Notification;
use crate::retry;

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

/// The API Gateway, CloudWatch and SNS clients.
#[derive(Debug, Clone)]
pub struct Aws {
    apigw: aws_sdk_apigateway::Client,
    cw: aws_sdk_cloudwatch::Client,
    sns: aws_sdk_sns::Client,
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
    /// `AWS_ENDPOINT_URL`, which the SDK honours for every service), with
    /// Tidegate's retry and timeout settings.
    pub async fn from_env() -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(retry::retry_config())
            .timeout_config(retry::timeouts())
            .load()
            .await;
        Self {
            apigw: aws_sdk_apigateway::Client::new(&shared),
            cw: aws_sdk_cloudwatch::Client::new(&shared),
            sns: aws_sdk_sns::Client::new(&shared),
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
                let mut position: Option<String> = None;
                loop {
                    let out = self
                        .apigw
                        .get_rest_apis()
                        .limit(500)
                        .set_position(position.clone())
                        .send()
                        .await
                        .map_err(err("GetRestApis"))?;
                    if let Some(found) = out.items().iter().find(|a| a.name() == Some(name)) {
                        return Ok(found.id().map(|id| RestApi {
                            id: id.to_owned(),
                            name: Some(name.clone()),
                        }));
                    }
                    match out.position() {
                        Some(p) if !out.items().is_empty() && Some(p) != position.as_deref() => {
                            position = Some(p.to_owned());
                        }
                        _ => return Ok(None),
                    }
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
            let readings = resp
                .metric_alarms()
                .iter()
                .map(|a| {
                    (
                        a.alarm_name(),
                        a.state_value().map(|s| s.as_str()),
                        a.state_transitioned_timestamp()
                            .or(a.state_updated_timestamp()),
                    )
                })
                .chain(resp.composite_alarms().iter().map(|a| {
                    (
                        a.alarm_name(),
                        a.state_value().map(|s| s.as_str()),
                        a.state_transitioned_timestamp()
                            .or(a.state_updated_timestamp()),
                    )
                }));
            for (name, state, since) in readings {
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
                    },
                );
            }
        }
        out
    }

    /// Sums of the canary's `5XXError` and `Count` over the stage's metric
    /// window (the query is the policy's [`rollout::canary_query`]); `None`
    /// when they cannot be read.
    pub async fn canary_metrics(
        &self,
        stage: &ManagedStage,
        api_name: Option<&str>,
        now_ms: u64,
    ) -> Option<CanaryMetrics> {
        let q = rollout::canary_query(stage, api_name, now_ms)?;
        let query = |id: &str, metric: &str| -> MetricDataQuery {
            MetricDataQuery::builder()
                .id(id)
                .return_data(true)
                .metric_stat(
                    MetricStat::builder()
                        .metric(
                            Metric::builder()
                                .namespace(rollout::metrics::NAMESPACE)
                                .metric_name(metric)
                                .dimensions(
                                    Dimension::builder()
                                        .name("ApiName")
                                        .value(&q.api_name)
                                        .build(),
                                )
                                .dimensions(
                                    Dimension::builder()
                                        .name("Stage")
                                        .value(&q.stage_dimension)
                                        .build(),
                                )
                                .build(),
                        )
                        .period(i32::try_from(q.period_secs).unwrap_or(i32::MAX))
                        .stat("Sum")
                        .build(),
                )
                .build()
        };
        let resp = self
            .cw
            .get_metric_data()
            .metric_data_queries(query("errors", rollout::metrics::ERRORS_METRIC))
            .metric_data_queries(query("count", rollout::metrics::COUNT_METRIC))
            .start_time(DateTime::from_millis(i64::try_from(q.start_ms).ok()?))
            .end_time(DateTime::from_millis(i64::try_from(q.end_ms).ok()?))
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %err("GetMetricData")(e), "canary metrics unreadable");
                return None;
            }
        };
        let sum = |id: &str| -> f64 {
            resp.metric_data_results()
                .iter()
                .filter(|r| r.id() == Some(id))
                .flat_map(|r| r.values().iter())
                .sum()
        };
        Some(CanaryMetrics {
            errors_5xx: sum("errors"),
            count: sum("count"),
        })
    }

    /// Every deployment id of the API; empty if the listing failed (the
    /// policy then never points the stage at any deployment).
    pub async fn deployments(&self, api: &RestApi) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        let mut position: Option<String> = None;
        loop {
            let resp = self
                .apigw
                .get_deployments()
                .rest_api_id(&api.id)
                .limit(500)
                .set_position(position.clone())
                .send()
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %err("GetDeployments")(e), "deployments unreadable");
                    return BTreeSet::new();
                }
            };
            ids.extend(
                resp.items()
                    .iter()
                    .filter_map(|d| d.id().map(str::to_owned)),
            );
            match resp.position() {
                Some(p) if !resp.items().is_empty() && Some(p) != position.as_deref() => {
                    position = Some(p.to_owned());
                }
                _ => return ids,
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
