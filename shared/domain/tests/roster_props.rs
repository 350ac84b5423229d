//! Property tests of the delimited roster parser: garbage never panics, and
//! any roster a spreadsheet or AMS could write reads back as written.

use chrono::NaiveDate;
use domain::roster::{FileError, RowOutcome, open_delimited};
use encoding_rs::WINDOWS_1252;
use proptest::prelude::*;

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 15).unwrap()
}

/// Reads everything; checks the bookkeeping holds whatever the input.
fn drain(bytes: &[u8]) -> Result<Vec<RowOutcome>, FileError> {
    let mut rows = open_delimited(bytes, as_of())?;
    let out: Vec<RowOutcome> = rows.by_ref().collect();
    let c = rows.counts();
    assert_eq!(c.rows as usize, out.len());
    assert_eq!(c.rows, c.members + c.not_members + c.rejects);
    assert!(rows.next().is_none());
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = drain(&bytes);
    }

    #[test]
    fn arbitrary_rows_after_a_valid_header_never_panic(
        header in prop::sample::select(vec![
            &b"Email,Club,JoinDate,QuitDate,ClubStatus\r\n"[..],
            b"\xEF\xBB\xBFEmail;Club;BirthDate\n",
            b"\xFF\xFEE\0m\0a\0i\0l\0\t\0C\0l\0u\0b\0\n\0",
            b"Email|\"Club\"|Status\n",
        ]),
        body in prop::collection::vec(
            prop_oneof![
                4 => any::<u8>(),
                1 => prop::sample::select(vec![b',', b';', b'|', b'\t', b'"', b'\r', b'\n', b'@', b'.']),
            ],
            0..4096,
        ),
    ) {
        let bytes = [header, &body].concat();
        let out = drain(&bytes);
        prop_assert!(out.is_ok(), "a valid header opens: {:?}", out.err());
    }
}

/// A member row as an AMS would export it.
#[derive(Debug, Clone)]
struct Spec {
    member_id: Option<String>,
    email: String,
    first_name: String,
    last_name: String,
    tier: String,
    status: String,
    address1: String,
    join_date: Option<NaiveDate>,
    quit_date: Option<NaiveDate>,
    birth_date: Option<NaiveDate>,
}

const HEADER: [&str; 10] = [
    "Member Number",
    "EmailAddress",
    "First_Name",
    "LastName",
    "ClubDescr",
    "Status",
    "Address1",
    "SignupDate",
    "Cancel Date",
    "DOB",
];

fn any_date(from: i32, to: i32) -> impl Strategy<Value = NaiveDate> {
    (from..=to, 1u32..=12, 1u32..=31).prop_map(|(y, m, d)| {
        (0..4)
            .find_map(|back| NaiveDate::from_ymd_opt(y, m, d - back))
            .unwrap()
    })
}

/// A date as one of the accepted layouts, with or without a time part.
fn write_date(d: Option<NaiveDate>, layout: u8) -> String {
    let Some(d) = d else { return String::new() };
    let d = d.and_hms_opt(13, 45, 0).unwrap();
    match layout % 6 {
        0 => d.format("%Y-%m-%d").to_string(),
        1 => d.format("%m/%d/%Y").to_string(),
        2 => d.format("%-m/%-d/%Y %-I:%M %p").to_string(),
        3 => d.format("%d.%m.%Y").to_string(),
        4 => d.format("%Y-%m-%d %H:%M:%S").to_string(),
        _ => d.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }
}

fn spec(text: &'static str) -> impl Strategy<Value = Spec> {
    (
        prop::option::of("[A-Za-z0-9-]{1,8}"),
        "[a-z0-9._+-]{1,12}@[a-z0-9-]{1,8}\\.[a-z]{2,4}",
        (text, text, text, text),
        prop::sample::select(vec!["Active", "On Hold", "", "Gold Member"]),
        (
            prop::option::of(any_date(1990, 2026)),
            prop::option::of(any_date(2026, 2040).prop_filter("after as_of", |d| *d > as_of())),
            prop::option::of(any_date(1920, 2005)),
        ),
    )
        .prop_map(
            |(member_id, email, (first, last, tier, addr), status, (join, quit, birth))| Spec {
                member_id,
                email,
                first_name: first,
                last_name: last,
                tier,
                status: status.to_string(),
                address1: addr,
                join_date: join,
                quit_date: quit,
                birth_date: birth,
            },
        )
}

