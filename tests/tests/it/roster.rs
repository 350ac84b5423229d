//! Club rosters end to end on both stores: drop folder and command-line
//! imports, recognition, wipe & replace, duplicate and out-of-order
//! deliveries, held files and approval, crash safety, readers during an
//! import, the club routes, and the S3 path on moto.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ams_import::{ImportRequest, Input, import};
use chrono::{DateTime, Duration, Utc};
use domain::ports::PropertyStore;
use domain::roster::FileKind;
use domain::roster::import::{ImportSource, ImportStatus};
use domain::roster::store::RosterStore;
use domain::{Email, PropertyId};
use http::StatusCode;
use platform::Store;
use platform::store::faults::{FaultPlan, FaultyItems};
use serde_json::json;
use tests::{Backend, both_stores, call, fresh_store};

fn castle() -> PropertyId {
    PropertyId::parse("castle").unwrap()
}

async fn setup(store: &Store) {
    guesthub::admin::add_property(
        store,
        "castle",
        "Castle Winery",
        "America/Los_Angeles",
        "USD",
    )
    .await
    .unwrap();
    guesthub::admin::add_property(store, "abbey", "Abbey", "Europe/Vienna", "EUR")
        .await
        .unwrap();
}

fn csv(rows: &[(&str, &str, &str)]) -> String {
    let mut s = String::from("MemberID,Email,FirstName,ClubDescr,ClubStatus,JoinDate\r\n");
    for (i, (email, tier, status)) in rows.iter().enumerate() {
        s.push_str(&format!(
            "M{i},{email},Name{i},{tier},{status},2024-03-0{}\r\n",
            1 + i % 9
        ));
    }
    s
}

fn source(name: &str, etag: &str, at: DateTime<Utc>) -> ImportSource {
    ImportSource {
        key: format!("ams/castle/{name}"),
        etag: etag.into(),
        sequencer: None,
        arrived_at: at,
    }
}

async fn run(
    store: &Store,
    name: &str,
    etag: &str,
    at: DateTime<Utc>,
    body: String,
) -> Result<domain::roster::import::ImportReport, ams_import::ImportError> {
    let property = store.property(&castle()).await.unwrap().unwrap();
    let req = ImportRequest {
        property,
        source: source(name, etag, at),
        kind: FileKind::Delimited,
        input: Input::Stream(Box::new(std::io::Cursor::new(body.into_bytes()))),
    };
    import(store, req).await
}

