//! The decision table: one row per rule, plus short sequences that replay a
//! decision's plan against a simulated stage.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::config::CanaryStep;
use crate::rollout::action::RollbackReason;
use crate::rollout::patch::simulate;
use crate::rollout::record::Pause;
use crate::rollout::record::{Approval, CanaryPlan};
use crate::rollout::state::{AlarmReading, AlarmState, CanaryMetrics, CanarySnapshot};
use crate::rollout::state::{DeploymentCheck, MetricsReading};
use crate::rollout::trigger::Transition;
use crate::rollout::{awaiting_approval, ActionKind};

const NOW: u64 = 1_700_000_000_000;
const MIN: u64 = 60_000;
const STAGE_ALARM: &str = "orders-prod-5xx";
const CANARY_ALARM: &str = "orders-prod-canary-5xx";

fn managed() -> ManagedStage {
    ManagedStage {
        api: RestApiRef::Id("api1".into()),
        stage: "prod".into(),
        stage_alarms: vec![STAGE_ALARM.into()],
        canary_alarms: vec![CANARY_ALARM.into()],
        error_rate_threshold: 0.05,
        min_requests: 100,
        canary_steps: [5.0, 10.0, 25.0, 50.0, 100.0].map(CanaryStep::at).to_vec(),
        bake_time: Duration::from_secs(300),
        cooldown: Duration::from_secs(600),
        metric_window: Duration::from_secs(300),
        metric_api_name: None,
        canary_stage_dimension: "{stage}/Canary".into(),
        dry_run: false,
    }
}

#[derive(Clone)]
struct Case {
    stage: ManagedStage,
    snap: StageSnapshot,
    book: StageRecord,
    signals: Signals,
    trigger: Trigger,
    now: u64,
}

impl Case {
    /// Stage on d1 (live for 2 minutes; known-good d0), no canary, alarms
    /// OK, deployments d0..d3 exist.
    fn stable() -> Self {
        let mut signals = Signals {
            deployments: ["d0", "d1", "d2", "d3"]
                .map(|d| (String::from(d), DeploymentCheck::Exists))
                .into(),
            ..Signals::default()
        };
        for a in [STAGE_ALARM, CANARY_ALARM] {
            signals
                .alarms
                .insert(a.into(), AlarmReading::new(AlarmState::Ok, NOW - 60 * MIN));
        }
        Self {
            stage: managed(),
            snap: StageSnapshot {
                rest_api_id: "api1".into(),
                rest_api_name: Some("orders".into()),
                stage_name: "prod".into(),
                deployment_id: "d1".into(),
                canary: None,
                last_updated_ms: None,
                variables: [("backend".to_owned(), "https://orders".to_owned())].into(),
            },
            book: StageRecord {
                known_good: Some(Mark::new("d0", NOW - 120 * MIN)),
                live: Some(Mark::new("d1", NOW - 2 * MIN)),
                ..StageRecord::default()
            },
            signals,
            trigger: Trigger::Schedule,
            now: NOW,
        }
        .synced()
    }

    /// Stage on d1 (known-good), canary d2 at `p` %, step baked, metrics
    /// healthy.
    fn canary(p: f64) -> Self {
        let mut c = Self::stable();
        c.snap.canary = Some(CanarySnapshot {
            deployment_id: "d2".into(),
            percent_traffic: p,
            stage_variable_overrides: [("color".to_owned(), "green".to_owned())].into(),
        });
        c.book.known_good = Some(Mark::new("d1", NOW - 60 * MIN));
        c.book.live = Some(Mark::new("d1", NOW - 120 * MIN));
        c.book.step = Some(StepMark {
            deployment_id: "d2".into(),
            percent: p,
            since_ms: NOW - 6 * MIN,
            canary_since_ms: NOW - 6 * MIN,
        });
        c.signals.canary_metrics = MetricsReading::Read(CanaryMetrics {
            errors_5xx: 1.0,
            count: 1000.0,
        });
        c.synced()
    }

    /// The record is kept beside the stage now: nothing to sync.
    fn synced(self) -> Self {
        self
    }

    fn book(mut self, f: impl FnOnce(&mut StageRecord)) -> Self {
        f(&mut self.book);
        self.synced()
    }

    fn alarm(mut self, name: &str, state: AlarmState, since: u64) -> Self {
        self.signals
            .alarms
            .insert(name.into(), AlarmReading::new(state, since));
        self
    }

    fn unreadable(mut self, name: &str) -> Self {
        self.signals.alarms.remove(name);
        self
    }

    fn metrics(mut self, errors_5xx: f64, count: f64) -> Self {
        self.signals.canary_metrics = MetricsReading::Read(CanaryMetrics { errors_5xx, count });
        self
    }

