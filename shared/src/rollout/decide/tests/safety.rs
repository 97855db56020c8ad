//! The rules that hold on real AWS and real pipelines (issue 13):
//! level-triggered canary safety, suppressed and muted alarms, no evidence
//! from INSUFFICIENT_DATA, the bake time against the alarms' span, the
//! promotion leftover, re-checks before progress, and each canary's own
//! metric window.

use super::*;
use crate::rollout::metrics::canary_query;

const T: u64 = NOW - 30_000;

fn suppressed_event(c: Case, alarm: &str) -> Case {
    let mut c = c.event(alarm, AlarmState::Alarm, T);
    if let Trigger::AlarmTransition(t) = &mut c.trigger {
        t.suppressed = true;
    }
    c
}

#[test]
fn a_canary_is_removed_whenever_it_is_found_unhealthy() {
    // The transition was handled, the cooldown runs, the stage is paused,
    // the event is a redelivery: none of it keeps bad code in traffic.
    let c = Case::canary(25.0)
        .alarm(CANARY_ALARM, AlarmState::Alarm, T)
        .book(|b| {
            b.mark_handled(CANARY_ALARM, T);
            b.last_rollback_ms = Some(NOW - MIN);
            b.paused = Some(Pause::new(NOW - MIN, "key:ops", "freeze", None));
        });
    for trigger in [
        Trigger::Schedule,
        Trigger::AlarmTransition(Transition {
            alarm: CANARY_ALARM.into(),
            new_state: AlarmState::Alarm,
            previous_state: None,
            timestamp_ms: T,
            suppressed: false,
        }),
    ] {
        let d = Case {
            trigger,
            ..c.clone()
        }
        .run();
        assert!(
            matches!(d.action, Action::RemoveCanary { .. }),
            "{}",
            d.action
        );
        assert_eq!(d.plan.len(), 1);
    }
    // Dry-run decides the same, and is marked so.
    let mut dry = c.clone();
    dry.stage.dry_run = true;
    let d = dry.run();
    assert!(matches!(d.action, Action::RemoveCanary { .. }) && d.dry_run);
    // Its error rate alone is enough too, with every alarm quiet.
    let d = Case::canary(25.0).metrics(50.0, 200.0).run();
    assert!(matches!(
        d.action,
        Action::RemoveCanary {
            reason: RemoveReason::ErrorRate { .. },
            ..
        }
    ));
}

#[test]
fn a_stage_rollback_happens_once_per_transition() {
    // Handled and still in ALARM: no second rollback (attention instead).
    let c = Case::stable()
        .alarm(STAGE_ALARM, AlarmState::Alarm, T)
        .book(|b| b.mark_handled(STAGE_ALARM, T));
    let d = c.run();
    assert!(matches!(hold(&d), Some(Hold::StillAlarming { .. })));
    assert!(d.attention && d.plan.is_empty());
}

#[test]
fn suppressed_and_muted_alarms_trigger_nothing() {
    // The event says so (composite suppression, a mute rule).
    for c in [
        suppressed_event(Case::canary(10.0), CANARY_ALARM),
        suppressed_event(Case::stable(), STAGE_ALARM),
    ] {
        let d = c.run();
        assert!(d.action.kind().is_none(), "{}", d.action);
        assert!(d.plan.is_empty());
    }
    // The read says so (DescribeAlarms' ActionsSuppressedBy).
    let mut c = Case::canary(10.0);
    c.signals.alarms.insert(
        CANARY_ALARM.into(),
        AlarmReading::new(AlarmState::Alarm, T).suppressed(),
    );
    let d = c.run();
    assert!(
        matches!(hold(&d), Some(Hold::AlarmsSuppressed { alarms }) if alarms == &[CANARY_ALARM.to_owned()]),
        "{}",
        d.action
    );
    // And they halt progression: no step on a canary whose alarm is in
    // ALARM, muted or not; the bake restarts.
    assert_eq!(d.record.step.as_ref().map(|s| s.since_ms), Some(NOW));
}

