//! What a spreadsheet roster may be, checked before a reader allocates for it.
//!
//! A spreadsheet says how big it is before it is read: a zip entry its
//! unpacked size, a sheet its dimension (`A1:XFD1048576`), a BIFF record its
//! rows and columns, a compound file its sector chains. Readers trust those
//! numbers and allocate for them, so a 2 KB file could ask for half a
//! terabyte and abort the process. Everything here reads the file's
//! structure with bounded memory and refuses it, with a reason for the
//! import report, when it goes beyond the limits below.

use std::io::{Read, Seek, SeekFrom};

use super::FileError;

/// The largest spreadsheet file accepted (either kind).
pub const MAX_FILE_BYTES: u64 = 32 << 20;
/// Rows of a sheet (declared or used). Larger rosters come as delimited text.
pub const MAX_ROWS: u32 = 250_000;
/// Columns of a sheet (declared or used): column `IV`.
pub const MAX_COLUMNS: u32 = 256;
/// Cells of a sheet: its declared rows × columns, and the cells it holds.
pub const MAX_CELLS: u64 = 5_000_000;
/// The unpacked size of one part of an `.xlsx` (a sheet, the styles, …).
pub const MAX_PART_BYTES: u64 = 64 << 20;
/// The unpacked size of an `.xlsx`'s shared strings (all held in memory).
pub const MAX_SHARED_STRINGS_BYTES: u64 = 32 << 20;
/// The number of shared strings (`.xlsx` and `.xls`).
pub const MAX_SHARED_STRINGS: u64 = 1_000_000;
/// The unpacked size of all parts of an `.xlsx` together.
pub const MAX_UNPACKED_BYTES: u64 = 160 << 20;
/// Unpacked : packed, for parts over 1 MiB. Spreadsheet XML packs about
/// 10:1; a run of zeros packs 1000:1.
pub const MAX_RATIO: u64 = 100;
/// The longest tag or text in an `.xlsx`'s XML (the XML reader holds one
/// whole). Excel's own cell limit is 32,767 characters.
pub const MAX_XML_TOKEN_BYTES: u64 = 1 << 20;
/// `.xls` workbooks are read whole: cells of all sheets together (and the
/// area each sheet spans).
pub const MAX_XLS_CELLS: u64 = 1_000_000;
/// `.xls`: characters of shared text copied into cells, all sheets together.
pub const MAX_XLS_TEXT_CHARS: u64 = 16_000_000;

fn too_large(why: String) -> FileError {
    FileError::TooLarge(why)
}

fn unreadable(why: impl std::fmt::Display) -> FileError {
    FileError::Spreadsheet(why.to_string())
}

const MIB: u64 = 1 << 20;

/// The file's length, refused beyond [`MAX_FILE_BYTES`]; leaves it at the start.
fn file_len<R: Read + Seek>(input: &mut R) -> Result<u64, FileError> {
    let len = input.seek(SeekFrom::End(0))?;
    input.seek(SeekFrom::Start(0))?;
    if len > MAX_FILE_BYTES {
        return Err(too_large(format!(
            "the file is {} MiB; a spreadsheet roster may be at most {} MiB (send larger rosters as CSV)",
            len.div_ceil(MIB),
            MAX_FILE_BYTES / MIB
        )));
    }
    Ok(len)
}

