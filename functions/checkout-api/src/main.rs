//! The `checkout-api` Lambda: wiring only.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    platform::telemetry::init();
    let config = platform::config::Config::from_env()?;
    let store = config.open_store().await?;
    let mut router = checkout_api::router(store, config.max_body_bytes);
    // Presigned club file uploads go into the drop bucket, when there is one.
    if let Ok(bucket) = std::env::var("DROP_BUCKET")
        && !bucket.is_empty()
    {
        let s3 = ams_import::s3::client(None).await;
        router = router.layer(axum::Extension(checkout_api::uploads::DropBucket {
            bucket,
            s3,
        }));
    }
    // Held uploads are announced on the club alert topic, as held drops are.
    if let Some(alert) = ams_import::alert::HeldAlert::from_env().await {
        router = router.layer(axum::Extension(alert));
    }
    lambda_http::run(router).await
}
