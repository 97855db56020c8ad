use std::time::Duration;

use proptest::prelude::*;

use super::*;

const MINIMAL: &str = r#"
[[routes]]
name = "all"
path = "/*"
upstream = "https://origin.example.com"
auth = { require = "none" }
"#;

fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn minimal_file_gets_every_default() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(config.gateway, GatewaySettings::default());
    let route = &config.routes[0];
    assert_eq!(route.timeout, GatewaySettings::DEFAULT_TIMEOUT);
    assert!(route.methods.is_empty());
    assert!(!route.forward_credentials);
    assert!(route.rate_limit.is_none() && route.cache.is_none());
}

#[test]
fn server_timing_is_on_by_default_and_can_be_withheld() {
    assert!(GatewaySettings::default().server_timing);
    let off = parse(&format!("[gateway]\nserver_timing = false\n{MINIMAL}")).unwrap();
    assert!(!off.gateway.server_timing);
    // Written out and read back the same.
    let text = toml::to_string(&off.to_file()).unwrap();
    assert!(!parse(&text).unwrap().gateway.server_timing, "{text}");
    let bad = problems("[gateway]\nserver_timing = \"no\"\n");
    assert!(bad.iter().any(|p| p.contains("server_timing")), "{bad:?}");
}

#[test]
fn empty_file_is_a_valid_gateway_with_no_routes() {
    assert_eq!(parse("").unwrap(), GatewayConfig::empty());
}

#[test]
fn json_is_accepted_with_the_same_structure() {
    let json = r#"{"$schema": "./gateway.schema.json", "routes": [{"name": "all", "path": "/*",
        "upstream": "https://origin.example.com", "auth": {"require": "none"}}]}"#;
    assert_eq!(parse(json).unwrap(), parse(MINIMAL).unwrap());
}

#[test]
fn syntax_errors_name_the_format_and_position() {
    let toml = problems("[[routes]\nname = 1");
    assert_eq!(toml.len(), 1);
    assert!(
        toml[0].starts_with("the file is not valid TOML"),
        "{toml:?}"
    );
    assert!(toml[0].contains("line 1"), "{toml:?}");
    let json = problems("{\"routes\": [}");
    assert!(
        json[0].starts_with("the file is not valid JSON"),
        "{json:?}"
    );
}

#[test]
fn a_non_table_document_is_refused() {
    let errors = parse_as("[1, 2]", Format::Json).unwrap_err();
    assert!(errors.to_string().contains("must be a table"), "{errors}");
    assert!(problems("{\"routes\": []} ").is_empty());
}

#[test]
fn routes_must_be_a_list() {
    let p = problems("routes = 3");
    assert_eq!(
        p,
        ["routes: must be a list; in TOML write each item as [[routes]]"]
    );
}

#[test]
fn sections_of_the_wrong_type_are_reported() {
    for (text, path) in [
        ("rollback = 5", "rollback"),
        ("gateway = \"x\"", "gateway"),
        ("api_keys = []", "api_keys"),
        ("issuers = {}", "issuers"),
        ("[rollback]\nstages = 1", "rollback.stages"),
        ("[[rollback.stages]]\nstage = 1", "rollback.stages[0].stage"),
    ] {
        let p = problems(text);
        assert_eq!(p.len(), 1, "{text}: {p:?}");
        assert!(p[0].starts_with(&format!("{path}: ")), "{text}: {p:?}");
    }
}

#[test]
fn one_malformed_route_does_not_hide_problems_elsewhere() {
    let text = format!(
        "{MINIMAL}\n[[routes]]\nname = 7\n\n[[routes]]\nname = \"b\"\npath = \"/b\"\n\
         upstream = \"https://o\"\ntimeout = \"soon\"\nauth = {{ require = \"none\" }}\n"
    );
    let p = problems(&text);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].starts_with("routes[1].name: invalid type"), "{p:?}");
    assert!(p[1].starts_with("routes[2].timeout: `soon`"), "{p:?}");
}

