//! Pricing an order: per line the unit price, at most one discount (the
//! best for the customer among the membership's first applicable benefit,
//! the club discount and a promo code), and the line total. Percentages
//! round half-up once per line; totals are sums of lines.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::catalogue::{Benefit, Catalogue, ProductKind};
use super::error::CheckoutError;
use crate::roster::discount::{
    AccessError, ClubDiscountSource, Discount, EventAccess, Membership as ClubMembership,
    best_club_price, check_access,
};
use crate::{Currency, Money};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiscountSource {
    Membership,
    ClubTier,
    ClubMember,
    PromoCode,
}

/// The discount a line got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AppliedDiscount {
    pub source: DiscountSource,
    /// What it was: `promotion 15%`, `2 member tickets`, the tier name, the code.
    pub description: String,
    /// Taken off the line.
    pub amount_off: Money,
    /// For member tickets: how many were free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_tickets: Option<u32>,
    /// For membership benefits: the benefit's position in the product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benefit_index: Option<usize>,
}

/// One requested line, after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRequest {
    pub product_id: String,
    pub unit_id: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PricedLine {
    pub product_id: String,
    pub unit_id: String,
    pub quantity: u32,
    pub unit_price: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount: Option<AppliedDiscount>,
    pub line_total: Money,
}

/// What pricing needs to know about the buyer.
#[derive(Debug, Clone, Default)]
pub struct Buyer {
    /// Club membership found by the contact's email.
    pub club: ClubMembership,
    /// Enabled tiers (normalised names).
    pub enabled_tiers: BTreeSet<String>,
}

/// A membership being redeemed: its product's benefits and what was used.
#[derive(Debug, Clone)]
pub struct Redeeming<'a> {
    pub benefits: &'a [Benefit],
    pub uses: &'a BTreeMap<usize, u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    pub currency: Currency,
    pub lines: Vec<PricedLine>,
    pub subtotal: Money,
    pub discount_total: Money,
    pub total: Money,
    /// Member tickets taken per benefit (to record on the membership).
    pub benefit_uses: BTreeMap<usize, u32>,
}

fn candidate(
    source: DiscountSource,
    description: String,
    amount_off: i64,
    currency: Currency,
) -> AppliedDiscount {
    AppliedDiscount {
        source,
        description,
        amount_off: Money::new(amount_off, currency),
        free_tickets: None,
        benefit_index: None,
    }
}

/// Most items one order may carry.
pub const MAX_ORDER_LINES: usize = 500;

/// A discount on `quantity` tickets of `price`: percentages on the line
/// (rounded once), amounts and fixed prices per ticket.
fn line_off(d: Discount, price: Money, quantity: u32) -> i64 {
    let base = price.amount * i64::from(quantity);
    match d {
        Discount::PercentOff(bp) => Money::new(base, price.currency)
            .percent_of(bp.0)
            .amount
            .min(base),
        _ => (price.amount - d.apply(price).amount) * i64::from(quantity),
    }
}

