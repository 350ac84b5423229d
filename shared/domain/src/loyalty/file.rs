//! The loyalty export file (format `GUESTHUB-LOYALTY` version 1) and the
//! members/points file NetCarrots returns. README.md documents both.
//!
//! Export file, CSV by RFC 4180, UTF-8, `\r\n` line ends, one record per
//! line; text fields neutralised as [`crate::csv_out`] says (control
//! characters as spaces, a leading `'` before `=`, `+`, `-`, `@`):
//! 1. `HEADER,GUESTHUB-LOYALTY,1,<property code>,<file name>,<created UTC>`
//! 2. the column names of the records
//! 3. one line per record (`ENROL`, `STAY`, `UNDO`), all with those columns
//! 4. `TRAILER,<records>,<enrol>,<stay>,<undo>`

use std::io::Read;

use chrono::{DateTime, Utc};

use super::{ExportRecord, PropertyCode, RecordKind};
use crate::{Email, Money, ValidationError, csv_out};

pub const FORMAT_NAME: &str = "GUESTHUB-LOYALTY";
pub const FORMAT_VERSION: &str = "1";

/// The record columns, in order.
pub const COLUMNS: [&str; 18] = [
    "record_type",
    "transaction_id",
    "created_at",
    "guest_id",
    "loyalty_number",
    "email",
    "first_name",
    "last_name",
    "reservation_number",
    "arrival",
    "departure",
    "nights",
    "room_revenue",
    "other_revenue",
    "total_revenue",
    "currency",
    "reverses_transaction_id",
    "property_code",
];

/// Counts of a written file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileCounts {
    pub enrol: usize,
    pub stay: usize,
    pub undo: usize,
}

impl FileCounts {
    pub fn total(&self) -> usize {
        self.enrol + self.stay + self.undo
    }
}

/// A decimal amount in major units (`123.45`), as finance tools read it.
fn decimal(m: Option<Money>) -> String {
    m.map(|m| m.major_units()).unwrap_or_default()
}

/// Writes a whole export file. The same records always give the same bytes.
pub fn write_export(
    code: &PropertyCode,
    file_name: &str,
    created_at: DateTime<Utc>,
    records: &[ExportRecord],
) -> (Vec<u8>, FileCounts) {
    let mut w = csv_out::writer(
        Vec::with_capacity(256 + records.len() * 220),
        csv::Terminator::CRLF,
    );
    let created = created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    // Writing into a Vec cannot fail; the results are checked anyway.
    let mut ok = w
        .write_record([
            "HEADER",
            FORMAT_NAME,
            FORMAT_VERSION,
            code.as_str(),
            file_name,
            &created,
        ])
        .is_ok();
    ok &= w.write_record(COLUMNS).is_ok();
    let mut counts = FileCounts::default();
    for r in records {
        match r.kind {
            RecordKind::Enrol => counts.enrol += 1,
            RecordKind::Stay => counts.stay += 1,
            RecordKind::Undo => counts.undo += 1,
        }
        let nights = match (r.arrival, r.departure) {
            (Some(a), Some(d)) => (d - a).num_days().to_string(),
            _ => String::new(),
        };
        let total = match (r.room_revenue, r.other_revenue) {
            (Some(a), Some(b)) => a.checked_add(b),
            _ => None,
        };
        let currency = r
            .room_revenue
            .map(|m| m.currency.as_str().to_owned())
            .unwrap_or_default();
        let g = &r.guest;
        // Text that came from people or partner systems is neutralised;
        // what GuestHub formats (dates, amounts, counts) is written as is.
        let text = |v: Option<&str>| csv_out::text(v.unwrap_or_default()).into_owned();
        let fields: [String; 18] = [
            r.kind.as_str().to_owned(),
            text(Some(&r.transaction_id)),
            r.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            text(g.guest.as_ref().map(|g| g.0.as_str())),
            text(g.loyalty_number.as_deref()),
            text(g.email.as_ref().map(|e| e.as_str())),
            text(g.first_name.as_deref()),
            text(g.last_name.as_deref()),
            text(r.reservation.as_deref()),
            r.arrival.map(|d| d.to_string()).unwrap_or_default(),
            r.departure.map(|d| d.to_string()).unwrap_or_default(),
            nights,
            decimal(r.room_revenue),
            decimal(r.other_revenue),
            decimal(total),
            currency,
            text(r.reverses.as_deref()),
            code.as_str().to_owned(),
        ];
        ok &= w.write_record(&fields).is_ok();
    }
    ok &= w
        .write_record([
            "TRAILER".to_owned(),
            counts.total().to_string(),
            counts.enrol.to_string(),
            counts.stay.to_string(),
            counts.undo.to_string(),
        ])
        .is_ok();
    debug_assert!(ok);
    (w.into_inner().unwrap_or_default(), counts)
}

/// One line of a members/points file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberLine {
    pub loyalty_number: String,
    pub email: Email,
    pub tier: Option<String>,
    pub points: i64,
}

