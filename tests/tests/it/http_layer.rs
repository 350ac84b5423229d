//! The shared HTTP layer on both stores: auth (401/404/403 in that order),
//! idempotency through a route, body limits, malformed JSON, the error shape.

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use domain::Scope;
use http::{HeaderMap, StatusCode};
use platform::Store;
use platform::http::{ApiError, ApiJson, Caller, Idempotent, Outcome, RequiredScope};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tests::{Backend, both_stores, call, fresh_store};

#[derive(Deserialize)]
struct Echo {
    amount: i64,
    note: Option<String>,
}

#[derive(Clone)]
struct S {
    store: Store,
    runs: Arc<AtomicU32>,
}

impl axum::extract::FromRef<S> for Store {
    fn from_ref(s: &S) -> Store {
        s.store.clone()
    }
}

/// A route shaped like every mutating route: auth, scope (declared where it
/// is registered), JSON, idempotency.
async fn echo(
    State(s): State<S>,
    caller: Caller,
    headers: HeaderMap,
    body: ApiJson<Echo>,
) -> Result<axum::response::Response, ApiError> {
    let path = format!("/v1/properties/{}/echo", caller.property.id);
    let runs = s.runs.clone();
    Idempotent::new(&s.store, &caller, "echo", &path, &body.canonical)
        .required()
        .run(&headers, |_lease| async move {
            let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
            if body.value.amount < 0 {
                return Err(ApiError::rule("negative", "amount must not be negative"));
            }
            if body.value.note.as_deref() == Some("boom") {
                return Err(ApiError::unavailable("injected"));
            }
            Ok(Outcome::json(
                StatusCode::CREATED,
                &json!({"run": n, "amount": body.value.amount, "id": uuid::Uuid::new_v4()}),
            ))
        })
        .await
}

struct App {
    router: Router,
    key_a: String,
    key_readonly: String,
    runs: Arc<AtomicU32>,
    _t: tests::TestStore,
}

async fn unscoped(State(s): State<S>, _caller: Caller) -> &'static str {
    s.runs.fetch_add(1, Ordering::SeqCst);
    "ran"
}

async fn app(b: Backend) -> App {
    let t = fresh_store(b).await;
    let s = &t.store;
    guesthub::admin::add_property(s, "castle", "Castle Winery", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    guesthub::admin::add_property(s, "abbey", "Abbey Hotel", "Europe/Berlin", "EUR")
        .await
        .unwrap();
    let (_, key_a) =
        guesthub::admin::add_partner(s, "ASA", &["castle".into()], &["vouchers:redeem".into()])
            .await
            .unwrap();
    let (_, key_readonly) =
        guesthub::admin::add_partner(s, "Reader", &["castle".into()], &["vouchers:read".into()])
            .await
            .unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let state = S {
        store: s.clone(),
        runs: runs.clone(),
    };
    let router = platform::http::serve_layers(
        Router::new()
            .route(
                "/v1/properties/{property}/echo",
                post(echo).layer(axum::Extension(RequiredScope(Scope::VouchersRedeem))),
            )
            // A partner route registered without its scope.
            .route("/v1/properties/{property}/unscoped", post(unscoped))
            .with_state(state),
        1024,
    );
    App {
        router,
        key_a,
        key_readonly,
        runs,
        _t: t,
    }
}

const URI: &str = "/v1/properties/castle/echo";

async fn auth_order(b: Backend) {
    let a = app(b).await;
    let body = || Some(r#"{"amount": 5}"#.to_owned());
    let idem = [("idempotency-key", "k-auth")];
    // No key, malformed key, unknown key, right id with wrong secret → 401.
    let r = call(&a.router, "POST", URI, None, &idem, body()).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    for bad in [
        "nonsense",
        "ghk_0011223344556677_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let r = call(&a.router, "POST", URI, Some(bad), &idem, body()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let (id, _) = platform::auth::split_key(&a.key_a).unwrap();
    let id_part = format!("ghk_{id}");
    let forged = format!("{id_part}_{}", "B".repeat(43));
    assert_eq!(
        call(&a.router, "POST", URI, Some(&forged), &idem, body())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // Another property (existing or not) → 404, the same answer.
    for other in ["abbey", "ghost", "Bad%20Id"] {
        let r = call(
            &a.router,
            "POST",
            &format!("/v1/properties/{other}/echo"),
            Some(&a.key_a),
            &idem,
            body(),
        )
        .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::NOT_FOUND, "property_not_found"),
            "{other}"
        );
    }
    // Missing scope → 403.
    let r = call(&a.router, "POST", URI, Some(&a.key_readonly), &idem, body()).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::FORBIDDEN, "missing_scope")
    );
    // And the right key works.
    assert_eq!(
        call(&a.router, "POST", URI, Some(&a.key_a), &idem, body())
            .await
            .status,
        StatusCode::CREATED
    );
}

