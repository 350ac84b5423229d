//! Roster imports under generated faults: each case is a random sequence
//! of deliveries to one property — full files, duplicates, older files
//! arriving late, truncated, empty and header-only files, mass drops,
//! hostile spreadsheets (a cell at `XFD1048576`, `A1:Z1000000`, zip bombs)
//! and imports that crash at a random write — with a reader looking members up
//! throughout. At every moment exactly one whole roster (or none before the
//! first) is visible; every outcome is the one the rules give.
//!
//! 200 cases on SQLite and 10 on DynamoDB (moto) by default;
//! `GUESTHUB_LONG=1` runs 2,000 and 50. The summary goes to stdout.
//! `GUESTHUB_SEED=<n>` replays a run; `GUESTHUB_TRACE_CASE=<case>` prints
//! that case's deliveries and outcomes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ams_import::{ImportRequest, Input, import};
use chrono::{DateTime, Duration, Utc};
use domain::ports::PropertyStore;
use domain::roster::import::{ImportSource, ImportStatus};
use domain::roster::store::RosterStore;
use domain::roster::{FileKind, SpreadsheetKind};
use domain::{Email, PropertyId};
use platform::Store;
use platform::store::faults::{FaultPlan, FaultyItems};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tests::{Backend, fresh_store};

fn long() -> bool {
    std::env::var("GUESTHUB_LONG").is_ok_and(|v| v == "1")
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-01T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn email(g: u32, i: u32) -> String {
    format!("g{g}m{i}@x.com")
}

/// One delivery as the AMS would make it.
#[derive(Clone)]
struct Delivery {
    name: String,
    etag: String,
    at: DateTime<Utc>,
    body: String,
    /// The generation it carries and its member count (0: none usable).
    generation: u32,
    members: u32,
    /// Ends mid-row.
    truncated: bool,
    /// Its import finished (a crashed one is delivered again as new).
    completed: bool,
    /// A hostile `.xlsx` instead of the body: rejected.
    sheet: Option<Vec<u8>>,
}

fn full(g: u32, n: u32, at: DateTime<Utc>) -> Delivery {
    // Every generation holds the probe, with its own tier: one lookup of
    // it tells which roster answered, atomically.
    let mut body = format!("Email,ClubDescr,FirstName\r\nprobe@x.com,G{g},Probe\r\n");
    for i in 0..n {
        body.push_str(&format!("{},Gold,Name{i}\r\n", email(g, i)));
    }
    Delivery {
        name: format!("f{g}.csv"),
        etag: format!("e{g}"),
        at,
        body,
        generation: g,
        members: n + 1,
        truncated: false,
        completed: true,
        sheet: None,
    }
}

/// What the model expects of a delivery, given the active roster.
fn expected(d: &Delivery, active: Option<(u32, u32, DateTime<Utc>)>) -> ImportStatus {
    if let Some((_, _, at)) = active
        && d.at < at
    {
        return ImportStatus::Skipped;
    }
    if d.sheet.is_some() {
        return ImportStatus::Rejected;
    }
    if d.truncated || d.members == 0 {
        return ImportStatus::Held;
    }
    if let Some((_, n, _)) = active {
        let dropped = n.saturating_sub(d.members);
        if n > 0 && dropped * 100 >= n * 50 {
            return ImportStatus::Held;
        }
    }
    ImportStatus::Applied
}

/// The generation visible now, checked whole: its first and last members
/// are there, the first member of every other generation is not.
async fn visible(
    store: &Store,
    p: &PropertyId,
    gens: &[(u32, u32)],
) -> Result<Option<u32>, String> {
    let mut seen = None;
    for (g, n) in gens {
        let first = store
            .lookup_member(p, &Email::parse(&email(*g, 0)).unwrap())
            .await
            .map_err(|e| e.to_string())?
            .is_some();
        if !first {
            continue;
        }
        if let Some(other) = seen {
            return Err(format!("generations {other} and {g} both visible"));
        }
        let last = store
            .lookup_member(p, &Email::parse(&email(*g, n - 2)).unwrap())
            .await
            .map_err(|e| e.to_string())?
            .is_some();
        if !last {
            return Err(format!("generation {g} visible in part"));
        }
        seen = Some(*g);
    }
    Ok(seen)
}

#[derive(Default)]
struct Tally {
    cases: u64,
    deliveries: u64,
    applied: u64,
    held: u64,
    skipped: u64,
    rejected: u64,
    duplicates: u64,
    crashes: u64,
    reads: Arc<AtomicU64>,
    failures: Vec<String>,
}

async fn one_case(
    backend_store: &tests::TestStore,
    case: u32,
    rng: &mut StdRng,
    tally: &mut Tally,
    hostile: &[(&'static str, Vec<u8>, &'static str)],
) {
    let store = &backend_store.store;
    let id = format!("p{case}");
    guesthub::admin::add_property(store, &id, "P", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let p = PropertyId::parse(&id).unwrap();
    let property = store.property(&p).await.unwrap().unwrap();
    let mut gens: Vec<(u32, u32)> = Vec::new();
    let mut active: Option<(u32, u32, DateTime<Utc>)> = None;
    let mut sent: Vec<Delivery> = Vec::new();
    let fail = |tally: &mut Tally, why: String| tally.failures.push(format!("case {case}: {why}"));

    // A reader throughout: each lookup of the probe is answered by exactly
    // one roster (one tier), and once a roster is visible one always is.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, p, stop, reads) = (store.clone(), p.clone(), stop.clone(), tally.reads.clone());
        tokio::spawn(async move {
            let probe = Email::parse("probe@x.com").unwrap();
            let mut seen_any = false;
            while !stop.load(Ordering::SeqCst) {
                let found = match store.lookup_member(&p, &probe).await {
                    Ok(f) => f,
                    Err(e) => return Some(e.to_string()),
                };
                reads.fetch_add(1, Ordering::Relaxed);
                match found {
                    Some(m) if m.tiers.len() != 1 => {
                        return Some(format!("the probe has tiers {:?}: a mix", m.tiers));
                    }
                    Some(_) => seen_any = true,
                    None if seen_any => return Some("no roster after one was active".into()),
                    None => {}
                }
                tokio::task::yield_now().await;
            }
            None
        })
    };

    let steps = rng.random_range(3..=7);
    for step in 0..steps {
        let g = step + 1;
        // Event time: mostly later than what came before, sometimes older.
        let at = t0() + Duration::minutes(i64::from(step) * 10 + rng.random_range(-25..=5));
        let current = active.map_or(0, |(_, n, _)| n);
        let mut d = match rng.random_range(0..10) {
            0 if !sent.is_empty() => {
                tally.duplicates += 1;
                let mut again = sent[rng.random_range(0..sent.len())].clone();
                again.completed = true;
                again
            }
            1 => {
                let mut d = full(g, rng.random_range(5..60), at);
                // Cut the last row after its email: fewer fields than the header.
                let cut = d.body.trim_end().rfind(',').unwrap();
                let line_start = d.body[..cut].rfind('\n').unwrap() + 1;
                let first_comma = line_start + d.body[line_start..].find(',').unwrap();
                d.body.truncate(first_comma);
                d.truncated = true;
                d
            }
            2 => {
                let mut d = full(g, 2, at);
                d.body = if rng.random_bool(0.5) {
                    String::new()
                } else {
                    "Email,ClubDescr,FirstName\r\n".into()
                };
                d.members = 0;
                d
            }
            3 if current > 6 => full(g, rng.random_range(1..=current / 2 - 1), at),
            4 => {
                let (name, bytes, _) = &hostile[rng.random_range(0..hostile.len())];
                let mut d = full(g, 2, at);
                d.name = format!("{g}-{name}");
                d.sheet = Some(bytes.clone());
                d.members = 0;
                d
            }
            _ => full(g, rng.random_range(current.max(5)..current.max(5) + 60), at),
        };
        if d.generation == g && !gens.iter().any(|(x, _)| *x == g) && d.members > 0 {
            gens.push((g, d.members));
        }
        tally.deliveries += 1;
        let crash = rng.random_bool(0.25);
        let items = if crash {
            tally.crashes += 1;
            let faulty = FaultyItems::new(
                backend_store.items.clone(),
                FaultPlan {
                    fail_writes_from: Some(rng.random_range(1..=8)),
                    ..Default::default()
                },
            );
            Store::with_clock(Arc::new(faulty), backend_store.clock.clone())
        } else {
            store.clone()
        };
        let duplicate = sent.iter().any(|s| s.etag == d.etag && s.completed);
        let spool = tempfile::tempdir().unwrap();
        let (kind, input) = match &d.sheet {
            Some(bytes) => {
                let path = spool.path().join(&d.name);
                std::fs::write(&path, bytes).unwrap();
                (
                    FileKind::Spreadsheet(SpreadsheetKind::Xlsx),
                    Input::File(path),
                )
            }
            None => (
                FileKind::Delimited,
                Input::Stream(Box::new(std::io::Cursor::new(d.body.clone().into_bytes()))),
            ),
        };
        let req = ImportRequest {
            property: property.clone(),
            source: ImportSource {
                key: format!("ams/{id}/{}", d.name),
                etag: d.etag.clone(),
                sequencer: None,
                arrived_at: d.at,
            },
            kind,
            input,
        };
        let result = import(&items, req).await;
        if std::env::var("GUESTHUB_TRACE_CASE").is_ok_and(|c| c == case.to_string()) {
            eprintln!(
                "case {case} step {step}: gen {} members {} at {} etag {} dup {duplicate} crash {crash} → {:?}",
                d.generation,
                d.members,
                d.at,
                d.etag,
                result
                    .as_ref()
                    .map(|r| (r.status, r.reason.clone()))
                    .map_err(|e| e.to_string())
            );
        }
        let before = active.map(|(g, ..)| g);
        let now = match visible(store, &p, &gens).await {
            Ok(v) => v,
            Err(e) => {
                fail(tally, e);
                break;
            }
        };
        match result {
            Ok(report) if !duplicate => {
                let want = expected(&d, active);
                if report.status != want {
                    fail(
                        tally,
                        format!("step {step}: {:?}, expected {want:?}", report.status),
                    );
                }
                match report.status {
                    ImportStatus::Applied => {
                        tally.applied += 1;
                        active = Some((d.generation, d.members, d.at));
                    }
                    ImportStatus::Held => tally.held += 1,
                    ImportStatus::Skipped => tally.skipped += 1,
                    ImportStatus::Rejected => tally.rejected += 1,
                }
                let want_visible = active.map(|(g, ..)| g);
                if now != want_visible {
                    fail(
                        tally,
                        format!("step {step}: visible {now:?}, expected {want_visible:?}"),
                    );
                }
            }
            // A repeat delivery changes nothing.
            Ok(_) => {
                if now != before {
                    fail(
                        tally,
                        format!("step {step}: a repeat changed {before:?} to {now:?}"),
                    );
                }
            }
            // A crash: the old roster, or the new one whole if the flip
            // happened before the failure — nothing else.
            Err(_) => {
                if now != before {
                    if now == Some(d.generation) && expected(&d, active) == ImportStatus::Applied {
                        active = Some((d.generation, d.members, d.at));
                    } else {
                        fail(
                            tally,
                            format!("step {step}: after a crash {now:?} (was {before:?})"),
                        );
                    }
                }
                d.completed = false;
            }
        }
        if !duplicate {
            sent.retain(|s| s.etag != d.etag);
            sent.push(d);
        }
    }
    stop.store(true, Ordering::SeqCst);
    if let Some(e) = reader.await.unwrap() {
        fail(tally, format!("reader: {e}"));
    }
    tally.cases += 1;
}

async fn generated_cases(b: Backend) {
    let cases = match (b, long()) {
        (Backend::Sqlite, false) => 200,
        (Backend::Sqlite, true) => 2_000,
        (Backend::Dynamodb, false) => 10,
        (Backend::Dynamodb, true) => 50,
    };
    let seed: u64 = std::env::var("GUESTHUB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let t = fresh_store(b).await;
    let mut tally = Tally::default();
    let hostile = tests::sheets::hostile();
    let started = std::time::Instant::now();
    for case in 0..cases {
        one_case(&t, case, &mut rng, &mut tally, &hostile).await;
    }
    println!("\nroster imports under faults ({b:?}, seed {seed})");
    for (k, v) in [
        ("cases", tally.cases),
        ("deliveries", tally.deliveries),
        ("applied", tally.applied),
        ("held", tally.held),
        ("skipped (older)", tally.skipped),
        ("rejected (hostile)", tally.rejected),
        ("repeat deliveries", tally.duplicates),
        ("crashed imports", tally.crashes),
        ("concurrent lookups", tally.reads.load(Ordering::Relaxed)),
        ("failures", tally.failures.len() as u64),
    ] {
        println!("{k:<22} {v:>10}");
    }
    println!("{:<22} {:>10.1?}", "elapsed", started.elapsed());
    assert!(
        tally.failures.is_empty(),
        "seed {seed}: {:#?}",
        &tally.failures[..tally.failures.len().min(10)]
    );
}

tests::both_stores! {
    roster_under_generated_faults => generated_cases;
}
