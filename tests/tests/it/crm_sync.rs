//! The Cloudbeds sync end to end against the stand-in, on both stores:
//! custom fields created once, paging with a window changing under the
//! cursor, 429/500/timeouts retried, preferences and notes pushed without
//! duplicates, conflicts (later modification wins), webhooks → refetch +
//! screening written back, isolation between properties, the rate limit.

use std::time::Duration;

use chrono::Utc;
use crm_sync::{KeySource, SyncOptions, SyncSummary, client_for, sync_all, sync_property};
use domain::PropertyId;
use domain::guest::ports::GuestStore;
use domain::guest::{CrmConnection, ScreeningStatus, ScreeningWriteBack, default_field_map};
use domain::loyalty::StaySource;
use domain::loyalty::ports::LoyaltyStore;
use domain::{Email, guest::StayStatus};
use platform::cloudbeds::ApiKey;
use serde_json::json;
use tests::cloudbeds_standin::{Fault, Standin};
use tests::{Backend, TestStore, both_stores, call, fresh_store};

const KEY: &str = "cbat_test_key_0123456789";
const TOKEN: &str = "hooktoken-0123456789abcdef";

fn opts() -> SyncOptions {
    SyncOptions {
        page_size: 3,
        rate_per_second: 25.0,
        max_attempts: 5,
        backoff_base: Duration::from_millis(10),
        timeout: Duration::from_millis(400),
        settle: chrono::Duration::zero(),
        ..SyncOptions::default()
    }
}

struct Env {
    t: TestStore,
    cb: Standin,
    conn: CrmConnection,
    app: axum::Router,
    key: String,
}

