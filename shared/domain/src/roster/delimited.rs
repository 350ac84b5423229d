//! Delimited text rosters (CSV, TSV, semicolon, pipe), read as a stream.
//!
//! Memory stays bounded whatever the file size (about 2.5 MiB plus one
//! record): the input is read through fixed buffers, one reused record holds
//! the current row, a copy of the last bytes read gives line numbers and
//! truncation, and only the first line is looked at ahead of time (to choose
//! the delimiter). One caveat: a quote opened and never closed makes a single
//! record of the rest of the file; that file is then reported truncated.
//!
//! Text encoding is decided per field rather than per file: a field that is
//! valid UTF-8 is taken as such, any other is decoded as Windows-1252 (what
//! Excel on Windows writes for "CSV"). Deciding up front would mean reading
//! the whole file first. The cost is that a Windows-1252 field that happens to
//! be valid UTF-8 (`Ã¼`) is taken as UTF-8; real names do not look like that.
//! UTF-16 (Excel's "Unicode Text", usually tab-separated) is recognised by its
//! byte-order mark, or by the zero bytes of an ASCII header, and transcoded
//! on the fly.

use std::borrow::Cow;
use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Chain, Cursor, Read};

use chrono::NaiveDate;
use csv::{ByteRecord, StringRecord};
use encoding_rs::{CoderResult, Decoder, UTF_16BE, UTF_16LE, WINDOWS_1252};

use super::FileError;
use super::columns::{ColumnMap, Field};
use super::row::{Counts, DateCell, Detail, RowOutcome, RowSource, classify};

/// The CSV reader's buffer: large reads keep the parse fast.
const READ_BUF: usize = 64 * 1024;
/// How far we look for the end of the header line when sniffing.
const HEADER_LIMIT: u64 = 64 * 1024;
/// Raw bytes kept from the end of what was read, to check whether the last
/// record ends inside a quoted field, and where each record starts. A last
/// record longer than this is treated as truncated: no real roster row is that long, but a quote that
/// was opened and never closed swallows the rest of the file.
const TAIL: usize = 256 * 1024;
/// The tail's buffer: shifted back to [`TAIL`] bytes when full.
const TAIL_BUF: usize = 8 * TAIL;

/// The text encoding of a delimited file, as detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8, with or without BOM, with per-field Windows-1252 fallback.
    Utf8,
    /// UTF-16 (either byte order), transcoded to UTF-8 while reading.
    Utf16,
}

/// The input after byte-order-mark handling: UTF-8 bytes (or
/// Windows-1252 fields among them) for the CSV parser.
enum Decoded<R> {
    Bytes(Chain<Cursor<Vec<u8>>, R>),
    Utf16(Box<Utf16Reader<Chain<Cursor<Vec<u8>>, R>>>),
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoded::Bytes(r) => r.read(buf),
            Decoded::Utf16(r) => r.read(buf),
        }
    }
}

/// The stream the CSV parser reads: the header line we peeked, then the rest.
type Stream<R> = Chain<Cursor<Vec<u8>>, BufReader<Decoded<R>>>;

/// Streams UTF-16 as UTF-8. Malformed UTF-16 becomes U+FFFD.
struct Utf16Reader<R> {
    inner: R,
    decoder: Decoder,
    input: Box<[u8]>,
    in_start: usize,
    in_end: usize,
    inner_eof: bool,
    output: Box<[u8]>,
    out_start: usize,
    out_end: usize,
    finished: bool,
}

impl<R: Read> Utf16Reader<R> {
    fn new(inner: R, decoder: Decoder) -> Self {
        const IN: usize = 32 * 1024;
        Self {
            inner,
            decoder,
            input: vec![0; IN].into_boxed_slice(),
            in_start: 0,
            in_end: 0,
            inner_eof: false,
            // Each UTF-16 code unit (2 bytes) becomes at most 3 UTF-8 bytes.
            output: vec![0; IN * 2 + 16].into_boxed_slice(),
            out_start: 0,
            out_end: 0,
            finished: false,
        }
    }
}

impl<R: Read> Read for Utf16Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_start < self.out_end {
                let n = buf.len().min(self.out_end - self.out_start);
                buf[..n].copy_from_slice(&self.output[self.out_start..self.out_start + n]);
                self.out_start += n;
                return Ok(n);
            }
            if self.finished || buf.is_empty() {
                return Ok(0);
            }
            if self.in_start == self.in_end && !self.inner_eof {
                self.in_start = 0;
                self.in_end = read_retrying(&mut self.inner, &mut self.input)?;
                self.inner_eof = self.in_end == 0;
            }
            let (result, read, written, _) = self.decoder.decode_to_utf8(
                &self.input[self.in_start..self.in_end],
                &mut self.output,
                self.inner_eof,
            );
            self.in_start += read;
            self.out_start = 0;
            self.out_end = written;
            if self.inner_eof && result == CoderResult::InputEmpty {
                self.finished = true;
            }
        }
    }
}