#[test]
fn references_to_a_malformed_issuer_are_not_reported_twice() {
    let text = r#"
        [[issuers]]
        name = "idp"
        issuer = 5
        [[routes]]
        name = "r"
        path = "/r"
        upstream = "https://o"
        auth = { require = "jwt", issuers = ["idp"] }
    "#;
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("issuers[0].issuer"), "{p:?}");
}

#[test]
fn hmac_issuers_need_inline_keys_and_no_asymmetric_neighbours() {
    let text = r#"
        [[issuers]]
        name = "a"
        issuer = "a"
        audiences = ["x"]
        algorithms = ["HS256", "RS256"]
        jwks = { keys = [{ kty = "oct", k = "c2VjcmV0", kid = "1" }] }
    "#;
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("mixes HS* with asymmetric"), "{p:?}");
    let ok = text.replace(", \"RS256\"", "");
    let config = parse(&ok).unwrap();
    assert!(matches!(config.issuers[0].jwks, JwksSource::Inline(_)));
}

#[test]
fn redaction_hides_symmetric_and_private_key_material() {
    let text = r#"
        [[issuers]]
        name = "a"
        issuer = "a"
        audiences = ["x"]
        algorithms = ["HS256"]
        jwks = { keys = [{ kty = "oct", k = "c2VjcmV0", kid = "1" }] }
    "#;
    let config = parse(text).unwrap();
    let shown = serde_json::to_string(&config.redacted()).unwrap();
    assert!(!shown.contains("c2VjcmV0"), "{shown}");
    assert!(shown.contains("[redacted]"));
}

#[test]
fn jwks_over_plain_http_is_only_for_localhost() {
    let issuer = |url: &str| {
        format!(
            "[[issuers]]\nname = \"a\"\nissuer = \"a\"\naudiences = [\"x\"]\n\
             algorithms = [\"RS256\"]\njwks_url = \"{url}\"\n"
        )
    };
    assert!(problems(&issuer("http://127.0.0.1:9999/jwks")).is_empty());
    assert!(problems(&issuer("http://localhost/jwks")).is_empty());
    assert_eq!(problems(&issuer("http://idp.example.com/jwks")).len(), 1);
}

#[test]
fn limits_default_burst_to_limit_and_cost_to_one() {
    let text = r#"
        [[routes]]
        name = "r"
        path = "/r"
        upstream = "https://o"
        auth = { require = "none" }
        rate_limit = { limits = [{ name = "l", limit = 7, period = "1m", key = "client_ip" }] }
    "#;
    let config = parse(text).unwrap();
    let policy = config.routes[0].rate_limit.as_ref().unwrap();
    assert_eq!(policy.on_error, FailureMode::Closed);
    assert!(!policy.shadow);
    let limit = &policy.limits[0];
    assert_eq!(limit.quota.burst, 7);
    assert_eq!(limit.quota.period, Duration::from_secs(60));
    assert_eq!(limit.cost, 1);
}

#[test]
fn leases_default_to_auto_with_a_bounded_window() {
    let route = |extra: &str| {
        format!(
            "[api_keys]\n[[routes]]\nname = \"r\"\npath = \"/r\"\nupstream = \"https://o\"\n\
             auth = {{ require = \"none\" }}\n[routes.rate_limit]\n{extra}\n\
             limits = [{{ name = \"l\", limit = 7, period = \"1m\", key = \"client_ip\" }}]\n"
        )
    };
    let lease = |extra: &str| {
        parse(&route(extra)).unwrap().routes[0]
            .rate_limit
            .as_ref()
            .unwrap()
            .lease
    };
    assert_eq!(
        lease(""),
        Some(crate::throttle::LeaseConfig { window_ms: 250 })
    );
    assert_eq!(lease("lease = \"off\""), None);
    assert_eq!(
        lease("lease_window = \"1s\""),
        Some(crate::throttle::LeaseConfig { window_ms: 1_000 })
    );
    for bad in [
        "lease_window = \"5ms\"",
        "lease_window = \"6s\"",
        "lease = \"always\"",
    ] {
        assert_eq!(problems(&route(bad)).len(), 1, "{bad}");
    }
}

