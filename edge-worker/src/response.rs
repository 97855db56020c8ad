//! Building responses: problem+json, rebuilt origin or cache responses with
//! headers we may change, and the headers every response carries.

use tidegate_policy::problem::{self, Problem};
use tidegate_policy::route::REQUEST_ID_HEADER;
use worker::js_sys::{ArrayBuffer, Uint8Array};
use worker::{web_sys, Headers, Response, ResponseBody};

use crate::error::{describe, EdgeError};
use crate::flow::Timings;

/// Header pairs as the policy crate takes and returns them.
pub type HeaderList = Vec<(String, String)>;

/// The headers of a request or response, as pairs, read in one call into
/// JS (iterating them from wasm costs a crossing per step and per string).
pub fn header_list(headers: &Headers) -> HeaderList {
    raw_header_list(&headers.0)
}

/// [`header_list`] of the platform's header set.
pub fn raw_header_list(headers: &web_sys::Headers) -> HeaderList {
    let text = header_io::text(headers);
    let mut lines = text.split('\n');
    let mut list = Vec::new();
    while let (Some(name), Some(value)) = (lines.next(), lines.next()) {
        list.push((name.to_owned(), value.to_owned()));
    }
    list
}

/// A header set from pairs, built in one call into JS; pairs the runtime
/// refuses (malformed names or values) are skipped rather than failing the
/// request.
pub fn headers_from(pairs: &[(String, String)]) -> Headers {
    Headers(header_io::from_text(&lines(pairs)))
}

/// Sets every pair on `headers` (replacing same-named fields), in one call
/// into JS; refused pairs are skipped.
pub fn set_all<N: AsRef<str>, V: AsRef<str>>(headers: &Headers, pairs: &[(N, V)]) {
    if !pairs.is_empty() {
        header_io::set_text(&headers.0, &lines(pairs));
    }
}

/// Pairs as `name\nvalue\n` lines. A line break is refused in any name or
/// value: such a pair is left out here, where it would otherwise shift every
/// pair after it.
fn lines<N: AsRef<str>, V: AsRef<str>>(pairs: &[(N, V)]) -> String {
    let size = pairs
        .iter()
        .map(|(n, v)| n.as_ref().len() + v.as_ref().len() + 2)
        .sum();
    let mut text = String::with_capacity(size);
    for (name, value) in pairs {
        let (name, value) = (name.as_ref(), value.as_ref());
        if name.contains('\n') || value.contains('\n') {
            continue;
        }
        text.push_str(name);
        text.push('\n');
        text.push_str(value);
        text.push('\n');
    }
    text
}

/// Headers in and out of JS as one string, `name\nvalue\n` per field (a
/// line break is never part of a field name or value).
mod header_io {
    use worker::wasm_bindgen::{self, prelude::wasm_bindgen};
    use worker::web_sys;

    #[wasm_bindgen(inline_js = "
export function tidegateHeaderText(headers) {
  let out = '';
  for (const [name, value] of headers) out += name + '\\n' + value + '\\n';
  return out;
}
export function tidegateHeadersFromText(text) {
  const headers = new Headers();
  const parts = text.split('\\n');
  for (let i = 0; i + 1 < parts.length; i += 2) {
    try { headers.append(parts[i], parts[i + 1]); } catch (_) { /* refused: skipped */ }
  }
  return headers;
}
export function tidegateSetHeaders(headers, text) {
  const parts = text.split('\\n');
  for (let i = 0; i + 1 < parts.length; i += 2) {
    try { headers.set(parts[i], parts[i + 1]); } catch (_) { /* refused: skipped */ }
  }
}
export function tidegateCopyHeaders(headers, text) {
  const copy = new Headers(headers);
  tidegateSetHeaders(copy, text);
  return copy;
}")]
    extern "C" {
        /// Every field of `headers`, as `name\nvalue\n` lines.
        #[wasm_bindgen(js_name = tidegateHeaderText)]
        pub fn text(headers: &web_sys::Headers) -> String;

        /// A header set from `name\nvalue\n` lines; refused pairs skipped.
        #[wasm_bindgen(js_name = tidegateHeadersFromText)]
        pub fn from_text(text: &str) -> web_sys::Headers;

        /// Sets `name\nvalue\n` lines on `headers`; refused pairs skipped.
        #[wasm_bindgen(js_name = tidegateSetHeaders)]
        pub fn set_text(headers: &web_sys::Headers, text: &str);

        /// A mutable copy of `headers` with `name\nvalue\n` lines set.
        #[wasm_bindgen(js_name = tidegateCopyHeaders)]
        pub fn copy_with(headers: &web_sys::Headers, text: &str) -> web_sys::Headers;
    }
}

/// A problem+json response.
pub fn problem(p: &Problem) -> Response {
    let headers = Headers::new();
    let _ = headers.set("content-type", problem::CONTENT_TYPE);
    Response::builder()
        .with_status(p.status)
        .with_headers(headers)
        .fixed(p.to_json().into_bytes())
}

/// A 200 response with a text body and `headers`, built in JS from the
/// string (no byte copy through wasm); `None` if the runtime refuses it.
pub fn text_response(body: &str, headers: &[(&str, &str)]) -> Option<Response> {
    let init = web_sys::ResponseInit::new();
    init.set_headers(&header_io::from_text(&lines(headers)));
    web_sys::Response::new_with_opt_str_and_init(Some(body), &init)
        .ok()
        .map(Response::from)
}

/// A JSON response with status 200.
pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Response {
    let headers = Headers::new();
    let _ = headers.set("content-type", "application/json");
    let body = serde_json::to_vec(value).unwrap_or_default();
    Response::builder().with_headers(headers).fixed(body)
}

