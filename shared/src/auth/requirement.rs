//! What a route demands of its callers, and the scope check.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{AuthRejection, Identity};

/// Which credentials a route accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthRequirement {
    /// Anyone may call.
    #[default]
    None,
    /// A JWT bearer token.
    Jwt,
    /// An API key.
    ApiKey,
    /// A JWT bearer token or an API key.
    Either,
}

impl AuthRequirement {
    /// Whether a credential made with `method` satisfies this requirement.
    pub fn accepts(self, method: super::AuthMethod) -> bool {
        use super::AuthMethod;
        matches!(
            (self, method),
            (Self::Jwt | Self::Either, AuthMethod::Jwt)
                | (Self::ApiKey | Self::Either, AuthMethod::ApiKey)
        )
    }
}

impl fmt::Display for AuthRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "no credentials",
            Self::Jwt => "a bearer token (Authorization: Bearer <jwt>)",
            Self::ApiKey => "an API key (x-api-key header)",
            Self::Either => "a bearer token or an API key (x-api-key header)",
        })
    }
}

/// A route's authentication policy: accepted credentials and required scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthPolicy {
    /// Which credentials the route accepts.
    pub requirement: AuthRequirement,
    /// Scopes the caller must hold, all of them.
    #[serde(default)]
    pub required_scopes: Vec<String>,
}

impl AuthPolicy {
    /// A route anyone may call.
    pub fn public() -> Self {
        Self::default()
    }

    /// A route accepting `requirement`, with no scopes required.
    pub fn new(requirement: AuthRequirement) -> Self {
        Self {
            requirement,
            required_scopes: Vec::new(),
        }
    }

    /// The same policy, also requiring `scopes`.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_scopes
            .extend(scopes.into_iter().map(Into::into));
        self
    }
}

/// Checks that `identity` holds every scope in `required_scopes`.
///
/// All, not any: a route that needs `read` and `write` lists both. On failure
/// the rejection lists every required scope (RFC 6750 §3 `scope`), which is
/// route configuration, not a secret.
pub fn authorize(identity: &Identity, required_scopes: &[String]) -> Result<(), AuthRejection> {
    if required_scopes.iter().all(|s| identity.has_scope(s)) {
        Ok(())
    } else {
        Err(AuthRejection::InsufficientScope {
            method: identity.method,
            required: required_scopes.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthMethod;

    fn identity(scopes: &[&str]) -> Identity {
        Identity {
            subject: "alice".into(),
            key_id: None,
            issuer: None,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            tier: None,
            limit_overrides: Default::default(),
            method: AuthMethod::ApiKey,
        }
    }

    #[test]
    fn requires_all_scopes() {
        let id = identity(&["read", "write"]);
        assert!(authorize(&id, &[]).is_ok());
        assert!(authorize(&id, &["read".into()]).is_ok());
        assert!(authorize(&id, &["read".into(), "write".into()]).is_ok());
        let err = authorize(&id, &["read".into(), "admin".into()]).unwrap_err();
        assert_eq!(
            err,
            AuthRejection::InsufficientScope {
                method: AuthMethod::ApiKey,
                required: vec!["read".into(), "admin".into()],
            }
        );
        assert_eq!(err.status(), 403);
    }

    #[test]
    fn requirement_accepts_methods() {
        assert!(AuthRequirement::Either.accepts(AuthMethod::Jwt));
        assert!(AuthRequirement::Either.accepts(AuthMethod::ApiKey));
        assert!(AuthRequirement::Jwt.accepts(AuthMethod::Jwt));
        assert!(!AuthRequirement::Jwt.accepts(AuthMethod::ApiKey));
        assert!(!AuthRequirement::None.accepts(AuthMethod::Jwt));
    }

    #[test]
    fn serde_names() {
        let r: AuthPolicy =
            serde_json::from_str(r#"{"requirement":"api_key","required_scopes":["x"]}"#).unwrap();
        assert_eq!(
            r,
            AuthPolicy::new(AuthRequirement::ApiKey).with_scopes(["x"])
        );
    }
}