fn read_retrying<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Counts the bytes handed to the CSV parser and keeps the last [`TAIL`]
/// of them, so that after the last record we can tell whether the file
/// ended inside a quoted field (csv accepts that silently).
struct Tracked<S> {
    inner: S,
    consumed: u64,
    tail: Vec<u8>,
}

impl<S: Read> Read for Tracked<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed += n as u64;
        let chunk = &buf[..n];
        if chunk.len() >= TAIL {
            self.tail.clear();
            self.tail.extend_from_slice(&chunk[chunk.len() - TAIL..]);
        } else {
            // Let the tail grow well past its size before shifting, so
            // bytes are rarely moved twice.
            if self.tail.len() + chunk.len() > TAIL_BUF {
                let excess = self.tail.len() + chunk.len() - TAIL;
                self.tail.drain(..excess.min(self.tail.len()));
            }
            self.tail.extend_from_slice(chunk);
        }
        Ok(n)
    }
}

impl<S> Tracked<S> {
    /// The raw bytes from stream offset `start` to the end of what was read,
    /// if they are still in the tail.
    fn bytes_from(&self, start: u64) -> Option<&[u8]> {
        let tail_start = self.consumed - self.tail.len() as u64;
        let skip = usize::try_from(start.checked_sub(tail_start)?).ok()?;
        self.tail.get(skip..)
    }
}

/// Does this raw text, the start of a record up to end of file, end inside a
/// quoted field? Mirrors csv-core's rules: a quote opens a quoted field only
/// at the start of a field, `""` inside one is a literal quote, and a quote
/// elsewhere is just a character.
fn ends_in_quoted_field(bytes: &[u8], delimiter: u8) -> bool {
    #[derive(PartialEq)]
    enum S {
        Start,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let ends_field = |b: u8| b == delimiter || b == b'\n' || b == b'\r';
    let mut s = S::Start;
    for &b in bytes {
        s = match s {
            S::Start if b == b'"' => S::Quoted,
            S::Start | S::Unquoted | S::QuoteInQuoted if ends_field(b) => S::Start,
            S::Start | S::Unquoted => S::Unquoted,
            S::Quoted if b == b'"' => S::QuoteInQuoted,
            S::Quoted => S::Quoted,
            S::QuoteInQuoted if b == b'"' => S::Quoted,
            S::QuoteInQuoted => S::Unquoted,
        };
    }
    s == S::Quoted
}

/// Picks the delimiter from the header line: the candidate seen most often
/// outside quotes, `,` when none is (a one-column file). Ties go to the
/// earlier candidate in `, ; TAB |`.
fn sniff_delimiter(header: &[u8]) -> u8 {
    const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];
    let mut counts = [0usize; 4];
    let mut in_quotes = false;
    for &b in header {
        if b == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes && let Some(i) = CANDIDATES.iter().position(|&c| c == b) {
            counts[i] += 1;
        }
    }
    let mut best = 0;
    for i in 1..CANDIDATES.len() {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    CANDIDATES[best]
}

/// A field with nothing in it but whitespace or the Ctrl-Z end-of-file mark
/// some DOS-era exporters still append.
fn is_blank_field(f: &[u8]) -> bool {
    f.iter().all(|b| b.is_ascii_whitespace() || *b == 0x1A)
}

/// A record of blank fields: `,,,,` lines Excel leaves below the data.
fn is_blank(record: &ByteRecord) -> bool {
    record.iter().all(is_blank_field)
}

/// Decodes one field: UTF-8 if valid, else Windows-1252 (counted).
fn decode_field<'a>(bytes: &'a [u8], fallbacks: &Cell<u64>) -> Cow<'a, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => {
            fallbacks.set(fallbacks.get() + 1);
            WINDOWS_1252.decode_without_bom_handling(bytes).0
        }
    }
}

