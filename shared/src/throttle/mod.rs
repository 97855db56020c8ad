//! Rate limiting as a pure state machine.
//!
//! The limiter is GCRA ([`gcra`]): one `u64` of state per key, exact at the
//! boundary (a quota of `L` admits exactly `L` simultaneous unit requests),
//! and cheap to store in a Durable Object. Several limits on one request go
//! through [`multi`], which admits a request only if every limit does. [`key`]
//! builds the storage key a limit's state lives under, [`headers`] renders a
//! decision and [`problem`] what a refused client is told. The protocol
//! between the edge and its limiter objects (ops, replies, the object's step
//! [`apply`], leases of a key's budget) and the holder's side of a lease
//! ([`LeasePool`]) are owned here too. For a configured route,
//! `config::RateLimitPolicy` ties these together (keys, charges, per-caller
//! quotas, check, headers, problem).

pub mod gcra;
pub mod headers;
pub mod key;
mod lease;
pub mod multi;
pub mod problem;
mod protocol;

pub use gcra::{check, normalize, peek, refund, GcraState, LimitDecision, Quota};
pub use key::{limiter_key, KeySource, LimitKey, LimitKeyError, LimiterKeyParts};
pub use lease::{
    admit_from_leases, Granted, LeaseConfig, LeasePool, LeasePools, RateMeter, Taken,
    CLOCK_MARGIN_MS, LEASE_SHARE, MAX_SLICES, MIN_LEASE_UNITS,
};
pub use multi::{check_all, combine, LimitInput, MultiDecision};
pub use problem::limiter_unavailable_problem;
pub use protocol::{apply, give_back, Charge, LeaseGrant, LeaseReturn, LimiterOp, LimiterReply};
