//! The gateway configuration file, read by both the edge Worker and the rollback Lambda.
//!
//! One file (TOML, or JSON with the same structure) describes routes, their
//! authentication, rate limits and caching, the trusted JWT issuers, API key
//! settings and the API Gateway stages the rollback Lambda manages.
//! [`parse`] returns either a fully validated [`GatewayConfig`] or *every*
//! problem at once, each naming its path in the file:
//!
//! ```
//! let errors = tidegate_policy::config::parse(r#"
//!     [[routes]]
//!     name = "orders"
//!     path = "/v1/orders/{id}"
//!     upstream = "https://origin.example.com"
//!     auth = { require = "none" }
//!     [routes.rate_limit]
//!     limits = [{ name = "burst", limit = 10, period = "1 second", key = "client_ip" }]
//! "#).unwrap_err();
//! assert_eq!(
//!     errors.to_string(),
//!     "invalid gateway configuration (1 problem):\n  - routes[0].rate_limit.limits[0].period: \
//!      `1 second` has a number without a unit (use ms, s, m, h or d); \
//!      expected a duration like \"30s\", \"5m\" or \"1h\"",
//! );
//! ```

mod binding_size;
mod compose;
mod direct;
pub(crate) mod duration;
mod error;
mod file;
mod load;
mod model;
mod rate_limit;
mod render;
mod tiers;
mod validate;

pub use binding_size::{check_binding_size, BindingSizeError, MAX_BINDING_BYTES};
pub use duration::{format_duration, parse_duration, DurationError, MAX_DURATION};
pub use error::{ConfigError, ConfigErrorKind, ConfigErrors};
pub use file::{CanaryGateEntry, CanaryStepEntry, GatewayFile};
pub use model::*;
pub use tiers::PlanChoice;

use error::Collector;

/// The syntax of a configuration text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML, the documented form.
    Toml,
    /// JSON with the same structure.
    Json,
}

impl Format {
    /// Guesses the format: JSON when the first non-blank character is `{`, else TOML.
    pub fn detect(text: &str) -> Self {
        if text.trim_start().starts_with('{') {
            Self::Json
        } else {
            Self::Toml
        }
    }
}

/// Parses and validates a configuration, detecting TOML or JSON.
pub fn parse(text: &str) -> Result<GatewayConfig, ConfigErrors> {
    parse_as(text, Format::detect(text))
}

/// Parses and validates a configuration written in `format`.
pub fn parse_as(text: &str, format: Format) -> Result<GatewayConfig, ConfigErrors> {
    let mut c = Collector::default();
    let value = match format {
        Format::Toml => load::toml_value(text, &mut c),
        Format::Json => load::json_value(text, &mut c),
    };
    let config = value.and_then(|value| {
        let sections = load::sections(value, &mut c);
        validate::validate(sections, &mut c)
    });
    match config {
        Some(config) => c.finish(config),
        None if c.errors.is_empty() => {
            // Every failing reader reports what failed; this is a guard, not a path.
            c.push("", ConfigErrorKind::Shape("could not be read".into()));
            c.finish(GatewayConfig::empty())
        }
        None => c.finish(GatewayConfig::empty()),
    }
}

/// The JSON Schema of the configuration file, generated from [`GatewayFile`].
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(file::GatewayFile)).unwrap_or_default()
}

impl GatewayConfig {
    /// A configuration with no routes, issuers or stages.
    pub fn empty() -> Self {
        Self {
            gateway: GatewaySettings::default(),
            issuers: Vec::new(),
            api_keys: None,
            tiers: std::collections::BTreeMap::new(),
            routes: Vec::new(),
            rollback: None,
            assertion: None,
            purge: None,
            health: None,
        }
    }

    /// The route with this name.
    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// The issuer with this name.
    pub fn issuer(&self, name: &str) -> Option<&Issuer> {
        self.issuers.iter().find(|i| i.name == name)
    }
}

#[cfg(test)]
mod tests;
