use super::*;
use crate::live::{pick, EdgeUnavailable};
use crate::metrics::{ChartAction, MetricPoint, MetricSeries, MetricsWindow, StageMetrics};
use crate::status::{StageStatus, StatusList};
use tidegate_policy::health::StageHealth;
use tidegate_policy::rollout::{AlarmReading, AlarmState, CanarySnapshot, Mark, Pause};

/// The edge's answer as the Worker writes it (the policy's fixture).
const EDGE_REPORT: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/tests/fixtures/health/releases.json"
));

const NOW: u64 = 1_764_892_800_000; // 2025-12-05 00:00:00 UTC

fn hostile() -> StageStatus {
    let mut s = StageStatus::new("orders<api>", "prod\"><script>", false);
    s.deployment_id = Some("d1".into());
    s.canary = Some(CanarySnapshot {
        deployment_id: "d2<b>".into(),
        percent_traffic: 25.0,
        stage_variable_overrides: Default::default(),
    });
    s.known_good = Some(Mark::new("d1", NOW - 3_600_000));
    s.alarms.insert(
        "a&b<x>".into(),
        AlarmReading::new(AlarmState::Alarm, NOW - 120_000),
    );
    s.paused = Some(Pause::new(NOW - 60_000, "key:o<p>s", "sale <freeze>", None));
    s
}

fn metrics() -> StageMetrics {
    let w = MetricsWindow::new(3, NOW).unwrap();
    let mut m = StageMetrics::new("orders<api>", "prod", &w);
    m.stage_series = MetricSeries {
        stage_dimension: "prod".into(),
        points: vec![
            MetricPoint {
                at_ms: w.start_ms,
                requests: 100.0,
                errors_5xx: 1.0,
                error_rate: Some(0.01),
            },
            MetricPoint {
                at_ms: w.start_ms + 60_000,
                requests: 120.0,
                errors_5xx: 0.0,
                error_rate: Some(0.0),
            },
        ],
        error: None,
    };
    m.canary_series = MetricSeries {
        stage_dimension: "prod/Canary".into(),
        points: vec![],
        error: Some("ListMetrics <denied>".into()),
    };
    m.actions = vec![ChartAction {
        at_ms: w.start_ms + 30_000,
        what: "remove_canary".into(),
        who: "tidegate".into(),
        why: "alarm <x> fired".into(),
        outcome: "applied".into(),
    }];
    m
}

fn steps() -> Vec<tidegate_policy::config::CanaryStep> {
    [5.0, 25.0, 50.0, 100.0]
        .iter()
        .map(|p| tidegate_policy::config::CanaryStep {
            percent: *p,
            approve: *p == 50.0,
        })
        .collect()
}

#[test]
fn list_escapes_and_links_relatively() {
    let html = render_list(
        &StatusList {
            stages: vec![hostile()],
        },
        &PageContext::new(NOW),
    );
    assert!(html.contains("orders&lt;api&gt;"));
    assert!(!html.contains("\"><script>"), "{html}");
    // Names are percent-encoded in links, which are relative.
    assert!(
        html.contains("href=\"./ui/orders%3Capi%3E/prod%22%3E%3Cscript%3E\""),
        "{html}"
    );
    assert!(html.contains("paused"));
}

#[test]
fn stage_page_shows_everything_escaped() {
    let mut s = hostile();
    s.steps = steps();
    let m = metrics();
    let view = StageDetail {
        progress: Progress::of(&s),
        status: &s,
        metrics: Some(&m),
        edge: None,
    };
    let ctx = PageContext::new(NOW)
        .at_depth(2)
        .session("key:o<p>s", "tok\"en");
    let html = render_stage(&view, &ctx);
    assert!(!html.contains("\"><script>"), "unescaped user data");
    assert!(!html.contains("<b>") && !html.contains("<x>") && !html.contains("<freeze>"));
    for want in [
        "d2&lt;b&gt;</code> at 25 %",
        "step 2 of 4",
        "aria-current=\"step\"",
        "a&amp;b&lt;x&gt;",
        "2025-12-04 23:58:00 UTC",
        "sale &lt;freeze&gt;",
        "<svg",
        "remove_canary",
        "alarm &lt;x&gt; fired",
        "ListMetrics &lt;denied&gt;",
        "name=\"csrf\" value=\"tok&quot;en\"",
        "action=\"../../stages/orders%3Capi%3E/prod%22%3E%3Cscript%3E/promote\"",
        "name=\"reason\" required",
        "<summary>Rollback…</summary>",
        "Signed in as <code>key:o&lt;p&gt;s</code>",
    ] {
        assert!(html.contains(want), "missing {want:?}");
    }
    // Paused: resume is offered, pause is not.
    assert!(html.contains("Confirm resume") && !html.contains("Confirm pause"));
}

