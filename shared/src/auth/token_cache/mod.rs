//! A bounded cache of verified bearer tokens, so a client that sends the same
//! token again is not verified again (Envoy's `jwt_authn` keeps one too).
//!
//! [`authenticate`](super::authenticate) uses it when the adapter's
//! [`KeyProvider::token_cache`](super::KeyProvider::token_cache) offers one:
//! a token is looked up by its [`TokenDigest`] (SHA-256 of the whole token;
//! the token itself is never kept) before it is parsed, and a token that
//! passed every check is remembered as a [`VerifiedToken`]: its issuer's
//! name, the [`Identity`], the [`ValidityWindow`] of its times and the
//! *key epoch* of the issuer's key set that verified it.
//!
//! A remembered token stands in for the checks only while all of these hold,
//! every time it is used:
//!
//! - now is inside its window: `exp`, `nbf`, `iat` with the issuer's leeway
//!   and lifetime cap, exact to the millisecond, so an expired token is
//!   refused exactly as without the cache;
//! - it was remembered less than the configured `ttl` ago;
//! - this request may use its issuer (a route's issuers; the route's scopes
//!   are checked by the pipeline afterwards, on every request);
//! - the issuer's key set is fresh and has the same epoch as when the token
//!   was verified: a fetched set that differs (rotation, a dropped `kid`)
//!   has a new epoch ([`JwksCache::key_epoch`](super::JwksCache::key_epoch)).
//!
//! Otherwise the token goes through the whole pipeline, which answers as if
//! there were no cache. Refusals are never remembered: each refused token
//! costs its checks again, as without the cache, and nothing about refused
//! tokens can fill the cache. A cache belongs to one configuration (issuer
//! names and policies); a new configuration starts an empty one.
//!
//! Bounds: at most `max_entries` entries; when full, the one that stops
//! being usable soonest goes (expired ones first), O(log n). An entry is
//! its identity's strings plus about [`ENTRY_OVERHEAD_BYTES`]; identities
//! larger than [`MAX_IDENTITY_BYTES`] are not remembered, so the cache holds
//! at most `max_entries × (MAX_IDENTITY_BYTES + ENTRY_OVERHEAD_BYTES)`,
//! ≈ 9.6 MiB at the default 4,096 entries (typically ≈ 600 bytes an
//! entry, ≈ 2.5 MiB).
//!
//! ```
//! use std::time::Duration;
//! use tidegate_policy::auth::{
//!     AuthMethod, Identity, TokenCache, TokenCacheSettings, TokenDigest, ValidityWindow,
//!     VerifiedToken,
//! };
//!
//! let mut cache = TokenCache::new(TokenCacheSettings::default());
//! let digest = TokenDigest::of("header.claims.signature");
//! let identity = Identity {
//!     subject: "alice".into(),
//!     key_id: Some("k1".into()),
//!     issuer: Some("https://idp.example/".into()),
//!     scopes: vec!["read".into()],
//!     tier: None,
//!     limit_overrides: Default::default(),
//!     method: AuthMethod::Jwt,
//! };
//! let window = ValidityWindow { from_ms: 0, until_ms: 60_000 };
//! let token = VerifiedToken { issuer: "idp".into(), identity, window, key_epoch: 1 };
//! cache.insert(digest, token, 1_000);
//!
//! // Same keys (epoch 1): reused. Rotated keys (epoch 2) or past `exp`: not.
//! assert!(cache.lookup(&digest, 2_000, |_| Some(1)).is_some());
//! assert!(cache.lookup(&digest, 60_000, |_| Some(1)).is_none());
//! ```

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Identity;

/// Most bytes of strings an identity may hold to be remembered (subject,
/// `kid`, issuer, scopes, tier): bounds the cache's memory whatever the
/// tokens carry. Real identities take a few hundred.
pub const MAX_IDENTITY_BYTES: usize = 2048;

/// About what an entry costs besides its identity's strings: the digest
/// (twice, map and expiry index), the window, the times, the `String` and
/// `Vec` headers and the maps' own overhead.
pub const ENTRY_OVERHEAD_BYTES: usize = 400;

/// Whether and how much the gateway remembers verified tokens
/// (`[gateway.token_cache]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCacheSettings {
    /// Whether verified tokens are reused at all.
    pub enabled: bool,
    /// Most tokens remembered per isolate.
    pub max_entries: usize,
    /// Longest a token is reused without being verified again (also bounded
    /// by its `exp` and by its issuer's key set staying the same).
    pub ttl: Duration,
}

impl TokenCacheSettings {
    /// Default `max_entries`.
    pub const DEFAULT_MAX_ENTRIES: usize = 4096;
    /// Default `ttl`.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
    /// Largest `max_entries` accepted.
    pub const MAX_ENTRIES: usize = 100_000;
    /// Longest `ttl` accepted.
    pub const MAX_TTL: Duration = Duration::from_secs(3600);
}

impl Default for TokenCacheSettings {
    /// On, 4,096 tokens, reused for at most 5 minutes.
    fn default() -> Self {
        Self {
            enabled: true,
            max_entries: Self::DEFAULT_MAX_ENTRIES,
            ttl: Self::DEFAULT_TTL,
        }
    }
}

/// SHA-256 of a whole bearer token: what the cache is keyed by, so it never
/// holds a token (a digest cannot be replayed as one).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// The digest of `token`, exactly as sent.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }
}

// Not printed: logs must not be able to correlate tokens.
impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest(<redacted>)")
    }
}

/// The instants a token's times are accepted at: `from_ms <= now < until_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidityWindow {
    /// The first accepted instant (`nbf`/`iat` less the leeway, or the
    /// lifetime cap's bound), ms since the epoch.
    pub from_ms: u64,
    /// The first refused instant (`exp` plus the leeway), ms since the epoch.
    pub until_ms: u64,
}

