//! The CLI contract as partners' operators and hidden checks use it: the
//! real binary, a temporary data dir, a real socket.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn guesthub(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_guesthub"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("GUESTHUB_DATA_DIR")
        .output()
        .expect("guesthub runs")
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The server process, with its stdout kept open (closing it would make
/// the server's next print fail).
struct Server(
    Child,
    #[allow(dead_code)] BufReader<std::process::ChildStdout>,
);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data_dir: &std::path::Path, port: u16) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_guesthub"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the "listening" line rather than sleeping.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("listening"), "{line}");
    Server(child, stdout)
}

#[tokio::test]
async fn operator_flow_property_partner_serve_and_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&guesthub(
        d,
        &[
            "property",
            "add",
            "castle",
            "--name",
            "Castle Winery",
            "--time-zone",
            "Europe/Vienna",
            "--currency",
            "EUR",
        ],
    ));
    // Adding it twice is a clear error, not a crash.
    let again = guesthub(
        d,
        &[
            "property",
            "add",
            "castle",
            "--name",
            "X",
            "--time-zone",
            "Europe/Vienna",
            "--currency",
            "EUR",
        ],
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    // Bad input is refused with the reason.
    let bad = guesthub(
        d,
        &[
            "property",
            "add",
            "abbey",
            "--name",
            "Abbey",
            "--time-zone",
            "Mars/Base",
            "--currency",
            "EUR",
        ],
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("time_zone"));
    // The key is alone on the last line of stdout.
    let out = ok(&guesthub(
        d,
        &[
            "partner",
            "add",
            "Hotel PMS",
            "--properties",
            "castle",
            "--scopes",
            "vouchers:read,vouchers:redeem",
        ],
    ));
    let key = out.lines().last().unwrap().trim().to_owned();
    assert!(key.starts_with("ghk_") && !key.contains(' '), "{out}");
    let listed = ok(&guesthub(d, &["partner", "list"]));
    assert!(listed.contains("Hotel PMS") && !listed.contains(&key));
    let bad_scope = guesthub(
        d,
        &[
            "partner",
            "add",
            "X",
            "--properties",
            "castle",
            "--scopes",
            "vouchers:write",
        ],
    );
    assert!(String::from_utf8_lossy(&bad_scope.stderr).contains("unknown scope"));

    let port = free_port();
    let mut server = serve(d, port);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let health = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let doc = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json")).unwrap();
    assert_eq!(doc, checked_in);

    // SIGINT (Ctrl-C): the server finishes and exits 0.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.0.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = server.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "server did not stop on Ctrl-C"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    assert!(d.join("guesthub.sqlite3").exists());
}

