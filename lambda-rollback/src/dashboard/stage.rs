//! The pages: the stage list, one stage, sign-in.

use std::fmt::Write as _;

use tidegate_policy::rollout::ManualCommand;

use tidegate_policy::health::StageHealth;

use super::chart::{render_chart, ChartLine};
use super::edge::render_edge;
use super::layout::{page, PageContext};
use super::text::{ago, escape, format_time, path_segment, percent};
use crate::live::EdgeUnavailable;
use crate::metrics::{MetricSeries, StageMetrics};
use crate::status::{StageStatus, StatusList};

/// One planned canary step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannedStep {
    /// Traffic share, percent.
    pub percent: f64,
    /// Whether the rollout waits for an operator's approval before it.
    pub approve: bool,
}

/// Where the canary is on its planned steps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// The plan.
    pub steps: Vec<PlannedStep>,
    /// The step being baked, if known.
    pub index: Option<usize>,
    /// Held at an approval gate.
    pub awaiting_approval: bool,
}

impl Progress {
    /// The progress `status` reports (`steps`, `step_index`,
    /// `awaiting_approval`); without a step index, the step whose share the
    /// canary has.
    pub fn of(status: &StageStatus) -> Self {
        let steps: Vec<PlannedStep> = status
            .steps
            .iter()
            .map(|s| PlannedStep {
                percent: s.percent,
                approve: s.approve,
            })
            .collect();
        let index = status.step_index.or_else(|| {
            status.canary.as_ref().and_then(|c| {
                steps
                    .iter()
                    .position(|s| (s.percent - c.percent_traffic).abs() < 1e-6)
            })
        });
        Self {
            steps,
            index,
            awaiting_approval: status.awaiting_approval,
        }
    }
}

/// Everything the stage page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct StageDetail<'a> {
    /// The stage.
    pub status: &'a StageStatus,
    /// Its canary plan and position.
    pub progress: Progress,
    /// The chart's data.
    pub metrics: Option<&'a StageMetrics>,
    /// The edge's live figures, or why there are none; `None`: the edge
    /// was not asked (no panel).
    pub edge: Option<&'a Result<StageHealth, EdgeUnavailable>>,
}

/// The link to one stage's page from the root.
fn stage_href(api: &str, stage: &str) -> String {
    format!("ui/{}/{}", path_segment(api), path_segment(stage))
}

/// `GET /`: every managed stage, one row each.
pub fn render_list(data: &StatusList, ctx: &PageContext) -> String {
    let base = ctx.base();
    let mut rows = String::new();
    for s in &data.stages {
        let canary = s.canary.as_ref().map_or_else(
            || "–".to_owned(),
            |c| {
                format!(
                    "<code>{}</code> at {}",
                    escape(&c.deployment_id),
                    percent(c.percent_traffic)
                )
            },
        );
        let alarming = s
            .alarms
            .values()
            .filter(|a| a.state.as_aws() == "ALARM")
            .count();
        let state = match (&s.error, &s.paused, alarming) {
            (Some(_), _, _) => "<span class=\"badge bad\">unreadable</span>".to_owned(),
            (None, Some(_), _) => "<span class=\"badge warn\">paused</span>".to_owned(),
            (None, None, 0) => "<span class=\"badge good\">ok</span>".to_owned(),
            (None, None, n) => format!("<span class=\"badge bad\">{n} in alarm</span>"),
        };
        let _ = writeln!(
            rows,
            "<tr><th scope=\"row\"><a href=\"{base}{href}\">{api} / {stage}</a></th><td>{dep}</td><td>{canary}</td><td>{good}</td><td>{state}</td></tr>",
            href = stage_href(&s.api, &s.stage),
            api = escape(&s.api),
            stage = escape(&s.stage),
            dep = code_or_dash(s.deployment_id.as_deref()),
            good = code_or_dash(s.known_good.as_ref().map(|m| m.deployment_id.as_str())),
        );
    }
    let body = format!(
        "<h2>Managed stages</h2>\n<table><caption class=\"muted\">Select a stage for its chart, alarms, history and commands.</caption>\
<thead><tr><th scope=\"col\">Stage</th><th scope=\"col\">Serving</th><th scope=\"col\">Canary</th><th scope=\"col\">Known good</th><th scope=\"col\">State</th></tr></thead>\n<tbody>{rows}</tbody></table>"
    );
    page("Managed stages", ctx, &body, true)
}

