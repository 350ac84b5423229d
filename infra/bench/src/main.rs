//! `cargo run --release -p guesthub-bench -- [--rows N] [--runs R] [--ops N]
//! [--dynamo-rows N] [--cold-runs N] [--only CASE,…]`
//!
//! Generates its own AMS files, runs each case `--runs` times and prints a
//! table of medians (min–max) with the ratio against the peer measured in
//! the same run. Cases (names for `--only`):
//! - `parse`: roster parse + validate (vs Python `csv.DictReader` with the
//!   same checks);
//! - `sqlite-import`: roster import into SQLite (rows/s, store requests per
//!   row);
//! - `rss`: peak memory of `guesthub import` (needs the release binary);
//! - `router`: voucher status and redemption latency through the axum
//!   router on SQLite, and store round trips per voucher operation;
//! - `dynamo-import`: roster import into DynamoDB on a moto server the
//!   harness starts (vs a boto3 `batch_writer` importer on the same server);
//! - `cold-start`: spawn of the release `vouchers-api` binary to its first
//!   answered status request under a Runtime API emulator (vs a Python
//!   boto3 handler), and the binary's size.
//!
//! Python (peers and moto): `GUESTHUB_BENCH_PYTHON`, else `.venv-bench/`
//! (installed by `infra/bench/setup-python`), else `python3`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use domain::StoreError;
use domain::ports::PropertyStore;
use platform::Store;
use platform::store::items::{
    Item, ItemStore, Key, MAX_BATCH_GET_KEYS, MAX_BATCH_ITEMS, Page, Query, Table, TxError, Write,
};
use platform::store::sqlite::SqliteItems;

mod cold_start;
mod dynamo_import;
mod dynamo_latency;
mod first_import;
mod lambda_rss;
mod latency_proxy;
mod moto;
mod runtime_api;

/// Counts requests as DynamoDB would see them (a batch of n items is
/// ceil(n / 25) requests).
struct Counting {
    inner: Arc<dyn ItemStore>,
    requests: AtomicU64,
}

impl Counting {
    fn take(&self) -> u64 {
        self.requests.swap(0, Ordering::SeqCst)
    }
    fn add(&self, n: u64) {
        self.requests.fetch_add(n, Ordering::SeqCst);
    }
}

#[async_trait]
impl ItemStore for Counting {
    async fn create_tables(&self) -> Result<(), StoreError> {
        self.inner.create_tables().await
    }
    async fn get(
        &self,
        t: Table,
        pk: &str,
        sk: &str,
        now: i64,
    ) -> Result<Option<Item>, StoreError> {
        self.add(1);
        self.inner.get(t, pk, sk, now).await
    }
    async fn get_many(&self, keys: &[Key], now: i64) -> Result<Vec<Option<Item>>, StoreError> {
        self.add(keys.len().div_ceil(MAX_BATCH_GET_KEYS) as u64);
        self.inner.get_many(keys, now).await
    }
    async fn query(&self, q: &Query, now: i64) -> Result<Page, StoreError> {
        self.add(1);
        self.inner.query(q, now).await
    }
    async fn transact(&self, w: Vec<Write>, now: i64) -> Result<(), TxError> {
        self.add(1);
        self.inner.transact(w, now).await
    }
    async fn batch_put(&self, t: Table, items: Vec<Item>) -> Result<(), StoreError> {
        self.add(items.len().div_ceil(MAX_BATCH_ITEMS) as u64);
        self.inner.batch_put(t, items).await
    }
    async fn batch_delete(&self, t: Table, keys: Vec<(String, String)>) -> Result<(), StoreError> {
        self.add(keys.len().div_ceil(MAX_BATCH_ITEMS) as u64);
        self.inner.batch_delete(t, keys).await
    }
}

pub(crate) fn generate(path: &Path, rows: usize) -> std::io::Result<u64> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        f,
        "MemberID,Email,FirstName,LastName,Phone,ClubDescr,ClubStatus,JoinDate,QuitDate,WinePreference,Address1,City,State,Zip"
    )?;
    let tiers = ["Gold Club", "Silver Club", "Wine Club", "Platinum"];
    for i in 0..rows {
        let status = if i % 50 == 0 { "Cancelled" } else { "Active" };
        writeln!(
            f,
            "M{i:07},member{i}@example{}.com,First{i},Last{i},+1-555-{:04},{},{status},2021-{:02}-{:02},,Red,{i} Main Street,Napa,CA,9455{}",
            i % 97,
            i % 10_000,
            tiers[i % 4],
            1 + i % 12,
            1 + i % 28,
            i % 10
        )?;
    }
    f.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// The file of [`generate`] a day later, with about 1% of it changed: every
