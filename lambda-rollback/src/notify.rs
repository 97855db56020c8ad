//! The optional SNS notification of an action (`rollback.notification_topic_arn`):
//! a subject line people can scan and a concise JSON body machines can read.
//!
//! Sent after the action, best effort: a failed publish is logged and never
//! blocks or undoes the action (see [`crate::aws::Aws::publish`]).

use serde::Serialize;
use tidegate_policy::rollout::{AuditRecord, Decision, Trigger};

use crate::audit::Outcome;

/// SNS's limit on a subject line.
pub const MAX_SUBJECT_CHARS: usize = 100;

/// One SNS message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `Tidegate <action> <api>/<stage>` (with `[dry-run]` or `FAILED`).
    pub subject: String,
    /// The JSON body (see [`Body`]).
    pub message: String,
}

/// The JSON body of a notification.
#[derive(Debug, Serialize)]
struct Body<'a> {
    r#type: &'static str,
    action: &'a str,
    rest_api_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rest_api_name: Option<&'a str>,
    stage: &'a str,
    summary: &'a str,
    trigger: &'a Trigger,
    outcome: &'a Outcome,
    dry_run: bool,
    deployment_id: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    firing_alarms: &'a [String],
    at_ms: u64,
}

/// The notification for `decision` and its `outcome`, or `None` when there
/// is nothing to tell. Actions are notified (changes of traffic, recorded
/// known-good deployments, and operator commands such as pause), whether
/// sent, dry-run or failed; record updates a schedule or alarm makes on its
/// own (a bake timer starting, a transition marked handled) is not. A
/// drifted decision is decided again, and that one is notified.
pub fn for_decision(decision: &Decision, outcome: &Outcome) -> Option<Notification> {
    if !decision.writes() {
        return None;
    }
    let status = match outcome {
        Outcome::Applied { .. } => "",
        Outcome::DryRun => " [dry-run]",
        Outcome::Failed { .. } => " FAILED",
        // Cut off by the time budget mid-plan (logged by the audit guard; a
        // re-invocation re-reads the stage and finishes or finds it done).
        Outcome::Interrupted { .. } => " INTERRUPTED",
        Outcome::NothingToDo
        | Outcome::Drifted { .. }
        | Outcome::Yielded { .. }
        | Outcome::Withdrawn { .. } => return None,
    };
    let r = &decision.audit;
    let action = action_name(r)?;
    let api = r.rest_api_name.as_deref().unwrap_or(&r.rest_api_id);
    let subject = subject_line(&format!("Tidegate {action}{status}: {api}/{}", r.stage));
    let body = Body {
        r#type: "tidegate.action",
        action,
        rest_api_id: &r.rest_api_id,
        rest_api_name: r.rest_api_name.as_deref(),
        stage: &r.stage,
        summary: &r.summary,
        trigger: &r.trigger,
        outcome,
        dry_run: r.dry_run,
        deployment_id: &r.deployment_id,
        firing_alarms: &r.firing_alarms,
        at_ms: r.at_ms,
    };
    let message = serde_json::to_string(&body).ok()?;
    Some(Notification { subject, message })
}

/// The action's snake_case name; an operator command that changed only
/// the record (pause, resume) is named after the command; `None` for record
/// updates nobody asked for.
pub fn action_name(r: &AuditRecord) -> Option<&'static str> {
    match (r.action.kind(), &r.trigger) {
        (Some(kind), _) => Some(kind.as_str()),
        (None, Trigger::Manual { command, .. }) => Some(command.as_str()),
        // The edge's signal is kept even when it changed nothing (no
        // canary, a newer canary): the history says it came and why.
        (None, Trigger::Edge(_)) => Some("edge_signal"),
        (None, _) => None,
    }
}

