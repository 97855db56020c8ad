//! Line charts as inline SVG, drawn on the server: one line per series,
//! the window on the x axis, and a numbered, dashed mark per action.

use std::fmt::Write as _;

use super::text::{escape, format_clock, format_clock_secs, format_time};
use crate::metrics::ChartAction;

const W: f64 = 820.0;
const H: f64 = 190.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 28.0;
const TOP: f64 = 18.0;
const BOTTOM: f64 = 26.0;

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartLine<'a> {
    /// Legend text.
    pub label: &'a str,
    /// CSS colour.
    pub colour: &'a str,
    /// `(at_ms, value)`, oldest first; `None` values break the line.
    pub points: Vec<(u64, Option<f64>)>,
}

/// An SVG chart of `lines` over `[start_ms, end_ms]` with `actions`
/// marked; `unit` formats the y axis (`"%"` shows fractions as percent).
pub fn render_chart(
    title: &str,
    lines: &[ChartLine<'_>],
    start_ms: u64,
    end_ms: u64,
    unit: &str,
    actions: &[ChartAction],
) -> String {
    let span = end_ms.saturating_sub(start_ms).max(1) as f64;
    let max = lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let top = nice_ceiling(max, unit);
    let x =
        |t: u64| LEFT + (t.saturating_sub(start_ms) as f64 / span).min(1.0) * (W - LEFT - RIGHT);
    let y = |v: f64| TOP + (1.0 - (v / top).clamp(0.0, 1.0)) * (H - TOP - BOTTOM);
    let fmt_y = |v: f64| {
        if unit == "%" {
            let p = v * 100.0;
            if (p - p.round()).abs() < 1e-9 {
                format!("{p:.0} %")
            } else {
                format!("{p:.1} %")
            }
        } else if v >= 10.0 || v == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    };
    let mut svg = String::new();
    let summary = lines
        .iter()
        .map(|l| {
            let n = l.points.iter().filter(|p| p.1.is_some()).count();
            format!("{}: {n} points", l.label)
        })
        .collect::<Vec<_>>()
        .join("; ");
    let _ = write!(
        svg,
        "<svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\" xmlns=\"http://www.w3.org/2000/svg\">\
<title id=\"{id}-t\">{t}</title><desc id=\"{id}-d\">{d}; {n} actions marked; from {from} to {to}</desc>",
        id = escape(&title.to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "-")),
        t = escape(title),
        d = escape(&summary),
        n = actions.len(),
        from = format_time(start_ms),
        to = format_time(end_ms),
    );
    // Grid and y labels: 0, half, top.
    for frac in [0.0, 0.5, 1.0] {
        let v = top * frac;
        let yy = y(v);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#d0d0d0\"/>\
<text x=\"{lx}\" y=\"{ty:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#4a4a4a\">{label}</text>",
            x2 = W - RIGHT,
            lx = LEFT - 6.0,
            ty = yy + 4.0,
            label = fmt_y(v),
        );
    }
    // X labels: about six, on whole minutes; under six minutes (the edge's
    // per-second charts), on whole ten seconds, with the seconds shown.
    let span_ms = end_ms - start_ms.min(end_ms);
    let fine = span_ms < 6 * 60_000;
    let unit = if fine { 10_000 } else { 60_000 };
    let step = (span_ms / 6).max(unit) / unit * unit;
    let mut t = start_ms;
    while t <= end_ms {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#4a4a4a\">{}</text>",
            x(t),
            H - 8.0,
            if fine { format_clock_secs(t) } else { format_clock(t) }
        );
        t = t.saturating_add(step);
    }
    for line in lines {
        let mut run: Vec<String> = Vec::new();
        let flush = |run: &mut Vec<String>, svg: &mut String| {
            match run.as_slice() {
                [] => {}
                [only] => {
                    let (cx, cy) = only.split_once(',').unwrap_or(("0", "0"));
                    let _ = write!(
                        svg,
                        "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"2.5\" fill=\"{}\"/>",
                        line.colour
                    );
                }
                _ => {
                    let _ = write!(
                        svg,
                        "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
                        line.colour,
                        run.join(" ")
                    );
                }
            }
            run.clear();
        };
        for (t, v) in &line.points {
            match v {
                Some(v) if v.is_finite() => run.push(format!("{:.1},{:.1}", x(*t), y(*v))),
                _ => flush(&mut run, &mut svg),
            }
        }
        flush(&mut run, &mut svg);
    }
    // Marks closer than a circle's width stack downwards, so each number
    // stays readable.
    let mut last: Option<(f64, f64)> = None;
    for (i, a) in actions.iter().enumerate() {
        let ax = x(a.at_ms);
        let cy = match last {
            Some((lx, ly)) if (ax - lx).abs() < 16.0 && ly + 18.0 < H - BOTTOM => ly + 18.0,
            _ => TOP,
        };
        last = Some((ax, cy));
        let _ = write!(
            svg,
            "<g><title>{n}. {when}: {what} by {who} ({outcome}): {why}</title>\
<line x1=\"{ax:.1}\" x2=\"{ax:.1}\" y1=\"{TOP}\" y2=\"{y2}\" stroke=\"#6b21a8\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>\
<circle cx=\"{ax:.1}\" cy=\"{cy}\" r=\"8\" fill=\"#6b21a8\"/>\
<text x=\"{ax:.1}\" y=\"{ty}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#fff\">{n}</text></g>",
            n = i + 1,
            when = format_time(a.at_ms),
            what = escape(&a.what),
            who = escape(&a.who),
            outcome = escape(&a.outcome),
            why = escape(&a.why),
            y2 = H - BOTTOM,
            ty = cy + 3.5,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A round upper bound for the y axis (at least a little above zero).
fn nice_ceiling(max: f64, unit: &str) -> f64 {
    if unit == "%" {
        // Error rates: 5 %, 10 %, 25 %, 50 %, 100 %.
        return [0.05, 0.1, 0.25, 0.5, 1.0]
            .into_iter()
            .find(|c| max <= *c)
            .unwrap_or(1.0);
    }
    if max <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|c| max <= *c)
        .unwrap_or(10.0 * mag)
}
