//! The front desk's day: `GET …/guests/arrivals?date=` and
//! `…/guests/departures?date=`, read from Cloudbeds (`getReservations` by
//! check-in or check-out date with the guests' details), each guest with
//! the screening status GuestHub holds for them.

use axum::Json;
use axum::extract::State;
use chrono::NaiveDate;
use domain::ValidationError;
use domain::guest::ports::{CrmClient, DateKind, GuestStore, ReservationDates};
use domain::guest::{GuestError, GuestId, ScreeningStatus, StayStatus};
use platform::Store;
use platform::http::{ApiError, ApiQuery, Caller};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Reservations per `getReservations` page, and the most pages read for
/// one day (10,000 reservations).
const PAGE_SIZE: u32 = 100;
const MAX_PAGES: u32 = 100;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DayQuery {
    /// The property's date, `YYYY-MM-DD`.
    pub date: Option<String>,
    /// Only reservations in this Cloudbeds status (`not_confirmed`,
    /// `confirmed`, `canceled`, `checked_in`, `checked_out`, `no_show`).
    /// Without it: every reservation but cancelled and no-show ones.
    pub status: Option<String>,
}

/// A guest of an arriving or departing reservation.
#[derive(Serialize, ToSchema)]
pub struct DayGuest {
    /// Cloudbeds' guestID.
    pub cloudbeds_guest_id: String,
    /// GuestHub's guest id, when the guest is known here.
    pub guest_id: Option<GuestId>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    /// The reservation's main guest.
    pub main: bool,
    /// GuestHub's screening status of the guest; null when not screened
    /// (or not known here).
    pub screening: Option<ScreeningStatus>,
}

#[derive(Serialize, ToSchema)]
pub struct DayReservation {
    /// Cloudbeds' reservationID.
    pub reservation_id: String,
    pub status: StayStatus,
    #[schema(value_type = String, format = Date)]
    pub arrival: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub departure: NaiveDate,
    pub guests: Vec<DayGuest>,
}

#[derive(Serialize, ToSchema)]
pub struct DayList {
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    pub reservations: Vec<DayReservation>,
}

/// Reservations arriving on a date (Cloudbeds `checkInFrom`/`checkInTo`),
/// each guest with GuestHub's screening status.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/guests/arrivals",
    tag = "guests",
    params(("property" = String, Path, description = "Property id"), DayQuery),
    responses(
        (status = 200, description = "The day's arriving reservations and their guests", body = DayList),
        (status = 400, description = "No or invalid date or status", body = platform::http::error::ErrorBody),
        (status = 422, description = "`crm_not_connected`: the property has no Cloudbeds connection", body = platform::http::error::ErrorBody),
        (status = 503, description = "Cloudbeds did not answer", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn arrivals(
    State(store): State<Store>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DayQuery>,
) -> Result<Json<DayList>, ApiError> {
    day(&store, &caller, q, DateKind::CheckIn).await
}

/// Reservations departing on a date (Cloudbeds `checkOutFrom`/`checkOutTo`),
/// each guest with GuestHub's screening status.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/guests/departures",
    tag = "guests",
    params(("property" = String, Path, description = "Property id"), DayQuery),
    responses(
        (status = 200, description = "The day's departing reservations and their guests", body = DayList),
        (status = 400, description = "No or invalid date or status", body = platform::http::error::ErrorBody),
        (status = 422, description = "`crm_not_connected`: the property has no Cloudbeds connection", body = platform::http::error::ErrorBody),
        (status = 503, description = "Cloudbeds did not answer", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn departures(
    State(store): State<Store>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DayQuery>,
) -> Result<Json<DayList>, ApiError> {
    day(&store, &caller, q, DateKind::CheckOut).await
}

fn parse_day(q: &DayQuery) -> Result<(NaiveDate, Option<StayStatus>), ValidationError> {
    let raw = q
        .date
        .as_deref()
        .ok_or_else(|| ValidationError::new("date", "is required (YYYY-MM-DD)"))?;
    let date = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| ValidationError::new("date", "is not a date (YYYY-MM-DD)"))?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            StayStatus::parse(s.trim())
                .ok_or_else(|| ValidationError::new("status", "is not a reservation status"))
        })
        .transpose()?;
    Ok((date, status))
}

fn status_name(s: StayStatus) -> &'static str {
    match s {
        StayStatus::NotConfirmed => "not_confirmed",
        StayStatus::Confirmed => "confirmed",
        StayStatus::Canceled => "canceled",
        StayStatus::CheckedIn => "checked_in",
        StayStatus::CheckedOut => "checked_out",
        StayStatus::NoShow => "no_show",
    }
}

async fn day(
    store: &Store,
    caller: &Caller,
    q: DayQuery,
    by: DateKind,
) -> Result<Json<DayList>, ApiError> {
    let (date, status) = parse_day(&q)?;
    let p = &caller.property.id;
    let conn = store
        .connection(p)
        .await?
        .ok_or(GuestError::CrmNotConnected)?;
    let crm = platform::cloudbeds::client_for_connection(&conn)
        .await
        .map_err(GuestError::crm)?;
    let mut reservations = Vec::new();
    let mut page = 1;
    loop {
        let found = crm
            .reservations_by_dates(&ReservationDates {
                by,
                from: date,
                to: date,
                status: status.map(|s| status_name(s).to_owned()),
                page,
                page_size: PAGE_SIZE,
            })
            .await
            .map_err(GuestError::crm)?;
        let n = found.reservations.len() as u32;
        for r in found.reservations {
            let Some(st) = StayStatus::parse(&r.status) else {
                continue;
            };
            if status.is_none() && matches!(st, StayStatus::Canceled | StayStatus::NoShow) {
                continue;
            }
            let mut guests = Vec::new();
            for g in r.guests {
                let local = store.guest_by_cloudbeds_id(p, &g.guest_id).await?;
                let local = local.filter(|l| !l.erased);
                guests.push(DayGuest {
                    guest_id: local.as_ref().map(|l| l.id.clone()),
                    screening: local.as_ref().and_then(|l| l.screening.status),
                    cloudbeds_guest_id: g.guest_id,
                    first_name: g.first_name,
                    last_name: g.last_name,
                    email: g.email,
                    main: g.main,
                });
            }
            reservations.push(DayReservation {
                reservation_id: r.reservation_id,
                status: st,
                arrival: r.arrival,
                departure: r.departure,
                guests,
            });
        }
        if n < PAGE_SIZE || page.saturating_mul(PAGE_SIZE) >= found.total || page >= MAX_PAGES {
            break;
        }
        page += 1;
    }
    Ok(Json(DayList { date, reservations }))
}
