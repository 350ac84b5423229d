//! Club rosters delivered by a club-management system (AMS).
//!
//! Each file replaces a property's whole roster, so the parser
//! is built to tell a complete file from a damaged one: it reports every row
//! (member, former member, or reject with line and column), counts, and
//! whether the file looks cut off. Deciding whether to apply or hold a file
//! is the caller's job.
//!
//! - [`open_delimited`]: CSV/TSV/semicolon/pipe text from any [`Read`],
//!   streamed with bounded memory.
//! - [`open_spreadsheet`]: `.xlsx`/`.xls`, first worksheet; `.xlsx` streamed
//!   by rows, both checked against [`limits`] before they are read.
//! - [`open`]: either, chosen by [`FileKind`] (from [`file_kind`]).
//!
//! Nothing here logs or returns cell values in errors: rows carry personal
//! data, rejects carry only line, column and what was wrong.
//!
//! ```
//! use chrono::NaiveDate;
//! use domain::roster::{open_delimited, RowOutcome};
//!
//! let file = "Email;ClubDescr;ClubStatus\r\nana@example.com;Gold;Active\r\nbo@example.com;Gold;Cancelled\r\n";
//! let as_of = NaiveDate::from_ymd_opt(2026, 1, 15).unwrap();
//! let mut rows = open_delimited(file.as_bytes(), as_of).unwrap();
//! let outcomes: Vec<RowOutcome> = rows.by_ref().collect();
//! assert!(matches!(&outcomes[0], RowOutcome::Member(m) if m.tier.as_deref() == Some("Gold")));
//! assert!(matches!(&outcomes[1], RowOutcome::NotMember { line: 3, .. }));
//! assert!(!rows.truncated());
//! assert_eq!(rows.delimiter(), b';');
//! ```

use std::io::{Read, Seek};

use chrono::NaiveDate;
use thiserror::Error;

pub mod columns;
pub mod dates;
pub mod delimited;
pub mod discount;
pub mod import;
pub mod limits;
pub mod row;
pub mod service;
pub mod spreadsheet;
pub mod store;

pub use columns::{ColumnMap, Field};
pub use delimited::{RosterRows, TextEncoding, open_delimited};
pub use row::{Counts, Detail, NotMemberReason, RosterRow, RowOutcome};
pub use spreadsheet::{SheetRows, open_spreadsheet};

/// Why a roster file cannot be used at all (as opposed to a bad row).
/// Messages never contain cell values.
#[derive(Debug, Error)]
pub enum FileError {
    /// No header row: zero bytes, only a byte-order mark, or blank lines.
    #[error("the file is empty")]
    Empty,
    /// The header lacks a required column (named canonically, e.g. `email`).
    #[error("the header has no {0} column")]
    MissingColumn(&'static str),
    /// Reading the input failed before the header was read.
    #[error("reading the file failed: {0}")]
    Io(#[from] std::io::Error),
    /// The workbook could not be opened or its first sheet read.
    #[error("the spreadsheet cannot be read: {0}")]
    Spreadsheet(String),
    /// The spreadsheet goes beyond what a roster may be ([`limits`]): its
    /// declared or used size, cells, shared strings or unpacked size.
    #[error("the spreadsheet is refused: {0}")]
    TooLarge(String),
}

impl From<csv::Error> for FileError {
    fn from(e: csv::Error) -> Self {
        FileError::Io(delimited::csv_io_error(e))
    }
}

/// Spreadsheet formats calamine reads for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpreadsheetKind {
    /// Office Open XML (Excel 2007+).
    Xlsx,
    /// Excel 97–2003 binary.
    Xls,
}

/// How a roster file is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Delimited text; the delimiter is sniffed from the header.
    Delimited,
    Spreadsheet(SpreadsheetKind),
}

/// The kind of a dropped file from its name's extension (case-insensitive):
/// `csv`, `txt`, `tsv` → delimited; `xlsx`, `xls` → spreadsheet; anything
/// else `None` (not a roster file). Accepts a bare name or an object key.
pub fn file_kind(file_name: &str) -> Option<FileKind> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let (stem, ext) = base.rsplit_once('.')?;
    if stem.is_empty() {
        return None;
    }
    match ext.to_ascii_lowercase().as_str() {
        "csv" | "txt" | "tsv" => Some(FileKind::Delimited),
        "xlsx" => Some(FileKind::Spreadsheet(SpreadsheetKind::Xlsx)),
        "xls" => Some(FileKind::Spreadsheet(SpreadsheetKind::Xls)),
        _ => None,
    }
}

/// Opens a roster of either kind. Spreadsheets need `Seek`; a caller holding
/// a non-seekable stream for a delimited file can call [`open_delimited`]
/// directly.
pub fn open<R: Read + Seek + Send + 'static>(
    kind: FileKind,
    input: R,
    as_of: NaiveDate,
) -> Result<Roster<R>, FileError> {
    Ok(match kind {
        FileKind::Delimited => Roster::Delimited(open_delimited(input, as_of)?),
        FileKind::Spreadsheet(k) => Roster::Spreadsheet(open_spreadsheet(input, k, as_of)?),
    })
}

/// A roster being read, of either kind.
#[expect(
    clippy::large_enum_variant,
    reason = "one value per file; boxing would only add an indirection per row"
)]
pub enum Roster<R: Read> {
    Delimited(RosterRows<R>),
    Spreadsheet(SheetRows),
}

impl<R: Read> Roster<R> {
    /// How much of each member row to copy out (everything by default).
    pub fn with_detail(self, detail: Detail) -> Self {
        match self {
            Roster::Delimited(r) => Roster::Delimited(r.with_detail(detail)),
            Roster::Spreadsheet(s) => Roster::Spreadsheet(s.with_detail(detail)),
        }
    }

    /// See [`RosterRows::truncated`]; always false for spreadsheets.
    pub fn truncated(&self) -> bool {
        match self {
            Roster::Delimited(r) => r.truncated(),
            Roster::Spreadsheet(s) => s.truncated(),
        }
    }

    /// Totals so far (final after the iterator returned `None`).
    pub fn counts(&self) -> Counts {
        match self {
            Roster::Delimited(r) => r.counts(),
            Roster::Spreadsheet(s) => s.counts(),
        }
    }

    /// See [`RosterRows::encoding_fallbacks`]; zero for spreadsheets.
    pub fn encoding_fallbacks(&self) -> u64 {
        match self {
            Roster::Delimited(r) => r.encoding_fallbacks(),
            Roster::Spreadsheet(_) => 0,
        }
    }
}

impl<R: Read> Iterator for Roster<R> {
    type Item = RowOutcome;

    fn next(&mut self) -> Option<RowOutcome> {
        match self {
            Roster::Delimited(r) => r.next(),
            Roster::Spreadsheet(s) => s.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_extension() {
        assert_eq!(file_kind("members.csv"), Some(FileKind::Delimited));
        assert_eq!(file_kind("ams/p-1/Export.TXT"), Some(FileKind::Delimited));
        assert_eq!(file_kind("x.tsv"), Some(FileKind::Delimited));
        assert_eq!(
            file_kind("ams/p-1/roster.XLSX"),
            Some(FileKind::Spreadsheet(SpreadsheetKind::Xlsx))
        );
        assert_eq!(
            file_kind("old.xls"),
            Some(FileKind::Spreadsheet(SpreadsheetKind::Xls))
        );
        for none in ["members", "members.pdf", ".csv", "dir.csv/", "a.csv.gz"] {
            assert_eq!(file_kind(none), None, "{none}");
        }
    }
}
