use super::*;
use tidegate_policy::rollout::{Action, Hold, Trigger};

use crate::audit::Outcome;

#[test]
fn windows_by_hours() {
    let now = 100 * 3_600_000 + 123_456;
    let w = MetricsWindow::new(3, now).unwrap();
    assert_eq!((w.period_secs, w.start_ms % 60_000), (60, 0));
    assert_eq!(w.end_ms, now);
    assert_eq!(w.start_ms, 97 * 3_600_000 + 120_000);
    assert_eq!(MetricsWindow::new(6, now).unwrap().period_secs, 300);
    assert_eq!(MetricsWindow::new(48, now).unwrap().period_secs, 900);
    assert!(MetricsWindow::new(0, now).is_none());
    assert!(MetricsWindow::new(49, now).is_none());
}

#[test]
fn hours_from_the_query() {
    let now = 10 * 3_600_000;
    assert_eq!(MetricsWindow::from_hours(None, now).unwrap().hours, 3);
    assert_eq!(
        MetricsWindow::from_hours(Some("12"), now).unwrap().hours,
        12
    );
    for bad in ["0", "abc", "-1", "1000", ""] {
        let e = MetricsWindow::from_hours(Some(bad), now).unwrap_err();
        assert!(e.to_string().contains("from 1 to 48"), "{e}");
    }
}

#[test]
fn points_merge_and_rate() {
    let p = merge_points(
        &[(60_000, 100.0), (0, 10.0)],
        &[(60_000, 5.0), (120_000, 1.0)],
    );
    assert_eq!(p.len(), 3);
    assert_eq!(p[0].at_ms, 0);
    assert_eq!(p[0].error_rate, Some(0.0));
    assert_eq!(p[1].error_rate, Some(0.05));
    // Errors without requests: no rate rather than a division by zero.
    assert_eq!(p[2].error_rate, None);
}

fn entry(at_ms: u64, what: &str) -> HistoryEntry {
    HistoryEntry {
        at_ms,
        what: what.into(),
        who: "key:ops".into(),
        why: "why".into(),
        trigger: Trigger::Schedule,
        action: Action::None {
            reason: Hold::PausedNow,
        },
        outcome: Outcome::NothingToDo,
        deployment_id: "d1".into(),
        dry_run: false,
    }
}

#[test]
fn marks_only_inside_the_window_oldest_first() {
    let w = MetricsWindow::new(1, 10 * 3_600_000).unwrap();
    let mut m = StageMetrics::new("orders-api", "prod", &w);
    let newest_first = [
        entry(w.end_ms + 1, "future"),
        entry(w.end_ms - 10, "b"),
        entry(w.start_ms + 10, "a"),
        entry(w.start_ms - 1, "old"),
    ];
    m.mark(&newest_first);
    let whats: Vec<&str> = m.actions.iter().map(|a| a.what.as_str()).collect();
    assert_eq!(whats, ["a", "b"]);
    assert_eq!(m.actions[0].outcome, "nothing_to_do");
    let v = serde_json::to_value(&m).unwrap();
    assert_eq!(v["stage_series"]["points"], serde_json::json!([]));
}
