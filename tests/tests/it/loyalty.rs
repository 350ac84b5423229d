//! The loyalty export end to end, on both stores: the HTTP contract
//! (enrol, departure, correction → UNDO, cancellation, search), delivery
//! to a real FTP and FTPS server (pyftpdlib), members files read back, and
//! faults — server down, a connection cut mid-upload, a rename refused, a
//! rename whose answer is lost, two runs at once — counted: every record
//! delivered exactly once. Only members' stays are exported (retro days),
//! and names that would break a CSV line or run as a formula are neutralised.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use domain::PropertyId;
use domain::loyalty::ports::{FileDrop, LoyaltyStore, TransferError};
use domain::loyalty::{LoyaltyConnection, PropertyCode, RemoteUrl};
use loyalty_export::{ExportOptions, ExportSummary, export_property};
use platform::transfer::{FtpDrop, Password, SftpDrop};
use serde_json::{Value, json};
use tests::ftp::{FtpServer, PASSWORD, USER};
use tests::{Backend, TestStore, both_stores, call, fresh_store};

const P: &str = "castle";
const BASE: &str = "/v1/properties/castle";

struct Env {
    t: TestStore,
    app: axum::Router,
    key: String,
}

async fn setup(b: Backend) -> Env {
    let t = fresh_store(b).await;
    guesthub::admin::add_property(&t.store, P, "Castle", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let (_, key) = guesthub::admin::add_partner(&t.store, "RMS", &[P.into()], &["loyalty".into()])
        .await
        .unwrap();
    let app = guests_api::router(t.store.clone(), 1 << 20);
    Env { t, app, key }
}

impl Env {
    async fn post(&self, path: &str, body: Value) -> tests::Reply {
        call(
            &self.app,
            "POST",
            &format!("{BASE}{path}"),
            Some(&self.key),
            &[],
            Some(body.to_string()),
        )
        .await
    }

    async fn get(&self, path: &str) -> tests::Reply {
        call(
            &self.app,
            "GET",
            &format!("{BASE}{path}"),
            Some(&self.key),
            &[],
            None,
        )
        .await
    }

    async fn delete(&self, path: &str) -> tests::Reply {
        call(
            &self.app,
            "DELETE",
            &format!("{BASE}{path}"),
            Some(&self.key),
            &[],
            None,
        )
        .await
    }

    fn p(&self) -> PropertyId {
        PropertyId::parse(P).unwrap()
    }

    async fn export(&self, drop: &dyn FileDrop) -> ExportSummary {
        let code = PropertyCode::parse("CASTLE01").unwrap();
        export_property(&self.t.store, &self.p(), drop, &code, &opts()).await
    }
}

fn opts() -> ExportOptions {
    ExportOptions {
        timeout: Duration::from_secs(5),
        lease: chrono::Duration::minutes(10),
        ..ExportOptions::default()
    }
}

fn departure(email: &str, nights: u32, room: i64) -> Value {
    json!({
        "email": email,
        "first_name": "Ana",
        "last_name": "Lopez",
        "arrival": "2026-11-10",
        "departure": format!("2026-11-{:02}", 10 + nights),
        "room_revenue": {"amount": room, "currency": "EUR"},
        "other_revenue": {"amount": 1250, "currency": "EUR"},
    })
}

/// Transaction ids of every data line of every export file in `dir`,
/// each with how many times it appears; checks headers and trailers.
fn delivered(dir: &std::path::Path) -> BTreeMap<String, u32> {
    let mut seen = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".csv") || !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        assert_eq!(&rows[0][0], "HEADER");
        assert_eq!(&rows[0][1], "GUESTHUB-LOYALTY");
        assert_eq!(&rows[0][2], "1");
        assert_eq!(&rows[0][4], name.as_str(), "the header names the file");
        assert_eq!(&rows[1][0], "record_type");
        let trailer = rows.last().unwrap();
        assert_eq!(&trailer[0], "TRAILER");
        let data = &rows[2..rows.len() - 1];
        assert_eq!(trailer[1].parse::<usize>().unwrap(), data.len(), "{name}");
        for row in data {
            assert_eq!(row.len(), 18, "{name}: every record has every column");
            *seen.entry(row[1].to_owned()).or_default() += 1;
        }
    }
    seen
}

