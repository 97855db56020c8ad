//! Calling an origin (or a JWKS endpoint) with a timeout.
//!
//! The fetch races a timer; when the timer wins, the fetch is aborted and the
//! caller gets `OriginTimeout` (504). A fetch that fails outright
//! (connection refused, DNS, TLS) is `OriginUnreachable` (502). The timeout
//! covers the wait for the response headers; the body then streams through.
//! An answer whose status HTTP does not allow in a final response (outside
//! 200–599) is `OriginStatus` (502): the platform refuses to build a
//! response with it, so it is turned away here, before anything rebuilds it.

use std::time::Duration;

use futures_util::future::{select, Either};
use url::Url;
use worker::js_sys;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{web_sys, AbortController, Delay, Headers, Response};

use crate::error::EdgeError;
use crate::response::headers_from;

/// Sends `method url` with exactly `headers` (already filtered by the
/// policy) and `body`. Redirects are passed back to the client unless
/// `follow_redirects`.
pub async fn send(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    body: Option<JsValue>,
    timeout: Duration,
    follow_redirects: bool,
) -> Result<Response, EdgeError> {
    let controller = AbortController::default();
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_headers(&headers_from(headers).0);
    init.set_redirect(if follow_redirects {
        web_sys::RequestRedirect::Follow
    } else {
        web_sys::RequestRedirect::Manual
    });
    if let Some(body) = &body {
        init.set_body(body);
    }
    init.set_signal(Some(&controller.signal()));
    // `fetch(url, init)` builds the request once; `worker`'s `Fetch` builds
    // a `Request` and then fetch builds another from it and the signal.
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let sending = JsFuture::from(global.fetch_with_str_and_init(url.as_str(), &init));
    let timer = Box::pin(Delay::from(timeout));
    match select(sending, timer).await {
        Either::Left((Ok(resp), _)) => match resp.dyn_into::<web_sys::Response>() {
            Ok(resp) => final_status(Response::from(resp)),
            Err(_) => Err(EdgeError::OriginUnreachable(
                "fetch resolved to something other than a Response".into(),
            )),
        },
        Either::Left((Err(e), _)) => Err(EdgeError::OriginUnreachable(
            worker::Error::from(e).to_string(),
        )),
        Either::Right(_) => {
            controller.abort();
            Err(EdgeError::OriginTimeout(timeout))
        }
    }
}

/// `resp`, when its status can be passed on: a final status, 200–599 (the
/// Fetch standard's range for `new Response`). workerd hands over whatever
/// the origin sent (999, 600, a bare 103); rebuilding such a response would
/// throw, and `worker`'s conversion unwraps that throw into a panic.
fn final_status(resp: Response) -> Result<Response, EdgeError> {
    let status = resp.status_code();
    if (200..=599).contains(&status) {
        Ok(without_connection_fields(resp))
    } else {
        Err(EdgeError::OriginStatus(status))
    }
}

/// `resp` without the fields its `Connection` header names (RFC 9110
/// §7.6.1: they were meant for this hop only). workerd drops the fixed
/// hop-by-hop fields itself; the named ones it passes on. One header lookup
/// when there is no `Connection`, the common case; otherwise the named
/// fields are deleted from a JS copy of the headers, so every other value
/// keeps its exact bytes.
fn without_connection_fields(resp: Response) -> Response {
    let Ok(Some(connection)) = resp.headers().get("connection") else {
        return resp;
    };
    let Ok(copy) = web_sys::Headers::new_with_headers(&resp.headers().0) else {
        return resp;
    };
    let headers = Headers(copy);
    let _ = headers.delete("connection");
    for name in connection
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let _ = headers.delete(name);
    }
    resp.with_headers(headers)
}
