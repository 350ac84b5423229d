//! Roster file parsing against fixture files (tests/fixtures/roster/) and
//! generated inputs: formats, encodings, truncation, row outcomes.

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::PathBuf;

use chrono::NaiveDate;
use domain::roster::{
    Counts, Detail, FileError, FileKind, NotMemberReason, RosterRow, RosterRows, RowOutcome,
    SpreadsheetKind, TextEncoding, file_kind, open, open_delimited, open_spreadsheet,
};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn as_of() -> NaiveDate {
    date(2026, 1, 15)
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/roster")
        .join(name)
}

fn fixture(name: &str) -> File {
    File::open(fixture_path(name)).unwrap()
}

/// Parses a fixture to the end: outcomes plus the finished reader.
fn parse(name: &str) -> (Vec<RowOutcome>, RosterRows<File>) {
    let mut rows = open_delimited(fixture(name), as_of()).unwrap();
    let out: Vec<RowOutcome> = rows.by_ref().collect();
    (out, rows)
}

fn parse_bytes(bytes: &[u8]) -> (Vec<RowOutcome>, RosterRows<&[u8]>) {
    let mut rows = open_delimited(bytes, as_of()).unwrap();
    let out: Vec<RowOutcome> = rows.by_ref().collect();
    (out, rows)
}

fn member(o: &RowOutcome) -> &RosterRow {
    match o {
        RowOutcome::Member(m) => m,
        other => panic!("expected a member, got {other:?}"),
    }
}

fn members(out: &[RowOutcome]) -> Vec<&RosterRow> {
    out.iter()
        .filter_map(|o| match o {
            RowOutcome::Member(m) => Some(&**m),
            _ => None,
        })
        .collect()
}

fn reject(o: &RowOutcome) -> (u64, &'static str, &str) {
    match o {
        RowOutcome::Reject {
            line,
            column,
            reason,
        } => (*line, column, reason.as_str()),
        other => panic!("expected a reject, got {other:?}"),
    }
}

fn lines(out: &[RowOutcome]) -> Vec<u64> {
    out.iter().filter_map(RowOutcome::line).collect()
}

// ---------------------------------------------------------------- formats

#[test]
fn comma_crlf_with_bom_reads_every_field() {
    let (out, rows) = parse("comma_crlf_bom.csv");
    assert_eq!(rows.delimiter(), b',');
    assert_eq!(rows.encoding(), TextEncoding::Utf8);
    assert!(!rows.truncated());
    assert_eq!(rows.encoding_fallbacks(), 0);
    assert_eq!(
        rows.columns().present().len(),
        17,
        "every roster field is mapped"
    );
    assert_eq!(lines(&out), [2, 3, 4]);

    let ana = member(&out[0]);
    assert_eq!(ana.line, 2);
    assert_eq!(ana.member_id.as_deref(), Some("1001"));
    assert_eq!(ana.email.as_str(), "ana.lopez@example.com");
    assert_eq!(ana.first_name.as_deref(), Some("Ana"));
    assert_eq!(ana.last_name.as_deref(), Some("López"));
    assert_eq!(ana.phone.as_deref(), Some("707-555-0101"));
    assert_eq!(ana.tier.as_deref(), Some("Gold Club"));
    assert_eq!(ana.status.as_deref(), Some("Active"));
    assert_eq!(ana.join_date, Some(date(2019, 3, 15)));
    assert_eq!(ana.quit_date, None);
    assert_eq!(ana.wine_preference.as_deref(), Some("Red"));
    assert_eq!(ana.address1.as_deref(), Some("12 Vine St"));
    assert_eq!(ana.address2.as_deref(), Some("Apt 4"));
    assert_eq!(ana.city.as_deref(), Some("Napa"));
    assert_eq!(ana.state.as_deref(), Some("CA"));
    assert_eq!(ana.zip.as_deref(), Some("94558"));
    assert_eq!(ana.country.as_deref(), Some("US"));
    assert_eq!(ana.birth_date, Some(date(1980, 7, 4)));

    let bo = member(&out[1]);
    assert_eq!(bo.email.as_str(), "bo@example.com", "email is trimmed");
    assert_eq!(bo.phone, None, "blank cells are None");
    assert_eq!(bo.join_date, Some(date(2024, 1, 5)), "time part ignored");
    assert_eq!(
        bo.quit_date,
        Some(date(2099, 12, 31)),
        "future quit date keeps the member"
    );
    assert_eq!(bo.birth_date, None);

    let cy = member(&out[2]);
    assert_eq!(cy.status.as_deref(), Some("On Hold"));
    assert_eq!(cy.join_date, Some(date(2020, 6, 1)));
    assert_eq!(cy.city, None);

    assert_eq!(
        rows.counts(),
        Counts {
            rows: 3,
            members: 3,
            not_members: 0,
            rejects: 0,
            blank_rows: 0
        }
    );
}

