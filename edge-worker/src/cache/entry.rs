//! A stored entry: looked up, answered from (with the client's conditional
//! request evaluated), refreshed by a 304, and written.

use std::time::Duration;
use tidegate_policy::cache::{
    client_condition, freshness_from_headers, lifetimes, not_modified_headers, origin_headers,
    prepare_for_serving, prepare_for_storage, refresh_headers, refresh_worth_storing,
    stored_status, CacheRule, CacheStatus, ClientCondition, FreshnessCheck, ResponseHeaders,
    ResponseTiming, STATUS_HEADER,
};

use worker::js_sys::{self, ArrayBuffer};
use worker::wasm_bindgen::JsCast;
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::ext::CacheStorageExt;
use worker::{web_sys, Response};

use crate::error::EdgeError;
use crate::response::{raw_header_list, rebuild, HeaderList};

/// A looked-up entry and what the policy makes of it now.
pub struct Entry {
    /// The stored response as the platform gives it (its body unread):
    /// kept in the platform's type so that an entry the fast path looked
    /// up can be handed to the full path as it is.
    raw: web_sys::Response,
    /// Its status (entries are stored as 200s: `STATUS_HEADER`).
    pub status: u16,
    /// Its stored headers.
    pub headers: HeaderList,
    /// Its freshness and age.
    pub check: FreshnessCheck,
}

impl Entry {
    /// The entry stored under `key` in this data center, if any.
    pub async fn lookup(key: &str, rule: &CacheRule) -> Option<Self> {
        let raw = lookup_raw(key).await?;
        Some(Self::from_raw(raw, rule))
    }

    /// An entry from a stored response (the Cache API's answer, or a
    /// coalesced leader's copy), judged at this moment.
    pub fn from_raw(raw: web_sys::Response, rule: &CacheRule) -> Self {
        let headers = raw_header_list(&raw.headers());
        let check = freshness_from_headers(&headers, rule, crate::flow::now_ms());
        Self {
            status: stored_status(&headers, raw.status()),
            raw,
            headers,
            check,
        }
    }

    /// The stored response, its body unread.
    pub fn into_raw(self) -> web_sys::Response {
        self.raw
    }

    /// The stored headers as the origin sent them.
    pub fn view(&self) -> ResponseHeaders<'_> {
        ResponseHeaders::stored(&self.headers)
    }

    /// The answer for a client: the entry tagged `status` with its `Age`,
    /// or a 304 when the client's `If-None-Match` / `If-Modified-Since` is
    /// met (only for a 2xx entry: RFC 9110 §13.2.1). `head` drops the body.
    pub fn answer(self, status: CacheStatus, request: &HeaderList, head: bool) -> Response {
        let (code, headers, with_body) = self.served(status, request, head);
        rebuild(Response::from(self.raw), code, &headers, with_body)
    }

    /// [`Self::answer`] as the platform's response, with `last` set over
    /// its headers (replacing same-named ones, as `response::finish` does),
    /// built with one call into JS for the headers and one for the
    /// response: the fast path's HIT. `None` if the runtime refuses it.
    pub fn answer_raw(
        self,
        status: CacheStatus,
        request: &HeaderList,
        head: bool,
        last: &[(&str, &str)],
    ) -> Option<web_sys::Response> {
        let (code, mut headers, with_body) = self.served(status, request, head);
        headers.retain(|(name, _)| !last.iter().any(|(l, _)| l.eq_ignore_ascii_case(name)));
        headers.extend(last.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())));
        let body = with_body.then(|| self.raw.body()).flatten();
        crate::response::from_stream(body, code, &headers)
    }

    /// What [`Self::answer`] answers: the status, the headers served and
    /// whether the body goes with them.
    fn served(
        &self,
        status: CacheStatus,
        request: &HeaderList,
        head: bool,
    ) -> (u16, HeaderList, bool) {
        let served = prepare_for_serving(&self.headers, self.check.age, status);
        let met = (200..300).contains(&self.status)
            && client_condition(request, self.view()) == ClientCondition::NotModified;
        match met {
            true => (304, not_modified_headers(&served), false),
            false => (self.status, served, !head),
        }
    }

    /// The entry after the origin's 304 (RFC 9111 §4.3.4): its headers
    /// updated from the 304's, its age and lifetime counted from now, its
    /// body the stored one (read from the cache, never from the origin).
    /// The body is copied into a new entry only when the refresh is worth
    /// writing back (`refresh_worth_storing`); `None` if it cannot be read.
    pub async fn refreshed(
        self,
        not_modified: &HeaderList,
        rule: &CacheRule,
        timing: ResponseTiming,
    ) -> Option<Refreshed> {
        let code = self.status;
        let before = origin_headers(&self.headers);
        let headers = refresh_headers(&before, not_modified);
        let stored = prepare_for_storage(&headers, rule, timing);
        let lifetimes = lifetimes(
            rule,
            ResponseHeaders::origin(&headers),
            timing.received_at_ms,
        );
        if !refresh_worth_storing(&before, &headers, &lifetimes) {
            let entry = Entry {
                raw: self.raw,
                status: code,
                check: freshness_from_headers(&stored.headers, rule, crate::flow::now_ms()),
                headers: stored.headers,
            };
            return Some(Refreshed::ServeOnly(entry));
        }
        let body = crate::body::buffer_raw(&self.raw).await.ok()?;
        Some(Refreshed::Store(RefreshedEntry {
            data: EntryData {
                status: code,
                headers: stored.headers,
                body,
                keep: stored.keep,
            },
            origin: headers,
        }))
    }
}

