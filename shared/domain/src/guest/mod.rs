//! Guests: profiles, notes, stays, screening, and the CRM (Cloudbeds) link.
//!
//! Layout:
//! - this file: the aggregates ([`Guest`], [`Note`], [`Stay`]) and the
//!   per-property CRM connection ([`CrmConnection`]).
//! - [`screening`]: statuses, the subject screened, the built-in watchlist.
//! - [`sync`]: the pure two-way sync rules (conflicts, content hashes).
//! - [`ports`]: `GuestStore`, `CrmClient`, `ScreeningProvider`.

pub mod error;
pub mod ports;
pub mod runs;
pub mod screening;
pub mod search;
pub mod sync;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Email, PropertyId, ValidationError};
pub use error::GuestError;
pub use screening::{ScreeningState, ScreeningStatus};

/// A guest's id (UUID v7 text), ours — not Cloudbeds'.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct GuestId(pub String);

impl GuestId {
    /// Ids travel in paths and keys: keep them to a safe alphabet.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::new("guest_id", "is not a guest id"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GuestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Most preferences one guest may hold, and their sizes (Cloudbeds custom
/// fields are short text).
pub const MAX_PREFERENCES: usize = 50;
pub const MAX_PREFERENCE_NAME: usize = 40;
pub const MAX_PREFERENCE_VALUE: usize = 255;
pub const MAX_NOTE_CHARS: usize = 4000;

/// The earliest birth date a guest profile takes.
pub const EARLIEST_BIRTH_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(d) => d,
    None => panic!("a valid date"),
};

/// A birth date is in the past (at most `today`, the property's date) and
/// not before [`EARLIEST_BIRTH_DATE`].
pub fn check_birth_date(date: NaiveDate, today: NaiveDate) -> Result<(), ValidationError> {
    if date > today {
        return Err(ValidationError::new(
            "birth_date",
            "must not be in the future",
        ));
    }
    if date < EARLIEST_BIRTH_DATE {
        return Err(ValidationError::new(
            "birth_date",
            "must not be before 1900-01-01",
        ));
    }
    Ok(())
}

/// Checks a preferences map: names `[a-z0-9_]`, short values.
pub fn validate_preferences(p: &BTreeMap<String, String>) -> Result<(), ValidationError> {
    if p.len() > MAX_PREFERENCES {
        return Err(ValidationError::new(
            "preferences",
            format!("at most {MAX_PREFERENCES} entries"),
        ));
    }
    for (k, v) in p {
        let ok = !k.is_empty()
            && k.len() <= MAX_PREFERENCE_NAME
            && k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(ValidationError::new(
                "preferences",
                "names are 1-40 characters of a-z, 0-9 and _",
            ));
        }
        if v.chars().count() > MAX_PREFERENCE_VALUE {
            return Err(ValidationError::new(
                "preferences",
                format!("values are at most {MAX_PREFERENCE_VALUE} characters"),
            ));
        }
    }
    Ok(())
}

/// A guest's postal address, as Cloudbeds holds it (`address1`, `address2`,
/// `city`, `state`, `zip`, `country`). Every part is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Address {
    pub address1: Option<String>,
    pub address2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    /// ISO 3166-1 alpha-2 (`AT`).
    pub country: Option<String>,
}

impl Address {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// (name, value) of each part, in Cloudbeds' order.
    pub fn parts(&self) -> [(&'static str, &Option<String>); 6] {
        [
            ("address1", &self.address1),
            ("address2", &self.address2),
            ("city", &self.city),
            ("state", &self.state),
            ("zip", &self.zip),
            ("country", &self.country),
        ]
    }
}

/// An identity document's fields besides its number (kept on
/// [`Guest::document_number`]), as Cloudbeds holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Document {
    /// Cloudbeds' `documentType` (`passport`, `dni`, `driver_licence`, ...).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub issuing_country: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub issue_date: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub expiration_date: Option<NaiveDate>,
}

