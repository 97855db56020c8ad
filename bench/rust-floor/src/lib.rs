//! Benchmark only: the thinnest workers-rs Worker. Every request goes to the
//! bench origin (the first `upstream` of the `TIDEGATE_CONFIG` binding it
//! is given in place of Tidegate) with its method and headers, the answer
//! comes back as it is, and one JSON line is logged, as the TypeScript peer
//! does. workerd CPU of this Worker minus the I/O floor's is what crossing
//! the wasm boundary costs a Rust Worker before any gateway work.
use std::cell::OnceCell;

#[cfg(feature = "raw")]
mod raw;
#[cfg(feature = "sync")]
mod sync;
use worker::Env;
#[cfg(not(any(feature = "raw", feature = "sync")))]
use worker::{console_log, event, Context, Fetch, Request, RequestInit, Response, Result};

thread_local! {
    static ORIGIN: OnceCell<String> = const { OnceCell::new() };
}

#[cfg_attr(feature = "sync", allow(dead_code))]
pub(crate) fn origin(env: &Env) -> String {
    let config = || {
        env.var("TIDEGATE_CONFIG")
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    ORIGIN.with(|cell| cell.get_or_init(|| first_upstream(&config())).clone())
}

/// The origin from the config text (cached once per isolate).
#[cfg_attr(not(feature = "sync"), allow(dead_code))]
pub(crate) fn origin_from(config: &str) -> String {
    ORIGIN.with(|cell| cell.get_or_init(|| first_upstream(config)).clone())
}

fn first_upstream(config: &str) -> String {
    config
        .split("upstream = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("http://127.0.0.1:1")
        .to_owned()
}

#[cfg(not(any(feature = "raw", feature = "sync")))]
#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let url = req.url()?;
    let target = match url.query() {
        Some(q) => format!("{}{}?{q}", origin(&env), url.path()),
        None => format!("{}{}", origin(&env), url.path()),
    };
    let mut init = RequestInit::new();
    init.with_method(req.method())
        .with_headers(req.headers().clone());
    let resp = Fetch::Request(Request::new_with_init(&target, &init)?)
        .send()
        .await?;
    console_log!(
        "{{\"path\":\"{}\",\"status\":{}}}",
        url.path(),
        resp.status_code()
    );
    Ok(resp)
}