    fn no_metrics(mut self) -> Self {
        self.signals.canary_metrics = MetricsReading::Unreadable {
            reason: "test".into(),
        };
        self
    }

    fn without_deployment(mut self, d: &str) -> Self {
        self.signals
            .deployments
            .insert(d.into(), DeploymentCheck::Missing);
        self
    }

    /// A transition event of `alarm` to `state` at `at`, with the read
    /// agreeing.
    fn event(self, alarm: &str, state: AlarmState, at: u64) -> Self {
        let mut c = self.alarm(alarm, state, at);
        c.trigger = Trigger::AlarmTransition(Transition {
            alarm: alarm.into(),
            new_state: state,
            previous_state: Some(AlarmState::Ok),
            timestamp_ms: at,
            suppressed: false,
        });
        c
    }

    fn manual(mut self, command: ManualCommand) -> Self {
        self.trigger = Trigger::Manual {
            command,
            reason: "INC-7 checkout errors".into(),
            operator: "key:oncall".into(),
            until_ms: None,
            start: None,
        };
        self
    }

    fn run(&self) -> Decision {
        decide(
            &self.stage,
            &self.snap,
            &self.book,
            &self.signals,
            self.trigger.clone(),
            self.now,
        )
    }
}

fn hold(d: &Decision) -> Option<&Hold> {
    d.action.hold()
}

type Check = fn(&Decision) -> bool;

