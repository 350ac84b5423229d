//! Payments: charge now (parts = total), split (several parts = total), pay
//! later (parts ≤ total, the rest due). Cash computes change; gift-card
//! parts name the card and are taken through the voucher ledger.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::CheckoutError;
use crate::Money;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMode {
    ChargeNow,
    Split,
    PayLater,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Card,
    Cash,
    GiftCard,
    Other,
}

/// One payment part as requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentPart {
    pub method: PaymentMethod,
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Cash handed over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tendered: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gift_card_code: Option<String>,
}

/// A part after checking, with the change for cash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckedPart {
    #[serde(flatten)]
    pub part: PaymentPart,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Money>,
}

/// Checks the parts against the amount due; returns them with change and
/// the balance left due.
pub fn check_payment(
    mode: PaymentMode,
    parts: &[PaymentPart],
    due: Money,
) -> Result<(Vec<CheckedPart>, Money), CheckoutError> {
    if parts.len() > 20 {
        return Err(CheckoutError::InvalidPayment("at most 20 payment parts"));
    }
    if mode == PaymentMode::Split && parts.len() < 2 {
        return Err(CheckoutError::InvalidPayment(
            "a split payment has at least two parts",
        ));
    }
    let mut paid = 0i64;
    let mut checked = Vec::with_capacity(parts.len());
    for p in parts {
        if p.amount.currency != due.currency {
            return Err(CheckoutError::CurrencyMismatch);
        }
        if p.amount.amount <= 0 {
            return Err(CheckoutError::InvalidPayment(
                "payment amounts must be positive",
            ));
        }
        let change = match p.method {
            PaymentMethod::Cash => {
                let tendered = p.tendered.unwrap_or(p.amount);
                tendered.within_limit("tendered").map_err(|_| {
                    CheckoutError::InvalidPayment(
                        "tendered must be at most 100000000000 minor units",
                    )
                })?;
                if tendered.currency != due.currency {
                    return Err(CheckoutError::CurrencyMismatch);
                }
                if tendered.amount < p.amount.amount {
                    return Err(CheckoutError::InsufficientCash);
                }
                Some(Money::new(tendered.amount - p.amount.amount, due.currency))
            }
            PaymentMethod::GiftCard
                if p.gift_card_code
                    .as_deref()
                    .is_none_or(|c| c.trim().is_empty()) =>
            {
                return Err(CheckoutError::InvalidPayment(
                    "a gift_card part needs gift_card_code",
                ));
            }
            _ if p.tendered.is_some() => {
                return Err(CheckoutError::InvalidPayment(
                    "only cash parts take tendered",
                ));
            }
            _ => None,
        };
        paid = paid
            .checked_add(p.amount.amount)
            .ok_or(CheckoutError::PaymentMismatch)?;
        checked.push(CheckedPart {
            part: p.clone(),
            change,
        });
    }
    let ok = match mode {
        PaymentMode::ChargeNow | PaymentMode::Split => paid == due.amount,
        PaymentMode::PayLater => paid <= due.amount,
    };
    if !ok {
        return Err(CheckoutError::PaymentMismatch);
    }
    Ok((checked, Money::new(due.amount - paid, due.currency)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;

    fn usd(a: i64) -> Money {
        Money::new(a, Currency::parse("USD").unwrap())
    }

    fn part(method: PaymentMethod, a: i64) -> PaymentPart {
        PaymentPart {
            method,
            amount: usd(a),
            reference: None,
            tendered: None,
            gift_card_code: None,
        }
    }

    #[test]
    fn modes() {
        let due = usd(10_000);
        assert!(
            check_payment(
                PaymentMode::ChargeNow,
                &[part(PaymentMethod::Card, 10_000)],
                due
            )
            .is_ok()
        );
        assert_eq!(
            check_payment(
                PaymentMode::ChargeNow,
                &[part(PaymentMethod::Card, 9_999)],
                due
            ),
            Err(CheckoutError::PaymentMismatch)
        );
        let mut gift = part(PaymentMethod::GiftCard, 4_000);
        gift.gift_card_code = Some("ABCD".into());
        let (_, left) = check_payment(
            PaymentMode::Split,
            &[gift.clone(), part(PaymentMethod::Card, 6_000)],
            due,
        )
        .unwrap();
        assert_eq!(left.amount, 0);
        let (_, left) = check_payment(PaymentMode::PayLater, &[], due).unwrap();
        assert_eq!(left.amount, 10_000);
        assert_eq!(
            check_payment(
                PaymentMode::PayLater,
                &[part(PaymentMethod::Card, 10_001)],
                due
            ),
            Err(CheckoutError::PaymentMismatch)
        );
        gift.gift_card_code = None;
        assert!(check_payment(PaymentMode::ChargeNow, &[gift], due).is_err());
    }

    #[test]
    fn cash_change() {
        let mut cash = part(PaymentMethod::Cash, 10_000);
        cash.tendered = Some(usd(12_000));
        let (parts, _) =
            check_payment(PaymentMode::ChargeNow, &[cash.clone()], usd(10_000)).unwrap();
        assert_eq!(parts[0].change, Some(usd(2_000)));
        cash.tendered = Some(usd(5_000));
        assert_eq!(
            check_payment(PaymentMode::ChargeNow, &[cash], usd(10_000)),
            Err(CheckoutError::InsufficientCash)
        );
    }
}
