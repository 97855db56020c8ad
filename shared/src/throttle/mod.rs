//! Rate limiting as a pure state machine.
//!
//! The limiter is GCRA ([`gcra`]): one `u64` of state per key, exact at the
//! boundary (a quota of `L` admits exactly `L` simultaneous unit requests),
//! and cheap to store in a Durable Object. The adapter loads the state, calls
//! [`gcra::check`] with the current time, stores the new state and renders the
//! decision with [`headers`]. Several limits on one request go through
//! [`multi`], which admits a request only if every limit does. [`key`] builds
//! the storage key a limit's state lives under, and [`problem`] what a
//! refused client is told. For a configured route, `config::RateLimitPolicy`
//! ties these together (keys, per-caller quotas, check, headers, problem).

pub mod gcra;
pub mod headers;
pub mod key;
pub mod multi;
pub mod problem;

pub use gcra::{check, normalize, peek, refund, Decision, GcraState, Quota};
pub use key::{limiter_key, KeyError, KeySource, LimitKey, LimiterKeyParts};
pub use multi::{check_all, combine, LimitInput, MultiDecision};
pub use problem::limiter_unavailable_problem;
