//! Whether to answer from the stored entry or from the origin, so every
//! adapter serves stale content and revalidates under the same rules.
//!
//! ```text
//! match before_origin(entry, plan) {
//!     ServeHit                => answer the entry (HIT)
//!     ServeStaleAndRevalidate => answer the entry (STALE); in the background ask
//!                                the origin (with the entry's validators) and
//!                                store or refresh as after_origin(..) says
//!     AskOrigin               => ask the origin (with the entry's validators, if
//!                                any); after_origin(..) says what to answer
//!     Unsatisfiable           => only-if-cached and nothing usable: 504
//! }
//! ```
//!
//! ```
//! use std::time::Duration;
//! use tidegate_policy::cache::{after_origin, check_request, Freshness, FreshnessCheck};
//! use tidegate_policy::cache::{RequestVerdict, ServeDecision};
//! let RequestVerdict::Cache(plan) = check_request("GET", &[], false) else { unreachable!() };
//! let stale = FreshnessCheck {
//!     freshness: Freshness::Expired,
//!     age: Duration::from_secs(90),
//!     lifetime: Duration::from_secs(60),
//!     stale_allowed: true,
//! };
//! // The entry's validators went along, and the origin said 304.
//! assert_eq!(after_origin(Some(&stale), &plan, true, Some(304)), ServeDecision::RefreshEntry);
//! ```

use std::time::Duration;

use super::cacheability::RequestPlan;
use super::freshness::{is_origin_error, CacheStatus, Freshness, FreshnessCheck};

/// What to do once the cache lookup is done, before calling the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LookupDecision {
    /// Answer with the fresh entry; the origin is not called.
    ServeHit,
    /// Answer with the entry at once and refresh it in the background
    /// (stale-while-revalidate, or a client's `max-stale`).
    ServeStaleAndRevalidate,
    /// Ask the origin first (conditionally when the entry has validators),
    /// then follow [`after_origin`].
    AskOrigin,
    /// The client said `only-if-cached` and nothing stored may answer it:
    /// 504 (RFC 9111 §5.2.1.7).
    Unsatisfiable,
}

impl LookupDecision {
    /// The `X-Cache-Status` when the entry is served now; `None` when the
    /// answer depends on the origin.
    pub fn cache_status(&self) -> Option<CacheStatus> {
        match self {
            Self::ServeHit => Some(CacheStatus::Hit),
            Self::ServeStaleAndRevalidate => Some(CacheStatus::Stale),
            Self::AskOrigin | Self::Unsatisfiable => None,
        }
    }
}

/// What to answer once the origin replied or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServeDecision {
    /// Answer with the stored entry (`STALE`): the origin failed and the
    /// entry may stand in for it. Keep the entry; do not store the failure.
    ServeStale,
    /// The origin confirmed the entry (304 to its validators): refresh its
    /// headers, store it again and answer it (`REVALIDATED`).
    RefreshEntry,
    /// Answer with the origin's response, tagged `status`; store it when
    /// `check_response` allows.
    UseOrigin {
        /// `MISS`, or `REVALIDATED` when it replaces a stored entry.
        status: CacheStatus,
    },
}

impl ServeDecision {
    /// The `X-Cache-Status` to send.
    pub fn cache_status(&self) -> CacheStatus {
        match self {
            Self::ServeStale => CacheStatus::Stale,
            Self::RefreshEntry => CacheStatus::Revalidated,
            Self::UseOrigin { status } => *status,
        }
    }
}

/// What to do with a looked-up entry (`None`: nothing stored) for a
/// request planned as `plan`, whose own directives (RFC 9111 §5.2.1) narrow
/// what it accepts: `max-age` and `min-fresh` refuse entries too old,
/// `max-stale` accepts stale ones the origin does not forbid, and
/// `only-if-cached` never goes to the origin.
pub fn before_origin(entry: Option<&FreshnessCheck>, plan: &RequestPlan) -> LookupDecision {
    let decision = match entry {
        Some(entry) if !plan.revalidate => lookup(entry, plan),
        _ => LookupDecision::AskOrigin,
    };
    match decision {
        LookupDecision::AskOrigin if plan.directives.only_if_cached => {
            LookupDecision::Unsatisfiable
        }
        other => other,
    }
}

fn lookup(entry: &FreshnessCheck, plan: &RequestPlan) -> LookupDecision {
    let d = &plan.directives;
    let secs = Duration::from_secs;
    let young_enough = d.max_age.is_none_or(|max| entry.age <= secs(max));
    let fresh_enough = d
        .min_fresh
        .is_none_or(|min| entry.lifetime.saturating_sub(entry.age) >= secs(min));
    let staleness = entry.age.saturating_sub(entry.lifetime);
    let stale_accepted = entry.stale_allowed
        && d.max_stale
            .is_some_and(|max| max.is_none_or(|m| staleness <= secs(m)));
    match entry.freshness {
        Freshness::Fresh if young_enough && fresh_enough => LookupDecision::ServeHit,
        Freshness::StaleWhileRevalidate if young_enough => LookupDecision::ServeStaleAndRevalidate,
        Freshness::StaleIfError | Freshness::Expired | Freshness::StaleWhileRevalidate
            if stale_accepted && young_enough =>
        {
            LookupDecision::ServeStaleAndRevalidate
        }
        _ => LookupDecision::AskOrigin,
    }
}

/// What to answer after asking the origin, given the stored entry (`None`:
/// nothing stored), whether the entry's validators went with the request,
/// and the origin's status (`None`: unreachable or timed out).
///
/// A 304 to the entry's validators confirms it. A usable entry stands in
/// when the origin fails (RFC 5861 §4: no answer, or 500/502/503/504),
/// unless the client asked for a validated answer; otherwise the origin's
/// response is used. With no usable entry and no origin response the
/// decision is `UseOrigin` with nothing to use: the adapter answers its own
/// gateway error (502, or 504 on a timeout). For a background revalidation
/// only the storing half applies.
pub fn after_origin(
    entry: Option<&FreshnessCheck>,
    plan: &RequestPlan,
    conditional: bool,
    origin_status: Option<u16>,
) -> ServeDecision {
    if conditional && entry.is_some() && origin_status == Some(304) {
        return ServeDecision::RefreshEntry;
    }
    let usable = !plan.revalidate
        && entry.is_some_and(|e| {
            matches!(
                e.freshness,
                Freshness::Fresh | Freshness::StaleWhileRevalidate | Freshness::StaleIfError
            )
        });
    let failed = origin_status.is_none_or(is_origin_error);
    let replaced = usable || (conditional && entry.is_some());
    match (usable, failed, replaced) {
        (true, true, _) => ServeDecision::ServeStale,
        (_, _, true) => ServeDecision::UseOrigin {
            status: CacheStatus::Revalidated,
        },
        (_, _, false) => ServeDecision::UseOrigin {
            status: CacheStatus::Miss,
        },
    }
}

#[cfg(test)]
mod tests;
