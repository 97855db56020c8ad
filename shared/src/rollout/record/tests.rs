use super::*;

#[test]
fn handled_transitions_are_a_watermark_per_alarm() {
    let mut r = StageRecord::default();
    assert!(!r.is_handled("a", 10));
    r.mark_handled("a", 10);
    assert!(r.is_handled("a", 10));
    assert!(r.is_handled("a", 9));
    assert!(!r.is_handled("a", 11));
    assert!(!r.is_handled("b", 10));
    r.mark_handled("a", 5);
    assert_eq!(r.handled_through("a"), Some(10));
    r.mark_handled("b", 1);
    r.retain_watched(&["b".to_owned()]);
    assert_eq!(r.handled.len(), 1);
    assert!(r.is_handled("b", 1));
}

#[test]
fn pauses_expire_and_are_cut() {
    let long = "x".repeat(REASON_MAX_CHARS + 10);
    let p = Pause::new(5, "key:ops", &long, Some(100));
    assert_eq!(p.reason.chars().count(), REASON_MAX_CHARS);
    assert!(p.holds_at(99));
    assert!(!p.holds_at(100));
    let r = StageRecord {
        paused: Some(p),
        ..StageRecord::default()
    };
    assert!(r.pause_at(50).is_some());
    assert!(r.pause_at(150).is_none());
    assert!(Pause::new(1, "a", "b", None).holds_at(u64::MAX));
}

#[test]
fn known_good_keeps_the_previous_one() {
    let mut r = StageRecord::default();
    r.set_known_good("d1", 1);
    r.set_known_good("d1", 2);
    assert_eq!(r.previous_known_good, None);
    r.set_known_good("d2", 3);
    assert_eq!(r.known_good, Some(Mark::new("d2", 3)));
    assert_eq!(r.previous_known_good, Some(Mark::new("d1", 2)));
}

#[test]
fn serde_round_trips_and_tolerates_missing_and_unknown_fields() {
    let mut r = StageRecord {
        step: Some(StepMark {
            deployment_id: "d2".into(),
            percent: 12.5,
            since_ms: 7,
            canary_since_ms: 3,
        }),
        paused: Some(Pause::new(
            1,
            "jwt:iss:alice",
            "INC-42 — ünïcode, 100% sure",
            None,
        )),
        zeroed_canary: Some("d2".into()),
        ..StageRecord::default()
    };
    r.set_known_good("d1", 1);
    r.mark_handled("orders-5xx", 9);
    let text = serde_json::to_string(&r).unwrap();
    assert_eq!(serde_json::from_str::<StageRecord>(&text).unwrap(), r);
    let old: StageRecord =
        serde_json::from_str(r#"{"known_good":{"deployment_id":"d","at_ms":1},"future":true}"#)
            .unwrap();
    assert_eq!(old.known_good, Some(Mark::new("d", 1)));
    assert_eq!(old.handled.len(), 0);
}