fn table() -> Vec<(&'static str, Case, Check)> {
    use AlarmState::*;
    let t = NOW - 30_000; // a transition half a minute ago
    vec![
        // --- managed stages only
        (
            "other stage is not touched",
            {
                let mut c = Case::stable().event(STAGE_ALARM, Alarm, t);
                c.snap.stage_name = "prod2".into();
                c
            },
            |d| matches!(hold(d), Some(Hold::NotManaged { .. })) && d.plan.is_empty(),
        ),
        (
            "other api is not touched",
            {
                let mut c = Case::stable().event(STAGE_ALARM, Alarm, t);
                c.snap.rest_api_id = "api2".into();
                c
            },
            |d| matches!(hold(d), Some(Hold::NotManaged { .. })) && d.plan.is_empty(),
        ),
        (
            "api by name matches the resolved name",
            {
                let mut c = Case::stable().event(STAGE_ALARM, Alarm, t);
                c.stage.api = RestApiRef::Name("orders".into());
                c
            },
            |d| matches!(d.action, Action::RollbackStage { .. }),
        ),
        (
            "api by name without a resolved name is not touched",
            {
                let mut c = Case::stable().event(STAGE_ALARM, Alarm, t);
                c.stage.api = RestApiRef::Name("orders".into());
                c.snap.rest_api_name = None;
                c
            },
            |d| matches!(hold(d), Some(Hold::NotManaged { .. })) && d.plan.is_empty(),
        ),
        (
            "alarm not configured for the stage",
            Case::stable().event("someone-elses-alarm", Alarm, t),
            |d| matches!(hold(d), Some(Hold::NotWatched { .. })) && d.plan.is_empty(),
        ),
        // --- stage rollback
        (
            "stage alarm, no canary: roll back to known-good",
            Case::stable().event(STAGE_ALARM, Alarm, t),
            |d| {
                matches!(&d.action, Action::RollbackStage { to_deployment, from_deployment, clears_leftover_canary: false, .. } if to_deployment == "d0" && from_deployment == "d1")
                    && d.record.is_handled(STAGE_ALARM, NOW - 30_000)
                    && d.record.last_rollback_ms == Some(NOW)
                    && !d.attention
            },
        ),
        (
            "known-good deleted: no rollback, attention",
            Case::stable()
                .event(STAGE_ALARM, Alarm, t)
                .without_deployment("d0"),
            |d| {
                matches!(hold(d), Some(Hold::DeploymentMissing { deployment }) if deployment == "d0")
                    && d.attention
                    && d.record.is_handled(STAGE_ALARM, NOW - 30_000)
            },
        ),
        (
            "the known-good deployment could not be checked: no rollback, attention",
            {
                let mut c = Case::stable().event(STAGE_ALARM, Alarm, t);
                c.signals.deployments.clear();
                c
            },
            |d| matches!(hold(d), Some(Hold::DeploymentUnverified { .. })) && d.attention,
        ),
        (
            "the known-good deployment was deleted: no rollback, attention",
            Case::stable()
                .event(STAGE_ALARM, Alarm, t)
                .without_deployment("d0"),
            |d| matches!(hold(d), Some(Hold::DeploymentMissing { .. })) && d.attention,
        ),
        (
            "no known-good: nothing to roll back to, attention",
            Case::stable()
                .event(STAGE_ALARM, Alarm, t)
                .book(|b| b.known_good = None),
            |d| matches!(hold(d), Some(Hold::NoKnownGood)) && d.attention,
        ),
        (
            "already on known-good: attention",
            Case::stable()
                .event(STAGE_ALARM, Alarm, t)
                .book(|b| b.known_good = Some(Mark::new("d1", 0))),
            |d| matches!(hold(d), Some(Hold::AlreadyOnKnownGood { .. })) && d.attention,
        ),
        (
            "leftover canary settings are removed before the rollback",
            {
                let mut c = Case::stable().event(STAGE_ALARM, Alarm, t);
                c.snap.canary = Some(CanarySnapshot {
                    deployment_id: "d1".into(),
                    percent_traffic: 0.0,
                    stage_variable_overrides: BTreeMap::new(),
                });
                c
            },
            |d| {
                matches!(
                    d.action,
                    Action::RollbackStage {
                        clears_leftover_canary: true,
                        ..
                    }
                ) && d.plan.len() == 2
            },
        ),
        // --- exactly once per transition
        (
            "same transition again is a duplicate",
            Case::stable()
                .event(STAGE_ALARM, Alarm, t)
                .book(|b| b.mark_handled(STAGE_ALARM, NOW - 30_000)),
            |d| matches!(hold(d), Some(Hold::Duplicate { .. })) && d.plan.is_empty(),
        ),
        (
            "an older transition is stale",
            Case::stable()
                .event(STAGE_ALARM, Alarm, t)
                .book(|b| b.mark_handled(STAGE_ALARM, NOW)),
            |d| matches!(hold(d), Some(Hold::Duplicate { .. })) && d.plan.is_empty(),
        ),
        (
            "schedule catches a missed ALARM transition",
            Case::stable().alarm(STAGE_ALARM, Alarm, t),
            |d| {
                matches!(d.action, Action::RollbackStage { .. })
                    && d.record.is_handled(STAGE_ALARM, NOW - 30_000)
            },
        ),
        (
            "schedule does not act again on a handled ALARM",
            Case::stable()
                .alarm(STAGE_ALARM, Alarm, t)
                .book(|b| b.mark_handled(STAGE_ALARM, NOW - 30_000)),
            |d| matches!(hold(d), Some(Hold::StillAlarming { .. })) && d.attention,
        ),
        (
            "alarm with an unknown since counts as fresh",
            {
                let mut c = Case::stable();
                c.signals.alarms.insert(
                    STAGE_ALARM.into(),
                    AlarmReading {
                        since_ms: None,
                        ..AlarmReading::new(Alarm, 0)
                    },
                );
                c
            },
            |d| matches!(d.action, Action::RollbackStage { .. }),
        ),
        // --- cooldown
        (
            "rollback within the cooldown of the last one is deferred, not recorded",
            Case::stable()
                .event(STAGE_ALARM, Alarm, t)
                .book(|b| b.last_rollback_ms = Some(NOW - MIN)),
            |d| {
                matches!(hold(d), Some(Hold::Cooldown { until_ms }) if *until_ms == NOW + 9 * MIN)
                    && !d.record.is_handled(STAGE_ALARM, NOW - 30_000)
            },
        ),
        (
            "rollback after the cooldown",
            Case::stable()
                .event(STAGE_ALARM, Alarm, t)
                .book(|b| b.last_rollback_ms = Some(NOW - 10 * MIN)),
            |d| matches!(d.action, Action::RollbackStage { .. }),
        ),
        (
            "a progression action does not delay a rollback",
            Case::stable()
                .event(STAGE_ALARM, Alarm, t)
                .book(|b| b.last_action_ms = Some(NOW - MIN)),
            |d| matches!(d.action, Action::RollbackStage { .. }),
        ),
        (
            "canary removal is never delayed by the cooldown",
            Case::canary(10.0)
                .event(CANARY_ALARM, Alarm, t)
                .book(|b| b.last_rollback_ms = Some(NOW - MIN)),
            |d| matches!(d.action, Action::RemoveCanary { .. }),
        ),
        (
            "no progression within the cooldown",
            Case::canary(10.0).book(|b| b.last_rollback_ms = Some(NOW - MIN)),
            |d| matches!(hold(d), Some(Hold::Cooldown { .. })),
        ),
        // --- canary health
        (
            "canary alarm: remove the canary",
            Case::canary(10.0).event(CANARY_ALARM, Alarm, t),
            |d| {
                matches!(&d.action, Action::RemoveCanary { reason: RemoveReason::CanaryAlarm { alarm }, deployment_id, .. } if alarm == CANARY_ALARM && deployment_id == "d2")
                    && d.record.step.is_none()
                    && d.record.last_rollback_ms == Some(NOW)
                    // One request: `remove /canarySettings`.
                    && d.plan.len() == 1
            },
        ),
        (
            "stage alarm during a canary: remove the canary first",
            Case::canary(10.0).event(STAGE_ALARM, Alarm, t),
            |d| {
                matches!(
                    d.action,
                    Action::RemoveCanary {
                        reason: RemoveReason::StageAlarm { .. },
                        ..
                    }
                )
            },
        ),
        (
            "both fire: one action, both transitions recorded",
            Case::canary(10.0)
                .alarm(STAGE_ALARM, Alarm, t - 1000)
                .event(CANARY_ALARM, Alarm, t),
            |d| {
                matches!(
                    d.action,
                    Action::RemoveCanary {
                        reason: RemoveReason::CanaryAlarm { .. },
                        ..
                    }
                ) && d.record.is_handled(STAGE_ALARM, NOW - 31_000)
                    && d.record.is_handled(CANARY_ALARM, NOW - 30_000)
            },
        ),
        (
            "error rate above threshold with enough requests",
            Case::canary(10.0).metrics(10.0, 100.0),
            |d| {
                matches!(
                    d.action,
                    Action::RemoveCanary {
                        reason: RemoveReason::ErrorRate { .. },
                        ..
                    }
                )
            },
        ),
        (
            "error rate exactly at threshold is healthy",
            Case::canary(10.0).metrics(5.0, 100.0),
            |d| matches!(d.action, Action::SetCanaryPercent { to, .. } if to == 25.0),
        ),
        (
            "high error rate with too few requests is not judged",
            Case::canary(10.0).metrics(10.0, 99.0),
            |d| matches!(hold(d), Some(Hold::NotEnoughRequests { min: 100, .. })),
        ),
        (
            // Changed: INSUFFICIENT_DATA is no evidence of health.
            "canary alarm INSUFFICIENT_DATA halts progression, never removes",
            Case::canary(10.0).alarm(CANARY_ALARM, InsufficientData, t),
            |d| {
                matches!(hold(d), Some(Hold::NoEvidence { .. }))
                    && d.record.step.as_ref().is_some_and(|s| s.since_ms == NOW)
            },
        ),
        (
            "canary alarm with no active canary is recorded only",
            Case::stable().event(CANARY_ALARM, Alarm, t),
            |d| {
                matches!(hold(d), Some(Hold::NoActiveCanary { .. }))
                    && d.record.is_handled(CANARY_ALARM, NOW - 30_000)
            },
        ),
        (
            "a transition the alarm has already left",
            Case::canary(10.0)
                .event(CANARY_ALARM, Alarm, t)
                .alarm(CANARY_ALARM, Ok, t + 1),
            |d| {
                matches!(hold(d), Some(Hold::AlarmRecovered { .. }))
                    && d.record.is_handled(CANARY_ALARM, NOW - 30_000)
            },
        ),
        (
            "an OK transition is recorded",
            Case::canary(10.0).event(CANARY_ALARM, Ok, t),
            |d| {
                matches!(hold(d), Some(Hold::TransitionRecorded { .. }))
                    && d.record.is_handled(CANARY_ALARM, NOW - 30_000)
            },
        ),
        (
            "the event wins over an older read",
            Case::canary(10.0)
                .event(CANARY_ALARM, Alarm, t)
                .alarm(CANARY_ALARM, Ok, t - 1),
            |d| matches!(d.action, Action::RemoveCanary { .. }),
        ),
        // --- unreadable halts progression, never a rollback
        (
            "unreadable canary alarm halts the canary",
            Case::canary(10.0).unreadable(CANARY_ALARM),
            |d| {
                matches!(hold(d), Some(Hold::AlarmsUnreadable { alarms }) if alarms == &[CANARY_ALARM])
                    && d.attention
                    && d.record.step.as_ref().map(|s| s.since_ms) == Some(NOW)
            },
        ),
        (
            "unreadable stage alarm halts known-good recording",
            Case::stable()
                .unreadable(STAGE_ALARM)
                .book(|b| b.live = Some(Mark::new("d1", NOW - 60 * MIN))),
            |d| {
                matches!(hold(d), Some(Hold::AlarmsUnreadable { .. }))
                    && d.record.live.as_ref().map(|l| l.at_ms) == Some(NOW)
            },
        ),
        (
            "unreadable alarm does not stop a rollback on other evidence",
            Case::canary(10.0)
                .unreadable(CANARY_ALARM)
                .event(STAGE_ALARM, Alarm, t),
            |d| {
                matches!(
                    d.action,
                    Action::RemoveCanary {
                        reason: RemoveReason::StageAlarm { .. },
                        ..
                    }
                )
            },
        ),
        (
            "unreadable metrics halt the canary",
            Case::canary(10.0).no_metrics(),
            |d| matches!(hold(d), Some(Hold::MetricsUnreadable)) && d.attention,
        ),
        (
            "nonsense metrics count as unreadable",
            Case::canary(10.0).metrics(f64::NAN, 100.0),
            |d| matches!(hold(d), Some(Hold::MetricsUnreadable)),
        ),
        (
            "unreadable metrics do not stop a rollback on an alarm",
            Case::canary(10.0)
                .no_metrics()
                .event(CANARY_ALARM, Alarm, t),
            |d| matches!(d.action, Action::RemoveCanary { .. }),
        ),
        (
            "canary alarms don't matter without a canary",
            Case::stable()
                .unreadable(CANARY_ALARM)
                .book(|b| b.live = Some(Mark::new("d1", NOW - 60 * MIN))),
            |d| matches!(d.action, Action::RecordKnownGood { .. }),
        ),
        // --- progression
        (
            "healthy canary past bake time: next step",
            Case::canary(10.0),
            |d| {
                matches!(&d.action, Action::SetCanaryPercent { from, to, deployment_id } if *from == 10.0 && *to == 25.0 && deployment_id == "d2")
                    && d.record.step
                        == Some(StepMark {
                            deployment_id: "d2".into(),
                            percent: 25.0,
                            since_ms: NOW,
                            // The canary's own start is kept across steps.
                            canary_since_ms: NOW - 6 * MIN,
                        })
                    && d.confirm_alarms
            },
        ),
        (
            "between steps: the next one up",
            Case::canary(7.0),
            |d| matches!(d.action, Action::SetCanaryPercent { to, .. } if to == 10.0),
        ),
        (
            "still baking",
            Case::canary(10.0).book(|b| {
                b.step = Some(StepMark {
                    deployment_id: "d2".into(),
                    percent: 10.0,
                    since_ms: NOW - MIN,
                    canary_since_ms: NOW - MIN,
                })
            }),
            |d| matches!(hold(d), Some(Hold::Baking { remaining_ms, .. }) if *remaining_ms == 4 * MIN),
        ),
        (
            "a canary changed behind our back restarts the bake",
            Case::canary(10.0).book(|b| {
                b.step = Some(StepMark {
                    deployment_id: "d2".into(),
                    percent: 5.0,
                    since_ms: 0,
                    canary_since_ms: 0,
                })
            }),
            |d| {
                matches!(hold(d), Some(Hold::Baking { .. }))
                    && d.record.step.as_ref().map(|s| (s.percent, s.since_ms)) == Some((10.0, NOW))
            },
        ),
        ("baked at 100 %: promote", Case::canary(100.0), |d| {
            matches!(&d.action, Action::PromoteCanary { deployment, from_deployment } if deployment == "d2" && from_deployment == "d1")
                && d.plan.len() == 2
                && d.record.live == Some(Mark::new("d2", NOW))
        }),
        (
            "never step to a deleted canary deployment",
            Case::canary(10.0).without_deployment("d2"),
            |d| matches!(hold(d), Some(Hold::DeploymentMissing { .. })),
        ),
        (
            "never promote a deleted canary deployment",
            Case::canary(100.0).without_deployment("d2"),
            |d| matches!(hold(d), Some(Hold::DeploymentMissing { .. })) && d.attention,
        ),
        (
            "leftover settings at 0 % are cleaned up",
            Case::canary(0.0),
            |d| {
                matches!(
                    d.action,
                    Action::RemoveCanary {
                        reason: RemoveReason::Leftover,
                        ..
                    }
                ) && d.plan.len() == 1
                    && d.record.last_rollback_ms.is_none()
            },
        ),
        (
            "leftover settings on the stage's deployment (after promote)",
            {
                let mut c = Case::canary(0.0);
                if let Some(k) = c.snap.canary.as_mut() {
                    k.deployment_id = "d1".into();
                }
                c
            },
            |d| {
                matches!(
                    d.action,
                    Action::RemoveCanary {
                        reason: RemoveReason::Leftover,
                        ..
                    }
                )
            },
        ),
        (
            // Changed: canary safety is level-triggered.
            "a stage alarm still firing (handled before) removes an active canary",
            Case::canary(10.0)
                .alarm(STAGE_ALARM, Alarm, t)
                .book(|b| b.mark_handled(STAGE_ALARM, NOW - 30_000)),
            |d| {
                matches!(
                    &d.action,
                    Action::RemoveCanary {
                        reason: RemoveReason::StageAlarm { .. },
                        ..
                    }
                )
            },
        ),
        (
            "a stage alarm still firing (handled before) blocks progression without a canary",
            Case::stable()
                .alarm(STAGE_ALARM, Alarm, t)
                .book(|b| b.mark_handled(STAGE_ALARM, NOW - 30_000)),
            |d| matches!(hold(d), Some(Hold::StillAlarming { .. })),
        ),
        // --- known-good
        (
            "healthy for bake time: record known-good",
            Case::stable().book(|b| b.live = Some(Mark::new("d1", NOW - 5 * MIN))),
            |d| {
                matches!(&d.action, Action::RecordKnownGood { deployment, previous } if deployment == "d1" && previous.as_deref() == Some("d0"))
                    && d.record.known_good == Some(Mark::new("d1", NOW))
                    && d.record.previous_known_good.as_ref().is_some_and(|m| m.deployment_id == "d0")
                    // Record only, confirmed against fresh alarms first.
                    && d.plan.is_empty()
                    && d.record_changed
                    && d.confirm_alarms
            },
        ),
        (
            "a new deployment starts baking",
            Case::stable().book(|b| b.live = Some(Mark::new("d0", 0))),
            |d| {
                matches!(hold(d), Some(Hold::Baking { deployment, remaining_ms }) if deployment == "d1" && *remaining_ms == 5 * MIN)
                    && d.record.live == Some(Mark::new("d1", NOW))
            },
        ),
        (
            "already known-good: steady, nothing written",
            Case::stable().book(|b| {
                b.known_good = Some(Mark::new("d1", 0));
                b.live = Some(Mark::new("d1", 0));
            }),
            |d| matches!(hold(d), Some(Hold::Steady)) && d.plan.is_empty(),
        ),
        (
            "the stage deployment is recorded while a canary waits",
            Case::canary(10.0).book(|b| {
                b.known_good = Some(Mark::new("d0", 0));
                b.step = Some(StepMark {
                    deployment_id: "d2".into(),
                    percent: 10.0,
                    since_ms: NOW,
                    canary_since_ms: NOW,
                });
            }),
            |d| matches!(&d.action, Action::RecordKnownGood { deployment, .. } if deployment == "d1"),
        ),
        // --- pause
        (
            "paused: no progression",
            Case::canary(10.0).book(|b| {
                b.paused = Some(Pause {
                    since_ms: 0,
                    by: String::new(),
                    until_ms: None,
                    reason: "freeze".into(),
                })
            }),
            |d| matches!(hold(d), Some(Hold::Paused { reason }) if reason == "freeze"),
        ),
        (
            "paused: no known-good recording",
            Case::stable().book(|b| {
                b.paused = Some(Pause {
                    since_ms: 0,
                    by: String::new(),
                    until_ms: None,
                    reason: "x".into(),
                });
                b.live = Some(Mark::new("d1", 0));
            }),
            |d| matches!(hold(d), Some(Hold::Paused { .. })),
        ),
        (
            "paused: a canary is still removed",
            Case::canary(10.0).event(CANARY_ALARM, Alarm, t).book(|b| {
                b.paused = Some(Pause {
                    since_ms: 0,
                    by: String::new(),
                    until_ms: None,
                    reason: "x".into(),
                })
            }),
            |d| matches!(d.action, Action::RemoveCanary { .. }),
        ),
        (
            "paused: a stage is still rolled back",
            Case::stable().event(STAGE_ALARM, Alarm, t).book(|b| {
                b.paused = Some(Pause {
                    since_ms: 0,
                    by: String::new(),
                    until_ms: None,
                    reason: "x".into(),
                })
            }),
            |d| matches!(d.action, Action::RollbackStage { .. }),
        ),
        // --- dry-run
        (
            "dry-run: same decision, marked",
            {
                let mut c = Case::canary(10.0).event(CANARY_ALARM, Alarm, t);
                c.stage.dry_run = true;
                c
            },
            |d| matches!(d.action, Action::RemoveCanary { .. }) && d.dry_run && d.audit.dry_run,
        ),
        // --- operator commands
        (
            "manual rollback removes an active canary, cooldown or not",
            Case::canary(10.0)
                .manual(ManualCommand::Rollback)
                .book(|b| b.last_rollback_ms = Some(NOW)),
            |d| matches!(&d.action, Action::RemoveCanary { reason: RemoveReason::Manual { reason }, .. } if reason == "INC-7 checkout errors"),
        ),
        (
            "manual rollback of a stage ignores the cooldown",
            Case::stable()
                .manual(ManualCommand::Rollback)
                .book(|b| b.last_rollback_ms = Some(NOW)),
            |d| {
                matches!(
                    d.action,
                    Action::RollbackStage {
                        reason: RollbackReason::Manual { .. },
                        ..
                    }
                )
            },
        ),
        (
            "manual rollback never to a deleted deployment",
            Case::stable()
                .manual(ManualCommand::Rollback)
                .without_deployment("d0"),
            |d| matches!(hold(d), Some(Hold::DeploymentMissing { .. })),
        ),
        (
            "manual promote skips steps and bake",
            Case::canary(10.0).manual(ManualCommand::Promote).book(|b| {
                b.step = Some(StepMark {
                    deployment_id: "d2".into(),
                    percent: 10.0,
                    since_ms: NOW,
                    canary_since_ms: NOW,
                })
            }),
            |d| matches!(d.action, Action::PromoteCanary { .. }),
        ),
        (
            "manual promote accepts too few requests",
            Case::canary(10.0)
                .manual(ManualCommand::Promote)
                .metrics(0.0, 3.0),
            |d| matches!(d.action, Action::PromoteCanary { .. }),
        ),
        (
            "manual promote refuses an alarming canary",
            Case::canary(10.0)
                .manual(ManualCommand::Promote)
                .alarm(CANARY_ALARM, Alarm, t),
            |d| matches!(hold(d), Some(Hold::CanaryUnhealthy { .. })),
        ),
        (
            "manual promote refuses a high error rate",
            Case::canary(10.0)
                .manual(ManualCommand::Promote)
                .metrics(50.0, 100.0),
            |d| matches!(hold(d), Some(Hold::CanaryUnhealthy { .. })),
        ),
        (
            "manual promote refuses unreadable alarms",
            Case::canary(10.0)
                .manual(ManualCommand::Promote)
                .unreadable(STAGE_ALARM),
            |d| matches!(hold(d), Some(Hold::AlarmsUnreadable { .. })),
        ),
        (
            "manual promote with no canary",
            Case::stable().manual(ManualCommand::Promote),
            |d| matches!(hold(d), Some(Hold::NoActiveCanaryToPromote)),
        ),
        (
            "pause",
            Case::canary(10.0).manual(ManualCommand::Pause),
            |d| {
                matches!(hold(d), Some(Hold::PausedNow))
                    && d.record.paused
                        == Some(Pause {
                            since_ms: NOW,
                            by: "key:oncall".into(),
                            until_ms: None,
                            reason: "INC-7 checkout errors".into(),
                        })
                    && d.plan.is_empty()
                    && d.record_changed
                    && d.audit.actor == "key:oncall"
            },
        ),
        (
            "pause twice keeps the first reason",
            Case::canary(10.0).manual(ManualCommand::Pause).book(|b| {
                b.paused = Some(Pause {
                    since_ms: 1,
                    by: String::new(),
                    until_ms: None,
                    reason: "first".into(),
                })
            }),
            |d| matches!(hold(d), Some(Hold::Paused { reason }) if reason == "first"),
        ),
        (
            "resume restarts the bake",
            Case::canary(10.0).manual(ManualCommand::Resume).book(|b| {
                b.paused = Some(Pause {
                    since_ms: 1,
                    by: String::new(),
                    until_ms: None,
                    reason: "x".into(),
                })
            }),
            |d| {
                matches!(hold(d), Some(Hold::Resumed))
                    && d.record.paused.is_none()
                    && d.record.step.as_ref().map(|s| s.since_ms) == Some(NOW)
                    && d.record.live.as_ref().map(|l| l.at_ms) == Some(NOW)
            },
        ),
        (
            "resume when not paused",
            Case::canary(10.0).manual(ManualCommand::Resume),
            |d| matches!(hold(d), Some(Hold::NotPaused)),
        ),
    ]
}

