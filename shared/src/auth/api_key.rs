//! API keys, stored only as SHA-256 hashes.
//!
//! The `API_KEYS` secret is a JSON array of records:
//!
//! ```json
//! [{ "id": "key_123", "consumer": "acme",
//!    "sha256": "<64 hex digits: SHA-256 of the key>",
//!    "tier": "gold", "scopes": ["orders:read"],
//!    "limits": { "requests_per_minute": 600 },
//!    "not_before": "2025-01-01T00:00:00Z", "expires_at": 1767225600,
//!    "disabled": false }]
//! ```
//!
//! `id`, `consumer` and `sha256` are required. `not_before` / `expires_at`
//! are an RFC 3339 string or whole Unix seconds. Unknown members are errors,
//! so a typo such as `expires` cannot silently leave a key open. Several
//! records may share a consumer: that is how keys are rotated.
//!
//! Keys are long random strings, so a plain SHA-256 is enough (no salt or
//! slow hash needed), and a leaked secret does not leak usable keys. The
//! presented key's hash is compared with every stored hash in constant time.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::claims::MAX_NUMERIC_DATE_SECS;
use super::strict_json::{parse_value, StrictJsonError};
use super::timestamp::parse_rfc3339_ms;
use super::{AuthMethod, AuthRejection, Identity};

/// Longest API key accepted, in bytes. Generated keys are well under this;
/// the bound stops clients from making us hash megabytes.
pub const MAX_API_KEY_BYTES: usize = 256;

/// One configured API key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Stable id of the key, reported as [`Identity::key_id`].
    pub id: String,
    /// Who owns the key, reported as [`Identity::subject`].
    pub consumer: String,
    /// SHA-256 of the key.
    pub sha256: [u8; 32],
    /// The consumer's plan.
    pub tier: Option<String>,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// Limit overrides by limit name.
    pub limits: BTreeMap<String, u64>,
    /// Not valid before this instant (ms since the epoch).
    pub not_before_ms: Option<u64>,
    /// Not valid from this instant on (ms since the epoch).
    pub expires_at_ms: Option<u64>,
    /// Turned off by an operator.
    pub disabled: bool,
}

// The hash is not the key, but there is no reason to print it either.
impl fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("id", &self.id)
            .field("consumer", &self.consumer)
            .field("sha256", &"<redacted>")
            .field("tier", &self.tier)
            .field("scopes", &self.scopes)
            .field("limits", &self.limits)
            .field("not_before_ms", &self.not_before_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("disabled", &self.disabled)
            .finish()
    }
}

/// A problem in the `API_KEYS` secret, at a path such as `keys[2].sha256`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct ApiKeyConfigError {
    /// Where: `keys` for the document, `keys[i]` or `keys[i].member`.
    pub path: String,
    /// What is wrong there.
    pub problem: ApiKeyProblem,
}

/// What is wrong with (part of) the `API_KEYS` secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyProblem {
    /// The secret is not valid JSON.
    #[error("not valid JSON; expected an array of key records")]
    InvalidJson,
    /// Some object repeats a member name.
    #[error("an object repeats a member name")]
    DuplicateMember,
    /// The secret is JSON, but not an array.
    #[error("expected an array of key records")]
    NotAnArray,
    /// An entry of the array is not an object.
    #[error("expected a key record object")]
    NotAnObject,
    /// A member that key records do not have (a typo?).
    #[error("unknown member; expected one of {}", FIELDS.join(", "))]
    UnknownMember,
    /// A required member is absent.
    #[error("required: {expected}")]
    Missing {
        /// What the member must be.
        expected: &'static str,
    },
    /// A member has the wrong type or value.
    #[error("expected {expected}")]
    Invalid {
        /// What the member must be.
        expected: &'static str,
    },
    /// An earlier record has the same id.
    #[error("duplicate id; keys[{first}] already uses it")]
    DuplicateId {
        /// The index of the earlier record.
        first: usize,
    },
    /// An earlier record has the same hash, i.e. the same key.
    #[error("duplicate hash; keys[{first}] is the same key")]
    DuplicateHash {
        /// The index of the earlier record.
        first: usize,
    },
    /// `expires_at` is not later than `not_before`.
    #[error("must be later than not_before")]
    EmptyValidity,
}

/// The configured API keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiKeyStore {
    records: Vec<ApiKeyRecord>,
}

