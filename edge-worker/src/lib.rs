//! Tidegate's edge gateway on Cloudflare Workers.
//!
//! A thin adapter: it turns a Workers request into inputs for
//! `tidegate-policy`, performs the decisions the policy returns, and renders
//! every error as RFC 9457 problem+json. This skeleton answers the health
//! check and refuses everything else with 501 until the gateway lands.
#![forbid(unsafe_code)]

use tidegate_policy::problem::{self, Problem};
use worker::{event, Context, Env, Method, Request, Response, Result};

/// Path of the health endpoint; the `__tidegate` prefix keeps it clear of proxied routes.
const HEALTH_PATH: &str = "/__tidegate/health";

/// Header carrying the request id on every response.
const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest inbound request id we echo back; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 64;

/// The Worker's entry point.
#[event(fetch)]
async fn fetch(req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    let request_id = request_id(&req);
    let path = req.path();
    let mut resp = if path == HEALTH_PATH && matches!(req.method(), Method::Get | Method::Head) {
        Response::from_json(&serde_json::json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
        }))?
    } else {
        problem_response(
            &Problem::new(501, "not-implemented", "Not implemented")
                .with_detail("this gateway does not route requests yet")
                .with_request_id(request_id.clone()),
        )?
    };
    resp.headers_mut().set(REQUEST_ID_HEADER, &request_id)?;
    Ok(resp)
}

/// Renders a problem with its status and media type.
fn problem_response(p: &Problem) -> Result<Response> {
    let mut resp = Response::ok(p.to_json())?.with_status(p.status);
    resp.headers_mut()
        .set("content-type", problem::CONTENT_TYPE)?;
    Ok(resp)
}

/// The client's `x-request-id` when it is short and plain (so echoing it
/// cannot inject anything), else Cloudflare's `cf-ray`, else a random id.
fn request_id(req: &Request) -> String {
    let headers = req.headers();
    if let Ok(Some(id)) = headers.get(REQUEST_ID_HEADER) {
        if is_plain_id(&id) {
            return id;
        }
    }
    if let Ok(Some(ray)) = headers.get("cf-ray") {
        if is_plain_id(&ray) {
            return ray;
        }
    }
    random_id()
}

/// 1 to [`MAX_REQUEST_ID_LEN`] characters from `[A-Za-z0-9._-]`.
fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// 128 random bits as hex; "unknown" if the runtime has no randomness.
fn random_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        return "unknown".to_owned();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
