//! Guest profiles and notes under `/v1/properties/{property}/guests`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use domain::guest::GuestError;
use domain::guest::ports::GuestStore;
use domain::guest::search::{GuestQuery, search_limit};
use domain::guest::{
    Address, Document, Guest, GuestId, Note, NoteSource, ScreeningState, check_birth_date,
    check_document_dates, parse_country, validate_preferences,
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
    /// Identity document number.
    pub document_number: Option<String>,
    /// The identity document's type, issuing country and dates.
    pub document: Document,
    pub address: Address,
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
            document_number: g.document_number.clone(),
            document: g.document.clone(),
            address: g.address.clone(),
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
    /// A search (`q`) with more matches: pass it as `after` for the next
    /// page. Absent on the last page and for an email lookup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A postal address in a request: an absent part stays as it is, `""`
/// clears it.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    pub address1: Option<String>,
    pub address2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    /// ISO 3166-1 alpha-2 (`AT`).
    pub country: Option<String>,
}

/// An identity document in a request: an absent field stays as it is,
/// `""` clears a text field.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct DocumentInput {
    /// Cloudbeds' document type (`passport`, `dni`, `driver_licence`, ...).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub issuing_country: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub issue_date: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub expiration_date: Option<NaiveDate>,
}

/// Address, document number and document of a request, checked once.
struct Identity {
    address: Option<AddressInput>,
    document_number: Option<Option<String>>,
    document: Option<DocumentInput>,
}

impl Identity {
    fn parse(
        address: Option<AddressInput>,
        document_number: Option<&str>,
        document: Option<DocumentInput>,
    ) -> Result<Self, ValidationError> {
        let address = match address {
            Some(a) => {
                let t = |f: &'static str,
                         v: Option<String>|
                 -> Result<Option<String>, ValidationError> {
                    v.map(|v| text(f, &v).map(|t| t.unwrap_or_default()))
                        .transpose()
                };
                let country = a
                    .country
                    .map(|c| parse_country("address.country", &c).map(|c| c.unwrap_or_default()))
                    .transpose()?;
                Some(AddressInput {
                    address1: t("address.address1", a.address1)?,
                    address2: t("address.address2", a.address2)?,
                    city: t("address.city", a.city)?,
                    state: t("address.state", a.state)?,
                    zip: t("address.zip", a.zip)?,
                    country,
                })
            }
            None => None,
        };
        let document_number = document_number
            .map(|v| short("document_number", v, 64))
            .transpose()?;
        let document = match document {
            Some(d) => Some(DocumentInput {
                kind: d
                    .kind
                    .map(|v| short("document.type", &v, 40).map(|t| t.unwrap_or_default()))
                    .transpose()?,
                issuing_country: d
                    .issuing_country
                    .map(|c| {
                        parse_country("document.issuing_country", &c).map(|c| c.unwrap_or_default())
                    })
                    .transpose()?,
                issue_date: d.issue_date,
                expiration_date: d.expiration_date,
            }),
            None => None,
        };
        Ok(Self {
            address,
            document_number,
            document,
        })
    }

    /// Applies to `g` ("" clears) and checks the document's dates.
    fn apply(&self, g: &mut Guest, today: NaiveDate) -> Result<(), ValidationError> {
        let set = |slot: &mut Option<String>, v: &Option<String>| {
            if let Some(v) = v {
                *slot = (!v.is_empty()).then(|| v.clone());
            }
        };
        if let Some(a) = &self.address {
            set(&mut g.address.address1, &a.address1);
            set(&mut g.address.address2, &a.address2);
            set(&mut g.address.city, &a.city);
            set(&mut g.address.state, &a.state);
            set(&mut g.address.zip, &a.zip);
            set(&mut g.address.country, &a.country);
        }
        if let Some(n) = &self.document_number {
            g.document_number = n.clone();
        }
        if let Some(d) = &self.document {
            set(&mut g.document.kind, &d.kind);
            set(&mut g.document.issuing_country, &d.issuing_country);
            if d.issue_date.is_some() {
                g.document.issue_date = d.issue_date;
            }
            if d.expiration_date.is_some() {
                g.document.expiration_date = d.expiration_date;
            }
        }
        check_document_dates(&g.document, today)
    }
}