#[test]
fn renders_without_optional_parts() {
    let s = StageStatus::new("api", "prod", true);
    let view = StageDetail {
        progress: Progress::default(),
        status: &s,
        metrics: None,
        edge: None,
    };
    let html = render_stage(&view, &PageContext::new(NOW));
    assert!(html.contains("dry run"));
    assert!(html.contains("No steps planned"));
    assert!(html.contains("No actions yet"));
    // No session: no CSRF field, no sign-out.
    assert!(!html.contains("name=\"csrf\"") && !html.contains("Sign out"));
}

#[test]
fn chart_scales_and_marks() {
    let m = metrics();
    let lines = [ChartLine {
        label: "stage",
        colour: "#000",
        points: m
            .stage_series
            .points
            .iter()
            .map(|p| (p.at_ms, Some(p.requests)))
            .collect(),
    }];
    let svg = render_chart("Requests", &lines, m.start_ms, m.end_ms, "", &m.actions);
    assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    assert!(svg.contains("<polyline"));
    assert!(svg.contains(">200<"), "y axis tops at a round 200: {svg}");
    assert!(svg.contains(
        "1. 2025-12-04 21:00:30 UTC: remove_canary by tidegate (applied): alarm &lt;x&gt; fired"
    ));
    let empty = render_chart("Rate", &[], m.start_ms, m.end_ms, "%", &[]);
    assert!(empty.contains("5 %"));
}

#[test]
fn signin_page_says_when_it_is_off() {
    let html = render_signin(
        &PageContext::new(NOW),
        Some("bad <key>"),
        Some("set TIDEGATE_SESSION_SECRET"),
    );
    assert!(html.contains("bad &lt;key&gt;"));
    assert!(html.contains("TIDEGATE_SESSION_SECRET"));
    assert!(html.contains("type=\"password\""));
    assert!(html.contains("<label for=\"credential\">"));
}

#[test]
fn text_helpers() {
    assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00:00 UTC");
    assert_eq!(percent(12.5), "12.5 %");
    assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
}

#[test]
fn a_canary_waiting_for_approval_offers_approve() {
    let mut s = hostile();
    s.paused = None;
    s.steps = steps();
    s.canary.as_mut().unwrap().percent_traffic = 50.0;
    s.step_index = Some(2);
    s.awaiting_approval = true;
    let view = StageDetail {
        progress: Progress::of(&s),
        status: &s,
        metrics: None,
        edge: None,
    };
    assert_eq!(view.progress.index, Some(2));
    let html = render_stage(&view, &PageContext::new(NOW));
    for want in [
        "waiting for approval",
        "step 3 of 4",
        "Waiting for an operator's approval",
        "Confirm approve",
        "Confirm advance",
        "approval required",
    ] {
        assert!(html.contains(want), "missing {want:?}");
    }
}

fn edge_figures() -> StageHealth {
    let report = crate::live::parse(EDGE_REPORT).unwrap();
    pick(&report, "shop", "prod").unwrap()
}

fn edge_page(edge: &Result<StageHealth, EdgeUnavailable>) -> String {
    let s = hostile();
    let view = StageDetail {
        progress: Progress::of(&s),
        status: &s,
        metrics: None,
        edge: Some(edge),
    };
    // The fixture's figures were taken at NOW.
    render_stage(&view, &PageContext::new(NOW + 5_000).at_depth(2))
}

