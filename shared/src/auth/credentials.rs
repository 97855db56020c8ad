//! Picking the credential a route accepts out of the request headers.

use super::{AuthRejection, AuthRequirement};

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
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let value = authorization.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_start();
    (!token.is_empty()).then_some(token)
}

/// Chooses the credential to check for a route with `requirement`, given the
/// raw `Authorization` and `x-api-key` header values.
///
/// `Ok(None)` means the route is public: credentials, if any, are ignored.
/// With [`AuthRequirement::Either`] a bearer token wins over an API key when
/// both are sent. Nothing is validated here beyond presence.
pub fn select_credential<'a>(
    requirement: AuthRequirement,
    authorization: Option<&'a str>,
    api_key: Option<&'a str>,
) -> Result<Option<Credential<'a>>, AuthRejection> {
    let bearer = || authorization.and_then(bearer_token).map(Credential::Bearer);
    let key = || {
        api_key
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(Credential::ApiKey)
    };
    let found = match requirement {
        AuthRequirement::None => return Ok(None),
        AuthRequirement::Jwt => bearer(),
        AuthRequirement::ApiKey => key(),
        AuthRequirement::Either => bearer().or_else(key),
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
