//! The guest ports: storage, the CRM (Cloudbeds) client, screening.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use thiserror::Error;

// The screening port lives with its subject and outcome types; it is
// re-exported here with the other ports (screening never imports ports).
use super::runs::SyncRun;
use super::screening::Watchlist;
pub use super::screening::{ScreeningError, ScreeningProvider};
use super::{
    Address, CrmConnection, Document, Guest, GuestId, Note, RefetchTarget, Stay, SyncCursor,
};
use crate::{Email, PropertyId, StoreError};

#[async_trait]
pub trait GuestStore: Send + Sync {
    async fn guest(&self, p: &PropertyId, id: &GuestId) -> Result<Option<Guest>, StoreError>;
    async fn guest_by_email(&self, p: &PropertyId, e: &Email) -> Result<Option<Guest>, StoreError>;
    async fn guest_by_cloudbeds_id(
        &self,
        p: &PropertyId,
        cloudbeds_guest_id: &str,
    ) -> Result<Option<Guest>, StoreError>;
    /// Creates a guest. `Err(Conflict)` when its id, email or Cloudbeds id
    /// is taken in the property.
    async fn create_guest(&self, g: &Guest) -> Result<Guest, StoreError>;
    /// Saves a guest read at `g.revision`; returns it at its new revision.
    /// `Err(Conflict)` when it changed since, or its new email or
    /// Cloudbeds id belongs to another guest.
    async fn save_guest(&self, g: &Guest) -> Result<Guest, StoreError>;
    /// Guests the sync has work for (see `Guest::needs_sync`).
    async fn guests_needing_sync(&self, p: &PropertyId) -> Result<Vec<Guest>, StoreError>;

    /// Adds a note. `Err(Conflict)` when its id exists.
    async fn add_note(&self, p: &PropertyId, n: &Note) -> Result<(), StoreError>;
    /// Replaces a note (e.g. to record its Cloudbeds id).
    async fn save_note(&self, p: &PropertyId, n: &Note) -> Result<(), StoreError>;
    /// A guest's notes, oldest first.
    async fn notes(&self, p: &PropertyId, g: &GuestId) -> Result<Vec<Note>, StoreError>;
    /// Deletes every note of a guest (erasure).
    async fn delete_notes(&self, p: &PropertyId, g: &GuestId) -> Result<(), StoreError>;

    async fn save_stay(&self, s: &Stay) -> Result<(), StoreError>;
    async fn stays(&self, p: &PropertyId, g: &GuestId) -> Result<Vec<Stay>, StoreError>;

    async fn watchlist(&self, p: &PropertyId) -> Result<Watchlist, StoreError>;
    async fn save_watchlist(&self, p: &PropertyId, w: &Watchlist) -> Result<(), StoreError>;

    /// Creates or replaces a connection and its webhook token lookup.
    async fn save_connection(&self, c: &CrmConnection) -> Result<(), StoreError>;
    async fn connection(&self, p: &PropertyId) -> Result<Option<CrmConnection>, StoreError>;
    async fn connections(&self) -> Result<Vec<CrmConnection>, StoreError>;
    /// The property whose webhook token hashes to `token_hash`.
    async fn property_by_webhook_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<PropertyId>, StoreError>;

    async fn sync_cursor(&self, p: &PropertyId) -> Result<SyncCursor, StoreError>;
    async fn save_sync_cursor(&self, p: &PropertyId, c: &SyncCursor) -> Result<(), StoreError>;

    /// Records a webhook delivery and its refetch target in one write.
    /// `Ok(false)` when this delivery was seen before (a retry).
    async fn record_webhook(
        &self,
        p: &PropertyId,
        delivery_hash: &str,
        target: Option<&RefetchTarget>,
    ) -> Result<bool, StoreError>;
    /// Records one sync run (kept 90 days).
    async fn save_sync_run(&self, p: &PropertyId, run: &SyncRun) -> Result<(), StoreError>;
    /// The property's runs, newest first, at most `limit`.
    async fn sync_runs(&self, p: &PropertyId, limit: usize) -> Result<Vec<SyncRun>, StoreError>;
    /// Targets webhooks marked, each with the mark it carries now.
    async fn refetch_targets(
        &self,
        p: &PropertyId,
    ) -> Result<Vec<(RefetchTarget, i64)>, StoreError>;
    /// Clears a target only if no webhook re-marked it since `mark` was read,
    /// so a delivery that arrives while a run handles the target is kept.
    async fn clear_refetch(
        &self,
        p: &PropertyId,
        t: &RefetchTarget,
        mark: i64,
    ) -> Result<(), StoreError>;
}