/// Reads the first bytes (up to 4) to detect a byte-order mark or UTF-16.
fn decode_input<R: Read>(mut input: R) -> io::Result<(Decoded<R>, TextEncoding)> {
    let mut prefix = [0u8; 4];
    let mut n = 0;
    while n < prefix.len() {
        let got = read_retrying(&mut input, &mut prefix[n..])?;
        if got == 0 {
            break;
        }
        n += got;
    }
    let p = &prefix[..n];
    enum Detected {
        Utf8 { skip: usize },
        Utf16(Decoder),
    }
    let detected = match p {
        [0xEF, 0xBB, 0xBF, ..] => Detected::Utf8 { skip: 3 },
        // With BOM sniffing on, the decoder picks LE or BE from the BOM.
        [0xFF, 0xFE, ..] | [0xFE, 0xFF, ..] => Detected::Utf16(UTF_16LE.new_decoder()),
        // No BOM but an ASCII header in UTF-16: every other byte is zero.
        [a, 0, b, 0] if *a != 0 && *b != 0 => {
            Detected::Utf16(UTF_16LE.new_decoder_without_bom_handling())
        }
        [0, a, 0, b] if *a != 0 && *b != 0 => {
            Detected::Utf16(UTF_16BE.new_decoder_without_bom_handling())
        }
        _ => Detected::Utf8 { skip: 0 },
    };
    Ok(match detected {
        Detected::Utf8 { skip } => (
            Decoded::Bytes(Cursor::new(p[skip..].to_vec()).chain(input)),
            TextEncoding::Utf8,
        ),
        Detected::Utf16(decoder) => {
            let rest = Cursor::new(p.to_vec()).chain(input);
            (
                Decoded::Utf16(Box::new(Utf16Reader::new(rest, decoder))),
                TextEncoding::Utf16,
            )
        }
    })
}

/// Opens a delimited roster and reads its header.
///
/// Fails only on what makes the whole file unusable: no content at all
/// ([`FileError::Empty`]), no email column ([`FileError::MissingColumn`]), or
/// an I/O error before the header was read. Everything after the header is
/// reported per row by the returned iterator; a header-only file yields no
/// rows (`counts().rows == 0`), which the caller should hold, not apply.
pub fn open_delimited<R: Read>(input: R, as_of: NaiveDate) -> Result<RosterRows<R>, FileError> {
    let (decoded, encoding) = decode_input(input)?;
    let mut buffered = BufReader::new(decoded);

    // Peek the header line (skipping blank lines, or lines of bare
    // delimiters, before it) for sniffing; the bytes are put back in front of
    // the stream for the CSV parser.
    let mut head = Vec::new();
    let header_start = loop {
        let start = head.len();
        let n = (&mut buffered)
            .take(HEADER_LIMIT)
            .read_until(b'\n', &mut head)?;
        let blank = head[start..]
            .iter()
            .all(|b| b.is_ascii_whitespace() || matches!(b, b',' | b';' | b'|' | b'"'));
        if n == 0 || !blank || head.len() as u64 >= HEADER_LIMIT {
            break start;
        }
    };
    let delimiter = sniff_delimiter(&head[header_start..]);
    let stream: Stream<R> = Cursor::new(head).chain(buffered);

    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .buffer_capacity(READ_BUF)
        .from_reader(Tracked {
            inner: stream,
            consumed: 0,
            tail: Vec::with_capacity(TAIL_BUF),
        });

    // The header is the first record with any content (a line of spaces or
    // of bare delimiters before it is skipped, as the peek above did).
    let mut record = ByteRecord::new();
    loop {
        if !reader.read_byte_record(&mut record)? {
            return Err(FileError::Empty);
        }
        if !is_blank(&record) {
            break;
        }
    }
    let fallbacks = Cell::new(0);
    let headers: Vec<Cow<'_, str>> = record.iter().map(|f| decode_field(f, &fallbacks)).collect();
    let columns = ColumnMap::from_headers(headers.iter().map(|h| h.as_ref()));
    if columns.index(Field::Email).is_none() {
        return Err(FileError::MissingColumn(Field::Email.name()));
    }
    let header_len = record.len();
    let last_start = record.position().map_or(0, |p| p.byte());
    Ok(RosterRows {
        reader,
        slot: Slot::Raw(record),
        columns,
        header_len,
        delimiter,
        encoding,
        as_of,
        detail: Detail::Full,
        counts: Counts::default(),
        fallbacks: Cell::new(0),
        last_start,
        last_short: false,
        truncated: false,
        done: false,
    })
}

/// The rows of a delimited roster, judged one at a time as they are read.
///
/// [`truncated`](Self::truncated), [`counts`](Self::counts) and
/// [`encoding_fallbacks`](Self::encoding_fallbacks) are final once the
/// iterator has returned `None`.
pub struct RosterRows<R: Read> {
    reader: csv::Reader<Tracked<Stream<R>>>,
    slot: Slot,
    columns: ColumnMap,
    header_len: usize,
    delimiter: u8,
    encoding: TextEncoding,
    as_of: NaiveDate,
    detail: Detail,
    counts: Counts,
    fallbacks: Cell<u64>,
    last_start: u64,
    last_short: bool,
    truncated: bool,
    done: bool,
}

