//! A client of the control API: the URL, the credentials (API key, JWT,
//! SigV4) and problem+json errors turned into [`CliError`]s.
//!
//! ```
//! use tidegate_cli::parse_target;
//! assert_eq!(parse_target("orders-api/prod").unwrap(), ("orders-api".into(), "prod".into()));
//! assert!(parse_target("prod").is_err());
//! ```

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::{Method, Uri};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tidegate_policy::problem::Problem;

use crate::{region_from_host, request, Answer, CliError, GlobalArgs, Http, Sign, Signer};

/// Credentials for one service.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// An API key and the header it goes in.
    pub api_key: Option<(HeaderName, String)>,
    /// A bearer token (JWT, or the edge's ADMIN_KEY).
    pub bearer: Option<String>,
    /// SigV4.
    pub signer: Option<Signer>,
}

/// A JSON API at a base URL.
#[derive(Clone)]
pub struct ApiClient {
    http: Http,
    base: String,
    credentials: Credentials,
}

impl ApiClient {
    /// A client of the API at `base` (its trailing `/` dropped).
    pub fn new(http: Http, base: &str, credentials: Credentials) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            credentials,
        }
    }

    /// The control API named by the global options, with credentials as
    /// `--sign` says (see [`Sign`]).
    pub async fn control(global: &GlobalArgs) -> Result<Self, CliError> {
        let base = global.url.as_deref().ok_or(CliError::NoUrl)?;
        let uri: Uri = base
            .parse()
            .map_err(|e| CliError::Usage(format!("--url `{base}` is not a URL: {e}")))?;
        let host_region = uri.host().and_then(region_from_host);
        let api_key = match &global.api_key {
            Some(key) => Some((
                HeaderName::try_from(global.api_key_header.as_str())
                    .map_err(|e| CliError::Usage(format!("--api-key-header: {e}")))?,
                key.clone(),
            )),
            None => None,
        };
        let has_app_credential = api_key.is_some() || global.token.is_some();
        let sign = match global.sign {
            Sign::Always => true,
            Sign::Never => false,
            Sign::Auto => host_region.is_some() || !has_app_credential,
        };
        if !sign && !has_app_credential {
            return Err(CliError::NoCredentials);
        }
        if sign && global.token.is_some() {
            return Err(CliError::TokenWithSigv4);
        }
        let signer = if sign {
            let region = global.region.clone().or(host_region);
            match Signer::from_chain(region).await {
                Ok(s) => Some(s),
                Err(_) if !has_app_credential => return Err(CliError::NoCredentials),
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let http = Http::new(Duration::from_secs(global.timeout.max(1)))?;
        Ok(Self::new(
            http,
            base,
            Credentials {
                api_key,
                bearer: global.token.clone(),
                signer,
            },
        ))
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path` (path starts with `/`); the 2xx body.
    pub async fn get(&self, path: &str) -> Result<Bytes, CliError> {
        self.send(Method::GET, path, Bytes::new()).await
    }

    /// `POST path` with `body` as JSON; the 2xx body.
    pub async fn post(&self, path: &str, body: &impl Serialize) -> Result<Bytes, CliError> {
        let body = serde_json::to_vec(body).map_err(|e| CliError::Usage(e.to_string()))?;
        self.send(Method::POST, path, Bytes::from(body)).await
    }

    /// `POST path` with a JSON `body` already encoded; the 2xx body.
    pub async fn post_raw(&self, path: &str, body: Bytes) -> Result<Bytes, CliError> {
        self.send(Method::POST, path, body).await
    }

    async fn send(&self, method: Method, path: &str, body: Bytes) -> Result<Bytes, CliError> {
        let url = format!("{}{path}", self.base);
        let mut req = request(method, &url, body.clone())?;
        let headers = req.headers_mut();
        if let Some((name, key)) = &self.credentials.api_key {
            headers.insert(name.clone(), header_value(key, "--api-key")?);
        }
        if let Some(token) = &self.credentials.bearer {
            headers.insert(
                AUTHORIZATION,
                header_value(&format!("Bearer {token}"), "the token")?,
            );
        }
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        if let Some(signer) = &self.credentials.signer {
            signer.sign(&mut req, &body)?;
        }
        let answer = self.http.send(req).await?;
        if answer.status.is_success() {
            Ok(answer.body)
        } else {
            Err(CliError::Api {
                problem: problem_of(&answer, self.credentials.signer.is_some()),
            })
        }
    }
}

fn header_value(text: &str, what: &str) -> Result<HeaderValue, CliError> {
    HeaderValue::from_str(text)
        .map_err(|_| CliError::Usage(format!("{what} contains characters a header cannot carry")))
}

/// The problem an error answer carries, or one made from its status.
fn problem_of(answer: &Answer, signed: bool) -> Problem {
    if let Ok(p) = serde_json::from_slice::<Problem>(&answer.body) {
        return p;
    }
    let status = answer.status.as_u16();
    let title = answer.status.canonical_reason().unwrap_or("Error");
    let text: String = String::from_utf8_lossy(&answer.body)
        .chars()
        .take(200)
        .collect();
    let detail = match status {
        403 if signed => format!("the Function URL refused the signed request ({text}); an AWS_IAM URL needs lambda:InvokeFunctionUrl and lambda:InvokeFunction for your AWS identity"),
        401 | 403 => format!("{text}; pass an API key or token with the scope tidegate:admin"),
        _ => text,
    };
    Problem::new(status, "http-error", title).with_detail(detail)
}

/// Parses a 2xx body as `T`.
pub fn parse_answer<T: DeserializeOwned>(url: &str, body: &[u8]) -> Result<T, CliError> {
    serde_json::from_slice(body).map_err(|e| CliError::BadResponse {
        url: url.to_owned(),
        error: e.to_string(),
    })
}

/// `API/STAGE` as its two parts.
pub fn parse_target(text: &str) -> Result<(String, String), CliError> {
    match text.split_once('/') {
        Some((api, stage)) if !api.is_empty() && !stage.is_empty() && !stage.contains('/') => {
            Ok((api.to_owned(), stage.to_owned()))
        }
        _ => Err(CliError::Usage(format!(
            "`{text}` is not API/STAGE (e.g. orders-api/prod); `tidegate status` lists the managed stages"
        ))),
    }
}

/// Everything but RFC 3986's unreserved characters: the Lambda matches the
/// raw path, so names made of those go through unchanged.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `/stages/{api}/{stage}` with both parts percent-encoded.
pub fn stage_path(api: &str, stage: &str) -> String {
    format!(
        "/stages/{}/{}",
        utf8_percent_encode(api, SEGMENT),
        utf8_percent_encode(stage, SEGMENT)
    )
}
