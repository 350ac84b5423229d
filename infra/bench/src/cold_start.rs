//! Cold start: from spawning a function's process to its answer to the first
//! invocation under the Runtime API emulator. The invocation is a voucher
//! status request (API Gateway HTTP API v2 event) against DynamoDB on moto,
//! so the time includes configuration, the SDK client and the first reads.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use platform::Store;
use platform::store::ItemStore;

use crate::moto::Moto;
use crate::runtime_api::{Answer, Emulator};
use crate::{Options, Row, built_binary, na_row, spread, stat};

/// What every run invokes: one status request and the code it must return.
pub struct Seeded {
    pub prefix: String,
    pub event: String,
    pub code: String,
}

/// A property, a partner key and a voucher on fresh tables on `moto`.
pub async fn seed(moto: &Moto) -> Result<Seeded, String> {
    let prefix = format!("cold{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let items = moto.items(&prefix);
    items.create_tables().await.map_err(|e| e.to_string())?;
    let store = Store::new(items);
    guesthub::admin::add_property(&store, "castle", "Castle", "Europe/Vienna", "EUR")
        .await
        .map_err(|e| e.to_string())?;
    let scopes = ["vouchers:read".to_owned(), "vouchers:issue".to_owned()];
    let (_, key) = guesthub::admin::add_partner(&store, "PMS", &["castle".into()], &scopes)
        .await
        .map_err(|e| e.to_string())?;
    let app = guesthub::app::router(store, 64 * 1024);
    let body = serde_json::json!({"article_type": "value", "value": {"amount": 10_000, "currency": "EUR"}});
    let (status, issued) = crate::call(
        &app,
        "POST",
        "/v1/properties/castle/vouchers",
        &key,
        None,
        Some(body.to_string()),
    )
    .await;
    if status != 201 {
        return Err(format!("issuing the voucher: {status} {issued}"));
    }
    let issued: serde_json::Value = serde_json::from_str(&issued).map_err(|e| e.to_string())?;
    let code = issued["code"].as_str().ok_or("no code issued")?.to_owned();
    let path = format!("/v1/properties/castle/vouchers/{code}");
    Ok(Seeded {
        prefix,
        event: http_api_event(&path, &key).to_string(),
        code,
    })
}

/// An API Gateway HTTP API (payload 2.0) GET, as Lambda would deliver it.
fn http_api_event(path: &str, key: &str) -> serde_json::Value {
    let now = chrono::Utc::now();
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "accept": "application/json",
            "authorization": format!("Bearer {key}"),
            "host": "bench.execute-api.us-east-1.amazonaws.com",
            "user-agent": "guesthub-bench",
            "x-forwarded-proto": "https"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "bench",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "guesthub-bench"
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis()
        },
        "isBase64Encoded": false
    })
}

/// A function to start: the program, its arguments and working directory.
pub struct Function {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
}

