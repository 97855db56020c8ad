//! Reading the file: syntax, then shape section by section and item by item,
//! so that one malformed route does not hide the problems of the others.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::{index, join, Collector, ConfigErrorKind};
use super::file::{
    ApiKeysSection, AssertionSection, GatewaySection, HealthSection, IssuerSection, PurgeSection,
    RollbackSection, RouteSection, StageSection, TierSection,
};

/// Top-level keys a file may have.
const SECTIONS: [&str; 10] = [
    "$schema",
    "gateway",
    "issuers",
    "api_keys",
    "tiers",
    "routes",
    "rollback",
    "assertion",
    "purge",
    "health",
];

/// A list item that passed the shape check, with its position in the file.
#[derive(Debug, Clone)]
pub(crate) struct Item<T> {
    pub(crate) path: String,
    pub(crate) value: T,
}

/// The sections that passed the shape check, plus the names of items that did not
/// (so cross-references to a malformed item are not reported twice).
#[derive(Debug, Default)]
pub(crate) struct Sections {
    pub(crate) gateway: Option<GatewaySection>,
    pub(crate) issuers: Vec<Item<IssuerSection>>,
    pub(crate) broken_issuer_names: Vec<String>,
    pub(crate) api_keys: Option<ApiKeysSection>,
    pub(crate) api_keys_present: bool,
    pub(crate) tiers: std::collections::BTreeMap<String, TierSection>,
    pub(crate) routes: Vec<Item<RouteSection>>,
    pub(crate) rollback: Option<RollbackSection>,
    pub(crate) stages: Vec<Item<StageSection>>,
    pub(crate) assertion: Option<AssertionSection>,
    pub(crate) purge: Option<PurgeSection>,
    pub(crate) health: Option<HealthSection>,
    /// False when some part failed its shape check, so the result cannot be complete.
    pub(crate) complete: bool,
}

/// Parses TOML text into a JSON value tree.
pub(crate) fn toml_value(text: &str, c: &mut Collector) -> Option<Value> {
    match toml::from_str::<Value>(text) {
        Ok(value) => Some(value),
        Err(error) => {
            c.push(
                "",
                ConfigErrorKind::Syntax {
                    format: "TOML",
                    message: error.to_string().trim().replace('\n', " "),
                },
            );
            None
        }
    }
}

/// Parses JSON text into a value tree.
pub(crate) fn json_value(text: &str, c: &mut Collector) -> Option<Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => Some(value),
        Err(error) => {
            c.push(
                "",
                ConfigErrorKind::Syntax {
                    format: "JSON",
                    message: error.to_string(),
                },
            );
            None
        }
    }
}

/// Checks the shape of every section and list item, collecting every failure.
pub(crate) fn sections(value: Value, c: &mut Collector) -> Sections {
    let mut out = Sections {
        complete: true,
        ..Sections::default()
    };
    let Value::Object(mut root) = value else {
        c.push(
            "",
            ConfigErrorKind::Shape("must be a table (TOML) or an object (JSON) of sections".into()),
        );
        out.complete = false;
        return out;
    };
    for key in root.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            c.push(
                key.clone(),
                ConfigErrorKind::Shape(format!(
                    "unknown section; expected one of {}",
                    SECTIONS[1..].join(", ")
                )),
            );
            out.complete = false;
        }
    }
    out.gateway = table(&mut root, "gateway", c, &mut out.complete);
    out.api_keys_present = root.contains_key("api_keys");
    out.api_keys = table(&mut root, "api_keys", c, &mut out.complete);
    // Tier by tier, so one malformed plan does not hide the others' problems.
    match root.remove("tiers") {
        None => {}
        Some(Value::Object(tiers)) => {
            for (name, value) in tiers {
                let path = format!("tiers.{name}");
                if let Some(tier) = shaped(&path, value, c, &mut out.complete) {
                    out.tiers.insert(name, tier);
                }
            }
        }
        Some(other) => {
            let _: Option<TierSection> = shaped("tiers", other, c, &mut out.complete);
        }
    }
    let (issuers, broken) = list(&mut root, "issuers", "issuers", c, &mut out.complete);
    out.issuers = issuers;
    out.broken_issuer_names = broken;
    out.routes = list(&mut root, "routes", "routes", c, &mut out.complete).0;
    out.assertion = table(&mut root, "assertion", c, &mut out.complete);
    out.purge = table(&mut root, "purge", c, &mut out.complete);
    out.health = table(&mut root, "health", c, &mut out.complete);
    match root.remove("rollback") {
        None => {}
        Some(Value::Object(mut rollback)) => {
            let path = "rollback.stages";
            out.stages = list(&mut rollback, "stages", path, c, &mut out.complete).0;
            out.rollback = shaped("rollback", Value::Object(rollback), c, &mut out.complete);
        }
        Some(other) => out.rollback = shaped("rollback", other, c, &mut out.complete),
    }
    out
}

/// Takes and shape-checks one table-valued section.
fn table<T: DeserializeOwned>(
    root: &mut Map<String, Value>,
    key: &str,
    c: &mut Collector,
    complete: &mut bool,
) -> Option<T> {
    let value = root.remove(key)?;
    shaped(key, value, c, complete)
}

/// Takes `key` from `table` and shape-checks it as a list, item by item;
/// `path` is where the list is in the file. Also returns the `name` of every
/// item that failed, so references to it are not reported again.
fn list<T: DeserializeOwned>(
    table: &mut Map<String, Value>,
    key: &str,
    path: &str,
    c: &mut Collector,
    complete: &mut bool,
) -> (Vec<Item<T>>, Vec<String>) {
    let mut items = Vec::new();
    let mut broken = Vec::new();
    match table.remove(key) {
        None => {}
        Some(Value::Array(values)) => {
            for (i, value) in values.into_iter().enumerate() {
                let name = value.get("name").and_then(Value::as_str).map(str::to_owned);
                let path = index(path, i);
                match shaped(&path, value, c, complete) {
                    Some(value) => items.push(Item { path, value }),
                    None => broken.extend(name),
                }
            }
        }
        Some(_) => {
            c.push(
                path,
                ConfigErrorKind::Shape(format!(
                    "must be a list; in TOML write each item as [[{path}]]"
                )),
            );
            *complete = false;
        }
    }
    (items, broken)
}

/// Deserialises one table, reporting a failure at its precise path.
fn shaped<T: DeserializeOwned>(
    path: &str,
    value: Value,
    c: &mut Collector,
    complete: &mut bool,
) -> Option<T> {
    // serde would also read a struct from a list; the file format never does.
    if !value.is_object() {
        c.push(
            path,
            ConfigErrorKind::Shape(format!("must be a table, got {}", kind_of(&value))),
        );
        *complete = false;
        return None;
    }
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(value) => Some(value),
        Err(error) => {
            let inner = error.path().to_string();
            let full = if inner == "." {
                path.to_owned()
            } else if inner.starts_with('[') {
                format!("{path}{inner}")
            } else {
                join(path, &inner)
            };
            let mut message = error.into_inner().to_string();
            if message == "missing field `auth`" {
                message.push_str("; write `auth = { require = \"none\" }` for a public route");
            }
            c.push(full, ConfigErrorKind::Shape(message));
            *complete = false;
            None
        }
    }
}

/// A value's type in the file's words.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}
