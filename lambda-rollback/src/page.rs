//! `GET /`: the stages as a small HTML page for people (the data of
//! `GET /stages`, no scripts, no external assets).

use serde_json::Value;

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

fn text(v: &Value) -> String {
    match v {
        Value::Null => "–".into(),
        Value::String(s) => escape(s),
        other => escape(&other.to_string()),
    }
}

/// The page for the `GET /stages` document `data` (`{"stages": [...]}`).
pub fn render(data: &Value) -> String {
    let mut rows = String::new();
    for s in data["stages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let canary = match &s["canary"] {
            Value::Null => "–".to_owned(),
            c => format!(
                "{} at {}%",
                text(&c["deployment_id"]),
                text(&c["percent_traffic"])
            ),
        };
        let alarms: Vec<String> = s["alarms"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(name, r)| format!("{}: {}", escape(name), text(&r["state"])))
                    .collect()
            })
            .unwrap_or_default();
        let history: Vec<String> = s["recent_actions"]
            .as_array()
            .map(|h| {
                h.iter()
                    .map(|e| format!("{} {}", text(&e["kind"]), text(&e["deployment_id"])))
                    .collect()
            })
            .unwrap_or_default();
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            text(&s["api"]),
            text(&s["stage"]),
            text(&s["deployment_id"]),
            canary,
            text(&s["known_good"]),
            alarms.join("<br>"),
            if s["paused"].is_null() { "no".to_owned() } else { text(&s["paused"]["reason"]) },
            if let Some(e) = s["error"].as_str() { escape(e) } else { history.join("<br>") },
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

    #[test]
    fn renders_and_escapes() {
        let data = serde_json::json!({"stages": [{
            "api": "orders<api>", "stage": "prod", "deployment_id": "d1",
            "canary": {"deployment_id": "d2", "percent_traffic": 5.0},
            "alarms": {"a&b": {"state": "ALARM"}},
            "paused": null, "recent_actions": [{"kind": "rollback_stage", "deployment_id": "d0"}]
        }]});
        let html = render(&data);
        assert!(html.contains("orders&lt;api&gt;"));
        assert!(html.contains("d2 at 5.0%"));
        assert!(html.contains("a&amp;b: ALARM"));
        assert!(html.contains("rollback_stage d0"));
        assert!(!html.contains("<api>"));
    }
}
