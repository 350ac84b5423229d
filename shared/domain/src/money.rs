//! Money in integer minor units with an ISO 4217 currency. Never floats.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;

use crate::ValidationError;

/// An ISO 4217 alphabetic code. Only codes we know the minor unit of are
/// accepted, so an amount in minor units always means one thing.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "EUR")]
pub struct Currency([u8; 3]);

/// (code, minor-unit exponent) for the currencies the hub handles.
const KNOWN: &[(&str, u8)] = &[
    ("AUD", 2),
    ("BGN", 2),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JPY", 0),
    ("KRW", 0),
    ("MXN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("PLN", 2),
    ("RON", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TRY", 2),
    ("USD", 2),
    ("ZAR", 2),
];

impl Currency {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let upper = s.trim().to_ascii_uppercase();
        if KNOWN.iter().any(|(c, _)| *c == upper) {
            let b = upper.as_bytes();
            Ok(Self([b[0], b[1], b[2]]))
        } else {
            Err(ValidationError::new(
                "currency",
                "not a supported ISO 4217 code",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point (2 for EUR, 0 for JPY).
    pub fn exponent(&self) -> u8 {
        KNOWN
            .iter()
            .find(|(c, _)| *c == self.as_str())
            .map(|(_, e)| *e)
            .unwrap_or(2)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Currency {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Currency {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> Self {
        c.as_str().to_owned()
    }
}

/// The largest amount one request may name, in minor units (1,000,000,000.00
/// in a two-decimal currency): far above any voucher, payment, cash tender
/// or stay, and far enough below `i64::MAX` that sums of many never overflow.
pub const MAX_AMOUNT: i64 = 100_000_000_000;

/// For an optional amount whose omission means "all of it" (redeem, hold,
/// capture, reverse): an explicit `null` is refused rather than read as
/// omitted, so a client's missing value never takes a whole balance.
pub fn omitted_not_null<'de, D>(d: D) -> Result<Option<Money>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    match Option::<Money>::deserialize(d)? {
        Some(m) => Ok(Some(m)),
        None => Err(serde::de::Error::custom(
            "must not be null: omit the field to mean all of it",
        )),
    }
}

/// An amount of money: `{"amount": 1250, "currency": "EUR"}` is EUR 12.50,
/// and nothing else: another field is refused, not ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// Integer minor units (cents for EUR).
    pub amount: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: i64, currency: Currency) -> Self {
        Self { amount, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    /// An amount between 0 and [`MAX_AMOUNT`]: what one payment, tender,
    /// voucher value or revenue figure may name.
    pub fn within_limit(self, field: &'static str) -> Result<Self, ValidationError> {
        if self.amount > MAX_AMOUNT {
            return Err(ValidationError::new(
                field,
                format!("must be at most {MAX_AMOUNT} minor units"),
            ));
        }
        self.non_negative(field)
    }

    /// A non-negative amount, as every price, value and payment must be.
    pub fn non_negative(self, field: &'static str) -> Result<Self, ValidationError> {
        if self.amount < 0 {
            Err(ValidationError::new(field, "must not be negative"))
        } else {
            Ok(self)
        }
    }

    /// An amount in major units as text (`"123.45"`, `"-5"`, `"0.5"`), as
    /// other systems send it, exactly: more decimals than the currency has
    /// are refused rather than rounded.
    pub fn parse_major(raw: &str, currency: Currency) -> Result<Self, ValidationError> {
        let bad = || ValidationError::new("amount", "is not a decimal amount");
        let t = raw.trim();
        let (neg, digits) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let exp = usize::from(currency.exponent());
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !all_digits(int) || !all_digits(frac) {
            return Err(bad());
        }
        let frac = frac.trim_end_matches('0');
        if frac.len() > exp {
            return Err(ValidationError::new(
                "amount",
                format!("has more than {exp} decimals"),
            ));
        }
        let scaled = format!("{int}{frac:0<exp$}");
        let v: i64 = scaled.parse().map_err(|_| bad())?;
        Ok(Money::new(if neg { -v } else { v }, currency))
    }

    /// The amount in major units as text (`"123.45"`, `"-0.05"`, `"1500"`
    /// for JPY): the inverse of [`Money::parse_major`].
    pub fn major_units(&self) -> String {
        let exp = u32::from(self.currency.exponent());
        if exp == 0 {
            return self.amount.to_string();
        }
        let div = 10_u64.pow(exp);
        let sign = if self.amount < 0 { "-" } else { "" };
        let abs = self.amount.unsigned_abs();
        format!(
            "{sign}{}.{:0width$}",
            abs / div,
            abs % div,
            width = exp as usize
        )
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        (self.currency == other.currency)
            .then(|| self.amount.checked_add(other.amount))
            .flatten()
            .map(|amount| Money::new(amount, self.currency))
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        (self.currency == other.currency)
            .then(|| self.amount.checked_sub(other.amount))
            .flatten()
            .map(|amount| Money::new(amount, self.currency))
    }

    /// `percent` (0–100, up to two decimals as basis points) of this amount,
    /// rounded half-up to the minor unit.
    pub fn percent_of(self, basis_points: u32) -> Money {
        let num = i128::from(self.amount) * i128::from(basis_points);
        let rounded = (num + 5_000) / 10_000;
        Money::new(rounded as i64, self.currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.major_units(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(a: i64) -> Money {
        Money::new(a, Currency::parse("EUR").unwrap())
    }

    #[test]
    fn currency_parses_known_codes_only() {
        assert_eq!(Currency::parse(" eur ").unwrap().as_str(), "EUR");
        assert!(Currency::parse("EURO").is_err());
        assert!(Currency::parse("XYZ").is_err());
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
    }

    #[test]
    fn major_units_parse_exactly() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(Money::parse_major("123.45", eur).unwrap().amount, 12_345);
        assert_eq!(Money::parse_major("7", eur).unwrap().amount, 700);
        assert_eq!(Money::parse_major("0.5", eur).unwrap().amount, 50);
        assert_eq!(Money::parse_major("-2.10", eur).unwrap().amount, -210);
        assert_eq!(Money::parse_major("1.230", eur).unwrap().amount, 123);
        for bad in [
            "",
            "1.234",
            "1e3",
            "abc",
            ".5",
            "1,5",
            "99999999999999999999",
        ] {
            assert!(Money::parse_major(bad, eur).is_err(), "{bad}");
        }
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(Money::parse_major("1500", jpy).unwrap().amount, 1500);
        for m in [
            Money::new(-5, eur),
            Money::new(12_345, eur),
            Money::new(1500, jpy),
        ] {
            assert_eq!(Money::parse_major(&m.major_units(), m.currency).unwrap(), m);
        }
    }

    #[test]
    fn percent_rounds_half_up_once() {
        assert_eq!(eur(1999).percent_of(1_500).amount, 300); // 299.85 -> 300
        assert_eq!(eur(10).percent_of(2_500).amount, 3); // 2.5 -> 3
        assert_eq!(eur(10).percent_of(2_400).amount, 2); // 2.4 -> 2
    }

    #[test]
    fn currencies_never_mix() {
        let usd = Money::new(5, Currency::parse("USD").unwrap());
        assert!(eur(5).checked_add(usd).is_none());
        assert_eq!(eur(5).checked_sub(eur(7)).unwrap().amount, -2);
    }

    #[test]
    fn displays_with_minor_units() {
        assert_eq!(eur(1250).to_string(), "12.50 EUR");
        assert_eq!(eur(-5).to_string(), "-0.05 EUR");
    }

    #[test]
    fn json_shape_is_amount_and_currency() {
        let m: Money = serde_json::from_str(r#"{"amount":1250,"currency":"EUR"}"#).unwrap();
        assert_eq!(m, eur(1250));
        assert!(serde_json::from_str::<Money>(r#"{"amount":12.5,"currency":"EUR"}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"amount":1,"currency":"E"}"#).is_err());
    }
}
