//! The `octo-api` Lambda: wiring only.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    platform::telemetry::init();
    let config = platform::config::Config::from_env()?;
    let store = config.open_store().await?;
    lambda_http::run(octo_api::router(store, config.max_body_bytes)).await
}
