//! Configuration errors: every problem at once, each naming where it is and what is expected.

use std::fmt;

/// One problem in a configuration file, at `path` (e.g. `routes[3].rate_limit.limits[0].period`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where in the file, as a dotted path with `[index]` for list items; empty for the whole file.
    pub path: String,
    /// What is wrong there.
    pub kind: ConfigErrorKind,
}

/// What is wrong at a path in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The text is not valid TOML or JSON.
    #[error("is not valid {format}: {message}")]
    Syntax {
        /// `TOML` or `JSON`.
        format: &'static str,
        /// The parser's own message, with line and column.
        message: String,
    },
    /// A value has the wrong shape: wrong type, unknown field, missing required field.
    #[error("{0}")]
    Shape(String),
    /// A required setting is absent.
    #[error("is missing: {0}")]
    Missing(&'static str),
    /// A duration could not be read.
    #[error("`{value}` {reason}; expected a duration like \"30s\", \"5m\" or \"1h\"")]
    Duration {
        /// The text as written.
        value: String,
        /// Why it was refused.
        reason: super::duration::DurationError,
    },
    /// A number or duration outside the accepted range.
    #[error("{value} is out of range; expected {expected}")]
    OutOfRange {
        /// The value as written.
        value: String,
        /// The accepted range, in words.
        expected: &'static str,
    },
    /// A URL that cannot be used where it is.
    #[error("`{value}` is not usable: {reason}")]
    Url {
        /// The URL as written.
        value: String,
        /// What is wrong with it and what is expected.
        reason: String,
    },
    /// A route path pattern that cannot be parsed.
    #[error("`{value}` is not a valid path pattern: {reason}")]
    Pattern {
        /// The pattern as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value that is not one of the accepted words.
    #[error("`{value}` is not accepted; expected {expected}")]
    NotOneOf {
        /// The value as written.
        value: String,
        /// The accepted values, in words.
        expected: String,
    },
    /// A name used twice where names must be unique.
    #[error("`{name}` is already used by {first}; {what} names must be unique")]
    Duplicate {
        /// What kind of thing is named (route, issuer, limit, stage).
        what: &'static str,
        /// The repeated name.
        name: String,
        /// Path of the first use.
        first: String,
    },
    /// A reference to something the file does not define.
    #[error("refers to {what} `{name}`, which is not defined; defined: {known}")]
    UnknownReference {
        /// What kind of thing is referred to.
        what: &'static str,
        /// The name as written.
        name: String,
        /// The names that are defined, comma separated (or "none").
        known: String,
    },
    /// Settings that contradict each other.
    #[error("{0}")]
    Conflict(String),
}

impl ConfigError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, kind: ConfigErrorKind) -> Self {
        Self {
            path: path.into(),
            kind,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "the file {}", self.kind)
        } else {
            write!(f, "{}: {}", self.path, self.kind)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The problems, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }

    /// How many problems there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none (a valid file never produces an empty set).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        let noun = if count == 1 { "problem" } else { "problems" };
        write!(f, "invalid gateway configuration ({count} {noun}):")?;
        for error in &self.0 {
            write!(f, "\n  - {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects errors while walking the file, tracking the current path.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    pub(crate) errors: Vec<ConfigError>,
}

impl Collector {
    pub(crate) fn push(&mut self, path: impl Into<String>, kind: ConfigErrorKind) {
        self.errors.push(ConfigError::new(path, kind));
    }

    /// `value` when nothing was reported, else every problem in file order.
    pub(crate) fn finish<T>(mut self, value: T) -> Result<T, ConfigErrors> {
        if self.errors.is_empty() {
            return Ok(value);
        }
        // Stable: problems at the same path keep the order they were found in.
        self.errors.sort_by_cached_key(|e| file_order(&e.path));
        Err(ConfigErrors(self.errors))
    }
}

/// Top-level sections in the order the documentation writes them.
const SECTION_ORDER: [&str; 5] = ["gateway", "issuers", "api_keys", "routes", "rollback"];

/// A sort key that puts problems in document order: sections as documented,
/// then list items by index (`routes[2]` before `routes[10]`); within an
/// item, the stable sort keeps the order the checks ran in, which follows the
/// order of the fields.
fn file_order(path: &str) -> (usize, usize) {
    let section = path.split(['.', '[']).next().unwrap_or_default();
    let rank = SECTION_ORDER
        .iter()
        .position(|s| *s == section)
        .map_or(0, |i| i + 1);
    let item = path
        .split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .and_then(|(i, _)| i.parse().ok())
        .unwrap_or(0);
    (rank, item)
}

/// Joins a parent path and a field name: `join("routes[0]", "auth")` is `routes[0].auth`.
pub(crate) fn join(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}

/// The path of a list item: `index("routes", 3)` is `routes[3]`.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}