impl Document {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// A country as ISO 3166-1 alpha-2, upper-cased (`at` → `AT`).
pub fn parse_country(field: &'static str, raw: &str) -> Result<Option<String>, ValidationError> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if t.len() == 2 && t.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(Some(t.to_ascii_uppercase()))
    } else {
        Err(ValidationError::new(
            field,
            "is not a two-letter country code (ISO 3166-1 alpha-2)",
        ))
    }
}

/// A document's dates: issued in the past (at most `today`), expiring after
/// it was issued.
pub fn check_document_dates(d: &Document, today: NaiveDate) -> Result<(), ValidationError> {
    if let Some(i) = d.issue_date {
        if i > today {
            return Err(ValidationError::new(
                "document.issue_date",
                "must not be in the future",
            ));
        }
        if i < EARLIEST_BIRTH_DATE {
            return Err(ValidationError::new(
                "document.issue_date",
                "must not be before 1900-01-01",
            ));
        }
    }
    if let (Some(i), Some(e)) = (d.issue_date, d.expiration_date)
        && e <= i
    {
        return Err(ValidationError::new(
            "document.expiration_date",
            "must be after the issue date",
        ));
    }
    Ok(())
}

/// What ties a guest to its Cloudbeds record and what was last agreed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CrmLink {
    /// Cloudbeds' `guestID`.
    pub cloudbeds_guest_id: Option<String>,
    /// Cloudbeds' modification time of the record we last applied (UTC).
    pub remote_modified_at: Option<DateTime<Utc>>,
    /// Hash of the synced fields both sides last agreed on
    /// ([`sync::profile_hash`]); ours differing from it means "push".
    pub synced_hash: Option<String>,
    /// Hash of the screening outcome last written back.
    pub screening_written_hash: Option<String>,
    /// Local notes exist that Cloudbeds does not have yet.
    pub notes_pending: bool,
    /// The erasure was sent to Cloudbeds.
    pub erasure_sent: bool,
}

/// A guest profile of one property.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Guest {
    pub id: GuestId,
    pub property: PropertyId,
    /// None once erased, or for Cloudbeds guests without an address.
    pub email: Option<Email>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub birth_date: Option<NaiveDate>,
    /// Identity document number (screening by document).
    pub document_number: Option<String>,
    /// The identity document's other fields (type, issuing country, dates).
    #[serde(default)]
    pub document: Document,
    /// Postal address.
    #[serde(default)]
    pub address: Address,
    /// Named preferences (`room`, `smoking`, `dietary`, `wine`, ...).
    pub preferences: BTreeMap<String, String>,
    /// Marketing consent as Cloudbeds' `guestOptIn` or set here.
    pub opt_in: bool,
    pub screening: ScreeningState,
    /// Personal data was erased (GDPR); the profile stays as a tombstone.
    pub erased: bool,
    pub erased_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Last modification of this profile's synced fields, UTC. Edits here
    /// set it to now; applying a Cloudbeds record sets it to Cloudbeds'
    /// modification time (see [`sync`] for why).
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub crm: CrmLink,
    /// The store's version of this record (optimistic concurrency).
    #[serde(default)]
    pub revision: i64,
}

impl Guest {
    pub fn new(id: GuestId, property: PropertyId, now: DateTime<Utc>) -> Self {
        Self {
            id,
            property,
            email: None,
            first_name: None,
            last_name: None,
            phone: None,
            birth_date: None,
            document_number: None,
            document: Document::default(),
            address: Address::default(),
            preferences: BTreeMap::new(),
            opt_in: false,
            screening: ScreeningState::default(),
            erased: false,
            erased_at: None,
            created_at: now,
            updated_at: now,
            crm: CrmLink::default(),
            revision: 0,
        }
    }