/// `A`, `B`, …, `XFD` for a 0-based column.
pub(crate) fn column_name(col: u32) -> String {
    let mut n = u64::from(col) + 1;
    let mut s = Vec::new();
    while n > 0 {
        s.push(b'A' + ((n - 1) % 26) as u8);
        n = (n - 1) / 26;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// Checks the rows and columns a sheet declares or uses, 0-based and inclusive.
pub(crate) fn check_extent(
    start: (u32, u32),
    end: (u32, u32),
    what: &str,
) -> Result<(), FileError> {
    let (r0, r1) = (start.0.min(end.0), start.0.max(end.0));
    let (c0, c1) = (start.1.min(end.1), start.1.max(end.1));
    let rows = u64::from(r1 - r0) + 1;
    let cols = u64::from(c1 - c0) + 1;
    let first = format!("{}{}", column_name(c0), u64::from(r0) + 1);
    let last = format!("{}{}", column_name(c1), u64::from(r1) + 1);
    let at = if first == last {
        first
    } else {
        format!("{first}:{last}")
    };
    if r1 >= MAX_ROWS {
        return Err(too_large(format!(
            "{what} reaches row {} ({at}); a spreadsheet roster may have at most {MAX_ROWS} rows (send larger rosters as CSV)",
            u64::from(r1) + 1
        )));
    }
    if c1 >= MAX_COLUMNS {
        return Err(too_large(format!(
            "{what} reaches column {} ({at}); a spreadsheet roster may have at most {MAX_COLUMNS} columns",
            column_name(c1)
        )));
    }
    if rows * cols > MAX_CELLS {
        return Err(too_large(format!(
            "{what} spans {} cells ({at}); a spreadsheet roster may have at most {MAX_CELLS}",
            rows * cols
        )));
    }
    Ok(())
}

/// Counts shared-string items (`<si>`, `<si …>`, `<x:si>`) in a stream of XML.
#[derive(Default)]
struct SiCounter {
    /// The bytes after the last `<` seen, up to 5 (enough to tell `si`).
    tag: Vec<u8>,
    in_tag: bool,
    count: u64,
}

impl SiCounter {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'<' {
                self.in_tag = true;
                self.tag.clear();
                continue;
            }
            if !self.in_tag {
                continue;
            }
            if b == b'>' || b == b'/' || b.is_ascii_whitespace() {
                let name = self.tag.rsplit(|c| *c == b':').next().unwrap_or(&[]);
                if name == b"si" {
                    self.count += 1;
                }
                self.in_tag = false;
            } else if self.tag.len() < 8 {
                self.tag.push(b);
            } else {
                self.in_tag = false;
            }
        }
    }
}

/// Checks an `.xlsx` package before calamine opens it: file size, the number
/// of parts, every part's unpacked size (declared and actual: the zip header
/// can lie), compression ratio, the longest XML token and the number of
/// shared strings. Leaves the input at its start.
pub fn check_xlsx<R: Read + Seek>(input: &mut R) -> Result<(), FileError> {
    file_len(input)?;
    let mut zip = zip::ZipArchive::new(&mut *input).map_err(unreadable)?;
    if zip.len() > 10_000 {
        return Err(too_large(format!(
            "the workbook has {} parts; at most 10000",
            zip.len()
        )));
    }
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..zip.len() {
        let mut part = zip.by_index(i).map_err(unreadable)?;
        let shared_strings = part
            .name()
            .to_ascii_lowercase()
            .ends_with("sharedstrings.xml");
        let limit = if shared_strings {
            MAX_SHARED_STRINGS_BYTES
        } else {
            MAX_PART_BYTES
        };
        let what = if shared_strings {
            "the shared strings"
        } else {
            "a part of the workbook"
        };
        let declared = part.size();
        if declared > limit {
            return Err(too_large(format!(
                "{what} unpacks to {} MiB; at most {} MiB",
                declared.div_ceil(MIB),
                limit / MIB
            )));
        }
        if declared > MIB && declared / part.compressed_size().max(1) > MAX_RATIO {
            return Err(too_large(format!(
                "{what} is packed {}:1 (a zip bomb?); at most {MAX_RATIO}:1",
                declared / part.compressed_size().max(1)
            )));
        }
        total += declared;
        if total > MAX_UNPACKED_BYTES {
            return Err(too_large(format!(
                "the workbook unpacks to more than {} MiB",
                MAX_UNPACKED_BYTES / MIB
            )));
        }
        // Unpack it to see that it is what its header says.
        let mut actual = 0u64;
        let mut run = 0u64;
        let mut strings = SiCounter::default();
        loop {
            let n = part.read(&mut buf).map_err(unreadable)?;
            if n == 0 {
                break;
            }
            actual += n as u64;
            if actual > declared {
                return Err(too_large(format!(
                    "{what} unpacks to more than the {declared} bytes its zip header declares (a zip bomb?)"
                )));
            }
            let mut longest = 0u64;
            for &b in &buf[..n] {
                if b == b'<' {
                    run = 0;
                } else {
                    run += 1;
                    longest = longest.max(run);
                }
            }
            if longest > MAX_XML_TOKEN_BYTES {
                return Err(too_large(format!(
                    "{what} holds a tag or text longer than {} MiB",
                    MAX_XML_TOKEN_BYTES / MIB
                )));
            }
            if shared_strings {
                strings.feed(&buf[..n]);
                if strings.count > MAX_SHARED_STRINGS {
                    return Err(too_large(format!(
                        "the workbook has more than {MAX_SHARED_STRINGS} shared strings"
                    )));
                }
            }
        }
    }
    drop(zip);
    input.seek(SeekFrom::Start(0))?;
    Ok(())
}

