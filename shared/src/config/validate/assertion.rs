//! `[assertion]` and `[routes.origin_secret]`: signed identity assertions and
//! static origin secrets. Key material never appears in the file: only the
//! names of the Worker secrets that hold it.

use super::*;
use crate::route::HOP_BY_HOP_HEADERS;

/// Headers an assertion or origin secret may not be sent in, besides the
/// hop-by-hop ones ([`HOP_BY_HOP_HEADERS`]): the runtime, the gateway or HTTP
/// own them.
const RESERVED: [&str; 7] = [
    "host",
    "authorization",
    "x-request-id",
    "content-length",
    "content-type",
    "cookie",
    "traceparent",
];

/// Largest JWKS `max-age`.
const MAX_JWKS_MAX_AGE: Duration = Duration::from_secs(86_400);

pub(super) fn assertion(s: AssertionSection, c: &mut Collector) -> Option<AssertionSettings> {
    let issuer = non_empty(c, "assertion.issuer", s.issuer.trim());
    let header = match &s.header {
        None => Some(AssertionSettings::DEFAULT_HEADER.to_owned()),
        Some(h) => usable_header(c, "assertion.header", h),
    };
    let ttl = opt_duration(
        c,
        "assertion.ttl",
        s.ttl.as_ref(),
        AssertionSettings::DEFAULT_TTL,
        (
            Duration::from_secs(1),
            AssertionSettings::MAX_TTL,
            "between 1s and 60s",
        ),
    );
    let keys_secret = match &s.keys_secret {
        None => Some(AssertionSettings::DEFAULT_KEYS_SECRET.to_owned()),
        Some(name) => binding_name(c, "assertion.keys_secret", name),
    };
    let jwks_max_age = opt_duration(
        c,
        "assertion.jwks_max_age",
        s.jwks_max_age.as_ref(),
        AssertionSettings::DEFAULT_JWKS_MAX_AGE,
        (Duration::ZERO, MAX_JWKS_MAX_AGE, "between 0s and 1d"),
    );
    Some(AssertionSettings {
        issuer: issuer?,
        header: header?,
        ttl: ttl?,
        keys_secret: keys_secret?,
        jwks_max_age: jwks_max_age?,
    })
}

pub(super) fn origin_secret(
    c: &mut Collector,
    path: &str,
    s: &OriginSecretSection,
) -> Option<OriginSecret> {
    let header = usable_header(c, &join(path, "header"), &s.header);
    let secret = binding_name(c, &join(path, "secret"), &s.secret);
    Some(OriginSecret {
        header: header?,
        secret: secret?,
    })
}

/// A header name the gateway may set for the origin.
fn usable_header(c: &mut Collector, path: &str, name: &str) -> Option<String> {
    let name = header_name(c, path, name)?;
    if RESERVED.contains(&name.as_str()) || HOP_BY_HOP_HEADERS.contains(&name.as_str()) {
        c.push(
            path,
            Kind::Conflict(format!(
                "`{name}` is a header HTTP, the runtime or the gateway already uses; \
                 choose another, e.g. \"x-tidegate-assertion\" or \"x-api-key\""
            )),
        );
        return None;
    }
    Some(name)
}

/// A Worker binding name: a letter or `_`, then letters, digits and `_`.
pub(super) fn binding_name(c: &mut Collector, path: &str, name: &str) -> Option<String> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if first_ok && name.len() <= 128 && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Some(name.to_owned())
    } else {
        c.push(
            path,
            Kind::NotOneOf {
                value: name.to_owned(),
                expected: "the name of a Worker secret (letters, digits and _), e.g. \
                           \"ORIGIN_KEY_PROD\"; the value itself never goes in the file"
                    .into(),
            },
        );
        None
    }
}

/// An origin secret sent under the assertion's header would be replaced by
/// it (or the other way round): refuse the clash at the secret's path.
pub(super) fn header_clashes(
    assertion: Option<&AssertionSettings>,
    routes: &[Item<RouteSection>],
    c: &mut Collector,
) {
    let Some(assertion) = assertion else { return };
    for item in routes {
        let Some(secret) = &item.value.origin_secret else {
            continue;
        };
        if secret.header.eq_ignore_ascii_case(&assertion.header) {
            c.push(
                join(&join(&item.path, "origin_secret"), "header"),
                Kind::Conflict(format!(
                    "`{}` is also `assertion.header`; the origin secret needs a header of its own",
                    secret.header
                )),
            );
        }
    }
}
