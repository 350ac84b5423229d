//! The `events-dispatcher` Lambda: woken by the platform table's stream
//! when an event is written (its records are only a wake-up: the outbox is
//! read from the table) and by a one-minute schedule that sends the retries
//! due. Publishes every event to the stack's EventBridge bus and delivers
//! webhooks. Wiring only.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use platform::config::Config;
use platform::event_bus::EventBridgeBus;
use platform::events::Dispatcher;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform::telemetry::init();
    let config = Config::from_env()?;
    let store = config.open_store().await?;
    let bus = Arc::new(EventBridgeBus::connect(&platform::config::event_bus()?, None).await);
    run(service_fn(|event: LambdaEvent<Value>| {
        let store = store.clone();
        let bus = bus.clone();
        async move {
            let (stop, by) = platform::jobs::for_invocation(
                event.context.deadline(),
                &event.context.env_config.function_name,
                &event.context.request_id,
            );
            let woken_by = if event.payload.get("Records").is_some() {
                "stream"
            } else {
                "schedule"
            };
            let dispatcher = Dispatcher::new(store, Some(bus), by);
            // A store error fails the invocation: the stream retries it
            // (then its DLQ), the schedule runs again in a minute.
            let report = dispatcher.run_once(&stop).await?;
            tracing::info!(request_id = %event.context.request_id, woken_by, ?report, "events dispatched");
            Ok::<_, Error>(serde_json::to_value(report)?)
        }
    }))
    .await
}