fn code_or_dash(s: Option<&str>) -> String {
    s.map_or_else(|| "–".to_owned(), |s| format!("<code>{}</code>", escape(s)))
}

/// `GET /ui/{api}/{stage}`: one stage.
pub fn render_stage(view: &StageDetail<'_>, ctx: &PageContext) -> String {
    let s = view.status;
    let now = ctx.now_ms;
    let mut b = String::new();
    let _ = write!(b, "<h2>{} / {}", escape(&s.api), escape(&s.stage));
    if s.dry_run {
        b.push_str(" <span class=\"badge warn\">dry run</span>");
    }
    if s.paused.is_some() {
        b.push_str(" <span class=\"badge warn\">paused</span>");
    }
    if view.progress.awaiting_approval {
        b.push_str(" <span class=\"badge warn\">waiting for approval</span>");
    }
    b.push_str("</h2>\n");
    if let Some(e) = &s.error {
        let _ = write!(b, "<p class=\"error\" role=\"alert\">{}</p>", escape(e));
    }
    // Deployments.
    b.push_str("<section aria-labelledby=\"h-dep\"><h3 id=\"h-dep\">Deployments</h3><dl>");
    let _ = write!(
        b,
        "<dt>Serving</dt><dd>{}</dd>",
        code_or_dash(s.deployment_id.as_deref())
    );
    let canary = s.canary.as_ref().map_or_else(
        || "none".to_owned(),
        |c| {
            format!(
                "<code>{}</code> at {}",
                escape(&c.deployment_id),
                percent(c.percent_traffic)
            )
        },
    );
    let _ = write!(b, "<dt>Canary</dt><dd>{canary}</dd>");
    for (label, mark) in [
        ("Known good", &s.known_good),
        ("Previous known good", &s.previous_known_good),
    ] {
        let v = mark.as_ref().map_or_else(
            || "–".to_owned(),
            |m| {
                format!(
                    "<code>{}</code> <span class=\"muted\">since {} ({})</span>",
                    escape(&m.deployment_id),
                    format_time(m.at_ms),
                    ago(m.at_ms, now)
                )
            },
        );
        let _ = write!(b, "<dt>{label}</dt><dd>{v}</dd>");
    }
    if let Some(p) = &s.paused {
        let until = p
            .until_ms
            .map_or_else(String::new, |u| format!(", until {}", format_time(u)));
        let _ = write!(
            b,
            "<dt>Paused</dt><dd>by <code>{}</code> {}{}: {}</dd>",
            escape(&p.by),
            ago(p.since_ms, now),
            until,
            escape(&p.reason)
        );
    }
    b.push_str("</dl></section>\n");
    render_progress(&mut b, view);
    render_edge(&mut b, view.edge, &ctx.base(), &s.api, &s.stage, now);
    render_metrics(&mut b, s, view.metrics, ctx);
    render_alarms(&mut b, s, now);
    render_commands(&mut b, view, ctx);
    render_history(&mut b, s);
    page(&format!("{} / {}", s.api, s.stage), ctx, &b, true)
}

