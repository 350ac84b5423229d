//! Event discounts for club members (CellarPass-style): per event, one
//! discount for any member and one per club tier; a member with several
//! tiers gets the best applicable one. Only tiers the property enabled count.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Currency, Money, ValidationError};

/// A discount on one ticket's price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Discount {
    /// Percent off in basis points would be exact, but partners send
    /// percent: 0–100 with up to two decimals (`12.5`) is accepted as `1250`.
    PercentOff(PercentBp),
    /// Off each ticket (never below zero), in the product's currency.
    AmountOff(Money),
    /// A fixed price per ticket, in the product's currency.
    FixedPrice(Money),
}

/// Percent as basis points (12.5% = 1250), parsed from a JSON number
/// with at most two decimals so no float ever reaches money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ToSchema)]
#[schema(value_type = f64, example = 12.5)]
pub struct PercentBp(pub u32);

impl Serialize for PercentBp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let whole = self.0 / 100;
        let frac = self.0 % 100;
        if frac == 0 {
            s.serialize_u32(whole)
        } else {
            let v: serde_json::Number = format!("{whole}.{frac:02}")
                .parse()
                .map_err(serde::ser::Error::custom)?;
            v.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for PercentBp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        PercentBp::parse(&n.to_string()).map_err(|e| serde::de::Error::custom(e.reason))
    }
}

impl PercentBp {
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let err = || ValidationError::new("percent_off", "must be 0-100 with at most two decimals");
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        if frac.len() > 2
            || whole.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        let whole: u32 = whole.parse().map_err(|_| err())?;
        let frac: u32 = format!("{frac:0<2}").parse().map_err(|_| err())?;
        let bp = whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(frac))
            .ok_or_else(err)?;
        if bp > 10_000 {
            return Err(err());
        }
        Ok(Self(bp))
    }
}

impl Discount {
    /// The ticket price after this discount (never negative, never above
    /// the price). Percentages round half-up to the minor unit.
    pub fn apply(&self, price: Money) -> Money {
        let amount = match *self {
            Discount::PercentOff(bp) => price.amount - price.percent_of(bp.0).amount,
            Discount::AmountOff(off) => price.amount - off.amount.max(0),
            Discount::FixedPrice(p) => p.amount.min(price.amount),
        };
        Money::new(amount.clamp(0, price.amount.max(0)), price.currency)
    }

    /// Amounts are non-negative, bounded and in `currency` (the product's).
    pub fn check(&self, currency: Currency) -> Result<(), ValidationError> {
        match *self {
            Discount::AmountOff(v) | Discount::FixedPrice(v) => {
                if v.currency != currency {
                    return Err(ValidationError::new(
                        "discount",
                        format!("must be in the product's currency, {currency}"),
                    ));
                }
                v.within_limit("discount").map(|_| ())
            }
            Discount::PercentOff(_) => Ok(()),
        }
    }
}

/// An event's member pricing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventDiscounts {
    /// For any club member, whatever their tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<Discount>,
    /// Per tier (as the AMS names it); only enabled tiers apply.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tiers: BTreeMap<String, Discount>,
}

/// Who may book an event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventAccess {
    pub members_only: bool,
    /// Non-empty: only members of these tiers (tiers-only event).
    pub allowed_tiers: BTreeSet<String>,
}

/// What a club member is, for pricing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    pub member: bool,
    pub tiers: BTreeSet<String>,
}

/// Where a discount came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum ClubDiscountSource {
    ClubTier { tier: String },
    ClubMember,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClubPrice {
    pub price: Money,
    pub discount: Discount,
    pub source: ClubDiscountSource,
}

/// Why a booking is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("this event is for club members only")]
    MembersOnly,
    #[error("this event is for members of certain club tiers only")]
    TierNotAllowed,
}

