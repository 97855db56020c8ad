//! W3C Trace Context (Level 1): `traceparent` and `tracestate`.
//!
//! The edge takes part in the trace as one span: a valid incoming
//! `traceparent` is continued (same trace id and sampled flag, the parent id
//! replaced by the edge's own span id, as a participating proxy should); an
//! absent or invalid one starts a new trace. `tracestate` is passed on only
//! with a valid `traceparent`, cleaned and bounded ([`TraceState`]). The
//! policy has no randomness of its own: the adapter passes random bytes in.

mod context;
mod traceparent;
mod tracestate;

pub use context::{TraceContext, TRACE_RANDOM_BYTES};
pub use traceparent::{TraceParent, TraceParentError, TRACEPARENT_HEADER};
pub use tracestate::{TraceState, MAX_TRACESTATE_LEN, MAX_TRACESTATE_MEMBERS, TRACESTATE_HEADER};

#[cfg(test)]
mod tests;
