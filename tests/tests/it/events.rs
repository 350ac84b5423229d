//! Events end to end on both stores: subscriptions through the routes, the
//! outbox written with each change, the dispatcher fanning out and
//! delivering to a real HTTP receiver on 127.0.0.1 (signed; retried with
//! back-off while the receiver is down; in order per aggregate; exactly
//! once after dedupe), personal data only for `guests` keys, test events
//! only to test subscriptions, nothing lost when the process dies between
//! commit and dispatch, and every event published to an EventBridge bus
//! (moto).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use chrono::{Duration, TimeZone, Utc};
use domain::events::EventStore;
use hmac::{KeyInit, Mac};
use http::{HeaderMap, StatusCode};
use platform::events::Dispatcher;
use platform::jobs::Stop;
use rand::Rng;
use serde_json::{Value, json};
use tests::{Backend, Reply, TestStore, both_stores, call, fresh_store};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    id: String,
    signature: String,
    body: String,
    answered: u16,
}

#[derive(Default)]
struct ReceiverState {
    got: Vec<Got>,
    /// Answer 503 to everything.
    down: bool,
    /// Per mille of requests answered 500 at random.
    flaky_permille: u32,
}

/// A webhook receiver on a free loopback port.
struct Receiver {
    url: String,
    state: Arc<Mutex<ReceiverState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let mut s = state.lock().unwrap();
    let answered = if s.down {
        StatusCode::SERVICE_UNAVAILABLE
    } else if rand::rng().random_range(0..1000) < s.flaky_permille {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    };
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    s.got.push(Got {
        id: h("guesthub-event-id"),
        signature: h("guesthub-signature"),
        body,
        answered: answered.as_u16(),
    });
    answered
}

async fn receiver() -> Receiver {
    let state = Arc::new(Mutex::new(ReceiverState::default()));
    let app = Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver {
        url: format!("http://{addr}/hook"),
        state,
        task,
    }
}

impl Receiver {
    fn set(&self, down: bool, flaky_permille: u32) {
        let mut s = self.state.lock().unwrap();
        s.down = down;
        s.flaky_permille = flaky_permille;
    }

    /// What a receiver keeps: 2xx answers, deduped by event id, in arrival order.
    fn accepted(&self) -> Vec<(Got, Value)> {
        let s = self.state.lock().unwrap();
        let mut seen = HashSet::new();
        s.got
            .iter()
            .filter(|g| g.answered < 300 && seen.insert(g.id.clone()))
            .map(|g| (g.clone(), serde_json::from_str(&g.body).unwrap()))
            .collect()
    }

    fn requests(&self) -> usize {
        self.state.lock().unwrap().got.len()
    }
}

/// Checks `GuestHub-Signature: t=…,v1=…` as a receiver would: HMAC-SHA256
/// of "<t>.<body>" with the subscription's secret, compared in constant time.
fn signature_valid(secret: &str, header: &str, body: &str) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x),
            Some(("v1", x)) => v1 = Some(x),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let Ok(expected) = hex_decode(v1) else {
        return false;
    };
    let mut mac =
        <hmac::Hmac<sha2_hmac::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    mac.verify_slice(&expected).is_ok()
}

fn hex_decode(s: &str) -> Result<Vec<u8>, ()> {
    if !s.len().is_multiple_of(2) {
        return Err(());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| ()))
        .collect()
}

const ISSUE: &str = "vouchers:issue,vouchers:read,vouchers:redeem";

struct Hub {
    t: TestStore,
    app: Router,
    office: String,
    events: String,
    events_guests: String,
}

async fn hub(b: Backend) -> Hub {
    hub_on(fresh_store(b).await).await
}

