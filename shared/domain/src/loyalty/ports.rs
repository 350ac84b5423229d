//! The loyalty ports: the store and the place export files go.

use std::io::Read;

use async_trait::async_trait;
use thiserror::Error;

use super::{Enrolment, ExportRecord, ExportState, LoyaltyConnection, LoyaltyStay};
use crate::guest::GuestId;
use crate::{PropertyId, StoreError};

#[async_trait]
pub trait LoyaltyStore: Send + Sync {
    async fn save_loyalty_connection(&self, c: &LoyaltyConnection) -> Result<(), StoreError>;
    async fn loyalty_connection(
        &self,
        p: &PropertyId,
    ) -> Result<Option<LoyaltyConnection>, StoreError>;

    async fn enrolment(&self, p: &PropertyId, g: &GuestId)
    -> Result<Option<Enrolment>, StoreError>;
    /// Creates an enrolment and queues its ENROL record, in one write.
    /// `Err(Conflict)` when the guest is enrolled already.
    async fn enrol(&self, e: &Enrolment, record: &ExportRecord) -> Result<Enrolment, StoreError>;
    /// Saves an enrolment read at `e.revision`. `Err(Conflict)` when it
    /// changed since, or its loyalty number belongs to another guest.
    async fn save_enrolment(&self, e: &Enrolment) -> Result<Enrolment, StoreError>;
    /// Every enrolment of a property (the name search reads them).
    async fn enrolments(&self, p: &PropertyId) -> Result<Vec<Enrolment>, StoreError>;
    /// The guest holding a loyalty number.
    async fn guest_by_loyalty_number(
        &self,
        p: &PropertyId,
        number: &str,
    ) -> Result<Option<GuestId>, StoreError>;

    async fn loyalty_stay(
        &self,
        p: &PropertyId,
        reservation: &str,
    ) -> Result<Option<LoyaltyStay>, StoreError>;
    /// Saves a stay read at `stay.version` (0: new) and queues its records,
    /// in one write; `previous` is the stay as read (its guest's held
    /// marker is moved with it). `Err(Conflict)` when the stay changed
    /// meanwhile.
    async fn save_loyalty_stay(
        &self,
        stay: &LoyaltyStay,
        previous: Option<&LoyaltyStay>,
        records: &[ExportRecord],
    ) -> Result<(), StoreError>;
    /// Reservations whose stays are held for this guest (not enrolled when
    /// they departed).
    async fn held_reservations(
        &self,
        p: &PropertyId,
        guest: &GuestId,
    ) -> Result<Vec<String>, StoreError>;
    /// How many stays of the property are held: departures of guests who
    /// were not enrolled, kept here and not exported.
    async fn held_stay_count(&self, p: &PropertyId) -> Result<usize, StoreError>;

    async fn export_record(
        &self,
        p: &PropertyId,
        transaction_id: &str,
    ) -> Result<Option<ExportRecord>, StoreError>;
    /// Records not yet delivered nor left out, in queue order, at most
    /// `limit`.
    async fn pending_records(
        &self,
        p: &PropertyId,
        limit: usize,
    ) -> Result<Vec<ExportRecord>, StoreError>;
    /// Marks records delivered in `file` (or left out when `file` is None).
    /// Idempotent; not atomic as a whole (the open batch covers a crash).
    async fn mark_records(
        &self,
        records: &[ExportRecord],
        file: Option<&str>,
    ) -> Result<(), StoreError>;

    async fn export_state(&self, p: &PropertyId) -> Result<ExportState, StoreError>;
    /// Saves the state read at `s.version` (0: never saved).
    /// `Err(Conflict)` when another run changed it.
    async fn save_export_state(&self, p: &PropertyId, s: &ExportState) -> Result<(), StoreError>;

    /// Whether a members file of this name was applied (within 90 days).
    async fn members_file_seen(&self, p: &PropertyId, name: &str) -> Result<bool, StoreError>;
    /// Remembers an applied members file.
    async fn record_members_file(&self, p: &PropertyId, name: &str) -> Result<(), StoreError>;
}

/// What a file transfer can fail with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransferError {
    /// Could not connect, log in, or the connection broke: try again later.
    #[error("the file server is unavailable: {0}")]
    Unavailable(String),
    /// The server refused the operation (permissions, a rename refused).
    #[error("the file server refused: {0}")]
    Refused(String),
    /// The connection is misconfigured (password missing, bad certificate).
    #[error("the connection is misconfigured: {0}")]
    Config(String),
}

/// The folder export files go to and members files come from: NetCarrots'
/// FTP/FTPS/SFTP server, or a local folder when no connection is set.
#[async_trait]
pub trait FileDrop: Send + Sync {
    /// Whether the upload folder holds a file of this name.
    async fn exists(&self, name: &str) -> Result<bool, TransferError>;
    /// Writes `bytes` to `name` in the upload folder (replacing it).
    async fn upload(&self, name: &str, bytes: &[u8]) -> Result<(), TransferError>;
    /// Renames a file of the upload folder.
    async fn rename(&self, from: &str, to: &str) -> Result<(), TransferError>;
    /// Names of the files in the return folder.
    async fn list_returns(&self) -> Result<Vec<String>, TransferError>;
    /// Opens a file of the return folder (spooled locally first, so it is
    /// read as a stream, not held in memory).
    async fn open_return(&self, name: &str) -> Result<Box<dyn Read + Send>, TransferError>;
    /// Moves a processed return file out of the way (`return/processed/`).
    async fn archive_return(&self, name: &str) -> Result<(), TransferError>;
}
