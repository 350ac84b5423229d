//! Helpers for the end-to-end tests: fresh stores on both backends, an app
//! with a property and partners, and HTTP calls through the router.
//!
//! DynamoDB runs against `moto_server`, which `infra/test` starts and names
//! in `GUESTHUB_TEST_MOTO`. Without it the DynamoDB half of a test fails
//! loudly rather than being skipped.

pub mod cloudbeds_standin;
pub mod ftp;
pub mod sheets;

use std::sync::Arc;
use std::sync::Mutex;

use axum::Router;
use axum::body::Body;
use chrono::{DateTime, Utc};
use domain::ports::Clock;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use platform::Store;
use platform::store::ItemStore;
use platform::store::dynamo::DynamoItems;
use platform::store::items::{Item, Page, Query, Table, TxError, Write};
use platform::store::sqlite::SqliteItems;
use serde_json::Value;

/// Which backend a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Dynamodb,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Sqlite, Backend::Dynamodb];
}

/// A clock tests can move.
#[derive(Debug)]
pub struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(Utc::now())))
    }

    pub fn at(t: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self(Mutex::new(t)))
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap();
        *t += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap() = to;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// moto applies a transaction by deep-copying the tables it touches, writing
/// item by item and restoring the copy when a condition fails — without a
/// lock, so under concurrency a request can read a half-applied transaction
/// or have its committed writes undone by another request's rollback. Real
/// DynamoDB transactions are atomic. This gate gives moto that atomicity
/// back for the tests: no read overlaps a write (reads still overlap each
/// other, and the application's read-decide-write races are untouched).
pub struct MotoGate {
    inner: Arc<dyn ItemStore>,
    gate: tokio::sync::RwLock<()>,
}

impl MotoGate {
    pub fn new(inner: Arc<dyn ItemStore>) -> Self {
        Self {
            inner,
            gate: tokio::sync::RwLock::new(()),
        }
    }
}

#[async_trait::async_trait]
impl ItemStore for MotoGate {
    async fn create_tables(&self) -> Result<(), domain::StoreError> {
        self.inner.create_tables().await
    }
    async fn get(
        &self,
        table: Table,
        pk: &str,
        sk: &str,
        now: i64,
    ) -> Result<Option<Item>, domain::StoreError> {
        let _g = self.gate.read().await;
        self.inner.get(table, pk, sk, now).await
    }
    async fn get_many(
        &self,
        keys: &[platform::store::Key],
        now: i64,
    ) -> Result<Vec<Option<Item>>, domain::StoreError> {
        let _g = self.gate.read().await;
        self.inner.get_many(keys, now).await
    }
    async fn query(&self, q: &Query, now: i64) -> Result<Page, domain::StoreError> {
        let _g = self.gate.read().await;
        self.inner.query(q, now).await
    }
    async fn transact(&self, writes: Vec<Write>, now: i64) -> Result<(), TxError> {
        let _g = self.gate.write().await;
        self.inner.transact(writes, now).await
    }
    async fn batch_put(&self, table: Table, items: Vec<Item>) -> Result<(), domain::StoreError> {
        let _g = self.gate.write().await;
        self.inner.batch_put(table, items).await
    }
    async fn batch_delete(
        &self,
        table: Table,
        keys: Vec<(String, String)>,
    ) -> Result<(), domain::StoreError> {
        let _g = self.gate.write().await;
        self.inner.batch_delete(table, keys).await
    }
}

/// A fresh, empty store. Keeps its temporary folder alive.
pub struct TestStore {
    pub backend: Backend,
    pub items: Arc<dyn ItemStore>,
    pub store: Store,
    pub clock: Arc<TestClock>,
    _dir: Option<tempfile::TempDir>,
}

/// The moto endpoint `infra/test` started.
pub fn moto_endpoint() -> String {
    std::env::var("GUESTHUB_TEST_MOTO").unwrap_or_else(|_| {
        panic!(
            "GUESTHUB_TEST_MOTO is not set: DynamoDB tests need moto_server. \
             Run the tests with ./infra/test, which starts it."
        )
    })
}

