//! Dates as AMS exports write them.
//!
//! Hand-written rather than `NaiveDate::parse_from_str` per format: it runs
//! for up to three cells of every row of a million-row file, and trying
//! several chrono format strings per cell costs more than the CSV parse.
//! For `YYYY-MM-DD` it accepts exactly what [`crate::time::parse_date`]
//! accepts (a test checks that), plus the other layouts below.

use chrono::NaiveDate;

/// Why a date cell was refused. The message never contains the cell value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateError {
    /// Not one of the accepted layouts.
    Unrecognised,
    /// The right layout but no such day (`2023-02-30`).
    Impossible,
}

impl DateError {
    pub fn reason(self) -> &'static str {
        match self {
            DateError::Unrecognised => "is not a date as YYYY-MM-DD, MM/DD/YYYY or DD.MM.YYYY",
            DateError::Impossible => "is not a valid calendar date",
        }
    }
}

/// Parses a date cell. Accepted: `YYYY-MM-DD`, `YYYY/MM/DD`, `MM/DD/YYYY`
/// (US exports), `DD.MM.YYYY` (German-speaking exports), month and day with
/// one or two digits, optionally followed by a time (`2024-01-05 00:00:00`,
/// `2024-01-05T00:00:00Z`, `1/5/2024 12:00 AM`) that is ignored.
///
/// Blank cells and the all-zero placeholders some systems write for "no date"
/// (`0000-00-00`, `00/00/0000`) are `Ok(None)`: rejecting a member row over a
/// placeholder birth date would drop a real member.
pub fn parse_date_cell(raw: &str) -> Result<Option<NaiveDate>, DateError> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let (date, time) = match s.bytes().position(|b| b == b' ' || b == b'T') {
        Some(i) => (&s[..i], Some(s[i + 1..].trim_start())),
        None => (s, None),
    };
    if let Some(t) = time
        && !looks_like_time(t)
    {
        return Err(DateError::Unrecognised);
    }
    let b = date.as_bytes();
    let (n1, d1, rest) = number(b).ok_or(DateError::Unrecognised)?;
    let (&sep, rest) = rest.split_first().ok_or(DateError::Unrecognised)?;
    let (n2, d2, rest) = number(rest).ok_or(DateError::Unrecognised)?;
    let (&sep2, rest) = rest.split_first().ok_or(DateError::Unrecognised)?;
    let (n3, d3, rest) = number(rest).ok_or(DateError::Unrecognised)?;
    if sep != sep2 || !rest.is_empty() {
        return Err(DateError::Unrecognised);
    }
    let (y, m, d) = match (sep, d1, d2, d3) {
        (b'-' | b'/', 4, 1..=2, 1..=2) => (n1, n2, n3),
        (b'/', 1..=2, 1..=2, 4) => (n3, n1, n2),
        (b'.', 1..=2, 1..=2, 4) => (n3, n2, n1),
        _ => return Err(DateError::Unrecognised),
    };
    if y == 0 && m == 0 && d == 0 {
        return Ok(None);
    }
    // y < 10_000 by construction (at most four digits), so the cast is exact.
    NaiveDate::from_ymd_opt(y as i32, m, d)
        .map(Some)
        .ok_or(DateError::Impossible)
}

/// Leading ASCII digits (at most 4) → (value, digit count, rest).
#[inline]
fn number(b: &[u8]) -> Option<(u32, usize, &[u8])> {
    let n = b.iter().take(5).take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 4 {
        return None;
    }
    let v = b[..n]
        .iter()
        .fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0'));
    Some((v, n, &b[n..]))
}

/// A time-of-day suffix we are willing to ignore: starts with a digit and is
/// made of the characters times are written with. Anything else after the
/// date (`2024-01-05 maybe`) means the cell is not a date.
fn looks_like_time(t: &str) -> bool {
    t.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && t.bytes().all(|c| {
            c.is_ascii_digit()
                || matches!(
                    c,
                    b':' | b'.'
                        | b' '
                        | b'+'
                        | b'-'
                        | b'Z'
                        | b'A'
                        | b'P'
                        | b'M'
                        | b'a'
                        | b'p'
                        | b'm'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, day)
    }

    #[test]
    fn accepted_layouts() {
        let cases = [
            ("2024-01-05", d(2024, 1, 5)),
            ("2024-1-5", d(2024, 1, 5)),
            ("2024/01/05", d(2024, 1, 5)),
            ("01/05/2024", d(2024, 1, 5)),
            ("1/5/2024", d(2024, 1, 5)),
            ("05.01.2024", d(2024, 1, 5)),
            ("5.1.2024", d(2024, 1, 5)),
            ("2024-01-05 00:00:00", d(2024, 1, 5)),
            ("2024-01-05T13:45:00Z", d(2024, 1, 5)),
            ("2024-01-05T13:45:00+02:00", d(2024, 1, 5)),
            ("1/5/2024 12:00 AM", d(2024, 1, 5)),
            ("05.01.2024 23:59", d(2024, 1, 5)),
            ("  2024-01-05  ", d(2024, 1, 5)),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_date_cell(raw), Ok(want), "{raw}");
        }
    }

    #[test]
    fn blanks_and_placeholders_are_no_date() {
        for raw in ["", "   ", "0000-00-00", "00/00/0000", "0000-00-00 00:00:00"] {
            assert_eq!(parse_date_cell(raw), Ok(None), "{raw:?}");
        }
    }

    #[test]
    fn refusals() {
        for raw in [
            "yesterday",
            "2024-01",
            "24-01-05",
            "05-01-2024",
            "2024.01.05",
            "1/5/24",
            "2024-01-05 maybe",
            "2024-01-05x",
            "20240105",
            "2024-01/05",
            "12345-01-01",
        ] {
            assert_eq!(parse_date_cell(raw), Err(DateError::Unrecognised), "{raw}");
        }
        for raw in [
            "2023-02-29",
            "02/30/2024",
            "31.04.2024",
            "2024-13-01",
            "2024-00-10",
        ] {
            assert_eq!(parse_date_cell(raw), Err(DateError::Impossible), "{raw}");
        }
    }

    #[test]
    fn reasons_do_not_echo_values() {
        for e in [DateError::Unrecognised, DateError::Impossible] {
            assert!(!e.reason().contains("2024"));
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,30}") {
            let _ = parse_date_cell(&s);
        }

        /// For ISO dates this parser and `time::parse_date` agree.
        #[test]
        fn agrees_with_time_parse_date_on_iso(y in 1000i32..=9999, m in 1u32..=12, day in 1u32..=31) {
            let raw = format!("{y:04}-{m:02}-{day:02}");
            let ours = parse_date_cell(&raw).ok().flatten();
            let theirs = crate::time::parse_date("d", &raw).ok();
            prop_assert_eq!(ours, theirs);
        }

        #[test]
        fn us_and_german_layouts_agree(y in 1000i32..=9999, m in 1u32..=12, day in 1u32..=28) {
            let want = NaiveDate::from_ymd_opt(y, m, day);
            prop_assert_eq!(parse_date_cell(&format!("{m}/{day}/{y}")), Ok(want));
            prop_assert_eq!(parse_date_cell(&format!("{day:02}.{m:02}.{y}")), Ok(want));
        }
    }
}
