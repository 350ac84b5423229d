//! The club manager's side of the roster on both stores: club files
//! uploaded through the API (streamed, cut off, repeated, too large), the
//! presigned S3 upload on moto, trial mode (no recognition and no club
//! discount until live, `?preview=true`, one flip to live) and the club
//! status with held imports.

use std::time::Duration;

use axum::Router;
use domain::roster::import::ImportStatus;
use http::StatusCode;
use serde_json::{Value, json};
use tests::{Backend, Reply, TestStore, both_stores, call, fresh_store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const P: &str = "/v1/properties/castle";

struct Club {
    t: TestStore,
    app: Router,
    /// club:admin + club:read + checkout
    admin: String,
    /// club:read + checkout (a booking site)
    shop: String,
}

async fn club(b: Backend) -> Club {
    let t = fresh_store(b).await;
    guesthub::admin::add_property(&t.store, "castle", "Castle", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let admin = tests::partner_key(
        &t.store,
        "Office",
        &["castle"],
        "club:admin,club:read,checkout",
    )
    .await;
    let shop = tests::partner_key(&t.store, "Shop", &["castle"], "club:read,checkout").await;
    let app = guesthub::app::router(t.store.clone(), 256 * 1024);
    let c = Club {
        t,
        app,
        admin,
        shop,
    };
    let r = c
        .put(
            "/products/harvest",
            json!({"kind": "event", "name": "Harvest dinner", "currency": "EUR",
            "units": [{"id": "adult", "name": "Adult", "price": {"amount": 8000, "currency": "EUR"}}],
            "discounts": {"member": {"percent_off": 10}, "tiers": {"Gold": {"fixed_price": {"amount": 6000, "currency": "EUR"}}}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = c
        .put(
            "/products/cellar",
            json!({"kind": "event", "name": "Cellar night", "currency": "EUR", "members_only": true,
            "units": [{"id": "adult", "name": "Adult", "price": {"amount": 5000, "currency": "EUR"}}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = c.put("/club-tiers/Gold", json!({"enabled": true})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    c
}

impl Club {
    async fn put(&self, path: &str, body: Value) -> Reply {
        call(
            &self.app,
            "PUT",
            &format!("{P}{path}"),
            Some(&self.admin),
            &[],
            Some(body.to_string()),
        )
        .await
    }
    async fn get(&self, key: &str, path: &str) -> Reply {
        call(
            &self.app,
            "GET",
            &format!("{P}{path}"),
            Some(key),
            &[],
            None,
        )
        .await
    }
    /// `POST /roster-imports` with a raw body and content type.
    async fn upload(&self, key: &str, query: &str, content_type: &str, body: &str) -> Reply {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let req = http::Request::builder()
            .method("POST")
            .uri(format!("{P}/roster-imports{query}"))
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", content_type)
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
    async fn order(&self, uuid: &str, email: &str, product: &str) -> Reply {
        call(
            &self.app,
            "POST",
            &format!("{P}/orders"),
            Some(&self.shop),
            &[("idempotency-key", &uuid::Uuid::new_v4().to_string())],
            Some(
                json!({"uuid": uuid, "contact": {"email": email},
                "items": [{"product_id": product, "unit_id": "adult", "quantity": 1, "date": "2027-02-01"}],
                "payment": {"mode": "pay_later", "parts": []}})
                .to_string(),
            ),
        )
        .await
    }
    async fn imports(&self) -> Vec<Value> {
        let r = self.get(&self.shop, "/roster-imports").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.json()["imports"].as_array().unwrap().clone()
    }
    async fn recognised(&self, email: &str) -> Value {
        let r = self
            .get(&self.shop, &format!("/club-members/{email}"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.json()
    }
}

const FIRST: &str = "MemberID,Email,FirstName,ClubDescr,ClubStatus\r\nM1,gold@example.com,Gia,Gold,Active\r\nM2,plain@example.com,Pia,Silver,Active\r\n";
const SECOND: &str = "MemberID,Email,FirstName,ClubDescr,ClubStatus\r\nM1,gold@example.com,Gia,Gold,Active\r\nM2,plain@example.com,Pia,Silver,Active\r\nM3,new@example.com,Ned,Gold,Active\r\n";

/// Uploads: 202 with the report, the same file again is the same import,
/// every accepted content type, a type that is not a club file's, the
/// size limit, the role, and a body cut off on a real socket.
async fn uploads(b: Backend) {
    let c = club(b).await;
    let r = c
        .upload(&c.admin, "", "text/csv; charset=utf-8", FIRST)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let first = r.json();
    assert_eq!(first["status"], "applied", "{}", r.body);
    assert_eq!(first["members"], 2);
    assert_eq!(first["file"], "upload.csv");
    assert_eq!(c.recognised("new@example.com").await["member"], false);
    // The same file again is a repeat delivery: the first import's report,
    // nothing imported twice.
    let r = c.upload(&c.admin, "", "text/csv", FIRST).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.json()["id"], first["id"]);
    assert_eq!(c.imports().await.len(), 1);
    // A booking site may look members up but not upload.
    let r = c.upload(&c.shop, "", "text/csv", SECOND).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // Not a club file's type, or octet-stream without a usable name: 415
    // / 400, nothing imported.
    for (query, ct, status) in [
        ("", "application/json", StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (
            "",
            "application/octet-stream",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "?filename=members.pdf",
            "application/octet-stream",
            StatusCode::BAD_REQUEST,
        ),
        (
            "?filename=..%2Fmembers.csv",
            "application/octet-stream",
            StatusCode::BAD_REQUEST,
        ),
        (
            "?filename=members.xlsx",
            "text/csv",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = c.upload(&c.admin, query, ct, SECOND).await;
        assert_eq!(r.status, status, "{query} {ct}: {}", r.body);
        assert!(r.json()["error"]["code"].is_string());
    }
    assert_eq!(c.imports().await.len(), 1);
    // A named file as octet-stream: the name (and its timestamp) is kept.
    let r = c
        .upload(
            &c.admin,
            "?filename=members_20300101.csv",
            "application/octet-stream",
            SECOND,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(
        (r.json()["status"].clone(), r.json()["file"].clone()),
        (json!("applied"), json!("members_20300101.csv"))
    );
    assert_eq!(c.recognised("new@example.com").await["member"], true);
    // A header-only file is held like a dropped one: the roster stays.
    let r = c
        .upload(
            &c.admin,
            "?filename=members_20300102.tsv",
            "text/tab-separated-values",
            "MemberID\tEmail\tClubDescr\r\n",
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.json()["status"], "held", "{}", r.body);
    assert_eq!(c.recognised("new@example.com").await["member"], true);

    // On a real socket: a declared length over 100 MiB is refused before
    // any of it is read; a body cut off mid-way imports nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util_cancel();
    let server = tokio::spawn(guesthub::server::serve(
        listener,
        c.app.clone(),
        guesthub::server::Limits::default(),
        stop.1,
    ));
    let raw = |length: u64, sent: &'static str, key: String| async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST {P}/roster-imports?filename=members_20300103.csv HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: text/csv\r\nContent-Length: {length}\r\n\r\n{sent}"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        // Gone mid-body: the rest never comes.
        s.shutdown().await.unwrap();
        let mut answer = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut answer)).await;
        answer
    };
    let answer = raw(200 * 1024 * 1024, "", c.admin.clone()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("body_too_large"), "{answer}");
    let cut =
        "MemberID,Email,ClubDescr,ClubStatus\r\nM9,cut@example.com,Gold,Active\r\nM10,other@exa";
    let answer = raw(10_000, cut, c.admin.clone()).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    // Give the server a moment in case it were still writing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let imports = c.imports().await;
    assert_eq!(imports.len(), 3, "no import of the cut-off file");
    assert!(imports.iter().all(|i| i["file"] != "members_20300103.csv"));
    assert_eq!(c.recognised("cut@example.com").await["member"], false);
    assert_eq!(c.recognised("new@example.com").await["member"], true);
    let _ = stop.0.send(());
    let _ = server.await;
}

fn tokio_util_cancel() -> (
    tokio::sync::oneshot::Sender<()>,
    impl std::future::Future<Output = ()> + Send,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

/// Trial mode: files are imported and applied, but nobody is recognised
/// and no order gets a club price until the switch to live, which makes
/// the roster applied last count at once.
async fn trial_mode(b: Backend) {
    let c = club(b).await;
    // Existing properties are live.
    let r = c.get(&c.admin, "/club-settings").await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({"mode": "live"}))
    );
    // Settings are the club admin's.
    let r = c.get(&c.shop, "/club-settings").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    for bad in [
        json!({"mode": "beta"}),
        json!({"mode": "trial", "x": 1}),
        json!({}),
    ] {
        let r = c.put("/club-settings", bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    let r = c.put("/club-settings", json!({"mode": "trial"})).await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({"mode": "trial"}))
    );

    let r = c.upload(&c.admin, "", "text/csv", FIRST).await;
    assert_eq!(r.json()["status"], "applied", "{}", r.body);
    // Recognition answers as for a non-member, and says why.
    let seen = c.recognised("gold@example.com").await;
    assert_eq!(
        seen,
        json!({"member": false, "tiers": [], "club_mode": "trial"})
    );
    // The preview answers from the roster.
    let r = c
        .get(&c.shop, "/club-members/gold@example.com?preview=true")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (
            r.json()["member"].clone(),
            r.json()["tiers"].clone(),
            r.json()["club_mode"].clone()
        ),
        (json!(true), json!(["Gold"]), json!("trial"))
    );
    // No club price for anyone, and members-only events stay closed.
    for (uuid, email) in [("t1", "gold@example.com"), ("t2", "plain@example.com")] {
        let r = c.order(uuid, email, "harvest").await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.json()["total"]["amount"], 8000, "{}", r.body);
        assert!(r.json()["lines"][0]["discount"].is_null(), "{}", r.body);
    }
    assert_eq!(
        c.order("t3", "gold@example.com", "cellar").await.code(),
        "members_only_event"
    );
    // A second file during the trial is applied to the (shadow) roster.
    let r = c
        .upload(
            &c.admin,
            "?filename=members_20300101.csv",
            "text/csv",
            SECOND,
        )
        .await;
    assert_eq!(r.json()["status"], "applied", "{}", r.body);
    assert_eq!(c.recognised("new@example.com").await["member"], false);

    // Live: the roster applied last counts at once.
    let r = c.put("/club-settings", json!({"mode": "live"})).await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({"mode": "live"}))
    );
    let seen = c.recognised("new@example.com").await;
    assert_eq!(
        (seen["member"].clone(), seen["tiers"].clone()),
        (json!(true), json!(["Gold"]))
    );
    assert!(seen.get("club_mode").is_none(), "{seen}");
    let r = c.order("l1", "gold@example.com", "harvest").await;
    assert_eq!(
        (
            r.json()["lines"][0]["discount"]["source"].clone(),
            r.json()["total"]["amount"].clone()
        ),
        (json!("club_tier"), json!(6000)),
        "{}",
        r.body
    );
    let r = c.order("l2", "plain@example.com", "harvest").await;
    assert_eq!(r.json()["total"]["amount"], 7200, "{}", r.body);

    // A property added in trial starts there.
    guesthub::admin::add_property(&c.t.store, "abbey", "Abbey", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let abbey = domain::PropertyId::parse("abbey").unwrap();
    guesthub::admin::set_club_mode(&c.t.store, &abbey, domain::roster::store::ClubMode::Trial)
        .await
        .unwrap();
    let status = guesthub::roster::club_status(&c.t.store, "abbey")
        .await
        .unwrap();
    assert_eq!(status.mode, domain::roster::store::ClubMode::Trial);
}

/// `club status`: mode, active roster, last import, held imports with
/// their reasons.
async fn club_status_lists_held_imports(b: Backend) {
    let c = club(b).await;
    let s = guesthub::roster::club_status(&c.t.store, "castle")
        .await
        .unwrap();
    assert!(s.active.is_none() && s.last_import.is_none() && s.held.is_empty());
    let r = c.upload(&c.admin, "", "text/csv", FIRST).await;
    let applied = r.json()["id"].as_str().unwrap().to_owned();
    let r = c
        .upload(
            &c.admin,
            "?filename=members_20300101.csv",
            "text/csv",
            "MemberID,Email,ClubDescr\r\n",
        )
        .await;
    assert_eq!(r.json()["status"], "held", "{}", r.body);
    let held = r.json()["id"].as_str().unwrap().to_owned();
    let s = guesthub::roster::club_status(&c.t.store, "castle")
        .await
        .unwrap();
    assert_eq!(s.mode, domain::roster::store::ClubMode::Live);
    let active = s.active.as_ref().unwrap();
    assert_eq!(
        (active.import_id.as_str(), active.members),
        (applied.as_str(), 2)
    );
    assert_eq!(s.last_import.as_ref().unwrap().id, held);
    assert_eq!(s.held.len(), 1);
    assert_eq!(s.held[0].id, held);
    assert_eq!(s.held[0].status, ImportStatus::Held);
    assert!(s.held[0].reason.is_some());
    let text = guesthub::roster::status_text(&s);
    assert!(text.contains(&format!("HELD {held}")), "{text}");
    assert!(text.contains("active roster: 2 members"), "{text}");
    // Approved, it is no longer held.
    let r = call(
        &c.app,
        "POST",
        &format!("{P}/roster-imports/{held}/approve"),
        Some(&c.admin),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let s = guesthub::roster::club_status(&c.t.store, "castle")
        .await
        .unwrap();
    assert!(s.held.is_empty());
}

both_stores! {
    upload => uploads;
    trial => trial_mode;
    status => club_status_lists_held_imports;
}

/// AWS: a presigned PUT into the drop bucket (a plain HTTP client against
/// moto), then the S3 event imports it; without a drop bucket (the local
/// hub) the route says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presigned_upload_on_moto() {
    let endpoint = tests::moto_endpoint();
    let c = club(Backend::Dynamodb).await;
    let r = call(
        &c.app,
        "POST",
        &format!("{P}/roster-imports/upload-url"),
        Some(&c.admin),
        &[],
        Some(json!({"filename": "members.csv"}).to_string()),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "upload_url_unavailable".into()
        )
    );
    let s3 = ams_import::s3::client(Some(&endpoint)).await;
    let bucket = format!("drop-{}", uuid::Uuid::new_v4().simple());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let app = checkout_api::router(c.t.store.clone(), 256 * 1024).layer(axum::Extension(
        checkout_api::uploads::DropBucket {
            bucket: bucket.clone(),
            s3: s3.clone(),
        },
    ));
    for bad in [
        json!({"filename": "../x.csv"}),
        json!({"filename": "x.pdf"}),
    ] {
        let r = call(
            &app,
            "POST",
            &format!("{P}/roster-imports/upload-url"),
            Some(&c.admin),
            &[],
            Some(bad.to_string()),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    }
    let r = call(
        &app,
        "POST",
        &format!("{P}/roster-imports/upload-url"),
        Some(&c.shop),
        &[],
        Some(json!({"filename": "members_20300101.csv"}).to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(
        &app,
        "POST",
        &format!("{P}/roster-imports/upload-url"),
        Some(&c.admin),
        &[],
        Some(json!({"filename": "members_20300101.csv"}).to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    assert_eq!(v["key"], "ams/castle/members_20300101.csv");
    assert_eq!(v["method"], "PUT");
    let url = v["url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Expires=900"), "{url}");
    let put = reqwest::Client::new()
        .put(url)
        .body(SECOND.to_owned())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{:?}", put.text().await);
    let etag = put
        .headers()
        .get("etag")
        .unwrap()
        .to_str()
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/s3_put_event.json"),
    )
    .unwrap();
    let event = fixture
        .replace("BUCKET", &bucket)
        .replace("ETAG", &etag)
        .replace(
            "ams/castle/Members+Export.csv",
            "ams/castle/members_20300101.csv",
        );
    let event: aws_lambda_events::event::s3::S3Event = serde_json::from_str(&event).unwrap();
    let reports = ams_import::s3::handle_event(&c.t.store, &s3, event)
        .await
        .unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(
        (reports[0].status, reports[0].members),
        (ImportStatus::Applied, 3)
    );
    assert_eq!(c.recognised("new@example.com").await["member"], true);
}

/// AWS: a held import is published to the club alert topic (SNS on moto,
/// delivered to an HTTP subscriber here); an applied one is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn held_import_is_published_on_moto() {
    use std::sync::{Arc, Mutex};
    let endpoint = tests::moto_endpoint();
    let c = club(Backend::Dynamodb).await;
    // The subscriber: every POST body it gets.
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = got.clone();
    let subscriber = axum::Router::new().route(
        "/alerts",
        axum::routing::post(move |body: String| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, subscriber).await });
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .load()
        .await;
    let sns = aws_sdk_sns::Client::new(&conf);
    let topic = sns
        .create_topic()
        .name(format!("club-alerts-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("http")
        .endpoint(format!("http://{addr}/alerts"))
        .send()
        .await
        .unwrap();
    let alert = ams_import::alert::HeldAlert {
        topic_arn: topic,
        sns,
    };
    let s3 = ams_import::s3::client(Some(&endpoint)).await;
    let bucket = format!("drop-{}", uuid::Uuid::new_v4().simple());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/s3_put_event.json"),
    )
    .unwrap();
    let mut reports = Vec::new();
    for (name, body) in [
        ("members_20300101.csv", FIRST),
        ("members_20300102.csv", "MemberID,Email,ClubDescr\r\n"),
    ] {
        let key = format!("ams/castle/{name}");
        let put = s3
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
        let event = fixture
            .replace("BUCKET", &bucket)
            .replace("ETAG", put.e_tag().unwrap().trim_matches('"'))
            .replace("ams/castle/Members+Export.csv", &key);
        let event: aws_lambda_events::event::s3::S3Event = serde_json::from_str(&event).unwrap();
        reports.extend(
            ams_import::s3::handle_event_alerting(&c.t.store, &s3, Some(&alert), event)
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        reports.iter().map(|r| r.status).collect::<Vec<_>>(),
        [ImportStatus::Applied, ImportStatus::Held]
    );
    let held = &reports[1];
    let mut notes = Vec::new();
    for _ in 0..100 {
        notes = got
            .lock()
            .unwrap()
            .iter()
            .filter_map(|b| serde_json::from_str::<Value>(b).ok())
            .filter(|v| v["Type"] == "Notification")
            .collect::<Vec<_>>();
        if !notes.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(notes.len(), 1, "one alert, for the held file: {notes:?}");
    let message = notes[0]["Message"].as_str().unwrap();
    assert!(message.contains("members_20300102.csv"), "{message}");
    assert!(message.contains(&held.id), "{message}");
    assert!(
        message.contains(held.reason.as_deref().unwrap()),
        "{message}"
    );
    assert_eq!(notes[0]["Subject"], "GuestHub: club file held for castle");
    // No personal data in it.
    assert!(!message.contains("@example.com"), "{message}");
}
