//! The loyalty-export Lambda: an EventBridge schedule runs the export for
//! every property connected to NetCarrots. Wiring only.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use platform::config::Config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform::telemetry::init();
    let config = Config::from_env()?;
    let store = config.open_store().await?;
    let opts = loyalty_export::ExportOptions::default();
    let destinations = loyalty_export::Connected {
        timeout: opts.timeout,
    };
    run(service_fn(|event: LambdaEvent<EventBridgeEvent>| {
        let store = store.clone();
        let (stop, by) = platform::jobs::for_invocation(
            event.context.deadline(),
            &event.context.env_config.function_name,
            &event.context.request_id,
        );
        let opts = loyalty_export::ExportOptions {
            stop,
            by,
            ..opts.clone()
        };
        let destinations = &destinations;
        async move {
            tracing::info!(request_id = %event.context.request_id, "scheduled loyalty export");
            let summaries = loyalty_export::export_all(&store, None, destinations, &opts).await?;
            let failed = summaries.iter().filter(|s| !s.errors.is_empty()).count();
            // Partial failures are reported, not raised: the next schedule
            // re-sends whatever was not confirmed, and a retry of the whole
            // event would only repeat the healthy properties.
            Ok::<_, Error>(serde_json::json!({
                "properties": summaries.len(),
                "failed": failed,
                "summaries": summaries,
            }))
        }
    }))
    .await
}