#[test]
fn semicolon_windows_1252_with_umlauts() {
    let (out, rows) = parse("semicolon_cp1252.csv");
    assert_eq!(rows.delimiter(), b';');
    assert!(!rows.truncated());
    assert!(
        rows.encoding_fallbacks() >= 5,
        "{}",
        rows.encoding_fallbacks()
    );
    let m = members(&out);
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].member_id.as_deref(), Some("A-17"));
    assert_eq!(m[0].email.as_str(), "juergen.mueller@example.de");
    assert_eq!(m[0].first_name.as_deref(), Some("Jürgen"));
    assert_eq!(m[0].last_name.as_deref(), Some("Müller"));
    assert_eq!(m[0].tier.as_deref(), Some("Weinfreunde Grün"));
    assert_eq!(m[0].status.as_deref(), Some("aktiv"));
    assert_eq!(m[0].join_date, Some(date(2024, 1, 5)), "DD.MM.YYYY");
    assert_eq!(m[0].address1.as_deref(), Some("Hauptstraße 5"));
    assert_eq!(m[0].city.as_deref(), Some("Köln"));
    assert_eq!(m[0].zip.as_deref(), Some("50667"));
    assert_eq!(m[0].birth_date, Some(date(1975, 12, 31)));
    assert_eq!(m[1].first_name.as_deref(), Some("Zoë"));
    assert_eq!(m[1].last_name.as_deref(), Some("Gruß"));
    assert_eq!(m[1].join_date, Some(date(2024, 1, 5)));
    assert_eq!(m[1].line, 3);
}

#[test]
fn tab_separated() {
    let (out, rows) = parse("tab.tsv");
    assert_eq!(rows.delimiter(), b'\t');
    assert!(!rows.truncated());
    let m = members(&out);
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].member_id.as_deref(), Some("C1"));
    assert_eq!(m[0].tier.as_deref(), Some("Case Club"));
    assert_eq!(m[0].join_date, Some(date(2024, 1, 5)));
    assert_eq!(m[1].last_name.as_deref(), Some("Two, Jr."));
    assert_eq!(m[1].join_date, Some(date(2024, 1, 5)));
    assert_eq!(m[1].quit_date, Some(date(2099, 1, 1)));
}

#[test]
fn pipe_without_final_newline_is_not_truncated() {
    let (out, rows) = parse("pipe.txt");
    assert_eq!(rows.delimiter(), b'|');
    assert!(!rows.truncated());
    let m = members(&out);
    assert_eq!(m.len(), 2);
    assert_eq!(m[1].member_id.as_deref(), Some("P2"));
    assert_eq!(m[1].tier.as_deref(), Some("Reserve"));
    assert_eq!(m[1].status.as_deref(), Some("Active"));
}

#[test]
fn quoted_fields_with_delimiters_quotes_and_newlines() {
    let (out, rows) = parse("quoted.csv");
    assert!(!rows.truncated());
    let m = members(&out);
    assert_eq!(m.len(), 4);
    assert_eq!(m[0].first_name.as_deref(), Some("Mary, Jane"));
    assert_eq!(m[0].address1.as_deref(), Some("12 Oak St\nSuite 5"));
    assert_eq!(m[0].wine_preference.as_deref(), Some("Red, \"bold\""));
    assert_eq!(m[1].last_name.as_deref(), Some("O'Neil"));
    assert_eq!(m[2].address1.as_deref(), Some("multi\r\nline\r\naddress"));
    assert_eq!(m[2].wine_preference, None);
    assert_eq!(m[3].address1.as_deref(), Some("x;y|z\tw"));
    // Line numbers are physical lines of each row's start.
    assert_eq!(lines(&out), [2, 4, 5, 8]);
}

