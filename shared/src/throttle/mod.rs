//! TEMP STUB
#![allow(missing_docs)]
use std::time::Duration;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKey {
    Subject,
    ApiKey,
    ClientIp,
    Route,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub period: Duration,
    pub burst: u64,
}
