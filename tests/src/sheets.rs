//! Spreadsheet files built at test time, byte by byte: good `.xlsx` rosters
//! and the hostile ones an attacker or a broken export sends — a cell at
//! `XFD1048576`, a declared `A1:Z1000000`, zip bombs.

use std::io::Write as _;

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// One zip entry as it is written: its packed bytes and what its headers say.
pub struct Part {
    pub name: String,
    /// 0 stored, 8 deflated.
    pub method: u16,
    pub crc: u32,
    pub packed: Vec<u8>,
    /// The unpacked size the headers declare (true or not).
    pub declared: u32,
}

impl Part {
    /// A stored (uncompressed) part with true headers.
    pub fn stored(name: &str, data: &[u8]) -> Self {
        Self {
            name: name.into(),
            method: 0,
            crc: crc32(data),
            packed: data.to_vec(),
            declared: data.len() as u32,
        }
    }
}

/// A zip archive of the parts, local headers and central directory alike.
pub fn zip(parts: &[Part]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    let le16 = |v: &mut Vec<u8>, x: u16| v.extend_from_slice(&x.to_le_bytes());
    let le32 = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
    for p in parts {
        let name = p.name.as_bytes();
        let (packed, offset) = (p.packed.len() as u32, out.len() as u32);
        le32(&mut out, 0x0403_4b50);
        for x in [20u16, 0, p.method, 0, 0x21] {
            le16(&mut out, x);
        }
        for x in [p.crc, packed, p.declared] {
            le32(&mut out, x);
        }
        le16(&mut out, name.len() as u16);
        le16(&mut out, 0);
        out.extend_from_slice(name);
        out.extend_from_slice(&p.packed);
        le32(&mut central, 0x0201_4b50);
        for x in [20u16, 20, 0, p.method, 0, 0x21] {
            le16(&mut central, x);
        }
        for x in [p.crc, packed, p.declared] {
            le32(&mut central, x);
        }
        for x in [name.len() as u16, 0, 0, 0, 0] {
            le16(&mut central, x);
        }
        le32(&mut central, 0);
        le32(&mut central, offset);
        central.extend_from_slice(name);
    }
    let (cd_offset, cd_size) = (out.len() as u32, central.len() as u32);
    out.extend_from_slice(&central);
    le32(&mut out, 0x0605_4b50);
    for x in [0u16, 0, parts.len() as u16, parts.len() as u16] {
        le16(&mut out, x);
    }
    le32(&mut out, cd_size);
    le32(&mut out, cd_offset);
    le16(&mut out, 0);
    out
}

