//! DynamoDB round trips per voucher operation, counted by the SDK client
//! itself (an interceptor sees every HTTP request, retries included) against
//! moto, through the real router with the caller cache on as in Lambda.
//! Budget: status 1, redemption ≤ 2 including idempotency.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use http::StatusCode;
use platform::Store;
use platform::store::ItemStore;
use platform::store::dynamo::{DynamoItems, RequestCount};
use serde_json::{Value, json};
use tests::{Reply, call, moto_endpoint};

struct Counted {
    app: Router,
    store: Store,
    requests: RequestCount,
    office: String,
    pms: String,
    group: String,
    /// The spa's back office (issues its own vouchers).
    spa_office: String,
}

impl Counted {
    async fn send(
        &self,
        method: &str,
        uri: &str,
        key: &str,
        idem: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        tests::send(&self.app, method, uri, key, idem, body).await
    }

    /// The requests `op` sent to DynamoDB, with its reply.
    async fn counted(&self, op: impl std::future::Future<Output = Reply>) -> (u64, Reply) {
        let before = self.requests.get();
        let reply = op.await;
        (self.requests.get() - before, reply)
    }
}

async fn hub() -> Counted {
    let prefix = format!("rt{}", uuid::Uuid::new_v4().simple());
    let (items, requests) = DynamoItems::connect_counted(&prefix, Some(&moto_endpoint())).await;
    items.create_tables().await.unwrap();
    let store = Store::new(Arc::new(items)).with_caller_cache(Duration::from_secs(60));
    for (id, name) in [("castle", "Castle Hotel"), ("spa", "Spa Resort")] {
        guesthub::admin::add_property(&store, id, name, "Europe/Vienna", "EUR")
            .await
            .unwrap();
    }
    let partner = |name, props, scopes| tests::partner_key(&store, name, props, scopes);
    let office = partner("Office", &["castle"], "vouchers:issue,vouchers:read").await;
    let pms = partner(
        "PMS",
        &["castle"],
        "vouchers:read,vouchers:redeem,vouchers:pickup",
    )
    .await;
    let group = partner("Group", &["castle", "spa"], "vouchers:read,vouchers:redeem").await;
    let spa_office = partner("Spa office", &["spa"], "vouchers:issue").await;
    Counted {
        app: guesthub::app::router(store.clone(), 256 * 1024),
        store,
        requests,
        office,
        pms,
        group,
        spa_office,
    }
}

fn eur(a: i64) -> Value {
    json!({"amount": a, "currency": "EUR"})
}

fn reservation() -> Value {
    json!({"number": "R-1", "arrival": "2027-01-20", "departure": "2027-01-22", "guest_name": "Ana López"})
}

