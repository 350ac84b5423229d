//! Spreadsheet rosters (`.xlsx`, `.xls`): manual exports from an AMS.
//!
//! A spreadsheet's structure is checked first ([`super::limits`]): its
//! declared sizes are what readers allocate for, so a small hostile file
//! could otherwise ask for more memory than the machine has and abort the
//! process. Then:
//!
//! - `.xlsx` is read as a stream of rows. A first pass over the sheet's
//!   cells checks its dimension, cell positions and cell count and finds
//!   the header; a second pass, on a thread of its own (calamine's cell
//!   reader borrows the workbook), sends rows one at a time. Memory is the
//!   shared strings and one row, whatever the number of rows.
//! - `.xls` (BIFF) has no streaming reader: the first sheet is read whole,
//!   within the bounds [`super::limits::check_xls`] checked.
//!
//! A panic inside the spreadsheet reader on a malformed file is caught and
//! reported as an unreadable file: the same bytes would fail the same way
//! on every retry.

use std::borrow::Cow;
use std::io::{Read, Seek};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use calamine::{Data, DataType, Range, Reader, Xls, Xlsx};
use chrono::NaiveDate;

use super::columns::{ColumnMap, Field};
use super::limits::{self, MAX_CELLS, MAX_COLUMNS, check_extent};
use super::row::{Counts, DateCell, Detail, RowOutcome, RowSource, classify};
use super::{FileError, SpreadsheetKind};

fn unreadable(e: &dyn std::fmt::Display) -> FileError {
    FileError::Spreadsheet(e.to_string())
}

/// Runs a reader step, turning a panic into an unreadable-file error.
fn guarded<T>(f: impl FnOnce() -> Result<T, FileError>) -> Result<T, FileError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(FileError::Spreadsheet(
            "the spreadsheet reader failed on this file".into(),
        ))
    })
}

/// Opens a spreadsheet roster and reads the header of its first worksheet
/// (the first row, among the first few, that names an email column).
///
/// Fails with [`FileError::TooLarge`] for a file beyond the limits of
/// [`super::limits`], [`FileError::Spreadsheet`] for a file that cannot be
/// read (corrupt or cut-off files land here: the whole sheet is checked on
/// open), [`FileError::Empty`] for an empty first sheet, and
/// [`FileError::MissingColumn`] without an email column.
pub fn open_spreadsheet<R: Read + Seek + Send + 'static>(
    mut input: R,
    kind: SpreadsheetKind,
    as_of: NaiveDate,
) -> Result<SheetRows, FileError> {
    match kind {
        SpreadsheetKind::Xlsx => {
            limits::check_xlsx(&mut input)?;
            let found = guarded(|| scan_xlsx(&mut input))?;
            input.rewind()?;
            let (tx, rx) = sync_channel(64);
            let after = found.header_row;
            std::thread::Builder::new()
                .name("xlsx-rows".into())
                .spawn(move || produce_rows(input, after, tx))?;
            Ok(SheetRows {
                source: Source::Stream {
                    rx,
                    previous: after,
                    done: false,
                },
                columns: found.columns,
                as_of,
                detail: Detail::Full,
                counts: Counts::default(),
            })
        }
        SpreadsheetKind::Xls => {
            limits::check_xls(&mut input)?;
            let range = guarded(|| {
                let mut wb: Xls<R> =
                    calamine::open_workbook_from_rs(input).map_err(|e| unreadable(&e))?;
                wb.worksheet_range_at(0)
                    .ok_or(FileError::Empty)?
                    .map_err(|e| unreadable(&e))
            })?;
            SheetRows::from_range(range, as_of)
        }
    }
}

/// Manual exports often have a title or blank rows above the header, so the
/// header is the first of this many rows that names an email column.
const HEADER_SEARCH: u32 = 10;

/// The header of a sheet.
struct Found {
    /// 0-based sheet row of the header.
    header_row: u32,
    /// Indexed by absolute column (A = 0).
    columns: ColumnMap,
}

/// Whether a row's cells name an email column; `None` for a blank row.
fn header_of(cells: &[Data]) -> Option<ColumnMap> {
    let texts: Vec<Cow<'_, str>> = cells.iter().map(cell_text).collect();
    if texts.iter().all(|t| t.is_empty()) {
        return None;
    }
    Some(ColumnMap::from_headers(texts.iter().map(AsRef::as_ref)))
}