fn render_progress(b: &mut String, view: &StageDetail<'_>) {
    let p = &view.progress;
    b.push_str("<section aria-labelledby=\"h-steps\"><h3 id=\"h-steps\">Canary steps</h3>");
    if p.steps.is_empty() {
        b.push_str("<p class=\"muted\">No steps planned.</p></section>\n");
        return;
    }
    let current = view.status.canary.as_ref().map(|c| c.percent_traffic);
    let text = match (current, p.index) {
        (None, _) => "No canary is active.".to_owned(),
        (Some(c), Some(i)) => format!(
            "Canary at {}: step {} of {}.",
            percent(c),
            i + 1,
            p.steps.len()
        ),
        (Some(c), None) => format!("Canary at {}, between planned steps.", percent(c)),
    };
    let now = current.unwrap_or(0.0);
    let _ = write!(
        b,
        "<p id=\"steps-text\">{text}{}</p><ol class=\"steps\" role=\"progressbar\" aria-valuemin=\"0\" aria-valuemax=\"100\" aria-valuenow=\"{now}\" aria-describedby=\"steps-text\">",
        if p.awaiting_approval { " Waiting for an operator's approval." } else { "" }
    );
    for (i, step) in p.steps.iter().enumerate() {
        let class = match p.index {
            Some(c) if i < c => "done",
            Some(c) if i == c => "current",
            _ if current.is_some_and(|c| step.percent < c) => "done",
            _ => "",
        };
        let gate = if step.approve { " gate" } else { "" };
        let _ = write!(
            b,
            "<li class=\"{class}{gate}\"{aria}>{}{}</li>",
            percent(step.percent),
            if step.approve {
                " <span aria-label=\"approval required\" title=\"approval required\">✋</span>"
            } else {
                ""
            },
            aria = if class == "current" {
                " aria-current=\"step\""
            } else {
                ""
            },
        );
    }
    b.push_str("</ol></section>\n");
}

fn series_points(s: &MetricSeries, rate: bool) -> Vec<(u64, Option<f64>)> {
    s.points
        .iter()
        .map(|p| (p.at_ms, if rate { p.error_rate } else { Some(p.requests) }))
        .collect()
}

fn render_metrics(b: &mut String, s: &StageStatus, m: Option<&StageMetrics>, ctx: &PageContext) {
    b.push_str("<section aria-labelledby=\"h-chart\" class=\"chart\"><h3 id=\"h-chart\">Requests and 5xx error rate</h3>");
    let Some(m) = m else {
        b.push_str("<p class=\"muted\">No metrics.</p></section>\n");
        return;
    };
    let here = format!("{}{}", ctx.base(), stage_href(&s.api, &s.stage));
    let ranges: Vec<String> = [1, 3, 12, 24]
        .iter()
        .map(|h| {
            if *h == m.hours {
                format!("<strong aria-current=\"page\">{h} h</strong>")
            } else {
                format!("<a href=\"{here}?hours={h}\">{h} h</a>")
            }
        })
        .collect();
    let _ = write!(
        b,
        "<p>Last {} h, one point per {} s: {}. <a href=\"{}stages/{}/{}/metrics?hours={}\">JSON</a></p>",
        m.hours,
        m.period_secs,
        ranges.join(" · "),
        ctx.base(),
        path_segment(&s.api),
        path_segment(&s.stage),
        m.hours
    );
    for (series, what) in [(&m.stage_series, "stage"), (&m.canary_series, "canary")] {
        if let Some(e) = &series.error {
            let _ = write!(
                b,
                "<p class=\"error\">The {what}'s metrics (<code>Stage = {}</code>) are unreadable: {}</p>",
                escape(&series.stage_dimension),
                escape(e)
            );
        }
    }
    let _ = write!(
        b,
        "<p class=\"legend\"><span><i class=\"sw\" style=\"background:#1f5fa8\"></i>stage (<code>{}</code>)</span>\
<span><i class=\"sw\" style=\"background:#b3400a\"></i>canary (<code>{}</code>)</span>\
<span><i class=\"sw\" style=\"background:#6b21a8\"></i>actions (numbered; hover for details)</span></p>",
        escape(&m.stage_series.stage_dimension),
        escape(&m.canary_series.stage_dimension)
    );
    for (title, rate) in [("Requests per period", false), ("5xx error rate", true)] {
        let lines = [
            ChartLine {
                label: "stage",
                colour: "#1f5fa8",
                points: series_points(&m.stage_series, rate),
            },
            ChartLine {
                label: "canary",
                colour: "#b3400a",
                points: series_points(&m.canary_series, rate),
            },
        ];
        let _ = write!(
            b,
            "<figure><figcaption>{title}</figcaption>{}</figure>",
            render_chart(
                title,
                &lines,
                m.start_ms,
                m.end_ms,
                if rate { "%" } else { "" },
                &m.actions
            )
        );
    }
    if !m.actions.is_empty() {
        b.push_str("<ol class=\"marks\">");
        for a in &m.actions {
            let _ = write!(
                b,
                "<li>{} <strong>{}</strong> by <code>{}</code> ({}): {}</li>",
                format_time(a.at_ms),
                escape(&a.what),
                escape(&a.who),
                escape(&a.outcome),
                escape(&a.why)
            );
        }
        b.push_str("</ol>");
    }
    b.push_str("</section>\n");
}

