//! The OCTO supplier API end to end on both stores: the reseller flow
//! (supplier → products → calendar → availability → reserve → confirm →
//! get → cancel), memberships sold through a reseller, errors in OCTO's
//! shape, tenancy, expiry giving seats back, and OCTO and GuestHub orders
//! never overselling together. Every answer is validated against the pinned
//! OCTO document (`infra/octo`: `@octocloud/types`' `src/openapi.yaml`):
//! its status, its required headers and its body.

use std::sync::OnceLock;

use axum::Router;
use chrono::{TimeZone, Utc};
use http::StatusCode;
use serde_json::{Value, json};
use tests::{Backend, Reply, TestStore, both_stores, call, fresh_store};

/// The pinned OCTO document as JSON (its YAML read by the test Python).
fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = std::env::var("GUESTHUB_TEST_OCTO_SPEC").unwrap_or_else(|_| {
            format!(
                "{}/../infra/octo/node_modules/@octocloud/types/src/openapi.yaml",
                env!("CARGO_MANIFEST_DIR")
            )
        });
        assert!(
            std::path::Path::new(&path).exists(),
            "the OCTO specification is missing at {path}: run ./infra/test (it installs infra/octo)"
        );
        let python = std::env::var("GUESTHUB_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let out = std::process::Command::new(python)
            .args([
                "-c",
                "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
                &path,
            ])
            .output()
            .expect("run the test Python (GUESTHUB_TEST_PYTHON) to read the OCTO document");
        assert!(
            out.status.success(),
            "reading the OCTO document failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    })
}

/// OpenAPI 3.0 → JSON Schema: `nullable: true` becomes "or null".
fn json_schema(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, x) in m {
                if k != "nullable" && k != "example" && k != "examples" {
                    out.insert(k.clone(), json_schema(x));
                }
            }
            if m.get("nullable") == Some(&json!(true)) {
                json!({"anyOf": [{"type": "null"}, Value::Object(out)]})
            } else {
                Value::Object(out)
            }
        }
        Value::Array(a) => Value::Array(a.iter().map(json_schema).collect()),
        x => x.clone(),
    }
}

/// Checks an answer against the document's operation (`path` as the
/// document writes it): a declared status, the required headers, a body
/// valid against the status's schema.
fn conforms(method: &str, path: &str, r: &Reply) {
    let spec = spec();
    let op = &spec["paths"][path][method.to_ascii_lowercase()];
    assert!(
        op.is_object(),
        "no operation {method} {path} in the OCTO document"
    );
    let response = &op["responses"][r.status.as_str()];
    assert!(
        response.is_object(),
        "{method} {path}: status {} is not in the OCTO document: {}",
        r.status,
        r.body
    );
    for (name, h) in response["headers"].as_object().into_iter().flatten() {
        if h["required"] == json!(true) {
            assert!(
                r.headers.contains_key(name.as_str()),
                "{method} {path}: the required header {name} is missing"
            );
        }
    }
    let schema = &response["content"]["application/json"]["schema"];
    validate(&format!("{method} {path} {}", r.status), schema, &r.json());
}

fn validate(at: &str, schema: &Value, body: &Value) {
    let mut root = json_schema(schema);
    root["components"] = json!({"schemas": json_schema(&spec()["components"]["schemas"])});
    let validator = jsonschema::draft202012::options()
        .build(&root)
        .unwrap_or_else(|e| panic!("{at}: the schema does not compile: {e}"));
    let problems: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        problems.is_empty(),
        "{at}: the answer is not valid OCTO:\n{}\n{body:#}",
        problems.join("\n")
    );
}

