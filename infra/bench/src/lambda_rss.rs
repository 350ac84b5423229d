//! Peak memory of the `ams-import` function importing a large roster: the
//! release binary under the Runtime API emulator gets one S3 `ObjectCreated`
//! event for a file put into a bucket on moto, streams it from S3 and
//! imports it; its peak RSS (`VmHWM`) is read once it has answered.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use domain::PropertyId;
use domain::roster::import::ImportStatus;
use domain::roster::store::RosterStore;
use platform::Store;
use platform::store::ItemStore;
use platform::store::sqlite::SqliteItems;

use crate::moto::{ACCESS_KEY, Moto, REGION, SECRET_KEY};
use crate::runtime_api::{Answer, Emulator};
use crate::{Options, Row, built_binary, generate, na_row};

fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "bench",
        ))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn s3_event(bucket: &str, key: &str, size: u64) -> String {
    serde_json::json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": chrono::Utc::now().to_rfc3339(),
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "bench"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "bench",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "bench"}, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": key, "size": size, "eTag": uuid::Uuid::new_v4().simple().to_string(), "sequencer": "0001"}
        }
    }]})
    .to_string()
}

/// `VmHWM` of a live process, in kB.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Seconds and peak RSS (kB) of one import of `rows` rows through the
/// function, with the store `kind` (`sqlite` or `dynamodb` on moto).
async fn once(
    moto: &Moto,
    dir: &Path,
    binary: &Path,
    kind: &str,
    rows: usize,
) -> Result<(f64, u64), String> {
    let file = dir.join(format!("ams_lambda_{rows}.csv"));
    let size = generate(&file, rows).map_err(|e| e.to_string())?;
    let s3 = s3_client(&moto.endpoint);
    let bucket = format!("drop-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let key = "ams/castle/members.csv";
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body = aws_sdk_s3::primitives::ByteStream::from_path(&file)
        .await
        .map_err(|e| e.to_string())?;
    s3.put_object()
        .bucket(&bucket)
        .key(key)
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&file);

    let prefix = format!("mem{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let sqlite_path = dir.join(format!("{prefix}.sqlite3"));
    let items: Arc<dyn ItemStore> = match kind {
        "sqlite" => Arc::new(SqliteItems::open(&sqlite_path).map_err(|e| e.to_string())?),
        _ => moto.items(&prefix),
    };
    items.create_tables().await.map_err(|e| e.to_string())?;
    let store = Store::new(items);
    guesthub::admin::add_property(&store, "castle", "Castle", "America/Los_Angeles", "USD")
        .await
        .map_err(|e| e.to_string())?;

    let limit = Duration::from_secs(900);
    let mut emulator = Emulator::with_limit(s3_event(&bucket, key, size), limit).await;
    let mut env = crate::cold_start::lambda_env(moto, &prefix, &emulator.addr.to_string());
    env.retain(|(k, _)| *k != "AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
    env.extend([
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_ENDPOINT_URL_S3", moto.endpoint.clone()),
    ]);
    if kind == "sqlite" {
        env.retain(|(k, _)| *k != "GUESTHUB_STORE");
        env.extend([
            ("GUESTHUB_STORE", "sqlite".to_owned()),
            ("GUESTHUB_SQLITE_PATH", sqlite_path.display().to_string()),
        ]);
    }
    let log = dir.join(format!("{prefix}.log"));
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let pid = child.id().unwrap_or_default();
    let answer = tokio::select! {
        a = emulator.answer() => a,
        status = child.wait() => return Err(format!("ams-import exited ({status:?}); log {}", log.display())),
        _ = tokio::time::sleep(limit) => None,
    };
    let secs = started.elapsed().as_secs_f64();
    let rss = peak_rss_kb(pid);
    let _ = child.kill().await;
    match answer {
        Some(Answer::Response { .. }) => {}
        Some(Answer::Error(e)) => return Err(format!("ams-import reported an error: {e}")),
        None => return Err("ams-import did not answer in time".into()),
    }
    let report = store
        .import_reports(&PropertyId::parse("castle").unwrap(), 1)
        .await
        .map_err(|e| e.to_string())?;
    if report.first().map(|r| &r.status) != Some(&ImportStatus::Applied) {
        return Err(format!("the import was not applied: {report:?}"));
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", sqlite_path.display()));
    }
    let _ = std::fs::remove_file(&log);
    Ok((secs, rss.ok_or("no VmHWM")?))
}

/// One row per store: the function's peak RSS and time.
pub async fn cases(opts: &Options, moto: &Moto, dir: &Path) -> Vec<Row> {
    let Some(binary) = built_binary("ams-import") else {
        return vec![na_row(
            "peak RSS of the `ams-import` function",
            "build it: cargo build --release -p ams-import",
        )];
    };
    let mut rows = Vec::new();
    for (kind, n) in [("sqlite", opts.rows), ("dynamodb", opts.lambda_dynamo_rows)] {
        let case = format!(
            "peak RSS of the `ams-import` function (Runtime API emulator, S3 on moto), {n} rows, {} store",
            if kind == "sqlite" {
                "SQLite"
            } else {
                "DynamoDB (moto)"
            }
        );
        match once(moto, dir, &binary, kind, n).await {
            Ok((secs, kb)) => rows.push(Row {
                case,
                ours: format!("{:.1} MB in {secs:.1} s", kb as f64 / 1024.0),
                peer: "—".into(),
                ratio: "—".into(),
            }),
            Err(e) => rows.push(na_row(&case, &e)),
        }
    }
    rows
}
