use serde_json::json;

use crate::*;

fn view(value: serde_json::Value) -> StageView {
    serde_json::from_value(value).unwrap()
}

fn progressing() -> StageView {
    view(json!({
        "api": "orders-api", "stage": "prod", "deployment_id": "d2",
        "canary": {"deployment_id": "d3", "percent_traffic": 25.0, "stage_variable_overrides": {}},
        "steps": [{"percent": 5.0}, {"percent": 25.0}, {"percent": 50.0, "approve": true}, {"percent": 100.0}],
        "step_index": 1
    }))
}

#[test]
fn times_are_rfc3339_utc() {
    assert_eq!(format_time(1_700_000_000_000), "2023-11-14T22:13:20Z");
    assert_eq!(format_time(951_782_400_000), "2000-02-29T00:00:00Z");
    assert!(format_time(u64::MAX).len() > 10);
}

#[test]
fn phases_follow_the_stage() {
    let mut s = progressing();
    assert_eq!(phase(&s), "Progressing");
    s.awaiting_approval = true;
    assert_eq!(phase(&s), "AwaitingApproval");
    s.awaiting_approval = false;
    s.canary = None;
    assert_eq!(phase(&s), "Healthy");
    s.error = Some("throttled".into());
    assert_eq!(phase(&s), "Degraded");
}

#[test]
fn a_leftover_canary_at_zero_is_not_active() {
    let s = view(json!({"api": "a", "stage": "p", "deployment_id": "d3",
        "canary": {"deployment_id": "d3", "percent_traffic": 0.0, "stage_variable_overrides": {}}}));
    assert!(s.active_canary().is_none());
    assert_eq!(phase(&s), "Healthy");
}

#[test]
fn the_steps_bar_marks_the_current_step_and_gates() {
    let line = steps_line(&progressing());
    assert_eq!(
        line,
        "[#####···············] 25%  5 → [25] → 50 (approve) → 100"
    );
    let detail = stage_detail(&progressing(), 0);
    assert!(detail.contains("Canary:      d3 at 25%"), "{detail}");
}

#[test]
fn an_awaiting_stage_says_how_to_approve() {
    let mut s = progressing();
    s.awaiting_approval = true;
    assert!(stage_detail(&s, 0).contains("tidegate rollout approve orders-api/prod"));
}

#[test]
fn the_tracker_ends_on_promotion_rollback_or_no_canary() {
    let mut t = WatchTracker::default();
    assert_eq!(t.observe(None, Some("d1")), Some(WatchEnd::NoCanary));
    let mut t = WatchTracker::default();
    assert_eq!(t.observe(Some("d3"), Some("d2")), None);
    assert_eq!(t.observe(Some("d3"), Some("d2")), None);
    assert_eq!(
        t.observe(None, Some("d2")),
        Some(WatchEnd::RolledBack {
            canary: "d3".into(),
            serving: "d2".into()
        })
    );
}

#[test]
fn exit_codes_by_status() {
    assert_eq!(Exit::for_status(422), Exit::Usage);
    assert_eq!(Exit::for_status(403), Exit::Auth);
    assert_eq!(Exit::for_status(404), Exit::NotFound);
    assert_eq!(Exit::for_status(409), Exit::Conflict);
    assert_eq!(Exit::for_status(503), Exit::Failed);
    let e = CliError::Unreachable {
        url: "u".into(),
        error: "e".into(),
    };
    assert_eq!(e.exit().code(), 6);
}

#[test]
fn regions_come_only_from_function_url_hosts() {
    assert_eq!(
        region_from_host("x.lambda-url.us-east-1.on.aws").as_deref(),
        Some("us-east-1")
    );
    assert_eq!(region_from_host("lambda-url.us-east-1.on.aws"), None);
    assert_eq!(region_from_host("x.lambda-url.a.b.on.aws"), None);
    assert_eq!(region_from_host("example.com"), None);
}

#[test]
fn stage_paths_keep_unreserved_names_as_they_are() {
    assert_eq!(
        stage_path("orders-api", "prod_1.v~2"),
        "/stages/orders-api/prod_1.v~2"
    );
    assert_eq!(stage_path("a b", "x/y"), "/stages/a%20b/x%2Fy");
}

#[test]
fn outcomes_that_did_not_take_effect() {
    let o: OutcomeView =
        serde_json::from_value(json!({"status": "failed", "error": "throttled"})).unwrap();
    assert!(!o.succeeded());
    assert_eq!(o.describe(), "failed: throttled");
    let o: OutcomeView =
        serde_json::from_value(json!({"status": "yielded", "holder": "req-1", "until_ms": 5}))
            .unwrap();
    assert_eq!(o.describe(), "yielded: held by req-1");
    let o: OutcomeView = serde_json::from_value(json!({"status": "nothing_to_do"})).unwrap();
    assert!(o.succeeded());
}

#[test]
fn a_reason_given_is_trimmed() {
    let r = Reason {
        reason: Some("  bad canary \n".into()),
    };
    assert_eq!(reason(&r).unwrap(), "bad canary");
}

#[test]
fn tables_align_on_the_widest_cell() {
    let t = table(
        &["ID", "X"],
        &[
            vec!["long-id".into(), "1".into()],
            vec!["a".into(), "2".into()],
        ],
    );
    assert_eq!(t, "ID       X\nlong-id  1\na        2\n");
}

#[test]
fn steps_are_percentages_or_gates() {
    use tidegate_policy::config::CanaryStepEntry;
    assert_eq!(parse_step("25").unwrap(), CanaryStepEntry::Percent(25.0));
    assert_eq!(parse_step("50:approve").unwrap().percent(), 50.0);
    assert!(matches!(parse_step("50:approve").unwrap(), CanaryStepEntry::Gate(g) if g.approve));
    assert!(parse_step("50:later").is_err());
    assert!(parse_step("half").is_err());
}

#[test]
fn an_approval_is_shown() {
    let mut s = progressing();
    s.approval = serde_json::from_value(json!({"deployment_id": "d3", "percent": 50.0, "by": "key:ops", "reason": "metrics fine", "at_ms": 0})).unwrap();
    assert!(stage_detail(&s, 0)
        .contains("Approved:    d3 at 50% by key:ops at 1970-01-01T00:00:00Z: metrics fine"));
}

#[test]
fn the_history_table_says_what_set_each_action_off() {
    let page: HistoryPage =
        serde_json::from_str(include_str!("../tests/fixtures/history.json")).unwrap();
    let out = history_table(&page.entries);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("WHEN"), "{out}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["WHEN", "WHAT", "WHO", "TRIGGER", "OUTCOME", "WHY"]);
    // The column starts where its header does, on every row.
    let at = lines[0].find("TRIGGER").unwrap();
    let cells: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l[at..].split("  ").next().unwrap())
        .collect();
    assert_eq!(
        cells,
        [
            "edge canary error_rate",
            "alarm orders-api-prod-5xx-rate",
            "schedule",
            "operator",
            "canary_bot",
            "-",
        ],
        "{out}"
    );
    assert!(lines[2].contains("rollback (dry run)"), "{out}");
}
