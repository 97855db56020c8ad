//! Picking the credential a route accepts out of the request headers.

use super::{AuthRejection, AuthRequirement, InvalidRequest};

/// The header that carries an API key (lower case, as HTTP/2 sends it).
pub const API_KEY_HEADER: &str = "x-api-key";

/// A credential found in the request, borrowed from its header.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// A bearer token from `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// An API key from the `x-api-key` header.
    ApiKey(&'a str),
}

// Hand-written so a credential can never end up in a log through `{:?}`.
impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Self::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
        }
    }
}

/// The token of an `Authorization` header using the `Bearer` scheme (case-
/// insensitive, RFC 7235 §2.1), or `None` for another scheme or an empty token.
/// Only HTTP whitespace (space, tab) is trimmed.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    match bearer_credentials(authorization) {
        BearerCredentials::Token(token) => Some(token),
        BearerCredentials::OtherScheme | BearerCredentials::Malformed(_) => None,
    }
}

/// What an `Authorization` header holds, for a route that takes bearer tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BearerCredentials<'a> {
    /// `Bearer <b64token>` (RFC 6750 §2.1).
    Token(&'a str),
    /// Another scheme (`Basic …`), or no scheme at all: no bearer token.
    OtherScheme,
    /// The `Bearer` scheme with no token, or a token that is not a
    /// `b64token` — including two `Authorization` headers, which arrive
    /// joined with `", "` (RFC 9110 §5.3).
    Malformed(InvalidRequest),
}

fn bearer_credentials(authorization: &str) -> BearerCredentials<'_> {
    let value = trim_http_whitespace(authorization);
    let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return BearerCredentials::OtherScheme;
    }
    let token = trim_http_whitespace(rest);
    if token.is_empty() {
        return BearerCredentials::Malformed(InvalidRequest::MissingBearerToken);
    }
    if token.contains(',') {
        return BearerCredentials::Malformed(InvalidRequest::RepeatedAuthorization);
    }
    if !is_b64token(token) {
        return BearerCredentials::Malformed(InvalidRequest::MalformedAuthorization);
    }
    BearerCredentials::Token(token)
}