/// The environment Lambda gives every function, plus the store's.
pub(crate) fn lambda_env(moto: &Moto, prefix: &str, api: &str) -> Vec<(&'static str, String)> {
    let mut env = moto.env(prefix);
    env.extend([
        ("AWS_LAMBDA_RUNTIME_API", api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", "bench".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
        ("AWS_LAMBDA_LOG_LEVEL", "warn".into()),
        ("PATH", std::env::var("PATH").unwrap_or_default()),
    ]);
    env
}

/// Milliseconds of fresh processes: from spawn to the answer (`total`), and
/// from spawn to the first poll for work (`init`).
#[derive(Default)]
pub struct Timings {
    pub total: Vec<f64>,
    pub init: Vec<f64>,
}

impl Timings {
    fn push(&mut self, (total, init): (f64, f64)) {
        self.total.push(total);
        self.init.push(init);
    }
}

async fn once(
    f: &Function,
    moto: &Moto,
    seeded: &Seeded,
    log: &Path,
) -> Result<(f64, f64), String> {
    let mut emulator = Emulator::start(seeded.event.clone()).await;
    let mut cmd = tokio::process::Command::new(&f.program);
    cmd.args(&f.args)
        .env_clear()
        .envs(lambda_env(moto, &seeded.prefix, &emulator.addr.to_string()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).map_err(|e| e.to_string())?)
        .kill_on_drop(true);
    if let Some(dir) = &f.cwd {
        cmd.current_dir(dir);
    }
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{}: {e}", f.program.display()))?;
    let answer = tokio::select! {
        a = emulator.answer() => a,
        status = child.wait() => return Err(failed(&format!("exited ({status:?})"), log)),
        _ = tokio::time::sleep(Duration::from_secs(60)) => None,
    };
    let _ = child.kill().await;
    match answer {
        Some(Answer::Response { polled, at, body }) => {
            check(&body, &seeded.code).map_err(|e| failed(&e, log))?;
            let ms = |t: Instant| t.duration_since(started).as_secs_f64() * 1e3;
            Ok((ms(at), ms(polled)))
        }
        Some(Answer::Error(e)) => Err(failed(&format!("reported an error: {e}"), log)),
        None => Err(failed("did not answer within 60 s", log)),
    }
}

/// The answer must be a 200 carrying the voucher.
fn check(body: &[u8], code: &str) -> Result<(), String> {
    let resp: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let inner: serde_json::Value =
        serde_json::from_str(resp["body"].as_str().unwrap_or_default()).unwrap_or_default();
    if resp["statusCode"] == 200 && inner["code"] == code {
        Ok(())
    } else {
        Err(format!(
            "unexpected answer: {}",
            String::from_utf8_lossy(body)
        ))
    }
}

fn failed(what: &str, log: &Path) -> String {
    let stderr = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
    format!(
        "{what}; stderr: {}",
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    )
}

/// The Python peer under awslambdaric when it is installed, else under the
/// peer's own minimal runtime loop; and which of the two.
fn python_function(python: &str) -> (Function, &'static str) {
    let peers = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers");
    let has_ric = std::process::Command::new(python)
        .args(["-c", "import awslambdaric"])
        .output()
        .is_ok_and(|o| o.status.success());
    let (args, runner) = if has_ric {
        (
            vec![
                "-m".into(),
                "awslambdaric".into(),
                "status_handler.handler".into(),
            ],
            "awslambdaric",
        )
    } else {
        (
            vec!["status_handler.py".into()],
            "minimal urllib runtime loop",
        )
    };
    let f = Function {
        program: PathBuf::from(python),
        args,
        cwd: Some(peers),
    };
    (f, runner)
}

/// Cold start of `vouchers-api` against the Python handler, and its size.
pub async fn cases(opts: &Options, moto: &Moto, dir: &Path) -> Vec<Row> {
    let runs = opts.cold_runs;
    let Some(binary) = built_binary("vouchers-api") else {
        return vec![na_row(
            "cold start, `vouchers-api`",
            "build it: cargo build --release -p vouchers-api",
        )];
    };
    let profile = binary
        .parent()
        .and_then(|d| d.file_name())
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let case = format!(
        "cold start to first voucher status (Runtime API emulator, moto), `vouchers-api` ({profile}), {runs} runs"
    );
    let seeded = match seed(moto).await {
        Ok(s) => s,
        Err(e) => return vec![na_row(&case, &e)],
    };
    let ours_fn = Function {
        program: binary.clone(),
        args: vec![],
        cwd: None,
    };
    let (peer_fn, runner) = python_function(&opts.python);
    // Alternating, so a change in the machine's load hits both alike.
    let (mut ours, mut peer, mut peer_error) = (Timings::default(), Timings::default(), None);
    for _ in 0..runs {
        match once(&ours_fn, moto, &seeded, &dir.join("vouchers-api.log")).await {
            Ok(t) => ours.push(t),
            Err(e) => return vec![na_row(&case, &e)],
        }
        if peer_error.is_none() {
            match once(&peer_fn, moto, &seeded, &dir.join("python.log")).await {
                Ok(t) => peer.push(t),
                Err(e) => peer_error = Some(e),
            }
        }
    }
    let ours_total = stat(ours.total);
    let (peer_txt, ratio) = match peer_error {
        None => {
            let p = stat(peer.total);
            (
                format!(
                    "{}; init {:.1} ms (Python, boto3, {runner})",
                    spread(&p, "ms", 1),
                    stat(peer.init).median
                ),
                format!("{:.1}× faster", p.median / ours_total.median),
            )
        }
        Some(e) => (format!("n/a: {e}"), "n/a".into()),
    };
    let size = std::fs::metadata(&binary).map_or(0, |m| m.len());
    vec![
        Row {
            case,
            ours: format!(
                "{}; init {:.1} ms",
                spread(&ours_total, "ms", 1),
                stat(ours.init).median
            ),
            peer: peer_txt,
            ratio,
        },
        Row {
            case: format!(
                "size of the `vouchers-api` binary ({profile}, {})",
                std::env::consts::ARCH
            ),
            ours: format!("{:.1} MB", size as f64 / 1e6),
            peer: "—".into(),
            ratio: "—".into(),
        },
    ]
}