#[test]
fn routes_under_the_admin_prefix_are_refused() {
    let text = MINIMAL.replace("/*", "/__tidegate/x");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("admin prefix"), "{p:?}");
}

#[test]
fn stage_defaults_and_dimension_template() {
    let text = r#"
        [rollback]
        dry_run = true
        [[rollback.stages]]
        rest_api_id = "abc"
        stage = "prod"
        stage_alarms = ["a"]
    "#;
    let config = parse(text).unwrap();
    let stage = &config.rollback.unwrap().stages[0];
    assert!(stage.dry_run, "the section's dry_run applies to its stages");
    assert_eq!(
        stage.canary_steps,
        ManagedStage::DEFAULT_CANARY_STEPS.to_vec()
    );
    assert_eq!(stage.canary_stage_dimension_value(), "prod/Canary");
}

fn stage_with_steps(steps: &str) -> String {
    format!(
        "[[rollback.stages]]\nrest_api_id = \"abc\"\nstage = \"prod\"\nstage_alarms = [\"a\"]\ncanary_steps = {steps}\n"
    )
}

#[test]
fn canary_steps_mix_numbers_and_approval_gates() {
    let text = stage_with_steps("[5, 25, { percent = 50, approve = true }, { percent = 100 }]");
    let config = parse(&text).unwrap();
    let stage = &config.rollback.as_ref().unwrap().stages[0];
    assert_eq!(
        stage.canary_steps,
        vec![
            CanaryStep::at(5.0),
            CanaryStep::at(25.0),
            CanaryStep::at(50.0).gated(),
            CanaryStep::at(100.0),
        ]
    );
    // Rendered back, the gate stays a table and plain steps stay numbers.
    let rendered = config.to_toml_string();
    let again = parse(&rendered).unwrap();
    assert_eq!(
        again.rollback.unwrap().stages[0].canary_steps,
        stage.canary_steps
    );
    assert!(rendered.contains("approve = true"), "{rendered}");
}

#[test]
fn canary_step_errors_name_the_entry_and_the_fix() {
    let cases = [
        (
            "[5, { percent = 150, approve = true }, 100]",
            "rollback.stages[0].canary_steps[1].percent",
            "at most 100",
        ),
        ("[0, 100]", "rollback.stages[0].canary_steps[0]", "above 0"),
        (
            "[5, { percent = 50, aprove = true }, 100]",
            "rollback.stages[0].canary_steps[1].aprove",
            "expected `percent` or `approve`",
        ),
        (
            "[5, \"50\", 100]",
            "rollback.stages[0].canary_steps[1]",
            "{ percent = 50, approve = true }",
        ),
        (
            "[5, { approve = true }, 100]",
            "rollback.stages[0].canary_steps[1]",
            "missing field `percent`",
        ),
        (
            "[5, { percent = 50, approve = \"yes\" }, 100]",
            "rollback.stages[0].canary_steps[1].approve",
            "boolean",
        ),
        (
            "[50, { percent = 25, approve = true }, 100]",
            "rollback.stages[0].canary_steps",
            "strictly increasing",
        ),
        (
            "[5, 50]",
            "rollback.stages[0].canary_steps",
            "ending at 100",
        ),
        ("[]", "rollback.stages[0].canary_steps", "ending at 100"),
    ];
    for (steps, path, fix) in cases {
        let p = problems(&stage_with_steps(steps));
        assert_eq!(p.len(), 1, "{steps}: {p:?}");
        assert!(p[0].starts_with(&format!("{path}:")), "{steps}: {p:?}");
        assert!(p[0].contains(fix), "{steps}: {p:?}");
    }
}

#[test]
fn duplicate_stages_are_refused() {
    let text = r#"
        [[rollback.stages]]
        rest_api_id = "abc"
        stage = "prod"
        stage_alarms = ["a"]
        [[rollback.stages]]
        rest_api_id = "abc"
        stage = "prod"
        stage_alarms = ["b"]
    "#;
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("stage names must be unique"), "{p:?}");
}

#[test]
fn schema_describes_every_section() {
    let schema = json_schema();
    for section in ["gateway", "issuers", "api_keys", "routes", "rollback"] {
        assert!(
            schema["properties"][section].is_object(),
            "schema lacks {section}"
        );
    }
}

