//! Tidegate's rollback Lambda: rolls API Gateway stages back when their
//! alarms fire, steps healthy canaries forward, and serves a control API.
//!
//! A thin adapter over `tidegate-policy`: [`rollout::decide`] makes every
//! decision; this crate reads AWS ([`aws`]), carries out the plan
//! ([`execute`]), logs an audit line ([`audit`]), notifies SNS
//! ([`notify`]), and wires triggers
//! ([`events`], [`http`]) to that.
//!
//! # One binary for every trigger
//! Alarm events (EventBridge, SNS, alarm actions), the schedule and HTTP
//! all end in the same three steps on the same managed stages, share the
//! same config, clients and bookkeeping, and must be serialised by the same
//! re-check-before-patch rule. One function means one deployment, one IAM
//! role, one log group and one config to keep in step, and warm containers
//! for the rare HTTP call. `lambda_http`'s `pass_through` feature hands
//! non-HTTP events over as [`RequestContext::PassThrough`] with the raw
//! JSON as the body, which [`rollout::events::parse`] classifies; HTTP
//! requests go to [`http`]. Concurrency is not a reason to split: each
//! invocation re-checks the stage before every write.
//!
//! [`RequestContext::PassThrough`]: lambda_http::request::RequestContext::PassThrough
//! [`rollout::decide`]: tidegate_policy::rollout::decide
//! [`rollout::events::parse`]: tidegate_policy::rollout::events::parse
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod aws;
pub mod config;
pub mod events;
pub mod execute;
pub mod http;
pub mod jwks;
pub mod notify;
pub mod page;
pub mod retry;
pub mod service;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};
use tidegate_policy::rollout::{ManualCommand, Trigger};
use tokio::sync::OnceCell;

pub use service::{BudgetLayer, Handler};

use crate::aws::Aws;
use crate::config::Settings;
use crate::http::BoxFuture;
use crate::jwks::IssuerKeys;

/// Per-container state: the settings (loaded at init) and the AWS clients
/// (built on first use, then reused by every invocation).
#[derive(Debug)]
pub struct App {
    settings: Settings,
    aws: OnceCell<Aws>,
    issuer_keys: IssuerKeys,
}

impl App {
    /// The state for `settings`; no AWS or HTTP client is built yet.
    pub fn new(settings: Settings) -> Arc<Self> {
        Arc::new(Self {
            settings,
            aws: OnceCell::new(),
            issuer_keys: IssuerKeys::new(),
        })
    }

    /// The clients, built on first call.
    pub async fn aws(&self) -> &Aws {
        self.aws.get_or_init(Aws::from_env).await
    }

    /// The SNS topic notified of actions, if configured.
    fn topic_arn(&self) -> Option<&str> {
        self.settings.policy.notification_topic_arn.as_deref()
    }

    /// Runs the jobs an event asks for, one stage after another (each
    /// stage's reads run concurrently).
    pub async fn run_event(&self, event: &Value) -> Value {
        let input = match tidegate_policy::rollout::parse(event) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(error = %e, "event not understood");
                return json!({"status": "rejected", "error": e.to_string()});
            }
        };
        if let tidegate_policy::rollout::Input::Alarms { rejected, .. } = &input {
            for e in rejected {
                tracing::warn!(error = %e, "SNS record skipped");
            }
        }
        let jobs = events::jobs(&self.settings.policy, &input);
        if jobs.is_empty() {
            tracing::info!(input = ?input, "nothing to evaluate");
            return json!({"status": "ok", "input": input, "stages": []});
        }
        let aws = self.aws().await;
        let mut reports = Vec::with_capacity(jobs.len());
        for job in jobs {
            reports.push(execute::run(aws, job.stage, job.trigger, self.topic_arn()).await);
        }
        json!({"status": "ok", "stages": reports})
    }

    async fn status(&self, index: usize) -> Value {
        let Some(stage) = self.settings.policy.stages.get(index) else {
            return Value::Null;
        };
        let base = json!({
            "api": execute::api_label(stage),
            "stage": stage.stage,
            "dry_run": stage.dry_run,
        });
        let now = retry::now_ms();
        let view = execute::read(self.aws().await, stage, now).await;
        let mut v = base;
        match view {
            Ok(Some(view)) => {
                let alarms: BTreeMap<&String, _> = stage
                    .stage_alarms
                    .iter()
                    .chain(&stage.canary_alarms)
                    .map(|a| (a, view.signals.alarm(a)))
                    .collect();
                v["rest_api_id"] = json!(view.api.id);
                v["deployment_id"] = json!(view.snapshot.deployment_id);
                v["canary"] = json!(view.snapshot.canary);
                v["alarms"] = json!(alarms);
                v["canary_metrics"] = json!(view.signals.canary_metrics);
                v["known_good"] = json!(view.book.known_good.as_ref().map(|m| &m.deployment_id));
                v["paused"] = json!(view.book.paused);
                v["recent_actions"] = json!(view.book.history);
            }
            Ok(None) => v["error"] = json!(execute::not_found(stage)),
            Err(e) => v["error"] = json!(e),
        }
        v
    }
}

impl http::Control for App {
    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn issuer_keys(&self) -> &IssuerKeys {
        &self.issuer_keys
    }

    fn list(&self) -> BoxFuture<'_, Value> {
        Box::pin(async move {
            let mut stages = Vec::new();
            for i in 0..self.settings.policy.stages.len() {
                stages.push(self.status(i).await);
            }
            json!({ "stages": stages })
        })
    }

    fn show(&self, index: usize) -> BoxFuture<'_, Value> {
        Box::pin(self.status(index))
    }

    fn command(
        &self,
        index: usize,
        command: ManualCommand,
        reason: String,
    ) -> BoxFuture<'_, Value> {
        Box::pin(async move {
            let Some(stage) = self.settings.policy.stages.get(index) else {
                return Value::Null;
            };
            let aws = self.aws().await;
            let trigger = Trigger::Manual { command, reason };
            let report = execute::run(aws, stage, trigger, self.topic_arn()).await;
            json!(report)
        })
    }
}
