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
        }
    }
}
