//! Selling through resellers with OCTO (the tourism industry's open supplier
//! API): a reseller's booking as stored, its life (on hold → confirmed or
//! cancelled; a hold past its expiry is expired without anyone writing it)
//! and what OCTO refuses, in OCTO's own codes.
//!
//! A GuestHub product is an OCTO product with one option (`DEFAULT`); each
//! availability is one local date (`OPENING_HOURS`), its id the date's local
//! start (`2027-01-12T00:00:00+01:00`). A confirmed booking is a GuestHub
//! order with the booking's uuid as its id.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::checkout::membership::Contact;

/// The one option every product has.
pub const DEFAULT_OPTION: &str = "DEFAULT";
/// How long a reservation holds its seats unless the reseller asks otherwise.
pub const DEFAULT_HOLD_MINUTES: u32 = 30;
/// The longest hold a reseller may ask for (one reservation or extension).
pub const MAX_HOLD_MINUTES: u32 = 24 * 60;
/// Most local dates one calendar or availability request covers.
pub const MAX_DAYS: i64 = 366;
/// Most units one booking takes.
pub const MAX_UNITS: usize = 100;

/// What OCTO refuses, each with the code OCTO names.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OctoError {
    #[error("the productId was missing or invalid")]
    InvalidProductId(String),
    #[error("the optionId was missing or invalid")]
    InvalidOptionId(String),
    #[error("the unitId was missing or invalid")]
    InvalidUnitId(String),
    #[error("the availabilityId was missing, invalid or is not available")]
    InvalidAvailabilityId(String),
    #[error("{1}")]
    InvalidBookingUuid(String, &'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unprocessable(String),
}

impl OctoError {
    /// OCTO's code for this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            OctoError::InvalidProductId(_) => "INVALID_PRODUCT_ID",
            OctoError::InvalidOptionId(_) => "INVALID_OPTION_ID",
            OctoError::InvalidUnitId(_) => "INVALID_UNIT_ID",
            OctoError::InvalidAvailabilityId(_) => "INVALID_AVAILABILITY_ID",
            OctoError::InvalidBookingUuid(..) => "INVALID_BOOKING_UUID",
            OctoError::BadRequest(_) => "BAD_REQUEST",
            OctoError::Unprocessable(_) => "UNPROCESSABLE_ENTITY",
        }
    }

    /// The field OCTO names beside the code (`productId`, `uuid`, …).
    pub fn field(&self) -> Option<(&'static str, &str)> {
        match self {
            OctoError::InvalidProductId(v) => Some(("productId", v)),
            OctoError::InvalidOptionId(v) => Some(("optionId", v)),
            OctoError::InvalidUnitId(v) => Some(("unitId", v)),
            OctoError::InvalidAvailabilityId(v) => Some(("availabilityId", v)),
            OctoError::InvalidBookingUuid(v, _) => Some(("uuid", v)),
            OctoError::BadRequest(_) | OctoError::Unprocessable(_) => None,
        }
    }
}

/// A booking's stored state; `Expired` is never stored (see
/// [`OctoBooking::status_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OctoStatus {
    OnHold,
    Expired,
    Confirmed,
    Cancelled,
}

/// One ticket of a booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OctoUnitItem {
    pub uuid: String,
    pub unit_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reseller_reference: Option<String>,
    /// Set on confirmation: the membership sold on this ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier_reference: Option<String>,
    /// The ticket holder (memberships: the member).
    #[serde(default)]
    pub contact: Contact,
}

/// A reseller's booking as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OctoBooking {
    pub uuid: String,
    pub test_mode: bool,
    /// The partner (reseller) that made it.
    pub partner: String,
    pub product_id: String,
    /// The local date booked (products sold per date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    pub unit_items: Vec<OctoUnitItem>,
    #[serde(default)]
    pub contact: Contact,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reseller_reference: Option<String>,
    pub status: OctoStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Until when an unconfirmed booking holds its seats.
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
}

