//! Settlement: what accepting properties took from vouchers of which issuers
//! in a period, so portal systems can bill each other. Redemptions and
//! captures count as redeemed, reversals as given back; totals are per
//! currency, never mixed.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use super::code::VoucherCode;
use super::model::{ActivityKind, LedgerEntry};
use crate::time::end_of_local_day;
use crate::{Currency, Money, PartnerId, PropertyId, ValidationError};

/// Longest period one report covers.
pub const MAX_PERIOD_DAYS: i64 = 366;

/// One settled activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SettlementLine {
    pub at: DateTime<Utc>,
    pub code: VoucherCode,
    #[schema(value_type = String)]
    pub issuing_property: PropertyId,
    #[schema(value_type = String)]
    pub accepting_property: PropertyId,
    pub kind: ActivityKind,
    /// Positive: value taken (redeem, capture) or given back (reverse).
    pub amount: Money,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redemption_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub partner: Option<PartnerId>,
}

impl SettlementLine {
    /// The line a ledger entry contributes, if it is a settled kind.
    pub fn of(e: &LedgerEntry) -> Option<Self> {
        let a = &e.activity;
        if !a.kind.is_settled() {
            return None;
        }
        Some(Self {
            at: a.at,
            code: e.code.clone(),
            issuing_property: e.issuer.clone(),
            accepting_property: a.accepting_property.clone()?,
            kind: a.kind,
            amount: Money::new(a.amount.amount.abs(), a.amount.currency),
            redemption_id: a.redemption_id.clone(),
            reservation_number: a.reservation.as_ref().map(|r| r.number.clone()),
            partner: a.partner.clone(),
        })
    }
}

/// Totals for one (accepting property, issuing property, currency).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SettlementGroup {
    #[schema(value_type = String)]
    pub accepting_property: PropertyId,
    #[schema(value_type = String)]
    pub issuing_property: PropertyId,
    pub currency: Currency,
    /// Redemptions and captures.
    pub redemptions: u32,
    pub reversals: u32,
    pub redeemed: Money,
    pub reversed: Money,
    /// redeemed − reversed: what the accepting property bills the issuer.
    pub net: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CurrencyTotal {
    pub currency: Currency,
    pub redemptions: u32,
    pub reversals: u32,
    pub redeemed: Money,
    pub reversed: Money,
    pub net: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Settlement {
    pub groups: Vec<SettlementGroup>,
    pub totals: Vec<CurrencyTotal>,
}

/// Groups lines by accepting property, issuing property and currency.
pub fn settle(lines: &[SettlementLine]) -> Settlement {
    let mut groups: BTreeMap<(PropertyId, PropertyId, Currency), SettlementGroup> = BTreeMap::new();
    let mut totals: BTreeMap<Currency, CurrencyTotal> = BTreeMap::new();
    for l in lines {
        let c = l.amount.currency;
        let zero = Money::zero(c);
        let g = groups
            .entry((l.accepting_property.clone(), l.issuing_property.clone(), c))
            .or_insert_with(|| SettlementGroup {
                accepting_property: l.accepting_property.clone(),
                issuing_property: l.issuing_property.clone(),
                currency: c,
                redemptions: 0,
                reversals: 0,
                redeemed: zero,
                reversed: zero,
                net: zero,
            });
        let t = totals.entry(c).or_insert_with(|| CurrencyTotal {
            currency: c,
            redemptions: 0,
            reversals: 0,
            redeemed: zero,
            reversed: zero,
            net: zero,
        });
        if l.kind == ActivityKind::Reverse {
            g.reversals += 1;
            g.reversed.amount += l.amount.amount;
            g.net.amount -= l.amount.amount;
            t.reversals += 1;
            t.reversed.amount += l.amount.amount;
            t.net.amount -= l.amount.amount;
        } else {
            g.redemptions += 1;
            g.redeemed.amount += l.amount.amount;
            g.net.amount += l.amount.amount;
            t.redemptions += 1;
            t.redeemed.amount += l.amount.amount;
            t.net.amount += l.amount.amount;
        }
    }
    Settlement {
        groups: groups.into_values().collect(),
        totals: totals.into_values().collect(),
    }
}

/// The instants a report for local days `from`..=`to` in `tz` covers:
/// `[start of from, end of to)`.
pub fn period(
    from: NaiveDate,
    to: NaiveDate,
    tz: Tz,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ValidationError> {
    if to < from {
        return Err(ValidationError::new("to", "must not be before from"));
    }
    if (to - from).num_days() >= MAX_PERIOD_DAYS {
        return Err(ValidationError::new(
            "to",
            "a period covers at most 366 days",
        ));
    }
    let day_before = from - Duration::days(1);
    Ok((end_of_local_day(day_before, tz), end_of_local_day(to, tz)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voucher::model::Activity;

    fn eur(a: i64) -> Money {
        Money::new(a, Currency::parse("EUR").unwrap())
    }

    fn entry(kind: ActivityKind, amount: i64, accepting: &str, issuer: &str) -> LedgerEntry {
        LedgerEntry {
            code: VoucherCode::generate(),
            issuer: PropertyId::parse(issuer).unwrap(),
            activity: Activity {
                id: 1,
                kind,
                amount: eur(amount),
                held: None,
                balance_after: eur(0),
                at: Utc::now(),
                partner: None,
                accepting_property: Some(PropertyId::parse(accepting).unwrap()),
                reservation: None,
                redemption_id: None,
                hold_id: None,
                note: None,
            },
        }
    }

    #[test]
    fn groups_by_accepting_and_issuing_property() {
        let lines: Vec<_> = [
            entry(ActivityKind::Redeem, -1_000, "abbey", "castle"),
            entry(ActivityKind::Capture, -500, "abbey", "castle"),
            entry(ActivityKind::Reverse, 200, "abbey", "castle"),
            entry(ActivityKind::Redeem, -300, "castle", "castle"),
            entry(ActivityKind::Load, 900, "castle", "castle"),
        ]
        .iter()
        .filter_map(SettlementLine::of)
        .collect();
        assert_eq!(lines.len(), 4);
        let s = settle(&lines);
        assert_eq!(s.groups.len(), 2);
        let abbey = &s.groups[0];
        assert_eq!(abbey.accepting_property.as_str(), "abbey");
        assert_eq!((abbey.redemptions, abbey.reversals), (2, 1));
        assert_eq!(abbey.redeemed, eur(1_500));
        assert_eq!(abbey.net, eur(1_300));
        assert_eq!(s.totals.len(), 1);
        assert_eq!(s.totals[0].net, eur(1_600));
    }

    #[test]
    fn period_is_local_days() {
        let tz: Tz = "Europe/Vienna".parse().unwrap();
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let (a, b) = period(d("2026-03-01"), d("2026-03-31"), tz).unwrap();
        assert_eq!(a.to_rfc3339(), "2026-02-28T23:00:00+00:00");
        assert_eq!(b.to_rfc3339(), "2026-03-31T22:00:00+00:00");
        assert!(period(d("2026-03-02"), d("2026-03-01"), tz).is_err());
        assert!(period(d("2025-01-01"), d("2026-03-01"), tz).is_err());
    }
}
