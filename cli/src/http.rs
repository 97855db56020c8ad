//! One HTTP exchange over the stack the rollback Lambda already links
//! (hyper-util's client over hyper-rustls, system roots), and the SigV4
//! signer for AWS_IAM Function URLs.
//!
//! ```
//! use tidegate_cli::region_from_host;
//! assert_eq!(region_from_host("abc.lambda-url.eu-west-1.on.aws").as_deref(), Some("eu-west-1"));
//! assert_eq!(region_from_host("127.0.0.1"), None);
//! ```

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tidegate_policy::problem::error_chain;

use crate::CliError;

/// Largest answer read.
pub const MAX_ANSWER: usize = 8 * 1024 * 1024;

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An HTTP client with a per-request time limit.
#[derive(Clone)]
pub struct Http {
    client: HttpsClient,
    timeout: Duration,
}

/// A whole answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Http {
    /// A client whose requests may take `timeout` each.
    pub fn new(timeout: Duration) -> Result<Self, CliError> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| CliError::Usage(format!("no TLS root certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
            timeout,
        })
    }

    /// Sends `request` and reads the whole answer.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<Answer, CliError> {
        let url = request.uri().to_string();
        let unreachable = |error: String| CliError::Unreachable {
            url: url.clone(),
            error,
        };
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| unreachable(error_chain(&e)))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| unreachable(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| unreachable(format!("no answer within {:?}", self.timeout)))?
    }
}

/// The region of a Lambda Function URL host (`<id>.lambda-url.<region>.on.aws`).
pub fn region_from_host(host: &str) -> Option<String> {
    let rest = host.strip_suffix(".on.aws")?;
    let (_, region) = rest.split_once(".lambda-url.")?;
    (!region.is_empty() && !region.contains('.')).then(|| region.to_owned())
}

/// Signs requests with SigV4 for service `lambda`.
#[derive(Debug, Clone)]
pub struct Signer {
    identity: Identity,
    region: String,
}

impl Signer {
    /// Credentials and region from the standard AWS chain; `region` (from
    /// --region or the URL host) wins over the chain's.
    pub async fn from_chain(region: Option<String>) -> Result<Self, CliError> {
        let config = aws_config::load_from_env().await;
        let provider = config
            .credentials_provider()
            .ok_or_else(|| CliError::Sigv4("no AWS credential provider".into()))?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| CliError::Sigv4(error_chain(&e)))?;
        let region = region
            .or_else(|| config.region().map(ToString::to_string))
            .ok_or_else(|| {
                CliError::Sigv4("no AWS region: pass --region or set AWS_REGION".into())
            })?;
        Ok(Self {
            identity: credentials.into(),
            region,
        })
    }

    /// A signer with fixed credentials (tests).
    pub fn with_credentials(access_key: &str, secret: &str, region: &str) -> Self {
        let credentials =
            aws_credential_types::Credentials::new(access_key, secret, None, None, "tidegate");
        Self {
            identity: credentials.into(),
            region: region.to_owned(),
        }
    }

    /// Adds the SigV4 headers (`authorization`, `x-amz-date`, maybe
    /// `x-amz-security-token`) to `request`, whose body is `body`.
    pub fn sign(&self, request: &mut Request<Full<Bytes>>, body: &[u8]) -> Result<(), CliError> {
        let failed = |e: &dyn std::error::Error| CliError::Sigv4(error_chain(e));
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("lambda")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| failed(&e))?
            .into();
        let uri = request.uri().to_string();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
            .collect();
        let signable = SignableRequest::new(
            request.method().as_str(),
            &uri,
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| failed(&e))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| failed(&e))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

/// A request to `url` with `body`.
pub fn request(method: Method, url: &str, body: Bytes) -> Result<Request<Full<Bytes>>, CliError> {
    let mut builder = Request::builder().method(method).uri(url);
    if !body.is_empty() {
        builder = builder.header(http::header::CONTENT_TYPE, "application/json");
    }
    builder
        .body(Full::new(body))
        .map_err(|e| CliError::Usage(format!("not a usable URL `{url}`: {e}")))
}