async fn contract(b: Backend) {
    let env = setup(b).await;
    // Enrol by contact creates the guest; again is the same enrolment.
    let first = env
        .post(
            "/loyalty/enrolments",
            json!({"email": "Ana@Example.com", "first_name": "Ana", "last_name": "Lopez"}),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let e = first.json();
    assert_eq!(e["state"], "pending");
    let again = env
        .post("/loyalty/enrolments", json!({"email": "ana@example.com"}))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["transaction_id"], e["transaction_id"]);
    let by_id = env
        .post("/loyalty/enrolments", json!({"guest_id": e["guest_id"]}))
        .await;
    assert_eq!(by_id.status, 200);

    // Clear errors.
    let none = env.post("/loyalty/enrolments", json!({})).await;
    assert_eq!(
        (none.status.as_u16(), none.code().as_str()),
        (400, "invalid_field")
    );
    let unknown = env
        .post("/loyalty/enrolments", json!({"guest_id": "nope"}))
        .await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.code().as_str()),
        (404, "guest_not_found")
    );
    let bad_number = env
        .post(
            "/loyalty/enrolments",
            json!({"email": "x@example.com", "loyalty_number": "no spaces"}),
        )
        .await;
    assert_eq!(bad_number.status, 400);

    // Departure, replay, correction, cancellation.
    let d = env
        .post(
            "/stays/R-100/departure",
            departure("ana@example.com", 2, 30_000),
        )
        .await;
    assert_eq!(d.status, 201, "{}", d.body);
    let d = d.json();
    assert_eq!(d["nights"], 2);
    assert_eq!(d["total_revenue"]["amount"], 31_250);
    assert_eq!(d["queued"][0]["transaction_id"], "STY-R-100-1");
    let same = env
        .post(
            "/stays/R-100/departure",
            departure("ana@example.com", 2, 30_000),
        )
        .await;
    assert_eq!(same.status, 200);
    assert_eq!(same.json()["queued"], json!([]));
    let fixed = env
        .post(
            "/stays/R-100/departure",
            departure("ana@example.com", 3, 45_000),
        )
        .await;
    assert_eq!(fixed.status, 201);
    let q = fixed.json()["queued"].clone();
    assert_eq!(q[0]["record_type"], "UNDO");
    assert_eq!(q[0]["reverses"], "STY-R-100-1");
    assert_eq!(q[1]["transaction_id"], "STY-R-100-2");
    let cancel = env.delete("/stays/R-100/departure").await;
    assert_eq!(cancel.status, 200);
    assert_eq!(cancel.json()["queued"][0]["reverses"], "STY-R-100-2");
    assert_eq!(cancel.json()["cancelled"], true);
    let cancel_again = env.delete("/stays/R-100/departure").await;
    assert_eq!(cancel_again.json()["queued"], json!([]));
    let missing = env.delete("/stays/R-404/departure").await;
    assert_eq!(
        (missing.status.as_u16(), missing.code().as_str()),
        (404, "departure_not_found")
    );

    // Bad departures lose nothing and say why.
    for (body, field) in [
        (
            json!({"email": "a@example.com", "arrival": "2026-11-10", "departure": "2026-11-10", "room_revenue": {"amount": 1, "currency": "EUR"}}),
            "departure",
        ),
        (
            json!({"email": "a@example.com", "arrival": "2026-11-10", "departure": "2026-11-12", "room_revenue": {"amount": -1, "currency": "EUR"}}),
            "room_revenue",
        ),
        (
            json!({"email": "a@example.com", "arrival": "2026-11-10", "departure": "2026-11-12", "room_revenue": {"amount": 1, "currency": "EURO"}}),
            "room_revenue.currency",
        ),
        // Revenue is money in the property's currency (EUR here), one shape.
        (
            json!({"email": "a@example.com", "arrival": "2026-11-10", "departure": "2026-11-12", "room_revenue": {"amount": 1, "currency": "USD"}}),
            "room_revenue",
        ),
        (
            json!({"email": "a@example.com", "arrival": "2026-11-10", "departure": "2026-11-12", "room_revenue": {"amount": 1, "currency": "EUR"}, "other_revenue": {"amount": 1, "currency": "GBP"}}),
            "other_revenue",
        ),
        (
            json!({"email": "a@example.com", "arrival": "2026-11-10", "departure": "2026-11-12", "room_revenue": 100}),
            "room_revenue",
        ),
        (
            json!({"email": "a@example.com", "arrival": "2026-11-10", "departure": "2026-11-12", "room_revenue": {"amount": 1, "currency": "EUR"}, "currency": "EUR"}),
            "currency",
        ),
        (
            json!({"email": "a@example.com", "arrival": "2026-11-10", "departure": "2026-11-12", "room_revenue": {"amount": 1, "currency": "EUR"}, "other_revenue": null}),
            "other_revenue",
        ),
    ] {
        let r = env.post("/stays/R-200/departure", body).await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.json()["error"]["details"]["field"], field, "{}", r.body);
    }
    let bad_date = env
        .post("/stays/R-200/departure", json!({"email": "a@example.com", "arrival": "2026-13-01", "departure": "2026-11-12", "room_revenue": {"amount": 1, "currency": "EUR"}}))
        .await;
    assert_eq!(bad_date.status, 400);
    let bad_reservation = env
        .post("/stays/R%20200/departure", departure("a@example.com", 1, 1))
        .await;
    assert_eq!(bad_reservation.status, 400);
    assert!(
        env.t
            .store
            .loyalty_stay(&env.p(), "R-200")
            .await
            .unwrap()
            .is_none()
    );

    // Search: email, name, too short.
    let by_email = env.get("/loyalty/members?q=ana%40example.com").await;
    assert_eq!(
        by_email.json()["members"][0]["enrolment"]["state"],
        "pending"
    );
    assert_eq!(
        by_email.json()["members"][0]["enrolment"]["last_stay"],
        "2026-11-13"
    );
    let by_name = env.get("/loyalty/members?q=LOP").await;
    assert_eq!(by_name.json()["members"].as_array().unwrap().len(), 1);
    let nobody = env.get("/loyalty/members?q=zzz").await;
    assert_eq!(nobody.json()["members"], json!([]));
    let short = env.get("/loyalty/members?q=a").await;
    assert_eq!(short.status, 400);

    // Another property's key sees nothing of this one.
    guesthub::admin::add_property(&env.t.store, "other", "Other", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let (_, other) =
        guesthub::admin::add_partner(&env.t.store, "X", &["other".into()], &["loyalty".into()])
            .await
            .unwrap();
    let r = call(
        &env.app,
        "GET",
        "/v1/properties/other/loyalty/members?q=ana%40example.com",
        Some(&other),
        &[],
        None,
    )
    .await;
    assert_eq!(r.json()["members"], json!([]));
}

