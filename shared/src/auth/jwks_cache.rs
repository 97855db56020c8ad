//! A JWKS cache as a state machine; the adapters do the fetching.
//!
//! The adapter asks [`JwksCache::lookup`] for a token's key and acts on the
//! [`KeyLookup`] it gets:
//!
//! - `Found` / `FoundStale { refresh: false }`: verify with the key.
//! - `FoundStale { refresh: true }`: verify, and refresh the set in the
//!   background (`on_fetched` / `on_fetch_failed`).
//! - `FetchThenRetry`: fetch the JWKS, report with `on_fetched` or
//!   `on_fetch_failed`, and look up again. A kid still missing from the set
//!   just fetched is negative-cached by `on_fetched` itself, so it stops
//!   causing fetches for `negative_ttl`; the adapter remembers nothing.
//! - `UnknownKid`: reject the token (401).
//! - `Unavailable`: no usable keys and no fetch allowed now (503).
//!
//! Keys written in the config file go in a [`JwksCache::pinned`] cache,
//! which answers `Found` or `UnknownKid` and never asks for a fetch, so
//! adapters treat both key sources alike.
//!
//! A fetch is only ever requested through the *fetch slot*: at most one
//! attempt per `refetch_cooldown`, claimed by the lookup (or by
//! [`JwksCache::try_begin_fetch`]) that returns it. So tokens with random
//! `kid`s cannot make us hammer the identity provider, and concurrent
//! requests in one isolate do not all fetch at once.

use std::collections::BTreeMap;
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};

use super::keys::select_key_index;
use super::MAX_KID_BYTES;

/// How long keys are trusted and how often they may be fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwksCachePolicy {
    /// How long a fetched set is fresh; after that a lookup asks for a refresh.
    pub ttl: Duration,
    /// How long past `ttl` a set is still served while refreshes fail, so an
    /// identity-provider outage does not become ours at once.
    pub max_stale: Duration,
    /// Least time between two fetch attempts, whatever the tokens say.
    pub refetch_cooldown: Duration,
    /// How long a kid missing from a freshly fetched set is remembered as unknown.
    pub negative_ttl: Duration,
    /// Most unknown kids remembered; the oldest is forgotten first.
    pub max_negative_entries: usize,
}

impl Default for JwksCachePolicy {
    /// Fresh for 10 minutes, served stale for up to an hour, one fetch per
    /// 30 seconds at most, unknown kids remembered for 5 minutes.
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(600),
            max_stale: Duration::from_secs(3600),
            refetch_cooldown: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(300),
            max_negative_entries: 1024,
        }
    }
}

impl JwksCachePolicy {
    /// For issuers that rotate keys often: fresh for a minute, stale for ten,
    /// one fetch per 10 seconds, unknown kids remembered for a minute.
    pub fn frequent_rotation() -> Self {
        Self {
            ttl: Duration::from_secs(60),
            max_stale: Duration::from_secs(600),
            refetch_cooldown: Duration::from_secs(10),
            negative_ttl: Duration::from_secs(60),
            ..Self::default()
        }
    }

    /// For issuers with long-lived keys: fresh for an hour, stale for a day,
    /// one fetch per minute, unknown kids remembered for 15 minutes.
    pub fn stable() -> Self {
        Self {
            ttl: Duration::from_secs(3600),
            max_stale: Duration::from_secs(86_400),
            refetch_cooldown: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(900),
            ..Self::default()
        }
    }
}

/// What to do about a token's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLookup<'a> {
    /// The key, from a fresh set.
    Found(&'a Jwk),
    /// The key, from a set past its `ttl` but within `max_stale`.
    FoundStale {
        /// The key to verify with.
        jwk: &'a Jwk,
        /// Whether this caller holds the fetch slot and should refresh.
        refresh: bool,
    },
    /// No such key yet; this caller holds the fetch slot: fetch, report, and
    /// look up again.
    FetchThenRetry,
    /// No such key, and no fetch now: 401. Either the kid is missing from
    /// a set fetched for it (negative-cached), or a fetch ran less than
    /// `refetch_cooldown` ago, or the set is pinned; to the client these are
    /// the same.
    UnknownKid,
    /// No usable key set, and no fetch now: 503.
    Unavailable,
}

