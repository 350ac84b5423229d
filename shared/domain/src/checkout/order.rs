//! Orders as requested and as stored.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::membership::{Contact, Membership};
use super::payment::{CheckedPart, PaymentMethod, PaymentMode, PaymentPart};
use super::pricing::PricedLine;
use crate::voucher::VoucherCode;
use crate::{Money, ValidationError};

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
    /// Where the booking came from (the back office's "Source").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The reseller credited with the sale (its id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reseller: Option<String>,
    /// Send no booking confirmation to the customer.
    #[serde(default)]
    pub skip_confirmation_email: bool,
    /// Send the customer an order receipt (default true).
    #[serde(default = "yes")]
    pub email_receipt: bool,
}

fn yes() -> bool {
    true
}

impl Order {
    /// The order as answered: gift-card codes masked, in the payment part
    /// as requested and in the charge (a code is what spends the card).
    pub fn answer(&self) -> Order {
        let mask = |code: &str| {
            VoucherCode::lookup(code)
                .map(|c| c.masked())
                .unwrap_or_else(|_| "…".into())
        };
        let mut o = self.clone();
        for p in &mut o.payments {
            if let Some(code) = &mut p.checked.part.gift_card_code {
                *code = mask(code);
            }
            if let Some(g) = &mut p.gift_card {
                g.code = mask(&g.code);
            }
        }
        o
    }
}

/// How far back a visit date or Valid From may lie: a back office records
/// yesterday's walk-ins and backdates a membership, not older history.
pub const MAX_DAYS_BACK: u64 = 366;
/// How far ahead one may be: events and memberships are sold a season or two
/// ahead, never decades.
pub const MAX_DAYS_AHEAD: u64 = 3 * 366;

impl OrderRequest {
    /// Every visit date and Valid From lies within [`MAX_DAYS_BACK`] before
    /// and [`MAX_DAYS_AHEAD`] after `today` (the property's local date).
    pub fn check_dates(&self, today: NaiveDate) -> Result<(), ValidationError> {
        let earliest = today - chrono::Days::new(MAX_DAYS_BACK);
        let latest = today + chrono::Days::new(MAX_DAYS_AHEAD);
        for item in &self.items {
            for (field, date) in [("date", item.date), ("valid_from", item.valid_from)] {
                if let Some(d) = date
                    && !(earliest..=latest).contains(&d)
                {
                    return Err(ValidationError::new(
                        field,
                        format!("must lie between {earliest} and {latest}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks the free-text back-office fields, and that the contact's and
    /// every member's names are one line each.
    pub fn check(&self) -> Result<(), ValidationError> {
        self.contact.validate("contact")?;
        for item in &self.items {
            for m in &item.members {
                m.validate("members")?;
            }
        }
        for (field, value) in [("source", &self.source), ("reseller", &self.reseller)] {
            if let Some(v) = value
                && (v.trim().is_empty()
                    || v.chars().count() > 100
                    || v.chars().any(char::is_control))
            {
                return Err(ValidationError::new(
                    field,
                    "must be 1-100 characters without control characters",
                ));
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
    /// Masked (`…` and the last four characters) in answers; whole only
    /// in the stored order, which finds the card again on cancellation.
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

/// What a cancellation owes back by other means than the voucher ledger:
/// card, cash and other parts, and gift-card parts whose card was
/// cancelled or expired meanwhile (`reference`: the card's last four).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Refund {
    pub method: PaymentMethod,
    pub amount: Money,
    pub reference: Option<String>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reseller: Option<String>,
    #[serde(default)]
    pub skip_confirmation_email: bool,
    #[serde(default = "yes")]
    pub email_receipt: bool,
    pub lines: Vec<OrderLine>,
    pub subtotal: Money,
    pub discount_total: Money,
    pub total: Money,
    pub payments: Vec<RecordedPayment>,
    pub balance_due: Money,
    pub created_at: DateTime<Utc>,
    /// Member tickets this order took per benefit (restored on cancel).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schema(value_type = std::collections::BTreeMap<String, u32>)]
    pub benefit_uses: std::collections::BTreeMap<usize, u32>,
    /// Set by cancellation: what to pay back outside the voucher ledger
    /// (gift-card parts go back onto their card).
    #[serde(default)]
    pub refunds_due: Vec<Refund>,
}

/// An order as stored: with what identifies its request and the exact
/// answer given, for byte-identical replays.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredOrder {
    pub fingerprint: String,
    pub order: Order,
    pub rendered: String,
}

/// Seats sold for one product on one date (a capacity counter), and the
/// seats reservations hold until they expire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seats {
    pub sold: u32,
    /// Unconfirmed reservations (OCTO bookings on hold). One past its
    /// `expires_at` holds nothing, whether or not it was pruned yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<Hold>,
}

/// Seats a reservation holds until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub booking: String,
    pub quantity: u32,
    pub expires_at: DateTime<Utc>,
}

impl Seats {
    /// The counter as it stands at `now`: expired holds dropped.
    pub fn at(mut self, now: DateTime<Utc>) -> Self {
        self.holds.retain(|h| h.expires_at > now);
        self
    }

    /// Seats sold and held (call on a counter taken [`Seats::at`] now).
    pub fn taken(&self) -> u32 {
        self.holds
            .iter()
            .fold(self.sold, |n, h| n.saturating_add(h.quantity))
    }

    /// Drops `booking`'s hold; returns the seats it held.
    pub fn release(&mut self, booking: &str) -> u32 {
        let held = self
            .holds
            .iter()
            .filter(|h| h.booking == booking)
            .map(|h| h.quantity)
            .sum();
        self.holds.retain(|h| h.booking != booking);
        held
    }
}
