//! KV names and the stored record: encode and decode side by side.

use std::collections::BTreeMap;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::super::api_key::parse_hex32;
use super::super::{AuthRejection, MAX_API_KEY_BYTES};
use crate::auth::ApiKeyRecord;

/// How the Worker uses a KV key store (`[api_keys] store = "kv"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvKeyStoreSettings {
    /// The KV namespace binding.
    pub binding: String,
    /// How long an isolate reuses a record it read.
    pub cache_ttl: Duration,
    /// How long an isolate remembers that a hash is unknown.
    pub negative_ttl: Duration,
    /// Most records (and, separately, unknown hashes) an isolate remembers.
    pub cache_entries: usize,
    /// How long the old key keeps working after a rotation, by default.
    pub rotation_overlap: Duration,
}

impl KvKeyStoreSettings {
    /// Default KV binding name.
    pub const DEFAULT_BINDING: &'static str = "API_KEYS_KV";
    /// Default `cache_ttl`.
    pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(30);
    /// Default `negative_ttl`.
    pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(10);
    /// Default `cache_entries`.
    pub const DEFAULT_CACHE_ENTRIES: usize = 10_000;
    /// Default `rotation_overlap`.
    pub const DEFAULT_ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);

    /// The settings with every default and binding `binding`.
    pub fn with_binding(binding: impl Into<String>) -> Self {
        Self {
            binding: binding.into(),
            cache_ttl: Self::DEFAULT_CACHE_TTL,
            negative_ttl: Self::DEFAULT_NEGATIVE_TTL,
            cache_entries: Self::DEFAULT_CACHE_ENTRIES,
            rotation_overlap: Self::DEFAULT_ROTATION_OVERLAP,
        }
    }
}

/// `%`, `/` and controls are encoded in a consumer's part of a KV name, so
/// one consumer's prefix is never a prefix of another's.
const NAME_PART: &AsciiSet = &CONTROLS.add(b'/').add(b'%');

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The KV name of the record of the key whose SHA-256 is `hash`.
pub fn kv_record_name(hash: &[u8; 32]) -> String {
    format!("key/{}", hex(hash))
}

/// The KV name mapping record id `id` to its key's hash.
pub fn kv_id_name(id: &str) -> String {
    format!("id/{id}")
}

/// The KV list prefix of `consumer`'s index entries.
pub fn kv_consumer_prefix(consumer: &str) -> String {
    format!("consumer/{}/", utf8_percent_encode(consumer, NAME_PART))
}

/// The KV name of `consumer`'s index entry for record `id`.
pub fn kv_consumer_entry(consumer: &str, id: &str) -> String {
    format!("{}{id}", kv_consumer_prefix(consumer))
}

/// 64 hex digits (either case) as a hash; the value of an `id/…` entry.
pub fn parse_hash_hex(text: &str) -> Option<[u8; 32]> {
    parse_hex32(text.trim())
}

/// The SHA-256 of a presented key, or the rejection for an empty or
/// over-long one (nothing is looked up for it).
pub fn presented_key_hash(presented: &str) -> Result<[u8; 32], AuthRejection> {
    if presented.is_empty() || presented.len() > MAX_API_KEY_BYTES {
        return Err(AuthRejection::MalformedApiKey {
            max: MAX_API_KEY_BYTES,
        });
    }
    Ok(Sha256::digest(presented.as_bytes()).into())
}

/// The value of `key/<hash>`: one issued key, without the key or its hash.
///
/// Times are whole Unix seconds. Members this version does not know are
/// ignored (a newer gateway may add some); `v` must be 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvKeyRecord {
    /// Format version, 1.
    pub v: u32,
    /// Stable, non-secret id (`key_` and 20 hex digits when issued here).
    pub id: String,
    /// Who owns the key.
    pub consumer: String,
    /// The consumer's plan (`[tiers.NAME]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Scopes granted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Limit overrides by limit name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, u64>,
    /// When it was issued.
    pub created_at: u64,
    /// Not valid before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<u64>,
    /// Not valid from this second on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// When it was revoked; a revoked key never works again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
    /// The id of the key that replaced this one in a rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    /// Turned off by an operator (the same effect as a revocation).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