#[test]
fn insufficient_data_is_no_evidence() {
    // Never a rollback…
    let d = Case::stable()
        .event(STAGE_ALARM, AlarmState::InsufficientData, T)
        .run();
    assert!(d.action.kind().is_none(), "{}", d.action);
    // …and no known-good either, however long the deployment has run.
    let d = Case::stable()
        .book(|b| b.live = Some(Mark::new("d1", NOW - 60 * MIN)))
        .alarm(STAGE_ALARM, AlarmState::InsufficientData, T)
        .run();
    assert!(
        matches!(hold(&d), Some(Hold::NoEvidence { alarms }) if alarms == &[STAGE_ALARM.to_owned()]),
        "{}",
        d.action
    );
    assert_eq!(
        d.record.live,
        Some(Mark::new("d1", NOW)),
        "the bake restarts"
    );
    // With data again (OK), the bake starts from there.
    let ok = Case::stable().book(|b| b.live = Some(Mark::new("d1", NOW)));
    assert!(matches!(hold(&ok.run()), Some(Hold::Baking { .. })));
}

#[test]
fn a_bake_time_shorter_than_an_alarm_is_a_config_error() {
    // bake_time 5 min; the stage alarm needs 3 × 5 min to fire.
    let mut c = Case::stable().book(|b| b.live = Some(Mark::new("d1", NOW - 60 * MIN)));
    c.signals.alarms.insert(
        STAGE_ALARM.into(),
        AlarmReading::new(AlarmState::Ok, NOW - 60 * MIN).evaluating_over(15 * MIN),
    );
    let d = c.run();
    let Some(h @ Hold::BakeTimeTooShort { needed_ms, .. }) = hold(&d) else {
        panic!("{}", d.action)
    };
    assert_eq!(*needed_ms, 15 * MIN);
    assert!(d.attention);
    let text = h.to_string();
    assert!(
        text.contains("`bake_time`") && text.contains("at least 900s"),
        "{text}"
    );
    // It never stands in the way of a rollback.
    let d = Case {
        signals: c.signals.clone(),
        ..Case::stable()
    }
    .event(STAGE_ALARM, AlarmState::Alarm, T)
    .run();
    assert!(
        matches!(d.action, Action::RollbackStage { .. }),
        "{}",
        d.action
    );
    // Equal is enough.
    let mut fine = Case::stable();
    fine.signals.alarms.insert(
        STAGE_ALARM.into(),
        AlarmReading::new(AlarmState::Ok, NOW - 60 * MIN).evaluating_over(5 * MIN),
    );
    assert!(!matches!(
        hold(&fine.run()),
        Some(Hold::BakeTimeTooShort { .. })
    ));
}

/// Stage promoted to d2 by Tidegate's first request; the settings it left
/// at 0 % are still there.
fn promotion_leftover() -> Case {
    let mut c = Case::canary(0.0).book(|b| {
        b.zeroed_canary = Some("d2".into());
        b.step = None;
    });
    c.snap.deployment_id = "d2".into();
    c
}

#[test]
fn tidegates_own_promotion_leftover_is_removed_even_paused_or_alarming() {
    let paused = promotion_leftover().book(|b| {
        b.paused = Some(Pause::new(NOW - MIN, "key:ops", "incident", None));
    });
    let alarming =
        promotion_leftover()
            .book(|b| b.known_good = None)
            .event(STAGE_ALARM, AlarmState::Alarm, T);
    for c in [promotion_leftover(), paused, alarming] {
        let d = c.run();
        assert!(
            matches!(
                d.action,
                Action::RemoveCanary {
                    reason: RemoveReason::PromotionLeftover,
                    ..
                }
            ),
            "{}",
            d.action
        );
        assert_eq!(d.record.zeroed_canary, None);
        assert_eq!(d.record.last_rollback_ms, c.book.last_rollback_ms);
    }
    // Someone else's 0 % canary is left to progression (not while paused).
    let theirs = promotion_leftover().book(|b| {
        b.zeroed_canary = None;
        b.paused = Some(Pause::new(NOW - MIN, "key:ops", "incident", None));
    });
    assert!(matches!(hold(&theirs.run()), Some(Hold::Paused { .. })));
    // Once the stage no longer shows it, the record forgets it.
    let mut gone = promotion_leftover();
    gone.snap.canary = None;
    assert_eq!(gone.run().record.zeroed_canary, None);
}

