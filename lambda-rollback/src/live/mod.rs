//! The edge's live release figures, for the dashboard's "Live at the edge"
//! panel and `GET /stages/{api}/{stage}/edge`: one GET of the edge's
//! `{admin_prefix}health/releases` (`[rollback.edge] health_url`) with its
//! admin key as the bearer (`TIDEGATE_EDGE_ADMIN_KEY`), when a stage page
//! is drawn and never otherwise. The answer is the policy's
//! [`ReleasesReport`], the type the Worker writes.
//!
//! The fetch is bounded ([`EDGE_TIMEOUT`], [`MAX_REPORT_BYTES`]) and every
//! way it can fail is an [`EdgeUnavailable`], which the panel shows in one
//! line: the page itself never fails because the edge did.
//!
//! The HTTP client is the one the JWKS fetches use ([`crate::jwks`]): the
//! AWS SDK's hyper stack, built on first use.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use lambda_http::http::{header, Request, StatusCode};
use tidegate_policy::health::{ReleasesReport, StageHealth, MAX_REPORT_BYTES};
use tidegate_policy::problem::error_chain;

use crate::config::EDGE_ADMIN_KEY_ENV;
use crate::jwks::{build_client, HttpsClient};

/// How long the edge may take to answer, connection included: a stage page
/// waits at most this for its panel.
pub const EDGE_TIMEOUT: Duration = Duration::from_secs(2);

/// The edge's admin key (the Worker's `ADMIN_KEY` secret); never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct EdgeAdminKey(String);

impl fmt::Debug for EdgeAdminKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EdgeAdminKey(..)")
    }
}

/// Why a text cannot be an [`EdgeAdminKey`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgeAdminKeyError {
    /// Holds a byte a header value cannot carry.
    #[error("the edge's admin key must be printable ASCII without spaces (it is sent as `Authorization: Bearer <key>`)")]
    NotAToken,
}

impl EdgeAdminKey {
    /// The key `text` (printable ASCII, no spaces, not empty).
    pub fn new(text: &str) -> Result<Self, EdgeAdminKeyError> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(EdgeAdminKeyError::NotAToken);
        }
        Ok(Self(text.to_owned()))
    }
}

/// Why the panel has no figures; each says what to look at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgeUnavailable {
    /// No `[rollback.edge] health_url` in the configuration.
    #[error("not configured: set `[rollback.edge] health_url` to the edge's health/releases URL and {EDGE_ADMIN_KEY_ENV} to its admin key")]
    NotConfigured,
    /// A URL but no key.
    #[error("{EDGE_ADMIN_KEY_ENV} is not set: the edge's health/releases needs its admin key")]
    NoKey,
    /// The request could not be made or sent (DNS, connection, TLS).
    #[error("the edge could not be reached: {0}")]
    Unreachable(String),
    /// No complete answer within [`EDGE_TIMEOUT`].
    #[error("the edge did not answer within {} s", EDGE_TIMEOUT.as_secs())]
    Timeout,
    /// The edge refused the admin key (401 or 403).
    #[error("the edge refused the admin key (status {0}): check {EDGE_ADMIN_KEY_ENV} against the Worker's ADMIN_KEY")]
    Refused(u16),
    /// Any other status than 200.
    #[error("the edge answered status {0}")]
    Status(u16),
    /// The body is too large or not a releases report.
    #[error("the edge's answer is not a releases report: {0}")]
    Unreadable(String),
    /// The edge judges no such stage (no `[[health.stages]]` entry for it).
    #[error("the edge does not monitor this stage: add it to the edge's `[[health.stages]]`")]
    NotMonitored,
    /// The stage's monitor (the Durable Object) could not be read.
    #[error("the edge could not read this stage's monitor: {0}")]
    Monitor(String),
}

/// Fetches the edge's releases report (one client per container).
#[derive(Default)]
pub struct EdgeFeed {
    client: OnceLock<Result<HttpsClient, String>>,
}

impl fmt::Debug for EdgeFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EdgeFeed").finish_non_exhaustive()
    }
}

impl EdgeFeed {
    /// A feed; nothing is built or fetched yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The figures of `api`/`stage` (the API as `[[rollback.stages]]`
    /// names it) from `url` with `key`.
    pub async fn stage(
        &self,
        url: Option<&str>,
        key: Option<&EdgeAdminKey>,
        api: &str,
        stage: &str,
    ) -> Result<StageHealth, EdgeUnavailable> {
        let url = url.ok_or(EdgeUnavailable::NotConfigured)?;
        let key = key.ok_or(EdgeUnavailable::NoKey)?;
        let report = self.report(url, key).await?;
        pick(&report, api, stage)
    }

    /// GETs and parses the whole report.
    pub async fn report(
        &self,
        url: &str,
        key: &EdgeAdminKey,
    ) -> Result<ReleasesReport, EdgeUnavailable> {
        let client = self
            .client
            .get_or_init(build_client)
            .as_ref()
            .map_err(|e| EdgeUnavailable::Unreachable(e.clone()))?;
        let request = Request::get(url)
            .header(header::ACCEPT, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", key.0))
            .body(Empty::<Bytes>::new())
            .map_err(|e| EdgeUnavailable::Unreachable(e.to_string()))?;
        let body = tokio::time::timeout(EDGE_TIMEOUT, async {
            let response = client
                .request(request)
                .await
                .map_err(|e| EdgeUnavailable::Unreachable(error_chain(&e)))?;
            match response.status() {
                StatusCode::OK => {}
                s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                    return Err(EdgeUnavailable::Refused(s.as_u16()))
                }
                s => return Err(EdgeUnavailable::Status(s.as_u16())),
            }
            Limited::new(response.into_body(), MAX_REPORT_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|e| EdgeUnavailable::Unreadable(e.to_string()))
        })
        .await
        .map_err(|_| EdgeUnavailable::Timeout)??;
        parse(&body)
    }
}

/// Reads a releases report.
pub fn parse(body: &[u8]) -> Result<ReleasesReport, EdgeUnavailable> {
    serde_json::from_slice(body).map_err(|e| EdgeUnavailable::Unreadable(e.to_string()))
}

/// The figures of `api`/`stage` in `report`.
pub fn pick(
    report: &ReleasesReport,
    api: &str,
    stage: &str,
) -> Result<StageHealth, EdgeUnavailable> {
    let entry = report
        .stage(api, stage)
        .ok_or(EdgeUnavailable::NotMonitored)?;
    match (&entry.health, &entry.error) {
        (Some(health), _) => Ok(health.clone()),
        (None, Some(e)) => Err(EdgeUnavailable::Monitor(e.clone())),
        (None, None) => Err(EdgeUnavailable::Monitor("no figures and no error".into())),
    }
}

#[cfg(test)]
mod tests;