fn render_alarms(b: &mut String, s: &StageStatus, now: u64) {
    b.push_str("<section aria-labelledby=\"h-alarms\"><h3 id=\"h-alarms\">Alarms</h3>");
    if s.alarms.is_empty() {
        b.push_str("<p class=\"muted\">No alarms watched.</p></section>\n");
        return;
    }
    b.push_str("<table><thead><tr><th scope=\"col\">Alarm</th><th scope=\"col\">State</th><th scope=\"col\">Since</th></tr></thead><tbody>");
    for (name, r) in &s.alarms {
        let state = r.state.as_aws();
        let since = r.since_ms.map_or_else(
            || "unknown".to_owned(),
            |t| format!("{} ({})", format_time(t), ago(t, now)),
        );
        let _ = write!(
            b,
            "<tr><th scope=\"row\"><code>{}</code></th><td><span class=\"badge {state}\">{state}</span>{}</td><td>{since}</td></tr>",
            escape(name),
            if r.suppressed { " <span class=\"muted\">(actions suppressed)</span>" } else { "" }
        );
    }
    b.push_str("</tbody></table></section>\n");
}

/// The commands offered, in order, with what each does. Only those the
/// control API knows are shown (`advance` and `approve` come with manual
/// gates).
const COMMANDS: [(&str, &str, bool); 6] = [
    ("promote", "Send all traffic to the canary now (skips remaining steps and bake time, not the health check).", false),
    ("advance", "Move the canary to its next planned step now.", false),
    ("approve", "Pass the approval gate the canary waits at.", false),
    ("pause", "Stop automatic progression (rollbacks on alarms still happen).", false),
    ("resume", "Resume automatic progression; bake timers restart.", false),
    ("rollback", "Remove the canary, or roll the stage back to its known-good deployment.", true),
];