impl<R: Read> RosterRows<R> {
    /// How much of each member row to copy out (everything by default).
    pub fn with_detail(mut self, detail: Detail) -> Self {
        self.detail = detail;
        self
    }

    /// Did the file end mid-row: inside a quoted field, or with a last record
    /// shorter than the header? Also true after a read error. Such a file is
    /// an incomplete upload; the caller should hold it rather than apply it.
    /// A missing final newline alone is not truncation.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The delimiter chosen from the header line.
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// The detected text encoding.
    pub fn encoding(&self) -> TextEncoding {
        self.encoding
    }

    /// How many fields of recognised columns (in data rows) were not valid
    /// UTF-8 and were decoded as Windows-1252 instead.
    pub fn encoding_fallbacks(&self) -> u64 {
        self.fallbacks.get()
    }

    /// Totals so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Which roster fields the header provides.
    pub fn columns(&self) -> &ColumnMap {
        &self.columns
    }

    fn finish(&mut self) {
        let tracked = self.reader.get_ref();
        let open_quote = match tracked.bytes_from(self.last_start) {
            Some(bytes) => ends_in_quoted_field(bytes, self.delimiter),
            None => true,
        };
        self.truncated = self.last_short || open_quote;
    }

    /// The physical line and stream offset of the record just read.
    ///
    /// csv reports the position where it *started scanning* for the record,
    /// which is before the `\n` of a preceding CRLF and before any blank
    /// lines; the line of the record's first byte is that line plus the
    /// line feeds among the skipped line-end bytes, read from the tail.
    fn record_start(&self, record: &ByteRecord) -> (u64, u64) {
        let Some(pos) = record.position() else {
            return (0, self.last_start);
        };
        let skipped_lines = self
            .reader
            .get_ref()
            .bytes_from(pos.byte())
            .map_or(0, |raw| {
                raw.iter()
                    .take_while(|b| matches!(b, b'\r' | b'\n'))
                    .filter(|b| **b == b'\n')
                    .count() as u64
            });
        (pos.line() + skipped_lines, pos.byte())
    }

    /// Judges the record just read.
    fn judge(&self, line: u64) -> Option<RowOutcome> {
        let (record, fields) = match &self.slot {
            Slot::Text(r) => (r.as_byte_record(), Fields::Text(r)),
            Slot::Raw(r) => (r, Fields::Raw(r)),
            Slot::Empty => return None,
        };
        if is_blank(record) {
            return None;
        }
        let len = record.len();
        // Trailing empty fields past the header (`a,b,c,`) are tolerated:
        // some exporters end every line with a delimiter.
        if len < self.header_len
            || (len > self.header_len
                && record
                    .iter()
                    .skip(self.header_len)
                    .any(|f| !is_blank_field(f)))
        {
            return Some(RowOutcome::Reject {
                line,
                column: "fields",
                reason: format!("has {len} fields, the header has {}", self.header_len),
            });
        }
        let row = DelimitedRow {
            fields,
            columns: &self.columns,
            fallbacks: &self.fallbacks,
        };
        Some(classify(&row, line, self.as_of, self.detail))
    }
}

impl<R: Read> Iterator for RosterRows<R> {
    type Item = RowOutcome;

    fn next(&mut self) -> Option<RowOutcome> {
        while !self.done {
            let mut record = self.slot.take();
            match self.reader.read_byte_record(&mut record) {
                Ok(true) => {
                    let (line, start) = self.record_start(&record);
                    self.last_start = start;
                    // A blank last line (spaces, a DOS end-of-file mark) is
                    // not a cut-off row.
                    self.last_short = record.len() < self.header_len && !is_blank(&record);
                    // One UTF-8 check for the whole record (an ASCII scan in
                    // the common case) instead of one per field.
                    self.slot = match StringRecord::from_byte_record(record) {
                        Ok(text) => Slot::Text(text),
                        Err(e) => Slot::Raw(e.into_byte_record()),
                    };
                    match self.judge(line) {
                        Some(outcome) => {
                            self.counts.record(&outcome);
                            return Some(outcome);
                        }
                        None => self.counts.blank_rows += 1,
                    }
                }
                Ok(false) => {
                    self.slot = Slot::Raw(record);
                    self.done = true;
                    self.finish();
                }
                Err(e) => {
                    self.slot = Slot::Raw(record);
                    self.done = true;
                    self.truncated = true;
                    return Some(RowOutcome::Failed(csv_io_error(e)));
                }
            }
        }
        None
    }
}