async fn idempotent_route(b: Backend) {
    let a = app(b).await;
    let k = Some(a.key_a.as_str());
    let first = call(
        &a.router,
        "POST",
        URI,
        k,
        &[("idempotency-key", "k1")],
        Some(r#"{"amount": 5, "note": "x"}"#.into()),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    // Same JSON, other spacing and key order → byte-identical replay, op not re-run.
    let again = call(
        &a.router,
        "POST",
        URI,
        k,
        &[("idempotency-key", "k1")],
        Some(r#"{ "note":"x","amount":5 }"#.into()),
    )
    .await;
    assert_eq!(
        (again.status, &again.body),
        (StatusCode::CREATED, &first.body)
    );
    assert_eq!(again.headers["idempotency-replayed"], "true");
    assert_eq!(a.runs.load(Ordering::SeqCst), 1);
    // Same key, other body → 422.
    let reused = call(
        &a.router,
        "POST",
        URI,
        k,
        &[("idempotency-key", "k1")],
        Some(r#"{"amount": 6}"#.into()),
    )
    .await;
    assert_eq!(
        (reused.status, reused.code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );
    // No key on a route that needs one → 400.
    let none = call(
        &a.router,
        "POST",
        URI,
        k,
        &[],
        Some(r#"{"amount": 5}"#.into()),
    )
    .await;
    assert_eq!(
        (none.status, none.code().as_str()),
        (StatusCode::BAD_REQUEST, "idempotency_key_required")
    );
    // A rule violation is stored and replayed too.
    let neg = call(
        &a.router,
        "POST",
        URI,
        k,
        &[("idempotency-key", "k2")],
        Some(r#"{"amount": -1}"#.into()),
    )
    .await;
    let neg2 = call(
        &a.router,
        "POST",
        URI,
        k,
        &[("idempotency-key", "k2")],
        Some(r#"{"amount": -1}"#.into()),
    )
    .await;
    assert_eq!(
        (neg.status, neg2.status),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::UNPROCESSABLE_ENTITY
        )
    );
    assert_eq!(neg.body, neg2.body);
    // A 503 releases the key: the retry runs again and can succeed.
    let runs_before = a.runs.load(Ordering::SeqCst);
    let failed = call(
        &a.router,
        "POST",
        URI,
        k,
        &[("idempotency-key", "k3")],
        Some(r#"{"amount": 1, "note": "boom"}"#.into()),
    )
    .await;
    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        !failed.body.contains("injected"),
        "no internal text leaks: {}",
        failed.body
    );
    let retried = call(
        &a.router,
        "POST",
        URI,
        k,
        &[("idempotency-key", "k3")],
        Some(r#"{"amount": 1, "note": "boom"}"#.into()),
    )
    .await;
    assert_eq!(retried.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.runs.load(Ordering::SeqCst), runs_before + 2);
}

async fn bad_bodies(b: Backend) {
    let a = app(b).await;
    let k = Some(a.key_a.as_str());
    let h = [("idempotency-key", "kb")];
    let r = call(&a.router, "POST", URI, k, &h, Some("{\"amount\": ".into())).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "malformed_json")
    );
    let r = call(
        &a.router,
        "POST",
        URI,
        k,
        &h,
        Some(r#"{"amount": "five"}"#.into()),
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_field")
    );
    assert_eq!(r.json()["error"]["details"]["field"], "amount");
    let big = format!(r#"{{"amount": 1, "note": "{}"}}"#, "x".repeat(2000));
    let r = call(&a.router, "POST", URI, k, &h, Some(big)).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );
    let r = call(&a.router, "GET", "/nowhere", k, &[], None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "route_not_found")
    );
    assert!(!r.headers["x-request-id"].is_empty());
}

async fn concurrent_same_key(b: Backend) {
    let a = app(b).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let router = a.router.clone();
            let key = a.key_a.clone();
            tokio::spawn(async move {
                call(
                    &router,
                    "POST",
                    URI,
                    Some(&key),
                    &[("idempotency-key", "same")],
                    Some(r#"{"amount": 3}"#.into()),
                )
                .await
            })
        })
        .collect();
    let replies: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let created: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    assert!(
        replies
            .iter()
            .all(|r| r.status == StatusCode::CREATED || r.code() == "idempotency_key_in_flight")
    );
    assert!(
        created.windows(2).all(|w| w[0].body == w[1].body),
        "every success is the same answer"
    );
    assert_eq!(a.runs.load(Ordering::SeqCst), 1, "the operation ran once");
}

async fn rotation_and_disabling(b: Backend) {
    let a = app(b).await;
    let store = &a._t.store;
    let body = || Some(r#"{"amount": 5}"#.to_owned());
    let partners = domain::ports::PartnerStore::partners(store).await.unwrap();
    let asa = partners
        .iter()
        .find(|p| p.name == "ASA")
        .unwrap()
        .id
        .0
        .clone();
    let (_, new_key) = guesthub::admin::rotate_partner_key(store, &asa)
        .await
        .unwrap();
    let old = call(
        &a.router,
        "POST",
        URI,
        Some(&a.key_a),
        &[("idempotency-key", "r1")],
        body(),
    )
    .await;
    assert_eq!(
        old.status,
        StatusCode::UNAUTHORIZED,
        "the old key stops working at once"
    );
    let new = call(
        &a.router,
        "POST",
        URI,
        Some(&new_key),
        &[("idempotency-key", "r1")],
        body(),
    )
    .await;
    assert_eq!(new.status, StatusCode::CREATED);
    guesthub::admin::set_partner_disabled(store, &asa, true)
        .await
        .unwrap();
    let off = call(
        &a.router,
        "POST",
        URI,
        Some(&new_key),
        &[("idempotency-key", "r2")],
        body(),
    )
    .await;
    assert_eq!(off.status, StatusCode::UNAUTHORIZED);
    guesthub::admin::set_partner_disabled(store, &asa, false)
        .await
        .unwrap();
    let on = call(
        &a.router,
        "POST",
        URI,
        Some(&new_key),
        &[("idempotency-key", "r2")],
        body(),
    )
    .await;
    assert_eq!(on.status, StatusCode::CREATED);
    assert!(
        guesthub::admin::rotate_partner_key(store, "no-such-partner")
            .await
            .is_err()
    );
}

/// A route that declares no scope is refused for every key, not open to all.
async fn undeclared_scope(b: Backend) {
    let a = app(b).await;
    let uri = "/v1/properties/castle/unscoped";
    for key in [&a.key_a, &a.key_readonly] {
        let r = call(&a.router, "POST", uri, Some(key), &[], None).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
            "{}",
            r.body
        );
    }
    // Authentication still comes first.
    let r = call(&a.router, "POST", uri, None, &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.runs.load(Ordering::SeqCst), 0, "the handler never ran");
}

both_stores! {
    undeclared => undeclared_scope;
    rotation => rotation_and_disabling;
    auth => auth_order;
    idempotency => idempotent_route;
    bodies => bad_bodies;
    same_key_race => concurrent_same_key;
}

// ---- the served hub: what a socket sees ---------------------------------------------

/// The JSON body rules of the one extractor every route uses: a key given
/// twice is refused with its path, an unknown field is named.
#[tokio::test]
async fn duplicate_keys_and_unknown_fields() {
    let a = app(Backend::Sqlite).await;
    let k = Some(a.key_a.as_str());
    let h = [("idempotency-key", "kd")];
    let r = call(
        &a.router,
        "POST",
        URI,
        k,
        &h,
        Some(r#"{"amount": 1, "amount": 1000}"#.into()),
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "duplicate_field")
    );
    assert_eq!(r.json()["error"]["details"]["field"], "amount");
    let r = call(
        &a.router,
        "POST",
        URI,
        k,
        &h,
        Some(r#"{"amount": 1, "nots": "typo"}"#.into()),
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_field")
    );
    assert_eq!(r.json()["error"]["details"]["field"], "nots");
    assert_eq!(a.runs.load(Ordering::SeqCst), 0, "nothing ran");
}

/// `X-Request-Id` is kept only when it is a short token; anything else
/// (long, with an email in it) is replaced by a generated id.
#[tokio::test]
async fn request_ids_are_short_tokens() {
    let a = app(Backend::Sqlite).await;
    let sent = |id: String| {
        let router = a.router.clone();
        async move {
            call(
                &router,
                "GET",
                "/nowhere",
                None,
                &[("x-request-id", &id)],
                None,
            )
            .await
            .headers["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(sent("req-42.a_b".into()).await, "req-42.a_b");
    let long = format!("ana@example.com{}", "x".repeat(7000));
    for bad in [long, "ana@example.com".into(), "a b".into(), "x".repeat(65)] {
        let echoed = sent(bad.clone()).await;
        assert_ne!(echoed, bad);
        assert!(
            uuid::Uuid::parse_str(&echoed).is_ok(),
            "a generated id: {echoed}"
        );
    }
}

/// 405 answers carry the JSON error (and the Allow header); a path that is
/// not UTF-8 once decoded is 400 `invalid_path`, not "no such property".
#[tokio::test]
async fn method_not_allowed_and_non_utf8_paths() {
    let a = app(Backend::Sqlite).await;
    let k = Some(a.key_a.as_str());
    let r = call(&a.router, "GET", URI, k, &[], None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.code(), "method_not_allowed");
    assert_eq!(r.headers["allow"], "POST");
    assert_eq!(r.headers["content-type"], "application/json");
    for path in [
        "/v1/properties/%FF/echo",
        "/v1/properties/castle%C3%28/echo",
        "/v1/properties/castle/echo/%E2%82",
    ] {
        let r = call(
            &a.router,
            "POST",
            path,
            k,
            &[("idempotency-key", "ku")],
            Some(r#"{"amount": 1}"#.into()),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.body);
        assert_eq!(r.code(), "invalid_path");
    }
}

/// A hub served on a real socket with a short header timeout.
struct Served {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
    _t: tests::TestStore,
}

async fn served(limits: guesthub::server::Limits) -> Served {
    let t = fresh_store(Backend::Sqlite).await;
    guesthub::admin::add_property(&t.store, "castle", "Castle", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = guesthub::app::router(t.store.clone(), 64 * 1024);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(guesthub::server::serve(listener, router, limits, async {
        let _ = stopped.await;
    }));
    Served {
        addr,
        stop: Some(stop),
        done,
        _t: t,
    }
}

/// Reads one response head (through the blank line) and its body by
/// Content-Length; `None` when the server closed the connection first.
async fn read_response(s: &mut tokio::net::TcpStream) -> Option<(String, String)> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
    Some((head, body))
}

/// 300 clients that open a connection and send half a request head are
/// cut off after the header timeout, and the hub still answers.
#[tokio::test]
async fn half_open_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hub = served(guesthub::server::Limits {
        header_read_timeout: std::time::Duration::from_millis(300),
        max_connections: 100,
    })
    .await;
    let mut conns = Vec::new();
    for _ in 0..300 {
        let mut s = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: hub\r\nX-Slow: ")
            .await
            .unwrap();
        conns.push(s);
    }
    let closed = futures::future::join_all(conns.into_iter().map(|mut s| async move {
        let mut buf = [0u8; 512];
        // EOF or a reset, within seconds: never an open connection.
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(20), s.read(&mut buf)).await,
            Ok(Ok(_) | Err(_))
        )
    }))
    .await;
    assert!(
        closed.iter().all(|c| *c),
        "every half-open connection closed"
    );
    // A well-behaved client is served, keep-alive included.
    let mut s = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    for _ in 0..2 {
        s.write_all(b"GET /health HTTP/1.1\r\nHost: hub\r\n\r\n")
            .await
            .unwrap();
        let (head, body) = read_response(&mut s).await.expect("an answer");
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(!head.contains("connection: close"), "{head}");
        assert_eq!(body, r#"{"status":"ok"}"#);
    }
    drop(s);
    let mut hub = hub;
    hub.stop.take().unwrap().send(()).unwrap();
    hub.done.await.unwrap().unwrap();
}

/// An answer sent before the request body was read (401 here) says
/// `Connection: close`, so the client does not send its next request on a
/// connection the server is closing; a small body that came with the
/// request is read and dropped instead, and the connection kept.
#[tokio::test]
async fn early_answers_close_the_connection_and_say_so() {
    use tokio::io::AsyncWriteExt;
    let hub = served(guesthub::server::Limits::default()).await;
    let mut s = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    // Headers only: the 40 KB body is still to come when the 401 is sent.
    s.write_all(
        b"POST /v1/properties/castle/vouchers HTTP/1.1\r\nHost: hub\r\n\
          Content-Type: application/json\r\nContent-Length: 40000\r\n\r\n",
    )
    .await
    .unwrap();
    let (head, body) = read_response(&mut s).await.expect("an answer");
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(body.contains("\"unauthorized\""), "{body}");
    // The same for a 404 of an unknown route with a body.
    let mut s = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    s.write_all(b"POST /nowhere HTTP/1.1\r\nHost: hub\r\nContent-Length: 40000\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_response(&mut s).await.expect("an answer");
    assert!(head.starts_with("http/1.1 404"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    // A small body that came along: read, and the connection stays open.
    let mut s = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    for _ in 0..2 {
        let body = r#"{"email":"a@example.com"}"#;
        let req = format!(
            "POST /v1/properties/castle/guests HTTP/1.1\r\nHost: hub\r\n\
             Authorization: Bearer nope\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let (head, _) = read_response(&mut s).await.expect("an answer");
        assert!(head.starts_with("http/1.1 401"), "{head}");
        assert!(!head.contains("connection: close"), "{head}");
    }
}

/// Every route that writes documents the 409 it can answer (a conflict
/// under concurrent requests, or an Idempotency-Key still in flight).
#[test]
fn every_writing_route_documents_its_409() {
    let doc: serde_json::Value = serde_json::from_str(&guesthub::app::openapi_json()).unwrap();
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["post", "put", "patch", "delete"] {
            if let Some(op) = item.get(method)
                && op["responses"].get("409").is_none()
            {
                missing.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    assert!(missing.is_empty(), "no 409 documented: {missing:?}");
}
