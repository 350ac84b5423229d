//! The catalogue: what a property sells. Events and
//! admissions have units (adult, child…) with prices; events may carry
//! capacity per date, club discounts and access rules; memberships carry a
//! validity, ordered benefits and the contact fields each member must give.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::validity::Validity;
use crate::roster::discount::{Discount, EventDiscounts, PercentBp};
use crate::{Currency, Money, ValidationError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductKind {
    Event,
    Admission,
    Membership,
}

/// A ticket type with its price, in the product's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    pub id: String,
    pub name: String,
    pub price: Money,
    /// What resellers show the unit as (OCTO's unit type); default `ADULT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub octo_unit_type: Option<OctoUnitType>,
}

/// OCTO's unit types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OctoUnitType {
    #[default]
    Adult,
    Youth,
    Child,
    Infant,
    Family,
    Senior,
    Student,
    Military,
    Other,
}

/// A promo code: a discount anyone who knows it gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoCode {
    pub code: String,
    pub discount: Discount,
}

/// What a membership gives, in the order the product lists them; the first
/// applicable one is applied to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Benefit {
    /// Percent off matching products (all products when none are listed).
    Promotion {
        percent_off: PercentBp,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        product_ids: Vec<String>,
    },
    /// Free tickets of the listed units, up to `quantity_per_booking` per
    /// order and `max_uses` tickets over the membership's life.
    MemberTickets {
        product_ids: Vec<String>,
        unit_ids: Vec<String>,
        quantity_per_booking: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_uses: Option<u32>,
    },
}

/// The highest unit price (minor units): with at most 1000 tickets a line
/// and [`super::pricing::MAX_ORDER_LINES`] lines, order sums stay far
/// inside `i64`.
pub const MAX_UNIT_PRICE: i64 = 10_000_000_000;

/// A product as `PUT /products/{id}` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Product {
    #[serde(default)]
    pub id: String,
    pub kind: ProductKind,
    pub name: String,
    pub currency: Currency,
    pub units: Vec<Unit>,
    /// Seats per date (events); none: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    #[serde(default)]
    pub members_only: bool,
    /// Non-empty: only club members of these tiers may book.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub allowed_tiers: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub discounts: EventDiscounts,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promo_codes: Vec<PromoCode>,
    /// Memberships: how long each runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity: Option<Validity>,
    /// Memberships: what they give, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub benefits: Vec<Benefit>,
    /// Memberships: contact fields each member must give (`first_name`,
    /// `last_name`, `email`, `phone`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_fields: Vec<String>,
    /// Memberships: usable while their order still has a balance due
    /// (default: only once paid in full).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub usable_before_payment: bool,
}

fn is_default(d: &EventDiscounts) -> bool {
    *d == EventDiscounts::default()
}

const MEMBER_FIELDS: [&str; 4] = ["first_name", "last_name", "email", "phone"];

