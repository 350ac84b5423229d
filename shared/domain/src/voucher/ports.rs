//! The voucher store port. `platform::store::voucher_repo` implements it
//! once on the item store, so DynamoDB and SQLite answer alike.
//!
//! Money-moving methods take an optional [`Receipt`]: the idempotent
//! response is committed in the same transaction as the balance change, so a
//! crash after the commit can never make a retry spend twice.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::VoucherError;
use super::code::VoucherCode;
use super::model::{Activity, LedgerEntry, Redemption, Voucher};
use super::pickup::{ArticleMapping, Order};
use super::rules::Change;
use crate::idempotency::{Lease, StoredResponse};
use crate::{PartnerId, Property, PropertyId, StoreError};

/// The response to store with a change, rendered from what was committed.
pub struct Receipt<'a, T: ?Sized> {
    pub lease: &'a Lease,
    pub status: u16,
    pub render: &'a (dyn Fn(&T) -> String + Send + Sync),
}

/// What a money-moving call did.
#[derive(Debug)]
pub enum Committed<T> {
    /// This call committed `T`.
    Applied(T),
    /// An earlier attempt with the same idempotency key committed; this is
    /// its stored answer.
    Replayed(StoredResponse),
}

/// How a status read or a change finds its voucher. The caller's property
/// is the likely issuer, so its copy is read in the same request as the
/// code lookup (one round trip); a voucher of another issuer costs a second.
pub struct Find<'a> {
    pub code: &'a VoucherCode,
    /// The caller's property: its own vouchers come first, then those of the
    /// issuers it accepts (see `rules::resolve_issuer`). Its pickup cursor,
    /// booking-in record and article mapping are read alongside.
    pub at: &'a Property,
    pub partner: &'a PartnerId,
    /// May the caller know of vouchers of this issuer? Others are "not
    /// found", exactly as if the code did not exist.
    pub may_see: &'a (dyn Fn(&PropertyId) -> bool + Send + Sync),
    /// The redemption a reversal names.
    pub redemption: Option<&'a str>,
    /// The issuer, when already known (a hold's record names it): then the
    /// code lookup is skipped.
    pub issuer: Option<&'a PropertyId>,
    /// A redemption by this change books the code in for the caller's
    /// partner when that partner never picked it up nor booked it in ("Kode").
    pub book_in: bool,
}

/// What the caller's PMS partner knows of a voucher at its property.
#[derive(Debug, Clone, Default)]
pub struct PmsView {
    /// The last order it acknowledged in the property's pickup feed.
    pub pickup_cursor: u64,
    /// It booked the code in with an earlier redemption ("Kode").
    pub booked_in: bool,
    /// Its article code per article type.
    pub mapping: ArticleMapping,
}

/// A voucher as found, with what the caller's partner knows of it.
#[derive(Debug, Clone)]
pub struct Found {
    pub voucher: Voucher,
    pub pms: PmsView,
}

/// A committed change, with what the caller's partner knew of the voucher
/// before it.
#[derive(Debug, Clone)]
pub struct Changed {
    pub change: Change,
    pub pms: PmsView,
    /// This change booked the code in for the caller's partner.
    pub booked_in: bool,
}

/// How issuer staff find vouchers whose code was lost.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The order reference given at sale (exact, trimmed).
    OrderRef(String),
    BuyerEmail(crate::Email),
}

/// A rule run against the voucher's current state (and the redemption it
/// names, if any) at the store's `now`. Run again on every retry.
pub type Rule<'a> = dyn Fn(&Voucher, Option<&Redemption>, DateTime<Utc>) -> Result<Change, VoucherError>
    + Send
    + Sync
    + 'a;

