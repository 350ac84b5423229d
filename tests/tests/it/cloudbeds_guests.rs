//! Cloudbeds guest details end to end against the stand-in, on both
//! stores: everything GuestHub collects (phone, birth date, address,
//! identity document) pushed with putGuest and pulled back under the
//! conflict rule; guests modified in Cloudbeds without their reservation
//! found with getGuestsByFilter; the erasure overwriting the address; the
//! front desk's arrivals and departures (getReservations by date, with
//! GuestHub's screening status); guest search by name, email or phone.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use crm_sync::{SyncOptions, SyncSummary, client_for, sync_property};
use domain::PropertyId;
use domain::guest::ports::{CrmClient, GuestFilter, GuestStatus, GuestStore};
use domain::guest::{CrmConnection, ScreeningWriteBack, default_field_map};
use platform::cloudbeds::ApiKey;
use serde_json::{Value, json};
use tests::cloudbeds_standin::{SReservation, Standin};
use tests::{Backend, TestStore, both_stores, call, fresh_store};

/// The connection names an environment variable for its key (as `crm
/// connect` does); `PATH` is one every test process has, so its value is
/// the stand-in's key.
const KEY_ENV: &str = "PATH";

fn key() -> String {
    std::env::var(KEY_ENV).unwrap().trim().to_owned()
}