#[test]
fn decision_table() {
    let rows = table();
    let mut failures = Vec::new();
    for (name, case, check) in &rows {
        let d = case.run();
        if !check(&d) {
            failures.push(format!("{name}: got {} ({:?})", d.action, d.action));
        }
        // Every row: the audit record is consistent and serialisable, and
        // the plan (unless the stage is unmanaged) runs on the stage it was
        // made for.
        assert_eq!(d.audit.action, d.action, "{name}");
        assert_eq!(d.audit.summary, d.action.to_string(), "{name}");
        serde_json::to_string(&d.audit).unwrap();
        replay(&case.snap, &d).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

/// Runs a plan step by step against `snap`, checking each expectation and
/// where each step lands, and returns the resulting stage.
fn replay(snap: &StageSnapshot, d: &Decision) -> Result<StageSnapshot, String> {
    let mut s = snap.clone();
    for (i, step) in d.plan.iter().enumerate() {
        step.expect
            .check(&s)
            .map_err(|e| format!("step {i} expectation: {e}"))?;
        s = simulate(&s, &step.ops).map_err(|e| format!("step {i}: {e}"))?;
        step.after
            .check(&s)
            .map_err(|e| format!("step {i} result: {e}"))?;
    }
    if s.variables != snap.variables
        && !d
            .plan
            .iter()
            .any(|p| p.ops.iter().any(|o| o.from.is_some()))
    {
        return Err("a plan wrote stage variables".into());
    }
    Ok(s)
}

/// Applies a decision to a case, as the adapter would: the stage's plan,
/// then the record.
fn apply(c: &mut Case, d: &Decision) {
    c.snap = replay(&c.snap, d).unwrap();
    c.book = d.record.clone();
}

#[test]
fn one_action_per_transition_across_events_and_schedule() {
    let t = NOW - 30_000;
    let mut c = Case::stable().event(STAGE_ALARM, AlarmState::Alarm, t);
    let first = c.run();
    assert!(matches!(first.action, Action::RollbackStage { .. }));
    apply(&mut c, &first);
    assert_eq!(c.snap.deployment_id, "d0");
    // The same event delivered again (SNS and EventBridge both, or a retry).
    c.now += 1_000;
    let again = c.run();
    assert!(matches!(hold(&again), Some(Hold::Duplicate { .. })));
    assert!(again.plan.is_empty());
    // The schedule sees the alarm still in ALARM since t: handled already.
    c.trigger = Trigger::Schedule;
    let sched = c.run();
    assert!(
        matches!(hold(&sched), Some(Hold::StillAlarming { .. })),
        "{}",
        sched.action
    );
}

#[test]
fn racing_invocations_cannot_both_act() {
    let t = NOW - 30_000;
    let c = Case::canary(10.0).event(CANARY_ALARM, AlarmState::Alarm, t);
    let a = c.run();
    let b = c.run(); // a second container with the same event and read
    assert_eq!(a.action, b.action);
    let after = replay(&c.snap, &a).unwrap();
    let b0 = b.plan.first().unwrap();
    assert!(b0.expect.check(&after).is_err());
    // The loser re-reads and decides again: a duplicate.
    let mut c2 = c.clone();
    apply(&mut c2, &a);
    assert!(matches!(hold(&c2.run()), Some(Hold::Duplicate { .. })));
    // A record-only write (a schedule's observation) no longer touches the
    // stage: writers are serialised by the adapter's lease, and the record
    // by its version.
    let s = Case::stable().book(|b| b.live = Some(Mark::new("d0", 0)));
    let obs = s.run();
    assert!(obs.plan.is_empty() && obs.record_changed);
}

#[test]
fn full_rollout_walk() {
    // Stage on d1 (known-good), canary d2 appears at 5 %: it bakes, steps
    // through 10/25/50/100, is promoted, the promoted deployment bakes and
    // becomes known-good. Each schedule tick is one minute.
    let mut c = Case::stable().book(|b| {
        b.known_good = Some(Mark::new("d1", 0));
        b.live = Some(Mark::new("d1", 0));
    });
    c.snap.canary = Some(CanarySnapshot {
        deployment_id: "d2".into(),
        percent_traffic: 5.0,
        stage_variable_overrides: [("color".to_owned(), "green".to_owned())].into(),
    });
    c = c.metrics(0.0, 1_000.0);
    let mut actions = Vec::new();
    for _ in 0..60 {
        let d = c.run();
        if let Some(k) = d.action.kind() {
            actions.push((k, (c.now - NOW) / MIN));
        }
        apply(&mut c, &d);
        c.now += MIN;
    }
    use crate::rollout::ActionKind::*;
    assert_eq!(
        actions,
        vec![
            (SetCanaryPercent, 5),
            (SetCanaryPercent, 10),
            (SetCanaryPercent, 15),
            (SetCanaryPercent, 20),
            (PromoteCanary, 25),
            (RecordKnownGood, 30),
        ]
    );
    assert_eq!(c.snap.deployment_id, "d2");
    assert_eq!(c.snap.canary, None);
    assert_eq!(c.snap.variables["color"], "green");
    assert_eq!(
        c.book.known_good.as_ref().map(|m| m.deployment_id.as_str()),
        Some("d2")
    );
}

#[test]
fn flapping_alarm_rolls_back_once_per_cooldown() {
    // The stage alarm flaps ALARM/OK every minute on a fresh deployment d3
    // whose known-good is d0. The first ALARM rolls back; later ALARMs find
    // the stage on known-good.
    let mut c = Case::stable();
    c.snap.deployment_id = "d3".into();
    c = c.book(|b| b.live = Some(Mark::new("d3", NOW)));
    let mut rollbacks = 0;
    for i in 0..20u64 {
        let state = if i % 2 == 0 {
            AlarmState::Alarm
        } else {
            AlarmState::Ok
        };
        let c2 = c.clone().event(STAGE_ALARM, state, c.now - 1_000);
        let d = c2.run();
        if matches!(d.action, Action::RollbackStage { .. }) {
            rollbacks += 1;
        }
        c.signals = c2.signals.clone();
        apply(&mut c, &d);
        // Someone redeploys d3 right after each rollback.
        if c.snap.deployment_id != "d3" {
            c.snap.deployment_id = "d3".into();
        }
        c.now += MIN;
    }
    // 20 minutes, cooldown 10: at most one rollback per cooldown window
    // (t=0, t=10, and the one at t=20 is outside the loop).
    assert_eq!(rollbacks, 2);
}

mod edge;
mod gates;
mod safety;
