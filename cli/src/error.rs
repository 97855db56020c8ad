//! What can go wrong, and the exit code each failure ends the process with.
//!
//! ```
//! use tidegate_cli::{CliError, Exit};
//! assert_eq!(CliError::NoCredentials.exit(), Exit::Auth);
//! assert_eq!(Exit::Auth.code(), 3);
//! ```

use tidegate_policy::problem::Problem;

/// The documented exit codes (`tidegate --help`, docs/cli.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done.
    Ok,
    /// 1: the API reported a failure (5xx, a command that did not take
    /// effect, a rollout rolled back while watched), or the config has
    /// problems.
    Failed,
    /// 2: bad arguments, or a request the API refused as invalid (400, 422).
    Usage,
    /// 3: no credentials, or the API refused them (401, 403).
    Auth,
    /// 4: no such stage, key or path (404).
    NotFound,
    /// 5: the state does not allow it (409: no approval pending, a canary
    /// already active, a revoked key).
    Conflict,
    /// 6: the URL could not be reached (DNS, connection, TLS, timeout).
    Unreachable,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Failed => 1,
            Self::Usage => 2,
            Self::Auth => 3,
            Self::NotFound => 4,
            Self::Conflict => 5,
            Self::Unreachable => 6,
        }
    }

    /// The exit code for an HTTP error status.
    pub fn for_status(status: u16) -> Self {
        match status {
            400 | 405 | 413 | 422 => Self::Usage,
            401 | 403 => Self::Auth,
            404 => Self::NotFound,
            409 | 412 => Self::Conflict,
            _ => Self::Failed,
        }
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The arguments do not make a valid request.
    #[error("{0}")]
    Usage(String),
    /// No API key, token or AWS credentials.
    #[error("no credentials: pass --api-key, set TIDEGATE_API_KEY, pass --token / set TIDEGATE_TOKEN, or configure AWS credentials for an AWS_IAM Function URL")]
    NoCredentials,
    /// A JWT and SigV4 both want the Authorization header.
    #[error("a token goes in the Authorization header, which SigV4 needs for its signature: use --api-key (sent as x-api-key) with an AWS_IAM Function URL, or --sign never for a NONE URL")]
    TokenWithSigv4,
    /// The AWS credential chain or the signer failed.
    #[error("cannot sign with SigV4 (an AWS_IAM Function URL needs it): configure AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or SSO) and a region, or pass --sign never for a NONE URL\n  {0}")]
    Sigv4(String),
    /// No control-API URL.
    #[error("no control API URL: pass --url or set TIDEGATE_URL (the rollback Lambda's Function URL, the ControlApiUrl stack output)")]
    NoUrl,
    /// The URL could not be reached.
    #[error("cannot reach {url}: {error}; check --url / TIDEGATE_URL and the network")]
    Unreachable {
        /// Where.
        url: String,
        /// The transport's message.
        error: String,
    },
    /// The API answered with an error status.
    #[error("{}", problem_text(.problem))]
    Api {
        /// The problem+json body (or one made from the status).
        problem: Problem,
    },
    /// The API answered 2xx, but not with the JSON expected.
    #[error("unexpected answer from {url}: {error}")]
    BadResponse {
        /// Where.
        url: String,
        /// What did not parse.
        error: String,
    },
    /// A command was accepted but did not take effect.
    #[error("{0}")]
    NotApplied(String),
    /// A watched rollout ended in a rollback.
    #[error("rolled back: {0}")]
    RolledBack(String),
    /// `check` found problems (already printed).
    #[error("{0} problem(s) found")]
    Invalid(usize),
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// Which file.
        path: String,
        /// The OS's message.
        error: String,
    },
}

fn problem_text(p: &Problem) -> String {
    let slug = p.kind.rsplit('/').next().unwrap_or(&p.kind);
    match &p.detail {
        Some(d) => format!("{} {} ({slug}): {d}", p.status, p.title),
        None => format!("{} {} ({slug})", p.status, p.title),
    }
}

impl CliError {
    /// The exit code this failure ends the process with.
    pub fn exit(&self) -> Exit {
        match self {
            Self::Usage(_) | Self::NoUrl | Self::TokenWithSigv4 => Exit::Usage,
            Self::NoCredentials | Self::Sigv4(_) => Exit::Auth,
            Self::Unreachable { .. } => Exit::Unreachable,
            Self::Api { problem } => Exit::for_status(problem.status),
            Self::BadResponse { .. }
            | Self::NotApplied(_)
            | Self::RolledBack(_)
            | Self::Invalid(_)
            | Self::Io { .. } => Exit::Failed,
        }
    }
}