/// Prices every line. `redeeming` is the membership named on the order.
pub fn price(
    catalogue: &Catalogue,
    lines: &[LineRequest],
    buyer: &Buyer,
    promo_code: Option<&str>,
    redeeming: Option<Redeeming<'_>>,
) -> Result<Priced, CheckoutError> {
    if lines.is_empty() {
        return Err(CheckoutError::InvalidOrder(
            "an order needs at least one item",
        ));
    }
    if lines.len() > MAX_ORDER_LINES {
        return Err(CheckoutError::InvalidOrder(
            "an order takes at most 500 items",
        ));
    }
    let mut currency: Option<Currency> = None;
    let mut out = Vec::with_capacity(lines.len());
    let mut uses: BTreeMap<usize, u32> = BTreeMap::new();
    // Member tickets per benefit already given in this order (per booking).
    let mut booked: BTreeMap<usize, u32> = BTreeMap::new();
    for req in lines {
        if req.quantity == 0 || req.quantity > 1000 {
            return Err(CheckoutError::InvalidOrder("quantity must be 1-1000"));
        }
        let product = catalogue
            .get(&req.product_id)
            .ok_or_else(|| CheckoutError::UnknownProduct(req.product_id.clone()))?;
        let unit = product
            .unit(&req.unit_id)
            .ok_or_else(|| CheckoutError::UnknownUnit {
                product: req.product_id.clone(),
                unit: req.unit_id.clone(),
            })?;
        match currency {
            None => currency = Some(product.currency),
            Some(c) if c != product.currency => return Err(CheckoutError::CurrencyMismatch),
            Some(_) => {}
        }
        let price = unit.price;
        if product.kind == ProductKind::Event {
            let access = EventAccess {
                members_only: product.members_only,
                allowed_tiers: product.allowed_tiers.clone(),
            };
            check_access(&access, &buyer.club, &buyer.enabled_tiers).map_err(|e| match e {
                AccessError::MembersOnly => CheckoutError::MembersOnlyEvent,
                AccessError::TierNotAllowed => CheckoutError::TierNotAllowed,
            })?;
        }
        let mut candidates: Vec<AppliedDiscount> = Vec::new();
        // The membership's first applicable benefit.
        if let Some(r) = &redeeming {
            let mut limit_hit = false;
            for (i, b) in r.benefits.iter().enumerate() {
                match b {
                    Benefit::Promotion {
                        percent_off,
                        product_ids,
                    } => {
                        if product_ids.is_empty() || product_ids.contains(&req.product_id) {
                            let off =
                                line_off(Discount::PercentOff(*percent_off), price, req.quantity);
                            let mut c = candidate(
                                DiscountSource::Membership,
                                format!("promotion {}%", percent_text(percent_off.0)),
                                off,
                                price.currency,
                            );
                            c.benefit_index = Some(i);
                            candidates.push(c);
                            limit_hit = false;
                            break;
                        }
                    }
                    Benefit::MemberTickets {
                        product_ids,
                        unit_ids,
                        quantity_per_booking,
                        max_uses,
                    } => {
                        if !product_ids.contains(&req.product_id)
                            || !unit_ids.contains(&req.unit_id)
                        {
                            continue;
                        }
                        let used = r.uses.get(&i).copied().unwrap_or(0)
                            + uses.get(&i).copied().unwrap_or(0);
                        let left_life = max_uses.map_or(u32::MAX, |m| m.saturating_sub(used));
                        let left_booking = quantity_per_booking
                            .saturating_sub(booked.get(&i).copied().unwrap_or(0));
                        let free = req.quantity.min(left_life).min(left_booking);
                        if free == 0 {
                            limit_hit = limit_hit || left_life == 0;
                            continue;
                        }
                        let mut c = candidate(
                            DiscountSource::Membership,
                            format!("{free} member ticket(s)"),
                            price.amount * i64::from(free),
                            price.currency,
                        );
                        c.free_tickets = Some(free);
                        c.benefit_index = Some(i);
                        candidates.push(c);
                        limit_hit = false;
                        break;
                    }
                }
            }
            if limit_hit && candidates.is_empty() {
                return Err(CheckoutError::BenefitLimitReached);
            }
        }
        if product.kind == ProductKind::Event
            && let Some(club) =
                best_club_price(&product.discounts, &buyer.club, &buyer.enabled_tiers, price)
        {
            let (source, description) = match club.source {
                ClubDiscountSource::ClubTier { tier } => (DiscountSource::ClubTier, tier),
                ClubDiscountSource::ClubMember => {
                    (DiscountSource::ClubMember, "club member".into())
                }
            };
            candidates.push(candidate(
                source,
                description,
                line_off(club.discount, price, req.quantity),
                price.currency,
            ));
        }
        if let Some(code) = promo_code
            && let Some(d) = product.promo(code)
        {
            candidates.push(candidate(
                DiscountSource::PromoCode,
                code.trim().to_uppercase(),
                line_off(d, price, req.quantity),
                price.currency,
            ));
        }
        // The best for the customer; on a tie the more specific source.
        let best = candidates
            .into_iter()
            .filter(|c| c.amount_off.amount > 0)
            .max_by(|a, b| {
                a.amount_off
                    .amount
                    .cmp(&b.amount_off.amount)
                    .then(b.source.cmp(&a.source))
            });
        // Member tickets count only when their benefit was the one applied.
        if let Some(b) = &best
            && let (Some(i), Some(n)) = (b.benefit_index, b.free_tickets)
        {
            *uses.entry(i).or_default() += n;
            *booked.entry(i).or_default() += n;
        }
        let base = price.amount * i64::from(req.quantity);
        let off = best.as_ref().map_or(0, |b| b.amount_off.amount.min(base));
        out.push(PricedLine {
            product_id: req.product_id.clone(),
            unit_id: req.unit_id.clone(),
            quantity: req.quantity,
            unit_price: price,
            discount: best,
            line_total: Money::new(base - off, price.currency),
        });
    }
    let currency = currency.ok_or(CheckoutError::InvalidOrder(
        "an order needs at least one item",
    ))?;
    let subtotal: i64 = out
        .iter()
        .map(|l| l.unit_price.amount * i64::from(l.quantity))
        .sum();
    let total: i64 = out.iter().map(|l| l.line_total.amount).sum();
    Ok(Priced {
        currency,
        lines: out,
        subtotal: Money::new(subtotal, currency),
        discount_total: Money::new(subtotal - total, currency),
        total: Money::new(total, currency),
        benefit_uses: uses,
    })
}