async fn hub_on(t: TestStore) -> Hub {
    t.clock
        .set(Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).unwrap());
    guesthub::admin::add_property(&t.store, "castle", "Castle", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let office = tests::partner_key(
        &t.store,
        "Office",
        &["castle"],
        &format!("{ISSUE},checkout"),
    )
    .await;
    let events = tests::partner_key(&t.store, "Listener", &["castle"], "events").await;
    let events_guests =
        tests::partner_key(&t.store, "CRM listener", &["castle"], "events,guests").await;
    let app = guesthub::app::router(t.store.clone(), 256 * 1024);
    Hub {
        t,
        app,
        office,
        events,
        events_guests,
    }
}

impl Hub {
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

    async fn subscribe(&self, key: &str, url: &str, types: &[&str]) -> (String, String) {
        let r = self
            .send(
                key,
                "POST",
                "/webhook-subscriptions",
                Some(json!({"url": url, "types": types})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let j = r.json();
        (
            j["id"].as_str().unwrap().to_owned(),
            j["secret"].as_str().unwrap().to_owned(),
        )
    }

    async fn issue(&self, amount: i64) -> String {
        let r = self
            .send(
                &self.office,
                "POST",
                "/vouchers",
                Some(
                    json!({"article_type": "value", "value": {"amount": amount, "currency": "EUR"},
                            "buyer": {"name": "Bea Buyer", "email": "bea@example.com"}}),
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.json()["code"].as_str().unwrap().to_owned()
    }

    async fn redeem(&self, code: &str, amount: i64) -> Reply {
        self.send(
            &self.office,
            "POST",
            &format!("/vouchers/{code}/redemptions"),
            Some(json!({"amount": {"amount": amount, "currency": "EUR"},
                        "reservation": {"number": "R-1", "arrival": "2027-03-01", "departure": "2027-03-02"}})),
        )
        .await
    }

    fn dispatcher(&self) -> Dispatcher {
        Dispatcher::new(self.t.store.clone(), None, "test")
    }

    /// Dispatches until nothing is due, moving the clock past each wait.
    async fn drain(&self, d: &Dispatcher, rounds: usize) {
        for _ in 0..rounds {
            d.run_once(&Stop::new()).await.unwrap();
            self.t.clock.advance(Duration::minutes(61));
        }
    }
}

/// The routes: create (secret once), list, get, rotate, deliveries, retry,
/// delete; what they refuse.
async fn subscriptions_and_signed_delivery(b: Backend) {
    let h = hub(b).await;
    let rx = receiver().await;
    // Refused: not https (and not loopback), an unknown type, no types, no scope.
    for (body, field) in [
        (
            json!({"url": "http://example.com/hook", "types": ["voucher.issued"]}),
            "url",
        ),
        (
            json!({"url": "ftp://example.com", "types": ["voucher.issued"]}),
            "url",
        ),
        (json!({"url": rx.url, "types": ["voucher.eaten"]}), "types"),
        (json!({"url": rx.url, "types": []}), "types"),
    ] {
        let r = h
            .send(&h.events, "POST", "/webhook-subscriptions", Some(body))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert_eq!(r.json()["error"]["details"]["field"], field, "{}", r.body);
    }
    let r = h
        .send(&h.office, "GET", "/webhook-subscriptions", None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);

    let (id, secret) = h
        .subscribe(&h.events, &rx.url, &["voucher.issued", "voucher.redeemed"])
        .await;
    assert!(secret.starts_with("whsec_"));
    let listed = h
        .send(&h.events, "GET", "/webhook-subscriptions", None)
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(
        !listed.body.contains(&secret),
        "the secret is shown only once"
    );
    assert_eq!(
        listed.json()["subscriptions"][0]["status"]["status"],
        "active"
    );

    let code = h.issue(10_000).await;
    assert_eq!(h.redeem(&code, 2_500).await.status, StatusCode::CREATED);
    h.dispatcher().run_once(&Stop::new()).await.unwrap();
    let got = rx.accepted();
    let types: Vec<&str> = got
        .iter()
        .map(|(_, v)| v["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["voucher.issued", "voucher.redeemed"]);
    for (g, v) in &got {
        assert!(signature_valid(&secret, &g.signature, &g.body), "{g:?}");
        assert!(
            !signature_valid("whsec_wrong", &g.signature, &g.body),
            "a wrong secret must fail"
        );
        let mut tampered = g.body.clone();
        tampered.push(' ');
        assert!(
            !signature_valid(&secret, &g.signature, &tampered),
            "a changed body must fail"
        );
        assert_eq!(v["id"], g.id.as_str());
        assert_eq!(v["property"], "castle");
        assert_eq!(v["test_mode"], false);
        assert_eq!(v["data"]["code"], code.as_str());
        // The key has no `guests` scope: no buyer name or email.
        assert!(
            !g.body.contains("bea@example.com") && !g.body.contains("Bea Buyer"),
            "{}",
            g.body
        );
    }
    assert_eq!(
        got[1].1["data"]["amount"]["amount"], -2_500,
        "the signed change"
    );
    assert_eq!(got[1].1["data"]["balance_after"]["amount"], 7_500);

    // Deliveries: newest first, each with its try.
    let d = h
        .send(
            &h.events,
            "GET",
            &format!("/webhook-subscriptions/{id}/deliveries"),
            None,
        )
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let list = d.json()["deliveries"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["type"], "voucher.redeemed");
    assert_eq!(list[0]["status"], "delivered");
    assert_eq!(list[0]["attempts"][0]["status_code"], 204);
    // A retry sends it again (the receiver dedupes by id).
    let delivery = list[0]["id"].as_str().unwrap();
    let r = h
        .send(
            &h.events,
            "POST",
            &format!("/webhook-subscriptions/{id}/deliveries/{delivery}/retry"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    h.dispatcher().run_once(&Stop::new()).await.unwrap();
    assert_eq!(rx.requests(), 3);
    assert_eq!(rx.accepted().len(), 2);

    // Rotation: a new secret signs from now on.
    let r = h
        .send(
            &h.events,
            "POST",
            &format!("/webhook-subscriptions/{id}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rotated = r.json()["secret"].as_str().unwrap().to_owned();
    assert_ne!(rotated, secret);
    h.issue(500).await;
    h.dispatcher().run_once(&Stop::new()).await.unwrap();
    let last = rx.state.lock().unwrap().got.last().cloned().unwrap();
    assert!(signature_valid(&rotated, &last.signature, &last.body));
    assert!(!signature_valid(&secret, &last.signature, &last.body));

    // Another key of the property sees it; unknown ids are 404.
    let r = h
        .send(
            &h.events_guests,
            "GET",
            &format!("/webhook-subscriptions/{id}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = h
        .send(&h.events, "GET", "/webhook-subscriptions/nope", None)
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "subscription_not_found")
    );
    let r = h
        .send(
            &h.events,
            "POST",
            &format!("/webhook-subscriptions/{id}/deliveries/nope/retry"),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "delivery_not_found")
    );
    // Deleted: nothing more arrives.
    let r = h
        .send(
            &h.events,
            "DELETE",
            &format!("/webhook-subscriptions/{id}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["id"], id.as_str(), "the subscription as it was");
    let before = rx.requests();
    h.issue(700).await;
    h.dispatcher().run_once(&Stop::new()).await.unwrap();
    assert_eq!(rx.requests(), before);
    let r = h
        .send(
            &h.events,
            "DELETE",
            &format!("/webhook-subscriptions/{id}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// A receiver that is down for a while, then up and flaky, gets every event
/// of 1,000+ money operations exactly once after dedupe, each voucher's in
/// ledger order.
async fn nothing_lost_in_order_through_failures(b: Backend) {
    // Thousands of transactions: on DynamoDB, a moto of its own.
    let (_moto, t) = match b {
        Backend::Dynamodb => {
            let moto = tests::PrivateMoto::start().await;
            let t = tests::fresh_dynamodb_store_at(&moto.endpoint).await;
            (Some(moto), t)
        }
        Backend::Sqlite => (None, fresh_store(b).await),
    };
    let h = hub_on(t).await;
    let rx = receiver().await;
    let (_, secret) = h
        .subscribe(&h.events, &rx.url, &["voucher.issued", "voucher.redeemed"])
        .await;
    let d = h.dispatcher();
    // 1,000 money operations; on DynamoDB 200 unless
    // GUESTHUB_TEST_EVENTS_FULL=1: moto copies every table on each
    // transaction, so the full run there takes about ten minutes.
    let full =
        b == Backend::Sqlite || std::env::var("GUESTHUB_TEST_EVENTS_FULL").is_ok_and(|v| v == "1");
    let vouchers = if full { 100 } else { 20 };
    let redemptions_each = 9;
    let mut codes = Vec::new();
    for _ in 0..vouchers {
        codes.push(h.issue(100_000).await);
    }
    rx.set(true, 0);
    let mut ops = vouchers;
    let mut round = 0;
    for r in 0..redemptions_each {
        for code in &codes {
            let reply = h.redeem(code, 1_000 + r).await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
            ops += 1;
        }
        // The dispatcher runs between bursts: while down, then up and flaky.
        if r == 3 {
            rx.set(false, 300);
        }
        d.run_once(&Stop::new()).await.unwrap();
        round += 1;
        h.t.clock.advance(Duration::seconds(30));
    }
    assert!(
        ops >= if full { 1_000 } else { 200 },
        "{ops} money operations"
    );
    rx.set(false, 100);
    h.drain(&d, 40).await;
    let _ = round;
    let got = rx.accepted();
    assert_eq!(got.len(), ops, "every event once after dedupe");
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for (g, v) in &got {
        assert!(signature_valid(&secret, &g.signature, &g.body));
        let code = v["data"]["code"].as_str().unwrap().to_owned();
        let seq = v["data"]["activity_id"].as_u64().unwrap();
        let prev = last.insert(code.clone(), seq).unwrap_or(0);
        assert!(seq > prev, "{code}: activity {seq} arrived after {prev}");
    }
    assert!(
        rx.requests() > got.len(),
        "the receiver's failures were retried"
    );
}

/// The process dies after the change committed and before any dispatch
/// (a fault after commit, then a new dispatcher): the event is delivered.
async fn a_crash_between_commit_and_dispatch_loses_nothing(b: Backend) {
    let t = fresh_store(b).await;
    t.clock
        .set(Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).unwrap());
    let faulty = Arc::new(platform::store::faults::FaultyItems::new(
        t.items.clone(),
        platform::store::faults::FaultPlan::default(),
    ));
    let store = platform::Store::with_clock(faulty.clone(), t.clock.clone());
    guesthub::admin::add_property(&store, "castle", "Castle", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let office = tests::partner_key(&store, "Office", &["castle"], ISSUE).await;
    let listener = tests::partner_key(&store, "Listener", &["castle"], "events").await;
    let app = guesthub::app::router(store.clone(), 256 * 1024);
    let rx = receiver().await;
    let r = call(
        &app,
        "POST",
        "/v1/properties/castle/webhook-subscriptions",
        Some(&listener),
        &[],
        Some(json!({"url": rx.url, "types": ["voucher.issued"]}).to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Every write takes effect, then reports a failure: the caller sees an
    // error, as if the process died right after the commit.
    faulty.set_plan(platform::store::faults::FaultPlan {
        fail_after_permille: 1000,
        ..Default::default()
    });
    let r = call(
        &app,
        "POST",
        "/v1/properties/castle/vouchers",
        Some(&office),
        &[],
        Some(
            json!({"article_type": "value", "value": {"amount": 5000, "currency": "EUR"}})
                .to_string(),
        ),
    )
    .await;
    assert!(r.status.is_server_error(), "{} {}", r.status, r.body);
    faulty.set_plan(platform::store::faults::FaultPlan::default());
    // A fresh process: its dispatcher finds the committed changes' events.
    let fresh = platform::Store::with_clock(t.items.clone(), t.clock.clone());
    Dispatcher::new(fresh.clone(), None, "restarted")
        .run_once(&Stop::new())
        .await
        .unwrap();
    let got = rx.accepted();
    assert!(!got.is_empty(), "the committed issue's event");
    for (_, e) in &got {
        assert_eq!(e["type"], "voucher.issued");
        // Each event is of a voucher that exists: no event without its change.
        let code = e["data"]["code"].as_str().unwrap();
        let r = call(
            &app,
            "GET",
            &format!("/v1/properties/castle/vouchers/{code}"),
            Some(&office),
            &[],
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    assert!(fresh.undispatched(10).await.unwrap().is_empty());
}

/// Personal data only to subscribers whose key reads guests; test events
/// only to the test world's subscriptions, live ones only to live.
async fn personal_data_and_test_mode_reach_only_their_subscribers(b: Backend) {
    let h = hub(b).await;
    let plain = receiver().await;
    let crm = receiver().await;
    let sandbox = receiver().await;
    h.subscribe(&h.events, &plain.url, &["voucher.issued"])
        .await;
    h.subscribe(&h.events_guests, &crm.url, &["voucher.issued"])
        .await;
    let test_key = tests::sandbox_key(&h.t.store, "Listener sandbox", &["castle"], "events").await;
    h.subscribe(&test_key, &sandbox.url, &["voucher.issued"])
        .await;
    let test_office = tests::sandbox_key(&h.t.store, "Office sandbox", &["castle"], ISSUE).await;

    let live_code = h.issue(1_000).await;
    let r = h
        .send(
            &test_office,
            "POST",
            "/vouchers",
            Some(
                json!({"article_type": "value", "value": {"amount": 100, "currency": "EUR"},
                        "buyer": {"name": "Tess Tester", "email": "tess@example.com"}}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let test_code = r.json()["code"].as_str().unwrap().to_owned();
    h.dispatcher().run_once(&Stop::new()).await.unwrap();

    let plain = plain.accepted();
    assert_eq!(plain.len(), 1);
    assert_eq!(plain[0].1["data"]["code"], live_code.as_str());
    assert!(!plain[0].0.body.contains("bea@example.com") && !plain[0].0.body.contains("Bea"));
    let crm = crm.accepted();
    assert_eq!(crm.len(), 1);
    assert_eq!(crm[0].1["data"]["buyer_email"], "bea@example.com");
    assert_eq!(crm[0].1["data"]["buyer_name"], "Bea Buyer");
    let sandbox = sandbox.accepted();
    assert_eq!(sandbox.len(), 1, "only the test event");
    assert_eq!(sandbox[0].1["data"]["code"], test_code.as_str());
    assert_eq!(sandbox[0].1["test_mode"], true);
    assert!(
        !sandbox[0].0.body.contains("tess@example.com"),
        "no guests scope"
    );

    // Erasing the buyer leaves no trace in the outbox or the deliveries.
    let r = h
        .send(
            &h.events_guests,
            "POST",
            "/erasures",
            Some(json!({"email": "bea@example.com"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let mut partitions = vec!["EVT#castle".to_owned()];
    for s in
        h.t.store
            .subscriptions(&domain::PropertyId::parse_live("castle").unwrap())
            .await
            .unwrap()
    {
        partitions.push(format!("WHD#{}", s.id));
    }
    let mut seen = 0;
    for pk in partitions {
        let page =
            h.t.items
                .query(
                    &platform::store::Query::partition(platform::store::Table::Platform, pk),
                    0,
                )
                .await
                .unwrap();
        for i in page.items {
            seen += 1;
            assert!(
                !i.body.contains("bea@example.com") && !i.body.contains("Bea Buyer"),
                "{} {}: {}",
                i.pk,
                i.sk,
                i.body
            );
        }
    }
    assert!(seen >= 3, "the event and its deliveries were looked at");
}

/// A subscription whose receiver fails every delivery for three days is
/// disabled and says so; a delivery is given up after a day.
async fn a_subscription_failing_for_three_days_is_disabled(b: Backend) {
    let h = hub(b).await;
    let rx = receiver().await;
    rx.set(true, 0);
    let (id, _) = h.subscribe(&h.events, &rx.url, &["voucher.issued"]).await;
    let d = h.dispatcher();
    for day in 0..4 {
        h.issue(100 + day).await;
        for _ in 0..25 {
            d.run_once(&Stop::new()).await.unwrap();
            h.t.clock.advance(Duration::hours(1));
        }
    }
    let r = h
        .send(
            &h.events,
            "GET",
            &format!("/webhook-subscriptions/{id}"),
            None,
        )
        .await;
    let j = r.json();
    assert_eq!(j["status"]["status"], "disabled", "{}", r.body);
    assert!(
        j["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("every delivery failed")
    );
    let r = h
        .send(
            &h.events,
            "GET",
            &format!("/webhook-subscriptions/{id}/deliveries?limit=10"),
            None,
        )
        .await;
    let list = r.json()["deliveries"].as_array().unwrap().clone();
    assert_eq!(list.last().unwrap()["status"], "failed", "{}", r.body);
    assert!(list.last().unwrap()["attempts"].as_array().unwrap().len() > 5);
    // Nothing more is tried.
    let before = rx.requests();
    h.issue(999).await;
    d.run_once(&Stop::new()).await.unwrap();
    assert_eq!(rx.requests(), before);
}

both_stores! {
    events_subscriptions => subscriptions_and_signed_delivery;
    events_nothing_lost => nothing_lost_in_order_through_failures;
    events_crash_after_commit => a_crash_between_commit_and_dispatch_loses_nothing;
    events_audiences => personal_data_and_test_mode_reach_only_their_subscribers;
    events_disabled => a_subscription_failing_for_three_days_is_disabled;
}

/// Every event is published to the EventBridge bus (moto): a rule routes
/// `voucher.*` to an SQS queue, where the envelopes arrive without
/// personal data.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_reach_the_eventbridge_bus() {
    let h = hub(Backend::Sqlite).await;
    let endpoint = tests::moto_endpoint();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .load()
        .await;
    let eb = aws_sdk_eventbridge::Client::new(&conf);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let bus = format!("guesthub-{}", uuid::Uuid::new_v4().simple());
    eb.create_event_bus().name(&bus).send().await.unwrap();
    let q = sqs
        .create_queue()
        .queue_name(format!("ops-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .unwrap();
    let url = q.queue_url().unwrap().to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    eb.put_rule()
        .name("vouchers")
        .event_bus_name(&bus)
        .event_pattern(
            json!({"source": ["guesthub"], "detail-type": ["voucher.issued", "voucher.redeemed"]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    eb.put_targets()
        .rule("vouchers")
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("ops")
                .arn(&arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let code = h.issue(4_000).await;
    assert_eq!(h.redeem(&code, 1_000).await.status, StatusCode::CREATED);
    let bus_adapter = platform::event_bus::EventBridgeBus::connect(&bus, Some(&endpoint)).await;
    let d = Dispatcher::new(h.t.store.clone(), Some(Arc::new(bus_adapter)), "test");
    let report = d.run_once(&Stop::new()).await.unwrap();
    assert_eq!(report.fanned_out, 2);
    let mut bodies = Vec::new();
    for _ in 0..10 {
        let m = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        bodies.extend(
            m.messages()
                .iter()
                .filter_map(|m| m.body().map(str::to_owned)),
        );
        if bodies.len() >= 2 {
            break;
        }
    }
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    let mut types: Vec<String> = bodies
        .iter()
        .map(|b| {
            let v: Value = serde_json::from_str(b).unwrap();
            assert_eq!(v["source"], "guesthub");
            assert_eq!(v["detail"]["data"]["code"], code.as_str());
            assert!(
                !b.contains("bea@example.com"),
                "no personal data on the bus"
            );
            v["detail-type"].as_str().unwrap().to_owned()
        })
        .collect();
    types.sort();
    assert_eq!(types, ["voucher.issued", "voucher.redeemed"]);
    assert!(h.t.store.undispatched(10).await.unwrap().is_empty());
}
