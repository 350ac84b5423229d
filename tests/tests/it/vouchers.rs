//! Vouchers end to end, through the local runner's router, on both stores:
//! issue, status, redemption, replay, reversal, holds, ledger, settlement,
//! write-off, imports, pickup, portal acceptance, tenancy, error codes, 200+
//! concurrent redemptions and a crash after commit.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration as StdDuration, Instant};

use async_trait::async_trait;
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use domain::StoreError;
use http::StatusCode;
use platform::Store;
use platform::store::faults::{FaultPlan, FaultyItems};
use platform::store::items::{Item, ItemStore, Page, Query, Table, TxError, Write};
use serde_json::{Value, json};
use tests::{Backend, Reply, TestStore, both_stores, call, fresh_store, send};

// ---- set-up ---------------------------------------------------------------

/// The items a test's routers use (moto is already behind the shared
/// atomicity gate, see `tests::MotoGate`).
fn backend_items(t: &TestStore) -> Arc<dyn ItemStore> {
    t.items.clone()
}

struct Hub {
    t: TestStore,
    store: Store,
    app: Router,
    /// A second "process" (its own `Store`) on the same tables.
    app2: Router,
    /// Castle's back office: issues, reads, writes off.
    office: String,
    /// Castle's PMSs.
    asa: String,
    protel: String,
    /// The abbey's PMS (also issues its own vouchers).
    abbey: String,
    /// A hotel group acting for the castle and the spa.
    group: String,
}

const MAX_BODY: usize = 256 * 1024;