    /// Drops every personal field; keeps the id, the Cloudbeds link (so the
    /// erasure can be sent and the record is not re-imported) and the fact.
    pub fn erase(&mut self, now: DateTime<Utc>) {
        self.email = None;
        self.first_name = None;
        self.last_name = None;
        self.phone = None;
        self.birth_date = None;
        self.document_number = None;
        self.document = Document::default();
        self.address = Address::default();
        self.preferences.clear();
        self.opt_in = false;
        self.screening = ScreeningState::default();
        self.erased = true;
        self.erased_at = Some(now);
        self.updated_at = now;
        self.crm.notes_pending = false;
    }

    /// Whether the sync has work for this guest: it keeps such guests on a
    /// sparse index so a run never scans the whole property.
    pub fn needs_sync(&self) -> bool {
        if self.erased {
            return self.crm.cloudbeds_guest_id.is_some() && !self.crm.erasure_sent;
        }
        let linked = self.crm.cloudbeds_guest_id.is_some();
        screening::check_due(self)
            || (linked && self.crm.notes_pending)
            || (linked && self.crm.synced_hash.as_deref() != Some(&sync::profile_hash(self)))
            || (linked
                && self.screening.status.is_some()
                && self.crm.screening_written_hash.as_deref()
                    != Some(&sync::screening_hash(&self.screening)))
    }
}

/// Where a note was written first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoteSource {
    /// Here (HTTP); pushed to Cloudbeds by the sync.
    Local,
    /// Pulled from Cloudbeds.
    Cloudbeds,
    /// A screening outcome written back as a note.
    Screening,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Note {
    /// UUID v7: time-ordered, so notes list in creation order.
    pub id: String,
    pub guest: GuestId,
    pub text: String,
    pub author: Option<String>,
    pub source: NoteSource,
    pub created_at: DateTime<Utc>,
    /// Cloudbeds' `guestNoteID`, once it exists there.
    pub cloudbeds_note_id: Option<String>,
}

impl Note {
    pub fn parse_text(raw: &str) -> Result<String, ValidationError> {
        let t = raw.trim();
        if t.is_empty() {
            return Err(ValidationError::new("text", "is empty"));
        }
        if t.chars().count() > MAX_NOTE_CHARS {
            return Err(ValidationError::new(
                "text",
                format!("is longer than {MAX_NOTE_CHARS} characters"),
            ));
        }
        Ok(t.to_owned())
    }
}

/// Reservation status as Cloudbeds names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StayStatus {
    NotConfirmed,
    Confirmed,
    Canceled,
    CheckedIn,
    CheckedOut,
    NoShow,
}

impl StayStatus {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "not_confirmed" => Self::NotConfirmed,
            "confirmed" => Self::Confirmed,
            "canceled" | "cancelled" => Self::Canceled,
            "checked_in" => Self::CheckedIn,
            "checked_out" => Self::CheckedOut,
            "no_show" => Self::NoShow,
            _ => return None,
        })
    }
}

/// One reservation of a guest. Checked-out stays feed the loyalty export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Stay {
    pub reservation_id: String,
    pub guest: GuestId,
    pub property: PropertyId,
    pub arrival: NaiveDate,
    pub departure: NaiveDate,
    pub status: StayStatus,
    pub updated_at: DateTime<Utc>,
}

/// A preference and the Cloudbeds custom field it maps to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldMapping {
    /// Our preference name (`wine`).
    pub preference: String,
    /// The custom field's name in Cloudbeds (`Wine preference`).
    pub name: String,
    /// Its shortcode (`guesthub_wine`).
    pub shortcode: String,
}

/// How screening statuses are written back to Cloudbeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScreeningWriteBack {
    /// A guest note per status (`postGuestNote`).
    #[default]
    Note,
    /// The two screening custom fields ([`SCREENING_STATUS_FIELD`],
    /// [`SCREENING_RESULT_FIELD`]), created once, filled with `putGuest`.
    /// Shown as `fields` on the command line.
    CustomField,
}

