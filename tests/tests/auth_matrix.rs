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
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} routes checked");
}
