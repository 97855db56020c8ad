//! Whether to answer from the stored entry or from the origin, so every
//! adapter serves stale content under the same rules.
//!
//! ```text
//! match before_origin(entry freshness) {
//!     ServeHit                => answer the entry (HIT)
//!     ServeStaleAndRevalidate => answer the entry (STALE); in the background ask
//!                                the origin and store its response if
//!                                after_origin(..) says UseOrigin
//!     AskOrigin               => ask the origin; after_origin(..) says what to answer
//! }
//! ```

use super::freshness::{is_origin_error, CacheStatus, Freshness};

/// What to do once the cache lookup is done, before calling the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LookupDecision {
    /// Answer with the fresh entry; the origin is not called.
    ServeHit,
    /// Answer with the entry at once and refresh it in the background
    /// (stale-while-revalidate).
    ServeStaleAndRevalidate,
    /// Ask the origin first, then follow [`after_origin`].
    AskOrigin,
}

impl LookupDecision {
    /// The `X-Cache-Status` when the entry is served now; `None` when the
    /// answer depends on the origin.
    pub fn cache_status(&self) -> Option<CacheStatus> {
        match self {
            Self::ServeHit => Some(CacheStatus::Hit),
            Self::ServeStaleAndRevalidate => Some(CacheStatus::Stale),
            Self::AskOrigin => None,
        }
    }
}

/// What to answer once the origin replied or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServeDecision {
    /// Answer with the stored entry (`STALE`): the origin failed and the
    /// entry may stand in for it. Keep the entry; do not store the failure.
    ServeStale,
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
            Self::UseOrigin { status } => *status,
        }
    }
}

/// What to do with a looked-up entry of this freshness (`None`: nothing
/// stored, or the request may not use the cache).
pub fn before_origin(freshness: Option<Freshness>) -> LookupDecision {
    match freshness {
        Some(Freshness::Fresh) => LookupDecision::ServeHit,
        Some(Freshness::StaleWhileRevalidate) => LookupDecision::ServeStaleAndRevalidate,
        Some(Freshness::StaleIfError | Freshness::Expired) | None => LookupDecision::AskOrigin,
    }
}

/// What to answer after asking the origin, given the stored entry's
/// freshness (`None`: nothing stored) and the origin's status (`None`: the
/// origin was unreachable or timed out).
///
/// A usable entry (anything but `Expired`) stands in when the origin fails
/// (RFC 5861 §4: no answer, or 500/502/503/504); otherwise the origin's
/// response is used. With no usable entry and no origin response the
/// decision is `UseOrigin` with nothing to use: the adapter answers its own
/// gateway error (502, or 504 on a timeout). For a background revalidation
/// only the storing half applies: `UseOrigin` means store it.
pub fn after_origin(freshness: Option<Freshness>, origin_status: Option<u16>) -> ServeDecision {
    let usable = matches!(
        freshness,
        Some(Freshness::Fresh | Freshness::StaleWhileRevalidate | Freshness::StaleIfError)
    );
    let failed = origin_status.is_none_or(is_origin_error);
    match (usable, failed) {
        (true, true) => ServeDecision::ServeStale,
        (true, false) => ServeDecision::UseOrigin {
            status: CacheStatus::Revalidated,
        },
        (false, _) => ServeDecision::UseOrigin {
            status: CacheStatus::Miss,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Freshness::*;

    #[test]
    fn lookup_serves_fresh_and_swr_entries_at_once() {
        assert_eq!(before_origin(Some(Fresh)), LookupDecision::ServeHit);
        assert_eq!(
            before_origin(Some(StaleWhileRevalidate)),
            LookupDecision::ServeStaleAndRevalidate
        );
        for f in [Some(StaleIfError), Some(Expired), None] {
            assert_eq!(before_origin(f), LookupDecision::AskOrigin);
        }
        assert_eq!(
            LookupDecision::ServeHit.cache_status(),
            Some(CacheStatus::Hit)
        );
        assert_eq!(LookupDecision::AskOrigin.cache_status(), None);
    }

    #[test]
    fn stale_if_error_covers_failures_only() {
        for failure in [None, Some(500), Some(502), Some(503), Some(504)] {
            let d = after_origin(Some(StaleIfError), failure);
            assert_eq!(d, ServeDecision::ServeStale);
            assert_eq!(d.cache_status(), CacheStatus::Stale);
        }
        for answer in [Some(200), Some(404), Some(501)] {
            let d = after_origin(Some(StaleIfError), answer);
            assert_eq!(d.cache_status(), CacheStatus::Revalidated);
        }
    }

    #[test]
    fn without_a_usable_entry_the_origin_answers() {
        for entry in [Some(Expired), None] {
            for status in [None, Some(200), Some(503)] {
                let d = after_origin(entry, status);
                assert_eq!(d.cache_status(), CacheStatus::Miss);
            }
        }
    }

    #[test]
    fn a_failed_background_revalidation_keeps_the_entry() {
        let d = after_origin(Some(StaleWhileRevalidate), Some(503));
        assert_eq!(d, ServeDecision::ServeStale);
        let d = after_origin(Some(StaleWhileRevalidate), Some(200));
        assert!(matches!(d, ServeDecision::UseOrigin { .. }));
    }
}
