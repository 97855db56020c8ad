//! CORS at the edge: preflights answered before auth and limits (never
//! counted, never proxied), and the policy's headers added to every
//! response of a route with `cors`, on the way out (so a cached entry,
//! stored without them, serves every origin).

use tidegate_policy::config::Route;
use tidegate_policy::cors::{
    merge_vary, CorsRefusal, PreflightOutcome, PreflightRequest, CORS_RESPONSE_HEADERS, ORIGIN,
    PREFLIGHT_VARY,
};
use tidegate_policy::problem::Problem;
use tidegate_policy::route::{Method, RouteMatch};
use worker::Response;

use crate::config::Gateway;
use crate::flow::Flow;
use crate::response::headers_from;

/// The answer to `headers` if they make a preflight for a route with
/// `cors`; `None` for anything else (an ordinary OPTIONS request). The
/// caller checked the method is OPTIONS.
pub fn preflight(
    gw: &Gateway,
    headers: &[(String, String)],
    path: &str,
    flow: &mut Flow,
) -> Option<Result<Response, Problem>> {
    let req = PreflightRequest::from_headers(headers)?;
    let (route, forced) = preflight_route(gw, req.method, path)?;
    let policy = route.cors.as_ref()?;
    flow.log.route = Some(route.name.clone());
    let outcome = match forced {
        Some(refusal) => PreflightOutcome::Refused(refusal),
        None => policy.preflight(&req),
    };
    Some(match outcome {
        PreflightOutcome::Allowed(list) => {
            flow.log.cors = Some("preflight");
            Ok(Response::builder()
                .with_status(204)
                .with_headers(headers_from(&list))
                .empty())
        }
        PreflightOutcome::Refused(refusal) => {
            flow.log.cors = Some(match refusal {
                CorsRefusal::Origin => "preflight-refused-origin",
                CorsRefusal::Method => "preflight-refused-method",
                CorsRefusal::Header => "preflight-refused-header",
                CorsRefusal::Malformed => "preflight-refused-malformed",
            });
            flow.extra
                .push(("vary".to_owned(), PREFLIGHT_VARY.to_owned()));
            Err(refusal.to_problem())
        }
    })
}

/// The route the actual request would hit, if it has `cors`. Failing
/// that, a route with `cors` that another method would hit on this path:
/// the preflight is then refused (the requested method would not reach a
/// route with `cors`), rather than routed as an ordinary OPTIONS request.
fn preflight_route<'a>(
    gw: &'a Gateway,
    requested: &str,
    path: &str,
) -> Option<(&'a Route, Option<CorsRefusal>)> {
    let with_cors = |method: Method| match gw.table.match_request(method, path) {
        RouteMatch::Matched { index, .. } => gw
            .config
            .routes
            .get(index)
            .filter(|route| route.cors.is_some()),
        _ => None,
    };
    // Method names are case-sensitive in CORS: `patch` is not `PATCH`.
    let actual = requested
        .parse::<Method>()
        .ok()
        .filter(|m| m.as_str() == requested)
        .and_then(with_cors);
    match actual {
        Some(route) => Some((route, None)),
        // Rare (a refusal): any route with `cors` on this path, by any method.
        None => Method::ALL
            .into_iter()
            .find_map(with_cors)
            .map(|route| (route, Some(CorsRefusal::Method))),
    }
}

/// The headers to add to every response of `route` (with `cors`) for a
/// request with `headers`.
pub fn actual(route: &Route, headers: &[(String, String)]) -> Option<Vec<(String, String)>> {
    let policy = route.cors.as_ref()?;
    let origin = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(ORIGIN))
        .map(|(_, v)| v.as_str());
    Some(policy.actual(origin))
}

/// Replaces the response's CORS headers by `list` (from [`actual`]),
/// merging `vary`.
pub fn finish(resp: &mut Response, list: &[(String, String)]) {
    let headers = resp.headers_mut();
    for name in CORS_RESPONSE_HEADERS {
        let _ = headers.delete(name);
    }
    for (name, value) in list {
        if name == "vary" {
            let existing = headers.get("vary").ok().flatten();
            let _ = headers.set("vary", &merge_vary(existing.as_deref(), value));
        } else {
            let _ = headers.set(name, value);
        }
    }
}
