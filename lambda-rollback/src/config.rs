//! Loading what the Lambda needs at init: the gateway configuration (its
//! `[rollback]` section and JWT issuers) and the API keys.
//!
//! Sources, from the environment:
//! - `TIDEGATE_CONFIG`: the configuration text (TOML, or JSON), or
//! - `TIDEGATE_CONFIG_FILE`: a path to it (e.g. a file in the deployment
//!   package or a layer);
//! - `API_KEYS`: the same JSON key records the edge takes (optional; without
//!   it only JWTs are accepted on the control API);
//! - `TIDEGATE_STATE_TABLE`: the DynamoDB table Tidegate keeps its records,
//!   leases and history in (required; `infra/template.yaml` creates it);
//! - `TIDEGATE_SESSION_SECRET`: the key browser sessions of the dashboard
//!   are signed with (optional, at least 32 bytes; without it browser
//!   sign-in is off and the sign-in page says so);
//! - `TIDEGATE_HEALTH_SECRET`: the key the edge signs its health events
//!   with (optional, at least 32 bytes, the Worker's secret of the same
//!   name; without it `POST /edge/health` answers 404: the feature is off);
//! - `TIDEGATE_EDGE_ADMIN_KEY`: the edge Worker's admin key (its `ADMIN_KEY`
//!   secret), sent as the bearer when the dashboard reads the edge's live
//!   figures from `[rollback.edge] health_url` (optional; without it the
//!   stage page's edge panel says so).
//!
//! Invalid input is an init error listing *every* problem, so one deploy
//! shows everything that needs fixing.

use std::fmt;

use tidegate_policy::auth::ApiKeyStore;
use tidegate_policy::config::{GatewayConfig, RollbackPolicy};
use tidegate_policy::health::SignalKey;
use tidegate_policy::session::SessionKey;

use crate::live::EdgeAdminKey;

/// Environment variable holding the configuration text.
pub const CONFIG_ENV: &str = "TIDEGATE_CONFIG";
/// Environment variable naming a configuration file.
pub const CONFIG_FILE_ENV: &str = "TIDEGATE_CONFIG_FILE";
/// Environment variable holding the API key records (JSON).
pub const API_KEYS_ENV: &str = "API_KEYS";
/// Environment variable naming the state table.
pub const STATE_TABLE_ENV: &str = "TIDEGATE_STATE_TABLE";
/// Environment variable holding the dashboard's session secret.
pub const SESSION_SECRET_ENV: &str = "TIDEGATE_SESSION_SECRET";
/// Environment variable holding the edge's health-signal secret.
pub const HEALTH_SECRET_ENV: &str = "TIDEGATE_HEALTH_SECRET";
/// Environment variable holding the edge's admin key.
pub const EDGE_ADMIN_KEY_ENV: &str = "TIDEGATE_EDGE_ADMIN_KEY";

/// Everything loaded at init.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The whole gateway configuration (issuers are used by the control API).
    pub gateway: GatewayConfig,
    /// The managed stages.
    pub policy: RollbackPolicy,
    /// API keys accepted on the control API.
    pub api_keys: ApiKeyStore,
    /// The DynamoDB table of records, leases and history.
    pub state_table: String,
    /// The key dashboard sessions are signed with; `None`: browser sign-in
    /// is off.
    pub session_key: Option<SessionKey>,
    /// The key the edge's health events are checked with; `None`: the
    /// edge's signal is off (`POST /edge/health` answers 404).
    pub health_key: Option<SignalKey>,
    /// The edge's admin key, for its live figures
    /// (`[rollback.edge] health_url`); `None`: the edge panel says so.
    pub edge_admin_key: Option<EdgeAdminKey>,
}

/// Every problem found while loading; the Lambda refuses to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitError {
    /// One line per problem.
    pub problems: Vec<String>,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tidegate-rollback cannot start ({} problem{}):",
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InitError {}

/// Loads the settings from the process environment.
pub fn from_env() -> Result<Settings, InitError> {
    load(
        |name| std::env::var(name).ok(),
        |path| std::fs::read_to_string(path).map_err(|e| e.to_string()),
    )
}

