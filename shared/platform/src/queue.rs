//! The [`SyncQueue`] adapters: SQS in AWS (the webhook route sends, the
//! `crm-sync` function consumes through its SQS event source), and an
//! in-process channel the served hub consumes.

use async_trait::async_trait;
use domain::guest::ports::{QueueError, SyncQueue, SyncRequest};
use tokio::sync::mpsc;

/// An SQS queue. Messages are the request as JSON (`{"property": "…"}`):
/// no personal data.
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    /// From the standard AWS configuration chain (`AWS_ENDPOINT_URL_SQS`
    /// honoured), or an explicit endpoint (moto in tests).
    pub async fn connect(queue_url: &str, endpoint: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(e) = endpoint {
            loader = loader.endpoint_url(e);
        }
        Self {
            client: aws_sdk_sqs::Client::new(&loader.load().await),
            url: queue_url.to_owned(),
        }
    }
}

#[async_trait]
impl SyncQueue for SqsQueue {
    async fn enqueue(&self, r: &SyncRequest) -> Result<(), QueueError> {
        let body = serde_json::to_string(r).map_err(|e| QueueError::Unavailable(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| {
                QueueError::Unavailable(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
            })?;
        Ok(())
    }
}

/// The served hub's queue: a channel; [`InProcessQueue::new`] also gives
/// the receiving end its worker reads.
#[derive(Clone)]
pub struct InProcessQueue(mpsc::UnboundedSender<SyncRequest>);

impl InProcessQueue {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<SyncRequest>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(tx), rx)
    }
}

#[async_trait]
impl SyncQueue for InProcessQueue {
    async fn enqueue(&self, r: &SyncRequest) -> Result<(), QueueError> {
        self.0
            .send(r.clone())
            .map_err(|_| QueueError::Unavailable("the hub is stopping".into()))
    }
}
