//! The crm-sync Lambda: an EventBridge schedule runs the sync for every
//! connected property; the SQS queue the webhook route feeds runs the
//! webhook work of one property within seconds (partial batch failures
//! reported). Wiring only.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use platform::config::Config;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform::telemetry::init();
    let config = Config::from_env()?;
    let store = config.open_store().await?;
    let opts = crm_sync::SyncOptions::default();
    run(service_fn(|event: LambdaEvent<Value>| {
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
            if event.payload.get("Records").is_some() {
                let sqs: SqsEvent = serde_json::from_value(event.payload)?;
                tracing::info!(request_id = %event.context.request_id, messages = sqs.records.len(), "queued crm sync");
                let answer = crm_sync::queue::handle(&store, sqs, &crm_sync::EnvKeys, &opts).await;
                return Ok::<_, Error>(serde_json::to_value(answer)?);
            }
            let _: EventBridgeEvent = serde_json::from_value(event.payload)?;
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