/// What a CRM call can fail with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CrmError {
    /// The key was refused (401/403): the connection needs fixing.
    #[error("the CRM refused the credentials")]
    Unauthorized,
    /// The CRM answered `success: false` or 4xx; retrying will not help.
    #[error("the CRM rejected the request: {0}")]
    Rejected(String),
    /// Still failing after the retries (429, 5xx, timeouts, network).
    #[error("the CRM is unavailable: {0}")]
    Unavailable(String),
    /// A non-idempotent call may or may not have been applied (timeout or
    /// 5xx after sending): re-read before trying again.
    #[error("the CRM may have applied the request: {0}")]
    Ambiguous(String),
    /// The answer did not have the published shape.
    #[error("the CRM answered an unexpected shape: {0}")]
    Malformed(String),
}

/// A custom field as Cloudbeds lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCustomField {
    pub name: String,
    pub shortcode: String,
    pub apply_to: String,
}

/// One page of reservations modified in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct ReservationPage {
    pub reservations: Vec<RemoteReservation>,
    /// Cloudbeds' `total` for the whole filter.
    pub total: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RemoteReservation {
    pub reservation_id: String,
    pub status: String,
    pub arrival: NaiveDate,
    pub departure: NaiveDate,
    pub modified_at: DateTime<Utc>,
    /// The guests on it (`guestList`, the main guest first).
    pub guest_ids: Vec<String>,
    /// Their details as `includeGuestsDetails=true` lists them, same order.
    pub guests: Vec<ReservationGuest>,
}

/// A guest of a reservation as `getReservations` lists it with
/// `includeGuestsDetails=true`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ReservationGuest {
    pub guest_id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub main: bool,
}

impl std::fmt::Debug for ReservationGuest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReservationGuest({})", self.guest_id)
    }
}

/// Which reservations `getReservations` returns by their dates: arrivals
/// (`checkInFrom`/`checkInTo`) or departures (`checkOutFrom`/`checkOutTo`)
/// within `[from, to]`, optionally of one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationDates {
    pub by: DateKind,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Cloudbeds' status name (`confirmed`, `checked_in`, ...).
    pub status: Option<String>,
    pub page: u32,
    pub page_size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateKind {
    CheckIn,
    CheckOut,
}

/// A guest's status as `getGuestsByFilter` takes it (required there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestStatus {
    NotCheckedIn,
    InHouse,
    CheckedOut,
    Cancelled,
}

impl GuestStatus {
    pub const ALL: [GuestStatus; 4] = [
        GuestStatus::NotCheckedIn,
        GuestStatus::InHouse,
        GuestStatus::CheckedOut,
        GuestStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GuestStatus::NotCheckedIn => "not_checked_in",
            GuestStatus::InHouse => "in_house",
            GuestStatus::CheckedOut => "checked_out",
            GuestStatus::Cancelled => "cancelled",
        }
    }
}

/// A `getGuestsByFilter` query: a status, and optionally a modification
/// window and a guest's name or email.
#[derive(Clone, PartialEq, Eq)]
pub struct GuestFilter {
    pub status: GuestStatus,
    pub modified_from: Option<DateTime<Utc>>,
    pub modified_to: Option<DateTime<Utc>>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub page: u32,
    pub page_size: u32,
}

impl std::fmt::Debug for GuestFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GuestFilter({}, page {})",
            self.status.as_str(),
            self.page
        )
    }
}

/// One guest of a `getGuestsByFilter` page.
#[derive(Clone, PartialEq, Eq)]
pub struct FilteredGuest {
    pub guest_id: String,
    pub reservation_id: Option<String>,
    pub modified_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for FilteredGuest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FilteredGuest({})", self.guest_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestPage {
    pub guests: Vec<FilteredGuest>,
    /// Cloudbeds' `total` for the whole filter.
    pub total: u32,
}