fn connection(server: &FtpServer, scheme: &str, ca: Option<String>) -> LoyaltyConnection {
    LoyaltyConnection {
        property: PropertyId::parse(P).unwrap(),
        url: RemoteUrl::parse(&server.url(scheme, "")).unwrap(),
        username: USER.into(),
        password_env: "UNUSED".into(),
        password_ssm_parameter: None,
        property_code: PropertyCode::parse("CASTLE01").unwrap(),
        tls_ca_pem: ca,
        ssh_host_key: None,
        retro_days: domain::loyalty::DEFAULT_RETRO_DAYS,
        connected_at: chrono::Utc::now(),
    }
}

fn ftp_drop(server: &FtpServer, scheme: &str, ca: Option<String>) -> FtpDrop {
    FtpDrop::new(
        &connection(server, scheme, ca),
        Password::new(PASSWORD),
        Duration::from_secs(5),
    )
    .unwrap()
}

/// Queues `n` guests' enrolment and departure; returns every transaction id.
async fn queue(env: &Env, from: usize, n: usize) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for i in from..from + n {
        let email = format!("guest{i}@example.com");
        let e = env
            .post("/loyalty/enrolments", json!({"email": email}))
            .await;
        assert_eq!(e.status, 201, "{}", e.body);
        ids.insert(e.json()["transaction_id"].as_str().unwrap().to_owned());
        let d = env
            .post(
                &format!("/stays/R{i}/departure"),
                departure(&email, 2, 20_000 + i as i64),
            )
            .await;
        assert_eq!(d.status, 201, "{}", d.body);
        ids.insert(
            d.json()["queued"][0]["transaction_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids
}

async fn over_ftp(b: Backend) {
    let env = setup(b).await;
    let server = FtpServer::start(false).await;
    let drop = ftp_drop(&server, "ftp", None);
    let mut expected = queue(&env, 0, 3).await;
    let s = env.export(&drop).await;
    assert!(s.errors.is_empty(), "{s:?}");
    assert_eq!((s.enrol, s.stay, s.undo), (3, 3, 0));
    let file = s.file.clone().unwrap();
    assert!(
        file.starts_with("CASTLE01_") && file.ends_with("_000001.csv"),
        "{file}"
    );
    assert!(server.root.path().join(&file).is_file());
    assert!(!server.root.path().join(format!("{file}.part")).exists());

    // A correction after export: UNDO of the sent STAY, then the new STAY.
    let fixed = env
        .post(
            "/stays/R1/departure",
            departure("guest1@example.com", 4, 99_000),
        )
        .await;
    for t in fixed.json()["queued"].as_array().unwrap() {
        expected.insert(t["transaction_id"].as_str().unwrap().to_owned());
    }
    let s2 = env.export(&drop).await;
    assert_eq!((s2.enrol, s2.stay, s2.undo), (0, 1, 1), "{s2:?}");
    // Nothing pending: no file.
    let s3 = env.export(&drop).await;
    assert_eq!(s3.file, None);

    let got = delivered(server.root.path());
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(got.values().all(|n| *n == 1), "{got:?}");

    // Enrolments are exported; NetCarrots answers with a members file.
    let found = env.get("/loyalty/members?q=guest2%40example.com").await;
    assert_eq!(found.json()["members"][0]["enrolment"]["state"], "exported");
    let ret = server.dir("return");
    std::fs::write(
        ret.join("CASTLE01_members_20261122.csv"),
        "loyalty_number,email,tier,points\r\nNC-0002,guest2@example.com,Gold,1200\r\nNC-0009,stranger@example.com,Silver,5\r\nbad line\r\n",
    )
    .unwrap();
    std::fs::write(ret.join("OTHER_members_20261122.csv"), "x").unwrap();
    let s4 = env.export(&drop).await;
    assert!(s4.errors.is_empty(), "{s4:?}");
    assert_eq!(
        (
            s4.members_files,
            s4.members_confirmed,
            s4.members_unmatched,
            s4.members_rejected
        ),
        (1, 1, 1, 1)
    );
    assert!(
        ret.join("processed/CASTLE01_members_20261122.csv")
            .is_file()
    );
    assert!(
        ret.join("OTHER_members_20261122.csv").is_file(),
        "another property's file is left"
    );
    let m = env.get("/loyalty/members?q=NC-0002").await.json();
    let e = &m["members"][0]["enrolment"];
    assert_eq!(
        (
            e["state"].as_str(),
            e["tier"].as_str(),
            e["points"].as_i64()
        ),
        (Some("confirmed"), Some("Gold"), Some(1200))
    );
    assert_eq!(e["last_stay"], "2026-11-12");
    server.stop().await;
}

async fn over_ftps(b: Backend) {
    let env = setup(b).await;
    let server = FtpServer::start(true).await;
    let expected = queue(&env, 0, 2).await;
    // Without trusting the self-signed certificate: refused, nothing lost.
    let untrusted = ftp_drop(&server, "ftps", None);
    let s = env.export(&untrusted).await;
    assert_eq!(s.records(), 0);
    assert!(s.errors.iter().any(|e| e.contains("TLS")), "{s:?}");
    // Plain FTP against a server that requires TLS: refused too.
    let plain = ftp_drop(&server, "ftp", None);
    assert!(!env.export(&plain).await.errors.is_empty());

    let trusted = ftp_drop(&server, "ftps", server.cert_pem.clone());
    let s = env.export(&trusted).await;
    assert!(s.errors.is_empty(), "{s:?}");
    assert!(
        s.resent,
        "the file chosen by the failed run is the one sent"
    );
    assert_eq!(s.records(), 4);
    let got = delivered(server.root.path());
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(got.values().all(|n| *n == 1));
    server.stop().await;
}

/// A drop whose rename happens but whose answer is lost, `n` times.
struct LostRenameAnswer {
    inner: FtpDrop,
    left: AtomicU32,
    uploads: AtomicU32,
}

#[async_trait]
impl FileDrop for LostRenameAnswer {
    async fn exists(&self, name: &str) -> Result<bool, TransferError> {
        self.inner.exists(name).await
    }
    async fn upload(&self, name: &str, bytes: &[u8]) -> Result<(), TransferError> {
        self.uploads.fetch_add(1, Ordering::SeqCst);
        self.inner.upload(name, bytes).await
    }
    async fn rename(&self, from: &str, to: &str) -> Result<(), TransferError> {
        self.inner.rename(from, to).await?;
        if self.left.load(Ordering::SeqCst) > 0 {
            self.left.fetch_sub(1, Ordering::SeqCst);
            return Err(TransferError::Unavailable("connection reset (test)".into()));
        }
        Ok(())
    }
    async fn list_returns(&self) -> Result<Vec<String>, TransferError> {
        self.inner.list_returns().await
    }
    async fn open_return(&self, name: &str) -> Result<Box<dyn Read + Send>, TransferError> {
        self.inner.open_return(name).await
    }
    async fn archive_return(&self, name: &str) -> Result<(), TransferError> {
        self.inner.archive_return(name).await
    }
}

async fn faults(b: Backend) {
    let env = setup(b).await;
    let server = FtpServer::start(false).await;
    let drop = ftp_drop(&server, "ftp", None);
    let mut expected = BTreeSet::new();
    let mut runs = 0;

    // 1. Server down: connection refused; nothing marked.
    expected.extend(queue(&env, 0, 4).await);
    let down = FtpServer::start(false).await;
    let dead = ftp_drop(&down, "ftp", None);
    down.stop().await;
    let s = env.export(&dead).await;
    runs += 1;
    assert!(s.errors.iter().any(|e| e.contains("unavailable")), "{s:?}");
    let open = env
        .t
        .store
        .export_state(&env.p())
        .await
        .unwrap()
        .open
        .unwrap();
    // The same batch goes out next time, under the same name.
    let s = env.export(&drop).await;
    runs += 1;
    assert!(s.errors.is_empty() && s.resent, "{s:?}");
    assert_eq!(s.file.as_deref(), Some(open.file_name.as_str()));

    // 2. Connection cut mid-upload, twice; then it goes through.
    expected.extend(queue(&env, 10, 30).await);
    server.arm("cut_upload", 2);
    for _ in 0..2 {
        let s = env.export(&drop).await;
        runs += 1;
        assert!(!s.errors.is_empty(), "{s:?}");
        assert_eq!(s.file, None);
    }
    let s = env.export(&drop).await;
    runs += 1;
    assert!(s.errors.is_empty() && s.resent, "{s:?}");
    assert_eq!(s.records(), 60);

    // 3. Rename refused: the temporary file stays invisible; retried.
    expected.extend(queue(&env, 50, 3).await);
    server.arm("refuse_rename", 1);
    let s = env.export(&drop).await;
    runs += 1;
    assert!(s.errors.iter().any(|e| e.contains("renaming")), "{s:?}");
    let name = env
        .t
        .store
        .export_state(&env.p())
        .await
        .unwrap()
        .open
        .unwrap()
        .file_name;
    assert!(!server.root.path().join(&name).exists());
    assert!(server.root.path().join(format!("{name}.part")).exists());
    let s = env.export(&drop).await;
    runs += 1;
    assert!(s.errors.is_empty(), "{s:?}");
    assert!(server.root.path().join(&name).exists());

    // 4. The rename happens but its answer is lost: the next run finds the
    //    file under its final name and only confirms it (no second upload).
    expected.extend(queue(&env, 60, 2).await);
    let lossy = LostRenameAnswer {
        inner: ftp_drop(&server, "ftp", None),
        left: AtomicU32::new(1),
        uploads: AtomicU32::new(0),
    };
    assert!(!env.export(&lossy).await.errors.is_empty());
    let s = env.export(&lossy).await;
    runs += 2;
    assert!(s.errors.is_empty() && s.resent, "{s:?}");
    assert_eq!(lossy.uploads.load(Ordering::SeqCst), 1);

    // 5. The schedule fires twice at once: one run works, one skips.
    expected.extend(queue(&env, 70, 5).await);
    let d1 = ftp_drop(&server, "ftp", None);
    let d2 = ftp_drop(&server, "ftp", None);
    let (a, b2) = tokio::join!(env.export(&d1), env.export(&d2));
    runs += 2;
    let files = [&a, &b2].iter().filter(|s| s.file.is_some()).count();
    let skipped = [&a, &b2].iter().filter(|s| s.skipped.is_some()).count();
    assert_eq!((files, skipped), (1, 1), "{a:?} {b2:?}");

    // Count: every record exactly once, none left pending.
    assert!(
        env.t
            .store
            .pending_records(&env.p(), 10_000)
            .await
            .unwrap()
            .is_empty()
    );
    let got = delivered(server.root.path());
    let dupes = got.values().filter(|n| **n > 1).count();
    let got: BTreeSet<String> = got.into_keys().collect();
    let lost = expected.difference(&got).count();
    let extra = got.difference(&expected).count();
    eprintln!(
        "loyalty faults ({b:?}): {runs} runs, {} records queued, {} delivered, {dupes} duplicates, {lost} lost",
        expected.len(),
        got.len()
    );
    assert_eq!((dupes, lost, extra), (0, 0, 0));
    server.stop().await;
}

/// Without a connection, files land in a local folder (the outbox).
async fn local_outbox(b: Backend) {
    let env = setup(b).await;
    let dir = tempfile::tempdir().unwrap();
    let expected = queue(&env, 0, 2).await;
    let dest = loyalty_export::LocalOutbox {
        dir: dir.path().to_path_buf(),
        timeout: Duration::from_secs(1),
    };
    let all = loyalty_export::export_all(&env.t.store, None, &dest, &opts())
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].records(), 4);
    assert!(all[0].file.as_deref().unwrap().starts_with("castle_"));
    let got = delivered(dir.path());
    assert_eq!(got.into_keys().collect::<BTreeSet<_>>(), expected);
}