/// Writes the rows as the chosen dialect would.
fn write_file(
    rows: &[Spec],
    delimiter: u8,
    crlf: bool,
    always_quote: bool,
    layout: u8,
    upper_email: bool,
) -> String {
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(if crlf {
            csv::Terminator::CRLF
        } else {
            csv::Terminator::Any(b'\n')
        })
        .quote_style(if always_quote {
            csv::QuoteStyle::Always
        } else {
            csv::QuoteStyle::Necessary
        })
        .from_writer(Vec::new());
    w.write_record(HEADER).unwrap();
    for (i, r) in rows.iter().enumerate() {
        let email = if upper_email {
            r.email.to_uppercase()
        } else {
            r.email.clone()
        };
        let l = layout.wrapping_add(i as u8);
        w.write_record([
            r.member_id.clone().unwrap_or_default(),
            email,
            r.first_name.clone(),
            r.last_name.clone(),
            r.tier.clone(),
            r.status.clone(),
            r.address1.clone(),
            write_date(r.join_date, l),
            write_date(r.quit_date, l.wrapping_add(1)),
            write_date(r.birth_date, l.wrapping_add(2)),
        ])
        .unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

fn expected(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|t| !t.is_empty())
}

/// Parses `bytes` and checks each row reads back as `rows` describes.
fn check_round_trip(bytes: &[u8], rows: &[Spec], delimiter: u8) -> Result<(), TestCaseError> {
    let mut parsed = open_delimited(bytes, as_of()).unwrap();
    let out: Vec<RowOutcome> = parsed.by_ref().collect();
    prop_assert!(!parsed.truncated());
    prop_assert_eq!(parsed.delimiter(), delimiter);
    prop_assert_eq!(out.len(), rows.len());
    let mut prev_line = 1;
    for (o, want) in out.iter().zip(rows) {
        let RowOutcome::Member(got) = o else {
            return Err(TestCaseError::fail(format!("not a member: {o:?}")));
        };
        prop_assert!(got.line > prev_line);
        prev_line = got.line;
        prop_assert_eq!(got.member_id.as_deref(), want.member_id.as_deref());
        prop_assert_eq!(got.email.as_str(), want.email.as_str());
        prop_assert_eq!(got.first_name.as_deref(), expected(&want.first_name));
        prop_assert_eq!(got.last_name.as_deref(), expected(&want.last_name));
        prop_assert_eq!(got.tier.as_deref(), expected(&want.tier));
        prop_assert_eq!(got.status.as_deref(), expected(&want.status));
        prop_assert_eq!(got.address1.as_deref(), expected(&want.address1));
        prop_assert_eq!(got.join_date, want.join_date);
        prop_assert_eq!(got.quit_date, want.quit_date);
        prop_assert_eq!(got.birth_date, want.birth_date);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_rows_round_trip(
        rows in prop::collection::vec(spec("[\\PC\r\n\t,;|\"]{0,12}"), 1..25),
        delimiter in prop::sample::select(vec![b',', b';', b'\t', b'|']),
        crlf in any::<bool>(),
        always_quote in any::<bool>(),
        bom in any::<bool>(),
        final_newline in any::<bool>(),
        layout in any::<u8>(),
        upper_email in any::<bool>(),
    ) {
        let mut text = write_file(&rows, delimiter, crlf, always_quote, layout, upper_email);
        if !final_newline {
            let cut = text.trim_end_matches(['\r', '\n']).len();
            text.truncate(cut);
        }
        let mut bytes = if bom { b"\xEF\xBB\xBF".to_vec() } else { Vec::new() };
        bytes.extend_from_slice(text.as_bytes());
        check_round_trip(&bytes, &rows, delimiter)?;
    }

    #[test]
    fn windows_1252_rows_round_trip(
        rows in prop::collection::vec(spec("[A-Za-z äöüÄÖÜßéèàçñ,;'\"\n-]{0,12}"), 1..25),
        delimiter in prop::sample::select(vec![b',', b';', b'\t', b'|']),
        layout in any::<u8>(),
    ) {
        let text = write_file(&rows, delimiter, true, false, layout, false);
        let (bytes, _, unmappable) = WINDOWS_1252.encode(&text);
        prop_assert!(!unmappable);
        check_round_trip(&bytes, &rows, delimiter)?;
    }
}