/// What a members file held.
#[derive(Debug, Default)]
pub struct MembersFile {
    pub members: Vec<MemberLine>,
    /// (line number, why) of lines that were skipped; the header is line 1.
    pub rejected: Vec<(u64, String)>,
}

/// Reads a members file: a header naming `loyalty_number`, `email`, `tier`,
/// `points` (any order, case-insensitive, other columns ignored), then one
/// member per line. Bad lines are reported and skipped; a file without the
/// columns is refused whole. Streams: memory grows with valid members only.
pub fn read_members(input: impl Read) -> Result<MembersFile, ValidationError> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = r
        .headers()
        .map_err(|e| ValidationError::new("members_file", format!("unreadable header: {e}")))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
    };
    let (Some(num), Some(email), Some(points)) =
        (col("loyalty_number"), col("email"), col("points"))
    else {
        return Err(ValidationError::new(
            "members_file",
            "needs the columns loyalty_number, email and points",
        ));
    };
    let tier = col("tier");
    let mut out = MembersFile::default();
    for (i, row) in r.records().enumerate() {
        // The header is line 1 (fields spanning lines are not expected).
        let line = i as u64 + 2;
        let row = match row {
            Ok(row) => row,
            Err(_) => {
                out.rejected.push((line, "unreadable CSV".into()));
                continue;
            }
        };
        let parsed = (|| {
            let n = super::parse_loyalty_number(row.get(num).unwrap_or(""))?;
            let e = Email::parse(row.get(email).unwrap_or(""))?;
            let p = row
                .get(points)
                .unwrap_or("")
                .parse::<i64>()
                .map_err(|_| ValidationError::new("points", "is not a whole number"))?;
            let t = tier
                .and_then(|i| row.get(i))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| t.chars().take(40).collect::<String>());
            Ok::<_, ValidationError>(MemberLine {
                loyalty_number: n,
                email: e,
                tier: t,
                points: p,
            })
        })();
        match parsed {
            Ok(m) => out.members.push(m),
            Err(e) => out.rejected.push((line, e.to_string())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::GuestId;
    use crate::loyalty::RecordGuest;
    use crate::{Currency, PropertyId};
    use chrono::NaiveDate;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn stay() -> ExportRecord {
        let eur = Currency::parse("EUR").unwrap();
        ExportRecord {
            transaction_id: "STY-R1-1".into(),
            property: PropertyId::parse("hotel-a").unwrap(),
            kind: RecordKind::Stay,
            created_at: t("2026-11-22T10:00:00Z"),
            guest: RecordGuest {
                guest: Some(GuestId("g1".into())),
                loyalty_number: Some("NC-1".into()),
                email: Some(Email::parse("anna@example.com").unwrap()),
                first_name: Some("Anna, \"Annie\"".into()),
                last_name: Some("Müller".into()),
            },
            reservation: Some("R1".into()),
            arrival: NaiveDate::from_ymd_opt(2026, 11, 20),
            departure: NaiveDate::from_ymd_opt(2026, 11, 22),
            room_revenue: Some(Money::new(40_000, eur)),
            other_revenue: Some(Money::new(1_050, eur)),
            reverses: None,
            exported_in: None,
            delivered_at: None,
            superseded: false,
        }
    }

    #[test]
    fn export_file_has_header_columns_records_and_trailer() {
        let code = PropertyCode::parse("ALP01").unwrap();
        let (bytes, counts) = write_export(
            &code,
            "ALP01_20261122T100000Z_000001.csv",
            t("2026-11-22T10:00:00Z"),
            &[stay()],
        );
        assert_eq!(counts.total(), 1);
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "HEADER,GUESTHUB-LOYALTY,1,ALP01,ALP01_20261122T100000Z_000001.csv,2026-11-22T10:00:00Z"
        );
        assert!(lines[1].starts_with("record_type,transaction_id,"));
        assert_eq!(
            lines[2],
            "STAY,STY-R1-1,2026-11-22T10:00:00Z,g1,NC-1,anna@example.com,\"Anna, \"\"Annie\"\"\",Müller,R1,2026-11-20,2026-11-22,2,400.00,10.50,410.50,EUR,,ALP01"
        );
        assert_eq!(lines[3], "TRAILER,1,0,1,0");
        assert_eq!(lines[4], "");
    }

    #[test]
    fn members_file_reads_columns_in_any_order_and_reports_bad_lines() {
        let f = "\u{feff}Email,Points,Loyalty_Number,Tier\r\n\
                 anna@example.com,1200,nc-1,Gold\r\n\
                 not-an-email,5,NC-2,\r\n\
                 bob@example.com,x,NC-3,Silver\r\n\
                 carl@example.com,0,NC-4,\r\n";
        let m = read_members(f.as_bytes()).unwrap();
        assert_eq!(m.members.len(), 2);
        assert_eq!(m.members[0].loyalty_number, "NC-1");
        assert_eq!(m.members[0].tier.as_deref(), Some("Gold"));
        assert_eq!(m.members[1].tier, None);
        assert_eq!(m.rejected.len(), 2);
        assert_eq!(m.rejected[0].0, 3);
        assert!(read_members("email,points\r\n".as_bytes()).is_err());
    }
}