/// SFTP: the host key is pinned; a wrong or missing pin is refused with
/// the fingerprint to check; delivery, a refused rename and members files
/// work as over FTP.
async fn over_sftp(b: Backend) {
    let env = setup(b).await;
    let server = FtpServer::start_sftp().await;
    let expected = queue(&env, 0, 3).await;
    let sftp = |pin: Option<String>| {
        let mut c = connection(&server, "sftp", None);
        c.ssh_host_key = pin;
        SftpDrop::new(&c, Password::new(PASSWORD), Duration::from_secs(5)).unwrap()
    };
    let unpinned = env.export(&sftp(None)).await;
    assert!(
        unpinned
            .errors
            .iter()
            .any(|e| e.contains("no host key is pinned")),
        "{unpinned:?}"
    );
    let wrong = env
        .export(&sftp(Some(
            "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
        )))
        .await;
    assert!(
        wrong.errors.iter().any(|e| e.contains("not the pinned")),
        "{wrong:?}"
    );
    let mut bad_password = connection(&server, "sftp", None);
    bad_password.ssh_host_key = server.host_key.clone();
    let bad = SftpDrop::new(&bad_password, Password::new("nope"), Duration::from_secs(5)).unwrap();
    assert!(
        env.export(&bad)
            .await
            .errors
            .iter()
            .any(|e| e.contains("login refused"))
    );

    let drop = sftp(server.host_key.clone());
    server.arm("refuse_rename", 1);
    let refused = env.export(&drop).await;
    assert!(
        refused.errors.iter().any(|e| e.contains("renaming")),
        "{refused:?}"
    );
    let s = env.export(&drop).await;
    assert!(s.errors.is_empty() && s.resent, "{s:?}");
    assert_eq!(s.records(), 6);
    let got = delivered(server.root.path());
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(got.values().all(|n| *n == 1));

    let ret = server.dir("return");
    std::fs::write(
        ret.join("CASTLE01_members_1.csv"),
        "loyalty_number,email,tier,points\nNC-7,guest1@example.com,Silver,80\n",
    )
    .unwrap();
    let s = env.export(&drop).await;
    assert!(s.errors.is_empty(), "{s:?}");
    assert_eq!(s.members_confirmed, 1);
    assert!(ret.join("processed/CASTLE01_members_1.csv").is_file());
    server.stop().await;
}