// --- round trip -------------------------------------------------------------

fn duration_text() -> impl Strategy<Value = String> {
    (1u64..100, prop::sample::select(vec!["s", "m", "h"])).prop_map(|(n, u)| format!("{n}{u}"))
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,8}"
}

prop_compose! {
    fn route_text(index: usize)(
        segment in "[a-z]{1,6}",
        param in prop::bool::ANY,
        methods in prop::sample::subsequence(vec!["GET", "HEAD", "POST"], 1..=3),
        timeout in duration_text(),
        limit in 1u64..1000,
        period in duration_text(),
        key in prop::sample::select(vec!["client_ip", "route"]),
        cache_ttl in prop::option::of(duration_text()),
        shadow in prop::bool::ANY,
    ) -> String {
        let path = if param { format!("/r{index}/{segment}/{{id}}") } else { format!("/r{index}/{segment}/*") };
        let cache = match cache_ttl {
            Some(ttl) if methods.contains(&"GET") => format!("cache = {{ ttl = \"{ttl}\", vary_query = [\"page\"] }}\n"),
            _ => String::new(),
        };
        let methods: Vec<String> = methods.iter().map(|m| format!("\"{m}\"")).collect();
        format!(
            "[[routes]]\nname = \"route-{index}\"\nmethods = [{}]\npath = \"{path}\"\n\
             upstream = \"https://origin{index}.example.com/base\"\ntimeout = \"{}\"\n\
             auth = {{ require = \"none\" }}\n\
             rate_limit = {{ shadow = {shadow}, limits = [{{ name = \"l\", limit = {limit}, period = \"{period}\", key = \"{key}\" }}] }}\n{cache}\n",
            methods.join(", "),
            // Keep the timeout in range: minutes and hours above 5m are refused.
            if timeout.ends_with('s') { timeout } else { "30s".to_owned() },
        )
    }
}

prop_compose! {
    fn stage_text(index: usize)(
        stage in name(),
        threshold in 0.001f64..1.0,
        min_requests in 1u64..10_000,
        bake in duration_text(),
        dry_run in prop::bool::ANY,
    ) -> String {
        format!(
            "[[rollback.stages]]\nrest_api_name = \"api-{index}\"\nstage = \"{stage}\"\n\
             stage_alarms = [\"alarm-{index}\"]\nerror_rate_threshold = {threshold}\n\
             min_requests = {min_requests}\nbake_time = \"{bake}\"\ndry_run = {dry_run}\n\n"
        )
    }
}

