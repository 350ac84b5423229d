//! Webhook work from the SQS queue (`CrmSyncQueue` in template.yaml): each
//! message names a property whose webhooks recorded targets; its run
//! refetches them, screens and writes back (trigger `webhook`), under the
//! property's lease and its rate limit like every run.
//!
//! Partial batch failures are reported (`ReportBatchItemFailures`): a
//! message whose property is busy, whose run was stopped, or whose run
//! failed is returned to the queue and tried again after its visibility
//! timeout; after `maxReceiveCount` receipts SQS moves it to the DLQ (an
//! alarm watches it). The schedule stays the safety net: targets live in
//! the store, not in the message.

use std::collections::BTreeMap;

pub use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use domain::guest::ports::{GuestStore, SyncRequest};
use domain::guest::runs::SyncTrigger;
use platform::Store;

use crate::{KeySource, SyncOptions, SyncSummary, sync_connection};

/// Whether a run's result means "try this message again".
pub fn retry_wanted(s: &SyncSummary) -> bool {
    // A screening provider's failure is an outcome (`error`, written back),
    // not a reason to run again.
    s.skipped_busy || s.stopped || s.errors.iter().any(|e| !e.starts_with("screening:"))
}

/// One property's webhook run.
pub async fn run_request(
    store: &Store,
    req: &SyncRequest,
    keys: &dyn KeySource,
    opts: &SyncOptions,
) -> Result<Option<SyncSummary>, String> {
    let Some(conn) = store
        .connection(&req.property)
        .await
        .map_err(|e| format!("store: {e}"))?
    else {
        // Disconnected since: nothing to do.
        tracing::info!(property = %req.property, "queued sync for a property without a connection; dropped");
        return Ok(None);
    };
    let opts = SyncOptions {
        trigger: SyncTrigger::Webhook,
        ..opts.clone()
    };
    Ok(Some(sync_connection(store, &conn, keys, &opts).await))
}

/// The SQS event handler: one run per property in the batch (messages for
/// the same property share it); the messages to try again are reported.
pub async fn handle(
    store: &Store,
    event: SqsEvent,
    keys: &dyn KeySource,
    opts: &SyncOptions,
) -> SqsBatchResponse {
    let mut failures = Vec::new();
    let mut by_property: BTreeMap<String, (SyncRequest, Vec<String>)> = BTreeMap::new();
    for m in event.records {
        let id = m.message_id.unwrap_or_default();
        match m.body.as_deref().map(serde_json::from_str::<SyncRequest>) {
            Some(Ok(req)) => {
                by_property
                    .entry(req.property.to_string())
                    .or_insert_with(|| (req, Vec::new()))
                    .1
                    .push(id);
            }
            _ => {
                // Not ours: left to reach the DLQ, where the alarm shows it.
                tracing::warn!(message_id = %id, "sync queue message is not a sync request");
                failures.push(id);
            }
        }
    }
    for (property, (req, ids)) in by_property {
        let retry = if opts.stop.is_cancelled() {
            true
        } else {
            match run_request(store, &req, keys, opts).await {
                Ok(Some(s)) => {
                    tracing::info!(%property, errors = s.errors.len(), busy = s.skipped_busy, stopped = s.stopped, "webhook sync done");
                    retry_wanted(&s)
                }
                Ok(None) => false,
                Err(e) => {
                    tracing::warn!(%property, error = %e, "webhook sync failed");
                    true
                }
            }
        };
        if retry {
            failures.extend(ids);
        }
    }
    SqsBatchResponse {
        batch_item_failures: failures
            .into_iter()
            .map(|item_identifier| BatchItemFailure { item_identifier })
            .collect(),
    }
}
