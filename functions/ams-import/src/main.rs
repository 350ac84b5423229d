//! The `ams-import` Lambda (S3 ObjectCreated): wiring only.

use ams_import::alert::HeldAlert;
use ams_import::s3::{client, handle_event_alerting};
use aws_lambda_events::event::s3::S3Event;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    platform::telemetry::init();
    let config = platform::config::Config::from_env()?;
    let store = config.open_store().await?;
    let s3 = client(None).await;
    let alert = HeldAlert::from_env().await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<S3Event>| {
        let (store, s3, alert) = (store.clone(), s3.clone(), alert.clone());
        async move {
            handle_event_alerting(&store, &s3, alert.as_ref(), event.payload)
                .await
                .map(|_| ())
                .map_err(|e| Diagnostic {
                    error_type: "RetryableImportError".into(),
                    error_message: e.to_string(),
                })
        }
    }))
    .await
}