impl ScreeningWriteBack {
    /// `note` or `fields`, as `crm connect --screening-writeback` takes it.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "note" => Ok(Self::Note),
            "fields" => Ok(Self::CustomField),
            _ => Err(ValidationError::new(
                "screening_writeback",
                "is note or fields",
            )),
        }
    }
}

/// The custom field holding the screening status in `fields` mode
/// (`in_progress`, `passed`, `flagged`, `error`): (name, shortcode).
pub const SCREENING_STATUS_FIELD: (&str, &str) =
    ("GuestHub screening status", "guesthub_screening_status");
/// The custom field holding the screening result in `fields` mode.
pub const SCREENING_RESULT_FIELD: (&str, &str) =
    ("GuestHub screening result", "guesthub_screening_result");

/// An HTTP background-check service a connection screens with instead of
/// the watchlist. Holds where its signing secret is, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScreeningService {
    /// Where checks are sent (`POST`, HMAC-SHA256-signed JSON).
    pub url: String,
    /// Name of the environment variable holding the signing secret.
    pub secret_env: String,
    /// In AWS: the SSM parameter holding it (SecureString).
    pub secret_ssm_parameter: Option<String>,
}

/// A property's Cloudbeds connection. Holds where the key is, never the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CrmConnection {
    pub property: PropertyId,
    pub cloudbeds_property_id: String,
    /// Name of the environment variable holding the API key.
    pub api_key_env: String,
    /// In AWS: the SSM parameter holding the key (SecureString).
    pub api_key_ssm_parameter: Option<String>,
    pub base_url: String,
    pub field_map: Vec<FieldMapping>,
    pub screening_write_back: ScreeningWriteBack,
    /// The HTTP screening provider; none: the property's watchlist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screening_service: Option<ScreeningService>,
    /// SHA-256 of the webhook path token (the token is shown once).
    pub webhook_token_hash: String,
    pub connected_at: DateTime<Utc>,
}

pub const DEFAULT_CLOUDBEDS_BASE_URL: &str = "https://api.cloudbeds.com/api/v1.2";

/// The default preference → custom field mapping.
pub fn default_field_map() -> Vec<FieldMapping> {
    ["room", "smoking", "dietary", "wine"]
        .iter()
        .map(|p| FieldMapping {
            preference: (*p).to_owned(),
            name: format!("GuestHub {p}"),
            shortcode: format!("guesthub_{p}"),
        })
        .collect()
}

/// Where the pull stands for one property. `window_to` is fixed when a
/// window starts, so pages are numbered against a stable filter; `next_page`
/// moves only after a page was applied in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCursor {
    pub window_from: Option<DateTime<Utc>>,
    pub window_to: Option<DateTime<Utc>>,
    pub next_page: u32,
    /// Total the window reported on its first page (a change means records
    /// moved under the cursor).
    pub window_total: Option<u32>,
    /// Custom fields this property was asked to create (so a slow
    /// `getCustomFields` never makes us post one twice).
    #[serde(default)]
    pub created_fields: Vec<String>,
    pub last_run_at: Option<DateTime<Utc>>,
    /// Where the guests pull (`getGuestsByFilter`, guests modified without
    /// a reservation changing) goes on from.
    #[serde(default)]
    pub guests_from: Option<DateTime<Utc>>,
}

impl Default for SyncCursor {
    fn default() -> Self {
        Self {
            window_from: None,
            window_to: None,
            next_page: 1,
            window_total: None,
            created_fields: Vec::new(),
            last_run_at: None,
            guests_from: None,
        }
    }
}

/// A guest or reservation a webhook asked us to refetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum RefetchTarget {
    Guest(String),
    Reservation(String),
}

impl RefetchTarget {
    pub fn key(&self) -> String {
        match self {
            RefetchTarget::Guest(id) => format!("guest#{id}"),
            RefetchTarget::Reservation(id) => format!("reservation#{id}"),
        }
    }
}