/// 300th member left, the one after it changed tier, and as many joined.
pub(crate) fn generate_changed(path: &Path, rows: usize) -> std::io::Result<u64> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        f,
        "MemberID,Email,FirstName,LastName,Phone,ClubDescr,ClubStatus,JoinDate,QuitDate,WinePreference,Address1,City,State,Zip"
    )?;
    let tiers = ["Gold Club", "Silver Club", "Wine Club", "Platinum"];
    let line = |f: &mut std::io::BufWriter<std::fs::File>, i: usize, who: &str, tier: &str| {
        let status = if i.is_multiple_of(50) {
            "Cancelled"
        } else {
            "Active"
        };
        writeln!(
            f,
            "M{i:07},{who}{i}@example{}.com,First{i},Last{i},+1-555-{:04},{tier},{status},2021-{:02}-{:02},,Red,{i} Main Street,Napa,CA,9455{}",
            i % 97,
            i % 10_000,
            1 + i % 12,
            1 + i % 28,
            i % 10
        )
    };
    for i in 0..rows {
        match i % 300 {
            0 => line(&mut f, i, "joined", tiers[i % 4])?,
            1 => line(&mut f, i, "member", tiers[(i + 1) % 4])?,
            _ => line(&mut f, i, "member", tiers[i % 4])?,
        }
    }
    f.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

pub(crate) struct Stat {
    median: f64,
    min: f64,
    max: f64,
}

pub(crate) fn stat(mut v: Vec<f64>) -> Stat {
    v.sort_by(|a, b| a.total_cmp(b));
    Stat {
        median: v[v.len() / 2],
        min: v[0],
        max: v[v.len() - 1],
    }
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

pub(crate) struct Row {
    case: String,
    ours: String,
    peer: String,
    ratio: String,
}

fn parse_rust(path: &Path) -> f64 {
    let started = Instant::now();
    let f = std::fs::File::open(path).unwrap();
    let as_of = chrono::Utc::now().date_naive();
    // What the import reads: the roster's own columns and the contact kept
    // for prefill, every row validated.
    let rows =
        domain::roster::open_delimited(std::io::BufReader::with_capacity(256 * 1024, f), as_of)
            .unwrap()
            .with_detail(domain::roster::Detail::Contact);
    let mut n = 0u64;
    for outcome in rows {
        if matches!(outcome, domain::roster::RowOutcome::Member(_)) {
            n += 1;
        }
    }
    assert!(n > 0);
    started.elapsed().as_secs_f64()
}

fn parse_python(python: &str, path: &Path) -> Option<f64> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/parse_roster.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(path)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

async fn import_sqlite(dir: &Path, file: &Path) -> (f64, u64) {
    let db = dir.join(format!("bench-{}.sqlite3", uuid::Uuid::new_v4().simple()));
    let result = import_into(Arc::new(SqliteItems::open(&db).unwrap()), file).await;
    let _ = std::fs::remove_file(&db);
    result
}

/// Imports `file` for a new property on `items` through the pipeline the
/// `ams-import` function and `guesthub import` use: seconds, and store
/// requests of the import alone.
pub(crate) async fn import_into(items: Arc<dyn ItemStore>, file: &Path) -> (f64, u64) {
    let counting = Arc::new(Counting {
        inner: items,
        requests: AtomicU64::new(0),
    });
    let store = Store::new(counting.clone());
    guesthub::admin::add_property(&store, "castle", "Castle", "America/Los_Angeles", "USD")
        .await
        .unwrap();
    let property = store
        .property(&domain::PropertyId::parse("castle").unwrap())
        .await
        .unwrap()
        .unwrap();
    counting.take();
    let source = domain::roster::import::ImportSource {
        key: "ams/castle/bench.csv".into(),
        etag: uuid::Uuid::new_v4().to_string(),
        sequencer: None,
        arrived_at: chrono::Utc::now(),
    };
    let input = ams_import::Input::Stream(Box::new(std::io::BufReader::with_capacity(
        256 * 1024,
        std::fs::File::open(file).unwrap(),
    )));
    let started = Instant::now();
    let req =
        ams_import::ImportRequest::new(property, source, input).expect("an ams/<property>/ key");
    let report = ams_import::import(&store, req).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(report.status, domain::roster::import::ImportStatus::Applied);
    (secs, counting.take())
}

/// Peak RSS of `guesthub import` of `file`, into a fresh store or, with
/// `before`, into one that already holds `before`'s roster (the import then
/// also compares the two rosters).
fn peak_rss_kb(binary: &Path, dir: &Path, before: Option<&Path>, file: &Path) -> Option<u64> {
    let data = dir.join(format!("rss-{}", uuid::Uuid::new_v4().simple()));
    let run = |args: &[&str]| {
        std::process::Command::new(binary)
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .ok()
    };
    run(&[
        "property",
        "add",
        "castle",
        "--name",
        "Castle",
        "--time-zone",
        "America/Los_Angeles",
        "--currency",
        "USD",
    ])?;
    if let Some(before) = before {
        run(&["import", before.to_str()?, "--property", "castle"])?;
    }
    let out = std::process::Command::new("/usr/bin/time")
        .arg("-v")
        .arg(binary)
        .arg("--data-dir")
        .arg(&data)
        .args(["import", file.to_str()?, "--property", "castle"])
        .output()
        .ok()?;
    let _ = std::fs::remove_dir_all(&data);
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find(|l| l.contains("Maximum resident set size"))?
        .rsplit(':')
        .next()?
        .trim()
        .parse()
        .ok()
}

pub(crate) async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    key: &str,
    idem: Option<&str>,
    body: Option<String>,
) -> (u16, String) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {key}"));
    if let Some(k) = idem {
        req = req.header("idempotency-key", k);
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(axum::body::Body::from(b)),
        None => req.body(axum::body::Body::empty()),
    }
    .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Status and redemption latency (µs) through the router, and requests per op.
