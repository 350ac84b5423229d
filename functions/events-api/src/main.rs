//! The `events-api` Lambda: webhook subscriptions. Wiring only.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    platform::telemetry::init();
    let config = platform::config::Config::from_env()?;
    let store = config.open_store().await?;
    lambda_http::run(events_api::router(store, config.max_body_bytes)).await
}
