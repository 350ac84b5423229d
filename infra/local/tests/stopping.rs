//! Stopping never blocks the next run: the real binary, a served hub
//! running a scheduled Cloudbeds sync against the stand-in, signalled.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use tests::cloudbeds_standin::Standin;

const KEY: &str = "cbat_stop_test_key_0123456789";

/// Store arguments: SQLite in the data dir, or DynamoDB on moto under a
/// fresh prefix.
fn store_args(dynamo: bool) -> Vec<String> {
    if !dynamo {
        return vec![];
    }
    let endpoint = tests::moto_endpoint();
    let prefix = format!(
        "stop{}x{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    vec![
        "--store".into(),
        "dynamodb".into(),
        "--dynamodb-endpoint".into(),
        endpoint,
        "--table-prefix".into(),
        prefix[..24].to_owned(),
    ]
}

struct Hub {
    dir: tempfile::TempDir,
    store: Vec<String>,
}

impl Hub {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_guesthub"));
        c.arg("--data-dir")
            .arg(self.dir.path())
            .args(&self.store)
            .args(args)
            .env_remove("GUESTHUB_DATA_DIR")
            .env("CB_STOP_KEY", KEY);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("guesthub runs")
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

async fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A served hub is signalled in the middle of its scheduled sync (paced at
/// Cloudbeds' 5 requests/s, so it runs for seconds): it ends the run at a
/// safe point and exits within 5 s, having released the lease. A CLI run
/// meanwhile is told who holds the property and until when, and exits
/// non-zero; `--wait` waits for the run holding it instead.
async fn signalled_hub_releases_the_lease(dynamo: bool, sig: nix::sys::signal::Signal) {
    let cb = Standin::start(KEY, "4711", 100).await;
    let modified = Utc::now() - chrono::Duration::minutes(10);
    for n in 1..=15 {
        cb.add_guest_with_stay(n, &[], "confirmed", modified);
    }
    let hub = Hub {
        dir: tempfile::tempdir().unwrap(),
        store: store_args(dynamo),
    };
    let ok = |o: Output| {
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    ok(hub.run(&["tables", "create"]));
    ok(hub.run(&[
        "property",
        "add",
        "castle",
        "--name",
        "Castle",
        "--time-zone",
        "Europe/Vienna",
        "--currency",
        "EUR",
    ]));
    ok(hub.run(&[
        "crm",
        "connect",
        "castle",
        "--cloudbeds-property-id",
        "4711",
        "--api-key-env",
        "CB_STOP_KEY",
        "--base-url",
        &cb.base_url,
    ]));

    let port = free_port();
    let mut server = hub
        .cmd(&[
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--crm-sync-interval",
            "3600",
            "--loyalty-export-interval",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("listening"), "{line}");

    // The scheduled sync starts at once; let it get going.
    wait_until("the scheduled sync", Duration::from_secs(30), || {
        cb.calls("getGuest") >= 3
    })
    .await;

    // A CLI run now finds the property held: says by whom and until when.
    let skipped = hub.run(&["crm", "sync", "castle"]);
    let out = text(&skipped);
    assert!(!skipped.status.success(), "{out}");
    let by = format!("held by guesthub serve (pid {}) until ", server.id());
    assert!(out.contains(&by), "{out}");
    assert!(out.contains("--wait"), "{out}");

    let before = cb.calls("getGuest");
    let signalled = Instant::now();
    signal(&server, sig);
    let status = loop {
        if let Some(s) = server.try_wait().unwrap() {
            break s;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(5),
            "the hub still runs 5 s after the signal"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = signalled.elapsed();
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(rest.contains("GuestHub stopped"), "{rest}");
    let at_stop = cb.calls("getGuest");
    assert!(
        at_stop < 15,
        "the run ended early, not at its end: {at_stop}"
    );
    println!(
        "stopped ({sig:?}, dynamo {dynamo}) {took:?} after the signal, {} guests fetched before, {at_stop} in all",
        before
    );

    // The lease is released: the next run starts at once and finishes the
    // work (`--wait` then waits for it rather than skipping).
    let mut first = hub
        .cmd(&["crm", "sync", "castle"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the next run", Duration::from_secs(10), || {
        cb.calls("getGuest") > at_stop
    })
    .await;
    assert!(
        first.try_wait().unwrap().is_none(),
        "the next run ended too soon"
    );
    let waited = hub.run(&["crm", "sync", "castle", "--wait"]);
    let first_done = first.try_wait().unwrap();
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    assert!(!text(&first).contains("skipped"), "{}", text(&first));
    assert!(waited.status.success(), "{}", text(&waited));
    assert!(!text(&waited).contains("skipped"), "{}", text(&waited));
    assert!(
        first_done.is_some(),
        "--wait returned while the other run still held the property"
    );
    cb.with(|s| {
        let guests = s.guests.len();
        assert_eq!(guests, 15);
    });

    // The history: the scheduled run that was stopped, then the CLI runs.
    let runs = hub.run(&["--output", "json", "crm", "runs", "castle"]);
    assert!(runs.status.success(), "{}", text(&runs));
    let v: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{v}");
    assert_eq!(runs[2]["trigger"], "schedule", "{v}");
    assert_eq!(runs[2]["stopped"], true, "{v}");
    assert!(
        runs[..2]
            .iter()
            .all(|r| r["trigger"] == "cli" && r["stopped"] == false),
        "{v}"
    );
    let text_runs = hub.run(&["crm", "runs", "castle", "--limit", "1"]);
    let out = String::from_utf8_lossy(&text_runs.stdout).into_owned();
    assert!(
        text_runs.status.success() && out.lines().count() == 1 && out.contains(" cli: "),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_sqlite() {
    signalled_hub_releases_the_lease(false, nix::sys::signal::Signal::SIGTERM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_on_dynamodb() {
    signalled_hub_releases_the_lease(true, nix::sys::signal::Signal::SIGINT).await;
}

/// The loyalty export alike: a run finding the property held says by whom
/// and until when and exits 1; `--wait` waits for the holder to release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loyalty_export_held_elsewhere() {
    use domain::ports::{JobLease, LeaseStore, LeaseTake, LeasedJob};
    let hub = Hub {
        dir: tempfile::tempdir().unwrap(),
        store: vec![],
    };
    let ok = |o: Output| {
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    ok(hub.run(&["tables", "create"]));
    ok(hub.run(&[
        "property",
        "add",
        "castle",
        "--name",
        "Castle",
        "--time-zone",
        "Europe/Vienna",
        "--currency",
        "EUR",
    ]));
    // Another process (here: this test, on the same store) runs the export.
    let store = platform::config::StoreKind::Sqlite {
        path: hub.dir.path().join("guesthub.sqlite3"),
    }
    .open()
    .await
    .unwrap();
    let p = domain::PropertyId::parse("castle").unwrap();
    let lease = JobLease {
        holder: "other".into(),
        by: "LoyaltyExportFunction (request r-1)".into(),
        until: Utc::now() + chrono::Duration::seconds(60),
    };
    assert_eq!(
        store
            .take_lease(LeasedJob::LoyaltyExport, &p, &lease)
            .await
            .unwrap(),
        LeaseTake::Taken
    );
    let skipped = hub.run(&["loyalty", "export", "castle"]);
    let out = text(&skipped);
    assert!(!skipped.status.success(), "{out}");
    assert!(
        out.contains("castle is held by LoyaltyExportFunction (request r-1) until "),
        "{out}"
    );

    let mut waiting = hub
        .cmd(&["loyalty", "export", "castle", "--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(waiting.try_wait().unwrap().is_none(), "--wait did not wait");
    store
        .release_lease(LeasedJob::LoyaltyExport, &p, "other")
        .await
        .unwrap();
    let released = Instant::now();
    let waited = waiting.wait_with_output().unwrap();
    assert!(waited.status.success(), "{}", text(&waited));
    assert!(released.elapsed() < Duration::from_secs(5));
    assert!(!text(&waited).contains("skipped"), "{}", text(&waited));
}