/// `text` as SNS accepts a subject: printable ASCII, one line, at most
/// [`MAX_SUBJECT_CHARS`] characters.
pub fn subject_line(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
        .take(MAX_SUBJECT_CHARS)
        .collect();
    if text.chars().count() > MAX_SUBJECT_CHARS {
        out.pop();
        out.push('~');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use tidegate_policy::rollout::{
        decide, AlarmReading, AlarmState, CanaryMetrics, CanarySnapshot, DeploymentCheck,
        ManualCommand, MetricsReading, Signals, StageRecord, StageSnapshot,
    };

    const NOW: u64 = 1_715_680_000_000;

    /// The decision for `orders-api/prod` (canary d2 at 10 % over d1) with
    /// its canary alarm in `canary_alarm` state.
    fn decision(canary_alarm: AlarmState, trigger: Trigger) -> Decision {
        let policy = crate::config::load(
            crate::config::tests::env(&[(crate::config::CONFIG_ENV, crate::config::tests::CONFIG)]),
            |_| Err("no files".into()),
        )
        .unwrap()
        .policy;
        let stage = &policy.stages[0];
        let snapshot = StageSnapshot {
            rest_api_id: "a1b2c3".into(),
            rest_api_name: Some("orders-api".into()),
            stage_name: "prod".into(),
            deployment_id: "d1".into(),
            canary: Some(CanarySnapshot {
                deployment_id: "d2".into(),
                percent_traffic: 10.0,
                stage_variable_overrides: BTreeMap::new(),
            }),
            last_updated_ms: None,
            variables: BTreeMap::new(),
        };
        let reading = |state| AlarmReading::new(state, NOW - 1_000);
        let signals = Signals {
            alarms: BTreeMap::from([
                (
                    "orders-api-prod-5xx-rate".to_owned(),
                    reading(AlarmState::Ok),
                ),
                (
                    "orders-api-prod-canary-5xx-rate".to_owned(),
                    reading(canary_alarm),
                ),
            ]),
            canary_metrics: MetricsReading::Read(CanaryMetrics {
                errors_5xx: 0.0,
                count: 0.0,
            }),
            deployments: BTreeMap::from([
                ("d1".to_owned(), DeploymentCheck::Exists),
                ("d2".to_owned(), DeploymentCheck::Exists),
            ]),
        };
        decide(
            stage,
            &snapshot,
            &StageRecord::default(),
            &signals,
            trigger,
            NOW,
        )
    }

    fn body(n: &Notification) -> serde_json::Value {
        serde_json::from_str(&n.message).unwrap()
    }

    #[test]
    fn a_rollback_is_notified_with_a_scannable_subject() {
        let d = decision(AlarmState::Alarm, Trigger::Schedule);
        let n = for_decision(&d, &Outcome::Applied { steps: 2 }).unwrap();
        assert_eq!(n.subject, "Tidegate remove_canary: orders-api/prod");
        let b = body(&n);
        assert_eq!(b["type"], "tidegate.action");
        assert_eq!(b["action"], "remove_canary");
        assert_eq!(b["rest_api_id"], "a1b2c3");
        assert_eq!(b["stage"], "prod");
        assert_eq!(b["outcome"]["status"], "applied");
        assert_eq!(b["trigger"]["type"], "schedule");
        assert_eq!(b["firing_alarms"][0], "orders-api-prod-canary-5xx-rate");

        let n = for_decision(&d, &Outcome::DryRun).unwrap();
        assert_eq!(
            n.subject,
            "Tidegate remove_canary [dry-run]: orders-api/prod"
        );
        let failed = Outcome::Failed {
            error: "UpdateStage: boom".into(),
        };
        let n = for_decision(&d, &failed).unwrap();
        assert_eq!(n.subject, "Tidegate remove_canary FAILED: orders-api/prod");
        assert_eq!(body(&n)["outcome"]["error"], "UpdateStage: boom");
        let interrupted = Outcome::Interrupted {
            applied: 1,
            steps: 2,
        };
        let n = for_decision(&d, &interrupted).unwrap();
        assert!(n.subject.contains(" INTERRUPTED: "), "{}", n.subject);
        let drifted = Outcome::Drifted {
            drift: "deployment changed".into(),
        };
        assert_eq!(for_decision(&d, &drifted), None);
    }

    #[test]
    fn operator_commands_are_notified_background_record_updates_are_not() {
        // A healthy schedule tick only starts bake timers: written, not told.
        let d = decision(AlarmState::Ok, Trigger::Schedule);
        assert!(d.writes(), "{d:?}");
        assert_eq!(d.action.kind(), None, "{d:?}");
        assert_eq!(for_decision(&d, &Outcome::Applied { steps: 1 }), None);

        let pause = Trigger::Manual {
            command: ManualCommand::Pause,
            reason: "freeze".into(),
            operator: "key:oncall".into(),
            until_ms: None,
            start: None,
        };
        let d = decision(AlarmState::Ok, pause);
        let n = for_decision(&d, &Outcome::Applied { steps: 1 }).unwrap();
        assert_eq!(n.subject, "Tidegate pause: orders-api/prod");
        assert_eq!(body(&n)["trigger"]["reason"], "freeze");
    }

    #[test]
    fn subject_lines_are_one_short_ascii_line() {
        assert_eq!(subject_line("Tidegate a: b/c"), "Tidegate a: b/c");
        assert_eq!(subject_line("x\ny\u{e9}"), "x y ");
        let long = "s".repeat(150);
        let s = subject_line(&long);
        assert_eq!(s.chars().count(), MAX_SUBJECT_CHARS);
        assert!(s.ends_with('~'));
    }
}