#[test]
fn utf16_with_and_without_bom() {
    let text =
        "Email\tClub\tFirstName\r\nana@example.com\tGold\tJürgen\r\nbo@example.com\tSilver\t李\r\n";
    let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let inputs = [
        [&[0xFF, 0xFE][..], &le].concat(),
        [&[0xFE, 0xFF][..], &be].concat(),
        le.clone(),
        be.clone(),
    ];
    for input in inputs {
        let (out, rows) = parse_bytes(&input);
        assert_eq!(rows.encoding(), TextEncoding::Utf16);
        assert_eq!(rows.delimiter(), b'\t');
        assert!(!rows.truncated());
        let m = members(&out);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].first_name.as_deref(), Some("Jürgen"));
        assert_eq!(m[1].first_name.as_deref(), Some("李"));
        assert_eq!(m[1].tier.as_deref(), Some("Silver"));
        assert_eq!(lines(&out), [2, 3]);
    }
}

#[test]
fn lf_and_crlf_give_the_same_rows() {
    let lf = std::fs::read(fixture_path("comma_crlf_bom.csv")).unwrap();
    let lf: Vec<u8> = String::from_utf8(lf)
        .unwrap()
        .replace("\r\n", "\n")
        .into_bytes();
    let (out_lf, _) = parse_bytes(&lf);
    let (out_crlf, _) = parse("comma_crlf_bom.csv");
    let a: Vec<_> = members(&out_lf).into_iter().cloned().collect();
    let b: Vec<_> = members(&out_crlf).into_iter().cloned().collect();
    assert_eq!(a, b);
}

#[test]
fn blank_records_before_the_header_are_skipped() {
    let (out, rows) = parse_bytes(b"   \n,,\nEmail,Club\na@example.com,Gold\n");
    assert_eq!(lines(&out), [4]);
    assert_eq!(member(&out[0]).tier.as_deref(), Some("Gold"));
    assert!(!rows.truncated());
    assert!(matches!(
        open_delimited(&b"  \n,,,\n"[..], as_of()),
        Err(FileError::Empty)
    ));
}

#[test]
fn blank_lines_before_the_header_and_between_rows_keep_line_numbers() {
    let (out, _) =
        parse_bytes(b"\r\n\r\nEmail;Club\r\na@example.com;Gold\r\n\r\nb@example.com;Red\r\n");
    assert_eq!(lines(&out), [4, 6]);
}

// ---------------------------------------------------------- whole-file errors

#[test]
fn missing_email_column_fails_the_file() {
    match open_delimited(fixture("missing_email.csv"), as_of()) {
        Err(FileError::MissingColumn(col)) => assert_eq!(col, "email"),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("opened a file without email column"),
    }
    let err = open_delimited(fixture("missing_email.csv"), as_of())
        .err()
        .unwrap();
    assert_eq!(err.to_string(), "the header has no email column");
}

#[test]
fn empty_inputs_are_empty() {
    for input in [&b""[..], b"\xEF\xBB\xBF", b"\r\n\r\n", b"\n"] {
        assert!(
            matches!(open_delimited(input, as_of()), Err(FileError::Empty)),
            "{input:?}"
        );
    }
    assert!(matches!(
        open_delimited(fixture("empty.csv"), as_of()),
        Err(FileError::Empty)
    ));
    assert!(matches!(
        open_delimited(fixture("bom_only.csv"), as_of()),
        Err(FileError::Empty)
    ));
}

#[test]
fn header_only_yields_no_rows() {
    let (out, rows) = parse("header_only.csv");
    assert!(out.is_empty());
    assert_eq!(rows.counts(), Counts::default());
    assert!(!rows.truncated());
    // Also without the final newline.
    let (out, rows) = parse_bytes(b"Email,Club");
    assert!(out.is_empty());
    assert!(!rows.truncated());
}

// -------------------------------------------------------------- truncation

#[test]
fn file_ending_inside_a_quoted_last_field_is_truncated() {
    let (out, rows) = parse("truncated_mid_quote.csv");
    assert!(rows.truncated());
    assert_eq!(out.len(), 2);
}

#[test]
fn file_ending_inside_a_quoted_middle_field_is_truncated() {
    let (out, rows) = parse("truncated_mid_quote_row.csv");
    assert!(rows.truncated());
    assert_eq!(reject(&out[1]).1, "fields");
}