async fn hub(b: Backend) -> Hub {
    let t = fresh_store(b).await;
    let items = backend_items(&t);
    let store = Store::with_clock(items.clone(), t.clock.clone());
    let s = &store;
    for (id, name, tz) in [
        ("castle", "Castle Hotel", "Europe/Vienna"),
        ("abbey", "Abbey Hotel", "Europe/Berlin"),
        ("spa", "Spa Resort", "Europe/Vienna"),
    ] {
        guesthub::admin::add_property(s, id, name, tz, "EUR")
            .await
            .unwrap();
    }
    let partner = |name, props, scopes| tests::partner_key(&store, name, props, scopes);
    let office = partner("Castle office", &["castle"], "vouchers:issue,vouchers:read").await;
    let pms = "vouchers:read,vouchers:redeem,vouchers:pickup";
    let asa = partner("ASA", &["castle"], pms).await;
    let protel = partner("Protel", &["castle"], pms).await;
    let abbey = partner(
        "Abbey PMS",
        &["abbey"],
        "vouchers:read,vouchers:redeem,vouchers:pickup,vouchers:issue",
    )
    .await;
    let group = partner("Group", &["castle", "spa"], "vouchers:read,vouchers:redeem").await;
    let app = guesthub::app::router(store.clone(), MAX_BODY);
    let app2 = guesthub::app::router(Store::with_clock(items, t.clock.clone()), MAX_BODY);
    Hub {
        t,
        store,
        app,
        app2,
        office,
        asa,
        protel,
        abbey,
        group,
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn eur(a: i64) -> Value {
    json!({"amount": a, "currency": "EUR"})
}

fn uri(property: &str, rest: &str) -> String {
    format!("/v1/properties/{property}{rest}")
}

fn reservation(n: &str) -> Value {
    json!({"number": n, "arrival": "2027-01-20", "departure": "2027-01-22", "guest_name": "Ana López"})
}

fn expect(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    if !code.is_empty() {
        assert_eq!(r.code(), code, "{}", r.body);
    }
}

/// Issues a castle voucher through the back office; returns its code.
async fn issue(h: &Hub, body: Value) -> String {
    let r = send(
        &h.app,
        "POST",
        &uri("castle", "/vouchers"),
        &h.office,
        None,
        Some(body),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.json()["code"].as_str().unwrap().to_owned()
}

fn value(amount: i64) -> Value {
    json!({"article_type": "value", "value": eur(amount), "order_ref": "WEB-1",
           "buyer": {"name": "Bea Buyer", "email": "bea@example.com"}})
}

async fn redeem(h: &Hub, key: &str, property: &str, code: &str, idem: &str, body: Value) -> Reply {
    send(
        &h.app,
        "POST",
        &uri(property, &format!("/vouchers/{code}/redemptions")),
        key,
        Some(idem),
        Some(body),
    )
    .await
}

fn redeem_body(amount: Option<i64>, n: &str) -> Value {
    let mut b = json!({"reservation": reservation(n)});
    if let Some(a) = amount {
        b["amount"] = eur(a);
    }
    b
}

async fn status(h: &Hub, key: &str, property: &str, code: &str) -> Reply {
    send(
        &h.app,
        "GET",
        &uri(property, &format!("/vouchers/{code}")),
        key,
        None,
        None,
    )
    .await
}

/// The whole ledger of a castle voucher.
async fn ledger(h: &Hub, code: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::from("0");
    loop {
        let r = send(
            &h.app,
            "GET",
            &uri(
                "castle",
                &format!("/vouchers/{code}/activities?limit=500&after={after}"),
            ),
            &h.office,
            None,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let j = r.json();
        out.extend(j["activities"].as_array().unwrap().iter().cloned());
        match j["next"].as_str() {
            Some(n) => after = n.to_owned(),
            None => return out,
        }
    }
}

/// Σ amount per kind, and checks balance = Σ amounts with every
/// balance_after the running sum.
fn audit(acts: &[Value]) -> (BTreeMap<String, i64>, i64) {
    let mut sums = BTreeMap::new();
    let mut running = 0;
    for (i, a) in acts.iter().enumerate() {
        assert_eq!(
            a["id"].as_u64().unwrap(),
            i as u64 + 1,
            "activities are numbered"
        );
        let amount = a["amount"]["amount"].as_i64().unwrap();
        running += amount;
        assert_eq!(
            a["balance_after"]["amount"].as_i64().unwrap(),
            running,
            "{a}"
        );
        assert!(running >= 0, "negative balance at {a}");
        *sums
            .entry(a["kind"].as_str().unwrap().to_owned())
            .or_insert(0) += amount;
    }
    (sums, running)
}

fn kinds(acts: &[Value]) -> Vec<&str> {
    acts.iter().map(|a| a["kind"].as_str().unwrap()).collect()
}

// ---- issue, status, redemption, replay, reversal, ledger -------------------

async fn redemption_lifecycle(b: Backend) {
    let h = hub(b).await;
    let code = issue(&h, value(10_000)).await;
    assert_eq!(code.len(), 24, "{code}");
    let s = status(&h, &h.asa, "castle", &code).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.body);
    let j = s.json();
    assert_eq!(j["balance"], eur(10_000));
    assert_eq!(j["initial_value"], eur(10_000));
    assert_eq!(j["status"], "active");
    assert_eq!(j["article_type"], "value");
    assert_eq!(j["redeemable"], true);
    assert_eq!(j["picked_up"], false);
    assert_eq!(j["issuer"], "castle");
    assert!(j.get("reason").is_none());
    // The code as a guest types it.
    let sloppy = code.to_lowercase().replace('-', "%20");
    assert_eq!(
        status(&h, &h.asa, "castle", &sloppy).await.status,
        StatusCode::OK
    );

    // Partial redemption, replayed byte for byte.
    let body = redeem_body(Some(2_500), "R-100");
    let first = redeem(&h, &h.asa, "castle", &code, "red-1", body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let r = first.json();
    assert_eq!(r["redeemed"], eur(2_500));
    assert_eq!(r["balance"], eur(7_500));
    assert_eq!(r["status"], "active");
    assert_eq!(r["picked_up"], false);
    let redemption_id = r["redemption_id"].as_str().unwrap().to_owned();
    let again = redeem(&h, &h.asa, "castle", &code, "red-1", body.clone()).await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert_eq!(again.headers["idempotency-replayed"], "true");
    // Same key, another request; no key at all.
    let other = redeem(
        &h,
        &h.asa,
        "castle",
        &code,
        "red-1",
        redeem_body(Some(2_600), "R-100"),
    )
    .await;
    expect(
        &other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    let none = send(
        &h.app,
        "POST",
        &uri("castle", &format!("/vouchers/{code}/redemptions")),
        &h.asa,
        None,
        Some(body),
    )
    .await;
    expect(&none, StatusCode::BAD_REQUEST, "idempotency_key_required");
    // A misspelt field never falls back to "redeem everything".
    let typo = redeem(
        &h,
        &h.asa,
        "castle",
        &code,
        "red-typo",
        json!({"ammount": eur(1), "reservation": reservation("R")}),
    )
    .await;
    expect(&typo, StatusCode::BAD_REQUEST, "invalid_field");

    // Reversal: never above what was redeemed.
    let rev_uri = uri(
        "castle",
        &format!("/vouchers/{code}/redemptions/{redemption_id}/reversal"),
    );
    let rev = |idem: &'static str, body: Value| {
        let (app, key, u) = (h.app.clone(), h.asa.clone(), rev_uri.clone());
        async move { send(&app, "POST", &u, &key, Some(idem), Some(body)).await }
    };
    let too_much = rev("rev-0", json!({"amount": eur(3_000)})).await;
    expect(
        &too_much,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reversal_exceeds_redemption",
    );
    assert_eq!(
        too_much.json()["error"]["details"]["reversible"],
        eur(2_500)
    );
    let part = rev(
        "rev-1",
        json!({"amount": eur(1_000), "reason": "booking shortened"}),
    )
    .await;
    assert_eq!(part.status, StatusCode::CREATED, "{}", part.body);
    assert_eq!(part.json()["reversed"], eur(1_000));
    assert_eq!(part.json()["balance"], eur(8_500));
    assert_eq!(part.json()["reversible"], eur(1_500));
    let rest = rev("rev-2", json!({})).await;
    assert_eq!(rest.status, StatusCode::CREATED, "{}", rest.body);
    assert_eq!(rest.json()["reversed"], eur(1_500));
    assert_eq!(rest.json()["balance"], eur(10_000));
    let over = rev("rev-3", json!({})).await;
    expect(
        &over,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reversal_exceeds_redemption",
    );
    let ghost = send(
        &h.app,
        "POST",
        &uri(
            "castle",
            &format!("/vouchers/{code}/redemptions/nope/reversal"),
        ),
        &h.asa,
        Some("rev-4"),
        Some(json!({})),
    )
    .await;
    expect(&ghost, StatusCode::NOT_FOUND, "redemption_not_found");

    // Full redemption.
    let full = redeem(
        &h,
        &h.protel,
        "castle",
        &code,
        "red-2",
        redeem_body(None, "R-101"),
    )
    .await;
    assert_eq!(full.status, StatusCode::CREATED, "{}", full.body);
    assert_eq!(full.json()["redeemed"], eur(10_000));
    assert_eq!(full.json()["balance"], eur(0));
    assert_eq!(full.json()["status"], "redeemed");
    let s = status(&h, &h.asa, "castle", &code).await.json();
    assert_eq!(
        (s["redeemable"].clone(), s["reason"].clone()),
        (json!(false), json!("insufficient_balance"))
    );

    // The ledger explains the balance.
    let acts = ledger(&h, &code).await;
    assert_eq!(
        kinds(&acts),
        ["issue", "redeem", "reverse", "reverse", "redeem"]
    );
    let (sums, balance) = audit(&acts);
    assert_eq!(balance, 0);
    assert_eq!(sums["redeem"], -12_500);
    assert_eq!(sums["reverse"], 2_500);
    assert_eq!(acts[1]["reservation"]["number"], "R-100");
    assert_eq!(acts[1]["accepting_property"], "castle");
    assert_eq!(acts[1]["redemption_id"], redemption_id.as_str());
    assert!(acts[1]["partner"].is_string());
}

async fn gift_cards_and_lifecycle(b: Backend) {
    let h = hub(b).await;
    let card = issue(&h, json!({"article_type": "gift_card", "value": eur(0)})).await;
    let s = status(&h, &h.asa, "castle", &card).await.json();
    assert_eq!(s["status"], "pending");
    assert_eq!(s["reason"], "zero_value");
    let r = redeem(&h, &h.asa, "castle", &card, "gc-r0", redeem_body(None, "R")).await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY, "zero_value");
    let load_uri = uri("castle", &format!("/vouchers/{card}/loads"));
    let load = |key: &str, idem: Option<&str>, amount: i64| {
        let (app, u, key, idem) = (
            h.app.clone(),
            load_uri.clone(),
            key.to_owned(),
            idem.map(str::to_owned),
        );
        async move {
            send(
                &app,
                "POST",
                &u,
                &key,
                idem.as_deref(),
                Some(json!({"amount": eur(amount)})),
            )
            .await
        }
    };
    expect(
        &load(&h.office, None, 5_000).await,
        StatusCode::BAD_REQUEST,
        "idempotency_key_required",
    );
    expect(
        &load(&h.asa, Some("l0"), 5_000).await,
        StatusCode::FORBIDDEN,
        "missing_scope",
    );
    expect(
        &load(&h.office, Some("l0"), 0).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "zero_value",
    );
    let loaded = load(&h.office, Some("l1"), 5_000).await;
    assert_eq!(loaded.status, StatusCode::CREATED, "{}", loaded.body);
    assert_eq!(loaded.json()["balance"], eur(5_000));
    assert_eq!(loaded.json()["status"], "active");
    assert_eq!(load(&h.office, Some("l1"), 5_000).await.body, loaded.body);
    // Redeemed at a PMS that never picked it up: the "Kode" path.
    let r = redeem(
        &h,
        &h.asa,
        "castle",
        &card,
        "gc-r1",
        redeem_body(Some(1_000), "R"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["picked_up"], false);
    let plain = issue(&h, value(100)).await;
    let u = uri("castle", &format!("/vouchers/{plain}/loads"));
    let r = send(
        &h.app,
        "POST",
        &u,
        &h.office,
        Some("l2"),
        Some(json!({"amount": eur(1)})),
    )
    .await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY, "not_a_gift_card");

    // Block, unblock, cancel.
    let life = |what: &str| {
        let (app, key, u) = (
            h.app.clone(),
            h.office.clone(),
            uri("castle", &format!("/vouchers/{card}/{what}")),
        );
        async move { send(&app, "POST", &u, &key, None, None).await }
    };
    let blocked = life("block").await;
    assert_eq!(blocked.status, StatusCode::OK, "{}", blocked.body);
    assert_eq!(blocked.json()["status"], "blocked");
    let r = redeem(
        &h,
        &h.asa,
        "castle",
        &card,
        "gc-r2",
        redeem_body(Some(1), "R"),
    )
    .await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY, "voucher_blocked");
    assert_eq!(life("unblock").await.json()["status"], "active");
    let cancelled = life("cancel").await;
    assert_eq!(cancelled.json()["status"], "cancelled");
    assert_eq!(cancelled.json()["balance"], eur(0));
    let r = redeem(
        &h,
        &h.asa,
        "castle",
        &card,
        "gc-r3",
        redeem_body(Some(1), "R"),
    )
    .await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY, "voucher_cancelled");
    expect(
        &life("cancel").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "voucher_cancelled",
    );
    let acts = ledger(&h, &card).await;
    assert_eq!(
        kinds(&acts),
        ["issue", "load", "redeem", "adjust", "adjust", "adjust"]
    );
    let (sums, balance) = audit(&acts);
    assert_eq!((balance, sums["adjust"]), (0, -4_000));
}

// ---- holds -----------------------------------------------------------------

async fn holds_capture_release_expire(b: Backend) {
    let h = hub(b).await;
    let now = utc("2027-01-10T10:00:00Z");
    h.t.clock.set(now);
    let card = issue(
        &h,
        json!({"article_type": "gift_card", "value": eur(10_000)}),
    )
    .await;
    let hold = |idem: &'static str, amount: i64, expires: DateTime<Utc>| {
        let (app, key, u) = (
            h.app.clone(),
            h.asa.clone(),
            uri("castle", &format!("/vouchers/{card}/holds")),
        );
        async move {
            send(&app, "POST", &u, &key, Some(idem),
                 Some(json!({"amount": eur(amount), "reservation": reservation("R-H"), "expires_at": expires}))).await
        }
    };
    let h1 = hold("h1", 6_000, now + Duration::days(1)).await;
    assert_eq!(h1.status, StatusCode::CREATED, "{}", h1.body);
    assert_eq!(h1.json()["available"], eur(4_000));
    assert_eq!(h1.json()["balance"], eur(10_000));
    let hold_id = h1.json()["hold_id"].as_str().unwrap().to_owned();
    let s = status(&h, &h.asa, "castle", &card).await.json();
    assert_eq!(
        (s["available"].clone(), s["held"].clone()),
        (eur(4_000), eur(6_000))
    );
    let r = redeem(
        &h,
        &h.asa,
        "castle",
        &card,
        "hr1",
        redeem_body(Some(4_001), "R"),
    )
    .await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY, "insufficient_balance");
    assert_eq!(r.json()["error"]["details"]["available"], eur(4_000));

    let hold_op =
        |property: &str, key: &str, id: &str, op: &str, idem: &str, body: Option<Value>| {
            let (app, u, key, idem) = (
                h.app.clone(),
                uri(property, &format!("/holds/{id}/{op}")),
                key.to_owned(),
                idem.to_owned(),
            );
            async move { send(&app, "POST", &u, &key, Some(&idem), body).await }
        };
    // Only the property that placed a hold can see it.
    let r = hold_op(
        "abbey",
        &h.abbey,
        &hold_id,
        "capture",
        "c0",
        Some(json!({})),
    )
    .await;
    expect(&r, StatusCode::NOT_FOUND, "hold_not_found");
    let r = hold_op(
        "castle",
        &h.asa,
        &hold_id,
        "capture",
        "c1",
        Some(json!({"amount": eur(7_000)})),
    )
    .await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY, "capture_exceeds_hold");
    let cap = hold_op(
        "castle",
        &h.asa,
        &hold_id,
        "capture",
        "c2",
        Some(json!({"amount": eur(5_000)})),
    )
    .await;
    assert_eq!(cap.status, StatusCode::CREATED, "{}", cap.body);
    let c = cap.json();
    assert_eq!(
        (
            c["captured"].clone(),
            c["released"].clone(),
            c["balance"].clone()
        ),
        (eur(5_000), eur(1_000), eur(5_000))
    );
    let captured_redemption = c["redemption_id"].as_str().unwrap().to_owned();
    let r = hold_op("castle", &h.asa, &hold_id, "capture", "c3", Some(json!({}))).await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY, "hold_closed");

    // Release.
    let h2 = hold("h2", 2_000, now + Duration::hours(1)).await.json();
    let rel = hold_op(
        "castle",
        &h.asa,
        h2["hold_id"].as_str().unwrap(),
        "release",
        "rl1",
        None,
    )
    .await;
    assert_eq!(rel.status, StatusCode::OK, "{}", rel.body);
    assert_eq!(rel.json()["released"], eur(2_000));
    assert_eq!(rel.json()["available"], eur(5_000));

    // A hold that expires releases itself.
    let h3 = hold("h3", 3_000, now + Duration::hours(1)).await.json();
    assert_eq!(h3["available"], eur(2_000));
    h.t.clock.set(now + Duration::hours(2));
    assert_eq!(
        status(&h, &h.asa, "castle", &card).await.json()["available"],
        eur(5_000)
    );
    let r = hold_op(
        "castle",
        &h.asa,
        h3["hold_id"].as_str().unwrap(),
        "capture",
        "c4",
        Some(json!({})),
    )
    .await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY, "hold_expired");
    let r = redeem(
        &h,
        &h.asa,
        "castle",
        &card,
        "hr2",
        redeem_body(Some(500), "R"),
    )
    .await;
    assert_eq!(r.json()["balance"], eur(4_500), "{}", r.body);

    // A capture is a redemption: reversible.
    let u = uri(
        "castle",
        &format!("/vouchers/{card}/redemptions/{captured_redemption}/reversal"),
    );
    let r = send(
        &h.app,
        "POST",
        &u,
        &h.asa,
        Some("rv"),
        Some(json!({"amount": eur(1_000)})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["balance"], eur(5_500));

    let acts = ledger(&h, &card).await;
    assert_eq!(
        kinds(&acts),
        [
            "issue", "hold", "capture", "release", "hold", "release", "hold", "release", "redeem",
            "reverse"
        ]
    );
    assert_eq!(acts[7]["note"], "hold expired");
    assert_eq!(acts[1]["held"], eur(6_000));
    let (sums, balance) = audit(&acts);
    assert_eq!(balance, 10_000 - 5_000 - 500 + 1_000);
    assert_eq!(sums["hold"] + sums["release"], 0);
}

// ---- settlement --------------------------------------------------------------