/// Case- and space-insensitive tier names, as the AMS and partners spell them.
fn norm(t: &str) -> String {
    t.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// May this person book the event?
pub fn check_access(
    access: &EventAccess,
    who: &Membership,
    enabled: &BTreeSet<String>,
) -> Result<(), AccessError> {
    if access.members_only && !who.member {
        return Err(AccessError::MembersOnly);
    }
    if !access.allowed_tiers.is_empty() {
        let allowed: BTreeSet<String> = access.allowed_tiers.iter().map(|t| norm(t)).collect();
        let ok = who
            .tiers
            .iter()
            .any(|t| allowed.contains(&norm(t)) && enabled.contains(&norm(t)));
        if !ok {
            return Err(if who.member {
                AccessError::TierNotAllowed
            } else {
                AccessError::MembersOnly
            });
        }
    }
    Ok(())
}

/// "What does this member get for this event": the lowest ticket price among
/// the member discount and the discounts of their *enabled* tiers; `None`
/// for non-members or when nothing applies. `enabled` holds normalised tier
/// names ([`normalise_tier`]).
pub fn best_club_price(
    discounts: &EventDiscounts,
    who: &Membership,
    enabled: &BTreeSet<String>,
    price: Money,
) -> Option<ClubPrice> {
    if !who.member {
        return None;
    }
    let mut best: Option<ClubPrice> = discounts.member.map(|d| ClubPrice {
        price: d.apply(price),
        discount: d,
        source: ClubDiscountSource::ClubMember,
    });
    for (tier, d) in &discounts.tiers {
        let t = norm(tier);
        if !enabled.contains(&t) || !who.tiers.iter().any(|m| norm(m) == t) {
            continue;
        }
        let candidate = ClubPrice {
            price: d.apply(price),
            discount: *d,
            source: ClubDiscountSource::ClubTier { tier: tier.clone() },
        };
        // Strictly lower wins; on a tie the tier discount is the more specific.
        let better = match &best {
            None => true,
            Some(b) => {
                candidate.price.amount < b.price.amount
                    || (candidate.price.amount == b.price.amount
                        && b.source == ClubDiscountSource::ClubMember)
            }
        };
        if better {
            best = Some(candidate);
        }
    }
    best.filter(|b| b.price.amount < price.amount || matches!(b.discount, Discount::FixedPrice(_)))
}

/// The normalised form tier settings are stored and compared under.
pub fn normalise_tier(t: &str) -> String {
    norm(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(a: i64) -> Money {
        Money::new(a, Currency::parse("EUR").unwrap())
    }

    fn member(tiers: &[&str]) -> Membership {
        Membership {
            member: true,
            tiers: tiers.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn enabled(t: &[&str]) -> BTreeSet<String> {
        t.iter().map(|s| normalise_tier(s)).collect()
    }

    #[test]
    fn best_of_member_and_enabled_tiers() {
        let d: EventDiscounts = serde_json::from_str(
            r#"{"member": {"percent_off": 10}, "tiers": {"Gold Club": {"fixed_price": {"amount": 2000, "currency": "EUR"}}, "Silver": {"amount_off": {"amount": 500, "currency": "EUR"}}}}"#,
        )
        .unwrap();
        let p = eur(3000);
        let gold_silver = member(&["gold  club", "Silver"]);
        let all = enabled(&["Gold Club", "silver"]);
        let best = best_club_price(&d, &gold_silver, &all, p).unwrap();
        assert_eq!(best.price.amount, 2000);
        assert_eq!(
            best.source,
            ClubDiscountSource::ClubTier {
                tier: "Gold Club".into()
            }
        );
        // Gold not enabled: Silver (2500) beats member 10% (2700).
        let best = best_club_price(&d, &gold_silver, &enabled(&["Silver"]), p).unwrap();
        assert_eq!(best.price.amount, 2500);
        // No enabled tier: the member discount.
        let best = best_club_price(&d, &gold_silver, &enabled(&[]), p).unwrap();
        assert_eq!(
            (best.price.amount, best.source),
            (2700, ClubDiscountSource::ClubMember)
        );
        assert!(best_club_price(&d, &Membership::default(), &all, p).is_none());
    }

    #[test]
    fn percent_rounds_half_up_and_never_negative() {
        assert_eq!(
            Discount::PercentOff(PercentBp(1250))
                .apply(eur(1999))
                .amount,
            1749
        ); // 249.875 -> 250 off
        assert_eq!(Discount::AmountOff(eur(5000)).apply(eur(3000)).amount, 0);
        assert_eq!(
            Discount::FixedPrice(eur(5000)).apply(eur(3000)).amount,
            3000
        );
        let usd = Currency::parse("USD").unwrap();
        let eur_c = Currency::parse("EUR").unwrap();
        assert!(Discount::AmountOff(eur(500)).check(eur_c).is_ok());
        assert_eq!(
            Discount::FixedPrice(eur(500)).check(usd).unwrap_err().field,
            "discount"
        );
        assert!(Discount::AmountOff(eur(-1)).check(eur_c).is_err());
    }

    #[test]
    fn percent_parsing() {
        assert_eq!(PercentBp::parse("12.5").unwrap(), PercentBp(1250));
        assert_eq!(PercentBp::parse("100").unwrap(), PercentBp(10_000));
        for bad in ["100.01", "-1", "1.234", "", "1e2"] {
            assert!(PercentBp::parse(bad).is_err(), "{bad}");
        }
        let d: Discount = serde_json::from_str(r#"{"percent_off": 12.5}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"percent_off":12.5}"#
        );
    }

    #[test]
    fn access_rules() {
        let members_only = EventAccess {
            members_only: true,
            ..Default::default()
        };
        assert_eq!(
            check_access(&members_only, &Membership::default(), &enabled(&[])),
            Err(AccessError::MembersOnly)
        );
        assert!(check_access(&members_only, &member(&[]), &enabled(&[])).is_ok());
        let gold_only = EventAccess {
            members_only: false,
            allowed_tiers: ["Gold".to_string()].into(),
        };
        assert!(check_access(&gold_only, &member(&["gold"]), &enabled(&["Gold"])).is_ok());
        assert_eq!(
            check_access(
                &gold_only,
                &member(&["Silver"]),
                &enabled(&["Gold", "Silver"])
            ),
            Err(AccessError::TierNotAllowed)
        );
    }
}
