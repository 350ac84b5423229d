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
        "club:admin",
        "club:read",
    ]
    .map(String::from)
    .to_vec();
    let (_, key) = guesthub::admin::add_partner(s, "Shop", &["castle".into()], &scopes)
        .await
        .unwrap();
    let app = guesthub::app::router(s.clone(), 256 * 1024);
    let shop = Shop { t, app, key };
    for (id, body) in [
        (
            "club",
            json!({"kind": "membership", "name": "Wine club", "currency": "EUR", "units": [{"id": "member", "name": "Member", "price": 9900}],
            "validity": {"count": 1, "unit": "months"}, "member_fields": ["first_name", "email"],
            "benefits": [{"kind": "member_tickets", "product_ids": ["tasting"], "unit_ids": ["adult"], "quantity_per_booking": 2, "max_uses": 3},
                         {"kind": "promotion", "percent_off": 15}]}),
        ),
        (
            "tasting",
            json!({"kind": "admission", "name": "Tasting", "currency": "EUR", "units": [{"id": "adult", "name": "Adult", "price": 2500}]}),
        ),
        (
            "harvest",
            json!({"kind": "event", "name": "Harvest dinner", "currency": "EUR", "capacity": 5,
            "units": [{"id": "adult", "name": "Adult", "price": 8000}],
            "discounts": {"member": {"percent_off": 10}, "tiers": {"Gold": {"fixed_price": 6000}}}}),
        ),
        (
            "cellar",
            json!({"kind": "event", "name": "Cellar night", "currency": "EUR", "members_only": true, "units": [{"id": "adult", "name": "Adult", "price": 5000}]}),
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
        call(
            &self.app,
            "POST",
            &Self::uri(path),
            Some(&self.key),
            &[("idempotency-key", &uuid::Uuid::new_v4().to_string())],
            Some(body.to_string()),
        )
        .await
    }
    async fn get(&self, path: &str) -> Reply {
        call(
            &self.app,
            "GET",
            &Self::uri(path),
            Some(&self.key),
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
            Some(&self.key),
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
    assert_eq!(
        s.order(redeem("visit-5", "2027-02-05", 1, true))
            .await
            .code(),
        "test_mode_mismatch"
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
    ams_import::import(&s.t.store, req, None).await.unwrap();
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

both_stores! {
    memberships => membership_sale_and_redemption;
    club => club_discounts_and_access;
    capacity => capacity_never_overbooks;
    gift_cards => gift_card_payments;
    pay_later => pay_later_then_pay;
}
