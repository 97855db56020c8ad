//! Reading a whole body in one platform call.
//!
//! workers-rs 0.8's `bytes()`/`text()`/`json()` on a streamed body fold it
//! chunk by chunk through a JS stream reader: a promise and a wasm↔JS
//! crossing per chunk, then `releaseLock`. That loop was the top self-time
//! in the profiles of the limiter and cache-MISS paths (BENCHMARKS.md). The
//! platform's own `arrayBuffer()`/`text()` read the body in one call; a
//! stream that fails midway rejects them just the same.

use serde::de::DeserializeOwned;
use worker::js_sys::{Array, ArrayBuffer, JsString, Reflect, Uint8Array};
use worker::wasm_bindgen::JsCast;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{web_sys, Error, Request, Response, Result};

/// The whole body of `resp`, copied into wasm memory.
pub async fn bytes(resp: Response) -> Result<Vec<u8>> {
    let whole = buffer(resp).await?;
    Ok(Uint8Array::new(&whole).to_vec())
}

/// The whole body of `resp`, left in JS: for a body that is only passed on
/// (a cache entry), so wasm memory, which never shrinks, does not grow to
/// the largest response ever stored.
pub async fn buffer(resp: Response) -> Result<ArrayBuffer> {
    buffer_raw(&raw(resp)?).await
}

/// [`buffer`] for a response already in the platform's type.
pub async fn buffer_raw(raw: &web_sys::Response) -> Result<ArrayBuffer> {
    let buffer = JsFuture::from(raw.array_buffer()?).await?;
    buffer
        .dyn_into()
        .map_err(|_| Error::RustError("arrayBuffer() gave no ArrayBuffer".into()))
}

/// The whole body of `resp`, left in JS, or `None` once it is longer than
/// `limit` bytes: read chunk by chunk (the chunks stay in JS), and the rest
/// cancelled unread, so a body of unknown length never fills the isolate's
/// memory. For bodies whose length is known, [`buffer`] reads in one call.
pub async fn buffer_at_most(raw: &web_sys::Response, limit: u64) -> Result<Option<ArrayBuffer>> {
    let Some(stream) = raw.body() else {
        return Ok(Some(ArrayBuffer::new(0)));
    };
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let chunks = Array::new();
    let mut total: u64 = 0;
    loop {
        let step = JsFuture::from(reader.read()).await?;
        if Reflect::get(&step, &"done".into())?.is_truthy() {
            break;
        }
        let chunk: Uint8Array = Reflect::get(&step, &"value".into())?
            .dyn_into()
            .map_err(|_| Error::RustError("a body chunk that is not bytes".into()))?;
        total = total.saturating_add(u64::from(chunk.byte_length()));
        if total > limit {
            let _ = JsFuture::from(reader.cancel()).await;
            return Ok(None);
        }
        chunks.push(&chunk);
    }
    let length = u32::try_from(total).map_err(|_| Error::RustError("body over 4 GiB".into()))?;
    let whole = Uint8Array::new_with_length(length);
    let mut offset = 0;
    for chunk in chunks.iter() {
        let chunk: Uint8Array = chunk.unchecked_into();
        whole.set(&chunk, offset);
        offset += chunk.byte_length();
    }
    Ok(Some(whole.buffer()))
}

/// The body of `resp` as text, read in one call.
pub async fn text(resp: Response) -> Result<String> {
    let raw = raw(resp)?;
    string_of(JsFuture::from(raw.text()?).await?)
}

/// The body of `req` as JSON.
pub async fn request_json<T: DeserializeOwned>(req: &Request) -> Result<T> {
    let text = JsFuture::from(req.inner().text()?).await?;
    parse(text)
}

/// `resp` as the platform's response, without `worker`'s panicking
/// conversion (see [`crate::response::into_raw`]).
fn raw(resp: Response) -> Result<web_sys::Response> {
    crate::response::into_raw(resp).map_err(|e| Error::RustError(e.to_string()))
}

/// What `text()` resolved to, as a Rust string.
fn string_of(text: worker::wasm_bindgen::JsValue) -> Result<String> {
    Ok(text
        .dyn_into::<JsString>()
        .map_err(|_| Error::RustError("text() gave no string".into()))?
        .into())
}

fn parse<T: DeserializeOwned>(text: worker::wasm_bindgen::JsValue) -> Result<T> {
    let text = string_of(text)?;
    serde_json::from_str(&text).map_err(Error::from)
}
