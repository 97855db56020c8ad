//! JSON parsing that rejects duplicate object keys.
//!
//! serde_json keeps the last of two equal keys. For security tokens that is a
//! trap: two parsers can disagree on which `sub` or `alg` counts (RFC 7515
//! §5.2 and RFC 7519 §4 tell us to reject such input), so every JSON
//! document from a client or an identity provider goes through here.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a document was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrictJsonError {
    /// Not valid JSON (or trailing data after the value).
    Syntax,
    /// Some object, at any depth, repeats a key.
    DuplicateKey,
    /// Valid JSON, but the top level is not an object.
    NotAnObject,
}

/// Parses `bytes` as one JSON object, refusing duplicate keys at any depth.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    match parse_value(bytes)? {
        Value::Object(map) => Ok(map),
        _ => Err(StrictJsonError::NotAnObject),
    }
}

/// Parses `bytes` as one JSON value, refusing duplicate keys at any depth.
pub(crate) fn parse_value(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    let duplicate = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = Strict {
        duplicate: &duplicate,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(v) => Ok(v),
        // The visitor aborts with a generic error; the flag says why.
        Err(_) if duplicate.get() => Err(StrictJsonError::DuplicateKey),
        Err(_) => Err(StrictJsonError::Syntax),
    }
}

/// A seed that builds a [`Value`] and flags duplicate keys.
#[derive(Clone, Copy)]
struct Strict<'a> {
    duplicate: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                self.duplicate.set(true);
                return Err(de::Error::custom("duplicate key"));
            }
            let value = map.next_value_seed(self)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_objects() {
        let m = parse_object(br#"{"a":1,"b":[true,null,{"c":"d"}],"e":1.5,"f":-2}"#).unwrap();
        assert_eq!(m["b"][2]["c"], "d");
        assert_eq!(m["e"], 1.5);
        assert_eq!(m["f"], -2);
    }

    #[test]
    fn rejects_duplicates_at_any_depth() {
        assert_eq!(
            parse_object(br#"{"a":1,"a":2}"#),
            Err(StrictJsonError::DuplicateKey)
        );
        assert_eq!(
            parse_object(br#"{"a":{"b":1,"b":1}}"#),
            Err(StrictJsonError::DuplicateKey)
        );
        assert_eq!(
            parse_object(br#"{"a":[{"b":1,"b":1}]}"#),
            Err(StrictJsonError::DuplicateKey)
        );
        // Escapes decode to the same key, so they are duplicates too.
        assert_eq!(
            parse_object(br#"{"a":1,"\u0061":2}"#),
            Err(StrictJsonError::DuplicateKey)
        );
    }

    #[test]
    fn rejects_syntax_errors_and_non_objects() {
        assert_eq!(parse_object(b"{"), Err(StrictJsonError::Syntax));
        assert_eq!(parse_object(b"{} x"), Err(StrictJsonError::Syntax));
        assert_eq!(parse_object(b""), Err(StrictJsonError::Syntax));
        assert_eq!(parse_object(b"[1]"), Err(StrictJsonError::NotAnObject));
        assert_eq!(parse_object(b"\"s\""), Err(StrictJsonError::NotAnObject));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(10_000);
        assert_eq!(parse_value(deep.as_bytes()), Err(StrictJsonError::Syntax));
    }
}
