//! Property tests of the rollout policy over random histories: alarms flap,
//! go without data, are muted, cannot be read; events are delivered late,
//! twice or never; canary metrics go missing; deployments come and go and
//! `GetDeployment` fails; people deploy, pause (for a while) and promote;
//! two invocations race; a plan is cut off after its first request — and the
//! world (a simulated API Gateway stage and the adapter's record store) is
//! changed only by carrying out the decisions as the Lambda does: alarms
//! re-read before progress ([`confirm`]), each step's expectation re-checked,
//! the record written once the plan (or part of it) landed, nothing at all
//! in dry-run.
//!
//! Whatever happens:
//! - the stage is never pointed at (or stepped/promoted to) a deployment
//!   that does not exist, nor one `GetDeployment` did not confirm;
//! - an active canary is removed whenever an automatic decision finds a
//!   watched alarm in ALARM (not suppressed) or its error rate unhealthy,
//!   whatever the pause, cooldown, dry-run or the transition's history;
//! - no alarm transition causes two stage rollbacks, and nothing is rolled
//!   back for an alarm not in ALARM, suppressed, or without data;
//! - nothing progresses (step, promote, known-good, cleanup) while a relevant
//!   alarm is unreadable, in ALARM, suppressed in ALARM or without data, nor
//!   automatically while paused or with a bake time shorter than an alarm;
//! - progress is asked to be confirmed, and a fresh read like the first
//!   confirms it; an alarm that fired in between withdraws it;
//! - every plan runs on the stage it was made for, step by step, each step
//!   landing where it says; a canary removal is one request; no plan writes
//!   a stage variable except promotion's copy of the canary's overrides;
//! - a canary's metric window never starts before that canary appeared;
//! - a promotion's 0 % leftover is cleaned at the next automatic decision;
//! - of two invocations racing on one stage, the second backs off;
//! - a stage that is not the managed one is never written.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use tidegate_policy::config::{CanaryStep, ManagedStage, RestApiRef};
use tidegate_policy::rollout::{
    canary_since, confirm, decide, deployments_to_check, planned_steps, simulate, Action,
    ActionKind, AlarmReading, AlarmState, CanaryMetrics, CanarySnapshot, Decision, DeploymentCheck,
    Expectation, ManualCommand, Mark, MetricsReading, PatchOpKind, RemoveReason, RollbackReason,
    Signals, StageRecord, StageSnapshot, StartCanary, Transition, Trigger,
};

const MIN: u64 = 60_000;
const STAGE_ALARMS: [&str; 2] = ["stage-5xx", "stage-latency"];
const CANARY_ALARM: &str = "canary-5xx";
const ALARMS: [&str; 3] = ["stage-5xx", "stage-latency", "canary-5xx"];

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    SetAlarm(usize, AlarmState),
    Unreadable(usize, bool),
    Suppress(usize, bool),
    /// An alarm's period × evaluation periods, minutes (`None`: unknown).
    EvalSpan(usize, Option<u64>),
    Metrics(Metrics),
    DeleteDeployment(usize),
    GetDeploymentFails(bool),
    DeployCanary(f64, bool),
    DeployDirect,
    NudgeCanary(f64),
    Trigger(Trig),
    /// Decide, then alarm `usize` fires before the adapter carries it out.
    FireBeforeCarryingOut(Trig, usize),
    /// Decide, then only the plan's first request lands.
    CutOff(Trig),
    Race(Trig, Trig),
}

#[derive(Debug, Clone, Copy)]
enum Metrics {
    Read(u32, u32),
    Unreadable,
    DimensionMissing,
}

#[derive(Debug, Clone)]
enum Trig {
    Schedule,
    Deliver(prop::sample::Index),
    Manual(ManualCommand, Option<u64>),
    /// An operator's start of deployment `d{index}` (existing or not), with
    /// its own steps or the stage's.
    Start(usize, Option<Vec<CanaryStep>>),
}

fn arb_state() -> impl Strategy<Value = AlarmState> {
    prop_oneof![
        4 => Just(AlarmState::Ok),
        2 => Just(AlarmState::Alarm),
        1 => Just(AlarmState::InsufficientData),
    ]
}

fn arb_trig() -> impl Strategy<Value = Trig> {
    prop_oneof![
        4 => Just(Trig::Schedule),
        4 => any::<prop::sample::Index>().prop_map(Trig::Deliver),
        1 => (
            prop_oneof![
                2 => Just(ManualCommand::Rollback),
                2 => Just(ManualCommand::Promote),
                1 => Just(ManualCommand::Pause),
                3 => Just(ManualCommand::Resume),
                3 => Just(ManualCommand::Advance),
                3 => Just(ManualCommand::Approve),
            ],
            proptest::option::weighted(0.3, 1..30 * MIN),
        )
            .prop_map(|(c, until)| Trig::Manual(c, until)),
        1 => (0usize..12, proptest::option::weighted(0.3, arb_steps()))
            .prop_map(|(i, steps)| Trig::Start(i, steps)),
    ]
}

