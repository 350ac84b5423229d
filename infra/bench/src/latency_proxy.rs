//! A loopback HTTP proxy in front of moto that makes it answer like a
//! DynamoDB endpoint across a network: every request waits a round trip
//! before it is forwarded, a share of `BatchWriteItem` items is answered as
//! `UnprocessedItems` (and not written), and a share of data requests is
//! refused with `ProvisionedThroughputExceededException`.
//!
//! moto on loopback answers in its own CPU time with no network between, so
//! keeping several batches in flight shows nothing there; through this proxy
//! it does, as it would against AWS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use rand::Rng;
use serde_json::{Map, Value};

/// How the proxy bends the traffic.
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    /// Waited before each request is forwarded (the network's round trip).
    pub round_trip: Duration,
    /// Share of each `BatchWriteItem`'s items left unprocessed (0.0–1.0).
    pub unprocessed: f64,
    /// Share of data requests refused as throttled (0.0–1.0).
    pub throttled: f64,
}

/// What the proxy did, for the report.
#[derive(Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub unprocessed_items: AtomicU64,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    faults: Faults,
    counts: Arc<Counts>,
}

pub struct Proxy {
    pub endpoint: String,
    pub counts: Arc<Counts>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Proxy {
    /// Listens on a free 127.0.0.1 port and forwards to `upstream`.
    pub async fn start(upstream: &str, faults: Faults) -> Self {
        let counts = Arc::new(Counts::default());
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap(),
            faults,
            counts: counts.clone(),
        });
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(forward).with_state(shared);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Proxy {
            endpoint: format!("http://{addr}"),
            counts,
            server,
        }
    }
}

/// The DynamoDB operation a request names (`X-Amz-Target: DynamoDB_20120810.<Op>`).
fn operation(headers: &HeaderMap) -> &str {
    headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("")
}

/// Table management is left alone: the faults are about the data path.
fn is_data_request(op: &str) -> bool {
    !matches!(
        op,
        "" | "CreateTable"
            | "DescribeTable"
            | "DeleteTable"
            | "ListTables"
            | "UpdateTimeToLive"
            | "DescribeTimeToLive"
    )
}

fn dynamo_answer(status: StatusCode, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string())
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// Splits a `BatchWriteItem` body into what is forwarded and what is held
/// back as unprocessed, by the configured share.
fn hold_back(body: &[u8], share: f64) -> Option<(Value, Map<String, Value>, u64)> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let tables = v.get_mut("RequestItems")?.as_object_mut()?;
    let mut held = Map::new();
    let mut n = 0;
    let mut rng = rand::rng();
    for (table, requests) in tables.iter_mut() {
        let list = requests.as_array_mut()?;
        let (keep, back): (Vec<Value>, Vec<Value>) = std::mem::take(list)
            .into_iter()
            .partition(|_| !rng.random_bool(share));
        n += back.len() as u64;
        *list = keep;
        if !back.is_empty() {
            held.insert(table.clone(), Value::Array(back));
        }
    }
    tables.retain(|_, r| r.as_array().is_some_and(|a| !a.is_empty()));
    Some((v, held, n))
}

/// Headers about one hop's framing: each side sets its own.
fn is_framing(name: &http::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "content-length" | "transfer-encoding" | "connection" | "keep-alive"
    )
}

async fn forward(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    s.counts.requests.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(s.faults.round_trip).await;

    let op = operation(&parts.headers).to_owned();
    if is_data_request(&op)
        && s.faults.throttled > 0.0
        && rand::rng().random_bool(s.faults.throttled)
    {
        s.counts.throttled.fetch_add(1, Ordering::Relaxed);
        return dynamo_answer(
            StatusCode::BAD_REQUEST,
            serde_json::json!({
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "The level of configured provisioned throughput for the table was exceeded.",
            }),
        );
    }

    let mut send = body.clone();
    let mut held = Map::new();
    if op == "BatchWriteItem"
        && s.faults.unprocessed > 0.0
        && let Some((rest, back, n)) = hold_back(&body, s.faults.unprocessed)
    {
        s.counts.unprocessed_items.fetch_add(n, Ordering::Relaxed);
        held = back;
        let nothing_left = rest["RequestItems"]
            .as_object()
            .is_none_or(|t| t.is_empty());
        if nothing_left {
            return dynamo_answer(
                StatusCode::OK,
                serde_json::json!({"UnprocessedItems": held}),
            );
        }
        send = Bytes::from(rest.to_string());
    }

    let uri = format!(
        "{}{}",
        s.upstream,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut out = s.client.request(parts.method, uri).body(send);
    for (name, value) in &parts.headers {
        // The body may have changed: reqwest sets the length itself.
        if name != http::header::HOST && !is_framing(name) {
            out = out.header(name, value);
        }
    }
    let answer = match out.send().await {
        Ok(a) => a,
        Err(e) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(e.to_string()))
                .unwrap();
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    let bytes = if held.is_empty() || !status.is_success() {
        bytes
    } else {
        let mut v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| serde_json::json!({}));
        let unprocessed = v
            .as_object_mut()
            .unwrap()
            .entry("UnprocessedItems")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(u) = unprocessed.as_object_mut() {
            for (table, items) in held {
                let list = u.entry(table).or_insert_with(|| Value::Array(Vec::new()));
                if let (Some(l), Value::Array(mut more)) = (list.as_array_mut(), items) {
                    l.append(&mut more);
                }
            }
        }
        Bytes::from(v.to_string())
    };
    let mut resp = Response::builder().status(status);
    for (name, value) in &headers {
        // The checksum and length describe moto's body, not the one sent on.
        if !is_framing(name) && name.as_str() != "x-amz-crc32" {
            resp = resp.header(name, value);
        }
    }
    resp.body(Body::from(bytes)).unwrap()
}
