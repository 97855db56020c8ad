//! Why a request was not authenticated or not authorised, and how to say so.
//!
//! Messages name what was wrong and what was expected, never the token, key or
//! any value taken from them: they go to clients (problem+json,
//! `WWW-Authenticate`) and to logs alike.

use std::fmt;

use crate::problem::Problem;

use super::{AuthMethod, AuthRequirement, API_KEY_HEADER};

/// The realm named in every `WWW-Authenticate` challenge.
pub const REALM: &str = "tidegate";

/// A segment of a JWS compact token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenPart {
    /// The protected header (first segment).
    Header,
    /// The claims set (second segment).
    Claims,
    /// The signature (third segment).
    Signature,
}

impl fmt::Display for TokenPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Header => "header",
            Self::Claims => "claims",
            Self::Signature => "signature",
        })
    }
}

/// How a bearer token failed to be a well-formed JWT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedToken {
    /// The token is longer than the policy allows.
    #[error("the token is longer than {max} bytes")]
    TooLong {
        /// The bound in bytes.
        max: usize,
    },
    /// The token is not three dot-separated segments.
    #[error("expected a JWS compact token: three base64url segments separated by dots")]
    SegmentCount,
    /// A segment is not unpadded base64url.
    #[error("the {0} segment is not unpadded base64url")]
    Base64(TokenPart),
    /// A segment does not decode to a JSON object.
    #[error("the {0} segment is not a JSON object")]
    Json(TokenPart),
    /// A JSON object in the segment repeats a member name.
    #[error("the {0} segment repeats a member name")]
    DuplicateKey(TokenPart),
    /// The header has no `alg` string.
    #[error("the header must carry an `alg` string")]
    MissingAlgorithm,
    /// The header lists critical extensions, and we support none.
    #[error("the header lists critical extensions (`crit`); none are supported")]
    CriticalHeader,
    /// The header's `kid` is not a string, or is too long.
    #[error("the header `kid` must be a string of at most {max} bytes")]
    InvalidKeyId {
        /// The bound in bytes.
        max: usize,
    },
    /// A required claim is absent.
    #[error("the required claim `{0}` is missing")]
    MissingClaim(&'static str),
    /// A claim has the wrong type or an out-of-range value.
    #[error("the claim `{claim}` must be {expected}")]
    InvalidClaim {
        /// The claim's name (a standard name or the configured tier claim).
        claim: String,
        /// What the claim must be.
        expected: &'static str,
    },
}

/// How a request's credentials were malformed as a request (RFC 6750 §3.1
/// `invalid_request`, 400), as opposed to an invalid token (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRequest {
    /// Two `Authorization` headers (they arrive joined with `", "`), or one
    /// holding a list.
    #[error("send one Authorization header with one Bearer token")]
    RepeatedAuthorization,
    /// `Authorization: Bearer` with no token.
    #[error("the Authorization header names the Bearer scheme but carries no token")]
    MissingBearerToken,
    /// The bearer token is not a `b64token` (RFC 6750 §2.1).
    #[error(
        "the Bearer token must be a b64token: letters, digits and -._~+/ with optional trailing ="
    )]
    MalformedAuthorization,
}

/// Why a request was refused by authentication or authorisation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthRejection {
    /// The route requires credentials and the request carried none it accepts.
    #[error("missing credentials: this route requires {accepted}")]
    MissingCredentials {
        /// What the route accepts.
        accepted: AuthRequirement,
    },
    /// The `Authorization` header is malformed as a request (400).
    #[error("invalid request: {0}")]
    InvalidRequest(InvalidRequest),
    /// The bearer token is not a well-formed JWT.
    #[error("malformed token: {0}")]
    MalformedToken(MalformedToken),
    /// The token's `alg` is unsupported (`none` included) or not allowed for its issuer.
    #[error("the token's signing algorithm is not allowed for its issuer")]
    DisallowedAlgorithm,
    /// The token's `iss` names no configured issuer.
    #[error("the token's issuer (`iss`) is not trusted")]
    WrongIssuer,
    /// The token's `aud` names none of the issuer's audiences.
    #[error("the token's audience (`aud`) does not include this API")]
    WrongAudience,
    /// No key of the issuer matches the token's `kid` and algorithm.
    #[error("no signing key of the issuer matches the token's `kid` and algorithm")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `exp` has passed (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The token lives longer than the issuer's maximum lifetime.
    #[error("the token's lifetime exceeds the maximum this API accepts")]
    LifetimeTooLong,
    /// The API key is empty or longer than the bound.
    #[error("the API key is empty or longer than {max} bytes")]
    MalformedApiKey {
        /// The bound in bytes.
        max: usize,
    },
    /// The API key matches no configured key.
    #[error("the API key is not valid")]
    UnknownApiKey,
    /// The API key was disabled by an operator.
    #[error("the API key has been disabled")]
    ApiKeyDisabled,
    /// The API key's `expires_at` has passed.
    #[error("the API key has expired")]
    ApiKeyExpired,
    /// The API key's `not_before` is in the future.
    #[error("the API key is not valid yet")]
    ApiKeyNotYetValid,
    /// The caller is authenticated but lacks a scope the route requires (403).
    #[error("insufficient scope: this route requires the scopes `{}`", required.join(" "))]
    InsufficientScope {
        /// How the caller authenticated (picks the challenge scheme).
        method: AuthMethod,
        /// Every scope the route requires.
        required: Vec<String>,
    },
    /// The issuer's signing keys cannot be obtained right now (503).
    #[error("the issuer's signing keys are temporarily unavailable; retry later")]
    KeysUnavailable,
}

