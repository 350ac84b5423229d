//! Membership checkout end to end on both stores: catalogue, membership
//! sale and redemption, club discounts, capacity under concurrency,
//! payments with gift cards through the voucher ledger, pay later, cancel,
//! renewal, idempotent order uuids.

use std::sync::Arc;

use axum::Router;
use chrono::{TimeZone, Utc};
use domain::ports::PropertyStore;
use http::StatusCode;
use platform::Store;
use platform::store::faults::{FaultPlan, FaultyItems};
use serde_json::{Value, json};
use tests::{Backend, Reply, TestStore, both_stores, call, fresh_store};

struct Shop {
    t: TestStore,
    app: Router,
    key: String,
    /// The same partner's sandbox key: requests with `test_mode: true` (in
    /// the body or the query) go with it, as the hub requires.
    test_key: String,
}

async fn shop(b: Backend) -> Shop {
    let t = fresh_store(b).await;
    // 2027-01-10 10:00 in Vienna.
    t.clock
        .set(Utc.with_ymd_and_hms(2027, 1, 10, 9, 0, 0).unwrap());
    let s = &t.store;
    guesthub::admin::add_property(s, "castle", "Castle", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let scopes: Vec<String> = [
        "checkout",
        "vouchers:issue",
        "vouchers:read",
        "vouchers:redeem",
        "club:admin",
        "club:read",
    ]
    .map(String::from)
    .to_vec();
    let (_, key) = guesthub::admin::add_partner(s, "Shop", &["castle".into()], &scopes)
        .await
        .unwrap();
    let (_, test_key) =
        guesthub::admin::add_partner_in_mode(s, "Shop sandbox", &["castle".into()], &scopes, true)
            .await
            .unwrap();
    let app = guesthub::app::router(s.clone(), 256 * 1024);
    let shop = Shop {
        t,
        app,
        key,
        test_key,
    };
    for (id, body) in [
        (
            "club",
            json!({"kind": "membership", "name": "Wine club", "currency": "EUR", "units": [{"id": "member", "name": "Member", "price": {"amount": 9900, "currency": "EUR"}}],
            "validity": {"count": 1, "unit": "months"}, "member_fields": ["first_name", "email"],
            "benefits": [{"kind": "member_tickets", "product_ids": ["tasting"], "unit_ids": ["adult"], "quantity_per_booking": 2, "max_uses": 3},
                         {"kind": "promotion", "percent_off": 15}]}),
        ),
        (
            "tasting",
            json!({"kind": "admission", "name": "Tasting", "currency": "EUR", "units": [{"id": "adult", "name": "Adult", "price": {"amount": 2500, "currency": "EUR"}}]}),
        ),
        (
            "harvest",
            json!({"kind": "event", "name": "Harvest dinner", "currency": "EUR", "capacity": 5,
            "units": [{"id": "adult", "name": "Adult", "price": {"amount": 8000, "currency": "EUR"}}],
            "discounts": {"member": {"percent_off": 10}, "tiers": {"Gold": {"fixed_price": {"amount": 6000, "currency": "EUR"}}}}}),
        ),
        (
            "cellar",
            json!({"kind": "event", "name": "Cellar night", "currency": "EUR", "members_only": true, "units": [{"id": "adult", "name": "Adult", "price": {"amount": 5000, "currency": "EUR"}}]}),
        ),
    ] {
        let r = shop.put(&format!("/products/{id}"), body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    shop
}

impl Shop {
    fn uri(path: &str) -> String {
        format!("/v1/properties/castle{path}")
    }
    /// The sandbox key for test-mode requests, else the live one.
    fn key_for(&self, test: bool) -> &str {
        if test { &self.test_key } else { &self.key }
    }
    async fn put(&self, path: &str, body: Value) -> Reply {
        call(
            &self.app,
            "PUT",
            &Self::uri(path),
            Some(&self.key),
            &[],
            Some(body.to_string()),
        )
        .await
    }
    async fn post(&self, path: &str, body: Value) -> Reply {
        let test = body["test_mode"] == true;
        self.post_as(test, path, body).await
    }
    async fn post_as(&self, test: bool, path: &str, body: Value) -> Reply {
        call(
            &self.app,
            "POST",
            &Self::uri(path),
            Some(self.key_for(test)),
            &[("idempotency-key", &uuid::Uuid::new_v4().to_string())],
            Some(body.to_string()),
        )
        .await
    }
    async fn get(&self, path: &str) -> Reply {
        self.get_as(path.contains("test_mode=true"), path).await
    }
    async fn get_as(&self, test: bool, path: &str) -> Reply {
        call(
            &self.app,
            "GET",
            &Self::uri(path),
            Some(self.key_for(test)),
            &[],
            None,
        )
        .await
    }
    async fn order(&self, body: Value) -> Reply {
        call(
            &self.app,
            "POST",
            &Self::uri("/orders"),
            Some(self.key_for(body["test_mode"] == true)),
            &[],
            Some(body.to_string()),
        )
        .await
    }
}

fn card(amount: i64) -> Value {
    json!({"mode": "charge_now", "parts": [{"method": "card", "amount": {"amount": amount, "currency": "EUR"}}]})
}

async fn membership_sale_and_redemption(b: Backend) {
    let s = shop(b).await;
    let sale = json!({"uuid": "sale-1", "contact": {"email": "ana@example.com", "first_name": "Ana", "last_name": "Lopez"},
        "items": [{"product_id": "club", "unit_id": "member", "quantity": 1, "valid_from": "2027-01-31"}], "payment": card(9900)});
    let r = s.order(sale.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let m = &r.json()["lines"][0]["memberships"][0];
    // Jan 31 + 1 month → Feb 28 (the shorter month's last day).
    assert_eq!(
        (m["valid_from"].as_str(), m["expires_on"].as_str()),
        (Some("2027-01-31"), Some("2027-02-28"))
    );
    let reference = m["reference"].as_str().unwrap().to_owned();
    // The same uuid and body: the same bytes; another body: 422.
    let again = s.order(sale.clone()).await;
    assert_eq!((again.status, &again.body), (StatusCode::CREATED, &r.body));
    let mut other = sale.clone();
    other["items"][0]["valid_from"] = json!("2027-02-01");
    assert_eq!(s.order(other).await.code(), "idempotency_key_reused");

    // Redeem: first applicable benefit (2 free tastings per booking), contact prefilled.
    let redeem = |uuid: &str, date: &str, qty: u32, test: bool| {
        json!({"uuid": uuid, "test_mode": test, "membership_reference": reference,
        "items": [{"product_id": "tasting", "unit_id": "adult", "quantity": qty, "date": date}], "payment": {"mode": "pay_later", "parts": []}})
    };
    let r = s.order(redeem("visit-1", "2027-02-05", 3, false)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let o = r.json();
    assert_eq!(o["lines"][0]["discount"]["source"], "membership");
    assert_eq!(o["lines"][0]["line_total"]["amount"], 2500);
    assert_eq!(o["contact"]["email"], "ana@example.com");
    assert_eq!(o["balance_due"]["amount"], 2500);
    // One free ticket left over the membership's life (one discount per
    // line: the second ticket is full price)…
    let r = s.order(redeem("visit-2", "2027-02-06", 2, false)).await;
    assert_eq!(
        r.json()["lines"][0]["line_total"]["amount"],
        2500,
        "{}",
        r.body
    );
    // …then the next applicable benefit, the promotion.
    let r = s.order(redeem("visit-2b", "2027-02-07", 1, false)).await;
    assert_eq!(
        r.json()["lines"][0]["line_total"]["amount"],
        2125,
        "{}",
        r.body
    );
    // Visits outside validity and test/live mismatches are refused.
    assert_eq!(
        s.order(redeem("visit-3", "2027-03-01", 1, false))
            .await
            .code(),
        "membership_expired"
    );
    assert_eq!(
        s.order(redeem("visit-4", "2027-01-20", 1, false))
            .await
            .code(),
        "membership_not_yet_valid"
    );
    // (A sandbox key does not even see the live membership.)
    assert_eq!(
        s.order(redeem("visit-5", "2027-02-05", 1, true))
            .await
            .code(),
        "membership_not_found"
    );
    // Member activity.
    let r = s.get(&format!("/memberships/{reference}/bookings")).await;
    assert_eq!(
        r.json()["bookings"].as_array().unwrap().len(),
        3,
        "{}",
        r.body
    );
    // Renewal: a new reference; the old one resolves to it.
    let renew = json!({"uuid": "renew-1", "contact": {"email": "ana@example.com", "first_name": "Ana"},
        "items": [{"product_id": "club", "unit_id": "member", "quantity": 1, "valid_from": "2027-03-01", "renews": reference}], "payment": card(9900)});
    let r = s.order(renew).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let new_ref = r.json()["lines"][0]["memberships"][0]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_ref, reference);
    let r = s.get(&format!("/memberships/{reference}")).await;
    assert_eq!(r.json()["reference"], new_ref.as_str());
    // Missing member fields are refused.
    let r = s.order(json!({"uuid": "sale-2", "contact": {"first_name": "Bo"}, "items": [{"product_id": "club", "unit_id": "member", "quantity": 1}], "payment": card(9900)})).await;
    assert_eq!(r.code(), "member_fields_missing");
}

async fn club_discounts_and_access(b: Backend) {
    let s = shop(b).await;
    let property =
        s.t.store
            .property(&domain::PropertyId::parse("castle").unwrap())
            .await
            .unwrap()
            .unwrap();
    let req = ams_import::ImportRequest {
        property,
        source: domain::roster::import::ImportSource {
            key: "ams/castle/m.csv".into(),
            etag: "e".into(),
            sequencer: None,
            arrived_at: Utc::now(),
        },
        kind: domain::roster::FileKind::Delimited,
        input: ams_import::Input::Stream(Box::new(std::io::Cursor::new(
            b"Email,ClubDescr\ngold@example.com,Gold\nplain@example.com,Silver\n".to_vec(),
        ))),
    };
    ams_import::import(&s.t.store, req).await.unwrap();
    assert_eq!(
        s.put("/club-tiers/Gold", json!({"enabled": true}))
            .await
            .status,
        StatusCode::OK
    );
    let book = |uuid: &str, email: &str, product: &str| {
        json!({"uuid": uuid, "contact": {"email": email},
        "items": [{"product_id": product, "unit_id": "adult", "quantity": 1, "date": "2027-02-01"}], "payment": {"mode": "pay_later", "parts": []}})
    };
    let r = s.order(book("g", "GOLD@example.com", "harvest")).await;
    assert_eq!(
        (
            r.json()["lines"][0]["discount"]["source"].clone(),
            r.json()["total"]["amount"].clone()
        ),
        (json!("club_tier"), json!(6000)),
        "{}",
        r.body
    );
    assert_eq!(
        r.json()["lines"][0]["discount"]["amount_off"],
        json!({"amount": 2000, "currency": "EUR"}),
        "{}",
        r.body
    );
    let r = s.order(book("p", "plain@example.com", "harvest")).await;
    assert_eq!(
        (
            r.json()["lines"][0]["discount"]["source"].clone(),
            r.json()["total"]["amount"].clone()
        ),
        (json!("club_member"), json!(7200))
    );
    let r = s.order(book("n", "nobody@example.com", "harvest")).await;
    assert_eq!(r.json()["total"]["amount"], 8000, "{}", r.body);
    assert_eq!(
        s.order(book("x", "nobody@example.com", "cellar"))
            .await
            .code(),
        "members_only_event"
    );
    assert_eq!(
        s.order(book("y", "plain@example.com", "cellar"))
            .await
            .status,
        StatusCode::CREATED
    );
}

async fn capacity_never_overbooks(b: Backend) {
    let s = Arc::new(shop(b).await);
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.order(json!({"uuid": format!("seat-{i}"), "items": [{"product_id": "harvest", "unit_id": "adult", "quantity": 1, "date": "2027-02-01"}], "payment": {"mode": "pay_later", "parts": []}})).await
            })
        })
        .collect();
    let replies: Vec<Reply> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    let sold_out = replies.iter().filter(|r| r.code() == "sold_out").count();
    assert_eq!(
        (created, sold_out),
        (5, 95),
        "{:?}",
        replies
            .iter()
            .find(|r| r.status != StatusCode::CREATED && r.code() != "sold_out")
    );
    // Cancelling one gives its seat back.
    let booked = replies
        .iter()
        .find(|r| r.status == StatusCode::CREATED)
        .unwrap()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        s.post(&format!("/orders/{booked}/cancel"), json!({}))
            .await
            .json()["status"],
        "cancelled"
    );
    let r = s.order(json!({"uuid": "late", "items": [{"product_id": "harvest", "unit_id": "adult", "quantity": 1, "date": "2027-02-01"}], "payment": {"mode": "pay_later", "parts": []}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

async fn gift_card_payments(b: Backend) {
    let s = shop(b).await;
    let r = s
        .post(
            "/vouchers",
            json!({"article_type": "gift_card", "value": {"amount": 5000, "currency": "EUR"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let code = r.json()["code"].as_str().unwrap().to_owned();
    let split = |uuid: &str| {
        json!({"uuid": uuid, "items": [{"product_id": "harvest", "unit_id": "adult", "quantity": 1, "date": "2027-02-01"}],
        "payment": {"mode": "split", "parts": [{"method": "gift_card", "amount": {"amount": 3000, "currency": "EUR"}, "gift_card_code": code},
                                                {"method": "cash", "amount": {"amount": 5000, "currency": "EUR"}, "tendered": {"amount": 6000, "currency": "EUR"}}]}})
    };
    // A failure when the order commits (after the gift-card step was
    // planned): nothing is taken.
    let faulty = Arc::new(FaultyItems::new(
        s.t.items.clone(),
        FaultPlan {
            fail_writes_from: Some(1),
            ..Default::default()
        },
    ));
    let broken = guesthub::app::router(Store::with_clock(faulty, s.t.clock.clone()), 256 * 1024);
    let r = call(
        &broken,
        "POST",
        "/v1/properties/castle/orders",
        Some(&s.key),
        &[],
        Some(split("gc-1").to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(balance(&s, &code).await, 5000, "no gift-card value taken");
    assert_eq!(s.get("/orders/gc-1").await.status, StatusCode::NOT_FOUND);
    // The retry succeeds; the change for cash is computed.
    let r = s.order(split("gc-1")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["payments"][1]["change"]["amount"], 1000);
    assert_eq!(balance(&s, &code).await, 2000);
    // Parts that do not add up are refused.
    let mut bad = split("gc-2");
    bad["payment"]["parts"][1]["amount"]["amount"] = json!(4000);
    assert_eq!(s.order(bad).await.code(), "payment_mismatch");
    // More than the card holds: refused by the ledger, nothing taken.
    let mut greedy = split("gc-3");
    greedy["payment"]["parts"][0]["amount"]["amount"] = json!(4000);
    greedy["payment"]["parts"][1]["amount"]["amount"] = json!(4000);
    greedy["payment"]["parts"][1]["tendered"]["amount"] = json!(4000);
    assert_eq!(s.order(greedy).await.code(), "insufficient_balance");
    assert_eq!(balance(&s, &code).await, 2000);
    // Cancel: the gift-card value comes back through a ledger reversal.
    assert_eq!(
        s.post("/orders/gc-1/cancel", json!({})).await.status,
        StatusCode::OK
    );
    assert_eq!(balance(&s, &code).await, 5000);
    let acts = s.get(&format!("/vouchers/{code}/activities")).await;
    assert!(acts.body.contains("reverse"), "{}", acts.body);
}

async fn gift_card(s: &Shop, amount: i64, valid_until: Option<&str>) -> String {
    let mut body =
        json!({"article_type": "gift_card", "value": {"amount": amount, "currency": "EUR"}});
    if let Some(d) = valid_until {
        body["valid_until"] = json!(d);
    }
    let r = s.post("/vouchers", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.json()["code"].as_str().unwrap().to_owned()
}

/// The last four characters of a code, as refunds name a card.
fn tail(code: &str) -> String {
    let key: Vec<char> = code.chars().filter(|c| *c != '-').collect();
    key[key.len() - 4..].iter().collect()
}

async fn order_owns_its_gift_card_redemptions(b: Backend) {
    let s = shop(b).await;
    let a = gift_card(&s, 5000, None).await;
    let seat =
        json!({"product_id": "harvest", "unit_id": "adult", "quantity": 1, "date": "2027-02-01"});
    let r = s
        .order(json!({"uuid": "o-1", "items": [seat],
            "payment": {"mode": "split", "parts": [
                {"method": "gift_card", "amount": {"amount": 3000, "currency": "EUR"}, "gift_card_code": a},
                {"method": "card", "amount": {"amount": 5000, "currency": "EUR"}, "reference": "txn-1"}]}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The answer masks the card's code: it is what spends the card.
    let shown = r.json()["payments"][0]["gift_card"]["code"].clone();
    assert_eq!(shown, json!(format!("…{}", tail(&a))), "{}", r.body);
    let stored = s.get("/orders/o-1").await.body;
    assert!(
        !stored.contains(&a) && !stored.contains(&a.replace('-', "")),
        "{stored}"
    );
    let red = r.json()["payments"][0]["gift_card"]["redemption_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The order's redemption is not reversed behind its back.
    let rev = s
        .post(
            &format!("/vouchers/{a}/redemptions/{red}/reversal"),
            json!({}),
        )
        .await;
    assert_eq!(
        (rev.status, rev.code()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "redemption_belongs_to_order".into()
        ),
        "{}",
        rev.body
    );
    assert_eq!(rev.json()["error"]["details"]["order_id"], "o-1");
    assert_eq!(balance(&s, &a).await, 2000);
    // Cancelling the order gives it back, and names the card part to refund.
    let r = s.post("/orders/o-1/cancel", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["status"], "cancelled");
    assert_eq!(
        r.json()["refunds_due"],
        json!([{"method": "card", "amount": {"amount": 5000, "currency": "EUR"}, "reference": "txn-1"}])
    );
    assert_eq!(balance(&s, &a).await, 5000);

    // Cards cancelled or expired after the order: the order still cancels,
    // seats and benefits come back, the card parts are owed as refunds.
    let sale = s
        .order(json!({"uuid": "sale", "contact": {"email": "ana@example.com", "first_name": "Ana"},
            "items": [{"product_id": "club", "unit_id": "member", "quantity": 1}], "payment": card(9900)}))
        .await;
    let mem = sale.json()["lines"][0]["memberships"][0]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = gift_card(&s, 5000, None).await;
    let d = gift_card(&s, 5000, Some("2027-01-15")).await;
    let r = s
        .order(json!({"uuid": "o-2", "membership_reference": mem,
            "items": [{"product_id": "tasting", "unit_id": "adult", "quantity": 2, "date": "2027-02-01"},
                      {"product_id": "harvest", "unit_id": "adult", "quantity": 5, "date": "2027-02-01"}],
            "payment": {"mode": "pay_later", "parts": [
                {"method": "gift_card", "amount": {"amount": 3000, "currency": "EUR"}, "gift_card_code": c},
                {"method": "gift_card", "amount": {"amount": 2000, "currency": "EUR"}, "gift_card_code": d}]}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        s.order(
            json!({"uuid": "o-3", "items": [seat], "payment": {"mode": "pay_later", "parts": []}})
        )
        .await
        .code(),
        "sold_out"
    );
    let m = s.get(&format!("/memberships/{mem}")).await.json();
    assert_eq!(m["benefit_uses"]["0"], 2, "{m}");
    let r = s.post(&format!("/vouchers/{c}/cancel"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    s.t.clock
        .set(Utc.with_ymd_and_hms(2027, 1, 20, 9, 0, 0).unwrap());
    let r = s.post("/orders/o-2/cancel", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let o = r.json();
    assert_eq!(o["status"], "cancelled");
    let refunds = o["refunds_due"].as_array().unwrap();
    assert_eq!(refunds.len(), 2, "{o}");
    for (refund, (code, amount)) in refunds.iter().zip([(&c, 3000), (&d, 2000)]) {
        assert_eq!(refund["method"], "gift_card");
        assert_eq!(
            refund["amount"],
            json!({"amount": amount, "currency": "EUR"})
        );
        assert!(
            refund["reference"].as_str().unwrap().ends_with(&tail(code)),
            "{refund}"
        );
    }
    assert_eq!(
        balance(&s, &d).await,
        3000,
        "nothing put back onto an expired card"
    );
    let m = s.get(&format!("/memberships/{mem}")).await.json();
    assert_eq!(m["benefit_uses"]["0"], 0, "{m}");
    let r = s
        .order(json!({"uuid": "o-4", "items": [{"product_id": "harvest", "unit_id": "adult", "quantity": 5, "date": "2027-02-01"}],
            "payment": {"mode": "pay_later", "parts": []}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "seats are back: {}", r.body);
    // Cancelling again changes nothing.
    let again = s.post("/orders/o-2/cancel", json!({})).await;
    assert_eq!(again.json(), o);
}

async fn pay(s: &Shop, order: &str, key: &str, amount: i64) -> Reply {
    let body =
        json!({"parts": [{"method": "card", "amount": {"amount": amount, "currency": "EUR"}}]});
    call(
        &s.app,
        "POST",
        &Shop::uri(&format!("/orders/{order}/payments")),
        Some(&s.key),
        &[("idempotency-key", key)],
        Some(body.to_string()),
    )
    .await
}

fn pay_later() -> Value {
    json!({"mode": "pay_later", "parts": []})
}

fn sale(uuid: &str, product: &str, payment: Value) -> Value {
    json!({"uuid": uuid, "contact": {"email": "ana@example.com", "first_name": "Ana", "last_name": "Lopez"},
        "items": [{"product_id": product, "unit_id": "member", "quantity": 1}], "payment": payment})
}

fn reference(r: &Reply) -> String {
    r.json()["lines"][0]["memberships"][0]["reference"]
        .as_str()
        .unwrap_or_else(|| panic!("no membership: {}", r.body))
        .to_owned()
}

fn visit(uuid: &str, reference: &str, date: &str) -> Value {
    json!({"uuid": uuid, "membership_reference": reference,
        "items": [{"product_id": "tasting", "unit_id": "adult", "quantity": 1, "date": date}], "payment": pay_later()})
}

async fn unpaid_memberships_are_not_usable(b: Backend) {
    let s = shop(b).await;
    let r = s.order(sale("sale-later", "club", pay_later())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let mem = reference(&r);
    assert_eq!(
        s.order(visit("v-1", &mem, "2027-01-20")).await.code(),
        "membership_unpaid"
    );
    // Part paid: still not usable; paid in full: it is.
    assert_eq!(
        pay(&s, "sale-later", "p-1", 5000).await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.order(visit("v-2", &mem, "2027-01-20")).await.code(),
        "membership_unpaid"
    );
    let r = pay(&s, "sale-later", "p-2", 4900).await;
    assert_eq!(r.json()["status"], "confirmed", "{}", r.body);
    let r = s.order(visit("v-3", &mem, "2027-01-20")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["total"]["amount"], 0);
    // A product may allow use before payment.
    let mut flex = s.get("/products/club").await.json();
    flex["usable_before_payment"] = json!(true);
    flex.as_object_mut().unwrap().remove("id");
    let r = s.put("/products/club-flex", flex).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["usable_before_payment"], true);
    let r = s.order(sale("sale-flex", "club-flex", pay_later())).await;
    let flex_ref = reference(&r);
    let r = s.order(visit("v-4", &flex_ref, "2027-01-20")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Only memberships take it.
    let mut tasting = s.get("/products/tasting").await.json();
    tasting["usable_before_payment"] = json!(true);
    assert_eq!(
        s.put("/products/tasting", tasting).await.code(),
        "invalid_field"
    );
}

async fn early_renewal_keeps_paid_time(b: Backend) {
    let s = shop(b).await;
    let r = s
        .order(json!({"uuid": "sale", "contact": {"email": "ana@example.com", "first_name": "Ana"},
            "items": [{"product_id": "club", "unit_id": "member", "quantity": 1, "valid_from": "2027-01-15"}], "payment": card(9900)}))
        .await;
    let old = reference(&r);
    // Renewed on Jan 20, before Feb 14 ends: the new period starts Feb 15.
    s.t.clock
        .set(Utc.with_ymd_and_hms(2027, 1, 20, 9, 0, 0).unwrap());
    let renew = |uuid: &str, of: &str| {
        json!({"uuid": uuid, "contact": {"email": "ana@example.com", "first_name": "Ana"},
            "items": [{"product_id": "club", "unit_id": "member", "quantity": 1, "renews": of}], "payment": card(9900)})
    };
    let r = s.order(renew("renew-1", &old)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let m = &r.json()["lines"][0]["memberships"][0];
    assert_eq!(
        (m["valid_from"].as_str(), m["expires_on"].as_str()),
        (Some("2027-02-15"), Some("2027-03-14"))
    );
    let new = reference(&r);
    // A visit uses the period covering its date, whichever reference is given.
    let r = s.order(visit("v-feb", &new, "2027-02-05")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["membership_reference"], old.as_str());
    let r = s.order(visit("v-mar", &old, "2027-03-01")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["membership_reference"], new.as_str());
    assert_eq!(
        s.order(visit("v-apr", &old, "2027-03-15")).await.code(),
        "membership_expired"
    );
    let r = s.get(&format!("/memberships/{old}")).await;
    assert_eq!(r.json()["reference"], new.as_str(), "{}", r.body);
    assert_eq!(
        r.json()["periods"],
        json!([
            {"reference": old, "valid_from": "2027-01-15", "expires_on": "2027-02-14", "status": "renewed"},
            {"reference": new, "valid_from": "2027-02-15", "expires_on": "2027-03-14", "status": "active"}
        ])
    );
    let r = s.get(&format!("/memberships/{new}/bookings")).await;
    assert_eq!(
        r.json()["bookings"].as_array().unwrap().len(),
        2,
        "{}",
        r.body
    );
    // Renewed after expiry: from today in the property's zone (23:30 UTC
    // on Mar 20 is already Mar 21 in Vienna).
    s.t.clock
        .set(Utc.with_ymd_and_hms(2027, 3, 20, 23, 30, 0).unwrap());
    let r = s.order(renew("renew-2", &old)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let m = &r.json()["lines"][0]["memberships"][0];
    assert_eq!(
        (m["valid_from"].as_str(), m["expires_on"].as_str()),
        (Some("2027-03-21"), Some("2027-04-20"))
    );
    let latest = reference(&r);
    let periods = s.get(&format!("/memberships/{old}")).await.json()["periods"].clone();
    assert_eq!(periods.as_array().unwrap().len(), 3, "{periods}");
    // Cancelling a renewal makes the renewed period current again.
    assert_eq!(
        s.post("/orders/renew-2/cancel", json!({})).await.status,
        StatusCode::OK
    );
    let r = s.get(&format!("/memberships/{old}")).await.json();
    assert_eq!(r["reference"], new.as_str(), "{r}");
    assert_eq!(r["status"], "active");
    let r = s.get(&format!("/memberships/{latest}")).await.json();
    assert_eq!(r["status"], "cancelled", "{r}");
}

async fn memberships_found_by_email_and_name(b: Backend) {
    let s = shop(b).await;
    let sell = |uuid: &str, email: &str, first: &str, last: &str, test: bool| {
        json!({"uuid": uuid, "test_mode": test, "contact": {"email": email, "first_name": first, "last_name": last},
            "items": [{"product_id": "club", "unit_id": "member", "quantity": 1}], "payment": pay_later()})
    };
    let mut refs = Vec::new();
    for (i, (uuid, email, first, last, test)) in [
        ("a-1", "ana@example.com", "Ana", "Lopez", false),
        ("b-1", "ben@example.com", "Ben", "Okafor", false),
        ("a-2", "ana@example.com", "Ana", "Lopez", false),
        ("a-test", "ana@example.com", "Ana", "Lopez", true),
    ]
    .into_iter()
    .enumerate()
    {
        s.t.clock
            .set(Utc.with_ymd_and_hms(2027, 1, 10, 9, i as u32, 0).unwrap());
        let r = s.order(sell(uuid, email, first, last, test)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        refs.push(reference(&r));
    }
    let found = |r: &Reply| -> Vec<String> {
        r.json()["memberships"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", r.body))
            .iter()
            .map(|m| m["reference"].as_str().unwrap().to_owned())
            .collect()
    };
    // Newest first; email trimmed and case-insensitive; live only.
    let r = s.get("/memberships?email=%20ANA@example.com").await;
    assert_eq!(
        found(&r),
        vec![refs[2].clone(), refs[0].clone()],
        "{}",
        r.body
    );
    assert_eq!(r.json()["memberships"][0]["contact"]["last_name"], "Lopez");
    let r = s.get("/memberships?q=oka").await;
    assert_eq!(found(&r), vec![refs[1].clone()]);
    let r = s.get("/memberships?q=ana%20lop&test_mode=true").await;
    assert_eq!(found(&r), vec![refs[3].clone()]);
    // Paged.
    let r = s.get("/memberships?email=ana@example.com&limit=1").await;
    assert_eq!(found(&r), vec![refs[2].clone()]);
    let next = r.json()["next"].as_str().unwrap().to_owned();
    let r = s
        .get(&format!(
            "/memberships?email=ana@example.com&limit=1&cursor={}",
            next.replace('#', "%23")
                .replace(':', "%3A")
                .replace('+', "%2B")
        ))
        .await;
    assert_eq!(found(&r), vec![refs[0].clone()], "{}", r.body);
    assert!(r.json().get("next").is_none(), "{}", r.body);
    assert!(found(&s.get("/memberships?email=nobody@example.com").await).is_empty());
    assert_eq!(s.get("/memberships").await.code(), "invalid_query");
    assert_eq!(
        s.get(&format!("/memberships?q=ana&cursor={}", "x".repeat(200)))
            .await
            .code(),
        "invalid_query"
    );
}

async fn back_office_fields_are_kept(b: Backend) {
    let s = shop(b).await;
    let order = json!({"uuid": "bo-1", "source": "phone", "reseller": "res-42", "skip_confirmation_email": true,
        "email_receipt": false, "contact": {"email": "ana@example.com", "first_name": "Ana", "marketing_opt_in": true},
        "items": [{"product_id": "club", "unit_id": "member", "quantity": 1}], "payment": card(9900)});
    let r = s.order(order).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    for o in [r.json(), s.get("/orders/bo-1").await.json()] {
        assert_eq!(
            (
                &o["source"],
                &o["reseller"],
                &o["skip_confirmation_email"],
                &o["email_receipt"],
                &o["contact"]["marketing_opt_in"]
            ),
            (
                &json!("phone"),
                &json!("res-42"),
                &json!(true),
                &json!(false),
                &json!(true)
            ),
            "{o}"
        );
        assert_eq!(
            o["lines"][0]["memberships"][0]["contact"]["marketing_opt_in"],
            true
        );
    }
    // Defaults: a receipt, a confirmation, no source.
    let r = s
        .order(json!({"uuid": "bo-2", "items": [{"product_id": "tasting", "unit_id": "adult", "quantity": 1}], "payment": pay_later()}))
        .await;
    let o = r.json();
    assert_eq!(
        (
            &o["skip_confirmation_email"],
            &o["email_receipt"],
            o.get("source")
        ),
        (&json!(false), &json!(true), None),
        "{o}"
    );
    for (field, value) in [
        ("reseller", json!("")),
        ("source", json!("web\nshop")),
        ("reseller", json!(42)),
        ("email_receipt", json!("no")),
    ] {
        let mut bad = json!({"uuid": "bo-3", "items": [{"product_id": "tasting", "unit_id": "adult", "quantity": 1}], "payment": pay_later()});
        bad[field] = value;
        let r = s.order(bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.body);
    }
    let r = s
        .order(json!({"uuid": "bo-4", "contact": {"marketing_opt_in": "yes"}, "items": [{"product_id": "tasting", "unit_id": "adult", "quantity": 1}], "payment": pay_later()}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(s.get("/orders/bo-3").await.status, StatusCode::NOT_FOUND);
}

/// Visit dates and Valid From are bounded by what a back office sells
/// (the shop's today is 2027-01-10): far-past and far-future dates are 400
/// naming the field, and nothing is stored.
async fn order_dates_are_bounded(b: Backend) {
    let s = shop(b).await;
    for (uuid, item, field) in [
        (
            "d-1",
            json!({"product_id": "tasting", "unit_id": "adult", "quantity": 1, "date": "9999-12-31"}),
            "date",
        ),
        (
            "d-2",
            json!({"product_id": "harvest", "unit_id": "adult", "quantity": 1, "date": "1900-01-01"}),
            "date",
        ),
        (
            "d-3",
            json!({"product_id": "club", "unit_id": "member", "quantity": 1, "valid_from": "2040-01-01"}),
            "valid_from",
        ),
    ] {
        let r = s
            .order(json!({"uuid": uuid, "items": [item], "payment": pay_later()}))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uuid}: {}", r.body);
        assert_eq!(r.code(), "invalid_field", "{}", r.body);
        assert!(r.body.contains(field), "{}", r.body);
        assert_eq!(
            s.get(&format!("/orders/{uuid}")).await.status,
            StatusCode::NOT_FOUND
        );
    }
    // A season ahead and yesterday's walk-in are fine.
    for (uuid, date) in [("d-4", "2029-06-30"), ("d-5", "2027-01-09")] {
        let r = s
            .order(json!({"uuid": uuid, "items": [{"product_id": "tasting", "unit_id": "adult", "quantity": 1, "date": date}], "payment": pay_later()}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{uuid}: {}", r.body);
    }
}

async fn cancelling_says_what_to_refund(b: Backend) {
    let s = shop(b).await;
    let r = s
        .order(json!({"uuid": "paid", "items": [{"product_id": "tasting", "unit_id": "adult", "quantity": 3}],
            "payment": {"mode": "split", "parts": [
                {"method": "cash", "amount": {"amount": 5000, "currency": "EUR"}, "tendered": {"amount": 6000, "currency": "EUR"}},
                {"method": "other", "amount": {"amount": 2500, "currency": "EUR"}, "reference": "invoice 7"}]}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["refunds_due"], json!([]));
    let r = s.post("/orders/paid/cancel", json!({})).await;
    assert_eq!(
        r.json()["refunds_due"],
        json!([
            {"method": "cash", "amount": {"amount": 5000, "currency": "EUR"}, "reference": null},
            {"method": "other", "amount": {"amount": 2500, "currency": "EUR"}, "reference": "invoice 7"}
        ]),
        "{}",
        r.body
    );
    // Pay later: only what was paid is owed back.
    s.order(json!({"uuid": "later", "items": [{"product_id": "tasting", "unit_id": "adult", "quantity": 2}], "payment": pay_later()}))
        .await;
    pay(&s, "later", "p-1", 2000).await;
    let r = s.post("/orders/later/cancel", json!({})).await;
    assert_eq!(
        r.json()["refunds_due"],
        json!([{"method": "card", "amount": {"amount": 2000, "currency": "EUR"}, "reference": null}]),
        "{}",
        r.body
    );
    assert_eq!(s.get("/orders/later").await.json(), r.json());
}

fn seats(uuid: &str, test: bool, qty: u32, date: &str) -> Value {
    json!({"uuid": uuid, "test_mode": test, "items": [{"product_id": "harvest", "unit_id": "adult", "quantity": qty, "date": date}],
        "payment": pay_later()})
}

async fn test_mode_is_a_separate_world(b: Backend) {
    let s = Arc::new(shop(b).await);
    // Test orders take test seats only: the live event still has all five.
    let r = s.order(seats("t-1", true, 3, "2027-02-01")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = s.order(seats("t-2", true, 2, "2027-02-01")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        s.order(seats("t-3", true, 1, "2027-02-01")).await.code(),
        "sold_out"
    );
    let r = s.order(seats("l-1", false, 5, "2027-02-01")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        s.order(seats("l-2", false, 1, "2027-02-01")).await.code(),
        "sold_out"
    );
    // A cancelled test order frees test seats, not live ones.
    s.post_as(true, "/orders/t-1/cancel", json!({})).await;
    assert_eq!(
        s.order(seats("l-3", false, 1, "2027-02-01")).await.code(),
        "sold_out"
    );
    let r = s.order(seats("t-4", true, 3, "2027-02-01")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // The last seats of each world under concurrency.
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                (
                    i % 2 == 0,
                    s.order(seats(&format!("race-{i}"), i % 2 == 0, 1, "2027-03-01"))
                        .await,
                )
            })
        })
        .collect();
    let mut created = (0, 0);
    for t in futures::future::join_all(tasks).await {
        let (test, r) = t.unwrap();
        match (r.status, test) {
            (StatusCode::CREATED, true) => created.0 += 1,
            (StatusCode::CREATED, false) => created.1 += 1,
            _ => assert_eq!(r.code(), "sold_out", "{}", r.body),
        }
    }
    assert_eq!(created, (5, 5), "five test and five live seats");

    // Gift cards: test value pays test orders only, and the other way round
    // (neither world sees the other's cards).
    let live = gift_card(&s, 5000, None).await;
    let r = s
        .post(
            "/vouchers",
            json!({"article_type": "gift_card", "value": {"amount": 5000, "currency": "EUR"}, "test_mode": true}),
        )
        .await;
    let test = r.json()["code"].as_str().unwrap().to_owned();
    let with_card = |uuid: &str, test_mode: bool, code: &str| {
        json!({"uuid": uuid, "test_mode": test_mode, "items": [{"product_id": "tasting", "unit_id": "adult", "quantity": 1}],
            "payment": {"mode": "charge_now", "parts": [{"method": "gift_card", "amount": {"amount": 2500, "currency": "EUR"}, "gift_card_code": code}]}})
    };
    assert_eq!(
        s.order(with_card("g-1", true, &live)).await.code(),
        "voucher_not_found"
    );
    assert_eq!(
        s.order(with_card("g-2", false, &test)).await.code(),
        "voucher_not_found"
    );
    assert_eq!(
        s.order(with_card("g-3", true, &test)).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        s.order(with_card("g-4", false, &live)).await.status,
        StatusCode::CREATED
    );
    // Settlement is live money: the test card's redemption is not in it.
    let r = s.get("/settlement?from=2027-01-10&to=2027-01-10").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let groups = r.json()["groups"].clone();
    assert_eq!(groups.as_array().map(Vec::len), Some(1), "{groups}");
    assert_eq!(groups[0]["redemptions"], 1, "{groups}");
    assert_eq!(groups[0]["redeemed"]["amount"], 2500, "{groups}");

    // Test memberships: used by test orders only; their activity stays there.
    let r = s
        .order(json!({"uuid": "m-test", "test_mode": true, "contact": {"email": "ana@example.com", "first_name": "Ana"},
            "items": [{"product_id": "club", "unit_id": "member", "quantity": 1}], "payment": card(9900)}))
        .await;
    let mem = reference(&r);
    assert_eq!(
        s.order(visit("mv-1", &mem, "2027-01-20")).await.code(),
        "membership_not_found"
    );
    let mut v = visit("mv-2", &mem, "2027-01-20");
    v["test_mode"] = json!(true);
    assert_eq!(s.order(v).await.status, StatusCode::CREATED);
    // A live order does not renew a test membership.
    let renew = json!({"uuid": "m-renew", "contact": {"email": "ana@example.com", "first_name": "Ana"},
        "items": [{"product_id": "club", "unit_id": "member", "quantity": 1, "renews": mem}], "payment": card(9900)});
    assert_eq!(s.order(renew).await.code(), "membership_not_found");
    assert_eq!(
        s.get_as(true, &format!("/memberships/{mem}")).await.json()["status"],
        "active"
    );
    assert_eq!(
        s.get(&format!("/memberships/{mem}")).await.code(),
        "membership_not_found"
    );
    assert!(found_none(&s, "/memberships?email=ana@example.com").await);
    assert!(!found_none(&s, "/memberships?email=ana@example.com&test_mode=true").await);
}

async fn found_none(s: &Shop, path: &str) -> bool {
    let r = s.get(path).await;
    r.json()["memberships"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.body))
        .is_empty()
}

async fn balance(s: &Shop, code: &str) -> i64 {
    s.get(&format!("/vouchers/{code}")).await.json()["balance"]["amount"]
        .as_i64()
        .unwrap()
}

async fn pay_later_then_pay(b: Backend) {
    let s = shop(b).await;
    let r = s.order(json!({"uuid": "later", "items": [{"product_id": "tasting", "unit_id": "adult", "quantity": 2}], "payment": {"mode": "pay_later", "parts": []}})).await;
    assert_eq!(
        (
            r.json()["status"].clone(),
            r.json()["balance_due"]["amount"].clone()
        ),
        (json!("awaiting_payment"), json!(5000))
    );
    let pay = json!({"parts": [{"method": "card", "amount": {"amount": 2000, "currency": "EUR"}}]});
    let r = call(
        &s.app,
        "POST",
        &Shop::uri("/orders/later/payments"),
        Some(&s.key),
        &[("idempotency-key", "p1")],
        Some(pay.to_string()),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["balance_due"]["amount"].clone()),
        (StatusCode::OK, json!(3000)),
        "{}",
        r.body
    );
    // Replayed, not paid twice.
    let again = call(
        &s.app,
        "POST",
        &Shop::uri("/orders/later/payments"),
        Some(&s.key),
        &[("idempotency-key", "p1")],
        Some(pay.to_string()),
    )
    .await;
    assert_eq!(again.body, r.body);
    let rest = json!({"parts": [{"method": "other", "amount": {"amount": 3000, "currency": "EUR"}, "reference": "invoice 7"}]});
    let r = call(
        &s.app,
        "POST",
        &Shop::uri("/orders/later/payments"),
        Some(&s.key),
        &[("idempotency-key", "p2")],
        Some(rest.to_string()),
    )
    .await;
    assert_eq!(r.json()["status"], "confirmed");
    let over = call(
        &s.app,
        "POST",
        &Shop::uri("/orders/later/payments"),
        Some(&s.key),
        &[("idempotency-key", "p3")],
        Some(rest.to_string()),
    )
    .await;
    assert_eq!(over.code(), "nothing_due");
    // One currency per order.
    let mixed = json!({"uuid": "usd", "items": [{"product_id": "tasting", "unit_id": "adult", "quantity": 1}],
        "payment": {"mode": "charge_now", "parts": [{"method": "card", "amount": {"amount": 2500, "currency": "USD"}}]}});
    assert_eq!(s.order(mixed).await.code(), "currency_mismatch");
}

/// Prices and discounts are money in the product's currency, in the one
/// shape; anything else is refused, naming the field, and changes nothing.
async fn prices_are_money_in_the_products_currency(b: Backend) {
    let s = shop(b).await;
    let harvest = s.get("/products/harvest").await;
    assert_eq!(harvest.status, StatusCode::OK, "{}", harvest.body);
    let product = harvest.json();
    assert_eq!(
        product["units"][0]["price"],
        json!({"amount": 8000, "currency": "EUR"})
    );
    assert_eq!(
        product["discounts"]["tiers"]["Gold"]["fixed_price"],
        json!({"amount": 6000, "currency": "EUR"})
    );
    let unit = |price: Value| {
        json!({"kind": "event", "name": "Harvest dinner", "currency": "EUR",
        "units": [{"id": "adult", "name": "Adult", "price": price}]})
    };
    for (body, field) in [
        (
            unit(json!({"amount": 100, "currency": "USD"})),
            "units.price",
        ),
        (unit(json!(100)), "units[0].price"),
        (unit(json!({"amount": 100})), "units[0].price"),
        (
            json!({"kind": "event", "name": "Harvest dinner", "currency": "EUR",
                   "units": [{"id": "adult", "name": "Adult", "price": {"amount": 100, "currency": "EUR"}}],
                   "promo_codes": [{"code": "FALL", "discount": {"amount_off": {"amount": 10, "currency": "GBP"}}}]}),
            "discount",
        ),
        (
            json!({"kind": "event", "name": "Harvest dinner", "currency": "EUR",
                   "units": [{"id": "adult", "name": "Adult", "price": {"amount": 100, "currency": "EUR"}}],
                   "discounts": {"tiers": {"Gold": {"fixed_price": 50}}}}),
            "discounts.tiers.Gold.fixed_price",
        ),
    ] {
        let r = s.put("/products/harvest", body).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_field"),
            "{}",
            r.body
        );
        assert_eq!(r.json()["error"]["details"]["field"], field, "{}", r.body);
    }
    assert_eq!(s.get("/products/harvest").await.json(), product);
}

/// Products and orders stored with bare minor units (before the one money
/// shape) are read as money in the currency they always meant.
async fn stored_bare_amounts_read_as_money(b: Backend) {
    use platform::store::{Cond, Item, Table, Write};
    let s = shop(b).await;
    let items = s.t.store.items();
    let now = s.t.store.now_ts();
    let legacy_product = json!({"id": "legacy", "kind": "admission", "name": "Old tasting", "currency": "EUR",
        "units": [{"id": "adult", "name": "Adult", "price": 2500}],
        "promo_codes": [{"code": "OLD", "discount": {"amount_off": 500}}]});
    items
        .transact(
            vec![Write::put(
                Table::Commerce,
                Item::new("PRODUCTS#castle", "legacy", legacy_product.to_string()),
                Cond::None,
            )],
            now,
        )
        .await
        .unwrap();
    let r = s.get("/products/legacy").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.json()["units"][0]["price"],
        json!({"amount": 2500, "currency": "EUR"})
    );
    assert_eq!(
        r.json()["promo_codes"][0]["discount"]["amount_off"],
        json!({"amount": 500, "currency": "EUR"})
    );
    assert_eq!(s.get("/products").await.status, StatusCode::OK);
    let order = json!({"uuid": "legacy-1", "contact": {"email": "old@example.com"}, "promo_code": "old",
        "items": [{"product_id": "legacy", "unit_id": "adult", "quantity": 1}], "payment": {"mode": "pay_later", "parts": []}});
    let r = s.order(order).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        r.json()["lines"][0]["discount"]["amount_off"],
        json!({"amount": 500, "currency": "EUR"}),
        "{}",
        r.body
    );
    // The order as an older release stored it: the applied discount bare.
    let stored = items
        .get(Table::Commerce, "ORDER#castle#legacy-1", "ORDER", now)
        .await
        .unwrap()
        .unwrap();
    let mut body: Value = serde_json::from_str(&stored.body).unwrap();
    body["order"]["lines"][0]["discount"]["amount_off"] = json!(500);
    let old = Item::new("ORDER#castle#legacy-1", "ORDER", body.to_string())
        .with_version(stored.version + 1);
    items
        .transact(
            vec![Write::put(
                Table::Commerce,
                old,
                Cond::Version(stored.version),
            )],
            now,
        )
        .await
        .unwrap();
    let r = s.get("/orders/legacy-1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = s.post("/orders/legacy-1/cancel", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["status"], "cancelled", "{}", r.body);
}

both_stores! {
    money_shape => prices_are_money_in_the_products_currency;
    legacy_amounts => stored_bare_amounts_read_as_money;
    memberships => membership_sale_and_redemption;
    club => club_discounts_and_access;
    capacity => capacity_never_overbooks;
    gift_cards => gift_card_payments;
    pay_later => pay_later_then_pay;
    order_gift_cards => order_owns_its_gift_card_redemptions;
    unpaid => unpaid_memberships_are_not_usable;
    renewal => early_renewal_keeps_paid_time;
    search => memberships_found_by_email_and_name;
    back_office => back_office_fields_are_kept;
    order_dates => order_dates_are_bounded;
    refunds => cancelling_says_what_to_refund;
    test_world => test_mode_is_a_separate_world;
}
