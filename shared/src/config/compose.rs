//! The validated configuration turned into the policy objects adapters call:
//! built once per isolate or Lambda container, used on every request.

use super::model::{GatewayConfig, Issuer, JwksSource, Route};
use crate::auth::{AuthPolicy, AuthRejection, JwksCache, JwtPolicy, UnverifiedJwt, API_KEY_HEADER};
use crate::route::{ForwardPolicy, RouteTable};

impl GatewayConfig {
    /// The route table, in file order (first match wins).
    pub fn route_table(&self) -> RouteTable {
        RouteTable::new(
            self.routes
                .iter()
                .map(|r| (r.methods.clone(), r.pattern.clone())),
        )
    }

    /// The JWT policy for `route`: every configured issuer, or only those the
    /// route lists.
    pub fn jwt_policy(&self, route: &Route) -> JwtPolicy {
        JwtPolicy::new(
            self.route_issuers(route)
                .map(|i| i.policy.clone())
                .collect(),
        )
    }

    /// The issuers `route` accepts tokens from: those it lists, or all.
    pub fn route_issuers<'a, 'r>(
        &'a self,
        route: &'r Route,
    ) -> impl Iterator<Item = &'a Issuer> + use<'a, 'r> {
        self.issuers.iter().filter(|i| {
            route
                .auth
                .issuers
                .as_ref()
                .is_none_or(|names| names.contains(&i.name))
        })
    }

    /// The configured issuer of a parsed (unverified) token on `route`: the
    /// one whose `issuer` equals the token's `iss`, among those the route
    /// accepts, provided it allows the token's `alg`. Its name picks the
    /// JWKS cache; its `policy` verifies the token.
    ///
    /// Choosing by the unverified `iss` is safe: the signature is then
    /// checked with that issuer's keys only, and `iss` again after that.
    pub fn issuer_for_token(
        &self,
        route: &Route,
        jwt: &UnverifiedJwt<'_>,
    ) -> Result<&Issuer, AuthRejection> {
        issuer_among(self.route_issuers(route), jwt)
    }

    /// The configured issuer of a parsed (unverified) token, among all
    /// issuers: [`GatewayConfig::issuer_for_token`] for callers with no
    /// route, such as the rollback Lambda's control API.
    pub fn token_issuer(&self, jwt: &UnverifiedJwt<'_>) -> Result<&Issuer, AuthRejection> {
        issuer_among(self.issuers.iter(), jwt)
    }

    /// The request header clients send API keys in (lower case): the
    /// configured one, or [`API_KEY_HEADER`] when there is no `[api_keys]`.
    pub fn api_key_header(&self) -> &str {
        self.api_keys
            .as_ref()
            .map_or(API_KEY_HEADER, |k| k.header.as_str())
    }

    /// Which client credentials `route` passes on to its origin. The API key
    /// header is always named, so a route that does not forward credentials
    /// strips it even when the gateway uses no API keys: a credential meant
    /// for the gateway never reaches an origin by accident.
    pub fn forward_policy(&self, route: &Route) -> ForwardPolicy {
        ForwardPolicy {
            forward_authorization: route.forward_credentials,
            api_key_header: Some(self.api_key_header().to_owned()),
            forward_api_key: route.forward_credentials,
        }
    }
}

/// The issuer among `issuers` whose `issuer` equals the token's `iss`,
/// provided it allows the token's `alg`.
fn issuer_among<'a>(
    mut issuers: impl Iterator<Item = &'a Issuer>,
    jwt: &UnverifiedJwt<'_>,
) -> Result<&'a Issuer, AuthRejection> {
    let iss = jwt.issuer().ok_or(AuthRejection::WrongIssuer)?;
    let issuer = issuers
        .find(|i| i.policy.issuer == iss)
        .ok_or(AuthRejection::WrongIssuer)?;
    if issuer.policy.allows(jwt.alg()) {
        Ok(issuer)
    } else {
        Err(AuthRejection::DisallowedAlgorithm)
    }
}

impl Issuer {
    /// An empty cache for this issuer's keys, built once per isolate: a
    /// fetching cache for a `jwks_url`, a [pinned](JwksCache::pinned) one
    /// for an inline `jwks`. Adapters then use both alike.
    pub fn new_jwks_cache(&self) -> JwksCache {
        match &self.jwks {
            JwksSource::Url(_) => JwksCache::new(self.jwks_cache.clone()),
            JwksSource::Inline(set) => JwksCache::pinned(set.clone(), self.jwks_cache.clone()),
        }
    }
}

