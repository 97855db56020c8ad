//! The stage page's "Live at the edge" panel: what the edge Worker saw of
//! each release over its window (`GET {admin_prefix}health/releases`, read
//! by [`crate::live`]), its latest verdict, its last signal, and a chart of
//! requests and 5xx rate per second, base against canary. Without figures
//! the panel says why in one line; the page never fails for it.

use std::fmt::Write as _;

use tidegate_policy::health::{
    Delivery, ReleaseClass, ReleaseSeries, SecondPoint, StageHealth, Verdict, MAX_WINDOW_S,
};

use super::chart::{render_chart, ChartLine};
use super::text::{ago, escape, format_time, path_segment};
use crate::live::EdgeUnavailable;
use crate::metrics::ChartAction;

/// The colours and legends of the releases, as on the CloudWatch chart
/// (base in the stage's blue, canary in its orange).
const RELEASES: [(ReleaseClass, &str, &str); 3] = [
    (ReleaseClass::Base, "base", "#1f5fa8"),
    (ReleaseClass::Canary, "canary", "#b3400a"),
    (ReleaseClass::Unattributed, "unattributed", "#4a4a4a"),
];

/// Appends the panel; `figures` is `None` when the page was drawn without
/// asking the edge (nothing is shown then). `base` leads to the control
/// API's root, for the figures' JSON link.
pub(super) fn render_edge(
    b: &mut String,
    figures: Option<&Result<StageHealth, EdgeUnavailable>>,
    base: &str,
    api: &str,
    stage: &str,
    now_ms: u64,
) {
    let Some(figures) = figures else {
        return;
    };
    b.push_str(
        "<section aria-labelledby=\"h-edge\" class=\"chart\"><h3 id=\"h-edge\">Live at the edge</h3>",
    );
    let h = match figures {
        Ok(h) => h,
        Err(e) => {
            // Not configured is a choice, not a fault.
            let class = match e {
                EdgeUnavailable::NotConfigured => "muted",
                _ => "error",
            };
            let _ = writeln!(
                b,
                "<p class=\"{class}\" id=\"edge-why\">No live figures: {}.</p></section>",
                escape(&e.to_string())
            );
            return;
        }
    };
    let _ = write!(
        b,
        "<p>The last {} s as the edge served them, at {} ({}). <a href=\"{base}stages/{}/{}/edge\">JSON</a></p>",
        h.window_s,
        format_time(h.at_ms),
        ago(h.at_ms, now_ms),
        path_segment(api),
        path_segment(stage),
    );
    render_verdict(b, h);
    render_signal(b, h, now_ms);
    if let Some(off) = &h.signalling_off {
        let _ = write!(
            b,
            "<p class=\"muted\">The edge judges but signals nothing: {}.</p>",
            escape(off)
        );
    }
    if h.releases.is_empty() {
        b.push_str(
            "<p class=\"muted\">No traffic seen since the edge's monitor started.</p></section>\n",
        );
        return;
    }
    render_table(b, h);
    render_charts(b, h);
    b.push_str("</section>\n");
}

fn render_verdict(b: &mut String, h: &StageHealth) {
    let Some(j) = &h.judgement else {
        b.push_str("<p><strong>Verdict:</strong> <span class=\"muted\">not judged yet</span></p>");
        return;
    };
    let badge = match j.verdict {
        Verdict::Healthy => "<span class=\"badge good\">healthy</span>".to_owned(),
        Verdict::Undecided => "<span class=\"badge warn\">undecided</span>".to_owned(),
        Verdict::Breach(kind) => {
            format!("<span class=\"badge bad\">breach: {}</span>", kind.as_str())
        }
    };
    let _ = write!(
        b,
        "<p><strong>Verdict</strong> (over {} s): {badge} {}</p>",
        j.span_s,
        escape(&j.detail)
    );
}

fn render_signal(b: &mut String, h: &StageHealth, now_ms: u64) {
    let Some(s) = &h.last_signal else {
        b.push_str("<p><strong>Last signal:</strong> none sent.</p>");
        return;
    };
    let (class, state) = match s.delivery {
        Delivery::Delivered => ("good", "delivered"),
        Delivery::Retry => ("warn", "pending"),
        Delivery::GiveUp => ("bad", "given up"),
    };
    let status = s
        .last_status
        .map_or_else(|| "no answer".to_owned(), |st| format!("status {st}"));
    let _ = write!(
        b,
        "<p><strong>Last signal:</strong> <span class=\"badge {class}\">{state}</span> \
{} <code>{}</code> at {} ({}): {status} after {} attempt{}. <span class=\"muted\">{}</span></p>",
        s.event.breach.as_str(),
        escape(&s.event.release),
        format_time(s.event.issued_ms),
        ago(s.event.issued_ms, now_ms),
        s.attempts,
        if s.attempts == 1 { "" } else { "s" },
        escape(&s.event.id),
    );
}

