//! Hostile input, property-based: garbage bytes, random and deeply nested
//! JSON, bodies over the limit, and random codes, amounts, currencies and
//! dates inside otherwise valid requests, against the voucher and checkout
//! routes; random bytes into the roster parser (delimited and spreadsheet),
//! hostile workbooks (a cell at `XFD1048576`, `A1:Z1000000`, zip bombs, `.xls`
//! files declaring huge sizes) that must be refused before they are read;
//! random text into the money, email, date and code parsers.
//!
//! What must hold: no panic, no 5xx, and every error is a JSON body
//! `{"error": {"code": "snake_case", "message": "…"}}`; bodies over the
//! limit are 413 `body_too_large`.
//!
//! 64 cases per property; `GUESTHUB_LONG=1` runs 1,024. Routes run on the
//! SQLite store (input handling does not depend on the backend).

use std::io::Cursor;

use axum::Router;
use axum::body::{Body, Bytes};
use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use domain::roster::{FileError, FileKind, SpreadsheetKind, open};
use domain::voucher::VoucherCode;
use domain::{Currency, Email, Money};
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tests::{Backend, TestStore, fresh_store};
use tower::ServiceExt;

const MAX_BODY: usize = 256 * 1024;

fn long_run() -> bool {
    std::env::var("GUESTHUB_LONG").is_ok_and(|v| v == "1")
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: if long_run() { 1024 } else { 64 },
        failure_persistence: None,
        ..Config::default()
    })
}

/// Runs a property; on failure, panics with proptest's minimal input.
fn check_all<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    if let Err(e) = runner().run(&strategy, test) {
        panic!("{e}");
    }
}

// ---- the hub under attack ---------------------------------------------------------

/// A hub with two properties (Vienna/EUR and Santiago/USD), one partner
/// holding every voucher and checkout scope, and one of each thing the
/// routes name: a voucher, a redemption, a hold, products, an order and a
/// membership.
struct Hub {
    rt: tokio::runtime::Runtime,
    _t: TestStore,
    app: Router,
    key: String,
    ids: Ids,
}

#[derive(Debug, Clone)]
struct Ids {
    code: String,
    card: String,
    redemption: String,
    hold: String,
    order: String,
    membership: String,
}

fn eur(a: i64) -> Value {
    json!({"amount": a, "currency": "EUR"})
}

impl Hub {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (t, app, key, ids) = rt.block_on(async {
            let t = fresh_store(Backend::Sqlite).await;
            t.clock
                .set(Utc.with_ymd_and_hms(2027, 1, 10, 9, 0, 0).unwrap());
            let s = &t.store;
            guesthub::admin::add_property(s, "castle", "Castle", "Europe/Vienna", "EUR")
                .await
                .unwrap();
            guesthub::admin::add_property(s, "ranch", "Ranch", "America/Santiago", "USD")
                .await
                .unwrap();
            let scopes: Vec<String> = [
                "vouchers:read",
                "vouchers:redeem",
                "vouchers:issue",
                "vouchers:pickup",
                "checkout",
                "club:read",
                "club:admin",
                "guests",
                "loyalty",
            ]
            .map(String::from)
            .to_vec();
            let (_, key) = guesthub::admin::add_partner(
                s,
                "Everything",
                &["castle".into(), "ranch".into()],
                &scopes,
            )
            .await
            .unwrap();
            let app = guesthub::app::router(s.clone(), MAX_BODY);
            let post = |uri: &str, body: Value| {
                let (app, key, uri) = (app.clone(), key.clone(), uri.to_owned());
                async move {
                    let r = raw(
                        &app,
                        "POST",
                        &format!("/v1/properties/castle{uri}"),
                        &key,
                        &[("idempotency-key", uuid::Uuid::new_v4().to_string())],
                        Some("application/json"),
                        Body::from(body.to_string()),
                    )
                    .await
                    .unwrap();
                    assert!(r.0.is_success(), "{uri}: {} {}", r.0, text(&r.2));
                    serde_json::from_slice::<Value>(&r.2).unwrap()
                }
            };
            let put = |uri: &str, body: Value| {
                let (app, key, uri) = (app.clone(), key.clone(), uri.to_owned());
                async move {
                    let r = raw(
                        &app,
                        "PUT",
                        &format!("/v1/properties/castle{uri}"),
                        &key,
                        &[],
                        Some("application/json"),
                        Body::from(body.to_string()),
                    )
                    .await
                    .unwrap();
                    assert!(r.0.is_success(), "{uri}: {} {}", r.0, text(&r.2));
                }
            };
            let issued = post(
                "/vouchers",
                json!({"article_type": "value", "value": eur(100_000), "valid_until": "2028-12-31"}),
            )
            .await;
            let code = issued["code"].as_str().unwrap().to_owned();
            let card = post(
                "/vouchers",
                json!({"article_type": "gift_card", "value": eur(50_000)}),
            )
            .await["code"]
                .as_str()
                .unwrap()
                .to_owned();
            let redeemed = post(
                &format!("/vouchers/{code}/redemptions"),
                json!({"amount": eur(1_000), "reservation": {"number": "R-1"}}),
            )
            .await;
            let held = post(
                &format!("/vouchers/{code}/holds"),
                json!({"amount": eur(1_000), "reservation": {"number": "R-2"},
                       "expires_at": "2027-02-10T00:00:00Z"}),
            )
            .await;
            for (id, body) in templates_products() {
                put(&format!("/products/{id}"), body).await;
            }
            let order = post(
                "/orders",
                json!({"uuid": "order-1", "contact": {"email": "ana@example.com"},
                       "items": [{"product_id": "tasting", "unit_id": "adult", "quantity": 2}],
                       "payment": {"mode": "pay_later", "parts": []}}),
            )
            .await;
            let sale = post(
                "/orders",
                json!({"uuid": "order-2", "contact": {"email": "ana@example.com", "first_name": "Ana"},
                       "items": [{"product_id": "club", "unit_id": "member", "quantity": 1}],
                       "payment": {"mode": "charge_now", "parts": [{"method": "card", "amount": eur(9_900)}]}}),
            )
            .await;
            let ids = Ids {
                code,
                card,
                redemption: redeemed["redemption_id"].as_str().unwrap().to_owned(),
                hold: held["hold_id"].as_str().unwrap().to_owned(),
                order: order["id"].as_str().unwrap().to_owned(),
                membership: sale["lines"][0]["memberships"][0]["reference"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            };
            (t, app, key, ids)
        });
        Hub {
            rt,
            _t: t,
            app,
            key,
            ids,
        }
    }

    /// Sends one request and checks the answer; `None` when the request
    /// cannot even be built (an invalid URI or header).
    fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, String)],
        content_type: Option<&str>,
        body: Body,
    ) -> Result<Option<(StatusCode, Value)>, TestCaseError> {
        let Some((status, h, bytes)) = self.rt.block_on(raw(
            &self.app,
            method,
            uri,
            &self.key,
            headers,
            content_type,
            body,
        )) else {
            return Ok(None);
        };
        let what = format!("{method} {uri}");
        answer_ok(&what, status, &h, &bytes).map(|j| Some((status, j)))
    }
}

fn text(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    s.chars().take(500).collect()
}

/// One request through the router, body read whole.
async fn raw(
    app: &Router,
    method: &str,
    uri: &str,
    key: &str,
    headers: &[(&str, String)],
    content_type: Option<&str>,
    body: Body,
) -> Option<(StatusCode, HeaderMap, Bytes)> {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {key}"));
    for (h, v) in headers {
        req = req.header(*h, v.as_str());
    }
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let req = req.body(body).ok()?;
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let h = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Some((status, h, bytes))
}

/// Never a 5xx; errors are JSON with a snake_case code and a message;
/// successes are JSON (or the settlement CSV). Returns the JSON.
fn answer_ok(
    what: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, TestCaseError> {
    prop_assert!(!status.is_server_error(), "{what}: {status} {}", text(body));
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if status.is_success() && ct.starts_with("text/csv") {
        return Ok(Value::Null);
    }
    prop_assert!(
        ct.starts_with("application/json"),
        "{what}: {status} with content-type {ct:?}: {}",
        text(body)
    );
    let j: Value = serde_json::from_slice(body).map_err(|e| {
        TestCaseError::fail(format!("{what}: {status} not JSON ({e}): {}", text(body)))
    })?;
    if !status.is_success() {
        let code = j["error"]["code"].as_str().unwrap_or("");
        prop_assert!(
            !code.is_empty()
                && code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{what}: {status} without a snake_case code: {}",
            text(body)
        );
        prop_assert!(
            j["error"]["message"].is_string(),
            "{what}: {status} without a message: {}",
            text(body)
        );
    }
    Ok(j)
}

// ---- routes and valid bodies --------------------------------------------------------

fn templates_products() -> Vec<(&'static str, Value)> {
    vec![
        (
            "tasting",
            json!({"kind": "admission", "name": "Tasting", "currency": "EUR",
                   "units": [{"id": "adult", "name": "Adult", "price": {"amount": 2500, "currency": "EUR"}}]}),
        ),
        (
            "dinner",
            json!({"kind": "event", "name": "Dinner", "currency": "EUR", "capacity": 40,
                   "units": [{"id": "adult", "name": "Adult", "price": {"amount": 8000, "currency": "EUR"}}],
                   "discounts": {"member": {"percent_off": 10}, "tiers": {"Gold": {"fixed_price": {"amount": 6000, "currency": "EUR"}}}},
                   "promo_codes": [{"code": "SPRING", "discount": {"amount_off": {"amount": 500, "currency": "EUR"}}}]}),
        ),
        (
            "club",
            json!({"kind": "membership", "name": "Wine club", "currency": "EUR",
                   "units": [{"id": "member", "name": "Member", "price": {"amount": 9900, "currency": "EUR"}}],
                   "validity": {"count": 12, "unit": "months"}, "member_fields": ["first_name", "email"],
                   "benefits": [{"kind": "member_tickets", "product_ids": ["tasting"], "unit_ids": ["adult"],
                                 "quantity_per_booking": 2, "max_uses": 6},
                                {"kind": "promotion", "percent_off": 15}]}),
        ),
    ]
}

/// A route that takes a JSON body, with a valid body and the fields worth
/// attacking (JSON pointer-like paths; missing ones are created).
struct BodyRoute {
    method: &'static str,
    path: String,
    body: Value,
    fields: &'static [&'static str],
}