async fn vouchers(dir: &Path, n: usize) -> (Vec<f64>, Vec<f64>, u64, u64) {
    let counting = Arc::new(Counting {
        inner: Arc::new(SqliteItems::open(dir.join("vouchers.sqlite3")).unwrap()),
        requests: AtomicU64::new(0),
    });
    // As in Lambda: callers' partners and properties are remembered.
    let store = Store::new(counting.clone()).with_caller_cache(std::time::Duration::from_secs(
        platform::config::DEFAULT_CALLER_CACHE_SECONDS,
    ));
    guesthub::admin::add_property(&store, "castle", "Castle", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let scopes: Vec<String> = ["vouchers:read", "vouchers:redeem", "vouchers:issue"]
        .map(String::from)
        .to_vec();
    let (_, key) = guesthub::admin::add_partner(&store, "PMS", &["castle".into()], &scopes)
        .await
        .unwrap();
    let app = guesthub::app::router(store.clone(), 64 * 1024);
    let body = serde_json::json!({"article_type": "value", "value": {"amount": 100_000_000, "currency": "EUR"}}).to_string();
    let (_, issued) = call(
        &app,
        "POST",
        "/v1/properties/castle/vouchers",
        &key,
        None,
        Some(body),
    )
    .await;
    let code = serde_json::from_str::<serde_json::Value>(&issued).unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let status_uri = format!("/v1/properties/castle/vouchers/{code}");
    let redeem_uri = format!("/v1/properties/castle/vouchers/{code}/redemptions");
    let redeem = serde_json::json!({"amount": {"amount": 100, "currency": "EUR"}, "reservation": {"number": "R-1"}}).to_string();
    let (mut status_us, mut redeem_us) = (Vec::with_capacity(n), Vec::with_capacity(n));
    counting.take();
    for _ in 0..n {
        let t = Instant::now();
        let (s, _) = call(&app, "GET", &status_uri, &key, None, None).await;
        status_us.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(s, 200);
    }
    let status_requests = counting.take() / n as u64;
    for i in 0..n {
        let k = format!("bench-{i}");
        let t = Instant::now();
        let (s, b) = call(
            &app,
            "POST",
            &redeem_uri,
            &key,
            Some(&k),
            Some(redeem.clone()),
        )
        .await;
        redeem_us.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(s, 201, "{b}");
    }
    let redeem_requests = counting.take() / n as u64;
    (status_us, redeem_us, status_requests, redeem_requests)
}

const CASES: [&str; 9] = [
    "parse",
    "sqlite-import",
    "rss",
    "first-import",
    "router",
    "dynamo-import",
    "dynamo-latency",
    "lambda-rss",
    "cold-start",
];

/// The cases that start a moto server.
const MOTO_CASES: [&str; 4] = [
    "dynamo-import",
    "dynamo-latency",
    "lambda-rss",
    "cold-start",
];

pub(crate) struct Options {
    rows: usize,
    runs: usize,
    ops: usize,
    dynamo_rows: usize,
    cold_runs: usize,
    /// The round trip the proxy in front of moto adds to every request.
    rtt_ms: u64,
    /// Shares of `BatchWriteItem` items left unprocessed and of requests
    /// throttled by that proxy in the faults run.
    unprocessed_share: f64,
    throttled_share: f64,
    /// Rows the `ams-import` function imports into DynamoDB on moto.
    lambda_dynamo_rows: usize,
    only: Vec<String>,
    python: String,
}

fn arg_text(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    arg_text(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The interpreter for peers and moto; absolute, as some peers run in
/// another working directory.
fn python() -> String {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-bench/bin/python");
    let chosen = match std::env::var("GUESTHUB_BENCH_PYTHON") {
        Ok(p) => p,
        Err(_) if venv.exists() => venv.display().to_string(),
        Err(_) => "python3".into(),
    };
    if !chosen.contains('/') {
        return chosen; // looked up on PATH
    }
    // `absolute`, not `canonicalize`: a venv's python is a symlink whose
    // target would not see the venv's packages.
    std::path::absolute(&chosen).map_or(chosen, |p| p.display().to_string())
}

impl Options {
    fn from_args() -> Self {
        let only: Vec<String> = match arg_text("--only") {
            Some(list) => list.split(',').map(|c| c.trim().to_owned()).collect(),
            None => CASES.iter().map(|c| c.to_string()).collect(),
        };
        if let Some(bad) = only.iter().find(|c| !CASES.contains(&c.as_str())) {
            eprintln!("unknown case {bad:?}; cases: {}", CASES.join(","));
            std::process::exit(2);
        }
        Self {
            rows: arg("--rows", 1_000_000),
            runs: arg("--runs", 3).max(1),
            ops: arg("--ops", 1000),
            dynamo_rows: arg("--dynamo-rows", 20_000).max(1),
            cold_runs: arg("--cold-runs", 10).max(1),
            rtt_ms: arg("--rtt-ms", 10),
            unprocessed_share: arg("--unprocessed-share", 0.1_f64).clamp(0.0, 0.9),
            throttled_share: arg("--throttled-share", 0.02_f64).clamp(0.0, 0.5),
            lambda_dynamo_rows: arg("--lambda-dynamo-rows", 100_000).max(1),
            only,
            python: python(),
        }
    }

    pub(crate) fn wants(&self, case: &str) -> bool {
        self.only.iter().any(|c| c == case)
    }
}

/// A binary of this workspace built with the same profile as the harness
/// (it sits next to it), else a release build in the target directory.
pub(crate) fn built_binary(name: &str) -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join(name)));
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    beside
        .into_iter()
        .chain([target.join("release").join(name)])
        .find(|p| p.exists())
}

