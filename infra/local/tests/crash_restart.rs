//! Process kills between commit and response, with the real binary.
//!
//! `guesthub serve` runs on a SQLite data dir while eight clients move money
//! on a set of vouchers and gift cards — partial and whole redemptions,
//! reversals, gift-card loads, holds, captures, releases — each request
//! under its own `Idempotency-Key`. A killer SIGKILLs the server at random
//! moments of traffic and starts it again on the same data dir and port.
//! A request that got no answer (refused, reset, cut off mid-body) is sent
//! again with the same key and the same bytes until an answer arrives.
//! Voucher changes take no idempotency lock (their answer commits with the
//! money), so a killed attempt leaves nothing that blocks its key; should a
//! `409 idempotency_key_in_flight` come anyway, the client parks that
//! request, goes on with other work and asks again later. The summary
//! counts them.
//!
//! Then, from the API alone (status and activities routes):
//! - every key answered 2xx has exactly one ledger activity, every key
//!   answered 4xx none, and no activity lacks an answered key;
//! - every key sent once more answers with the status and the bytes of its
//!   first answer, marked as a replay;
//! - per voucher, `initial + loads − redeemed + reversed − captured` =
//!   balance = the ledger's sum ≥ 0, each activity's `balance_after` is the
//!   running sum, and `held` is what the open holds block;
//! - every operation ended with an answer.
//!
//! The choices are seeded (`GUESTHUB_SEED`; the seed is printed);
//! `GUESTHUB_LONG=1` kills more often and runs more operations.
//! `cargo test -p guesthub --test crash_restart -- --nocapture` prints the
//! summary.

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PROPERTY: &str = "castle";
const CLIENTS: usize = 8;
const VALUE_VOUCHERS: usize = 10;
const GIFT_CARDS: usize = 10;
/// An operation without a final answer this long after it began is lost.
const OP_DEADLINE: Duration = Duration::from_secs(300);
/// A restarted server that does not answer within this is a failure.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Per HTTP request; a timeout counts as "no answer" and is retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

fn long_run() -> bool {
    std::env::var("GUESTHUB_LONG").is_ok_and(|v| v == "1")
}

/// (kills, operations) the run makes at least.
fn sizes() -> (u64, u64) {
    if long_run() { (60, 6_000) } else { (12, 600) }
}

// ---- seeded choices -------------------------------------------------------------

/// SplitMix64: small, seedable, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with `percent` % probability.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn seed() -> u64 {
    std::env::var("GUESTHUB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            t.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
        })
}

// ---- the server process ---------------------------------------------------------------

