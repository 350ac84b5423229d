//! Erasing a person through `POST /v1/properties/{p}/erasures`, on both
//! stores: one person seeded into every kind of record (guest profile and
//! note, voucher buyer and the guest name of its redemption, order contact
//! and ticket member, membership, loyalty enrolment and record, club
//! roster) is gone from every item of every table and from the logs; money
//! is unchanged to the cent; a replay answers the same receipt; a
//! redemption racing the erasure neither fails nor brings the name back;
//! a crash at any write and a retry finish the erasure.

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use chrono::{TimeZone, Utc};
use http::StatusCode;
use platform::Store;
use platform::store::dynamo::DynamoItems;
use platform::store::faults::{FaultPlan, FaultyItems};
use platform::store::sqlite::SqliteItems;
use platform::store::{ItemStore, Table};
use serde_json::{Value, json};
use tests::{Backend, MotoGate, TestClock, call, moto_endpoint};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const EMAIL: &str = "ottilie.vantongeren@example.com";
const FIRST: &str = "Ottilie";
const LAST: &str = "Vantongeren";
const PHONE: &str = "+43 660 7654321";
const BIRTH: &str = "1981-04-17";
/// Who bought the voucher the person stayed on.
const BUYER: &str = "Bruno Kaufmann";
const BUYER_EMAIL: &str = "bruno.kaufmann@example.net";
const BASE: &str = "/v1/properties/castle";

/// A store whose every item can be read back whole.
enum Dump {
    Sqlite {
        items: SqliteItems,
        _dir: tempfile::TempDir,
    },
    Dynamo(DynamoItems),
}

impl Dump {
    async fn open(b: Backend) -> (Self, Arc<dyn ItemStore>) {
        match b {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let items = SqliteItems::open(dir.path().join("store.sqlite3")).unwrap();
                (
                    Dump::Sqlite {
                        items: items.clone(),
                        _dir: dir,
                    },
                    Arc::new(items),
                )
            }
            Backend::Dynamodb => {
                let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
                let items = DynamoItems::connect(&prefix, Some(&moto_endpoint())).await;
                items.create_tables().await.unwrap();
                (
                    Dump::Dynamo(items.clone()),
                    Arc::new(MotoGate::new(Arc::new(items))),
                )
            }
        }
    }

    /// Every item of every table as text: keys, index keys and body.
    async fn all(&self) -> String {
        let mut out = String::new();
        for t in Table::ALL {
            let items = match self {
                Dump::Sqlite { items, .. } => items.dump(t).await.unwrap(),
                Dump::Dynamo(d) => d.dump(t).await.unwrap(),
            };
            for i in items {
                out.push_str(&format!(
                    "{t:?} {} {} {:?} {}\n",
                    i.pk, i.sk, i.gsi1, i.body
                ));
            }
        }
        out
    }
}

fn personal(text: &str) -> Vec<&'static str> {
    let lower = text.to_lowercase();
    [EMAIL, FIRST, LAST, PHONE, BIRTH, "+436607654321"]
        .into_iter()
        .filter(|v| lower.contains(&v.to_lowercase()))
        .collect()
}

struct Hub {
    app: axum::Router,
    key: String,
    store: Store,
    clock: Arc<TestClock>,
}

impl Hub {
    async fn call(
        &self,
        method: &str,
        path: &str,
        idem: Option<&str>,
        body: Option<Value>,
    ) -> tests::Reply {
        let h: Vec<(&str, &str)> = idem.map(|k| ("idempotency-key", k)).into_iter().collect();
        call(
            &self.app,
            method,
            &format!("{BASE}{path}"),
            Some(&self.key),
            &h,
            body.map(|b| b.to_string()),
        )
        .await
    }
}

