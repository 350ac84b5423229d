//! Loyalty (NetCarrots): enrolments, member search, and departures under
//! `/v1/properties/{property}/loyalty` and `/stays/{reservation}/departure`.
//! The scheduled `loyalty-export` function delivers what these queue.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use domain::guest::GuestError;
use domain::guest::ports::GuestStore;
use domain::guest::{Guest, GuestId};
use domain::loyalty::error::LoyaltyError;
use domain::loyalty::ports::LoyaltyStore;
use domain::loyalty::service::{self, Departure, DepartureOutcome};
use domain::loyalty::{
    DEFAULT_RETRO_DAYS, Enrolment, EnrolmentState, RecordKind, StaySource, parse_loyalty_number,
    parse_reservation,
};
use domain::{Currency, Email, Money, StoreError, ValidationError};
use http::{HeaderMap, StatusCode};
use platform::Store;
use platform::http::{ApiError, ApiJson, ApiQuery, Caller, Idempotent, Outcome};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::profiles::text;

/// Most members one search answers.
const MAX_RESULTS: usize = 50;

/// Who a request is about: a guest id, a loyalty number or an email (the
/// first that is given and known wins). An unknown email creates the guest
/// with the names given.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentInput {
    pub guest_id: Option<String>,
    pub email: Option<String>,
    pub loyalty_number: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EnrolmentView {
    pub guest_id: GuestId,
    pub state: EnrolmentState,
    pub transaction_id: String,
    pub loyalty_number: Option<String>,
    pub tier: Option<String>,
    pub points: Option<i64>,
    pub enrolled_at: DateTime<Utc>,
    pub exported_in: Option<String>,
    pub confirmed_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>, format = Date)]
    pub last_stay: Option<NaiveDate>,
}

impl From<&Enrolment> for EnrolmentView {
    fn from(e: &Enrolment) -> Self {
        Self {
            guest_id: e.guest.clone(),
            state: e.state,
            transaction_id: e.transaction_id.clone(),
            loyalty_number: e.loyalty_number.clone(),
            tier: e.tier.clone(),
            points: e.points,
            enrolled_at: e.enrolled_at,
            exported_in: e.exported_in.clone(),
            confirmed_at: e.confirmed_at,
            last_stay: e.last_stay,
        }
    }
}

/// A departure as the PMS reports it. Revenues are in the property's
/// currency (`{"amount": 45000, "currency": "EUR"}` is EUR 450.00); other
/// revenue may be omitted (none).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartureInput {
    pub guest_id: Option<String>,
    pub email: Option<String>,
    pub loyalty_number: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    #[schema(value_type = String, format = Date)]
    pub arrival: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub departure: NaiveDate,
    pub room_revenue: Money,
    /// Omitted: none.
    #[serde(default, deserialize_with = "domain::money::omitted_not_null")]
    #[schema(nullable = false)]
    pub other_revenue: Option<Money>,
}