// ---- .xls: the compound file and its BIFF records -------------------------------------------

const ENDOFCHAIN: u32 = 0xFFFF_FFFE;
const RESERVED_SECTORS: u32 = 0xFFFF_FFFA;
const DIFSECT: u32 = 0xFFFF_FFFC;

fn damaged(what: &str) -> FileError {
    FileError::Spreadsheet(format!("the .xls file is damaged ({what})"))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn words(s: &[u8]) -> Result<impl Iterator<Item = u32> + '_, FileError> {
    if !s.len().is_multiple_of(4) {
        return Err(damaged("a sector is cut off"));
    }
    Ok(s.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
}

/// A compound file as calamine walks it: sector `id` lies after the header.
struct Compound<'a> {
    body: &'a [u8],
    size: usize,
    sectors: u64,
}

impl Compound<'_> {
    fn sector(&self, id: u32) -> Result<&[u8], FileError> {
        if u64::from(id) >= self.sectors {
            return Err(damaged("a sector number points past the end"));
        }
        let start = id as usize * self.size;
        Ok(&self.body[start..(start + self.size).min(self.body.len())])
    }

    /// A chain of sectors, each in the file and each once at most (a cycle
    /// would never end); `declared` bytes are reserved for it up front.
    fn chain(&self, start: u32, fats: &[u32], declared: u64) -> Result<Vec<u8>, FileError> {
        if declared > self.body.len() as u64 {
            return Err(damaged("a stream is longer than the file"));
        }
        let mut out = Vec::new();
        let (mut id, mut steps) = (start, 0u64);
        while id != ENDOFCHAIN {
            steps += 1;
            if steps > self.sectors || id as usize >= fats.len() {
                return Err(damaged("a sector chain loops or leaves the file"));
            }
            out.extend_from_slice(self.sector(id)?);
            id = fats[id as usize];
        }
        if declared > 0 {
            out.truncate(declared as usize);
        }
        Ok(out)
    }
}

