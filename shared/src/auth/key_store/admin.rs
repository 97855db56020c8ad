//! The admin operations on the KV key store: what a request body means, the
//! new key and records, and the typed answers.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::super::api_key::valid_scope;
use super::super::claims::MAX_NUMERIC_DATE_SECS;
use super::super::strict_json::parse_value;
use super::super::timestamp::parse_rfc3339_ms;
use super::record::{KeySummary, KvKeyRecord};
use crate::config::duration;
use crate::problem::Problem;

/// What every issued key starts with, so secret scanners can spot leaked ones.
pub const API_KEY_PREFIX: &str = "tdg_";
/// Longest consumer name, in bytes.
pub const MAX_CONSUMER_BYTES: usize = 128;
/// Longest tier name, record id, scope or limit name, in bytes.
const MAX_NAME_BYTES: usize = 64;
/// Most scopes or limit overrides on one key.
const MAX_ITEMS: usize = 32;
/// Keys per listed page unless `limit` says otherwise.
pub const DEFAULT_LIST_LIMIT: u64 = 100;
/// Most keys per listed page (KV's own `list` maximum).
pub const MAX_LIST_LIMIT: u64 = 1000;

/// Why an admin key request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyAdminError {
    /// The body is not a JSON object (or repeats a member).
    #[error("the body must be a JSON object without repeated members")]
    InvalidJson,
    /// A member the request does not have (a typo?).
    #[error("unknown member `{0}`")]
    UnknownMember(String),
    /// A required member is absent.
    #[error("`{0}` is required")]
    Missing(&'static str),
    /// A member has the wrong type or value.
    #[error("`{field}` must be {expected}")]
    Invalid {
        /// The member.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// The tier is not one of the configured `[tiers]`.
    #[error("tier `{0}` is not configured; add [tiers.{0}] or use a configured tier")]
    UnknownTier(String),
    /// The id in the path is not a record id.
    #[error("not a key id")]
    InvalidId,
    /// The `limit` query parameter is not a number from 1 to 1000.
    #[error("`limit` must be a whole number from 1 to {MAX_LIST_LIMIT}")]
    InvalidListLimit,
    /// No key has this id.
    #[error("no key has id `{0}`")]
    NotFound(String),
    /// The key was revoked: it cannot be rotated.
    #[error("key `{0}` is revoked; issue a new key instead")]
    Revoked(String),
}

impl KeyAdminError {
    /// The problem+json answer.
    pub fn to_problem(&self) -> Problem {
        let (status, slug, title) = match self {
            Self::NotFound(_) => (404, "key-not-found", "No such key"),
            Self::Revoked(_) => (409, "key-revoked", "Key revoked"),
            _ => (400, "invalid-key-request", "Invalid key request"),
        };
        Problem::new(status, slug, title).with_detail(self.to_string())
    }
}

/// What a new key grants (the body of `POST keys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGrant {
    /// Owner.
    pub consumer: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Plan.
    pub tier: Option<String>,
    /// Limit overrides by limit name.
    pub limits: BTreeMap<String, u64>,
    /// Not valid before (Unix seconds).
    pub not_before: Option<u64>,
    /// Not valid from (Unix seconds).
    pub expires_at: Option<u64>,
}

/// A key just issued: the only time the key itself is ever shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuedKey {
    /// The API key. Store it now: the gateway keeps only its hash.
    pub key: String,
    /// What the gateway keeps (and lists) about it.
    #[serde(flatten)]
    pub summary: KeySummary,
    /// Scopes.
    pub scopes: Vec<String>,
    /// For a rotation: the old key, now ending at its new `expires_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<KeySummary>,
    /// The key's SHA-256 (the KV name of its record); not shown.
    #[serde(skip)]
    pub hash: [u8; 32],
    /// The record to store under `key/<hash>`; not shown.
    #[serde(skip)]
    pub record: KvKeyRecord,
}

/// The answer to a revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevokedKey {
    /// The revoked key.
    #[serde(flatten)]
    pub summary: KeySummary,
    /// Seconds within which every location refuses the key: the isolate
    /// cache TTL plus KV's 60 s propagation.
    pub effective_within_seconds: u64,
}

/// One page of a consumer's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyListPage {
    /// Whose keys.
    pub consumer: String,
    /// The keys, by id.
    pub keys: Vec<KeySummary>,
    /// Pass as `cursor` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Whether this is the last page.
    pub list_complete: bool,
}

/// A new API key from 32 random bytes: [`API_KEY_PREFIX`] and 43 base64url
/// characters (256 bits).
pub fn new_api_key(random: &[u8; 32]) -> String {
    format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(random))
}

/// A new record id from 10 random bytes: `key_` and 20 hex digits.
pub fn new_key_id(random: &[u8; 10]) -> String {
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("key_{hex}")
}

/// A record id from a request path: 1 to 64 of `A-Z a-z 0-9 _ - .`.
pub fn parse_key_id(text: &str) -> Result<&str, KeyAdminError> {
    let ok = !text.is_empty()
        && text.len() <= MAX_NAME_BYTES
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    ok.then_some(text).ok_or(KeyAdminError::InvalidId)
}

