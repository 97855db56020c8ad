//! Manual gates and the operator's advance, approve and start (issue 17).

use super::*;
use crate::rollout::trigger::StartCanary;

/// Canary d2 at `p` % with steps 5, 25, 50 (approve), 100; baked, healthy.
fn gated(p: f64) -> Case {
    let mut c = Case::canary(p);
    c.stage.canary_steps = vec![
        CanaryStep::at(5.0),
        CanaryStep::at(25.0),
        CanaryStep::at(50.0).gated(),
        CanaryStep::at(100.0),
    ];
    c
}

fn start_case(deployment: &str, steps: Option<Vec<CanaryStep>>) -> Case {
    let mut c = Case::stable().manual(ManualCommand::Start);
    if let Trigger::Manual { start, .. } = &mut c.trigger {
        *start = Some(StartCanary {
            deployment: deployment.into(),
            steps,
        });
    }
    c
}

fn approved(c: Case) -> Case {
    c.book(|b| {
        b.approval = Some(Approval {
            deployment_id: "d2".into(),
            percent: 50.0,
            by: "key:oncall".into(),
            reason: "looks good".into(),
            at_ms: NOW - MIN,
        });
    })
}

#[test]
fn the_schedule_waits_at_an_unapproved_gate() {
    let d = gated(50.0).run();
    assert!(
        matches!(hold(&d), Some(Hold::AwaitingApproval { deployment, percent }) if deployment == "d2" && *percent == 50.0),
        "{:?}",
        d.action
    );
    assert!(d.plan.is_empty() && !d.attention);
    assert_eq!(
        awaiting_approval(&gated(50.0).stage, &gated(50.0).book, &gated(50.0).snap),
        Some(("d2".to_owned(), 50.0))
    );
}

#[test]
fn the_schedule_moves_into_a_gated_step_and_past_an_approved_one() {
    let d = gated(25.0).run();
    assert!(matches!(d.action, Action::SetCanaryPercent { to, .. } if to == 50.0));
    let d = approved(gated(50.0)).run();
    assert!(matches!(d.action, Action::SetCanaryPercent { to, .. } if to == 100.0));
}

#[test]
fn a_gate_still_bakes_and_safety_still_acts() {
    let c = gated(50.0).book(|b| b.step.as_mut().into_iter().for_each(|s| s.since_ms = NOW));
    assert!(matches!(hold(&c.run()), Some(Hold::Baking { .. })));
    let d = gated(50.0)
        .alarm(CANARY_ALARM, AlarmState::Alarm, NOW - 1000)
        .run();
    assert!(matches!(d.action, Action::RemoveCanary { .. }));
}

#[test]
fn approve_records_who_and_why_only_at_a_gate() {
    let d = gated(50.0).manual(ManualCommand::Approve).run();
    assert!(matches!(hold(&d), Some(Hold::Approved { .. })));
    assert!(d.plan.is_empty() && d.record_changed);
    let a = d.record.approval.as_ref().expect("approval kept");
    assert_eq!(
        (a.deployment_id.as_str(), a.percent, a.by.as_str()),
        ("d2", 50.0, "key:oncall")
    );
    assert!(d.record.is_approved("d2", 50.0));
    for c in [gated(25.0), approved(gated(50.0)), Case::stable()] {
        let d = c.manual(ManualCommand::Approve).run();
        assert_eq!(hold(&d), Some(&Hold::NotAwaitingApproval));
        assert!(!d.record_changed);
    }
}

#[test]
fn advance_moves_one_step_now_but_not_past_a_gate() {
    // Not baked, paused, in cooldown: advance goes anyway.
    let c = gated(5.0)
        .book(|b| {
            b.step.as_mut().into_iter().for_each(|s| s.since_ms = NOW);
            b.paused = Some(Pause::new(NOW - MIN, "key:x", "hold", None));
            b.last_rollback_ms = Some(NOW - MIN);
        })
        .manual(ManualCommand::Advance);
    let d = c.run();
    assert!(
        matches!(d.action, Action::SetCanaryPercent { from, to, .. } if from == 5.0 && to == 25.0)
    );
    assert!(d.confirm_alarms);
    let d = gated(50.0).manual(ManualCommand::Advance).run();
    assert!(matches!(hold(&d), Some(Hold::AwaitingApproval { .. })));
    assert!(d.plan.is_empty());
    let d = approved(gated(50.0)).manual(ManualCommand::Advance).run();
    assert!(matches!(d.action, Action::SetCanaryPercent { to, .. } if to == 100.0));
    let d = gated(100.0).manual(ManualCommand::Advance).run();
    assert!(matches!(d.action, Action::PromoteCanary { .. }));
}

#[test]
fn advance_never_passes_a_failing_health_check() {
    let d = gated(5.0)
        .alarm(STAGE_ALARM, AlarmState::Alarm, NOW - 1000)
        .manual(ManualCommand::Advance)
        .run();
    assert!(d.action.kind() != Some(ActionKind::SetCanaryPercent));
    let d = gated(5.0)
        .metrics(500.0, 1000.0)
        .manual(ManualCommand::Advance)
        .run();
    assert!(matches!(hold(&d), Some(Hold::CanaryUnhealthy { .. })));
    let d = gated(5.0).no_metrics().manual(ManualCommand::Advance).run();
    assert_eq!(hold(&d), Some(&Hold::MetricsUnreadable));
    let d = Case::stable().manual(ManualCommand::Advance).run();
    assert_eq!(hold(&d), Some(&Hold::NoActiveCanaryToAdvance));
}