/// Checks an `.xls` workbook before calamine opens it: the compound file's
/// header fields and sector chains (each sector number in the file, no
/// loops, reservations no larger than the file), no macros, and then the
/// workbook stream's records (see [`check_biff`]). Leaves the input at its start.
pub fn check_xls<R: Read + Seek>(input: &mut R) -> Result<(), FileError> {
    let len = file_len(input)?;
    let mut bytes = Vec::with_capacity(len as usize);
    input.read_to_end(&mut bytes)?;
    input.seek(SeekFrom::Start(0))?;
    if bytes.len() < 512 || u64_at(&bytes, 0) != Some(0xE11A_B1A1_E011_CFD0) {
        return Err(unreadable("not an Excel 97-2003 workbook"));
    }
    let size = match u16_at(&bytes, 30) {
        Some(9) => 512,
        Some(12) => 4096,
        _ => return Err(damaged("sector size")),
    };
    if bytes.len() < size {
        return Err(damaged("header"));
    }
    let header = &bytes[..512];
    let field = |at| u32_at(header, at).unwrap_or(0);
    let (dir_len, fat_len, dir_start) = (field(40), field(44), field(48));
    let (mini_fat_start, mini_fat_len, difat_start) = (field(60), field(64), field(68));
    let body = &bytes[size..];
    let cf = Compound {
        body,
        size,
        sectors: (body.len() as u64).div_ceil(size as u64),
    };
    // Counts the reader reserves memory for before it reads a sector.
    if u64::from(fat_len) > cf.sectors
        || u64::from(dir_len) > cf.sectors
        || u64::from(mini_fat_len) > cf.sectors
        || field(62) > 1 << 24
    {
        return Err(damaged("header counts"));
    }
    let mut difat: Vec<u32> = words(&header[76..512])?.collect();
    let (mut id, mut steps) = (difat_start, 0u64);
    while id < RESERVED_SECTORS {
        steps += 1;
        if steps > cf.sectors {
            return Err(damaged("the sector allocation table loops"));
        }
        difat.extend(words(cf.sector(id)?)?);
        id = difat.pop().unwrap_or(ENDOFCHAIN);
    }
    let fat_sectors: Vec<u32> = difat.into_iter().filter(|id| *id < DIFSECT).collect();
    if fat_sectors.len() as u64 > cf.sectors {
        return Err(damaged(
            "the sector allocation table is larger than the file",
        ));
    }
    let mut fats = Vec::new();
    for id in fat_sectors {
        fats.extend(words(cf.sector(id)?)?);
    }
    let dirs = cf.chain(dir_start, &fats, u64::from(dir_len) * size as u64)?;
    let mut entries = Vec::new();
    for c in dirs.chunks(128) {
        if c.len() < 128 {
            return Err(damaged("directory"));
        }
        let mut name = encoding_rs::UTF_16LE.decode(&c[..64]).0.into_owned();
        if let Some(end) = name.find('\0') {
            name.truncate(end);
        }
        let start = u32_at(c, 116).unwrap_or(0);
        let len = if size == 512 {
            u64::from(u32_at(c, 120).unwrap_or(0))
        } else {
            u64_at(c, 120).unwrap_or(0)
        };
        entries.push((name, start, len));
    }
    let Some(root) = entries.first() else {
        return Err(damaged("no root directory"));
    };
    let (ministream, mini_fats) = if mini_fat_len > 0 {
        let ministream = cf.chain(root.1, &fats, root.2)?;
        let minifat = cf.chain(mini_fat_start, &fats, u64::from(mini_fat_len) * size as u64)?;
        (ministream, words(&minifat)?.collect::<Vec<u32>>())
    } else {
        (Vec::new(), Vec::new())
    };
    if entries.iter().any(|e| e.0 == "_VBA_PROJECT_CUR") {
        return Err(unreadable(
            "the workbook contains macros; save it as a plain .xlsx or .xls without them",
        ));
    }
    let Some((_, start, len)) = entries
        .iter()
        .find(|e| e.0 == "Workbook")
        .or_else(|| entries.iter().find(|e| e.0 == "Book"))
    else {
        return Err(unreadable("no workbook stream"));
    };
    let stream = if *len < 4096 {
        // Small streams live in 64-byte mini sectors of the mini stream.
        let mut out = Vec::new();
        let (mut id, mut steps) = (*start, 0u64);
        let minis = ministream.len() as u64 / 64;
        while id != ENDOFCHAIN {
            steps += 1;
            if steps > minis || u64::from(id) >= minis || id as usize >= mini_fats.len() {
                return Err(damaged("a mini sector chain loops or leaves the file"));
            }
            let at = id as usize * 64;
            out.extend_from_slice(&ministream[at..at + 64]);
            id = mini_fats[id as usize];
        }
        out.truncate(*len as usize);
        out
    } else {
        cf.chain(*start, &fats, *len)?
    };
    drop(bytes);
    check_biff(&stream)
}

/// BIFF records as calamine reads them: type, length, data; `None` at the
/// end or where the stream is cut (calamine then fails on its own).
fn records(stream: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = stream;
    std::iter::from_fn(move || {
        let typ = u16_at(rest, 0)?;
        let len = u16_at(rest, 2)? as usize;
        let data = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        Some((typ, data))
    })
}

