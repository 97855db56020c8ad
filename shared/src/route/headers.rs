//! The headers sent to the origin.

use std::collections::BTreeSet;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde::{Deserialize, Serialize};

use super::request_id::{RequestId, REQUEST_ID_HEADER};

/// Hop-by-hop headers always removed (`proxy-connection` is non-standard but
/// still sent by old clients).
pub const HOP_BY_HOP_HEADERS: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
];

/// Prefix of every header the gateway vouches for; clients may not send any.
pub const TRUSTED_HEADER_PREFIX: &str = "x-tidegate-";
/// The authenticated subject (JWT `sub` or the API key's owner).
pub const SUBJECT_HEADER: &str = "x-tidegate-subject";
/// The id of the API key or signing key that authenticated the request.
pub const KEY_ID_HEADER: &str = "x-tidegate-key-id";
/// The granted scopes, space-separated.
pub const SCOPES_HEADER: &str = "x-tidegate-scopes";
/// The caller's throttling tier.
pub const TIER_HEADER: &str = "x-tidegate-tier";
/// The token issuer.
pub const ISSUER_HEADER: &str = "x-tidegate-issuer";
/// Every trusted identity header the gateway sets.
pub const TRUSTED_HEADERS: [&str; 5] = [
    SUBJECT_HEADER,
    KEY_ID_HEADER,
    SCOPES_HEADER,
    TIER_HEADER,
    ISSUER_HEADER,
];

/// The standard credentials header.
pub const AUTHORIZATION_HEADER: &str = "authorization";

/// Characters percent-encoded in identity values: controls and non-ASCII
/// (always, by `utf8_percent_encode`) so values are safe header bytes; space
/// and `,` so lists stay unambiguous; `%` so decoding is lossless.
const IDENTITY_VALUE: &AsciiSet = &CONTROLS.add(b' ').add(b',').add(b'%');

/// Who the gateway authenticated, as told to the origin.
///
/// The edge adapter fills this from the auth module's identity; routing does
/// not depend on auth. Values are percent-encoded (UTF-8) on the way out
/// wherever they hold controls, non-ASCII, space, `,` or `%`, so origins
/// should percent-decode them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TrustedIdentity {
    /// The authenticated subject.
    pub subject: String,
    /// The API key id or token key id, if any.
    pub key_id: Option<String>,
    /// Granted scopes; the header is omitted when empty.
    pub scopes: Vec<String>,
    /// The throttling tier, if any.
    pub tier: Option<String>,
    /// The token issuer, if any.
    pub issuer: Option<String>,
}

impl TrustedIdentity {
    /// The trusted headers for this identity, names lower case.
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut out = vec![(SUBJECT_HEADER.to_owned(), encode(&self.subject))];
        if let Some(key_id) = &self.key_id {
            out.push((KEY_ID_HEADER.to_owned(), encode(key_id)));
        }
        if !self.scopes.is_empty() {
            let scopes: Vec<String> = self.scopes.iter().map(|s| encode(s)).collect();
            out.push((SCOPES_HEADER.to_owned(), scopes.join(" ")));
        }
        if let Some(tier) = &self.tier {
            out.push((TIER_HEADER.to_owned(), encode(tier)));
        }
        if let Some(issuer) = &self.issuer {
            out.push((ISSUER_HEADER.to_owned(), encode(issuer)));
        }
        out
    }
}

fn encode(value: &str) -> String {
    utf8_percent_encode(value, IDENTITY_VALUE).to_string()
}

/// Which client credentials a route passes on to its origin. The default
/// forwards none: an origin behind Tidegate trusts the identity headers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ForwardPolicy {
    /// Forward the client's `Authorization` header.
    #[serde(default)]
    pub forward_authorization: bool,
    /// The header API keys arrive in (e.g. `x-api-key`), if API keys are used.
    #[serde(default)]
    pub api_key_header: Option<String>,
    /// Forward the API key header.
    #[serde(default)]
    pub forward_api_key: bool,
}

/// Whether `name` is one of the fixed hop-by-hop headers.
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
}

/// Whether `name` is in the gateway's reserved `x-tidegate-*` namespace.
/// `_` counts as `-`: CGI-style origins (PHP, WSGI, Rack) and some proxies
/// fold both into one variable name, so `x_tidegate_subject` from a client
/// would read as our `x-tidegate-subject`.
pub fn is_trusted_header(name: &str) -> bool {
    name.len() >= TRUSTED_HEADER_PREFIX.len()
        && name
            .bytes()
            .zip(TRUSTED_HEADER_PREFIX.bytes())
            .all(|(got, want)| {
                let got = if got == b'_' { b'-' } else { got };
                got.eq_ignore_ascii_case(&want)
            })
}

/// The headers without hop-by-hop ones: the fixed list plus every name
/// listed in any `Connection` header.
pub fn strip_hop_by_hop(headers: &[(String, String)]) -> Vec<(String, String)> {
    let listed = connection_tokens(headers);
    headers
        .iter()
        .filter(|(name, _)| !is_hop_by_hop(name) && !listed.contains(&name.to_ascii_lowercase()))
        .cloned()
        .collect()
}