fn percent_text(bp: u32) -> String {
    if bp.is_multiple_of(100) {
        format!("{}", bp / 100)
    } else {
        format!("{}.{:02}", bp / 100, bp % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkout::catalogue::Product;
    use serde_json::json;

    fn catalogue() -> Catalogue {
        let products = [
            json!({"kind": "event", "name": "Harvest dinner", "currency": "USD", "units": [{"id": "adult", "name": "Adult", "price": {"amount": 12000, "currency": "USD"}}],
                   "discounts": {"member": {"percent_off": 10}, "tiers": {"Gold": {"fixed_price": {"amount": 9000, "currency": "USD"}}}}, "promo_codes": [{"code": "FALL", "discount": {"amount_off": {"amount": 1500, "currency": "USD"}}}]}),
            json!({"kind": "admission", "name": "Tasting", "currency": "USD", "units": [{"id": "adult", "name": "Adult", "price": {"amount": 2500, "currency": "USD"}}]}),
            json!({"kind": "event", "name": "Members night", "currency": "USD", "members_only": true, "units": [{"id": "adult", "name": "Adult", "price": {"amount": 5000, "currency": "USD"}}]}),
            json!({"kind": "admission", "name": "Museum", "currency": "EUR", "units": [{"id": "adult", "name": "Adult", "price": {"amount": 1000, "currency": "EUR"}}]}),
        ];
        ["harvest", "tasting", "members-night", "museum"]
            .iter()
            .zip(products)
            .map(|(id, p)| {
                (
                    id.to_string(),
                    serde_json::from_value::<Product>(p)
                        .unwrap()
                        .check(id)
                        .unwrap(),
                )
            })
            .collect()
    }

    fn line(p: &str, q: u32) -> LineRequest {
        LineRequest {
            product_id: p.into(),
            unit_id: "adult".into(),
            quantity: q,
        }
    }

    fn gold() -> Buyer {
        Buyer {
            club: ClubMembership {
                member: true,
                tiers: ["Gold".to_string()].into(),
            },
            enabled_tiers: ["gold".to_string()].into(),
        }
    }

    #[test]
    fn club_tier_beats_member_and_promo() {
        let p = price(
            &catalogue(),
            &[line("harvest", 2)],
            &gold(),
            Some("fall"),
            None,
        )
        .unwrap();
        let l = &p.lines[0];
        assert_eq!(
            l.discount.as_ref().unwrap().source,
            DiscountSource::ClubTier
        );
        assert_eq!(l.line_total.amount, 18000);
        // Without club membership the promo code applies.
        let p = price(
            &catalogue(),
            &[line("harvest", 2)],
            &Buyer::default(),
            Some("FALL"),
            None,
        )
        .unwrap();
        assert_eq!(
            (p.lines[0].discount.as_ref().unwrap().source, p.total.amount),
            (DiscountSource::PromoCode, 21000)
        );
    }

    #[test]
    fn first_applicable_benefit_and_limits() {
        let benefits: Vec<Benefit> = serde_json::from_value(json!([
            {"kind": "member_tickets", "product_ids": ["tasting"], "unit_ids": ["adult"], "quantity_per_booking": 2, "max_uses": 3},
            {"kind": "promotion", "percent_off": 15}
        ]))
        .unwrap();
        let uses = BTreeMap::new();
        let r = Redeeming {
            benefits: &benefits,
            uses: &uses,
        };
        let p = price(
            &catalogue(),
            &[line("tasting", 3), line("harvest", 1)],
            &Buyer::default(),
            None,
            Some(r),
        )
        .unwrap();
        // Two free tastings (per booking), the third paid; harvest gets 15%.
        assert_eq!(p.lines[0].line_total.amount, 2500);
        assert_eq!(p.lines[0].discount.as_ref().unwrap().free_tickets, Some(2));
        assert_eq!(p.lines[1].line_total.amount, 10200);
        assert_eq!(p.benefit_uses.get(&0), Some(&2));
        // Used up over the membership's life: the promotion takes over for
        // tastings too (the next applicable benefit).
        let spent = BTreeMap::from([(0usize, 3u32)]);
        let r = Redeeming {
            benefits: &benefits,
            uses: &spent,
        };
        let p = price(
            &catalogue(),
            &[line("tasting", 1)],
            &Buyer::default(),
            None,
            Some(r),
        )
        .unwrap();
        assert_eq!(p.lines[0].line_total.amount, 2125);
        // Only member tickets and used up: refused.
        let only = &benefits[..1];
        let r = Redeeming {
            benefits: only,
            uses: &spent,
        };
        assert_eq!(
            price(
                &catalogue(),
                &[line("tasting", 1)],
                &Buyer::default(),
                None,
                Some(r)
            ),
            Err(CheckoutError::BenefitLimitReached)
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(
            price(
                &catalogue(),
                &[line("members-night", 1)],
                &Buyer::default(),
                None,
                None
            ),
            Err(CheckoutError::MembersOnlyEvent)
        );
        assert!(
            price(
                &catalogue(),
                &[line("members-night", 1)],
                &gold(),
                None,
                None
            )
            .is_ok()
        );
        assert_eq!(
            price(
                &catalogue(),
                &[line("tasting", 1), line("museum", 1)],
                &Buyer::default(),
                None,
                None
            ),
            Err(CheckoutError::CurrencyMismatch)
        );
        assert!(matches!(
            price(
                &catalogue(),
                &[line("nope", 1)],
                &Buyer::default(),
                None,
                None
            ),
            Err(CheckoutError::UnknownProduct(_))
        ));
    }

    #[test]
    fn percent_rounds_once_per_line() {
        let mut c = catalogue();
        c.get_mut("tasting").unwrap().units[0].price.amount = 999;
        let benefits: Vec<Benefit> =
            serde_json::from_value(json!([{"kind": "promotion", "percent_off": 12.5}])).unwrap();
        let uses = BTreeMap::new();
        let p = price(
            &c,
            &[line("tasting", 3)],
            &Buyer::default(),
            None,
            Some(Redeeming {
                benefits: &benefits,
                uses: &uses,
            }),
        )
        .unwrap();
        // 2997 × 12.5% = 374.625 → 375 off, once for the line.
        assert_eq!(p.lines[0].line_total.amount, 2622);
    }
}
