//! Reading a whole body in one platform call.
//!
//! workers-rs 0.8's `bytes()`/`text()`/`json()` on a streamed body fold it
//! chunk by chunk through a JS stream reader: a promise and a wasm↔JS
//! crossing per chunk, then `releaseLock`. That loop was the top self-time
//! in the profiles of the limiter and cache-MISS paths (BENCHMARKS.md). The
//! platform's own `arrayBuffer()`/`text()` read the body in one call; a
//! stream that fails midway rejects them just the same.

use serde::de::DeserializeOwned;
use worker::js_sys::{ArrayBuffer, JsString, Uint8Array};
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
    let raw: web_sys::Response = resp.into();
    let buffer = JsFuture::from(raw.array_buffer()?).await?;
    buffer
        .dyn_into()
        .map_err(|_| Error::RustError("arrayBuffer() gave no ArrayBuffer".into()))
}

/// The body of `resp` as JSON.
pub async fn json<T: DeserializeOwned>(resp: Response) -> Result<T> {
    let raw: web_sys::Response = resp.into();
    let text = JsFuture::from(raw.text()?).await?;
    parse(text)
}

/// The body of `req` as JSON.
pub async fn request_json<T: DeserializeOwned>(req: &Request) -> Result<T> {
    let text = JsFuture::from(req.inner().text()?).await?;
    parse(text)
}

fn parse<T: DeserializeOwned>(text: worker::wasm_bindgen::JsValue) -> Result<T> {
    let text: String = text
        .dyn_into::<JsString>()
        .map_err(|_| Error::RustError("text() gave no string".into()))?
        .into();
    serde_json::from_str(&text).map_err(Error::from)
}