/// The headers without any client-supplied `x-tidegate-*` header.
pub fn strip_trusted_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| !is_trusted_header(name))
        .cloned()
        .collect()
}

/// The header list for the origin.
///
/// It starts from the client's headers and removes:
///
/// - hop-by-hop headers (RFC 9110 §7.6.1): [`HOP_BY_HOP_HEADERS`] and every
///   header named in `Connection`; they describe the client's connection to
///   us, not ours to the origin;
/// - everything in the gateway's `x-tidegate-*` namespace, so a client can
///   never pose as an authenticated identity ([`TRUSTED_HEADERS`] are the
///   ones we set today; the whole prefix is reserved);
/// - `Host`: the runtime sets it from the upstream URL, and a client's Host
///   would misroute a virtual-hosted origin;
/// - the client's credentials (`Authorization`, the API key header) unless
///   the route's [`ForwardPolicy`] says the origin wants them;
/// - any incoming `x-request-id` (replaced by ours) and any header whose
///   name or value is malformed.
///
/// It then appends `x-request-id` and, for an authenticated request, the
/// trusted identity headers. Names are compared case-insensitively; output
/// names are lower case for the headers we add and as received otherwise.
/// No produced value ever contains CR, LF or another control character.
pub fn forwarded_headers(
    incoming: &[(String, String)],
    policy: &ForwardPolicy,
    request_id: &RequestId,
    identity: Option<&TrustedIdentity>,
) -> Vec<(String, String)> {
    let listed = connection_tokens(incoming);
    let api_key = policy
        .api_key_header
        .as_deref()
        .filter(|_| !policy.forward_api_key);
    let mut out: Vec<(String, String)> = incoming
        .iter()
        .filter(|(name, value)| {
            let drop = !is_valid_name(name)
                || !is_valid_value(value)
                || is_hop_by_hop(name)
                || listed.contains(&name.to_ascii_lowercase())
                || is_trusted_header(name)
                || name.eq_ignore_ascii_case("host")
                || name.eq_ignore_ascii_case(REQUEST_ID_HEADER)
                || (!policy.forward_authorization
                    && name.eq_ignore_ascii_case(AUTHORIZATION_HEADER))
                || api_key.is_some_and(|h| name.eq_ignore_ascii_case(h));
            !drop
        })
        .cloned()
        .collect();
    out.push((REQUEST_ID_HEADER.to_owned(), request_id.as_str().to_owned()));
    if let Some(identity) = identity {
        out.extend(identity.headers());
    }
    out
}

/// Lower-cased header names listed in `Connection` headers.
pub fn connection_tokens(headers: &[(String, String)]) -> BTreeSet<String> {
    headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, value)| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty())
        .collect()
}