#[test]
fn short_last_row_is_truncated() {
    let (out, rows) = parse("truncated_last_row.csv");
    assert!(rows.truncated());
    member(&out[0]);
    let (line, column, reason) = reject(&out[1]);
    assert_eq!((line, column), (3, "fields"));
    assert_eq!(reason, "has 3 fields, the header has 4");
}

#[test]
fn short_row_in_the_middle_is_a_reject_not_truncation() {
    let (out, rows) =
        parse_bytes(b"Email,Club,Status\na@example.com,Gold\nb@example.com,Gold,Active\n");
    assert!(!rows.truncated());
    assert_eq!(
        reject(&out[0]),
        (2, "fields", "has 2 fields, the header has 3")
    );
    member(&out[1]);
}

#[test]
fn trailing_blank_line_or_dos_eof_mark_is_not_truncation() {
    for input in [
        &b"Email,Club,Status\r\na@example.com,Gold,Active\r\n  \r\n"[..],
        b"Email,Club,Status\r\na@example.com,Gold,Active\r\n\x1A",
    ] {
        let (out, rows) = parse_bytes(input);
        assert!(!rows.truncated(), "{input:?}");
        assert_eq!(out.len(), 1);
        assert_eq!(rows.counts().blank_rows, 1);
    }
}

#[test]
fn header_cut_inside_quotes_is_truncated() {
    let (out, rows) = parse_bytes(b"Email,\"Club");
    assert!(out.is_empty());
    assert!(rows.truncated());
}

#[test]
fn stray_quote_inside_an_unquoted_field_is_not_truncation() {
    let (out, rows) = parse_bytes(b"Email,Club\na@example.com,12\" Magnum Club\n");
    assert!(!rows.truncated());
    assert_eq!(member(&out[0]).tier.as_deref(), Some("12\" Magnum Club"));
}

// ------------------------------------------------------------ row outcomes

#[test]
fn cancelled_and_quit_rows_are_not_members() {
    let (out, rows) = parse("statuses.csv");
    let status = |o: &RowOutcome| match o {
        RowOutcome::NotMember { reason, .. } => *reason,
        other => panic!("expected not-member, got {other:?}"),
    };
    assert_eq!(member(&out[0]).email.as_str(), "active@example.com");
    let words: Vec<_> = out[1..8].iter().map(status).collect();
    assert_eq!(
        words,
        [
            NotMemberReason::Status("cancelled"),
            NotMemberReason::Status("cancelled"),
            NotMemberReason::Status("quit"),
            NotMemberReason::Status("inactive"),
            NotMemberReason::Status("terminated"),
            NotMemberReason::Status("expired"),
            NotMemberReason::Status("lapsed"),
        ]
    );
    assert_eq!(
        status(&out[8]),
        NotMemberReason::QuitDate,
        "quit before as_of"
    );
    assert_eq!(status(&out[9]), NotMemberReason::QuitDate, "quit on as_of");
    assert_eq!(
        member(&out[10]).quit_date,
        Some(date(2026, 1, 16)),
        "quit after as_of"
    );
    assert_eq!(
        status(&out[11]),
        NotMemberReason::Status("cancelled"),
        "a cancelled row without email is not a reject"
    );
    assert_eq!(member(&out[12]).status, None);
    assert_eq!(out[8].line(), Some(10));
    let c = rows.counts();
    assert_eq!(
        (c.rows, c.members, c.not_members, c.rejects),
        (13, 3, 10, 0)
    );
    assert_eq!(
        NotMemberReason::Status("quit").to_string(),
        "status is quit"
    );
}

#[test]
fn one_person_in_several_clubs_gives_several_rows() {
    let (out, _) = parse("multi_club.csv");
    let m = members(&out);
    assert_eq!(m.len(), 4);
    let sam: Vec<_> = m
        .iter()
        .filter(|r| r.email.as_str() == "sam@example.com")
        .map(|r| r.tier.as_deref().unwrap())
        .collect();
    assert_eq!(sam, ["Red Club", "White Club", "Library"]);
}