fn rate(errors: u64, requests: u64) -> String {
    if requests == 0 {
        "–".to_owned()
    } else {
        format!("{:.1} %", errors as f64 * 100.0 / requests as f64)
    }
}

fn shown(h: &StageHealth) -> impl Iterator<Item = (&ReleaseSeries, &'static str, &'static str)> {
    RELEASES.iter().filter_map(move |&(class, label, colour)| {
        let r = h.release(class)?;
        // Unattributed traffic only when there is some: most stages attribute.
        (class != ReleaseClass::Unattributed || r.figures.requests > 0)
            .then_some((r, label, colour))
    })
}

fn render_table(b: &mut String, h: &StageHealth) {
    b.push_str("<table><caption class=\"muted\">Over the edge's whole window; latencies are the histogram bucket's upper bound.</caption>\
<thead><tr><th scope=\"col\">Release</th><th scope=\"col\">Requests</th><th scope=\"col\">5xx</th><th scope=\"col\">5xx rate</th><th scope=\"col\">p50</th><th scope=\"col\">p99</th></tr></thead><tbody>");
    for (r, label, _) in shown(h) {
        let f = &r.figures;
        let latency = |ms: u32| {
            if f.requests == 0 {
                "–".to_owned()
            } else {
                format!("{ms} ms")
            }
        };
        let _ = write!(
            b,
            "<tr><th scope=\"row\">{label}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            f.requests,
            f.errors,
            rate(f.errors, f.requests),
            latency(f.p50_ms),
            latency(f.p99_ms),
        );
    }
    b.push_str("</tbody></table>");
}

/// One value per second from `from_ms` to `to_ms` (at most
/// [`MAX_WINDOW_S`] of them, whatever the edge claims): a second without a
/// point had no traffic (0 requests, no rate).
fn per_second(
    points: &[SecondPoint],
    from_ms: u64,
    to_ms: u64,
    value: impl Fn(Option<&SecondPoint>) -> Option<f64>,
) -> Vec<(u64, Option<f64>)> {
    let seconds = (to_ms.saturating_sub(from_ms) / 1_000).min(MAX_WINDOW_S);
    let mut at = points.iter().peekable();
    (0..=seconds)
        .map(|i| {
            let t = from_ms.saturating_add(i * 1_000);
            while at.peek().is_some_and(|p| p.at_ms < t) {
                at.next();
            }
            (t, value(at.peek().copied().filter(|p| p.at_ms == t)))
        })
        .collect()
}

fn render_charts(b: &mut String, h: &StageHealth) {
    // The second `at_ms` falls in is the window's last; the span is bounded
    // by the longest window, whatever the edge claims.
    let to = h.at_ms / 1_000 * 1_000;
    let from = h
        .window_from_ms()
        .max(to.saturating_sub((MAX_WINDOW_S - 1) * 1_000));
    let legend: Vec<String> = shown(h)
        .map(|(_, label, colour)| {
            format!("<span><i class=\"sw\" style=\"background:{colour}\"></i>{label}</span>")
        })
        .collect();
    let mut actions = Vec::new();
    if let Some(s) = h.last_signal.as_ref().filter(|s| s.event.issued_ms >= from) {
        actions.push(ChartAction {
            at_ms: s.event.issued_ms,
            what: format!("edge signal ({})", s.event.breach.as_str()),
            who: "edge".into(),
            why: s.event.detail.clone(),
            outcome: match s.delivery {
                Delivery::Delivered => "delivered",
                Delivery::Retry => "pending",
                Delivery::GiveUp => "given up",
            }
            .into(),
        });
    }
    let _ = write!(
        b,
        "<p class=\"legend\">{}{}</p>",
        legend.join(""),
        if actions.is_empty() {
            ""
        } else {
            "<span><i class=\"sw\" style=\"background:#6b21a8\"></i>the last signal</span>"
        }
    );
    for (title, is_rate) in [
        ("Edge requests per second", false),
        ("Edge 5xx rate per second", true),
    ] {
        let lines: Vec<ChartLine<'_>> = shown(h)
            .map(|(r, label, colour)| ChartLine {
                label,
                colour,
                points: per_second(&r.points, from, to, |p| {
                    if is_rate {
                        p.filter(|p| p.requests > 0)
                            .map(|p| f64::from(p.errors_5xx) / f64::from(p.requests))
                    } else {
                        Some(p.map_or(0.0, |p| f64::from(p.requests)))
                    }
                }),
            })
            .collect();
        let _ = write!(
            b,
            "<figure><figcaption>{title}</figcaption>{}</figure>",
            render_chart(
                title,
                &lines,
                from,
                to,
                if is_rate { "%" } else { "" },
                &actions
            )
        );
    }
}