fn config_text() -> impl Strategy<Value = String> {
    (1usize..6, 0usize..3)
        .prop_flat_map(|(routes, stages)| {
            let routes: Vec<_> = (0..routes).map(route_text).collect();
            let stages: Vec<_> = (0..stages).map(stage_text).collect();
            (routes, stages)
        })
        .prop_map(|(routes, stages)| format!("{}{}", routes.concat(), stages.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn rendering_then_parsing_gives_the_same_config(text in config_text()) {
        let config = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let rendered = config.to_toml_string();
        let again = parse(&rendered).map_err(|e| TestCaseError::fail(format!("{e}\n{rendered}")))?;
        prop_assert_eq!(&config, &again);
        let json = serde_json::to_string(&config.to_file()).unwrap();
        prop_assert_eq!(&config, &parse(&json).unwrap());
    }

    #[test]
    fn parsing_never_panics(text in ".{0,200}") {
        let _ = parse(&text);
    }

    #[test]
    fn parsing_damaged_examples_never_panics(cut in 0usize..4000, junk in "[\\[\\]{}=\"a-z0-9 \n]{0,8}") {
        let example = include_str!("../../../examples/gateway.toml");
        let cut = cut.min(example.len());
        let cut = (0..=cut).rev().find(|i| example.is_char_boundary(*i)).unwrap_or(0);
        let damaged = format!("{}{junk}{}", &example[..cut], &example[cut..]);
        let _ = parse(&damaged);
    }
}

const HEALTH: &str = r#"
[[routes]]
name = "orders"
path = "/v1/orders/*"
upstream = "https://origin.example.com"
auth = { require = "none" }

[health]
signal_url = "https://abc.lambda-url.us-east-1.on.aws/edge/health"

[[health.stages]]
api = "shop"
stage = "prod"
routes = ["orders"]
"#;

#[test]
fn health_gets_every_default_and_round_trips() {
    let config = parse(HEALTH).unwrap();
    let h = config.health.as_ref().unwrap();
    assert_eq!(h.release_header, "x-tidegate-release");
    assert_eq!(h.canary_release, "canary");
    assert_eq!(h.judge, crate::health::JudgeSettings::default());
    assert_eq!(h.cooldown, Duration::from_secs(60));
    assert_eq!(h.stage_of_route("orders").unwrap().key(), "shop/prod");
    assert!(h.stage("shop/prod").is_some() && h.stage_of_route("other").is_none());
    let text = serde_json::to_string(&config.to_file()).unwrap();
    assert_eq!(parse(&text).unwrap(), config);
    assert!(parse(MINIMAL).unwrap().health.is_none());
}

#[test]
fn health_errors_name_their_paths() {
    let bad = HEALTH
        .replace("https://abc", "http://abc")
        .replace("routes = [\"orders\"]", "routes = [\"nope\"]")
        + "[health.x]\n";
    let p = problems(&bad).join("\n");
    assert!(p.contains("health"), "{p}");
    let bad = HEALTH
        .replace("https://abc", "http://abc")
        .replace("routes = [\"orders\"]", "routes = [\"nope\"]");
    let p = problems(&bad).join("\n");
    assert!(p.contains("health.signal_url"), "{p}");
    assert!(
        p.contains("health.stages[0].routes[0]: refers to route `nope`"),
        "{p}"
    );
    let bad = HEALTH.replace(
        "[health]\n",
        "[health]\nwindow = \"5s\"\nfast_window = \"20s\"\ncritical_z = 0.5\nerror_margin = 2\nlatency_factor = 1.0\nmin_errors = 0\nrelease_header = \"a b\"\n",
    );
    let p = problems(&bad).join("\n");
    for path in [
        "health.window",
        "health.critical_z",
        "health.error_margin",
        "health.latency_factor",
        "health.min_errors",
        "health.release_header",
    ] {
        assert!(p.contains(path), "{path}: {p}");
    }
    let bad = HEALTH.replace(
        "[health]\n",
        "[health]\nwindow = \"30s\"\nfast_window = \"40s\"\n",
    );
    assert!(problems(&bad)
        .join("\n")
        .contains("health.fast_window: is longer"));
    // With [rollback] in the same file, the stage must be one of its stages.
    let with_rollback =
        format!("{HEALTH}\n[[rollback.stages]]\nrest_api_name = \"shop\"\nstage = \"beta\"\n");
    let p = problems(&with_rollback).join("\n");
    assert!(p.contains("refers to rollback stage `shop/prod`"), "{p}");
    let ok = format!("{HEALTH}\n[[rollback.stages]]\nrest_api_name = \"shop\"\nstage = \"prod\"\nstage_alarms = [\"a\"]\n");
    assert_eq!(problems(&ok), Vec::<String>::new());
    let none = HEALTH.replace(
        "[[health.stages]]\napi = \"shop\"\nstage = \"prod\"\nroutes = [\"orders\"]\n",
        "",
    );
    assert!(problems(&none)
        .join("\n")
        .contains("health.stages: is missing"));
}

#[test]
fn a_public_plain_route_proxies_directly_for_safe_methods_only() {
    use crate::route::Method;
    let config = parse(MINIMAL).unwrap();
    let route = &config.routes[0];
    assert!(config.proxies_directly(route, Method::Get));
    assert!(config.proxies_directly(route, Method::Head));
    // Unsafe methods may invalidate cached entries; OPTIONS may be a preflight.
    for method in [
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Options,
    ] {
        assert!(!config.proxies_directly(route, method), "{method:?}");
    }
}

#[test]
fn any_asynchronous_feature_takes_the_full_path() {
    use crate::route::Method;
    let variants = [
        "auth = { require = \"none\" }\nrate_limit = { limits = [{ name = \"ip\", limit = 5, period = \"1m\", key = \"route\" }], lease = \"off\" }",
        "auth = { require = \"none\" }\ncache = { ttl = \"1m\" }",
        "auth = { require = \"none\" }\ncors = { allow_origins = [\"https://app.example.com\"] }",
    ];
    for tail in variants {
        let text = format!(
            "[api_keys]\n[[issuers]]\nname = \"i\"\nissuer = \"https://idp.example.com/\"\naudiences = [\"api\"]\nalgorithms = [\"RS256\"]\njwks_url = \"https://idp.example.com/jwks.json\"\n[[routes]]\nname = \"r\"\npath = \"/*\"\nupstream = \"https://origin.example.com\"\n{tail}\n"
        );
        let config = parse(&text).unwrap_or_else(|e| panic!("{tail}: {e}"));
        assert!(
            !config.proxies_directly(&config.routes[0], Method::Get),
            "{tail}"
        );
    }
    let health = parse(HEALTH).unwrap();
    assert!(!health.proxies_directly(&health.routes[0], Method::Get));
}

#[test]
fn a_cached_route_serves_fresh_hits_directly_for_safe_methods_only() {
    use crate::route::Method;
    let route = |tail: &str| {
        format!("[[routes]]\nname = \"r\"\npath = \"/*\"\nupstream = \"https://origin.example.com\"\nauth = {{ require = \"none\" }}\n{tail}\n")
    };
    let cached = parse(&route("cache = { ttl = \"1m\" }")).unwrap();
    let r = &cached.routes[0];
    assert!(cached.serves_hits_directly(r, Method::Get));
    assert!(cached.serves_hits_directly(r, Method::Head));
    assert!(cached.fills_misses_directly(r, Method::Get));
    assert!(cached.fills_misses_directly(r, Method::Head));
    assert!(!cached.proxies_directly(r, Method::Get));
    for method in [Method::Post, Method::Put, Method::Delete, Method::Options] {
        assert!(!cached.serves_hits_directly(r, method), "{method:?}");
        assert!(!cached.fills_misses_directly(r, method), "{method:?}");
    }
    // A route without a cache rule is the proxy's, not the lookup's.
    let plain = parse(&route("")).unwrap();
    assert!(!plain.serves_hits_directly(&plain.routes[0], Method::Get));
    // CORS and an unleased limit need the full path; a leased limit does not.
    for (tail, direct) in [
        ("cache = { ttl = \"1m\" }\ncors = { allow_origins = [\"https://app.example.com\"] }", false),
        ("cache = { ttl = \"1m\" }\nrate_limit = { limits = [{ name = \"ip\", limit = 5, period = \"1m\", key = \"route\" }], lease = \"off\" }", false),
        ("cache = { ttl = \"1m\" }\nrate_limit = { limits = [{ name = \"ip\", limit = 5, period = \"1m\", key = \"route\" }] }", true),
    ] {
        let config = parse(&route(tail)).unwrap_or_else(|e| panic!("{tail}: {e}"));
        assert_eq!(
            config.serves_hits_directly(&config.routes[0], Method::Get),
            direct,
            "{tail}"
        );
    }
}

#[test]
fn release_health_keeps_proxies_and_misses_but_not_cache_hits_off_the_fast_path() {
    // Health counts origin answers only; a fresh hit has none.
    use crate::route::Method;
    let plain = parse(HEALTH).unwrap();
    assert!(!plain.proxies_directly(&plain.routes[0], Method::Get));
    let auth = "auth = { require = \"none\" }\n";
    let cached =
        parse(&HEALTH.replacen(auth, &format!("{auth}cache = {{ ttl = \"1m\" }}\n"), 1)).unwrap();
    assert!(cached.routes[0].cache.is_some());
    assert!(cached.serves_hits_directly(&cached.routes[0], Method::Get));
    // A miss is an origin answer: the full path records it.
    assert!(!cached.fills_misses_directly(&cached.routes[0], Method::Get));
}

#[test]
fn a_leased_limit_may_proxy_directly() {
    // Its lease may admit at once (`throttle::admit_from_leases` decides per
    // request); leases are on (`auto`) by default.
    use crate::route::Method;
    let text = "[[routes]]\nname = \"r\"\npath = \"/*\"\nupstream = \"https://origin.example.com\"\nauth = { require = \"none\" }\nrate_limit = { limits = [{ name = \"ip\", limit = 5, period = \"1m\", key = \"route\" }] }\n";
    let config = parse(text).unwrap();
    assert!(config.proxies_directly(&config.routes[0], Method::Get));
}

#[test]
fn a_route_that_takes_only_jwts_may_proxy_directly() {
    // Its caller is known at once when the token is remembered verified
    // (`auth::authenticate_at_once` decides per request).
    use crate::route::Method;
    let text = "[[issuers]]\nname = \"i\"\nissuer = \"https://idp.example.com/\"\naudiences = [\"api\"]\nalgorithms = [\"RS256\"]\njwks_url = \"https://idp.example.com/jwks.json\"\n\
        [[routes]]\nname = \"r\"\npath = \"/*\"\nupstream = \"https://origin.example.com\"\nauth = { require = \"jwt\", scopes = [\"read\"] }\n";
    let config = parse(text).unwrap();
    assert!(config.proxies_directly(&config.routes[0], Method::Get));
    assert!(!config.proxies_directly(&config.routes[0], Method::Post));
}

#[test]
fn only_a_route_that_asserts_identity_is_kept_off_the_fast_path_by_assertion() {
    use crate::route::Method;
    let text = "[assertion]\nissuer = \"https://edge.example.com\"\n\
        [[routes]]\nname = \"plain\"\npath = \"/plain/*\"\nupstream = \"https://o.example.com\"\nauth = { require = \"none\" }\n\
        [[routes]]\nname = \"signed\"\npath = \"/signed/*\"\nupstream = \"https://o.example.com\"\nauth = { require = \"none\" }\nassert_identity = true\n";
    let config = parse(text).unwrap();
    assert!(config.proxies_directly(&config.routes[0], Method::Get));
    assert!(!config.proxies_directly(&config.routes[1], Method::Get));
}

#[test]
fn rollback_edge_names_a_safe_url() {
    let stage =
        "[[rollback.stages]]\nrest_api_name = \"shop\"\nstage = \"prod\"\nstage_alarms = [\"a\"]\n";
    let with = |edge: &str| format!("[rollback.edge]\n{edge}\n{stage}");
    let config = parse(&with(
        "health_url = \"https://edge.example.com/__tidegate/health/releases\"",
    ))
    .unwrap();
    let rollback = config.rollback.as_ref().unwrap();
    assert_eq!(
        rollback.edge_health_url.as_ref().map(url::Url::as_str),
        Some("https://edge.example.com/__tidegate/health/releases")
    );
    // It round-trips through the file form.
    assert_eq!(parse(&config.to_toml_string()).unwrap(), config);
    // Without the section: no URL.
    assert!(parse(stage)
        .unwrap()
        .rollback
        .unwrap()
        .edge_health_url
        .is_none());
    // http only for localhost (the demo); the key must not travel in clear text.
    assert!(parse(&with(
        "health_url = \"http://127.0.0.1:8787/__tidegate/health/releases\""
    ))
    .is_ok());
    for (edge, want) in [
        (
            "health_url = \"http://edge.example.com/x\"",
            "rollback.edge.health_url: ",
        ),
        ("health_url = \"not a url\"", "rollback.edge.health_url: "),
        ("health_url = 5", "rollback.edge.health_url"),
        ("", "rollback.edge"),
        (
            "health_url = \"https://e.example\"\nkey = \"x\"",
            "rollback.edge",
        ),
    ] {
        let p = problems(&with(edge)).join("\n");
        assert!(p.contains(want), "{edge:?}: {p}");
    }
    let p = problems(&with("health_url = \"http://edge.example.com/x\"")).join("\n");
    assert!(
        p.contains("https (http is allowed only for localhost)"),
        "{p}"
    );
}