/// A short one-line text field: trimmed, `""` means none.
fn short(field: &'static str, v: &str, max: usize) -> Result<Option<String>, ValidationError> {
    let t = text(field, v)?;
    if t.as_ref().is_some_and(|t| t.chars().count() > max) {
        return Err(ValidationError::new(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    Ok(t)
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
    /// Identity document number (`""` clears it).
    pub document_number: Option<String>,
    pub document: Option<DocumentInput>,
    pub address: Option<AddressInput>,
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
    /// Identity document number (`""` clears it).
    pub document_number: Option<String>,
    pub document: Option<DocumentInput>,
    pub address: Option<AddressInput>,
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
    /// The guest's email (trimmed, case-insensitive): the one guest with it.
    pub email: Option<String>,
    /// Search (instead of `email`): guests whose first name, last name,
    /// full name, email or phone starts with this, ignoring case and
    /// accents (at least 2 characters); ordered by guest id, paged.
    pub q: Option<String>,
    /// Guests per page of a search, 1-100 (default 20).
    pub limit: Option<usize>,
    /// A search's `next` from the previous page.
    pub after: Option<String>,
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
    let identity = Identity::parse(
        input.address,
        input.document_number.as_deref(),
        input.document,
    )?;
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
            identity.apply(&mut g, today(&store, &caller))?;
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

/// Find guests: by exact email (`email`), or search by the start of a
/// name, email or phone (`q`, paged).
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/guests",
    tag = "guests",
    params(("property" = String, Path, description = "Property id"), EmailQuery),
    responses(
        (status = 200, description = "Matching guests (by email: 0 or 1; by `q`: one page, ordered by id)", body = GuestList),
        (status = 400, description = "Neither or both of `email` and `q`, or an invalid one", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn find_guests(
    State(store): State<Store>,
    caller: Caller,
    ApiQuery(q): ApiQuery<EmailQuery>,
) -> Result<Json<GuestList>, ApiError> {
    let p = &caller.property.id;
    let Some(search) = q.q else {
        if q.limit.is_some() || q.after.is_some() {
            return Err(ValidationError::new("q", "limit and after page a search (q)").into());
        }
        let raw = q
            .email
            .ok_or_else(|| ValidationError::new("email", "is required (or search with q)"))?;
        let email = Email::parse(&raw)?;
        let found = store.guest_by_email(p, &email).await?;
        return Ok(Json(GuestList {
            guests: found.iter().map(GuestView::from).collect(),
            next: None,
        }));
    };
    if q.email.is_some() {
        return Err(ValidationError::new("q", "give either email or q, not both").into());
    }
    let query = GuestQuery::parse(&search)?;
    let limit = search_limit(q.limit)?;
    let after = q
        .after
        .as_deref()
        .map(|a| {
            GuestId::parse(a).map_err(|_| ValidationError::new("after", "is not a page cursor"))
        })
        .transpose()?;
    let ids = store.find_guest_ids(p, &query.prefixes()).await?;
    let mut guests = Vec::new();
    let mut next = None;
    for id in ids
        .iter()
        .filter(|id| after.as_ref().is_none_or(|a| *id > a))
    {
        if guests.len() == limit {
            next = guests.last().map(|g: &GuestView| g.id.to_string());
            break;
        }
        // The keys are written with the profile; read it strongly and
        // check it still matches.
        if let Some(g) = store.guest(p, id).await?
            && query.matches(&g)
        {
            guests.push(GuestView::from(&g));
        }
    }
    Ok(Json(GuestList { guests, next }))
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
    let identity = Identity::parse(
        patch.address,
        patch.document_number.as_deref(),
        patch.document,
    )?;
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
    identity.apply(&mut g, today(&store, &caller))?;
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