impl OctoBooking {
    /// The status at `now`: a hold past its expiry is expired.
    pub fn status_at(&self, now: DateTime<Utc>) -> OctoStatus {
        match self.status {
            OctoStatus::OnHold if self.expires_at <= now => OctoStatus::Expired,
            s => s,
        }
    }

    /// Units per unit id, in first-seen order.
    pub fn quantities(&self) -> Vec<(String, u32)> {
        let mut out: Vec<(String, u32)> = Vec::new();
        for u in &self.unit_items {
            match out.iter_mut().find(|(id, _)| *id == u.unit_id) {
                Some((_, n)) => *n += 1,
                None => out.push((u.unit_id.clone(), 1)),
            }
        }
        out
    }

    /// Checks the holding period a reseller asked for.
    pub fn hold_minutes(asked: Option<u32>) -> Result<u32, OctoError> {
        match asked.unwrap_or(DEFAULT_HOLD_MINUTES) {
            0 => Err(OctoError::BadRequest(
                "expirationMinutes must be at least 1".into(),
            )),
            m if m > MAX_HOLD_MINUTES => Err(OctoError::BadRequest(format!(
                "expirationMinutes must be at most {MAX_HOLD_MINUTES}"
            ))),
            m => Ok(m),
        }
    }
}

/// The local start of `date` in `tz` (the first valid instant of the day).
pub fn local_start(tz: Tz, date: NaiveDate) -> DateTime<FixedOffset> {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    let at = tz
        .from_local_datetime(&midnight)
        .earliest()
        .unwrap_or_else(|| tz.from_utc_datetime(&midnight));
    at.fixed_offset()
}

/// An availability's id: the date's local start, e.g. `2027-01-12T00:00:00+01:00`.
pub fn availability_id(tz: Tz, date: NaiveDate) -> String {
    local_start(tz, date).to_rfc3339()
}

/// The local date an availability id names, when it is one of ours.
pub fn availability_date(tz: Tz, id: &str) -> Option<NaiveDate> {
    let at = DateTime::parse_from_rfc3339(id).ok()?;
    let date = at.date_naive();
    (availability_id(tz, date) == id).then_some(date)
}

/// The dates `start..=end`, at most [`MAX_DAYS`] of them.
pub fn date_range(start: NaiveDate, end: NaiveDate) -> Result<Vec<NaiveDate>, OctoError> {
    if end < start {
        return Err(OctoError::BadRequest(
            "localDateEnd must not be before localDateStart".into(),
        ));
    }
    if (end - start).num_days() >= MAX_DAYS {
        return Err(OctoError::BadRequest(format!(
            "one request covers at most {MAX_DAYS} days"
        )));
    }
    Ok(start.iter_days().take_while(|d| *d <= end).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_ids_are_local_starts() {
        let tz: Tz = "Europe/Vienna".parse().unwrap();
        let d = NaiveDate::from_ymd_opt(2027, 1, 12).unwrap();
        assert_eq!(availability_id(tz, d), "2027-01-12T00:00:00+01:00");
        assert_eq!(availability_date(tz, "2027-01-12T00:00:00+01:00"), Some(d));
        assert_eq!(availability_date(tz, "2027-01-12T00:00:00+00:00"), None);
        assert_eq!(availability_date(tz, "tomorrow"), None);
        let summer = NaiveDate::from_ymd_opt(2027, 7, 1).unwrap();
        assert_eq!(availability_id(tz, summer), "2027-07-01T00:00:00+02:00");
    }

    #[test]
    fn ranges_are_bounded() {
        let d = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
        assert_eq!(date_range(d, d).unwrap(), vec![d]);
        assert!(date_range(d, d - chrono::Days::new(1)).is_err());
        assert!(date_range(d, d + chrono::Days::new(366)).is_err());
        assert_eq!(
            date_range(d, d + chrono::Days::new(365)).unwrap().len(),
            366
        );
    }
}
