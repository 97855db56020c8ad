//! Runtime wiring: JSON logs, config at init, the handler under its layers.
#![forbid(unsafe_code)]

use lambda_http::Error;
use tidegate_rollback::{config, App, BudgetLayer, Handler};
use tower::ServiceBuilder;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .with_target(false)
        .init();
    // Invalid config: fail init, listing every problem (Lambda shows it as
    // the init error). No AWS client is built here: see `App::aws`.
    let settings = match config::from_env() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(problems = ?e.problems, "{e}");
            return Err(e.into());
        }
    };
    let app = App::new(settings);
    let service = ServiceBuilder::new()
        .layer(BudgetLayer)
        .service(Handler::new(app));
    lambda_http::run(service).await
}
