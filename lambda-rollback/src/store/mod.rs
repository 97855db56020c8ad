//! Where Tidegate keeps what it remembers about each managed stage: the
//! [`StageRecord`] (versioned, every write conditional on the version
//! read), a lease that makes one invocation at a time the stage's writer,
//! and the action history.
//!
//! [`StateStore`] is the contract; [`DynamoStore`] keeps it in one DynamoDB
//! table (`TIDEGATE_STATE_TABLE`, created by `infra/template.yaml`):
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | record | `stage#{api id}/{stage}` | `record` | `record` (JSON), `version`, `updated_at_ms` |
//! | lease | `stage#{api id}/{stage}` | `lease` | `owner`, `until_ms`, `expires_at` (TTL) |
//! | history | `stage#{api id}/{stage}` | `history#{at_ms:013}#{id}` | `entry` (JSON), `expires_at` (TTL, 90 days) |
//! | edge signal | `edge#{event id}` | `signal` | `until_ms`, `expires_at` (TTL): one per event id handled, kept twice the signature's tolerance |
//!
//! ```
//! use tidegate_rollback::store::StageKey;
//! let key = StageKey::new("a1b2c3", "prod");
//! assert_eq!(key.partition(), "stage#a1b2c3/prod");
//! ```

mod dynamo;
mod history;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use tidegate_policy::rollout::StageRecord;

pub use dynamo::{DynamoStore, PK, SK, TTL};
pub use history::{HistoryEntry, HISTORY_RETENTION_DAYS};

/// A boxed, sendable future, for the object-safe [`StateStore`].
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Names one managed stage in the store: by the REST API's id, never its
/// name (names are not unique).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StageKey {
    /// REST API id.
    pub rest_api_id: String,
    /// Stage name.
    pub stage: String,
}

impl StageKey {
    /// The key of `rest_api_id`/`stage`.
    pub fn new(rest_api_id: impl Into<String>, stage: impl Into<String>) -> Self {
        Self {
            rest_api_id: rest_api_id.into(),
            stage: stage.into(),
        }
    }

    /// The partition every item of this stage lives in.
    pub fn partition(&self) -> String {
        format!("stage#{}/{}", self.rest_api_id, self.stage)
    }
}

impl fmt::Display for StageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.rest_api_id, self.stage)
    }
}

/// A record and the version it was read at (`None`: no record yet).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Versioned {
    /// The record (the default for a stage never seen).
    pub record: StageRecord,
    /// Its version; `None` when the store had none.
    pub version: Option<u64>,
}

/// The right to write one stage until `until_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The stage.
    pub key: StageKey,
    /// Who holds it (unique per invocation).
    pub owner: String,
    /// When it lapses, ms since the epoch.
    pub until_ms: u64,
}

/// A store call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The record changed since it was read (another writer won).
    #[error("the record of {key} changed since version {expected:?} was read")]
    VersionConflict {
        /// The stage.
        key: String,
        /// The version read.
        expected: Option<u64>,
    },
    /// Another invocation holds the stage's lease.
    #[error("stage {key} is being handled by invocation {owner} until {until_ms}")]
    LeaseHeld {
        /// The stage.
        key: String,
        /// The holder.
        owner: String,
        /// When its lease lapses, ms since the epoch.
        until_ms: u64,
    },
    /// A stored item cannot be read back.
    #[error("the stored {what} of {key} is unreadable: {detail}")]
    Corrupt {
        /// The stage.
        key: String,
        /// Which item.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// The call itself failed (after the SDK's retries).
    #[error("{call} on table {table}: {message}")]
    Call {
        /// The DynamoDB operation.
        call: &'static str,
        /// The table.
        table: String,
        /// The SDK's message, with its context.
        message: String,
    },
}

/// What the rollback Lambda needs from its store.
pub trait StateStore: Send + Sync {
    /// The stage's record, read strongly consistently.
    fn load<'a>(&'a self, key: &'a StageKey) -> StoreFuture<'a, Versioned>;

    /// Writes `record` if the stored version is still `expected` (`None`:
    /// only if there is none); returns the new version.
    fn save<'a>(
        &'a self,
        key: &'a StageKey,
        record: &'a StageRecord,
        expected: Option<u64>,
        now_ms: u64,
    ) -> StoreFuture<'a, u64>;

    /// Takes the stage's lease for `owner` until `until_ms`, if nobody else
    /// holds an unexpired one ([`StoreError::LeaseHeld`] otherwise).
    fn acquire<'a>(
        &'a self,
        key: &'a StageKey,
        owner: &'a str,
        until_ms: u64,
        now_ms: u64,
    ) -> StoreFuture<'a, Lease>;

    /// Gives the lease back (a lapsed or taken-over lease is left alone).
    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()>;

    /// Adds one history entry (kept [`HISTORY_RETENTION_DAYS`]).
    fn append<'a>(&'a self, key: &'a StageKey, entry: &'a HistoryEntry) -> StoreFuture<'a, ()>;

    /// The newest `limit` history entries, newest first.
    fn history<'a>(&'a self, key: &'a StageKey, limit: usize)
        -> StoreFuture<'a, Vec<HistoryEntry>>;

    /// Claims the edge event `id` until `until_ms` (a conditional put):
    /// `false` when it was claimed already and the claim has not lapsed.
    fn claim_signal<'a>(&'a self, id: &'a str, until_ms: u64, now_ms: u64)
        -> StoreFuture<'a, bool>;

    /// Gives a claim back (the event could not be acted on: its retry must
    /// not be taken for a duplicate).
    fn forget_signal<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()>;
}
