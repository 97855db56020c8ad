//! TEMP STUB (replaced by the auth branch)
#![allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRequirement {
    None,
    Jwt,
    ApiKey,
    Either,
}
pub mod jwt {
    use std::time::Duration;
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct IssuerPolicy {
        pub issuer: String,
        pub audiences: Vec<String>,
        pub algorithms: Vec<jsonwebtoken::Algorithm>,
        pub leeway: Duration,
        pub max_lifetime: Option<Duration>,
        pub tier_claim: Option<String>,
    }
    impl IssuerPolicy {
        pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
    }
}
pub mod jwks {
    use std::time::Duration;
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct JwksCachePolicy {
        pub ttl: Duration,
        pub max_stale: Duration,
        pub refetch_cooldown: Duration,
        pub negative_ttl: Duration,
        pub max_negative_entries: usize,
    }
    impl Default for JwksCachePolicy {
        fn default() -> Self {
            Self {
                ttl: Duration::from_secs(600),
                max_stale: Duration::from_secs(3600),
                refetch_cooldown: Duration::from_secs(30),
                negative_ttl: Duration::from_secs(300),
                max_negative_entries: 1024,
            }
        }
    }
}