fn body_routes(ids: &Ids) -> Vec<BodyRoute> {
    let Ids {
        code,
        card,
        redemption,
        hold,
        order,
        membership,
    } = ids;
    let reservation = json!({"number": "R-9", "arrival": "2027-03-01", "departure": "2027-03-03", "guest_name": "Ana"});
    let r = |method, path: String, body: Value, fields| BodyRoute {
        method,
        path,
        body,
        fields,
    };
    vec![
        r(
            "POST",
            "/vouchers".into(),
            json!({"article_type": "value", "value": eur(5000), "valid_until": "2027-12-31", "order_ref": "WEB-1",
                   "buyer": {"name": "Bea", "email": "bea@example.com"}}),
            &[
                "article_type",
                "value/amount",
                "value/currency",
                "value",
                "valid_until",
                "order_ref",
                "buyer/email",
                "buyer/name",
                "code",
                "package",
                "test_mode",
            ],
        ),
        r(
            "POST",
            format!("/vouchers/{card}/loads"),
            json!({"amount": eur(100)}),
            &["amount/amount", "amount/currency", "amount", "test_mode"],
        ),
        r(
            "POST",
            format!("/vouchers/{code}/redemptions"),
            json!({"amount": eur(100), "reservation": reservation}),
            &[
                "amount/amount",
                "amount/currency",
                "amount",
                "reservation/number",
                "reservation/arrival",
                "reservation/departure",
                "reservation/guest_name",
                "test_mode",
            ],
        ),
        r(
            "POST",
            format!("/vouchers/{code}/redemptions/{redemption}/reversal"),
            json!({"amount": eur(1), "reason": "shortened"}),
            &["amount/amount", "amount/currency", "amount", "reason"],
        ),
        r(
            "POST",
            format!("/vouchers/{code}/holds"),
            json!({"amount": eur(100), "reservation": reservation, "expires_at": "2027-02-01T10:00:00Z"}),
            &[
                "amount/amount",
                "amount/currency",
                "expires_at",
                "reservation/number",
                "reservation/arrival",
            ],
        ),
        r(
            "POST",
            format!("/holds/{hold}/capture"),
            json!({"amount": eur(1)}),
            &["amount/amount", "amount/currency", "amount"],
        ),
        r(
            "POST",
            "/voucher-orders/ack".into(),
            json!({"cursor": "1"}),
            &["cursor"],
        ),
        r(
            "PUT",
            "/article-mapping".into(),
            json!({"value": "GUT-100", "gift_card": "GUT-200"}),
            &["value", "package", "gift_card", "bogus"],
        ),
        r(
            "POST",
            "/voucher-imports".into(),
            json!({"vouchers": [{"code": "OLD-1234", "value": eur(5000), "valid_until": "2027-12-31",
                                 "issued_at": "2025-01-01T00:00:00Z",
                                 "redemptions": [{"amount": eur(1000), "at": "2025-06-01T00:00:00Z", "reference": "INV-1"}]}]}),
            &[
                "vouchers/0/code",
                "vouchers/0/value/amount",
                "vouchers/0/value/currency",
                "vouchers/0/valid_until",
                "vouchers/0/issued_at",
                "vouchers/0/article_type",
                "vouchers/0/redemptions/0/amount/amount",
                "vouchers/0/redemptions/0/at",
                "vouchers/0",
            ],
        ),
        r(
            "POST",
            "/voucher-write-offs".into(),
            json!({"dry_run": true, "exclude": [code]}),
            &["dry_run", "exclude", "exclude/0"],
        ),
        r(
            "PUT",
            "/products/tasting".into(),
            templates_products()[0].1.clone(),
            &[
                "units/0/price",
                "units/0/price/amount",
                "units/0/price/currency",
                "units/0/id",
                "currency",
                "kind",
                "capacity",
                "name",
            ],
        ),
        r(
            "PUT",
            "/products/dinner".into(),
            templates_products()[1].1.clone(),
            &[
                "units/0/price",
                "capacity",
                "discounts/member/percent_off",
                "discounts/tiers/Gold/fixed_price",
                "discounts/tiers/Gold/fixed_price/amount",
                "promo_codes/0/discount/amount_off",
                "promo_codes/0/discount/amount_off/currency",
                "allowed_tiers",
            ],
        ),
        r(
            "PUT",
            "/products/club".into(),
            templates_products()[2].1.clone(),
            &[
                "units/0/price",
                "validity/count",
                "validity/unit",
                "benefits/0/quantity_per_booking",
                "benefits/0/max_uses",
                "benefits/1/percent_off",
                "member_fields/0",
            ],
        ),
        r(
            "POST",
            "/orders".into(),
            json!({"uuid": "fuzz-order", "contact": {"email": "ana@example.com", "first_name": "Ana", "marketing_opt_in": true},
                   "promo_code": "SPRING", "source": "phone", "reseller": "res-1",
                   "skip_confirmation_email": false, "email_receipt": true,
                   "items": [{"product_id": "dinner", "unit_id": "adult", "quantity": 2, "date": "2027-03-01"},
                             {"product_id": "club", "unit_id": "member", "quantity": 1, "valid_from": "2027-02-01"}],
                   "payment": {"mode": "pay_later", "parts": [
                       {"method": "cash", "amount": eur(10_000), "tendered": eur(20_000)},
                       {"method": "gift_card", "amount": eur(1_000), "gift_card_code": card}]}}),
            &[
                "uuid",
                "contact/email",
                "items/0/quantity",
                "items/0/date",
                "items/0/product_id",
                "items/1/valid_from",
                "items/1/renews",
                "items/1/quantity",
                "payment/mode",
                "payment/parts/0/amount/amount",
                "payment/parts/0/amount/currency",
                "payment/parts/0/tendered/amount",
                "payment/parts/1/amount/amount",
                "payment/parts/1/gift_card_code",
                "membership_reference",
                "promo_code",
                "source",
                "reseller",
                "skip_confirmation_email",
                "email_receipt",
                "contact/marketing_opt_in",
            ],
        ),
        r(
            "POST",
            format!("/orders/{order}/payments"),
            json!({"parts": [{"method": "card", "amount": eur(100)}]}),
            &[
                "parts/0/amount/amount",
                "parts/0/amount/currency",
                "parts/0/method",
                "parts/0/tendered",
                "parts",
            ],
        ),
        r(
            "POST",
            "/guests".into(),
            json!({"email": "gina@example.com", "first_name": "Gina", "last_name": "Rossi",
                   "birth_date": "1980-01-31", "phone": "+43 1 234"}),
            &[
                "email",
                "first_name",
                "last_name",
                "birth_date",
                "phone",
                "opt_in",
            ],
        ),
        r(
            "POST",
            "/loyalty/enrolments".into(),
            json!({"email": "lena@example.com", "first_name": "Lena", "last_name": "Ng"}),
            &[
                "email",
                "first_name",
                "last_name",
                "loyalty_number",
                "guest_id",
            ],
        ),
        r(
            "PUT",
            "/club-tiers/Gold".into(),
            json!({"enabled": true}),
            &["enabled"],
        ),
        r(
            "POST",
            "/orders".into(),
            json!({"uuid": "fuzz-redeem", "membership_reference": membership,
                   "items": [{"product_id": "tasting", "unit_id": "adult", "quantity": 2}],
                   "payment": {"mode": "pay_later", "parts": []}}),
            &["membership_reference", "items/0/quantity", "uuid"],
        ),
    ]
}

