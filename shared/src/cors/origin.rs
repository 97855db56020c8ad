//! Allowed origins: one exact serialized origin, or every subdomain of one.

use std::fmt;

use url::Url;

/// One entry of `allow_origins` other than `*`.
///
/// - `Exact("https://app.example.com")` matches that serialized origin only;
/// - `Subdomains` (written `https://*.example.com`, optionally with a port)
///   matches `https://a.example.com` and `https://a.b.example.com`, but not
///   `https://example.com` itself, not `https://evilexample.com`, not
///   another scheme or port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginRule {
    /// Exactly this serialized origin.
    Exact(String),
    /// Any origin `{scheme}://{one or more labels}{suffix}`.
    Subdomains {
        /// `https://` or `http://`.
        scheme: String,
        /// What follows the labels, starting with `.`: `.example.com` or
        /// `.example.com:8443`.
        suffix: String,
    },
}

/// Why an `allow_origins` entry cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginRuleError {
    /// `null` is the origin of sandboxed frames, `file:` pages and redirects.
    #[error(
        "`null` is the origin of every sandboxed iframe and file: page, so allowing it lets \
         any of them in; list real origins"
    )]
    Null,
    /// Not an `http`/`https` origin with a host.
    #[error("is not an origin; expected scheme://host[:port] such as \"https://app.example.com\"")]
    NotAnOrigin,
    /// A valid origin written differently from how browsers send it.
    #[error(
        "is not written as browsers send it (lower case, no path or trailing `/`, no default \
         port); write \"{0}\""
    )]
    NotSerialized(String),
    /// A `*` anywhere but as the first label of the host.
    #[error(
        "`*` may only stand alone or as the first label of the host, as in \
         \"https://*.example.com\""
    )]
    MisplacedWildcard,
    /// A pattern over a top-level domain or an IP address.
    #[error(
        "a subdomain pattern needs a domain of at least two labels (\"https://*.example.com\"), \
         not a top-level domain or an IP address"
    )]
    TooBroad,
}

impl OriginRule {
    /// Reads one `allow_origins` entry (not `*`).
    pub fn parse(text: &str) -> Result<Self, OriginRuleError> {
        if text.eq_ignore_ascii_case("null") {
            return Err(OriginRuleError::Null);
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(OriginRuleError::NotAnOrigin);
        };
        if !matches!(scheme, "http" | "https") {
            return Err(OriginRuleError::NotAnOrigin);
        }
        match rest.strip_prefix("*.") {
            Some(suffix) => Self::pattern(scheme, suffix, text),
            None if text.contains('*') => Err(OriginRuleError::MisplacedWildcard),
            None => Ok(Self::Exact(serialized(text)?)),
        }
    }

    fn pattern(scheme: &str, suffix: &str, text: &str) -> Result<Self, OriginRuleError> {
        if suffix.contains('*') {
            return Err(OriginRuleError::MisplacedWildcard);
        }
        // Check the rest as if `*` were one label.
        let sample = format!("{scheme}://x.{suffix}");
        let url = Url::parse(&sample).map_err(|_| OriginRuleError::NotAnOrigin)?;
        let domain = url.domain().ok_or(OriginRuleError::TooBroad)?;
        if domain.split('.').filter(|l| !l.is_empty()).count() < 3 {
            return Err(OriginRuleError::TooBroad);
        }
        let origin = serialized(&sample).map_err(|e| match e {
            OriginRuleError::NotSerialized(fixed) => {
                OriginRuleError::NotSerialized(fixed.replacen("://x.", "://*.", 1))
            }
            other => other,
        })?;
        if origin != sample {
            return Err(OriginRuleError::NotSerialized(text.to_owned()));
        }
        Ok(Self::Subdomains {
            scheme: format!("{scheme}://"),
            suffix: format!(".{suffix}"),
        })
    }

    /// Whether `origin` (an `Origin` header value) is allowed by this rule.
    pub fn matches(&self, origin: &str) -> bool {
        match self {
            Self::Exact(exact) => exact == origin,
            Self::Subdomains { scheme, suffix } => origin
                .strip_prefix(scheme.as_str())
                .and_then(|rest| rest.strip_suffix(suffix.as_str()))
                .is_some_and(is_labels),
        }
    }
}

/// One or more non-empty dot-separated labels of `[a-z0-9-]`.
fn is_labels(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// `text` if it is a serialized `http`/`https` origin, else the error with
/// the serialized form to write instead.
fn serialized(text: &str) -> Result<String, OriginRuleError> {
    let url = Url::parse(text).map_err(|_| OriginRuleError::NotAnOrigin)?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(OriginRuleError::NotAnOrigin);
    }
    let origin = url.origin().ascii_serialization();
    if origin == text {
        Ok(origin)
    } else {
        Err(OriginRuleError::NotSerialized(origin))
    }
}

impl fmt::Display for OriginRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(origin) => f.write_str(origin),
            Self::Subdomains { scheme, suffix } => write!(f, "{scheme}*{suffix}"),
        }
    }
}
