//! Tidegate's rollback Lambda: rolls API Gateway stages back when their
//! alarms fire, steps healthy canaries forward, and serves a control API.
//!
//! A thin adapter over `tidegate-policy`: [`rollout::decide`] makes every
//! decision; this crate reads AWS ([`aws`]), carries out the plan
//! ([`execute`]), keeps its records, leases and history in DynamoDB
//! ([`store`]), logs an audit line ([`audit`]), notifies SNS
//! ([`notify`]), and wires triggers ([`events`], [`http`]) to that.
//!
//! # One binary for every trigger
//! Alarm events (EventBridge, SNS, alarm actions), the schedule and HTTP
//! all end in the same three steps on the same managed stages, share the
//! same config, clients and state table, and must be serialised by the same
//! re-check-before-patch rule. One function means one deployment, one IAM
//! role, one log group and one config to keep in step, and warm containers
//! for the rare HTTP call. `lambda_http`'s `pass_through` feature hands
//! non-HTTP events over as [`RequestContext::PassThrough`] with the raw
//! JSON as the body, which [`rollout::events::parse`] classifies; HTTP
//! requests go to [`http`]. Concurrency is not a reason to split: one
//! invocation at a time writes a stage (a lease in the state table, and
//! reserved concurrency 1 in the template), and each re-checks the stage
//! before every write.
//!
//! [`RequestContext::PassThrough`]: lambda_http::request::RequestContext::PassThrough
//! [`rollout::decide`]: tidegate_policy::rollout::decide
//! [`rollout::events::parse`]: tidegate_policy::rollout::parse
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod aws;
pub mod config;
pub mod dashboard;
pub mod edge;
pub mod events;
pub mod execute;
pub mod http;
pub mod jwks;
pub mod live;
pub mod metrics;
pub mod notify;
pub mod retry;
pub mod service;
pub mod status;
pub mod store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tidegate_policy::config::ManagedStage;
use tidegate_policy::rollout::{self, Trigger};
use tokio::sync::OnceCell;

pub use service::{BudgetLayer, Handler};

use crate::aws::Aws;
use crate::config::Settings;
use crate::http::BoxFuture;
use crate::jwks::IssuerKeys;
use crate::status::{StageStatus, StatusList, RECENT_ACTIONS};
use crate::store::{HistoryEntry, StageKey, StateStore};

/// What an invocation by an event (an alarm through SNS or EventBridge, a
/// schedule) did: the invocation's result, as JSON.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum EventOutcome {
    /// The event was not understood; nothing ran.
    Rejected {
        /// What was wrong with it.
        error: String,
    },
    /// The event was understood and every stage it concerns evaluated.
    Ok {
        /// The event as understood, when it concerned no managed stage, so
        /// the result shows what arrived.
        #[serde(skip_serializing_if = "Option::is_none")]
        input: Option<rollout::Input>,
        /// One report per stage evaluated, in order.
        stages: Vec<execute::RunReport>,
    },
}

/// A name unique to this container and call: the process, the time and a
/// counter. Names lease owners and history items.
pub fn invocation_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}-{nanos:x}-{n}", std::process::id())
}

/// Per-container state: the settings (loaded at init) and the AWS clients
/// (built on first use, then reused by every invocation).
#[derive(Debug)]
pub struct App {
    settings: Settings,
    aws: OnceCell<Aws>,
    issuer_keys: IssuerKeys,
    edge: live::EdgeFeed,
}

impl App {
    /// The state for `settings`; no AWS or HTTP client is built yet.
    pub fn new(settings: Settings) -> Arc<Self> {
        Arc::new(Self {
            settings,
            aws: OnceCell::new(),
            issuer_keys: IssuerKeys::new(),
            edge: live::EdgeFeed::new(),
        })
    }

    /// The clients, built on first call.
    pub async fn aws(&self) -> &Aws {
        self.aws
            .get_or_init(|| Aws::from_env(&self.settings.state_table))
            .await
    }

    /// The SNS topic notified of actions, if configured.
    fn topic_arn(&self) -> Option<&str> {
        self.settings.policy.notification_topic_arn.as_deref()
    }

