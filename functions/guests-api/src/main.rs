//! The guests-api Lambda (HTTP API). Wiring only.

use platform::config::Config;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    platform::telemetry::init();
    let config = Config::from_env()?;
    let store = config.open_store().await?;
    // Webhooks go to the crm-sync queue (template.yaml), so they are acted
    // on in seconds; without it the schedule picks them up.
    let queue: Option<guests_api::SharedQueue> = match std::env::var("CRM_SYNC_QUEUE_URL") {
        Ok(url) if !url.is_empty() => Some(std::sync::Arc::new(
            platform::queue::SqsQueue::connect(&url, None).await,
        )),
        _ => None,
    };
    lambda_http::run(guests_api::router_with(store, config.max_body_bytes, queue)).await
}
