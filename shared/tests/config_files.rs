//! The checked-in example, the deliberately broken file, and the JSON Schema.

use std::path::PathBuf;

use tidegate_policy::config;

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_file(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Compares with a checked-in expectation; `UPDATE_EXPECT=1` rewrites it.
fn expect_file(path: &str, actual: &str) {
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(repo_file(path), actual).unwrap();
        return;
    }
    let expected = read(path);
    assert_eq!(
        expected, actual,
        "{path} is out of date; rerun with UPDATE_EXPECT=1 and review the diff"
    );
}

#[test]
fn example_config_is_valid_and_complete() {
    let config = config::parse(&read("examples/gateway.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.routes.len(), 4);
    assert_eq!(config.issuers.len(), 1);
    assert!(config.api_keys.is_some());
    let rollback = config.rollback.as_ref().expect("rollback section");
    assert_eq!(rollback.stages.len(), 1);
    // Every section of the file format is exercised by the example.
    let orders = config.route("orders-read").unwrap();
    assert!(orders.cache.is_some() && orders.rate_limit.is_some());
}

#[test]
fn example_config_round_trips() {
    let config = config::parse(&read("examples/gateway.toml")).unwrap();
    let again = config::parse(&config.to_toml_string()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config, again);
    let json = serde_json::to_string(&config.to_file()).unwrap();
    assert_eq!(config, config::parse(&json).unwrap());
}

#[test]
fn broken_config_reports_every_problem_at_once() {
    let errors = config::parse(&read("shared/tests/fixtures/broken.toml")).unwrap_err();
    expect_file(
        "shared/tests/fixtures/broken.expected.txt",
        &format!("{errors}\n"),
    );
    assert!(
        errors.len() >= 30,
        "only {} problems reported",
        errors.len()
    );
}

#[test]
fn json_schema_is_up_to_date() {
    let schema = serde_json::to_string_pretty(&config::json_schema()).unwrap() + "\n";
    expect_file("shared/gateway.schema.json", &schema);
}