/// The templates are valid requests, so a changed field is what a case tests.
#[test]
fn the_valid_bodies_are_valid() {
    let hub = Hub::new();
    for route in body_routes(&hub.ids) {
        let uri = format!("/v1/properties/castle{}", route.path);
        let headers = [("idempotency-key", uuid::Uuid::new_v4().to_string())];
        let answer = hub
            .send(
                route.method,
                &uri,
                &headers,
                Some("application/json"),
                Body::from(route.body.to_string()),
            )
            .unwrap()
            .unwrap();
        assert!(answer.0.is_success(), "{} {uri}: {answer:?}", route.method);
    }
}

/// `{…}` in a path template, resolved against the hub's ids.
fn path_templates() -> Vec<(&'static str, &'static str)> {
    vec![
        ("GET", "/vouchers/{code}"),
        ("GET", "/vouchers?order_ref={q}"),
        ("GET", "/vouchers?buyer_email={q}"),
        ("GET", "/vouchers/{code}/activities?after={q}&limit={q}"),
        ("POST", "/vouchers/{code}/redemptions"),
        ("POST", "/vouchers/{code}/redemptions/{seg}/reversal"),
        ("POST", "/holds/{seg}/capture"),
        ("POST", "/holds/{seg}/release"),
        ("POST", "/vouchers/{code}/block"),
        ("POST", "/vouchers/{code}/loads"),
        ("GET", "/voucher-orders?after={q}&limit={q}"),
        ("GET", "/settlement?from={q}&to={q}&format={q}"),
        ("GET", "/settlement?from=2027-01-01&to={q}"),
        ("GET", "/products/{seg}"),
        ("PUT", "/products/{seg}"),
        ("GET", "/orders/{seg}"),
        ("POST", "/orders/{seg}/payments"),
        ("POST", "/orders/{seg}/cancel"),
        ("GET", "/memberships/{seg}"),
        ("GET", "/memberships/{seg}/bookings"),
        ("GET", "/memberships?email={q}&limit={q}&cursor={q}"),
        ("GET", "/memberships?q={q}&test_mode={q}&cursor={q}"),
        ("GET", "/club-members/{seg}"),
        ("PUT", "/club-tiers/{seg}"),
        ("GET", "/roster-imports?limit={q}"),
        ("POST", "/roster-imports/{seg}/approve"),
        ("GET", "/erasures/{seg}"),
        ("GET", "/crm/runs?limit={q}"),
        ("GET", "/guests/{seg}"),
        ("DELETE", "/guests/{seg}"),
    ]
}

// ---- strategies -------------------------------------------------------------------------

fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => ".{0,40}",
        2 => "[ -~]{0,40}",
        1 => "[\\x00-\\x1f\\x7f]{1,8}",
        1 => prop::sample::select(vec![
            "", " ", "\u{0}", "null", "undefined", "NaN", "-0", "1e309", "0x10", "١٢٣", "%00", "%FF",
            "../../etc/passwd", "' OR 1=1 --", "<script>", "\u{202e}gnp.exe", "ﬀ", "ß", "İ", "🦀🦀",
            "\u{feff}EUR", "a@b", "@", "a@b.c@d.e", "\\", "\"", "{}", "[]",
        ])
        .prop_map(str::to_owned),
        1 => (1usize..70_000).prop_map(|n| "x".repeat(n)),
    ]
}

fn hostile_date() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (-300_000i32..300_000, 0u32..14, 0u32..33)
            .prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        3 => (1900i32..2200, 1u32..13, 1u32..29)
            .prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        2 => prop::sample::select(vec![
            "+262142-12-31", "-262143-01-01", "+262143-01-01", "262142-12-31", "0000-01-01",
            "-0001-12-31", "9999-12-31", "10000-01-01", "2027-02-29", "2028-02-29", "2027-02-30",
            "2027-13-01", "2027-00-10", "2027-1-5", "27-01-05", "2027/01/05", "05.01.2027",
            "01/05/2027", "2027-01-05T00:00:00Z", " 2027-01-05 ", "",
        ])
        .prop_map(str::to_owned),
        1 => hostile_text(),
    ]
}

fn hostile_datetime() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (hostile_date(), 0u32..25, 0u32..61, prop::sample::select(vec![
            "Z", "+00:00", "+14:00", "-12:00", "+99:99", "", "+01", "z",
        ]))
            .prop_map(|(d, h, m, z)| format!("{d}T{h:02}:{m:02}:00{z}")),
        1 => prop::sample::select(vec![
            "+262142-12-31T23:59:59Z", "-262143-01-01T00:00:00Z", "+262142-12-31T23:59:59-23:59",
            "-262143-01-01T00:00:00+23:59", "2027-01-10T10:00:00.999999999999Z", "2027-01-10 10:00:00Z",
            "1970-01-01T00:00:00Z", "2027-03-28T02:30:00+01:00",
        ])
        .prop_map(str::to_owned),
    ]
}

fn hostile_currency() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "EUR",
            "eur",
            " EUR ",
            "Eur",
            "USD",
            "JPY",
            "CLP",
            "XXX",
            "EU",
            "EURO",
            "€",
            "",
            "E\u{0}R",
            "ÉUR",
            "ISK",
            "XAU",
            "eur\u{17f}",
        ])
        .prop_map(str::to_owned),
        "[A-Za-z]{0,5}",
        ".{0,4}",
    ]
}

fn hostile_code() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<u64>().prop_map(|seed| {
            use rand::SeedableRng;
            VoucherCode::generate_with(&mut rand::rngs::StdRng::seed_from_u64(seed))
                .as_str()
                .to_owned()
        }),
        2 => (any::<u64>(), 0usize..24, "[ -~]").prop_map(|(seed, at, c)| {
            use rand::SeedableRng;
            let code = VoucherCode::generate_with(&mut rand::rngs::StdRng::seed_from_u64(seed));
            let mut s: Vec<char> = code.as_str().chars().collect();
            let i = at % s.len();
            s[i] = c.chars().next().unwrap_or('X');
            s.into_iter().collect()
        }),
        2 => "[2-9A-Za-z -]{0,70}",
        1 => ".{0,30}",
        1 => prop::sample::select(vec!["ß", "ﬀﬀ", "ßßßß", "ǅǅǅǅ", "ŉŉŉŉ", "----", "    ", "İİİİ"])
            .prop_map(str::to_owned),
    ]
}

fn hostile_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        2 => prop::sample::select(vec![
            i64::MAX, i64::MIN, i64::MAX / 2, i64::MAX / 1000, 0, -1, 1, 100_000_000_000,
            100_000_000_001, 4_294_967_295, 4_294_967_296, 9_007_199_254_740_993,
        ])
        .prop_map(Value::from),
        1 => any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        1 => prop::sample::select(vec![0.5, -0.0, 1e-300, 1e300, 12.345, 100.001])
            .prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
    ]
}

/// A value to put where a field was: anything, biased to what the field
/// might almost accept.
fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => hostile_number(),
        2 => hostile_text().prop_map(Value::from),
        2 => hostile_date().prop_map(Value::from),
        1 => hostile_datetime().prop_map(Value::from),
        2 => hostile_currency().prop_map(Value::from),
        2 => hostile_code().prop_map(Value::from),
        1 => (hostile_number(), hostile_currency())
            .prop_map(|(a, c)| json!({"amount": a, "currency": c})),
        1 => prop::sample::select(vec![
            json!(null), json!(true), json!(false), json!([]), json!({}), json!([1, 2]),
            json!({"amount": 1}), json!([{"a": 1}]), json!("value"), json!("gift_card"),
            json!("package"), json!("external"), json!("months"), json!("days"), json!("years"),
            json!("charge_now"), json!("pay_later"), json!("split"), json!("cash"), json!("gift_card"),
        ]),
    ]
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "amount", "currency", "value", "article_type", "code", "valid_until", "reservation",
            "number", "expires_at", "dry_run", "exclude", "vouchers", "cursor", "uuid", "items",
            "product_id", "unit_id", "quantity", "date", "payment", "mode", "parts", "method",
            "tendered", "kind", "units", "price", "validity", "count", "unit", "enabled", "contact",
            "email", "test_mode", "buyer",
        ])
        .prop_map(str::to_owned),
        1 => ".{0,12}",
    ]
}

/// Arbitrary JSON, with the field names the routes use.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        hostile_number(),
        hostile_text().prop_map(Value::from),
        hostile_date().prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Sets `path` (`a/b/0/c`) in `v` to `new`, creating what is missing.
fn set_path(v: &mut Value, path: &str, new: Value) {
    let (head, rest) = match path.split_once('/') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let slot = match (v.is_array(), head.parse::<usize>()) {
        (true, Ok(n)) => {
            let a = v.as_array_mut().unwrap();
            if n >= a.len() {
                a.push(Value::Null);
            }
            let n = n.min(a.len() - 1);
            &mut a[n]
        }
        _ => {
            if !v.is_object() {
                *v = json!({});
            }
            v.as_object_mut()
                .unwrap()
                .entry(head)
                .or_insert(Value::Null)
        }
    };
    match rest {
        Some(rest) => set_path(slot, rest, new),
        None => *slot = new,
    }
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn path_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => hostile_code().prop_map(|s| encode(&s)),
        3 => hostile_text().prop_map(|s| encode(&s)),
        1 => prop::sample::select(vec![
            "%FF", "%C3%28", "%E2%82", "%00", "%", "%zz", "..", ".", "%2F", "%2e%2e", "a%20b",
            "%F0%9F%A6%80", "order-1", "club", "tasting", "Gold",
        ])
        .prop_map(str::to_owned),
        1 => (1usize..9_000).prop_map(|n| "A".repeat(n)),
    ]
}

fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        hostile_date().prop_map(|s| encode(&s)),
        hostile_number().prop_map(|v| encode(&v.to_string())),
        hostile_text().prop_map(|s| encode(&s)),
        prop::sample::select(vec![
            "json",
            "csv",
            "CSV",
            "xml",
            "",
            "%FF",
            "%",
            "a=b",
            "1&limit=2"
        ])
        .prop_map(str::to_owned),
    ]
}

fn content_type() -> impl Strategy<Value = Option<&'static str>> {
    prop::sample::select(vec![
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("application/problem+json"),
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some(""),
        Some("application/json\u{7f}"),
        None,
    ])
}

fn idempotency_key() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => "[a-zA-Z0-9-]{1,40}".prop_map(Some),
        1 => "[ -~]{0,300}".prop_map(Some),
        1 => Just(None),
    ]
}

fn property() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["castle", "castle", "ranch"])
}

// ---- HTTP properties ------------------------------------------------------------------

#[test]
fn garbage_bytes_to_every_body_route() {
    let hub = Hub::new();
    let routes = body_routes(&hub.ids);
    let strategy = (
        0..routes.len(),
        property(),
        prop_oneof![
            3 => prop::collection::vec(any::<u8>(), 0..2048),
            2 => (0..routes.len(), any::<u64>(), 1usize..8).prop_map(|(r, seed, flips)| {
                // A valid body with a few bytes changed or cut off.
                let mut b = templates_bytes(r);
                let mut x = seed;
                for _ in 0..flips {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let i = (x >> 33) as usize % b.len().max(1);
                    match (x >> 13) % 4 {
                        0 => b.truncate(i),
                        1 if i < b.len() => b[i] = (x >> 5) as u8,
                        2 => b.insert(i.min(b.len()), b"{[\",:}]\\"[(x % 8) as usize]),
                        _ if i < b.len() => {
                            b.remove(i);
                        }
                        _ => {}
                    }
                }
                b
            }),
        ],
        content_type(),
        idempotency_key(),
    );
    check_all(strategy, |(r, prop, body, ct, idem)| {
        let route = &routes[r];
        let uri = format!("/v1/properties/{prop}{}", route.path);
        let headers: Vec<(&str, String)> =
            idem.map(|k| ("idempotency-key", k)).into_iter().collect();
        hub.send(route.method, &uri, &headers, ct, Body::from(body))?;
        Ok(())
    });
}

/// The bytes of a route's valid body (by index), for mutation.
fn templates_bytes(r: usize) -> Vec<u8> {
    let ids = Ids {
        code: "7KQX-M2RT-9HVW-C4NP-E83R".into(),
        card: "7KQX-M2RT-9HVW-C4NP-E83R".into(),
        redemption: "r".into(),
        hold: "h".into(),
        order: "o".into(),
        membership: "m".into(),
    };
    let routes = body_routes(&ids);
    routes[r % routes.len()].body.to_string().into_bytes()
}

#[test]
fn random_json_to_every_body_route() {
    let hub = Hub::new();
    let routes = body_routes(&hub.ids);
    let strategy = (0..routes.len(), property(), any_json(), idempotency_key());
    check_all(strategy, |(r, prop, body, idem)| {
        let route = &routes[r];
        let uri = format!("/v1/properties/{prop}{}", route.path);
        let headers: Vec<(&str, String)> =
            idem.map(|k| ("idempotency-key", k)).into_iter().collect();
        hub.send(
            route.method,
            &uri,
            &headers,
            Some("application/json"),
            Body::from(body.to_string()),
        )?;
        Ok(())
    });
}

/// Random codes, amounts, currencies, dates (one to three fields at a
/// time) in otherwise valid voucher and checkout requests.
#[test]
fn hostile_fields_in_valid_requests() {
    let hub = Hub::new();
    let routes = body_routes(&hub.ids);
    let strategy = (
        0..routes.len(),
        property(),
        prop::collection::vec((any::<prop::sample::Index>(), hostile_value()), 1..4),
        any::<u32>(),
    );
    check_all(strategy, |(r, prop, changes, n)| {
        let route = &routes[r];
        let mut body = route.body.clone();
        for (field, value) in changes {
            set_path(&mut body, field.get::<&str>(route.fields), value);
        }
        if route.path == "/orders" {
            // A fresh uuid unless the fuzzed one is kept.
            if body["uuid"] == json!("fuzz-order") || body["uuid"] == json!("fuzz-redeem") {
                body["uuid"] = json!(format!("fuzz-{n}"));
            }
        }
        let uri = format!("/v1/properties/{prop}{}", route.path);
        let headers = [("idempotency-key", format!("k-{n}"))];
        hub.send(
            route.method,
            &uri,
            &headers,
            Some("application/json"),
            Body::from(body.to_string()),
        )?;
        Ok(())
    });
}

/// Prices near the top of i64 and large quantities: an order is priced,
/// never overflowed.
#[test]
fn checkout_amounts_never_overflow() {
    let hub = Hub::new();
    let strategy = (
        prop_oneof![
            Just(i64::MAX),
            Just(i64::MAX / 2 + 1),
            Just(i64::MAX / 1000 + 1),
            0i64..=i64::MAX,
            0i64..1_000_000_000,
        ],
        1u32..=1000,
        0u32..3,
        any::<u32>(),
    );
    check_all(strategy, |(price, quantity, lines, n)| {
        let product = json!({"kind": "admission", "name": "Expensive", "currency": "EUR",
                             "units": [{"id": "adult", "name": "Adult", "price": {"amount": price, "currency": "EUR"}}]});
        let id = format!("p{}", n % 4);
        let put = hub.send(
            "PUT",
            &format!("/v1/properties/castle/products/{id}"),
            &[],
            Some("application/json"),
            Body::from(product.to_string()),
        )?;
        // Prices past the cap are refused up front, with the field named.
        if price > domain::checkout::catalogue::MAX_UNIT_PRICE {
            let (status, body) = put.expect("an answer");
            prop_assert_eq!(status.as_u16(), 400);
            prop_assert_eq!(&body["error"]["details"]["field"], "units.price");
            return Ok(());
        }
        prop_assert!(put.is_some_and(|(s, _)| s.is_success()));
        let item = json!({"product_id": id, "unit_id": "adult", "quantity": quantity});
        let items: Vec<Value> = (0..=lines).map(|_| item.clone()).collect();
        let order = json!({"uuid": format!("big-{n}"), "items": items,
                           "payment": {"mode": "pay_later", "parts": []}});
        let placed = hub.send(
            "POST",
            "/v1/properties/castle/orders",
            &[],
            Some("application/json"),
            Body::from(order.to_string()),
        )?;
        if let Some((status, j)) = placed
            && status.is_success()
        {
            let total = j["total"]["amount"].as_i64().unwrap_or(-1);
            let expected = i128::from(price) * i128::from(quantity) * i128::from(lines + 1);
            prop_assert_eq!(
                i128::from(total),
                expected,
                "order total for {} × {} × {} lines: {}",
                price,
                quantity,
                lines + 1,
                j
            );
        }
        Ok(())
    });
}

#[test]
fn hostile_path_segments_and_queries() {
    let hub = Hub::new();
    let templates = path_templates();
    let strategy = (
        0..templates.len(),
        property(),
        path_segment(),
        prop::collection::vec(query_value(), 3),
        prop_oneof![Just(None), any_json().prop_map(Some)],
        any::<usize>(),
    );
    check_all(strategy, |(t, prop, seg, q, body, n)| {
        let (method, template) = templates[t];
        let mut path = template.replace("{code}", &seg).replace("{seg}", &seg);
        for v in &q {
            path = path.replacen("{q}", v, 1);
        }
        path = path.replace("{n}", &n.to_string());
        let uri = format!("/v1/properties/{prop}{path}");
        let body = match (method, body) {
            ("GET", _) | (_, None) => Body::empty(),
            (_, Some(b)) => Body::from(b.to_string()),
        };
        let headers = [("idempotency-key", "seg-1".to_owned())];
        hub.send(method, &uri, &headers, Some("application/json"), body)?;
        Ok(())
    });
}

#[test]
fn roster_imports_limit_errors_are_json() {
    let hub = Hub::new();
    check_all(query_value(), |limit| {
        let uri = format!("/v1/properties/castle/roster-imports?limit={limit}");
        hub.send("GET", &uri, &[], None, Body::empty())?;
        Ok(())
    });
}