/// "median unit (min–max)" with `prec` decimals.
pub(crate) fn spread(s: &Stat, unit: &str, prec: usize) -> String {
    format!(
        "{:.prec$} {unit} ({:.prec$}–{:.prec$})",
        s.median, s.min, s.max
    )
}

pub(crate) fn na_row(case: &str, why: &str) -> Row {
    Row {
        case: case.into(),
        ours: format!("n/a: {why}"),
        peer: "—".into(),
        ratio: "—".into(),
    }
}

/// Parse, SQLite import and peak RSS at a tenth of `--rows` and at `--rows`.
async fn roster_cases(opts: &Options, dir: &Path, table: &mut Vec<Row>) {
    let (python, runs) = (&opts.python, opts.runs);
    for n in [opts.rows / 10, opts.rows] {
        let file = dir.join(format!("ams_{n}.csv"));
        let bytes = generate(&file, n).unwrap();
        let mb = bytes as f64 / 1e6;
        if opts.wants("parse") {
            let ours = stat((0..runs).map(|_| mb / parse_rust(&file)).collect());
            let peer: Vec<f64> = (0..runs)
                .filter_map(|_| parse_python(python, &file))
                .map(|s| mb / s)
                .collect();
            let (peer_txt, ratio) = if peer.is_empty() {
                ("n/a".to_owned(), "n/a".to_owned())
            } else {
                let p = stat(peer);
                (
                    format!("{:.1} MB/s ({:.1}–{:.1})", p.median, p.min, p.max),
                    format!("{:.1}×", ours.median / p.median),
                )
            };
            table.push(Row {
                case: format!("roster parse+validate, {n} rows ({mb:.1} MB)"),
                ours: format!("{:.0} MB/s ({:.0}–{:.0})", ours.median, ours.min, ours.max),
                peer: peer_txt,
                ratio,
            });
        }
        if opts.wants("sqlite-import") {
            let mut secs = Vec::new();
            let mut requests = 0;
            for _ in 0..runs {
                let (s, r) = import_sqlite(dir, &file).await;
                secs.push(n as f64 / s);
                requests = r;
            }
            let s = stat(secs);
            table.push(Row {
                case: format!("roster import into SQLite, {n} rows"),
                ours: format!(
                    "{:.0} rows/s ({:.0}–{:.0}); {:.3} store requests/row",
                    s.median,
                    s.min,
                    s.max,
                    requests as f64 / n as f64
                ),
                peer: "—".into(),
                ratio: "—".into(),
            });
        }
        if opts.wants("rss") {
            let rss = built_binary("guesthub").and_then(|b| peak_rss_kb(&b, dir, None, &file));
            table.push(Row {
                case: format!("peak RSS of `guesthub import`, {n} rows"),
                ours: rss.map_or("n/a (build target/release/guesthub)".into(), |kb| {
                    format!("{:.1} MB", kb as f64 / 1024.0)
                }),
                peer: "—".into(),
                ratio: "—".into(),
            });
            // The next day's file over that roster: the import also counts
            // and records what changed.
            let changed = dir.join(format!("ams_{n}_changed.csv"));
            generate_changed(&changed, n).unwrap();
            let rss =
                built_binary("guesthub").and_then(|b| peak_rss_kb(&b, dir, Some(&file), &changed));
            let _ = std::fs::remove_file(&changed);
            table.push(Row {
                case: format!("peak RSS of `guesthub import`, {n} rows, 1% changed since the last"),
                ours: rss.map_or("n/a (build target/release/guesthub)".into(), |kb| {
                    format!("{:.1} MB", kb as f64 / 1024.0)
                }),
                peer: "—".into(),
                ratio: "—".into(),
            });
        }
        let _ = std::fs::remove_file(&file);
    }
}

