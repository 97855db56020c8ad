//! Routing: which configured route a request goes to, and how it is
//! forwarded to that route's origin.
//!
//! - [`method`]: the HTTP methods a route can be restricted to;
//! - [`pattern`]: route patterns such as `/users/{id}` and `/static/*`;
//! - [`table`]: first-match-wins lookup over all routes (a segment trie);
//! - [`upstream`]: the origin URL for a matched request;
//! - [`headers`]: the header list sent to the origin;
//! - [`forwarding`]: client-address, proxy and trace headers toward the origin;
//! - [`request_id`]: the `x-request-id` every request carries.

pub mod forwarding;
pub mod headers;
pub mod method;
pub mod pattern;
pub mod request_id;
pub mod table;
pub mod upstream;

pub use forwarding::{
    apply_client_forwarding, is_client_forwarding_header, ClientConnection,
    CLIENT_FORWARDING_HEADERS, CLIENT_IP_HEADER,
};
pub(crate) use headers::{connection_tokens, is_hop_by_hop, HOP_BY_HOP_HEADERS};
pub use headers::{forwarded_headers, ForwardPolicy, TrustedIdentity};
pub use method::{Method, MethodError};
pub use pattern::{PatternError, RoutePattern, Segment};
pub use request_id::{RequestId, RequestIdError, REQUEST_ID_HEADER};
pub use table::{allow_header_value, RouteMatch, RouteTable};
pub use upstream::{upstream_url, UpstreamError};
