//! HTTP request methods a route can be restricted to.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An HTTP method Tidegate routes on.
///
/// Parsing is case-insensitive (`get` and `GET` are the same method), so a
/// config file may use either; the canonical form, used by `Display` and
/// serde, is upper case. Methods outside this set (CONNECT, TRACE, extension
/// methods) are never proxied, so they do not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
}

/// A method name that is not one Tidegate routes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MethodError {
    /// The name is not one of the supported methods.
    #[error(
        "unsupported HTTP method; expected one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
    )]
    Unsupported,
}

impl Method {
    /// Every method, in declaration order (the order `Allow` lists them).
    pub const ALL: [Method; 7] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Options,
    ];

    /// The canonical upper-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }

    /// Position in [`Method::ALL`], used for per-method lookup tables.
    pub(crate) const fn index(self) -> usize {
        match self {
            Method::Get => 0,
            Method::Head => 1,
            Method::Post => 2,
            Method::Put => 3,
            Method::Patch => 4,
            Method::Delete => 5,
            Method::Options => 6,
        }
    }

    /// A one-bit mask for this method, for compact method sets.
    pub(crate) const fn bit(self) -> u8 {
        1 << self.index()
    }
}

impl FromStr for Method {
    type Err = MethodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or(MethodError::Unsupported)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Method {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Borrowing would fail on TOML/JSON strings with escapes; a method
        // name is tiny, so owning it costs nothing.
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Method {
    fn schema_name() -> Cow<'static, str> {
        "Method".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // The schema lists the canonical spelling; parsing also accepts other cases.
        json_schema!({
            "type": "string",
            "description": "HTTP method (case-insensitive).",
            "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_case_insensitively() {
        assert_eq!("get".parse(), Ok(Method::Get));
        assert_eq!("Delete".parse(), Ok(Method::Delete));
        assert_eq!("OPTIONS".parse(), Ok(Method::Options));
    }

    #[test]
    fn rejects_unknown_methods() {
        for bad in ["", "CONNECT", "TRACE", "GET ", "G\u{0130}T", "get\r\n"] {
            assert_eq!(
                bad.parse::<Method>(),
                Err(MethodError::Unsupported),
                "{bad:?}"
            );
        }
        let msg = MethodError::Unsupported.to_string();
        assert!(msg.contains("expected one of GET"), "{msg}");
    }

    #[test]
    fn display_round_trips() {
        for m in Method::ALL {
            assert_eq!(m.to_string().parse(), Ok(m));
            assert_eq!(m.to_string(), m.to_string().to_uppercase());
        }
    }

    #[test]
    fn index_matches_all_order() {
        for (i, m) in Method::ALL.into_iter().enumerate() {
            assert_eq!(m.index(), i);
        }
    }

    #[test]
    fn serde_uses_uppercase_strings() {
        assert_eq!(serde_json::to_string(&Method::Patch).unwrap(), r#""PATCH""#);
        let m: Method = serde_json::from_str(r#""patch""#).unwrap();
        assert_eq!(m, Method::Patch);
        assert!(serde_json::from_str::<Method>(r#""BREW""#).is_err());
        let v: Vec<Method> = toml::from_str::<toml::Table>("m = [\"get\", \"HEAD\"]").unwrap()["m"]
            .clone()
            .try_into()
            .unwrap();
        assert_eq!(v, vec![Method::Get, Method::Head]);
    }

    #[test]
    fn schema_lists_methods() {
        let schema = schemars::schema_for!(Method);
        let v = serde_json::to_value(&schema).unwrap();
        assert_eq!(v["enum"].as_array().unwrap().len(), 7);
    }
}