fn arb_metrics() -> impl Strategy<Value = Metrics> {
    prop_oneof![
        8 => (0u32..40, 0u32..400).prop_map(|(e, c)| Metrics::Read(e, c)),
        1 => Just(Metrics::Unreadable),
        1 => Just(Metrics::DimensionMissing),
    ]
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..12 * MIN).prop_map(Op::Advance),
        3 => (0..ALARMS.len(), arb_state()).prop_map(|(i, s)| Op::SetAlarm(i, s)),
        1 => (0..ALARMS.len(), prop::bool::weighted(0.3)).prop_map(|(i, u)| Op::Unreadable(i, u)),
        1 => (0..ALARMS.len(), prop::bool::weighted(0.3)).prop_map(|(i, s)| Op::Suppress(i, s)),
        1 => (0..ALARMS.len(), proptest::option::weighted(0.3, 1u64..15)).prop_map(|(i, m)| Op::EvalSpan(i, m)),
        2 => arb_metrics().prop_map(Op::Metrics),
        1 => (0usize..12).prop_map(Op::DeleteDeployment),
        1 => prop::bool::weighted(0.3).prop_map(Op::GetDeploymentFails),
        3 => (
            prop_oneof![Just(0.0), Just(3.0), Just(5.0), Just(10.0), Just(100.0)],
            any::<bool>(),
        )
            .prop_map(|(p, o)| Op::DeployCanary(p, o)),
        1 => Just(Op::DeployDirect),
        1 => prop_oneof![Just(0.0), Just(7.0), Just(50.0), Just(100.0)].prop_map(Op::NudgeCanary),
        8 => arb_trig().prop_map(Op::Trigger),
        1 => (arb_trig(), 0..ALARMS.len()).prop_map(|(t, i)| Op::FireBeforeCarryingOut(t, i)),
        2 => arb_trig().prop_map(Op::CutOff),
        2 => (arb_trig(), arb_trig()).prop_map(|(a, b)| Op::Race(a, b)),
    ]
}

/// Plans of canary steps, with and without approval gates.
fn arb_steps() -> impl Strategy<Value = Vec<CanaryStep>> {
    let at = CanaryStep::at;
    prop_oneof![
        Just([5.0, 10.0, 25.0, 50.0, 100.0].map(at).to_vec()),
        Just(vec![at(100.0)]),
        Just(vec![at(10.0), at(100.0)]),
        Just(vec![at(5.0), at(10.0).gated(), at(50.0).gated(), at(100.0)]),
        Just(vec![at(10.0), at(100.0).gated()]),
        Just(vec![at(7.0).gated(), at(50.0), at(100.0)]),
    ]
}

fn arb_stage() -> impl Strategy<Value = ManagedStage> {
    (
        arb_steps(),
        1u64..10,
        0u64..20,
        1u64..200,
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(steps, bake, cooldown, min_requests, dry_run)| ManagedStage {
                api: RestApiRef::Id("api1".into()),
                stage: "prod".into(),
                stage_alarms: STAGE_ALARMS.map(String::from).to_vec(),
                canary_alarms: vec![CANARY_ALARM.into()],
                error_rate_threshold: 0.05,
                min_requests,
                canary_steps: steps,
                bake_time: Duration::from_secs(bake * 60),
                cooldown: Duration::from_secs(cooldown * 60),
                metric_window: Duration::from_secs(300),
                metric_api_name: None,
                canary_stage_dimension: "{stage}/Canary".into(),
                dry_run,
            },
        )
}

/// How much of a decision the adapter carries out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Landing {
    All,
    FirstStepOnly,
}

struct World {
    stage: ManagedStage,
    snap: StageSnapshot,
    /// The adapter's store: the record and its version.
    record: StageRecord,
    version: u64,
    deployments: BTreeSet<String>,
    get_deployment_fails: bool,
    next_deployment: usize,
    alarms: BTreeMap<String, AlarmReading>,
    unreadable: BTreeSet<String>,
    metrics: Metrics,
    now: u64,
    transitions: Vec<Transition>,
    /// Canary deployment → when it appeared on the stage.
    canary_appeared: BTreeMap<String, u64>,
    /// Alarm transitions (alarm, time) some rollback already settled.
    acted: BTreeSet<(String, u64)>,
    log: Vec<String>,
}

