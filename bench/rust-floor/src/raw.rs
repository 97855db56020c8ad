//! The floor on wasm-bindgen and web-sys alone: the incoming request is
//! passed to the origin's URL as the init of a new one (method, headers and
//! body stay in JS), and the origin's response goes back untouched.
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
pub async fn fetch(
    req: web_sys::Request,
    env: JsValue,
    _ctx: JsValue,
) -> Result<web_sys::Response, JsValue> {
    let env: worker::Env = env.unchecked_into();
    let url = req.url();
    let path_and_query = url
        .find("://")
        .and_then(|i| url[i + 3..].find('/').map(|j| &url[i + 3 + j..]))
        .unwrap_or("/");
    let target = format!("{}{}", super::origin(&env), path_and_query);
    let outbound = web_sys::Request::new_with_str_and_init(&target, req.unchecked_ref())?;
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let resp: web_sys::Response = JsFuture::from(global.fetch_with_request(&outbound))
        .await?
        .unchecked_into();
    web_sys::console::log_1(&JsValue::from_str(&format!(
        "{{\"path\":\"{}\",\"status\":{}}}",
        path_and_query,
        resp.status()
    )));
    Ok(resp)
}
