//! The edge's signal (issue 18): acted on as an alarm transition to ALARM.

use super::*;
use crate::health::{BreachKind, EdgeHealthEvent, ReleaseFigures};

/// A breach of `kind` whose first failure was at `first_failure_ms`.
fn signal(c: Case, kind: BreachKind, first_failure_ms: u64) -> Case {
    let mut c = c;
    c.trigger = Trigger::Edge(EdgeHealthEvent {
        id: "e-1".into(),
        api: "api1".into(),
        stage: "prod".into(),
        release: if kind == BreachKind::StageErrorRate {
            "stage".into()
        } else {
            "canary".into()
        },
        breach: kind,
        issued_ms: NOW,
        window_from_ms: first_failure_ms.saturating_sub(10_000),
        first_failure_ms: Some(first_failure_ms),
        canary: ReleaseFigures {
            requests: 20,
            errors: 10,
            p50_ms: 10,
            p99_ms: 40,
        },
        base: Some(ReleaseFigures {
            requests: 20,
            errors: 0,
            p50_ms: 10,
            p99_ms: 40,
        }),
        detail: "canary 5xx 50.0% vs base 0.0%".into(),
    });
    c
}

#[test]
fn a_failing_canary_is_removed_whatever_the_pause_or_cooldown() {
    let c = signal(Case::canary(50.0), BreachKind::ErrorRate, NOW - 2_000).book(|b| {
        b.last_rollback_ms = Some(NOW - MIN);
        b.paused = Some(Pause::new(NOW - MIN, "key:ops", "freeze", None));
    });
    let d = c.run();
    assert!(
        matches!(
            &d.action,
            Action::RemoveCanary {
                reason: RemoveReason::Edge {
                    breach: BreachKind::ErrorRate,
                    ..
                },
                ..
            }
        ),
        "{:?}",
        d.action
    );
    assert_eq!(d.plan.len(), 1);
    assert_eq!(d.audit.actor, "edge");
    assert!(matches!(d.audit.trigger, Trigger::Edge(_)));
    assert!(d.audit.summary.contains("the edge judged release canary"));
    assert_eq!(d.record.last_rollback_ms, Some(NOW));
    // The plan lands on the simulated stage: the canary is gone.
    let after = simulate(&c.snap, &d.plan[0].ops).unwrap();
    assert!(after.canary.is_none());
}

#[test]
fn a_canary_started_after_the_failures_is_left_alone() {
    // Tidegate saw d2 start 6 minutes ago; the failures began 10 minutes ago.
    let d = signal(Case::canary(50.0), BreachKind::ErrorRate, NOW - 10 * MIN).run();
    assert!(
        matches!(hold(&d), Some(Hold::EdgeCanaryNewer { failures_from_ms, .. }) if *failures_from_ms == NOW - 10 * MIN),
        "{:?}",
        d.action
    );
    assert!(d.plan.is_empty());
}

#[test]
fn a_canary_never_seen_is_judged_on_the_edges_word() {
    let d = signal(Case::canary(50.0), BreachKind::Latency, NOW - 10 * MIN)
        .book(|b| b.step = None)
        .run();
    assert!(
        matches!(d.action, Action::RemoveCanary { .. }),
        "{:?}",
        d.action
    );
}

#[test]
fn a_canary_breach_without_a_canary_is_recorded_only() {
    let d = signal(Case::stable(), BreachKind::ErrorRate, NOW - 2_000).run();
    assert!(
        matches!(hold(&d), Some(Hold::EdgeNoCanary { .. })),
        "{:?}",
        d.action
    );
    assert!(d.plan.is_empty());
}

#[test]
fn an_unattributed_breach_rolls_the_stage_back_as_a_stage_alarm_would() {
    let d = signal(Case::stable(), BreachKind::StageErrorRate, NOW - 2_000).run();
    assert!(
        matches!(
            &d.action,
            Action::RollbackStage { to_deployment, reason: RollbackReason::Edge { .. }, .. } if to_deployment == "d0"
        ),
        "{:?}",
        d.action
    );
    // ... after the cooldown, like the alarm.
    let d = signal(Case::stable(), BreachKind::StageErrorRate, NOW - 2_000)
        .book(|b| b.last_rollback_ms = Some(NOW - MIN))
        .run();
    assert!(
        matches!(hold(&d), Some(Hold::Cooldown { .. })),
        "{:?}",
        d.action
    );
    // With a canary: the canary goes, as for a stage alarm.
    let d = signal(Case::canary(10.0), BreachKind::StageErrorRate, NOW - 2_000).run();
    assert!(
        matches!(d.action, Action::RemoveCanary { .. }),
        "{:?}",
        d.action
    );
}

#[test]
fn a_firing_alarm_still_removes_a_canary_the_edge_cannot_blame() {
    let d = signal(Case::canary(50.0), BreachKind::ErrorRate, NOW - 10 * MIN)
        .alarm(CANARY_ALARM, AlarmState::Alarm, NOW - 30_000)
        .run();
    assert!(
        matches!(
            &d.action,
            Action::RemoveCanary {
                reason: RemoveReason::CanaryAlarm { .. },
                ..
            }
        ),
        "{:?}",
        d.action
    );
}