/// The `limit` query parameter of a listing.
pub fn parse_list_limit(text: Option<&str>) -> Result<u64, KeyAdminError> {
    match text {
        None => Ok(DEFAULT_LIST_LIMIT),
        Some(t) => t
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
            .ok_or(KeyAdminError::InvalidListLimit),
    }
}

const ISSUE_FIELDS: [&str; 7] = [
    "consumer",
    "scopes",
    "tier",
    "limits",
    "not_before",
    "expires_at",
    "expires_in",
];
const ROTATE_FIELDS: [&str; 3] = ["overlap", "expires_at", "expires_in"];

fn object(body: &[u8], fields: &[&str]) -> Result<Map<String, Value>, KeyAdminError> {
    let Ok(Value::Object(obj)) = parse_value(body) else {
        return Err(KeyAdminError::InvalidJson);
    };
    if let Some(name) = obj.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(KeyAdminError::UnknownMember(name.clone()));
    }
    Ok(obj)
}

/// Parses the body of `POST keys` at `now_ms`. `known_tier` says whether a
/// tier is configured (`[tiers]` empty: every tier is accepted, as before
/// tiers were plans).
pub fn parse_issue_request(
    body: &[u8],
    now_ms: u64,
    known_tier: impl Fn(&str) -> bool,
) -> Result<KeyGrant, KeyAdminError> {
    let obj = object(body, &ISSUE_FIELDS)?;
    let consumer = match obj.get("consumer") {
        None => return Err(KeyAdminError::Missing("consumer")),
        Some(Value::String(s)) if valid_name(s, MAX_CONSUMER_BYTES) => s.clone(),
        Some(_) => {
            return Err(KeyAdminError::Invalid {
                field: "consumer",
                expected: "a string of 1 to 128 bytes without control characters",
            })
        }
    };
    let scopes = match obj.get("scopes") {
        None => Vec::new(),
        Some(Value::Array(items)) if items.len() <= MAX_ITEMS => {
            let scopes: Vec<String> = items
                .iter()
                .filter_map(Value::as_str)
                .filter(|s| valid_scope(s) && valid_name(s, MAX_NAME_BYTES))
                .map(str::to_owned)
                .collect();
            if scopes.len() != items.len() {
                return Err(invalid_scopes());
            }
            scopes
        }
        Some(_) => return Err(invalid_scopes()),
    };
    let tier = match obj.get("tier") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if valid_name(s, MAX_NAME_BYTES) => {
            if !known_tier(s) {
                return Err(KeyAdminError::UnknownTier(s.clone()));
            }
            Some(s.clone())
        }
        Some(_) => {
            return Err(KeyAdminError::Invalid {
                field: "tier",
                expected: "a tier name of 1 to 64 bytes",
            })
        }
    };
    let limits = match obj.get("limits") {
        None => BTreeMap::new(),
        Some(Value::Object(map)) if map.len() <= MAX_ITEMS => {
            let limits: BTreeMap<String, u64> = map
                .iter()
                .filter(|(k, _)| valid_name(k, MAX_NAME_BYTES))
                .filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n)))
                .collect();
            if limits.len() != map.len() {
                return Err(invalid_limits());
            }
            limits
        }
        Some(_) => return Err(invalid_limits()),
    };
    let not_before = timestamp(&obj, "not_before")?;
    let expires_at = expiry(&obj, now_ms)?;
    if let (Some(nb), Some(exp)) = (not_before, expires_at) {
        if exp <= nb {
            return Err(KeyAdminError::Invalid {
                field: "expires_at",
                expected: "later than not_before",
            });
        }
    }
    Ok(KeyGrant {
        consumer,
        scopes,
        tier,
        limits,
        not_before,
        expires_at,
    })
}

/// What a rotation asks for (the body of `POST keys/{id}/rotate`, which may
/// be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateRequest {
    /// How long the old key keeps working.
    pub overlap: Duration,
    /// When the new key expires (Unix seconds); by default never.
    pub expires_at: Option<u64>,
}

/// Parses the body of `POST keys/{id}/rotate`; an empty body takes
/// `default_overlap` and no expiry for the new key.
pub fn parse_rotate_request(
    body: &[u8],
    now_ms: u64,
    default_overlap: Duration,
) -> Result<RotateRequest, KeyAdminError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RotateRequest {
            overlap: default_overlap,
            expires_at: None,
        });
    }
    let obj = object(body, &ROTATE_FIELDS)?;
    let overlap = match obj.get("overlap") {
        None => default_overlap,
        Some(Value::String(s)) => duration::parse_duration(s).map_err(|_| invalid_overlap())?,
        Some(_) => return Err(invalid_overlap()),
    };
    Ok(RotateRequest {
        overlap,
        expires_at: expiry(&obj, now_ms)?,
    })
}