impl World {
    fn new(stage: ManagedStage) -> Self {
        let now = 1_700_000_000_000;
        Self {
            stage,
            snap: StageSnapshot {
                rest_api_id: "api1".into(),
                rest_api_name: Some("orders".into()),
                stage_name: "prod".into(),
                deployment_id: "d0".into(),
                canary: None,
                last_updated_ms: None,
                variables: [("backend".to_owned(), "v1".to_owned())].into(),
            },
            // Migrated or recorded earlier: d0 baked and known-good.
            record: StageRecord {
                known_good: Some(Mark::new("d0", now - 120 * MIN)),
                live: Some(Mark::new("d0", now - 120 * MIN)),
                ..StageRecord::default()
            },
            version: 0,
            deployments: ["d0".to_owned()].into(),
            get_deployment_fails: false,
            next_deployment: 1,
            alarms: ALARMS
                .iter()
                .map(|a| {
                    (
                        (*a).to_owned(),
                        AlarmReading::new(AlarmState::Ok, now - 60 * MIN),
                    )
                })
                .collect(),
            unreadable: BTreeSet::new(),
            metrics: Metrics::Read(0, 500),
            now,
            transitions: Vec::new(),
            canary_appeared: BTreeMap::new(),
            acted: BTreeSet::new(),
            log: Vec::new(),
        }
    }

    fn new_deployment(&mut self) -> String {
        let d = format!("d{}", self.next_deployment);
        self.next_deployment += 1;
        self.deployments.insert(d.clone());
        d
    }

    fn canary_active(&self) -> bool {
        self.snap
            .canary
            .as_ref()
            .is_some_and(|c| c.is_active(&self.snap.deployment_id))
    }

    /// `DescribeAlarms` as the adapter sees it.
    fn read_alarms(&self) -> BTreeMap<String, AlarmReading> {
        self.alarms
            .iter()
            .filter(|(a, _)| !self.unreadable.contains(*a))
            .map(|(a, r)| (a.clone(), *r))
            .collect()
    }

    /// What the adapter reads for the stage: alarms, the canary's metrics
    /// (only with an active canary), and `GetDeployment` for the ids the
    /// policy names.
    fn signals(
        &self,
        snap: &StageSnapshot,
        record: &StageRecord,
        trigger: Option<&Trigger>,
    ) -> Signals {
        let canary_metrics = if self.canary_active() {
            match self.metrics {
                Metrics::Read(e, c) => MetricsReading::Read(CanaryMetrics {
                    errors_5xx: f64::from(e.min(c)),
                    count: f64::from(c),
                }),
                Metrics::Unreadable => MetricsReading::Unreadable {
                    reason: "throttled".into(),
                },
                Metrics::DimensionMissing => MetricsReading::DimensionMissing {
                    api_name: "orders".into(),
                    stage_dimension: "prod/Canary".into(),
                },
            }
        } else {
            MetricsReading::NotRead
        };
        let deployments = deployments_to_check(record, snap, trigger)
            .into_iter()
            .map(|d| {
                let check = if self.get_deployment_fails {
                    DeploymentCheck::Unknown
                } else if self.deployments.contains(&d) {
                    DeploymentCheck::Exists
                } else {
                    DeploymentCheck::Missing
                };
                (d, check)
            })
            .collect();
        Signals {
            alarms: self.read_alarms(),
            canary_metrics,
            deployments,
        }
    }

    fn trigger(&self, t: &Trig) -> Option<Trigger> {
        Some(match t {
            Trig::Schedule => Trigger::Schedule,
            Trig::Deliver(i) => {
                if self.transitions.is_empty() {
                    return None;
                }
                Trigger::AlarmTransition(i.get(&self.transitions).clone())
            }
            Trig::Manual(command, until) => Trigger::Manual {
                command: *command,
                reason: "ops".into(),
                operator: "key:oncall".into(),
                until_ms: until.map(|u| self.now + u),
                start: None,
            },
            Trig::Start(i, steps) => Trigger::Manual {
                command: ManualCommand::Start,
                reason: "ops".into(),
                operator: "key:oncall".into(),
                until_ms: None,
                start: Some(StartCanary {
                    deployment: format!("d{i}"),
                    steps: steps.clone(),
                }),
            },
        })
    }

    fn decide(&self, trigger: Trigger) -> (Decision, Signals) {
        let signals = self.signals(&self.snap, &self.record, Some(&trigger));
        let d = decide(
            &self.stage,
            &self.snap,
            &self.record,
            &signals,
            trigger,
            self.now,
        );
        (d, signals)
    }

