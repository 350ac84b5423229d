//! The crm-sync Lambda: an EventBridge schedule runs the sync for every
//! connected property. Wiring only.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use platform::config::Config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform::telemetry::init();
    let config = Config::from_env()?;
    let store = config.open_store().await?;
    let opts = crm_sync::SyncOptions::default();
    run(service_fn(|event: LambdaEvent<EventBridgeEvent>| {
        let store = store.clone();
        let (stop, by) = platform::jobs::for_invocation(
            event.context.deadline(),
            &event.context.env_config.function_name,
            &event.context.request_id,
        );
        let opts = crm_sync::SyncOptions {
            stop,
            by,
            ..opts.clone()
        };
        async move {
            tracing::info!(request_id = %event.context.request_id, "scheduled crm sync");
            let summaries = crm_sync::sync_all(&store, None, &crm_sync::EnvKeys, &opts).await?;
            let failed = summaries.iter().filter(|s| !s.errors.is_empty()).count();
            // Partial failures are reported, not raised: a retry of the
            // whole schedule would only repeat the healthy properties.
            Ok::<_, Error>(serde_json::json!({
                "properties": summaries.len(),
                "failed": failed,
                "summaries": summaries,
            }))
        }
    }))
    .await
}