fn render_commands(b: &mut String, view: &StageDetail<'_>, ctx: &PageContext) {
    let s = view.status;
    let canary = s.canary.is_some();
    let paused = s.paused.is_some();
    b.push_str("<section aria-labelledby=\"h-cmd\"><h3 id=\"h-cmd\">Commands</h3><p class=\"muted\">Each command asks for a reason, kept in the history and the audit log.</p><div class=\"commands\">");
    for (name, what, danger) in COMMANDS {
        if ManualCommand::from_path(name).is_none() {
            continue;
        }
        let relevant = match name {
            "promote" | "advance" => canary,
            "approve" => view.progress.awaiting_approval,
            "pause" => !paused,
            "resume" => paused,
            _ => true,
        };
        if !relevant {
            continue;
        }
        let duration = if name == "pause" {
            format!(
                "<label for=\"for-{name}\">For how long (optional, e.g. <code>2h</code>)</label>\
<input type=\"text\" id=\"for-{name}\" name=\"for\" pattern=\"[0-9]+ ?[smhd]\" autocomplete=\"off\">"
            )
        } else {
            String::new()
        };
        let _ = write!(
            b,
            "<details class=\"cmd\"><summary>{title}…</summary>\
<form method=\"post\" action=\"{base}stages/{api}/{stage}/{name}\"><p>{what}</p>{csrf}\
<label for=\"reason-{name}\">Reason (required)</label>\
<input type=\"text\" id=\"reason-{name}\" name=\"reason\" required maxlength=\"1000\" autocomplete=\"off\">{duration}\
<button type=\"submit\"{class}>Confirm {name}</button></form></details>",
            title = capitalise(name),
            base = ctx.base(),
            api = path_segment(&s.api),
            stage = path_segment(&s.stage),
            csrf = ctx.csrf_field(),
            class = if danger { " class=\"danger\"" } else { "" },
        );
    }
    b.push_str("</div></section>\n");
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn render_history(b: &mut String, s: &StageStatus) {
    b.push_str("<section aria-labelledby=\"h-hist\"><h3 id=\"h-hist\">History</h3>");
    if s.recent_actions.is_empty() {
        b.push_str("<p class=\"muted\">No actions yet.</p></section>\n");
        return;
    }
    b.push_str("<table><thead><tr><th scope=\"col\">When</th><th scope=\"col\">What</th><th scope=\"col\">Who</th><th scope=\"col\">Why</th><th scope=\"col\">Trigger</th><th scope=\"col\">Outcome</th></tr></thead><tbody>");
    for e in &s.recent_actions {
        let a = crate::metrics::ChartAction::from_entry(e);
        let trigger = match &e.trigger {
            tidegate_policy::rollout::Trigger::AlarmTransition(t) => {
                format!(
                    "alarm <code>{}</code> → {}",
                    escape(&t.alarm),
                    t.new_state.as_aws()
                )
            }
            tidegate_policy::rollout::Trigger::Schedule => "schedule".to_owned(),
            tidegate_policy::rollout::Trigger::Manual { .. } => "operator".to_owned(),
            tidegate_policy::rollout::Trigger::Edge(e) => format!(
                "<span class=\"badge warn\">edge</span> {} {}: {}/{} 5xx, p99 {} ms",
                escape(&e.release),
                e.breach.as_str(),
                e.canary.errors,
                e.canary.requests,
                e.canary.p99_ms
            ),
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td><strong>{}</strong>{}</td><td><code>{}</code></td><td>{}</td><td>{trigger}</td><td>{}</td></tr>",
            format_time(e.at_ms),
            escape(&e.what),
            if e.dry_run { " <span class=\"badge warn\">dry run</span>" } else { "" },
            escape(&e.who),
            escape(&e.why),
            escape(&a.outcome),
        );
    }
    b.push_str("</tbody></table></section>\n");
}

/// `GET /signin`: the form, with `problem` (e.g. why the last attempt
/// failed) and, when browser sign-in is off, the setting that turns it on.
pub fn render_signin(ctx: &PageContext, problem: Option<&str>, disabled: Option<&str>) -> String {
    let mut b = String::from("<h2>Sign in</h2>");
    if let Some(d) = disabled {
        let _ = write!(b, "<p class=\"error\" role=\"alert\">{}</p>", escape(d));
    }
    if let Some(p) = problem {
        let _ = write!(b, "<p class=\"error\" role=\"alert\">{}</p>", escape(p));
    }
    let _ = write!(
        b,
        "<form method=\"post\" action=\"{}signin\">\
<label for=\"credential\">Admin API key or JWT (needs the <code>tidegate:admin</code> scope)</label>\
<input type=\"password\" id=\"credential\" name=\"credential\" required autocomplete=\"off\" autofocus>\
<button type=\"submit\">Sign in</button></form>\
<p class=\"muted\">The credential is checked once and exchanged for a short-lived session cookie; it is not stored.</p>",
        ctx.base()
    );
    page("Sign in", ctx, &b, false)
}