impl ApiKeyStore {
    /// Parses the `API_KEYS` secret, reporting every problem found.
    pub fn from_json(json: &str) -> Result<Self, Vec<ApiKeyConfigError>> {
        let doc = parse_value(json.as_bytes()).map_err(|e| {
            vec![err(
                "keys",
                match e {
                    StrictJsonError::DuplicateKey => ApiKeyProblem::DuplicateMember,
                    _ => ApiKeyProblem::InvalidJson,
                },
            )]
        })?;
        let Value::Array(items) = doc else {
            return Err(vec![err("keys", ApiKeyProblem::NotAnArray)]);
        };
        let mut errors = Vec::new();
        // Accepted records with their index in the document.
        let mut records: Vec<(usize, ApiKeyRecord)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("keys[{i}]");
            let Some(record) = parse_record(item, &path, &mut errors) else {
                continue;
            };
            if let Some((first, _)) = records.iter().find(|(_, r)| r.id == record.id) {
                errors.push(err(
                    &format!("{path}.id"),
                    ApiKeyProblem::DuplicateId { first: *first },
                ));
            } else if let Some((first, _)) = records.iter().find(|(_, r)| r.sha256 == record.sha256)
            {
                errors.push(err(
                    &format!("{path}.sha256"),
                    ApiKeyProblem::DuplicateHash { first: *first },
                ));
            } else {
                records.push((i, record));
            }
        }
        if errors.is_empty() {
            Ok(Self {
                records: records.into_iter().map(|(_, r)| r).collect(),
            })
        } else {
            Err(errors)
        }
    }

    /// The configured records.
    pub fn records(&self) -> &[ApiKeyRecord] {
        &self.records
    }

    /// How many keys are configured.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Authenticates `presented` at `now_ms`.
    ///
    /// The hash is compared with every record, in constant time and without
    /// stopping at a match, so timing reveals neither whether nor where a
    /// key matched.
    pub fn authenticate(&self, presented: &str, now_ms: u64) -> Result<Identity, AuthRejection> {
        if presented.is_empty() || presented.len() > MAX_API_KEY_BYTES {
            return Err(AuthRejection::MalformedApiKey {
                max: MAX_API_KEY_BYTES,
            });
        }
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = Choice::from(0);
        let mut index = 0u64;
        for (i, record) in self.records.iter().enumerate() {
            let equal = record.sha256.as_slice().ct_eq(hash.as_slice());
            index.conditional_assign(&(i as u64), equal);
            found |= equal;
        }
        let record = bool::from(found)
            .then(|| usize::try_from(index).ok())
            .flatten()
            .and_then(|i| self.records.get(i))
            .ok_or(AuthRejection::UnknownApiKey)?;

        record.identity_at(now_ms)
    }
}

impl ApiKeyRecord {
    /// The caller this record stands for at `now_ms`, or why the key does
    /// not work now (disabled, not yet valid, expired).
    pub fn identity_at(&self, now_ms: u64) -> Result<Identity, AuthRejection> {
        if self.disabled {
            return Err(AuthRejection::ApiKeyDisabled);
        }
        if self.not_before_ms.is_some_and(|nb| now_ms < nb) {
            return Err(AuthRejection::ApiKeyNotYetValid);
        }
        if self.expires_at_ms.is_some_and(|exp| now_ms >= exp) {
            return Err(AuthRejection::ApiKeyExpired);
        }
        Ok(Identity {
            subject: self.consumer.clone(),
            key_id: Some(self.id.clone()),
            issuer: None,
            scopes: self.scopes.clone(),
            tier: self.tier.clone(),
            limit_overrides: self.limits.clone(),
            method: AuthMethod::ApiKey,
        })
    }
}

/// One record of the `API_KEYS` secret as written: the writer beside the
/// parser above, so tools (the `tidegate keys new` command) never assemble
/// the format themselves. Times are whole Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiKeyEntry {
    /// Stable id.
    pub id: String,
    /// Owner.
    pub consumer: String,
    /// Lowercase hex SHA-256 of the key.
    pub sha256: String,
    /// Plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Scopes granted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Limit overrides by limit name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, u64>,
    /// Not valid before (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<u64>,
    /// Not valid from (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Turned off.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