/// Anything in `Authorization` but the key is 401 in the error shape.
#[test]
fn random_keys_are_401() {
    let hub = Hub::new();
    let real = hub.key.clone();
    let keys = prop_oneof![
        hostile_text(),
        (0usize..80, "[ -~]").prop_map(move |(at, c)| {
            let mut k: Vec<char> = real.chars().collect();
            let i = at % k.len();
            if k[i].to_string() == c {
                k.push('x');
            } else {
                k[i] = c.chars().next().unwrap_or('x');
            }
            k.into_iter().collect()
        }),
        ("[0-9a-f]{16}", "[A-Za-z0-9_-]{30,70}").prop_map(|(id, s)| format!("ghk_{id}_{s}")),
    ];
    let scheme = prop::sample::select(vec!["Bearer ", "bearer ", "Basic ", "", "Bearer  "]);
    check_all((keys, scheme), |(key, scheme)| {
        let value = format!("{scheme}{key}");
        let Ok(value) = http::HeaderValue::from_str(&value) else {
            return Ok(());
        };
        let req = Request::builder()
            .method("GET")
            .uri("/v1/properties/castle/vouchers/7KQX-M2RT-9HVW-C4NP-E83R")
            .header(header::AUTHORIZATION, value)
            .body(Body::empty())
            .unwrap();
        let resp = hub.rt.block_on(hub.app.clone().oneshot(req)).unwrap();
        let status = resp.status();
        let h = resp.headers().clone();
        let bytes = hub
            .rt
            .block_on(resp.into_body().collect())
            .unwrap()
            .to_bytes();
        let j = answer_ok("GET with a random key", status, &h, &bytes)?;
        if status != StatusCode::NOT_FOUND {
            prop_assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", j);
        }
        Ok(())
    });
}

#[test]
fn deeply_nested_json() {
    let hub = Hub::new();
    let routes = body_routes(&hub.ids);
    let strategy = (
        0..routes.len(),
        1usize..20_000,
        prop::sample::select(vec![("[", "]"), ("{\"a\":", "}"), ("{\"amount\":[", "]}")]),
        any::<bool>(),
    );
    check_all(strategy, |(r, depth, (open, close), closed)| {
        let route = &routes[r];
        let mut body = open.repeat(depth);
        body.push('1');
        if closed {
            body.push_str(&close.repeat(depth));
        }
        let uri = format!("/v1/properties/castle{}", route.path);
        let headers = [("idempotency-key", format!("deep-{depth}"))];
        let answer = hub.send(
            route.method,
            &uri,
            &headers,
            Some("application/json"),
            Body::from(body),
        )?;
        // Past serde_json's nesting limit nothing is parsed at all.
        if let Some((status, j)) = answer
            && depth > 128
        {
            prop_assert_eq!(status, StatusCode::BAD_REQUEST, "{} deep: {}", depth, j);
            prop_assert_eq!(j["error"]["code"].as_str(), Some("malformed_json"));
        }
        Ok(())
    });
}