#[test]
fn bad_dates_bad_emails_and_field_counts_are_rejected_without_values() {
    let (out, rows) = parse("bad_rows.csv");
    assert!(!rows.truncated());
    assert_eq!(member(&out[0]).line, 2);
    assert_eq!(reject(&out[1]), (3, "email", "is missing"));
    let (line, col, _) = reject(&out[2]);
    assert_eq!((line, col), (4, "email"));
    let (line, col, reason) = reject(&out[3]);
    assert_eq!((line, col), (5, "join_date"));
    assert_eq!(reason, "is not a valid calendar date");
    let (line, col, reason) = reject(&out[4]);
    assert_eq!((line, col), (6, "birth_date"));
    assert!(reason.starts_with("is not a date as"), "{reason}");
    assert_eq!(reject(&out[5]).0, 7);
    assert_eq!(reject(&out[5]).1, "quit_date");
    assert_eq!(
        reject(&out[6]),
        (8, "fields", "has 3 fields, the header has 6")
    );
    assert_eq!(
        reject(&out[7]),
        (9, "fields", "has 7 fields, the header has 6")
    );
    // A trailing empty field past the header is tolerated.
    assert_eq!(member(&out[8]).line, 10);
    // `,,,,,` (line 11) is skipped as blank, the empty line 12 too.
    let placeholder = member(&out[9]);
    assert_eq!(placeholder.line, 13);
    assert_eq!(
        (placeholder.join_date, placeholder.birth_date),
        (None, None)
    );
    assert_eq!(member(&out[10]).join_date, Some(date(2024, 1, 5)));
    assert_eq!(out.len(), 11);

    let c = rows.counts();
    assert_eq!(
        c,
        Counts {
            rows: 11,
            members: 4,
            not_members: 0,
            rejects: 7,
            blank_rows: 1
        }
    );

    // No cell value reaches a reject, whatever way it is printed.
    for o in &out {
        if let RowOutcome::Reject { .. } = o {
            let shown = format!("{o:?}");
            for value in [
                "not-an-email",
                "secret",
                "2024-13-45",
                "yesterday",
                "soon",
                "extra",
                "short@",
                "long@",
            ] {
                assert!(!shown.contains(value), "{shown} contains {value}");
            }
        }
    }
}

// ---------------------------------------------------------------- streaming

/// Hands out at most `chunk` bytes per read, to exercise buffer boundaries.
struct Trickle<R> {
    inner: R,
    chunk: usize,
}

impl<R: Read> Read for Trickle<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.chunk);
        self.inner.read(&mut buf[..n])
    }
}

/// Yields `ok` bytes of `data`, then an I/O error.
struct FailsAfter {
    data: Cursor<Vec<u8>>,
    ok: u64,
}

impl Read for FailsAfter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.position() >= self.ok {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "network went away",
            ));
        }
        let left = usize::try_from(self.ok - self.data.position()).unwrap();
        let n = buf.len().min(left);
        self.data.read(&mut buf[..n])
    }
}

#[test]
fn tiny_reads_give_the_same_result() {
    for name in [
        "comma_crlf_bom.csv",
        "semicolon_cp1252.csv",
        "quoted.csv",
        "bad_rows.csv",
        "truncated_mid_quote.csv",
        "truncated_last_row.csv",
        "pipe.txt",
    ] {
        let (whole, whole_rows) = parse(name);
        for chunk in [1, 2, 3, 7] {
            let mut rows = open_delimited(
                Trickle {
                    inner: fixture(name),
                    chunk,
                },
                as_of(),
            )
            .unwrap();
            let out: Vec<RowOutcome> = rows.by_ref().collect();
            assert_eq!(
                format!("{out:?}"),
                format!("{whole:?}"),
                "{name} chunk {chunk}"
            );
            assert_eq!(rows.truncated(), whole_rows.truncated(), "{name}");
            assert_eq!(rows.delimiter(), whole_rows.delimiter(), "{name}");
            assert_eq!(
                rows.encoding_fallbacks(),
                whole_rows.encoding_fallbacks(),
                "{name}"
            );
        }
    }
}

#[test]
fn io_error_mid_stream_surfaces_and_ends_the_rows() {
    let mut data = b"Email,Club\n".to_vec();
    for i in 0..20_000 {
        data.extend_from_slice(format!("m{i}@example.com,Gold\n").as_bytes());
    }
    let ok = (data.len() / 2) as u64;
    let mut rows = open_delimited(
        FailsAfter {
            data: Cursor::new(data),
            ok,
        },
        as_of(),
    )
    .unwrap();
    let out: Vec<RowOutcome> = rows.by_ref().collect();
    assert!(out.len() > 100, "rows before the failure are delivered");
    match out.last() {
        Some(RowOutcome::Failed(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
        other => panic!("expected Failed last, got {other:?}"),
    }
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, RowOutcome::Failed(_)))
            .count(),
        1
    );
    assert!(rows.truncated());
    assert!(rows.next().is_none());
}

