//! The pickup feed: every voucher sold here with a value becomes an order in
//! its issuer's feed, numbered 1, 2, 3, … in commit order. Each PMS partner
//! keeps its own cursor (the last sequence it acknowledged), so it receives
//! every order at least once and never skips one.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::code::VoucherCode;
use super::model::{ArticleType, Buyer, Voucher};
use crate::{Money, PropertyId, ValidationError};

/// One order in an issuer's feed, as it was when sold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Position in the issuer's feed (assigned by the store on commit).
    pub seq: u64,
    pub issuer: PropertyId,
    pub order_ref: Option<String>,
    pub issued_at: DateTime<Utc>,
    pub vouchers: Vec<OrderVoucher>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderVoucher {
    pub code: VoucherCode,
    pub article_type: ArticleType,
    pub value: Money,
    pub valid_until: Option<NaiveDate>,
    pub package: Option<String>,
    pub buyer: Option<Buyer>,
    pub test_mode: bool,
}

impl Order {
    /// The order a newly issued voucher puts in the feed (sequence 0 until
    /// the store assigns one).
    pub fn of(v: &Voucher) -> Self {
        Self {
            seq: 0,
            issuer: v.issuer.clone(),
            order_ref: v.order_ref.clone(),
            issued_at: v.issued_at,
            vouchers: vec![OrderVoucher {
                code: v.code.clone(),
                article_type: v.article_type,
                value: v.initial_value,
                valid_until: v.valid_until,
                package: v.package.clone(),
                buyer: v.buyer.clone(),
                test_mode: v.test_mode,
            }],
        }
    }
}

/// A PMS partner's article code per article type (`PUT /article-mapping`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct ArticleMapping(pub BTreeMap<ArticleType, String>);

impl ArticleMapping {
    pub fn validate(&self) -> Result<(), ValidationError> {
        for (t, code) in &self.0 {
            if code.trim().is_empty() || code.len() > 64 || code.chars().any(char::is_control) {
                return Err(ValidationError::new(
                    "article_code",
                    format!(
                        "the code for {} must be 1-64 printable characters",
                        t.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn code_for(&self, t: ArticleType) -> Option<&str> {
        self.0.get(&t).map(String::as_str)
    }
}

/// A pickup cursor as partners send it: the decimal sequence number of the
/// last order they processed ("0" = from the beginning).
pub fn parse_cursor(raw: &str) -> Result<u64, ValidationError> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 19 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValidationError::new(
            "cursor",
            "must be a cursor returned by GET /voucher-orders",
        ));
    }
    raw.parse()
        .map_err(|_| ValidationError::new("cursor", "is out of range"))
}

/// Most orders one page returns.
pub const MAX_PAGE: usize = 200;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_decimal_sequences() {
        assert_eq!(parse_cursor("0").unwrap(), 0);
        assert_eq!(parse_cursor(" 42 ").unwrap(), 42);
        for bad in ["", "-1", "x", "1.5", "99999999999999999999"] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mapping_is_keyed_by_article_type() {
        let m: ArticleMapping =
            serde_json::from_str(r#"{"value": "ART-10", "gift_card": "GC"}"#).unwrap();
        assert_eq!(m.code_for(ArticleType::GiftCard), Some("GC"));
        assert_eq!(m.code_for(ArticleType::Package), None);
        assert!(serde_json::from_str::<ArticleMapping>(r#"{"voucher": "x"}"#).is_err());
        let empty: ArticleMapping = serde_json::from_str(r#"{"value": " "}"#).unwrap();
        assert!(empty.validate().is_err());
    }
}
