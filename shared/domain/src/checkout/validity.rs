//! Membership validity: Expires On from Valid From and the product's
//! validity.

use chrono::{Datelike, Duration, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ValidationError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValidityUnit {
    Days,
    Months,
    Years,
}

/// How long a membership runs: `{"count": 12, "unit": "months"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Validity {
    pub count: u32,
    pub unit: ValidityUnit,
}

impl Validity {
    pub fn check(&self) -> Result<(), ValidationError> {
        let max = match self.unit {
            ValidityUnit::Days => 3660,
            ValidityUnit::Months => 120,
            ValidityUnit::Years => 10,
        };
        if self.count == 0 || self.count > max {
            return Err(ValidationError::new(
                "validity.count",
                format!("must be 1-{max}"),
            ));
        }
        Ok(())
    }

    /// The last day of validity (valid through its end in the property's
    /// zone). Calendar months: Jan 15 + 1 month → Feb 14, the day before the
    /// same day a month later; when that day does not exist in the target
    /// month (Jan 31 + 1 month), the target month's last day (Feb 28, or 29
    /// in a leap year). Days: Valid From counts as the first day.
    pub fn expires_on(&self, valid_from: NaiveDate) -> Option<NaiveDate> {
        let months = match self.unit {
            ValidityUnit::Days => {
                return valid_from.checked_add_signed(Duration::days(i64::from(self.count) - 1));
            }
            ValidityUnit::Months => self.count,
            ValidityUnit::Years => self.count.checked_mul(12)?,
        };
        // chrono clamps to the month's last day when the day does not exist.
        let target = valid_from.checked_add_months(Months::new(months))?;
        if target.day() == valid_from.day() {
            target.pred_opt()
        } else {
            Some(target)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn months(n: u32) -> Validity {
        Validity {
            count: n,
            unit: ValidityUnit::Months,
        }
    }

    #[test]
    fn calendar_months() {
        assert_eq!(months(1).expires_on(d("2026-01-15")), Some(d("2026-02-14")));
        assert_eq!(months(1).expires_on(d("2026-01-31")), Some(d("2026-02-28")));
        assert_eq!(months(1).expires_on(d("2028-01-31")), Some(d("2028-02-29")));
        assert_eq!(months(1).expires_on(d("2028-01-29")), Some(d("2028-02-28")));
        assert_eq!(months(1).expires_on(d("2026-01-29")), Some(d("2026-02-28")));
        assert_eq!(
            months(12).expires_on(d("2026-03-01")),
            Some(d("2027-02-28"))
        );
        assert_eq!(months(1).expires_on(d("2026-12-31")), Some(d("2027-01-30")));
    }

    #[test]
    fn years_and_days() {
        let y = Validity {
            count: 1,
            unit: ValidityUnit::Years,
        };
        assert_eq!(y.expires_on(d("2026-06-10")), Some(d("2027-06-09")));
        assert_eq!(y.expires_on(d("2028-02-29")), Some(d("2029-02-28")));
        let days = Validity {
            count: 30,
            unit: ValidityUnit::Days,
        };
        assert_eq!(days.expires_on(d("2026-01-01")), Some(d("2026-01-30")));
    }

    #[test]
    fn bounds() {
        assert!(months(0).check().is_err());
        assert!(months(121).check().is_err());
        assert!(months(12).check().is_ok());
    }
}
