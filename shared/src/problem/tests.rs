use super::*;

#[test]
fn rate_limit_members_are_flat_and_round_trip() {
    let mut p = Problem::new(429, "rate-limited", "Too many requests");
    p.rate_limit = Some(Box::new(RateLimitRefusal {
        limit: "per-ip".into(),
        retry_after: Some(7),
    }));
    let json = p.to_json();
    assert!(
        json.ends_with(r#""limit":"per-ip","retry_after":7}"#),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<Problem>(&json).unwrap(), p);
    let plain = Problem::new(404, "route-not-found", "No route matches");
    assert_eq!(
        serde_json::from_str::<Problem>(&plain.to_json()).unwrap(),
        plain
    );
}

#[test]
fn renders_rfc9457_fields() {
    let p = Problem::new(404, "route-not-found", "No route matches")
        .with_detail("GET /nope matches no route")
        .with_request_id("abc");
    let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
    assert_eq!(v["type"], "https://tidegate.dev/problems/route-not-found");
    assert_eq!(v["status"], 404);
    assert_eq!(v["request_id"], "abc");
}

#[test]
fn omits_absent_fields() {
    let json = Problem::new(500, "internal", "Internal error").to_json();
    assert!(!json.contains("detail"));
    assert!(!json.contains("request_id"));
}

#[derive(Debug)]
struct Layer(&'static str, Option<Box<Layer>>);

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Layer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.1
            .as_deref()
            .map(|l| l as &(dyn std::error::Error + 'static))
    }
}

#[test]
fn error_chain_joins_every_source() {
    let root = Layer("connection refused", None);
    let mid = Layer("tcp connect error", Some(Box::new(root)));
    let top = Layer("error sending request", Some(Box::new(mid)));
    assert_eq!(
        error_chain(&top),
        "error sending request: tcp connect error: connection refused"
    );
    assert_eq!(error_chain(&Layer("alone", None)), "alone");
}
