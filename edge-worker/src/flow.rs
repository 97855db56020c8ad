//! What one request carries on its way through the gateway: the phase
//! timings (`Server-Timing` and the log), the log line, the headers every
//! response to it must carry, its trace and its CORS headers; and the one
//! clock and the one way to time a phase.
//!
//! ```ignore
//! let identity = flow.timings.time(Phase::Auth, verify(...)).await;
//! ```

use std::future::Future;

use tidegate_policy::problem::Problem;
use tidegate_policy::trace::TraceContext;

use crate::error::EdgeError;
use crate::log::LogLine;
use crate::response::HeaderList;

/// Milliseconds since the Unix epoch, from the runtime's clock (which, in a
/// Worker, advances only across I/O: timings are of waits, not of CPU).
/// `Date.now()`, not `worker::Date::now()`, which builds a JS `Date` object
/// per reading (a request reads the clock a dozen times).
pub fn now_ms() -> u64 {
    let ms = worker::js_sys::Date::now();
    // A clock before 1970 or beyond u64 is no clock: 0 (saturating cast).
    ms as u64
}

/// What one request accumulates on its way: timings, the log line, and
/// headers every response to it must carry.
pub struct Flow {
    /// Phase timings, for `Server-Timing` and the log.
    pub timings: Timings,
    /// The log line.
    pub log: LogLine,
    /// Headers added to the final response, error or not.
    pub extra: HeaderList,
    /// The request's trace (W3C Trace Context).
    pub trace: TraceContext,
    /// CORS headers for the final response, on a route with `cors`.
    pub cors: Option<HeaderList>,
}

impl Flow {
    /// The problem for an adapter error, noted in the log.
    pub fn fail(&mut self, e: EdgeError) -> Problem {
        self.log.error = Some(e.log_text());
        e.to_problem()
    }
}

/// A timed phase of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Authentication, including any JWKS fetch or key-store read.
    Auth,
    /// The rate-limit round trip(s) to the Durable Objects.
    Throttle,
    /// Cache lookups.
    Cache,
    /// Waiting for the origin's response headers.
    Origin,
}

/// Time spent in each phase of a request, in milliseconds; `None` for a phase
/// that did not run. Rendered as `Server-Timing`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Timings {
    /// Authentication, including any JWKS fetch.
    pub auth: Option<u64>,
    /// The rate-limit round trip(s) to the Durable Objects.
    pub throttle: Option<u64>,
    /// Cache lookups.
    pub cache: Option<u64>,
    /// Waiting for the origin's response headers.
    pub origin: Option<u64>,
    /// The whole request up to the response headers; always sent, so every
    /// response has a `Server-Timing` header (unless it is withheld).
    pub total: Option<u64>,
    /// `Server-Timing` is withheld (`[gateway] server_timing = false`): the
    /// durations go to the log line only.
    pub withheld: bool,
}

impl Timings {
    /// Awaits `work`, adding the time it took to `phase` (a phase that runs
    /// twice, such as a cache lookup and then a store, reports its total).
    pub async fn time<T>(&mut self, phase: Phase, work: impl Future<Output = T>) -> T {
        let started = now_ms();
        let out = work.await;
        self.add(phase, now_ms().saturating_sub(started));
        out
    }

    /// Adds `ms` to `phase`.
    pub fn add(&mut self, phase: Phase, ms: u64) {
        let slot = match phase {
            Phase::Auth => &mut self.auth,
            Phase::Throttle => &mut self.throttle,
            Phase::Cache => &mut self.cache,
            Phase::Origin => &mut self.origin,
        };
        *slot = Some(slot.unwrap_or(0).saturating_add(ms));
    }

    /// The `Server-Timing` value, e.g. `auth;dur=1, origin;dur=12, total;dur=14`;
    /// empty (no header) when withheld.
    pub fn header(&self) -> String {
        if self.withheld {
            return String::new();
        }
        let phases = [
            ("auth", self.auth),
            ("throttle", self.throttle),
            ("cache", self.cache),
            ("origin", self.origin),
            ("total", self.total),
        ];
        let mut out = String::with_capacity(64);
        for (name, ms) in phases {
            let Some(ms) = ms else { continue };
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(name);
            out.push_str(";dur=");
            out.push_str(&ms.to_string());
        }
        out
    }
}