async fn setup(b: Backend, property: &str) -> Env {
    let t = fresh_store(b).await;
    guesthub::admin::add_property(&t.store, property, "Castle", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let (_, key) = guesthub::admin::add_partner(
        &t.store,
        "Front desk",
        &[property.into()],
        &["guests".into()],
    )
    .await
    .unwrap();
    let cb = Standin::start(KEY, "cb-1", 25).await;
    let conn = CrmConnection {
        property: PropertyId::parse(property).unwrap(),
        cloudbeds_property_id: "cb-1".into(),
        api_key_env: "UNUSED".into(),
        api_key_ssm_parameter: None,
        base_url: cb.base_url.clone(),
        field_map: default_field_map(),
        screening_write_back: ScreeningWriteBack::Note,
        screening_service: None,
        webhook_token_hash: guests_api::webhook_token_hash(TOKEN),
        connected_at: Utc::now(),
    };
    t.store.save_connection(&conn).await.unwrap();
    let app = guests_api::router(t.store.clone(), 64 * 1024);
    Env {
        t,
        cb,
        conn,
        app,
        key,
    }
}

async fn run(e: &Env) -> SyncSummary {
    e.t.clock.set(Utc::now());
    let client = client_for(&e.conn, ApiKey::new(KEY), &opts()).unwrap();
    let watchlist = e.t.store.watchlist(&e.conn.property).await.unwrap();
    let s = sync_property(&e.t.store, &e.conn, &client, &watchlist, &opts()).await;
    println!("{s}");
    s
}

fn email(n: usize) -> Email {
    Email::parse(&format!("guest{n}@example.com")).unwrap()
}

async fn roundtrip(b: Backend) {
    let e = setup(b, "castle").await;
    let earlier = Utc::now() - chrono::Duration::minutes(10);
    for n in 1..=7 {
        let status = if n % 3 == 0 {
            "checked_out"
        } else {
            "confirmed"
        };
        e.cb.add_guest_with_stay(n, &[("GuestHub wine", "red")], status, earlier);
    }
    e.cb.with(|s| {
        s.notes.insert(
            "G0001".into(),
            vec![("N1".into(), "Allergic to cats".into())],
        );
        s.shift_after_page = Some(1);
    });
    e.cb.fault("getReservations", Fault::Status(429));
    e.cb.fault("getGuest", Fault::Status(500));
    e.cb.fault(
        "getGuestNotes",
        Fault::DelayBefore(Duration::from_millis(900)),
    );

    let started = std::time::Instant::now();
    let s1 = run(&e).await;
    println!("first run took {:?}", started.elapsed());
    assert!(s1.errors.is_empty(), "{s1}");
    assert_eq!(s1.fields_created, 4);
    assert_eq!(s1.guests_pulled, 7, "{s1}");
    // 7 in the window, one page read again after the window changed.
    assert!(s1.reservations_pulled >= 9, "{s1}");
    assert_eq!(s1.notes_pulled, 1);
    assert_eq!(s1.screened, 7);
    // Screening written back as notes, once per status and guest:
    // `in_progress` when the check starts, then its outcome.
    assert_eq!(s1.notes_pushed, 14);

    let p = &e.conn.property;
    let g3 =
        e.t.store
            .guest_by_email(p, &email(3))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(g3.preferences.get("wine").map(String::as_str), Some("red"));
    assert_eq!(g3.crm.cloudbeds_guest_id.as_deref(), Some("G0003"));
    assert_eq!(g3.screening.status, Some(ScreeningStatus::Passed));
    let stays = e.t.store.stays(p, &g3.id).await.unwrap();
    assert_eq!(stays.len(), 1);
    assert_eq!(stays[0].status, StayStatus::CheckedOut);
    // Checked-out reservations (3 and 6) are loyalty departures, with the
    // revenue of getReservation's balanceDetailed; the page read twice
    // queued nothing twice.
    assert_eq!(s1.departures, 2, "{s1}");
    let ls = e.t.store.loyalty_stay(p, "R0003").await.unwrap().unwrap();
    let facts = ls.facts.unwrap();
    assert_eq!(facts.guest, g3.id);
    assert_eq!(
        (facts.room_revenue.amount, facts.other_revenue.amount),
        (30_350, 4_525)
    );
    assert_eq!(ls.source, StaySource::Cloudbeds);
    // Their guests are not loyalty members: the stays are kept, not queued.
    assert!(ls.held);
    assert!(e.t.store.pending_records(p, 100).await.unwrap().is_empty());
    assert_eq!(e.t.store.held_stay_count(p).await.unwrap(), 2);
    // Once they enrol (within the retro days, here years), the stays go out.
    e.t.store
        .save_loyalty_connection(&domain::loyalty::LoyaltyConnection {
            property: p.clone(),
            url: domain::loyalty::RemoteUrl::parse("ftp://127.0.0.1:1/in").unwrap(),
            username: "u".into(),
            password_env: "UNUSED".into(),
            password_ssm_parameter: None,
            property_code: domain::loyalty::PropertyCode::parse("CASTLE01").unwrap(),
            tls_ca_pem: None,
            ssh_host_key: None,
            retro_days: 3650,
            connected_at: Utc::now(),
        })
        .await
        .unwrap();
    for r in ["R0003", "R0006"] {
        let ls = e.t.store.loyalty_stay(p, r).await.unwrap().unwrap();
        let g =
            e.t.store
                .guest(p, &ls.facts.unwrap().guest)
                .await
                .unwrap()
                .unwrap();
        domain::loyalty::service::enrol(&e.t.store, &g, None, e.t.store.clock().now())
            .await
            .unwrap();
    }
    assert_eq!(e.t.store.held_stay_count(p).await.unwrap(), 0);
    let pending = e.t.store.pending_records(p, 100).await.unwrap();
    let ids: Vec<&str> = pending.iter().map(|r| r.transaction_id.as_str()).collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert!(ids.contains(&"STY-R0003-1") && ids.contains(&"STY-R0006-1"));
    let g1 =
        e.t.store
            .guest_by_email(p, &email(1))
            .await
            .unwrap()
            .unwrap();
    let notes = e.t.store.notes(p, &g1.id).await.unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.cloudbeds_note_id.as_deref() == Some("N1"))
    );
    let cursor = e.t.store.sync_cursor(p).await.unwrap();
    assert!(cursor.window_from.is_some() && cursor.window_to.is_none());

    // Local edits through HTTP: a preference and a note.
    let g2 =
        e.t.store
            .guest_by_email(p, &email(2))
            .await
            .unwrap()
            .unwrap();
    e.t.clock.set(Utc::now());
    let uri = format!("/v1/properties/castle/guests/{}", g2.id);
    let r = call(
        &e.app,
        "PATCH",
        &uri,
        Some(&e.key),
        &[],
        Some(json!({"preferences": {"wine": "white", "dietary": "vegan"}}).to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(
        &e.app,
        "POST",
        &format!("{uri}/notes"),
        Some(&e.key),
        &[],
        Some(json!({"text": "Prefers a quiet room"}).to_string()),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // A checked-out stay cancelled in Cloudbeds is undone (Cloudbeds keeps
    // whole seconds: change it a second after the last run).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    e.cb.with(|s| {
        let r = s.reservations.iter_mut().find(|r| r.id == "R0006").unwrap();
        r.status = "canceled".into();
        r.modified = Utc::now();
    });
    let s2 = run(&e).await;
    assert!(s2.errors.is_empty(), "{s2}");
    assert_eq!(s2.departures, 1, "{s2}");
    let undo =
        e.t.store
            .export_record(p, "UND-R0006-1")
            .await
            .unwrap()
            .unwrap();
    assert_eq!(undo.reverses.as_deref(), Some("STY-R0006-1"));
    assert_eq!(s2.fields_created, 0);
    assert_eq!(s2.guests_pushed, 1);
    assert_eq!(s2.notes_pushed, 1);
    let (custom, notes) = e.cb.with(|s| {
        (
            s.guests["G0002"].custom.clone(),
            s.notes.get("G0002").cloned().unwrap_or_default(),
        )
    });
    assert_eq!(
        custom.get("GuestHub wine").map(String::as_str),
        Some("white")
    );
    assert_eq!(
        custom.get("GuestHub dietary").map(String::as_str),
        Some("vegan")
    );
    assert!(notes.iter().any(|(_, t)| t == "Prefers a quiet room"));

    // A third run has nothing to push: nothing is sent twice.
    let s3 = run(&e).await;
    assert!(s3.errors.is_empty(), "{s3}");
    assert_eq!(
        (s3.guests_pushed, s3.notes_pushed, s3.fields_created),
        (0, 0, 0),
        "{s3}"
    );
    e.cb.with(|s| {
        assert_eq!(s.puts.len(), 1);
        assert_eq!(s.duplicate_note_posts, 0);
        assert_eq!(s.duplicate_field_posts, 0);
        assert_eq!(s.rate_violations, 0, "rate limit exceeded");
        assert_eq!(s.unauthorized, 0);
        assert!(s.calls["getReservations"] >= 4, "paged and restarted");
    });
}

