use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::auth::{AuthMethod, KvKeyStoreSettings};
use crate::config::parse;
use crate::throttle::Quota;

const PLANS: &str = r#"
[api_keys]
store = "kv"
kv_binding = "KEYS"
cache_ttl = "5s"
negative_ttl = "0s"

[tiers.gold]
limits = [{ name = "per-minute", limit = 600, period = "1m", burst = 100 }]

[tiers.free]
limits = [{ name = "per-minute", limit = 10, period = "1m" }]

[[routes]]
name = "orders"
path = "/orders/*"
upstream = "https://origin.example.com"
auth = { require = "api_key" }
rate_limit = { limits = [
  { name = "per-minute", limit = 60, period = "1m", key = "subject" },
  { name = "per-ip", limit = 5, period = "1s", key = "client_ip" },
] }
"#;

fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn caller(tier: Option<&str>) -> Identity {
    Identity {
        subject: "acme".into(),
        key_id: None,
        issuer: None,
        scopes: Vec::new(),
        tier: tier.map(Into::into),
        limit_overrides: BTreeMap::new(),
        method: AuthMethod::ApiKey,
    }
}

#[test]
fn kv_store_settings_and_defaults() {
    let config = parse(PLANS).unwrap();
    let kv = config.api_keys.as_ref().unwrap().kv.as_ref().unwrap();
    assert_eq!(kv.binding, "KEYS");
    assert_eq!(kv.cache_ttl, Duration::from_secs(5));
    assert_eq!(kv.negative_ttl, Duration::ZERO);
    assert_eq!(kv.cache_entries, KvKeyStoreSettings::DEFAULT_CACHE_ENTRIES);
    assert_eq!(
        kv.rotation_overlap,
        KvKeyStoreSettings::DEFAULT_ROTATION_OVERLAP
    );
    let defaults = parse("[api_keys]\nstore = \"kv\"").unwrap();
    assert_eq!(
        defaults.api_keys.unwrap().kv,
        Some(KvKeyStoreSettings::with_binding("API_KEYS_KV"))
    );
    let secret = parse("[api_keys]\nheader = \"x-key\"").unwrap();
    assert_eq!(secret.api_keys.unwrap().kv, None);
}

#[test]
fn kv_store_errors_name_the_field_and_fix() {
    let errors = problems(
        "[api_keys]\nstore = \"kv\"\nkv_binding = \"1 bad\"\ncache_ttl = \"10m\"\n\
         negative_ttl = \"soon\"\ncache_entries = 0\nrotation_overlap = \"400d\"",
    );
    let paths: Vec<&str> = errors
        .iter()
        .map(|e| e.split(':').next().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "api_keys.kv_binding",
            "api_keys.cache_ttl",
            "api_keys.negative_ttl",
            "api_keys.cache_entries",
            "api_keys.rotation_overlap"
        ],
        "{errors:?}"
    );
    let errors = problems("[api_keys]\ncache_ttl = \"5s\"");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("api_keys.cache_ttl"), "{errors:?}");
    assert!(errors[0].contains("store = \"kv\""), "{errors:?}");
    let errors = problems("[api_keys]\nstore = \"redis\"");
    assert!(errors[0].starts_with("api_keys.store"), "{errors:?}");
}

#[test]
fn tiers_parse_and_round_trip() {
    let config = parse(PLANS).unwrap();
    let gold = &config.tiers["gold"];
    assert_eq!(gold.limits[0].name, "per-minute");
    assert_eq!(gold.limits[0].quota, Quota::per_minute(600).with_burst(100));
    assert_eq!(config.tiers["free"].limits[0].quota, Quota::per_minute(10));
    let again = parse(&config.to_toml_string()).unwrap();
    assert_eq!(config, again);
}

#[test]
fn tier_errors_name_the_field_and_fix() {
    let text = PLANS.replace(
        "[tiers.free]\nlimits = [{ name = \"per-minute\", limit = 10, period = \"1m\" }]",
        "[tiers.free]\nlimits = [{ name = \"per-hour\", limit = 10, period = \"1m\" },\n\
         { name = \"per-ip\", limit = 0, period = \"1m\" },\n\
         { name = \"per-ip\", limit = 1, period = \"1m\" }]\n\
         [tiers.\"bad name\"]\n[tiers.silver]\nlimits = [{ name = \"per-minute\", limit = 1, period = \"1m\", key = \"subject\" }]",
    );
    let errors = problems(&text);
    let joined = errors.join("\n");
    assert!(
        joined.contains("tiers.free.limits[0].name: refers to route limit `per-hour`"),
        "{joined}"
    );
    assert!(joined.contains("defined: per-ip, per-minute"), "{joined}");
    assert!(
        joined.contains("tiers.free.limits[1].limit: 0 is out of range"),
        "{joined}"
    );
    assert!(
        joined.contains("tiers.free.limits[2].name: `per-ip` is already used"),
        "{joined}"
    );
    assert!(
        joined.contains("tiers.bad name: `bad name` is not accepted"),
        "{joined}"
    );
    assert!(joined.contains("tiers.silver.limits[0]"), "{joined}");
    assert!(joined.contains("key"), "{joined}");
    let costly = PLANS.replace("key = \"subject\" }", "key = \"subject\", cost = 20 }");
    let errors = problems(&costly);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("tiers.free.limits[0].burst: is below the cost 20"),
        "{errors:?}"
    );
}

#[test]
fn plans_replace_the_quota_of_limits_they_name() {
    let config = parse(PLANS).unwrap();
    let policy = config.routes[0].rate_limit.as_ref().unwrap();
    let gold = caller(Some("gold"));
    let plan = config.plan_for(Some(&gold));
    assert_eq!(plan.tier().map(|t| t.name.as_str()), Some("gold"));
    let under = policy.for_plan(plan.tier());
    assert!(matches!(under, Cow::Owned(_)));
    assert_eq!(
        under.limits[0].quota,
        Quota::per_minute(600).with_burst(100)
    );
    assert_eq!(
        under.limits[1].quota, policy.limits[1].quota,
        "not in the plan"
    );
    assert_eq!(under.limits[0].key, policy.limits[0].key);

    // Key overrides scale the plan's quota.
    let mut gold_override = gold.clone();
    gold_override
        .limit_overrides
        .insert("per-minute".into(), 300);
    let q = under.limits[0].quota_for(Some(&gold_override));
    assert_eq!((q.limit, q.burst), (300, 50));

    assert_eq!(config.plan_for(None), PlanChoice::Default);
    assert_eq!(config.plan_for(Some(&caller(None))), PlanChoice::Default);
    let odd = caller(Some("platinum"));
    assert_eq!(config.plan_for(Some(&odd)), PlanChoice::Unknown("platinum"));
    assert!(matches!(policy.for_plan(None), Cow::Borrowed(_)));

    // Without [tiers], a tier is only a label.
    let plain = parse(
        &PLANS
            .replace("[tiers.", "#[tiers.")
            .replace("limits = [{ name = \"per-minute\", limit = 600", "#")
            .replace("limits = [{ name = \"per-minute\", limit = 10", "#"),
    )
    .unwrap();
    assert!(plain.tiers.is_empty());
    assert_eq!(plain.plan_for(Some(&odd)), PlanChoice::Default);
}
