//! Property tests of the rollout policy over random histories: alarms flap,
//! events are delivered late, twice or never, deployments come and go,
//! people deploy, pause and promote, two invocations race — and the world
//! (a simulated API Gateway stage) is changed only by carrying out the
//! decisions' plans, as the Lambda would.
//!
//! Whatever happens:
//! - the stage is never pointed at (or stepped/promoted to) a deployment that
//!   does not exist;
//! - no alarm transition causes two stage rollbacks;
//! - an automatic decision never leaves an active canary in place while a
//!   watched alarm is in ALARM (level-triggered safety);
//! - nothing progresses (step, promote, known-good, cleanup) while a watched
//!   alarm is unreadable or has no data;
//! - every plan runs on the stage it was made for, step by step, lands where
//!   each step says, and writes no stage variable (only AWS's promote copies
//!   the canary's overrides);
//! - of two decisions made on the same read, the second's plan no longer
//!   matches the stage once the first has changed it;
//! - a stage that is not the managed one is never written.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use tidegate_policy::config::{ManagedStage, RestApiRef};
use tidegate_policy::rollout::{
    decide, deployments_to_check, simulate, Action, ActionKind, AlarmReading, AlarmState,
    CanaryMetrics, CanarySnapshot, Decision, DeploymentCheck, ManualCommand, MetricsReading,
    PatchOpKind, RemoveReason, RollbackReason, Signals, StageRecord, StageSnapshot, Transition,
    Trigger,
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
    Metrics(Option<(u32, u32)>),
    DeleteDeployment(usize),
    DeployCanary(f64),
    DeployDirect,
    NudgeCanary(f64),
    Trigger(Trig),
    Race(Trig, Trig),
}

#[derive(Debug, Clone)]
enum Trig {
    Schedule,
    Deliver(prop::sample::Index),
    Manual(ManualCommand),
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
        1 => prop_oneof![
            2 => Just(ManualCommand::Rollback),
            2 => Just(ManualCommand::Promote),
            1 => Just(ManualCommand::Pause),
            3 => Just(ManualCommand::Resume),
        ]
        .prop_map(Trig::Manual),
    ]
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..12 * MIN).prop_map(Op::Advance),
        3 => (0..ALARMS.len(), arb_state()).prop_map(|(i, s)| Op::SetAlarm(i, s)),
        1 => (0..ALARMS.len(), prop::bool::weighted(0.3)).prop_map(|(i, u)| Op::Unreadable(i, u)),
        2 => proptest::option::weighted(0.9, (0u32..40, 0u32..400)).prop_map(Op::Metrics),
        1 => (0usize..12).prop_map(Op::DeleteDeployment),
        3 => prop_oneof![Just(0.0), Just(3.0), Just(5.0), Just(10.0), Just(100.0)].prop_map(Op::DeployCanary),
        1 => Just(Op::DeployDirect),
        1 => prop_oneof![Just(0.0), Just(7.0), Just(50.0), Just(100.0)].prop_map(Op::NudgeCanary),
        8 => arb_trig().prop_map(Op::Trigger),
        2 => (arb_trig(), arb_trig()).prop_map(|(a, b)| Op::Race(a, b)),
    ]
}

