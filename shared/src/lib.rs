//! Tidegate's gateway policy, shared by the edge Worker and the rollback Lambda.
//!
//! Everything here is pure: no I/O, no clock, no randomness. Time, state and
//! inputs are arguments and every decision is a value, so the same code runs
//! in a Cloudflare Worker (wasm32), in an AWS Lambda and in unit tests. No
//! function panics on any input: the Worker shares one wasm instance across
//! requests, and a panic would break all of them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// The request path must never panic: these lints keep panicking shortcuts out
// of library code (tests may use them).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod assertion;
pub mod auth;
pub mod cache;
pub mod config;
pub mod cors;
pub mod health;
mod mac;
pub mod problem;
pub mod rollout;
pub mod route;
pub mod session;
pub mod throttle;
pub mod trace;
