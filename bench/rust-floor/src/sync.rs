//! The floor with no Rust future: JS does the I/O (bench/rust-floor/sync-shim.mjs)
//! and calls into wasm twice, synchronously, as a sans-I/O gateway would:
//! once for the plan (the origin URL), once for the log line. No
//! wasm-bindgen executor, no promise crosses the boundary.
use wasm_bindgen::prelude::*;

/// The origin URL for the request URL `url`, given the config text.
#[wasm_bindgen]
pub fn floor_plan(url: &str, config: &str) -> String {
    let origin = super::origin_from(config);
    let path_and_query = url
        .find("://")
        .and_then(|i| url[i + 3..].find('/').map(|j| &url[i + 3 + j..]))
        .unwrap_or("/");
    format!("{origin}{path_and_query}")
}

/// The request's log line.
#[wasm_bindgen]
pub fn floor_log_line(url: &str, status: u16) -> String {
    format!("{{\"url\":\"{url}\",\"status\":{status}}}")
}
