//! Vouchers and gift cards: GuestHub sells them and keeps
//! their ledger; hotel PMSs pick orders up, ask for a voucher's status and
//! redeem it, fully or partly.
//!
//! Layout:
//! - [`code`]: `VoucherCode` — generated codes with a check character, and
//!   external codes kept as printed.
//! - [`model`]: the `Voucher` aggregate, holds, redemptions, and the ledger's
//!   `Activity`.
//! - [`rules`]: every change as a pure function of the current state — issue,
//!   load, redeem, reverse, hold/capture/release, block, cancel, write-off,
//!   import — returning the new state and the activities that explain it.
//! - [`pickup`]: orders in an issuer's pickup feed and a partner's article mapping.
//! - [`settlement`]: the settlement report's aggregation.
//! - [`ports`]: the voucher store port (DynamoDB and SQLite in `platform`).
//!
//! Invariant: a balance changes only with an activity, and
//! `balance = Σ activity.amount` for every voucher, always.

pub mod code;
pub mod model;
pub mod pickup;
pub mod ports;
pub mod rules;
pub mod settlement;

use chrono::NaiveDate;
use thiserror::Error;

use crate::idempotency::IdempotencyError;
use crate::{Currency, Money, StoreError, ValidationError};

pub use code::VoucherCode;
pub use model::{
    Activity, ActivityKind, ArticleType, Buyer, Hold, LedgerEntry, Redemption, Reservation,
    Voucher, VoucherStatus,
};
pub use rules::{Actor, Change};

/// Why a voucher operation was refused. `code()` is the stable code partners
/// branch on; the HTTP status is chosen in `platform::http::error`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VoucherError {
    /// No such voucher, or not one the caller may see.
    #[error("no voucher with this code")]
    NotFound {
        /// The code fails its check character: probably a typo.
        mistyped: bool,
    },
    #[error("the available balance is {available}")]
    InsufficientBalance { available: Money },
    #[error("the voucher is no longer valid")]
    Expired { valid_until: Option<NaiveDate> },
    #[error("the voucher is blocked")]
    Blocked,
    #[error("the voucher was cancelled")]
    Cancelled,
    #[error("this property does not accept vouchers of the voucher's issuer")]
    NotRedeemableHere,
    #[error("the voucher is in {expected}")]
    CurrencyMismatch { expected: Currency },
    #[error("a zero amount (or a voucher without value) cannot be used")]
    ZeroValue,
    #[error("a package voucher is redeemed whole: {balance}")]
    PackageRequiresFullRedemption { balance: Money },
    #[error("test and live vouchers and requests do not mix")]
    TestModeMismatch { voucher_test_mode: bool },
    #[error("a voucher with this code exists already")]
    CodeTaken,
    /// Several issuers the caller may see hold this printed code, none of
    /// them the caller's own property and not exactly one it accepts.
    #[error("several issuers hold this code")]
    CodeAmbiguous { issuers: Vec<crate::PropertyId> },
    #[error("only the issuing property may do this")]
    NotIssuer,
    #[error("only gift cards can be loaded")]
    NotAGiftCard,
    #[error("no such redemption of this voucher")]
    RedemptionNotFound,
    #[error("at most {reversible} of this redemption can still be reversed")]
    ReversalExceedsRedemption { reversible: Money },
    #[error("this redemption paid order {order_id}: cancel the order to give it back")]
    RedemptionBelongsToOrder { order_id: String },
    #[error("no such hold")]
    HoldNotFound,
    #[error("the hold was captured or released already")]
    HoldClosed,
    #[error("the hold expired")]
    HoldExpired,
    #[error("a capture takes at most the held {held}")]
    CaptureExceedsHold { held: Money },
    #[error("the voucher has too many open holds")]
    TooManyHolds,
    #[error("the cursor is beyond the last order ({last})")]
    CursorOutOfRange { last: u64 },
    #[error("an import takes at most {max} vouchers; split the file")]
    TooManyLines { max: usize },
    /// A lost-code lookup names what to look by: exactly one of its keys.
    #[error("give exactly one of order_ref and buyer_email")]
    LookupNeedsOne,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("the idempotency key was used with a different request")]
    IdempotencyKeyReused,
    #[error("a request with this idempotency key is still in flight")]
    IdempotencyKeyInFlight,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl VoucherError {
    /// The stable, snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            VoucherError::NotFound { .. } => "voucher_not_found",
            VoucherError::InsufficientBalance { .. } => "insufficient_balance",
            VoucherError::Expired { .. } => "voucher_expired",
            VoucherError::Blocked => "voucher_blocked",
            VoucherError::Cancelled => "voucher_cancelled",
            VoucherError::NotRedeemableHere => "voucher_not_redeemable_here",
            VoucherError::CurrencyMismatch { .. } => "currency_mismatch",
            VoucherError::ZeroValue => "zero_value",
            VoucherError::PackageRequiresFullRedemption { .. } => {
                "package_requires_full_redemption"
            }
            VoucherError::TestModeMismatch { .. } => "test_mode_mismatch",
            VoucherError::CodeTaken => "voucher_code_taken",
            VoucherError::CodeAmbiguous { .. } => "voucher_code_ambiguous",
            VoucherError::NotIssuer => "not_issuer",
            VoucherError::NotAGiftCard => "not_a_gift_card",
            VoucherError::RedemptionNotFound => "redemption_not_found",
            VoucherError::ReversalExceedsRedemption { .. } => "reversal_exceeds_redemption",
            VoucherError::RedemptionBelongsToOrder { .. } => "redemption_belongs_to_order",
            VoucherError::HoldNotFound => "hold_not_found",
            VoucherError::HoldClosed => "hold_closed",
            VoucherError::HoldExpired => "hold_expired",
            VoucherError::CaptureExceedsHold { .. } => "capture_exceeds_hold",
            VoucherError::TooManyHolds => "too_many_holds",
            VoucherError::CursorOutOfRange { .. } => "cursor_out_of_range",
            VoucherError::TooManyLines { .. } => "too_many_lines",
            VoucherError::LookupNeedsOne => "invalid_query",
            VoucherError::Invalid(_) => "invalid_field",
            VoucherError::IdempotencyKeyReused => "idempotency_key_reused",
            VoucherError::IdempotencyKeyInFlight => "idempotency_key_in_flight",
            VoucherError::Store(_) => "store_error",
        }
    }
}

impl From<IdempotencyError> for VoucherError {
    fn from(e: IdempotencyError) -> Self {
        match e {
            IdempotencyError::Reused => VoucherError::IdempotencyKeyReused,
            IdempotencyError::InFlight | IdempotencyError::LockLost => {
                VoucherError::IdempotencyKeyInFlight
            }
            IdempotencyError::Store(s) => VoucherError::Store(s),
        }
    }
}