#[tokio::test]
async fn voucher_operations_stay_within_their_round_trip_budget() {
    let h = hub().await;
    let issued = h
        .send(
            "POST",
            "/v1/properties/castle/vouchers",
            &h.office,
            None,
            Some(json!({"article_type": "value", "value": eur(10_000)})),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
    let code = issued.json()["code"].as_str().unwrap().to_owned();
    let status_uri = format!("/v1/properties/castle/vouchers/{code}");

    // A key's first request reads its partner once (the property is already
    // remembered from the office's request).
    let (cold, r) = h
        .counted(h.send("GET", &status_uri, &h.pms, None, None))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (status, r) = h
        .counted(h.send("GET", &status_uri, &h.pms, None, None))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (cold, status),
        (2, 1),
        "status: first with this key, then warm"
    );

    let redeem_uri = format!("/v1/properties/castle/vouchers/{code}/redemptions");
    let body = json!({"amount": eur(2_500), "reservation": reservation()});
    let (redeem, first) = h
        .counted(h.send(
            "POST",
            &redeem_uri,
            &h.pms,
            Some("rt-1"),
            Some(body.clone()),
        ))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(
        redeem, 2,
        "redemption: one read, one transaction with its answer"
    );
    // ... and its event: in the outbox, written by that same transaction.
    let castle = domain::PropertyId::parse_live("castle").unwrap();
    let events = domain::events::EventStore::events_after(&h.store, &castle, None, 100)
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == domain::events::EventType::VoucherRedeemed
                && e.data["code"] == code.as_str()),
        "the redemption's event is in the outbox"
    );

    let (replay, again) = h
        .counted(h.send("POST", &redeem_uri, &h.pms, Some("rt-1"), Some(body)))
        .await;
    assert_eq!(
        (again.status, &again.body),
        (StatusCode::CREATED, &first.body)
    );
    assert_eq!(
        again
            .headers
            .get("idempotency-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    assert_eq!(replay, 1, "a replay is one read");

    let refused_body = json!({"amount": eur(1_000_000), "reservation": reservation()});
    let (refused, r) = h
        .counted(h.send(
            "POST",
            &redeem_uri,
            &h.pms,
            Some("rt-2"),
            Some(refused_body),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(
        refused, 2,
        "a refusal: one read, one write of the stored answer"
    );

    let id = first.json()["redemption_id"].as_str().unwrap().to_owned();
    let (reverse, r) = h
        .counted(h.send(
            "POST",
            &format!("{redeem_uri}/{id}/reversal"),
            &h.pms,
            Some("rt-3"),
            Some(json!({"amount": eur(500)})),
        ))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        reverse, 2,
        "reversal: the redemption is read with the voucher"
    );

    // Another property's voucher costs one more read: its copy is not where
    // the caller's property would keep it.
    let (_, r) = h
        .counted(h.send(
            "GET",
            &status_uri.replace("castle", "spa"),
            &h.group,
            None,
            None,
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (elsewhere, r) = h
        .counted(h.send(
            "GET",
            &status_uri.replace("castle", "spa"),
            &h.group,
            None,
            None,
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(elsewhere, 2, "status of another property's voucher");

    println!(
        "DynamoDB requests: status {status} (cold {cold}), redemption {redeem}, replay {replay}, \
         refusal {refused}, reversal {reverse}, another property's voucher {elsewhere}"
    );
}

/// A printed code held by two issuers costs the caller's own property's
/// voucher no more than a code only it holds.
#[tokio::test]
async fn a_printed_code_another_issuer_holds_too_keeps_the_budget() {
    let h = hub().await;
    for (property, key, amount) in [("spa", &h.spa_office, 2_000), ("castle", &h.office, 10_000)] {
        let r = h
            .send(
                "POST",
                &format!("/v1/properties/{property}/vouchers"),
                key,
                None,
                Some(json!({"article_type": "external", "code": "PRINTED-0001", "value": eur(amount)})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let status_uri = "/v1/properties/castle/vouchers/PRINTED-0001";
    h.send("GET", status_uri, &h.pms, None, None).await;
    let (status, r) = h
        .counted(h.send("GET", status_uri, &h.pms, None, None))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["balance"], eur(10_000));
    assert_eq!(status, 1, "status of the caller's own printed code");
    let body = json!({"amount": eur(2_500), "reservation": reservation()});
    let (redeem, r) = h
        .counted(h.send(
            "POST",
            &format!("{status_uri}/redemptions"),
            &h.pms,
            Some("p-1"),
            Some(body),
        ))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["balance"], eur(7_500));
    assert_eq!(redeem, 2, "redemption of the caller's own printed code");
}

/// The caller cache trades revocation latency for round trips: a key
/// disabled through this process stops at once, one disabled by another
/// process within the time to live.
#[tokio::test]
async fn disabled_keys_stop_at_once_here_and_within_the_ttl_elsewhere() {
    let (items, _dir) = tests::fresh_items(tests::Backend::Sqlite).await;
    let ttl = Duration::from_millis(800);
    let here = Store::new(items.clone()).with_caller_cache(ttl);
    let elsewhere = Store::new(items);
    guesthub::admin::add_property(&here, "castle", "Castle", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let add = |name: &'static str| {
        let s = here.clone();
        async move {
            let (partner, key) = guesthub::admin::add_partner(
                &s,
                name,
                &["castle".into()],
                &["vouchers:pickup".into()],
            )
            .await
            .unwrap();
            (partner.id.0.clone(), key)
        }
    };
    let (a_id, a_key) = add("A").await;
    let (b_id, b_key) = add("B").await;
    let app = guesthub::app::router(here.clone(), 256 * 1024);
    let orders = |key: String| {
        let app = app.clone();
        async move {
            call(
                &app,
                "GET",
                "/v1/properties/castle/voucher-orders",
                Some(&key),
                &[],
                None,
            )
            .await
            .status
        }
    };
    assert_eq!(orders(a_key.clone()).await, StatusCode::OK);
    assert_eq!(orders(b_key.clone()).await, StatusCode::OK);

    guesthub::admin::set_partner_disabled(&here, &a_id, true)
        .await
        .unwrap();
    assert_eq!(
        orders(a_key).await,
        StatusCode::UNAUTHORIZED,
        "disabled here: at once"
    );

    guesthub::admin::set_partner_disabled(&elsewhere, &b_id, true)
        .await
        .unwrap();
    assert_eq!(
        orders(b_key.clone()).await,
        StatusCode::OK,
        "remembered until the TTL"
    );
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    assert_eq!(
        orders(b_key).await,
        StatusCode::UNAUTHORIZED,
        "disabled elsewhere: after the TTL"
    );
}
