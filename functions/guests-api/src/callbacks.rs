//! Answers of the HTTP screening provider that come later: `POST
//! /v1/screening-callbacks/{property}/{check_id}`. No partner key: the
//! request is signed with the connection's screening secret (HMAC-SHA256
//! over `<timestamp>.<body>`, the timestamp within 5 minutes), names its
//! check in the body too, and counts once (the check is closed when its
//! answer is applied; a replay gets 409). The outcome is written back to
//! Cloudbeds by a sync run the queue starts at once.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use domain::guest::ports::{GuestStore, SyncRequest};
use domain::guest::screening::apply_callback;
use domain::guest::{GuestError, GuestId, ScreeningStatus};
use domain::{PropertyId, ValidationError};
use http::HeaderMap;
use platform::Store;
use platform::http::ApiError;
use platform::screening::{SIGNATURE_HEADER, TIMESTAMP_HEADER, Verdict, verify};
use serde::Serialize;
use utoipa::ToSchema;

use crate::webhook::SharedQueue;

#[derive(Serialize, ToSchema)]
pub struct CallbackAck {
    /// The outcome was recorded; it is written back to Cloudbeds next.
    pub applied: bool,
}

/// The guest a check id names (`<guest id>.<nonce>`).
fn guest_of(check_id: &str) -> Option<GuestId> {
    if check_id.len() > 128 {
        return None;
    }
    let (g, nonce) = check_id.split_once('.')?;
    if nonce.is_empty() || !nonce.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    GuestId::parse(g).ok()
}

/// Receive a screening provider's answer to a check.
#[utoipa::path(
    post,
    path = "/v1/screening-callbacks/{property}/{check_id}",
    tag = "webhooks",
    params(
        ("property" = String, Path, description = "Property id"),
        ("check_id" = String, Path, description = "The check's id, as sent to the provider"),
        ("X-GuestHub-Timestamp" = String, Header, description = "Unix seconds; within 5 minutes of now"),
        ("X-GuestHub-Signature" = String, Header, description = "`sha256=<hex HMAC-SHA256(secret, \"<timestamp>.<body>\")>`"),
    ),
    request_body(content = Object, description = "`{\"check_id\": \"…\", \"status\": \"passed\"|\"flagged\"|\"error\", \"reason\": \"…\"}`"),
    responses(
        (status = 200, description = "Applied", body = CallbackAck),
        (status = 400, description = "Not a verdict", body = platform::http::error::ErrorBody),
        (status = 401, description = "Bad or old signature", body = platform::http::error::ErrorBody),
        (status = 404, description = "No such check", body = platform::http::error::ErrorBody),
        (status = 409, description = "Answered already or replaced", body = platform::http::error::ErrorBody),
    )
)]
pub async fn screening_callback(
    State(store): State<Store>,
    Path((property, check_id)): Path<(String, String)>,
    queue: Option<Extension<SharedQueue>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<CallbackAck>, ApiError> {
    let body = body?;
    let p = PropertyId::parse(&property).map_err(|_| GuestError::ScreeningCheckNotFound)?;
    let service = store
        .connection(&p)
        .await?
        .and_then(|c| c.screening_service)
        .ok_or(GuestError::ScreeningCheckNotFound)?;
    let secret = platform::secrets::read(
        &service.secret_env,
        service.secret_ssm_parameter.as_deref(),
        "the screening secret",
    )
    .await
    .map_err(|e| {
        tracing::warn!(property = %p, error = %e, "screening secret unreadable");
        GuestError::ScreeningSecretUnavailable
    })?;
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    verify(
        &secret,
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
        store.clock().now(),
    )
    .map_err(|_| GuestError::ScreeningSignatureInvalid)?;
    let shape = || {
        ValidationError::new(
            "status",
            "the body is {\"check_id\", \"status\": passed|flagged|error, \"reason\"?}",
        )
    };
    let verdict: Verdict = serde_json::from_slice(&body).map_err(|_| shape())?;
    if verdict.check_id.as_deref() != Some(check_id.as_str()) {
        return Err(
            ValidationError::new("check_id", "must be the check's id (as in the path)").into(),
        );
    }
    let outcome = verdict
        .outcome()
        .filter(|o| o.status != ScreeningStatus::InProgress)
        .ok_or_else(shape)?;
    let gid = guest_of(&check_id).ok_or(GuestError::ScreeningCheckNotFound)?;
    let mut g = store
        .guest(&p, &gid)
        .await?
        .ok_or(GuestError::ScreeningCheckNotFound)?;
    if !apply_callback(&mut g, &check_id, &outcome, store.clock().now()) {
        return Err(GuestError::ScreeningCheckClosed.into());
    }
    // A concurrent change answers 409; the provider sends its answer again.
    store.save_guest(&g).await?;
    tracing::info!(property = %p, status = outcome.status.as_str(), "screening callback applied");
    if let Some(Extension(q)) = queue
        && let Err(e) = q
            .enqueue(&SyncRequest {
                property: p.clone(),
            })
            .await
    {
        tracing::warn!(property = %p, error = %e, "write-back not queued; the schedule picks it up");
    }
    Ok(Json(CallbackAck { applied: true }))
}
