//! `tidegate dashboard`: the control API's dashboard in a browser. A NONE
//! Function URL (or any URL not signed) opens as it is; an AWS_IAM one
//! through a signing proxy on 127.0.0.1 that forwards each request with a
//! SigV4 signature. The proxy adds no credentials of its own beyond the
//! signature (the dashboard's sign-in still applies, CSRF included), and
//! answers only requests addressed to its own host, so other sites cannot
//! reach it by DNS rebinding.
//!
//! ```
//! use tidegate_cli::rewrite_location;
//! assert_eq!(rewrite_location("https://x.on.aws/ui", "https://x.on.aws", "http://127.0.0.1:5"), "http://127.0.0.1:5/ui");
//! assert_eq!(rewrite_location("/ui", "https://x.on.aws", "http://127.0.0.1:5"), "/ui");
//! ```

use std::convert::Infallible;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::{region_from_host, CliError, GlobalArgs, Http, Sign, Signer};

/// Largest request body forwarded.
const MAX_REQUEST: usize = 1024 * 1024;

/// Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the proxy sets itself.
const DROPPED: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// `location` pointing at `upstream` re-pointed at `local`.
pub fn rewrite_location(location: &str, upstream: &str, local: &str) -> String {
    match location.strip_prefix(upstream) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') => {
            format!("{local}{rest}")
        }
        _ => location.to_owned(),
    }
}

struct Proxy {
    http: Http,
    signer: Signer,
    upstream: String,
    local: String,
    local_host: String,
}

/// Opens the dashboard (see the module docs). With a proxy it serves until
/// the process is stopped.
pub async fn dashboard(global: &GlobalArgs, port: u16, no_open: bool) -> Result<(), CliError> {
    let base = global.url.as_deref().ok_or(CliError::NoUrl)?;
    let upstream = base.trim_end_matches('/').to_owned();
    let uri: Uri = upstream
        .parse()
        .map_err(|e| CliError::Usage(format!("--url `{base}` is not a URL: {e}")))?;
    let host_region = uri.host().and_then(region_from_host);
    let sign = match global.sign {
        Sign::Always => true,
        Sign::Never => false,
        Sign::Auto => host_region.is_some(),
    };
    if !sign {
        let url = format!("{upstream}/");
        println!("{url}");
        open(&url, no_open);
        return Ok(());
    }
    let signer = Signer::from_chain(global.region.clone().or(host_region)).await?;
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let local = format!("http://{addr}");
    let proxy = Arc::new(Proxy {
        http: Http::new(Duration::from_secs(global.timeout.max(1)))?,
        signer,
        upstream,
        local_host: addr.to_string(),
        local: local.clone(),
    });
    println!("{local}/");
    eprintln!(
        "Signing proxy to {} on {local} (SigV4, region as configured); Ctrl-C to stop",
        proxy.upstream
    );
    open(&format!("{local}/"), no_open);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let proxy = Arc::clone(&proxy);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let proxy = Arc::clone(&proxy);
                async move { Ok::<_, Infallible>(proxy.forward(req).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn open(url: &str, no_open: bool) {
    if no_open || !std::io::stdout().is_terminal() {
        return;
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    if std::process::Command::new(opener)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_err()
    {
        eprintln!("open {url} in a browser");
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text.to_owned())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

impl Proxy {
    async fn forward(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let host_ok = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| {
                h == self.local_host || h == self.local_host.replace("127.0.0.1", "localhost")
            });
        if !host_ok {
            return plain(
                StatusCode::MISDIRECTED_REQUEST,
                "this proxy only answers requests for its own address",
            );
        }
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_REQUEST).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body over 1 MiB"),
        };
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let url = format!("{}{path}", self.upstream);
        let mut out = match Request::builder()
            .method(parts.method)
            .uri(&url)
            .body(Full::new(body.clone()))
        {
            Ok(r) => r,
            Err(e) => return plain(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        for (name, value) in &parts.headers {
            if DROPPED.contains(&name.as_str()) || name == header::AUTHORIZATION {
                continue;
            }
            let value = if name == header::ORIGIN || name == header::REFERER {
                let text = value.to_str().unwrap_or_default();
                match HeaderValue::from_str(&rewrite_location(text, &self.local, &self.upstream)) {
                    Ok(v) => v,
                    Err(_) => continue,
                }
            } else {
                value.clone()
            };
            out.headers_mut().append(name.clone(), value);
        }
        if let Err(e) = self.signer.sign(&mut out, &body) {
            return plain(StatusCode::BAD_GATEWAY, &e.to_string());
        }
        let answer = match self.http.send(out).await {
            Ok(a) => a,
            Err(e) => return plain(StatusCode::BAD_GATEWAY, &e.to_string()),
        };
        let mut response = Response::new(Full::new(answer.body));
        *response.status_mut() = answer.status;
        for (name, value) in &answer.headers {
            if DROPPED.contains(&name.as_str()) {
                continue;
            }
            let value = if name == header::LOCATION {
                let text = value.to_str().unwrap_or_default();
                HeaderValue::from_str(&rewrite_location(text, &self.upstream, &self.local))
                    .unwrap_or_else(|_| value.clone())
            } else {
                value.clone()
            };
            response
                .headers_mut()
                .append(HeaderName::clone(name), value);
        }
        response
    }
}