impl Route {
    /// What the auth module checks for this route.
    pub fn auth_policy(&self) -> AuthPolicy {
        AuthPolicy {
            requirement: self.auth.requirement,
            required_scopes: self.auth.scopes.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::auth::{Algorithm, AuthRejection, KeyLookup, UnverifiedJwt, API_KEY_HEADER};
    use crate::config::parse;
    use crate::route::{Method, RouteMatch};

    const TEXT: &str = r#"
        [[issuers]]
        name = "a"
        issuer = "https://a/"
        audiences = ["api"]
        algorithms = ["RS256"]
        jwks_url = "https://a/jwks"
        [[issuers]]
        name = "b"
        issuer = "https://b/"
        audiences = ["api"]
        algorithms = ["ES256"]
        jwks_url = "https://b/jwks"
        [[routes]]
        name = "only-b"
        methods = ["GET"]
        path = "/b/{id}"
        upstream = "https://o"
        auth = { require = "jwt", issuers = ["b"], scopes = ["read"] }
        [[routes]]
        name = "any"
        path = "/*"
        upstream = "https://o"
        auth = { require = "jwt" }
    "#;

    #[test]
    fn route_table_keeps_file_order() {
        let config = parse(TEXT).unwrap();
        let table = config.route_table();
        match table.match_request(Method::Get, "/b/42") {
            RouteMatch::Matched { index, params } => {
                assert_eq!(config.routes[index].name, "only-b");
                assert_eq!(params, vec![("id".to_owned(), "42".to_owned())]);
            }
            other => panic!("{other:?}"),
        }
        match table.match_request(Method::Post, "/b/42") {
            RouteMatch::Matched { index, .. } => assert_eq!(config.routes[index].name, "any"),
            other => panic!("{other:?}"),
        }
    }

    /// An unsigned token with header `alg` and claim `iss`, for issuer lookup.
    fn token(alg: &str, iss: &str) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let enc = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let header = enc(serde_json::json!({ "alg": alg, "kid": "k1" }));
        let claims = enc(serde_json::json!({ "iss": iss, "sub": "alice" }));
        format!("{header}.{claims}.c2ln")
    }

    #[test]
    fn issuer_for_token_respects_route_issuers_and_algorithms() {
        let config = parse(TEXT).unwrap();
        let (only_b, any) = (&config.routes[0], &config.routes[1]);
        let check = |route, alg, iss| {
            let t = token(alg, iss);
            let jwt = UnverifiedJwt::parse(&t, 4096).unwrap();
            config.issuer_for_token(route, &jwt).map(|i| i.name.clone())
        };
        assert_eq!(check(only_b, "ES256", "https://b/"), Ok("b".into()));
        assert_eq!(check(any, "RS256", "https://a/"), Ok("a".into()));
        assert_eq!(
            check(only_b, "RS256", "https://a/"),
            Err(AuthRejection::WrongIssuer),
            "a is trusted, but not on this route"
        );
        assert_eq!(
            check(any, "RS256", "https://b/"),
            Err(AuthRejection::DisallowedAlgorithm)
        );
        assert_eq!(
            check(any, "ES256", "https://c/"),
            Err(AuthRejection::WrongIssuer)
        );
    }

    #[test]
    fn token_issuer_searches_every_issuer() {
        let config = parse(TEXT).unwrap();
        let check = |alg, iss| {
            let t = token(alg, iss);
            let jwt = UnverifiedJwt::parse(&t, 4096).unwrap();
            config.token_issuer(&jwt).map(|i| i.name.clone())
        };
        assert_eq!(check("RS256", "https://a/"), Ok("a".into()));
        assert_eq!(check("ES256", "https://b/"), Ok("b".into()));
        assert_eq!(
            check("RS256", "https://b/"),
            Err(AuthRejection::DisallowedAlgorithm)
        );
        assert_eq!(
            check("ES256", "https://c/"),
            Err(AuthRejection::WrongIssuer)
        );
    }

    #[test]
    fn forward_policy_always_names_the_api_key_header() {
        let config = parse(TEXT).unwrap();
        assert_eq!(config.api_key_header(), API_KEY_HEADER);
        let policy = config.forward_policy(&config.routes[0]);
        assert_eq!(policy.api_key_header.as_deref(), Some(API_KEY_HEADER));
        assert!(!policy.forward_authorization && !policy.forward_api_key);

        let text = format!(
            "[api_keys]\nheader = \"x-key\"\n{TEXT}\n[[routes]]\nname = \"fwd\"\n\
             path = \"/f\"\nupstream = \"https://o\"\nforward_credentials = true\n\
             auth = {{ require = \"api_key\" }}\n"
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.api_key_header(), "x-key");
        let policy = config.forward_policy(config.route("fwd").unwrap());
        assert_eq!(policy.api_key_header.as_deref(), Some("x-key"));
        assert!(policy.forward_authorization && policy.forward_api_key);
    }

    #[test]
    fn inline_key_sets_get_pinned_caches() {
        let text = r#"
            [[issuers]]
            name = "inline"
            issuer = "https://i/"
            audiences = ["api"]
            algorithms = ["HS256"]
            jwks = { keys = [{ kty = "oct", kid = "k1", k = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE" }] }
        "#;
        let config = parse(&format!("{text}{TEXT}")).unwrap();
        let mut pinned = config.issuer("inline").unwrap().new_jwks_cache();
        assert!(pinned.is_pinned());
        assert!(matches!(
            pinned.lookup(Some("k1"), Algorithm::HS256, 0),
            KeyLookup::Found(_)
        ));
        let mut fetched = config.issuer("a").unwrap().new_jwks_cache();
        assert!(!fetched.is_pinned());
        assert_eq!(
            fetched.lookup(Some("k1"), Algorithm::RS256, 0),
            KeyLookup::FetchThenRetry
        );
    }

    #[test]
    fn jwt_policy_is_limited_to_the_route_issuers() {
        let config = parse(TEXT).unwrap();
        let only_b = config.jwt_policy(&config.routes[0]);
        assert_eq!(only_b.issuers.len(), 1);
        assert_eq!(only_b.issuers[0].issuer, "https://b/");
        assert_eq!(config.jwt_policy(&config.routes[1]).issuers.len(), 2);
        assert_eq!(config.routes[0].auth_policy().required_scopes, ["read"]);
    }
}
