//! Membership routes: `GET /memberships/{reference}` (an old reference of a
//! renewed membership resolves to the current one; `periods` lists the
//! renewal chain), its bookings, and `GET /memberships` to find memberships
//! by email or name.

use axum::Json;
use axum::extract::{Path, State};
use domain::Email;
use domain::checkout::CheckoutError;
use domain::checkout::membership::{Membership, Period};
use platform::Store;
use platform::http::{ApiError, ApiQuery, Caller};
use platform::store::checkout_repo::Booking;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::orders::{chain, resolve};

#[derive(Serialize, ToSchema)]
pub struct MembershipView {
    #[serde(flatten)]
    pub membership: Membership,
    /// Valid now, in the property's zone.
    pub current: bool,
    /// The renewal chain, oldest period first (one period when never renewed).
    pub periods: Vec<Period>,
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
    let (m, _) = resolve(&store, &caller.property.id, &path.1)
        .await?
        .ok_or_else(not_found)?;
    let periods = chain(&store, &caller.property.id, &m.reference)
        .await?
        .iter()
        .map(|(m, _)| Period::from(m))
        .collect();
    let current = m.is_current(caller.property.time_zone, store.clock().now());
    Ok(Json(MembershipView {
        membership: m,
        current,
        periods,
    }))
}

fn not_found() -> CheckoutError {
    CheckoutError::MembershipNotFound("no such membership")
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MembershipQuery {
    /// The member's email (trimmed, case-insensitive).
    pub email: Option<String>,
    /// Part of the member's name (first, last or both, case-insensitive).
    pub q: Option<String>,
    /// Test memberships instead of live ones.
    #[serde(default)]
    pub test_mode: bool,
    /// At most this many (default 50, max 200).
    pub limit: Option<usize>,
    /// `next` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MembershipList {
    pub memberships: Vec<Membership>,
    /// Set when more may follow: pass it as `cursor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Finds memberships by the member's email or name, newest sale first,
/// one world (live, or test with `test_mode=true`) at a time. A page may
/// hold fewer than `limit` and still have a `next`.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/memberships",
    params(("property" = String, Path), MembershipQuery),
    responses((status = 200, body = MembershipList), (status = 400, body = platform::http::error::ErrorBody, description = "invalid_query (neither email nor q, or a cursor this search did not give), invalid_field (email)")),
    security(("partner_key" = [])),
    tag = "checkout"
)]
pub async fn find_memberships(
    State(store): State<Store>,
    caller: Caller,
    ApiQuery(q): ApiQuery<MembershipQuery>,
) -> Result<Json<MembershipList>, ApiError> {
    let email = q.email.as_deref().map(Email::parse).transpose()?;
    let name =
        q.q.as_deref()
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty());
    if email.is_none() && name.is_none() {
        return Err(CheckoutError::InvalidQuery("give email or q (part of a name)").into());
    }
    if name.as_ref().is_some_and(|n| n.chars().count() > 100) {
        return Err(CheckoutError::InvalidQuery("q: at most 100 characters").into());
    }
    let keep = |m: &Membership| {
        let c = &m.contact;
        let email_ok = email.as_ref().is_none_or(|e| {
            c.email
                .as_deref()
                .and_then(|x| Email::parse(x).ok())
                .is_some_and(|x| x == *e)
        });
        let name_ok = name.as_ref().is_none_or(|n| {
            let full = [c.first_name.as_deref(), c.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase();
            full.contains(n.as_str())
        });
        email_ok && name_ok
    };
    let cursor_ok = q.cursor.as_deref().is_none_or(|c| {
        c.len() <= 120
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":.#-".contains(&b))
    });
    if !cursor_ok {
        return Err(CheckoutError::InvalidQuery("cursor: not one this search gave").into());
    }
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let (memberships, next) = store
        .find_memberships(
            &caller.property.id,
            caller.test_mode,
            q.cursor.as_deref(),
            limit,
            &keep,
        )
        .await?;
    Ok(Json(MembershipList { memberships, next }))
}

#[derive(Serialize, ToSchema)]
pub struct BookingList {
    pub reference: String,
    pub bookings: Vec<Booking>,
}

/// Member activity: the bookings made with the membership, over every
/// period of its renewal chain.
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
    let (m, _) = resolve(&store, &caller.property.id, &path.1)
        .await?
        .ok_or_else(not_found)?;
    let mut bookings = Vec::new();
    for (period, _) in chain(&store, &caller.property.id, &m.reference).await? {
        bookings.extend(
            store
                .bookings(&caller.property.id, &period.reference)
                .await?,
        );
    }
    Ok(Json(BookingList {
        reference: m.reference,
        bookings,
    }))
}
