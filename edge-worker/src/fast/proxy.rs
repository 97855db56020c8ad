//! The fast path's origin step: a planned plain proxy request, or a cache
//! miss to fill, sent by JS and finished by one synchronous call.

use std::time::Duration;

use tidegate_policy::cache::{CacheStatus, ResponseTiming, CACHE_STATUS_HEADER};
use tidegate_policy::config::Route;
use url::Url;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::js_sys::Promise;
use worker::{web_sys, Context};

use super::{Outbound, Planned};
use crate::cache::Filling;
use crate::error::{describe, EdgeError};
use crate::flow::{now_ms, Flow, Phase};
use crate::proxy;
use crate::response::{self, HeaderList};

/// A planned plain proxy request: the origin request to send, and the
/// request's flow (id, timings, log line) to finish it with.
#[wasm_bindgen]
pub struct FastProxy {
    /// The request id, as the client and the origin see it.
    request_id: String,
    /// Timings and the log line.
    flow: Flow,
    /// When the request arrived (ms since the epoch).
    started: u64,
    /// When the origin request was sent.
    sent: u64,
    /// The method the origin gets.
    method: String,
    /// The upstream URL.
    url: Url,
    /// The origin request's headers, as the policy built them.
    headers: HeaderList,
    /// The route's timeout.
    timeout: Duration,
    /// On a cached route, the miss this request fills.
    fill: Option<Fill>,
}

/// A miss filled on the fast path: the cache's part, and the request's
/// context, in which the answer is stored in the background.
pub(super) struct Fill {
    pub(super) filling: Filling,
    pub(super) ctx: Context,
}

impl FastProxy {
    /// The step for a `planned` request on `route`, sending `outbound`.
    pub(super) fn new(
        planned: Planned,
        route: &Route,
        outbound: Outbound,
        fill: Option<Fill>,
    ) -> Self {
        Self {
            request_id: outbound.request_id.as_str().to_owned(),
            flow: outbound.flow,
            started: planned.started,
            sent: planned.started,
            method: planned.method,
            url: outbound.url,
            headers: outbound.headers,
            timeout: route.timeout,
            fill,
        }
    }
}

#[wasm_bindgen]
impl FastProxy {
    /// Sends the origin request with the client's `body` (`null` for none):
    /// a promise of the `Response`, of `null` when the route's timeout
    /// passed first, or rejected with the fetch's error.
    pub fn send(&mut self, body: JsValue) -> Promise {
        self.sent = now_ms();
        proxy::start(
            &self.method,
            &self.url,
            &self.headers,
            &body,
            self.timeout,
            false,
        )
    }

    /// The response for the origin's `answer` (what [`Self::send`]'s promise
    /// resolved to), with the log line written. Errs only when even the
    /// problem response cannot be built.
    pub fn answer(self, answer: JsValue) -> Result<web_sys::Response, JsValue> {
        let result = if answer.is_null() {
            Err(EdgeError::OriginTimeout(self.timeout))
        } else {
            answer.dyn_into::<web_sys::Response>().map_err(|_| {
                EdgeError::OriginUnreachable(
                    "fetch resolved to something other than a Response".into(),
                )
            })
        };
        self.finish(result)
    }

    /// The response when [`Self::send`]'s promise rejected with `error`
    /// (connection refused, DNS, TLS...): 502, with the log line written.
    pub fn unreachable(self, error: JsValue) -> Result<web_sys::Response, JsValue> {
        let reason = worker::Error::from(error).to_string();
        self.finish(Err(EdgeError::OriginUnreachable(reason)))
    }
}