fn opts() -> SyncOptions {
    SyncOptions {
        page_size: 3,
        rate_per_second: 25.0,
        max_attempts: 5,
        backoff_base: Duration::from_millis(10),
        timeout: Duration::from_millis(800),
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
    let cb = Standin::start(&self::key(), "cb-1", 25).await;
    let conn = CrmConnection {
        property: PropertyId::parse(property).unwrap(),
        cloudbeds_property_id: "cb-1".into(),
        api_key_env: KEY_ENV.into(),
        api_key_ssm_parameter: None,
        base_url: cb.base_url.clone(),
        field_map: default_field_map(),
        screening_write_back: ScreeningWriteBack::Note,
        webhook_token_hash: guests_api::webhook_token_hash("hooktoken-cba-0123456789"),
        screening_service: None,
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
    let client = client_for(&e.conn, ApiKey::new(key()), &opts()).unwrap();
    let watchlist = e.t.store.watchlist(&e.conn.property).await.unwrap();
    let s = sync_property(&e.t.store, &e.conn, &client, &watchlist, &opts()).await;
    println!("{s}");
    s
}

async fn get(e: &Env, uri: &str) -> tests::Reply {
    call(&e.app, "GET", uri, Some(&e.key), &[], None).await
}

async fn guest_id(e: &Env, n: usize) -> String {
    let r = get(
        e,
        &format!("/v1/properties/castle/guests?email=guest{n}@example.com"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["guests"][0]["id"].as_str().unwrap().to_owned()
}

fn put_param(pairs: &[(String, String)], k: &str) -> Option<String> {
    pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
}

/// Address and document fields set here go to Cloudbeds with putGuest
/// (with the phone), once; the profile shows them.
async fn address_and_document_pushed(b: Backend) {
    let e = setup(b, "castle").await;
    e.cb.add_guest_with_stay(
        1,
        &[],
        "confirmed",
        Utc::now() - chrono::Duration::minutes(30),
    );
    let s = run(&e).await;
    assert!(s.errors.is_empty(), "{s}");
    let id = guest_id(&e, 1).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    e.t.clock.set(Utc::now());
    let patch = json!({
        "phone": "+43 664 5550101",
        "address": {"address1": "Ringstraße 1", "address2": "Top 4", "city": "Wien",
                    "state": "Wien", "zip": "1010", "country": "at"},
        "document_number": "P7654321",
        "document": {"type": "passport", "issuing_country": "AT",
                     "issue_date": "2020-03-01", "expiration_date": "2030-02-28"}
    });
    let r = call(
        &e.app,
        "PATCH",
        &format!("/v1/properties/castle/guests/{id}"),
        Some(&e.key),
        &[],
        Some(patch.to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["address"]["country"], "AT", "{v}");
    assert_eq!(v["document"]["type"], "passport", "{v}");
    assert_eq!(v["document_number"], "P7654321", "{v}");

    let s = run(&e).await;
    assert!(s.errors.is_empty(), "{s}");
    assert_eq!(s.guests_pushed, 1, "{s}");
    e.cb.with(|s| {
        let (_, pairs) = s.puts.last().expect("a putGuest");
        for (k, want) in [
            ("guestPhone", "+43 664 5550101"),
            ("guestAddress1", "Ringstraße 1"),
            ("guestAddress2", "Top 4"),
            ("guestCity", "Wien"),
            ("guestState", "Wien"),
            ("guestZip", "1010"),
            ("guestCountry", "AT"),
            ("guestDocumentNumber", "P7654321"),
            ("guestDocumentType", "passport"),
            ("guestDocumentIssuingCountry", "AT"),
            ("guestDocumentIssueDate", "2020-03-01"),
            ("guestDocumentExpirationDate", "2030-02-28"),
            ("guestBirthDate", "1980-01-02"),
        ] {
            assert_eq!(put_param(pairs, k).as_deref(), Some(want), "{k}");
        }
        assert_eq!(s.guests["G0001"].details["city"], "Wien");
    });
    let again = run(&e).await;
    assert!(again.errors.is_empty(), "{again}");
    assert_eq!(again.guests_pushed, 0, "{again}");

    // Bad input: a clear error, nothing changed.
    for (body, field) in [
        (
            json!({"address": {"country": "Austria"}}),
            "address.country",
        ),
        (
            json!({"document": {"issue_date": "2999-01-01"}}),
            "document.issue_date",
        ),
        (
            json!({"document": {"issue_date": "2020-01-01", "expiration_date": "2019-01-01"}}),
            "document.expiration_date",
        ),
        (json!({"address": {"city": "a\u{1b}[31m"}}), "address.city"),
        (json!({"address": {"planet": "Mars"}}), "address"),
    ] {
        let r = call(
            &e.app,
            "PATCH",
            &format!("/v1/properties/castle/guests/{id}"),
            Some(&e.key),
            &[],
            Some(body.to_string()),
        )
        .await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.body.contains(field), "{body}: {}", r.body);
    }
    let v = get(&e, &format!("/v1/properties/castle/guests/{id}"))
        .await
        .json();
    assert_eq!(v["address"]["city"], "Wien");
    assert_eq!(v["document"]["expiration_date"], "2030-02-28");
}

/// A guest whose address changed in Cloudbeds without any reservation
/// changing is found by getGuestsByFilter and applied; edited on both
/// sides, the later modification wins and the run names the fields.
async fn cloudbeds_details_pulled(b: Backend) {
    let e = setup(b, "castle").await;
    e.cb.add_guest_with_stay(
        1,
        &[],
        "checked_in",
        Utc::now() - chrono::Duration::minutes(30),
    );
    let s = run(&e).await;
    assert!(s.errors.is_empty(), "{s}");
    assert!(e.cb.calls("getGuestsByFilter") >= 4, "each status asked");
    let id = guest_id(&e, 1).await;

    tokio::time::sleep(Duration::from_millis(1100)).await;
    e.cb.with(|s| {
        let g = s.guests.get_mut("G0001").unwrap();
        g.details.insert("city".into(), "Salzburg".into());
        g.details.insert("documentType".into(), "dni".into());
        g.modified = Some(Utc::now());
    });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let s = run(&e).await;
    assert!(s.errors.is_empty(), "{s}");
    assert_eq!(s.reservations_pulled, 0, "no reservation changed: {s}");
    assert_eq!(s.guests_pulled, 1, "{s}");
    let v = get(&e, &format!("/v1/properties/castle/guests/{id}"))
        .await
        .json();
    assert_eq!(v["address"]["city"], "Salzburg", "{v}");
    assert_eq!(v["document"]["type"], "dni", "{v}");

    // Both sides change the city; Cloudbeds' edit is later and wins.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    e.t.clock.set(Utc::now());
    let r = call(
        &e.app,
        "PATCH",
        &format!("/v1/properties/castle/guests/{id}"),
        Some(&e.key),
        &[],
        Some(json!({"address": {"city": "Graz"}}).to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    e.cb.with(|s| {
        let g = s.guests.get_mut("G0001").unwrap();
        g.details.insert("city".into(), "Linz".into());
        g.modified = Some(Utc::now());
    });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let s = run(&e).await;
    assert!(s.errors.is_empty(), "{s}");
    let v = get(&e, &format!("/v1/properties/castle/guests/{id}"))
        .await
        .json();
    assert_eq!(v["address"]["city"], "Linz", "{v}");
    let runs = get(&e, "/v1/properties/castle/crm/runs?limit=1")
        .await
        .json();
    let conflicts = &runs["runs"][0]["conflicts"];
    assert_eq!(conflicts[0]["winner"], "cloudbeds", "{runs}");
    assert_eq!(conflicts[0]["fields"], json!(["address.city"]), "{runs}");
}

/// getGuestsByFilter as the stand-in answers it: status required, name
/// and email filters, paging with `total`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_by_filter_shape() {
    let cb = Standin::start("k-filter", "cb-9", 100).await;
    let t0 = Utc::now() - chrono::Duration::hours(2);
    for n in 1..=5 {
        let status = if n <= 3 { "confirmed" } else { "checked_in" };
        cb.add_guest_with_stay(n, &[], status, t0);
    }
    let conn = CrmConnection {
        property: PropertyId::parse("castle").unwrap(),
        cloudbeds_property_id: "cb-9".into(),
        api_key_env: "UNUSED".into(),
        api_key_ssm_parameter: None,
        base_url: cb.base_url.clone(),
        field_map: default_field_map(),
        screening_write_back: ScreeningWriteBack::Note,
        webhook_token_hash: String::new(),
        screening_service: None,
        connected_at: Utc::now(),
    };
    let c = client_for(&conn, ApiKey::new("k-filter"), &opts()).unwrap();
    let f = |status, page| GuestFilter {
        status,
        modified_from: None,
        modified_to: None,
        name: None,
        email: None,
        page,
        page_size: 2,
    };
    let p1 = c
        .guests_by_filter(&f(GuestStatus::NotCheckedIn, 1))
        .await
        .unwrap();
    assert_eq!((p1.guests.len(), p1.total), (2, 3));
    let p2 = c
        .guests_by_filter(&f(GuestStatus::NotCheckedIn, 2))
        .await
        .unwrap();
    let ids: Vec<_> = p1
        .guests
        .iter()
        .chain(&p2.guests)
        .map(|g| g.guest_id.clone())
        .collect();
    assert_eq!(ids, ["G0001", "G0002", "G0003"]);
    assert_eq!(p1.guests[0].reservation_id.as_deref(), Some("R0001"));
    let in_house = c
        .guests_by_filter(&f(GuestStatus::InHouse, 1))
        .await
        .unwrap();
    assert_eq!(in_house.total, 2);
    let by_name = c
        .guests_by_filter(&GuestFilter {
            name: Some("first4".into()),
            ..f(GuestStatus::InHouse, 1)
        })
        .await
        .unwrap();
    assert_eq!(by_name.guests.len(), 1);
    assert_eq!(by_name.guests[0].guest_id, "G0004");
    let by_email = c
        .guests_by_filter(&GuestFilter {
            email: Some("GUEST5@example.com".into()),
            ..f(GuestStatus::InHouse, 1)
        })
        .await
        .unwrap();
    assert_eq!(by_email.guests[0].guest_id, "G0005");
    let none = c
        .guests_by_filter(&GuestFilter {
            modified_from: Some(Utc::now()),
            ..f(GuestStatus::NotCheckedIn, 1)
        })
        .await
        .unwrap();
    assert_eq!(none.total, 0);
}

/// The erasure overwrites the address and document in Cloudbeds with
/// placeholders; the profile keeps none of them and no search finds it.
async fn erasure_overwrites_address(b: Backend) {
    let e = setup(b, "castle").await;
    e.cb.add_guest_with_stay(
        1,
        &[],
        "confirmed",
        Utc::now() - chrono::Duration::minutes(30),
    );
    e.cb.with(|s| {
        let g = s.guests.get_mut("G0001").unwrap();
        for (k, v) in [
            ("address1", "Hauptplatz 3"),
            ("city", "Graz"),
            ("zip", "8010"),
            ("country", "AT"),
            ("documentType", "passport"),
            ("documentIssueDate", "2019-05-05"),
        ] {
            g.details.insert(k.into(), v.into());
        }
    });
    let s = run(&e).await;
    assert!(s.errors.is_empty(), "{s}");
    let id = guest_id(&e, 1).await;
    let v = get(&e, &format!("/v1/properties/castle/guests/{id}"))
        .await
        .json();
    assert_eq!(v["address"]["address1"], "Hauptplatz 3", "{v}");
    assert_eq!(
        get(&e, "/v1/properties/castle/guests?q=first1")
            .await
            .json()["guests"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let r = call(
        &e.app,
        "DELETE",
        &format!("/v1/properties/castle/guests/{id}"),
        Some(&e.key),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let v = get(&e, &format!("/v1/properties/castle/guests/{id}"))
        .await
        .json();
    assert_eq!(
        v["address"],
        json!({"address1": null, "address2": null, "city": null, "state": null, "zip": null, "country": null}),
        "{v}"
    );
    assert_eq!(v["document"]["type"], Value::Null, "{v}");
    for q in ["first1", "guest1", "4312345"] {
        let found = get(&e, &format!("/v1/properties/castle/guests?q={q}"))
            .await
            .json();
        assert_eq!(found["guests"], json!([]), "{q}: {found}");
    }
    let s = run(&e).await;
    assert!(s.errors.is_empty(), "{s}");
    assert_eq!(s.erasures_sent, 1, "{s}");
    e.cb.with(|s| {
        let g = &s.guests["G0001"];
        assert_eq!(g.details["address1"], "Erased");
        assert_eq!(g.details["city"], "Erased");
        assert_eq!(g.details["zip"], "00000");
        assert_eq!(g.details["documentType"], "na");
        assert_eq!(g.details["documentIssueDate"], "1900-01-01");
    });
}

fn stay(id: &str, guest: &str, status: &str, start: NaiveDate, end: NaiveDate) -> SReservation {
    SReservation {
        id: id.into(),
        guest_id: guest.into(),
        status: status.into(),
        start,
        end,
        modified: Utc::now() - chrono::Duration::hours(1),
        sub_total: "100.00".into(),
        additional_items: "0".into(),
    }
}

/// Today's arrivals and departures from getReservations by date, each
/// guest with GuestHub's screening status; cancelled ones left out unless
/// asked for by status.
async fn arrivals_and_departures(b: Backend) {
    let e = setup(b, "castle").await;
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    // G0001..G0003 exist (with a June stay each); screen them by a sync.
    for n in 1..=3 {
        e.cb.add_guest_with_stay(n, &[], "confirmed", Utc::now() - chrono::Duration::hours(2));
    }
    let r = call(
        &e.app,
        "PUT",
        "/v1/properties/castle/screening/watchlist",
        Some(&e.key),
        &[],
        Some(json!({"entries": [{"kind": "email", "email": "guest2@example.com"}]}).to_string()),
    )
    .await;
    assert!(r.status == 200 || r.status == 204, "{}", r.body);
    let s = run(&e).await;
    assert!(s.errors.is_empty(), "{s}");
    e.cb.with(|s| {
        s.reservations.push(stay(
            "R9001",
            "G0001",
            "confirmed",
            d("2026-07-10"),
            d("2026-07-12"),
        ));
        s.reservations.push(stay(
            "R9002",
            "G0002",
            "checked_in",
            d("2026-07-10"),
            d("2026-07-11"),
        ));
        s.reservations.push(stay(
            "R9003",
            "G0003",
            "canceled",
            d("2026-07-10"),
            d("2026-07-13"),
        ));
        s.reservations.push(stay(
            "R9004",
            "G0003",
            "checked_in",
            d("2026-07-08"),
            d("2026-07-10"),
        ));
        s.guests.insert(
            "G0099".into(),
            tests::cloudbeds_standin::SGuest {
                first_name: "Walk".into(),
                last_name: "In".into(),
                email: "walkin@example.com".into(),
                ..Default::default()
            },
        );
        s.reservations.push(stay(
            "R9005",
            "G0099",
            "not_confirmed",
            d("2026-07-10"),
            d("2026-07-15"),
        ));
    });

    let a = get(&e, "/v1/properties/castle/guests/arrivals?date=2026-07-10").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = a.json();
    assert_eq!(a["date"], "2026-07-10");
    let ids: Vec<&str> = a["reservations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reservation_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["R9001", "R9002", "R9005"], "{a}");
    let guest = |i: usize| &a["reservations"][i]["guests"][0];
    assert_eq!(guest(0)["cloudbeds_guest_id"], "G0001");
    assert_eq!(guest(0)["screening"], "passed", "{a}");
    assert_eq!(guest(0)["first_name"], "First1");
    assert_eq!(guest(0)["email"], "guest1@example.com");
    assert_eq!(guest(0)["main"], true);
    assert!(guest(0)["guest_id"].is_string());
    assert_eq!(guest(1)["screening"], "flagged", "{a}");
    assert_eq!(a["reservations"][1]["status"], "checked_in");
    assert_eq!(guest(2)["screening"], Value::Null, "not known here: {a}");
    assert_eq!(guest(2)["guest_id"], Value::Null);
    assert!(e.cb.calls("getReservations") >= 2);

    let dep = get(
        &e,
        "/v1/properties/castle/guests/departures?date=2026-07-10",
    )
    .await
    .json();
    let ids: Vec<&str> = dep["reservations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reservation_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["R9004"], "{dep}");
    let cancelled = get(
        &e,
        "/v1/properties/castle/guests/arrivals?date=2026-07-10&status=canceled",
    )
    .await
    .json();
    let ids: Vec<&str> = cancelled["reservations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reservation_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["R9003"], "{cancelled}");
    let none = get(&e, "/v1/properties/castle/guests/arrivals?date=2026-01-01")
        .await
        .json();
    assert_eq!(none["reservations"], json!([]));

    for (uri, code) in [
        ("/v1/properties/castle/guests/arrivals", "invalid_field"),
        (
            "/v1/properties/castle/guests/arrivals?date=10.07.2026",
            "invalid_field",
        ),
        (
            "/v1/properties/castle/guests/departures?date=2026-07-10&status=gone",
            "invalid_field",
        ),
    ] {
        let r = get(&e, uri).await;
        assert_eq!(r.status, 400, "{uri}: {}", r.body);
        assert_eq!(r.code(), code, "{uri}");
    }
    // Cloudbeds down: 503, said so.
    e.cb.with(|s| s.api_key = "rotated".into());
    let r = get(&e, "/v1/properties/castle/guests/arrivals?date=2026-07-10").await;
    assert_eq!(r.status, 503, "{}", r.body);
}

/// A property without a Cloudbeds connection: 422 `crm_not_connected`.
async fn arrivals_need_a_connection(b: Backend) {
    let t = fresh_store(b).await;
    guesthub::admin::add_property(&t.store, "inn", "Inn", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let (_, key) =
        guesthub::admin::add_partner(&t.store, "Desk", &["inn".into()], &["guests".into()])
            .await
            .unwrap();
    let app = guests_api::router(t.store.clone(), 64 * 1024);
    for route in ["arrivals", "departures"] {
        let r = call(
            &app,
            "GET",
            &format!("/v1/properties/inn/guests/{route}?date=2026-07-10"),
            Some(&key),
            &[],
            None,
        )
        .await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert_eq!(r.code(), "crm_not_connected");
    }
}

async fn upsert(app: &axum::Router, key: &str, body: Value) -> Value {
    let r = call(
        app,
        "POST",
        "/v1/properties/inn/guests",
        Some(key),
        &[],
        Some(body.to_string()),
    )
    .await;
    assert!(r.status == 201 || r.status == 200, "{}", r.body);
    r.json()
}

/// `?q=` finds guests by the start of a name, email or phone, ignoring
/// case and accents, paged; `?email=` answers as before.
async fn search(b: Backend) {
    let t = fresh_store(b).await;
    guesthub::admin::add_property(&t.store, "inn", "Inn", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let (_, key) =
        guesthub::admin::add_partner(&t.store, "Desk", &["inn".into()], &["guests".into()])
            .await
            .unwrap();
    let app = guests_api::router(t.store.clone(), 64 * 1024);
    let jose = upsert(&app, &key, json!({"email": "jose.lopez@example.com", "first_name": "José", "last_name": "López García", "phone": "+43 664 1234567"})).await;
    upsert(
        &app,
        &key,
        json!({"email": "josefine@example.com", "first_name": "Josefine", "last_name": "Berger"}),
    )
    .await;
    upsert(&app, &key, json!({"email": "anna@example.com", "first_name": "Anna", "last_name": "Lopes", "phone": "0043 1 7654321"})).await;
    let find = |q: &str| {
        let app = app.clone();
        let key = key.clone();
        let q = q.to_owned();
        async move {
            let r = call(
                &app,
                "GET",
                &format!("/v1/properties/inn/guests?{q}"),
                Some(&key),
                &[],
                None,
            )
            .await;
            assert_eq!(r.status, 200, "{q}: {}", r.body);
            let v = r.json();
            let mut emails: Vec<String> = v["guests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["email"].as_str().unwrap().to_owned())
                .collect();
            emails.sort();
            (emails, v)
        }
    };
    assert_eq!(
        find("q=jose").await.0,
        ["jose.lopez@example.com", "josefine@example.com"]
    );
    assert_eq!(find("q=JOSÉ%20L").await.0, ["jose.lopez@example.com"]);
    assert_eq!(
        find("q=lop").await.0,
        ["anna@example.com", "jose.lopez@example.com"]
    );
    assert_eq!(find("q=garc%C3%ADa").await.0, ["jose.lopez@example.com"]);
    assert_eq!(find("q=%2B43664").await.0, ["jose.lopez@example.com"]);
    assert_eq!(find("q=431765").await.0, ["anna@example.com"]);
    assert_eq!(find("q=anna%40ex").await.0, ["anna@example.com"]);
    assert!(find("q=zzz").await.0.is_empty());
    // Paged by id with `next`.
    let (first, v) = find("q=jo&limit=1").await;
    assert_eq!(first.len(), 1);
    let next = v["next"].as_str().unwrap().to_owned();
    let (second, v2) = find(&format!("q=jo&limit=1&after={next}")).await;
    assert_eq!(second.len(), 1);
    assert_ne!(first, second);
    assert!(v2.get("next").is_none(), "{v2}");
    // The email lookup is unchanged: exact, one guest, no `next`.
    let (one, v) = find("email=Jose.Lopez@Example.com").await;
    assert_eq!(one, ["jose.lopez@example.com"]);
    assert_eq!(
        v.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["guests"]
    );
    assert_eq!(v["guests"][0]["id"], jose["id"]);
    // An edit moves the keys.
    let id = jose["id"].as_str().unwrap();
    let r = call(
        &app,
        "PATCH",
        &format!("/v1/properties/inn/guests/{id}"),
        Some(&key),
        &[],
        Some(json!({"first_name": "Pepe"}).to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        find("q=jose").await.0,
        ["jose.lopez@example.com", "josefine@example.com"],
        "email still starts with jose"
    );
    assert_eq!(find("q=pepe").await.0, ["jose.lopez@example.com"]);
    assert!(find("q=jose%20l").await.0.is_empty());
    for bad in [
        "q=j",
        "q=jo&email=a@b.c",
        "q=jo&limit=0",
        "q=jo&limit=101",
        "q=jo&after=%2F%2F",
        "limit=5&email=a@b.c",
        "",
    ] {
        let r = call(
            &app,
            "GET",
            &format!("/v1/properties/inn/guests?{bad}"),
            Some(&key),
            &[],
            None,
        )
        .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
}

both_stores! {
    cloudbeds_address_and_document_pushed => address_and_document_pushed;
    cloudbeds_guest_details_pulled_by_filter => cloudbeds_details_pulled;
    cloudbeds_erasure_overwrites_address => erasure_overwrites_address;
    front_desk_arrivals_and_departures => arrivals_and_departures;
    front_desk_needs_a_connection => arrivals_need_a_connection;
    guest_search_by_prefix => search;
}