fn guesthub(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_guesthub"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("GUESTHUB_DATA_DIR")
        .output()
        .expect("guesthub runs");
    assert!(
        out.status.success(),
        "guesthub {args:?}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A free port below the usual ephemeral range (32768–60999): while the
/// server is down, a client's connect could otherwise pick the server's
/// port as its own source port and connect to itself, holding the port.
fn free_port(rng: &mut Rng) -> u16 {
    for _ in 0..1000 {
        let port = rng.range(20_000, 32_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

/// The one `guesthub serve` process; killed when dropped, so a failing test
/// leaves nothing running.
struct Hub {
    data_dir: PathBuf,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
    starts: u64,
}

impl Hub {
    fn start(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("server log");
        let child = Command::new(env!("CARGO_BIN_EXE_guesthub"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args([
                "serve",
                "--addr",
                &format!("127.0.0.1:{}", self.port),
                "--crm-sync-interval",
                "0",
                "--loyalty-export-interval",
                "0",
            ])
            .env_remove("GUESTHUB_DATA_DIR")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("guesthub serve starts");
        self.child = Some(child);
        self.starts += 1;
    }

    /// SIGKILL: no shutdown hook runs, requests in flight are cut.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---- operations ---------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Issue,
    Redeem,
    Reverse,
    Load,
    Hold,
    Capture,
    Release,
}

/// One logical request: every attempt sends the same key and bytes.
#[derive(Debug, Clone)]
struct Op {
    kind: Kind,
    key: String,
    auth: String,
    path: String,
    body: Option<String>,
    /// Index of the voucher it acts on.
    voucher: usize,
    /// A load's amount, unique in the run, so its ledger entry is found.
    load: i64,
}

/// An HTTP answer as received.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    body: String,
    replayed: bool,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn error_code(&self) -> Option<String> {
        self.json()["error"]["code"].as_str().map(str::to_owned)
    }

    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// An operation with its first final answer.
#[derive(Debug, Clone)]
struct Done {
    op: Op,
    answer: Answer,
}

/// An operation on its way to a final answer.
struct Pending {
    op: Op,
    began: Instant,
    /// A kill cut at least one of its attempts.
    cut: bool,
}

#[derive(Debug, Clone)]
struct VoucherRef {
    code: String,
    gift_card: bool,
    initial: i64,
}

#[derive(Debug, Clone)]
struct RedemptionRef {
    voucher: usize,
    id: String,
    amount: i64,
}

#[derive(Debug, Clone)]
struct HoldRef {
    voucher: usize,
    id: String,
    held: i64,
    open: bool,
}

/// What the clients learnt from 2xx answers, to aim further operations.
#[derive(Default)]
struct Model {
    vouchers: Vec<VoucherRef>,
    redemptions: Vec<RedemptionRef>,
    holds: Vec<HoldRef>,
}

#[derive(Default)]
struct Stats {
    kills: AtomicU64,
    operations: AtomicU64,
    requests: AtomicU64,
    /// Requests sent again after getting no answer.
    resent: AtomicU64,
    /// Operations with at least one attempt cut off.
    cut: AtomicU64,
    /// Cut operations whose final answer was a replay: the kill fell
    /// between the commit and the answer reaching the client.
    cut_then_replayed: AtomicU64,
    /// `409 idempotency_key_in_flight` answers (none expected: voucher
    /// changes take no lock).
    in_flight: AtomicU64,
    server_errors: AtomicU64,
    replays_checked: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

fn eur(minor: i64) -> Value {
    json!({"amount": minor, "currency": "EUR"})
}

fn money(j: &Value, field: &str) -> Option<i64> {
    j.get(field)?.get("amount")?.as_i64()
}

fn short(s: &str) -> &str {
    match s.char_indices().nth(300) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

struct World {
    base: String,
    http: reqwest::Client,
    /// No pooled connections: a probe never lands on a dead socket.
    probe: reqwest::Client,
    office: String,
    pms: [String; 2],
    hub: Mutex<Hub>,
    model: Mutex<Model>,
    done: Mutex<Vec<Done>>,
    violations: Mutex<Vec<String>>,
    stop: AtomicBool,
    loads: AtomicU64,
    stats: Stats,
}

enum Reply {
    Final(Answer),
    InFlight,
}

impl World {
    fn violation(&self, what: String) {
        let mut v = self.violations.lock().unwrap();
        if v.len() < 10_000 {
            v.push(what);
        }
    }

    /// Waits until the (re)started server answers on its port, starting it
    /// again if it exited (its port briefly unavailable).
    async fn wait_ready(&self) {
        let began = Instant::now();
        loop {
            let up = self
                .probe
                .get(format!("{}/health", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return;
            }
            {
                let mut hub = self.hub.lock().unwrap();
                if let Some(status) = hub.exited() {
                    assert!(
                        hub.starts < 50,
                        "guesthub keeps exiting at start ({status}); its log:\n{}",
                        hub.log_tail()
                    );
                    hub.start();
                }
                assert!(
                    began.elapsed() < READY_TIMEOUT,
                    "guesthub did not answer within {READY_TIMEOUT:?} of a restart; its log:\n{}",
                    hub.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// One attempt; `Err` when no complete answer arrived.
    async fn send(&self, op: &Op) -> Result<Answer, reqwest::Error> {
        bump(&self.stats.requests);
        let mut req = self
            .http
            .post(format!("{}{}", self.base, op.path))
            .bearer_auth(&op.auth)
            .header("idempotency-key", &op.key);
        if let Some(b) = &op.body {
            req = req
                .header("content-type", "application/json")
                .body(b.clone());
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let replayed = resp
            .headers()
            .get("idempotency-replayed")
            .is_some_and(|v| v == "true");
        let body = resp.text().await?;
        Ok(Answer {
            status,
            body,
            replayed,
        })
    }

    /// Sends until an answer: no answer is resent at once (the server is
    /// being restarted), as are 5xx and 429; `None` once the deadline passed.
    async fn settle(&self, p: &mut Pending) -> Option<Reply> {
        loop {
            if p.began.elapsed() > OP_DEADLINE {
                return None;
            }
            let a = match self.send(&p.op).await {
                Ok(a) => a,
                Err(_) => {
                    if !p.cut {
                        p.cut = true;
                        bump(&self.stats.cut);
                    }
                    bump(&self.stats.resent);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            let code = a.error_code();
            if a.status >= 500 {
                bump(&self.stats.server_errors);
                if a.status != 503 || code.as_deref() != Some("temporarily_unavailable") {
                    self.violation(format!(
                        "{:?} {}: {} {}",
                        p.op.kind,
                        p.op.key,
                        a.status,
                        short(&a.body)
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            if a.status == 429 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            if a.status == 409 && code.as_deref() == Some("idempotency_key_in_flight") {
                bump(&self.stats.in_flight);
                return Some(Reply::InFlight);
            }
            return Some(Reply::Final(a));
        }
    }

    /// Takes one operation as far as it goes now: answered, or parked
    /// behind a killed attempt's lock.
    async fn attempt(&self, mut p: Pending, parked: &mut Vec<(Instant, Pending)>) {
        match self.settle(&mut p).await {
            None => self.violation(format!(
                "{:?} {} got no final answer in {OP_DEADLINE:?}",
                p.op.kind, p.op.key
            )),
            Some(Reply::InFlight) => {
                parked.push((Instant::now() + Duration::from_millis(500), p));
            }
            Some(Reply::Final(a)) => {
                if p.cut && a.replayed {
                    bump(&self.stats.cut_then_replayed);
                }
                if !a.ok() && a.error_code().is_none_or(|c| c.is_empty()) {
                    self.violation(format!(
                        "{:?} {}: an error without a code: {} {}",
                        p.op.kind,
                        p.op.key,
                        a.status,
                        short(&a.body)
                    ));
                }
                self.book(&p.op, &a);
                self.done.lock().unwrap().push(Done {
                    op: p.op,
                    answer: a,
                });
            }
        }
    }

    /// Notes what a 2xx answer makes possible next.
    fn book(&self, op: &Op, a: &Answer) {
        if !a.ok() {
            return;
        }
        let j = a.json();
        let text = |f: &str| j[f].as_str().unwrap_or_default().to_owned();
        let mut m = self.model.lock().unwrap();
        match op.kind {
            Kind::Redeem => m.redemptions.push(RedemptionRef {
                voucher: op.voucher,
                id: text("redemption_id"),
                amount: money(&j, "redeemed").unwrap_or(0),
            }),
            Kind::Capture => {
                m.redemptions.push(RedemptionRef {
                    voucher: op.voucher,
                    id: text("redemption_id"),
                    amount: money(&j, "captured").unwrap_or(0),
                });
                let id = text("hold_id");
                m.holds
                    .iter_mut()
                    .filter(|h| h.id == id)
                    .for_each(|h| h.open = false);
            }
            Kind::Release => {
                let id = text("hold_id");
                m.holds
                    .iter_mut()
                    .filter(|h| h.id == id)
                    .for_each(|h| h.open = false);
            }
            Kind::Hold => m.holds.push(HoldRef {
                voucher: op.voucher,
                id: text("hold_id"),
                held: money(&j, "held").unwrap_or(0),
                open: true,
            }),
            Kind::Issue | Kind::Load | Kind::Reverse => {}
        }
    }

    /// A new operation; `None` when its kind has nothing to act on yet.
    fn build(&self, rng: &mut Rng, client: usize, n: u64) -> Option<Op> {
        let key = format!("c{client}-{n}");
        let m = self.model.lock().unwrap();
        let pms = self.pms[rng.below(2)].clone();
        let vpath = |v: usize, rest: &str| {
            format!(
                "/v1/properties/{PROPERTY}/vouchers/{}{rest}",
                m.vouchers[v].code
            )
        };
        // A few hot vouchers see most of the contention.
        let pick = |rng: &mut Rng| {
            if rng.chance(40) {
                rng.below(4)
            } else {
                rng.below(m.vouchers.len())
            }
        };
        let op = |kind, auth: String, path: String, body: Option<Value>, voucher| Op {
            kind,
            key: key.clone(),
            auth,
            path,
            body: body.map(|b| b.to_string()),
            voucher,
            load: 0,
        };
        let roll = rng.below(100);
        Some(if roll < 30 {
            let v = pick(rng);
            let mut body = json!({"reservation": {"number": key, "guest_name": "Ana López"}});
            if rng.chance(90) {
                body["amount"] = eur(rng.range(1, 30) * 100 + rng.range(0, 99));
            }
            op(Kind::Redeem, pms, vpath(v, "/redemptions"), Some(body), v)
        } else if roll < 45 {
            if m.redemptions.is_empty() {
                return None;
            }
            let r = &m.redemptions[rng.below(m.redemptions.len())];
            let mut body = json!({"reason": key});
            if rng.chance(60) {
                body["amount"] = eur(rng.range(1, r.amount.max(1)));
            }
            let path = vpath(r.voucher, &format!("/redemptions/{}/reversal", r.id));
            op(Kind::Reverse, pms, path, Some(body), r.voucher)
        } else if roll < 60 {
            let cards: Vec<usize> = (0..m.vouchers.len())
                .filter(|i| m.vouchers[*i].gift_card)
                .collect();
            let v = cards[rng.below(cards.len())];
            let seq = self.loads.fetch_add(1, Ordering::Relaxed) as i64 + 1;
            let amount = seq * 1000 + rng.range(1, 999);
            let body = json!({"amount": eur(amount)});
            let mut o = op(
                Kind::Load,
                self.office.clone(),
                vpath(v, "/loads"),
                Some(body),
                v,
            );
            o.load = amount;
            o
        } else if roll < 78 {
            let v = pick(rng);
            let expires = chrono::Utc::now() + chrono::Duration::days(30);
            let body = json!({
                "amount": eur(rng.range(1, 20) * 100),
                "reservation": {"number": key},
                "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            });
            op(Kind::Hold, pms, vpath(v, "/holds"), Some(body), v)
        } else {
            if m.holds.is_empty() {
                return None;
            }
            let open: Vec<&HoldRef> = m.holds.iter().filter(|h| h.open).collect();
            let h = if !open.is_empty() && rng.chance(85) {
                open[rng.below(open.len())]
            } else {
                &m.holds[rng.below(m.holds.len())]
            };
            if roll < 90 {
                let body = match rng.below(10) {
                    0..5 => json!({}),
                    5..9 => json!({"amount": eur(rng.range(1, h.held.max(1)))}),
                    _ => json!({"amount": eur(h.held + 100)}),
                };
                let path = format!("/v1/properties/{PROPERTY}/holds/{}/capture", h.id);
                op(Kind::Capture, pms, path, Some(body), h.voucher)
            } else {
                let path = format!("/v1/properties/{PROPERTY}/holds/{}/release", h.id);
                op(Kind::Release, pms, path, None, h.voucher)
            }
        })
    }

    /// One client: new operations until the killer is done, parked ones
    /// retried when due, and all of them answered before it returns.
    async fn client(&self, id: usize, mut rng: Rng) {
        let mut parked: Vec<(Instant, Pending)> = Vec::new();
        let mut n = 0u64;
        loop {
            let now = Instant::now();
            if let Some(i) = parked.iter().position(|(due, _)| *due <= now) {
                let (_, p) = parked.swap_remove(i);
                self.attempt(p, &mut parked).await;
                continue;
            }
            if self.stop.load(Ordering::SeqCst) {
                if parked.is_empty() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            n += 1;
            let Some(op) = self.build(&mut rng, id, n) else {
                continue;
            };
            bump(&self.stats.operations);
            let p = Pending {
                op,
                began: Instant::now(),
                cut: false,
            };
            self.attempt(p, &mut parked).await;
        }
    }

    /// Kills the server after 50–300 ms of traffic and starts it again, until
    /// both the kills and the operations reach their counts.
    async fn killer(&self, mut rng: Rng, kills: u64, operations: u64) {
        loop {
            let traffic = rng.range(50, 300) as u64;
            tokio::time::sleep(Duration::from_millis(traffic)).await;
            self.hub.lock().unwrap().kill();
            bump(&self.stats.kills);
            // Down for a moment, so some clients find nothing listening.
            let down = rng.range(0, 100) as u64;
            tokio::time::sleep(Duration::from_millis(down)).await;
            self.hub.lock().unwrap().start();
            self.wait_ready().await;
            if get(&self.stats.kills) >= kills && get(&self.stats.operations) >= operations {
                break;
            }
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    async fn get_json(&self, path: &str) -> Value {
        for _ in 0..100 {
            if let Ok(r) = self
                .http
                .get(format!("{}{path}", self.base))
                .bearer_auth(&self.office)
                .send()
                .await
            {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                assert!(status.is_success(), "GET {path}: {status} {body}");
                return serde_json::from_str(&body).expect("JSON");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("GET {path}: no answer");
    }

    /// Every key once more: the same status and bytes, as a replay.
    async fn replay_all(self: &Arc<Self>) {
        let done = self.done.lock().unwrap().clone();
        let chunks: Vec<Vec<Done>> = done
            .chunks(done.len().div_ceil(CLIENTS).max(1))
            .map(<[Done]>::to_vec)
            .collect();
        let mut tasks = Vec::new();
        for chunk in chunks {
            let w = self.clone();
            tasks.push(tokio::spawn(async move {
                for d in chunk {
                    let mut p = Pending {
                        op: d.op.clone(),
                        began: Instant::now(),
                        cut: false,
                    };
                    bump(&w.stats.replays_checked);
                    match w.settle(&mut p).await {
                        Some(Reply::Final(a)) => {
                            if a.status != d.answer.status || a.body != d.answer.body {
                                w.violation(format!(
                                    "{:?} {}: replay differs: first {} {} / now {} {}",
                                    d.op.kind,
                                    d.op.key,
                                    d.answer.status,
                                    short(&d.answer.body),
                                    a.status,
                                    short(&a.body)
                                ));
                            } else if !a.replayed {
                                w.violation(format!(
                                    "{:?} {}: sent again, ran again instead of replaying",
                                    d.op.kind, d.op.key
                                ));
                            }
                        }
                        _ => w.violation(format!(
                            "{:?} {}: no final answer on replay",
                            d.op.kind, d.op.key
                        )),
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }

    /// The ledger and status of every voucher against the answers.
    async fn audit(&self) {
        let done = self.done.lock().unwrap().clone();
        let vouchers = self.model.lock().unwrap().vouchers.clone();
        let mut by_voucher: HashMap<usize, Vec<&Done>> = HashMap::new();
        for d in &done {
            by_voucher.entry(d.op.voucher).or_default().push(d);
        }
        for (i, v) in vouchers.iter().enumerate() {
            let path = format!("/v1/properties/{PROPERTY}/vouchers/{}", v.code);
            let status = self.get_json(&path).await;
            let mut acts: Vec<Value> = Vec::new();
            let mut after = String::new();
            loop {
                let page = self
                    .get_json(&format!("{path}/activities?limit=200{after}"))
                    .await;
                acts.extend(page["activities"].as_array().cloned().unwrap_or_default());
                match page["next"].as_str() {
                    Some(n) => after = format!("&after={n}"),
                    None => break,
                }
            }
            let ops = by_voucher.remove(&i).unwrap_or_default();
            for bad in check_voucher(v, &status, &acts, &ops) {
                self.violation(format!("voucher {} ({}): {bad}", i, v.code));
            }
        }
    }
}

/// Every check on one voucher; returns what is wrong.
fn check_voucher(v: &VoucherRef, status: &Value, acts: &[Value], ops: &[&Done]) -> Vec<String> {
    let mut bad = Vec::new();
    let balance = money(status, "balance").unwrap_or(i64::MIN);
    // The ledger: each balance_after is the running sum; the sum is the balance.
    let mut running = 0;
    for a in acts {
        running += money(a, "amount").unwrap_or(0);
        if money(a, "balance_after") != Some(running) {
            bad.push(format!(
                "activity {} balance_after ≠ running sum {running}",
                a["id"]
            ));
        }
    }
    if running != balance {
        bad.push(format!("ledger sum {running} ≠ balance {balance}"));
    }
    if balance < 0 || money(status, "available").is_none_or(|a| a < 0) {
        bad.push(format!("negative balance or available: {status}"));
    }
    // Which activity each answered key produced; each claimed once.
    let mut claimed: BTreeMap<usize, String> = BTreeMap::new();
    let mut claim = |bad: &mut Vec<String>, key: &str, found: Vec<usize>, want: usize| {
        if found.len() != want {
            bad.push(format!(
                "key {key}: {} ledger activities, expected {want}",
                found.len()
            ));
        }
        for at in found {
            if let Some(other) = claimed.insert(at, key.to_owned()) {
                bad.push(format!("activity {at} claimed by {other} and {key}"));
            }
        }
    };
    let find = |pred: &dyn Fn(&Value) -> bool| -> Vec<usize> {
        acts.iter()
            .enumerate()
            .filter(|(_, a)| pred(a))
            .map(|(i, _)| i)
            .collect()
    };
    let kind = |a: &Value, k: &str| a["kind"] == k;
    let s = |j: &Value, f: &str| j[f].as_str().unwrap_or_default().to_owned();
    let (mut loads, mut redeemed, mut reversed, mut captured) = (0, 0, 0, 0);
    let mut holds: BTreeMap<String, i64> = BTreeMap::new();
    let mut closed: Vec<String> = Vec::new();
    for d in ops {
        let (op, ok, j) = (&d.op, d.answer.ok(), d.answer.json());
        let key = op.key.as_str();
        let want = usize::from(ok);
        // An answered effect is the ledger entry it names, balance included.
        let answered_at = |found: &[usize], field: &str, sign: i64, bad: &mut Vec<String>| {
            if let (true, [at]) = (ok, found) {
                let a = &acts[*at];
                if money(a, "amount").map(|x| x * sign) != money(&j, field)
                    || money(a, "balance_after") != money(&j, "balance")
                {
                    bad.push(format!("key {key}: answer {} ≠ ledger {a}", d.answer.body));
                }
            }
        };
        match op.kind {
            Kind::Issue => {
                let found = find(&|a| kind(a, "issue"));
                claim(&mut bad, key, found, want);
            }
            Kind::Redeem => {
                let found = find(&|a| kind(a, "redeem") && a["reservation"]["number"] == key);
                answered_at(&found, "redeemed", -1, &mut bad);
                if ok && found.len() == 1 && acts[found[0]]["redemption_id"] != j["redemption_id"] {
                    bad.push(format!("key {key}: another redemption id in the ledger"));
                }
                claim(&mut bad, key, found, want);
                redeemed += money(&j, "redeemed").unwrap_or(0) * i64::from(ok);
            }
            Kind::Reverse => {
                let found = find(&|a| kind(a, "reverse") && a["note"] == key);
                answered_at(&found, "reversed", 1, &mut bad);
                claim(&mut bad, key, found, want);
                reversed += money(&j, "reversed").unwrap_or(0) * i64::from(ok);
            }
            Kind::Load => {
                let found = find(&|a| kind(a, "load") && money(a, "amount") == Some(op.load));
                answered_at(&found, "loaded", 1, &mut bad);
                claim(&mut bad, key, found, want);
                loads += money(&j, "loaded").unwrap_or(0) * i64::from(ok);
            }
            Kind::Hold => {
                let found = find(&|a| kind(a, "hold") && a["reservation"]["number"] == key);
                if let (true, [at]) = (ok, found.as_slice())
                    && (acts[*at]["hold_id"] != j["hold_id"]
                        || money(&acts[*at], "held") != money(&j, "held"))
                {
                    bad.push(format!("key {key}: answer {} ≠ ledger", d.answer.body));
                }
                claim(&mut bad, key, found, want);
                if ok {
                    holds.insert(s(&j, "hold_id"), money(&j, "held").unwrap_or(0));
                }
            }
            // A capture or release answered 4xx names no activity; an
            // effect it had anyway is an activity no key claims (below).
            Kind::Capture if ok => {
                let found = find(&|a| {
                    kind(a, "capture")
                        && a["redemption_id"] == j["redemption_id"]
                        && a["hold_id"] == j["hold_id"]
                });
                answered_at(&found, "captured", -1, &mut bad);
                claim(&mut bad, key, found, 1);
                let rest = money(&j, "released").unwrap_or(0);
                let found = find(&|a| {
                    kind(a, "release")
                        && a["hold_id"] == j["hold_id"]
                        && a["note"] == "not captured"
                        && money(a, "held") == Some(rest)
                });
                claim(&mut bad, key, found, usize::from(rest > 0));
                captured += money(&j, "captured").unwrap_or(0);
                closed.push(s(&j, "hold_id"));
            }
            Kind::Release if ok => {
                let found = find(&|a| {
                    kind(a, "release")
                        && a["hold_id"] == j["hold_id"]
                        && a.get("note").is_none()
                        && money(a, "held") == money(&j, "released")
                });
                claim(&mut bad, key, found, 1);
                closed.push(s(&j, "hold_id"));
            }
            Kind::Capture | Kind::Release => {}
        }
    }
    for (i, a) in acts.iter().enumerate() {
        if !claimed.contains_key(&i) {
            bad.push(format!("activity without an answered key: {a}"));
        }
    }
    // From the answers alone.
    let expected = v.initial + loads - redeemed + reversed - captured;
    if expected != balance {
        bad.push(format!(
            "answers give {expected} (initial {} + loads {loads} − redeemed {redeemed} + reversed {reversed} − captured {captured}) ≠ balance {balance}",
            v.initial
        ));
    }
    for id in &closed {
        holds.remove(id);
    }
    let held: i64 = holds.values().sum();
    if money(status, "held") != Some(held) {
        bad.push(format!(
            "held {:?}, but the open answered holds block {held}",
            money(status, "held")
        ));
    }
    bad
}

// ---- the run ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_between_commit_and_response_lose_nothing_and_do_nothing_twice() {
    let began = Instant::now();
    let seed = seed();
    println!("crash/restart seed {seed} (GUESTHUB_SEED={seed} repeats the choices)");
    let mut rng = Rng(seed);
    let (kills, operations) = sizes();

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    guesthub(
        &data,
        &[
            "property",
            "add",
            PROPERTY,
            "--name",
            "Castle Hotel",
            "--time-zone",
            "Europe/Vienna",
            "--currency",
            "EUR",
        ],
    );
    let partner = |name: &str, scopes: &str| {
        let out = guesthub(
            &data,
            &[
                "partner",
                "add",
                name,
                "--properties",
                PROPERTY,
                "--scopes",
                scopes,
            ],
        );
        out.lines().last().unwrap_or_default().trim().to_owned()
    };
    let office = partner("Castle office", "vouchers:issue,vouchers:read");
    let pms = [
        partner("ASA", "vouchers:read,vouchers:redeem"),
        partner("Protel", "vouchers:read,vouchers:redeem"),
    ];

    let port = free_port(&mut rng);
    let mut hub = Hub {
        data_dir: data.clone(),
        port,
        log: dir.path().join("server.log"),
        child: None,
        starts: 0,
    };
    hub.start();
    let w = Arc::new(World {
        base: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap(),
        probe: reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
        office: office.clone(),
        pms,
        hub: Mutex::new(hub),
        model: Mutex::new(Model::default()),
        done: Mutex::new(Vec::new()),
        violations: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        loads: AtomicU64::new(0),
        stats: Stats::default(),
    });
    w.wait_ready().await;

    // The vouchers, sold over HTTP before the first kill.
    for i in 0..VALUE_VOUCHERS + GIFT_CARDS {
        let gift_card = i >= VALUE_VOUCHERS;
        let value = if gift_card {
            rng.range(0, 100) * 100
        } else {
            rng.range(50, 400) * 100
        };
        let article = if gift_card { "gift_card" } else { "value" };
        let op = Op {
            kind: Kind::Issue,
            key: format!("issue-{i}"),
            auth: office.clone(),
            path: format!("/v1/properties/{PROPERTY}/vouchers"),
            body: Some(
                json!({"article_type": article, "value": eur(value), "order_ref": format!("WEB-{i}")})
                    .to_string(),
            ),
            voucher: i,
            load: 0,
        };
        let a = w.send(&op).await.expect("the hub answers a sale");
        assert_eq!(a.status, 201, "{}", a.body);
        let j = a.json();
        w.model.lock().unwrap().vouchers.push(VoucherRef {
            code: j["code"].as_str().unwrap().to_owned(),
            gift_card,
            initial: money(&j["voucher"], "initial_value").unwrap(),
        });
        w.done.lock().unwrap().push(Done { op, answer: a });
    }

    // Traffic under kills.
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let w = w.clone();
        let r = Rng(seed ^ (c as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F));
        tasks.push(tokio::spawn(async move { w.client(c, r).await }));
    }
    let killer = {
        let w = w.clone();
        let r = Rng(seed.rotate_left(17) ^ 0xE703_7ED1_A0B4_28DB);
        tokio::spawn(async move { w.killer(r, kills, operations).await })
    };
    killer.await.unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let traffic = began.elapsed();

    w.replay_all().await;
    w.audit().await;

    let s = &w.stats;
    let violations = w.violations.lock().unwrap().clone();
    let done = w.done.lock().unwrap().clone();
    let answered = done.len() as u64 - (VALUE_VOUCHERS + GIFT_CARDS) as u64;
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    for d in &done {
        let label = match d.answer.error_code() {
            Some(code) if !d.answer.ok() => format!("{:?} {} {code}", d.op.kind, d.answer.status),
            _ => format!("{:?} {}", d.op.kind, d.answer.status),
        };
        *outcomes.entry(label).or_default() += 1;
    }
    println!(
        "seed {seed}: {} requests, {answered} operations answered ({} cut by a kill, {} of them answered by a replay), {} in-flight 409s, {} 5xx, {} replays checked, {} server starts; traffic {traffic:.1?}, total {:.1?}",
        get(&s.requests),
        get(&s.cut),
        get(&s.cut_then_replayed),
        get(&s.in_flight),
        get(&s.server_errors),
        get(&s.replays_checked),
        w.hub.lock().unwrap().starts,
        began.elapsed()
    );
    if long_run() {
        for (k, n) in &outcomes {
            println!("  {k:<48} {n:>6}");
        }
    }
    println!(
        "crash/restart: {} kills, {} operations, {} retries after a kill, {} violations",
        get(&s.kills),
        get(&s.operations),
        get(&s.resent),
        violations.len()
    );
    assert!(get(&s.kills) >= kills, "too few kills");
    assert_eq!(
        answered,
        get(&s.operations),
        "operations without a final answer"
    );
    assert!(
        violations.is_empty(),
        "{} violations (GUESTHUB_SEED={seed}); first ones:\n{}\nserver log tail:\n{}",
        violations.len(),
        violations
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        w.hub.lock().unwrap().log_tail()
    );
}