/// An RFC 9110 `token`.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// No control characters but tab: above all no CR, LF or NUL.
fn is_valid_value(value: &str) -> bool {
    !value.chars().any(|c| c.is_control() && c != '\t')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn names(headers: &[(String, String)]) -> Vec<&str> {
        headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn rid() -> RequestId {
        RequestId::parse("req-1").unwrap()
    }

    #[test]
    fn strips_fixed_and_connection_listed_hop_by_hop() {
        let incoming = h(&[
            ("Connection", "keep-alive, X-Secret-Hop"),
            ("connection", " Other ,"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "websocket"),
            ("Proxy-Authorization", "Basic x"),
            ("x-secret-hop", "1"),
            ("other", "2"),
            ("Accept", "*/*"),
        ]);
        assert_eq!(names(&strip_hop_by_hop(&incoming)), ["Accept"]);
        assert!(is_hop_by_hop("TRAILER"));
        assert!(!is_hop_by_hop("accept"));
    }

    #[test]
    fn strips_client_supplied_identity() {
        let incoming = h(&[
            ("X-Tidegate-Subject", "admin"),
            ("x-tidegate-scopes", "*"),
            ("X-TIDEGATE-future", "x"),
            ("x_tidegate_subject", "admin"),
            ("X-Tidegate_Tier", "gold"),
            ("x-tidegatex", "kept"),
            ("Accept", "*/*"),
        ]);
        assert_eq!(
            names(&strip_trusted_headers(&incoming)),
            ["x-tidegatex", "Accept"]
        );
        for name in TRUSTED_HEADERS {
            assert!(is_trusted_header(name));
        }
        assert!(!is_trusted_header("x-tidegat"));
    }

    #[test]
    fn forwards_clean_headers_with_request_id_and_identity() {
        let incoming = h(&[
            ("Host", "gw.example"),
            ("Accept", "application/json"),
            ("Authorization", "Bearer secret"),
            ("X-Api-Key", "k_live_secret"),
            ("X-Request-Id", "client-chosen"),
            ("x-tidegate-subject", "forged"),
            ("Connection", "close"),
            ("Cookie", "a=b"),
        ]);
        let policy = ForwardPolicy {
            api_key_header: Some("x-api-key".into()),
            ..ForwardPolicy::default()
        };
        let identity = TrustedIdentity {
            subject: "user-1".into(),
            key_id: Some("key-9".into()),
            scopes: vec!["read:items".into(), "write:items".into()],
            tier: Some("pro".into()),
            issuer: Some("https://issuer.example/".into()),
        };
        let out = forwarded_headers(&incoming, &policy, &rid(), Some(&identity));
        assert_eq!(
            out,
            h(&[
                ("Accept", "application/json"),
                ("Cookie", "a=b"),
                ("x-request-id", "req-1"),
                ("x-tidegate-subject", "user-1"),
                ("x-tidegate-key-id", "key-9"),
                ("x-tidegate-scopes", "read:items write:items"),
                ("x-tidegate-tier", "pro"),
                ("x-tidegate-issuer", "https://issuer.example/"),
            ])
        );
        let rendered = format!("{out:?}");
        assert!(!rendered.contains("secret") && !rendered.contains("forged"));
    }

    #[test]
    fn credentials_forwarded_only_when_policy_says() {
        let incoming = h(&[("authorization", "Bearer t"), ("X-API-KEY", "k")]);
        let all = ForwardPolicy {
            forward_authorization: true,
            api_key_header: Some("x-api-key".into()),
            forward_api_key: true,
        };
        let out = forwarded_headers(&incoming, &all, &rid(), None);
        assert_eq!(names(&out), ["authorization", "X-API-KEY", "x-request-id"]);
        let only_auth = ForwardPolicy {
            forward_authorization: true,
            api_key_header: Some("x-api-key".into()),
            forward_api_key: false,
        };
        let out = forwarded_headers(&incoming, &only_auth, &rid(), None);
        assert_eq!(names(&out), ["authorization", "x-request-id"]);
        // Without a configured API key header, nothing else is treated as one.
        let out = forwarded_headers(&incoming, &ForwardPolicy::default(), &rid(), None);
        assert_eq!(names(&out), ["X-API-KEY", "x-request-id"]);
    }

    #[test]
    fn drops_malformed_incoming_headers() {
        let incoming = h(&[
            ("bad name", "v"),
            ("", "v"),
            ("x-inject", "a\r\nx-tidegate-subject: admin"),
            ("x-nul", "a\0b"),
            ("x-tab", "a\tb"),
        ]);
        let out = forwarded_headers(&incoming, &ForwardPolicy::default(), &rid(), None);
        assert_eq!(names(&out), ["x-tab", "x-request-id"]);
    }

    #[test]
    fn identity_values_are_encoded_safely() {
        let identity = TrustedIdentity {
            subject: "evil\r\nx-tidegate-tier: gold".into(),
            key_id: None,
            scopes: vec!["a b".into(), "c,d".into(), "100%".into()],
            tier: None,
            issuer: Some("caf\u{e9}".into()),
        };
        assert_eq!(
            identity.headers(),
            h(&[
                ("x-tidegate-subject", "evil%0D%0Ax-tidegate-tier:%20gold"),
                ("x-tidegate-scopes", "a%20b c%2Cd 100%25"),
                ("x-tidegate-issuer", "caf%C3%A9"),
            ])
        );
        let bare = TrustedIdentity {
            subject: "s".into(),
            ..TrustedIdentity::default()
        };
        assert_eq!(bare.headers(), h(&[("x-tidegate-subject", "s")]));
    }

    fn header_strategy() -> impl Strategy<Value = (String, String)> {
        (
            prop_oneof![
                "[A-Za-z-]{1,12}",
                prop::sample::select(vec![
                    "Connection",
                    "Authorization",
                    "X-Tidegate-Subject",
                    "Host",
                    "X-Request-Id",
                    "TE",
                ])
                .prop_map(str::to_owned),
                "\\PC{0,8}",
            ],
            "\\PC{0,20}|[a-z\r\n:, ]{0,20}",
        )
    }

    proptest! {
        #[test]
        fn output_is_always_safe(
            incoming in prop::collection::vec(header_strategy(), 0..12),
            subject in "\\PC{0,20}|[a-z\r\n:, ]{0,20}",
            scopes in prop::collection::vec("\\PC{0,8}", 0..4),
        ) {
            let identity = TrustedIdentity { subject, scopes, ..TrustedIdentity::default() };
            let out = forwarded_headers(&incoming, &ForwardPolicy::default(), &rid(), Some(&identity));
            for (name, value) in &out {
                prop_assert!(is_valid_name(name), "{name:?}");
                prop_assert!(!value.contains(['\r', '\n', '\0']), "{value:?}");
                prop_assert!(!is_hop_by_hop(name));
                prop_assert!(!name.eq_ignore_ascii_case("authorization"));
            }
            let trusted: Vec<_> = out.iter().filter(|(n, _)| is_trusted_header(n)).collect();
            prop_assert_eq!(trusted.len(), identity.headers().len());
            let ids = out.iter().filter(|(n, _)| n.eq_ignore_ascii_case(REQUEST_ID_HEADER)).count();
            prop_assert_eq!(ids, 1);
        }
    }
}
