//! What checkout refuses, with the stable codes partners branch on.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CheckoutError {
    #[error("no product {0}")]
    UnknownProduct(String),
    #[error("product {product} has no unit {unit}")]
    UnknownUnit { product: String, unit: String },
    #[error("an order takes one currency; its items are in several")]
    CurrencyMismatch,
    #[error("this event is for club members only")]
    MembersOnlyEvent,
    #[error("this event is for members of certain club tiers only")]
    TierNotAllowed,
    #[error("the membership expired before this visit")]
    MembershipExpired,
    #[error("the membership is not valid yet for this visit")]
    MembershipNotYetValid,
    #[error("the membership was cancelled")]
    MembershipCancelled,
    #[error("the membership's order is not paid yet")]
    MembershipUnpaid,
    #[error("test memberships only in test orders, live ones only in live orders")]
    TestModeMismatch,
    #[error("the membership's benefit has been used up")]
    BenefitLimitReached,
    #[error("the payment parts do not add up to the amount due")]
    PaymentMismatch,
    #[error("cash tendered is less than the cash amount")]
    InsufficientCash,
    #[error("{0}")]
    InvalidPayment(&'static str),
    #[error("{0}")]
    InvalidOrder(&'static str),
    /// A product asked for by its id (not as an order's item).
    #[error("no such product")]
    ProductNotFound,
    #[error("no such order")]
    OrderNotFound,
    /// A membership asked for, or one an order renews (the message says which).
    #[error("{0}")]
    MembershipNotFound(&'static str),
    #[error("only {left} seats left on {date}")]
    SoldOut { left: u32, date: chrono::NaiveDate },
    #[error("this order has no balance due")]
    NothingDue,
    /// An order's uuid is its idempotency key.
    #[error("this order uuid was used with a different request")]
    UuidReused,
    #[error("each member needs: {}", .0.join(", "))]
    MemberFieldsMissing(Vec<String>),
    /// A search's query parameters (the message says what is wrong).
    #[error("{0}")]
    InvalidQuery(&'static str),
    /// A field outside the request body's own checks: a path's tier, an
    /// order's uuid, a membership start that has no end (the message names it).
    #[error("{0}")]
    InvalidField(&'static str),
}

impl CheckoutError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            CheckoutError::UnknownProduct(_) => "product_not_found",
            CheckoutError::UnknownUnit { .. } => "unit_not_found",
            CheckoutError::CurrencyMismatch => "currency_mismatch",
            CheckoutError::MembersOnlyEvent => "members_only_event",
            CheckoutError::TierNotAllowed => "tier_not_allowed",
            CheckoutError::MembershipExpired => "membership_expired",
            CheckoutError::MembershipNotYetValid => "membership_not_yet_valid",
            CheckoutError::MembershipCancelled => "membership_cancelled",
            CheckoutError::MembershipUnpaid => "membership_unpaid",
            CheckoutError::TestModeMismatch => "test_mode_mismatch",
            CheckoutError::BenefitLimitReached => "benefit_limit_reached",
            CheckoutError::PaymentMismatch => "payment_mismatch",
            CheckoutError::InsufficientCash => "insufficient_cash",
            CheckoutError::InvalidPayment(_) => "invalid_payment",
            CheckoutError::InvalidOrder(_) => "invalid_order",
            CheckoutError::ProductNotFound => "product_not_found",
            CheckoutError::OrderNotFound => "order_not_found",
            CheckoutError::MembershipNotFound(_) => "membership_not_found",
            CheckoutError::SoldOut { .. } => "sold_out",
            CheckoutError::NothingDue => "nothing_due",
            CheckoutError::UuidReused => "idempotency_key_reused",
            CheckoutError::InvalidQuery(_) => "invalid_query",
            CheckoutError::InvalidField(_) => "invalid_field",
            CheckoutError::MemberFieldsMissing(_) => "member_fields_missing",
        }
    }
}