impl KeyGrant {
    /// Issues the key: `key_random` (32 bytes) makes the key, `id_random`
    /// (10 bytes) its id; both must come from a CSPRNG.
    pub fn issue(self, key_random: &[u8; 32], id_random: &[u8; 10], now_ms: u64) -> IssuedKey {
        let key = new_api_key(key_random);
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let record = KvKeyRecord {
            v: KvKeyRecord::VERSION,
            id: new_key_id(id_random),
            consumer: self.consumer,
            tier: self.tier,
            scopes: self.scopes,
            limits: self.limits,
            created_at: now_ms / 1000,
            not_before: self.not_before,
            expires_at: self.expires_at,
            revoked_at: None,
            replaced_by: None,
            disabled: false,
        };
        IssuedKey {
            key,
            summary: record.summary(&hash).at(now_ms),
            scopes: record.scopes.clone(),
            replaces: None,
            hash,
            record,
        }
    }
}

impl KvKeyRecord {
    /// Rotates this key (whose hash is `old_hash`): a new key with the same
    /// consumer, tier, scopes and limits, and this record ending after the
    /// overlap (never later than it already did). Returns the new key and
    /// this record as updated. A revoked key cannot be rotated.
    pub fn rotate(
        &self,
        old_hash: &[u8; 32],
        request: &RotateRequest,
        key_random: &[u8; 32],
        id_random: &[u8; 10],
        now_ms: u64,
    ) -> Result<(IssuedKey, KvKeyRecord), KeyAdminError> {
        if self.revoked_at.is_some() || self.disabled {
            return Err(KeyAdminError::Revoked(self.id.clone()));
        }
        let grant = KeyGrant {
            consumer: self.consumer.clone(),
            scopes: self.scopes.clone(),
            tier: self.tier.clone(),
            limits: self.limits.clone(),
            not_before: None,
            expires_at: request.expires_at,
        };
        let mut issued = grant.issue(key_random, id_random, now_ms);
        let ends = (now_ms / 1000).saturating_add(request.overlap.as_secs());
        let mut old = self.clone();
        old.expires_at = Some(old.expires_at.map_or(ends, |e| e.min(ends)));
        old.replaced_by = Some(issued.record.id.clone());
        issued.replaces = Some(old.summary(old_hash).at(now_ms));
        Ok((issued, old))
    }

    /// This record revoked at `now_ms` (a second revocation keeps the first
    /// time).
    pub fn revoked(&self, now_ms: u64) -> KvKeyRecord {
        let mut r = self.clone();
        r.revoked_at = Some(r.revoked_at.unwrap_or(now_ms / 1000));
        r
    }
}

fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

fn invalid_scopes() -> KeyAdminError {
    KeyAdminError::Invalid {
        field: "scopes",
        expected: "a list of at most 32 scope strings (1 to 64 bytes, no spaces)",
    }
}

fn invalid_limits() -> KeyAdminError {
    KeyAdminError::Invalid {
        field: "limits",
        expected: "an object of at most 32 limit names to whole numbers ≥ 0",
    }
}

fn invalid_overlap() -> KeyAdminError {
    KeyAdminError::Invalid {
        field: "overlap",
        expected: "a duration such as \"1h\" or \"7d\" (at most a year)",
    }
}

/// `expires_at` (a timestamp) or `expires_in` (a duration from now), in
/// Unix seconds; it must lie in the future.
fn expiry(obj: &Map<String, Value>, now_ms: u64) -> Result<Option<u64>, KeyAdminError> {
    let at = timestamp(obj, "expires_at")?;
    let within = match obj.get("expires_in") {
        None => None,
        Some(Value::String(s)) => match duration::parse_duration(s) {
            Ok(d) if !d.is_zero() => Some((now_ms / 1000).saturating_add(d.as_secs().max(1))),
            _ => {
                return Err(KeyAdminError::Invalid {
                    field: "expires_in",
                    expected: "a duration such as \"90d\" (at most a year)",
                })
            }
        },
        Some(_) => {
            return Err(KeyAdminError::Invalid {
                field: "expires_in",
                expected: "a duration string such as \"90d\"",
            })
        }
    };
    match (at, within) {
        (Some(_), Some(_)) => Err(KeyAdminError::Invalid {
            field: "expires_in",
            expected: "absent when expires_at is given",
        }),
        (Some(at), None) if at.saturating_mul(1000) <= now_ms => Err(KeyAdminError::Invalid {
            field: "expires_at",
            expected: "in the future",
        }),
        (at, within) => Ok(at.or(within)),
    }
}

fn timestamp(obj: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, KeyAdminError> {
    let Some(v) = obj.get(name) else {
        return Ok(None);
    };
    let secs = match v {
        Value::String(s) => parse_rfc3339_ms(s).map(|ms| ms / 1000),
        Value::Number(n) => n.as_u64().filter(|s| *s <= MAX_NUMERIC_DATE_SECS),
        _ => None,
    };
    secs.map(Some).ok_or(KeyAdminError::Invalid {
        field: name,
        expected: "an RFC 3339 timestamp (e.g. \"2030-01-01T00:00:00Z\") or whole Unix seconds",
    })
}