async fn hub(items: Arc<dyn ItemStore>) -> Hub {
    let clock = TestClock::at(Utc.with_ymd_and_hms(2027, 1, 10, 9, 0, 0).unwrap());
    let store = Store::with_clock(items, clock.clone());
    guesthub::admin::add_property(&store, "castle", "Castle", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let scopes: Vec<String> = [
        "checkout",
        "vouchers:issue",
        "vouchers:read",
        "vouchers:redeem",
        "club:read",
        "guests",
        "loyalty",
    ]
    .map(String::from)
    .to_vec();
    let (_, key) = guesthub::admin::add_partner(&store, "Hotel", &["castle".into()], &scopes)
        .await
        .unwrap();
    let app = guesthub::app::router(store.clone(), 256 * 1024);
    Hub {
        app,
        key,
        store,
        clock,
    }
}

/// The person in every kind of record. Returns the person's voucher code
/// and the codes of the vouchers someone else bought that were redeemed
/// or held for the person's stays.
async fn seed(h: &Hub) -> (String, [String; 2]) {
    // A hotel picking up the castle's voucher orders: its feed gets a copy
    // of the person's order.
    guesthub::admin::add_property(&h.store, "lake", "Lake", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    guesthub::admin::pick_up_orders_of(&h.store, "lake", "castle")
        .await
        .unwrap();
    let r = h
        .call("POST", "/guests", None, Some(json!({"email": EMAIL, "first_name": FIRST, "last_name": LAST, "phone": PHONE, "birth_date": BIRTH})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let r = h
        .call(
            "POST",
            &format!("/guests/{id}/notes"),
            None,
            Some(json!({"text": "Celebrates with Ottilie's sister"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let name = format!("{FIRST} {LAST}");
    let r = h
        .call("POST", "/vouchers", Some("v-1"), Some(json!({"article_type": "value", "value": {"amount": 5000, "currency": "EUR"}, "buyer": {"name": name, "email": EMAIL}})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let code = r.json()["code"].as_str().unwrap().to_owned();
    let r = h
        .call("POST", &format!("/vouchers/{code}/redemptions"), Some("red-1"), Some(json!({"amount": {"amount": 1250, "currency": "EUR"}, "reservation": {"number": "R-1", "arrival": "2027-01-08", "departure": "2027-01-10", "guest_name": format!("{LAST}, {FIRST}")}})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // Vouchers someone else bought: one redeemed for the person's stay and
    // held for the next one, one only held.
    let r = h
        .call("POST", "/vouchers", Some("v-2"), Some(json!({"article_type": "value", "value": {"amount": 8000, "currency": "EUR"}, "buyer": {"name": BUYER, "email": BUYER_EMAIL}})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let gift = r.json()["code"].as_str().unwrap().to_owned();
    let r = h
        .call("POST", &format!("/vouchers/{gift}/redemptions"), Some("red-2"), Some(json!({"amount": {"amount": 3000, "currency": "EUR"}, "reservation": {"number": "R-7", "arrival": "2027-01-05", "departure": "2027-01-07", "guest_name": name}})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = h
        .call("POST", &format!("/vouchers/{gift}/holds"), Some("hold-1"), Some(json!({"amount": {"amount": 2000, "currency": "EUR"}, "reservation": {"number": "R-8", "arrival": "2027-03-01", "departure": "2027-03-03", "guest_name": format!("{LAST}, {FIRST}")}, "expires_at": "2027-03-03T10:00:00Z"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = h
        .call("POST", "/vouchers", Some("v-3"), Some(json!({"article_type": "value", "value": {"amount": 4000, "currency": "EUR"}, "buyer": {"name": BUYER, "email": BUYER_EMAIL}})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let held = r.json()["code"].as_str().unwrap().to_owned();
    let r = h
        .call("POST", &format!("/vouchers/{held}/holds"), Some("hold-2"), Some(json!({"amount": {"amount": 1500, "currency": "EUR"}, "reservation": {"number": "R-9", "guest_name": format!("{FIRST} {LAST}")}, "expires_at": "2027-03-03T10:00:00Z"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let r = h
        .call("PUT", "/products/club", None, Some(json!({"kind": "membership", "name": "Wine club", "currency": "EUR", "units": [{"id": "member", "name": "Member", "price": {"amount": 9900, "currency": "EUR"}}], "validity": {"count": 1, "unit": "months"}})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = h
        .call("POST", "/orders", None, Some(json!({"uuid": "order-1", "contact": {"email": EMAIL, "first_name": FIRST, "last_name": LAST, "phone": PHONE},
            "items": [{"product_id": "club", "unit_id": "member", "quantity": 1, "members": [{"email": EMAIL, "first_name": FIRST, "last_name": LAST}]}],
            "payment": {"mode": "charge_now", "parts": [{"method": "card", "amount": {"amount": 9900, "currency": "EUR"}}]}})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let r = h
        .call("POST", "/loyalty/enrolments", None, Some(json!({"email": EMAIL, "first_name": FIRST, "last_name": LAST, "loyalty_number": "NC-77001"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = h
        .call("POST", "/stays/R-1/departure", None, Some(json!({"loyalty_number": "NC-77001", "arrival": "2027-01-08", "departure": "2027-01-10", "room_revenue": {"amount": 61000, "currency": "EUR"}})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let property = domain::ports::PropertyStore::property(
        &h.store,
        &domain::PropertyId::parse("castle").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let file = format!(
        "Email,FirstName,LastName,ClubDescr\n{EMAIL},{FIRST},{LAST},Gold\nother.member@example.net,Other,Member,Gold\n"
    );
    let req = ams_import::ImportRequest::new(
        property,
        domain::roster::import::ImportSource {
            key: "ams/castle/m.csv".into(),
            etag: "e1".into(),
            sequencer: None,
            arrived_at: Utc::now(),
        },
        ams_import::Input::Stream(Box::new(std::io::Cursor::new(file.into_bytes()))),
    )
    .expect("the key names the property");
    ams_import::import(&h.store, req).await.unwrap();
    let r = h
        .call("GET", &format!("/club-members/{EMAIL}"), None, None)
        .await;
    assert_eq!(r.json()["member"], true, "{}", r.body);
    (code, [gift, held])
}

async fn money(h: &Hub, code: &str) -> (Value, Value) {
    let s = h
        .call(
            "GET",
            "/settlement?from=2027-01-01&to=2027-01-31",
            None,
            None,
        )
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.body);
    let v = h
        .call("GET", &format!("/vouchers/{code}"), None, None)
        .await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.body);
    (s.json()["totals"].clone(), v.json()["balance"].clone())
}

async fn erase_everywhere(b: Backend, logs: &Captured) {
    let (dump, items) = Dump::open(b).await;
    let h = hub(items).await;
    let (code, gifts) = seed(&h).await;
    assert!(!personal(&dump.all().await).is_empty());
    let before = money(&h, &code).await;
    let mut gifts_before = Vec::new();
    for gift in &gifts {
        let v = h
            .call("GET", &format!("/vouchers/{gift}"), None, None)
            .await;
        gifts_before.push(v.json());
    }

    // A redemption races the erasure on the person's voucher.
    let racer = {
        let app = h.app.clone();
        let key = h.key.clone();
        let code = code.clone();
        tokio::spawn(async move {
            call(
                &app,
                "POST",
                &format!("{BASE}/vouchers/{code}/redemptions"),
                Some(&key),
                &[("idempotency-key", "red-race")],
                Some(json!({"amount": {"amount": 100, "currency": "EUR"}, "reservation": {"number": "R-2"}}).to_string()),
            )
            .await
        })
    };
    let r = h
        .call(
            "POST",
            "/erasures",
            Some("erase-1"),
            Some(json!({"email": format!(" {} ", EMAIL.to_uppercase())})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let race = racer.await.unwrap();
    assert!(
        race.status.as_u16() < 500,
        "{b:?}: {} {}",
        race.status,
        race.body
    );
    let receipt = r.json();
    assert_eq!(receipt["status"], "erased", "{}", r.body);
    assert!(receipt["email_hash"].as_str().unwrap().len() == 64);
    let e = &receipt["erased"];
    for (kind, n) in [
        ("guest_profiles", 1),
        ("notes", 1),
        // Their own, and the two bought by someone else that hold their stays.
        ("vouchers", 3),
        ("orders", 1),
        ("memberships", 1),
        ("roster_entries", 1),
    ] {
        assert_eq!(e[kind], n, "{b:?} {kind}: {}", r.body);
    }
    // Their voucher's redemption (activity, redemption record); on the
    // others: the redemption's, and the holds' activities.
    assert!(e["ledger_entries"].as_u64().unwrap() >= 6, "{}", r.body);
    assert!(e["loyalty_records"].as_u64().unwrap() >= 1, "{}", r.body);
    assert_eq!(receipt["pending"], json!([]));
    assert!(personal(&r.body).is_empty());

    // Replay: the same receipt; the receipt reads back the same.
    let again = h
        .call(
            "POST",
            "/erasures",
            Some("erase-1"),
            Some(json!({"email": format!(" {} ", EMAIL.to_uppercase())})),
        )
        .await;
    assert_eq!((again.status, &again.body), (StatusCode::ACCEPTED, &r.body));
    let id = receipt["id"].as_str().unwrap();
    let got = h.call("GET", &format!("/erasures/{id}"), None, None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json(), receipt);
    let r = h.call("GET", "/erasures/nope", None, None).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (404, "erasure_not_found".into())
    );

    // Nothing names the person: no item of any table, no log line.
    let all = dump.all().await;
    assert_eq!(personal(&all), Vec::<&str>::new(), "{b:?}:\n{all}");
    assert!(all.contains(&format!(
        "erased:{}",
        &receipt["email_hash"].as_str().unwrap()[..12]
    )));
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert_eq!(personal(&text), Vec::<&str>::new());

    // Money as it was (the racing redemption, if it committed, moved 1.00).
    let after = money(&h, &code).await;
    if race.status == StatusCode::CREATED {
        let b0 = before.1["amount"]
            .as_i64()
            .unwrap_or_else(|| panic!("{before:?}"));
        assert_eq!(after.1["amount"].as_i64().unwrap(), b0 - 100);
    } else {
        assert_eq!(after, before);
    }
    // Settlement to the cent (with the racing 1.00 when it committed).
    let mut expected = before.0.clone();
    if race.status == StatusCode::CREATED {
        let t = &mut expected[0];
        t["redemptions"] = json!(t["redemptions"].as_u64().unwrap() + 1);
        for k in ["redeemed", "net"] {
            t[k]["amount"] = json!(t[k]["amount"].as_i64().unwrap() + 100);
        }
    }
    assert_eq!(after.0, expected, "{b:?}");
    // The vouchers someone else bought: the stays no longer name the
    // person; their buyer, money, codes and dates are as they were.
    let bought = h
        .call(
            "GET",
            &format!("/vouchers?buyer_email={BUYER_EMAIL}"),
            None,
            None,
        )
        .await;
    assert_eq!(bought.status, StatusCode::OK, "{}", bought.body);
    let bought = &bought.json()["vouchers"];
    assert_eq!(bought.as_array().map(Vec::len), Some(2), "{bought}");
    for v in bought.as_array().unwrap() {
        assert_eq!(
            v["buyer"],
            json!({"name": BUYER, "email": BUYER_EMAIL}),
            "{bought}"
        );
    }
    for (gift, before) in gifts.iter().zip(&gifts_before) {
        let after = h
            .call("GET", &format!("/vouchers/{gift}"), None, None)
            .await;
        let after = after.json();
        for field in [
            "code",
            "balance",
            "available",
            "held",
            "valid_until",
            "status",
        ] {
            assert_eq!(after[field], before[field], "{b:?} {field}");
        }
        assert!(personal(&after.to_string()).is_empty(), "{after}");
    }
    assert!(all.contains(BUYER_EMAIL) && all.contains(BUYER));
    // The club roster forgot them at once.
    let r = h
        .call("GET", &format!("/club-members/{EMAIL}"), None, None)
        .await;
    assert_eq!(r.json()["member"], false, "{}", r.body);
}

/// The one test of this binary (the log capture is process-wide).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_person_leaves_no_trace_and_keeps_the_money() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    for b in [Backend::Sqlite, Backend::Dynamodb] {
        erase_everywhere(b, &logs).await;
        crash_at_every_write(b).await;
    }
    let _ = std::io::stderr().flush();
}

/// A failure at each write of the erasure in turn, then a retry with the
/// same key: the retry finishes it, and an interrupted erasure never reads
/// as erased.
async fn crash_at_every_write(b: Backend) {
    let (dump, items) = Dump::open(b).await;
    let faulty = Arc::new(FaultyItems::new(items, FaultPlan::default()));
    let h = hub(faulty.clone()).await;
    seed(&h).await;
    let mut crashes = 0;
    for n in 1.. {
        // Every write from the n-th of this attempt on fails: the process
        // is gone (its idempotency lock stays until it expires).
        // Every other attempt, a write may also commit and then fail (the
        // process died before it heard back).
        faulty.set_plan(FaultPlan {
            fail_writes_from: Some(n),
            fail_after_permille: if n % 2 == 0 { 150 } else { 0 },
            ..FaultPlan::default()
        });
        let r = h
            .call(
                "POST",
                "/erasures",
                Some("erase-crash"),
                Some(json!({"email": EMAIL})),
            )
            .await;
        faulty.set_plan(FaultPlan::default());
        if r.status == StatusCode::ACCEPTED {
            assert_eq!(r.json()["status"], "erased");
            break;
        }
        crashes += 1;
        assert!(r.status.is_server_error(), "{}", r.body);
        assert!(n < 200, "the erasure never finished");
        // Until every step is done, the person is not reported erased.
        let hash = h
            .store
            .email_hash(&domain::Email::parse(EMAIL).unwrap())
            .await
            .unwrap();
        let open = domain::erasure::ErasureStore::open_erasure(
            &h.store,
            &domain::PropertyId::parse("castle").unwrap(),
            &hash,
        )
        .await
        .unwrap();
        if let Some(e) = open {
            assert_eq!(e.status, domain::erasure::ErasureStatus::InProgress);
        }
        h.clock.advance(chrono::Duration::minutes(10));
    }
    assert!(crashes > 5, "{crashes}");
    let all = dump.all().await;
    assert_eq!(personal(&all), Vec::<&str>::new(), "{b:?}:\n{all}");
}

/// Data minimisation: a guest's name in a voucher's activities goes only
/// to the partner that redeemed; the pickup feed shows the buyer only in
/// the issuer's own feed; settlement names nobody.
async fn minimal_data(b: Backend) {
    let (_dump, items) = Dump::open(b).await;
    let h = hub(items).await;
    let s = &h.store;
    guesthub::admin::add_property(s, "lake", "Lake", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    guesthub::admin::pick_up_orders_of(s, "lake", "castle")
        .await
        .unwrap();
    let key = |name: &'static str, p: &'static str, scopes: &'static str| async move {
        tests::partner_key(s, name, &[p], scopes).await
    };
    let other = key("Castle office", "castle", "vouchers:read,vouchers:pickup").await;
    let lake = key(
        "Lake PMS",
        "lake",
        "vouchers:read,vouchers:redeem,vouchers:pickup",
    )
    .await;
    let r = h
        .call("POST", "/vouchers", Some("v-m"), Some(json!({"article_type": "value", "value": {"amount": 5000, "currency": "EUR"}, "buyer": {"name": "Brunhilde Buyer", "email": "brunhilde@example.com"}})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let code = r.json()["code"].as_str().unwrap().to_owned();
    let r = h
        .call("POST", &format!("/vouchers/{code}/redemptions"), Some("red-m"), Some(json!({"amount": {"amount": 1000, "currency": "EUR"}, "reservation": {"number": "R-9", "guest_name": "Gustav Redeemer"}})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let get = |k: String, p: &'static str, path: String| {
        let app = h.app.clone();
        async move {
            call(
                &app,
                "GET",
                &format!("/v1/properties/{p}{path}"),
                Some(&k),
                &[],
                None,
            )
            .await
        }
    };
    let acts = format!("/vouchers/{code}/activities");
    let mine = get(h.key.clone(), "castle", acts.clone()).await;
    assert!(mine.body.contains("Gustav Redeemer"), "{}", mine.body);
    let theirs = get(other.clone(), "castle", acts.clone()).await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.body);
    assert!(theirs.body.contains("R-9"), "{}", theirs.body);
    assert!(!theirs.body.contains("Gustav"), "{}", theirs.body);
    for f in ["json", "csv"] {
        let r = get(
            other.clone(),
            "castle",
            format!("/settlement?from=2027-01-01&to=2027-01-31&format={f}"),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains("1000"), "{}", r.body);
        assert!(
            !r.body.contains("Gustav") && !r.body.contains("Brunhilde"),
            "{}",
            r.body
        );
    }
    // The issuer's own feed carries the buyer; the hotel picking up its
    // orders gets the voucher without them.
    let own = get(other.clone(), "castle", "/voucher-orders".into()).await;
    assert!(own.body.contains("brunhilde@example.com"), "{}", own.body);
    let portal = get(lake, "lake", "/voucher-orders".into()).await;
    assert!(portal.body.contains(&code), "{}", portal.body);
    assert!(
        !portal.body.contains("Brunhilde") && !portal.body.contains("brunhilde@"),
        "{}",
        portal.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_names_only_to_the_partner_that_needs_them() {
    for b in [Backend::Sqlite, Backend::Dynamodb] {
        minimal_data(b).await;
    }
}

/// The personal fields a schema's answers may carry, by property name.
const PERSONAL: [&str; 11] = [
    "email",
    "first_name",
    "last_name",
    "phone",
    "birth_date",
    "guest_name",
    "buyer",
    "contact",
    "document_number",
    "address",
    "document",
];

fn personal_fields(
    schemas: &Value,
    s: &Value,
    seen: &mut std::collections::BTreeSet<String>,
    out: &mut std::collections::BTreeSet<String>,
) {
    let Some(o) = s.as_object() else { return };
    if let Some(r) = o.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap().to_owned();
        if seen.insert(name.clone()) {
            personal_fields(schemas, &schemas[&name], seen, out);
        }
        return;
    }
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            if PERSONAL.contains(&k.as_str()) {
                out.insert(k.clone());
            }
            personal_fields(schemas, v, seen, out);
        }
    }
    for k in ["items", "additionalProperties"] {
        if let Some(v) = o.get(k) {
            personal_fields(schemas, v, seen, out);
        }
    }
    for k in ["allOf", "oneOf", "anyOf"] {
        for v in o.get(k).and_then(Value::as_array).into_iter().flatten() {
            personal_fields(schemas, v, seen, out);
        }
    }
}

/// docs/operations.md's table of personal data by route is the OpenAPI
/// document's truth (every route answering a personal field, with exactly
/// those fields) and names each route's scope (a key with only that scope
/// passes the scope check; a key with every other scope gets 403).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_table_matches_the_routes() {
    use std::collections::{BTreeMap, BTreeSet};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("infra/openapi.json")).unwrap())
            .unwrap();
    let schemas = &doc["components"]["schemas"];
    let mut derived: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let mut out = BTreeSet::new();
            for (status, r) in op["responses"].as_object().into_iter().flatten() {
                if !status.starts_with('2') {
                    continue;
                }
                for c in r["content"].as_object().into_iter().flatten().map(|x| x.1) {
                    personal_fields(schemas, &c["schema"], &mut BTreeSet::new(), &mut out);
                }
            }
            if !out.is_empty() {
                derived.insert(format!("{} {path}", method.to_uppercase()), out);
            }
        }
    }
    let ops = std::fs::read_to_string(root.join("docs/operations.md")).unwrap();
    let section = ops
        .split("## Personal data by route")
        .nth(1)
        .expect("docs/operations.md has the section")
        .split("\n## ")
        .next()
        .unwrap();
    let cell = |c: &str| c.trim().trim_matches('`').to_owned();
    let mut table: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut scopes: Vec<(String, String)> = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
        let route = cell(cells[0]);
        let fields = cells[1].split(',').map(cell).collect();
        table.insert(route.clone(), fields);
        scopes.push((route, cell(cells[2])));
    }
    assert_eq!(
        table, derived,
        "docs/operations.md's table against the OpenAPI document"
    );

    let t = tests::fresh_store(Backend::Sqlite).await;
    guesthub::admin::add_property(&t.store, "castle", "Castle", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let app = guesthub::app::router(t.store.clone(), 64 * 1024);
    let all: Vec<&str> = domain::Scope::ALL
        .iter()
        .map(|s| s.as_str())
        .filter(|s| *s != "admin")
        .collect();
    for (route, scope) in scopes {
        let (method, path) = route.split_once(' ').unwrap();
        let uri = path
            .replace("{property}", "castle")
            .replace("{id}", "x")
            .replace("{reference}", "x")
            .replace("{code}", "x");
        let only = tests::partner_key(&t.store, "Only", &["castle"], &scope).await;
        let others: Vec<&str> = all.iter().copied().filter(|s| *s != scope).collect();
        let rest = tests::partner_key(&t.store, "Rest", &["castle"], &others.join(",")).await;
        let body = (method != "GET").then(|| "{}".to_owned());
        let r = call(&app, method, &uri, Some(&rest), &[], body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{route} without {scope}: {}",
            r.body
        );
        let r = call(&app, method, &uri, Some(&only), &[], body).await;
        assert_ne!(
            r.status,
            StatusCode::FORBIDDEN,
            "{route} with {scope}: {}",
            r.body
        );
    }
}

/// Retention (off by default): `property set --retention-days N` makes the
/// scheduled loyalty run anonymise order and membership contacts N days
/// after the last visit or expiry, and delivered loyalty records N days
/// after delivery; nothing before.
async fn retention(b: Backend) {
    let (dump, items) = Dump::open(b).await;
    let h = hub(items).await;
    let data = tempfile::tempdir().unwrap();
    let r = h
        .call("PUT", "/products/club", None, Some(json!({"kind": "membership", "name": "Wine club", "currency": "EUR", "units": [{"id": "member", "name": "Member", "price": {"amount": 9900, "currency": "EUR"}}], "validity": {"count": 1, "unit": "months"}})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = h
        .call("POST", "/orders", None, Some(json!({"uuid": "order-r", "contact": {"email": EMAIL, "first_name": FIRST, "last_name": LAST, "phone": PHONE},
            "items": [{"product_id": "club", "unit_id": "member", "quantity": 1}],
            "payment": {"mode": "charge_now", "parts": [{"method": "card", "amount": {"amount": 9900, "currency": "EUR"}}]}})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let reference = r.json()["lines"][0]["memberships"][0]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h
        .call("POST", "/loyalty/enrolments", None, Some(json!({"email": EMAIL, "first_name": FIRST, "last_name": LAST, "loyalty_number": "NC-1"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let run = || async {
        guesthub::loyalty::export(&h.store, data.path(), Some("castle"), false)
            .await
            .unwrap()
            .iter()
            .map(|s| s.anonymised)
            .sum::<usize>()
    };
    // Delivered today.
    assert_eq!(run().await, 0);
    let records = || async {
        dump.all()
            .await
            .lines()
            .filter(|l| l.contains("LOYALTYREC#"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(records().await.contains(EMAIL));

    // A year on, retention off: nothing changes.
    h.clock.advance(chrono::Duration::days(365));
    assert_eq!(run().await, 0);
    let order = h.call("GET", "/orders/order-r", None, None).await;
    assert!(order.body.contains(EMAIL), "{}", order.body);

    guesthub::admin::set_retention(&h.store, "castle", 400)
        .await
        .unwrap();
    assert_eq!(run().await, 0, "not yet 400 days");
    guesthub::admin::set_retention(&h.store, "castle", 300)
        .await
        .unwrap();
    assert_eq!(
        run().await,
        3,
        "the order, its membership, the delivered enrolment"
    );
    assert_eq!(run().await, 0, "again: nothing left");
    for path in [
        "/orders/order-r".to_owned(),
        format!("/memberships/{reference}"),
    ] {
        let r = h.call("GET", &path, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(personal(&r.body), Vec::<&str>::new(), "{path}: {}", r.body);
        assert!(r.body.contains("erased:"), "{}", r.body);
    }
    assert_eq!(personal(&records().await), Vec::<&str>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_anonymises_old_contacts_when_set() {
    for b in [Backend::Sqlite, Backend::Dynamodb] {
        retention(b).await;
    }
}

/// A group order naming more people than one transaction takes (each
/// member's email gets an index entry): it is placed all the same, and an
/// erasure of one member reaches it.
async fn large_group_order(b: Backend) {
    let (_dump, items) = Dump::open(b).await;
    let h = hub(items).await;
    let r = h
        .call("PUT", "/products/club", None, Some(json!({"kind": "membership", "name": "Wine club", "currency": "EUR", "units": [{"id": "member", "name": "Member", "price": {"amount": 9900, "currency": "EUR"}}], "validity": {"count": 1, "unit": "months"}})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    const N: usize = 60;
    let members: Vec<Value> = (0..N)
        .map(|i| json!({"email": format!("member{i}@example.net"), "first_name": "Member", "last_name": format!("Number{i}")}))
        .collect();
    let r = h
        .call("POST", "/orders", None, Some(json!({"uuid": "group-1", "contact": {"email": "office@example.net", "first_name": "Office", "last_name": "Buyer"},
            "items": [{"product_id": "club", "unit_id": "member", "quantity": N, "members": members}],
            "payment": {"mode": "charge_now", "parts": [{"method": "card", "amount": {"amount": 9900 * N as i64, "currency": "EUR"}}]}})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = h
        .call(
            "POST",
            "/erasures",
            Some("erase-37"),
            Some(json!({"email": "member37@example.net"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.json()["erased"]["orders"], 1, "{}", r.body);
    let o = h.call("GET", "/orders/group-1", None, None).await;
    assert_eq!(o.status, StatusCode::OK, "{}", o.body);
    assert!(
        !o.body.contains("member37@") && !o.body.contains("Number37"),
        "{}",
        o.body
    );
    assert!(o.body.contains("member36@example.net"), "{}", o.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_order_larger_than_one_transaction_is_placed_and_erasable() {
    for b in [Backend::Sqlite, Backend::Dynamodb] {
        large_group_order(b).await;
    }
}

/// Another person who shares a name keeps theirs: only records tied to the
/// erased person (by email or their own keys) are rewritten by name.
async fn namesakes(b: Backend) {
    let (_dump, items) = Dump::open(b).await;
    let h = hub(items).await;
    let r = h
        .call("PUT", "/products/club", None, Some(json!({"kind": "membership", "name": "Wine club", "currency": "EUR", "units": [{"id": "member", "name": "Member", "price": {"amount": 9900, "currency": "EUR"}}], "validity": {"count": 1, "unit": "months"}})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut refs = Vec::new();
    for (uuid, email, last) in [
        ("o-a", EMAIL, LAST),
        ("o-b", "ottilie.b@example.net", "Brandt"),
    ] {
        let r = h
            .call("POST", "/orders", None, Some(json!({"uuid": uuid, "contact": {"email": email, "first_name": FIRST, "last_name": last},
                "items": [{"product_id": "club", "unit_id": "member", "quantity": 1}],
                "payment": {"mode": "charge_now", "parts": [{"method": "card", "amount": {"amount": 9900, "currency": "EUR"}}]}})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        refs.push(
            r.json()["lines"][0]["memberships"][0]["reference"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let r = h
        .call(
            "POST",
            "/erasures",
            Some("erase-a"),
            Some(json!({"email": EMAIL})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.json()["erased"]["memberships"], 1, "{}", r.body);
    assert_eq!(r.json()["erased"]["orders"], 1, "{}", r.body);
    let m = h
        .call("GET", &format!("/memberships/{}", refs[1]), None, None)
        .await
        .json();
    assert_eq!(m["contact"]["first_name"], FIRST, "{m}");
    assert_eq!(m["contact"]["email"], "ottilie.b@example.net", "{m}");
    let o = h.call("GET", "/orders/o-b", None, None).await.json();
    assert_eq!(o["contact"]["first_name"], FIRST, "{o}");
    let m = h
        .call("GET", &format!("/memberships/{}", refs[0]), None, None)
        .await;
    assert_eq!(personal(&m.body), Vec::<&str>::new(), "{}", m.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namesake_keeps_their_name() {
    for b in [Backend::Sqlite, Backend::Dynamodb] {
        namesakes(b).await;
    }
}