/// The first pass over an `.xlsx`: every cell's position against the
/// limits, rows in order, and the header among the first rows.
fn scan_xlsx<R: Read + Seek>(input: &mut R) -> Result<Found, FileError> {
    let mut wb: Xlsx<&mut R> = Xlsx::new(input).map_err(|e| unreadable(&e))?;
    let Some(name) = wb.sheet_names().into_iter().next() else {
        return Err(FileError::Empty);
    };
    let mut cells = wb
        .worksheet_cells_reader(&name)
        .map_err(|e| unreadable(&e))?;
    let d = cells.dimensions();
    check_extent(d.start, d.end, "the sheet's declared size")?;
    let mut found: Option<Found> = None;
    let mut first_row: Option<u32> = None;
    let mut pending: Option<(u32, Vec<Data>)> = None;
    let mut any_content = false;
    let mut count = 0u64;
    let mut last_row = 0u32;
    // Decides on a finished row of the header search; `Err` ends the search.
    let mut consider = |row: u32, cells: Vec<Data>, found: &mut Option<Found>| {
        if let Some(columns) = header_of(&cells) {
            any_content = true;
            if columns.index(Field::Email).is_some() {
                *found = Some(Found {
                    header_row: row,
                    columns,
                });
            }
        }
    };
    while let Some(cell) = cells.next_cell().map_err(|e| unreadable(&e))? {
        if cell.get_value().is_empty() {
            continue;
        }
        let (r, c) = cell.get_position();
        check_extent((r, c), (r, c), "a cell")?;
        count += 1;
        if count > MAX_CELLS {
            return Err(FileError::TooLarge(format!(
                "the sheet holds more than {MAX_CELLS} cells"
            )));
        }
        if r < last_row {
            return Err(FileError::Spreadsheet(
                "the sheet's rows are out of order".into(),
            ));
        }
        last_row = r;
        if found.is_some() {
            continue;
        }
        let first = *first_row.get_or_insert(r);
        if pending.as_ref().is_some_and(|(at, _)| *at != r) {
            if let Some((at, row)) = pending.take() {
                consider(at, row, &mut found);
            }
            if found.is_some() {
                continue;
            }
        }
        if r - first >= HEADER_SEARCH {
            break;
        }
        let (_, row) = pending.get_or_insert_with(|| (r, Vec::new()));
        let c = c as usize;
        if row.len() <= c {
            row.resize(c + 1, Data::Empty);
        }
        row[c] = Data::from(cell.get_value().clone());
    }
    if found.is_none()
        && let Some((at, row)) = pending.take()
    {
        consider(at, row, &mut found);
    }
    match found {
        Some(found) => Ok(found),
        None if any_content => Err(FileError::MissingColumn(Field::Email.name())),
        None => Err(FileError::Empty),
    }
}

/// What the row thread sends.
#[derive(Debug)]
enum Msg {
    /// A row with content: its 0-based sheet row and cells by absolute column.
    Row(u32, Vec<Data>),
    Failed(String),
    End,
}

/// The second pass over an `.xlsx`, on its own thread: the rows below the
/// header, one at a time. Stops when the receiver is gone.
fn produce_rows<R: Read + Seek>(input: R, after: u32, tx: SyncSender<Msg>) {
    let run = || -> Result<(), String> {
        let mut wb: Xlsx<R> = Xlsx::new(input).map_err(|e| e.to_string())?;
        let name = wb
            .sheet_names()
            .into_iter()
            .next()
            .ok_or("the workbook has no sheet")?;
        let mut cells = wb
            .worksheet_cells_reader(&name)
            .map_err(|e| e.to_string())?;
        let mut row: Option<(u32, Vec<Data>)> = None;
        while let Some(cell) = cells.next_cell().map_err(|e| e.to_string())? {
            let (r, c) = cell.get_position();
            if r <= after || cell.get_value().is_empty() {
                continue;
            }
            if c >= MAX_COLUMNS {
                return Err("a cell lies beyond the columns a roster may have".into());
            }
            if row.as_ref().is_some_and(|(at, _)| *at != r)
                && let Some((at, done)) = row.take()
                && tx.send(Msg::Row(at, done)).is_err()
            {
                return Ok(());
            }
            let (_, cells) = row.get_or_insert_with(|| (r, Vec::new()));
            let c = c as usize;
            if cells.len() <= c {
                cells.resize(c + 1, Data::Empty);
            }
            cells[c] = Data::from(cell.get_value().clone());
        }
        if let Some((at, done)) = row {
            let _ = tx.send(Msg::Row(at, done));
        }
        Ok(())
    };
    let end = match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(())) => Msg::End,
        Ok(Err(e)) => Msg::Failed(e),
        Err(_) => Msg::Failed("the spreadsheet reader failed on this file".into()),
    };
    let _ = tx.send(end);
}

