//! Sandbox keys (`ghk_test_…`) on both stores: what a sandbox key creates
//! lives in its property's test namespace, invisible to live keys and
//! never counted in live capacity, settlement, pickup or exports; a live
//! key's data is invisible to it; `test_mode` in a request must agree with
//! the key; live configuration (products, the club roster) is read, never
//! changed, by sandbox keys. One test per route family.

use axum::Router;
use chrono::{TimeZone, Utc};
use domain::ports::PropertyStore;
use http::StatusCode;
use serde_json::{Value, json};
use tests::{Backend, Reply, TestStore, both_stores, call, fresh_store};

const ALL: &str = "vouchers:issue,vouchers:read,vouchers:redeem,vouchers:pickup,checkout,club:read,club:admin,guests,loyalty";

struct World {
    t: TestStore,
    app: Router,
    live: String,
    test: String,
}

async fn world(b: Backend) -> World {
    let t = fresh_store(b).await;
    t.clock
        .set(Utc.with_ymd_and_hms(2027, 1, 10, 9, 0, 0).unwrap());
    guesthub::admin::add_property(&t.store, "castle", "Castle", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let live = tests::partner_key(&t.store, "Shop", &["castle"], ALL).await;
    let test = tests::sandbox_key(&t.store, "Shop sandbox", &["castle"], ALL).await;
    assert!(test.starts_with("ghk_test_") && !live.starts_with("ghk_test_"));
    let app = guesthub::app::router(t.store.clone(), 256 * 1024);
    World { t, app, live, test }
}

impl World {
    async fn send(&self, key: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
        let idem = uuid::Uuid::new_v4().to_string();
        call(
            &self.app,
            method,
            &format!("/v1/properties/castle{path}"),
            Some(key),
            &[("idempotency-key", &idem)],
            body.map(|b| b.to_string()),
        )
        .await
    }
}

fn ok(r: &Reply, status: StatusCode) -> Value {
    assert_eq!(r.status, status, "{}", r.body);
    r.json()
}

fn eur(a: i64) -> Value {
    json!({"amount": a, "currency": "EUR"})
}

fn reservation() -> Value {
    json!({"number": "R-1", "arrival": "2027-01-20", "departure": "2027-01-22"})
}

async fn vouchers(b: Backend) {
    let w = world(b).await;
    let issue = |test: Option<bool>| {
        let mut v = json!({"article_type": "value", "value": eur(10_000), "order_ref": "WEB-1"});
        if let Some(t) = test {
            v["test_mode"] = json!(t);
        }
        v
    };
    // `test_mode` must agree with the key, either way; omitted, it is the key's.
    let r = w
        .send(&w.live, "POST", "/vouchers", Some(issue(Some(true))))
        .await;
    assert_eq!(r.code(), "test_mode_mismatch", "{}", r.body);
    let r = w
        .send(&w.test, "POST", "/vouchers", Some(issue(Some(false))))
        .await;
    assert_eq!(r.code(), "test_mode_mismatch", "{}", r.body);
    let test = ok(
        &w.send(&w.test, "POST", "/vouchers", Some(issue(None)))
            .await,
        StatusCode::CREATED,
    );
    assert_eq!(test["voucher"]["test_mode"], true, "{test}");
    let test_code = test["code"].as_str().unwrap().to_owned();
    let live = ok(
        &w.send(&w.live, "POST", "/vouchers", Some(issue(None)))
            .await,
        StatusCode::CREATED,
    );
    assert_eq!(live["voucher"]["test_mode"], false, "{live}");
    let live_code = live["code"].as_str().unwrap().to_owned();

    // Neither world sees the other's voucher.
    let r = w
        .send(&w.live, "GET", &format!("/vouchers/{test_code}"), None)
        .await;
    assert_eq!(r.code(), "voucher_not_found", "{}", r.body);
    let r = w
        .send(&w.test, "GET", &format!("/vouchers/{live_code}"), None)
        .await;
    assert_eq!(r.code(), "voucher_not_found", "{}", r.body);
    let r = w
        .send(&w.live, "GET", "/vouchers?order_ref=WEB-1", None)
        .await;
    let found: Vec<_> = ok(&r, StatusCode::OK)["vouchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["code"].as_str().unwrap().to_owned())
        .collect();
    // (The lookup masks all but the last group.)
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].ends_with(&live_code[live_code.len() - 4..]),
        "{found:?}"
    );

    // A test redemption: not in the live settlement, not in the live pickup feed.
    let redeem = json!({"amount": eur(2_500), "reservation": reservation()});
    ok(
        &w.send(
            &w.test,
            "POST",
            &format!("/vouchers/{test_code}/redemptions"),
            Some(redeem.clone()),
        )
        .await,
        StatusCode::CREATED,
    );
    ok(
        &w.send(
            &w.live,
            "POST",
            &format!("/vouchers/{live_code}/redemptions"),
            Some(redeem),
        )
        .await,
        StatusCode::CREATED,
    );
    let s = ok(
        &w.send(
            &w.live,
            "GET",
            "/settlement?from=2027-01-10&to=2027-01-10&format=json",
            None,
        )
        .await,
        StatusCode::OK,
    );
    let lines = s["lines"].as_array().unwrap();
    assert!(lines.iter().all(|l| l["code"] == live_code.as_str()), "{s}");
    assert_eq!(s["totals"][0]["redeemed"], eur(2_500), "{s}");
    let feed = ok(
        &w.send(&w.live, "GET", "/voucher-orders", None).await,
        StatusCode::OK,
    );
    let codes: Vec<_> = feed["orders"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| {
            o["vouchers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["code"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(codes, vec![live_code.clone()], "{feed}");
    let feed = ok(
        &w.send(&w.test, "GET", "/voucher-orders", None).await,
        StatusCode::OK,
    );
    assert_eq!(
        feed["orders"][0]["vouchers"][0]["code"],
        test_code.as_str(),
        "{feed}"
    );
    assert_eq!(
        feed["orders"][0]["vouchers"][0]["test_mode"], true,
        "{feed}"
    );
}

async fn checkout_orders(b: Backend) {
    let w = world(b).await;
    let product = json!({"kind": "event", "name": "Harvest dinner", "currency": "EUR", "capacity": 2,
        "units": [{"id": "adult", "name": "Adult", "price": eur(8_000)}]});
    // The catalogue is live configuration: a sandbox key reads it, never changes it.
    let r = w
        .send(&w.test, "PUT", "/products/harvest", Some(product.clone()))
        .await;
    assert_eq!(r.code(), "test_mode_mismatch", "{}", r.body);
    ok(
        &w.send(&w.live, "PUT", "/products/harvest", Some(product))
            .await,
        StatusCode::OK,
    );
    let listed = ok(
        &w.send(&w.test, "GET", "/products", None).await,
        StatusCode::OK,
    );
    assert_eq!(listed["products"][0]["id"], "harvest", "{listed}");

    let order_on = |uuid: &str, qty: u32, date: &str| {
        json!({"uuid": uuid, "items": [{"product_id": "harvest", "unit_id": "adult", "quantity": qty, "date": date}],
            "payment": {"mode": "pay_later", "parts": []}})
    };
    let order = |uuid: &str, qty: u32| order_on(uuid, qty, "2027-02-01");
    let mut mismatched = order("t-0", 1);
    mismatched["test_mode"] = json!(false);
    let r = w.send(&w.test, "POST", "/orders", Some(mismatched)).await;
    assert_eq!(r.code(), "test_mode_mismatch", "{}", r.body);
    // The sandbox sells every seat; live capacity is untouched.
    let t = ok(
        &w.send(&w.test, "POST", "/orders", Some(order("t-1", 2)))
            .await,
        StatusCode::CREATED,
    );
    assert_eq!(t["test_mode"], true, "{t}");
    let r = w
        .send(&w.test, "POST", "/orders", Some(order("t-2", 1)))
        .await;
    assert_eq!(r.code(), "sold_out", "{}", r.body);
    let l = ok(
        &w.send(&w.live, "POST", "/orders", Some(order("l-1", 2)))
            .await,
        StatusCode::CREATED,
    );
    assert_eq!(l["test_mode"], false, "{l}");
    // Orders are invisible across worlds, even under the same uuid.
    let r = w.send(&w.live, "GET", "/orders/t-1", None).await;
    assert_eq!(r.code(), "order_not_found", "{}", r.body);
    let r = w.send(&w.test, "GET", "/orders/l-1", None).await;
    assert_eq!(r.code(), "order_not_found", "{}", r.body);
    let again = ok(
        &w.send(
            &w.test,
            "POST",
            "/orders",
            Some(order_on("l-1", 1, "2027-02-02")),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_eq!(again["test_mode"], true, "{again}");
}

async fn memberships(b: Backend) {
    let w = world(b).await;
    ok(&w.send(&w.live, "PUT", "/products/club", Some(json!({"kind": "membership", "name": "Wine club", "currency": "EUR",
        "units": [{"id": "member", "name": "Member", "price": eur(9_900)}], "validity": {"count": 1, "unit": "years"},
        "member_fields": ["email"]}))).await, StatusCode::OK);
    let sale = json!({"uuid": "m-1", "contact": {"email": "ana@example.com", "first_name": "Ana"},
        "items": [{"product_id": "club", "unit_id": "member", "quantity": 1}], "payment": {"mode": "pay_later", "parts": []}});
    let o = ok(
        &w.send(&w.test, "POST", "/orders", Some(sale)).await,
        StatusCode::CREATED,
    );
    let reference = o["lines"][0]["memberships"][0]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let found = ok(
        &w.send(&w.test, "GET", "/memberships?email=ana@example.com", None)
            .await,
        StatusCode::OK,
    );
    assert_eq!(
        found["memberships"][0]["reference"],
        reference.as_str(),
        "{found}"
    );
    assert_eq!(found["memberships"][0]["test_mode"], true, "{found}");
    // A live key finds nothing, by search or by reference, and may not ask for test data.
    let found = ok(
        &w.send(&w.live, "GET", "/memberships?email=ana@example.com", None)
            .await,
        StatusCode::OK,
    );
    assert_eq!(found["memberships"], json!([]), "{found}");
    let r = w
        .send(&w.live, "GET", &format!("/memberships/{reference}"), None)
        .await;
    assert_eq!(r.code(), "membership_not_found", "{}", r.body);
    let r = w
        .send(
            &w.live,
            "GET",
            "/memberships?email=ana@example.com&test_mode=true",
            None,
        )
        .await;
    assert_eq!(r.code(), "test_mode_mismatch", "{}", r.body);
    let r = w
        .send(
            &w.test,
            "GET",
            "/memberships?email=ana@example.com&test_mode=false",
            None,
        )
        .await;
    assert_eq!(r.code(), "test_mode_mismatch", "{}", r.body);
}

async fn guests(b: Backend) {
    let w = world(b).await;
    let ana = json!({"email": "ana@example.com", "first_name": "Ana", "last_name": "Lopez"});
    let test = ok(
        &w.send(&w.test, "POST", "/guests", Some(ana.clone())).await,
        StatusCode::CREATED,
    );
    // The same email is a new guest in the live world (not `email_taken`, not the test one).
    let live = ok(
        &w.send(&w.live, "POST", "/guests", Some(ana)).await,
        StatusCode::CREATED,
    );
    assert_ne!(test["id"], live["id"]);
    let r = w
        .send(
            &w.live,
            "GET",
            &format!("/guests/{}", test["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(r.code(), "guest_not_found", "{}", r.body);
    let r = w
        .send(
            &w.test,
            "GET",
            &format!("/guests/{}", live["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(r.code(), "guest_not_found", "{}", r.body);
    for (key, id) in [(&w.live, &live["id"]), (&w.test, &test["id"])] {
        let found = ok(
            &w.send(key, "GET", "/guests?email=ana@example.com", None)
                .await,
            StatusCode::OK,
        );
        let ids: Vec<_> = found["guests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["id"].clone())
            .collect();
        assert_eq!(ids, vec![id.clone()], "{found}");
    }
    // Erasing the test guest (an erasure receipt) leaves the live one alone.
    ok(
        &w.send(
            &w.test,
            "DELETE",
            &format!("/guests/{}", test["id"].as_str().unwrap()),
            None,
        )
        .await,
        StatusCode::ACCEPTED,
    );
    let g = ok(
        &w.send(
            &w.live,
            "GET",
            &format!("/guests/{}", live["id"].as_str().unwrap()),
            None,
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(
        (g["erased"].clone(), g["email"].clone()),
        (json!(false), json!("ana@example.com"))
    );
}

async fn club_lookups(b: Backend) {
    let w = world(b).await;
    let property =
        w.t.store
            .property(&domain::PropertyId::parse("castle").unwrap())
            .await
            .unwrap()
            .unwrap();
    let req = ams_import::ImportRequest::new(
        property,
        domain::roster::import::ImportSource {
            key: "ams/castle/m.csv".into(),
            etag: "e".into(),
            sequencer: None,
            arrived_at: Utc::now(),
        },
        ams_import::Input::Stream(Box::new(std::io::Cursor::new(
            b"Email,ClubDescr\ngold@example.com,Gold\n".to_vec(),
        ))),
    )
    .expect("the key names the property");
    ams_import::import(&w.t.store, req).await.unwrap();
    // The roster is live configuration: a sandbox key looks members up in
    // it, and cannot change tier settings or approve imports.
    for key in [&w.live, &w.test] {
        let m = ok(
            &w.send(key, "GET", "/club-members/gold@example.com", None)
                .await,
            StatusCode::OK,
        );
        assert_eq!(
            (m["member"].clone(), m["tiers"].clone()),
            (json!(true), json!(["Gold"])),
            "{m}"
        );
    }
    let r = w
        .send(
            &w.test,
            "PUT",
            "/club-tiers/Gold",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(r.code(), "test_mode_mismatch", "{}", r.body);
    let tiers = ok(
        &w.send(&w.live, "GET", "/club-tiers", None).await,
        StatusCode::OK,
    );
    assert_eq!(tiers["tiers"][0]["enabled"], false, "{tiers}");
    let imports = ok(
        &w.send(&w.live, "GET", "/roster-imports", None).await,
        StatusCode::OK,
    );
    let id = imports["imports"][0]["id"].as_str().unwrap().to_owned();
    let r = w
        .send(
            &w.test,
            "POST",
            &format!("/roster-imports/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(r.code(), "test_mode_mismatch", "{}", r.body);
}

async fn loyalty(b: Backend) {
    let w = world(b).await;
    let departure = json!({"email": "ana@example.com", "first_name": "Ana", "last_name": "Lopez",
        "arrival": "2027-01-05", "departure": "2027-01-08",
        "room_revenue": eur(45_000), "other_revenue": eur(1_250)});
    ok(
        &w.send(
            &w.test,
            "POST",
            "/loyalty/enrolments",
            Some(json!({"email": "ana@example.com", "first_name": "Ana", "last_name": "Lopez"})),
        )
        .await,
        StatusCode::CREATED,
    );
    let d = w
        .send(&w.test, "POST", "/stays/R-9/departure", Some(departure))
        .await;
    assert!(d.status.is_success(), "{}", d.body);
    // Live keys see no member and no stay.
    let members = ok(
        &w.send(&w.test, "GET", "/loyalty/members?q=ana%40example.com", None)
            .await,
        StatusCode::OK,
    );
    assert_eq!(
        members["members"].as_array().map(Vec::len),
        Some(1),
        "{members}"
    );
    let members = ok(
        &w.send(&w.live, "GET", "/loyalty/members?q=ana%40example.com", None)
            .await,
        StatusCode::OK,
    );
    assert_eq!(members["members"], json!([]), "{members}");
    let r = w
        .send(&w.live, "DELETE", "/stays/R-9/departure", None)
        .await;
    assert_eq!(r.code(), "departure_not_found", "{}", r.body);
    // The local export: the test records go to the outbox's `test/` folder
    // only; the live outbox gets nothing.
    let data = tempfile::tempdir().unwrap();
    let summaries = guesthub::loyalty::export(&w.t.store, data.path(), None, false)
        .await
        .unwrap();
    let outbox = guesthub::loyalty::outbox_dir(data.path());
    let files = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_file())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(files(&outbox), Vec::<String>::new(), "{summaries:?}");
    let test_files = files(&outbox.join("test"));
    assert_eq!(test_files.len(), 1, "{summaries:?}");
    let content = std::fs::read_to_string(outbox.join("test").join(&test_files[0])).unwrap();
    assert!(
        content.contains("STAY") && content.contains("ENROL"),
        "{content}"
    );
}

both_stores! {
    sandbox_vouchers => vouchers;
    sandbox_orders => checkout_orders;
    sandbox_memberships => memberships;
    sandbox_guests => guests;
    sandbox_club => club_lookups;
    sandbox_loyalty => loyalty;
}