    /// The reading the decision goes by: the triggering event's, unless the
    /// read shows a newer state (the documented rule).
    fn effective(&self, signals: &Signals, alarm: &str, trigger: &Trigger) -> AlarmReading {
        let read = signals.alarm(alarm);
        match trigger {
            Trigger::AlarmTransition(t) if t.alarm == alarm => match read.since_ms {
                Some(s) if s > t.timestamp_ms => read,
                _ => AlarmReading {
                    suppressed: t.suppressed || read.suppressed,
                    ..AlarmReading::new(t.new_state, t.timestamp_ms)
                },
            },
            _ => read,
        }
    }

    /// Checks the properties of one decision made on the current world.
    fn check(
        &mut self,
        d: &Decision,
        trigger: &Trigger,
        signals: &Signals,
    ) -> Result<(), TestCaseError> {
        let ctx = || {
            format!(
                "{} / {:?}\nlog:\n{}",
                d.action,
                trigger,
                self.log.join("\n")
            )
        };
        let automatic = !matches!(trigger, Trigger::Manual { .. });
        let active = self.canary_active();
        let relevant: Vec<&str> = ALARMS
            .iter()
            .copied()
            .filter(|a| *a != CANARY_ALARM || active)
            .collect();
        let readings: BTreeMap<&str, AlarmReading> = relevant
            .iter()
            .map(|a| (*a, self.effective(signals, a, trigger)))
            .collect();
        let firing = |a: &str| {
            readings
                .get(a)
                .is_some_and(|r| r.state == AlarmState::Alarm && !r.suppressed)
        };
        let sane = signals.canary_metrics.sane();
        let unhealthy_rate = sane.is_some_and(|m| {
            m.count >= self.stage.min_requests as f64
                && m.error_rate() > self.stage.error_rate_threshold
        });

        // Never to a deployment that does not exist, nor one not checked.
        let target = match &d.action {
            Action::RollbackStage { to_deployment, .. } => Some(to_deployment),
            Action::PromoteCanary { deployment, .. } => Some(deployment),
            Action::SetCanaryPercent { deployment_id, .. } => Some(deployment_id),
            Action::StartCanary { deployment_id, .. } => Some(deployment_id),
            _ => None,
        };
        if let Some(t) = target {
            prop_assert!(
                self.deployments.contains(t),
                "unknown deployment {t}: {}",
                ctx()
            );
            prop_assert_eq!(
                signals.deployment(t),
                DeploymentCheck::Exists,
                "unchecked deployment {}: {}",
                t,
                ctx()
            );
        }

        // Never past an unapproved gate: no move forward (but an operator's
        // deliberate full promotion) leaves a step that requires approval
        // without it.
        let promote = matches!(
            trigger,
            Trigger::Manual {
                command: ManualCommand::Promote,
                ..
            }
        );
        let moved = match &d.action {
            Action::SetCanaryPercent {
                deployment_id,
                from,
                to,
            } => Some((deployment_id, *from, *to)),
            Action::PromoteCanary { deployment, .. } if !promote => self
                .snap
                .canary
                .as_ref()
                .map(|c| (deployment, c.percent_traffic, f64::INFINITY)),
            _ => None,
        };
        if let Some((dep, from, to)) = moved {
            for gate in planned_steps(&self.stage, &self.record, dep)
                .iter()
                .filter(|s| s.approve && from <= s.percent && s.percent < to)
            {
                prop_assert!(
                    self.record.is_approved(dep, gate.percent),
                    "moved past the unapproved gate at {}%: {}",
                    gate.percent,
                    ctx()
                );
            }
        }

        // Level-triggered canary safety.
        if automatic && active && (relevant.iter().any(|a| firing(a)) || unhealthy_rate) {
            prop_assert!(
                matches!(
                    &d.action,
                    Action::RemoveCanary { reason, .. }
                        if !matches!(reason, RemoveReason::Leftover | RemoveReason::PromotionLeftover)
                ),
                "an unhealthy canary was left in place: {}",
                ctx()
            );
        }
        // Nothing is taken back for an alarm not firing.
        match &d.action {
            Action::RemoveCanary {
                reason: RemoveReason::CanaryAlarm { alarm } | RemoveReason::StageAlarm { alarm },
                ..
            } => prop_assert!(firing(alarm), "removed for {alarm}: {}", ctx()),
            Action::RemoveCanary {
                reason: RemoveReason::ErrorRate { .. },
                ..
            } => prop_assert!(unhealthy_rate, "removed for a healthy rate: {}", ctx()),
            Action::RollbackStage {
                reason: RollbackReason::StageAlarm { alarm },
                ..
            } => {
                prop_assert!(!active, "stage rolled back under a canary: {}", ctx());
                prop_assert!(
                    STAGE_ALARMS.contains(&alarm.as_str()) && firing(alarm),
                    "rolled back for {alarm}: {}",
                    ctx()
                );
            }
            _ => {}
        }

        // Nothing progresses on doubt.
        let progression = matches!(
            d.action.kind(),
            Some(
                ActionKind::SetCanaryPercent
                    | ActionKind::PromoteCanary
                    | ActionKind::RecordKnownGood
            )
        ) || matches!(
            d.action,
            Action::RemoveCanary {
                reason: RemoveReason::Leftover,
                ..
            }
        );
        if progression {
            let doubt: Vec<&str> = relevant
                .iter()
                .copied()
                // Not OK: in ALARM (suppressed or not), without data, unreadable.
                .filter(|a| readings[a].state != AlarmState::Ok)
                .collect();
            prop_assert!(
                doubt.is_empty(),
                "progressed with {:?} in doubt: {}",
                doubt,
                ctx()
            );
            if automatic {
                prop_assert!(
                    matches!(trigger, Trigger::Schedule),
                    "progressed on an event: {}",
                    ctx()
                );
                prop_assert!(
                    self.record.pause_at(self.now).is_none(),
                    "progressed while paused: {}",
                    ctx()
                );
                let bake_ms = self.stage.bake_time.as_millis() as u64;
                let too_short = signals
                    .alarms
                    .values()
                    .any(|r| r.evaluation_ms.is_some_and(|e| e > bake_ms));
                prop_assert!(
                    !too_short,
                    "progressed with a bake time too short: {}",
                    ctx()
                );
            }
        }
        if matches!(
            d.action.kind(),
            Some(ActionKind::SetCanaryPercent | ActionKind::PromoteCanary)
        ) {
            // Too few requests to judge is the operator's call.
            let min = self.stage.min_requests as f64;
            let m =
                sane.filter(|m| m.count < min || m.error_rate() <= self.stage.error_rate_threshold);
            prop_assert!(
                m.is_some(),
                "progressed on metrics {:?}: {}",
                signals.canary_metrics,
                ctx()
            );
            if automatic {
                prop_assert!(
                    m.is_some_and(
                        |m| m.count >= min && m.error_rate() <= self.stage.error_rate_threshold
                    ),
                    "stepped on too few requests: {}",
                    ctx()
                );
            }
        }

        // Progress is confirmed on a fresh read, and a read like the first
        // confirms it.
        prop_assert_eq!(
            d.confirm_alarms,
            matches!(
                d.action.kind(),
                Some(
                    ActionKind::SetCanaryPercent
                        | ActionKind::PromoteCanary
                        | ActionKind::RecordKnownGood
                )
            )
        );
        if d.confirm_alarms {
            let confirmed = confirm(
                &self.stage,
                &self.snap,
                &d.record,
                &signals.alarms,
                self.now,
            );
            prop_assert!(
                confirmed.is_ok(),
                "the same read withdrew it: {:?}: {}",
                confirmed,
                ctx()
            );
        }

        // Tidegate's own promotion leftover goes first (or with a rollback
        // that clears it).
        if automatic {
            if let Some(c) = &self.snap.canary {
                let ours = self.record.zeroed_canary.as_deref() == Some(c.deployment_id.as_str());
                if ours && !active {
                    prop_assert!(
                        matches!(
                            d.action,
                            Action::RemoveCanary {
                                reason: RemoveReason::PromotionLeftover,
                                ..
                            } | Action::RollbackStage {
                                clears_leftover_canary: true,
                                ..
                            }
                        ),
                        "promotion leftover kept: {}",
                        ctx()
                    );
                }
            }
        }

        self.check_plan(d)
            .map_err(|e| TestCaseError::fail(format!("{e}: {}", ctx())))?;
        self.check_record(d, trigger)
            .map_err(|e| TestCaseError::fail(format!("{e}: {}", ctx())))?;

        // One stage rollback per alarm transition (a dry-run changes
        // nothing, so it may well say the same thing again).
        if d.dry_run {
            return Ok(());
        }
        if let Action::RollbackStage {
            reason: RollbackReason::StageAlarm { alarm },
            ..
        } = &d.action
        {
            let since = readings[alarm.as_str()].since_ms.unwrap_or_default();
            prop_assert!(
                !self.acted.contains(&(alarm.clone(), since)),
                "second rollback for {alarm}@{since}: {}",
                ctx()
            );
        }
        if d.action.kind().is_some_and(ActionKind::is_rollback) {
            // Everything the rollback settled counts as acted on.
            for a in ALARMS {
                let r = readings.get(a).copied().unwrap_or(self.alarms[a]);
                if let (Some(t), Some(s)) = (d.record.handled_through(a), r.since_ms) {
                    if t == s && r.state == AlarmState::Alarm {
                        self.acted.insert((a.to_owned(), t));
                    }
                }
            }
        }
        Ok(())
    }

