//! Membership routes: `GET /memberships/{reference}` (an old reference of a
//! renewed membership resolves to the current one) and its bookings.

use axum::Json;
use axum::extract::{Path, State};
use domain::Scope;
use domain::checkout::membership::Membership;
use platform::Store;
use platform::http::{ApiError, Caller};
use platform::store::checkout_repo::Booking;
use serde::Serialize;
use utoipa::ToSchema;

use crate::orders::resolve;

#[derive(Serialize, ToSchema)]
pub struct MembershipView {
    #[serde(flatten)]
    pub membership: Membership,
    /// Valid now, in the property's zone.
    pub current: bool,
}

/// A membership by reference.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/memberships/{reference}",
    params(("property" = String, Path), ("reference" = String, Path)),
    responses((status = 200, body = MembershipView), (status = 404, body = platform::http::error::ErrorBody)),
    security(("partner_key" = [])),
    tag = "checkout"
)]
pub async fn get_membership(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String)>,
) -> Result<Json<MembershipView>, ApiError> {
    caller.require(Scope::Checkout)?;
    let (m, _) = resolve(&store, &caller.property.id, &path.1)
        .await?
        .ok_or_else(not_found)?;
    let current = m.is_current(caller.property.time_zone, store.clock().now());
    Ok(Json(MembershipView {
        membership: m,
        current,
    }))
}

fn not_found() -> ApiError {
    ApiError::not_found("membership_not_found", "no such membership")
}

#[derive(Serialize, ToSchema)]
pub struct BookingList {
    pub reference: String,
    pub bookings: Vec<Booking>,
}

/// Member activity: the bookings made with the membership.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/memberships/{reference}/bookings",
    params(("property" = String, Path), ("reference" = String, Path)),
    responses((status = 200, body = BookingList), (status = 404, body = platform::http::error::ErrorBody)),
    security(("partner_key" = [])),
    tag = "checkout"
)]
pub async fn bookings(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String)>,
) -> Result<Json<BookingList>, ApiError> {
    caller.require(Scope::Checkout)?;
    let (m, _) = resolve(&store, &caller.property.id, &path.1)
        .await?
        .ok_or_else(not_found)?;
    let bookings = store.bookings(&caller.property.id, &m.reference).await?;
    Ok(Json(BookingList {
        reference: m.reference,
        bookings,
    }))
}