/// A moto_server of a test's own, on a free loopback port, stopped when
/// dropped. moto copies every table it holds on each transaction, so a
/// test that commits thousands of them runs on its own server rather than
/// on the suite's, which holds every other test's tables.
pub struct PrivateMoto {
    child: std::process::Child,
    pub endpoint: String,
}

impl PrivateMoto {
    /// Starts `moto_server` from the test Python's environment (the one
    /// `infra/test` installed, named by `GUESTHUB_TEST_PYTHON`).
    pub async fn start() -> Self {
        let python = std::env::var("GUESTHUB_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let server = std::path::Path::new(&python).with_file_name("moto_server");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", server.display()));
        let endpoint = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self { child, endpoint };
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("moto_server did not listen on {endpoint}");
    }
}

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh DynamoDB store on the moto at `endpoint`.
pub async fn fresh_dynamodb_store_at(endpoint: &str) -> TestStore {
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let items = DynamoItems::connect(&prefix, Some(endpoint)).await;
    items.create_tables().await.unwrap();
    let items: Arc<dyn ItemStore> = Arc::new(MotoGate::new(Arc::new(items)));
    let clock = TestClock::new();
    let store = Store::with_clock(items.clone(), clock.clone());
    TestStore {
        backend: Backend::Dynamodb,
        items,
        store,
        clock,
        _dir: None,
    }
}

/// A fresh backend: a new SQLite file, or new DynamoDB tables on moto
/// under a unique prefix.
pub async fn fresh_items(backend: Backend) -> (Arc<dyn ItemStore>, Option<tempfile::TempDir>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let items = SqliteItems::open(dir.path().join("store.sqlite3")).unwrap();
            (Arc::new(items), Some(dir))
        }
        Backend::Dynamodb => {
            let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
            let items = DynamoItems::connect(&prefix, Some(&moto_endpoint())).await;
            items.create_tables().await.unwrap();
            (Arc::new(MotoGate::new(Arc::new(items))), None)
        }
    }
}

pub async fn fresh_store(backend: Backend) -> TestStore {
    let (items, dir) = fresh_items(backend).await;
    let clock = TestClock::new();
    let store = Store::with_clock(items.clone(), clock.clone());
    TestStore {
        backend,
        items,
        store,
        clock,
        _dir: dir,
    }
}

/// Adds a partner for `properties` with comma-separated `scopes`; returns
/// its API key.
pub async fn partner_key(store: &Store, name: &str, properties: &[&str], scopes: &str) -> String {
    let properties: Vec<String> = properties.iter().map(|p| p.to_string()).collect();
    let scopes: Vec<String> = scopes.split(',').map(str::to_owned).collect();
    guesthub::admin::add_partner(store, name, &properties, &scopes)
        .await
        .unwrap()
        .1
}

/// Adds a sandbox partner (`ghk_test_…`) for `properties` with
/// comma-separated `scopes`; returns its key.
pub async fn sandbox_key(store: &Store, name: &str, properties: &[&str], scopes: &str) -> String {
    let properties: Vec<String> = properties.iter().map(|p| p.to_string()).collect();
    let scopes: Vec<String> = scopes.split(',').map(str::to_owned).collect();
    guesthub::admin::add_partner_in_mode(store, name, &properties, &scopes, true)
        .await
        .unwrap()
        .1
}

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The error code of an error reply.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Sends one request through the router.
pub async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Reply {
    use tower::ServiceExt;
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    for (h, v) in headers {
        req = req.header(*h, *v);
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b)),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Sends one partner request: its key, an optional `Idempotency-Key` and
/// an optional JSON body.
pub async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    key: &str,
    idem: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let headers: Vec<(&str, &str)> = idem.map(|k| ("idempotency-key", k)).into_iter().collect();
    call(
        app,
        method,
        uri,
        Some(key),
        &headers,
        body.map(|b| b.to_string()),
    )
    .await
}

/// Runs an async test body once per backend, naming the backend on failure.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident => $body:ident;)*) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$body($crate::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn dynamodb() {
                    super::$body($crate::Backend::Dynamodb).await;
                }
            }
        )*
    };
}