#[test]
fn start_creates_the_canary_at_its_first_step() {
    let c = start_case("d2", None);
    let d = c.run();
    assert_eq!(
        d.action,
        Action::StartCanary {
            deployment_id: "d2".into(),
            percent: 5.0
        }
    );
    let after = replay(&c.snap, &d).expect("plan replays");
    let canary = after.canary.expect("canary settings");
    assert_eq!(
        (canary.deployment_id.as_str(), canary.percent_traffic),
        ("d2", 5.0)
    );
    assert_eq!(after.deployment_id, "d1");
    let step = d.record.step.as_ref().expect("step mark");
    assert_eq!(
        (step.percent, step.since_ms, step.canary_since_ms),
        (5.0, NOW, NOW)
    );
    assert_eq!(d.record.canary_plan, None);
}

#[test]
fn start_with_its_own_steps_keeps_them_for_that_canary() {
    let steps = vec![CanaryStep::at(20.0).gated(), CanaryStep::at(100.0)];
    let d = start_case("d2", Some(steps.clone())).run();
    assert!(matches!(d.action, Action::StartCanary { percent, .. } if percent == 20.0));
    let plan = d.record.canary_plan.clone().expect("plan kept");
    assert_eq!((plan.deployment_id.as_str(), plan.steps), ("d2", steps));
    // The next run at 20 %: the start's gate holds, not the stage's steps.
    let mut c = Case::canary(20.0).book(|b| b.canary_plan = d.record.canary_plan.clone());
    assert!(
        matches!(hold(&c.run()), Some(Hold::AwaitingApproval { percent, .. }) if *percent == 20.0)
    );
    c = c.manual(ManualCommand::Approve);
    let approved = c.run();
    c.book = approved.record;
    c.trigger = Trigger::Schedule;
    assert!(matches!(c.run().action, Action::SetCanaryPercent { to, .. } if to == 100.0));
}

#[test]
fn start_replaces_leftover_settings_in_two_requests() {
    let mut c = start_case("d3", None);
    c.snap.canary = Some(CanarySnapshot {
        deployment_id: "d1".into(),
        percent_traffic: 0.0,
        stage_variable_overrides: [("color".to_owned(), "blue".to_owned())].into(),
    });
    let d = c.run();
    assert_eq!(d.plan.len(), 2);
    let after = replay(&c.snap, &d).expect("plan replays");
    let canary = after.canary.expect("canary settings");
    assert_eq!(canary.deployment_id, "d3");
    assert!(canary.stage_variable_overrides.is_empty());
}

#[test]
fn start_is_refused_when_it_cannot_be_right() {
    let mut active = Case::canary(10.0).manual(ManualCommand::Start);
    if let Trigger::Manual { start, .. } = &mut active.trigger {
        *start = Some(StartCanary {
            deployment: "d3".into(),
            steps: None,
        });
    }
    assert!(
        matches!(hold(&active.run()), Some(Hold::CanaryAlreadyActive { deployment }) if deployment == "d2")
    );
    for c in [
        start_case("", None),
        start_case("d1", None),
        start_case("d2", Some(vec![])),
        start_case("d2", Some(vec![CanaryStep::at(50.0), CanaryStep::at(10.0)])),
        start_case(
            "d2",
            Some(vec![CanaryStep::at(f64::NAN), CanaryStep::at(100.0)]),
        ),
        start_case("d2", Some(vec![CanaryStep::at(10.0)])),
        Case::stable().manual(ManualCommand::Start),
    ] {
        let d = c.run();
        assert!(
            matches!(hold(&d), Some(Hold::InvalidStart { .. })),
            "{:?}",
            d.action
        );
        assert!(d.plan.is_empty() && !d.record_changed);
    }
    let d = start_case("d9", None).without_deployment("d9").run();
    assert!(matches!(hold(&d), Some(Hold::DeploymentMissing { .. })));
    let d = start_case("d9", None).run();
    assert!(matches!(hold(&d), Some(Hold::DeploymentUnverified { .. })));
    let started = start_case("d9", None);
    assert!(
        deployments_to_check(&started.book, &started.snap, Some(&started.trigger))
            .contains(&"d9".to_owned())
    );
}

#[test]
fn the_canary_leaving_forgets_its_approval_and_plan() {
    let c = approved(gated(50.0)).book(|b| {
        b.canary_plan = Some(CanaryPlan {
            deployment_id: "d2".into(),
            steps: vec![CanaryStep::at(50.0).gated(), CanaryStep::at(100.0)],
        });
    });
    let d = c.manual(ManualCommand::Rollback).run();
    assert!(matches!(d.action, Action::RemoveCanary { .. }));
    assert_eq!((d.record.approval, d.record.canary_plan), (None, None));
}