    /// Runs the jobs an event asks for, one stage after another.
    pub async fn run_event(&self, event: &Value) -> EventOutcome {
        let input = match rollout::parse(event) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(error = %e, "event not understood");
                return EventOutcome::Rejected {
                    error: e.to_string(),
                };
            }
        };
        if let rollout::Input::Alarms { rejected, .. } = &input {
            for e in rejected {
                tracing::warn!(error = %e, "SNS record skipped");
            }
        }
        let jobs = events::jobs(&self.settings.policy, &input);
        if jobs.is_empty() {
            tracing::info!(input = ?input, "nothing to evaluate");
            return EventOutcome::Ok {
                input: Some(input),
                stages: Vec::new(),
            };
        }
        let aws = self.aws().await;
        let mut stages = Vec::with_capacity(jobs.len());
        for job in jobs {
            stages.push(execute::run(aws, job.stage, job.trigger, self.topic_arn()).await);
        }
        EventOutcome::Ok {
            input: None,
            stages,
        }
    }

    async fn status(&self, stage: &ManagedStage) -> StageStatus {
        let mut status = StageStatus::new(
            execute::api_label(stage),
            stage.stage.clone(),
            stage.dry_run,
        );
        let now = retry::now_ms();
        let aws = self.aws().await;
        let read = match aws.rest_api(&stage.api).await {
            Ok(Some(api)) => execute::read(aws, &api, stage, now, false, None).await,
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        };
        let view = match read {
            Ok(Some(view)) => view,
            Ok(None) => {
                status.error = Some(execute::not_found(stage));
                return status;
            }
            Err(e) => {
                status.error = Some(e);
                return status;
            }
        };
        let key = StageKey::new(&view.api.id, &stage.stage);
        match aws.store.history(&key, RECENT_ACTIONS).await {
            Ok(h) => status.recent_actions = h,
            Err(e) => status.error = Some(format!("history unreadable: {e}")),
        }
        status.alarms = stage
            .stage_alarms
            .iter()
            .chain(&stage.canary_alarms)
            .map(|a| (a.clone(), view.signals.alarm(a)))
            .collect();
        let record = view.stored.record;
        let snapshot = view.snapshot;
        let active = snapshot
            .canary
            .as_ref()
            .filter(|c| c.is_active(&snapshot.deployment_id));
        let steps = rollout::planned_steps(
            stage,
            &record,
            active.map_or("", |c| c.deployment_id.as_str()),
        );
        status.step_index = active.and_then(|c| rollout::step_index(steps, c.percent_traffic));
        status.steps = steps.to_vec();
        status.awaiting_approval = rollout::awaiting_approval(stage, &record, &snapshot).is_some();
        status.approval = record
            .approval
            .clone()
            .filter(|a| active.is_some_and(|c| c.deployment_id == a.deployment_id));
        status.rest_api_id = Some(view.api.id);
        status.deployment_id = Some(snapshot.deployment_id);
        status.canary = snapshot.canary;
        status.canary_metrics = view.signals.canary_metrics;
        status.paused = record.pause_at(now).cloned();
        status.known_good = record.known_good;
        status.previous_known_good = record.previous_known_good;
        status.step = record.step;
        status
    }
}