    /// The plan's shape: it starts from the stage decided on, its steps
    /// chain, a canary removal is one request, and no stage variable is
    /// written but by promotion's copy.
    fn check_plan(&self, d: &Decision) -> Result<(), TestCaseError> {
        prop_assert_eq!(&d.expectation, &Expectation::of(&self.snap));
        if let Some(first) = d.plan.first() {
            prop_assert_eq!(&first.expect, &d.expectation);
        }
        for pair in d.plan.windows(2) {
            prop_assert_eq!(&pair[0].after, &pair[1].expect, "steps do not chain");
        }
        if matches!(d.action, Action::RemoveCanary { .. }) {
            prop_assert_eq!(d.plan.len(), 1);
            let ops = &d.plan[0].ops;
            prop_assert!(
                ops.len() == 1
                    && ops[0].op == PatchOpKind::Remove
                    && ops[0].path == "/canarySettings",
                "{:?}",
                ops
            );
        }
        for op in d.plan.iter().flat_map(|s| &s.ops) {
            if op.path.starts_with("/variables") {
                prop_assert!(
                    matches!(d.action, Action::PromoteCanary { .. })
                        && op.op == PatchOpKind::Copy
                        && op.path == "/variables"
                        && op.from.as_deref() == Some("/canarySettings/stageVariableOverrides"),
                    "a plan writes a stage variable: {:?}",
                    op
                );
            }
        }
        Ok(())
    }

