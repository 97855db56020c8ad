//! The edge's trace context for one request.

use super::traceparent::{hex, TraceParent, TRACEPARENT_HEADER};
use super::tracestate::{TraceState, TRACESTATE_HEADER};

/// Random bytes a [`TraceContext`] needs: 16 for a new trace id, 8 for the
/// edge's span id. The first 16 may be the request id's own random bytes.
pub const TRACE_RANDOM_BYTES: usize = 24;

/// The trace this request belongs to and the edge's span in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
    state: Option<TraceState>,
    continued: bool,
}

impl TraceContext {
    /// The context for a request with these headers: the incoming trace
    /// continued when its `traceparent` is valid (a request carrying more
    /// than one is invalid), else a new trace from `random[..16]`, sampled.
    /// The edge's span id is `random[16..]`. All-zero random bytes (a
    /// runtime without randomness) still give valid ids.
    pub fn from_headers(headers: &[(String, String)], random: [u8; TRACE_RANDOM_BYTES]) -> Self {
        let mut traceparents = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(TRACEPARENT_HEADER));
        let parent = match (traceparents.next(), traceparents.next()) {
            (Some((_, value)), None) => TraceParent::parse(value).ok(),
            _ => None,
        };
        let mut fresh = [0u8; 16];
        let mut span_id = [0u8; 8];
        for (dst, src) in fresh.iter_mut().chain(span_id.iter_mut()).zip(random) {
            *dst = src;
        }
        nonzero(&mut span_id);
        match parent {
            Some(parent) => {
                let joined: Vec<&str> = headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(TRACESTATE_HEADER))
                    .map(|(_, v)| v.as_str())
                    .collect();
                Self {
                    trace_id: parent.trace_id,
                    span_id,
                    // Only the sampled flag is defined; other bits are not passed on.
                    flags: parent.flags & 0x01,
                    state: TraceState::parse(&joined.join(",")),
                    continued: true,
                }
            }
            None => {
                nonzero(&mut fresh);
                Self {
                    trace_id: fresh,
                    span_id,
                    flags: 0x01,
                    state: None,
                    continued: false,
                }
            }
        }
    }

    /// The trace id, 32 lower-case hex digits (for logs).
    pub fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }

    /// The edge's span id, 16 lower-case hex digits.
    pub fn span_id(&self) -> String {
        hex(&self.span_id)
    }

    /// Whether an incoming trace is continued (rather than a new one started).
    pub fn is_continued(&self) -> bool {
        self.continued
    }

    /// The `traceparent` for the origin: version 00, this trace, the edge's
    /// span as parent.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            self.flags
        )
    }

    /// The `tracestate` passed on, if any.
    pub fn tracestate(&self) -> Option<&str> {
        self.state.as_ref().map(TraceState::as_str)
    }

    /// The trace headers for the origin, names lower case.
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut out = vec![(TRACEPARENT_HEADER.to_owned(), self.traceparent())];
        if let Some(state) = self.tracestate() {
            out.push((TRACESTATE_HEADER.to_owned(), state.to_owned()));
        }
        out
    }
}

/// Makes an all-zero id valid by setting its last bit.
fn nonzero(id: &mut [u8]) {
    if id.iter().all(|b| *b == 0) {
        if let Some(last) = id.last_mut() {
            *last = 1;
        }
    }
}
