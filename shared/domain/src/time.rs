//! Time rules: timestamps are UTC; validity is a local date in the
//! property's zone, "valid until D" meaning through the end of D there.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::ValidationError;

/// Parses `YYYY-MM-DD`.
pub fn parse_date(field: &'static str, raw: &str) -> Result<NaiveDate, ValidationError> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| ValidationError::new(field, "must be a date as YYYY-MM-DD"))
}

/// The first instant after local day `date` ends in `tz`, in UTC. Handles DST:
/// the next local midnight is resolved in the zone, not by adding 24 hours.
pub fn end_of_local_day(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let next = date.succ_opt().unwrap_or(date);
    let midnight = next.and_hms_opt(0, 0, 0).unwrap_or_default();
    match tz.from_local_datetime(&midnight) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(early, _) => early.with_timezone(&Utc),
        // Midnight skipped by a DST jump (e.g. America/Santiago): the day ends
        // at the first instant that exists, one hour later.
        chrono::LocalResult::None => tz
            .from_local_datetime(&(midnight + Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&midnight)),
    }
}

/// Is `now` on or before local day `until` in `tz`?
pub fn valid_through(until: NaiveDate, tz: Tz, now: DateTime<Utc>) -> bool {
    now < end_of_local_day(until, tz)
}

/// Today's local date in `tz`.
pub fn local_date(tz: Tz, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn valid_until_end_of_local_day() {
        let tz: Tz = "Europe/Vienna".parse().unwrap();
        let d = parse_date("valid_until", "2026-01-15").unwrap();
        // 23:59:59 Vienna = 22:59:59Z in winter
        assert!(valid_through(d, tz, utc("2026-01-15T22:59:59Z")));
        assert!(!valid_through(d, tz, utc("2026-01-15T23:00:00Z")));
    }

    #[test]
    fn dst_change_day_is_23_hours() {
        let tz: Tz = "Europe/Vienna".parse().unwrap();
        // Clocks go forward on 2026-03-29 at 02:00 local; the day ends at 22:00Z.
        let d = parse_date("valid_until", "2026-03-29").unwrap();
        assert_eq!(end_of_local_day(d, tz), utc("2026-03-29T22:00:00Z"));
        // Clocks go back on 2026-10-25; the day ends at 23:00Z.
        let d = parse_date("valid_until", "2026-10-25").unwrap();
        assert_eq!(end_of_local_day(d, tz), utc("2026-10-25T23:00:00Z"));
    }

    #[test]
    fn rejects_bad_dates() {
        for bad in ["2026-02-30", "15.01.2026", "", "2026-1-1x"] {
            assert!(parse_date("d", bad).is_err(), "{bad}");
        }
    }
}