impl From<MalformedToken> for AuthRejection {
    fn from(m: MalformedToken) -> Self {
        Self::MalformedToken(m)
    }
}

impl AuthRejection {
    /// The HTTP status: 401, except 403 for missing scopes and 503 when keys
    /// are unavailable.
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidRequest(_) => 400,
            Self::InsufficientScope { .. } => 403,
            Self::KeysUnavailable => 503,
            _ => 401,
        }
    }

    /// The credential kind the rejection is about, if any.
    pub fn method(&self) -> Option<AuthMethod> {
        match self {
            Self::MissingCredentials { .. } | Self::KeysUnavailable => None,
            Self::InsufficientScope { method, .. } => Some(*method),
            Self::MalformedApiKey { .. }
            | Self::UnknownApiKey
            | Self::ApiKeyDisabled
            | Self::ApiKeyExpired
            | Self::ApiKeyNotYetValid => Some(AuthMethod::ApiKey),
            _ => Some(AuthMethod::Jwt),
        }
    }

    /// A stable snake_case label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::MissingCredentials { .. } => "missing_credentials",
            Self::InvalidRequest(InvalidRequest::RepeatedAuthorization) => "repeated_authorization",
            Self::InvalidRequest(InvalidRequest::MissingBearerToken) => "missing_bearer_token",
            Self::InvalidRequest(InvalidRequest::MalformedAuthorization) => {
                "malformed_authorization"
            }
            Self::MalformedToken(_) => "malformed_token",
            Self::DisallowedAlgorithm => "disallowed_algorithm",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::MalformedApiKey { .. } => "malformed_api_key",
            Self::UnknownApiKey => "unknown_api_key",
            Self::ApiKeyDisabled => "api_key_disabled",
            Self::ApiKeyExpired => "api_key_expired",
            Self::ApiKeyNotYetValid => "api_key_not_yet_valid",
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::KeysUnavailable => "keys_unavailable",
        }
    }

    /// The `WWW-Authenticate` header value (RFC 6750 §3 for bearer tokens),
    /// or `None` for 503, which carries no challenge.
    pub fn www_authenticate(&self) -> Option<String> {
        let description = self.client_description();
        match self {
            Self::InvalidRequest(_) => Some(bearer_challenge(&[
                ("error", "invalid_request"),
                ("error_description", description.as_str()),
            ])),
            Self::MissingCredentials { accepted } => Some(match accepted {
                AuthRequirement::ApiKey => api_key_challenge(&[]),
                AuthRequirement::Either => {
                    format!("{}, {}", bearer_challenge(&[]), api_key_challenge(&[]))
                }
                // RFC 6750 §3.1: no error code when no credentials were sent.
                AuthRequirement::Jwt | AuthRequirement::None => bearer_challenge(&[]),
            }),
            Self::KeysUnavailable => None,
            Self::InsufficientScope { method, required } => {
                let scope = required
                    .iter()
                    .map(|s| quotable(s))
                    .collect::<Vec<_>>()
                    .join(" ");
                let params = [
                    ("error", "insufficient_scope"),
                    ("error_description", description.as_str()),
                    ("scope", scope.as_str()),
                ];
                Some(match method {
                    AuthMethod::Jwt => bearer_challenge(&params),
                    AuthMethod::ApiKey => api_key_challenge(&params),
                })
            }
            _ => Some(match self.method() {
                Some(AuthMethod::ApiKey) => api_key_challenge(&[
                    ("error", "invalid_key"),
                    ("error_description", description.as_str()),
                ]),
                _ => bearer_challenge(&[
                    ("error", "invalid_token"),
                    ("error_description", description.as_str()),
                ]),
            }),
        }
    }

    /// The problem+json body for the client.
    pub fn to_problem(&self) -> Problem {
        let (slug, title) = match self {
            Self::MissingCredentials { .. } => ("missing-credentials", "Credentials required"),
            Self::InvalidRequest(_) => ("invalid-request", "Invalid request"),
            Self::InsufficientScope { .. } => ("insufficient-scope", "Insufficient scope"),
            Self::KeysUnavailable => ("auth-unavailable", "Authentication unavailable"),
            _ if self.method() == Some(AuthMethod::ApiKey) => {
                ("invalid-api-key", "Invalid API key")
            }
            _ => ("invalid-token", "Invalid token"),
        };
        Problem::new(self.status(), slug, title).with_detail(self.client_description())
    }

    /// What the client is told. An unknown, disabled, expired or not-yet-valid
    /// API key all read "the API key is not valid": telling them apart would
    /// confirm to a caller holding a leaked or revoked key that it exists.
    /// The log line keeps the reason ([`Self::label`]).
    pub fn client_description(&self) -> String {
        match self {
            Self::UnknownApiKey
            | Self::ApiKeyDisabled
            | Self::ApiKeyExpired
            | Self::ApiKeyNotYetValid => Self::UnknownApiKey.to_string(),
            _ => self.to_string(),
        }
    }
}