/// The character counts of the shared strings (SST) record and its
/// continuations, read as calamine reads them; stops where the record is
/// cut (calamine fails there too).
fn shared_string_lengths(first: &[u8], cont: &[&[u8]]) -> Result<Vec<u16>, FileError> {
    let mut out = Vec::new();
    let mut chunks = cont.iter();
    let mut data = first.get(8..).unwrap_or(&[]);
    let too_many = || {
        too_large(format!(
            "the workbook has more than {MAX_SHARED_STRINGS} shared strings"
        ))
    };
    loop {
        if data.is_empty() {
            match chunks.next() {
                Some(c) => data = c,
                None => return Ok(out),
            }
        }
        if data.len() < 3 {
            return Ok(out);
        }
        let cch = u16_at(data, 0).unwrap_or(0);
        let flags = data[2];
        data = &data[3..];
        let mut skip = 0usize;
        if flags & 0x8 != 0 {
            let Some(runs) = u16_at(data, 0) else {
                return Ok(out);
            };
            skip += usize::from(runs) * 4;
            data = &data[2..];
        }
        if flags & 0x4 != 0 {
            let Some(ext) = u32_at(data, 0) else {
                return Ok(out);
            };
            skip = skip.saturating_add(ext as usize);
            data = &data[4..];
        }
        out.push(cch);
        if out.len() as u64 > MAX_SHARED_STRINGS {
            return Err(too_many());
        }
        let mut wide = flags & 0x1 != 0;
        let mut left = usize::from(cch);
        while left > 0 {
            let per = if wide { 2 } else { 1 };
            let take = left.min(data.len() / per);
            data = &data[take * per..];
            left -= take;
            if left > 0 {
                match chunks.next() {
                    Some(c) if !c.is_empty() => {
                        wide = c[0] & 0x1 != 0;
                        data = &c[1..];
                    }
                    _ => return Ok(out),
                }
            }
        }
        while skip > 0 {
            if data.is_empty() {
                match chunks.next() {
                    Some(c) => data = c,
                    None => return Ok(out),
                }
            }
            let n = skip.min(data.len());
            data = &data[n..];
            skip -= n;
        }
    }
}