/// Erasing a guest leaves their unsent records out of every file.
async fn erasure(b: Backend) {
    let env = setup(b).await;
    let (_, admin) =
        guesthub::admin::add_partner(&env.t.store, "Front desk", &[P.into()], &["guests".into()])
            .await
            .unwrap();
    let kept = queue(&env, 0, 1).await;
    let gone = env
        .post(
            "/loyalty/enrolments",
            json!({"email": "erase.me@example.com"}),
        )
        .await
        .json();
    env.post(
        "/stays/R-E1/departure",
        departure("erase.me@example.com", 2, 10_000),
    )
    .await;
    let uri = format!("{BASE}/guests/{}", gone["guest_id"].as_str().unwrap());
    let r = call(&env.app, "DELETE", &uri, Some(&admin), &[], None).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let dir = tempfile::tempdir().unwrap();
    let s = env
        .export(&platform::transfer::LocalDrop::new(dir.path()))
        .await;
    assert!(s.errors.is_empty(), "{s:?}");
    let got = delivered(dir.path());
    assert_eq!(got.into_keys().collect::<BTreeSet<_>>(), kept);
    let text = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect::<String>();
    assert!(!text.contains("erase.me"));
}

/// Names as a CRM or an old import may hold them — line breaks, NUL,
/// formulas — go out as one record per line that a CSV reader gives back
/// whole: the text as it was, control characters as spaces and a `'`
/// before a leading `=`, `+`, `-` or `@`.
async fn hostile_names_in_the_export(b: Backend) {
    use domain::guest::ports::GuestStore;
    let env = setup(b).await;
    let names = [
        ("Ana\r\nSTAY,INJECTED", "Lo\npez"),
        ("Nul\0l", "=HYPERLINK(\"http://x\",\"y\")"),
        ("+1 555", "-2+3"),
        ("@SUM(A1:A9)", "\tTabbed"),
        ("Anne-Marie", "O'Brien, \"Jr\""),
    ];
    let now = env.t.store.clock().now();
    for (i, (first, last)) in names.iter().enumerate() {
        let mut g =
            domain::guest::Guest::new(domain::guest::GuestId(format!("hostile-{i}")), env.p(), now);
        g.email = Some(domain::Email::parse(&format!("h{i}@example.com")).unwrap());
        g.first_name = Some((*first).to_owned());
        g.last_name = Some((*last).to_owned());
        env.t.store.create_guest(&g).await.unwrap();
        let e = env
            .post("/loyalty/enrolments", json!({"guest_id": g.id.0}))
            .await;
        assert_eq!(e.status, 201, "{}", e.body);
        let mut d = departure(&format!("h{i}@example.com"), 2, 10_000);
        d["first_name"] = json!(null);
        d["last_name"] = json!(null);
        let d = env.post(&format!("/stays/H{i}/departure"), d).await;
        assert_eq!(d.status, 201, "{}", d.body);
    }
    let dir = tempfile::tempdir().unwrap();
    let s = env
        .export(&platform::transfer::LocalDrop::new(dir.path()))
        .await;
    assert!(s.errors.is_empty(), "{s:?}");
    assert_eq!(s.records(), 2 * names.len());
    let file = dir.path().join(s.file.unwrap());
    let bytes = std::fs::read(&file).unwrap();
    assert!(!bytes.contains(&0), "no NUL written");
    let text = String::from_utf8(bytes).unwrap();
    // One physical line per record: header, columns, records, trailer.
    assert_eq!(text.split("\r\n").count() - 1, 2 * names.len() + 3);
    assert!(!text.replace("\r\n", "").contains(['\r', '\n']));
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2 * names.len() + 3);
    let expect = |raw: &str| {
        let spaced: String = raw
            .chars()
            .map(|c| if c.is_ascii_control() { ' ' } else { c })
            .collect();
        if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{spaced}")
        } else {
            spaced
        }
    };
    for (i, (first, last)) in names.iter().enumerate() {
        let email = format!("h{i}@example.com");
        let mine: Vec<&csv::StringRecord> =
            rows.iter().filter(|r| r.get(5) == Some(&email)).collect();
        assert_eq!(mine.len(), 2, "ENROL and STAY of {email}");
        for row in mine {
            assert_eq!(row.len(), 18);
            assert_eq!(&row[6], expect(first), "{row:?}");
            assert_eq!(&row[7], expect(last), "{row:?}");
        }
    }
}