#[async_trait]
pub trait VoucherStore: Send + Sync {
    /// Which issuer's voucher the caller at `at` means by `code` (the one
    /// global lookup; no personal data): see `rules::resolve_issuer`.
    async fn issuer_for(
        &self,
        code: &VoucherCode,
        at: &Property,
        may_see: &(dyn for<'p> Fn(&'p PropertyId) -> bool + Send + Sync),
    ) -> Result<PropertyId, VoucherError>;

    async fn voucher(
        &self,
        issuer: &PropertyId,
        code: &VoucherCode,
    ) -> Result<Option<Voucher>, StoreError>;

    async fn redemption(
        &self,
        issuer: &PropertyId,
        code: &VoucherCode,
        id: &str,
    ) -> Result<Option<Redemption>, StoreError>;

    /// The ledger after activity `after`, oldest first.
    async fn activities(
        &self,
        issuer: &PropertyId,
        code: &VoucherCode,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Activity>, StoreError>;

    /// Creates a voucher with its opening activities and, when `in_feed`,
    /// its order at the end of each pickup feed in `feeds` (the issuer's
    /// and those of hotels that pick up the issuer's orders; the store
    /// assigns each feed's sequence). `Err(CodeTaken)` when the issuer holds
    /// the code already, or when it is a generated code and anyone does:
    /// generated codes are unique, printed codes belong to their issuer.
    async fn create(
        &self,
        change: &Change,
        feeds: &[PropertyId],
        receipt: Option<Receipt<'_, Voucher>>,
    ) -> Result<Committed<Voucher>, VoucherError>;

    /// The voucher `find` names, if the caller may see it: `Err(NotFound)`
    /// otherwise, the same whether it is missing or another's.
    async fn find(&self, find: &Find<'_>) -> Result<Found, VoucherError>;

    /// Applies `rule` to the voucher's current state and commits the new
    /// state with its activities, retrying when another change won the
    /// race. `Err(NotFound)` / `Err(RedemptionNotFound)` when they are
    /// missing; the rule's own refusal otherwise. With an unlocked lease in
    /// the receipt, the idempotency record is read with the voucher: an
    /// answer already stored is replayed instead of running the rule.
    async fn change(
        &self,
        find: &Find<'_>,
        rule: &Rule<'_>,
        receipt: Option<Receipt<'_, Changed>>,
    ) -> Result<Committed<Changed>, VoucherError>;

    /// Where the hold `hold_id` placed by `property` lives.
    async fn hold_location(
        &self,
        property: &PropertyId,
        hold_id: &str,
    ) -> Result<Option<(PropertyId, VoucherCode)>, StoreError>;

    /// Orders of `issuer`'s feed after sequence `after`, oldest first.
    async fn orders_after(
        &self,
        issuer: &PropertyId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError>;

    /// The sequence of the newest order in `issuer`'s feed (0 when none).
    async fn last_order(&self, issuer: &PropertyId) -> Result<u64, StoreError>;

    /// The last order `partner` acknowledged in `property`'s feed.
    async fn pickup_cursor(
        &self,
        property: &PropertyId,
        partner: &PartnerId,
    ) -> Result<u64, StoreError>;

    /// Moves the cursor forward to `cursor` (never back). Returns the cursor
    /// now stored. `Err(CursorOutOfRange)` beyond the newest order, which
    /// would skip orders not written yet.
    async fn acknowledge(
        &self,
        property: &PropertyId,
        partner: &PartnerId,
        cursor: u64,
    ) -> Result<u64, VoucherError>;

    async fn article_mapping(
        &self,
        property: &PropertyId,
        partner: &PartnerId,
    ) -> Result<ArticleMapping, StoreError>;

    async fn save_article_mapping(
        &self,
        property: &PropertyId,
        partner: &PartnerId,
        mapping: &ArticleMapping,
    ) -> Result<(), StoreError>;

    /// Settled activities in `[from, to)` where `property` accepted the
    /// voucher or issued it.
    async fn settlement_entries(
        &self,
        property: &PropertyId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<LedgerEntry>, StoreError>;

    /// `issuer`'s vouchers sold under an order reference or to a buyer,
    /// newest first, at most `limit`.
    async fn vouchers_by(
        &self,
        issuer: &PropertyId,
        by: &Lookup,
        limit: usize,
    ) -> Result<Vec<Voucher>, StoreError>;

    /// Codes of `issuer`'s vouchers whose validity ended on or before `through`.
    async fn valid_until_through(
        &self,
        issuer: &PropertyId,
        through: NaiveDate,
    ) -> Result<Vec<VoucherCode>, StoreError>;
}