#[test]
fn io_error_before_the_header_is_a_file_error() {
    let r = FailsAfter {
        data: Cursor::new(b"Email,Club\n".to_vec()),
        ok: 0,
    };
    assert!(matches!(open_delimited(r, as_of()), Err(FileError::Io(_))));
}

/// An endless roster: proves rows come out before the input ends, i.e. the
/// parser never needs the whole file.
struct Endless {
    pending: Vec<u8>,
    next: u64,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pending.len() < buf.len() {
            let row = format!(
                "{},member{}@example.com,Gold Club,Active\r\n",
                self.next, self.next
            );
            self.pending.extend_from_slice(row.as_bytes());
            self.next += 1;
        }
        let n = buf.len();
        buf.copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

#[test]
fn rows_stream_from_an_endless_input() {
    let input = Endless {
        pending: b"MemberID,Email,Club,Status\r\n".to_vec(),
        next: 0,
    };
    let rows = open_delimited(input, as_of()).unwrap();
    let first: Vec<RowOutcome> = rows.take(50_000).collect();
    assert_eq!(first.len(), 50_000);
    assert_eq!(
        member(&first[49_999]).email.as_str(),
        "member49999@example.com"
    );
    assert_eq!(first[49_999].line(), Some(50_001));
}

// ------------------------------------------------------------- spreadsheets

fn xlsx_fixture() -> Vec<u8> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    let date_fmt = Format::new().set_num_format("yyyy-mm-dd");
    let datetime_fmt = Format::new().set_num_format("m/d/yyyy h:mm");
    // The header starts on row 2 (row 1 left empty) to check row numbers.
    let header = [
        "Member Number",
        "E-mail",
        "First Name",
        "Last Name",
        "ClubDescr",
        "Club Status",
        "Join Date",
        "Quit Date",
        "Zip",
        "Phone",
    ];
    for (c, h) in header.iter().enumerate() {
        ws.write_string(1, c as u16, *h).unwrap();
    }
    // Row 3: numeric id, date cell, numeric zip and phone.
    ws.write_number(2, 0, 1001.0).unwrap();
    ws.write_string(2, 1, " Ana@Example.com ").unwrap();
    ws.write_string(2, 2, "Ana").unwrap();
    ws.write_string(2, 3, "López").unwrap();
    ws.write_string(2, 4, "Gold Club").unwrap();
    ws.write_string(2, 5, "Active").unwrap();
    ws.write_datetime_with_format(
        2,
        6,
        ExcelDateTime::from_ymd(2024, 1, 5).unwrap(),
        &date_fmt,
    )
    .unwrap();
    ws.write_number(2, 8, 94558.0).unwrap();
    ws.write_number(2, 9, 7075550101.0).unwrap();
    // Row 4: cancelled.
    ws.write_number(3, 0, 1002.0).unwrap();
    ws.write_string(3, 1, "bo@example.com").unwrap();
    ws.write_string(3, 5, "Cancelled").unwrap();
    // Row 5: bad email.
    ws.write_number(4, 0, 1003.0).unwrap();
    ws.write_string(4, 1, "not-an-email").unwrap();
    // Row 6: text date and a date-time quit date in the future.
    ws.write_string(5, 1, "cy@example.com").unwrap();
    ws.write_string(5, 6, "03/15/2019").unwrap();
    ws.write_datetime_with_format(
        5,
        7,
        ExcelDateTime::from_ymd(2027, 6, 30)
            .unwrap()
            .and_hms(14, 30, 0)
            .unwrap(),
        &datetime_fmt,
    )
    .unwrap();
    // Row 7 left blank; row 8: quit date in the past.
    ws.write_string(7, 1, "di@example.com").unwrap();
    ws.write_datetime_with_format(
        7,
        7,
        ExcelDateTime::from_ymd(2025, 12, 31).unwrap(),
        &date_fmt,
    )
    .unwrap();
    // Row 9: unparseable text date.
    ws.write_string(8, 1, "ed@example.com").unwrap();
    ws.write_string(8, 6, "soon").unwrap();
    wb.save_to_buffer().unwrap()
}