/// Only members' stays leave the building: a departure of a guest who is
/// not enrolled is kept (counted as `not_enrolled`), exported with the
/// enrolment if it comes within the retro days, kept for good after them
/// or with 0 retro days; corrections and cancellations of a kept stay stay
/// local.
async fn only_members_stays_leave(b: Backend) {
    let env = setup(b).await;
    env.t.clock.set(
        chrono::DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc),
    );
    let dir = tempfile::tempdir().unwrap();
    let drop = platform::transfer::LocalDrop::new(dir.path());
    let state = |env: &Env| {
        let app = env.app.clone();
        let key = env.key.clone();
        async move {
            let r = call(
                &app,
                "GET",
                &format!("{BASE}/loyalty/export"),
                Some(&key),
                &[],
                None,
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.body);
            r.json()
        }
    };
    // Bo departs twice (one a correction) and Cy long ago: none is a member.
    let d = env
        .post(
            "/stays/R-B1/departure",
            departure("bo@example.com", 2, 10_000),
        )
        .await;
    assert_eq!(d.status, 201, "{}", d.body);
    assert_eq!(
        (d.json()["held"].clone(), d.json()["queued"].clone()),
        (json!(true), json!([]))
    );
    let fixed = env
        .post(
            "/stays/R-B1/departure",
            departure("bo@example.com", 3, 12_000),
        )
        .await;
    assert_eq!(fixed.status, 201);
    assert_eq!(
        (
            fixed.json()["held"].clone(),
            fixed.json()["revision"].clone()
        ),
        (json!(true), json!(2))
    );
    let mut old = departure("cy@example.com", 2, 10_000);
    old["arrival"] = json!("2026-09-01");
    old["departure"] = json!("2026-09-03");
    assert_eq!(env.post("/stays/R-C1/departure", old).await.status, 201);
    let gone = env
        .post(
            "/stays/R-D1/departure",
            departure("dee@example.com", 1, 5_000),
        )
        .await;
    assert_eq!(gone.status, 201);
    assert_eq!(
        env.delete("/stays/R-D1/departure").await.json()["queued"],
        json!([])
    );
    let st = state(&env).await;
    assert_eq!(
        (st["not_enrolled"].clone(), st["retro_days"].clone()),
        (json!(2), json!(30))
    );

    // Nothing of theirs leaves.
    let s = env.export(&drop).await;
    assert!(s.errors.is_empty(), "{s:?}");
    assert_eq!(
        (s.file.as_deref(), s.records(), s.not_enrolled),
        (None, 0, 2)
    );

    // Bo enrols 8 days after departing: the corrected stay goes with the
    // enrolment. Cy enrols 80 days after: the stay stays here.
    let e = env
        .post("/loyalty/enrolments", json!({"email": "bo@example.com"}))
        .await;
    assert_eq!(e.status, 201, "{}", e.body);
    let e = env
        .post("/loyalty/enrolments", json!({"email": "cy@example.com"}))
        .await;
    assert_eq!(e.status, 201, "{}", e.body);
    let s = env.export(&drop).await;
    assert!(s.errors.is_empty(), "{s:?}");
    assert_eq!(
        (s.enrol, s.stay, s.undo, s.not_enrolled),
        (2, 1, 0, 1),
        "{s:?}"
    );
    let got = delivered(dir.path());
    assert!(got.contains_key("STY-R-B1-2"), "{got:?}");
    assert!(
        !got.keys().any(|k| k.contains("R-C1") || k.contains("R-D1")),
        "{got:?}"
    );
    let text: String = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect();
    assert!(!text.contains("dee@example.com"));
    // Bo is a member now: a correction goes out as UNDO + STAY.
    let again = env
        .post(
            "/stays/R-B1/departure",
            departure("bo@example.com", 3, 13_000),
        )
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.json()["held"], false);
    assert_eq!(again.json()["queued"][0]["reverses"], "STY-R-B1-2");
    assert_eq!(state(&env).await["not_enrolled"], 1);

    // With 0 retro days a later enrolment exports nothing of the past.
    let mut c = connection_for_local(&env);
    c.retro_days = 0;
    env.t.store.save_loyalty_connection(&c).await.unwrap();
    assert_eq!(
        env.post(
            "/stays/R-E1/departure",
            departure("eve@example.com", 2, 9_000)
        )
        .await
        .status,
        201
    );
    assert_eq!(
        env.post("/loyalty/enrolments", json!({"email": "eve@example.com"}))
            .await
            .status,
        201
    );
    let st = state(&env).await;
    assert_eq!(
        (st["not_enrolled"].clone(), st["retro_days"].clone()),
        (json!(2), json!(0))
    );
    let pending = env.t.store.pending_records(&env.p(), 100).await.unwrap();
    let ids: Vec<&str> = pending.iter().map(|r| r.transaction_id.as_str()).collect();
    assert!(!ids.iter().any(|i| i.contains("R-E1")), "{ids:?}");
}