async fn ambiguous_posts(b: Backend) {
    let e = setup(b, "castle").await;
    e.cb.add_guest_with_stay(
        1,
        &[],
        "confirmed",
        Utc::now() - chrono::Duration::minutes(5),
    );
    // The screening note: a 500 (maybe applied), then a timeout after the
    // stand-in stored it. Neither may produce a second note.
    e.cb.fault("postGuestNote", Fault::Status(500));
    e.cb.fault(
        "postGuestNote",
        Fault::DelayAfter(Duration::from_millis(900)),
    );
    let s = run(&e).await;
    assert!(s.errors.is_empty(), "{s}");
    let g =
        e.t.store
            .guest_by_email(&e.conn.property, &email(1))
            .await
            .unwrap()
            .unwrap();
    // `in_progress`, then `passed`: each once.
    let notes = e.t.store.notes(&e.conn.property, &g.id).await.unwrap();
    assert_eq!(notes.len(), 2);
    assert!(notes.iter().all(|n| n.cloudbeds_note_id.is_some()));
    e.cb.with(|s| {
        assert_eq!(s.notes["G0001"].len(), 2, "{:?}", s.notes);
        assert_eq!(s.duplicate_note_posts, 0);
        assert_eq!(s.rate_violations, 0);
    });
    let again = run(&e).await;
    assert_eq!(again.notes_pushed, 0);
}

