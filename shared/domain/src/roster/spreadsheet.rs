//! Spreadsheet rosters (`.xlsx`, `.xls`): manual exports from an AMS.
//!
//! Unlike the delimited path this is not streaming: calamine loads the whole
//! first worksheet into memory before we see a row. That is acceptable for
//! what arrives this way (an office manager's export, thousands of rows, a
//! few MB at most); bulk AMS feeds come as delimited text.

use std::borrow::Cow;
use std::io::{Read, Seek};

use calamine::{Data, DataType, Range, Reader, Xls, Xlsx};
use chrono::NaiveDate;

use super::columns::{ColumnMap, Field};
use super::row::{Counts, DateCell, Detail, RowOutcome, RowSource, classify};
use super::{FileError, SpreadsheetKind};

/// Opens a spreadsheet roster and reads the header of its first worksheet
/// (the first row, among the first few, that names an email column).
///
/// Fails with [`FileError::Spreadsheet`] for a file calamine cannot read
/// (corrupt or cut-off files land here: the zip/compound-file structure is
/// checked on open), [`FileError::Empty`] for an empty first sheet, and
/// [`FileError::MissingColumn`] without an email column.
pub fn open_spreadsheet<R: Read + Seek>(
    input: R,
    kind: SpreadsheetKind,
    as_of: NaiveDate,
) -> Result<SheetRows, FileError> {
    let unreadable = |e: &dyn std::fmt::Display| FileError::Spreadsheet(e.to_string());
    let range = match kind {
        SpreadsheetKind::Xlsx => {
            let mut wb: Xlsx<R> =
                calamine::open_workbook_from_rs(input).map_err(|e| unreadable(&e))?;
            wb.worksheet_range_at(0)
                .ok_or(FileError::Empty)?
                .map_err(|e| unreadable(&e))?
        }
        SpreadsheetKind::Xls => {
            let mut wb: Xls<R> =
                calamine::open_workbook_from_rs(input).map_err(|e| unreadable(&e))?;
            wb.worksheet_range_at(0)
                .ok_or(FileError::Empty)?
                .map_err(|e| unreadable(&e))?
        }
    };
    SheetRows::new(range, as_of)
}

/// Manual exports often have a title or blank rows above the header, so the
/// header is the first of this many rows that names an email column.
const HEADER_SEARCH: usize = 10;

/// The rows of a spreadsheet roster, judged one at a time.
#[derive(Debug)]
pub struct SheetRows {
    range: Range<Data>,
    columns: ColumnMap,
    /// 0-based absolute row of the range's first row (sheet row numbers in
    /// outcomes are counted from it; the header may be further down).
    first_row: u32,
    /// Next row to judge, relative to the range.
    next: usize,
    as_of: NaiveDate,
    detail: Detail,
    counts: Counts,
}

impl SheetRows {
    /// How much of each member row to copy out (everything by default).
    pub fn with_detail(mut self, detail: Detail) -> Self {
        self.detail = detail;
        self
    }

    fn new(range: Range<Data>, as_of: NaiveDate) -> Result<Self, FileError> {
        let Some((first_row, _)) = range.start() else {
            return Err(FileError::Empty);
        };
        let mut any_content = false;
        for r in 0..range.height().min(HEADER_SEARCH) {
            let cells: Vec<Cow<'_, str>> = (0..range.width())
                .map(|c| range.get((r, c)).map_or(Cow::Borrowed(""), cell_text))
                .collect();
            if cells.iter().all(|t| t.is_empty()) {
                continue;
            }
            any_content = true;
            let columns = ColumnMap::from_headers(cells.iter().map(AsRef::as_ref));
            if columns.index(Field::Email).is_some() {
                return Ok(Self {
                    columns,
                    first_row,
                    next: r + 1,
                    as_of,
                    detail: Detail::Full,
                    counts: Counts::default(),
                    range,
                });
            }
        }
        if any_content {
            Err(FileError::MissingColumn(Field::Email.name()))
        } else {
            Err(FileError::Empty)
        }
    }

