//! Glue between a parsed event ([`rollout::events::parse`]) and the work:
//! which managed stages to evaluate, and with which trigger.

use tidegate_policy::config::{ManagedStage, RollbackPolicy};
use tidegate_policy::rollout::{self, Input, Trigger};

/// One stage to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct Job<'p> {
    /// The managed stage.
    pub stage: &'p ManagedStage,
    /// Why.
    pub trigger: Trigger,
}

/// The jobs a non-HTTP input asks for: one per (watched alarm event, stage
/// watching it), every stage for a schedule, none otherwise. Alarm events
/// for alarms no stage watches yield nothing (logged by the caller).
pub fn jobs<'p>(policy: &'p RollbackPolicy, input: &Input) -> Vec<Job<'p>> {
    match input {
        Input::Alarms { events, .. } => events
            .iter()
            .flat_map(|ev| {
                rollout::stages_watching(policy, &ev.transition.alarm)
                    .into_iter()
                    .map(|stage| Job {
                        stage,
                        trigger: ev.trigger(),
                    })
            })
            .collect(),
        Input::Schedule { .. } => policy
            .stages
            .iter()
            .map(|stage| Job {
                stage,
                trigger: Trigger::Schedule,
            })
            .collect(),
        Input::Http(_) | Input::Ignored { .. } => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidegate_policy::rollout::AlarmState;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/tests/fixtures/events/",
                $name
            ))
        };
    }

    fn parse(bytes: &[u8]) -> Input {
        let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        rollout::parse(&v).unwrap()
    }

    fn policy() -> RollbackPolicy {
        crate::config::load(
            crate::config::tests::env(&[(crate::config::CONFIG_ENV, crate::config::tests::CONFIG)]),
            |_| Err("no files".into()),
        )
        .unwrap()
        .policy
    }

    #[test]
    fn eventbridge_alarm_targets_the_watching_stage() {
        let p = policy();
        let input = parse(fixture!("eventbridge-alarm-metric.json"));
        let jobs = jobs(&p, &input);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].stage.stage, "prod");
        match &jobs[0].trigger {
            Trigger::AlarmTransition(t) => {
                assert_eq!(t.alarm, "orders-api-prod-canary-5xx-rate");
                assert_eq!(t.new_state, AlarmState::Alarm);
            }
            other => panic!("unexpected trigger {other:?}"),
        }
    }

    #[test]
    fn every_alarm_shape_gives_a_transition() {
        let p = policy();
        for bytes in [
            &fixture!("eventbridge-alarm-metric-math.json")[..],
            &fixture!("eventbridge-alarm-composite.json")[..],
            &fixture!("sns-alarm-metric.json")[..],
            &fixture!("sns-alarm-metric-math.json")[..],
            &fixture!("alarm-lambda-action.json")[..],
            &fixture!("sns-two-records-one-bad.json")[..],
        ] {
            let input = parse(bytes);
            let Input::Alarms { events, .. } = &input else {
                panic!("not alarms: {input:?}");
            };
            assert!(!events.is_empty());
            // Jobs only for alarms the config watches.
            for job in jobs(&p, &input) {
                let Trigger::AlarmTransition(t) = &job.trigger else {
                    panic!("not a transition");
                };
                assert!(job
                    .stage
                    .stage_alarms
                    .iter()
                    .chain(&job.stage.canary_alarms)
                    .any(|a| *a == t.alarm));
            }
        }
    }

    #[test]
    fn schedules_evaluate_every_stage() {
        let p = policy();
        for bytes in [
            &fixture!("scheduled-event.json")[..],
            &fixture!("scheduler-event.json")[..],
        ] {
            let jobs = jobs(&p, &parse(bytes));
            assert_eq!(jobs.len(), p.stages.len());
            assert!(jobs.iter().all(|j| j.trigger == Trigger::Schedule));
        }
    }

    #[test]
    fn other_inputs_give_no_jobs() {
        let p = policy();
        let input = parse(fixture!("eventbridge-alarm-configuration-change.json"));
        assert!(matches!(input, Input::Ignored { .. }));
        assert!(jobs(&p, &input).is_empty());
        let http = parse(fixture!("apigw-v2-request.json"));
        assert!(jobs(&p, &http).is_empty());
    }
}