#[test]
fn a_promotion_remembers_the_canary_it_zeroes() {
    let d = Case::canary(100.0).run();
    assert!(
        matches!(d.action, Action::PromoteCanary { .. }),
        "{}",
        d.action
    );
    assert_eq!(d.record.zeroed_canary.as_deref(), Some("d2"));
    assert!(d.confirm_alarms);
}

#[test]
fn progress_is_confirmed_against_a_fresh_read() {
    let c = Case::canary(10.0);
    let d = c.run();
    assert!(matches!(d.action, Action::SetCanaryPercent { .. }) && d.confirm_alarms);
    // The alarms as read first: fine.
    assert_eq!(
        confirm(&c.stage, &c.snap, &d.record, &c.signals.alarms, NOW),
        Ok(())
    );
    // The canary alarm fired in between: the step is dropped.
    let mut fresh = c.signals.alarms.clone();
    fresh.insert(
        CANARY_ALARM.into(),
        AlarmReading::new(AlarmState::Alarm, NOW),
    );
    assert!(matches!(
        confirm(&c.stage, &c.snap, &d.record, &fresh, NOW),
        Err(Hold::StillAlarming { .. })
    ));
    // No data, or unreadable: also no.
    fresh.insert(
        CANARY_ALARM.into(),
        AlarmReading::new(AlarmState::InsufficientData, NOW),
    );
    assert!(matches!(
        confirm(&c.stage, &c.snap, &d.record, &fresh, NOW),
        Err(Hold::NoEvidence { .. })
    ));
    fresh.remove(STAGE_ALARM);
    assert!(matches!(
        confirm(&c.stage, &c.snap, &d.record, &fresh, NOW),
        Err(Hold::AlarmsUnreadable { .. })
    ));
    // Rollbacks are never held back for a re-read.
    let r = Case::canary(10.0)
        .event(CANARY_ALARM, AlarmState::Alarm, T)
        .run();
    assert!(!r.confirm_alarms);
}

#[test]
fn a_missing_canary_dimension_is_never_zero() {
    let mut c = Case::canary(10.0);
    c.signals.canary_metrics = MetricsReading::DimensionMissing {
        api_name: "orders".into(),
        stage_dimension: "prod/Canary".into(),
    };
    let d = c.run();
    let Some(h @ Hold::CanaryMetricsMissing { .. }) = hold(&d) else {
        panic!("{}", d.action)
    };
    assert!(d.attention);
    assert!(h.to_string().contains("canary_stage_dimension"), "{h}");
    // An operator cannot promote on it either.
    let p = Case {
        signals: c.signals.clone(),
        ..Case::canary(10.0)
    }
    .manual(ManualCommand::Promote)
    .run();
    assert!(matches!(hold(&p), Some(Hold::CanaryMetricsMissing { .. })));
}

#[test]
fn a_new_canary_does_not_inherit_the_last_ones_errors() {
    // A bad canary d2 was removed a minute ago; d3 goes out now. Its
    // record says it was first seen now, so its metric window starts at the
    // next whole minute, after every error of d2.
    let removed = Case::canary(10.0)
        .event(CANARY_ALARM, AlarmState::Alarm, T)
        .run();
    assert_eq!(removed.record.step, None);
    let mut c = Case::canary(10.0)
        .book(|b| *b = removed.record.clone())
        .alarm(CANARY_ALARM, AlarmState::Ok, NOW);
    c.now = NOW + MIN;
    if let Some(canary) = c.snap.canary.as_mut() {
        canary.deployment_id = "d3".into();
    }
    let since = canary_since(&c.book, &c.snap, c.now);
    assert_eq!(since, c.now);
    let q = canary_query(&c.stage, Some("orders"), since, c.now + 30_000).unwrap();
    assert!(q.start_ms > c.now && q.is_empty(), "{q:?}");
    let d = c.run();
    assert_eq!(
        d.record.step.as_ref().map(|s| s.canary_since_ms),
        Some(c.now)
    );
    // The same canary keeps its start across steps.
    let mut next = c.clone();
    next.book = d.record.clone();
    next.now += 10 * MIN;
    assert_eq!(canary_since(&next.book, &next.snap, next.now), c.now);
}