    /// Totals so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Which roster fields the header provides.
    pub fn columns(&self) -> &ColumnMap {
        &self.columns
    }

    /// Always false: a cut-off workbook does not open at all (see
    /// [`open_spreadsheet`]). Present so callers treat both readers alike.
    pub fn truncated(&self) -> bool {
        false
    }
}

impl Iterator for SheetRows {
    type Item = RowOutcome;

    fn next(&mut self) -> Option<RowOutcome> {
        while self.next < self.range.height() {
            let r = self.next;
            self.next += 1;
            let row = SheetRow {
                range: &self.range,
                row: r,
                columns: &self.columns,
            };
            if row.is_blank() {
                self.counts.blank_rows += 1;
                continue;
            }
            let line = u64::from(self.first_row) + r as u64 + 1;
            let outcome = classify(&row, line, self.as_of, self.detail);
            self.counts.record(&outcome);
            return Some(outcome);
        }
        None
    }
}

/// A cell as text: strings trimmed; whole numbers without `.0` (member
/// numbers, phone numbers and zip codes are often typed as numbers); dates as
/// `YYYY-MM-DD`; error values as blank.
fn cell_text(cell: &Data) -> Cow<'_, str> {
    match cell {
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => Cow::Borrowed(s.trim()),
        Data::Int(i) => Cow::Owned(i.to_string()),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Cow::Owned(format!("{f:.0}")),
        Data::Float(f) => Cow::Owned(f.to_string()),
        Data::Bool(b) => Cow::Borrowed(if *b { "TRUE" } else { "FALSE" }),
        Data::DateTime(dt) => match excel_date(dt) {
            Some(d) => Cow::Owned(d.to_string()),
            None => Cow::Owned(dt.as_f64().to_string()),
        },
        Data::Error(_) | Data::Empty => Cow::Borrowed(""),
    }
}

/// The calendar date of an Excel date/time cell (time of day dropped).
fn excel_date(dt: &calamine::ExcelDateTime) -> Option<NaiveDate> {
    // Excel's own range is 1900-01-01 ..= 9999-12-31 (serial < 2958466);
    // outside it the conversion returns nonsense rather than failing.
    let serial = dt.as_f64();
    if !(0.0..2_958_466.0).contains(&serial) || dt.is_duration() {
        return None;
    }
    let (y, m, d, ..) = dt.to_ymd_hms_milli();
    NaiveDate::from_ymd_opt(i32::from(y), u32::from(m), u32::from(d))
}

struct SheetRow<'a> {
    range: &'a Range<Data>,
    row: usize,
    columns: &'a ColumnMap,
}

impl SheetRow<'_> {
    fn cell(&self, field: Field) -> Option<&Data> {
        self.range.get((self.row, self.columns.index(field)?))
    }

    fn is_blank(&self) -> bool {
        (0..self.range.width()).all(|c| {
            self.range
                .get((self.row, c))
                .is_none_or(|d| cell_text(d).is_empty())
        })
    }
}

impl RowSource for SheetRow<'_> {
    fn text(&self, field: Field) -> Option<Cow<'_, str>> {
        self.cell(field).map(cell_text).filter(|t| !t.is_empty())
    }

    fn date_cell(&self, field: Field) -> Option<DateCell<'_>> {
        let cell = self.cell(field)?;
        match cell {
            Data::Empty => None,
            Data::DateTime(dt) => Some(excel_date(dt).map_or(DateCell::Invalid, DateCell::Date)),
            // A date cell whose number format was lost reads as a plain
            // number: take it as an Excel serial date (1900 system).
            Data::Int(_) | Data::Float(_) => {
                let serial = cell.as_f64()?;
                let dt = calamine::ExcelDateTime::new(
                    serial,
                    calamine::ExcelDateTimeType::DateTime,
                    false,
                );
                Some(excel_date(&dt).map_or(DateCell::Invalid, DateCell::Date))
            }
            Data::Error(_) => Some(DateCell::Invalid),
            _ => self.text(field).map(DateCell::Text),
        }
    }
}
