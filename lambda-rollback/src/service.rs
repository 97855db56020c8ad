//! The handler as a `tower::Service`, and the time budget as a layer.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use tidegate_policy::problem::Problem;
use tower::{Layer, Service};

use crate::{http, retry, App, EventOutcome};

/// The future every service here returns.
pub type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// Routes an invocation: pass-through events (alarms, schedule) to the
/// rollout, HTTP requests to the control API.
#[derive(Debug, Clone)]
pub struct Handler {
    app: Arc<App>,
}

impl Handler {
    /// A handler over `app`.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

impl Service<Request> for Handler {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let app = self.app.clone();
        Box::pin(async move {
            if matches!(req.request_context_ref(), Some(RequestContext::PassThrough)) {
                let out = match serde_json::from_slice::<serde_json::Value>(req.body().as_ref()) {
                    Ok(event) => app.run_event(&event).await,
                    Err(e) => EventOutcome::Rejected {
                        error: format!("the event is not JSON: {e}"),
                    },
                };
                return Ok(json_response(&out));
            }
            Ok(http::handle(&*app, req, retry::now_ms()).await)
        })
    }
}

/// A JSON response (for pass-through events `lambda_http` returns the body
/// as the invocation's result); a 500 with the reason if `value` cannot be
/// written as JSON.
pub fn json_response(value: &impl serde::Serialize) -> Response<Body> {
    let (status, body) = match serde_json::to_string(value) {
        Ok(text) => (200, text),
        // A JSON string is always written: the reason, escaped as one.
        Err(e) => (
            500,
            format!(
                r#"{{"status":"failed","error":{}}}"#,
                serde_json::Value::from(format!("the result cannot be written as JSON: {e}"))
            ),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// Bounds each invocation by the Lambda's remaining time (from the
/// context's deadline, minus [`retry::DEADLINE_MARGIN`]), so a slow AWS
/// dependency ends in a logged, answered timeout rather than a killed
/// sandbox.
#[derive(Debug, Clone, Copy, Default)]
pub struct BudgetLayer;

impl<S> Layer<S> for BudgetLayer {
    type Service = Budget<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Budget { inner }
    }
}

/// See [`BudgetLayer`].
#[derive(Debug, Clone)]
pub struct Budget<S> {
    inner: S,
}

impl<S> Service<Request> for Budget<S>
where
    S: Service<Request, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let deadline = req.lambda_context_ref().map_or(0, |c| c.deadline);
        let now = retry::now_ms();
        let budget = retry::budget(deadline, now);
        let work_deadline =
            now.saturating_add(u64::try_from(budget.as_millis()).unwrap_or(u64::MAX));
        let fut = retry::with_deadline(work_deadline, self.inner.call(req));
        Box::pin(async move {
            match tokio::time::timeout(budget, fut).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::error!(
                        budget_ms = budget.as_millis() as u64,
                        "invocation out of time"
                    );
                    Ok(http::problem(
                        &Problem::new(504, "timeout", "Out of time")
                            .with_detail("AWS did not answer within the invocation's time budget; the next trigger re-evaluates"),
                        None,
                    ))
                }
            }
        })
    }
}