/// The cached key set of one issuer and its fetch bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksCache {
    policy: JwksCachePolicy,
    keys: Option<JwkSet>,
    fetched_at_ms: u64,
    last_attempt_ms: Option<u64>,
    consecutive_failures: u32,
    /// Unknown kid → when it was recorded.
    negative: BTreeMap<String, u64>,
    /// The kid whose lookup claimed the pending fetch: negative-cached by
    /// `on_fetched` if the new set lacks it.
    awaited_kid: Option<String>,
    /// Keys from the config file: never fetched, never stale.
    pinned: bool,
    /// Bumped whenever the installed set differs from the one before: what
    /// a cached verification is tied to ([`JwksCache::key_epoch`]).
    epoch: u64,
}

impl JwksCache {
    /// An empty cache: the first lookup asks for a fetch.
    pub fn new(policy: JwksCachePolicy) -> Self {
        Self {
            policy,
            keys: None,
            fetched_at_ms: 0,
            last_attempt_ms: None,
            consecutive_failures: 0,
            negative: BTreeMap::new(),
            awaited_kid: None,
            pinned: false,
            epoch: 0,
        }
    }

    /// A cache holding a key set written in the config file (an inline
    /// `jwks`): lookups answer `Found` or `UnknownKid`, never ask for a
    /// fetch, and the set never goes stale. `on_fetched` leaves it unchanged.
    pub fn pinned(keys: JwkSet, policy: JwksCachePolicy) -> Self {
        Self {
            keys: Some(keys),
            pinned: true,
            epoch: 1,
            ..Self::new(policy)
        }
    }

    /// Whether this cache holds a pinned (config-file) key set.
    pub fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// The policy.
    pub fn policy(&self) -> &JwksCachePolicy {
        &self.policy
    }

    /// The current key set, however old.
    pub fn keys(&self) -> Option<&JwkSet> {
        self.keys.as_ref()
    }

    /// When the current key set was fetched.
    pub fn fetched_at_ms(&self) -> Option<u64> {
        self.keys.as_ref().map(|_| self.fetched_at_ms)
    }

    /// Failed fetches since the last success, for health reporting.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// How many unknown kids are remembered.
    pub fn negative_len(&self) -> usize {
        self.negative.len()
    }