impl ValidityWindow {
    /// Whether the times pass at `now_ms`.
    pub fn contains(&self, now_ms: u64) -> bool {
        self.from_ms <= now_ms && now_ms < self.until_ms
    }
}

/// What a later request needs of a verified token to skip its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The configured issuer's name (`[[issuers]] name`).
    pub issuer: String,
    /// The caller, as the checks found it.
    pub identity: Identity,
    /// When the token's times pass.
    pub window: ValidityWindow,
    /// The epoch of the issuer's key set the verifying key came from.
    pub key_epoch: u64,
}

/// How the pipeline used the cache for one bearer token (for the log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCacheUse {
    /// A remembered verification was reused: no parsing, no signature check.
    Hit,
    /// The token was checked in full (and remembered if it passed).
    Miss,
}

impl TokenCacheUse {
    /// `hit` or `miss`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
        }
    }
}

#[derive(Debug)]
struct Entry {
    token: VerifiedToken,
    stored_ms: u64,
    /// The earlier of the window's end and `stored_ms + ttl`: the entry's
    /// key in the expiry index.
    unusable_at: u64,
}

/// The verified tokens of one isolate under one configuration.
#[derive(Debug)]
pub struct TokenCache {
    settings: TokenCacheSettings,
    entries: HashMap<TokenDigest, Entry>,
    /// `(unusable_at, digest)` of every entry, soonest first: eviction and
    /// the sweep of expired entries take from the front.
    expiry: BTreeSet<(u64, TokenDigest)>,
}

impl TokenCache {
    /// An empty cache under `settings`.
    pub fn new(settings: TokenCacheSettings) -> Self {
        Self {
            settings,
            entries: HashMap::new(),
            expiry: BTreeSet::new(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &TokenCacheSettings {
        &self.settings
    }

    /// Whether the cache remembers anything (enabled, with room).
    pub fn is_enabled(&self) -> bool {
        self.settings.enabled && self.settings.max_entries > 0 && !self.settings.ttl.is_zero()
    }

    /// How many tokens are remembered (some may have expired since).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no token is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The identity remembered for `digest`, if it may stand in for the
    /// token's checks at `now_ms`. `key_epoch` answers, for the remembered
    /// issuer's name, the current epoch of its key set, or `None` when this
    /// request may not use that issuer or its keys are not fresh.
    ///
    /// An entry past its window or `ttl`, or whose issuer's keys changed, is
    /// forgotten; one refused only because of this request's issuers, or
    /// stale keys, is kept for requests that may use it.
    pub fn lookup(
        &mut self,
        digest: &TokenDigest,
        now_ms: u64,
        key_epoch: impl FnOnce(&str) -> Option<u64>,
    ) -> Option<Identity> {
        let entry = self.entries.get(digest)?;
        let expired = now_ms >= entry.unusable_at || now_ms < entry.stored_ms;
        if expired {
            self.remove(digest);
            return None;
        }
        if !entry.token.window.contains(now_ms) {
            // Not yet valid (only a clock that went back): keep, check in full.
            return None;
        }
        match key_epoch(&entry.token.issuer) {
            Some(epoch) if epoch == entry.token.key_epoch => Some(entry.token.identity.clone()),
            Some(_) => {
                // Epochs only grow: this entry can never be used again.
                self.remove(digest);
                None
            }
            None => None,
        }
    }

    /// Remembers a token that passed every check at `now_ms`. Ignored when
    /// the cache is off, the window does not contain `now_ms` or the
    /// identity is over [`MAX_IDENTITY_BYTES`]. Makes room by forgetting
    /// expired entries, then those that stop being usable soonest.
    pub fn insert(&mut self, digest: TokenDigest, token: VerifiedToken, now_ms: u64) {
        if !self.is_enabled()
            || !token.window.contains(now_ms)
            || identity_bytes(&token.identity).saturating_add(token.issuer.len())
                > MAX_IDENTITY_BYTES
        {
            return;
        }
        let ttl_end = now_ms.saturating_add(millis(self.settings.ttl));
        let unusable_at = token.window.until_ms.min(ttl_end);
        self.remove(&digest);
        self.sweep(now_ms);
        while self.entries.len() >= self.settings.max_entries {
            let Some((_, soonest)) = self.expiry.pop_first() else {
                break;
            };
            self.entries.remove(&soonest);
        }
        self.expiry.insert((unusable_at, digest));
        self.entries.insert(
            digest,
            Entry {
                token,
                stored_ms: now_ms,
                unusable_at,
            },
        );
    }

    /// Forgets `digest`.
    pub fn remove(&mut self, digest: &TokenDigest) {
        if let Some(entry) = self.entries.remove(digest) {
            self.expiry.remove(&(entry.unusable_at, *digest));
        }
    }

    /// Forgets every entry no longer usable at `now_ms` (each costs
    /// O(log n), once).
    fn sweep(&mut self, now_ms: u64) {
        while let Some(&(at, digest)) = self.expiry.first() {
            if at > now_ms {
                break;
            }
            self.expiry.pop_first();
            self.entries.remove(&digest);
        }
    }
}

/// The bytes of strings `identity` holds.
fn identity_bytes(identity: &Identity) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let scopes: usize = identity.scopes.iter().map(String::len).sum();
    let overrides: usize = identity
        .limit_overrides
        .keys()
        .map(|k| k.len().saturating_add(8))
        .sum();
    identity
        .subject
        .len()
        .saturating_add(opt(&identity.key_id))
        .saturating_add(opt(&identity.issuer))
        .saturating_add(opt(&identity.tier))
        .saturating_add(scopes)
        .saturating_add(overrides)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