    /// The record after the decision describes the stage decided on.
    fn check_record(&self, d: &Decision, trigger: &Trigger) -> Result<(), TestCaseError> {
        let r = &d.record;
        prop_assert!(r.handled.keys().all(|a| ALARMS.contains(&a.as_str())));
        if r.paused.as_ref().is_some_and(|p| !p.holds_at(self.now)) {
            prop_assert!(false, "an expired pause was kept: {:?}", r.paused);
        }
        match &d.action {
            Action::RemoveCanary { .. } | Action::RollbackStage { .. } => {
                prop_assert_eq!(&r.step, &None);
                prop_assert_eq!(&r.zeroed_canary, &None);
            }
            Action::PromoteCanary { deployment, .. } => {
                prop_assert_eq!(&r.step, &None);
                prop_assert_eq!(r.zeroed_canary.as_deref(), Some(deployment.as_str()));
            }
            Action::SetCanaryPercent {
                deployment_id, to, ..
            } => {
                let step = r.step.as_ref().unwrap();
                prop_assert_eq!(&step.deployment_id, deployment_id);
                prop_assert_eq!(step.percent, *to);
                prop_assert_eq!(step.since_ms, self.now);
            }
            _ if self.canary_active()
                && matches!(
                    d.action,
                    Action::None { .. } | Action::RecordKnownGood { .. }
                ) =>
            {
                let c = self.snap.canary.as_ref().unwrap();
                let step = r.step.as_ref();
                prop_assert!(
                    step.is_some_and(
                        |s| s.deployment_id == c.deployment_id && s.percent == c.percent_traffic
                    ),
                    "step {:?} for canary {:?} ({:?})",
                    step,
                    c,
                    trigger
                );
            }
            _ => {}
        }
        if let Action::StartCanary {
            deployment_id,
            percent,
        } = &d.action
        {
            let step = r.step.as_ref().unwrap();
            prop_assert_eq!(&step.deployment_id, deployment_id);
            prop_assert_eq!(step.percent, *percent);
            prop_assert_eq!(step.canary_since_ms, self.now);
            prop_assert!(!self.canary_active(), "started over an active canary");
            return Ok(());
        }
        if !self.canary_active() && !matches!(d.action, Action::SetCanaryPercent { .. }) {
            prop_assert_eq!(&r.step, &None);
        }
        // The canary's metric window starts no earlier than the canary.
        if let (Some(step), Some(c)) = (&r.step, &self.snap.canary) {
            let appeared = self.canary_appeared[&c.deployment_id];
            prop_assert!(
                step.canary_since_ms >= appeared,
                "canary {} since {} but appeared at {}",
                c.deployment_id,
                step.canary_since_ms,
                appeared
            );
            prop_assert_eq!(canary_since(r, &self.snap, self.now), step.canary_since_ms);
        }
        Ok(())
    }