/// An entry refreshed by a 304.
pub enum Refreshed {
    /// Worth writing back: store it, then serve it.
    Store(RefreshedEntry),
    /// Nothing the next use would see differently: serve it as it is.
    ServeOnly(Entry),
}

/// An entry refreshed by a 304, ready to store and serve.
pub struct RefreshedEntry {
    /// The new entry.
    pub data: EntryData,
    /// Its headers in origin form (for the storability check).
    pub origin: HeaderList,
}

/// An entry as plain data: status, stored headers and the body in a JS
/// buffer. Any request may use it, unlike a response: workerd binds a
/// response's body (an I/O object) to the request that made it, and
/// reading it from another request's handler fails. Coalesced requests get
/// this, and each builds its own response.
#[derive(Clone)]
pub struct EntryData {
    /// The stored status.
    pub status: u16,
    /// The stored headers.
    pub headers: HeaderList,
    /// The body (the response constructor copies it).
    pub body: ArrayBuffer,
    /// How long the Cache API should keep it.
    pub keep: Duration,
}

impl EntryData {
    /// A response of it as the Cache API stores it (a 200 carrying its
    /// status in `STATUS_HEADER`), made in the current request's context.
    pub fn to_raw(&self) -> Result<web_sys::Response, EdgeError> {
        let mut headers = self.headers.clone();
        headers.push((STATUS_HEADER.to_owned(), self.status.to_string()));
        crate::response::from_buffer(&self.body, 200, &headers).ok_or(EdgeError::ResponseRefused {
            status: self.status,
            reason: "the runtime refused a stored entry's response".to_owned(),
        })
    }

    /// The entry it is, to answer from in the current request.
    pub fn to_entry(&self, rule: &CacheRule) -> Result<Entry, EdgeError> {
        Ok(Entry::from_raw(self.to_raw()?, rule))
    }
}

/// The response stored under `key` in this data center, if any; a failed
/// lookup counts as none (the origin is asked).
async fn lookup_raw(key: &str) -> Option<web_sys::Response> {
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let found = JsFuture::from(global.caches().ok()?.default().match_with_str(key))
        .await
        .ok()?;
    found.dyn_into().ok()
}

/// Stores `entry` under `key` in this data center's cache; whether it was
/// stored. The entry goes in as it is, its body a buffer of known length
/// (`Cache::put` would take it through a `worker::Response`, as a stream).
pub async fn store(key: &str, entry: &web_sys::Response) -> bool {
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let Ok(caches) = global.caches() else {
        return false;
    };
    JsFuture::from(caches.default().put_with_str(key, entry))
        .await
        .is_ok()
}