impl Product {
    /// Checks a product before it is stored; `id` comes from the path.
    pub fn check(mut self, id: &str) -> Result<Self, ValidationError> {
        let bad = |f: &'static str, r: &str| Err(ValidationError::new(f, r));
        if id.is_empty()
            || id.len() > 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return bad(
                "product_id",
                "must be 1-64 characters of A-Z, a-z, 0-9, '-', '_'",
            );
        }
        self.id = id.to_owned();
        if self.name.trim().is_empty() {
            return bad("name", "must not be empty");
        }
        if self.units.is_empty() {
            return bad("units", "a product needs at least one unit");
        }
        let mut seen = BTreeSet::new();
        for u in &self.units {
            if u.id.is_empty() || !seen.insert(u.id.as_str()) {
                return bad("units", "unit ids must be non-empty and unique");
            }
            if u.price.currency != self.currency {
                return Err(ValidationError::new(
                    "units.price",
                    format!("must be in the product's currency, {}", self.currency),
                ));
            }
            if u.price.amount < 0 {
                return bad("units.price", "must not be negative");
            }
            if u.price.amount > MAX_UNIT_PRICE {
                return bad("units.price", "must be at most 10000000000 minor units");
            }
        }
        if let Some(d) = self.discounts.member {
            d.check(self.currency)?;
        }
        for d in self.discounts.tiers.values() {
            d.check(self.currency)?;
        }
        for p in &self.promo_codes {
            p.discount.check(self.currency)?;
            if p.code.trim().is_empty() {
                return bad("promo_codes.code", "must not be empty");
            }
        }
        match self.kind {
            ProductKind::Membership => {
                let Some(v) = self.validity else {
                    return bad("validity", "a membership needs a validity");
                };
                v.check()?;
                if self.capacity.is_some() {
                    return bad("capacity", "memberships have no capacity");
                }
                for f in &self.member_fields {
                    if !MEMBER_FIELDS.contains(&f.as_str()) {
                        return bad(
                            "member_fields",
                            "allowed: first_name, last_name, email, phone",
                        );
                    }
                }
                for b in &self.benefits {
                    if let Benefit::MemberTickets {
                        quantity_per_booking: 0,
                        ..
                    } = b
                    {
                        return bad("benefits.quantity_per_booking", "must be at least 1");
                    }
                }
            }
            ProductKind::Event | ProductKind::Admission => {
                if self.validity.is_some()
                    || !self.benefits.is_empty()
                    || !self.member_fields.is_empty()
                    || self.usable_before_payment
                {
                    return bad(
                        "kind",
                        "validity, benefits, member_fields and usable_before_payment belong to memberships",
                    );
                }
            }
        }
        Ok(self)
    }

    pub fn unit(&self, id: &str) -> Option<&Unit> {
        self.units.iter().find(|u| u.id == id)
    }

    /// The promo code's discount, matched case-insensitively.
    pub fn promo(&self, code: &str) -> Option<Discount> {
        self.promo_codes
            .iter()
            .find(|p| p.code.trim().eq_ignore_ascii_case(code.trim()))
            .map(|p| p.discount)
    }
}

/// Products by id, for pricing an order.
pub type Catalogue = BTreeMap<String, Product>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Product {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn events_and_memberships_check() {
        let event = parse(
            json!({"kind": "event", "name": "Harvest dinner", "currency": "USD", "units": [{"id": "adult", "name": "Adult", "price": {"amount": 12000, "currency": "USD"}}],
            "capacity": 40, "members_only": false, "discounts": {"member": {"percent_off": 10}, "tiers": {"Gold": {"fixed_price": {"amount": 9000, "currency": "USD"}}}}}),
        );
        assert!(event.check("harvest-2026").is_ok());
        let club = parse(
            json!({"kind": "membership", "name": "Wine club", "currency": "USD", "units": [{"id": "member", "name": "Member", "price": {"amount": 9900, "currency": "USD"}}],
            "validity": {"count": 12, "unit": "months"}, "member_fields": ["first_name", "email"],
            "benefits": [{"kind": "member_tickets", "product_ids": ["tasting"], "unit_ids": ["adult"], "quantity_per_booking": 2, "max_uses": 6}, {"kind": "promotion", "percent_off": 15}]}),
        );
        assert!(club.check("club").is_ok());
        let no_validity = parse(
            json!({"kind": "membership", "name": "X", "currency": "USD", "units": [{"id": "m", "name": "M", "price": {"amount": 1, "currency": "USD"}}]}),
        );
        assert_eq!(no_validity.check("x").unwrap_err().field, "validity");
        let negative = parse(
            json!({"kind": "admission", "name": "X", "currency": "USD", "units": [{"id": "a", "name": "A", "price": {"amount": -1, "currency": "USD"}}]}),
        );
        assert!(negative.check("x").is_err());
        let euros = parse(
            json!({"kind": "admission", "name": "X", "currency": "USD", "units": [{"id": "a", "name": "A", "price": {"amount": 100, "currency": "EUR"}}]}),
        );
        assert_eq!(euros.check("x").unwrap_err().field, "units.price");
        let promo_in_euros = parse(
            json!({"kind": "admission", "name": "X", "currency": "USD", "units": [{"id": "a", "name": "A", "price": {"amount": 100, "currency": "USD"}}],
            "promo_codes": [{"code": "FALL", "discount": {"amount_off": {"amount": 10, "currency": "EUR"}}}]}),
        );
        assert_eq!(promo_in_euros.check("x").unwrap_err().field, "discount");
        assert!(
            serde_json::from_value::<Product>(
                json!({"kind": "admission", "name": "X", "currency": "USD", "units": [{"id": "a", "name": "A", "price": 100}]})
            )
            .is_err()
        );
        assert!(
            serde_json::from_value::<Product>(
                json!({"kind": "event", "name": "X", "currency": "USD", "units": [], "surprise": 1})
            )
            .is_err()
        );
    }
}