    /// Carries out a decision as the adapter does: confirm progress on
    /// `fresh` alarms, send the plan step by step (re-checking each step's
    /// expectation, each landing where it says), then write the record on
    /// the version read. Returns whether anything was written.
    fn carry_out(
        &mut self,
        d: &Decision,
        fresh: &BTreeMap<String, AlarmReading>,
        landing: Landing,
    ) -> Result<bool, TestCaseError> {
        if d.dry_run || !d.writes() {
            return Ok(false);
        }
        if d.confirm_alarms && confirm(&self.stage, &self.snap, &d.record, fresh, self.now).is_err()
        {
            return Ok(false); // withdrawn
        }
        let mut s = self.snap.clone();
        let mut applied = 0;
        for (i, step) in d.plan.iter().enumerate() {
            if landing == Landing::FirstStepOnly && i == 1 {
                break;
            }
            let check = step.expect.check(&s);
            prop_assert!(check.is_ok(), "step {i}: {check:?} for {}", d.action);
            let next = simulate(&s, &step.ops);
            prop_assert!(next.is_ok(), "step {i}: {next:?} for {}", d.action);
            s = next.unwrap();
            let landed = step.after.check(&s);
            prop_assert!(
                landed.is_ok(),
                "step {i} landed as {landed:?} for {}",
                d.action
            );
            applied += 1;
        }
        prop_assert!(
            s.variables == self.snap.variables || matches!(d.action, Action::PromoteCanary { .. }),
            "variables changed by {}",
            d.action
        );
        // A started canary's window opens when it was decided on: no other
        // canary had traffic since (start is refused over an active one).
        if let Some(c) = &s.canary {
            if self.snap.canary.as_ref().map(|o| &o.deployment_id) != Some(&c.deployment_id) {
                self.canary_appeared
                    .insert(c.deployment_id.clone(), d.audit.at_ms);
            }
        }
        self.snap = s;
        if (d.plan.is_empty() || applied > 0) && d.record_changed {
            self.record = d.record.clone();
            self.version += 1;
        }
        Ok(true)
    }

    fn decide_and_check(&mut self, trigger: &Trigger) -> Result<Decision, TestCaseError> {
        let (d, signals) = self.decide(trigger.clone());
        self.log.push(format!(
            "t+{} {:?} -> {}",
            self.now % 10_000_000,
            trigger,
            d.action
        ));
        self.check(&d, trigger, &signals)?;
        Ok(d)
    }