impl FastProxy {
    /// The client's response for the origin's answer or failure, as the
    /// full path builds it (`cache::bypass`, then `lib.rs`'s `finish` and
    /// `into_raw`), and the log line.
    fn finish(
        mut self,
        result: Result<web_sys::Response, EdgeError>,
    ) -> Result<web_sys::Response, JsValue> {
        let now = now_ms();
        self.flow
            .timings
            .add(Phase::Origin, now.saturating_sub(self.sent));
        if let Some(fill) = self.fill.take() {
            return self.filled(fill, result, now);
        }
        self.flow.log.cache = Some(CacheStatus::Bypass.as_str());
        self.flow.timings.total = Some(now.saturating_sub(self.started));
        let raw = result
            .and_then(|resp| self.pass_on(&resp))
            .or_else(|e| self.problem(e));
        self.flow.log.status = raw.as_ref().map_or(500, web_sys::Response::status);
        self.flow.log.emit(&self.flow.timings);
        raw.map_err(|e| JsValue::from_str(&e.to_string()))
    }

    /// The response for a filled miss, as the full path's `cache::serve`
    /// gives it (stored in the background when the policy allows), finished
    /// and logged as `lib.rs` finishes every response.
    fn filled(
        mut self,
        fill: Fill,
        result: Result<web_sys::Response, EdgeError>,
        now: u64,
    ) -> Result<web_sys::Response, JsValue> {
        let timing = ResponseTiming {
            requested_at_ms: self.sent,
            received_at_ms: now,
        };
        let fresh = result.and_then(proxy::received);
        let resp = fill
            .filling
            .answered(&fill.ctx, fresh, timing, &mut self.flow.log)
            .unwrap_or_else(|e| self.problem_response(e));
        crate::deliver(resp, &self.request_id, self.flow, self.started)
            .map_err(|e| JsValue::from_str(&e.to_string()))
    }

    /// The origin's response with a final status, its hop-by-hop fields
    /// dropped and the edge's headers set; the body streams through.
    fn pass_on(&self, resp: &web_sys::Response) -> Result<web_sys::Response, EdgeError> {
        let status = resp.status();
        if !proxy::passable(status) {
            return Err(EdgeError::OriginStatus(status));
        }
        let hop = proxy::hop_fields(&resp.headers());
        let hop: Vec<&str> = hop.iter().map(String::as_str).collect();
        let timing = self.flow.timings.header();
        // As the full path: the rate-limit headers (`flow.extra`), then the
        // request id and timings (`response::finish`).
        let mut set: Vec<(&str, &str)> = vec![(CACHE_STATUS_HEADER, CacheStatus::Bypass.as_str())];
        set.extend(response::carried(
            &self.flow.extra,
            &self.request_id,
            &timing,
        ));
        let headers = response::edited_copy(&resp.headers(), &hop, &set);
        rebuild::response(resp, &headers.0).map_err(|e| EdgeError::ResponseRefused {
            status,
            reason: describe(&e),
        })
    }

    /// The problem+json response for `e`, finished, noted in the log line.
    fn problem(&mut self, e: EdgeError) -> Result<web_sys::Response, EdgeError> {
        let mut resp = self.problem_response(e);
        crate::finish(&mut resp, &self.request_id, &self.flow);
        response::into_raw(resp)
    }

    /// The problem+json for `e` with the request id, noted in the log line.
    fn problem_response(&mut self, e: EdgeError) -> worker::Response {
        let problem = self.flow.fail(e).with_request_id(self.request_id.as_str());
        response::problem(&problem)
    }
}

/// The client's response from the origin's, in one call into JS.
mod rebuild {
    use worker::wasm_bindgen::{self, prelude::wasm_bindgen, JsValue};
    use worker::web_sys;

    #[wasm_bindgen(inline_js = "
export function tidegateRebuild(resp, headers) {
  return new Response(resp.body, { status: resp.status, headers });
}")]
    extern "C" {
        /// A response with `resp`'s status and body (a stream, passed on, not
        /// read) and `headers`; throws what the runtime refuses.
        #[wasm_bindgen(js_name = tidegateRebuild, catch)]
        pub fn response(
            resp: &web_sys::Response,
            headers: &web_sys::Headers,
        ) -> Result<web_sys::Response, JsValue>;
    }
}