#[test]
fn xlsx_first_sheet_is_read() {
    let rows =
        open_spreadsheet(Cursor::new(xlsx_fixture()), SpreadsheetKind::Xlsx, as_of()).unwrap();
    assert!(!rows.truncated());
    let mut rows = rows;
    let out: Vec<RowOutcome> = rows.by_ref().collect();
    assert_eq!(
        lines(&out),
        [3, 4, 5, 6, 8, 9],
        "sheet row numbers, blank row skipped"
    );

    let ana = member(&out[0]);
    assert_eq!(ana.member_id.as_deref(), Some("1001"));
    assert_eq!(ana.email.as_str(), "ana@example.com");
    assert_eq!(ana.last_name.as_deref(), Some("López"));
    assert_eq!(ana.tier.as_deref(), Some("Gold Club"));
    assert_eq!(ana.join_date, Some(date(2024, 1, 5)));
    assert_eq!(ana.zip.as_deref(), Some("94558"));
    assert_eq!(ana.phone.as_deref(), Some("7075550101"));

    assert!(matches!(
        out[1],
        RowOutcome::NotMember {
            line: 4,
            reason: NotMemberReason::Status("cancelled")
        }
    ));
    assert_eq!(reject(&out[2]).1, "email");
    let cy = member(&out[3]);
    assert_eq!(cy.join_date, Some(date(2019, 3, 15)));
    assert_eq!(cy.quit_date, Some(date(2027, 6, 30)));
    assert!(matches!(
        out[4],
        RowOutcome::NotMember {
            line: 8,
            reason: NotMemberReason::QuitDate
        }
    ));
    assert_eq!(
        reject(&out[5]),
        (
            9,
            "join_date",
            "is not a date as YYYY-MM-DD, MM/DD/YYYY or DD.MM.YYYY"
        )
    );
    let c = rows.counts();
    assert_eq!(
        (c.rows, c.members, c.not_members, c.rejects, c.blank_rows),
        (6, 2, 2, 2, 1)
    );
}

#[test]
fn xls_fixture_is_read() {
    let mut rows = open_spreadsheet(fixture("members.xls"), SpreadsheetKind::Xls, as_of()).unwrap();
    let out: Vec<RowOutcome> = rows.by_ref().collect();
    assert_eq!(lines(&out), [2, 3, 4, 5]);
    let ana = member(&out[0]);
    assert_eq!(ana.member_id.as_deref(), Some("1001"));
    assert_eq!(ana.email.as_str(), "xls1@example.com");
    assert_eq!(ana.join_date, Some(date(2024, 1, 5)));
    assert_eq!(ana.zip.as_deref(), Some("94558"));
    assert!(matches!(out[1], RowOutcome::NotMember { line: 3, .. }));
    assert_eq!(reject(&out[2]).1, "email");
    assert!(matches!(
        out[3],
        RowOutcome::NotMember {
            reason: NotMemberReason::QuitDate,
            ..
        }
    ));
    assert_eq!(rows.counts().rows, 4);
}

#[test]
fn spreadsheet_without_email_or_rows() {
    use rust_xlsxwriter::Workbook;
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "MemberID").unwrap();
    ws.write_string(0, 1, "Club").unwrap();
    let bytes = wb.save_to_buffer().unwrap();
    assert!(matches!(
        open_spreadsheet(Cursor::new(bytes), SpreadsheetKind::Xlsx, as_of()),
        Err(FileError::MissingColumn("email"))
    ));

    let mut wb = Workbook::new();
    wb.add_worksheet();
    let bytes = wb.save_to_buffer().unwrap();
    assert!(matches!(
        open_spreadsheet(Cursor::new(bytes), SpreadsheetKind::Xlsx, as_of()),
        Err(FileError::Empty)
    ));

    let mut wb = Workbook::new();
    wb.add_worksheet().write_string(0, 0, "Email").unwrap();
    let bytes = wb.save_to_buffer().unwrap();
    let mut rows = open_spreadsheet(Cursor::new(bytes), SpreadsheetKind::Xlsx, as_of()).unwrap();
    assert!(rows.next().is_none());
    assert_eq!(rows.counts(), Counts::default());
}

