//! Logs never carry personal data or secrets in plain text: every log line
//! of a run through the voucher, club, guest and loyalty routes and a
//! loyalty export (at debug level, more than production logs) is captured
//! and searched for the emails, names, voucher codes, loyalty numbers and
//! API keys the run used.

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use http::StatusCode;
use serde_json::json;
use tests::{Backend, call, fresh_store};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_personal_data_or_secrets_in_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(move || writer.clone())
        .finish();
    // Global (this binary has one test), so threads other than the test's
    // (blocking pool, workers) are captured too.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let t = fresh_store(Backend::Sqlite).await;
    let s = &t.store;
    guesthub::admin::add_property(s, "castle", "Castle", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let scopes: Vec<String> = [
        "vouchers:issue",
        "vouchers:read",
        "vouchers:redeem",
        "club:read",
        "guests",
        "loyalty",
    ]
    .map(String::from)
    .to_vec();
    let (_, key) = guesthub::admin::add_partner(s, "Hotel", &["castle".into()], &scopes)
        .await
        .unwrap();
    let app = guesthub::app::router(s.clone(), 64 * 1024);
    let k = Some(key.as_str());

    // Vouchers: issue, status, redeem (and a failing redemption).
    let r = call(&app, "POST", "/v1/properties/castle/vouchers", k, &[], Some(json!({"article_type": "value", "value": {"amount": 5000, "currency": "EUR"}, "buyer": {"name": "Zelda Quartermaine", "email": "zelda.q@example.org"}}).to_string())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let code = r.json()["code"].as_str().unwrap().to_owned();
    call(
        &app,
        "GET",
        &format!("/v1/properties/castle/vouchers/{code}"),
        k,
        &[],
        None,
    )
    .await;
    let redeem = json!({"amount": {"amount": 1000, "currency": "EUR"}, "reservation": {"number": "R-77", "guest_name": "Bartholomew Fizzwick"}}).to_string();
    let r = call(
        &app,
        "POST",
        &format!("/v1/properties/castle/vouchers/{code}/redemptions"),
        k,
        &[("idempotency-key", "pii-1")],
        Some(redeem),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let too_much = json!({"amount": {"amount": 999_999, "currency": "EUR"}}).to_string();
    call(
        &app,
        "POST",
        &format!("/v1/properties/castle/vouchers/{code}/redemptions"),
        k,
        &[("idempotency-key", "pii-2")],
        Some(too_much),
    )
    .await;

    // Club: an import and lookups of a member and a non-member.
    let property =
        domain::ports::PropertyStore::property(s, &domain::PropertyId::parse("castle").unwrap())
            .await
            .unwrap()
            .unwrap();
    let file = "Email,FirstName,LastName,ClubDescr\nwilhelmina.member@example.net,Wilhelmina,Grubb,Gold\nbad-email-row,Horatio,Nobody,Gold\n";
    let req = ams_import::ImportRequest {
        property,
        source: domain::roster::import::ImportSource {
            key: "ams/castle/m.csv".into(),
            etag: "e".into(),
            sequencer: None,
            arrived_at: Utc::now(),
        },
        kind: domain::roster::FileKind::Delimited,
        input: ams_import::Input::Stream(Box::new(std::io::Cursor::new(file.as_bytes().to_vec()))),
    };
    ams_import::import(s, req).await.unwrap();
    call(
        &app,
        "GET",
        "/v1/properties/castle/club-members/wilhelmina.member@example.net",
        k,
        &[],
        None,
    )
    .await;
    call(
        &app,
        "GET",
        "/v1/properties/castle/club-members/unknown.person@example.net",
        k,
        &[],
        None,
    )
    .await;

    // Guests: upsert, patch, a note, erase.
    let r = call(&app, "POST", "/v1/properties/castle/guests", k, &[], Some(json!({"email": "ophelia.guest@example.com", "first_name": "Ophelia", "last_name": "Thistlewood"}).to_string())).await;
    assert!(r.status.is_success(), "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    call(
        &app,
        "PATCH",
        &format!("/v1/properties/castle/guests/{id}"),
        k,
        &[],
        Some(json!({"last_name": "Thistlewood-Marsh"}).to_string()),
    )
    .await;
    call(
        &app,
        "POST",
        &format!("/v1/properties/castle/guests/{id}/notes"),
        k,
        &[],
        Some(json!({"text": "Prefers Ophelia's corner table"}).to_string()),
    )
    .await;
    call(
        &app,
        "DELETE",
        &format!("/v1/properties/castle/guests/{id}"),
        k,
        &[],
        None,
    )
    .await;
    // Loyalty: enrol, a departure, search, an export to a local folder and
    // a members file read back.
    let r = call(&app, "POST", "/v1/properties/castle/loyalty/enrolments", k, &[], Some(json!({"email": "percival.loyal@example.com", "first_name": "Percival", "last_name": "Honeysett", "loyalty_number": "NC-55501"}).to_string())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = call(&app, "POST", "/v1/properties/castle/stays/R-501/departure", k, &[], Some(json!({"loyalty_number": "NC-55501", "arrival": "2026-11-01", "departure": "2026-11-04", "room_revenue": {"amount": 61000, "currency": "EUR"}}).to_string())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    call(
        &app,
        "GET",
        "/v1/properties/castle/loyalty/members?q=Honeysett",
        k,
        &[],
        None,
    )
    .await;
    let outbox = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(outbox.path().join("return")).unwrap();
    std::fs::write(
        outbox.path().join("return/castle_members_1.csv"),
        "loyalty_number,email,tier,points\nNC-55501,percival.loyal@example.com,Gold,10\nNC-1,not-an-email,Gold,1\n",
    )
    .unwrap();
    let dest = loyalty_export::LocalOutbox {
        dir: outbox.path().to_path_buf(),
        timeout: std::time::Duration::from_secs(1),
    };
    let done =
        loyalty_export::export_all(s, None, &dest, &loyalty_export::ExportOptions::default())
            .await
            .unwrap();
    assert_eq!(done[0].members_confirmed, 1, "{done:?}");

    // A bad key must not be logged either.
    call(
        &app,
        "GET",
        "/v1/properties/castle/vouchers/XXXX",
        Some("ghk_0011223344556677_secretsecretsecretsecretsecretsecret123"),
        &[],
        None,
    )
    .await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.lines().count() > 10, "the run logged: {text}");
    // The secret half itself may contain '_' (base64url): split as the hub does.
    let secret_part = platform::auth::split_key(&key).unwrap().1;
    let plain_code = code.replace('-', "");
    for needle in [
        "zelda.q@example.org",
        "Zelda",
        "Quartermaine",
        "Bartholomew",
        "Fizzwick",
        "wilhelmina.member@example.net",
        "Wilhelmina",
        "Grubb",
        "Horatio",
        "unknown.person@example.net",
        "ophelia.guest@example.com",
        "Ophelia",
        "Thistlewood",
        "corner table",
        "percival.loyal@example.com",
        "Percival",
        "Honeysett",
        "NC-55501",
        code.as_str(),
        plain_code.as_str(),
        key.as_str(),
        secret_part,
        "secretsecretsecret",
    ] {
        assert!(!text.contains(needle), "the logs contain {needle:?}");
    }
}
