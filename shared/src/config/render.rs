//! From a [`GatewayConfig`] back to the file form, every default written out.
//! Used to show the effective configuration and to prove the round trip.

use super::duration::format;
use super::file::*;
use super::model::*;
use crate::auth::AuthRequirement;
use crate::cache::CacheScope;
use crate::throttle::LimitKey;

impl GatewayConfig {
    /// The configuration in file form, with every default written out.
    pub fn to_file(&self) -> GatewayFile {
        GatewayFile {
            schema: None,
            gateway: Some(GatewaySection {
                admin_prefix: Some(self.gateway.admin_prefix.clone()),
                default_timeout: Some(text(self.gateway.default_timeout)),
                trust_request_id: Some(self.gateway.trust_request_id),
            }),
            issuers: self.issuers.iter().map(issuer).collect(),
            api_keys: self.api_keys.as_ref().map(|k| ApiKeysSection {
                header: Some(k.header.clone()),
            }),
            routes: self
                .routes
                .iter()
                .map(|r| route(r, self.assertion.is_some()))
                .collect(),
            rollback: self.rollback.as_ref().map(rollback),
            assertion: self.assertion.as_ref().map(|a| AssertionSection {
                issuer: a.issuer.clone(),
                header: Some(a.header.clone()),
                ttl: Some(text(a.ttl)),
                keys_secret: Some(a.keys_secret.clone()),
                jwks_max_age: Some(text(a.jwks_max_age)),
            }),
        }
    }

    /// The effective configuration with secrets removed (symmetric key material
    /// in inline JWKS), safe to show on the admin endpoint.
    pub fn redacted(&self) -> GatewayFile {
        let mut file = self.to_file();
        for issuer in &mut file.issuers {
            if let Some(serde_json::Value::Object(jwks)) = &mut issuer.jwks {
                if let Some(serde_json::Value::Array(keys)) = jwks.get_mut("keys") {
                    for key in keys.iter_mut().filter_map(serde_json::Value::as_object_mut) {
                        for secret in ["k", "d", "p", "q", "dp", "dq", "qi"] {
                            if key.contains_key(secret) {
                                key.insert(secret.into(), "[redacted]".into());
                            }
                        }
                    }
                }
            }
        }
        file
    }

    /// The configuration as TOML text that parses back to an equal configuration.
    pub fn to_toml_string(&self) -> String {
        // A file made of strings, numbers, booleans, lists and tables always
        // serialises; the fallback keeps this function total.
        toml::to_string_pretty(&self.to_file()).unwrap_or_default()
    }
}

fn text(d: std::time::Duration) -> DurationText {
    DurationText(format(d))
}

fn issuer(i: &Issuer) -> IssuerSection {
    let (jwks_url, jwks) = match &i.jwks {
        JwksSource::Url(url) => (Some(UrlText(url.to_string())), None),
        JwksSource::Inline(set) => (None, serde_json::to_value(set).ok()),
    };
    let p = &i.policy;
    IssuerSection {
        name: i.name.clone(),
        issuer: p.issuer.clone(),
        audiences: p.audiences.clone(),
        jwks_url,
        jwks,
        algorithms: p
            .algorithms
            .iter()
            .map(|a| AlgorithmText(format!("{a:?}")))
            .collect(),
        leeway: Some(text(p.leeway)),
        max_lifetime: p.max_lifetime.map(text),
        tier_claim: p.tier_claim.clone(),
        jwks_cache: Some(JwksCacheSection {
            ttl: Some(text(i.jwks_cache.ttl)),
            max_stale: Some(text(i.jwks_cache.max_stale)),
            refetch_cooldown: Some(text(i.jwks_cache.refetch_cooldown)),
            negative_ttl: Some(text(i.jwks_cache.negative_ttl)),
        }),
    }
}

fn route(r: &Route, assertion: bool) -> RouteSection {
    RouteSection {
        name: r.name.clone(),
        methods: r
            .methods
            .iter()
            .map(|m| MethodText(m.to_string()))
            .collect(),
        path: PatternText(r.pattern.to_string()),
        upstream: UrlText(r.upstream.to_string()),
        strip_prefix: r.strip_prefix.clone(),
        timeout: Some(text(r.timeout)),
        forward_credentials: Some(r.forward_credentials),
        auth: RouteAuthSection {
            require: match r.auth.requirement {
                AuthRequirement::None => AuthRequirementName::None,
                AuthRequirement::Jwt => AuthRequirementName::Jwt,
                AuthRequirement::ApiKey => AuthRequirementName::ApiKey,
                AuthRequirement::Either => AuthRequirementName::Either,
            },
            scopes: r.auth.scopes.clone(),
            issuers: r.auth.issuers.clone(),
        },
        rate_limit: r.rate_limit.as_ref().map(|rl| RateLimitSection {
            shadow: Some(rl.shadow),
            on_error: Some(match rl.on_error {
                FailureMode::Open => FailureModeName::Open,
                FailureMode::Closed => FailureModeName::Closed,
            }),
            limits: rl.limits.iter().map(limit).collect(),
        }),
        cache: r.cache.as_ref().map(|c| CacheSection {
            ttl: text(c.ttl),
            stale_while_revalidate: Some(text(c.stale_while_revalidate)),
            stale_if_error: Some(text(c.stale_if_error)),
            vary_headers: c.vary_headers.clone(),
            vary_query: c.vary_query.clone(),
            scope: Some(match c.scope {
                CacheScope::Shared => CacheScopeName::Shared,
                CacheScope::Private => CacheScopeName::Private,
            }),
            statuses: Some(c.statuses.clone()),
            max_body_bytes: Some(c.max_body_bytes),
        }),
        assert_identity: assertion.then_some(r.assert_identity),
        origin_secret: r.origin_secret.as_ref().map(|o| OriginSecretSection {
            header: o.header.clone(),
            secret: o.secret.clone(),
        }),
    }
}

fn limit(l: &RouteLimit) -> LimitSection {
    LimitSection {
        name: l.name.clone(),
        limit: l.quota.limit,
        period: text(l.quota.period),
        key: match l.key {
            LimitKey::Subject => LimitKeyName::Subject,
            LimitKey::ApiKey => LimitKeyName::ApiKey,
            LimitKey::ClientIp => LimitKeyName::ClientIp,
            LimitKey::Route => LimitKeyName::Route,
        },
        cost: Some(l.cost),
        burst: Some(l.quota.burst),
    }
}

fn rollback(r: &RollbackPolicy) -> RollbackSection {
    RollbackSection {
        dry_run: None,
        notification_topic_arn: r.notification_topic_arn.clone(),
        stages: r.stages.iter().map(stage).collect(),
    }
}

fn stage(s: &ManagedStage) -> StageSection {
    let (rest_api_id, rest_api_name) = match &s.api {
        RestApiRef::Id(id) => (Some(id.clone()), None),
        RestApiRef::Name(name) => (None, Some(name.clone())),
    };
    StageSection {
        rest_api_id,
        rest_api_name,
        stage: s.stage.clone(),
        stage_alarms: s.stage_alarms.clone(),
        canary_alarms: s.canary_alarms.clone(),
        error_rate_threshold: Some(s.error_rate_threshold),
        min_requests: Some(s.min_requests),
        canary_steps: Some(s.canary_steps.clone()),
        bake_time: Some(text(s.bake_time)),
        cooldown: Some(text(s.cooldown)),
        metric_window: Some(text(s.metric_window)),
        metric_api_name: s.metric_api_name.clone(),
        canary_stage_dimension: Some(s.canary_stage_dimension.clone()),
        dry_run: Some(s.dry_run),
    }
}
