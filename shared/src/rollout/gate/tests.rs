use super::*;

fn steps() -> Vec<CanaryStep> {
    vec![
        CanaryStep::at(5.0),
        CanaryStep::at(25.0),
        CanaryStep::at(50.0).gated(),
        CanaryStep::at(100.0),
    ]
}

#[test]
fn where_the_canary_stands() {
    let s = steps();
    assert_eq!(step_index(&s, 0.0), None);
    assert_eq!(step_index(&s, 5.0), Some(0));
    assert_eq!(
        step_index(&s, 30.0),
        Some(1),
        "between steps: the one below"
    );
    assert_eq!(step_index(&s, 100.0), Some(3));
    assert_eq!(next_planned(&s, 0.0), Some(CanaryStep::at(5.0)));
    assert_eq!(next_planned(&s, 30.0), Some(CanaryStep::at(50.0).gated()));
    assert_eq!(next_planned(&s, 100.0), None);
    assert_eq!(next_planned(&[], 10.0), None);
}

#[test]
fn steps_are_checked_as_the_config_checks_them() {
    assert!(check_steps(&steps()).is_ok());
    assert!(check_steps(&[CanaryStep::at(100.0)]).is_ok());
    for bad in [
        vec![],
        vec![CanaryStep::at(10.0)],
        vec![CanaryStep::at(0.0), CanaryStep::at(100.0)],
        vec![
            CanaryStep::at(50.0),
            CanaryStep::at(50.0),
            CanaryStep::at(100.0),
        ],
        vec![CanaryStep::at(f64::INFINITY)],
        vec![CanaryStep::at(100.0), CanaryStep::at(150.0)],
    ] {
        assert!(check_steps(&bad).is_err(), "{bad:?}");
    }
}