async fn later_wins(b: Backend) {
    let e = setup(b, "castle").await;
    let p = e.conn.property.clone();
    e.cb.add_guest_with_stay(
        1,
        &[("GuestHub wine", "red")],
        "confirmed",
        Utc::now() - chrono::Duration::minutes(30),
    );
    run(&e).await;
    let local = |e: &Env| {
        let store = e.t.store.clone();
        let p = p.clone();
        async move { store.guest_by_email(&p, &email(1)).await.unwrap().unwrap() }
    };

    // Both change; Cloudbeds' change is later → Cloudbeds wins.
    // (Cloudbeds' timestamps have whole seconds: edits a second apart.)
    let mut g = local(&e).await;
    g.preferences.insert("wine".into(), "rosé".into());
    g.updated_at = Utc::now();
    e.t.store.save_guest(&g).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    e.cb.with(|s| {
        s.guests
            .get_mut("G0001")
            .unwrap()
            .custom
            .insert("GuestHub wine".into(), "white".into());
        s.reservations[0].modified = Utc::now();
    });
    let s = run(&e).await;
    assert!(s.errors.is_empty(), "{s}");
    assert_eq!(local(&e).await.preferences["wine"], "white");
    assert_eq!(s.guests_pushed, 0);

    // Both change; ours is later → ours wins and is pushed.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    e.cb.with(|s| {
        s.guests
            .get_mut("G0001")
            .unwrap()
            .custom
            .insert("GuestHub wine".into(), "dry".into());
        s.reservations[0].modified = Utc::now();
    });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut g = local(&e).await;
    g.preferences.insert("wine".into(), "sparkling".into());
    g.updated_at = Utc::now();
    e.t.store.save_guest(&g).await.unwrap();
    let s = run(&e).await;
    assert!(s.errors.is_empty(), "{s}");
    assert_eq!(local(&e).await.preferences["wine"], "sparkling");
    assert_eq!(s.guests_pushed, 1);
    let remote =
        e.cb.with(|s| s.guests["G0001"].custom["GuestHub wine"].clone());
    assert_eq!(remote, "sparkling");
}