/// Loads the settings from `var` (an environment lookup) and `read_file`
/// (a file reader): injectable so the rules are testable without touching
/// the process environment.
pub fn load(
    var: impl Fn(&str) -> Option<String>,
    read_file: impl Fn(&str) -> Result<String, String>,
) -> Result<Settings, InitError> {
    let mut problems = Vec::new();
    let text = match (var(CONFIG_ENV), var(CONFIG_FILE_ENV)) {
        (Some(_), Some(_)) => {
            problems.push(format!(
                "both {CONFIG_ENV} and {CONFIG_FILE_ENV} are set: set exactly one"
            ));
            None
        }
        (Some(text), None) => Some(text),
        (None, Some(path)) => match read_file(&path) {
            Ok(text) => Some(text),
            Err(e) => {
                problems.push(format!("{CONFIG_FILE_ENV}={path}: cannot read it: {e}"));
                None
            }
        },
        (None, None) => {
            problems.push(format!(
                "no configuration: set {CONFIG_ENV} (the TOML text) or {CONFIG_FILE_ENV} (its path)"
            ));
            None
        }
    };
    let gateway = text.and_then(|t| match tidegate_policy::config::parse(&t) {
        Ok(c) => Some(c),
        Err(errors) => {
            problems.extend(errors.iter().map(ToString::to_string));
            None
        }
    });
    let policy = gateway.as_ref().and_then(|g| match &g.rollback {
        Some(p) if !p.stages.is_empty() => Some(p.clone()),
        _ => {
            problems.push(
                "the configuration has no [[rollback.stages]]: this Lambda would manage nothing"
                    .to_owned(),
            );
            None
        }
    });
    let api_keys = match var(API_KEYS_ENV) {
        None => Some(ApiKeyStore::default()),
        Some(json) => match ApiKeyStore::from_json(&json) {
            Ok(store) => Some(store),
            Err(errors) => {
                problems.extend(errors.iter().map(|e| format!("{API_KEYS_ENV}: {e}")));
                None
            }
        },
    };
    let state_table = match var(STATE_TABLE_ENV) {
        Some(t) if valid_table_name(&t) => Some(t),
        Some(t) => {
            problems.push(format!(
                "{STATE_TABLE_ENV}={t:?} is not a DynamoDB table name: 3 to 255 of A-Z a-z 0-9 _ - ."
            ));
            None
        }
        None => {
            problems.push(format!(
                "{STATE_TABLE_ENV} is not set: name the DynamoDB table Tidegate keeps its state in \
                 (infra/template.yaml creates it and sets this variable)"
            ));
            None
        }
    };
    let session_key = match var(SESSION_SECRET_ENV).filter(|s| !s.is_empty()) {
        None => None,
        Some(secret) => match SessionKey::new(secret.as_bytes()) {
            Ok(k) => Some(k),
            Err(e) => {
                problems.push(format!("{SESSION_SECRET_ENV}: {e}"));
                None
            }
        },
    };
    let health_key = match var(HEALTH_SECRET_ENV).filter(|s| !s.is_empty()) {
        None => None,
        Some(secret) => match SignalKey::new(secret.as_bytes()) {
            Ok(k) => Some(k),
            Err(e) => {
                problems.push(format!("{HEALTH_SECRET_ENV}: {e}"));
                None
            }
        },
    };
    let edge_admin_key = match var(EDGE_ADMIN_KEY_ENV).filter(|s| !s.is_empty()) {
        None => None,
        Some(key) => match EdgeAdminKey::new(&key) {
            Ok(k) => Some(k),
            Err(e) => {
                problems.push(format!("{EDGE_ADMIN_KEY_ENV}: {e}"));
                None
            }
        },
    };
    match (gateway, policy, api_keys, state_table) {
        (Some(gateway), Some(policy), Some(api_keys), Some(state_table)) if problems.is_empty() => {
            Ok(Settings {
                gateway,
                policy,
                api_keys,
                state_table,
                session_key,
                health_key,
                edge_admin_key,
            })
        }
        _ => Err(InitError { problems }),
    }
}