/// The workbook stream: every sheet calamine will read (it reads them all
/// on open) — the dimensions each declares (reserved up front), the area its
/// cells span (allocated whole), the number of cells and the shared text
/// they copy.
fn check_biff(stream: &[u8]) -> Result<(), FileError> {
    let mut sheets = Vec::new();
    let mut sst: Vec<u16> = Vec::new();
    let globals: Vec<(u16, &[u8])> = records(stream).collect();
    for (i, (typ, data)) in globals.iter().enumerate() {
        match typ {
            0x0085 => sheets.push(u32_at(data, 0).unwrap_or(u32::MAX) as usize),
            0x00FC => {
                let cont: Vec<&[u8]> = globals[i + 1..]
                    .iter()
                    .take_while(|(t, _)| *t == 0x003C)
                    .map(|(_, d)| *d)
                    .collect();
                sst = shared_string_lengths(data, &cont)?;
            }
            0x000A => break,
            _ => {}
        }
    }
    let (mut cells, mut text) = (0u64, 0u64);
    for pos in sheets {
        let Some(sheet) = stream.get(pos..) else {
            continue;
        };
        let mut lo = (u32::MAX, u32::MAX);
        let mut hi = (0u32, 0u32);
        let mut seen = false;
        let mut cell = |row: u32, col: u32| {
            lo = (lo.0.min(row), lo.1.min(col));
            hi = (hi.0.max(row), hi.1.max(col));
            seen = true;
        };
        for (typ, data) in records(sheet) {
            let rc = (u16_at(data, 0), u16_at(data, 2));
            match (typ, rc) {
                (0x0200, _) => {
                    let (rf, rl, cf, cl) = match data.len() {
                        10 => (
                            u32::from(u16_at(data, 0).unwrap_or(0)),
                            u32::from(u16_at(data, 2).unwrap_or(0)),
                            u32::from(u16_at(data, 4).unwrap_or(0)),
                            u32::from(u16_at(data, 6).unwrap_or(0)),
                        ),
                        14 => (
                            u32_at(data, 0).unwrap_or(0),
                            u32_at(data, 4).unwrap_or(0),
                            u32::from(u16_at(data, 8).unwrap_or(0)),
                            u32::from(u16_at(data, 10).unwrap_or(0)),
                        ),
                        _ => continue,
                    };
                    let cf = if cf > 0xFF || cl < cf { 0 } else { cf };
                    let (rows, cols) = if rl >= 1 && cl >= 1 {
                        (
                            u64::from((rl - 1).wrapping_sub(rf).wrapping_add(1)),
                            u64::from((cl - 1).wrapping_sub(cf).wrapping_add(1)),
                        )
                    } else {
                        (1, 1)
                    };
                    if rows.saturating_mul(cols) > MAX_XLS_CELLS || rows > u64::from(MAX_ROWS) {
                        return Err(too_large(format!(
                            "a sheet declares {rows} rows × {cols} columns; an .xls roster may have at most {MAX_XLS_CELLS} cells"
                        )));
                    }
                }
                (0x0203 | 0x0204 | 0x0205 | 0x027E | 0x0006, (Some(r), Some(c))) => {
                    cells += 1;
                    cell(u32::from(r), u32::from(c));
                }
                (0x00FD, (Some(r), Some(c))) => {
                    cells += 1;
                    cell(u32::from(r), u32::from(c));
                    if let Some(i) = u32_at(data, 6) {
                        text += sst.get(i as usize).copied().map_or(0, u64::from);
                    }
                }
                (0x00BD, (Some(r), Some(c))) if data.len() >= 6 => {
                    let n = (data.len() as u64 - 6) / 6;
                    cells += n;
                    cell(u32::from(r), u32::from(c));
                    cell(u32::from(r), u32::from(c).saturating_add(n as u32));
                }
                (0x000A, _) => break,
                _ => {}
            }
        }
        if cells > MAX_XLS_CELLS {
            return Err(too_large(format!(
                "the workbook holds more than {MAX_XLS_CELLS} cells"
            )));
        }
        if text > MAX_XLS_TEXT_CHARS {
            return Err(too_large(format!(
                "the workbook's cells repeat more than {MAX_XLS_TEXT_CHARS} characters of shared text"
            )));
        }
        if seen {
            let area = (u64::from(hi.0 - lo.0) + 1) * (u64::from(hi.1 - lo.1) + 1);
            if area > MAX_XLS_CELLS {
                return Err(too_large(format!(
                    "a sheet's cells span {area} cells ({}{}:{}{}); an .xls roster may span at most {MAX_XLS_CELLS}",
                    column_name(lo.1),
                    u64::from(lo.0) + 1,
                    column_name(hi.1),
                    u64::from(hi.0) + 1
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names() {
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(25), "Z");
        assert_eq!(column_name(26), "AA");
        assert_eq!(column_name(16383), "XFD");
    }

    #[test]
    fn extents() {
        assert!(check_extent((0, 0), (999, 25), "the sheet").is_ok());
        let e = check_extent((0, 0), (999_999, 25), "the sheet").unwrap_err();
        assert!(e.to_string().contains("A1:Z1000000"), "{e}");
        let e = check_extent((1_048_575, 16383), (1_048_575, 16383), "a cell").unwrap_err();
        assert!(e.to_string().contains("row 1048576 (XFD1048576)"), "{e}");
        let e = check_extent((0, 0), (0, 16383), "the sheet").unwrap_err();
        assert!(e.to_string().contains("column XFD"), "{e}");
    }

    #[test]
    fn shared_strings_are_counted() {
        let mut c = SiCounter::default();
        c.feed(b"<sst count=\"3\"><si><t>a</t></si><x:si");
        c.feed(b"><t>b</t></x:si><si/><sig/></sst>");
        assert_eq!(c.count, 3);
    }
}