impl ApiKeyRecord {
    /// This record as an `API_KEYS` entry (sub-second times are cut to
    /// whole seconds, as the secret keeps them).
    ///
    /// ```
    /// use tidegate_policy::auth::{hash_key, ApiKeyStore};
    /// let json = format!(r#"[{{"id":"k1","consumer":"acme","sha256":"{}"}}]"#, hash_key("tdg_x"));
    /// let store = ApiKeyStore::from_json(&json).unwrap();
    /// let entry = store.records()[0].to_entry();
    /// let again = serde_json::to_string(&[&entry]).unwrap();
    /// assert_eq!(ApiKeyStore::from_json(&again).unwrap(), store);
    /// ```
    pub fn to_entry(&self) -> ApiKeyEntry {
        ApiKeyEntry {
            id: self.id.clone(),
            consumer: self.consumer.clone(),
            sha256: self.sha256.iter().map(|b| format!("{b:02x}")).collect(),
            tier: self.tier.clone(),
            scopes: self.scopes.clone(),
            limits: self.limits.clone(),
            not_before: self.not_before_ms.map(|ms| ms / 1000),
            expires_at: self.expires_at_ms.map(|ms| ms / 1000),
            disabled: self.disabled,
        }
    }
}

/// The lowercase hex SHA-256 of `key`: the `sha256` member of its record.
pub fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const FIELDS: [&str; 9] = [
    "id",
    "consumer",
    "sha256",
    "tier",
    "scopes",
    "limits",
    "not_before",
    "expires_at",
    "disabled",
];

/// Parses one record, pushing every problem; `None` if there was any.
fn parse_record(
    item: &Value,
    path: &str,
    errors: &mut Vec<ApiKeyConfigError>,
) -> Option<ApiKeyRecord> {
    let Value::Object(obj) = item else {
        errors.push(err(path, ApiKeyProblem::NotAnObject));
        return None;
    };
    let before = errors.len();
    for name in obj.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        errors.push(err(&format!("{path}.{name}"), ApiKeyProblem::UnknownMember));
    }
    let mut field = |name: &str, problem: ApiKeyProblem| {
        errors.push(err(&format!("{path}.{name}"), problem));
    };

    let id = required_string(obj, "id", &mut field);
    let consumer = required_string(obj, "consumer", &mut field);
    let sha256 = match obj.get("sha256") {
        None => {
            field(
                "sha256",
                ApiKeyProblem::Missing {
                    expected: "the SHA-256 of the key as 64 hex digits",
                },
            );
            None
        }
        Some(v) => {
            let parsed = v.as_str().and_then(parse_hex32);
            if parsed.is_none() {
                field(
                    "sha256",
                    ApiKeyProblem::Invalid {
                        expected: "64 hex digits (the SHA-256 of the key)",
                    },
                );
            }
            parsed
        }
    };
    let tier = match obj.get("tier") {
        None => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(_) => {
            field(
                "tier",
                ApiKeyProblem::Invalid {
                    expected: "a non-empty string",
                },
            );
            None
        }
    };
    let scopes = match obj.get("scopes") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            let scopes: Vec<String> = items
                .iter()
                .filter_map(|s| s.as_str().filter(|s| valid_scope(s)).map(str::to_owned))
                .collect();
            if scopes.len() != items.len() {
                field(
                    "scopes",
                    ApiKeyProblem::Invalid {
                        expected: "an array of non-empty scope strings without spaces",
                    },
                );
            }
            scopes
        }
        Some(_) => {
            field(
                "scopes",
                ApiKeyProblem::Invalid {
                    expected: "an array of scope strings",
                },
            );
            Vec::new()
        }
    };
    let limits = match obj.get("limits") {
        None => BTreeMap::new(),
        Some(Value::Object(map)) => {
            let limits: BTreeMap<String, u64> = map
                .iter()
                .filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n)))
                .collect();
            if limits.len() != map.len() {
                field(
                    "limits",
                    ApiKeyProblem::Invalid {
                        expected: "an object of limit names to whole numbers ≥ 0",
                    },
                );
            }
            limits
        }
        Some(_) => {
            field(
                "limits",
                ApiKeyProblem::Invalid {
                    expected: "an object of limit names to whole numbers",
                },
            );
            BTreeMap::new()
        }
    };
    let not_before_ms = timestamp(obj, "not_before", &mut field);
    let expires_at_ms = timestamp(obj, "expires_at", &mut field);
    if let (Some(nb), Some(exp)) = (not_before_ms, expires_at_ms) {
        if exp <= nb {
            field("expires_at", ApiKeyProblem::EmptyValidity);
        }
    }
    let disabled = match obj.get("disabled") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            field(
                "disabled",
                ApiKeyProblem::Invalid {
                    expected: "true or false",
                },
            );
            false
        }
    };
    if errors.len() != before {
        return None;
    }
    Some(ApiKeyRecord {
        id: id?,
        consumer: consumer?,
        sha256: sha256?,
        tier,
        scopes,
        limits,
        not_before_ms,
        expires_at_ms,
        disabled,
    })
}

