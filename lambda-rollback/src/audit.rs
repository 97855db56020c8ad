//! The audit trail: one JSON line per decision on stdout (CloudWatch Logs
//! keeps it), with what was decided and what came of it.

use serde::{Deserialize, Serialize};
use tidegate_policy::rollout::AuditRecord;

/// What came of a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Every plan step was sent.
    Applied {
        /// `UpdateStage` requests sent.
        steps: usize,
    },
    /// Nothing to send.
    NothingToDo,
    /// Dry-run: logged, nothing sent.
    DryRun,
    /// The stage changed under us; the decision was dropped.
    Drifted {
        /// How it differed.
        drift: String,
    },
    /// Another invocation holds the stage's lease: this one did nothing
    /// and said so (the holder, or the next trigger, acts on what it finds).
    Yielded {
        /// The holder.
        holder: String,
        /// When its lease lapses, ms since the epoch.
        until_ms: u64,
    },
    /// A progression (step, promotion, known-good) was dropped because the
    /// alarms re-read right before it no longer allowed it.
    Withdrawn {
        /// What the re-read showed.
        reason: String,
    },
    /// An AWS call failed.
    Failed {
        /// The error.
        error: String,
    },
    /// The invocation ran out of time while the plan was being sent: steps
    /// after `applied` may or may not have taken effect (the
    /// stage and the history tell); the next trigger re-reads the stage.
    Interrupted {
        /// Steps known to be applied.
        applied: usize,
        /// Steps in the plan.
        steps: usize,
    },
}

impl Outcome {
    /// The `status` it is written with in JSON (`applied`,
    /// `nothing_to_do`, …), for redirects, answers and charts that name it.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Applied { .. } => "applied",
            Self::NothingToDo => "nothing_to_do",
            Self::DryRun => "dry_run",
            Self::Drifted { .. } => "drifted",
            Self::Yielded { .. } => "yielded",
            Self::Withdrawn { .. } => "withdrawn",
            Self::Failed { .. } => "failed",
            Self::Interrupted { .. } => "interrupted",
        }
    }
}

/// The audit line for `record` and its `outcome`.
pub fn line(record: &AuditRecord, outcome: &Outcome) -> String {
    #[derive(Serialize)]
    struct Line<'a> {
        level: &'static str,
        r#type: &'static str,
        #[serde(flatten)]
        record: &'a AuditRecord,
        outcome: &'a Outcome,
    }
    let level = if record.attention
        || matches!(
            outcome,
            Outcome::Failed { .. } | Outcome::Interrupted { .. } | Outcome::Yielded { .. }
        ) {
        "WARN"
    } else {
        "INFO"
    };
    serde_json::to_string(&Line {
        level,
        r#type: "tidegate.audit",
        record,
        outcome,
    })
    .unwrap_or_else(|e| format!(r#"{{"level":"ERROR","type":"tidegate.audit","error":"{e}"}}"#))
}

/// Writes the audit line.
pub fn log(record: &AuditRecord, outcome: &Outcome) {
    println!("{}", line(record, outcome));
}

/// What an interrupted plan also does, given its outcome (the adapter
/// records it in the history, without waiting).
pub type OnInterrupt = Box<dyn FnOnce(Outcome) + Send>;

/// A decision whose plan is being sent. If the invocation is cut off
/// first (the time budget drops its future), dropping this logs the audit
/// line as [`Outcome::Interrupted`] and runs the [`OnInterrupt`] hook:
/// without it, an action that may have taken effect would leave no trace,
/// and the re-invocation finds nothing left to do.
pub struct InFlight<'a> {
    record: &'a AuditRecord,
    applied: usize,
    steps: usize,
    done: bool,
    on_interrupt: Option<OnInterrupt>,
}

impl std::fmt::Debug for InFlight<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("applied", &self.applied)
            .field("steps", &self.steps)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<'a> InFlight<'a> {
    /// Before sending the first of `steps` steps.
    pub fn new(record: &'a AuditRecord, steps: usize) -> Self {
        Self {
            record,
            applied: 0,
            steps,
            done: false,
            on_interrupt: None,
        }
    }

    /// Also runs `hook` with the outcome if the plan is cut off.
    #[must_use]
    pub fn on_interrupt(mut self, hook: OnInterrupt) -> Self {
        self.on_interrupt = Some(hook);
        self
    }

    /// `n` steps are applied.
    pub fn applied(&mut self, n: usize) {
        self.applied = n;
    }

    /// Steps known to be applied so far.
    pub fn applied_steps(&self) -> usize {
        self.applied
    }

    /// The plan ended (applied or not): the caller logs the outcome.
    pub fn finish(mut self) {
        self.done = true;
    }

    /// What dropping it now would log.
    fn interrupted(&self) -> Option<Outcome> {
        (!self.done).then_some(Outcome::Interrupted {
            applied: self.applied,
            steps: self.steps,
        })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(outcome) = self.interrupted() {
            log(self.record, &outcome);
            if let Some(hook) = self.on_interrupt.take() {
                hook(outcome);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AuditRecord {
        serde_json::from_value(serde_json::json!({
            "at_ms": 1, "rest_api_id": "a1", "stage": "prod",
            "trigger": {"type": "schedule"},
            "action": {"type": "remove_canary", "deployment_id": "d2", "percent": 10.0,
                       "reason": {"kind": "canary_alarm", "alarm": "x"}},
            "summary": "remove canary d2", "dry_run": false, "attention": false,
            "deployment_id": "d1", "firing_alarms": ["x"], "unreadable_alarms": [],
            "paused": false
        }))
        .unwrap()
    }

    #[test]
    fn a_plan_cut_off_midway_is_logged_as_interrupted() {
        let r = record();
        let mut in_flight = InFlight::new(&r, 2);
        in_flight.applied(1);
        let outcome = in_flight.interrupted();
        assert_eq!(
            outcome,
            Some(Outcome::Interrupted {
                applied: 1,
                steps: 2
            })
        );
        let line = line(&r, &outcome.unwrap());
        assert!(
            line.starts_with(r#"{"level":"WARN","type":"tidegate.audit""#),
            "{line}"
        );
        assert!(
            line.ends_with(r#""outcome":{"status":"interrupted","applied":1,"steps":2}}"#),
            "{line}"
        );
        in_flight.finish();
    }

    #[test]
    fn the_status_is_the_one_written_in_json() {
        for outcome in [
            Outcome::Applied { steps: 1 },
            Outcome::NothingToDo,
            Outcome::DryRun,
            Outcome::Drifted { drift: "d".into() },
            Outcome::Yielded {
                holder: "h".into(),
                until_ms: 1,
            },
            Outcome::Withdrawn { reason: "r".into() },
            Outcome::Failed { error: "e".into() },
            Outcome::Interrupted {
                applied: 1,
                steps: 2,
            },
        ] {
            let json = serde_json::to_value(&outcome).unwrap();
            assert_eq!(json["status"], outcome.status(), "{outcome:?}");
        }
    }

    #[test]
    fn a_finished_plan_logs_nothing_more() {
        let r = record();
        let mut in_flight = InFlight::new(&r, 1);
        in_flight.applied(1);
        in_flight.done = true;
        assert_eq!(in_flight.interrupted(), None);
    }
}
