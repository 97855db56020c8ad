use super::*;
use crate::rollout::action::{Hold, RemoveReason, RollbackReason};
use crate::rollout::state::CanarySnapshot;

fn snap(canary: Option<(&str, f64)>) -> StageSnapshot {
    StageSnapshot {
        rest_api_id: "api".into(),
        rest_api_name: None,
        stage_name: "prod".into(),
        deployment_id: "d1".into(),
        canary: canary.map(|(d, p)| CanarySnapshot {
            deployment_id: d.into(),
            percent_traffic: p,
            stage_variable_overrides: [("color".to_owned(), "blue".to_owned())].into(),
        }),
        last_updated_ms: None,
        variables: [("backend".to_owned(), "x".to_owned())].into(),
    }
}

/// Every step of a plan, applied by the simulator, leads to its `after`.
fn assert_plan_lands(steps: &[PatchStep], s: &StageSnapshot) -> StageSnapshot {
    let mut cur = s.clone();
    for st in steps {
        assert_eq!(st.expect.check(&cur), Ok(()), "{st:?}");
        cur = simulate(&cur, &st.ops).unwrap();
        assert_eq!(st.after.check(&cur), Ok(()), "{st:?}");
    }
    cur
}

#[test]
fn expectation_detects_each_kind_of_drift() {
    let s = snap(Some(("d2", 10.0)));
    let e = Expectation::of(&s);
    assert_eq!(e.check(&s), Ok(()));
    let mut moved = s.clone();
    moved.deployment_id = "d9".into();
    assert!(matches!(e.check(&moved), Err(Drift::Deployment { .. })));
    let mut stepped = s.clone();
    if let Some(c) = stepped.canary.as_mut() {
        c.percent_traffic = 25.0;
    }
    let err = e.check(&stepped).unwrap_err();
    assert_eq!(err.to_string(), "canary is d2 at 25%, expected d2 at 10%");
    let mut gone = s.clone();
    gone.canary = None;
    assert!(matches!(e.check(&gone), Err(Drift::Canary { .. })));
    // Variables (the user's, a pipeline's) may change freely.
    let mut edited = s.clone();
    edited.variables.insert("backend".into(), "y".into());
    edited.variables.clear();
    assert_eq!(e.check(&edited), Ok(()));
}

#[test]
fn promote_is_aws_promote_then_remove() {
    let s = snap(Some(("d2", 100.0)));
    let steps = plan(
        &Action::PromoteCanary {
            deployment: "d2".into(),
            from_deployment: "d1".into(),
        },
        &s,
    );
    assert_eq!(steps.len(), 2);
    let ops = &steps[0].ops;
    assert_eq!(ops[0], PatchOp::replace(PERCENT, "0.0"));
    assert_eq!(
        ops[1],
        PatchOp::copy("/canarySettings/stageVariableOverrides", "/variables")
    );
    assert_eq!(
        ops[2],
        PatchOp::copy("/canarySettings/deploymentId", "/deploymentId")
    );
    assert_eq!(steps[0].expect, Expectation::of(&s));
    assert_eq!(steps[1].ops, vec![PatchOp::remove(CANARY)]);
    assert_eq!(steps[1].expect, steps[0].after);
    let done = assert_plan_lands(&steps, &s);
    assert_eq!(done.deployment_id, "d2");
    assert_eq!(done.variables["color"], "blue");
    assert_eq!(done.variables["backend"], "x");
    assert_eq!(done.canary, None);
    let json = serde_json::to_value(&steps[0].ops[2]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"op": "copy", "path": "/deploymentId", "from": "/canarySettings/deploymentId"})
    );
}

#[test]
fn remove_canary_is_one_request() {
    for percent in [25.0, 0.0] {
        let s = snap(Some(("d2", percent)));
        let action = Action::RemoveCanary {
            deployment_id: "d2".into(),
            percent,
            reason: RemoveReason::Leftover,
        };
        let steps = plan(&action, &s);
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].ops, vec![PatchOp::remove(CANARY)]);
        let done = assert_plan_lands(&steps, &s);
        assert_eq!(done.deployment_id, "d1");
        assert_eq!(done.variables, s.variables, "no variable is written");
    }
}

#[test]
fn rollback_over_leftover_canary_removes_it_first() {
    let s = snap(Some(("d1", 0.0)));
    let action = Action::RollbackStage {
        from_deployment: "d1".into(),
        to_deployment: "d0".into(),
        reason: RollbackReason::Manual { reason: "x".into() },
        clears_leftover_canary: true,
    };
    let steps = plan(&action, &s);
    assert_eq!(steps[0].ops, vec![PatchOp::remove(CANARY)]);
    assert_eq!(steps[1].ops[0], PatchOp::replace("/deploymentId", "d0"));
    assert_eq!(steps[1].expect.canary, None);
    let done = assert_plan_lands(&steps, &s);
    assert_eq!(done.deployment_id, "d0");
}

#[test]
fn steps_say_where_they_land() {
    let s = snap(Some(("d2", 10.0)));
    let steps = plan(
        &Action::SetCanaryPercent {
            deployment_id: "d2".into(),
            from: 10.0,
            to: 25.0,
        },
        &s,
    );
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].ops, vec![PatchOp::replace(PERCENT, "25.0")]);
    let done = assert_plan_lands(&steps, &s);
    // A step that already landed is recognised as done: its `after` holds
    // and its `expect` no longer does.
    assert_eq!(steps[0].after.check(&done), Ok(()));
    assert!(steps[0].expect.check(&done).is_err());
}

#[test]
fn simulate_follows_api_gateway_rules() {
    let s = snap(Some(("d2", 10.0)));
    assert_eq!(
        simulate(&s, &[PatchOp::replace("/deploymentId", "d0")]),
        Err(SimulateError::CanaryEnabled)
    );
    let promoted = simulate(
        &s,
        &[
            PatchOp::replace(PERCENT, "0.0"),
            PatchOp::copy("/canarySettings/stageVariableOverrides", "/variables"),
            PatchOp::copy("/canarySettings/deploymentId", "/deploymentId"),
        ],
    )
    .unwrap();
    assert_eq!(promoted.deployment_id, "d2");
    assert_eq!(promoted.variables["color"], "blue");
    assert_eq!(promoted.canary.as_ref().unwrap().percent_traffic, 0.0);
    let removed = simulate(&promoted, &[PatchOp::remove(CANARY)]).unwrap();
    assert_eq!(removed.canary, None);
    assert_eq!(
        simulate(&removed, &[PatchOp::remove(CANARY)]),
        Err(SimulateError::NoCanary(CANARY.into()))
    );
    assert!(matches!(
        simulate(&s, &[PatchOp::replace(PERCENT, "120")]),
        Err(SimulateError::BadValue { .. })
    ));
    assert!(matches!(
        simulate(&s, &[PatchOp::remove("/description")]),
        Err(SimulateError::Unsupported { .. })
    ));
}

#[test]
fn nothing_to_change_means_no_steps() {
    let s = snap(None);
    for action in [
        Action::None {
            reason: Hold::Steady,
        },
        Action::RecordKnownGood {
            deployment: "d1".into(),
            previous: None,
        },
    ] {
        assert!(plan(&action, &s).is_empty());
    }
    assert_eq!(percent_value(5.0), "5.0");
    assert_eq!(percent_value(12.5), "12.5");
}