async fn member(store: &Store, email: &str) -> Option<Vec<String>> {
    store
        .lookup_member(&castle(), &Email::parse(email).unwrap())
        .await
        .unwrap()
        .map(|m| {
            let mut t = m.tiers;
            t.sort();
            t
        })
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-01T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

async fn recognition_and_wipe_replace(b: Backend) {
    let t = fresh_store(b).await;
    setup(&t.store).await;
    let first = csv(&[
        ("Ana@Example.com", "Gold", "Active"),
        ("ana@example.com", "Wine Club", "Active"),
        ("ANA@example.com", "Gold", "Active"),
        ("bo@example.com", "Silver", "Active"),
        ("cy@example.com", "Gold", "Cancelled"),
    ]);
    let r = run(&t.store, "m1.csv", "e1", t0(), first).await.unwrap();
    assert_eq!(
        (r.status, r.rows, r.members, r.former_members),
        (ImportStatus::Applied, 5, 2, 1)
    );
    // Ana's Gold row twice counts once.
    assert_eq!(r.tier_counts.get("Gold"), Some(&1));
    assert_eq!(r.tier_counts.get("Wine Club"), Some(&1));
    assert_eq!(
        member(&t.store, "  ANA@example.COM ").await,
        Some(vec!["Gold".into(), "Wine Club".into()])
    );
    assert_eq!(
        member(&t.store, "cy@example.com").await,
        None,
        "cancelled rows are not members"
    );
    // The next file drops bo and adds dee: bo is no longer recognised.
    let second = csv(&[
        ("ana@example.com", "Gold", "Active"),
        ("dee@example.com", "Gold", "Active"),
    ]);
    let r = run(&t.store, "m2.csv", "e2", t0() + Duration::hours(1), second)
        .await
        .unwrap();
    assert_eq!(r.status, ImportStatus::Applied, "{:?}", r.reason);
    assert_eq!(member(&t.store, "bo@example.com").await, None);
    assert_eq!(
        member(&t.store, "ana@example.com").await,
        Some(vec!["Gold".into()])
    );
    assert!(member(&t.store, "dee@example.com").await.is_some());
}

async fn duplicates_and_order(b: Backend) {
    let t = fresh_store(b).await;
    setup(&t.store).await;
    let body = csv(&[("a@x.com", "Gold", "Active"), ("b@x.com", "Gold", "Active")]);
    let r1 = run(
        &t.store,
        "members_20261101T0300.csv",
        "e1",
        t0(),
        body.clone(),
    )
    .await
    .unwrap();
    // The same object delivered again: the same import, nothing new.
    let r2 = run(
        &t.store,
        "members_20261101T0300.csv",
        "e1",
        t0(),
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r1.id, r2.id);
    assert_eq!(
        t.store.import_reports(&castle(), 10).await.unwrap().len(),
        1
    );
    // A newer export, then an older one arriving late (by its name): skipped.
    let newer = csv(&[
        ("a@x.com", "Gold", "Active"),
        ("b@x.com", "Gold", "Active"),
        ("c@x.com", "Gold", "Active"),
    ]);
    let r3 = run(&t.store, "members_20261102T0300.csv", "e3", t0(), newer)
        .await
        .unwrap();
    assert_eq!(r3.status, ImportStatus::Applied);
    let late = csv(&[
        ("z@x.com", "Gold", "Active"),
        ("y@x.com", "Gold", "Active"),
        ("x@x.com", "Gold", "Active"),
    ]);
    let r4 = run(
        &t.store,
        "members_20261031T0300.csv",
        "e4",
        t0() + Duration::days(3),
        late,
    )
    .await
    .unwrap();
    assert_eq!(r4.status, ImportStatus::Skipped);
    assert!(member(&t.store, "c@x.com").await.is_some());
    assert!(member(&t.store, "z@x.com").await.is_none());
    let list = t.store.import_reports(&castle(), 10).await.unwrap();
    assert_eq!(
        list.iter().map(|r| r.status).collect::<Vec<_>>(),
        [
            ImportStatus::Skipped,
            ImportStatus::Applied,
            ImportStatus::Applied
        ]
    );
}

async fn held_files_keep_the_old_roster(b: Backend) {
    let t = fresh_store(b).await;
    setup(&t.store).await;
    let rows: Vec<(String, &str, &str)> = (0..10)
        .map(|i| (format!("m{i}@x.com"), "Gold", "Active"))
        .collect();
    let refs: Vec<(&str, &str, &str)> = rows.iter().map(|(e, t, s)| (e.as_str(), *t, *s)).collect();
    run(&t.store, "base.csv", "e0", t0(), csv(&refs))
        .await
        .unwrap();
    let header_only = "MemberID,Email,ClubDescr\r\n".to_owned();
    let truncated = format!("{}\"m1@x.com", csv(&refs[..9]));
    let mass_drop = csv(&refs[..4]);
    let mut held = Vec::new();
    for (i, body) in [String::new(), header_only, truncated, mass_drop]
        .into_iter()
        .enumerate()
    {
        let r = run(
            &t.store,
            &format!("h{i}.csv"),
            &format!("h{i}"),
            t0() + Duration::minutes(i as i64 + 1),
            body,
        )
        .await
        .unwrap();
        assert_eq!(r.status, ImportStatus::Held, "case {i}: {:?}", r.reason);
        assert!(
            member(&t.store, "m9@x.com").await.is_some(),
            "case {i}: the old roster stays active"
        );
        held.push(r);
    }
    // A missing email column is rejected outright.
    let r = run(
        &t.store,
        "bad.csv",
        "bad",
        t0() + Duration::minutes(9),
        "MemberID,Name\r\n1,Ana\r\n".into(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, ImportStatus::Rejected);
    assert!(r.reason.unwrap().contains("email"));
    // An admin approves the mass drop: it applies.
    let approved = domain::roster::service::approve(&t.store, &castle(), &held[3].id, Utc::now())
        .await
        .unwrap();
    assert_eq!(approved.status, ImportStatus::Applied);
    assert!(member(&t.store, "m9@x.com").await.is_none());
    assert!(member(&t.store, "m3@x.com").await.is_some());
    // An older held file can no longer be approved.
    let err = domain::roster::service::approve(&t.store, &castle(), &held[0].id, Utc::now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, domain::roster::service::RosterError::Superseded),
        "{err:?}"
    );
}

async fn crash_in_write_phase_keeps_old_roster(b: Backend) {
    let t = fresh_store(b).await;
    setup(&t.store).await;
    run(
        &t.store,
        "base.csv",
        "base",
        t0(),
        csv(&[
            ("old@x.com", "Gold", "Active"),
            ("keep@x.com", "Gold", "Active"),
        ]),
    )
    .await
    .unwrap();
    let mut body = String::from("Email,ClubDescr\n");
    for i in 0..5_000 {
        body.push_str(&format!("new{i}@x.com,Gold\n"));
    }
    body.push_str("keep@x.com,Gold\n");
    // Fail at some write of the import (generation chunks, the flip).
    for fail_at in [1, 2, 3, 4, 5] {
        let faulty = Arc::new(FaultyItems::new(
            t.items.clone(),
            FaultPlan {
                fail_writes_from: Some(fail_at),
                ..Default::default()
            },
        ));
        let store = Store::with_clock(faulty.clone(), t.clock.clone());
        let r = run(
            &store,
            "new.csv",
            "new",
            t0() + Duration::hours(1),
            body.clone(),
        )
        .await;
        assert!(
            r.is_err(),
            "write {fail_at} failed, so the import must fail"
        );
        assert!(
            member(&t.store, "old@x.com").await.is_some(),
            "old roster still active after a crash at write {fail_at}"
        );
        assert!(member(&t.store, "new1@x.com").await.is_none());
    }
    // The retry of the same delivery completes.
    let r = run(&t.store, "new.csv", "new", t0() + Duration::hours(1), body)
        .await
        .unwrap();
    assert_eq!((r.status, r.members), (ImportStatus::Applied, 5_001));
    assert!(member(&t.store, "old@x.com").await.is_none());
    assert!(member(&t.store, "new4999@x.com").await.is_some());
}

/// Readers see the old roster or the new one, never a mix or neither.
async fn readers_during_import(b: Backend) {
    let t = fresh_store(b).await;
    setup(&t.store).await;
    let rows = if b == Backend::Sqlite {
        100_000
    } else {
        10_000
    };
    let mut old = String::from("Email,ClubDescr\n");
    old.push_str("only-old@x.com,Gold\nboth@x.com,Gold\n");
    for i in 0..rows / 2 {
        old.push_str(&format!("o{i}@x.com,Silver\n"));
    }
    run(&t.store, "old.csv", "old", t0(), old).await.unwrap();
    let mut new = String::from("Email,ClubDescr\n");
    new.push_str("only-new@x.com,Gold\nboth@x.com,Platinum\n");
    for i in 0..rows {
        new.push_str(&format!("n{i}@x.com,Silver\n"));
    }
    let done = Arc::new(AtomicBool::new(false));
    let (seen_old, seen_new) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (store, done, so, sn) = (
                t.store.clone(),
                done.clone(),
                seen_old.clone(),
                seen_new.clone(),
            );
            tokio::spawn(async move {
                while !done.load(Ordering::SeqCst) {
                    let o = member(&store, "only-old@x.com").await.is_some();
                    let n = member(&store, "only-new@x.com").await.is_some();
                    let both = member(&store, "both@x.com").await.unwrap();
                    // Each answer on its own is whole: `both` has Gold in the
                    // old roster and Platinum in the new, never both tiers.
                    assert_eq!(both.len(), 1, "a mix of two rosters: {both:?}");
                    // Old-then-new between two reads is allowed (the flip
                    // happened in between); neither would be a gap.
                    assert!(o || n, "neither roster visible");
                    if o && !n {
                        so.fetch_add(1, Ordering::Relaxed);
                    }
                    if n && !o {
                        sn.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    // The readers are under way before the import starts.
    wait_for(&seen_old, &readers).await;
    let r = run(&t.store, "new.csv", "new", t0() + Duration::hours(1), new)
        .await
        .unwrap();
    assert_eq!(r.status, ImportStatus::Applied);
    // Let readers see the new roster too.
    wait_for(&seen_new, &readers).await;
    done.store(true, Ordering::SeqCst);
    for r in readers {
        r.await.unwrap();
    }
}

/// Waits until `counter` moves; fails fast if a reader died (its assertion).
async fn wait_for(counter: &AtomicU64, readers: &[tokio::task::JoinHandle<()>]) {
    let started = std::time::Instant::now();
    while counter.load(Ordering::Relaxed) == 0 {
        assert!(!readers.iter().any(|r| r.is_finished()), "a reader failed");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "readers made no progress"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

async fn drop_folder_and_club_routes(b: Backend) {
    let t = fresh_store(b).await;
    setup(&t.store).await;
    let (_, reader) = guesthub::admin::add_partner(
        &t.store,
        "Booking",
        &["castle".into()],
        &["club:read".into()],
    )
    .await
    .unwrap();
    let (_, admin) = guesthub::admin::add_partner(
        &t.store,
        "Office",
        &["castle".into()],
        &["club:read".into(), "club:admin".into()],
    )
    .await
    .unwrap();
    let (_, abbey) =
        guesthub::admin::add_partner(&t.store, "Abbey", &["abbey".into()], &["club:read".into()])
            .await
            .unwrap();
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("drop/ams/castle");
    std::fs::create_dir_all(&dir).unwrap();
    // Written under a temporary name, then renamed: only the final name counts.
    std::fs::write(
        dir.join(".members.csv.tmp"),
        csv(&[
            ("ana@example.com", "Gold", "Active"),
            ("bo@example.com", "Silver", "Active"),
        ]),
    )
    .unwrap();
    std::fs::rename(dir.join(".members.csv.tmp"), dir.join("members.csv")).unwrap();
    let reports = guesthub::roster::drain_drop_folder(&t.store, data.path()).await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].status, ImportStatus::Applied);
    assert!(!dir.join("members.csv").exists(), "moved to processed/");
    assert!(
        data.path()
            .join("drop/processed/castle")
            .read_dir()
            .unwrap()
            .count()
            == 1
    );
    // Raw files do not outlive their use: deleted from processed/ and
    // failed/ once older than the retention (30 days by default).
    let failed = data.path().join("drop/failed/castle");
    std::fs::create_dir_all(&failed).unwrap();
    std::fs::write(failed.join("broken.csv"), "x").unwrap();
    let month = std::time::Duration::from_secs(30 * 86_400);
    let now = std::time::SystemTime::now();
    assert_eq!(
        guesthub::roster::prune_drop_folder(data.path(), month, now),
        0
    );
    let later = now + month + std::time::Duration::from_secs(60);
    assert_eq!(
        guesthub::roster::prune_drop_folder(data.path(), month, later),
        2
    );
    for bucket in ["processed", "failed"] {
        let left = data.path().join("drop").join(bucket).join("castle");
        assert_eq!(left.read_dir().unwrap().count(), 0, "{bucket}");
    }

    let app = guesthub::app::router(t.store.clone(), 64 * 1024);
    let r = call(
        &app,
        "GET",
        "/v1/properties/castle/club-members/%20ANA@Example.com",
        Some(&reader),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["member"], true);
    assert_eq!(r.json()["tiers"], json!(["Gold"]));
    assert_eq!(r.json()["member_id"], "M0");
    let r = call(
        &app,
        "GET",
        "/v1/properties/castle/club-members/nobody@example.com",
        Some(&reader),
        &[],
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.json()["member"].clone()),
        (StatusCode::OK, json!(false))
    );
    let r = call(
        &app,
        "GET",
        "/v1/properties/castle/club-members/not-an-email",
        Some(&reader),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Tenancy and scopes.
    let r = call(
        &app,
        "GET",
        "/v1/properties/castle/club-members/ana@example.com",
        Some(&abbey),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        &app,
        "PUT",
        "/v1/properties/castle/club-tiers/Gold",
        Some(&reader),
        &[],
        Some(r#"{"enabled":true}"#.into()),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Tiers: seen in the roster, enabled by the admin.
    let r = call(
        &app,
        "PUT",
        "/v1/properties/castle/club-tiers/gold",
        Some(&admin),
        &[],
        Some(r#"{"enabled":true}"#.into()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(
        &app,
        "GET",
        "/v1/properties/castle/club-tiers",
        Some(&reader),
        &[],
        None,
    )
    .await;
    assert_eq!(
        r.json()["tiers"],
        json!([{"tier": "Gold", "members": 1, "enabled": true}, {"tier": "Silver", "members": 1, "enabled": false}])
    );
    // Imports list, then a held file approved over HTTP.
    std::fs::write(dir.join("empty.csv"), "Email,ClubDescr\n").unwrap();
    let held = guesthub::roster::drain_drop_folder(&t.store, data.path()).await;
    assert_eq!(held[0].status, ImportStatus::Held);
    let r = call(
        &app,
        "GET",
        "/v1/properties/castle/roster-imports",
        Some(&reader),
        &[],
        None,
    )
    .await;
    let list = r.json()["imports"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["status"], "held");
    assert!(
        !r.body.contains("ana@example.com"),
        "reports carry no personal data"
    );
    let uri = format!(
        "/v1/properties/castle/roster-imports/{}/approve",
        held[0].id
    );
    assert_eq!(
        call(&app, "POST", &uri, Some(&reader), &[], None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let r = call(&app, "POST", &uri, Some(&admin), &[], None).await;
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (StatusCode::OK, json!("applied"))
    );
    let r = call(&app, "POST", &uri, Some(&admin), &[], None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "import_not_held")
    );
    let r = call(
        &app,
        "GET",
        "/v1/properties/castle/club-members/ana@example.com",
        Some(&reader),
        &[],
        None,
    )
    .await;
    assert_eq!(
        r.json()["member"],
        false,
        "the approved empty roster replaced the old one"
    );
}

/// Hostile spreadsheets dropped beside a good one: each is rejected with its
/// reason and moved to `failed/`, nothing is allocated for what they
/// declare (the test process would abort), and the good file still applies.
async fn hostile_spreadsheets_in_the_drop_folder(b: Backend) {
    let t = fresh_store(b).await;
    setup(&t.store).await;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("drop/ams/castle");
    std::fs::create_dir_all(&dir).unwrap();
    let hostile = tests::sheets::hostile();
    for (name, bytes, _) in &hostile {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    std::fs::write(
        dir.join("zz-good.xlsx"),
        tests::sheets::roster(&["ana@example.com".into(), "bo@example.com".into()]),
    )
    .unwrap();
    let reports = guesthub::roster::drain_drop_folder(&t.store, data.path()).await;
    assert_eq!(reports.len(), hostile.len() + 1);
    for (name, _, why) in &hostile {
        let r = reports.iter().find(|r| r.file == *name).unwrap();
        assert_eq!(r.status, ImportStatus::Rejected, "{name}");
        let reason = r.reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains("the spreadsheet is refused") && reason.contains(why),
            "{name}: {reason}"
        );
        assert_eq!((r.rows, r.members), (0, 0), "{name}");
    }
    let good = reports.iter().find(|r| r.file == "zz-good.xlsx").unwrap();
    assert_eq!((good.status, good.members), (ImportStatus::Applied, 2));
    assert_eq!(
        member(&t.store, "bo@example.com").await,
        Some(vec!["Gold".into()])
    );
    let count = |bucket: &str| {
        data.path()
            .join("drop")
            .join(bucket)
            .join("castle")
            .read_dir()
            .map_or(0, Iterator::count)
    };
    assert_eq!((count("failed"), count("processed")), (hostile.len(), 1));
    assert_eq!(dir.read_dir().unwrap().count(), 0, "nothing left to retry");
}

both_stores! {
    hostile_sheets => hostile_spreadsheets_in_the_drop_folder;
    recognition => recognition_and_wipe_replace;
    deliveries => duplicates_and_order;
    held => held_files_keep_the_old_roster;
    crash => crash_in_write_phase_keeps_old_roster;
    readers => readers_during_import;
    drop_and_routes => drop_folder_and_club_routes;
}

/// The Lambda path: an object in S3 (moto), the S3 event, DynamoDB (moto).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_event_end_to_end_on_moto() {
    let endpoint = tests::moto_endpoint();
    let t = fresh_store(Backend::Dynamodb).await;
    setup(&t.store).await;
    let s3 = ams_import::s3::client(Some(&endpoint)).await;
    let bucket = format!("drop-{}", uuid::Uuid::new_v4().simple());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let key = "ams/castle/Members Export.csv";
    let body = csv(&[
        ("ana@example.com", "Gold", "Active"),
        ("bo@example.com", "Silver", "Active"),
    ]);
    let put = s3
        .put_object()
        .bucket(&bucket)
        .key(key)
        .body(body.into_bytes().into())
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap().trim_matches('"').to_owned();
    let fixture = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/s3_put_event.json"),
    )
    .unwrap();
    let event_json = fixture.replace("BUCKET", &bucket).replace("ETAG", &etag);
    let event: aws_lambda_events::event::s3::S3Event = serde_json::from_str(&event_json).unwrap();
    let reports = ams_import::s3::handle_event(&t.store, &s3, event.clone())
        .await
        .unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].status, ImportStatus::Applied);
    assert_eq!(reports[0].file, "Members Export.csv");
    assert_eq!(
        member(&t.store, "bo@example.com").await,
        Some(vec!["Silver".into()])
    );
    // S3 delivers at least once: the same event again imports nothing new.
    let again = ams_import::s3::handle_event(&t.store, &s3, event)
        .await
        .unwrap();
    assert_eq!(again[0].id, reports[0].id);
    // Bad input is skipped, not retried: unknown property, wrong prefix.
    let bad = event_json.replace("ams/castle/Members+Export.csv", "ams/nowhere/x.csv");
    let bad: aws_lambda_events::event::s3::S3Event = serde_json::from_str(&bad).unwrap();
    assert!(
        ams_import::s3::handle_event(&t.store, &s3, bad)
            .await
            .unwrap()
            .is_empty()
    );
    let _ = t.clock.clone();
}

/// The Lambda path with hostile spreadsheets: each S3 event ends as a
/// rejected import with its reason (no error, so no retry), and a good
/// workbook delivered after them applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_hostile_spreadsheets_are_rejected_not_retried() {
    let endpoint = tests::moto_endpoint();
    let t = fresh_store(Backend::Dynamodb).await;
    setup(&t.store).await;
    let s3 = ams_import::s3::client(Some(&endpoint)).await;
    let bucket = format!("drop-{}", uuid::Uuid::new_v4().simple());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let fixture = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/s3_put_event.json"),
    )
    .unwrap();
    let mut files = tests::sheets::hostile();
    files.push((
        "good.xlsx",
        tests::sheets::roster(&["ana@example.com".into()]),
        "",
    ));
    for (name, bytes, why) in files {
        let key = format!("ams/castle/{name}");
        let put = s3
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .body(bytes.into())
            .send()
            .await
            .unwrap();
        let etag = put.e_tag().unwrap().trim_matches('"').to_owned();
        let event_json = fixture
            .replace("BUCKET", &bucket)
            .replace("ETAG", &etag)
            .replace("ams/castle/Members+Export.csv", &key);
        let event: aws_lambda_events::event::s3::S3Event =
            serde_json::from_str(&event_json).unwrap();
        let reports = ams_import::s3::handle_event(&t.store, &s3, event)
            .await
            .unwrap_or_else(|e| panic!("{name}: a retryable error: {e}"));
        assert_eq!(reports.len(), 1);
        if name == "good.xlsx" {
            assert_eq!(reports[0].status, ImportStatus::Applied);
        } else {
            assert_eq!(reports[0].status, ImportStatus::Rejected, "{name}");
            let reason = reports[0].reason.as_deref().unwrap_or_default();
            assert!(reason.contains(why), "{name}: {reason}");
        }
    }
    assert_eq!(
        member(&t.store, "ana@example.com").await,
        Some(vec!["Gold".into()])
    );
}