    /// The key for a token with header `kid` and `alg` (see
    /// [`select_key`](super::select_key) for kid-less tokens), and whether
    /// to fetch. May claim the fetch slot.
    pub fn lookup(&mut self, kid: Option<&str>, alg: Algorithm, now_ms: u64) -> KeyLookup<'_> {
        if self.pinned {
            let found = self.keys.as_ref().and_then(|set| {
                let index = select_key_index(set, kid, alg)?;
                set.keys.get(index)
            });
            return found.map_or(KeyLookup::UnknownKid, KeyLookup::Found);
        }
        let age = now_ms.saturating_sub(self.fetched_at_ms);
        let fresh = age < millis(self.policy.ttl);
        let usable = self.keys.is_some()
            && age < millis(self.policy.ttl).saturating_add(millis(self.policy.max_stale));
        let found = match &self.keys {
            Some(set) if usable => select_key_index(set, kid, alg),
            _ => None,
        };
        if let Some(index) = found {
            let refresh = !fresh && self.try_begin_fetch(now_ms);
            let Some(jwk) = self.keys.as_ref().and_then(|s| s.keys.get(index)) else {
                return KeyLookup::Unavailable;
            };
            return if fresh {
                KeyLookup::Found(jwk)
            } else {
                KeyLookup::FoundStale { jwk, refresh }
            };
        }
        let negative = kid.is_some_and(|k| self.is_negative(k, now_ms));
        if usable && negative {
            KeyLookup::UnknownKid
        } else if self.try_begin_fetch(now_ms) {
            self.awaited_kid = kid.filter(|k| k.len() <= MAX_KID_BYTES).map(str::to_owned);
            KeyLookup::FetchThenRetry
        } else if usable {
            KeyLookup::UnknownKid
        } else {
            KeyLookup::Unavailable
        }
    }

    /// The key [`JwksCache::lookup`] would answer [`KeyLookup::Found`] with
    /// at `now_ms` (a fresh or pinned set holding it), without claiming
    /// anything: for a caller that may not fetch or wait (the edge's fast
    /// path). `None` wherever `lookup` would answer anything else (stale,
    /// unknown, fetch due, unavailable), which is then left to `lookup`.
    pub fn key_at_once(&self, kid: Option<&str>, alg: Algorithm, now_ms: u64) -> Option<&Jwk> {
        let set = self.keys.as_ref()?;
        let fresh =
            self.pinned || now_ms.saturating_sub(self.fetched_at_ms) < millis(self.policy.ttl);
        if !fresh {
            return None;
        }
        set.keys.get(select_key_index(set, kid, alg)?)
    }

    /// The epoch of the current key set, if it is fresh at `now_ms` (a
    /// pinned set always is): a verification made with a key of this set
    /// may be reused while the epoch stays the same
    /// ([`TokenCache`](super::TokenCache)). The epoch changes whenever a
    /// fetched set differs from the one it replaces (a key added, dropped or
    /// changed), never for a refetch of the same set. A set past its `ttl`
    /// answers `None`, so requests go through [`JwksCache::lookup`] again,
    /// which refreshes it.
    pub fn key_epoch(&self, now_ms: u64) -> Option<u64> {
        self.keys.as_ref()?;
        let fresh =
            self.pinned || now_ms.saturating_sub(self.fetched_at_ms) < millis(self.policy.ttl);
        fresh.then_some(self.epoch)
    }

    /// Whether the set is missing or past its `ttl` and a fetch is allowed:
    /// for adapters that refresh ahead of requests.
    pub fn needs_refresh(&self, now_ms: u64) -> bool {
        if self.pinned {
            return false;
        }
        let stale = self.keys.is_none()
            || now_ms.saturating_sub(self.fetched_at_ms) >= millis(self.policy.ttl);
        stale && self.cooldown_over(now_ms)
    }

    /// Claims the fetch slot if the cooldown has passed; the caller must then
    /// fetch and report with `on_fetched` or `on_fetch_failed`. Never for a
    /// pinned set.
    pub fn try_begin_fetch(&mut self, now_ms: u64) -> bool {
        if !self.pinned && self.cooldown_over(now_ms) {
            self.last_attempt_ms = Some(now_ms);
            self.awaited_kid = None;
            true
        } else {
            false
        }
    }

    /// Installs a freshly fetched set (use [`parse_jwks`](super::parse_jwks)
    /// on the body). Kids it contains are no longer negative-cached; the kid
    /// whose lookup asked for this fetch is, if the set lacks it.
    pub fn on_fetched(&mut self, keys: JwkSet, now_ms: u64) {
        if self.pinned {
            return;
        }
        let has = |kid: &str| {
            keys.keys
                .iter()
                .any(|k| k.common.key_id.as_deref() == Some(kid))
        };
        if let Some(kid) = self.awaited_kid.take().filter(|k| !has(k)) {
            self.record_unknown(&kid, now_ms);
        }
        self.negative.retain(|kid, _| {
            !keys
                .keys
                .iter()
                .any(|k| k.common.key_id.as_deref() == Some(kid.as_str()))
        });
        if self.keys.as_ref() != Some(&keys) {
            self.epoch = self.epoch.saturating_add(1);
        }
        self.keys = Some(keys);
        self.fetched_at_ms = now_ms;
        self.consecutive_failures = 0;
        self.note_attempt(now_ms);
    }

    /// Records a failed fetch (network error, bad status, unparsable body).
    /// The current set, if any, keeps being served within `max_stale`.
    pub fn on_fetch_failed(&mut self, now_ms: u64) {
        if self.pinned {
            return;
        }
        // Nothing was learnt about the awaited kid.
        self.awaited_kid = None;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.note_attempt(now_ms);
    }

    /// Remembers that `kid` is not in the issuer's set, so tokens naming it
    /// are refused without a fetch for `negative_ttl`. Over-long kids are not
    /// recorded; when full, the oldest entry is forgotten. `on_fetched` calls
    /// this for the kid that asked for the fetch; adapters need not.
    pub fn record_unknown(&mut self, kid: &str, now_ms: u64) {
        if kid.len() > MAX_KID_BYTES || self.policy.max_negative_entries == 0 {
            return;
        }
        let ttl = millis(self.policy.negative_ttl);
        self.negative
            .retain(|_, at| now_ms.saturating_sub(*at) < ttl);
        self.negative.insert(kid.to_owned(), now_ms);
        while self.negative.len() > self.policy.max_negative_entries {
            let oldest = self
                .negative
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.negative.remove(&k),
                None => break,
            };
        }
    }

    /// Whether `kid` is remembered as unknown at `now_ms`.
    pub fn is_negative(&self, kid: &str, now_ms: u64) -> bool {
        self.negative
            .get(kid)
            .is_some_and(|at| now_ms.saturating_sub(*at) < millis(self.policy.negative_ttl))
    }

    fn cooldown_over(&self, now_ms: u64) -> bool {
        self.last_attempt_ms
            .is_none_or(|at| now_ms.saturating_sub(at) >= millis(self.policy.refetch_cooldown))
    }

    fn note_attempt(&mut self, now_ms: u64) {
        self.last_attempt_ms = Some(self.last_attempt_ms.map_or(now_ms, |at| at.max(now_ms)));
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
