//! From a [`GatewayConfig`] back to the file form, every default written out.
//! Used to show the effective configuration and to prove the round trip.

use super::duration::format_duration;
use super::file::*;
use super::model::*;
use crate::auth::AuthRequirement;
use crate::cache::{CacheScope, FreshnessSource};
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
                server_timing: Some(self.gateway.server_timing),
                token_cache: Some(TokenCacheSection {
                    enabled: Some(self.gateway.token_cache.enabled),
                    max_entries: u64::try_from(self.gateway.token_cache.max_entries).ok(),
                    ttl: Some(text(self.gateway.token_cache.ttl)),
                }),
            }),
            issuers: self.issuers.iter().map(issuer).collect(),
            api_keys: self.api_keys.as_ref().map(api_keys),
            tiers: self
                .tiers
                .iter()
                .map(|(name, t)| (name.clone(), tier(t)))
                .collect(),
            routes: self
                .routes
                .iter()
                .map(|r| route(r, self.assertion.is_some()))
                .collect(),
            rollback: self.rollback.as_ref().map(rollback),
            purge: self.purge.as_ref().map(|p| PurgeSection {
                zone_id: p.zone_id.clone(),
                api_token_secret: Some(p.api_token_secret.clone()),
                api_base: Some(UrlText(p.api_base.to_string())),
            }),
            health: self.health.as_ref().map(health),
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
    DurationText(format_duration(d))
}

fn api_keys(k: &ApiKeySettings) -> ApiKeysSection {
    let kv = k.kv.as_ref();
    ApiKeysSection {
        header: Some(k.header.clone()),
        store: Some(if kv.is_some() {
            KeyStoreName::Kv
        } else {
            KeyStoreName::Secret
        }),
        kv_binding: kv.map(|s| s.binding.clone()),
        cache_ttl: kv.map(|s| text(s.cache_ttl)),
        negative_ttl: kv.map(|s| text(s.negative_ttl)),
        cache_entries: kv.map(|s| s.cache_entries as u64),
        rotation_overlap: kv.map(|s| text(s.rotation_overlap)),
    }
}

fn tier(t: &Tier) -> TierSection {
    TierSection {
        limits: t
            .limits
            .iter()
            .map(|l| TierLimitSection {
                name: l.name.clone(),
                limit: l.quota.limit,
                period: text(l.quota.period),
                burst: Some(l.quota.burst),
            })
            .collect(),
    }
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
            lease: Some(match rl.lease {
                Some(_) => LeaseModeName::Auto,
                None => LeaseModeName::Off,
            }),
            lease_window: rl
                .lease
                .map(|l| text(std::time::Duration::from_millis(l.window_ms))),
            limits: rl.limits.iter().map(limit).collect(),
        }),
        cache: r.cache.as_ref().map(|c| CacheSection {
            ttl: text(c.ttl),
            freshness: Some(match c.freshness {
                FreshnessSource::Origin => FreshnessName::Origin,
                FreshnessSource::Override => FreshnessName::Override,
            }),
            max_ttl: c.max_ttl.map(text),
            heuristic: Some(c.heuristic),
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
        cors: r.cors.as_ref().map(cors),
        forward_client_headers: r.forward_client_headers.clone(),
        assert_identity: assertion.then_some(r.assert_identity),
        origin_secret: r.origin_secret.as_ref().map(|o| OriginSecretSection {
            header: o.header.clone(),
            secret: o.secret.clone(),
        }),
    }
}

fn cors(c: &crate::cors::CorsPolicy) -> CorsSection {
    CorsSection {
        allow_origins: if c.any_origin {
            vec!["*".to_owned()]
        } else {
            c.origins.iter().map(ToString::to_string).collect()
        },
        allow_methods: Some(
            c.methods
                .iter()
                .map(|m| MethodText(m.to_string()))
                .collect(),
        ),
        allow_headers: Some(if c.any_header {
            vec!["*".to_owned()]
        } else {
            c.headers.clone()
        }),
        expose_headers: c.expose.clone(),
        allow_credentials: Some(c.credentials),
        max_age: Some(text(c.max_age)),
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
        edge: r.edge_health_url.as_ref().map(|u| RollbackEdgeSection {
            health_url: UrlText(u.to_string()),
        }),
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
        canary_steps: Some(
            s.canary_steps
                .iter()
                .map(|step| match step.approve {
                    false => CanaryStepEntry::Percent(step.percent),
                    true => CanaryStepEntry::Gate(CanaryGateEntry {
                        percent: step.percent,
                        approve: true,
                    }),
                })
                .collect(),
        ),
        bake_time: Some(text(s.bake_time)),
        cooldown: Some(text(s.cooldown)),
        metric_window: Some(text(s.metric_window)),
        metric_api_name: s.metric_api_name.clone(),
        canary_stage_dimension: Some(s.canary_stage_dimension.clone()),
        dry_run: Some(s.dry_run),
    }
}

fn health(h: &HealthSettings) -> HealthSection {
    let j = &h.judge;
    let secs = |s: u64| text(std::time::Duration::from_secs(s));
    HealthSection {
        signal_url: h.signal_url.as_ref().map(|u| UrlText(u.to_string())),
        release_header: Some(h.release_header.clone()),
        canary_release: Some(h.canary_release.clone()),
        window: Some(secs(j.window_s)),
        fast_window: Some(secs(j.fast_window_s)),
        min_requests: Some(j.min_requests),
        min_errors: Some(j.min_errors),
        error_margin: Some(j.error_margin),
        critical_z: Some(j.critical_z),
        latency_factor: Some(j.latency_factor),
        latency_min_requests: Some(j.latency_min_requests),
        stage_error_rate: Some(j.stage_error_rate),
        stage_min_requests: Some(j.stage_min_requests),
        cooldown: Some(text(h.cooldown)),
        stages: h
            .stages
            .iter()
            .map(|s| HealthStageSection {
                api: s.api.clone(),
                stage: s.stage.clone(),
                routes: s.routes.clone(),
            })
            .collect(),
    }
}