/// `resp` with a fresh, mutable header set (responses from `fetch` and the
/// Cache API have immutable headers), `status` and `headers`. `keep_body`
/// false drops the body (HEAD).
pub fn rebuild(
    resp: Response,
    status: u16,
    headers: &[(String, String)],
    keep_body: bool,
) -> Response {
    let (_, body) = resp.into_parts();
    let body = if keep_body && !null_body_status(status) {
        body
    } else {
        ResponseBody::Empty
    };
    Response::builder()
        .with_status(status)
        .with_headers(headers_from(headers))
        .body(body)
}

/// `resp` with `name: value` set, on a copy of its headers that JS makes in
/// one call (responses from `fetch` and the Cache API have immutable
/// headers), instead of carrying every header into Rust and back; the body
/// streams through untouched.
pub fn with_header(resp: Response, name: &str, value: &str) -> Response {
    let copy = header_io::copy_with(&resp.headers().0, &lines(&[(name, value)]));
    resp.with_headers(Headers(copy))
}

/// A mutable copy of a response's immutable `headers` without the fields
/// `remove` names, then with `set` (replacing same-named fields), made in
/// one call into JS when nothing is removed (the common case).
pub fn edited_copy(headers: &web_sys::Headers, remove: &[&str], set: &[(&str, &str)]) -> Headers {
    if remove.is_empty() {
        return Headers(header_io::copy_with(headers, &lines(set)));
    }
    let copy = Headers(header_io::copy_with(headers, ""));
    for name in remove {
        let _ = copy.delete(name);
    }
    set_all(&copy, set);
    copy
}

/// A JS response of `status` with exactly `headers` and `body`, which stays
/// a JS buffer (see [`crate::body::buffer`]): kept as the platform's type,
/// since wrapping it in a `worker::Response` would turn the buffer into a
/// stream. `None` if the runtime refuses the status.
pub fn from_buffer(
    body: &ArrayBuffer,
    status: u16,
    headers: &[(String, String)],
) -> Option<web_sys::Response> {
    let body = (!null_body_status(status)).then_some(body);
    web_sys::Response::new_with_opt_buffer_source_and_init(
        body.map(AsRef::as_ref),
        &init(status, headers),
    )
    .ok()
}

/// A JS response of `status` with exactly `headers` (built in one call into
/// JS) and `body`, a stream passed on unread (dropped on a null-body
/// status). `None` if the runtime refuses it.
pub fn from_stream(
    body: Option<web_sys::ReadableStream>,
    status: u16,
    headers: &[(String, String)],
) -> Option<web_sys::Response> {
    let body = body.filter(|_| !null_body_status(status));
    web_sys::Response::new_with_opt_readable_stream_and_init(body.as_ref(), &init(status, headers))
        .ok()
}

/// A response's `status` and exactly `headers` (built in one call into JS).
fn init(status: u16, headers: &[(String, String)]) -> web_sys::ResponseInit {
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    init.set_headers(&headers_from(headers).0);
    init
}

/// Statuses whose responses cannot carry a body (Fetch standard).
fn null_body_status(status: u16) -> bool {
    matches!(status, 101 | 204 | 205 | 304)
}

/// Adds the headers every response carries: request id, `Server-Timing`, and
/// `extra` (rate-limit headers, challenges...), replacing same-named ones.
pub fn finish(
    resp: &mut Response,
    request_id: &str,
    timings: &Timings,
    extra: &[(String, String)],
) {
    let timing = timings.header();
    set_all(resp.headers_mut(), &carried(extra, request_id, &timing));
}

/// What every response carries, in the order it is set (a later field
/// replaces a same-named earlier one): `extra` (rate-limit headers,
/// challenges...), the request id, and `Server-Timing` (`timing`, left out
/// when empty).
pub fn carried<'a>(
    extra: &'a [(String, String)],
    request_id: &'a str,
    timing: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut all: Vec<(&str, &str)> = extra
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    all.push((REQUEST_ID_HEADER, request_id));
    if !timing.is_empty() {
        all.push(("server-timing", timing));
    }
    all
}

/// `resp` as the platform's response, or the runtime's refusal as an error.
/// `worker`'s own conversion (`From<Response> for web_sys::Response`, also
/// behind `Response::cloned` and the `#[event(fetch)]` glue) unwraps the
/// constructor's result: a status outside 200–599 or a body on a null-body
/// status would panic there and poison the isolate. Every response leaves
/// through here instead.
pub fn into_raw(resp: Response) -> Result<web_sys::Response, EdgeError> {
    let status = resp.status_code();
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    init.set_headers(&resp.headers().0);
    let (_, body) = resp.into_parts();
    let built = match body {
        ResponseBody::Body(bytes) => {
            let array = Uint8Array::from(bytes.as_slice());
            web_sys::Response::new_with_opt_buffer_source_and_init(Some(&array), &init)
        }
        ResponseBody::Stream(stream) => {
            web_sys::Response::new_with_opt_readable_stream_and_init(Some(&stream), &init)
        }
        ResponseBody::Empty => web_sys::Response::new_with_opt_str_and_init(None, &init),
    };
    built.map_err(|e| EdgeError::ResponseRefused {
        status,
        reason: describe(&e),
    })
}

/// `resp` and a copy of it, their bodies the two branches of a tee (the
/// client's copy streams on while the other is read). The copy stays in the
/// platform's type: it is only read. Fallible where `Response::cloned`
/// panics.
pub fn tee(resp: Response) -> Result<(Response, web_sys::Response), EdgeError> {
    let raw = into_raw(resp)?;
    let copy = raw.clone().map_err(|e| EdgeError::ResponseRefused {
        status: raw.status(),
        reason: describe(&e),
    })?;
    Ok((Response::from(raw), copy))
}
