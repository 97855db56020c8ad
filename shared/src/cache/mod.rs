//! TEMP STUB
#![allow(missing_docs)]
use std::time::Duration;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheScope {
    Shared,
    Private,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRule {
    pub ttl: Duration,
    pub stale_while_revalidate: Duration,
    pub stale_if_error: Duration,
    pub vary_headers: Vec<String>,
    pub vary_query: Option<Vec<String>>,
    pub scope: CacheScope,
    pub statuses: Vec<u16>,
}
impl CacheRule {
    pub const DEFAULT_STATUSES: [u16; 7] = [200, 203, 204, 300, 301, 404, 410];
}