fn required_string(
    obj: &Map<String, Value>,
    name: &str,
    field: &mut impl FnMut(&str, ApiKeyProblem),
) -> Option<String> {
    match obj.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        None => {
            field(
                name,
                ApiKeyProblem::Missing {
                    expected: "a non-empty string",
                },
            );
            None
        }
        Some(_) => {
            field(
                name,
                ApiKeyProblem::Invalid {
                    expected: "a non-empty string",
                },
            );
            None
        }
    }
}

fn timestamp(
    obj: &Map<String, Value>,
    name: &str,
    field: &mut impl FnMut(&str, ApiKeyProblem),
) -> Option<u64> {
    let v = obj.get(name)?;
    let ms = match v {
        Value::String(s) => parse_rfc3339_ms(s),
        Value::Number(n) => n
            .as_u64()
            .filter(|s| *s <= MAX_NUMERIC_DATE_SECS)
            .map(|s| s.saturating_mul(1000)),
        _ => None,
    };
    if ms.is_none() {
        field(
            name,
            ApiKeyProblem::Invalid {
                expected:
                    "an RFC 3339 timestamp (e.g. \"2025-01-01T00:00:00Z\") or whole Unix seconds",
            },
        );
    }
    ms
}

pub(super) fn valid_scope(s: &str) -> bool {
    !s.is_empty() && !s.contains(' ')
}

pub(super) fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

