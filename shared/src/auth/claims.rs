//! The registered JWT claims (RFC 7519 §4.1), typed and range-checked.
//!
//! Types are checked when the token is parsed, so a token whose `exp` is a
//! string is malformed whatever its signature. Time checks need the issuer
//! policy and happen in `jwt.rs` after the signature is verified.

use serde_json::{Map, Value};

use super::MalformedToken;

/// The latest NumericDate we accept: 9999-12-31T23:59:59Z. Anything later is
/// a bug or an attack, and the bound keeps millisecond arithmetic far from
/// overflow.
pub(crate) const MAX_NUMERIC_DATE_SECS: u64 = 253_402_300_799;

/// The claims the gateway reads, with their JSON types checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Claims {
    /// `iss`.
    pub iss: Option<String>,
    /// `sub`.
    pub sub: Option<String>,
    /// `aud`, normalised to a list (RFC 7519 allows a single string).
    pub aud: Option<Vec<String>>,
    /// `exp` in milliseconds since the epoch.
    pub exp_ms: Option<u64>,
    /// `nbf` in milliseconds since the epoch.
    pub nbf_ms: Option<u64>,
    /// `iat` in milliseconds since the epoch.
    pub iat_ms: Option<u64>,
    /// Union of `scope` (space-separated) and `scp` (array or
    /// space-separated string), deduplicated in first-seen order.
    pub scopes: Vec<String>,
    /// Every claim, for configurable ones such as the tier claim.
    pub all: Map<String, Value>,
}

impl Claims {
    /// Types the registered claims of a parsed claims object.
    pub fn from_map(all: Map<String, Value>) -> Result<Self, MalformedToken> {
        let mut scopes = Vec::new();
        if let Some(v) = all.get("scope") {
            let s = v.as_str().ok_or_else(|| invalid("scope", SCOPE_STRING))?;
            push_scopes(&mut scopes, s);
        }
        if let Some(v) = all.get("scp") {
            match v {
                Value::String(s) => push_scopes(&mut scopes, s),
                Value::Array(items) => {
                    for item in items {
                        let s = item.as_str().ok_or_else(|| invalid("scp", SCP))?;
                        push_scopes(&mut scopes, s);
                    }
                }
                _ => return Err(invalid("scp", SCP)),
            }
        }
        Ok(Self {
            iss: string_claim(&all, "iss")?,
            sub: string_claim(&all, "sub")?,
            aud: audience(&all)?,
            exp_ms: date_claim(&all, "exp")?,
            nbf_ms: date_claim(&all, "nbf")?,
            iat_ms: date_claim(&all, "iat")?,
            scopes,
            all,
        })
    }
}

const SCOPE_STRING: &str = "a string of space-separated scopes";
const SCP: &str = "an array of strings or a string of space-separated scopes";

fn invalid(claim: &str, expected: &'static str) -> MalformedToken {
    MalformedToken::InvalidClaim {
        claim: claim.to_owned(),
        expected,
    }
}

/// A claim that, when present, must be a string.
pub(crate) fn string_claim(
    all: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, MalformedToken> {
    match all.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(name, "a string")),
    }
}

fn audience(all: &Map<String, Value>) -> Result<Option<Vec<String>>, MalformedToken> {
    const EXPECTED: &str = "a string or an array of strings";
    match all.get("aud") {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid("aud", EXPECTED))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid("aud", EXPECTED)),
    }
}

fn date_claim(all: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, MalformedToken> {
    all.get(name).map(|v| numeric_date_ms(name, v)).transpose()
}

/// A NumericDate (RFC 7519 §2): a JSON number of seconds, fractions allowed,
/// between 0 and [`MAX_NUMERIC_DATE_SECS`], as milliseconds.
pub(crate) fn numeric_date_ms(name: &str, v: &Value) -> Result<u64, MalformedToken> {
    const EXPECTED: &str = "a number of seconds since 1970 (no later than year 9999)";
    let Value::Number(n) = v else {
        return Err(invalid(name, EXPECTED));
    };
    if let Some(secs) = n.as_u64() {
        return if secs <= MAX_NUMERIC_DATE_SECS {
            Ok(secs.saturating_mul(1000))
        } else {
            Err(invalid(name, EXPECTED))
        };
    }
    match n.as_f64() {
        // Negative integers land here too and fail the range check.
        Some(f) if f.is_finite() && (0.0..=MAX_NUMERIC_DATE_SECS as f64).contains(&f) => {
            // In range, so the cast neither saturates nor loses whole seconds.
            let ms = (f * 1000.0).floor() as u64;
            Ok(ms)
        }
        _ => Err(invalid(name, EXPECTED)),
    }
}

fn push_scopes(out: &mut Vec<String>, s: &str) {
    for scope in s.split(' ').filter(|s| !s.is_empty()) {
        if !out.iter().any(|have| have == scope) {
            out.push(scope.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Result<Claims, MalformedToken> {
        match v {
            Value::Object(m) => Claims::from_map(m),
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn types_registered_claims() {
        let c = claims(json!({
            "iss": "https://idp", "sub": "alice", "aud": "api",
            "exp": 1_700_000_000u64, "nbf": 1_600_000_000.25, "iat": 1_600_000_000
        }))
        .unwrap();
        assert_eq!(c.iss.as_deref(), Some("https://idp"));
        assert_eq!(c.aud, Some(vec!["api".to_owned()]));
        assert_eq!(c.exp_ms, Some(1_700_000_000_000));
        assert_eq!(c.nbf_ms, Some(1_600_000_000_250));
        assert_eq!(c.iat_ms, Some(1_600_000_000_000));
    }

    #[test]
    fn numeric_dates_must_be_sane_numbers() {
        for bad in [
            json!("1700000000"),
            json!(-1),
            json!(-0.5),
            json!(1e300),
            json!(u64::MAX),
            json!(MAX_NUMERIC_DATE_SECS + 1),
            json!(null),
            json!(true),
            json!([1]),
        ] {
            assert!(
                numeric_date_ms("exp", &bad).is_err(),
                "{bad} should be rejected"
            );
        }
        assert_eq!(
            numeric_date_ms("exp", &json!(MAX_NUMERIC_DATE_SECS)),
            Ok(MAX_NUMERIC_DATE_SECS * 1000)
        );
        assert_eq!(numeric_date_ms("exp", &json!(0)), Ok(0));
        assert_eq!(numeric_date_ms("exp", &json!(1.0005)), Ok(1000));
    }

    #[test]
    fn audience_shapes() {
        let c = claims(json!({"aud": ["a", "b"]})).unwrap();
        assert_eq!(c.aud, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert!(claims(json!({"aud": ["a", 1]})).is_err());
        assert!(claims(json!({"aud": 5})).is_err());
        assert_eq!(claims(json!({})).unwrap().aud, None);
    }

    #[test]
    fn scopes_merge_scope_and_scp() {
        let c = claims(json!({"scope": "read  write", "scp": ["write", "admin"]})).unwrap();
        assert_eq!(c.scopes, ["read", "write", "admin"]);
        let c = claims(json!({"scp": "a b"})).unwrap();
        assert_eq!(c.scopes, ["a", "b"]);
        assert!(claims(json!({"scope": ["a"]})).is_err());
        assert!(claims(json!({"scp": [1]})).is_err());
        assert!(claims(json!({"scp": 1})).is_err());
    }

    #[test]
    fn string_claims_must_be_strings() {
        assert!(claims(json!({"sub": 42})).is_err());
        assert!(claims(json!({"iss": null})).is_err());
    }
}
