//! Memberships sold through checkout: a reference per member ticket, valid
//! from a chosen date through Expires On (end of day, property zone).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::CheckoutError;
use crate::time::{end_of_local_day, local_date};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MembershipStatus {
    Active,
    Cancelled,
    /// Replaced by a renewal; its reference resolves to the new one.
    Renewed,
}

/// A member's contact (prefilled into orders that redeem the membership).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Wants the latest offers and discounts by email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marketing_opt_in: Option<bool>,
}

impl Contact {
    /// Names and phone are one line each (see [`crate::name`]); `prefix`
    /// names where the contact is (`contact`, `members`).
    pub fn validate(&self, prefix: &'static str) -> Result<(), crate::ValidationError> {
        let fields: [(&Option<String>, &'static str, &'static str); 3] = [
            (&self.first_name, "contact.first_name", "members.first_name"),
            (&self.last_name, "contact.last_name", "members.last_name"),
            (&self.phone, "contact.phone", "members.phone"),
        ];
        for (value, in_contact, in_members) in fields {
            if let Some(v) = value {
                let field = if prefix == "members" {
                    in_members
                } else {
                    in_contact
                };
                crate::name::person_name(field, v)?;
            }
        }
        Ok(())
    }

    /// `self` with blanks filled from `fallback` (a request overrides the
    /// membership's contact field by field).
    pub fn or(&self, fallback: &Contact) -> Contact {
        Contact {
            email: self.email.clone().or_else(|| fallback.email.clone()),
            first_name: self
                .first_name
                .clone()
                .or_else(|| fallback.first_name.clone()),
            last_name: self
                .last_name
                .clone()
                .or_else(|| fallback.last_name.clone()),
            phone: self.phone.clone().or_else(|| fallback.phone.clone()),
            marketing_opt_in: self.marketing_opt_in.or(fallback.marketing_opt_in),
        }
    }

    /// The named fields that are missing (for `member_fields`).
    pub fn missing<'a>(&self, fields: &'a [String]) -> Vec<&'a str> {
        fields
            .iter()
            .filter(|f| {
                let v = match f.as_str() {
                    "email" => &self.email,
                    "first_name" => &self.first_name,
                    "last_name" => &self.last_name,
                    "phone" => &self.phone,
                    _ => return false,
                };
                v.as_deref().is_none_or(|s| s.trim().is_empty())
            })
            .map(String::as_str)
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Membership {
    pub reference: String,
    pub product_id: String,
    pub order_id: String,
    pub valid_from: NaiveDate,
    pub expires_on: NaiveDate,
    pub contact: Contact,
    pub test_mode: bool,
    pub status: MembershipStatus,
    /// The reference this one renewed, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renews: Option<String>,
    /// The reference that renewed this one, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_by: Option<String>,
    /// Tickets used per benefit (by its position in the product; JSON keys
    /// are strings: `{"0": 2}`).
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, u32>)]
    pub benefit_uses: BTreeMap<usize, u32>,
    /// When its order was placed (memberships are listed newest first).
    #[serde(default)]
    pub sold_at: DateTime<Utc>,
}

/// One period of a renewal chain, as `GET /memberships/{reference}` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Period {
    pub reference: String,
    pub valid_from: NaiveDate,
    pub expires_on: NaiveDate,
    pub status: MembershipStatus,
}

impl From<&Membership> for Period {
    fn from(m: &Membership) -> Self {
        Period {
            reference: m.reference.clone(),
            valid_from: m.valid_from,
            expires_on: m.expires_on,
            status: m.status,
        }
    }
}

/// The period of a renewal chain (oldest first) that a visit on `visit`
/// uses: the one covering that date (not cancelled), else the newest, whose
/// own check then says why the visit is refused.
pub fn period_for(chain: &[Membership], visit: NaiveDate) -> Option<usize> {
    chain
        .iter()
        .position(|m| {
            m.status != MembershipStatus::Cancelled
                && m.valid_from <= visit
                && visit <= m.expires_on
        })
        .or_else(|| chain.len().checked_sub(1))
}

/// Where a renewal without its own Valid From starts: the day after the
/// renewed period's Expires On while that period still runs (paid time is
/// never lost), else `today` (the property's local date).
pub fn renewal_starts(renewed: &Membership, today: NaiveDate) -> NaiveDate {
    if today <= renewed.expires_on {
        renewed.expires_on.succ_opt().unwrap_or(renewed.expires_on)
    } else {
        today
    }
}