fn err(path: &str, problem: ApiKeyProblem) -> ApiKeyConfigError {
    ApiKeyConfigError {
        path: path.to_owned(),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_750_000_000_000;

    fn store(records: Value) -> ApiKeyStore {
        ApiKeyStore::from_json(&records.to_string()).unwrap()
    }

    fn rec(id: &str, consumer: &str, key: &str) -> Value {
        json!({"id": id, "consumer": consumer, "sha256": hash_key(key)})
    }

    #[test]
    fn an_entry_reads_back_as_the_same_record() {
        let original = store(json!([{
            "id": "k1", "consumer": "acme", "sha256": hash_key("tdg_a"), "tier": "gold",
            "scopes": ["orders:read"], "limits": {"rpm": 5},
            "not_before": 1_700_000_000u64, "expires_at": "2030-01-01T00:00:00Z", "disabled": true
        }]));
        let entries: Vec<ApiKeyEntry> = original
            .records()
            .iter()
            .map(ApiKeyRecord::to_entry)
            .collect();
        let again = ApiKeyStore::from_json(&serde_json::to_string(&entries).unwrap()).unwrap();
        assert_eq!(again, original);
    }

    #[test]
    fn hash_key_is_sha256_hex() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn authenticates_a_valid_key() {
        let s = store(json!([{
            "id": "key_1", "consumer": "acme", "sha256": hash_key("sk_live_one").to_uppercase(),
            "tier": "gold", "scopes": ["orders:read", "orders:write"],
            "limits": {"requests_per_minute": 600},
            "not_before": "2025-01-01T00:00:00Z", "expires_at": 1_800_000_000u64,
            "disabled": false
        }]));
        let id = s.authenticate("sk_live_one", NOW).unwrap();
        assert_eq!(id.subject, "acme");
        assert_eq!(id.key_id.as_deref(), Some("key_1"));
        assert_eq!(id.issuer, None);
        assert_eq!(id.tier.as_deref(), Some("gold"));
        assert_eq!(id.scopes, ["orders:read", "orders:write"]);
        assert_eq!(id.limit_overrides.get("requests_per_minute"), Some(&600));
        assert_eq!(id.method, AuthMethod::ApiKey);
    }

    #[test]
    fn rotation_allows_several_keys_per_consumer() {
        let s = store(json!([
            rec("old", "acme", "key-old"),
            rec("new", "acme", "key-new"),
            rec("other", "globex", "key-globex"),
        ]));
        let old = s.authenticate("key-old", NOW).unwrap();
        let new = s.authenticate("key-new", NOW).unwrap();
        assert_eq!(
            (old.subject.as_str(), old.key_id.as_deref()),
            ("acme", Some("old"))
        );
        assert_eq!(
            (new.subject.as_str(), new.key_id.as_deref()),
            ("acme", Some("new"))
        );
        assert_eq!(s.authenticate("key-globex", NOW).unwrap().subject, "globex");
    }

    #[test]
    fn refuses_wrong_disabled_expired_and_early_keys() {
        let mut disabled = rec("d", "acme", "k-disabled");
        disabled["disabled"] = json!(true);
        let mut expired = rec("e", "acme", "k-expired");
        expired["expires_at"] = json!(NOW / 1000);
        let mut early = rec("n", "acme", "k-early");
        early["not_before"] = json!(NOW / 1000 + 1);
        let s = store(json!([disabled, expired, early, rec("ok", "acme", "k-ok")]));
        assert_eq!(
            s.authenticate("k-nope", NOW),
            Err(AuthRejection::UnknownApiKey)
        );
        assert_eq!(
            s.authenticate("k-ok ", NOW),
            Err(AuthRejection::UnknownApiKey)
        );
        assert_eq!(
            s.authenticate("k-disabled", NOW),
            Err(AuthRejection::ApiKeyDisabled)
        );
        assert_eq!(
            s.authenticate("k-expired", NOW),
            Err(AuthRejection::ApiKeyExpired)
        );
        assert!(s.authenticate("k-expired", NOW - 1).is_ok());
        assert_eq!(
            s.authenticate("k-early", NOW),
            Err(AuthRejection::ApiKeyNotYetValid)
        );
        assert!(s.authenticate("k-early", NOW + 1000).is_ok());
    }

    #[test]
    fn bounds_presented_key_length() {
        let long = "k".repeat(MAX_API_KEY_BYTES + 1);
        let s = store(json!([
            rec("long", "acme", &long),
            rec("max", "acme", &long[1..])
        ]));
        assert_eq!(
            s.authenticate(&long, NOW),
            Err(AuthRejection::MalformedApiKey {
                max: MAX_API_KEY_BYTES
            })
        );
        assert!(s.authenticate(&long[1..], NOW).is_ok());
        assert!(matches!(
            s.authenticate("", NOW),
            Err(AuthRejection::MalformedApiKey { .. })
        ));
        assert_eq!(
            ApiKeyStore::default().authenticate("x", NOW),
            Err(AuthRejection::UnknownApiKey)
        );
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let doc = json!([
            rec("a", "acme", "k1"),
            {"id": "", "sha256": "xyz", "tier": 5, "scopes": ["ok", "has space", 3],
             "limits": {"rpm": -1}, "not_before": "yesterday", "expires_at": "2025-13-01T00:00:00Z",
             "disabled": "no", "expires": 1},
            rec("a", "acme", "k2"),
            rec("c", "acme", "k1"),
            "nope",
            {"id": "w", "consumer": "acme", "sha256": hash_key("k3"),
             "not_before": 2_000_000_000u64, "expires_at": 1_000_000_000u64},
        ]);
        let errors = ApiKeyStore::from_json(&doc.to_string()).unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "keys[1].expires",
                "keys[1].id",
                "keys[1].consumer",
                "keys[1].sha256",
                "keys[1].tier",
                "keys[1].scopes",
                "keys[1].limits",
                "keys[1].not_before",
                "keys[1].expires_at",
                "keys[1].disabled",
                "keys[2].id",
                "keys[3].sha256",
                "keys[4]",
                "keys[5].expires_at",
            ]
        );
        assert_eq!(errors[10].problem, ApiKeyProblem::DuplicateId { first: 0 });
        assert_eq!(
            errors[1].to_string(),
            "keys[1].id: expected a non-empty string"
        );
        assert!(errors[11]
            .to_string()
            .starts_with("keys[3].sha256: duplicate hash"));
    }

    #[test]
    fn refuses_bad_documents() {
        let e = ApiKeyStore::from_json("{").unwrap_err();
        assert_eq!(e[0].path, "keys");
        let e = ApiKeyStore::from_json("{}").unwrap_err();
        assert_eq!(e[0].problem, ApiKeyProblem::NotAnArray);
        let e = ApiKeyStore::from_json(r#"[{"id":"a","id":"b"}]"#).unwrap_err();
        assert_eq!(e[0].problem, ApiKeyProblem::DuplicateMember);
        assert!(ApiKeyStore::from_json("[]").unwrap().is_empty());
    }

    #[test]
    fn debug_redacts_the_hash() {
        let s = store(json!([rec("a", "acme", "k1")]));
        let dbg = format!("{:?}", s);
        assert!(!dbg.contains(&hash_key("k1")[..8]));
        assert_eq!(s.len(), 1);
    }
}
