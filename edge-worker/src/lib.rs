//! Tidegate's edge gateway on Cloudflare Workers.
//!
//! A thin adapter: it turns a Workers request into inputs for
//! `tidegate-policy`, performs the decisions the policy returns, and renders
//! every error as RFC 9457 problem+json. This skeleton answers the health
//! check and refuses everything else with 501 until the gateway lands.
#![forbid(unsafe_code)]

use tidegate_policy::problem::{self, Problem};
use tidegate_policy::route::{RequestId, REQUEST_ID_HEADER};
use worker::{event, Context, Env, Method, Request, Response, Result};

/// Path of the health endpoint; the `__tidegate` prefix keeps it clear of proxied routes.
const HEALTH_PATH: &str = "/__tidegate/health";

/// The Worker's entry point.
#[event(fetch)]
async fn fetch(req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    let incoming = req.headers().get(REQUEST_ID_HEADER).ok().flatten();
    let request_id = RequestId::reuse_or_generate(incoming.as_deref(), random_bytes());
    let request_id = request_id.as_str();
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
                .with_request_id(request_id),
        )?
    };
    resp.headers_mut().set(REQUEST_ID_HEADER, request_id)?;
    Ok(resp)
}

/// Renders a problem with its status and media type.
fn problem_response(p: &Problem) -> Result<Response> {
    let mut resp = Response::ok(p.to_json())?.with_status(p.status);
    resp.headers_mut()
        .set("content-type", problem::CONTENT_TYPE)?;
    Ok(resp)
}

/// 16 bytes from the runtime's CSPRNG (the policy takes randomness as input).
/// Zeroes if the runtime has none, which still yields a well-formed id.
fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    let _ = getrandom::getrandom(&mut bytes);
    bytes
}