async fn settlement_by_accepting_and_issuing_property(b: Backend) {
    let h = hub(b).await;
    guesthub::admin::accept_issuer(&h.store, "abbey", "castle")
        .await
        .unwrap();
    h.t.clock.set(utc("2027-02-10T10:00:00Z"));
    let v = issue(&h, value(10_000)).await;
    let r = redeem(
        &h,
        &h.asa,
        "castle",
        &v,
        "s1",
        redeem_body(Some(3_000), "C-1"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = redeem(
        &h,
        &h.abbey,
        "abbey",
        &v,
        "s2",
        redeem_body(Some(2_000), "A-1"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.json()["redemption_id"].as_str().unwrap().to_owned();
    let u = uri("abbey", &format!("/vouchers/{v}/redemptions/{id}/reversal"));
    let r = send(
        &h.app,
        "POST",
        &u,
        &h.abbey,
        Some("s3"),
        Some(json!({"amount": eur(500)})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    h.t.clock.set(utc("2027-03-05T10:00:00Z"));
    let r = redeem(
        &h,
        &h.abbey,
        "abbey",
        &v,
        "s4",
        redeem_body(Some(1_000), "A-2"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let report = |property: &str, key: &str, q: &str| {
        let (app, key, u) = (
            h.app.clone(),
            key.to_owned(),
            uri(property, &format!("/settlement?{q}")),
        );
        async move { send(&app, "GET", &u, &key, None, None).await }
    };
    // The issuer sees redemptions of its vouchers everywhere.
    let castle = report("castle", &h.office, "from=2027-02-01&to=2027-02-28").await;
    assert_eq!(castle.status, StatusCode::OK, "{}", castle.body);
    let j = castle.json();
    assert_eq!(
        j["groups"],
        json!([
            {"accepting_property": "abbey", "issuing_property": "castle", "currency": "EUR",
             "redemptions": 1, "reversals": 1, "redeemed": eur(2_000), "reversed": eur(500), "net": eur(1_500)},
            {"accepting_property": "castle", "issuing_property": "castle", "currency": "EUR",
             "redemptions": 1, "reversals": 0, "redeemed": eur(3_000), "reversed": eur(0), "net": eur(3_000)}
        ])
    );
    assert_eq!(j["totals"][0]["net"], eur(4_500));
    assert_eq!(j["lines"].as_array().unwrap().len(), 3);
    // The accepting hotel sees what it took.
    let abbey = report("abbey", &h.abbey, "from=2027-02-01&to=2027-02-28")
        .await
        .json();
    assert_eq!(abbey["groups"].as_array().unwrap().len(), 1);
    assert_eq!(abbey["groups"][0]["net"], eur(1_500));
    assert_eq!(abbey["lines"][0]["reservation_number"], "A-1");
    let march = report("abbey", &h.abbey, "from=2027-03-01&to=2027-03-31")
        .await
        .json();
    assert_eq!(march["totals"][0]["redeemed"], eur(1_000));
    // CSV.
    let csv = report(
        "castle",
        &h.office,
        "from=2027-02-01&to=2027-02-28&format=csv",
    )
    .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(
        csv.body,
        "accepting_property,issuing_property,currency,redemptions,reversals,redeemed_minor,reversed_minor,net_minor\n\
         abbey,castle,EUR,1,1,2000,500,1500\n\
         castle,castle,EUR,1,0,3000,0,3000\n"
    );
    expect(
        &report("castle", &h.office, "from=2027-02-28&to=2027-02-01").await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    );
    expect(
        &report("castle", &h.office, "to=2027-02-01").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    expect(
        &report("castle", &h.asa, "from=2027-02-01&to=2027-02-28&format=xml").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
}

// ---- write-off ----------------------------------------------------------------

async fn write_off_dry_run_then_real(b: Backend) {
    let h = hub(b).await;
    h.t.clock.set(utc("2027-01-10T10:00:00Z"));
    let with_validity = |amount: i64, until: &str| {
        let mut v = value(amount);
        v["valid_until"] = json!(until);
        v
    };
    let v1 = issue(&h, with_validity(5_000, "2027-01-31")).await;
    let v2 = issue(&h, with_validity(3_000, "2027-01-31")).await;
    let mut card = with_validity(2_000, "2027-01-31");
    card["article_type"] = json!("gift_card");
    let v3 = issue(&h, card).await;
    let v4 = issue(&h, with_validity(1_000, "2027-06-30")).await;
    let v5 = issue(&h, with_validity(800, "2027-01-31")).await;
    assert_eq!(
        redeem(
            &h,
            &h.asa,
            "castle",
            &v1,
            "w1",
            redeem_body(Some(1_000), "R")
        )
        .await
        .status,
        StatusCode::CREATED
    );
    assert_eq!(
        redeem(&h, &h.asa, "castle", &v5, "w5", redeem_body(None, "R"))
            .await
            .status,
        StatusCode::CREATED
    );
    let u = uri("castle", &format!("/vouchers/{v3}/holds"));
    let held = send(&h.app, "POST", &u, &h.asa, Some("w3"),
        Some(json!({"amount": eur(500), "reservation": reservation("R"), "expires_at": "2027-03-01T00:00:00Z"}))).await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);

    // 01:30 on 1 February in Vienna: January's vouchers expired.
    h.t.clock.set(utc("2027-02-01T00:30:00Z"));
    let run = |idem: Option<&'static str>, body: Value| {
        let (app, key, u) = (
            h.app.clone(),
            h.office.clone(),
            uri("castle", "/voucher-write-offs"),
        );
        async move { send(&app, "POST", &u, &key, idem, Some(body)).await }
    };
    let sloppy_v2 = v2.to_lowercase();
    let dry = run(None, json!({"dry_run": true, "exclude": [sloppy_v2]})).await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    let d = dry.json();
    assert_eq!(
        d["written_off"],
        json!([{"code": v1, "amount": eur(4_000), "valid_until": "2027-01-31"}])
    );
    assert_eq!(d["excluded"], json!([v2]));
    assert_eq!(d["skipped"], json!([{"code": v3, "reason": "live_holds"}]));
    assert_eq!(d["totals"], json!([eur(4_000)]));
    assert_eq!(
        status(&h, &h.office, "castle", &v1).await.json()["balance"],
        eur(4_000)
    );
    // Without the flag it is a dry run too.
    assert_eq!(run(None, json!({})).await.json()["dry_run"], true);
    assert_eq!(
        status(&h, &h.office, "castle", &v1).await.json()["status"],
        "expired"
    );

    let real = run(Some("wo-1"), json!({"dry_run": false, "exclude": [v2]})).await;
    assert_eq!(real.status, StatusCode::OK, "{}", real.body);
    assert_eq!(real.json()["written_off"], d["written_off"]);
    assert_eq!(
        run(Some("wo-1"), json!({"dry_run": false, "exclude": [v2]}))
            .await
            .body,
        real.body
    );
    let s = status(&h, &h.office, "castle", &v1).await.json();
    assert_eq!(
        (s["status"].clone(), s["balance"].clone()),
        (json!("written_off"), eur(0))
    );
    let acts = ledger(&h, &v1).await;
    assert_eq!(kinds(&acts), ["issue", "redeem", "expire", "write_off"]);
    let (sums, balance) = audit(&acts);
    assert_eq!((balance, sums["write_off"]), (0, -4_000));
    let again = run(None, json!({"dry_run": false, "exclude": [v2]}))
        .await
        .json();
    assert_eq!(again["written_off"], json!([]));
    let r = redeem(&h, &h.asa, "castle", &v1, "w6", redeem_body(Some(1), "R")).await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY, "voucher_expired");
    assert_eq!(
        status(&h, &h.office, "castle", &v4).await.json()["balance"],
        eur(1_000)
    );
    // Only the issuer's own back office writes off: the PMS lacks the scope.
    expect(
        &send(
            &h.app,
            "POST",
            &uri("castle", "/voucher-write-offs"),
            &h.asa,
            None,
            Some(json!({})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "missing_scope",
    );
}

// ---- imports ----------------------------------------------------------------

async fn imports_keep_codes_and_report_collisions(b: Backend) {
    let h = hub(b).await;
    let existing = issue(&h, value(1_000)).await;
    let lines = json!({"vouchers": [
        {"code": "LEGACY-0001", "value": eur(10_000), "valid_until": "2030-12-31",
         "redemptions": [{"amount": eur(2_500), "at": "2025-06-01T10:00:00Z", "reference": "INV-7"}, {"amount": eur(500)}]},
        {"code": existing, "value": eur(100)},
        {"code": "legacy 0001", "value": eur(10_000)},
        {"code": "AB", "value": eur(100)},
        {"code": "BAD-VALUE", "value": "ten euros"},
        {"code": "EXT-77", "article_type": "external", "value": eur(5_000), "redemptions": [{"amount": eur(6_000)}]},
        {"code": "GC-IMPORT-1", "article_type": "gift_card", "value": eur(0)}
    ]});
    let u = uri("castle", "/voucher-imports");
    let r = send(
        &h.app,
        "POST",
        &u,
        &h.office,
        Some("imp-1"),
        Some(lines.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let j = r.json();
    assert_eq!(
        (j["imported"].as_u64(), j["failed"].as_u64()),
        (Some(2), Some(5))
    );
    let outcome: Vec<(u64, &str, &str)> = j["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["line"].as_u64().unwrap(),
                l["status"].as_str().unwrap(),
                l["error"]["code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        outcome,
        [
            (1, "imported", ""),
            (2, "failed", "voucher_code_taken"),
            (3, "failed", "voucher_code_taken"),
            (4, "failed", "invalid_field"),
            (5, "failed", "invalid_field"),
            (6, "failed", "insufficient_balance"),
            (7, "imported", ""),
        ]
    );
    assert_eq!(j["lines"][0]["code"], "LEGACY-0001");
    // The replay answers the same.
    assert_eq!(
        send(&h.app, "POST", &u, &h.office, Some("imp-1"), Some(lines))
            .await
            .body,
        r.body
    );
    // A printed code belongs to its issuer: another property imports the
    // same one as its own voucher, and learns nothing of the castle's.
    let r = send(
        &h.app,
        "POST",
        &uri("abbey", "/voucher-imports"),
        &h.abbey,
        None,
        Some(json!({"vouchers": [{"code": "legacy-0001", "value": eur(1)}, {"code": existing, "value": eur(1)}]})),
    )
    .await;
    assert_eq!(r.json()["lines"][0]["status"], "imported", "{}", r.body);
    // A generated code stays unique.
    assert_eq!(r.json()["lines"][1]["error"]["code"], "voucher_code_taken");

    let s = status(&h, &h.asa, "castle", "legacy0001").await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.body);
    let s = s.json();
    assert_eq!(s["code"], "LEGACY-0001");
    assert_eq!(s["article_type"], "imported");
    assert_eq!(s["balance"], eur(7_000));
    assert_eq!(s["picked_up"], false);
    let acts = ledger(&h, "LEGACY-0001").await;
    assert_eq!(kinds(&acts), ["import", "import", "import"]);
    assert_eq!(acts[1]["at"], "2025-06-01T10:00:00Z");
    assert_eq!(audit(&acts).1, 7_000);
    // Imported vouchers are redeemed on the "Kode" path and never picked up.
    let r = redeem(
        &h,
        &h.asa,
        "castle",
        "LEGACY-0001",
        "imp-r",
        redeem_body(Some(1_000), "R"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["picked_up"], false);
    let feed = send(
        &h.app,
        "GET",
        &uri("castle", "/voucher-orders"),
        &h.asa,
        None,
        None,
    )
    .await
    .json();
    assert!(!feed.to_string().contains("LEGACY"));
    // The abbey sees its own voucher under the code, never the castle's.
    let s = status(&h, &h.abbey, "abbey", "LEGACY-0001").await.json();
    assert_eq!(
        (s["issuer"].clone(), s["balance"].clone()),
        (json!("abbey"), eur(1))
    );
    // A partner acting for the castle and the spa sees the castle's only.
    let s = status(&h, &h.group, "spa", "LEGACY-0001").await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.body);
    assert_eq!(s.json()["issuer"], "castle");
}

// ---- pickup -------------------------------------------------------------------

async fn orders(h: &Hub, key: &str, q: &str) -> Value {
    let r = send(
        &h.app,
        "GET",
        &uri("castle", &format!("/voucher-orders{q}")),
        key,
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()
}

async fn ack(h: &Hub, key: &str, cursor: &str) -> Reply {
    send(
        &h.app,
        "POST",
        &uri("castle", "/voucher-orders/ack"),
        key,
        None,
        Some(json!({"cursor": cursor})),
    )
    .await
}

fn order_codes(page: &Value) -> Vec<String> {
    page["orders"]
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
        .collect()
}

async fn pickup_with_two_cursors(b: Backend) {
    let h = hub(b).await;
    let m = send(
        &h.app,
        "PUT",
        &uri("castle", "/article-mapping"),
        &h.asa,
        None,
        Some(json!({"value": "ART-V", "gift_card": "ART-GC"})),
    )
    .await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.body);
    let got = send(
        &h.app,
        "GET",
        &uri("castle", "/article-mapping"),
        &h.asa,
        None,
        None,
    )
    .await;
    assert_eq!(got.json(), json!({"value": "ART-V", "gift_card": "ART-GC"}));
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(issue(&h, value(1_000)).await);
    }
    // Not in the feed: an empty gift card and an external voucher.
    issue(&h, json!({"article_type": "gift_card", "value": eur(0)})).await;
    issue(
        &h,
        json!({"article_type": "external", "code": "EXT-1234", "value": eur(500)}),
    )
    .await;

    let p1 = orders(&h, &h.asa, "?limit=2").await;
    assert_eq!(order_codes(&p1), codes[..2]);
    assert_eq!(
        (p1["cursor"].as_str(), p1["more"].as_bool()),
        (Some("2"), Some(true))
    );
    let v = &p1["orders"][0]["vouchers"][0];
    assert_eq!(
        (v["article_code"].as_str(), v["value"].clone()),
        (Some("ART-V"), eur(1_000))
    );
    assert_eq!(v["buyer"]["email"], "bea@example.com");
    assert_eq!(p1["orders"][0]["order_ref"], "WEB-1");
    // Not acknowledged: delivered again.
    assert_eq!(
        order_codes(&orders(&h, &h.asa, "?limit=2").await),
        codes[..2]
    );
    assert_eq!(ack(&h, &h.asa, "2").await.json()["cursor"], "2");
    let p2 = orders(&h, &h.asa, "").await;
    assert_eq!(order_codes(&p2), codes[2..]);
    assert_eq!(
        (p2["cursor"].as_str(), p2["more"].as_bool()),
        (Some("5"), Some(false))
    );
    // Protel has its own cursor and no mapping.
    let p = orders(&h, &h.protel, "").await;
    assert_eq!(order_codes(&p), codes);
    assert!(p["orders"][0]["vouchers"][0]["article_code"].is_null());
    // Acks never go back and never past the newest order.
    assert_eq!(ack(&h, &h.asa, "1").await.json()["cursor"], "2");
    let r = ack(&h, &h.asa, "99").await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY, "cursor_out_of_range");
    assert_eq!(r.json()["error"]["details"]["last_cursor"], "5");
    expect(
        &ack(&h, &h.asa, "x").await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    );
    // A full re-sync from the start is always possible.
    assert_eq!(order_codes(&orders(&h, &h.asa, "?after=0").await), codes);
    // Picked up = acknowledged by this PMS.
    let r = redeem(
        &h,
        &h.asa,
        "castle",
        &codes[0],
        "p1",
        redeem_body(Some(10), "R"),
    )
    .await;
    assert_eq!(r.json()["picked_up"], true, "{}", r.body);
    let r = redeem(
        &h,
        &h.protel,
        "castle",
        &codes[0],
        "p1",
        redeem_body(Some(10), "R"),
    )
    .await;
    assert_eq!(r.json()["picked_up"], false, "{}", r.body);
    assert_eq!(
        status(&h, &h.asa, "castle", &codes[4]).await.json()["picked_up"],
        false
    );
    // The scope is needed.
    expect(
        &send(
            &h.app,
            "GET",
            &uri("castle", "/voucher-orders"),
            &h.office,
            None,
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "missing_scope",
    );

    // Orders issued while a PMS is picking up are never skipped.
    ack(&h, &h.asa, "5").await;
    let issuing: Vec<_> = (0..24)
        .map(|i| {
            let (app, key) = (
                if i % 2 == 0 {
                    h.app.clone()
                } else {
                    h.app2.clone()
                },
                h.office.clone(),
            );
            tokio::spawn(async move {
                let r = send(
                    &app,
                    "POST",
                    "/v1/properties/castle/vouchers",
                    &key,
                    None,
                    Some(value(100 + i)),
                )
                .await;
                assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
                r.json()["code"].as_str().unwrap().to_owned()
            })
        })
        .collect();
    let mut seen: Vec<(u64, String)> = Vec::new();
    let deadline = Instant::now() + StdDuration::from_secs(60);
    while seen.len() < 24 && Instant::now() < deadline {
        let page = orders(&h, &h.asa, "?limit=5").await;
        for o in page["orders"].as_array().unwrap() {
            let seq: u64 = o["cursor"].as_str().unwrap().parse().unwrap();
            seen.push((seq, o["vouchers"][0]["code"].as_str().unwrap().to_owned()));
        }
        let cursor = page["cursor"].as_str().unwrap();
        assert_eq!(ack(&h, &h.asa, cursor).await.status, StatusCode::OK);
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    let mut issued: Vec<String> = Vec::new();
    for t in issuing {
        issued.push(t.await.unwrap());
    }
    let seqs: Vec<u64> = seen.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (6..=29).collect::<Vec<_>>(),
        "every order once, in order"
    );
    let seen_codes: BTreeSet<&String> = seen.iter().map(|(_, c)| c).collect();
    assert_eq!(seen_codes, issued.iter().collect::<BTreeSet<_>>());
}

// ---- portal acceptance and tenancy ------------------------------------------------

async fn portal_acceptance_and_tenancy(b: Backend) {
    let h = hub(b).await;
    let v = issue(&h, value(10_000)).await;
    assert_eq!(
        redeem(
            &h,
            &h.asa,
            "castle",
            &v,
            "t0",
            redeem_body(Some(100), "C-1")
        )
        .await
        .status,
        StatusCode::CREATED
    );
    // The abbey knows nothing of the castle's vouchers.
    expect(
        &status(&h, &h.abbey, "abbey", &v).await,
        StatusCode::NOT_FOUND,
        "voucher_not_found",
    );
    expect(
        &redeem(&h, &h.abbey, "abbey", &v, "t1", redeem_body(Some(100), "A")).await,
        StatusCode::NOT_FOUND,
        "voucher_not_found",
    );
    expect(
        &send(
            &h.app,
            "GET",
            &uri("abbey", &format!("/vouchers/{v}/activities")),
            &h.abbey,
            None,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "voucher_not_found",
    );
    // Nor can it act for the castle.
    expect(
        &status(&h, &h.abbey, "castle", &v).await,
        StatusCode::NOT_FOUND,
        "property_not_found",
    );
    // A group acting for castle and spa sees it at the spa, which does not accept it.
    let s = status(&h, &h.group, "spa", &v).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.body);
    assert_eq!(
        (s.json()["redeemable"].clone(), s.json()["reason"].clone()),
        (json!(false), json!("voucher_not_redeemable_here"))
    );
    expect(
        &redeem(&h, &h.group, "spa", &v, "t2", redeem_body(Some(100), "S")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "voucher_not_redeemable_here",
    );

    // Once the abbey accepts the castle's vouchers (portal system).
    guesthub::admin::accept_issuer(&h.store, "abbey", "castle")
        .await
        .unwrap();
    let s = status(&h, &h.abbey, "abbey", &v).await.json();
    assert_eq!(
        (s["redeemable"].clone(), s["picked_up"].clone()),
        (json!(true), json!(false))
    );
    let r = redeem(
        &h,
        &h.abbey,
        "abbey",
        &v,
        "t3",
        redeem_body(Some(1_000), "A-9"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["picked_up"], false);
    // It sees its own guests in the ledger, not the castle's.
    let acts = send(
        &h.app,
        "GET",
        &uri("abbey", &format!("/vouchers/{v}/activities")),
        &h.abbey,
        None,
        None,
    )
    .await
    .json();
    let acts = acts["activities"].as_array().unwrap();
    assert!(acts[1]["reservation"].is_null(), "{}", acts[1]);
    assert_eq!(acts[2]["reservation"]["number"], "A-9");
    // But it does not own the castle's vouchers.
    let u = uri("abbey", &format!("/vouchers/{v}/block"));
    expect(
        &send(&h.app, "POST", &u, &h.abbey, None, None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not_issuer",
    );
    // Nor may it reverse the castle's redemptions.
    let castle_red = redeem(
        &h,
        &h.asa,
        "castle",
        &v,
        "t4",
        redeem_body(Some(100), "C-2"),
    )
    .await
    .json();
    let u = uri(
        "abbey",
        &format!(
            "/vouchers/{v}/redemptions/{}/reversal",
            castle_red["redemption_id"].as_str().unwrap()
        ),
    );
    expect(
        &send(&h.app, "POST", &u, &h.abbey, Some("t5"), Some(json!({}))).await,
        StatusCode::NOT_FOUND,
        "redemption_not_found",
    );
    // The abbey's own vouchers stay invisible to the castle.
    let r = send(
        &h.app,
        "POST",
        &uri("abbey", "/vouchers"),
        &h.abbey,
        None,
        Some(value(500)),
    )
    .await;
    let abbey_code = r.json()["code"].as_str().unwrap().to_owned();
    expect(
        &status(&h, &h.asa, "castle", &abbey_code).await,
        StatusCode::NOT_FOUND,
        "voucher_not_found",
    );
}

// ---- error codes ------------------------------------------------------------------

async fn error_codes(b: Backend) {
    let h = hub(b).await;
    h.t.clock.set(utc("2027-01-10T10:00:00Z"));
    let mut winter = value(5_000);
    winter["valid_until"] = json!("2027-01-15");
    let winter = issue(&h, winter).await;
    let mut spring = value(5_000);
    spring["valid_until"] = json!("2027-03-28");
    let spring = issue(&h, spring).await;

    // Valid through the end of the local day: Vienna is UTC+1 in January.
    h.t.clock.set(utc("2027-01-15T22:59:59Z"));
    let r = redeem(
        &h,
        &h.asa,
        "castle",
        &winter,
        "e1",
        redeem_body(Some(100), "R"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    h.t.clock.set(utc("2027-01-15T23:00:00Z"));
    let r = redeem(
        &h,
        &h.asa,
        "castle",
        &winter,
        "e2",
        redeem_body(Some(100), "R"),
    )
    .await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY, "voucher_expired");
    assert_eq!(r.json()["error"]["details"]["valid_until"], "2027-01-15");
    let s = status(&h, &h.asa, "castle", &winter).await.json();
    assert_eq!(
        (s["status"].clone(), s["reason"].clone()),
        (json!("expired"), json!("voucher_expired"))
    );
    // 28 March 2027 has 23 hours in Vienna (clocks go forward): it ends at 22:00Z.
    h.t.clock.set(utc("2027-03-28T21:59:59Z"));
    assert_eq!(
        redeem(
            &h,
            &h.asa,
            "castle",
            &spring,
            "e3",
            redeem_body(Some(100), "R")
        )
        .await
        .status,
        StatusCode::CREATED
    );
    h.t.clock.set(utc("2027-03-28T22:00:00Z"));
    expect(
        &redeem(
            &h,
            &h.asa,
            "castle",
            &spring,
            "e4",
            redeem_body(Some(100), "R"),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "voucher_expired",
    );

    h.t.clock.set(utc("2027-04-01T10:00:00Z"));
    let v = issue(&h, value(5_000)).await;
    let r = redeem(
        &h,
        &h.asa,
        "castle",
        &v,
        "e5",
        redeem_body(Some(5_001), "R"),
    )
    .await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY, "insufficient_balance");
    assert_eq!(r.json()["error"]["details"]["available"], eur(5_000));
    expect(
        &redeem(&h, &h.asa, "castle", &v, "e6", redeem_body(Some(0), "R")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "zero_value",
    );
    let usd =
        json!({"amount": {"amount": 100, "currency": "USD"}, "reservation": reservation("R")});
    let r = redeem(&h, &h.asa, "castle", &v, "e7", usd).await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY, "currency_mismatch");
    assert_eq!(r.json()["error"]["details"]["expected"], "EUR");
    // Test mode is the key's: a live key's `test_mode: true` and a sandbox
    // key's `test_mode: false` are refused; a sandbox key's test voucher is
    // not even visible to a live key.
    let mut test = redeem_body(Some(100), "R");
    test["test_mode"] = json!(true);
    expect(
        &redeem(&h, &h.asa, "castle", &v, "e8", test.clone()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "test_mode_mismatch",
    );
    let pms = "vouchers:read,vouchers:redeem,vouchers:pickup";
    let asa_test = tests::sandbox_key(&h.store, "ASA sandbox", &["castle"], pms).await;
    let office_test =
        tests::sandbox_key(&h.store, "Office sandbox", &["castle"], "vouchers:issue").await;
    let mut live_body = redeem_body(Some(100), "R");
    live_body["test_mode"] = json!(false);
    expect(
        &redeem(&h, &asa_test, "castle", &v, "e9a", live_body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "test_mode_mismatch",
    );
    let mut test_voucher = value(1_000);
    test_voucher["test_mode"] = json!(true);
    let r = send(
        &h.app,
        "POST",
        &uri("castle", "/vouchers"),
        &office_test,
        None,
        Some(test_voucher),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let tv = r.json()["code"].as_str().unwrap().to_owned();
    expect(
        &redeem(&h, &h.asa, "castle", &tv, "e9", redeem_body(Some(100), "R")).await,
        StatusCode::NOT_FOUND,
        "voucher_not_found",
    );
    assert_eq!(
        redeem(&h, &asa_test, "castle", &tv, "e10", test)
            .await
            .status,
        StatusCode::CREATED
    );
    let pkg = issue(
        &h,
        json!({"article_type": "package", "value": eur(40_000), "package": "2 nights with dinner"}),
    )
    .await;
    let r = redeem(
        &h,
        &h.asa,
        "castle",
        &pkg,
        "e11",
        redeem_body(Some(1_000), "R"),
    )
    .await;
    expect(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "package_requires_full_redemption",
    );
    let r = redeem(&h, &h.asa, "castle", &pkg, "e12", redeem_body(None, "R")).await;
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (StatusCode::CREATED, json!("redeemed"))
    );
    // Issuing: zero value, foreign currency, bad input.
    let r = send(
        &h.app,
        "POST",
        &uri("castle", "/vouchers"),
        &h.office,
        None,
        Some(value(0)),
    )
    .await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY, "zero_value");
    let r = send(
        &h.app,
        "POST",
        &uri("castle", "/vouchers"),
        &h.office,
        None,
        Some(json!({"article_type": "value", "value": {"amount": 100, "currency": "USD"}})),
    )
    .await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY, "currency_mismatch");
    let r = send(
        &h.app,
        "POST",
        &uri("castle", "/vouchers"),
        &h.office,
        None,
        Some(json!({"article_type": "coupon", "value": eur(100)})),
    )
    .await;
    expect(&r, StatusCode::BAD_REQUEST, "invalid_field");
    let r = send(
        &h.app,
        "POST",
        &uri("castle", "/vouchers"),
        &h.office,
        None,
        Some(json!({"article_type": "value", "value": eur(100), "code": v})),
    )
    .await;
    expect(&r, StatusCode::CONFLICT, "voucher_code_taken");
    // A mistyped code: not found, with a hint.
    let mut chars: Vec<char> = v.chars().collect();
    chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
    let typo: String = chars.into_iter().collect();
    let r = status(&h, &h.asa, "castle", &typo).await;
    expect(&r, StatusCode::NOT_FOUND, "voucher_not_found");
    assert!(r.json()["error"]["details"]["hint"].is_string());
    expect(
        &status(&h, &h.asa, "castle", "NO-SUCH-CODE").await,
        StatusCode::NOT_FOUND,
        "voucher_not_found",
    );
    expect(
        &status(&h, &h.asa, "castle", "%2F%2F").await,
        StatusCode::NOT_FOUND,
        "voucher_not_found",
    );
    // Scopes and keys.
    expect(
        &redeem(
            &h,
            &h.office,
            "castle",
            &v,
            "e13",
            redeem_body(Some(1), "R"),
        )
        .await,
        StatusCode::FORBIDDEN,
        "missing_scope",
    );
    let r = call(
        &h.app,
        "GET",
        &uri("castle", &format!("/vouchers/{v}")),
        None,
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Bad reservations.
    let r = redeem(
        &h,
        &h.asa,
        "castle",
        &v,
        "e14",
        json!({"reservation": {"number": "R", "arrival": "2027-04-05", "departure": "2027-04-01"}}),
    )
    .await;
    expect(&r, StatusCode::BAD_REQUEST, "invalid_field");
    let r = redeem(
        &h,
        &h.asa,
        "castle",
        &v,
        "e15",
        json!({"reservation": {"number": ""}}),
    )
    .await;
    expect(&r, StatusCode::BAD_REQUEST, "invalid_field");
}

// ---- concurrency ------------------------------------------------------------------

/// Sends one redemption until it gets a final answer (201 or 422), as a PMS
/// retrying with the same key would.
async fn redeem_until_final(
    app: &Router,
    key: &str,
    code: &str,
    idem: &str,
    body: &Value,
) -> Reply {
    let u = uri("castle", &format!("/vouchers/{code}/redemptions"));
    for _ in 0..200 {
        let r = send(app, "POST", &u, key, Some(idem), Some(body.clone())).await;
        match r.status {
            StatusCode::CREATED | StatusCode::UNPROCESSABLE_ENTITY => return r,
            StatusCode::CONFLICT | StatusCode::SERVICE_UNAVAILABLE => {
                tokio::time::sleep(StdDuration::from_millis(rand::random_range(5..40))).await;
            }
            _ => panic!("unexpected {}: {}", r.status, r.body),
        }
    }
    panic!("no final answer for {idem}")
}

async fn concurrent_redemptions_never_overdraw(b: Backend) {
    let h = hub(b).await;
    let card = issue(
        &h,
        json!({"article_type": "gift_card", "value": eur(50_000)}),
    )
    .await;
    let u = uri("castle", &format!("/vouchers/{card}/loads"));
    let r = send(
        &h.app,
        "POST",
        &u,
        &h.office,
        Some("load-1"),
        Some(json!({"amount": eur(30_000)})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // 200 requests: 150 distinct keys over two PMSs, 50 duplicates of them,
    // random amounts asking for about twice the value, on two "processes".
    const DISTINCT: usize = 150;
    const TOTAL: usize = 200;
    let mut plan: Vec<(String, String, Value)> = (0..DISTINCT)
        .map(|i| {
            let key = if i % 2 == 0 {
                h.asa.clone()
            } else {
                h.protel.clone()
            };
            let amount = rand::random_range(100..=1_500);
            (
                key,
                format!("k-{i}"),
                redeem_body(Some(amount), &format!("R-{i}")),
            )
        })
        .collect();
    for _ in DISTINCT..TOTAL {
        let dup = plan[rand::random_range(0..DISTINCT)].clone();
        plan.push(dup);
    }
    let started = Instant::now();
    let tasks: Vec<_> = plan
        .iter()
        .enumerate()
        .map(|(i, (key, idem, body))| {
            let app = if i % 2 == 0 {
                h.app.clone()
            } else {
                h.app2.clone()
            };
            let (key, idem, body, card) = (key.clone(), idem.clone(), body.clone(), card.clone());
            tokio::spawn(async move {
                let r = redeem_until_final(&app, &key, &card, &idem, &body).await;
                (key, idem, r)
            })
        })
        .collect();
    let mut answers: HashMap<(String, String), String> = HashMap::new();
    let (mut created, mut refused) = (0, 0);
    for t in tasks {
        let (key, idem, r) = t.await.unwrap();
        if r.status == StatusCode::CREATED {
            created += 1;
        } else {
            assert_eq!(r.code(), "insufficient_balance", "{}", r.body);
            refused += 1;
        }
        // Every answer under one key is the same, byte for byte.
        match answers.get(&(key.clone(), idem.clone())) {
            Some(prev) => assert_eq!(prev, &r.body, "{idem}"),
            None => {
                answers.insert((key, idem), r.body);
            }
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(answers.len(), DISTINCT);

    // Replays afterwards answer the same again.
    for ((key, idem), body) in &answers {
        let (_, _, req) = plan.iter().find(|(k, i, _)| k == key && i == idem).unwrap();
        let again = send(
            &h.app2,
            "POST",
            &uri("castle", &format!("/vouchers/{card}/redemptions")),
            key,
            Some(idem),
            Some(req.clone()),
        )
        .await;
        assert_eq!(&again.body, body);
    }

    // The ledger: initial + loads − redeemed + reversed − captured − written off = balance ≥ 0.
    let acts = ledger(&h, &card).await;
    let (sums, balance) = audit(&acts);
    let get = |k: &str| sums.get(k).copied().unwrap_or(0);
    assert_eq!(get("issue") + get("load"), 80_000);
    assert_eq!(
        get("issue")
            + get("load")
            + get("redeem")
            + get("reverse")
            + get("capture")
            + get("write_off"),
        balance
    );
    assert!(balance >= 0);
    let status = status(&h, &h.office, "castle", &card).await.json();
    assert_eq!(status["balance"]["amount"].as_i64(), Some(balance));
    // Exactly the successful distinct requests are in the ledger.
    let successes: Vec<Value> = answers
        .values()
        .map(|b| serde_json::from_str::<Value>(b).unwrap())
        .filter(|j| j.get("redemption_id").is_some())
        .collect();
    let ledger_ids: BTreeSet<&str> = acts
        .iter()
        .filter(|a| a["kind"] == "redeem")
        .map(|a| a["redemption_id"].as_str().unwrap())
        .collect();
    let answer_ids: BTreeSet<&str> = successes
        .iter()
        .map(|j| j["redemption_id"].as_str().unwrap())
        .collect();
    assert_eq!(ledger_ids, answer_ids);
    let redeemed: i64 = successes
        .iter()
        .map(|j| j["redeemed"]["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(-get("redeem"), redeemed);
    // Refusals happen only when the balance is short of the request.
    assert!(refused > 0, "the test should exhaust the card");
    eprintln!(
        "{b:?}: {TOTAL} concurrent redemptions ({DISTINCT} keys): {created} created, {refused} refused, \
         {} distinct redemptions, redeemed {redeemed}, final balance {balance}, ledger Σ {}, in {elapsed:.2?}",
        answer_ids.len(),
        acts.iter()
            .map(|a| a["amount"]["amount"].as_i64().unwrap())
            .sum::<i64>()
    );
}

// ---- crash after commit -------------------------------------------------------

/// Fails the next money-moving transaction after it committed, through
/// `FaultyItems`, as a Lambda that dies before answering.
struct CrashAfterCommit {
    faulty: Arc<FaultyItems>,
    armed: AtomicBool,
}

#[async_trait]
impl ItemStore for CrashAfterCommit {
    async fn create_tables(&self) -> Result<(), StoreError> {
        self.faulty.create_tables().await
    }
    async fn get(
        &self,
        table: Table,
        pk: &str,
        sk: &str,
        now: i64,
    ) -> Result<Option<Item>, StoreError> {
        self.faulty.get(table, pk, sk, now).await
    }
    async fn query(&self, q: &Query, now: i64) -> Result<Page, StoreError> {
        self.faulty.query(q, now).await
    }
    async fn transact(&self, writes: Vec<Write>, now: i64) -> Result<(), TxError> {
        let moves_money = writes
            .iter()
            .any(|w| matches!(w, Write::Put { item, .. } if item.sk.starts_with("ACT#")));
        if moves_money && self.armed.swap(false, Ordering::SeqCst) {
            self.faulty.set_plan(FaultPlan {
                fail_after_permille: 1000,
                ..FaultPlan::default()
            });
            let r = self.faulty.transact(writes, now).await;
            self.faulty.set_plan(FaultPlan::default());
            return r;
        }
        self.faulty.transact(writes, now).await
    }
    async fn batch_put(&self, table: Table, items: Vec<Item>) -> Result<(), StoreError> {
        self.faulty.batch_put(table, items).await
    }
    async fn batch_delete(
        &self,
        table: Table,
        keys: Vec<(String, String)>,
    ) -> Result<(), StoreError> {
        self.faulty.batch_delete(table, keys).await
    }
}

async fn retry_after_a_crash_after_commit_moves_money_once(b: Backend) {
    let h = hub(b).await;
    let faulty = Arc::new(FaultyItems::new(backend_items(&h.t), FaultPlan::default()));
    let crash = Arc::new(CrashAfterCommit {
        faulty: faulty.clone(),
        armed: AtomicBool::new(false),
    });
    let app = guesthub::app::router(
        Store::with_clock(crash.clone(), h.t.clock.clone()),
        MAX_BODY,
    );
    let v = issue(&h, value(10_000)).await;
    crash.armed.store(true, Ordering::SeqCst);
    let body = redeem_body(Some(2_500), "R-1");
    let u = uri("castle", &format!("/vouchers/{v}/redemptions"));
    let first = send(
        &app,
        "POST",
        &u,
        &h.asa,
        Some("crash-1"),
        Some(body.clone()),
    )
    .await;
    expect(
        &first,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
    );
    assert_eq!(faulty.injected(), 1);
    // The money moved (the commit happened) …
    assert_eq!(
        status(&h, &h.asa, "castle", &v).await.json()["balance"],
        eur(7_500)
    );
    // … and the client's retry gets the committed answer, not a second redemption.
    let retry = send(
        &app,
        "POST",
        &u,
        &h.asa,
        Some("crash-1"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.body);
    assert_eq!(retry.headers["idempotency-replayed"], "true");
    assert_eq!(retry.json()["balance"], eur(7_500));
    assert_eq!(retry.json()["redeemed"], eur(2_500));
    assert_eq!(
        send(&app, "POST", &u, &h.asa, Some("crash-1"), Some(body))
            .await
            .body,
        retry.body
    );
    let acts = ledger(&h, &v).await;
    assert_eq!(kinds(&acts), ["issue", "redeem"]);
    assert_eq!(acts[1]["redemption_id"], retry.json()["redemption_id"]);
    assert_eq!(audit(&acts).1, 7_500);
}

/// Random faults before and after commit on every write: each key still
/// moves money at most once and the ledger matches the answers.
async fn random_faults_never_move_money_twice(b: Backend) {
    let h = hub(b).await;
    let v = issue(&h, value(100_000)).await;
    let faulty = Arc::new(FaultyItems::new(
        backend_items(&h.t),
        FaultPlan {
            fail_before_permille: 150,
            fail_after_permille: 150,
            ..FaultPlan::default()
        },
    ));
    let app = guesthub::app::router(
        Store::with_clock(faulty.clone(), h.t.clock.clone()),
        MAX_BODY,
    );
    let u = uri("castle", &format!("/vouchers/{v}/redemptions"));
    let mut answers = Vec::new();
    for i in 0..25 {
        let body = redeem_body(Some(100 + i), &format!("R-{i}"));
        let idem = format!("f-{i}");
        let answer = loop {
            let r = send(&app, "POST", &u, &h.asa, Some(&idem), Some(body.clone())).await;
            match r.status {
                StatusCode::CREATED => break r,
                // A lock left by an attempt that "died": wait it out.
                StatusCode::CONFLICT => h.t.clock.advance(Duration::seconds(61)),
                StatusCode::SERVICE_UNAVAILABLE => {}
                s => panic!("unexpected {s}: {}", r.body),
            }
        };
        answers.push(answer.json());
    }
    faulty.set_plan(FaultPlan::default());
    assert!(faulty.injected() > 0);
    let acts = ledger(&h, &v).await;
    let (sums, balance) = audit(&acts);
    let redeemed: i64 = answers
        .iter()
        .map(|a| a["redeemed"]["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(-sums["redeem"], redeemed);
    assert_eq!(acts.iter().filter(|a| a["kind"] == "redeem").count(), 25);
    assert_eq!(balance, 100_000 - redeemed);
}

/// A write-off run interrupted part-way and retried under the same key
/// reports every voucher the run wrote off, including those the first
/// attempt did before it failed (and writes each off once).
async fn write_off_retry_reports_the_whole_run(b: Backend) {
    let h = hub(b).await;
    h.t.clock.set(utc("2027-01-10T10:00:00Z"));
    let mut body = value(10_000);
    body["valid_until"] = json!("2027-01-31");
    let v1 = issue(&h, body.clone()).await;
    let v2 = issue(&h, body).await;
    let faulty = Arc::new(FaultyItems::new(backend_items(&h.t), FaultPlan::default()));
    let app = guesthub::app::router(
        Store::with_clock(faulty.clone(), h.t.clock.clone()),
        MAX_BODY,
    );
    h.t.clock.set(utc("2027-02-12T09:00:00Z"));
    // The idempotency lock and the first write-off commit; the second fails.
    faulty.set_plan(FaultPlan {
        fail_writes_from: Some(3),
        ..FaultPlan::default()
    });
    let u = uri("castle", "/voucher-write-offs");
    let run = json!({"dry_run": false});
    let first = send(&app, "POST", &u, &h.office, Some("wo-1"), Some(run.clone())).await;
    assert_eq!(
        first.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        first.body
    );
    faulty.set_plan(FaultPlan::default());
    h.t.clock.advance(Duration::seconds(61));
    let retry = send(&app, "POST", &u, &h.office, Some("wo-1"), Some(run)).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    let r = retry.json();
    let mut codes: Vec<&str> = r["written_off"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["code"].as_str().unwrap())
        .collect();
    codes.sort_unstable();
    let mut want = [v1.as_str(), v2.as_str()];
    want.sort_unstable();
    assert_eq!(codes, want, "{}", retry.body);
    assert_eq!(r["totals"], json!([eur(20_000)]));
    for v in [&v1, &v2] {
        let acts = ledger(&h, v).await;
        assert_eq!(
            kinds(&acts).iter().filter(|k| **k == "write_off").count(),
            1
        );
    }
    // Written-off vouchers leave the expiry index after the idempotency
    // window, so later runs do not read them again.
    let castle = domain::PropertyId::parse("castle").unwrap();
    let through = chrono::NaiveDate::from_ymd_opt(2027, 2, 28).unwrap();
    let listed =
        domain::voucher::ports::VoucherStore::valid_until_through(&h.store, &castle, through)
            .await
            .unwrap();
    assert_eq!(listed.len(), 2);
    h.t.clock.advance(Duration::days(4));
    let listed =
        domain::voucher::ports::VoucherStore::valid_until_through(&h.store, &castle, through)
            .await
            .unwrap();
    assert!(listed.is_empty(), "{listed:?}");
}

// ---- reversals settle against the redeeming property -------------------------

/// The settlement groups of a report as (accepting, issuing) → (redemptions,
/// reversals, redeemed, reversed, net), from the JSON and from the CSV,
/// which must agree.
async fn settlement_groups(
    h: &Hub,
    property: &str,
    key: &str,
    q: &str,
) -> BTreeMap<(String, String), [i64; 5]> {
    let u = uri(property, &format!("/settlement?{q}"));
    let r = send(&h.app, "GET", &u, key, None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let j = r.json();
    let mut from_json = BTreeMap::new();
    for g in j["groups"].as_array().unwrap() {
        let n = |f: &str| {
            g[f].as_i64()
                .unwrap_or_else(|| g[f]["amount"].as_i64().unwrap())
        };
        from_json.insert(
            (
                g["accepting_property"].as_str().unwrap().to_owned(),
                g["issuing_property"].as_str().unwrap().to_owned(),
            ),
            [
                n("redemptions"),
                n("reversals"),
                n("redeemed"),
                n("reversed"),
                n("net"),
            ],
        );
    }
    let r = send(&h.app, "GET", &format!("{u}&format=csv"), key, None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut rows = csv::Reader::from_reader(r.body.as_bytes());
    let mut from_csv = BTreeMap::new();
    for row in rows.records() {
        let row = row.unwrap();
        let n = |i: usize| row[i].trim_start_matches('\'').parse::<i64>().unwrap();
        assert_eq!(&row[2], "EUR");
        from_csv.insert(
            (row[0].to_owned(), row[1].to_owned()),
            [n(3), n(4), n(5), n(6), n(7)],
        );
    }
    assert_eq!(from_json, from_csv, "JSON and CSV of {property}'s report");
    from_json
}

async fn reversals_settle_against_the_redeeming_property(b: Backend) {
    let h = hub(b).await;
    for p in ["abbey", "spa"] {
        guesthub::admin::accept_issuer(&h.store, p, "castle")
            .await
            .unwrap();
    }
    let spa = tests::partner_key(
        &h.store,
        "Spa PMS",
        &["spa"],
        "vouchers:read,vouchers:redeem",
    )
    .await;
    h.t.clock.set(utc("2027-02-10T10:00:00Z"));
    let props = ["castle", "abbey", "spa"];
    let key_of = |p: &str| match p {
        "castle" => h.asa.clone(),
        "abbey" => h.abbey.clone(),
        _ => spa.clone(),
    };
    // (accepting, issuing) → [redemptions, reversals, redeemed, reversed, net]
    let mut expected: BTreeMap<(String, String), [i64; 5]> = BTreeMap::new();
    let mut movements = 0;
    let mut n = 0;
    for redeemer in props {
        for reverser in props {
            n += 1;
            let code = issue(&h, value(10_000)).await;
            let taken = 1_000 + n * 111 + 1;
            let r = redeem(
                &h,
                &key_of(redeemer),
                redeemer,
                &code,
                &format!("red-{n}"),
                redeem_body(Some(taken), &format!("{redeemer}-{n}")),
            )
            .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            let id = r.json()["redemption_id"].as_str().unwrap().to_owned();
            let g = expected
                .entry((redeemer.to_owned(), "castle".to_owned()))
                .or_default();
            g[0] += 1;
            g[2] += taken;
            g[4] += taken;
            // Part of it back, then the rest, each by `reverser`.
            let mut given_back = 0;
            for (i, amount) in [Some(eur(n * 7 + 3)), None].into_iter().enumerate() {
                let mut body = json!({"reason": "booking cancelled"});
                if let Some(a) = amount.clone() {
                    body["amount"] = a;
                }
                let u = uri(
                    reverser,
                    &format!("/vouchers/{code}/redemptions/{id}/reversal"),
                );
                let r = send(
                    &h.app,
                    "POST",
                    &u,
                    &key_of(reverser),
                    Some(&format!("rev-{n}-{i}")),
                    Some(body),
                )
                .await;
                if reverser != redeemer && reverser != "castle" {
                    // Neither the redeeming hotel nor the issuer.
                    expect(&r, StatusCode::NOT_FOUND, "redemption_not_found");
                    continue;
                }
                assert_eq!(
                    r.status,
                    StatusCode::CREATED,
                    "{redeemer}/{reverser}: {}",
                    r.body
                );
                let back = r.json()["reversed"]["amount"].as_i64().unwrap();
                given_back += back;
                let g = expected
                    .entry((redeemer.to_owned(), "castle".to_owned()))
                    .or_default();
                g[1] += 1;
                g[3] += back;
                g[4] -= back;
            }
            let s = status(&h, &h.office, "castle", &code).await.json();
            let balance = s["balance"]["amount"].as_i64().unwrap();
            assert_eq!(
                balance,
                10_000 - taken + given_back,
                "{redeemer}/{reverser}"
            );
            if given_back > 0 {
                assert_eq!(balance, 10_000, "whole again: {redeemer}/{reverser}");
            }
            // The ledger books the reversal where the redemption was made.
            for a in ledger(&h, &code).await {
                if a["kind"] == "reverse" {
                    assert_eq!(a["accepting_property"], redeemer, "{a}");
                }
            }
            movements += 10_000 - balance;
        }
    }
    let q = "from=2027-02-01&to=2027-02-28";
    // The issuer sees every group; each accepting hotel its own.
    let castle = settlement_groups(&h, "castle", &h.office, q).await;
    assert_eq!(castle, expected);
    let net: i64 = castle.values().map(|g| g[4]).sum();
    assert_eq!(net, movements, "settlement nets to the vouchers' movements");
    for p in ["abbey", "spa"] {
        let own: BTreeMap<_, _> = expected
            .iter()
            .filter(|((a, _), _)| a == p)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        assert_eq!(settlement_groups(&h, p, &key_of(p), q).await, own, "{p}");
    }
}

// ---- printed codes belong to their issuer --------------------------------------

async fn issue_at(h: &Hub, property: &str, key: &str, body: Value) -> Reply {
    send(
        &h.app,
        "POST",
        &uri(property, "/vouchers"),
        key,
        None,
        Some(body),
    )
    .await
}

async fn printed_codes_belong_to_their_issuer(b: Backend) {
    let h = hub(b).await;
    guesthub::admin::add_property(&h.store, "inn", "Inn", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let spa = tests::partner_key(
        &h.store,
        "Spa PMS",
        &["spa"],
        "vouchers:read,vouchers:redeem,vouchers:issue",
    )
    .await;
    let inn = tests::partner_key(
        &h.store,
        "Inn office",
        &["inn"],
        "vouchers:read,vouchers:issue",
    )
    .await;
    let gift = |amount: i64| json!({"article_type": "external", "code": "GIFT-2027-0001", "value": eur(amount)});
    // The abbey's code does not block the castle's, nor the inn's.
    let r = issue_at(&h, "abbey", &h.abbey, gift(3_000)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = issue_at(&h, "castle", &h.office, gift(5_000)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = issue_at(&h, "inn", &inn, gift(700)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // An issuer holds a code once.
    expect(
        &issue_at(&h, "castle", &h.office, gift(1)).await,
        StatusCode::CONFLICT,
        "voucher_code_taken",
    );
    // Each sees its own voucher under the code.
    let own = |s: Reply| {
        assert_eq!(s.status, StatusCode::OK, "{}", s.body);
        let j = s.json();
        (
            j["issuer"].as_str().unwrap().to_owned(),
            j["balance"]["amount"].as_i64().unwrap(),
        )
    };
    let code = "gift-2027-0001";
    assert_eq!(
        own(status(&h, &h.asa, "castle", code).await),
        ("castle".into(), 5_000)
    );
    assert_eq!(
        own(status(&h, &h.abbey, "abbey", code).await),
        ("abbey".into(), 3_000)
    );
    // The spa accepts no issuer: the code is unknown to it, exactly like a
    // code nobody holds.
    let unknown = status(&h, &spa, "spa", "GIFT-2027-0002").await;
    let held = status(&h, &spa, "spa", code).await;
    expect(&held, StatusCode::NOT_FOUND, "voucher_not_found");
    assert_eq!(held.json()["error"], unknown.json()["error"]);
    // Accepting the abbey: the abbey's voucher.
    guesthub::admin::accept_issuer(&h.store, "spa", "abbey")
        .await
        .unwrap();
    assert_eq!(
        own(status(&h, &spa, "spa", code).await),
        ("abbey".into(), 3_000)
    );
    // Accepting the castle too: ambiguous, naming only the issuers the spa
    // may see (not the inn), and nothing moves.
    guesthub::admin::accept_issuer(&h.store, "spa", "castle")
        .await
        .unwrap();
    let r = status(&h, &spa, "spa", code).await;
    expect(&r, StatusCode::CONFLICT, "voucher_code_ambiguous");
    assert_eq!(
        r.json()["error"]["details"]["issuers"],
        json!(["abbey", "castle"])
    );
    let r = redeem(
        &h,
        &spa,
        "spa",
        code,
        "amb-1",
        redeem_body(Some(100), "S-1"),
    )
    .await;
    expect(&r, StatusCode::CONFLICT, "voucher_code_ambiguous");
    assert!(!r.body.contains("inn"), "{}", r.body);
    assert_eq!(own(status(&h, &h.asa, "castle", code).await).1, 5_000);
    assert_eq!(own(status(&h, &h.abbey, "abbey", code).await).1, 3_000);
    // Its own voucher under the code comes first.
    let r = issue_at(&h, "spa", &spa, gift(900)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = redeem(
        &h,
        &spa,
        "spa",
        code,
        "amb-2",
        redeem_body(Some(100), "S-2"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["balance"], eur(800));
    // The abbey accepting the castle still redeems its own first.
    guesthub::admin::accept_issuer(&h.store, "abbey", "castle")
        .await
        .unwrap();
    let r = redeem(
        &h,
        &h.abbey,
        "abbey",
        code,
        "amb-3",
        redeem_body(Some(1_000), "A-1"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["balance"], eur(2_000));
    assert_eq!(own(status(&h, &h.asa, "castle", code).await).1, 5_000);
    // A generated code stays unique across issuers.
    let generated = issue(&h, value(1_000)).await;
    expect(
        &issue_at(
            &h,
            "abbey",
            &h.abbey,
            json!({"article_type": "external", "code": generated, "value": eur(1)}),
        )
        .await,
        StatusCode::CONFLICT,
        "voucher_code_taken",
    );
    // Each issuer's ledger holds only its own movements.
    let acts = ledger(&h, code).await;
    assert_eq!(kinds(&acts), ["issue"]);
    assert_eq!(audit(&acts).1, 5_000);
}

// ---- pickup feed and "Kode" booking-in --------------------------------------------

async fn put_mapping(h: &Hub, key: &str) {
    let m = send(
        &h.app,
        "PUT",
        &uri("castle", "/article-mapping"),
        key,
        None,
        Some(json!({"value": "ART-V", "package": "ART-P", "gift_card": "ART-GC", "external": "ART-X"})),
    )
    .await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.body);
}

async fn kode_books_the_code_in(b: Backend) {
    let h = hub(b).await;
    put_mapping(&h, &h.asa).await;
    let v = issue(&h, value(10_000)).await;
    let card = issue(
        &h,
        json!({"article_type": "gift_card", "value": eur(5_000), "valid_until": "2030-12-31"}),
    )
    .await;
    let ext = issue(
        &h,
        json!({"article_type": "external", "code": "EXT-5555", "value": eur(2_000)}),
    )
    .await;
    let pkg = issue(
        &h,
        json!({"article_type": "package", "value": eur(40_000), "package": "2 nights"}),
    )
    .await;
    // Gift cards and external vouchers never enter the feed.
    let feed = orders(&h, &h.asa, "").await;
    assert_eq!(order_codes(&feed), [v.clone(), pkg.clone()]);
    // Every status carries the type and this partner's article code.
    let s = status(&h, &h.asa, "castle", &card).await.json();
    assert_eq!(
        (&s["article_type"], &s["article_code"], &s["picked_up"]),
        (&json!("gift_card"), &json!("ART-GC"), &json!(false))
    );
    let s = status(&h, &h.protel, "castle", &card).await.json();
    assert!(s["article_code"].is_null(), "{s}");
    // The first redemption books the card in, with what the PMS needs.
    let first_body = redeem_body(Some(1_000), "R-1");
    let first = redeem(&h, &h.asa, "castle", &card, "k-1", first_body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let j = first.json();
    assert_eq!(
        (
            &j["picked_up"],
            &j["booked_in"],
            &j["article_type"],
            &j["article_code"]
        ),
        (
            &json!(false),
            &json!(true),
            &json!("gift_card"),
            &json!("ART-GC")
        )
    );
    assert_eq!(
        j["booking"],
        json!({"code": card, "article_type": "gift_card", "article_code": "ART-GC",
               "original_value": eur(5_000), "valid_until": "2030-12-31", "issuer": "castle"})
    );
    // A replay is the same answer; the money and the booking-in happened once.
    let again = redeem(&h, &h.asa, "castle", &card, "k-1", first_body).await;
    assert_eq!(again.body, first.body);
    // From then on this partner knows it.
    let later = redeem(
        &h,
        &h.asa,
        "castle",
        &card,
        "k-2",
        redeem_body(Some(500), "R-2"),
    )
    .await;
    let j = later.json();
    assert_eq!(
        (&j["picked_up"], &j["booked_in"], &j["article_code"]),
        (&json!(true), &json!(false), &json!("ART-GC"))
    );
    assert!(j.get("booking").is_none(), "{j}");
    assert_eq!(j["balance"], eur(3_500));
    assert_eq!(
        status(&h, &h.asa, "castle", &card).await.json()["picked_up"],
        true
    );
    // Another PMS books it in for itself.
    assert_eq!(
        status(&h, &h.protel, "castle", &card).await.json()["picked_up"],
        false
    );
    let r = redeem(
        &h,
        &h.protel,
        "castle",
        &card,
        "k-3",
        redeem_body(Some(100), "P-1"),
    )
    .await;
    assert_eq!(
        (r.json()["picked_up"].clone(), r.json()["booked_in"].clone()),
        (json!(false), json!(true))
    );
    // External vouchers the same way.
    let r = redeem(
        &h,
        &h.asa,
        "castle",
        &ext,
        "k-4",
        redeem_body(Some(100), "R-4"),
    )
    .await;
    let j = r.json();
    assert_eq!(
        (&j["booked_in"], &j["article_code"]),
        (&json!(true), &json!("ART-X"))
    );
    assert_eq!(j["booking"]["original_value"], eur(2_000));
    assert!(j["booking"]["valid_until"].is_null());
    // A value voucher picked up (acknowledged) is never booked in.
    assert_eq!(ack(&h, &h.asa, "2").await.status, StatusCode::OK);
    let r = redeem(
        &h,
        &h.asa,
        "castle",
        &v,
        "k-5",
        redeem_body(Some(100), "R-5"),
    )
    .await;
    let j = r.json();
    assert_eq!(
        (
            &j["picked_up"],
            &j["booked_in"],
            &j["article_type"],
            &j["article_code"]
        ),
        (
            &json!(true),
            &json!(false),
            &json!("value"),
            &json!("ART-V")
        )
    );
    // A refused redemption books nothing in.
    let r = redeem(
        &h,
        &h.protel,
        "castle",
        &pkg,
        "k-6",
        redeem_body(Some(1), "P-6"),
    )
    .await;
    expect(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "package_requires_full_redemption",
    );
    assert_eq!(
        status(&h, &h.protel, "castle", &pkg).await.json()["picked_up"],
        false
    );
    // Racing first redemptions by one partner: one books the code in.
    let fresh = issue(
        &h,
        json!({"article_type": "gift_card", "value": eur(1_000)}),
    )
    .await;
    let racing: Vec<_> = (0..8)
        .map(|i| {
            let (app, key, u) = (
                if i % 2 == 0 {
                    h.app.clone()
                } else {
                    h.app2.clone()
                },
                h.protel.clone(),
                uri("castle", &format!("/vouchers/{fresh}/redemptions")),
            );
            tokio::spawn(async move {
                let idem = format!("race-{i}");
                send(
                    &app,
                    "POST",
                    &u,
                    &key,
                    Some(&idem),
                    Some(redeem_body(Some(10), "P")),
                )
                .await
            })
        })
        .collect();
    let mut booked = 0;
    for t in racing {
        let r = t.await.unwrap();
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        booked += usize::from(r.json()["booked_in"] == true);
    }
    assert_eq!(booked, 1);
}

// ---- portal pickup ------------------------------------------------------------

async fn portal_pickup_in_the_hotels_own_feed(b: Backend) {
    let h = hub(b).await;
    h.t.clock.set(utc("2027-02-10T10:00:00Z"));
    let before = issue(&h, value(1_000)).await;
    guesthub::admin::pick_up_orders_of(&h.store, "abbey", "castle")
        .await
        .unwrap();
    let v1 = issue(&h, value(2_000)).await;
    issue(
        &h,
        json!({"article_type": "gift_card", "value": eur(3_000)}),
    )
    .await;
    let v2 = issue(
        &h,
        json!({"article_type": "package", "value": eur(40_000), "package": "2 nights"}),
    )
    .await;
    let r = issue_at(&h, "abbey", &h.abbey, value(500)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let own = r.json()["code"].as_str().unwrap().to_owned();
    // The abbey's feed: the castle's value and package orders sold since,
    // and its own, in one sequence.
    let u = uri("abbey", "/voucher-orders");
    let feed = send(&h.app, "GET", &u, &h.abbey, None, None).await.json();
    assert_eq!(order_codes(&feed), [v1.clone(), v2.clone(), own.clone()]);
    let issuers: Vec<&str> = feed["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["issuer"].as_str().unwrap())
        .collect();
    assert_eq!(issuers, ["castle", "castle", "abbey"]);
    assert_eq!(feed["cursor"], "3");
    // The castle's own feed is unchanged.
    assert_eq!(
        order_codes(&orders(&h, &h.asa, "").await),
        [before.clone(), v1.clone(), v2.clone()]
    );
    // Acknowledged there: picked up at the abbey.
    let r = send(
        &h.app,
        "POST",
        &uri("abbey", "/voucher-orders/ack"),
        &h.abbey,
        None,
        Some(json!({"cursor": "2"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        status(&h, &h.abbey, "abbey", &v1).await.json()["picked_up"],
        true
    );
    assert_eq!(
        status(&h, &h.abbey, "abbey", &v2).await.json()["picked_up"],
        true
    );
    assert_eq!(
        status(&h, &h.abbey, "abbey", &own).await.json()["picked_up"],
        false
    );
    assert_eq!(
        status(&h, &h.abbey, "abbey", &before).await.json()["picked_up"],
        false
    );
    let r = redeem(
        &h,
        &h.abbey,
        "abbey",
        &v1,
        "pp-1",
        redeem_body(Some(700), "A-1"),
    )
    .await;
    assert_eq!(
        (r.json()["picked_up"].clone(), r.json()["booked_in"].clone()),
        (json!(true), json!(false)),
        "{}",
        r.body
    );
    // Settlement attribution is unchanged: the abbey took it from the castle.
    let q = "from=2027-02-10&to=2027-02-10";
    let groups = settlement_groups(&h, "castle", &h.office, q).await;
    assert_eq!(
        groups[&("abbey".to_owned(), "castle".to_owned())],
        [1, 0, 700, 0, 700]
    );
    // Accepting without pickup leaves a hotel's feed alone.
    guesthub::admin::accept_issuer(&h.store, "spa", "castle")
        .await
        .unwrap();
    let spa = tests::partner_key(&h.store, "Spa PMS", &["spa"], "vouchers:pickup").await;
    issue(&h, value(100)).await;
    let feed = send(
        &h.app,
        "GET",
        &uri("spa", "/voucher-orders"),
        &spa,
        None,
        None,
    )
    .await
    .json();
    assert_eq!(feed["orders"], json!([]));
}

// ---- lost code ---------------------------------------------------------------------

async fn lost_code_by_order_ref_or_buyer_email(b: Backend) {
    let h = hub(b).await;
    h.t.clock.set(utc("2027-03-01T09:00:00Z"));
    let sold = |order: &str, email: &str| {
        json!({"article_type": "value", "value": eur(1_000), "order_ref": order,
               "buyer": {"name": "Bea Buyer", "email": email}})
    };
    let first = issue(&h, sold("WEB-77", "bea@example.com")).await;
    h.t.clock.advance(Duration::minutes(5));
    let second = issue(&h, sold("WEB-78", " Bea@Example.com")).await;
    let r = issue_at(&h, "abbey", &h.abbey, sold("WEB-77", "bea@example.com")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let abbeys = r.json()["code"].as_str().unwrap().to_owned();
    let find = |property: &str, key: &str, q: &str| {
        let (app, key, u) = (
            h.app.clone(),
            key.to_owned(),
            uri(property, &format!("/vouchers?{q}")),
        );
        async move { send(&app, "GET", &u, &key, None, None).await }
    };
    let masked = |c: &str| format!("****-****-****-****-{}", &c[c.len() - 4..]);
    let r = find("castle", &h.office, "order_ref=WEB-77").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let j = r.json();
    assert_eq!(j["vouchers"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j["vouchers"][0]["code"], masked(&first));
    assert_eq!(j["vouchers"][0]["order_ref"], "WEB-77");
    assert_eq!(j["vouchers"][0]["balance"], eur(1_000));
    assert!(!r.body.contains(&first) && !r.body.contains(&first.replace('-', "")));
    // By email, case and spaces aside, newest first; only the castle's.
    let r = find("castle", &h.asa, "buyer_email=BEA%40example.com").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let codes: Vec<String> = r.json()["vouchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes, [masked(&second), masked(&first)]);
    assert!(!r.body.contains(&abbeys[..19]));
    let r = find("abbey", &h.abbey, "order_ref=WEB-77").await.json();
    assert_eq!(r["vouchers"][0]["code"], masked(&abbeys));
    assert_eq!(r["vouchers"].as_array().unwrap().len(), 1);
    // Nothing found is an empty list.
    let r = find("castle", &h.office, "order_ref=NOPE").await;
    assert_eq!(r.json(), json!({"vouchers": []}));
    // Exactly one of the two.
    for q in [
        "",
        "order_ref=WEB-77&buyer_email=bea%40example.com",
        "code=X",
    ] {
        expect(
            &find("castle", &h.office, q).await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        );
    }
    expect(
        &find("castle", &h.office, "buyer_email=not-an-email").await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    );
    // The scope is vouchers:read.
    let pickup_only = tests::partner_key(&h.store, "Feed", &["castle"], "vouchers:pickup").await;
    expect(
        &find("castle", &pickup_only, "order_ref=WEB-77").await,
        StatusCode::FORBIDDEN,
        "missing_scope",
    );
}

both_stores! {
    write_off_retry => write_off_retry_reports_the_whole_run;
    lifecycle => redemption_lifecycle;
    gift_cards => gift_cards_and_lifecycle;
    holds => holds_capture_release_expire;
    settlement => settlement_by_accepting_and_issuing_property;
    settlement_reversals => reversals_settle_against_the_redeeming_property;
    printed_codes => printed_codes_belong_to_their_issuer;
    kode => kode_books_the_code_in;
    portal_pickup => portal_pickup_in_the_hotels_own_feed;
    lost_code => lost_code_by_order_ref_or_buyer_email;
    write_off => write_off_dry_run_then_real;
    imports => imports_keep_codes_and_report_collisions;
    pickup => pickup_with_two_cursors;
    portal_and_tenancy => portal_acceptance_and_tenancy;
    errors => error_codes;
    concurrent_redemptions => concurrent_redemptions_never_overdraw;
    crash_after_commit => retry_after_a_crash_after_commit_moves_money_once;
    random_faults => random_faults_never_move_money_twice;
}