#[derive(Serialize, ToSchema)]
pub struct TransactionView {
    pub transaction_id: String,
    pub record_type: RecordKind,
    pub reverses: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DepartureView {
    pub reservation: String,
    pub revision: u32,
    pub source: StaySource,
    pub cancelled: bool,
    pub guest_id: Option<GuestId>,
    #[schema(value_type = Option<String>, format = Date)]
    pub arrival: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub departure: Option<NaiveDate>,
    pub nights: Option<i64>,
    pub total_revenue: Option<Money>,
    /// The STAY record standing for this departure.
    pub stay_transaction: Option<String>,
    /// Kept here and not exported: the guest is not enrolled. Exported with
    /// the enrolment if the guest enrols within the connection's retro days.
    pub held: bool,
    /// Records this request queued for the next export (none: unchanged or held).
    pub queued: Vec<TransactionView>,
}

impl From<&DepartureOutcome> for DepartureView {
    fn from(o: &DepartureOutcome) -> Self {
        let f = o.stay.facts.as_ref();
        Self {
            reservation: o.stay.reservation.clone(),
            revision: o.stay.revision,
            source: o.stay.source,
            cancelled: f.is_none(),
            guest_id: f.map(|f| f.guest.clone()),
            arrival: f.map(|f| f.arrival),
            departure: f.map(|f| f.departure),
            nights: f.map(|f| f.nights()),
            total_revenue: f.and_then(|f| f.total()),
            stay_transaction: o.stay.stay_transaction.clone(),
            held: o.stay.held,
            queued: o
                .queued
                .iter()
                .map(|r| TransactionView {
                    transaction_id: r.transaction_id.clone(),
                    record_type: r.kind,
                    reverses: r.reverses.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MemberView {
    pub guest_id: GuestId,
    pub email: Option<Email>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub enrolment: EnrolmentView,
}

#[derive(Serialize, ToSchema)]
pub struct MemberList {
    pub members: Vec<MemberView>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemberQuery {
    /// An email, a loyalty number, or part of a name (at least 2
    /// characters, case-insensitive).
    pub q: Option<String>,
}

/// The earliest arrival a departure may report.
const EARLIEST_ARRIVAL: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d,
    None => panic!("a valid date"),
};

/// A departure is reported when the guest leaves: not after the property's
/// tomorrow (a PMS in another zone may be a day ahead), and the stay began
/// no earlier than [`EARLIEST_ARRIVAL`].
fn check_stay_dates(
    arrival: NaiveDate,
    departure: NaiveDate,
    today: NaiveDate,
) -> Result<(), ValidationError> {
    if today
        .succ_opt()
        .is_some_and(|tomorrow| departure > tomorrow)
    {
        return Err(ValidationError::new(
            "departure",
            "must not be after tomorrow: report a departure when the guest leaves",
        ));
    }
    if arrival < EARLIEST_ARRIVAL {
        return Err(ValidationError::new(
            "arrival",
            "must not be before 2000-01-01",
        ));
    }
    Ok(())
}

/// A revenue figure in the property's currency, within the bound on one amount.
fn in_currency(
    m: Money,
    currency: Currency,
    field: &'static str,
) -> Result<Money, ValidationError> {
    if m.currency != currency {
        return Err(ValidationError::new(
            field,
            format!("must be in the property's currency, {currency}"),
        ));
    }
    m.within_limit(field)
}

/// An optional name: as profile text fields are (trimmed, bounded).
fn name(field: &'static str, v: Option<&str>) -> Result<Option<String>, ValidationError> {
    Ok(v.map(|v| text(field, v)).transpose()?.flatten())
}

/// The parsed "who": checked before anything is read or written.
struct Who {
    guest_id: Option<GuestId>,
    email: Option<Email>,
    loyalty_number: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

impl Who {
    fn parse(
        guest_id: Option<&str>,
        email: Option<&str>,
        number: Option<&str>,
        first: Option<&str>,
        last: Option<&str>,
    ) -> Result<Self, ApiError> {
        let who = Self {
            guest_id: guest_id.map(GuestId::parse).transpose()?,
            email: email.map(Email::parse).transpose()?,
            loyalty_number: number.map(parse_loyalty_number).transpose()?,
            first_name: name("first_name", first)?,
            last_name: name("last_name", last)?,
        };
        if who.guest_id.is_none() && who.email.is_none() && who.loyalty_number.is_none() {
            return Err(ValidationError::new(
                "guest_id",
                "one of guest_id, loyalty_number or email is required",
            )
            .into());
        }
        Ok(who)
    }

    /// Finds (or, by email, creates) the guest.
    async fn resolve(&self, store: &Store, caller: &Caller) -> Result<Guest, ApiError> {
        let p = &caller.property.id;
        let mut found = None;
        if let Some(id) = &self.guest_id {
            found = Some(store.guest(p, id).await?.ok_or(GuestError::NotFound)?);
        } else if let Some(n) = &self.loyalty_number
            && let Some(id) = store.guest_by_loyalty_number(p, n).await?
        {
            found = store.guest(p, &id).await?;
        }
        if found.is_none()
            && let Some(e) = &self.email
        {
            found = store.guest_by_email(p, e).await?;
        }
        let g = match found {
            Some(g) => g,
            None => {
                let Some(email) = &self.email else {
                    return Err(GuestError::NotFound.into());
                };
                let now = store.clock().now();
                let mut g = Guest::new(GuestId(uuid::Uuid::now_v7().to_string()), p.clone(), now);
                g.email = Some(email.clone());
                g.first_name = self.first_name.clone();
                g.last_name = self.last_name.clone();
                match StoreError::unless_conflict(store.create_guest(&g).await)? {
                    Some(g) => g,
                    // Created by a concurrent request: use theirs.
                    None => store
                        .guest_by_email(p, email)
                        .await?
                        .ok_or(GuestError::CreationRaced)?,
                }
            }
        };
        if g.erased {
            return Err(GuestError::Erased.into());
        }
        if let Some(n) = &self.loyalty_number
            && store
                .guest_by_loyalty_number(p, n)
                .await?
                .is_some_and(|owner| owner != g.id)
        {
            return Err(LoyaltyError::NumberTaken.into());
        }
        Ok(g)
    }
}

/// Enrol a guest in the loyalty programme.
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/loyalty/enrolments",
    tag = "loyalty",
    params(("property" = String, Path, description = "Property id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer")),
    request_body = EnrolmentInput,
    responses(
        (status = 201, description = "Enrolled; pending until exported", body = EnrolmentView),
        (status = 200, description = "Enrolled already: the same enrolment", body = EnrolmentView),
        (status = 400, description = "Invalid field", body = platform::http::error::ErrorBody),
        (status = 404, description = "No such guest", body = platform::http::error::ErrorBody),
        (status = 409, description = "Loyalty number held by another guest", body = platform::http::error::ErrorBody),
        (status = 422, description = "Guest erased", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn enrol(
    State(store): State<Store>,
    caller: Caller,
    headers: HeaderMap,
    body: ApiJson<EnrolmentInput>,
) -> Result<Response, ApiError> {
    let input = &body.value;
    let who = Who::parse(
        input.guest_id.as_deref(),
        input.email.as_deref(),
        input.loyalty_number.as_deref(),
        input.first_name.as_deref(),
        input.last_name.as_deref(),
    )?;
    let path = format!("/v1/properties/{}/loyalty/enrolments", caller.property.id);
    let run = Idempotent::new(&store, &caller, "loyalty", &path, &body.canonical);
    run.run(&headers, |_lease| async {
        let g = who.resolve(&store, &caller).await?;
        let now = store.clock().now();
        let (e, created) = service::enrol(&store, &g, who.loyalty_number.clone(), now)
            .await
            .map_err(LoyaltyError::enrolling)?;
        tracing::info!(property = %caller.property.id, guest = %g.id, created, "loyalty enrolment");
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok(Outcome::json(status, &EnrolmentView::from(&e)))
    })
    .await
}

/// Search loyalty members by email, loyalty number or name.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/loyalty/members",
    tag = "loyalty",
    params(("property" = String, Path, description = "Property id"), MemberQuery),
    responses(
        (status = 200, description = "Matching members (at most 50)", body = MemberList),
        (status = 400, description = "No or too short query", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn search_members(
    State(store): State<Store>,
    caller: Caller,
    ApiQuery(q): ApiQuery<MemberQuery>,
) -> Result<Json<MemberList>, ApiError> {
    let q = q.q.unwrap_or_default();
    let q = q.trim();
    if q.chars().count() < 2 || q.chars().count() > 200 {
        return Err(ValidationError::new("q", "is 2-200 characters").into());
    }
    let p = &caller.property.id;
    let mut members: Vec<MemberView> = Vec::new();
    let push = |g: &Guest, e: &Enrolment, out: &mut Vec<MemberView>| {
        if !out.iter().any(|m| m.guest_id == g.id) && out.len() < MAX_RESULTS {
            out.push(MemberView {
                guest_id: g.id.clone(),
                email: g.email.clone(),
                first_name: g.first_name.clone(),
                last_name: g.last_name.clone(),
                enrolment: EnrolmentView::from(e),
            });
        }
    };
    if let Ok(email) = Email::parse(q) {
        if let Some(g) = store.guest_by_email(p, &email).await?
            && let Some(e) = store.enrolment(p, &g.id).await?
        {
            push(&g, &e, &mut members);
        }
        return Ok(Json(MemberList { members }));
    }
    if let Ok(n) = parse_loyalty_number(q)
        && let Some(id) = store.guest_by_loyalty_number(p, &n).await?
        && let (Some(g), Some(e)) = (store.guest(p, &id).await?, store.enrolment(p, &id).await?)
    {
        push(&g, &e, &mut members);
    }
    // Names live on the guest profiles: read the enrolled guests' profiles.
    let needle = q.to_lowercase();
    for e in store.enrolments(p).await? {
        if members.len() >= MAX_RESULTS {
            break;
        }
        let Some(g) = store.guest(p, &e.guest).await? else {
            continue;
        };
        let full = format!(
            "{} {}",
            g.first_name.as_deref().unwrap_or(""),
            g.last_name.as_deref().unwrap_or("")
        )
        .to_lowercase();
        if !g.erased && full.contains(&needle) {
            push(&g, &e, &mut members);
        }
    }
    Ok(Json(MemberList { members }))
}

/// Where the property's export stands.
#[derive(Serialize, ToSchema)]
pub struct ExportStateView {
    /// The next file's sequence number.
    pub next_sequence: u64,
    /// A file chosen by a run that has not confirmed its delivery yet (the
    /// next run sends it again under this name).
    pub open_file: Option<String>,
    pub last_file: Option<String>,
    pub last_run_at: Option<DateTime<Utc>>,
    /// Departures of guests who were not enrolled: kept here, not exported.
    pub not_enrolled: usize,
    /// How many days after a departure an enrolment still exports the stay
    /// (0: never).
    pub retro_days: u32,
}

/// The loyalty export's state: files, and stays kept back.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/loyalty/export",
    tag = "loyalty",
    params(("property" = String, Path, description = "Property id")),
    responses(
        (status = 200, description = "The export's state", body = ExportStateView),
    ),
    security(("partner_key" = []))
)]
pub async fn export_state(
    State(store): State<Store>,
    caller: Caller,
) -> Result<Json<ExportStateView>, ApiError> {
    let p = &caller.property.id;
    let state = store.export_state(p).await?;
    let retro_days = store
        .loyalty_connection(p)
        .await?
        .map_or(DEFAULT_RETRO_DAYS, |c| c.retro_days);
    Ok(Json(ExportStateView {
        next_sequence: state.next_seq,
        open_file: state.open.map(|o| o.file_name),
        last_file: state.last_file,
        last_run_at: state.last_run_at,
        not_enrolled: store.held_stay_count(p).await?,
        retro_days,
    }))
}

fn reservation_param(raw: &str) -> Result<String, ApiError> {
    parse_reservation(raw).map_err(ApiError::from)
}

/// Report a departure: queues the stay transaction for NetCarrots. The
/// same report again changes nothing; a different one after export queues
/// an UNDO of the earlier transaction and the corrected STAY. Only members'
/// stays leave: a guest who is not enrolled has the stay held (`held`),
/// exported if they enrol within the connection's retro days (default 30).
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/stays/{reservation}/departure",
    tag = "loyalty",
    params(("property" = String, Path, description = "Property id"),
           ("reservation" = String, Path, description = "The PMS reservation number"),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer")),
    request_body = DepartureInput,
    responses(
        (status = 201, description = "Recorded: records queued, or held when the guest is not enrolled", body = DepartureView),
        (status = 200, description = "Same as already recorded: nothing queued", body = DepartureView),
        (status = 400, description = "Invalid field", body = platform::http::error::ErrorBody),
        (status = 404, description = "No such guest", body = platform::http::error::ErrorBody),
        (status = 409, description = "Loyalty number held by another guest", body = platform::http::error::ErrorBody),
        (status = 422, description = "Guest erased", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn report_departure(
    State(store): State<Store>,
    caller: Caller,
    headers: HeaderMap,
    Path(path): Path<(String, String)>,
    body: ApiJson<DepartureInput>,
) -> Result<Response, ApiError> {
    let reservation = reservation_param(&path.1)?;
    let input = &body.value;
    let who = Who::parse(
        input.guest_id.as_deref(),
        input.email.as_deref(),
        input.loyalty_number.as_deref(),
        input.first_name.as_deref(),
        input.last_name.as_deref(),
    )?;
    let currency = caller.property.currency;
    let room = in_currency(input.room_revenue, currency, "room_revenue")?;
    let other = match input.other_revenue {
        Some(m) => in_currency(m, currency, "other_revenue")?,
        None => Money::zero(currency),
    };
    check_stay_dates(
        input.arrival,
        input.departure,
        domain::time::local_date(caller.property.time_zone, store.clock().now()),
    )?;
    let probe = domain::loyalty::StayFacts {
        guest: GuestId("probe".into()),
        loyalty_number: None,
        arrival: input.arrival,
        departure: input.departure,
        room_revenue: room,
        other_revenue: other,
    };
    probe.validate()?;
    let url = format!(
        "/v1/properties/{}/stays/{reservation}/departure",
        caller.property.id
    );
    let run = Idempotent::new(&store, &caller, "loyalty", &url, &body.canonical);
    run.run(&headers, |_lease| async {
        let guest = who.resolve(&store, &caller).await?;
        let report = Departure {
            guest,
            loyalty_number: who.loyalty_number.clone(),
            arrival: input.arrival,
            departure: input.departure,
            room_revenue: room,
            other_revenue: other,
        };
        let now = store.clock().now();
        let outcome = service::record_departure(
            &store,
            &caller.property.id,
            &reservation,
            Some(report),
            StaySource::Pms,
            now,
        )
        .await?
        .ok_or_else(|| ApiError::internal("a departure recorded nothing"))?;
        let status = if outcome.changed {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        tracing::info!(property = %caller.property.id, reservation = %reservation, queued = outcome.queued.len(), "departure recorded");
        Ok(Outcome::json(status, &DepartureView::from(&outcome)))
    })
    .await
}

/// Cancel a reported departure: queues an UNDO of its stay transaction.
#[utoipa::path(
    delete,
    path = "/v1/properties/{property}/stays/{reservation}/departure",
    tag = "loyalty",
    params(("property" = String, Path, description = "Property id"),
           ("reservation" = String, Path, description = "The PMS reservation number"),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer")),
    responses(
        (status = 200, description = "Cancelled (again: nothing queued)", body = DepartureView),
        (status = 404, description = "No departure for this reservation", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn cancel_departure(
    State(store): State<Store>,
    caller: Caller,
    headers: HeaderMap,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let reservation = reservation_param(&path.1)?;
    let url = format!(
        "/v1/properties/{}/stays/{reservation}/departure",
        caller.property.id
    );
    let run = Idempotent::new(&store, &caller, "loyalty", &url, "");
    run.run(&headers, |_lease| async {
        let now = store.clock().now();
        let outcome = service::record_departure(
            &store,
            &caller.property.id,
            &reservation,
            None,
            StaySource::Pms,
            now,
        )
        .await?
        .ok_or(LoyaltyError::DepartureNotFound)?;
        Ok(Outcome::json(
            StatusCode::OK,
            &DepartureView::from(&outcome),
        ))
    })
    .await
}
