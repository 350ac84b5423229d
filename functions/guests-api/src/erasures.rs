//! Erasing a person under `/v1/properties/{property}/erasures`: one request
//! rewrites every record of the property that names them; the receipt
//! stays (without personal data).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use domain::Email;
use domain::erasure::ErasureReceipt;
use domain::guest::GuestError;
use http::{HeaderMap, StatusCode};
use platform::Store;
use platform::http::{ApiError, ApiJson, Caller, Idempotent, Outcome};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    /// The person's email (trimmed, case-insensitive).
    pub email: String,
}

/// Erase a person: guest profile and notes, voucher buyer and the guest
/// names in the voucher's ledger, order contacts and ticket members,
/// membership contacts, loyalty records, the club roster entry (and later
/// club files: suppressed). Money, codes, dates and counts stay, with the
/// person replaced by `erased:<short hash>`. Cloudbeds is told by the next
/// sync (`pending`).
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/erasures",
    tag = "guests",
    params(("property" = String, Path, description = "Property id"),
           ("Idempotency-Key" = String, Header, description = "Required; a retry with the same key finishes an interrupted erasure")),
    request_body = ErasureRequest,
    responses(
        (status = 202, description = "The receipt", body = ErasureReceipt),
        (status = 400, description = "Invalid email or no Idempotency-Key", body = platform::http::error::ErrorBody),
        (status = 409, description = "`idempotency_key_in_flight`: a request with this Idempotency-Key is still running; `conflict`: records kept changing (retry)", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn erase_person(
    State(store): State<Store>,
    caller: Caller,
    headers: HeaderMap,
    body: ApiJson<ErasureRequest>,
) -> Result<Response, ApiError> {
    let email = Email::parse(&body.value.email)?;
    let path = format!("/v1/properties/{}/erasures", caller.property.id);
    let run = Idempotent::new(&store, &caller, "erasures", &path, &body.canonical).required();
    run.run(&headers, |_lease| async {
        let e = store
            .erase_person(&caller.property.id, Some(&email), None)
            .await?;
        Ok(Outcome::json(StatusCode::ACCEPTED, &e.receipt()))
    })
    .await
}

/// An erasure's receipt: counts per kind, when, and what is still pending.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/erasures/{id}",
    tag = "guests",
    params(("property" = String, Path, description = "Property id"),
           ("id" = String, Path, description = "Erasure id")),
    responses(
        (status = 200, description = "The receipt", body = ErasureReceipt),
        (status = 404, description = "No such erasure", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn get_erasure(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String)>,
) -> Result<Json<ErasureReceipt>, ApiError> {
    use domain::erasure::ErasureStore;
    let e = store
        .erasure(&caller.property.id, &path.1)
        .await?
        .ok_or(GuestError::ErasureNotFound)?;
    Ok(Json(e.receipt()))
}