async fn webhook_refetch_screening(b: Backend) {
    let e = setup(b, "castle").await;
    e.cb.add_guest_with_stay(
        1,
        &[],
        "confirmed",
        Utc::now() - chrono::Duration::minutes(5),
    );
    run(&e).await;
    let hook = format!("/v1/webhooks/cloudbeds/{TOKEN}");
    let event = json!({"event": "guest/details_changed", "propertyID": "cb-1", "guestID": "G0001", "timestamp": 1735689600}).to_string();

    // The guest's document lands on the watchlist; Cloudbeds changes the
    // guest and tells us.
    let r = call(
        &e.app,
        "PUT",
        "/v1/properties/castle/screening/watchlist",
        Some(&e.key),
        &[],
        Some(
            json!({"entries": [{"kind": "document", "document_number": "doc-00001"}]}).to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let started = std::time::Instant::now();
    let r = call(&e.app, "POST", &hook, None, &[], Some(event.clone())).await;
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["duplicate"], false);
    let r = call(&e.app, "POST", &hook, None, &[], Some(event.clone())).await;
    assert_eq!(r.json()["duplicate"], true);
    let wrong = call(
        &e.app,
        "POST",
        "/v1/webhooks/cloudbeds/not-the-token-at-all",
        None,
        &[],
        Some(event.clone()),
    )
    .await;
    assert_eq!(wrong.status, 404);
    let other =
        json!({"event": "guest/created", "propertyId": "cb-2", "guestId": "G9"}).to_string();
    assert_eq!(
        call(&e.app, "POST", &hook, None, &[], Some(other))
            .await
            .status,
        404
    );
    let bad = call(&e.app, "POST", &hook, None, &[], Some("{".into())).await;
    assert_eq!(bad.status, 400);

    let s = run(&e).await;
    assert!(s.errors.is_empty(), "{s}");
    assert_eq!(s.flagged, 1, "{s}");
    let g =
        e.t.store
            .guest_by_email(&e.conn.property, &email(1))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(g.screening.status, Some(ScreeningStatus::Flagged));
    let written = e.cb.with(|s| s.notes["G0001"].clone());
    assert!(
        written
            .iter()
            .any(|(_, t)| t == "GuestHub screening: flagged (watchlist:document)"),
        "{written:?}"
    );
    assert!(
        e.t.store
            .refetch_targets(&e.conn.property)
            .await
            .unwrap()
            .is_empty()
    );
}

struct FixedKey;

#[async_trait::async_trait]
impl KeySource for FixedKey {
    async fn api_key(&self, conn: &CrmConnection) -> anyhow::Result<ApiKey> {
        if conn.api_key_env == "MISSING" {
            anyhow::bail!("not set");
        }
        Ok(ApiKey::new(KEY))
    }
}

async fn isolation(b: Backend) {
    let e = setup(b, "castle").await;
    e.cb.add_guest_with_stay(
        1,
        &[],
        "confirmed",
        Utc::now() - chrono::Duration::minutes(5),
    );
    for (id, env, url) in [
        ("abbey", "CB_KEY", "http://127.0.0.1:9/api/v1.2".to_owned()),
        ("zeta", "MISSING", e.cb.base_url.clone()),
    ] {
        guesthub::admin::add_property(&e.t.store, id, "Other", "Europe/Vienna", "EUR")
            .await
            .unwrap();
        let mut c = e.conn.clone();
        c.property = PropertyId::parse(id).unwrap();
        c.api_key_env = env.into();
        c.base_url = url;
        c.webhook_token_hash = guests_api::webhook_token_hash(&format!("{TOKEN}-{id}"));
        e.t.store.save_connection(&c).await.unwrap();
    }
    e.t.clock.set(Utc::now());
    let mut o = opts();
    o.max_attempts = 2;
    let all = sync_all(&e.t.store, None, &FixedKey, &o).await.unwrap();
    assert_eq!(all.len(), 3);
    let by = |p: &str| all.iter().find(|s| s.property == p).unwrap().clone();
    assert!(!by("abbey").errors.is_empty());
    assert!(!by("zeta").errors.is_empty());
    let castle = by("castle");
    assert!(castle.errors.is_empty(), "{castle}");
    assert_eq!(castle.guests_pulled, 1);
}

/// A webhook that re-marks a guest while a run handles it is not lost.
async fn remark_during_run_survives(b: Backend) {
    use domain::guest::RefetchTarget;
    let t = fresh_store(b).await;
    let p = PropertyId::parse("castle").unwrap();
    let target = RefetchTarget::Guest("g-1".into());
    assert!(
        t.store
            .record_webhook(&p, "delivery-1", Some(&target))
            .await
            .unwrap()
    );
    assert!(
        !t.store
            .record_webhook(&p, "delivery-1", Some(&target))
            .await
            .unwrap(),
        "a retried delivery is a duplicate"
    );
    let read = t.store.refetch_targets(&p).await.unwrap();
    assert_eq!(read.len(), 1);
    // A new delivery for the same guest arrives while the run works…
    assert!(
        t.store
            .record_webhook(&p, "delivery-2", Some(&target))
            .await
            .unwrap()
    );
    // …so clearing with the mark the run read leaves it for the next run.
    t.store
        .clear_refetch(&p, &read[0].0, read[0].1)
        .await
        .unwrap();
    let again = t.store.refetch_targets(&p).await.unwrap();
    assert_eq!(again.len(), 1);
    t.store
        .clear_refetch(&p, &again[0].0, again[0].1)
        .await
        .unwrap();
    assert!(t.store.refetch_targets(&p).await.unwrap().is_empty());
}

/// The schedule fires twice at once, then Cloudbeds is down for a run:
/// one run works, the other skips; after recovery every guest has exactly
/// one screening note in Cloudbeds (counted), none lost, none twice.
async fn double_fire_and_outage(b: Backend) {
    let e = setup(b, "castle").await;
    let earlier = Utc::now() - chrono::Duration::minutes(10);
    for n in 1..=6 {
        e.cb.add_guest_with_stay(n, &[], "confirmed", earlier);
    }
    // Cloudbeds down for the first attempt of everything: more 500s than
    // the retries absorb.
    for _ in 0..6 {
        e.cb.fault("getCustomFields", Fault::Status(500));
    }
    let down = run(&e).await;
    assert!(!down.errors.is_empty(), "{down}");
    e.t.clock.set(Utc::now());
    let watchlist = e.t.store.watchlist(&e.conn.property).await.unwrap();
    let c1 = client_for(&e.conn, ApiKey::new(KEY), &opts()).unwrap();
    let c2 = client_for(&e.conn, ApiKey::new(KEY), &opts()).unwrap();
    let o = opts();
    let (a, b2) = tokio::join!(
        sync_property(&e.t.store, &e.conn, &c1, &watchlist, &o),
        sync_property(&e.t.store, &e.conn, &c2, &watchlist, &o)
    );
    let skipped = [&a, &b2].iter().filter(|s| s.skipped_busy).count();
    assert_eq!(skipped, 1, "{a}\n{b2}");
    let worked = if a.skipped_busy { &b2 } else { &a };
    assert!(worked.errors.is_empty(), "{worked}");
    let again = run(&e).await;
    assert_eq!(again.notes_pushed, 0, "{again}");
    e.cb.with(|s| {
        let total: usize = s.notes.values().map(Vec::len).sum();
        // Each guest: `in_progress`, then `passed`, each once.
        let guests_with_two = s.notes.values().filter(|n| n.len() == 2).count();
        println!(
            "crm double fire ({b:?}): 3 runs + 1 skipped, {total} notes for 6 guests, {} duplicate posts",
            s.duplicate_note_posts
        );
        assert_eq!((total, guests_with_two), (12, 6), "{:?}", s.notes);
        assert_eq!(s.duplicate_note_posts, 0);
    });
}

/// An erasure reaches Cloudbeds on the next sync: names, email, phone,
/// birth date and mapped fields overwritten, a note left, once; the
/// receipt's `pending` loses `cloudbeds` then.
async fn erasure_pushed(b: Backend) {
    let e = setup(b, "castle").await;
    let earlier = Utc::now() - chrono::Duration::minutes(10);
    e.cb.add_guest_with_stay(1, &[("GuestHub wine", "red")], "confirmed", earlier);
    let s = run(&e).await;
    assert!(s.errors.is_empty(), "{s}");
    let r = call(
        &e.app,
        "POST",
        "/v1/properties/castle/erasures",
        Some(&e.key),
        &[("idempotency-key", "erase-1")],
        Some(json!({"email": "guest1@example.com"}).to_string()),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let receipt = r.json();
    assert_eq!(receipt["pending"], json!(["cloudbeds"]), "{}", r.body);
    assert_eq!(receipt["status"], "erased");
    let notes_before = e.cb.with(|s| s.notes.get("G0001").map_or(0, Vec::len));

    let s = run(&e).await;
    assert!(s.errors.is_empty(), "{s}");
    assert_eq!(s.erasures_sent, 1, "{s}");
    let g = e.cb.with(|s| s.guests["G0001"].clone());
    assert_eq!(
        (g.first_name.as_str(), g.last_name.as_str()),
        ("Erased", "Erased")
    );
    assert!(!g.email.contains("guest1"), "{}", g.email);
    assert!(!g.phone.contains("12345"), "{}", g.phone);
    assert_ne!(g.birth_date, chrono::NaiveDate::from_ymd_opt(1980, 1, 2));
    assert!(g.custom.values().all(|v| v != "red"), "{:?}", g.custom);
    let notes = e.cb.with(|s| s.notes["G0001"].clone());
    assert_eq!(notes.len(), notes_before + 1);
    assert!(notes.last().unwrap().1.contains("erased"), "{notes:?}");

    let id = receipt["id"].as_str().unwrap();
    let got = call(
        &e.app,
        "GET",
        &format!("/v1/properties/castle/erasures/{id}"),
        Some(&e.key),
        &[],
        None,
    )
    .await;
    assert_eq!(got.json()["pending"], json!([]), "{}", got.body);
    // Sent once.
    let s = run(&e).await;
    assert_eq!(s.erasures_sent, 0, "{s}");
}

both_stores! {
    erasure_reaches_cloudbeds => erasure_pushed;
    double_fire_and_outage_count => double_fire_and_outage;
    remark_during_run => remark_during_run_survives;
    pull_push_roundtrip => roundtrip;
    ambiguous_note_posts_are_not_repeated => ambiguous_posts;
    later_modification_wins => later_wins;
    webhook_marks_refetch_and_screening => webhook_refetch_screening;
    one_property_failing_does_not_stop_others => isolation;
}

/// Cloudbeds' own limit, 5 requests/s, measured by the stand-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn default_rate_limit_is_five_per_second() {
    let mut e = setup(Backend::Sqlite, "castle").await;
    e.cb.with(|s| s.rate_limit = 5);
    e.conn.field_map.clear();
    e.conn.screening_write_back = ScreeningWriteBack::CustomField;
    for n in 1..=2 {
        e.cb.add_guest_with_stay(
            n,
            &[],
            "confirmed",
            Utc::now() - chrono::Duration::minutes(5),
        );
    }
    e.cb.with(|s| {
        s.custom_fields
            .push(("GuestHub screening".into(), "guesthub_screening".into()))
    });
    let o = SyncOptions {
        settle: chrono::Duration::zero(),
        ..SyncOptions::default()
    };
    e.t.clock.set(Utc::now());
    let client = client_for(&e.conn, ApiKey::new(KEY), &o).unwrap();
    let wl = e.t.store.watchlist(&e.conn.property).await.unwrap();
    let started = std::time::Instant::now();
    let s = sync_property(&e.t.store, &e.conn, &client, &wl, &o).await;
    let took = started.elapsed();
    assert!(s.errors.is_empty(), "{s}");
    let (calls, violations): (u32, u32) =
        e.cb.with(|s| (s.calls.values().sum(), s.rate_violations));
    assert!(calls >= 8, "{calls}");
    assert_eq!(violations, 0);
    assert!(
        took >= Duration::from_millis(200 * u64::from(calls - 1)),
        "{took:?} for {calls}"
    );
}

/// The limit as Cloudbeds counts it: at most 5 arrivals in any one second
/// at the server, retries included, while each request takes a random
/// 0–80 ms to get there.
async fn rate_limit_at_the_server(b: Backend) {
    let e = setup(b, "castle").await;
    e.cb.with(|s| {
        s.rate_limit = 5;
        s.latency_max = Duration::from_millis(80);
    });
    for n in 1..=5 {
        e.cb.add_guest_with_stay(
            n,
            &[],
            "confirmed",
            Utc::now() - chrono::Duration::minutes(5),
        );
    }
    // Retries, sent as fast as the backoff allows, count too.
    e.cb.fault("getGuest", Fault::Status(429));
    e.cb.fault("getGuest", Fault::Status(500));
    e.cb.fault("getGuestNotes", Fault::Status(503));
    let o = SyncOptions {
        settle: chrono::Duration::zero(),
        backoff_base: Duration::from_millis(1),
        ..SyncOptions::default()
    };
    e.t.clock.set(Utc::now());
    let client = client_for(&e.conn, ApiKey::new(KEY), &o).unwrap();
    let wl = e.t.store.watchlist(&e.conn.property).await.unwrap();
    let s = sync_property(&e.t.store, &e.conn, &client, &wl, &o).await;
    assert!(s.errors.is_empty(), "{s}");
    let calls: u32 = e.cb.with(|s| s.calls.values().sum());
    let most = e.cb.max_in_any_second();
    println!("rate at the server ({b:?}): {calls} requests, at most {most} in any second");
    assert!(calls >= 20, "{calls}");
    assert!(most <= 5, "{most} requests arrived within one second");
    assert_eq!(e.cb.with(|s| s.rate_violations), 0);
}

both_stores! {
    rate_limit_holds_at_the_server => rate_limit_at_the_server;
}

/// Everything GuestHub collects goes back with putGuest: a birth date
/// edited here (through the guests API) is pushed, as is the document
/// number, and the next run pushes nothing again.
async fn birth_date_edited_here_is_pushed(b: Backend) {
    let e = setup(b, "castle").await;
    let p = e.conn.property.clone();
    e.cb.add_guest_with_stay(
        1,
        &[],
        "confirmed",
        Utc::now() - chrono::Duration::minutes(30),
    );
    let first = run(&e).await;
    assert!(first.errors.is_empty(), "{first}");
    let g =
        e.t.store
            .guest_by_email(&p, &email(1))
            .await
            .unwrap()
            .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    e.t.clock.set(Utc::now());
    let r = call(
        &e.app,
        "PATCH",
        &format!("/v1/properties/castle/guests/{}", g.id),
        Some(&e.key),
        &[],
        Some(json!({"birth_date": "1975-04-09"}).to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s = run(&e).await;
    assert!(s.errors.is_empty(), "{s}");
    assert_eq!(s.guests_pushed, 1, "{s}");
    e.cb.with(|s| {
        let (_, pairs) = s.puts.last().expect("a putGuest");
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("guestBirthDate").as_deref(), Some("1975-04-09"));
        assert_eq!(get("guestDocumentNumber").as_deref(), Some("DOC00001"));
        assert_eq!(
            s.guests["G0001"].birth_date,
            chrono::NaiveDate::from_ymd_opt(1975, 4, 9)
        );
    });
    let again = run(&e).await;
    assert_eq!(again.guests_pushed, 0, "{again}");
    let g =
        e.t.store
            .guest_by_email(&p, &email(1))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(g.birth_date, chrono::NaiveDate::from_ymd_opt(1975, 4, 9));
}

both_stores! {
    birth_date_is_pushed => birth_date_edited_here_is_pushed;
}

/// The sync's history through the API: each run with its trigger, counts
/// and the conflicts it resolved (which side won, field names only),
/// newest first, `limit` at a time.
async fn runs_history(b: Backend) {
    let e = setup(b, "castle").await;
    let p = e.conn.property.clone();
    e.cb.add_guest_with_stay(
        1,
        &[("GuestHub wine", "red")],
        "confirmed",
        Utc::now() - chrono::Duration::minutes(30),
    );
    run(&e).await;
    // Both sides change; Cloudbeds' change is later.
    let mut g =
        e.t.store
            .guest_by_email(&p, &email(1))
            .await
            .unwrap()
            .unwrap();
    g.preferences.insert("wine".into(), "rosé".into());
    g.updated_at = Utc::now();
    e.t.store.save_guest(&g).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    e.cb.with(|s| {
        s.guests
            .get_mut("G0001")
            .unwrap()
            .custom
            .insert("GuestHub wine".into(), "white".into());
        s.reservations[0].modified = Utc::now();
    });
    let second = run(&e).await;
    assert!(second.errors.is_empty(), "{second}");

    let r = call(
        &e.app,
        "GET",
        "/v1/properties/castle/crm/runs",
        Some(&e.key),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let runs = r.json()["runs"].clone();
    assert_eq!(runs.as_array().unwrap().len(), 2, "{runs}");
    let newest = &runs[0];
    assert_eq!(newest["trigger"], "schedule", "{newest}");
    assert_eq!(
        newest["conflicts"],
        json!([{"winner": "cloudbeds", "fields": ["preferences.wine"]}]),
        "{newest}"
    );
    assert!(newest["started_at"].as_str() <= newest["ended_at"].as_str());
    assert_eq!(runs[1]["counts"]["guests_pulled"], 1, "{runs}");
    assert_eq!(runs[1]["conflicts"], json!([]));
    assert!(
        !r.body.contains("white") && !r.body.contains("rosé"),
        "{}",
        r.body
    );

    let one = call(
        &e.app,
        "GET",
        "/v1/properties/castle/crm/runs?limit=1",
        Some(&e.key),
        &[],
        None,
    )
    .await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.json()["runs"].as_array().unwrap().len(), 1);
    assert_eq!(one.json()["runs"][0]["id"], newest["id"]);
    for bad in ["0", "101", "x"] {
        let r = call(
            &e.app,
            "GET",
            &format!("/v1/properties/castle/crm/runs?limit={bad}"),
            Some(&e.key),
            &[],
            None,
        )
        .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
}

both_stores! {
    sync_runs_are_listed => runs_history;
}
