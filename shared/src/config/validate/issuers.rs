//! `[[issuers]]`: JWT issuers, their algorithms and key sources.

use super::*;

pub(super) fn issuers(items: &[Item<IssuerSection>], c: &mut Collector) -> Option<Vec<Issuer>> {
    unique(
        c,
        "issuer",
        items
            .iter()
            .map(|i| (join(&i.path, "name"), i.value.name.as_str())),
    );
    collect(items.iter().map(|i| issuer(&i.path, &i.value, c)))
}

pub(super) fn issuer(path: &str, s: &IssuerSection, c: &mut Collector) -> Option<Issuer> {
    let name = non_empty(c, &join(path, "name"), &s.name);
    let iss = non_empty(c, &join(path, "issuer"), &s.issuer);
    let audiences = if s.audiences.is_empty() || s.audiences.iter().any(|a| a.trim().is_empty()) {
        c.push(
            join(path, "audiences"),
            Kind::Missing(
                "a list of at least one non-empty audience (the `aud` your tokens carry)",
            ),
        );
        None
    } else {
        Some(s.audiences.clone())
    };
    let algorithms = algorithms(c, path, s);
    let jwks = match (&s.jwks_url, &s.jwks) {
        (Some(url), None) => jwks_url(c, &join(path, "jwks_url"), url).map(JwksSource::Url),
        (None, Some(inline)) => inline_jwks(c, &join(path, "jwks"), inline).map(JwksSource::Inline),
        (Some(_), Some(_)) => {
            c.push(
                path,
                Kind::Conflict("has both `jwks_url` and `jwks`; keep one".into()),
            );
            None
        }
        (None, None) => {
            c.push(
                path,
                Kind::Missing("`jwks_url` (where to fetch the issuer's keys) or an inline `jwks`"),
            );
            None
        }
    };
    if let (Some(algs), Some(JwksSource::Url(_))) = (&algorithms, &jwks) {
        if algs.iter().any(is_hmac) {
            c.push(
                join(path, "algorithms"),
                Kind::Conflict(
                    "HS* algorithms use a shared secret, which a published JWKS must never hold; \
                     use an inline `jwks` with an `oct` key, or an asymmetric algorithm"
                        .into(),
                ),
            );
        }
    }
    let leeway = opt_duration(
        c,
        &join(path, "leeway"),
        s.leeway.as_ref(),
        crate::auth::DEFAULT_LEEWAY,
        (Duration::ZERO, MAX_LEEWAY, "between 0s and 5m"),
    );
    let max_lifetime = s.max_lifetime.as_ref().map(|d| {
        duration_in(
            c,
            &join(path, "max_lifetime"),
            d,
            (
                Duration::from_secs(1),
                duration::MAX_DURATION,
                "between 1s and 366d",
            ),
        )
    });
    let tier_claim = s
        .tier_claim
        .as_ref()
        .map(|claim| non_empty(c, &join(path, "tier_claim"), claim));
    let jwks_cache = jwks_cache(c, &join(path, "jwks_cache"), s.jwks_cache.as_ref());
    Some(Issuer {
        name: name?,
        policy: IssuerPolicy {
            issuer: iss?,
            audiences: audiences?,
            algorithms: algorithms?,
            leeway: leeway?,
            max_lifetime: optional(max_lifetime)?,
            tier_claim: optional(tier_claim)?,
        },
        jwks: jwks?,
        jwks_cache: jwks_cache?,
    })
}

pub(super) fn algorithms(
    c: &mut Collector,
    path: &str,
    s: &IssuerSection,
) -> Option<Vec<Algorithm>> {
    let path = join(path, "algorithms");
    if s.algorithms.is_empty() {
        c.push(
            path,
            Kind::Missing("a list of accepted algorithms, e.g. [\"RS256\"]"),
        );
        return None;
    }
    let parsed: Vec<Option<Algorithm>> = s
        .algorithms
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let item = format!("{path}[{i}]");
            if text.0.eq_ignore_ascii_case("none") {
                c.push(
                    item,
                    Kind::Conflict("`none` is never accepted: unsigned tokens would let anyone in".into()),
                );
                return None;
            }
            match Algorithm::from_str(&text.0) {
                Ok(alg) => Some(alg),
                Err(_) => {
                    c.push(
                        item,
                        Kind::NotOneOf {
                            value: text.0.clone(),
                            expected: "one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA".into(),
                        },
                    );
                    None
                }
            }
        })
        .collect();
    let algs: Vec<Algorithm> = collect(parsed.into_iter())?;
    if algs.iter().any(is_hmac) && !algs.iter().all(is_hmac) {
        c.push(
            path,
            Kind::Conflict(
                "mixes HS* with asymmetric algorithms, which invites key confusion; \
                 use a separate issuer for each"
                    .into(),
            ),
        );
        return None;
    }
    Some(algs)
}

pub(super) fn is_hmac(alg: &Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

pub(super) fn jwks_url(c: &mut Collector, path: &str, text: &UrlText) -> Option<Url> {
    let url = url(c, path, &text.0)?;
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if url.scheme() != "https" && !local {
        c.push(
            path,
            Kind::Url {
                value: text.0.clone(),
                reason: "keys must be fetched over https (http is allowed only for localhost)"
                    .into(),
            },
        );
        return None;
    }
    Some(url)
}

pub(super) fn inline_jwks(
    c: &mut Collector,
    path: &str,
    value: &serde_json::Value,
) -> Option<jsonwebtoken::jwk::JwkSet> {
    match serde_json::from_value::<jsonwebtoken::jwk::JwkSet>(value.clone()) {
        Ok(set) if !set.keys.is_empty() => Some(set),
        Ok(_) => {
            c.push(path, Kind::Missing("at least one key in `keys`"));
            None
        }
        Err(error) => {
            c.push(
                path,
                Kind::Shape(format!(
                    "is not a JWKS document ({{\"keys\": [...]}}): {error}"
                )),
            );
            None
        }
    }
}

pub(super) fn jwks_cache(
    c: &mut Collector,
    path: &str,
    s: Option<&JwksCacheSection>,
) -> Option<JwksCachePolicy> {
    let d = JwksCachePolicy::default();
    let s = s.cloned().unwrap_or_default();
    let range = (Duration::ZERO, duration::MAX_DURATION, "at most 366d");
    let ttl = opt_duration(
        c,
        &join(path, "ttl"),
        s.ttl.as_ref(),
        d.ttl,
        (
            Duration::from_secs(1),
            duration::MAX_DURATION,
            "between 1s and 366d",
        ),
    );
    let max_stale = opt_duration(
        c,
        &join(path, "max_stale"),
        s.max_stale.as_ref(),
        d.max_stale,
        range,
    );
    let cooldown = opt_duration(
        c,
        &join(path, "refetch_cooldown"),
        s.refetch_cooldown.as_ref(),
        d.refetch_cooldown,
        range,
    );
    let negative = opt_duration(
        c,
        &join(path, "negative_ttl"),
        s.negative_ttl.as_ref(),
        d.negative_ttl,
        range,
    );
    Some(JwksCachePolicy {
        ttl: ttl?,
        max_stale: max_stale?,
        refetch_cooldown: cooldown?,
        negative_ttl: negative?,
        ..d
    })
}
