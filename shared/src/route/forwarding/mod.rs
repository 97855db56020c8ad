//! Client-address and proxy headers toward the origin.

use std::net::IpAddr;

use crate::trace::{TRACEPARENT_HEADER, TRACESTATE_HEADER};

/// Headers removed from the client's request unless the route allows them:
/// client-address claims, proxy claims about the original request, and URL
/// or method overrides that frameworks honour.
pub const CLIENT_FORWARDING_HEADERS: [&str; 21] = [
    "x-forwarded-for",
    "x-real-ip",
    "true-client-ip",
    "forwarded",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    // Other client-address claims some frameworks and WAFs trust.
    "x-client-ip",
    "x-cluster-client-ip",
    "x-originating-ip",
    "x-remote-ip",
    "x-remote-addr",
    "client-ip",
    // Other claims about the original request, and method overrides.
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "x-original-host",
    "x-http-method",
    "x-method-override",
];

/// The header Cloudflare puts the client's IP address in.
pub const CLIENT_IP_HEADER: &str = "cf-connecting-ip";

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const FORWARDED: &str = "forwarded";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";

/// What the gateway knows about the client's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConnection {
    /// The client's address, if known.
    pub ip: Option<IpAddr>,
    /// Whether the client called over `https`.
    pub https: bool,
}

impl ClientConnection {
    /// From the client's headers (`CF-Connecting-IP`, ignored unless it is
    /// one valid IP address) and the scheme of the URL it called.
    pub fn from_headers(headers: &[(String, String)], scheme: &str) -> Self {
        let ip = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(CLIENT_IP_HEADER))
            .and_then(|(_, v)| v.trim().parse().ok());
        Self {
            ip,
            https: scheme.eq_ignore_ascii_case("https"),
        }
    }

    fn proto(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }

    /// The RFC 7239 `Forwarded` element for this client, e.g.
    /// `for=192.0.2.1;proto=https` or `for="[2001:db8::1]";proto=https`.
    pub fn forwarded_element(&self) -> String {
        let node = match self.ip {
            Some(IpAddr::V4(ip)) => ip.to_string(),
            Some(IpAddr::V6(ip)) => format!("\"[{ip}]\""),
            None => "unknown".to_owned(),
        };
        format!("for={node};proto={}", self.proto())
    }
}

/// Whether `name` is `want` (lower case, with `-`), ignoring case and
/// reading `_` as `-`.
fn same_header(name: &str, want: &str) -> bool {
    name.len() == want.len()
        && name.bytes().zip(want.bytes()).all(|(got, want)| {
            let got = if got == b'_' { b'-' } else { got };
            got.eq_ignore_ascii_case(&want)
        })
}

/// Whether `name` is one of [`CLIENT_FORWARDING_HEADERS`] in any spelling.
pub fn is_client_forwarding_header(name: &str) -> bool {
    CLIENT_FORWARDING_HEADERS
        .iter()
        .any(|h| same_header(name, h))
}

/// A client can send any header, so headers that claim to say who the
/// client is or what it asked for ([`CLIENT_FORWARDING_HEADERS`]) are
/// removed from what the origin gets, in every spelling a CGI-style origin
/// would read the same way (case, `_` for `-`), unless the route lists them
/// in `forward_client_headers`. The gateway then sets its own, from what it
/// knows:
///
/// - `X-Forwarded-For: <client ip>` and RFC 7239
///   `Forwarded: for=<client ip>;proto=<scheme>` (IPv6 quoted and
///   bracketed, §6), the client IP taken from `CF-Connecting-IP`, which
///   Cloudflare sets. Without a valid one (e.g. in local development),
///   `X-Forwarded-For` is not sent and `Forwarded` says `for=unknown`. When
///   the route passes the client's own `X-Forwarded-For` or `Forwarded` on,
///   the gateway's entry is appended to it, as a proxy adds itself to a chain;
/// - `X-Forwarded-Proto: <scheme>` of the URL the client called, unless the
///   client's is passed on;
/// - the trace headers ([`crate::trace::TraceContext::headers`]), replacing
///   any the client sent.
///
/// This applies those rules to `headers` (already filtered by
/// [`forwarded_headers`](super::forwarded_headers)): `allowed` lists the
/// [`CLIENT_FORWARDING_HEADERS`] the route passes through (lower case),
/// `trace` the trace headers to send.
pub fn apply_client_forwarding(
    headers: &mut Vec<(String, String)>,
    allowed: &[String],
    client: &ClientConnection,
    trace: &[(String, String)],
) {
    let passes = |want: &str| allowed.iter().any(|a| a == want);
    headers.retain(|(name, _)| {
        let stripped = CLIENT_FORWARDING_HEADERS
            .iter()
            .any(|h| same_header(name, h) && !(passes(h) && name.eq_ignore_ascii_case(h)));
        !stripped && !same_header(name, TRACEPARENT_HEADER) && !same_header(name, TRACESTATE_HEADER)
    });
    let element = client.forwarded_element();
    let ip = client.ip.map(|ip| ip.to_string());
    let mut had_xff = false;
    let mut had_forwarded = false;
    let mut had_proto = false;
    for (name, value) in headers.iter_mut() {
        if name.eq_ignore_ascii_case(X_FORWARDED_FOR) && !had_xff {
            had_xff = true;
            if let Some(ip) = &ip {
                *value = format!("{value}, {ip}");
            }
        } else if name.eq_ignore_ascii_case(FORWARDED) && !had_forwarded {
            had_forwarded = true;
            *value = format!("{value}, {element}");
        } else if name.eq_ignore_ascii_case(X_FORWARDED_PROTO) {
            had_proto = true;
        }
    }
    if let (false, Some(ip)) = (had_xff, ip) {
        headers.push((X_FORWARDED_FOR.to_owned(), ip));
    }
    if !had_forwarded {
        headers.push((FORWARDED.to_owned(), element));
    }
    if !had_proto {
        headers.push((X_FORWARDED_PROTO.to_owned(), client.proto().to_owned()));
    }
    headers.extend(trace.iter().cloned());
}

#[cfg(test)]
mod tests;
