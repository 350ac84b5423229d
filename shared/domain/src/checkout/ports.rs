//! The checkout's port: an order's changes gathered into one transaction and
//! committed all or nothing, so no seat, benefit or gift-card value is taken
//! unless the order is.

use async_trait::async_trait;
use chrono::NaiveDate;

use super::membership::{Booking, Membership};
use super::order::{Seats, StoredOrder};
use crate::idempotency::{IdempotencyPolicy, Lease, StoredResponse};
use crate::voucher::ports::Rule;
use crate::voucher::{Change, VoucherCode, VoucherError};
use crate::{PropertyId, StoreError};

/// Writes conditioned on the versions read: `None` creates (the item must be
/// absent), `Some(v)` changes the version `v` that was read.
#[async_trait]
pub trait CheckoutStore: Send + Sync {
    /// One attempt's writes, in the adapter's own terms.
    type Tx: Default + Send;

    /// The order itself; it goes first in its transaction. Its events go
    /// with it: a new order is `order.created` (and `order.paid` when paid
    /// in full); an existing order is written only when paid or cancelled.
    fn put_order(
        &self,
        tx: &mut Self::Tx,
        p: &PropertyId,
        order: &StoredOrder,
        version: Option<i64>,
    );

    fn put_membership(
        &self,
        tx: &mut Self::Tx,
        p: &PropertyId,
        m: &Membership,
        version: Option<i64>,
    );

    /// A membership's booking: `create` when the order makes it (it must be
    /// new), else it is overwritten (a cancellation).
    fn put_booking(
        &self,
        tx: &mut Self::Tx,
        p: &PropertyId,
        reference: &str,
        b: &Booking,
        create: bool,
    );

    #[allow(clippy::too_many_arguments)]
    fn put_seats(
        &self,
        tx: &mut Self::Tx,
        p: &PropertyId,
        product: &str,
        date: NaiveDate,
        test: bool,
        seats: Seats,
        version: Option<i64>,
    );

    /// A gift card's ledger change decided by `rule` on the voucher as it is
    /// now (with the redemption `redemption`, if named), joined to `tx`.
    async fn plan_gift_card(
        &self,
        tx: &mut Self::Tx,
        issuer: &PropertyId,
        code: &VoucherCode,
        redemption: Option<&str>,
        rule: &Rule<'_>,
    ) -> Result<Change, VoucherError>;

    /// Stores the request's answer under its idempotency lease, in `tx`.
    fn put_answer(
        &self,
        tx: &mut Self::Tx,
        lease: &Lease,
        answer: &StoredResponse,
        policy: IdempotencyPolicy,
    );

    /// Commits `tx`: `Ok(false)` when it lost a race to another change (read
    /// again and plan again).
    async fn commit_order(&self, tx: Self::Tx) -> Result<bool, StoreError>;
}
