//! Human output: tables and the compact stage view `watch` redraws. Pure
//! functions of the views and the time, so tests pin them down.
//!
//! ```
//! use tidegate_cli::{format_time, table};
//! assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
//! assert_eq!(table(&["A", "BB"], &[vec!["x".into(), "y".into()]]), "A  BB\nx  y\n");
//! ```

use std::fmt::Write as _;

use tidegate_policy::auth::{KeyStatus, KeySummary};

use crate::{HistoryView, StageView, TriggerView};

/// `ms` since the epoch as RFC 3339 UTC, to the second.
pub fn format_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil, for the proleptic Gregorian calendar.
    let z = i64::try_from(days).unwrap_or(i64::MAX / 2) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `secs` since the epoch as RFC 3339.
fn format_secs(secs: u64) -> String {
    format_time(secs.saturating_mul(1000))
}

/// Columns padded to their widest cell, two spaces apart.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// A percentage without a needless `.0`.
fn percent(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{p:.0}%")
    } else {
        format!("{p}%")
    }
}

/// Where the stage stands, in the words of `kubectl argo rollouts`.
pub fn phase(s: &StageView) -> &'static str {
    if s.error.is_some() {
        "Degraded"
    } else if s.awaiting_approval {
        "AwaitingApproval"
    } else if s.paused.is_some() {
        "Paused"
    } else if s.active_canary().is_some() {
        "Progressing"
    } else {
        "Healthy"
    }
}

/// The canary cell: `d2 at 25%`, or `-`.
fn canary_cell(s: &StageView) -> String {
    s.active_canary().map_or("-".into(), |c| {
        format!("{} at {}", c.deployment_id, percent(c.percent_traffic))
    })
}

/// The step cell: `2/4`, or `-`.
fn step_cell(s: &StageView) -> String {
    match (s.step_index, s.steps.len()) {
        (Some(i), n) if n > 0 => format!("{}/{n}", i + 1),
        _ => "-".into(),
    }
}

/// Every managed stage, one row each.
pub fn stage_table(stages: &[StageView]) -> String {
    let rows: Vec<Vec<String>> = stages
        .iter()
        .map(|s| {
            vec![
                s.name(),
                phase(s).into(),
                s.deployment_id.clone().unwrap_or_else(|| "-".into()),
                canary_cell(s),
                step_cell(s),
                s.known_good
                    .as_ref()
                    .map_or("-".into(), |m| m.deployment_id.clone()),
            ]
        })
        .collect();
    table(
        &[
            "STAGE",
            "STATUS",
            "DEPLOYMENT",
            "CANARY",
            "STEP",
            "KNOWN GOOD",
        ],
        &rows,
    )
}

/// The planned steps as a bar and a list: `[#####···············] 25%  5 → [25] → 50 (approve) → 100`.
pub fn steps_line(s: &StageView) -> String {
    let weight = s.active_canary().map_or(0.0, |c| c.percent_traffic);
    let filled = ((weight.clamp(0.0, 100.0) / 5.0).round()) as usize;
    let bar = format!(
        "[{}{}]",
        "#".repeat(filled),
        "·".repeat(20 - filled.min(20))
    );
    let plan: Vec<String> = s
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let mut text = percent(step.percent).trim_end_matches('%').to_owned();
            if step.approve {
                text.push_str(" (approve)");
            }
            if s.step_index == Some(i) {
                format!("[{text}]")
            } else {
                text
            }
        })
        .collect();
    if plan.is_empty() {
        format!("{bar} {}", percent(weight))
    } else {
        format!("{bar} {}  {}", percent(weight), plan.join(" → "))
    }
}

/// One stage in full: the compact view `status API/STAGE` and `watch` print.
pub fn stage_detail(s: &StageView, history: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Stage:       {}{}",
        s.name(),
        if s.dry_run { " (dry run)" } else { "" }
    );
    let _ = writeln!(out, "Status:      {}", phase(s));
    let _ = writeln!(
        out,
        "Deployment:  {}",
        s.deployment_id.as_deref().unwrap_or("-")
    );
    let _ = writeln!(out, "Canary:      {}", canary_cell(s));
    let _ = writeln!(out, "Steps:       {}", steps_line(s));
    if s.awaiting_approval {
        let _ = writeln!(
            out,
            "Waiting:     for approval: tidegate rollout approve {} --reason …",
            s.name()
        );
    }
    if let Some(a) = &s.approval {
        let _ = writeln!(
            out,
            "Approved:    {} at {} by {} at {}: {}",
            a.deployment_id,
            percent(a.percent),
            a.by,
            format_time(a.at_ms),
            a.reason
        );
    }
    if let Some(p) = &s.paused {
        let until = p
            .until_ms
            .map_or(String::new(), |u| format!(" until {}", format_time(u)));
        let _ = writeln!(
            out,
            "Paused:      by {} since {}{until}: {}",
            p.by,
            format_time(p.since_ms),
            p.reason
        );
    }
    let _ = writeln!(
        out,
        "Known good:  {}",
        s.known_good.as_ref().map_or("-".into(), |m| format!(
            "{} (since {})",
            m.deployment_id,
            format_time(m.at_ms)
        ))
    );
    if let Some(e) = &s.error {
        let _ = writeln!(out, "Error:       {e}");
    }
    if !s.alarms.is_empty() {
        let rows: Vec<Vec<String>> = s
            .alarms
            .iter()
            .map(|(name, a)| {
                vec![
                    name.clone(),
                    a.state.as_aws().into(),
                    a.since_ms.map_or("-".into(), format_time),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(&["ALARM", "STATE", "SINCE"], &rows));
    }
    if history > 0 && !s.recent_actions.is_empty() {
        out.push('\n');
        let n = history.min(s.recent_actions.len());
        out.push_str(&history_table(
            s.recent_actions.get(..n).unwrap_or_default(),
        ));
    }
    out
}

/// History entries, newest first.
pub fn history_table(entries: &[HistoryView]) -> String {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                format_time(e.at_ms),
                if e.dry_run {
                    format!("{} (dry run)", e.what)
                } else {
                    e.what.clone()
                },
                e.who.clone(),
                e.trigger
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), TriggerView::describe),
                e.outcome.describe(),
                e.why.clone(),
            ]
        })
        .collect();
    table(&["WHEN", "WHAT", "WHO", "TRIGGER", "OUTCOME", "WHY"], &rows)
}

/// One line per change, for `watch` when stdout is not a TTY.
pub fn watch_line(s: &StageView, now_ms: u64) -> String {
    format!(
        "{} {} {} deployment={} canary={} steps={}",
        format_time(now_ms),
        s.name(),
        phase(s),
        s.deployment_id.as_deref().unwrap_or("-"),
        canary_cell(s).replace(' ', ""),
        step_cell(s),
    )
}

/// Key summaries, one row each.
pub fn key_table(keys: &[KeySummary]) -> String {
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.id.clone(),
                k.consumer.clone(),
                k.tier.clone().unwrap_or_else(|| "-".into()),
                k.status.map_or("-", KeyStatus::as_str).to_owned(),
                format_secs(k.created_at),
                k.expires_at.map_or("-".into(), format_secs),
                k.hash_prefix.clone(),
            ]
        })
        .collect();
    table(
        &[
            "ID", "CONSUMER", "TIER", "STATUS", "CREATED", "EXPIRES", "HASH",
        ],
        &rows,
    )
}
