//! Request coalescing: concurrent misses for one key in one isolate make
//! one origin request.
//!
//! The first request for a key leads the flight ([`join`] gives it a
//! [`FlightGuard`]); the others follow and wait. When the leader has stored
//! the origin's answer it [`lands`](FlightGuard::land), leaving each
//! follower the entry as plain data ([`EntryData`]). A leader whose answer
//! may not be stored (or that fails, or is dropped) ends the flight with
//! nothing: its guard's `Drop` tells the followers, who then ask the origin
//! themselves. One guard serves both misses and background revalidations,
//! so a burst of stale hits also makes one call.
//!
//! Followers poll their landing on their own timers rather than being woken
//! by the leader: workerd binds every promise and I/O object to the request
//! that made it, and cancels a request whose code is resumed from another
//! request's context (the leader's send would run the follower's
//! continuation there).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use worker::Delay;

use super::entry::EntryData;

/// Where a follower finds its outcome: `None` while the flight is in the
/// air, then `Some(entry)` or `Some(None)` (ended without one).
type Landing = Rc<RefCell<Option<Option<EntryData>>>>;

/// First and longest pause between a follower's looks at its landing.
const FIRST_POLL: Duration = Duration::from_millis(2);
const MAX_POLL: Duration = Duration::from_millis(20);

thread_local! {
    /// Keys with a request in flight, and the landings of those waiting. A
    /// B-tree: a handful of keys at a time, where SipHashing a key URL of
    /// 100+ bytes three times per MISS showed in the profiles.
    static FLIGHTS: RefCell<BTreeMap<String, Vec<Landing>>> = const { RefCell::new(BTreeMap::new()) };
}

/// A request's place in the flight for its key.
pub enum Flight {
    /// No request was in flight: this one asks the origin.
    Leader(FlightGuard),
    /// Another request is asking: wait for its entry.
    Follower(Waiting),
}

/// Joins the flight for `key`, leading it when none is in the air.
pub fn join(key: &str) -> Flight {
    if let Some(guard) = claim(key) {
        return Flight::Leader(guard);
    }
    let landing = Landing::default();
    FLIGHTS.with(|flights| {
        // In the air: `claim` just found it, with no await in between.
        if let Some(waiting) = flights.borrow_mut().get_mut(key) {
            waiting.push(Rc::clone(&landing));
        }
    });
    Flight::Follower(Waiting { landing })
}

/// Leads the flight for `key` if none is in the air, and joins nothing
/// otherwise (a background revalidation and a miss filled on the fast path
/// do not wait on anyone).
pub fn claim(key: &str) -> Option<FlightGuard> {
    FLIGHTS.with(|flights| {
        let mut flights = flights.borrow_mut();
        if flights.contains_key(key) {
            return None;
        }
        flights.insert(key.to_owned(), Vec::new());
        Some(FlightGuard {
            key: key.to_owned(),
        })
    })
}

/// A follower's wait for the leader.
pub struct Waiting {
    landing: Landing,
}

impl Waiting {
    /// The entry the leader stored, or `None` when it ended without one or
    /// `limit` passed first (the follower then asks the origin itself).
    pub async fn landed(self, limit: Duration) -> Option<EntryData> {
        let started = crate::flow::now_ms();
        let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        let mut pause = FIRST_POLL;
        loop {
            if let Some(outcome) = self.landing.borrow_mut().take() {
                return outcome;
            }
            if crate::flow::now_ms().saturating_sub(started) > limit_ms {
                return None;
            }
            Delay::from(pause).await;
            pause = pause.saturating_mul(2).min(MAX_POLL);
        }
    }
}

/// The leader's hold on a key; ends the flight when dropped.
pub struct FlightGuard {
    key: String,
}

impl FlightGuard {
    /// Ends the flight with `entry`, left for each follower.
    pub fn land(self, entry: &EntryData) {
        for landing in take(&self.key) {
            *landing.borrow_mut() = Some(Some(entry.clone()));
        }
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        for landing in take(&self.key) {
            let mut landing = landing.borrow_mut();
            if landing.is_none() {
                *landing = Some(None);
            }
        }
    }
}

fn take(key: &str) -> Vec<Landing> {
    FLIGHTS.with(|flights| flights.borrow_mut().remove(key).unwrap_or_default())
}
