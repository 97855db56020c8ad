//! `GET /`: the stages as a small HTML page for people (the data of
//! `GET /stages`, no scripts, no external assets).

use crate::status::StatusList;

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn or_dash(s: Option<&str>) -> String {
    s.map_or_else(|| "–".to_owned(), escape)
}

/// The page for the `GET /stages` document.
pub fn render(data: &StatusList) -> String {
    let mut rows = String::new();
    for s in &data.stages {
        let canary = s.canary.as_ref().map_or_else(
            || "–".to_owned(),
            |c| format!("{} at {}%", escape(&c.deployment_id), c.percent_traffic),
        );
        let canary = if s.awaiting_approval {
            format!("{canary} (waiting for approval)")
        } else {
            canary
        };
        let alarms: Vec<String> = s
            .alarms
            .iter()
            .map(|(name, r)| format!("{}: {}", escape(name), r.state.as_aws()))
            .collect();
        let history: Vec<String> = s
            .recent_actions
            .iter()
            .map(|e| {
                format!(
                    "{} {} by {}: {}",
                    e.at_ms,
                    escape(&e.what),
                    escape(&e.who),
                    escape(&e.why)
                )
            })
            .collect();
        let paused = s.paused.as_ref().map_or_else(
            || "no".to_owned(),
            |p| format!("{} (by {})", escape(&p.reason), escape(&p.by)),
        );
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&s.api),
            escape(&s.stage),
            or_dash(s.deployment_id.as_deref()),
            canary,
            or_dash(s.known_good.as_ref().map(|m| m.deployment_id.as_str())),
            alarms.join("<br>"),
            paused,
            match &s.error {
                Some(e) => escape(e),
                None => history.join("<br>"),
            },
        ));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Tidegate rollouts</title>\
<style>body{{font-family:system-ui,sans-serif;margin:2rem}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}}</style>\
</head><body><h1>Tidegate rollouts</h1>\n<table><tr><th>API</th><th>Stage</th><th>Deployment</th><th>Canary</th><th>Last known good</th><th>Alarms</th><th>Paused</th><th>Recent actions</th></tr>\n{rows}</table></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::StageStatus;
    use tidegate_policy::rollout::{AlarmReading, AlarmState, CanarySnapshot, Pause};

    #[test]
    fn renders_and_escapes() {
        let mut s = StageStatus::new("orders<api>", "prod", false);
        s.deployment_id = Some("d1".into());
        s.canary = Some(CanarySnapshot {
            deployment_id: "d2".into(),
            percent_traffic: 5.0,
            stage_variable_overrides: Default::default(),
        });
        s.alarms
            .insert("a&b".into(), AlarmReading::new(AlarmState::Alarm, 1));
        s.paused = Some(Pause::new(1, "key:ops", "sale <freeze>", None));
        let html = render(&StatusList { stages: vec![s] });
        assert!(html.contains("orders&lt;api&gt;"));
        assert!(html.contains("d2 at 5%"));
        assert!(html.contains("a&amp;b: ALARM"));
        assert!(html.contains("sale &lt;freeze&gt; (by key:ops)"));
        assert!(!html.contains("<api>"));
        assert!(!html.contains("waiting for approval"));
    }

    #[test]
    fn shows_a_canary_waiting_for_approval() {
        let mut s = StageStatus::new("orders-api", "prod", false);
        s.canary = Some(CanarySnapshot {
            deployment_id: "d2".into(),
            percent_traffic: 50.0,
            stage_variable_overrides: Default::default(),
        });
        s.awaiting_approval = true;
        let html = render(&StatusList { stages: vec![s] });
        assert!(html.contains("d2 at 50% (waiting for approval)"), "{html}");
    }
}
