//! Cloudbeds webhooks. Cloudbeds does not sign deliveries, retries them and
//! sends them in no particular order, so: the secret token in the path
//! names and authenticates the property; a delivery is recorded once (its
//! body's hash) together with what to refetch; the answer is immediate.
//! A new delivery also puts a [`SyncRequest`] for the property on the sync
//! queue (SQS in AWS, in process under `guesthub serve`), so a sync run
//! fetches the canonical record, screens the guest and writes the outcome
//! back within seconds; without a queue (or when sending fails) the next
//! scheduled run does it, as the recorded target survives either way.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use domain::guest::ports::GuestStore;
use domain::guest::ports::{SyncQueue, SyncRequest};
use domain::guest::{GuestError, RefetchTarget};
use platform::Store;
use platform::http::ApiError;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use utoipa::ToSchema;

/// The queue the webhook route sends [`SyncRequest`]s to (an axum
/// extension; absent, the schedule picks the work up).
pub type SharedQueue = Arc<dyn SyncQueue>;

/// The stored form of a webhook token.
pub fn webhook_token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Serialize, ToSchema)]
pub struct WebhookAck {
    pub accepted: bool,
    /// The same delivery was received before (a Cloudbeds retry).
    pub duplicate: bool,
}

fn field(v: &Value, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| match v.get(*n)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// Receive a Cloudbeds webhook delivery.
#[utoipa::path(
    post,
    path = "/v1/webhooks/cloudbeds/{token}",
    tag = "webhooks",
    params(("token" = String, Path, description = "The property's secret webhook token")),
    request_body(content = Object, description = "Cloudbeds' event envelope: event, timestamp, propertyID/propertyId, guestID, reservationID"),
    responses(
        (status = 200, description = "Accepted (or a duplicate)", body = WebhookAck),
        (status = 400, description = "Not a Cloudbeds event", body = platform::http::error::ErrorBody),
        (status = 404, description = "Unknown token or property", body = platform::http::error::ErrorBody),
    )
)]
pub async fn cloudbeds_webhook(
    State(store): State<Store>,
    Path(token): Path<String>,
    queue: Option<Extension<SharedQueue>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<WebhookAck>, ApiError> {
    // An unreadable or oversized body is a JSON error like on every route.
    let body = body?;
    if token.len() < 16 || token.len() > 128 {
        return Err(GuestError::WebhookNotFound.into());
    }
    let property = store
        .property_by_webhook_token(&webhook_token_hash(&token))
        .await?
        .ok_or(GuestError::WebhookNotFound)?;
    let v: Value = serde_json::from_slice(&body).map_err(|_| GuestError::WebhookNotJson)?;
    let event = field(&v, &["event"]).ok_or(GuestError::WebhookEventUnnamed)?;
    if let Some(pid) = field(&v, &["propertyID", "propertyId", "propertyID_str"]) {
        let conn = store
            .connection(&property)
            .await?
            .ok_or(GuestError::WebhookNotFound)?;
        if pid != conn.cloudbeds_property_id {
            // A token used for another property's events: refuse quietly.
            return Err(GuestError::WebhookNotFound.into());
        }
    }
    let target = if let Some(g) = field(&v, &["guestID", "guestId", "newGuestID"]) {
        Some(RefetchTarget::Guest(g))
    } else {
        field(&v, &["reservationID", "reservationId"]).map(RefetchTarget::Reservation)
    };
    // Cloudbeds retries with the same body: its hash is the delivery's id.
    let delivery = hex::encode(Sha256::digest(&body));
    let fresh = store
        .record_webhook(&property, &delivery, target.as_ref())
        .await?;
    tracing::info!(property = %property, event, duplicate = !fresh, "cloudbeds webhook");
    if fresh
        && target.is_some()
        && let Some(Extension(q)) = queue
        && let Err(e) = q
            .enqueue(&SyncRequest {
                property: property.clone(),
            })
            .await
    {
        // Recorded already: the next scheduled run does the work.
        tracing::warn!(property = %property, error = %e, "webhook not queued; the schedule picks it up");
    }
    Ok(Json(WebhookAck {
        accepted: true,
        duplicate: !fresh,
    }))
}