fn bearer_challenge(params: &[(&str, &str)]) -> String {
    challenge(&format!("Bearer realm=\"{REALM}\""), params)
}

fn api_key_challenge(params: &[(&str, &str)]) -> String {
    challenge(
        &format!("ApiKey realm=\"{REALM}\", header=\"{API_KEY_HEADER}\""),
        params,
    )
}

fn challenge(head: &str, params: &[(&str, &str)]) -> String {
    let mut out = head.to_owned();
    for (name, value) in params {
        out.push_str(&format!(", {name}=\"{}\"", quotable(value)));
    }
    out
}

/// Keeps the characters RFC 6750 §3 allows inside these quoted strings
/// (printable ASCII except `"` and `\`), so a header can never be broken.
fn quotable(s: &str) -> String {
    s.chars()
        .filter(|c| matches!(c, ' '..='~') && *c != '"' && *c != '\\')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(AuthRejection::Expired.status(), 401);
        assert_eq!(AuthRejection::UnknownApiKey.status(), 401);
        assert_eq!(AuthRejection::KeysUnavailable.status(), 503);
        let scope = AuthRejection::InsufficientScope {
            method: AuthMethod::Jwt,
            required: vec!["a".into()],
        };
        assert_eq!(scope.status(), 403);
    }

    #[test]
    fn bearer_challenges_follow_rfc6750() {
        assert_eq!(
            AuthRejection::Expired.www_authenticate().unwrap(),
            r#"Bearer realm="tidegate", error="invalid_token", error_description="the token has expired""#
        );
        let missing = AuthRejection::MissingCredentials {
            accepted: AuthRequirement::Jwt,
        };
        assert_eq!(
            missing.www_authenticate().unwrap(),
            r#"Bearer realm="tidegate""#
        );
        let scope = AuthRejection::InsufficientScope {
            method: AuthMethod::Jwt,
            required: vec!["read:orders".into(), "wr\"ite".into()],
        };
        let h = scope.www_authenticate().unwrap();
        assert!(h.starts_with(r#"Bearer realm="tidegate", error="insufficient_scope""#));
        assert!(h.ends_with(r#"scope="read:orders write""#), "{h}");
    }

    #[test]
    fn api_key_and_either_challenges() {
        assert_eq!(
            AuthRejection::MissingCredentials {
                accepted: AuthRequirement::ApiKey
            }
            .www_authenticate()
            .unwrap(),
            r#"ApiKey realm="tidegate", header="x-api-key""#
        );
        assert_eq!(
            AuthRejection::MissingCredentials {
                accepted: AuthRequirement::Either
            }
            .www_authenticate()
            .unwrap(),
            r#"Bearer realm="tidegate", ApiKey realm="tidegate", header="x-api-key""#
        );
        let h = AuthRejection::ApiKeyExpired.www_authenticate().unwrap();
        assert!(
            h.starts_with(r#"ApiKey realm="tidegate", header="x-api-key", error="invalid_key""#)
        );
        assert_eq!(AuthRejection::KeysUnavailable.www_authenticate(), None);
    }

    #[test]
    fn problems() {
        let p = AuthRejection::BadSignature.to_problem();
        assert_eq!(p.status, 401);
        assert!(p.kind.ends_with("/invalid-token"));
        let p = AuthRejection::ApiKeyDisabled.to_problem();
        assert!(p.kind.ends_with("/invalid-api-key"));
        let p = AuthRejection::KeysUnavailable.to_problem();
        assert_eq!(p.status, 503);
        let p = AuthRejection::from(MalformedToken::Base64(TokenPart::Claims)).to_problem();
        assert_eq!(
            p.detail.as_deref(),
            Some("malformed token: the claims segment is not unpadded base64url")
        );
    }
}