/// Why a KV value is not a usable key record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRecordError {
    /// The value is not a JSON object of the record's shape.
    #[error("not a key record: {0}")]
    Shape(String),
    /// `v` is not a version this gateway reads.
    #[error("record format version {0} is not supported (expected 1)")]
    Version(u32),
    /// `id` or `consumer` is empty.
    #[error("`id` and `consumer` must be non-empty strings")]
    Empty,
}

impl KvKeyRecord {
    /// The format version written.
    pub const VERSION: u32 = 1;

    /// Decodes a `key/<hash>` value.
    pub fn decode(text: &str) -> Result<Self, KeyRecordError> {
        let record: Self =
            serde_json::from_str(text).map_err(|e| KeyRecordError::Shape(e.to_string()))?;
        if record.v != Self::VERSION {
            return Err(KeyRecordError::Version(record.v));
        }
        if record.id.is_empty() || record.consumer.is_empty() {
            return Err(KeyRecordError::Empty);
        }
        Ok(record)
    }

    /// Encodes the record as the `key/<hash>` value.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The record as the request path checks it: revoked means disabled,
    /// seconds become milliseconds.
    pub fn to_api_key_record(&self, hash: [u8; 32]) -> ApiKeyRecord {
        ApiKeyRecord {
            id: self.id.clone(),
            consumer: self.consumer.clone(),
            sha256: hash,
            tier: self.tier.clone(),
            scopes: self.scopes.clone(),
            limits: self.limits.clone(),
            not_before_ms: self.not_before.map(|s| s.saturating_mul(1000)),
            expires_at_ms: self.expires_at.map(|s| s.saturating_mul(1000)),
            disabled: self.disabled || self.revoked_at.is_some(),
        }
    }

    /// The non-secret summary kept as the consumer index entry's metadata.
    pub fn summary(&self, hash: &[u8; 32]) -> KeySummary {
        KeySummary {
            id: self.id.clone(),
            consumer: self.consumer.clone(),
            tier: self.tier.clone(),
            created_at: self.created_at,
            not_before: self.not_before,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            replaced_by: self.replaced_by.clone(),
            hash_prefix: hex(hash.get(..4).unwrap_or_default()),
            status: None,
        }
    }
}

/// Where a key stands at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// It works.
    Active,
    /// Its `not_before` is still ahead.
    Pending,
    /// Its `expires_at` has passed (rotated keys end so).
    Expired,
    /// Revoked or disabled.
    Revoked,
}

impl KeyStatus {
    /// The status as it is written in JSON (`active`, `pending`, `expired`,
    /// `revoked`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Pending => "pending",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// What listing shows of a key: never the key, never its full hash. It is
/// the KV metadata of the consumer index entry (at most 1024 bytes there;
/// the admin request limits keep it well under).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySummary {
    /// Record id.
    pub id: String,
    /// Owner.
    pub consumer: String,
    /// Plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Issued at (Unix seconds).
    pub created_at: u64,
    /// Not valid before (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<u64>,
    /// Not valid from (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Revoked at (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
    /// The key that replaced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    /// The first 8 hex digits of the key's SHA-256, to match a leaked key.
    pub hash_prefix: String,
    /// Where the key stands, filled in when it is shown ([`KeySummary::at`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<KeyStatus>,
}

impl KeySummary {
    /// The summary with its `status` at `now_ms`.
    pub fn at(mut self, now_ms: u64) -> Self {
        let now = now_ms / 1000;
        self.status = Some(if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|e| now >= e) {
            KeyStatus::Expired
        } else if self.not_before.is_some_and(|n| now < n) {
            KeyStatus::Pending
        } else {
            KeyStatus::Active
        });
        self
    }
}