    fn set_alarm(&mut self, i: usize, state: AlarmState) {
        let a = ALARMS[i];
        let reading = self.alarms[a];
        if reading.state != state {
            self.now += 1; // transitions of one alarm are never simultaneous
            self.alarms.insert(
                a.into(),
                AlarmReading {
                    state,
                    since_ms: Some(self.now),
                    ..reading
                },
            );
            self.transitions.push(Transition {
                alarm: a.into(),
                new_state: state,
                previous_state: Some(reading.state),
                timestamp_ms: self.now,
                suppressed: reading.suppressed,
            });
        }
    }

    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Advance(ms) => self.now += ms,
            Op::SetAlarm(i, state) => self.set_alarm(*i, *state),
            Op::Unreadable(i, on) => {
                if *on {
                    self.unreadable.insert(ALARMS[*i].into());
                } else {
                    self.unreadable.remove(ALARMS[*i]);
                }
            }
            Op::Suppress(i, on) => {
                if let Some(r) = self.alarms.get_mut(ALARMS[*i]) {
                    r.suppressed = *on;
                }
            }
            Op::EvalSpan(i, minutes) => {
                if let Some(r) = self.alarms.get_mut(ALARMS[*i]) {
                    r.evaluation_ms = minutes.map(|m| m * MIN);
                }
            }
            Op::Metrics(m) => self.metrics = *m,
            Op::DeleteDeployment(i) => {
                // API Gateway refuses to delete a deployment a stage uses.
                let in_use: Vec<&str> = std::iter::once(self.snap.deployment_id.as_str())
                    .chain(self.snap.canary.as_ref().map(|c| c.deployment_id.as_str()))
                    .collect();
                let d = format!("d{i}");
                if !in_use.contains(&d.as_str()) {
                    self.deployments.remove(&d);
                }
            }
            Op::GetDeploymentFails(on) => self.get_deployment_fails = *on,
            Op::DeployCanary(p, overrides) => {
                if self.snap.canary.is_none() {
                    let d = self.new_deployment();
                    self.canary_appeared.insert(d.clone(), self.now);
                    self.snap.canary = Some(CanarySnapshot {
                        deployment_id: d,
                        percent_traffic: *p,
                        stage_variable_overrides: if *overrides {
                            [("backend".to_owned(), "v2".to_owned())].into()
                        } else {
                            BTreeMap::new()
                        },
                    });
                }
            }
            Op::DeployDirect => {
                if self.snap.canary.is_none() {
                    self.snap.deployment_id = self.new_deployment();
                }
            }
            Op::NudgeCanary(p) => {
                if let Some(c) = self.snap.canary.as_mut() {
                    c.percent_traffic = *p;
                }
            }
            Op::Trigger(t) => {
                let Some(trigger) = self.trigger(t) else {
                    return Ok(());
                };
                let d = self.decide_and_check(&trigger)?;
                let fresh = self.read_alarms();
                self.carry_out(&d, &fresh, Landing::All)?;
            }
            Op::FireBeforeCarryingOut(t, i) => {
                let Some(trigger) = self.trigger(t) else {
                    return Ok(());
                };
                let d = self.decide_and_check(&trigger)?;
                let before = (self.snap.clone(), self.version);
                let was = self.alarms[ALARMS[*i]];
                self.set_alarm(*i, AlarmState::Alarm);
                let relevant = ALARMS[*i] != CANARY_ALARM || self.canary_active();
                let fired = was.state != AlarmState::Alarm
                    && relevant
                    && !self.unreadable.contains(ALARMS[*i]);
                let fresh = self.read_alarms();
                let wrote = self.carry_out(&d, &fresh, Landing::All)?;
                if d.confirm_alarms && fired {
                    prop_assert!(!wrote, "progress outran an alarm: {}", d.action);
                    prop_assert_eq!(&self.snap, &before.0);
                    prop_assert_eq!(self.version, before.1);
                }
            }
            Op::CutOff(t) => {
                let Some(trigger) = self.trigger(t) else {
                    return Ok(());
                };
                let d = self.decide_and_check(&trigger)?;
                let fresh = self.read_alarms();
                self.carry_out(&d, &fresh, Landing::FirstStepOnly)?;
            }
            Op::Race(a, b) => {
                let (Some(ta), Some(tb)) = (self.trigger(a), self.trigger(b)) else {
                    return Ok(());
                };
                let (da, sa) = self.decide(ta.clone());
                let (db, _) = self.decide(tb.clone());
                self.log.push(format!(
                    "race {:?} -> {} | {:?} -> {}",
                    ta, da.action, tb, db.action
                ));
                self.check(&da, &ta, &sa)?;
                let read_version = self.version;
                let fresh = self.read_alarms();
                self.carry_out(&da, &fresh, Landing::All)?;
                if !da.dry_run && !da.plan.is_empty() {
                    if let Some(first) = db.plan.first() {
                        prop_assert!(
                            first.expect.check(&self.snap).is_err(),
                            "the loser of a race did not back off: {} then {}",
                            da.action,
                            db.action
                        );
                    }
                }
                // Had it anything to write, its record write (conditional on
                // the version it read) would fail too: the loser re-reads and
                // decides again.
                prop_assert!(self.version == read_version || !da.dry_run);
                let db = self.decide_and_check(&tb)?;
                let fresh = self.read_alarms();
                self.carry_out(&db, &fresh, Landing::All)?;
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn safety_holds_over_random_histories(
        stage in arb_stage(),
        ops in proptest::collection::vec(arb_op(), 1..120),
    ) {
        let mut w = World::new(stage);
        for op in &ops {
            w.run(op)?;
        }
    }

    #[test]
    fn unmanaged_stages_are_never_written(
        stage in arb_stage(),
        ops in proptest::collection::vec(arb_op(), 1..30),
        name in "[a-z]{1,6}",
        api in "[a-z0-9]{1,6}",
    ) {
        let mut w = World::new(stage);
        for op in &ops {
            w.run(op)?;
        }
        let mut other = w.snap.clone();
        other.stage_name = name;
        other.rest_api_id = api;
        prop_assume!(other.stage_name != "prod" || other.rest_api_id != "api1");
        let signals = w.signals(&other, &w.record, None);
        for trigger in [
            Trigger::Schedule,
            Trigger::Manual {
                command: ManualCommand::Rollback,
                reason: "x".into(),
                operator: "key:x".into(),
                until_ms: None,
                start: None,
            },
        ] {
            let d = decide(&w.stage, &other, &w.record, &signals, trigger, w.now);
            prop_assert!(d.plan.is_empty());
            prop_assert!(!d.writes());
            prop_assert!(matches!(d.action, Action::None { .. }), "{}", d.action);
        }
    }
}