/// Where the rows come from.
#[derive(Debug)]
enum Source {
    /// A whole first sheet (`.xls`); column indexes relative to its first column.
    Range {
        range: Range<Data>,
        /// 0-based absolute row of the range's first row.
        first_row: u32,
        /// Next row to judge, relative to the range.
        next: usize,
    },
    /// Rows from the reading thread (`.xlsx`); absolute column indexes.
    Stream {
        rx: Receiver<Msg>,
        /// The last sheet row seen (the header at first): rows skipped
        /// between two rows with content are blank rows.
        previous: u32,
        done: bool,
    },
}

/// The rows of a spreadsheet roster, judged one at a time.
#[derive(Debug)]
pub struct SheetRows {
    source: Source,
    columns: ColumnMap,
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

    fn from_range(range: Range<Data>, as_of: NaiveDate) -> Result<Self, FileError> {
        let Some((first_row, _)) = range.start() else {
            return Err(FileError::Empty);
        };
        let mut any_content = false;
        for (r, cells) in range.rows().take(HEADER_SEARCH as usize).enumerate() {
            let Some(columns) = header_of(cells) else {
                continue;
            };
            any_content = true;
            if columns.index(Field::Email).is_some() {
                return Ok(Self {
                    source: Source::Range {
                        range,
                        first_row,
                        next: r + 1,
                    },
                    columns,
                    as_of,
                    detail: Detail::Full,
                    counts: Counts::default(),
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

    /// Judges one row with content; `None` for a blank one (counted).
    fn judge(&mut self, cells: &[Data], line: u64) -> Option<RowOutcome> {
        let row = SheetRow {
            cells,
            columns: &self.columns,
        };
        if row.is_blank() {
            self.counts.blank_rows += 1;
            return None;
        }
        let outcome = classify(&row, line, self.as_of, self.detail);
        self.counts.record(&outcome);
        Some(outcome)
    }
}

impl Iterator for SheetRows {
    type Item = RowOutcome;

    fn next(&mut self) -> Option<RowOutcome> {
        loop {
            let (cells, line) = match &mut self.source {
                Source::Range {
                    range,
                    first_row,
                    next,
                } => {
                    let r = *next;
                    if r >= range.height() {
                        return None;
                    }
                    *next += 1;
                    // Cells by index (O(1) each); blank rows (a sparse sheet
                    // has many) are counted without a copy.
                    let width = range.width();
                    let cell = |c: usize| range.get((r, c));
                    if (0..width).all(|c| cell(c).is_none_or(|d| cell_text(d).is_empty())) {
                        self.counts.blank_rows += 1;
                        continue;
                    }
                    let cells: Vec<Data> = (0..width)
                        .map(|c| cell(c).cloned().unwrap_or(Data::Empty))
                        .collect();
                    (cells, u64::from(*first_row) + r as u64 + 1)
                }
                Source::Stream { done: true, .. } => return None,
                Source::Stream { rx, previous, done } => match rx.recv() {
                    Ok(Msg::Row(r, cells)) => {
                        let gap = u64::from(r.saturating_sub(*previous).saturating_sub(1));
                        *previous = r;
                        self.counts.blank_rows += gap;
                        (cells, u64::from(r) + 1)
                    }
                    Ok(Msg::End) => {
                        *done = true;
                        return None;
                    }
                    Ok(Msg::Failed(e)) => {
                        *done = true;
                        return Some(RowOutcome::Failed(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            e,
                        )));
                    }
                    Err(_) => {
                        *done = true;
                        return Some(RowOutcome::Failed(std::io::Error::other(
                            "the spreadsheet reader stopped",
                        )));
                    }
                },
            };
            if let Some(outcome) = self.judge(&cells, line) {
                return Some(outcome);
            }
        }
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
    cells: &'a [Data],
    columns: &'a ColumnMap,
}

impl SheetRow<'_> {
    fn cell(&self, field: Field) -> Option<&Data> {
        self.cells.get(self.columns.index(field)?)
    }

    fn is_blank(&self) -> bool {
        self.cells.iter().all(|d| cell_text(d).is_empty())
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