/// The document's path of a request under `/octo/{property}`.
fn spec_path(rest: &str) -> &'static str {
    let parts: Vec<&str> = rest
        .split('?')
        .next()
        .unwrap_or_default()
        .trim_matches('/')
        .split('/')
        .collect();
    match parts.as_slice() {
        ["supplier"] => "/supplier/",
        ["products"] => "/products/",
        ["products", _] => "/products/{id}",
        ["availability"] => "/availability/",
        ["availability", "calendar"] => "/availability/calendar",
        ["bookings"] => "/bookings/",
        ["bookings", _] => "/bookings/{uuid}",
        ["bookings", _, "confirm"] => "/bookings/{uuid}/confirm",
        ["bookings", _, "extend"] => "/bookings/{uuid}/extend",
        ["bookings", _, "cancel"] => "/bookings/{uuid}/cancel",
        other => panic!("no OCTO path for {other:?}"),
    }
}

const PRICING: (&str, &str) = ("octo-capabilities", "octo/pricing");

struct Hub {
    t: TestStore,
    app: Router,
    /// A reseller's key for castle (scope `octo`).
    key: String,
    /// The same reseller's sandbox key.
    test_key: String,
    /// The castle's own checkout key.
    shop_key: String,
}

async fn hub(b: Backend) -> Hub {
    let t = fresh_store(b).await;
    // 2027-01-10 10:00 in Vienna.
    t.clock
        .set(Utc.with_ymd_and_hms(2027, 1, 10, 9, 0, 0).unwrap());
    let s = &t.store;
    for (id, name) in [("castle", "Castle"), ("manor", "Manor")] {
        guesthub::admin::add_property(s, id, name, "Europe/Vienna", "EUR")
            .await
            .unwrap();
    }
    let (_, key) =
        guesthub::admin::add_partner(s, "Reseller", &["castle".into()], &["octo".into()])
            .await
            .unwrap();
    let (_, test_key) = guesthub::admin::add_partner_in_mode(
        s,
        "Reseller sandbox",
        &["castle".into()],
        &["octo".into()],
        true,
    )
    .await
    .unwrap();
    let (_, shop_key) = guesthub::admin::add_partner(
        s,
        "Shop",
        &["castle".into(), "manor".into()],
        &["checkout".into()],
    )
    .await
    .unwrap();
    let app = guesthub::app::router(s.clone(), 256 * 1024);
    let hub = Hub {
        t,
        app,
        key,
        test_key,
        shop_key,
    };
    for (property, id, body) in [
        (
            "castle",
            "harvest",
            json!({"kind": "event", "name": "Harvest dinner", "currency": "EUR", "capacity": 5,
            "units": [{"id": "adult", "name": "Adult", "price": {"amount": 8000, "currency": "EUR"}},
                      {"id": "child", "name": "Child", "price": {"amount": 4000, "currency": "EUR"}, "octo_unit_type": "CHILD"}],
            "discounts": {"member": {"percent_off": 10}}}),
        ),
        (
            "castle",
            "club",
            json!({"kind": "membership", "name": "Wine club", "currency": "EUR", "units": [{"id": "member", "name": "Member", "price": {"amount": 9900, "currency": "EUR"}}],
            "validity": {"count": 12, "unit": "months"}, "member_fields": ["first_name", "email"]}),
        ),
        (
            "manor",
            "garden",
            json!({"kind": "admission", "name": "Garden", "currency": "EUR", "units": [{"id": "adult", "name": "Adult", "price": {"amount": 1500, "currency": "EUR"}}]}),
        ),
    ] {
        let r = call(
            &hub.app,
            "PUT",
            &format!("/v1/properties/{property}/products/{id}"),
            Some(&hub.shop_key),
            &[],
            Some(body.to_string()),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    hub
}

impl Hub {
    /// One OCTO request for castle with `key`, its answer checked against
    /// the OCTO document.
    async fn octo_as(&self, key: &str, method: &str, rest: &str, body: Option<Value>) -> Reply {
        let r = call(
            &self.app,
            method,
            &format!("/octo/castle{rest}"),
            Some(key),
            &[PRICING],
            body.map(|b| b.to_string()),
        )
        .await;
        conforms(method, spec_path(rest), &r);
        r
    }

    async fn octo(&self, method: &str, rest: &str, body: Option<Value>) -> Reply {
        self.octo_as(&self.key, method, rest, body).await
    }

    async fn calendar(&self, key: &str, date: &str) -> Value {
        let r = self
            .octo_as(
                key,
                "POST",
                "/availability/calendar",
                Some(json!({"productId": "harvest", "optionId": "DEFAULT", "localDateStart": date, "localDateEnd": date})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.json()[0].clone()
    }

    async fn order(&self, uuid: &str, qty: u32) -> Reply {
        let body = json!({"uuid": uuid, "items": [{"product_id": "harvest", "unit_id": "adult", "quantity": qty, "date": "2027-02-01"}],
            "payment": {"mode": "pay_later", "parts": []}});
        call(
            &self.app,
            "POST",
            "/v1/properties/castle/orders",
            Some(&self.shop_key),
            &[],
            Some(body.to_string()),
        )
        .await
    }
}

const FEB1: &str = "2027-02-01T00:00:00+01:00";

fn reservation(uuid: &str, units: &[&str]) -> Value {
    json!({"uuid": uuid, "productId": "harvest", "optionId": "DEFAULT", "availabilityId": FEB1,
        "resellerReference": format!("R-{uuid}"),
        "unitItems": units.iter().map(|u| json!({"unitId": u})).collect::<Vec<_>>()})
}

async fn reseller_flow(b: Backend) {
    let h = hub(b).await;
    // Suppliers the key reaches, each with its full base URL.
    let r = call(
        &h.app,
        "GET",
        "/octo/suppliers",
        Some(&h.key),
        &[("host", "hub.example.com"), ("x-forwarded-proto", "https")],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    validate(
        "GET /octo/suppliers",
        &json!({"type": "array", "items": {"$ref": "#/components/schemas/Supplier"}}),
        &r.json(),
    );
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{}", r.body);
    assert_eq!(r.json()[0]["id"], "castle");
    assert_eq!(
        r.json()[0]["endpoint"],
        "https://hub.example.com/octo/castle"
    );

    let r = h.octo("GET", "/supplier", None).await;
    assert_eq!(
        (r.status, r.json()["name"].clone()),
        (StatusCode::OK, json!("Castle"))
    );
    assert_eq!(r.headers["octo-capabilities"], "octo/pricing");

    let r = h.octo("GET", "/products", None).await;
    let ids: Vec<Value> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(ids, [json!("club"), json!("harvest")], "{}", r.body);
    let r = h.octo("GET", "/products/harvest", None).await;
    let p = r.json();
    assert_eq!(p["options"][0]["id"], "DEFAULT");
    assert_eq!(p["availabilityType"], "OPENING_HOURS");
    assert_eq!(p["defaultCurrency"], "EUR");
    let units = &p["options"][0]["units"];
    assert_eq!(
        (units[0]["type"].clone(), units[1]["type"].clone()),
        (json!("ADULT"), json!("CHILD"))
    );
    assert_eq!(units[0]["pricingFrom"][0]["retail"], 8000);

    // Calendar and availability per local date.
    let day = h.calendar(&h.key, "2027-02-01").await;
    assert_eq!(
        (
            day["status"].clone(),
            day["vacancies"].clone(),
            day["capacity"].clone()
        ),
        (json!("AVAILABLE"), json!(5), json!(5))
    );
    let r = h
        .octo(
            "POST",
            "/availability",
            Some(json!({"productId": "harvest", "optionId": "DEFAULT", "localDateStart": "2027-02-01", "localDateEnd": "2027-02-02",
                "units": [{"id": "adult", "quantity": 2}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()[0]["id"], FEB1);
    assert_eq!(r.json()[0]["available"], true);
    assert_eq!(r.json().as_array().unwrap().len(), 2);

    // Reserve: held until utcExpiresAt; the same uuid again is the same booking.
    let r = h
        .octo(
            "POST",
            "/bookings",
            Some(reservation("b-1", &["adult", "child"])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let held = r.json();
    assert_eq!(held["status"], "ON_HOLD");
    assert_eq!(held["utcExpiresAt"], "2027-01-10T09:30:00Z");
    assert_eq!(held["pricing"]["retail"], 12000);
    assert_eq!(held["unitItems"].as_array().unwrap().len(), 2);
    let again = h
        .octo("POST", "/bookings", Some(reservation("b-1", &["adult"])))
        .await;
    assert_eq!(again.json(), held);
    assert_eq!(h.calendar(&h.key, "2027-02-01").await["vacancies"], 3);

    // Confirm: a GuestHub order with the booking's uuid, the hold taken over.
    let r = h
        .octo(
            "POST",
            "/bookings/b-1/confirm",
            Some(json!({"contact": {"fullName": "Ana Lopez", "emailAddress": "ana@example.com"}, "resellerReference": "RR-1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let confirmed = r.json();
    assert_eq!(confirmed["status"], "CONFIRMED");
    assert_eq!(confirmed["utcExpiresAt"], Value::Null);
    assert_eq!(confirmed["cancellable"], true);
    assert_eq!(confirmed["contact"]["lastName"], "Lopez");
    assert_eq!(h.calendar(&h.key, "2027-02-01").await["vacancies"], 3);
    let order = call(
        &h.app,
        "GET",
        "/v1/properties/castle/orders/b-1",
        Some(&h.shop_key),
        &[],
        None,
    )
    .await;
    assert_eq!(order.status, StatusCode::OK, "{}", order.body);
    let o = order.json();
    assert_eq!(
        (
            o["source"].clone(),
            o["total"]["amount"].clone(),
            o["status"].clone()
        ),
        (json!("OCTO"), json!(12000), json!("awaiting_payment"))
    );

    let r = h.octo("GET", "/bookings/b-1", None).await;
    assert_eq!(r.json(), confirmed);
    let r = h
        .octo("GET", "/bookings?resellerReference=RR-1", None)
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{}", r.body);
    let r = h.octo("GET", "/bookings?localDate=2027-02-01", None).await;
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{}", r.body);
    let r = h
        .octo("GET", "/bookings?supplierReference=nope", None)
        .await;
    assert_eq!(r.json(), json!([]));

    // Cancel: the order's cancellation; the seats come back.
    let r = h
        .octo(
            "POST",
            "/bookings/b-1/cancel",
            Some(json!({"reason": "guest ill"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.json()["status"].clone(), r.json()["cancellable"].clone()),
        (json!("CANCELLED"), json!(false))
    );
    assert_eq!(r.json()["cancellation"]["reason"], "guest ill");
    assert_eq!(h.calendar(&h.key, "2027-02-01").await["vacancies"], 5);
    let order = call(
        &h.app,
        "GET",
        "/v1/properties/castle/orders/b-1",
        Some(&h.shop_key),
        &[],
        None,
    )
    .await;
    assert_eq!(order.json()["status"], "cancelled");

    // A membership sold through the reseller: each membership's reference.
    let r = h
        .octo(
            "POST",
            "/bookings",
            Some(json!({"uuid": "m-1", "productId": "club", "optionId": "DEFAULT",
                "unitItems": [{"unitId": "member", "contact": {"firstName": "Ben", "emailAddress": "ben@example.com"}},
                              {"unitId": "member", "contact": {"firstName": "Cleo", "emailAddress": "cleo@example.com"}}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = h
        .octo(
            "POST",
            "/bookings/m-1/confirm",
            Some(json!({"contact": {"firstName": "Ben", "emailAddress": "ben@example.com"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for item in r.json()["unitItems"].as_array().unwrap() {
        let reference = item["supplierReference"].as_str().unwrap();
        let m = call(
            &h.app,
            "GET",
            &format!("/v1/properties/castle/memberships/{reference}"),
            Some(&h.shop_key),
            &[],
            None,
        )
        .await;
        assert_eq!(m.status, StatusCode::OK, "{}", m.body);
        assert_eq!(
            m.json()["contact"]["email"],
            item["contact"]["emailAddress"]
        );
    }

    // The sandbox: a test world of its own.
    let r = h
        .octo_as(
            &h.test_key,
            "POST",
            "/bookings",
            Some(reservation("t-1", &["adult"])),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["testMode"].clone()),
        (StatusCode::OK, json!(true)),
        "{}",
        r.body
    );
    assert_eq!(h.calendar(&h.test_key, "2027-02-01").await["vacancies"], 4);
    assert_eq!(h.calendar(&h.key, "2027-02-01").await["vacancies"], 5);
    let r = h.octo("GET", "/bookings/t-1", None).await;
    assert_eq!(r.json()["error"], "INVALID_BOOKING_UUID", "{}", r.body);
}

async fn refusals_in_octo_shape(b: Backend) {
    let h = hub(b).await;
    let code = |r: &Reply| r.json()["error"].as_str().unwrap_or_default().to_owned();
    // No key, a key without the scope, another property's supplier.
    let r = call(&h.app, "GET", "/octo/castle/products", None, &[], None).await;
    conforms("GET", "/products/", &r);
    assert_eq!(code(&r), "UNAUTHORIZED");
    let r = h.octo_as(&h.shop_key, "GET", "/products", None).await;
    assert_eq!(code(&r), "FORBIDDEN");
    let r = call(
        &h.app,
        "GET",
        "/octo/manor/products",
        Some(&h.key),
        &[],
        None,
    )
    .await;
    conforms("GET", "/products/", &r);
    assert_eq!(code(&r), "FORBIDDEN");
    // Another property's product is not found.
    let r = h.octo("GET", "/products/garden", None).await;
    assert_eq!(
        (code(&r), r.json()["productId"].clone()),
        ("INVALID_PRODUCT_ID".into(), json!("garden"))
    );
    let bad = |patch: Value| {
        let mut body = reservation("x-1", &["adult"]);
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let r = h
        .octo("POST", "/bookings", Some(bad(json!({"optionId": "VIP"}))))
        .await;
    assert_eq!(code(&r), "INVALID_OPTION_ID");
    let r = h
        .octo(
            "POST",
            "/bookings",
            Some(bad(json!({"unitItems": [{"unitId": "senior"}]}))),
        )
        .await;
    assert_eq!(code(&r), "INVALID_UNIT_ID");
    let r = h
        .octo(
            "POST",
            "/bookings",
            Some(bad(json!({"availabilityId": "2027-02-01T00:00:00Z"}))),
        )
        .await;
    assert_eq!(code(&r), "INVALID_AVAILABILITY_ID");
    let r = h
        .octo(
            "POST",
            "/bookings",
            Some(bad(json!({"availabilityId": "2020-02-01T00:00:00+01:00"}))),
        )
        .await;
    assert_eq!(code(&r), "INVALID_AVAILABILITY_ID");
    let r = h
        .octo(
            "POST",
            "/bookings",
            Some(bad(
                json!({"unitItems": vec![json!({"unitId": "adult"}); 6]}),
            )),
        )
        .await;
    assert_eq!(code(&r), "UNPROCESSABLE_ENTITY", "{}", r.body);
    let r = h.octo("GET", "/bookings/nobody", None).await;
    assert_eq!(
        (code(&r), r.json()["uuid"].clone()),
        ("INVALID_BOOKING_UUID".into(), json!("nobody"))
    );
    let r = h.octo("GET", "/bookings", None).await;
    assert_eq!(code(&r), "BAD_REQUEST");
    let r = call(
        &h.app,
        "POST",
        "/octo/castle/bookings",
        Some(&h.key),
        &[],
        Some("{\"productId\": ".into()),
    )
    .await;
    conforms("POST", "/bookings/", &r);
    assert_eq!(code(&r), "BAD_REQUEST");
    // Capabilities not implemented are not applied, and not answered.
    let r = call(
        &h.app,
        "GET",
        "/octo/castle/products/harvest",
        Some(&h.key),
        &[("octo-capabilities", "octo/content, octo/pickups")],
        None,
    )
    .await;
    conforms("GET", "/products/{id}", &r);
    assert_eq!(r.headers["octo-capabilities"], "");
    assert!(
        r.json()["options"][0]["units"][0]
            .get("pricingFrom")
            .is_none()
    );
    // Nothing was booked by any of it.
    assert_eq!(h.calendar(&h.key, "2027-02-01").await["vacancies"], 5);
    // Another reseller of the same supplier sees none of this one's bookings.
    let r = h
        .octo("POST", "/bookings", Some(reservation("mine-1", &["adult"])))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (_, other) = guesthub::admin::add_partner(
        &h.t.store,
        "Other reseller",
        &["castle".into()],
        &["octo".into()],
    )
    .await
    .unwrap();
    let r = h.octo_as(&other, "GET", "/bookings/mine-1", None).await;
    assert_eq!(code(&r), "INVALID_BOOKING_UUID");
    let r = h
        .octo_as(
            &other,
            "POST",
            "/bookings",
            Some(reservation("mine-1", &["adult"])),
        )
        .await;
    assert_eq!(code(&r), "INVALID_BOOKING_UUID");
    let r = h
        .octo_as(&other, "POST", "/bookings/mine-1/cancel", Some(json!({})))
        .await;
    assert_eq!(code(&r), "INVALID_BOOKING_UUID");
    let r = h
        .octo_as(&other, "GET", "/bookings?resellerReference=R-mine-1", None)
        .await;
    assert_eq!(r.json(), json!([]));
    assert_eq!(h.calendar(&h.key, "2027-02-01").await["vacancies"], 4);
}

async fn expiry_gives_seats_back(b: Backend) {
    let h = hub(b).await;
    let mut body = reservation("e-1", &["adult"; 5]);
    body["expirationMinutes"] = json!(10);
    let r = h.octo("POST", "/bookings", Some(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(h.calendar(&h.key, "2027-02-01").await["status"], "SOLD_OUT");
    let r = h.order("o-1", 1).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "sold_out".into()),
        "{}",
        r.body
    );
    // Extended once; then nobody confirms and the hold lapses.
    let r = h
        .octo(
            "POST",
            "/bookings/e-1/extend",
            Some(json!({"expirationMinutes": 20})),
        )
        .await;
    assert_eq!(
        r.json()["utcExpiresAt"],
        "2027-01-10T09:20:00Z",
        "{}",
        r.body
    );
    h.t.clock.advance(chrono::Duration::minutes(21));
    assert_eq!(h.calendar(&h.key, "2027-02-01").await["vacancies"], 5);
    let r = h.octo("GET", "/bookings/e-1", None).await;
    assert_eq!(
        (r.json()["status"].clone(), r.json()["cancellable"].clone()),
        (json!("EXPIRED"), json!(false))
    );
    let r = h.order("o-1", 5).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = h
        .octo(
            "POST",
            "/bookings/e-1/confirm",
            Some(json!({"contact": {"fullName": "Late"}})),
        )
        .await;
    assert_eq!(r.json()["error"], "INVALID_BOOKING_UUID", "{}", r.body);
    let r = h
        .octo("POST", "/bookings/e-1/extend", Some(json!({})))
        .await;
    assert_eq!(r.json()["error"], "INVALID_BOOKING_UUID", "{}", r.body);
    // No order was made of it; the seats are the order's.
    let r = call(
        &h.app,
        "GET",
        "/v1/properties/castle/orders/e-1",
        Some(&h.shop_key),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(h.calendar(&h.key, "2027-02-01").await["status"], "SOLD_OUT");
}

async fn octo_and_orders_never_oversell(b: Backend) {
    let h = std::sync::Arc::new(hub(b).await);
    let mut tasks = Vec::new();
    for i in 0..6 {
        let h1 = h.clone();
        tasks.push(tokio::spawn(async move {
            let r = h1
                .octo(
                    "POST",
                    "/bookings",
                    Some(reservation(&format!("c-{i}"), &["adult"])),
                )
                .await;
            r.status == StatusCode::OK
        }));
        let h2 = h.clone();
        tasks.push(tokio::spawn(async move {
            h2.order(&format!("o-{i}"), 1).await.status == StatusCode::CREATED
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(
        won, 5,
        "capacity 5: exactly 5 of 12 concurrent OCTO reservations and orders"
    );
    let day = h.calendar(&h.key, "2027-02-01").await;
    assert_eq!(
        (day["vacancies"].clone(), day["status"].clone()),
        (json!(0), json!("SOLD_OUT"))
    );
    // Confirming every held reservation takes nothing more.
    for i in 0..6 {
        let r = h.octo("GET", &format!("/bookings/c-{i}"), None).await;
        if r.status == StatusCode::OK {
            let r = h
                .octo(
                    "POST",
                    &format!("/bookings/c-{i}/confirm"),
                    Some(json!({"contact": {"fullName": "Guest"}})),
                )
                .await;
            assert_eq!(r.json()["status"], "CONFIRMED", "{}", r.body);
        }
    }
    assert_eq!(h.calendar(&h.key, "2027-02-01").await["vacancies"], 0);
    let r = h.order("late", 1).await;
    assert_eq!(r.code(), "sold_out", "{}", r.body);
}

async fn member_prices(b: Backend) {
    let h = hub(b).await;
    let property =
        h.t.store
            .caller_property(&domain::PropertyId::parse("castle").unwrap())
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
            b"Email,ClubDescr\nmember@example.com,Silver\n".to_vec(),
        ))),
    };
    ams_import::import(&h.t.store, req).await.unwrap();
    let mut body = reservation("d-1", &["adult", "adult"]);
    body["contact"] = json!({"emailAddress": "MEMBER@example.com"});
    let r = h.octo("POST", "/bookings", Some(body)).await;
    assert_eq!(
        (
            r.json()["pricing"]["original"].clone(),
            r.json()["pricing"]["retail"].clone()
        ),
        (json!(16000), json!(14400)),
        "{}",
        r.body
    );
    assert_eq!(r.json()["unitItems"][0]["pricing"]["retail"], 7200);
    let r = h
        .octo(
            "POST",
            "/bookings/d-1/confirm",
            Some(json!({"contact": {"emailAddress": "member@example.com"}})),
        )
        .await;
    assert_eq!(r.json()["pricing"]["retail"], 14400, "{}", r.body);
    let order = call(
        &h.app,
        "GET",
        "/v1/properties/castle/orders/d-1",
        Some(&h.shop_key),
        &[],
        None,
    )
    .await;
    assert_eq!(order.json()["total"]["amount"], 14400);
    // Without the capability, no prices.
    let r = call(
        &h.app,
        "GET",
        "/octo/castle/bookings/d-1",
        Some(&h.key),
        &[],
        None,
    )
    .await;
    conforms("GET", "/bookings/{uuid}", &r);
    assert!(r.json().get("pricing").is_none());
}

both_stores! {
    reseller_flow_both => reseller_flow;
    refusals_both => refusals_in_octo_shape;
    expiry_both => expiry_gives_seats_back;
    never_oversold_both => octo_and_orders_never_oversell;
    member_prices_both => member_prices;
}

/// The validation is not vacuous: what the OCTO document forbids fails it.
#[test]
fn answers_octo_forbids_fail_validation() {
    let fails = |schema: &str, body: Value| {
        let schema = json!({"$ref": format!("#/components/schemas/{schema}")});
        std::panic::catch_unwind(|| validate("check", &schema, &body)).is_err()
    };
    let day = json!({"localDate": "2027-02-01", "available": true, "status": "AVAILABLE",
        "vacancies": null, "capacity": null, "openingHours": []});
    assert!(
        !fails("AvailabilityCalendar", day.clone()),
        "null vacancies are allowed"
    );
    let mut wrong = day.clone();
    wrong["status"] = json!("OPEN");
    assert!(fails("AvailabilityCalendar", wrong));
    let mut missing = day;
    missing.as_object_mut().unwrap().remove("openingHours");
    assert!(fails("AvailabilityCalendar", missing));
    assert!(fails("Product", json!({"id": "harvest"})));
    assert!(fails(
        "ErrorInvalidProductID",
        json!({"error": "INVALID_PRODUCT_ID", "errorMessage": "no"})
    ));
}