/// A reservation's revenue as `getReservation` answers it (decimal text in
/// the property's currency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRevenue {
    /// Room prices (`balanceDetailed.subTotal`).
    pub room: String,
    /// Additional items (`balanceDetailed.additionalItems`).
    pub other: String,
}

/// A guest record as `getGuest` answers it.
#[derive(Clone, PartialEq)]
pub struct RemoteGuest {
    pub guest_id: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub document_number: Option<String>,
    pub document: Document,
    pub address: Address,
    /// `customFields` by name.
    pub custom_fields: BTreeMap<String, String>,
    pub opt_in: bool,
    pub anonymized: bool,
    /// Set when Cloudbeds merged this guest into another.
    pub merged_into: Option<String>,
}

impl std::fmt::Debug for RemoteGuest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteGuest({})", self.guest_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteNote {
    pub note_id: String,
    pub text: String,
}

/// The fields a `putGuest` sends: only what is set is sent.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GuestUpdate {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Also overwritten with a placeholder on erasure.
    pub birth_date: Option<NaiveDate>,
    pub document_number: Option<String>,
    /// Only the parts that are set are sent.
    pub document: Document,
    pub address: Address,
    /// (custom field name, value)
    pub custom_fields: Vec<(String, String)>,
}

impl std::fmt::Debug for GuestUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GuestUpdate({} custom fields)", self.custom_fields.len())
    }
}

/// Cloudbeds, as the sync uses it. One client speaks for one property (and
/// holds that property's rate limit).
#[async_trait]
pub trait CrmClient: Send + Sync {
    /// `getCustomFields`.
    async fn custom_fields(&self) -> Result<Vec<RemoteCustomField>, CrmError>;
    /// `postCustomField` for a guest field. Not idempotent.
    async fn create_custom_field(&self, name: &str, shortcode: &str) -> Result<(), CrmError>;
    /// `getReservations` modified in `[from, to]`, page `page` (1-based).
    async fn reservations(
        &self,
        from: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
        page: u32,
        page_size: u32,
    ) -> Result<ReservationPage, CrmError>;
    /// `getReservations` by check-in or check-out dates, with the guests'
    /// details.
    async fn reservations_by_dates(
        &self,
        q: &ReservationDates,
    ) -> Result<ReservationPage, CrmError>;
    /// `getGuestsByFilter`: one page of guests.
    async fn guests_by_filter(&self, f: &GuestFilter) -> Result<GuestPage, CrmError>;
    /// `getReservation`: one reservation and its guests (a webhook named it).
    async fn reservation(&self, reservation_id: &str) -> Result<RemoteReservation, CrmError>;
    /// `getReservation`: the revenue of one reservation (for loyalty).
    async fn reservation_revenue(&self, reservation_id: &str) -> Result<RemoteRevenue, CrmError>;
    /// `getGuest` by guest id.
    async fn guest(&self, guest_id: &str) -> Result<RemoteGuest, CrmError>;
    /// `getGuestNotes`.
    async fn guest_notes(&self, guest_id: &str) -> Result<Vec<RemoteNote>, CrmError>;
    /// `putGuest`. Idempotent.
    async fn put_guest(&self, guest_id: &str, update: &GuestUpdate) -> Result<(), CrmError>;
    /// `postGuestNote` → `guestNoteID`. Not idempotent.
    async fn post_guest_note(&self, guest_id: &str, text: &str) -> Result<String, CrmError>;
}

/// A property's Cloudbeds work wanted now rather than at the next
/// schedule (a webhook arrived, a screening answer came back). It names
/// the property only: what to do is in the store (the refetch targets, the
/// guests needing sync), so duplicates are harmless.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncRequest {
    pub property: PropertyId,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueueError {
    #[error("the sync queue is unavailable: {0}")]
    Unavailable(String),
}

/// Where [`SyncRequest`]s go: an SQS queue `crm-sync` consumes in AWS, a
/// channel the served hub consumes in process locally.
#[async_trait]
pub trait SyncQueue: Send + Sync {
    async fn enqueue(&self, r: &SyncRequest) -> Result<(), QueueError>;
}
