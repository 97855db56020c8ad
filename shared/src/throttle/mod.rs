//! Rate limiting as a pure state machine.
//!
//! The limiter is GCRA ([`check`]): one `u64` of state per key, exact at the
//! boundary (a quota of `L` admits exactly `L` simultaneous unit requests),
//! and cheap to store in a Durable Object. Several limits on one request go
//! through [`check_all`], which admits a request only if every limit does.
//! [`limiter_key`] builds the storage key a limit's state lives under,
//! [`rate_limit_headers`] renders a decision and
//! [`limiter_unavailable_problem`] what a client is told when the limiter
//! cannot be reached. The protocol
//! between the edge and its limiter objects (ops, replies, the object's step
//! [`apply`], leases of a key's budget) and the holder's side of a lease
//! ([`LeasePool`]) are owned here too. For a configured route,
//! `config::RateLimitPolicy` ties these together (keys, charges, per-caller
//! quotas, check, headers, problem).

mod gcra;
mod headers;
mod key;
mod lease;
mod multi;
mod problem;
mod protocol;

pub use gcra::{check, normalize, peek, refund, GcraState, LimitDecision, Quota};
pub use headers::{
    policy_value, rate_limit_headers, ratelimit_value, retry_after_secs, retry_after_value,
    RATELIMIT, RATELIMIT_POLICY, RETRY_AFTER,
};
pub use key::{limiter_key, KeySource, LimitKey, LimitKeyError, LimiterKeyParts};
pub use lease::{
    admit_from_leases, Granted, LeaseConfig, LeasePool, LeasePools, RateMeter, Taken,
    CLOCK_MARGIN_MS, LEASE_SHARE, LIFE_STRETCH, MAX_LIFE_MS, MAX_SLICES, METER_FLOOR_MS,
    METER_SPAN_MS, MIN_LEASE_UNITS, SLICE_REQUESTS, STRETCH_SHARE,
};
pub use multi::{check_all, combine, most_restrictive, LimitInput, MultiDecision};
pub use problem::limiter_unavailable_problem;
pub use protocol::{apply, give_back, Charge, LeaseGrant, LeaseReturn, LimiterOp, LimiterReply};
