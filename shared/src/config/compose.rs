//! The validated configuration turned into the policy objects adapters call:
//! built once per isolate or Lambda container, used on every request.

use super::model::{GatewayConfig, Route};
use crate::auth::{JwtPolicy, RouteAuth};
use crate::route::RouteTable;

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
        let issuers = self
            .issuers
            .iter()
            .filter(|i| {
                route
                    .auth
                    .issuers
                    .as_ref()
                    .is_none_or(|names| names.contains(&i.name))
            })
            .map(|i| i.policy.clone())
            .collect();
        JwtPolicy::new(issuers)
    }
}

impl Route {
    /// What the auth module checks for this route.
    pub fn auth_policy(&self) -> RouteAuth {
        RouteAuth {
            requirement: self.auth.requirement,
            required_scopes: self.auth.scopes.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
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
