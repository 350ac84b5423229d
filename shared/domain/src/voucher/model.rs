//! The voucher aggregate and its ledger.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use utoipa::ToSchema;

use super::code::VoucherCode;
use crate::{Currency, Email, Money, PartnerId, PropertyId, ValidationError};

/// What was sold. Package vouchers are redeemed whole; gift cards may be
/// created empty and loaded later; external and imported vouchers come from
/// other systems with their codes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ArticleType {
    Value,
    Package,
    GiftCard,
    External,
    Imported,
}

impl ArticleType {
    pub const ALL: [ArticleType; 5] = [
        ArticleType::Value,
        ArticleType::Package,
        ArticleType::GiftCard,
        ArticleType::External,
        ArticleType::Imported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ArticleType::Value => "value",
            ArticleType::Package => "package",
            ArticleType::GiftCard => "gift_card",
            ArticleType::External => "external",
            ArticleType::Imported => "imported",
        }
    }

    /// Vouchers of these types came from elsewhere with their codes.
    pub fn is_foreign(self) -> bool {
        matches!(self, ArticleType::External | ArticleType::Imported)
    }

    /// Sold here with a code known at sale: PMSs pick these orders up.
    /// Gift cards (loaded onto a card after the sale), external and imported
    /// vouchers never enter a pickup feed: a PMS books them in on their
    /// first redemption ("Kode").
    pub fn is_picked_up(self) -> bool {
        matches!(self, ArticleType::Value | ArticleType::Package)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VoucherStatus {
    /// A gift card that has no value yet.
    Pending,
    Active,
    /// Fully spent.
    Redeemed,
    Blocked,
    Cancelled,
    /// Past its validity (reported as soon as the local day is over; stored
    /// when the open value is written off).
    Expired,
    WrittenOff,
}

/// Who bought the voucher. Personal data: never logged.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Buyer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
}

impl fmt::Debug for Buyer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Buyer(…)")
    }
}

impl Buyer {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self
            .name
            .as_ref()
            .is_some_and(|n| n.trim().is_empty() || n.len() > 200)
        {
            return Err(ValidationError::new(
                "buyer.name",
                "must be 1-200 characters",
            ));
        }
        if let Some(n) = &self.name {
            crate::name::person_name("buyer.name", n)?;
        }
        Ok(())
    }
}

/// The stay a redemption or hold is for, as the PMS knows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reservation {
    /// The PMS's reservation number.
    pub number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departure: Option<NaiveDate>,
    /// Personal data: stored for the hotels' records, never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_name: Option<String>,
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("number", &self.number)
            .field("arrival", &self.arrival)
            .field("departure", &self.departure)
            .finish_non_exhaustive()
    }
}

impl Reservation {
    pub fn validate(&self) -> Result<(), ValidationError> {
        let n = self.number.trim();
        if n.is_empty() || n.len() > 64 {
            return Err(ValidationError::new(
                "reservation.number",
                "must be 1-64 characters",
            ));
        }
        if self.guest_name.as_ref().is_some_and(|g| g.len() > 200) {
            return Err(ValidationError::new(
                "reservation.guest_name",
                "must be at most 200 characters",
            ));
        }
        if let Some(g) = &self.guest_name {
            crate::name::person_name("reservation.guest_name", g)?;
        }
        if let (Some(a), Some(d)) = (self.arrival, self.departure)
            && d < a
        {
            return Err(ValidationError::new(
                "reservation.departure",
                "must not be before arrival",
            ));
        }
        Ok(())
    }
}

/// Value blocked at booking, taken (captured) or freed (released) later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub id: String,
    pub amount: Money,
    pub expires_at: DateTime<Utc>,
    /// The property that placed it (and alone may capture or release it).
    pub property: PropertyId,
    pub partner: PartnerId,
    pub reservation: Reservation,
}

impl Hold {
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}

/// The voucher aggregate, as stored. Its balance changes only together with
/// ledger activities (see [`super::rules`]); `seq` numbers them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Voucher {
    pub code: VoucherCode,
    pub article_type: ArticleType,
    pub issuer: PropertyId,
    /// The issuer's zone: "valid until D" ends at the end of D there.
    pub time_zone: Tz,
    pub currency: Currency,
    pub initial_value: Money,
    /// Value added by loads (gift cards).
    pub loaded: Money,
    pub balance: Money,
    /// The stored status; see [`Voucher::status_at`] for what is reported.
    pub status: VoucherStatus,
    pub valid_until: Option<NaiveDate>,
    pub order_ref: Option<String>,
    pub buyer: Option<Buyer>,
    /// What a package voucher is for.
    pub package: Option<String>,
    pub test_mode: bool,
    pub issued_at: DateTime<Utc>,
    /// Its position in the issuer's pickup feed; `None` for vouchers that
    /// never go to PMSs (gift cards, external and imported vouchers).
    pub order_seq: Option<u64>,
    /// Its position in the pickup feeds of hotels that pick up the issuer's
    /// orders in their own feed (portal pickup), by hotel.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pickup_feeds: BTreeMap<PropertyId, u64>,
    /// Open holds (expired ones are released by the next change).
    pub holds: Vec<Hold>,
    /// The number of the last ledger activity.
    pub seq: u64,
    /// How many redemptions (incl. captures) it has had.
    pub redemptions: u32,
}