/// Names given to the CLI are one line: a newline or an ANSI escape in a
/// partner's or property's name would forge lines in `partner list` and
/// `property list`. Refused with the reason; nothing is added.
#[test]
fn names_with_control_characters_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let property = |id: &str, name: &str| {
        guesthub(
            d,
            &[
                "property",
                "add",
                id,
                "--name",
                name,
                "--time-zone",
                "Europe/Vienna",
                "--currency",
                "EUR",
            ],
        )
    };
    ok(&property("castle", "Castle Winery"));
    for (id, name) in [
        ("abbey", "Abbey\ncastle\tForged\tEUR"),
        ("abbey", "\u{1b}[2JAbbey"),
        ("abbey", "Abbey\r"),
    ] {
        let out = property(id, name);
        assert!(!out.status.success(), "{name:?} was accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("control characters"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for name in [
        "PMS\nforged-id\tForged partner",
        "\u{1b}[1A\u{1b}[2KPMS",
        "P\u{7}MS",
    ] {
        let out = guesthub(
            d,
            &[
                "partner",
                "add",
                name,
                "--properties",
                "castle",
                "--scopes",
                "vouchers:read",
            ],
        );
        assert!(!out.status.success(), "{name:?} was accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("control characters"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(ok(&guesthub(d, &["partner", "list"])).trim(), "");
    let properties = ok(&guesthub(d, &["property", "list"]));
    assert_eq!(properties.lines().count(), 1, "{properties}");
}

/// The hostile workbooks, built at run time (shared with the end-to-end tests).
#[path = "../../../tests/src/sheets.rs"]
mod sheets;

/// Hostile spreadsheets (a cell at `XFD1048576`, `A1:Z1000000`, zip bombs)
/// dropped into a served hub's drop folder: the hub keeps serving, each is
/// a rejected import with its reason and lands in `failed/`, and a good
/// workbook dropped with them applies. `guesthub import` reports one the same way.
#[tokio::test]
async fn served_hub_survives_hostile_spreadsheets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&guesthub(
        d,
        &[
            "property",
            "add",
            "castle",
            "--name",
            "Castle Winery",
            "--time-zone",
            "Europe/Vienna",
            "--currency",
            "EUR",
        ],
    ));
    let out = ok(&guesthub(
        d,
        &[
            "partner",
            "add",
            "Office",
            "--properties",
            "castle",
            "--scopes",
            "club:read",
        ],
    ));
    let key = out.lines().last().unwrap().trim().to_owned();

    let by_hand = d.join("by-hand.xlsx");
    std::fs::write(&by_hand, sheets::cell_at_xfd1048576()).unwrap();
    let out = ok(&guesthub(
        d,
        &["import", by_hand.to_str().unwrap(), "--property", "castle"],
    ));
    assert!(
        out.contains("Rejected (the spreadsheet is refused:") && out.contains("XFD1048576"),
        "{out}"
    );

    let port = free_port();
    let mut server = serve(d, port);
    let drop = d.join("drop/ams/castle");
    std::fs::create_dir_all(&drop).unwrap();
    let hostile = sheets::hostile();
    for (name, bytes, _) in &hostile {
        std::fs::write(drop.join(name), bytes).unwrap();
    }
    // Named to come last (a poll imports in name order; an older file
    // after an applied one would be skipped, not read).
    std::fs::write(
        drop.join("zz-good.xlsx"),
        sheets::roster(&["ana@example.com".into()]),
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{port}/v1/properties/castle");
    let client = reqwest::Client::new();
    let started = Instant::now();
    let imports = loop {
        let r: serde_json::Value = client
            .get(format!("{base}/roster-imports"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let imports = r["imports"].as_array().unwrap().clone();
        if imports.len() == hostile.len() + 2 {
            break imports;
        }
        assert!(
            server.0.try_wait().unwrap().is_none(),
            "the hub died: {imports:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not imported: {imports:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(server.0.try_wait().unwrap().is_none(), "the hub died");
    for (name, _, why) in &hostile {
        let r = imports.iter().find(|i| i["file"] == *name).unwrap();
        assert_eq!(r["status"], "rejected", "{r}");
        assert!(r["reason"].as_str().unwrap().contains(why), "{r}");
    }
    let good = imports
        .iter()
        .find(|i| i["file"] == "zz-good.xlsx")
        .unwrap();
    assert_eq!(good["status"], "applied", "{good}");
    let member: serde_json::Value = client
        .get(format!("{base}/club-members/ana@example.com"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(member["member"], true);
    let count = |bucket: &str| {
        d.join("drop")
            .join(bucket)
            .join("castle")
            .read_dir()
            .map_or(0, Iterator::count)
    };
    // Moved after the report is written: wait for the last move.
    while count("failed") + count("processed") < hostile.len() + 1 {
        assert!(started.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((count("failed"), count("processed")), (hostile.len(), 1));
    assert_eq!(drop.read_dir().unwrap().count(), 0);
}

#[test]
fn tables_create_on_dynamodb() {
    let endpoint = std::env::var("GUESTHUB_TEST_MOTO")
        .expect("GUESTHUB_TEST_MOTO: run the tests with ./infra/test");
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("cli{}", std::process::id());
    let args = [
        "--store",
        "dynamodb",
        "--dynamodb-endpoint",
        &endpoint,
        "--table-prefix",
        &prefix,
        "tables",
        "create",
    ];
    let out = ok(&guesthub(dir.path(), &args));
    assert!(out.contains(&prefix));
    // Idempotent.
    ok(&guesthub(dir.path(), &args));
    // And the store works there.
    let add = [
        "--store",
        "dynamodb",
        "--dynamodb-endpoint",
        &endpoint,
        "--table-prefix",
        &prefix,
        "property",
        "add",
        "castle",
        "--name",
        "Castle",
        "--time-zone",
        "Europe/Vienna",
        "--currency",
        "EUR",
    ];
    ok(&guesthub(dir.path(), &add));
    let list = ok(&guesthub(
        dir.path(),
        &[
            "--store",
            "dynamodb",
            "--dynamodb-endpoint",
            &endpoint,
            "--table-prefix",
            &prefix,
            "property",
            "list",
        ],
    ));
    assert!(list.contains("castle"));
}

/// A pyftpdlib server (the tests crate's fixture), killed on drop.
struct Ftp(Child, u16, tempfile::TempDir);

impl Drop for Ftp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ftp_server() -> Ftp {
    let root = tempfile::tempdir().unwrap();
    let control = tempfile::tempdir().unwrap();
    let python = std::env::var("GUESTHUB_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/tests/fixtures/ftp_server.py"
        ))
        .arg(root.path())
        .arg(control.path())
        .args(["netcarrots", "cli-ftp-pass"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|_| panic!("no FTP server ({python} with pyftpdlib): {line:?}"));
    std::mem::forget(control);
    Ftp(child, v["port"].as_u64().unwrap() as u16, root)
}

#[tokio::test]
async fn loyalty_connect_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&guesthub(
        d,
        &[
            "property",
            "add",
            "castle",
            "--name",
            "Castle",
            "--time-zone",
            "Europe/Vienna",
            "--currency",
            "EUR",
        ],
    ));
    let out = ok(&guesthub(
        d,
        &[
            "partner",
            "add",
            "RMS",
            "--properties",
            "castle",
            "--scopes",
            "loyalty",
        ],
    ));
    let key = out.lines().last().unwrap().trim().to_owned();
    let port = free_port();
    let server = serve(d, port);
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}/v1/properties/castle");
    let r = client
        .post(format!("{base}/loyalty/enrolments"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"email": "ana@example.com", "first_name": "Ana"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .post(format!("{base}/stays/R-9/departure"))
        .bearer_auth(&key)
        .json(
            &serde_json::json!({"email": "ana@example.com", "arrival": "2026-11-01",
            "departure": "2026-11-03", "room_revenue": {"amount": 20000, "currency": "EUR"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    drop(server);

    // No connection: the file goes to the local outbox.
    let out = ok(&guesthub(d, &["loyalty", "export"]));
    assert!(out.contains("2 records (ENROL 1, STAY 1, UNDO 0)"), "{out}");
    assert!(
        out.contains("1 files, ENROL 1, STAY 1, UNDO 0, 0 properties with errors"),
        "{out}"
    );
    let outbox: Vec<_> = std::fs::read_dir(d.join("outbox/loyalty"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    assert!(outbox[0].starts_with("castle_") && outbox[0].ends_with("_000001.csv"));
    let again = ok(&guesthub(d, &["loyalty", "export", "castle"]));
    assert!(again.contains("no file (nothing pending)"), "{again}");

    // Bad connections are refused with the reason.
    let bad = guesthub(
        d,
        &[
            "loyalty",
            "connect",
            "castle",
            "--url",
            "http://x/y",
            "--username",
            "u",
            "--password-env",
            "NC_PASSWORD",
            "--property-code",
            "CAS01",
        ],
    );
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("scheme"),
        "{bad:?}"
    );
    let no_pin = guesthub(
        d,
        &[
            "loyalty",
            "connect",
            "castle",
            "--url",
            "sftp://127.0.0.1:2222/in",
            "--username",
            "u",
            "--password-env",
            "NC_PASSWORD",
            "--property-code",
            "CAS01",
        ],
    );
    assert!(String::from_utf8_lossy(&no_pin.stderr).contains("--host-key"));
    let secret_in_flag = guesthub(
        d,
        &[
            "loyalty",
            "connect",
            "castle",
            "--url",
            "ftp://127.0.0.1/in",
            "--username",
            "u",
            "--password-env",
            "hunter2!",
            "--property-code",
            "CAS01",
        ],
    );
    assert!(String::from_utf8_lossy(&secret_in_flag.stderr).contains("not the password"));

    // Connected: the next records go to the FTP server; the password comes
    // from the named environment variable and is printed nowhere.
    let ftp = ftp_server();
    let url = format!("ftp://127.0.0.1:{}/", ftp.1);
    let out = ok(&guesthub(
        d,
        &[
            "loyalty",
            "connect",
            "castle",
            "--url",
            &url,
            "--username",
            "netcarrots",
            "--password-env",
            "NC_PASSWORD",
            "--property-code",
            "CAS01",
        ],
    ));
    assert!(
        out.contains("connected castle to NetCarrots") && !out.contains("cli-ftp-pass"),
        "{out}"
    );
    assert!(out.contains("retro days 30"), "the default: {out}");
    let port = free_port();
    let server = serve(d, port);
    let base = format!("http://127.0.0.1:{port}/v1/properties/castle");
    let r = client
        .delete(format!("{base}/stays/R-9/departure"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(server);
    let missing_env = guesthub(d, &["loyalty", "export"]);
    assert!(!missing_env.status.success());
    assert!(String::from_utf8_lossy(&missing_env.stdout).contains("NC_PASSWORD"));
    let out = Command::new(env!("CARGO_BIN_EXE_guesthub"))
        .arg("--data-dir")
        .arg(d)
        .args(["loyalty", "export"])
        .env("NC_PASSWORD", "cli-ftp-pass")
        .output()
        .unwrap();
    let text = ok(&out);
    assert!(text.contains("CAS01_") && text.contains("UNDO 1"), "{text}");
    let all = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains("cli-ftp-pass"));
    let files: Vec<_> = std::fs::read_dir(ftp.2.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with("CAS01_") && files[0].ends_with("_000002.csv"));

    // --retro-days: a guest who was not enrolled at departure has the stay
    // kept here; with 0 days enrolling later exports nothing of it.
    let connect = |extra: &[&str]| {
        let mut args = vec![
            "loyalty",
            "connect",
            "castle",
            "--url",
            &url,
            "--username",
            "netcarrots",
            "--password-env",
            "NC_PASSWORD",
            "--property-code",
            "CAS01",
        ];
        args.extend_from_slice(extra);
        guesthub(d, &args)
    };
    let bad = connect(&["--retro-days", "soon"]);
    assert!(
        !bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("--retro-days"),
        "{bad:?}"
    );
    let out = ok(&connect(&["--retro-days", "0"]));
    assert!(out.contains("retro days 0"), "{out}");
    let port = free_port();
    let server = serve(d, port);
    let base = format!("http://127.0.0.1:{port}/v1/properties/castle");
    let r = client
        .post(format!("{base}/stays/R-10/departure"))
        .bearer_auth(&key)
        .json(
            &serde_json::json!({"email": "bo@example.com", "arrival": "2026-11-01",
            "departure": "2026-11-03", "room_revenue": {"amount": 20000, "currency": "EUR"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let held: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (held["held"].clone(), held["queued"].clone()),
        (serde_json::json!(true), serde_json::json!([]))
    );
    let r = client
        .post(format!("{base}/loyalty/enrolments"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"email": "bo@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let state: serde_json::Value = client
        .get(format!("{base}/loyalty/export"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (state["not_enrolled"].clone(), state["retro_days"].clone()),
        (serde_json::json!(1), serde_json::json!(0)),
        "{state}"
    );
    drop(server);
    let out = Command::new(env!("CARGO_BIN_EXE_guesthub"))
        .arg("--data-dir")
        .arg(d)
        .args(["loyalty", "export"])
        .env("NC_PASSWORD", "cli-ftp-pass")
        .output()
        .unwrap();
    let text = ok(&out);
    assert!(
        text.contains("(ENROL 1, STAY 0, UNDO 0)") && text.contains("1 not enrolled"),
        "{text}"
    );
}

fn key_after(out: &str, var: &str) -> String {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("export {var}=")))
        .unwrap_or_else(|| panic!("no {var} in {out}"))
        .to_owned()
}

/// `guesthub demo` twice (safe to re-run), then the printed walkthrough,
/// step by step, against the served hub.
#[tokio::test]
async fn demo_then_its_walkthrough() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&guesthub(d, &["demo"]));
    let out = ok(&guesthub(d, &["demo", "--addr", "127.0.0.1:9"]));
    assert!(out.contains("serve --addr 127.0.0.1:9"), "{out}");
    let pms = key_after(&out, "PMS");
    let shop = key_after(&out, "SHOP");
    let code = out
        .split("/vouchers/")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_owned();
    let gift = out
        .split("\"gift_card_code\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let outbox: Vec<_> = std::fs::read_dir(d.join("outbox/loyalty"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        outbox.len(),
        1,
        "a re-run exports nothing twice: {outbox:?}"
    );
    let props = ok(&guesthub(d, &["property", "list"]));
    assert_eq!(props.matches("demo-").count(), 3, "{props}");

    let port = free_port();
    let _server = serve(d, port);
    let b = format!("http://127.0.0.1:{port}/v1/properties");
    let c = reqwest::Client::new();
    let get = |url: String, key: &str| c.get(url).bearer_auth(key.to_owned()).send();
    let post = |url: String, key: &str, idem: &str, body: serde_json::Value| {
        let mut r = c.post(url).bearer_auth(key.to_owned()).json(&body);
        if !idem.is_empty() {
            r = r.header("Idempotency-Key", idem.to_owned());
        }
        r.send()
    };

    // 1. The drop watcher imports the club file; Ana is Gold.
    let started = Instant::now();
    let member = loop {
        let v: serde_json::Value = get(
            format!("{b}/demo-winery/club-members/ana@example.com"),
            &shop,
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        if v["member"] == true || started.elapsed() > Duration::from_secs(20) {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(member["tiers"], serde_json::json!(["Gold"]), "{member}");
    let order: serde_json::Value = post(format!("{b}/demo-winery/orders"), &shop, "", serde_json::json!({"uuid":"demo-harvest-1","contact":{"email":"ana@example.com"},"items":[{"product_id":"harvest","unit_id":"adult","quantity":1,"date":"2027-09-20"}],"payment":{"mode":"pay_later","parts":[]}}))
        .await.unwrap().json().await.unwrap();
    assert_eq!(order["lines"][0]["discount"]["source"], "club_tier");
    assert_eq!(order["total"]["amount"], 6000);

    // 2. Vouchers.
    let orders: serde_json::Value = get(format!("{b}/demo-hotel/voucher-orders"), &pms)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(orders["orders"].as_array().is_some_and(|o| !o.is_empty()));
    let status: serde_json::Value = get(format!("{b}/demo-hotel/vouchers/{code}"), &pms)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["balance"]["amount"], 10000);
    let r: serde_json::Value = post(format!("{b}/demo-hotel/vouchers/{code}/redemptions"), &pms, "demo-r1", serde_json::json!({"amount":{"amount":2500,"currency":"EUR"},"reservation":{"number":"DEMO-1001"}}))
        .await.unwrap().json().await.unwrap();
    assert_eq!(r["balance"]["amount"], 7500, "{r}");
    let rid = r["redemption_id"].as_str().unwrap();
    let rev: serde_json::Value = post(
        format!("{b}/demo-hotel/vouchers/{code}/redemptions/{rid}/reversal"),
        &pms,
        "demo-r1-rev",
        serde_json::json!({}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(rev["balance"]["amount"], 10000, "{rev}");
    let today = chrono::Utc::now().date_naive();
    let csv = get(
        format!("{b}/demo-hotel/settlement?from={today}&to={today}&format=csv"),
        &pms,
    )
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(
        csv.contains("demo-hotel,demo-hotel,EUR,1,1,2500,2500,0"),
        "{csv}"
    );

    // 3. Memberships and a gift-card payment.
    let sale: serde_json::Value = post(format!("{b}/demo-winery/orders"), &shop, "", serde_json::json!({"uuid":"demo-club-1","contact":{"email":"chloe@example.com","first_name":"Chloe"},"items":[{"product_id":"club","unit_id":"member","quantity":1}],"payment":{"mode":"charge_now","parts":[{"method":"card","amount":{"amount":9900,"currency":"EUR"}}]}}))
        .await.unwrap().json().await.unwrap();
    let mem = sale["lines"][0]["memberships"][0]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let used: serde_json::Value = post(format!("{b}/demo-winery/orders"), &shop, "", serde_json::json!({"uuid":"demo-club-2","membership_reference":mem,"items":[{"product_id":"tasting","unit_id":"adult","quantity":2,"date":"2027-02-05"}],"payment":{"mode":"pay_later","parts":[]}}))
        .await.unwrap().json().await.unwrap();
    assert_eq!(used["total"]["amount"], 0, "{used}");
    let activity = get(format!("{b}/demo-winery/memberships/{mem}/bookings"), &shop)
        .await
        .unwrap();
    assert_eq!(activity.status(), 200);
    let paid: serde_json::Value = post(format!("{b}/demo-winery/orders"), &shop, "", serde_json::json!({"uuid":"demo-gift-1","contact":{"email":"eva@example.com"},"items":[{"product_id":"tasting","unit_id":"adult","quantity":1}],"payment":{"mode":"charge_now","parts":[{"method":"gift_card","amount":{"amount":2500,"currency":"EUR"},"gift_card_code":gift}]}}))
        .await.unwrap().json().await.unwrap();
    assert_eq!(paid["status"], "confirmed", "{paid}");

    // 5. Loyalty.
    let found: serde_json::Value = get(format!("{b}/demo-hotel/loyalty/members?q=lopez"), &pms)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        found["members"][0]["enrolment"]["state"], "exported",
        "{found}"
    );
    let again = ok(&guesthub(d, &["loyalty", "export", "demo-hotel"]));
    assert!(again.contains("nothing pending"), "{again}");
}

/// `property accept <p> --issuer <id> --pickup`: the issuer's value and
/// package orders sold from then on enter the hotel's own pickup feed.
#[tokio::test]
async fn property_accept_with_pickup() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for id in ["portal", "hotel"] {
        ok(&guesthub(
            d,
            &[
                "property",
                "add",
                id,
                "--name",
                id,
                "--time-zone",
                "Europe/Vienna",
                "--currency",
                "EUR",
            ],
        ));
    }
    let key = |name: &str, property: &str, scopes: &str| {
        let out = ok(&guesthub(
            d,
            &[
                "partner",
                "add",
                name,
                "--properties",
                property,
                "--scopes",
                scopes,
            ],
        ));
        out.lines().last().unwrap().trim().to_owned()
    };
    let shop = key("Portal shop", "portal", "vouchers:issue");
    let pms = key("Hotel PMS", "hotel", "vouchers:pickup,vouchers:read");
    // Its own feed is the only way it names: not its own property.
    let own = guesthub(
        d,
        &[
            "property", "accept", "hotel", "--issuer", "hotel", "--pickup",
        ],
    );
    assert!(!own.status.success());
    let out = ok(&guesthub(
        d,
        &[
            "property", "accept", "hotel", "--issuer", "portal", "--pickup",
        ],
    ));
    assert!(out.contains("hotel accepts vouchers of: portal"), "{out}");
    assert!(
        out.contains("picks up the voucher orders of portal"),
        "{out}"
    );

    let port = free_port();
    let _server = serve(d, port);
    let b = format!("http://127.0.0.1:{port}/v1/properties");
    let c = reqwest::Client::new();
    let mut sold = Vec::new();
    for body in [
        serde_json::json!({"article_type": "value", "value": {"amount": 5000, "currency": "EUR"}}),
        serde_json::json!({"article_type": "gift_card", "value": {"amount": 5000, "currency": "EUR"}}),
    ] {
        let r = c
            .post(format!("{b}/portal/vouchers"))
            .bearer_auth(&shop)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let j: serde_json::Value = r.json().await.unwrap();
        sold.push(j["code"].as_str().unwrap().to_owned());
    }
    let feed: serde_json::Value = c
        .get(format!("{b}/hotel/voucher-orders"))
        .bearer_auth(&pms)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let orders = feed["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1, "{feed}");
    assert_eq!(orders[0]["issuer"], "portal");
    assert_eq!(orders[0]["vouchers"][0]["code"], sold[0].as_str());
}

/// Runs `guesthub --output json <store args> <args>`; the stdout parsed
/// as one JSON document, and nothing else on it.
fn json_ok(data_dir: &std::path::Path, store: &[&str], args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(store);
    all.extend_from_slice(args);
    let out = ok(&guesthub(data_dir, &all));
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("{args:?}: not one JSON document ({e}):\n{out}"))
}

/// A refused command under `--output json`: non-zero exit, nothing on
/// stdout, `{"error": {"code", "message"}}` on stderr.
fn json_err(data_dir: &std::path::Path, store: &[&str], args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(store);
    all.extend_from_slice(args);
    let out = guesthub(data_dir, &all);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{args:?}: stderr is not a JSON error ({e}):\n{err}"));
    assert!(
        v["error"]["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    v
}

/// Every store-backed command's `--output json`, on the store `store` picks.
fn json_output_of_every_command(store: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v = json_ok(d, store, &["tables", "create"]);
    assert!(v["store"].is_string(), "{v}");

    let v = json_ok(
        d,
        store,
        &[
            "property",
            "add",
            "castle",
            "--name",
            "Castle",
            "--time-zone",
            "Europe/Vienna",
            "--currency",
            "EUR",
        ],
    );
    assert_eq!(v["property"]["id"], "castle", "{v}");
    assert_eq!(v["property"]["currency"], "EUR", "{v}");
    json_ok(
        d,
        store,
        &[
            "property",
            "add",
            "lake",
            "--name",
            "Lake",
            "--time-zone",
            "Europe/Vienna",
            "--currency",
            "EUR",
        ],
    );
    let v = json_ok(
        d,
        store,
        &[
            "property", "accept", "lake", "--issuer", "castle", "--pickup",
        ],
    );
    assert_eq!(v["property"]["accepts_vouchers_of"][0], "castle", "{v}");
    assert_eq!(v["pickup"], true, "{v}");
    let v = json_ok(
        d,
        store,
        &["property", "set", "lake", "--retention-days", "730"],
    );
    assert_eq!(v["property"]["retention_days"], 730, "{v}");
    let v = json_ok(d, store, &["property", "list"]);
    let ids: Vec<_> = v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"castle") && ids.contains(&"lake"), "{v}");

    let v = json_ok(
        d,
        store,
        &[
            "partner",
            "add",
            "Front desk",
            "--properties",
            "castle",
            "--scopes",
            "vouchers:read",
        ],
    );
    let key = v["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("ghk_"), "{v}");
    assert!(v["partner"].get("key_hash").is_none(), "{v}");
    let id = v["partner"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["partner"]["scopes"][0], "vouchers:read", "{v}");
    let v = json_ok(d, store, &["partner", "list"]);
    assert_eq!(v["partners"][0]["id"], id.as_str(), "{v}");
    assert!(!v.to_string().contains("key_hash"), "{v}");
    let v = json_ok(d, store, &["partner", "rotate", &id]);
    assert!(
        v["key"]
            .as_str()
            .is_some_and(|k| k.starts_with("ghk_") && k != key),
        "{v}"
    );
    let v = json_ok(d, store, &["partner", "disable", &id]);
    assert_eq!(v["partner"]["disabled"], true, "{v}");
    let v = json_ok(d, store, &["partner", "enable", &id]);
    assert_eq!(v["partner"]["disabled"], false, "{v}");

    let v = json_ok(d, store, &["crm", "sync"]);
    assert_eq!(v["properties"], serde_json::json!([]), "{v}");
    let v = json_ok(
        d,
        store,
        &[
            "crm",
            "connect",
            "castle",
            "--cloudbeds-property-id",
            "77",
            "--api-key-env",
            "CLOUDBEDS_KEY",
        ],
    );
    assert_eq!(v["connection"]["cloudbeds_property_id"], "77", "{v}");
    assert!(
        v["webhook_path"]
            .as_str()
            .unwrap()
            .starts_with("/v1/webhooks/cloudbeds/"),
        "{v}"
    );
    assert!(v["connection"].get("webhook_token_hash").is_none(), "{v}");
    // Screening written to the two custom fields, checked by an HTTP
    // service whose secret is named, never given.
    let v = json_ok(
        d,
        store,
        &[
            "crm",
            "connect",
            "castle",
            "--cloudbeds-property-id",
            "77",
            "--api-key-env",
            "CLOUDBEDS_KEY",
            "--screening-writeback",
            "fields",
            "--screening-url",
            "https://checks.example/v1/check",
            "--screening-secret-env",
            "SCREENING_SECRET",
        ],
    );
    assert_eq!(
        v["connection"]["screening_write_back"], "custom_field",
        "{v}"
    );
    assert_eq!(
        v["connection"]["screening_service"]["url"], "https://checks.example/v1/check",
        "{v}"
    );
    let e = json_err(
        d,
        store,
        &[
            "crm",
            "connect",
            "castle",
            "--cloudbeds-property-id",
            "77",
            "--api-key-env",
            "CLOUDBEDS_KEY",
            "--screening-url",
            "https://checks.example/v1/check",
            "--screening-secret-env",
            "s3cr3t value",
        ],
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--screening-secret-env"),
        "{e}"
    );

    let v = json_ok(
        d,
        store,
        &[
            "loyalty",
            "connect",
            "castle",
            "--url",
            "ftp://127.0.0.1:9/in",
            "--username",
            "hub",
            "--password-env",
            "NETCARROTS_PASSWORD",
            "--property-code",
            "CASTLE1",
        ],
    );
    assert_eq!(v["connection"]["username"], "hub", "{v}");
    let v = json_ok(d, store, &["loyalty", "export", "lake"]);
    assert_eq!(v["properties"][0]["property"], "lake", "{v}");
    assert!(v["totals"]["files"].is_u64(), "{v}");

    let club = d.join("club.csv");
    std::fs::write(
        &club,
        "MemberID,Email,FirstName,LastName,ClubDescr,ClubStatus\r\nM1,ana@example.com,Ana,Lopez,Gold,Active\r\n",
    )
    .unwrap();
    let v = json_ok(
        d,
        store,
        &["import", club.to_str().unwrap(), "--property", "castle"],
    );
    assert_eq!(v["report"]["members"], 1, "{v}");
    assert!(v["report"]["status"].is_string(), "{v}");

    // Erasing the member takes them off the roster and out of later files
    // until unsuppressed.
    let v = json_ok(
        d,
        store,
        &["guest", "erase", "castle", "--email", "Ana@Example.com"],
    );
    assert_eq!(v["erasure"]["status"], "erased", "{v}");
    assert_eq!(v["erasure"]["erased"]["roster_entries"], 1, "{v}");
    assert!(!v.to_string().contains("ana@"), "{v}");
    let club2 = d.join("club2.csv");
    std::fs::write(
        &club2,
        "MemberID,Email,FirstName,LastName,ClubDescr,ClubStatus\r\nM1,ana@example.com,Ana,Lopez,Gold,Active\r\nM2,bo@example.com,Bo,Berg,Gold,Active\r\n",
    )
    .unwrap();
    let v = json_ok(
        d,
        store,
        &["import", club2.to_str().unwrap(), "--property", "castle"],
    );
    assert_eq!(
        (&v["report"]["members"], &v["report"]["suppressed"]),
        (&serde_json::json!(1), &serde_json::json!(1)),
        "{v}"
    );
    let v = json_ok(
        d,
        store,
        &["club", "unsuppress", "castle", "--email", "ana@example.com"],
    );
    assert_eq!(v["unsuppressed"], true, "{v}");
    std::fs::write(
        &club2,
        "MemberID,Email,FirstName,LastName,ClubDescr,ClubStatus\r\nM1,ana@example.com,Ana,Lopez,Gold,Active\r\nM2,bo@example.com,Bo,Berg,Gold,Active\r\nM3,cy@example.com,Cy,Dahl,Gold,Active\r\n",
    )
    .unwrap();
    let v = json_ok(
        d,
        store,
        &["import", club2.to_str().unwrap(), "--property", "castle"],
    );
    assert_eq!(
        (&v["report"]["members"], &v["report"]["suppressed"]),
        (&serde_json::json!(3), &serde_json::json!(0)),
        "{v}"
    );
    json_err(
        d,
        store,
        &["guest", "erase", "nosuch", "--email", "ana@example.com"],
    );

    // Refusals are JSON on stderr, and lose nothing.
    let e = json_err(
        d,
        store,
        &["import", club.to_str().unwrap(), "--property", "nosuch"],
    );
    assert!(
        e["error"]["message"].as_str().unwrap().contains("nosuch"),
        "{e}"
    );
    json_err(
        d,
        store,
        &[
            "partner",
            "add",
            "X",
            "--properties",
            "nosuch",
            "--scopes",
            "vouchers:read",
        ],
    );
    json_err(d, store, &["partner", "rotate", "nosuch"]);
    let v = json_ok(d, store, &["partner", "list"]);
    assert_eq!(v["partners"].as_array().unwrap().len(), 1, "{v}");
}

#[test]
fn output_json_for_every_command_on_sqlite() {
    json_output_of_every_command(&[]);
}

#[test]
fn output_json_for_every_command_on_dynamodb() {
    let endpoint = std::env::var("GUESTHUB_TEST_MOTO")
        .expect("GUESTHUB_TEST_MOTO: run the tests with ./infra/test");
    let prefix = format!("clijson{}", std::process::id());
    json_output_of_every_command(&[
        "--store",
        "dynamodb",
        "--dynamodb-endpoint",
        &endpoint,
        "--table-prefix",
        &prefix,
    ]);
}

#[test]
fn output_json_for_openapi_demo_completions_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v = json_ok(d, &[], &["openapi"]);
    assert!(v["openapi"].is_string(), "{v}");
    let v = json_ok(d, &[], &["completions", "bash"]);
    assert_eq!(v["shell"], "bash", "{v}");
    assert!(v["script"].as_str().unwrap().contains("partner"), "{v}");
    let v = json_ok(d, &[], &["demo", "--addr", "127.0.0.1:9"]);
    for field in [
        "pms_key",
        "shop_key",
        "voucher_code",
        "gift_card_code",
        "walkthrough",
    ] {
        assert!(
            v[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}: {v}"
        );
    }

    // `serve` prints its listening line as one JSON object.
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_guesthub"))
        .arg("--data-dir")
        .arg(d)
        .args([
            "--output",
            "json",
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let _server = Server(child, stdout);
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["listening"], format!("http://127.0.0.1:{port}"), "{v}");
}

#[test]
fn usage_errors_under_output_json_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let e = json_err(dir.path(), &[], &["property", "bogus"]);
    assert_eq!(e["error"]["code"], "usage", "{e}");
    let e = json_err(dir.path(), &[], &["property", "add", "castle"]);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("--name"),
        "{e}"
    );
    // Text stays clap's own.
    let out = guesthub(dir.path(), &["property", "bogus"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error:"));
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = ok(&guesthub(dir.path(), &["completions", shell]));
        assert!(!out.trim().is_empty(), "{shell}");
        assert!(
            out.contains("partner") && out.contains("loyalty"),
            "{shell}:\n{out}"
        );
    }
    let out = guesthub(dir.path(), &["completions", "tcsh"]);
    assert!(!out.status.success());
}

/// The subcommands a `--help` lists under "Commands:" (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.split("Commands:")
        .nth(1)
        .map(|rest| {
            rest.lines()
                .skip(1)
                .take_while(|l| l.starts_with("  "))
                .filter_map(|l| l.split_whitespace().next())
                .filter(|c| *c != "help")
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_subcommand_help_has_an_example() {
    let dir = tempfile::tempdir().unwrap();
    let mut todo: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = ok(&guesthub(dir.path(), &args));
        let example = help
            .split("Example:\n")
            .nth(1)
            .and_then(|e| e.lines().next())
            .unwrap_or_default();
        assert!(
            example.trim_start().starts_with("guesthub "),
            "`guesthub {}` has no example in its help:\n{help}",
            path.join(" ")
        );
        for sub in subcommands(&help) {
            let mut next = path.clone();
            next.push(sub);
            todo.push(next);
        }
        seen += 1;
    }
    // Every command and subcommand was walked.
    assert!(seen >= 24, "walked only {seen} commands");
}

/// A property added with `--club-trial` starts in trial; a held drop is a
/// WARN line in the served hub's log and shows in `club status` (text and
/// JSON) with its reason.
#[test]
fn club_trial_status_and_held_file_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = ok(&guesthub(
        d,
        &[
            "property",
            "add",
            "castle",
            "--name",
            "Castle",
            "--time-zone",
            "Europe/Vienna",
            "--currency",
            "EUR",
            "--club-trial",
        ],
    ));
    assert!(out.contains("club in trial mode"), "{out}");
    let club = d.join("members.csv");
    std::fs::write(
        &club,
        "MemberID,Email,ClubDescr,ClubStatus\r\nM1,ana@example.com,Gold,Active\r\nM2,bo@example.com,Gold,Active\r\n",
    )
    .unwrap();
    ok(&guesthub(
        d,
        &["import", club.to_str().unwrap(), "--property", "castle"],
    ));
    let out = ok(&guesthub(d, &["club", "status", "castle"]));
    assert!(out.contains("club of castle: trial"), "{out}");
    assert!(out.contains("active roster: 2 members"), "{out}");
    assert!(out.contains("held imports: none"), "{out}");

    // The served hub's log says when a dropped file is held.
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_guesthub"))
        .arg("--data-dir")
        .arg(d)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let drop = d.join("drop/ams/castle");
    std::fs::create_dir_all(&drop).unwrap();
    std::fs::write(drop.join("members.csv"), "MemberID,Email,ClubDescr\r\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut warned = None;
    while warned.is_none() && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(500))
            && line.contains("club file HELD")
        {
            warned = Some(line);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = warned.expect("a WARN line for the held file");
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("castle") && line.contains("members.csv"),
        "{line}"
    );
    assert!(!line.contains("@example.com"), "{line}");

    let v: serde_json::Value = serde_json::from_str(&ok(&guesthub(
        d,
        &["--output", "json", "club", "status", "castle"],
    )))
    .unwrap();
    let c = &v["club"];
    assert_eq!(c["mode"], "trial", "{v}");
    assert_eq!(c["active"]["members"], 2, "{v}");
    assert_eq!(c["held"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(c["held"][0]["file"], "members.csv", "{v}");
    assert!(c["held"][0]["reason"].is_string(), "{v}");
    assert_eq!(c["last_import"]["id"], c["held"][0]["id"], "{v}");
    let out = ok(&guesthub(d, &["club", "status", "castle"]));
    assert!(out.contains("HELD "), "{out}");
}