#[test]
fn bodies_over_the_limit_are_413() {
    let hub = Hub::new();
    let routes = body_routes(&hub.ids);
    let strategy = (
        0..routes.len(),
        (MAX_BODY + 1)..(MAX_BODY * 3),
        prop::sample::select(vec!["sized", "streamed", "valid_json"]),
    );
    check_all(strategy, |(r, size, shape)| {
        let route = &routes[r];
        let body = match shape {
            "valid_json" => {
                let mut b = route.body.clone();
                b["padding"] = json!("x".repeat(size));
                Body::from(b.to_string())
            }
            "streamed" => {
                let chunk = Bytes::from(vec![b' '; 8192]);
                let chunks = size / 8192 + 1;
                let stream = futures::stream::iter(
                    (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
                );
                Body::from_stream(stream)
            }
            _ => Body::from(vec![b'{'; size]),
        };
        let uri = format!("/v1/properties/castle{}", route.path);
        let headers = [("idempotency-key", format!("big-{size}"))];
        let answer = hub.send(route.method, &uri, &headers, Some("application/json"), body)?;
        if let Some((status, j)) = answer {
            prop_assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{}", j);
            prop_assert_eq!(j["error"]["code"].as_str(), Some("body_too_large"));
        }
        Ok(())
    });
}

// ---- lax input: what the one JSON extractor and the domain types refuse ---------------

/// A JSON pointer as the API names fields: `/items/0/contact` is
/// `items[0].contact`.
fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for part in pointer.split('/').skip(1) {
        if part.parse::<usize>().is_ok() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// The paths of every object in `v` (`""` for the top), as JSON pointers.
fn object_paths(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            out.push(at.to_owned());
            for (k, child) in m {
                object_paths(child, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                object_paths(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A field no route knows, anywhere in a valid body (top level, a Money
/// object, a contact, an item, a voucher line), is 400 `invalid_field`
/// naming it: nothing is accepted and silently dropped.
#[test]
fn unknown_fields_anywhere_are_named() {
    let hub = Hub::new();
    let routes = body_routes(&hub.ids);
    let strategy = (
        0..routes.len(),
        any::<prop::sample::Index>(),
        "zz_[a-z_]{1,12}",
        hostile_value(),
        any::<u32>(),
    );
    check_all(strategy, |(r, at, key, value, n)| {
        let route = &routes[r];
        let mut body = route.body.clone();
        let mut objects = Vec::new();
        object_paths(&body, "", &mut objects);
        let target = at.get(&objects).clone();
        body.pointer_mut(&target)
            .and_then(Value::as_object_mut)
            .unwrap()
            .insert(key.clone(), value);
        if route.path == "/orders" {
            body["uuid"] = json!(format!("unknown-{n}"));
        }
        let uri = format!("/v1/properties/castle{}", route.path);
        let headers = [("idempotency-key", uuid::Uuid::new_v4().to_string())];
        let (status, j) = hub
            .send(
                route.method,
                &uri,
                &headers,
                Some("application/json"),
                Body::from(body.to_string()),
            )?
            .expect("an answer");
        if route.path == "/voucher-imports" && target.starts_with("/vouchers/") {
            // Each imported line is checked on its own and reported.
            prop_assert_eq!(status, StatusCode::OK, "{}", j);
            prop_assert_eq!(&j["lines"][0]["status"], "failed", "{}", j);
            prop_assert!(
                j["lines"][0]["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains(&key),
                "{}",
                j
            );
            return Ok(());
        }
        prop_assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{} {}{}: {}",
            route.method,
            route.path,
            target,
            j
        );
        prop_assert_eq!(j["error"]["code"].as_str(), Some("invalid_field"), "{}", j);
        // The key itself, or (in an object that is one of several shapes,
        // such as a discount) the object it made into no shape at all.
        let field = j["error"]["details"]["field"].as_str().unwrap_or("");
        let object = dotted(&target);
        prop_assert!(
            field.ends_with(&key) || field == object,
            "{} names {:?}, not {} in {}",
            route.path,
            field,
            key,
            object
        );
        Ok(())
    });
}

/// A key given twice in one object is refused on every body route, with
/// its path, whichever value comes last.
#[test]
fn duplicate_keys_are_refused_everywhere() {
    let hub = Hub::new();
    for route in body_routes(&hub.ids) {
        let text = route.body.to_string();
        let first = route
            .body
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone();
        let dup = format!(
            "{},{}:{}}}",
            &text[..text.len() - 1],
            json!(first),
            route.body[&first]
        );
        let uri = format!("/v1/properties/castle{}", route.path);
        let headers = [("idempotency-key", uuid::Uuid::new_v4().to_string())];
        let (status, j) = hub
            .send(
                route.method,
                &uri,
                &headers,
                Some("application/json"),
                Body::from(dup),
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{} {}: {j}",
            route.method,
            route.path
        );
        assert_eq!(j["error"]["code"], "duplicate_field", "{j}");
        assert_eq!(j["error"]["details"]["field"], json!(first), "{j}");
    }
    // Nested, in a Money object: the redemption that would have taken 10.00
    // after a 1.00 check.
    let uri = format!(
        "/v1/properties/castle/vouchers/{}/redemptions",
        hub.ids.code
    );
    let body = r#"{"amount": {"amount": 100, "currency": "EUR", "amount": 1000}, "reservation": {"number": "R-dup"}}"#;
    let (status, j) = hub
        .send(
            "POST",
            &uri,
            &[],
            Some("application/json"),
            Body::from(body),
        )
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{j}");
    assert_eq!(j["error"]["details"]["field"], "amount.amount", "{j}");
}

/// `"amount": null` is not "all of it" (only an omitted amount is); cash
/// tendered, import dates and birth dates are bounded. Each is 400 and moves
/// nothing.
#[test]
fn lax_values_are_refused() {
    let hub = Hub::new();
    let Ids {
        code,
        redemption,
        hold,
        ..
    } = hub.ids.clone();
    let balance = |hub: &Hub| {
        let (_, j) = hub
            .send(
                "GET",
                &format!("/v1/properties/castle/vouchers/{code}"),
                &[],
                None,
                Body::empty(),
            )
            .unwrap()
            .unwrap();
        j["balance"]["amount"].as_i64().unwrap()
    };
    let before = balance(&hub);
    let post = |path: String, body: Value| {
        let uri = format!("/v1/properties/castle{path}");
        let headers = [("idempotency-key", uuid::Uuid::new_v4().to_string())];
        hub.send(
            "POST",
            &uri,
            &headers,
            Some("application/json"),
            Body::from(body.to_string()),
        )
        .unwrap()
        .unwrap()
    };
    let refused = |(status, j): (StatusCode, Value), field: &str| {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {j}");
        assert_eq!(j["error"]["details"]["field"], field, "{j}");
    };
    let reservation = json!({"number": "R-null"});
    refused(
        post(
            format!("/vouchers/{code}/redemptions"),
            json!({"amount": null, "reservation": reservation}),
        ),
        "amount",
    );
    refused(
        post(
            format!("/vouchers/{code}/holds"),
            json!({"amount": null, "reservation": reservation, "expires_at": "2027-02-01T00:00:00Z"}),
        ),
        "amount",
    );
    refused(
        post(format!("/holds/{hold}/capture"), json!({"amount": null})),
        "amount",
    );
    refused(
        post(
            format!("/vouchers/{code}/redemptions/{redemption}/reversal"),
            json!({"amount": null}),
        ),
        "amount",
    );
    // Money objects are exactly amount and currency.
    refused(
        post(
            format!("/vouchers/{code}/redemptions"),
            json!({"amount": {"amount": 100, "currency": "EUR", "fx_rate": 2}, "reservation": reservation}),
        ),
        "amount.fx_rate",
    );
    assert_eq!(balance(&hub), before, "nothing moved");
    // Cash tendered past the bound.
    let (status, j) = post(
        "/orders".into(),
        json!({"uuid": "cash-max", "items": [{"product_id": "tasting", "unit_id": "adult", "quantity": 1}],
               "payment": {"mode": "charge_now", "parts": [{"method": "cash", "amount": eur(2_500),
                           "tendered": eur(i64::MAX)}]}}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{j}");
    assert_eq!(j["error"]["code"], "invalid_payment", "{j}");
    // Legacy sale and redemption times in the future or before 1990.
    for (at, field) in [
        ("9999-12-31T00:00:00Z", "issued_at"),
        ("2100-01-01T00:00:00Z", "issued_at"),
        ("1969-12-31T00:00:00Z", "issued_at"),
    ] {
        let (status, j) = post(
            "/voucher-imports".into(),
            json!({"vouchers": [{"code": "OLD-FUTURE-1", "value": eur(5000), "issued_at": at}]}),
        );
        // A line that fails is reported in the import's answer.
        let failed = status.is_client_error() || j["lines"][0]["status"] == "failed";
        assert!(failed && j["imported"] != 1, "{at}: {status} {j}");
        assert!(j.to_string().contains(field), "{at}: {j}");
    }
    let (status, j) = post(
        "/voucher-imports".into(),
        json!({"vouchers": [{"code": "OLD-FUTURE-2", "value": eur(5000),
                             "redemptions": [{"amount": eur(100), "at": "3000-01-01T00:00:00Z"}]}]}),
    );
    let failed = status.is_client_error() || j["lines"][0]["status"] == "failed";
    assert!(
        failed && j.to_string().contains("redemptions.at"),
        "{status} {j}"
    );
    // A departure is reported when the guest leaves, of a stay since 2000.
    for (arrival, departure, field) in [
        ("2027-01-01", "9999-12-31", "departure"),
        ("2027-01-20", "2027-01-22", "departure"),
        ("1999-12-31", "2000-01-02", "arrival"),
    ] {
        refused(
            post(
                "/stays/R-far/departure".into(),
                json!({"email": "far@example.com", "arrival": arrival, "departure": departure,
                       "room_revenue": {"amount": 100, "currency": "EUR"}}),
            ),
            field,
        );
    }
    refused(
        post(
            "/stays/R-rich/departure".into(),
            json!({"email": "rich@example.com", "arrival": "2027-01-01", "departure": "2027-01-03",
                   "room_revenue": {"amount": i64::MAX, "currency": "EUR"}}),
        ),
        "room_revenue",
    );
    // Birth dates between 1900-01-01 and today.
    for bad in ["9999-12-31", "2999-01-01", "1899-12-31"] {
        refused(
            post(
                "/guests".into(),
                json!({"email": "born@example.com", "birth_date": bad}),
            ),
            "birth_date",
        );
    }
}

/// A control character (CR, LF, NUL, C0/C1, an ANSI escape, a line
/// separator, a bidirectional override) in a person's name is 400 naming
/// the field, on every route that takes one.
#[test]
fn control_characters_in_names_are_refused() {
    let hub = Hub::new();
    let code = hub.ids.code.clone();
    let strategy = (
        0usize..9,
        "[A-Za-z ]{0,6}",
        prop::sample::select(vec![
            "\r",
            "\n",
            "\r\n",
            "\u{0}",
            "\u{1b}[31m",
            "\u{7}",
            "\t",
            "\u{7f}",
            "\u{85}",
            "\u{9b}2J",
            "\u{2028}",
            "\u{202e}",
        ]),
        "[A-Za-z]{0,6}",
        any::<u32>(),
    );
    check_all(strategy, |(at, pre, ctl, post, n)| {
        let name = format!("{pre}{ctl}{post}");
        let member = |contact: Value| {
            json!({"uuid": format!("names-{n}"), "contact": contact,
                   "items": [{"product_id": "club", "unit_id": "member", "quantity": 1,
                              "members": [{"first_name": name, "email": "m@example.com"}]}],
                   "payment": {"mode": "pay_later", "parts": []}})
        };
        let (path, body, field) = match at {
            0 => (
                "/guests".to_owned(),
                json!({"email": "g@example.com", "first_name": name}),
                "first_name",
            ),
            1 => (
                "/guests".to_owned(),
                json!({"email": "g@example.com", "last_name": name}),
                "last_name",
            ),
            2 => (
                "/loyalty/enrolments".to_owned(),
                json!({"email": "l@example.com", "first_name": name}),
                "first_name",
            ),
            3 => (
                "/loyalty/enrolments".to_owned(),
                json!({"email": "l@example.com", "last_name": name}),
                "last_name",
            ),
            4 => (
                "/orders".to_owned(),
                json!({"uuid": format!("names-{n}"), "contact": {"email": "c@example.com", "first_name": name},
                       "items": [{"product_id": "tasting", "unit_id": "adult", "quantity": 1}],
                       "payment": {"mode": "pay_later", "parts": []}}),
                "contact.first_name",
            ),
            5 => (
                "/orders".to_owned(),
                member(json!({"last_name": "Ok"})),
                "members.first_name",
            ),
            6 => (
                "/vouchers".to_owned(),
                json!({"article_type": "value", "value": eur(5000), "buyer": {"name": name}}),
                "buyer.name",
            ),
            7 => (
                format!("/vouchers/{code}/redemptions"),
                json!({"amount": eur(1), "reservation": {"number": "R-n", "guest_name": name}}),
                "reservation.guest_name",
            ),
            _ => (
                "/orders".to_owned(),
                json!({"uuid": format!("names-{n}"), "contact": {"last_name": name},
                       "items": [{"product_id": "tasting", "unit_id": "adult", "quantity": 1}],
                       "payment": {"mode": "pay_later", "parts": []}}),
                "contact.last_name",
            ),
        };
        let uri = format!("/v1/properties/castle{path}");
        let headers = [("idempotency-key", format!("names-{n}-{at}"))];
        let (status, j) = hub
            .send(
                "POST",
                &uri,
                &headers,
                Some("application/json"),
                Body::from(body.to_string()),
            )?
            .expect("an answer");
        prop_assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{} {:?}: {}",
            path,
            name,
            j
        );
        prop_assert_eq!(
            j["error"]["details"]["field"].as_str(),
            Some(field),
            "{}",
            j
        );
        Ok(())
    });
}

// ---- the roster parser ------------------------------------------------------------------

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 1, 15).unwrap()
}

/// Reads a roster file whole; the counts must add up whatever it holds.
fn drain(kind: FileKind, bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let Ok(mut rows) = open(kind, Cursor::new(bytes), as_of()) else {
        return Ok(());
    };
    let n = rows.by_ref().count() as u64;
    let c = rows.counts();
    prop_assert_eq!(c.rows, n);
    prop_assert_eq!(c.rows, c.members + c.not_members + c.rejects);
    prop_assert!(rows.next().is_none());
    Ok(())
}

fn roster_text() -> impl Strategy<Value = Vec<u8>> {
    let header = prop::sample::select(vec![
        &b"Email,Club,JoinDate,QuitDate,ClubStatus,MemberID\r\n"[..],
        b"\xEF\xBB\xBFEmail;ClubDescr;SignupDate;Cancel Date\n",
        b"\xFF\xFEE\0m\0a\0i\0l\0\t\0C\0l\0u\0b\0\n\0",
        b"\xFE\xFF\0E\0m\0a\0i\0l\0|\0C\0l\0u\0b\0\n",
        b"EmailAddress|\"ClubDescr\"|Status|DOB\n",
        b"CustNo\tEmail\tClubStatus\tQuitDate\n",
        b"",
    ]);
    let cell = prop_oneof![
        3 => "[a-z]{1,8}@[a-z]{1,8}\\.[a-z]{2,3}",
        2 => hostile_date(),
        2 => prop::sample::select(vec!["Gold", "Active", "Cancelled", "Quit", "", "\"", "\"\"", "\r", "\n", ";", ",", "|", "\t"])
            .prop_map(str::to_owned),
        2 => hostile_text(),
    ];
    let row = prop::collection::vec(cell, 0..8).prop_flat_map(|cells| {
        prop::sample::select(vec![",", ";", "|", "\t"]).prop_map(move |d| {
            let mut line = cells.join(d);
            line.push_str("\r\n");
            line.into_bytes()
        })
    });
    (
        header,
        prop::collection::vec(row, 0..40),
        prop::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
    )
        .prop_map(|(h, rows, tail, cut)| {
            let mut b = h.to_vec();
            for r in rows {
                b.extend(r);
            }
            if cut {
                b.extend(tail);
            }
            b
        })
}

#[test]
fn roster_parser_takes_any_bytes() {
    let kinds = prop::sample::select(vec![
        FileKind::Delimited,
        FileKind::Spreadsheet(SpreadsheetKind::Xlsx),
        FileKind::Spreadsheet(SpreadsheetKind::Xls),
    ]);
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..8192),
        roster_text(),
        // A compound-file or zip signature, then garbage.
        prop::collection::vec(any::<u8>(), 0..4096).prop_map(|mut b| {
            let mut v = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1".to_vec();
            v.append(&mut b);
            v
        }),
        prop::collection::vec(any::<u8>(), 0..4096).prop_map(|mut b| {
            let mut v = b"PK\x03\x04".to_vec();
            v.append(&mut b);
            v
        }),
    ];
    check_all((kinds, bytes), |(kind, bytes)| drain(kind, bytes));
}

/// Valid workbooks with random cells, then with random bytes changed.
#[test]
fn spreadsheet_reader_takes_damaged_workbooks() {
    let cell = prop_oneof![
        "[a-z]{1,8}@[a-z]{1,8}\\.[a-z]{2,3}",
        hostile_text(),
        hostile_date(),
    ];
    let numeric = prop_oneof![
        any::<f64>().prop_map(|f| f.to_string()),
        prop::sample::select(vec![
            "45000.5", "-1", "1e400", "NaN", "inf", "", "2958466", "-693594"
        ])
        .prop_map(str::to_owned),
    ];
    let rows = prop::collection::vec((prop::collection::vec(cell, 0..5), numeric), 0..20);
    let damage = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6);
    check_all((rows, damage, any::<bool>()), |(rows, damage, cut)| {
        let mut book = xlsx(&rows);
        if damage.is_empty() && !cut {
            // Undamaged: it opens, and every data row is read.
            let mut read = open(
                FileKind::Spreadsheet(SpreadsheetKind::Xlsx),
                Cursor::new(book),
                as_of(),
            )
            .map_err(|e| TestCaseError::fail(format!("a valid workbook did not open: {e}")))?;
            let n = read.by_ref().count();
            prop_assert!(n <= rows.len(), "{} rows from {}", n, rows.len());
            return Ok(());
        }
        let len = book.len();
        for (at, byte) in &damage {
            book[at.index(len)] = *byte;
        }
        if cut {
            let at = damage.first().map_or(len / 2, |(i, _)| i.index(len));
            book.truncate(at);
        }
        drain(FileKind::Spreadsheet(SpreadsheetKind::Xlsx), book)
    });
}

/// The hostile workbooks of the roster tests are refused on open, with the
/// reason, before a reader allocates for what they declare (this process
/// would abort if one did).
#[test]
fn hostile_workbooks_are_refused_before_reading() {
    for (name, bytes, why) in tests::sheets::hostile() {
        match open(
            FileKind::Spreadsheet(SpreadsheetKind::Xlsx),
            Cursor::new(bytes),
            as_of(),
        ) {
            Err(FileError::TooLarge(reason)) => assert!(reason.contains(why), "{name}: {reason}"),
            Err(e) => panic!("{name}: {e}"),
            Ok(_) => panic!("{name}: opened"),
        }
    }
}

/// Random declared dimensions and cell positions anywhere in Excel's grid
/// (up to `XFD1048576`), some far beyond it: refused, read or unreadable,
/// never an allocation for the declared size.
#[test]
fn workbooks_declaring_any_size_are_bounded() {
    let at = (0u32..1_200_000, 0u32..20_000);
    let cells = prop::collection::vec(at.clone(), 0..6);
    let dimension = prop::option::of((at.clone(), at));
    check_all((dimension, cells), |(dimension, mut cells)| {
        cells.sort();
        let r = |(row, col): (u32, u32)| format!("{}{}", column(col as usize), row + 1);
        let mut rows =
            String::from(r#"<row r="1"><c r="A1" t="inlineStr"><is><t>Email</t></is></c></row>"#);
        for (row, col) in cells.iter().filter(|(row, _)| *row > 0) {
            rows.push_str(&format!(
                r#"<row r="{}"><c r="{}" t="inlineStr"><is><t>a@b.cd</t></is></c></row>"#,
                row + 1,
                r((*row, *col))
            ));
        }
        let dimension = dimension.map(|(a, b)| format!("{}:{}", r(a), r(b)));
        let book = tests::sheets::workbook(dimension.as_deref(), &rows);
        let beyond = |(row, col): (u32, u32)| {
            row >= domain::roster::limits::MAX_ROWS || col >= domain::roster::limits::MAX_COLUMNS
        };
        let refused = cells.iter().any(|c| c.0 > 0 && beyond(*c));
        match open(
            FileKind::Spreadsheet(SpreadsheetKind::Xlsx),
            Cursor::new(book.clone()),
            as_of(),
        ) {
            Ok(_) => prop_assert!(!refused, "opened with a cell beyond the limits"),
            Err(FileError::TooLarge(_) | FileError::Spreadsheet(_)) => {}
            Err(e) => return Err(TestCaseError::fail(format!("unexpected {e}"))),
        }
        drain(FileKind::Spreadsheet(SpreadsheetKind::Xlsx), book)
    });
}

fn members_xls() -> Vec<u8> {
    // The domain crate's fixture, found from the workspace root.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    std::fs::read(root.join("shared/domain/tests/fixtures/roster/members.xls")).unwrap()
}

/// An `.xls` whose DIMENSIONS record declares 4 billion rows, and whose
/// compound-file header claims huge tables: refused, not allocated for.
#[test]
fn xls_declaring_huge_sizes_is_refused() {
    let good = members_xls();
    // The sheet's DIMENSIONS record: type 0x0200, 14 bytes; rows end at 4..8.
    let at = good
        .windows(4)
        .position(|w| w == [0x00, 0x02, 0x0E, 0x00])
        .unwrap()
        + 4;
    let mut rows = good.clone();
    rows[at + 4..at + 8].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let mut header = good.clone();
    // Number of directory sectors, then of FAT sectors.
    header[40..44].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
    let mut fat = good.clone();
    fat[44..48].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
    let mut chain = good.clone();
    // The first DIFAT entry: a FAT sector far past the end.
    chain[76..80].copy_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
    for (name, bytes) in [
        ("rows", rows),
        ("header", header),
        ("fat", fat),
        ("chain", chain),
    ] {
        match open(
            FileKind::Spreadsheet(SpreadsheetKind::Xls),
            Cursor::new(bytes),
            as_of(),
        ) {
            Err(FileError::TooLarge(_) | FileError::Spreadsheet(_)) => {}
            Err(e) => panic!("{name}: {e}"),
            Ok(_) => panic!("{name}: opened"),
        }
    }
    assert!(
        open(
            FileKind::Spreadsheet(SpreadsheetKind::Xls),
            Cursor::new(good),
            as_of()
        )
        .is_ok()
    );
}

/// The `.xls` fixture with random bytes changed, anywhere (header, sector
/// tables, directory, records): no panic escapes, no allocation runs away.
#[test]
fn xls_reader_takes_damaged_workbooks() {
    let good = members_xls();
    let len = good.len();
    let damage = prop::collection::vec((0..len, any::<u8>()), 1..8);
    check_all(damage, |damage| {
        let mut book = good.clone();
        for (at, byte) in damage {
            book[at] = byte;
        }
        drain(FileKind::Spreadsheet(SpreadsheetKind::Xls), book)
    });
}

fn xml_escape(s: &str) -> String {
    s.chars()
        .filter(|c| matches!(c, '\t' | '\n' | '\r') || *c >= ' ')
        .filter(|c| !matches!(c, '\u{FFFE}' | '\u{FFFF}'))
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

fn column(i: usize) -> String {
    let mut n = i + 1;
    let mut s = Vec::new();
    while n > 0 {
        s.push(b'A' + ((n - 1) % 26) as u8);
        n = (n - 1) / 26;
    }
    s.reverse();
    String::from_utf8(s).unwrap()
}

/// A minimal `.xlsx`: header Email, Club, …, then the rows as inline
/// strings and one numeric cell each; stored (uncompressed) zip entries.
fn xlsx(rows: &[(Vec<String>, String)]) -> Vec<u8> {
    let mut sheet = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
    );
    let header = [
        "Email",
        "ClubDescr",
        "ClubStatus",
        "SignupDate",
        "QuitDate",
        "DOB",
    ];
    let mut all: Vec<(Vec<String>, Option<String>)> =
        vec![(header.iter().map(|h| h.to_string()).collect(), None)];
    all.extend(rows.iter().map(|(c, n)| (c.clone(), Some(n.clone()))));
    for (r, (cells, number)) in all.iter().enumerate() {
        sheet.push_str(&format!(r#"<row r="{}">"#, r + 1));
        for (c, v) in cells.iter().enumerate() {
            sheet.push_str(&format!(
                r#"<c r="{}{}" t="inlineStr"><is><t xml:space="preserve">{}</t></is></c>"#,
                column(c),
                r + 1,
                xml_escape(v)
            ));
        }
        if let Some(n) = number {
            sheet.push_str(&format!(
                r#"<c r="{}{}"><v>{}</v></c>"#,
                column(5),
                r + 1,
                xml_escape(n)
            ));
        }
        sheet.push_str("</row>");
    }
    sheet.push_str("</sheetData></worksheet>");
    let ns_rel = "http://schemas.openxmlformats.org/package/2006/relationships";
    let ns_doc = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    let files: Vec<(&str, String)> = vec![
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.to_owned(),
        ),
        (
            "_rels/.rels",
            format!(r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="{ns_rel}"><Relationship Id="rId1" Type="{ns_doc}/officeDocument" Target="xl/workbook.xml"/></Relationships>"#),
        ),
        (
            "xl/workbook.xml",
            format!(r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="{ns_doc}"><sheets><sheet name="Members" sheetId="1" r:id="rId1"/></sheets></workbook>"#),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            format!(r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="{ns_rel}"><Relationship Id="rId1" Type="{ns_doc}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#),
        ),
        ("xl/worksheets/sheet1.xml", sheet),
    ];
    let parts: Vec<tests::sheets::Part> = files
        .iter()
        .map(|(name, data)| tests::sheets::Part::stored(name, data.as_bytes()))
        .collect();
    tests::sheets::zip(&parts)
}

#[test]
fn the_workbook_builder_makes_readable_workbooks() {
    let rows = vec![
        (
            vec!["ana@example.com".to_owned(), "Gold".into(), "Active".into()],
            "45000".to_owned(),
        ),
        (
            vec![
                "bo@example.com".to_owned(),
                "Silver".into(),
                "Active".into(),
            ],
            "45001".to_owned(),
        ),
    ];
    let mut read = open(
        FileKind::Spreadsheet(SpreadsheetKind::Xlsx),
        Cursor::new(xlsx(&rows)),
        as_of(),
    )
    .unwrap();
    assert_eq!(read.by_ref().count(), 2);
    assert_eq!(read.counts().members, 2, "{:?}", read.counts());
}

// ---- value parsers -------------------------------------------------------------------------

#[test]
fn money_email_date_and_code_parsers_take_any_text() {
    let currencies = prop::sample::select(vec!["EUR", "JPY", "CLP", "USD", "ISK"]);
    let major = prop_oneof![
        hostile_text(),
        "-?[0-9]{0,22}(\\.[0-9]{0,6})?",
        hostile_number().prop_map(|v| v.to_string()),
    ];
    let strategy = (
        hostile_text(),
        hostile_currency(),
        (major, currencies),
        hostile_date(),
        hostile_code(),
        (any::<i64>(), any::<u32>()),
        hostile_value(),
    );
    check_all(
        strategy,
        |(text, currency, (major, cur), date, code, (amount, bp), value)| {
            // Email: parsed once, the normal form parses to itself.
            for raw in [&text, &code, &date] {
                if let Ok(e) = Email::parse(raw) {
                    let again = Email::parse(e.as_str());
                    prop_assert!(
                        again.as_ref().is_ok_and(|a| a == &e),
                        "{:?} → {:?} → {:?}",
                        raw,
                        e.as_str(),
                        again.map(|a| a.as_str().to_owned())
                    );
                    let _ = e.log_token();
                }
            }
            // Currency: three letters we know, round trip.
            for raw in [&currency, &text] {
                if let Ok(c) = Currency::parse(raw) {
                    prop_assert_eq!(c.as_str().len(), 3);
                    prop_assert_eq!(Currency::parse(c.as_str()).ok(), Some(c));
                }
            }
            // Money in major units: exact, round trip through its own text.
            let c = Currency::parse(cur).unwrap();
            if let Ok(m) = Money::parse_major(&major, c) {
                let exp = u32::from(c.exponent());
                let div = 10i128.pow(exp);
                let abs = i128::from(m.amount).abs();
                let text = if exp == 0 {
                    format!("{}", m.amount)
                } else {
                    format!(
                        "{}{}.{:0w$}",
                        if m.amount < 0 { "-" } else { "" },
                        abs / div,
                        abs % div,
                        w = exp as usize
                    )
                };
                prop_assert_eq!(
                    Money::parse_major(&text, c).ok(),
                    Some(m),
                    "{:?} → {}",
                    major,
                    text
                );
            }
            // Money from JSON, display and percentages of any amount.
            let _ = serde_json::from_value::<Money>(value.clone());
            let _ = serde_json::from_value::<Currency>(value);
            let m = Money::new(amount, c);
            let _ = m.to_string();
            let p = m.percent_of(bp);
            if bp <= 10_000 {
                prop_assert!(
                    p.amount.unsigned_abs() <= amount.unsigned_abs(),
                    "{}% of {} = {}",
                    bp,
                    amount,
                    p.amount
                );
            }
            // Dates: the strict form and the AMS cell forms.
            // For YYYY-MM-DD the two agree (chrono alone also takes
            // signed and five-digit years, which cells never carry).
            let strict = domain::time::parse_date("date", &date);
            let cell = domain::roster::dates::parse_date_cell(&date);
            let four_digit_year = date
                .trim()
                .split('-')
                .next()
                .is_some_and(|y| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()));
            if let Ok(d) = strict
                && four_digit_year
            {
                prop_assert_eq!(cell, Ok(Some(d)), "{:?}", date);
            }
            let _ = domain::roster::dates::parse_date_cell(&text);
            // Codes: a code found under one spelling is found under its printed form.
            if let Ok(c) = VoucherCode::lookup(&code) {
                let again = VoucherCode::lookup(c.as_str());
                prop_assert!(
                    again.as_ref().is_ok_and(|a| a.key() == c.key()),
                    "{:?} → {:?}",
                    code,
                    c.as_str()
                );
                let _ = c.masked();
            }
            let _ = VoucherCode::looks_mistyped(&code);
            let _ = VoucherCode::lookup(&text);
            // Ids and keys.
            let _ = domain::PropertyId::parse(&text);
            let _ = domain::property::parse_time_zone(&text);
            let _ = domain::idempotency::IdempotencyKey::parse(&text);
            let _ = domain::voucher::pickup::parse_cursor(&text);
            let _ = domain::roster::discount::PercentBp::parse(&text);
            Ok(())
        },
    );
}

/// Validity dates at the ends of the calendar, in zones with large and
/// negative offsets and DST at midnight.
#[test]
fn validity_at_the_ends_of_the_calendar() {
    let zones = prop::sample::select(vec![
        "Europe/Vienna",
        "America/Santiago",
        "Pacific/Kiritimati",
        "Pacific/Pago_Pago",
        "Australia/Lord_Howe",
        "Asia/Tehran",
        "America/St_Johns",
    ]);
    let days = prop_oneof![
        Just(NaiveDate::MIN),
        Just(NaiveDate::MAX),
        (NaiveDate::MIN.num_days_from_ce()..=NaiveDate::MAX.num_days_from_ce())
            .prop_map(|d| NaiveDate::from_num_days_from_ce_opt(d).unwrap()),
        (700_000i32..800_000).prop_map(|d| NaiveDate::from_num_days_from_ce_opt(d).unwrap()),
    ];
    let now = (0i64..7_258_118_400).prop_map(|s| Utc.timestamp_opt(s, 0).unwrap());
    check_all((zones, days, now), |(zone, day, now)| {
        let tz = domain::property::parse_time_zone(zone).unwrap();
        let end = domain::time::end_of_local_day(day, tz);
        let _ = domain::time::valid_through(day, tz, now);
        let today = domain::time::local_date(tz, now);
        if day < NaiveDate::MAX && day > NaiveDate::MIN {
            prop_assert!(
                end.naive_utc().date() >= day.pred_opt().unwrap(),
                "{} in {}: {}",
                day,
                zone,
                end
            );
        }
        prop_assert!(today.year() >= 1969);
        Ok(())
    });
}