/// DynamoDB's rule for table names.
fn valid_table_name(t: &str) -> bool {
    (3..=255).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    pub(crate) const CONFIG: &str = r#"
[[rollback.stages]]
rest_api_name = "orders-api"
stage = "prod"
stage_alarms = ["orders-api-prod-5xx-rate"]
canary_alarms = ["orders-api-prod-canary-5xx-rate"]
"#;

    /// The environment `pairs` describe, with a state table unless they
    /// name one (or set it to "" to leave it out).
    pub(crate) fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let mut map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.entry(STATE_TABLE_ENV.into())
            .or_insert_with(|| "tidegate-state".into());
        map.retain(|_, v| !v.is_empty());
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_state_table_is_required_and_checked() {
        let err = load(
            env(&[(CONFIG_ENV, CONFIG), (STATE_TABLE_ENV, "")]),
            no_files,
        )
        .unwrap_err();
        assert!(err.problems[0].contains(STATE_TABLE_ENV), "{err}");
        let err = load(
            env(&[(CONFIG_ENV, CONFIG), (STATE_TABLE_ENV, "a b")]),
            no_files,
        )
        .unwrap_err();
        assert!(
            err.problems[0].contains("not a DynamoDB table name"),
            "{err}"
        );
        let s = load(env(&[(CONFIG_ENV, CONFIG)]), no_files).unwrap();
        assert_eq!(s.state_table, "tidegate-state");
    }

    #[test]
    fn the_session_secret_is_optional_and_checked() {
        let s = load(env(&[(CONFIG_ENV, CONFIG)]), no_files).unwrap();
        assert!(s.session_key.is_none());
        let long = "s".repeat(40);
        let s = load(
            env(&[(CONFIG_ENV, CONFIG), (SESSION_SECRET_ENV, &long)]),
            no_files,
        )
        .unwrap();
        assert!(s.session_key.is_some());
        let err = load(
            env(&[(CONFIG_ENV, CONFIG), (SESSION_SECRET_ENV, "short")]),
            no_files,
        )
        .unwrap_err();
        assert!(err.problems[0].starts_with(SESSION_SECRET_ENV), "{err}");
        assert!(err.problems[0].contains("at least 32"), "{err}");
    }

    #[test]
    fn the_health_secret_is_optional_and_checked() {
        let s = load(env(&[(CONFIG_ENV, CONFIG)]), no_files).unwrap();
        assert!(s.health_key.is_none());
        let long = "h".repeat(32);
        let s = load(
            env(&[(CONFIG_ENV, CONFIG), (HEALTH_SECRET_ENV, &long)]),
            no_files,
        )
        .unwrap();
        assert!(s.health_key.is_some());
        let err = load(
            env(&[(CONFIG_ENV, CONFIG), (HEALTH_SECRET_ENV, "short")]),
            no_files,
        )
        .unwrap_err();
        assert!(err.problems[0].starts_with(HEALTH_SECRET_ENV), "{err}");
    }

    #[test]
    fn the_edge_admin_key_is_optional_and_checked() {
        let s = load(env(&[(CONFIG_ENV, CONFIG)]), no_files).unwrap();
        assert!(s.edge_admin_key.is_none());
        let s = load(
            env(&[(CONFIG_ENV, CONFIG), (EDGE_ADMIN_KEY_ENV, "demo-admin-key")]),
            no_files,
        )
        .unwrap();
        assert!(s.edge_admin_key.is_some());
        // Never printed.
        assert!(!format!("{s:?}").contains("demo-admin-key"));
        let err = load(
            env(&[(CONFIG_ENV, CONFIG), (EDGE_ADMIN_KEY_ENV, "two words")]),
            no_files,
        )
        .unwrap_err();
        assert!(err.problems[0].starts_with(EDGE_ADMIN_KEY_ENV), "{err}");
    }

    fn no_files(path: &str) -> Result<String, String> {
        Err(format!("no such file: {path}"))
    }

    #[test]
    fn loads_from_text() {
        let s = load(env(&[(CONFIG_ENV, CONFIG)]), no_files).unwrap();
        assert_eq!(s.policy.stages.len(), 1);
        assert_eq!(s.policy.stages[0].stage, "prod");
        assert!(s.api_keys.is_empty());
    }

    #[test]
    fn loads_from_file() {
        let s = load(env(&[(CONFIG_FILE_ENV, "/cfg.toml")]), |p| {
            assert_eq!(p, "/cfg.toml");
            Ok(CONFIG.to_owned())
        })
        .unwrap();
        assert_eq!(s.policy.stages[0].stage, "prod");
    }

    #[test]
    fn reports_every_problem() {
        let bad = r#"
[[rollback.stages]]
stage = "prod"
bake_time = "5 minutes"
error_rate_threshold = 7.0
"#;
        let err = load(
            env(&[(CONFIG_ENV, bad), (API_KEYS_ENV, "{not json")]),
            no_files,
        )
        .unwrap_err();
        // Config problems (several) and the API_KEYS problem, together.
        assert!(err.problems.len() >= 3, "{err}");
        assert!(
            err.problems.iter().any(|p| p.contains("bake_time")),
            "{err}"
        );
        assert!(
            err.problems
                .iter()
                .any(|p| p.contains("error_rate_threshold")),
            "{err}"
        );
        assert!(
            err.problems.iter().any(|p| p.starts_with("API_KEYS")),
            "{err}"
        );
        assert!(err
            .to_string()
            .starts_with("tidegate-rollback cannot start"));
    }

    #[test]
    fn missing_or_ambiguous_source() {
        let err = load(env(&[]), no_files).unwrap_err();
        assert!(err.problems[0].contains(CONFIG_ENV));
        let err = load(
            env(&[(CONFIG_ENV, CONFIG), (CONFIG_FILE_ENV, "/x")]),
            no_files,
        )
        .unwrap_err();
        assert!(err.problems[0].contains("exactly one"));
        let err = load(env(&[(CONFIG_FILE_ENV, "/x")]), no_files).unwrap_err();
        assert!(err.problems[0].contains("no such file"));
    }

    #[test]
    fn no_stages_is_an_error() {
        let err = load(env(&[(CONFIG_ENV, "[rollback]\n")]), no_files).unwrap_err();
        assert!(err.problems[0].contains("rollback.stages"), "{err}");
    }
}