#[test]
fn spreadsheet_header_below_a_title_row() {
    use rust_xlsxwriter::{Format, Workbook};
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "Club member export 2026-01-15")
        .unwrap();
    ws.write_string(2, 0, "Email").unwrap();
    ws.write_string(2, 1, "Club").unwrap();
    ws.write_string(3, 0, "ana@example.com").unwrap();
    ws.write_string(3, 1, "Gold").unwrap();
    let bytes = wb.save_to_buffer().unwrap();
    let out: Vec<RowOutcome> = open_spreadsheet(Cursor::new(bytes), SpreadsheetKind::Xlsx, as_of())
        .unwrap()
        .collect();
    assert_eq!(lines(&out), [4]);
    assert_eq!(member(&out[0]).tier.as_deref(), Some("Gold"));

    // Formatted but blank cells only: empty, not "missing email".
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_blank(0, 0, &Format::new().set_bold()).unwrap();
    ws.write_blank(3, 2, &Format::new().set_bold()).unwrap();
    let bytes = wb.save_to_buffer().unwrap();
    assert!(matches!(
        open_spreadsheet(Cursor::new(bytes), SpreadsheetKind::Xlsx, as_of()),
        Err(FileError::Empty)
    ));
}

#[test]
fn broken_spreadsheets_fail_to_open() {
    let mut cut = xlsx_fixture();
    cut.truncate(cut.len() / 2);
    for (bytes, kind) in [
        (cut, SpreadsheetKind::Xlsx),
        (b"Email,Club\n".to_vec(), SpreadsheetKind::Xlsx),
        (b"Email,Club\n".to_vec(), SpreadsheetKind::Xls),
    ] {
        match open_spreadsheet(Cursor::new(bytes), kind, as_of()) {
            Err(FileError::Spreadsheet(_)) => {}
            Err(e) => panic!("{kind:?}: unexpected error {e}"),
            Ok(_) => panic!("{kind:?}: opened garbage"),
        }
    }
}

#[test]
fn open_dispatches_on_file_kind() {
    let kind = file_kind("ams/p-1/export.xlsx").unwrap();
    let roster = open(kind, Cursor::new(xlsx_fixture()), as_of()).unwrap();
    assert_eq!(roster.count(), 6);

    let kind = file_kind("ams/p-1/export.csv").unwrap();
    assert_eq!(kind, FileKind::Delimited);
    let mut roster = open(
        kind,
        Cursor::new(b"Email\na@example.com\n".to_vec()),
        as_of(),
    )
    .unwrap();
    assert_eq!(roster.by_ref().count(), 1);
    assert_eq!(roster.counts().members, 1);
    assert!(!roster.truncated());
    assert_eq!(roster.encoding_fallbacks(), 0);
}

#[test]
fn roster_detail_keeps_only_what_the_roster_needs_and_judges_rows_alike() {
    let open = |detail| {
        let rows = open_delimited(fixture("comma_crlf_bom.csv"), as_of())
            .unwrap()
            .with_detail(detail);
        rows.collect::<Vec<_>>()
    };
    let (full, lean) = (open(Detail::Full), open(Detail::Roster));
    let ana = member(&lean[0]);
    assert_eq!(ana.member_id.as_deref(), Some("1001"));
    assert_eq!(ana.email.as_str(), "ana.lopez@example.com");
    assert_eq!(ana.tier.as_deref(), Some("Gold Club"));
    assert_eq!(ana.status.as_deref(), Some("Active"));
    assert_eq!(ana.join_date, Some(date(2019, 3, 15)));
    assert_eq!(ana.birth_date, Some(date(1980, 7, 4)));
    for personal in [
        &ana.first_name,
        &ana.last_name,
        &ana.phone,
        &ana.wine_preference,
        &ana.address1,
        &ana.address2,
        &ana.city,
        &ana.state,
        &ana.zip,
        &ana.country,
    ] {
        assert_eq!(*personal, None);
    }
    assert_eq!(member(&full[0]).first_name.as_deref(), Some("Ana"));

    // Rejects (a bad birth date included) do not depend on the detail.
    let judged = |detail| {
        open_delimited(fixture("bad_rows.csv"), as_of())
            .unwrap()
            .with_detail(detail)
            .map(|o| match o {
                RowOutcome::Member(m) => format!("member {}", m.line),
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(judged(Detail::Full), judged(Detail::Roster));
}
