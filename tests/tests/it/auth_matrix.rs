//! Every partner route in the OpenAPI document × (no key, malformed key,
//! unknown key, another property's key, a missing property, a key without
//! the route's scope) → 401 / 404 / 403 as specified, before any query,
//! body or idempotency handling, and never another property's data.

use http::StatusCode;
use serde_json::Value;
use tests::{Backend, call, fresh_store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_auth_failures_the_same_way() {
    let t = fresh_store(Backend::Sqlite).await;
    let s = &t.store;
    guesthub::admin::add_property(s, "castle", "Castle", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    guesthub::admin::add_property(s, "abbey", "Abbey", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let every: Vec<String> = domain::Scope::ALL
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    let (_, abbey_key) = guesthub::admin::add_partner(s, "Abbey PMS", &["abbey".into()], &every)
        .await
        .unwrap();
    let (_, castle_all) = guesthub::admin::add_partner(s, "Castle all", &["castle".into()], &every)
        .await
        .unwrap();
    // `admin` is a scope no partner route accepts.
    let (_, castle_admin_only) =
        guesthub::admin::add_partner(s, "Castle admin", &["castle".into()], &["admin".into()])
            .await
            .unwrap();
    // One key per scope, each holding only that scope.
    let mut single = Vec::new();
    for scope in domain::Scope::ALL {
        let (_, key) = guesthub::admin::add_partner(
            s,
            scope.as_str(),
            &["castle".into()],
            &[scope.as_str().to_owned()],
        )
        .await
        .unwrap();
        single.push((scope.as_str(), key));
    }
    let mut declared: std::collections::BTreeMap<(String, String), &str> = ROUTE_SCOPES
        .iter()
        .map(|(method, path, scope)| ((method.to_string(), path.to_string()), *scope))
        .collect();
    let app = guesthub::app::router(s.clone(), 64 * 1024);
    let doc: Value = serde_json::from_str(&guesthub::app::openapi_json()).unwrap();
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/properties/{property}") {
            continue;
        }
        for method in ops.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let concrete = |property: &str| {
                path.replace("{property}", property)
                    .replace("{email}", "someone@example.com")
                    .split('/')
                    .map(|seg| {
                        if seg.starts_with('{') {
                            "x1".to_owned()
                        } else {
                            seg.to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("/")
            };
            let body = (method != "GET" && method != "DELETE").then(|| "{}".to_owned());
            let expect = |key: Option<&str>, property: &str, status: StatusCode, code: &str| {
                let (app, body, uri, method) = (
                    app.clone(),
                    body.clone(),
                    concrete(property),
                    method.clone(),
                );
                let key = key.map(str::to_owned);
                let code = code.to_owned();
                async move {
                    let r = call(&app, &method, &uri, key.as_deref(), &[], body).await;
                    assert_eq!(
                        (r.status, r.code()),
                        (status, code.clone()),
                        "{method} {uri}: {}",
                        r.body
                    );
                }
            };
            expect(None, "castle", StatusCode::UNAUTHORIZED, "unauthorized").await;
            expect(
                Some("not-a-key"),
                "castle",
                StatusCode::UNAUTHORIZED,
                "unauthorized",
            )
            .await;
            expect(
                Some("ghk_0011223344556677_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                "castle",
                StatusCode::UNAUTHORIZED,
                "unauthorized",
            )
            .await;
            expect(
                Some(&abbey_key),
                "castle",
                StatusCode::NOT_FOUND,
                "property_not_found",
            )
            .await;
            expect(
                Some(&castle_all),
                "ghost",
                StatusCode::NOT_FOUND,
                "property_not_found",
            )
            .await;
            expect(
                Some(&castle_admin_only),
                "castle",
                StatusCode::FORBIDDEN,
                "missing_scope",
            )
            .await;
            // Exactly the route's own scope gets past the scope check.
            let mut accepted = Vec::new();
            for (scope, key) in &single {
                let r = call(
                    &app,
                    &method,
                    &concrete("castle"),
                    Some(key),
                    &[],
                    body.clone(),
                )
                .await;
                if (r.status, r.code().as_str()) != (StatusCode::FORBIDDEN, "missing_scope") {
                    accepted.push(*scope);
                }
            }
            let expected = declared
                .remove(&(method.clone(), path.clone()))
                .unwrap_or_else(|| panic!("{method} {path}: no scope listed in ROUTE_SCOPES"));
            assert_eq!(
                accepted,
                [expected],
                "{method} {path}: the scopes it accepts"
            );
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} routes checked");
    assert!(declared.is_empty(), "listed but not served: {declared:?}");
}

/// Every partner route and the one scope it needs: the table of record the
/// routers' `scoped(…)` declarations are checked against.
const ROUTE_SCOPES: &[(&str, &str, &str)] = &[
    (
        "GET",
        "/v1/properties/{property}/article-mapping",
        "vouchers:pickup",
    ),
    (
        "PUT",
        "/v1/properties/{property}/article-mapping",
        "vouchers:pickup",
    ),
    (
        "GET",
        "/v1/properties/{property}/club-members/{email}",
        "club:read",
    ),
    (
        "GET",
        "/v1/properties/{property}/club-settings",
        "club:admin",
    ),
    (
        "PUT",
        "/v1/properties/{property}/club-settings",
        "club:admin",
    ),
    ("GET", "/v1/properties/{property}/club-members", "club:read"),
    ("GET", "/v1/properties/{property}/club-tiers", "club:read"),
    (
        "PUT",
        "/v1/properties/{property}/club-tiers/{tier}",
        "club:admin",
    ),
    ("GET", "/v1/properties/{property}/crm/runs", "guests"),
    (
        "POST",
        "/v1/properties/{property}/webhook-subscriptions",
        "events",
    ),
    (
        "GET",
        "/v1/properties/{property}/webhook-subscriptions",
        "events",
    ),
    (
        "GET",
        "/v1/properties/{property}/webhook-subscriptions/{id}",
        "events",
    ),
    (
        "DELETE",
        "/v1/properties/{property}/webhook-subscriptions/{id}",
        "events",
    ),
    (
        "POST",
        "/v1/properties/{property}/webhook-subscriptions/{id}/rotate-secret",
        "events",
    ),
    (
        "GET",
        "/v1/properties/{property}/webhook-subscriptions/{id}/deliveries",
        "events",
    ),
    (
        "POST",
        "/v1/properties/{property}/webhook-subscriptions/{id}/deliveries/{delivery_id}/retry",
        "events",
    ),
    ("POST", "/v1/properties/{property}/erasures", "guests"),
    ("GET", "/v1/properties/{property}/erasures/{id}", "guests"),
    ("GET", "/v1/properties/{property}/guests", "guests"),
    ("POST", "/v1/properties/{property}/guests", "guests"),
    ("GET", "/v1/properties/{property}/guests/arrivals", "guests"),
    (
        "GET",
        "/v1/properties/{property}/guests/departures",
        "guests",
    ),
    ("GET", "/v1/properties/{property}/guests/{id}", "guests"),
    ("DELETE", "/v1/properties/{property}/guests/{id}", "guests"),
    ("PATCH", "/v1/properties/{property}/guests/{id}", "guests"),
    (
        "GET",
        "/v1/properties/{property}/guests/{id}/notes",
        "guests",
    ),
    (
        "POST",
        "/v1/properties/{property}/guests/{id}/notes",
        "guests",
    ),
    (
        "POST",
        "/v1/properties/{property}/holds/{hold_id}/capture",
        "vouchers:redeem",
    ),
    (
        "POST",
        "/v1/properties/{property}/holds/{hold_id}/release",
        "vouchers:redeem",
    ),
    (
        "POST",
        "/v1/properties/{property}/loyalty/enrolments",
        "loyalty",
    ),
    ("GET", "/v1/properties/{property}/loyalty/export", "loyalty"),
    (
        "GET",
        "/v1/properties/{property}/loyalty/members",
        "loyalty",
    ),
    ("GET", "/v1/properties/{property}/memberships", "checkout"),
    (
        "GET",
        "/v1/properties/{property}/memberships/{reference}",
        "checkout",
    ),
    (
        "GET",
        "/v1/properties/{property}/memberships/{reference}/bookings",
        "checkout",
    ),
    ("POST", "/v1/properties/{property}/orders", "checkout"),
    ("GET", "/v1/properties/{property}/orders/{id}", "checkout"),
    (
        "POST",
        "/v1/properties/{property}/orders/{id}/cancel",
        "checkout",
    ),
    (
        "POST",
        "/v1/properties/{property}/orders/{id}/payments",
        "checkout",
    ),
    ("GET", "/v1/properties/{property}/products", "checkout"),
    (
        "GET",
        "/v1/properties/{property}/products/{product_id}",
        "checkout",
    ),
    (
        "PUT",
        "/v1/properties/{property}/products/{product_id}",
        "checkout",
    ),
    (
        "GET",
        "/v1/properties/{property}/roster-imports",
        "club:read",
    ),
    (
        "POST",
        "/v1/properties/{property}/roster-imports",
        "club:admin",
    ),
    (
        "POST",
        "/v1/properties/{property}/roster-imports/upload-url",
        "club:admin",
    ),
    (
        "POST",
        "/v1/properties/{property}/roster-imports/{id}/approve",
        "club:admin",
    ),
    (
        "GET",
        "/v1/properties/{property}/roster-imports/{id}/changes",
        "club:read",
    ),
    (
        "PUT",
        "/v1/properties/{property}/screening/watchlist",
        "guests",
    ),
    (
        "GET",
        "/v1/properties/{property}/settlement",
        "vouchers:read",
    ),
    (
        "POST",
        "/v1/properties/{property}/stays/{reservation}/departure",
        "loyalty",
    ),
    (
        "DELETE",
        "/v1/properties/{property}/stays/{reservation}/departure",
        "loyalty",
    ),
    (
        "POST",
        "/v1/properties/{property}/voucher-imports",
        "vouchers:issue",
    ),
    (
        "GET",
        "/v1/properties/{property}/voucher-orders",
        "vouchers:pickup",
    ),
    (
        "POST",
        "/v1/properties/{property}/voucher-orders/ack",
        "vouchers:pickup",
    ),
    (
        "POST",
        "/v1/properties/{property}/voucher-write-offs",
        "vouchers:issue",
    ),
    ("GET", "/v1/properties/{property}/vouchers", "vouchers:read"),
    (
        "POST",
        "/v1/properties/{property}/vouchers",
        "vouchers:issue",
    ),
    (
        "GET",
        "/v1/properties/{property}/vouchers/{code}",
        "vouchers:read",
    ),
    (
        "GET",
        "/v1/properties/{property}/vouchers/{code}/activities",
        "vouchers:read",
    ),
    (
        "POST",
        "/v1/properties/{property}/vouchers/{code}/block",
        "vouchers:issue",
    ),
    (
        "POST",
        "/v1/properties/{property}/vouchers/{code}/cancel",
        "vouchers:issue",
    ),
    (
        "POST",
        "/v1/properties/{property}/vouchers/{code}/holds",
        "vouchers:redeem",
    ),
    (
        "POST",
        "/v1/properties/{property}/vouchers/{code}/loads",
        "vouchers:issue",
    ),
    (
        "POST",
        "/v1/properties/{property}/vouchers/{code}/redemptions",
        "vouchers:redeem",
    ),
    (
        "POST",
        "/v1/properties/{property}/vouchers/{code}/redemptions/{redemption_id}/reversal",
        "vouchers:redeem",
    ),
    (
        "POST",
        "/v1/properties/{property}/vouchers/{code}/unblock",
        "vouchers:issue",
    ),
];