async fn router_cases(opts: &Options, dir: &Path, table: &mut Vec<Row>) {
    let ops = opts.ops;
    let (status, redeem, status_req, redeem_req) = vouchers(dir, ops).await;
    table.push(Row {
        case: format!("voucher status via router, SQLite ({ops}×)"),
        ours: format!(
            "p50 {:.0} µs, p99 {:.0} µs; {status_req} store requests",
            percentile(status.clone(), 0.5),
            percentile(status, 0.99)
        ),
        peer: "—".into(),
        ratio: "—".into(),
    });
    table.push(Row {
        case: format!("voucher redemption via router, SQLite ({ops}×)"),
        ours: format!(
            "p50 {:.0} µs, p99 {:.0} µs; {redeem_req} store requests",
            percentile(redeem.clone(), 0.5),
            percentile(redeem, 0.99)
        ),
        peer: "—".into(),
        ratio: "—".into(),
    });
}

/// The cases that need moto share one server, started only for them.
async fn moto_cases(opts: &Options, dir: &Path, table: &mut Vec<Row>) {
    let moto = match moto::Moto::start(&opts.python, &dir.join("moto.log")) {
        Ok(m) => m,
        Err(e) => {
            table.push(na_row("DynamoDB cases (moto)", &e));
            return;
        }
    };
    if opts.wants("dynamo-import") {
        table.push(dynamo_import::case(opts, &moto, dir).await);
    }
    if opts.wants("dynamo-latency") {
        table.extend(dynamo_latency::cases(opts, &moto, dir).await);
    }
    if opts.wants("lambda-rss") {
        table.extend(lambda_rss::cases(opts, &moto, dir).await);
    }
    if opts.wants("cold-start") {
        table.extend(cold_start::cases(opts, &moto, dir).await);
    }
}

#[tokio::main]
async fn main() {
    let opts = Options::from_args();
    let dir = tempfile::tempdir().unwrap();
    let mut table: Vec<Row> = Vec::new();
    if ["parse", "sqlite-import", "rss"]
        .iter()
        .any(|c| opts.wants(c))
    {
        roster_cases(&opts, dir.path(), &mut table).await;
    }
    if opts.wants("first-import") {
        table.push(first_import::case(&opts, dir.path()));
    }
    if opts.wants("router") {
        router_cases(&opts, dir.path(), &mut table).await;
    }
    if MOTO_CASES.iter().any(|c| opts.wants(c)) {
        moto_cases(&opts, dir.path(), &mut table).await;
    }
    println!("| case | GuestHub (median, min–max) | peer | ratio |\n|---|---|---|---|");
    for r in table {
        println!("| {} | {} | {} | {} |", r.case, r.ours, r.peer, r.ratio);
    }
}