/// A connection record for a property (its transfer is not used here).
fn connection_for_local(env: &Env) -> LoyaltyConnection {
    LoyaltyConnection {
        property: env.p(),
        url: RemoteUrl::parse("ftp://127.0.0.1:1/in").unwrap(),
        username: "u".into(),
        password_env: "UNUSED".into(),
        password_ssm_parameter: None,
        property_code: PropertyCode::parse("CASTLE01").unwrap(),
        tls_ca_pem: None,
        ssh_host_key: None,
        retro_days: domain::loyalty::DEFAULT_RETRO_DAYS,
        connected_at: chrono::Utc::now(),
    }
}

both_stores! {
    only_members_stays_leave_the_building => only_members_stays_leave;
    hostile_names_are_neutralised_in_the_export => hostile_names_in_the_export;
    erasure_leaves_unsent_records_out => erasure;
    export_over_sftp => over_sftp;
    http_contract => contract;
    export_over_ftp => over_ftp;
    export_over_ftps => over_ftps;
    export_faults_lose_and_duplicate_nothing => faults;
    export_to_local_outbox => local_outbox;
}

#[test]
fn connection_urls_are_checked() {
    assert!(RemoteUrl::parse("ftps://files.netcarrots.example/in").is_ok());
    assert!(RemoteUrl::parse("ftp://u:p@files.netcarrots.example/in").is_err());
}