impl Voucher {
    /// Money in this voucher's currency.
    pub fn money(&self, amount: i64) -> Money {
        Money::new(amount, self.currency)
    }

    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.valid_until
            .is_some_and(|d| !crate::time::valid_through(d, self.time_zone, now))
    }

    /// Value held by holds still live at `now`.
    pub fn held_at(&self, now: DateTime<Utc>) -> Money {
        self.money(
            self.holds
                .iter()
                .filter(|h| h.is_live(now))
                .map(|h| h.amount.amount)
                .sum(),
        )
    }

    /// Balance not held.
    pub fn available_at(&self, now: DateTime<Utc>) -> Money {
        self.money(self.balance.amount - self.held_at(now).amount)
    }

    /// The status as reported at `now`: an active voucher whose validity
    /// ended reads as expired before anything is written.
    pub fn status_at(&self, now: DateTime<Utc>) -> VoucherStatus {
        match self.status {
            VoucherStatus::Active | VoucherStatus::Pending if self.is_expired_at(now) => {
                VoucherStatus::Expired
            }
            s => s,
        }
    }

    /// The status a voucher settles to after its balance changed.
    pub fn settled_status(&self) -> VoucherStatus {
        if self.balance.amount > 0 {
            VoucherStatus::Active
        } else if self.initial_value.amount == 0 && self.loaded.amount == 0 {
            VoucherStatus::Pending
        } else {
            VoucherStatus::Redeemed
        }
    }
}

/// What an activity did.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    Issue,
    Load,
    Redeem,
    Reverse,
    Hold,
    Capture,
    Release,
    Adjust,
    Expire,
    WriteOff,
    Import,
}

impl ActivityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Issue => "issue",
            ActivityKind::Load => "load",
            ActivityKind::Redeem => "redeem",
            ActivityKind::Reverse => "reverse",
            ActivityKind::Hold => "hold",
            ActivityKind::Capture => "capture",
            ActivityKind::Release => "release",
            ActivityKind::Adjust => "adjust",
            ActivityKind::Expire => "expire",
            ActivityKind::WriteOff => "write_off",
            ActivityKind::Import => "import",
        }
    }

    /// Activities a settlement report counts (value taken or given back at
    /// an accepting property).
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            ActivityKind::Redeem | ActivityKind::Capture | ActivityKind::Reverse
        )
    }
}

/// One ledger entry. Append-only; `amount` is the signed change of the
/// balance (0 for holds, releases and expiry), so a voucher's balance is
/// always the sum of its activities' amounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Activity {
    /// 1, 2, 3, … per voucher.
    pub id: u64,
    pub kind: ActivityKind,
    /// Signed change of the balance.
    pub amount: Money,
    /// The value a hold blocked, a capture took from its hold, or a release freed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Money>,
    pub balance_after: Money,
    pub at: DateTime<Utc>,
    /// The partner that acted (none for system activities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub partner: Option<PartnerId>,
    /// The property where it happened (the accepting hotel for redemptions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub accepting_property: Option<PropertyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<Reservation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redemption_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Activity {
    /// What one caller sees of an activity (data minimisation): another
    /// hotel's reservation and partner are not shown to the issuer's other
    /// callers; the guest's name goes only to the partner that acted (the
    /// PMS that redeemed, held or captured). Amounts, dates, references and
    /// the reservation number stay for everyone who may see the activity.
    pub fn minimise_for(
        &mut self,
        issuer: &PropertyId,
        viewer_property: &PropertyId,
        viewer_partner: &PartnerId,
    ) {
        if issuer != viewer_property && self.accepting_property.as_ref() != Some(viewer_property) {
            self.reservation = None;
            self.partner = None;
            return;
        }
        if self.partner.as_ref() != Some(viewer_partner)
            && let Some(r) = &mut self.reservation
        {
            r.guest_name = None;
        }
    }
}

/// A redemption (or a capture), kept so it can be reversed — never by more
/// than it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redemption {
    pub id: String,
    /// What it took (positive).
    pub amount: Money,
    /// What reversals gave back so far (positive, ≤ amount).
    pub reversed: Money,
    pub at: DateTime<Utc>,
    pub property: PropertyId,
    pub partner: PartnerId,
    pub reservation: Reservation,
    /// Set when it came from capturing a hold.
    pub hold_id: Option<String>,
    /// The checkout order this redemption paid (reversed only by
    /// cancelling that order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
}

impl Redemption {
    pub fn reversible(&self) -> Money {
        Money::new(
            self.amount.amount - self.reversed.amount,
            self.amount.currency,
        )
    }
}

/// A ledger activity with the voucher it belongs to, as a settlement report
/// reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub code: VoucherCode,
    pub issuer: PropertyId,
    pub activity: Activity,
}
