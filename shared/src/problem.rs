//! HTTP problem details (RFC 9457), the body of every error Tidegate returns.
//!
//! Both adapters render policy rejections through [`Problem`], so a client sees
//! the same shape whether the edge or the control API refused it.

use serde::{Deserialize, Serialize};

/// The media type of a [`Problem`] body.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// Prefix of the `type` URI of every Tidegate problem.
pub const TYPE_BASE: &str = "https://tidegate.dev/problems/";

/// An RFC 9457 problem details object.
///
/// `detail` is written for the client: it never carries a token, key, secret
/// or anything else the client did not send itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// A URI naming the kind of problem, e.g. `https://tidegate.dev/problems/invalid-token`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short, human-readable summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, and how to fix it where we can say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request id, so a client can quote it to an operator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Extension members of a `rate-limited` problem (boxed: most problems
    /// have none, and a `Result<_, Problem>` stays small).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<Box<RateLimitRefusal>>,
}

/// The extension members of a `rate-limited` (429) problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitRefusal {
    /// The name of the limit that refused the request (as in
    /// `RateLimit-Policy`).
    pub limit: String,
    /// Seconds until the request would be admitted (as `Retry-After`);
    /// absent when the request costs more than the limit can ever admit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem of kind `slug` (the last segment of its type URI).
    pub fn new(status: u16, slug: &str, title: &str) -> Self {
        Self {
            kind: format!("{TYPE_BASE}{slug}"),
            title: title.to_owned(),
            status,
            detail: None,
            request_id: None,
            rate_limit: None,
        }
    }

    /// The same problem with a detail message.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The same problem tagged with the request id.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// The JSON body. Serialising these fields cannot fail, but we never
    /// unwrap on the request path, so fall back to a fixed body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            format!(
                r#"{{"type":"{TYPE_BASE}internal","title":"Internal error","status":{}}}"#,
                self.status
            )
        })
    }
}

/// An error and its sources on one line, `outer: inner: root`, for a
/// problem's `detail` or a log line: the outermost message alone is often
/// terse (hyper's "error sending request"), the useful part is underneath.
///
/// ```
/// let e = std::io::Error::other("connection refused");
/// assert_eq!(tidegate_policy::problem::error_chain(&e), "connection refused");
/// ```
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests;
