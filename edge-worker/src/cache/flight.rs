//! Request coalescing: concurrent misses for one key in one isolate make
//! one origin request.
//!
//! The first request for a key leads the flight ([`join`] gives it a
//! [`FlightGuard`]); the others follow and wait. When the leader has stored
//! the origin's answer it [`lands`](FlightGuard::land), handing each follower
//! its own copy of the entry. A leader whose answer may not be stored (or
//! that fails, or is dropped) ends the flight with nothing: its guard's
//! `Drop` releases the followers, who then ask the origin themselves. One
//! guard serves both misses and background revalidations, so a burst of
//! stale hits also makes one call.

use std::cell::RefCell;
use std::collections::HashMap;

use futures_channel::oneshot;
use worker::web_sys;

thread_local! {
    /// Keys with a request in flight, and the requests waiting on each.
    static FLIGHTS: RefCell<HashMap<String, Vec<oneshot::Sender<web_sys::Response>>>> =
        RefCell::new(HashMap::new());
}

/// A request's place in the flight for its key.
pub enum Flight {
    /// No request was in flight: this one asks the origin.
    Leader(FlightGuard),
    /// Another request is asking: wait for its entry (`Err` when it ends
    /// without one).
    Follower(oneshot::Receiver<web_sys::Response>),
}

/// Joins the flight for `key`, leading it when none is in the air.
pub fn join(key: &str) -> Flight {
    FLIGHTS.with(|flights| {
        let mut flights = flights.borrow_mut();
        match flights.get_mut(key) {
            Some(waiting) => {
                let (sender, receiver) = oneshot::channel();
                waiting.push(sender);
                Flight::Follower(receiver)
            }
            None => {
                flights.insert(key.to_owned(), Vec::new());
                Flight::Leader(FlightGuard {
                    key: key.to_owned(),
                })
            }
        }
    })
}

/// Leads the flight for `key` if none is in the air (a background
/// revalidation does not wait on anyone).
pub fn claim(key: &str) -> Option<FlightGuard> {
    match join(key) {
        Flight::Leader(guard) => Some(guard),
        Flight::Follower(_) => None,
    }
}

/// The leader's hold on a key; ends the flight when dropped.
pub struct FlightGuard {
    key: String,
}

impl FlightGuard {
    /// Ends the flight with `entry`: each follower gets its own copy (a JS
    /// `clone()`, so every body can be read once).
    pub fn land(self, entry: &web_sys::Response) {
        for follower in take(&self.key) {
            if let Ok(copy) = entry.clone() {
                let _ = follower.send(copy);
            }
        }
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        // Dropping the senders wakes every follower with `Canceled`.
        drop(take(&self.key));
    }
}

fn take(key: &str) -> Vec<oneshot::Sender<web_sys::Response>> {
    FLIGHTS.with(|flights| flights.borrow_mut().remove(key).unwrap_or_default())
}
