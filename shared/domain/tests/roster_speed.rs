//! Throughput check of the delimited roster parser (parse + validate), on a
//! generated 1M-row file of about 117 MB. Ignored by default; run with
//! `cargo test --release -p domain --test roster_speed -- --ignored --nocapture`.

use std::time::Instant;

use chrono::NaiveDate;
use domain::roster::{Detail, RowOutcome, open_delimited};

fn generate(rows: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows * 120);
    out.extend_from_slice(
        b"MemberID,Email,FirstName,LastName,Phone,ClubDescr,ClubStatus,JoinDate,QuitDate,Zip\r\n",
    );
    let tiers = ["Gold Club", "Silver Club", "Reserve", "Case Club"];
    let statuses = ["Active", "Active", "Active", "On Hold", "Cancelled"];
    for i in 0..rows {
        let line = format!(
            "{},member.number{}@example-winery.com,Firstname{},\"Lastname, {}\",707-555-{:04},{},{},{:02}/{:02}/20{:02},,{:05}\r\n",
            100_000 + i,
            i,
            i % 997,
            i % 1013,
            i % 10_000,
            tiers[i % tiers.len()],
            statuses[i % statuses.len()],
            1 + i % 12,
            1 + i % 28,
            10 + i % 15,
            i % 100_000,
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}

#[test]
#[ignore = "throughput measurement; run in release"]
fn parse_and_validate_throughput() {
    let data = generate(1_000_000);
    let as_of = NaiveDate::from_ymd_opt(2026, 1, 15).unwrap();
    let mb = data.len() as f64 / 1e6;
    for detail in [Detail::Full, Detail::Roster] {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let start = Instant::now();
            let mut rows = open_delimited(&data[..], as_of)
                .unwrap()
                .with_detail(detail);
            let mut members = 0u64;
            for o in rows.by_ref() {
                if let RowOutcome::Member(m) = o {
                    members += u64::from(m.email.as_str().len() > 3);
                }
            }
            let secs = start.elapsed().as_secs_f64();
            best = best.min(secs);
            assert_eq!(rows.counts().rows, 1_000_000);
            assert_eq!(members, 800_000);
            assert!(!rows.truncated());
        }
        println!(
            "{detail:?}: {mb:.1} MB in {best:.3} s = {:.0} MB/s",
            mb / best
        );
    }
}