fn arb_stage() -> impl Strategy<Value = ManagedStage> {
    (
        prop_oneof![
            Just(vec![5.0, 10.0, 25.0, 50.0, 100.0]),
            Just(vec![100.0]),
            Just(vec![10.0, 100.0]),
        ],
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

struct World {
    stage: ManagedStage,
    snap: StageSnapshot,
    record: StageRecord,
    deployments: BTreeSet<String>,
    next_deployment: usize,
    alarms: BTreeMap<String, AlarmReading>,
    unreadable: BTreeSet<String>,
    metrics: Option<CanaryMetrics>,
    now: u64,
    transitions: Vec<Transition>,
    /// Alarm transitions (alarm, time) some rollback already acted on.
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
                rest_api_name: None,
                stage_name: "prod".into(),
                deployment_id: "d0".into(),
                canary: None,
                last_updated_ms: None,
                variables: [("backend".to_owned(), "v1".to_owned())].into(),
            },
            record: StageRecord::default(),
            deployments: ["d0".to_owned()].into(),
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
            metrics: Some(CanaryMetrics {
                errors_5xx: 0.0,
                count: 500.0,
            }),
            now,
            transitions: Vec::new(),
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

    fn signals(&self) -> Signals {
        Signals {
            alarms: self
                .alarms
                .iter()
                .filter(|(a, _)| !self.unreadable.contains(*a))
                .map(|(a, r)| (a.clone(), *r))
                .collect(),
            canary_metrics: match self.metrics {
                Some(m) => MetricsReading::Read(m),
                None => MetricsReading::Unreadable {
                    reason: "test".into(),
                },
            },
            deployments: deployments_to_check(&self.record, &self.snap)
                .into_iter()
                .map(|d| {
                    let check = if self.deployments.contains(&d) {
                        DeploymentCheck::Exists
                    } else {
                        DeploymentCheck::Missing
                    };
                    (d, check)
                })
                .collect(),
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
            Trig::Manual(command) => Trigger::Manual {
                command: *command,
                reason: "ops".into(),
                operator: "key:ops".into(),
                until_ms: None,
            },
        })
    }

    fn decide(&self, trigger: Trigger) -> Decision {
        decide(
            &self.stage,
            &self.snap,
            &self.record,
            &self.signals(),
            trigger,
            self.now,
        )
    }

    /// Checks the properties of one decision made on the current world.
    fn check(&mut self, d: &Decision, trigger: &Trigger) -> Result<(), TestCaseError> {
        let ctx = || {
            format!(
                "{} / {:?}\nlog:\n{}",
                d.action,
                trigger,
                self.log.join("\n")
            )
        };
        // Never to a deployment that does not exist.
        let target = match &d.action {
            Action::RollbackStage { to_deployment, .. } => Some(to_deployment),
            Action::PromoteCanary { deployment, .. } => Some(deployment),
            Action::SetCanaryPercent { deployment_id, .. } => Some(deployment_id),
            _ => None,
        };
        if let Some(t) = target {
            prop_assert!(
                self.deployments.contains(t),
                "unknown deployment {t}: {}",
                ctx()
            );
        }
        // Nothing progresses while a watched alarm is unreadable or has no
        // data.
        let canary_active = self
            .snap
            .canary
            .as_ref()
            .is_some_and(|c| c.is_active(&self.snap.deployment_id));
        let relevant = |a: &str| STAGE_ALARMS.contains(&a) || (canary_active && a == CANARY_ALARM);
        // (An operator may promote on alarms without data: their call, as
        // with too few requests; never on unreadable ones.)
        let operator = matches!(trigger, Trigger::Manual { .. });
        let unreadable = self.unreadable.iter().any(|a| relevant(a))
            || (!operator
                && self.alarms.iter().any(|(a, r)| {
                    relevant(a)
                        && !self.unreadable.contains(a)
                        && r.state == AlarmState::InsufficientData
                }));
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
        prop_assert!(
            !(unreadable && progression),
            "progressed while unreadable or without data: {}",
            ctx()
        );
        // Level-triggered canary safety: an automatic decision never leaves
        // an active canary in place while a readable watched alarm fires.
        let automatic = !operator;
        let firing = self.alarms.iter().any(|(a, r)| {
            relevant(a) && !self.unreadable.contains(a) && r.state == AlarmState::Alarm
        });
        if automatic && canary_active && firing {
            prop_assert!(
                matches!(d.action, Action::RemoveCanary { .. }),
                "an unhealthy canary was left in place: {}",
                ctx()
            );
        }
        // One rollback per alarm transition (a dry-run changes nothing, so it
        // may well say the same thing again).
        if d.dry_run {
            return Ok(());
        }
        // (Canary removals are level-triggered: a new canary on a stage whose
        // alarm still fires is removed again, by design.)
        let alarm = match &d.action {
            Action::RollbackStage {
                reason: RollbackReason::StageAlarm { alarm },
                ..
            } => Some(alarm),
            _ => None,
        };
        if let Some(alarm) = alarm {
            let since = match trigger {
                Trigger::AlarmTransition(t) if &t.alarm == alarm => t.timestamp_ms,
                _ => self.alarms[alarm].since_ms.unwrap_or_default(),
            };
            let fresh = self.acted.insert((alarm.clone(), since));
            prop_assert!(fresh, "second rollback for {alarm}@{since}: {}", ctx());
        }
        if matches!(d.action, Action::RollbackStage { .. }) {
            // Everything the rollback settled counts as acted on.
            for a in ALARMS {
                if let Some(t) = d.record.handled_through(a) {
                    if self.alarms[a].since_ms == Some(t)
                        && self.alarms[a].state == AlarmState::Alarm
                    {
                        self.acted.insert((a.to_owned(), t));
                    }
                }
            }
        }
        Ok(())
    }

    /// Carries out a decision, step by step, as the adapter does.
    fn carry_out(&mut self, d: &Decision) -> Result<(), TestCaseError> {
        if d.dry_run {
            return Ok(());
        }
        let mut s = self.snap.clone();
        for (i, step) in d.plan.iter().enumerate() {
            let check = step.expect.check(&s);
            prop_assert!(check.is_ok(), "step {i}: {check:?} for {}", d.action);
            for op in &step.ops {
                let copies_overrides = op.op == PatchOpKind::Copy && op.path == "/variables";
                prop_assert!(
                    !op.path.starts_with("/variables") || copies_overrides,
                    "a plan wrote a stage variable: {op:?} for {}",
                    d.action
                );
            }
            let next = simulate(&s, &step.ops);
            prop_assert!(next.is_ok(), "step {i}: {next:?} for {}", d.action);
            s = next.unwrap();
            let landed = step.after.check(&s);
            prop_assert!(
                landed.is_ok(),
                "step {i} landed elsewhere: {landed:?} for {}",
                d.action
            );
        }
        if matches!(d.action, Action::RemoveCanary { .. }) {
            prop_assert_eq!(d.plan.len(), 1, "a canary is removed in one request");
        }
        self.snap = s;
        self.record = d.record.clone();
        Ok(())
    }

    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Advance(ms) => self.now += ms,
            Op::SetAlarm(i, state) => {
                let a = ALARMS[*i];
                let reading = self.alarms[a];
                if reading.state != *state {
                    self.now += 1; // transitions of one alarm are never simultaneous
                    self.alarms
                        .insert(a.into(), AlarmReading::new(*state, self.now));
                    self.transitions.push(Transition {
                        alarm: a.into(),
                        new_state: *state,
                        previous_state: Some(reading.state),
                        timestamp_ms: self.now,
                        suppressed: false,
                    });
                }
            }
            Op::Unreadable(i, on) => {
                if *on {
                    self.unreadable.insert(ALARMS[*i].into());
                } else {
                    self.unreadable.remove(ALARMS[*i]);
                }
            }
            Op::Metrics(m) => {
                self.metrics = m.map(|(e, c)| CanaryMetrics {
                    errors_5xx: f64::from(e.min(c)),
                    count: f64::from(c),
                })
            }
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
            Op::DeployCanary(p) => {
                if self.snap.canary.is_none() {
                    let d = self.new_deployment();
                    self.snap.canary = Some(CanarySnapshot {
                        deployment_id: d,
                        percent_traffic: *p,
                        stage_variable_overrides: [("backend".to_owned(), "v2".to_owned())].into(),
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
                let d = self.decide(trigger.clone());
                self.log.push(format!(
                    "t+{} {:?} -> {}",
                    self.now % 10_000_000,
                    trigger,
                    d.action
                ));
                self.check(&d, &trigger)?;
                self.carry_out(&d)?;
            }
            Op::Race(a, b) => {
                let (Some(ta), Some(tb)) = (self.trigger(a), self.trigger(b)) else {
                    return Ok(());
                };
                let da = self.decide(ta.clone());
                let db = self.decide(tb.clone());
                self.log.push(format!(
                    "race {:?} -> {} | {:?} -> {}",
                    ta, da.action, tb, db.action
                ));
                self.check(&da, &ta)?;
                self.carry_out(&da)?;
                // The adapter's lease serialises the two; were it to fail,
                // the second's first step no longer matches the stage.
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
                // The loser re-reads and decides again.
                let db = self.decide(tb.clone());
                self.check(&db, &tb)?;
                self.carry_out(&db)?;
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
        let rollback = Trigger::Manual {
            command: ManualCommand::Rollback,
            reason: "x".into(),
            operator: "key:ops".into(),
            until_ms: None,
        };
        for trigger in [Trigger::Schedule, rollback] {
            let d = decide(&w.stage, &other, &w.record, &w.signals(), trigger, w.now);
            prop_assert!(d.plan.is_empty());
            prop_assert!(matches!(d.action, Action::None { .. }), "{}", d.action);
        }
    }
}