impl App {
    /// The stage's and the canary's series over `window`, with the actions
    /// of the history inside it.
    async fn stage_metrics(
        &self,
        stage: &ManagedStage,
        window: &metrics::MetricsWindow,
    ) -> metrics::StageMetrics {
        let mut out =
            metrics::StageMetrics::new(execute::api_label(stage), stage.stage.clone(), window);
        let aws = self.aws().await;
        let api = match aws.rest_api(&stage.api).await {
            Ok(Some(api)) => api,
            Ok(None) => {
                out.error = Some(execute::not_found(stage));
                return out;
            }
            Err(e) => {
                out.error = Some(e.to_string());
                return out;
            }
        };
        let api_name = match (stage.metric_api_name.as_deref(), api.name.as_deref()) {
            (Some(configured), _) => Some(configured.to_owned()),
            (None, Some(name)) => Some(tidegate_policy::rollout::api_name_dimension(name)),
            (None, None) => None,
        };
        for (series, dimension) in [
            (&mut out.stage_series, stage.stage.clone()),
            (&mut out.canary_series, stage.canary_stage_dimension_value()),
        ] {
            series.stage_dimension = dimension;
            match &api_name {
                None => {
                    series.error =
                        Some("the REST API's name is unknown: set `metric_api_name`".into())
                }
                Some(name) => match aws
                    .metric_series(name, &series.stage_dimension, window)
                    .await
                {
                    Ok(points) => series.points = points,
                    Err(e) => series.error = Some(e.to_string()),
                },
            }
        }
        let key = StageKey::new(&api.id, &stage.stage);
        match aws.store.history(&key, metrics::CHART_ACTIONS).await {
            Ok(h) => out.mark(&h),
            Err(e) => out.error = Some(format!("history unreadable: {e}")),
        }
        out
    }
}

impl http::Control for App {
    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn issuer_keys(&self) -> &IssuerKeys {
        &self.issuer_keys
    }

    fn list(&self) -> BoxFuture<'_, StatusList> {
        Box::pin(async move {
            let mut stages = Vec::new();
            for stage in &self.settings.policy.stages {
                stages.push(self.status(stage).await);
            }
            StatusList { stages }
        })
    }

    fn show(&self, index: usize) -> BoxFuture<'_, Option<StageStatus>> {
        Box::pin(async move {
            match self.settings.policy.stages.get(index) {
                Some(stage) => Some(self.status(stage).await),
                None => None,
            }
        })
    }

    fn metrics(
        &self,
        index: usize,
        window: metrics::MetricsWindow,
    ) -> BoxFuture<'_, Option<metrics::StageMetrics>> {
        Box::pin(async move {
            let stage = self.settings.policy.stages.get(index)?;
            Some(self.stage_metrics(stage, &window).await)
        })
    }

    fn history(
        &self,
        index: usize,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<HistoryEntry>, String>> {
        Box::pin(async move {
            let Some(stage) = self.settings.policy.stages.get(index) else {
                return Ok(Vec::new());
            };
            let aws = self.aws().await;
            let api = match aws.rest_api(&stage.api).await {
                Ok(Some(api)) => api,
                Ok(None) => return Err(execute::not_found(stage)),
                Err(e) => return Err(e.to_string()),
            };
            let key = StageKey::new(&api.id, &stage.stage);
            aws.store
                .history(&key, limit)
                .await
                .map_err(|e| format!("history unreadable: {e}"))
        })
    }

    fn claim_signal(
        &self,
        id: String,
        until_ms: u64,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<bool, String>> {
        Box::pin(async move {
            let aws = self.aws().await;
            aws.store
                .claim_signal(&id, until_ms, now_ms)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn edge_health(
        &self,
        index: usize,
    ) -> BoxFuture<'_, Result<tidegate_policy::health::StageHealth, live::EdgeUnavailable>> {
        Box::pin(async move {
            let Some(stage) = self.settings.policy.stages.get(index) else {
                return Err(live::EdgeUnavailable::NotMonitored);
            };
            let url = self.settings.policy.edge_health_url.as_ref();
            let health = self
                .edge
                .stage(
                    url.map(|u| u.as_str()),
                    self.settings.edge_admin_key.as_ref(),
                    &execute::api_label(stage),
                    &stage.stage,
                )
                .await;
            if let Err(e) = &health {
                if !matches!(e, live::EdgeUnavailable::NotConfigured) {
                    tracing::warn!(stage = %stage.stage, reason = %e, "edge figures unavailable");
                }
            }
            health
        })
    }

    fn forget_signal(&self, id: String) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let aws = self.aws().await;
            aws.store
                .forget_signal(&id)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn command(&self, index: usize, trigger: Trigger) -> BoxFuture<'_, Option<execute::RunReport>> {
        Box::pin(async move {
            let stage = self.settings.policy.stages.get(index)?;
            let aws = self.aws().await;
            Some(execute::run(aws, stage, trigger, self.topic_arn()).await)
        })
    }
}
