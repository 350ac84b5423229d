//! The guests-api Lambda (HTTP API). Wiring only.

use platform::config::Config;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    platform::telemetry::init();
    let config = Config::from_env()?;
    let store = config.open_store().await?;
    lambda_http::run(guests_api::router(store, config.max_body_bytes)).await
}
