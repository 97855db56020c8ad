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

use url::Url;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{web_sys, Headers, Response};

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
    let body = body.unwrap_or(JsValue::UNDEFINED);
    let sending = start(method, url, headers, &body, timeout, follow_redirects);
    match JsFuture::from(sending).await {
        Ok(answer) if answer.is_null() => Err(EdgeError::OriginTimeout(timeout)),
        Ok(answer) => match answer.dyn_into::<web_sys::Response>() {
            Ok(resp) => received(resp),
            Err(_) => Err(EdgeError::OriginUnreachable(
                "fetch resolved to something other than a Response".into(),
            )),
        },
        Err(e) => Err(EdgeError::OriginUnreachable(
            worker::Error::from(e).to_string(),
        )),
    }
}

/// Starts `method url` with exactly `headers` and `body` (`undefined` or
/// `null` for none), raced against `timeout`: the promise resolves to the
/// `Response`, to `null` when the timeout passed first (the fetch is then
/// aborted), or rejects with the fetch's error. The synchronous fast path
/// (`crate::fast`) hands this promise to JS to await.
pub fn start(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    body: &JsValue,
    timeout: Duration,
    follow_redirects: bool,
) -> worker::js_sys::Promise {
    let headers = headers_from(headers);
    let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    timed::fetch(
        url.as_str(),
        method,
        &headers.0,
        body,
        follow_redirects,
        timeout_ms,
    )
}

/// The fetch and its timer, raced in JS: one call and one promise per
/// origin request, where racing them from Rust cost a wasm closure for the
/// timer, two for the promise, an `AbortController` and a dozen crossings.
/// The timer aborts the fetch, whose rejection then reads as the timeout:
/// no promise wraps the fetch's own.
mod timed {
    use worker::js_sys::Promise;
    use worker::wasm_bindgen::{self, prelude::wasm_bindgen, JsValue};
    use worker::web_sys;

    #[wasm_bindgen(inline_js = "
export function tidegateTimedFetch(url, method, headers, body, follow, timeoutMs) {
  const controller = new AbortController();
  const init = { method, headers, redirect: follow ? 'follow' : 'manual', signal: controller.signal };
  if (body !== undefined && body !== null) init.body = body;
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; controller.abort(); }, timeoutMs);
  return fetch(url, init).then(
    (resp) => { clearTimeout(timer); return resp; },
    (e) => { clearTimeout(timer); if (timedOut) return null; throw e; });
}")]
    extern "C" {
        /// `fetch(url, …)` with a timer: resolves to the `Response`, to
        /// `null` when `timeout_ms` passed first (the fetch is then
        /// aborted), or rejects with the fetch's error. The timer covers the
        /// wait for the response headers only; the body then streams.
        #[wasm_bindgen(js_name = tidegateTimedFetch)]
        pub fn fetch(
            url: &str,
            method: &str,
            headers: &web_sys::Headers,
            body: &JsValue,
            follow: bool,
            timeout_ms: u32,
        ) -> Promise;
    }
}

/// The origin's response as [`send`] gives it: `raw` when its status can be
/// passed on, without the fields its `Connection` header names.
pub fn received(raw: web_sys::Response) -> Result<Response, EdgeError> {
    final_status(Response::from(raw))
}

/// `resp`, when its status can be passed on: a final status, 200–599 (the
/// Fetch standard's range for `new Response`). workerd hands over whatever
/// the origin sent (999, 600, a bare 103); rebuilding such a response would
/// throw, and `worker`'s conversion unwraps that throw into a panic.
fn final_status(resp: Response) -> Result<Response, EdgeError> {
    let status = resp.status_code();
    if passable(status) {
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
    let hop = hop_fields(&resp.headers().0);
    if hop.is_empty() {
        return resp;
    }
    let Ok(copy) = web_sys::Headers::new_with_headers(&resp.headers().0) else {
        return resp;
    };
    let headers = Headers(copy);
    for name in &hop {
        let _ = headers.delete(name);
    }
    resp.with_headers(headers)
}

/// Whether an origin's `status` can be passed on: a final status, 200–599.
pub fn passable(status: u16) -> bool {
    (200..=599).contains(&status)
}

/// The fields of an origin's `headers` meant for one hop only: `Connection`
/// and the fields it names; none (one lookup) without `Connection`.
pub fn hop_fields(headers: &web_sys::Headers) -> Vec<String> {
    let Ok(Some(connection)) = headers.get("connection") else {
        return Vec::new();
    };
    let named = connection
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    std::iter::once("connection".to_owned())
        .chain(named)
        .collect()
}