/// The parts every workbook needs besides its sheet.
fn frame() -> Vec<Part> {
    let ns_rel = "http://schemas.openxmlformats.org/package/2006/relationships";
    let ns_doc = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    vec![
        Part::stored(
            "[Content_Types].xml",
            br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
        ),
        Part::stored(
            "_rels/.rels",
            format!(r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="{ns_rel}"><Relationship Id="rId1" Type="{ns_doc}/officeDocument" Target="xl/workbook.xml"/></Relationships>"#).as_bytes(),
        ),
        Part::stored(
            "xl/workbook.xml",
            format!(r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="{ns_doc}"><sheets><sheet name="Members" sheetId="1" r:id="rId1"/></sheets></workbook>"#).as_bytes(),
        ),
        Part::stored(
            "xl/_rels/workbook.xml.rels",
            format!(r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="{ns_rel}"><Relationship Id="rId1" Type="{ns_doc}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#).as_bytes(),
        ),
    ]
}

const SHEET_OPEN: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">"#;

/// A workbook whose first sheet's XML is `dimension` (if any) and `rows`.
pub fn workbook(dimension: Option<&str>, rows: &str) -> Vec<u8> {
    let mut sheet = String::from(SHEET_OPEN);
    if let Some(d) = dimension {
        sheet.push_str(&format!(r#"<dimension ref="{d}"/>"#));
    }
    sheet.push_str(&format!("<sheetData>{rows}</sheetData></worksheet>"));
    let mut parts = frame();
    parts.push(Part::stored("xl/worksheets/sheet1.xml", sheet.as_bytes()));
    zip(&parts)
}

fn text_cell(at: &str, text: &str) -> String {
    format!(r#"<c r="{at}" t="inlineStr"><is><t>{text}</t></is></c>"#)
}

/// A roster: header `Email, ClubDescr, ClubStatus`, then one active member
/// per email (in tier Gold).
pub fn roster(emails: &[String]) -> Vec<u8> {
    let mut rows = format!(
        r#"<row r="1">{}{}{}</row>"#,
        text_cell("A1", "Email"),
        text_cell("B1", "ClubDescr"),
        text_cell("C1", "ClubStatus")
    );
    for (i, e) in emails.iter().enumerate() {
        let r = i + 2;
        rows.push_str(&format!(
            r#"<row r="{r}">{}{}{}</row>"#,
            text_cell(&format!("A{r}"), e),
            text_cell(&format!("B{r}"), "Gold"),
            text_cell(&format!("C{r}"), "Active")
        ));
    }
    workbook(None, &rows)
}

/// A 1 KB workbook with a header and one cell at `XFD1048576` (Excel's
/// last cell): a reader that allocates rows × columns asks for 512 GiB.
pub fn cell_at_xfd1048576() -> Vec<u8> {
    workbook(
        None,
        &format!(
            r#"<row r="1">{}</row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row>"#,
            text_cell("A1", "Email")
        ),
    )
}

/// A 1.5 KB workbook declaring `A1:Z1000000`, with cells at both corners.
pub fn declared_a1_z1000000() -> Vec<u8> {
    workbook(
        Some("A1:Z1000000"),
        &format!(
            r#"<row r="1">{}</row><row r="1000000"><c r="Z1000000"><v>1</v></c></row>"#,
            text_cell("A1", "Email")
        ),
    )
}

/// A workbook whose sheet XML is `mib` MiB, nearly all zeros, deflated to
/// about a thousandth of that. With `honest` its headers declare the true
/// size; without, they declare 4 KB (a reader that believes them is
/// surprised).
pub fn zip_bomb(mib: u32, honest: bool) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let head = format!(
        r#"{SHEET_OPEN}<sheetData><row r="1">{}</row><row r="2"><c r="A2"><v>"#,
        text_cell("A1", "Email")
    );
    let tail = "</v></c></row></sheetData></worksheet>";
    // Each chunk is compressed on its own and flushed whole, so the chunks
    // can be repeated: back-references never cross one.
    let chunk = |data: &[u8], flush: FlushCompress| {
        let mut c = Compress::new(Compression::best(), false);
        let mut out = Vec::with_capacity(data.len() / 100 + 1024);
        c.compress_vec(data, &mut out, flush).unwrap();
        assert_eq!(c.total_in(), data.len() as u64);
        out
    };
    let zeros = chunk(&vec![b'0'; 1 << 20], FlushCompress::Full);
    let mut packed = chunk(head.as_bytes(), FlushCompress::Full);
    for _ in 0..mib {
        packed.write_all(&zeros).unwrap();
    }
    packed.extend(chunk(tail.as_bytes(), FlushCompress::Finish));
    let size = head.len() as u64 + (u64::from(mib) << 20) + tail.len() as u64;
    let mut parts = frame();
    parts.push(Part {
        name: "xl/worksheets/sheet1.xml".into(),
        method: 8,
        // Never reached: the reader stops long before the end.
        crc: 0,
        packed,
        declared: if honest {
            u32::try_from(size).unwrap()
        } else {
            4096
        },
    });
    zip(&parts)
}

/// The hostile files, by name, with a word the rejection's reason carries.
pub fn hostile() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    vec![
        ("xfd1048576.xlsx", cell_at_xfd1048576(), "XFD1048576"),
        ("a1-z1000000.xlsx", declared_a1_z1000000(), "A1:Z1000000"),
        ("bomb.xlsx", zip_bomb(300, true), "unpacks to 301 MiB"),
        (
            "bomb-lying.xlsx",
            zip_bomb(300, false),
            "zip header declares",
        ),
    ]
}
