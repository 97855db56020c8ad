//! Tidegate's rollback Lambda: rolls API Gateway stages back when their
//! alarms fire.
//!
//! A thin adapter over `tidegate-policy`: the policy decides, this binary
//! reads state and performs the decision. This skeleton acknowledges every
//! event and does nothing yet.
#![forbid(unsafe_code)]

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}

/// Answers any event with a status document naming the request.
async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(json!({
        "status": "ok",
        "service": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "request_id": event.context.request_id,
        "actions": [],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::Context;

    #[tokio::test]
    async fn acknowledges_any_event() {
        let mut ctx = Context::default();
        ctx.request_id = "req-1".to_owned();
        let event = LambdaEvent::new(json!({"detail-type": "anything"}), ctx);
        let out = handle(event).await.unwrap();
        assert_eq!(out["status"], "ok");
        assert_eq!(out["request_id"], "req-1");
        assert_eq!(out["actions"], json!([]));
    }
}