#[test]
fn the_edge_panel_plots_base_against_canary() {
    let html = edge_page(&Ok(edge_figures()));
    for want in [
        "<h3 id=\"h-edge\">Live at the edge</h3>",
        "The last 60 s as the edge served them, at 2025-12-05 00:00:00 UTC (5 s ago)",
        "href=\"../../stages/orders%3Capi%3E/prod%22%3E%3Cscript%3E/edge\">JSON</a>",
        // Verdict and its sentence.
        "<span class=\"badge bad\">breach: error_rate</span> canary 5xx 66.7% of 9",
        // Per release: requests, 5xx, rate, p50, p99.
        "<th scope=\"row\">canary</th><td>9</td><td>6</td><td>66.7 %</td><td>30 ms</td><td>70 ms</td>",
        "<th scope=\"row\">base</th><td>120</td><td>1</td><td>0.8 %</td><td>10 ms</td><td>30 ms</td>",
        // The last signal.
        "<span class=\"badge good\">delivered</span> error_rate <code>canary</code>",
        "status 202 after 1 attempt.",
        // Two charts, the seconds on the axis, the signal marked.
        "<title id=\"edge-requests-per-second-t\">Edge requests per second</title>",
        "Edge 5xx rate per second",
        ">23:59:01<",
        "edge signal (error_rate) by edge (delivered)",
    ] {
        assert!(html.contains(want), "missing {want:?}");
    }
    // No unattributed traffic: no row, no line.
    assert!(!html.contains(">unattributed<"));
    // One point per second over the window: 60 seconds, each line.
    let requests = html
        .split("Edge requests per second</title>")
        .nth(1)
        .unwrap();
    let desc = requests.split("</desc>").next().unwrap();
    assert!(
        desc.contains("base: 60 points; canary: 60 points"),
        "{desc}"
    );
    // The rate has a point only in seconds with traffic (4 base, 3 canary).
    let rate = html
        .split("Edge 5xx rate per second</title>")
        .nth(1)
        .unwrap();
    let desc = rate.split("</desc>").next().unwrap();
    assert!(desc.contains("base: 4 points; canary: 3 points"), "{desc}");
}

#[test]
fn the_edge_panel_escapes_what_the_edge_says() {
    let mut h = edge_figures();
    h.judgement.as_mut().unwrap().detail = "canary <script>x</script>".into();
    let signal = h.last_signal.as_mut().unwrap();
    signal.event.release = "v2<b>".into();
    signal.event.id = "id\"><i>".into();
    signal.event.detail = "why <u>".into();
    h.signalling_off = Some("no <secret>".into());
    let html = edge_page(&Ok(h));
    for bad in ["<script>x", "<b>", "\"><i>", "<u>", "<secret>"] {
        assert!(!html.contains(bad), "unescaped {bad:?}");
    }
    for want in [
        "canary &lt;script&gt;x&lt;/script&gt;",
        "<code>v2&lt;b&gt;</code>",
        "why &lt;u&gt;",
        "signals nothing: no &lt;secret&gt;.",
    ] {
        assert!(html.contains(want), "missing {want:?}");
    }
}

#[test]
fn the_edge_panel_says_why_it_is_empty() {
    let html = edge_page(&Err(EdgeUnavailable::NotConfigured));
    assert!(html.contains("<p class=\"muted\" id=\"edge-why\">No live figures: not configured: set `[rollback.edge] health_url`"));
    let html = edge_page(&Err(EdgeUnavailable::Unreachable("dns <fail>".into())));
    assert!(html.contains("<p class=\"error\" id=\"edge-why\">No live figures: the edge could not be reached: dns &lt;fail&gt;.</p>"));
    let html = edge_page(&Err(EdgeUnavailable::Timeout));
    assert!(html.contains("did not answer within 2 s"));
    // The rest of the page is there.
    assert!(html.contains("Commands"));
    // A stage the edge has not seen traffic for yet.
    let report = crate::live::parse(EDGE_REPORT).unwrap();
    let legacy = pick(&report, "legacy", "prod").unwrap();
    let html = edge_page(&Ok(legacy));
    assert!(html.contains("not judged yet"));
    assert!(html.contains("Last signal:</strong> none sent."));
    assert!(html.contains("No traffic seen"));
    assert!(!html.contains("Edge requests per second"));
}

#[test]
fn a_lying_edge_cannot_make_the_chart_huge() {
    let mut h = edge_figures();
    h.window_s = u64::MAX;
    let html = edge_page(&Ok(h));
    let requests = html
        .split("Edge requests per second</title>")
        .nth(1)
        .unwrap();
    let desc = requests.split("</desc>").next().unwrap();
    assert!(desc.contains("base: 600 points"), "{desc}");
}