/// The I/O error inside a csv error. With flexible byte records csv fails
/// only on I/O; anything else is reported without its message, which could
/// quote the data.
pub(crate) fn csv_io_error(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        _ => io::Error::new(io::ErrorKind::InvalidData, "the CSV reader failed"),
    }
}

/// The reused record buffer: valid UTF-8 as a whole (`Text`), or not
/// (`Raw`, decoded per field). `Empty` only while a record is being read.
enum Slot {
    Raw(ByteRecord),
    Text(StringRecord),
    Empty,
}

impl Slot {
    /// The buffer, to read the next record into (no allocation after the
    /// first record).
    fn take(&mut self) -> ByteRecord {
        match std::mem::replace(self, Slot::Empty) {
            Slot::Raw(r) => r,
            Slot::Text(r) => r.into_byte_record(),
            Slot::Empty => ByteRecord::new(),
        }
    }
}

enum Fields<'a> {
    Text(&'a StringRecord),
    Raw(&'a ByteRecord),
}

/// A cell trimmed of whitespace; `None` if nothing is left. Most cells start
/// and end with a visible ASCII character and skip the Unicode trim.
#[inline]
fn trim_cell(s: &str) -> Option<&str> {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(f), Some(l)) if f.is_ascii_graphic() && l.is_ascii_graphic() => Some(s),
        _ => Some(s.trim()).filter(|t| !t.is_empty()),
    }
}

/// The current record seen through the column map.
struct DelimitedRow<'a> {
    fields: Fields<'a>,
    columns: &'a ColumnMap,
    fallbacks: &'a Cell<u64>,
}

impl RowSource for DelimitedRow<'_> {
    #[inline]
    fn text(&self, field: Field) -> Option<Cow<'_, str>> {
        let idx = self.columns.index(field)?;
        let raw = match self.fields {
            Fields::Text(r) => return trim_cell(r.get(idx)?).map(Cow::Borrowed),
            Fields::Raw(r) => r.get(idx)?.trim_ascii(),
        };
        if raw.is_empty() {
            return None;
        }
        match decode_field(raw, self.fallbacks) {
            Cow::Borrowed(s) => trim_cell(s).map(Cow::Borrowed),
            Cow::Owned(s) => {
                let t = s.trim();
                if t.is_empty() {
                    None
                } else if t.len() == s.len() {
                    Some(Cow::Owned(s))
                } else {
                    Some(Cow::Owned(t.to_owned()))
                }
            }
        }
    }

    fn date_cell(&self, field: Field) -> Option<DateCell<'_>> {
        self.text(field).map(DateCell::Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_delimiters() {
        assert_eq!(sniff_delimiter(b"Email,FirstName,LastName\r\n"), b',');
        assert_eq!(sniff_delimiter(b"Email;FirstName;LastName\n"), b';');
        assert_eq!(sniff_delimiter(b"Email\tFirst Name\tLast Name\n"), b'\t');
        assert_eq!(sniff_delimiter(b"Email|FirstName|LastName"), b'|');
        assert_eq!(sniff_delimiter(b"\"Name, full\";Email;Tier"), b';');
        assert_eq!(sniff_delimiter(b"Email"), b',');
    }

    #[test]
    fn quote_state_of_last_record() {
        assert!(!ends_in_quoted_field(b"a,\"b\",c\n", b','));
        assert!(!ends_in_quoted_field(b"a,\"b\"\"x\"\"\",c", b','));
        assert!(!ends_in_quoted_field(b"a,b\"c,d\n", b','));
        assert!(ends_in_quoted_field(b"a,\"b,c\n", b','));
        assert!(ends_in_quoted_field(b"a,\"b\"\"", b','));
        assert!(ends_in_quoted_field(b"a;\"b\nc", b';'));
    }

    #[test]
    fn tail_keeps_last_bytes() {
        let data: Vec<u8> = (0..(TAIL_BUF + 3 * TAIL + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        let mut t = Tracked {
            inner: Cursor::new(data.clone()),
            consumed: 0,
            tail: Vec::new(),
        };
        let mut buf = vec![0u8; 10_000];
        while t.read(&mut buf).unwrap() > 0 {}
        let end = data.len() as u64;
        assert_eq!(t.bytes_from(end - 5).unwrap(), &data[data.len() - 5..]);
        assert_eq!(
            t.bytes_from(end - TAIL as u64).unwrap(),
            &data[data.len() - TAIL..]
        );
        assert!(t.bytes_from(0).is_none());
    }
}