#[test]
fn an_unverified_deployment_is_neither_missing_nor_present() {
    let mut c = Case::stable().event(STAGE_ALARM, AlarmState::Alarm, T);
    c.signals
        .deployments
        .insert("d0".into(), DeploymentCheck::Unknown);
    let d = c.run();
    assert!(matches!(hold(&d), Some(Hold::DeploymentUnverified { .. })));
    assert!(d.attention && d.plan.is_empty());
    assert_eq!(
        deployments_to_check(&c.book, &Case::canary(10.0).snap, None),
        vec!["d0".to_owned(), "d2".to_owned()]
    );
}

#[test]
fn a_pause_ends_by_itself() {
    let c = Case::canary(10.0).book(|b| {
        b.paused = Some(Pause::new(
            NOW - 2 * MIN,
            "key:ops",
            "sale",
            Some(NOW - MIN),
        ));
    });
    let d = c.run();
    assert!(
        matches!(d.action, Action::SetCanaryPercent { .. }),
        "{}",
        d.action
    );
    assert_eq!(d.record.paused, None);
    // Until then it holds, and says by whom in the status.
    let held = Case::canary(10.0).book(|b| {
        b.paused = Some(Pause::new(NOW - MIN, "key:ops", "sale", Some(NOW + MIN)));
    });
    assert!(matches!(hold(&held.run()), Some(Hold::Paused { .. })));
}

#[test]
fn an_operator_cannot_promote_on_no_evidence() {
    // An alarm without data is no evidence for an operator either: the
    // re-read before the write (`confirm`) would withdraw such a promotion,
    // so the decision says so up front instead of promising it.
    let c = Case::canary(10.0)
        .alarm(STAGE_ALARM, AlarmState::InsufficientData, T)
        .manual(ManualCommand::Promote);
    let d = c.run();
    assert!(
        matches!(hold(&d), Some(Hold::NoEvidence { alarms }) if alarms == &[STAGE_ALARM.to_owned()]),
        "{}",
        d.action
    );
    assert!(d.plan.is_empty() && !d.confirm_alarms);
    assert!(matches!(
        confirm(&c.stage, &c.snap, &c.book, &c.signals.alarms, NOW),
        Err(Hold::NoEvidence { .. })
    ));
    // Too few requests is still the operator's call, and a promotion
    // decided is one the same read confirms.
    let c = Case::canary(10.0)
        .metrics(0.0, 3.0)
        .manual(ManualCommand::Promote);
    let d = c.run();
    assert!(
        matches!(d.action, Action::PromoteCanary { .. }) && d.confirm_alarms,
        "{}",
        d.action
    );
    assert_eq!(
        confirm(&c.stage, &c.snap, &d.record, &c.signals.alarms, NOW),
        Ok(())
    );
}

#[test]
fn a_suppressed_transition_is_not_handled_until_it_can_act() {
    // Whether the event or only the schedule saw the alarm while its actions
    // were suppressed, once they no longer are the stage rolls back (as
    // CloudWatch runs a composite's actions once its suppressor is gone).
    let by_event = suppressed_event(Case::stable(), STAGE_ALARM).run();
    let mut read = Case::stable();
    read.signals.alarms.insert(
        STAGE_ALARM.into(),
        AlarmReading::new(AlarmState::Alarm, T).suppressed(),
    );
    let by_schedule = read.run();
    for d in [by_event, by_schedule] {
        assert!(
            matches!(hold(&d), Some(Hold::AlarmsSuppressed { .. })),
            "{}",
            d.action
        );
        assert_eq!(d.record.handled_through(STAGE_ALARM), None);
        let mut lifted = Case::stable()
            .alarm(STAGE_ALARM, AlarmState::Alarm, T)
            .book(|b| *b = d.record.clone());
        lifted.now = NOW + MIN;
        let d = lifted.run();
        assert!(
            matches!(d.action, Action::RollbackStage { .. }),
            "{}",
            d.action
        );
    }
}
