//! Who an authenticated caller is, and the forms other modules need it in.

use std::collections::BTreeMap;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde::{Deserialize, Serialize};

use crate::route::TrustedIdentity;

/// Encoded in each part of [`Identity::qualified_subject`]: `:` so the parts
/// cannot run into each other, `%` so the encoding is unambiguous.
const IDENTITY_PART: &AsciiSet = &CONTROLS.add(b':').add(b'%');

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A signed JWT in `Authorization: Bearer`.
    Jwt,
    /// A key from the `API_KEYS` secret in the `x-api-key` header.
    ApiKey,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The JWT `sub`, or the API key's consumer: what rate limits key on.
    pub subject: String,
    /// The JWT's `kid`, or the API key's id: which credential was used.
    pub key_id: Option<String>,
    /// The JWT `iss`; `None` for API keys.
    pub issuer: Option<String>,
    /// Granted scopes, deduplicated, in the order first seen.
    pub scopes: Vec<String>,
    /// The caller's plan (from the issuer's tier claim or the API key record).
    pub tier: Option<String>,
    /// Per-consumer limit overrides from the API key record, by limit name;
    /// always empty for JWTs.
    pub limit_overrides: BTreeMap<String, u64>,
    /// How the caller authenticated.
    pub method: AuthMethod,
}

impl Identity {
    /// Whether the caller was granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Who the caller is, qualified by how they authenticated:
    /// `jwt:<iss>:<sub>` for tokens, `key:<consumer>` for API keys. It keys
    /// private cache entries (`RequestParts::identity`) and per-subject rate
    /// limits (`KeySource::from_identity`).
    ///
    /// Qualified so that distinct callers never share entries or buckets: a JWT subject
    /// and an API key consumer of the same name differ by prefix, and equal
    /// subjects of two issuers by issuer. `:` and `%` inside the parts are
    /// percent-encoded, so no choice of `iss` and `sub` can forge another
    /// pair's identity. All keys of one consumer share entries: they are
    /// one caller (that is how keys are rotated).
    pub fn qualified_subject(&self) -> String {
        let part = |s: &str| utf8_percent_encode(s, IDENTITY_PART).to_string();
        match self.method {
            AuthMethod::Jwt => {
                let issuer = part(self.issuer.as_deref().unwrap_or(""));
                format!("jwt:{issuer}:{}", part(&self.subject))
            }
            AuthMethod::ApiKey => format!("key:{}", part(&self.subject)),
        }
    }
}

/// What the origin is told about the caller (the `x-tidegate-*` headers).
impl From<&Identity> for TrustedIdentity {
    fn from(identity: &Identity) -> Self {
        Self {
            subject: identity.subject.clone(),
            key_id: identity.key_id.clone(),
            scopes: identity.scopes.clone(),
            tier: identity.tier.clone(),
            issuer: identity.issuer.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(iss: &str, sub: &str) -> Identity {
        Identity {
            subject: sub.into(),
            key_id: Some("kid-1".into()),
            issuer: Some(iss.into()),
            scopes: vec!["read".into()],
            tier: Some("gold".into()),
            limit_overrides: BTreeMap::new(),
            method: AuthMethod::Jwt,
        }
    }

    fn key(consumer: &str) -> Identity {
        Identity {
            issuer: None,
            key_id: Some("key_1".into()),
            method: AuthMethod::ApiKey,
            ..jwt("", consumer)
        }
    }

    #[test]
    fn qualified_subject_is_method_qualified() {
        assert_eq!(
            jwt("https://idp/", "alice").qualified_subject(),
            "jwt:https%3A//idp/:alice"
        );
        assert_eq!(key("acme").qualified_subject(), "key:acme");
        assert_ne!(
            jwt("", "acme").qualified_subject(),
            key("acme").qualified_subject()
        );
        let mut other_key = key("acme");
        other_key.key_id = Some("key_2".into());
        assert_eq!(
            other_key.qualified_subject(),
            key("acme").qualified_subject()
        );
    }

    #[test]
    fn qualified_subject_parts_cannot_be_forged() {
        // Without encoding both would read `jwt:https://a/:b:c`.
        let a = jwt("https://a/:b", "c").qualified_subject();
        let b = jwt("https://a/", "b:c").qualified_subject();
        assert_ne!(a, b);
        assert_ne!(
            jwt("a", "b%3Ac").qualified_subject(),
            jwt("a", "b:c").qualified_subject()
        );
        // An API key consumer cannot pose as a JWT caller either.
        assert_ne!(
            key("jwt:a:b").qualified_subject(),
            jwt("a", "b").qualified_subject()
        );
    }

    #[test]
    fn trusted_identity_copies_what_the_origin_may_know() {
        let id = jwt("https://idp/", "alice");
        let trusted = TrustedIdentity::from(&id);
        assert_eq!(trusted.subject, "alice");
        assert_eq!(trusted.key_id.as_deref(), Some("kid-1"));
        assert_eq!(trusted.issuer.as_deref(), Some("https://idp/"));
        assert_eq!(trusted.scopes, ["read"]);
        assert_eq!(trusted.tier.as_deref(), Some("gold"));
    }
}
