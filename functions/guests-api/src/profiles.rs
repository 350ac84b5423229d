//! Guest profiles and notes under `/v1/properties/{property}/guests`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use domain::guest::GuestError;
use domain::guest::ports::GuestStore;
use domain::guest::{
    Guest, GuestId, Note, NoteSource, ScreeningState, check_birth_date, validate_preferences,
};
use domain::{Email, StoreError, ValidationError};
use http::{HeaderMap, StatusCode};
use platform::Store;
use platform::http::{ApiError, ApiJson, ApiQuery, Caller, Idempotent, Outcome};
use platform::store::Retry;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::screening::screen_now;

/// A guest as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct GuestView {
    pub id: GuestId,
    pub property: String,
    pub email: Option<Email>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub birth_date: Option<NaiveDate>,
    pub preferences: BTreeMap<String, String>,
    pub opt_in: bool,
    pub screening: ScreeningState,
    pub erased: bool,
    pub erased_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Cloudbeds' guestID once linked.
    pub cloudbeds_guest_id: Option<String>,
}

impl From<&Guest> for GuestView {
    fn from(g: &Guest) -> Self {
        Self {
            id: g.id.clone(),
            property: g.property.to_string(),
            email: g.email.clone(),
            first_name: g.first_name.clone(),
            last_name: g.last_name.clone(),
            phone: g.phone.clone(),
            birth_date: g.birth_date,
            preferences: g.preferences.clone(),
            opt_in: g.opt_in,
            screening: g.screening.clone(),
            erased: g.erased,
            erased_at: g.erased_at,
            created_at: g.created_at,
            updated_at: g.updated_at,
            cloudbeds_guest_id: g.crm.cloudbeds_guest_id.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct GuestList {
    pub guests: Vec<GuestView>,
}

#[derive(Serialize, ToSchema)]
pub struct NoteList {
    pub notes: Vec<Note>,
}

/// Upsert body: the email finds the guest; the other fields are set when
/// given.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuestUpsert {
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub birth_date: Option<NaiveDate>,
    /// Merged into the guest's preferences.
    #[serde(default)]
    pub preferences: BTreeMap<String, String>,
    pub opt_in: Option<bool>,
}

/// Patch body: absent fields stay; `""` clears a text field; a preference
/// set to `null` is removed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuestPatch {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub birth_date: Option<NaiveDate>,
    #[serde(default)]
    pub preferences: BTreeMap<String, Option<String>>,
    pub opt_in: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    pub text: String,
    pub author: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EmailQuery {
    /// The guest's email (trimmed, case-insensitive).
    pub email: Option<String>,
}

/// Text fields (names, phone, author): trimmed, `""` means none, bounded,
/// one line (no control characters).
pub(crate) fn text(field: &'static str, v: &str) -> Result<Option<String>, ValidationError> {
    let t = v.trim();
    if t.chars().count() > 200 {
        return Err(ValidationError::new(field, "is longer than 200 characters"));
    }
    domain::name::one_line(field, v)?;
    Ok((!t.is_empty()).then(|| t.to_owned()))
}

async fn load(store: &Store, caller: &Caller, id: &str) -> Result<Guest, ApiError> {
    let id = GuestId::parse(id).map_err(|_| GuestError::NotFound)?;
    store
        .guest(&caller.property.id, &id)
        .await?
        .ok_or_else(|| GuestError::NotFound.into())
}

/// The property's date now.
fn today(store: &Store, caller: &Caller) -> NaiveDate {
    domain::time::local_date(caller.property.time_zone, store.clock().now())
}

/// Reads and writes one upsert tries before it answers 409 `conflict`.
const UPSERT_ATTEMPTS: u32 = 16;

/// Create or update a guest by email.
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/guests",
    tag = "guests",
    params(("property" = String, Path, description = "Property id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer")),
    request_body = GuestUpsert,
    responses(
        (status = 201, description = "Guest created", body = GuestView),
        (status = 200, description = "Guest updated", body = GuestView),
        (status = 400, description = "Invalid field", body = platform::http::error::ErrorBody),
        (status = 409, description = "`idempotency_key_in_flight`: a request with this Idempotency-Key is still running; `conflict`: the guest kept changing while this request ran (retry)", body = platform::http::error::ErrorBody),
        (status = 422, description = "Guest erased", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn upsert_guest(
    State(store): State<Store>,
    caller: Caller,
    headers: HeaderMap,
    body: ApiJson<GuestUpsert>,
) -> Result<Response, ApiError> {
    let path = format!("/v1/properties/{}/guests", caller.property.id);
    let input = body.value;
    let email = Email::parse(&input.email)?;
    validate_preferences(&input.preferences)?;
    let first = input
        .first_name
        .as_deref()
        .map(|v| text("first_name", v))
        .transpose()?;
    let last = input
        .last_name
        .as_deref()
        .map(|v| text("last_name", v))
        .transpose()?;
    let phone = input
        .phone
        .as_deref()
        .map(|v| text("phone", v))
        .transpose()?;
    if let Some(d) = input.birth_date {
        check_birth_date(d, today(&store, &caller))?;
    }
    let run = Idempotent::new(&store, &caller, "guests", &path, &body.canonical);
    run.run(&headers, |_lease| async {
        let p = &caller.property.id;
        // The email lookup is written with the profile, so of concurrent
        // creations one commits; the others read the guest it made and
        // update that one: everyone is answered the same guest. A save that
        // lost a race with another update reads and applies again.
        let mut retry = Retry::new(UPSERT_ATTEMPTS);
        while retry.next().await.is_some() {
            let now = store.clock().now();
            let existing = store.guest_by_email(p, &email).await?;
            let created = existing.is_none();
            let mut g = existing.unwrap_or_else(|| {
                let mut g = Guest::new(GuestId(uuid::Uuid::now_v7().to_string()), p.clone(), now);
                g.email = Some(email.clone());
                g
            });
            if g.erased {
                return Err(GuestError::Erased.into());
            }
            if let Some(v) = &first {
                g.first_name = v.clone();
            }
            if let Some(v) = &last {
                g.last_name = v.clone();
            }
            if let Some(v) = &phone {
                g.phone = v.clone();
            }
            if input.birth_date.is_some() {
                g.birth_date = input.birth_date;
            }
            g.preferences
                .extend(input.preferences.iter().map(|(k, v)| (k.clone(), v.clone())));
            validate_preferences(&g.preferences)?;
            if let Some(o) = input.opt_in {
                g.opt_in = o;
            }
            g.updated_at = now;
            screen_now(&store, &mut g).await?;
            let saved = if created {
                store.create_guest(&g).await
            } else {
                store.save_guest(&g).await
            };
            let Some(g) = StoreError::unless_conflict(saved)? else {
                continue;
            };
            tracing::info!(property = %p, guest = %g.id, email = %email.log_token(), created, "guest upserted");
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            return Ok(Outcome::json(status, &GuestView::from(&g)));
        }
        Err(StoreError::Conflict.into())
    })
    .await
}

/// Find guests by email.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/guests",
    tag = "guests",
    params(("property" = String, Path, description = "Property id"), EmailQuery),
    responses(
        (status = 200, description = "Matching guests (0 or 1)", body = GuestList),
        (status = 400, description = "No or invalid email", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn find_guests(
    State(store): State<Store>,
    caller: Caller,
    ApiQuery(q): ApiQuery<EmailQuery>,
) -> Result<Json<GuestList>, ApiError> {
    let raw = q
        .email
        .ok_or_else(|| ValidationError::new("email", "is required"))?;
    let email = Email::parse(&raw)?;
    let found = store.guest_by_email(&caller.property.id, &email).await?;
    Ok(Json(GuestList {
        guests: found.iter().map(GuestView::from).collect(),
    }))
}

/// Read a guest.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/guests/{id}",
    tag = "guests",
    params(("property" = String, Path, description = "Property id"),
           ("id" = String, Path, description = "Guest id")),
    responses(
        (status = 200, description = "The guest", body = GuestView),
        (status = 404, description = "No such guest", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn get_guest(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String)>,
) -> Result<Json<GuestView>, ApiError> {
    let id = path.1;
    let g = load(&store, &caller, &id).await?;
    Ok(Json(GuestView::from(&g)))
}

/// Change a guest's contact, preferences or opt-in.
#[utoipa::path(
    patch,
    path = "/v1/properties/{property}/guests/{id}",
    tag = "guests",
    params(("property" = String, Path, description = "Property id"),
           ("id" = String, Path, description = "Guest id")),
    request_body = GuestPatch,
    responses(
        (status = 200, description = "The changed guest", body = GuestView),
        (status = 404, description = "No such guest", body = platform::http::error::ErrorBody),
        (status = 409, description = "Email taken or concurrent change", body = platform::http::error::ErrorBody),
        (status = 422, description = "Guest erased", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn patch_guest(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String)>,
    body: ApiJson<GuestPatch>,
) -> Result<Json<GuestView>, ApiError> {
    let id = path.1;
    let patch = body.value;
    let email = match patch.email.as_deref() {
        Some(e) => Some(Email::parse(e)?),
        None => None,
    };
    let first = patch
        .first_name
        .as_deref()
        .map(|v| text("first_name", v))
        .transpose()?;
    let last = patch
        .last_name
        .as_deref()
        .map(|v| text("last_name", v))
        .transpose()?;
    let phone = patch
        .phone
        .as_deref()
        .map(|v| text("phone", v))
        .transpose()?;
    if let Some(d) = patch.birth_date {
        check_birth_date(d, today(&store, &caller))?;
    }
    let mut g = load(&store, &caller, &id).await?;
    if g.erased {
        return Err(GuestError::Erased.into());
    }
    if let Some(e) = email {
        g.email = Some(e);
    }
    if let Some(v) = first {
        g.first_name = v;
    }
    if let Some(v) = last {
        g.last_name = v;
    }
    if let Some(v) = phone {
        g.phone = v;
    }
    if patch.birth_date.is_some() {
        g.birth_date = patch.birth_date;
    }
    for (k, v) in patch.preferences {
        match v {
            Some(v) => g.preferences.insert(k, v),
            None => g.preferences.remove(&k),
        };
    }
    validate_preferences(&g.preferences)?;
    if let Some(o) = patch.opt_in {
        g.opt_in = o;
    }
    g.updated_at = store.clock().now();
    screen_now(&store, &mut g).await?;
    let changed_email = patch.email.is_some();
    let g = store
        .save_guest(&g)
        .await
        .map_err(|e| GuestError::saving(e, changed_email))?;
    tracing::info!(property = %caller.property.id, guest = %g.id, "guest changed");
    Ok(Json(GuestView::from(&g)))
}

/// Erase a guest: the same erasure as `POST …/erasures` for this guest's
/// email (every record of the property naming them), with the same
/// receipt. The profile stays as a record that it was erased; the next
/// sync sends the erasure to Cloudbeds. Erasing again answers the receipt.
#[utoipa::path(
    delete,
    path = "/v1/properties/{property}/guests/{id}",
    tag = "guests",
    params(("property" = String, Path, description = "Property id"),
           ("id" = String, Path, description = "Guest id")),
    responses(
        (status = 202, description = "The erasure's receipt (again: the same receipt)", body = domain::erasure::ErasureReceipt),
        (status = 404, description = "No such guest", body = platform::http::error::ErrorBody),
        (status = 409, description = "`conflict`: records kept changing (retry)", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn erase_guest(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path.1;
    let g = load(&store, &caller, &id).await?;
    let p = &caller.property.id;
    let e = match store.guest_erasure(p, &g.id).await? {
        Some(e) if g.erased && e.status == domain::erasure::ErasureStatus::Erased => e,
        _ => store.erase_person(p, g.email.as_ref(), Some(&g.id)).await?,
    };
    Ok(platform::http::idempotent::json_response(
        StatusCode::ACCEPTED,
        serde_json::to_string(&e.receipt()).map_err(ApiError::internal)?,
    ))
}

/// Add a note to a guest (pushed to Cloudbeds by the next sync).
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/guests/{id}/notes",
    tag = "guests",
    params(("property" = String, Path, description = "Property id"),
           ("id" = String, Path, description = "Guest id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer")),
    request_body = NoteInput,
    responses(
        (status = 201, description = "Note added", body = Note),
        (status = 404, description = "No such guest", body = platform::http::error::ErrorBody),
        (status = 422, description = "Guest erased", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn add_note(
    State(store): State<Store>,
    caller: Caller,
    headers: HeaderMap,
    Path(path): Path<(String, String)>,
    body: ApiJson<NoteInput>,
) -> Result<Response, ApiError> {
    let id = path.1;
    let text = Note::parse_text(&body.value.text)?;
    let author = body
        .value
        .author
        .as_deref()
        .map(|a| self::text("author", a))
        .transpose()?
        .flatten();
    let route = format!("/v1/properties/{}/guests/{id}/notes", caller.property.id);
    let run = Idempotent::new(&store, &caller, "guest-notes", &route, &body.canonical);
    run.run(&headers, |_lease| async {
        let mut g = load(&store, &caller, &id).await?;
        if g.erased {
            return Err(GuestError::Erased.into());
        }
        let note = Note {
            id: uuid::Uuid::now_v7().to_string(),
            guest: g.id.clone(),
            text,
            author,
            source: NoteSource::Local,
            created_at: store.clock().now(),
            cloudbeds_note_id: None,
        };
        store.add_note(&g.property, &note).await?;
        if g.crm.cloudbeds_guest_id.is_some() && !g.crm.notes_pending {
            g.crm.notes_pending = true;
            // A concurrent edit may win; the sync also finds notes by
            // pulling, so retry once and otherwise leave it to the next edit.
            if store.save_guest(&g).await.is_err_and(|e| e.is_conflict()) {
                let mut again = load(&store, &caller, &id).await?;
                again.crm.notes_pending = true;
                store.save_guest(&again).await?;
            }
        }
        Ok(Outcome::json(StatusCode::CREATED, &note))
    })
    .await
}

/// A guest's notes, oldest first.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/guests/{id}/notes",
    tag = "guests",
    params(("property" = String, Path, description = "Property id"),
           ("id" = String, Path, description = "Guest id")),
    responses(
        (status = 200, description = "The notes", body = NoteList),
        (status = 404, description = "No such guest", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn list_notes(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String)>,
) -> Result<Json<NoteList>, ApiError> {
    let id = path.1;
    let g = load(&store, &caller, &id).await?;
    let notes = store.notes(&g.property, &g.id).await?;
    Ok(Json(NoteList { notes }))
}