impl Membership {
    /// May this membership be used for a visit on `visit` (a local date in
    /// the property's zone; the order time's local date for lines without
    /// one)?
    pub fn check_use(&self, visit: NaiveDate, test_order: bool) -> Result<(), CheckoutError> {
        if self.test_mode != test_order {
            return Err(CheckoutError::TestModeMismatch);
        }
        if self.status == MembershipStatus::Cancelled {
            return Err(CheckoutError::MembershipCancelled);
        }
        if visit < self.valid_from {
            return Err(CheckoutError::MembershipNotYetValid);
        }
        if visit > self.expires_on {
            return Err(CheckoutError::MembershipExpired);
        }
        Ok(())
    }

    /// May it be used while its order still has `balance_due` (minor
    /// units)? Only when its product allows use before payment.
    pub fn check_paid(
        &self,
        balance_due: i64,
        usable_before_payment: bool,
    ) -> Result<(), CheckoutError> {
        if balance_due > 0 && !usable_before_payment {
            return Err(CheckoutError::MembershipUnpaid);
        }
        Ok(())
    }

    /// Valid right now (through the end of Expires On in `tz`)?
    pub fn is_current(&self, tz: Tz, now: DateTime<Utc>) -> bool {
        self.status != MembershipStatus::Cancelled
            && local_date(tz, now) >= self.valid_from
            && now < end_of_local_day(self.expires_on, tz)
    }
}

/// A booking made with a membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Booking {
    pub order_id: String,
    pub at: DateTime<Utc>,
    pub total: crate::Money,
    pub lines: Vec<String>,
    #[serde(default)]
    pub cancelled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m() -> Membership {
        Membership {
            reference: "MEM-1".into(),
            product_id: "club".into(),
            order_id: "o".into(),
            valid_from: NaiveDate::from_ymd_opt(2027, 1, 15).unwrap(),
            expires_on: NaiveDate::from_ymd_opt(2027, 2, 14).unwrap(),
            contact: Contact::default(),
            test_mode: false,
            status: MembershipStatus::Active,
            renews: None,
            renewed_by: None,
            benefit_uses: BTreeMap::new(),
            sold_at: DateTime::default(),
        }
    }

    #[test]
    fn renewal_chain_periods() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let old = Membership {
            status: MembershipStatus::Renewed,
            ..m()
        };
        // Renewed early: starts after the paid period; late: today.
        assert_eq!(renewal_starts(&old, d("2027-01-20")), d("2027-02-15"));
        assert_eq!(renewal_starts(&old, d("2027-02-14")), d("2027-02-15"));
        assert_eq!(renewal_starts(&old, d("2027-03-01")), d("2027-03-01"));
        let new = Membership {
            reference: "MEM-2".into(),
            valid_from: d("2027-02-15"),
            expires_on: d("2027-03-14"),
            ..m()
        };
        let chain = [old, new];
        assert_eq!(period_for(&chain, d("2027-02-01")), Some(0));
        assert_eq!(period_for(&chain, d("2027-03-01")), Some(1));
        assert_eq!(period_for(&chain, d("2027-04-01")), Some(1));
        assert_eq!(period_for(&[], d("2027-04-01")), None);
        assert_eq!(
            m().check_paid(1, false),
            Err(CheckoutError::MembershipUnpaid)
        );
        assert!(m().check_paid(1, true).is_ok());
        assert!(m().check_paid(0, false).is_ok());
    }

    #[test]
    fn checks_the_visit_date_not_the_order_date() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            m().check_use(d("2027-01-14"), false),
            Err(CheckoutError::MembershipNotYetValid)
        );
        assert!(m().check_use(d("2027-01-15"), false).is_ok());
        assert!(m().check_use(d("2027-02-14"), false).is_ok());
        assert_eq!(
            m().check_use(d("2027-02-15"), false),
            Err(CheckoutError::MembershipExpired)
        );
        assert_eq!(
            m().check_use(d("2027-02-01"), true),
            Err(CheckoutError::TestModeMismatch)
        );
        let cancelled = Membership {
            status: MembershipStatus::Cancelled,
            ..m()
        };
        assert_eq!(
            cancelled.check_use(d("2027-02-01"), false),
            Err(CheckoutError::MembershipCancelled)
        );
    }

    #[test]
    fn contact_prefill_and_required_fields() {
        let member = Contact {
            email: Some("a@x.com".into()),
            first_name: Some("Ana".into()),
            ..Default::default()
        };
        let request = Contact {
            first_name: Some("Anna".into()),
            ..Default::default()
        };
        let merged = request.or(&member);
        assert_eq!(merged.first_name.as_deref(), Some("Anna"));
        assert_eq!(merged.email.as_deref(), Some("a@x.com"));
        assert_eq!(
            merged.missing(&["email".into(), "phone".into()]),
            vec!["phone"]
        );
    }
}
