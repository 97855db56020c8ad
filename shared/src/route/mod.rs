//! Routing: which configured route a request goes to, and how it is
//! forwarded to that route's origin.
//!
//! - [`Method`]: the HTTP methods a route can be restricted to;
//! - [`RoutePattern`]: route patterns such as `/users/{id}` and `/static/*`;
//! - [`RouteTable`]: first-match-wins lookup over all routes (a segment trie);
//! - [`upstream_url`]: the origin URL for a matched request;
//! - [`forwarded_headers`]: the header list sent to the origin;
//! - [`apply_client_forwarding`]: client-address, proxy and trace headers
//!   toward the origin;
//! - [`RequestId`]: the `x-request-id` every request carries.

mod forwarding;
mod headers;
mod method;
mod pattern;
mod request_id;
mod table;
mod upstream;

pub use forwarding::{
    apply_client_forwarding, is_client_forwarding_header, ClientConnection,
    CLIENT_FORWARDING_HEADERS, CLIENT_IP_HEADER,
};
pub(crate) use headers::{connection_tokens, is_hop_by_hop};
pub use headers::{
    forwarded_headers, strip_hop_by_hop, strip_trusted_headers, ForwardPolicy, TrustedIdentity,
    HOP_BY_HOP_HEADERS, ISSUER_HEADER, KEY_ID_HEADER, SCOPES_HEADER, SUBJECT_HEADER, TIER_HEADER,
    TRUSTED_HEADERS, TRUSTED_HEADER_PREFIX,
};
pub use method::{Method, MethodError};
pub use pattern::{
    PatternError, RoutePattern, Segment, MAX_PATH_LEN, MAX_PATH_SEGMENTS, MAX_PATTERN_LEN,
    MAX_PATTERN_SEGMENTS,
};
pub use request_id::{RequestId, RequestIdError, MAX_REQUEST_ID_LEN, REQUEST_ID_HEADER};
pub use table::{allow_header_value, RouteMatch, RouteTable};
pub use upstream::{upstream_url, UpstreamError, MAX_UPSTREAM_URL_LEN};
