//! Orders as requested and as stored.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::membership::{Contact, Membership};
use super::payment::{CheckedPart, PaymentMode, PaymentPart};
use super::pricing::PricedLine;
use crate::Money;

/// `POST /orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// The order's id and idempotency key (OCTO `uuid`).
    pub uuid: String,
    #[serde(default)]
    pub test_mode: bool,
    #[serde(default)]
    pub contact: Contact,
    /// Redeem this membership on the order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promo_code: Option<String>,
    pub items: Vec<ItemRequest>,
    pub payment: PaymentRequest,
}

impl OrderRequest {
    /// The contact's and every member's names are one line each.
    pub fn check_names(&self) -> Result<(), crate::ValidationError> {
        self.contact.validate("contact")?;
        for item in &self.items {
            for m in &item.members {
                m.validate("members")?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemRequest {
    pub product_id: String,
    pub unit_id: String,
    pub quantity: u32,
    /// The visit date (events with capacity need one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    /// Memberships: the first day of validity (default: today, local).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<NaiveDate>,
    /// Memberships: the membership this one renews.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renews: Option<String>,
    /// Memberships: the member's contact per ticket.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Contact>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    pub mode: PaymentMode,
    #[serde(default)]
    pub parts: Vec<PaymentPart>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Paid in full.
    Confirmed,
    /// Booked; a balance is due (pay later).
    AwaitingPayment,
    Cancelled,
}

/// A gift-card payment as taken from the voucher ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GiftCardCharge {
    pub issuer: String,
    /// Masked (last four characters) in answers.
    pub code: String,
    pub redemption_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecordedPayment {
    #[serde(flatten)]
    pub checked: CheckedPart,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gift_card: Option<GiftCardCharge>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderLine {
    #[serde(flatten)]
    pub priced: PricedLine,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    /// Memberships sold on this line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memberships: Vec<Membership>,
}

/// The order as stored and answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Order {
    pub id: String,
    pub status: OrderStatus,
    pub test_mode: bool,
    pub contact: Contact,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promo_code: Option<String>,
    pub lines: Vec<OrderLine>,
    pub subtotal: Money,
    pub discount_total: Money,
    pub total: Money,
    pub payments: Vec<RecordedPayment>,
    pub balance_due: Money,
    pub created_at: DateTime<Utc>,
    /// Member tickets this order took per benefit (restored on cancel).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub benefit_uses: std::collections::BTreeMap<usize, u32>,
}