/// RFC 6750 §2.1: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// `s` without leading and trailing HTTP whitespace: space and horizontal tab
/// only (RFC 9110 §5.6.3 `OWS`). Not `str::trim`, which would also strip
/// Unicode spaces such as U+00A0 — a byte 0xA0 in a header value — and so
/// accept a key the client did not send.
pub fn trim_http_whitespace(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// Chooses the credential to check for a route with `requirement`, given the
/// raw `Authorization` and `x-api-key` header values.
///
/// `Ok(None)` means the route is public: credentials, if any, are ignored.
/// With [`AuthRequirement::Either`] a bearer token wins over an API key when
/// both are sent. A `Bearer` credential that is not a well-formed `b64token`
/// (none, two headers joined, odd bytes) is `invalid_request` (400, RFC 6750
/// §3.1) on a route that takes tokens; nothing else is validated here.
pub fn select_credential<'a>(
    requirement: AuthRequirement,
    authorization: Option<&'a str>,
    api_key: Option<&'a str>,
) -> Result<Option<Credential<'a>>, AuthRejection> {
    let bearer = || match authorization.map(bearer_credentials) {
        Some(BearerCredentials::Token(token)) => Ok(Some(Credential::Bearer(token))),
        Some(BearerCredentials::Malformed(why)) => Err(AuthRejection::InvalidRequest(why)),
        Some(BearerCredentials::OtherScheme) | None => Ok(None),
    };
    let key = || {
        api_key
            .map(trim_http_whitespace)
            .filter(|k| !k.is_empty())
            .map(Credential::ApiKey)
    };
    let found = match requirement {
        AuthRequirement::None => return Ok(None),
        AuthRequirement::Jwt => bearer()?,
        AuthRequirement::ApiKey => key(),
        AuthRequirement::Either => bearer()?.or_else(key),
    };
    found.map(Some).ok_or(AuthRejection::MissingCredentials {
        accepted: requirement,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer   abc "), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearerabc"), None);
        assert_eq!(
            bearer_token("Bearer\ta.b-c_d~e+f/g=="),
            Some("a.b-c_d~e+f/g==")
        );
    }

    #[test]
    fn malformed_bearer_credentials_are_invalid_requests() {
        use AuthRequirement::*;
        let invalid = |why| Err(AuthRejection::InvalidRequest(why));
        for (header, why) in [
            (
                "Bearer a.b.c, Bearer d.e.f",
                InvalidRequest::RepeatedAuthorization,
            ),
            ("Bearer a,b", InvalidRequest::RepeatedAuthorization),
            ("Bearer", InvalidRequest::MissingBearerToken),
            ("bearer   ", InvalidRequest::MissingBearerToken),
            ("Bearer a b", InvalidRequest::MalformedAuthorization),
            (
                "Bearer \u{ff}\u{fe}",
                InvalidRequest::MalformedAuthorization,
            ),
            ("Bearer a\u{a0}", InvalidRequest::MalformedAuthorization),
            ("Bearer ==", InvalidRequest::MalformedAuthorization),
            ("Bearer a=b", InvalidRequest::MalformedAuthorization),
        ] {
            assert_eq!(
                select_credential(Jwt, Some(header), Option::None),
                invalid(why),
                "{header:?}"
            );
            assert_eq!(
                select_credential(Either, Some(header), Some("k")),
                invalid(why),
                "{header:?}"
            );
            // A route that takes only API keys ignores Authorization.
            assert_eq!(
                select_credential(ApiKey, Some(header), Some("k")),
                Ok(Some(Credential::ApiKey("k")))
            );
        }
        // Another scheme is not a bearer token: 401 with a challenge, not 400.
        assert_eq!(
            select_credential(Jwt, Some("Basic dXNlcjpwYXNz"), Option::None),
            Err(AuthRejection::MissingCredentials { accepted: Jwt })
        );
    }

    #[test]
    fn api_keys_are_trimmed_of_space_and_tab_only() {
        use AuthRequirement::ApiKey;
        assert_eq!(
            select_credential(ApiKey, None, Some(" \tkey\t ")),
            Ok(Some(Credential::ApiKey("key")))
        );
        // U+00A0 (a 0xA0 byte in the header), a vertical tab or a newline are
        // part of the key, not whitespace to forgive.
        for raw in ["key\u{a0}", "\u{a0}key", "key\u{b}", "key\n"] {
            assert_eq!(
                select_credential(ApiKey, None, Some(raw)),
                Ok(Some(Credential::ApiKey(raw)))
            );
        }
    }

    #[test]
    fn selection_follows_requirement() {
        use AuthRequirement::*;
        let auth = Some("Bearer t");
        let key = Some("k");
        assert_eq!(select_credential(None, auth, key), Ok(Option::None));
        assert_eq!(
            select_credential(Jwt, auth, key),
            Ok(Some(Credential::Bearer("t")))
        );
        assert_eq!(
            select_credential(ApiKey, auth, key),
            Ok(Some(Credential::ApiKey("k")))
        );
        assert_eq!(
            select_credential(Either, auth, key),
            Ok(Some(Credential::Bearer("t")))
        );
        assert_eq!(
            select_credential(Either, Some("Basic x"), key),
            Ok(Some(Credential::ApiKey("k")))
        );
        assert_eq!(
            select_credential(Jwt, Option::None, key),
            Err(AuthRejection::MissingCredentials { accepted: Jwt })
        );
        assert_eq!(
            select_credential(ApiKey, auth, Some("  ")),
            Err(AuthRejection::MissingCredentials { accepted: ApiKey })
        );
    }

    #[test]
    fn debug_redacts() {
        assert_eq!(
            format!("{:?}", Credential::Bearer("secret")),
            "Bearer(<redacted>)"
        );
    }
}
