//! Roster import end to end into DynamoDB on moto: the `ams-import`
//! pipeline against a boto3 `batch_writer` importer, alternating run by run
//! on the same moto server, each run on fresh tables.

use std::path::Path;
use std::sync::Arc;

use platform::store::ItemStore;

use crate::moto::Moto;
use crate::{Options, Row, generate, na_row, spread, stat};

/// Rows per second and store requests of one import through the pipeline.
async fn run_ours(moto: &Moto, file: &Path, rows: usize) -> Result<(f64, u64), String> {
    let prefix = format!("imp{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let items = moto.items(&prefix);
    items.create_tables().await.map_err(|e| e.to_string())?;
    let items: Arc<dyn ItemStore> = items;
    let (secs, requests) = crate::import_into(items, file).await;
    Ok((rows as f64 / secs, requests))
}

/// Rows per second of `peers/import_roster_boto3.py` on the same file.
fn run_peer(python: &str, moto: &Moto, file: &Path, rows: usize) -> Result<f64, String> {
    let prefix = format!("peer{}", uuid::Uuid::new_v4().simple());
    let (secs, _) = run_peer_at(python, moto, &moto.endpoint, &prefix, file)?;
    Ok(rows as f64 / secs)
}

/// Runs the boto3 peer against `endpoint` (moto, or a proxy in front of it)
/// into a fresh table `<prefix>-roster`: its seconds and the members it wrote.
pub(crate) fn run_peer_at(
    python: &str,
    moto: &Moto,
    endpoint: &str,
    prefix: &str,
    file: &Path,
) -> Result<(f64, u64), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/import_roster_boto3.py");
    let table = format!("{prefix}-roster");
    let out = std::process::Command::new(python)
        .arg(script)
        .args([endpoint, &table])
        .arg(file)
        .arg("castle")
        .envs(moto.env(""))
        .output()
        .map_err(|e| format!("{python}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut words = stdout.split_whitespace();
    let secs: Option<f64> = words.next().and_then(|s| s.parse().ok());
    let members: Option<u64> = words.next().and_then(|s| s.parse().ok());
    match (secs, members) {
        (Some(s), Some(m)) if out.status.success() => Ok((s, m)),
        _ => Err(format!(
            "boto3 peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
    }
}

/// Import into DynamoDB on `moto`: ours and the boto3 peer, alternating.
pub async fn case(opts: &Options, moto: &Moto, dir: &Path) -> Row {
    let n = opts.dynamo_rows;
    let case = format!("roster import into DynamoDB (moto), {n} rows");
    let file = dir.join(format!("ams_dynamo_{n}.csv"));
    generate(&file, n).unwrap();
    let (mut ours, mut peer, mut requests) = (Vec::new(), Vec::new(), 0);
    let mut peer_error = None;
    for _ in 0..opts.runs {
        match run_ours(moto, &file, n).await {
            Ok((rate, r)) => {
                ours.push(rate);
                requests = r;
            }
            Err(e) => return na_row(&case, &e),
        }
        match run_peer(&opts.python, moto, &file, n) {
            Ok(rate) => peer.push(rate),
            Err(e) => peer_error = Some(e),
        }
    }
    let _ = std::fs::remove_file(&file);
    let ours = stat(ours);
    let (peer_txt, ratio) = match (peer.is_empty(), peer_error) {
        (true, e) => (format!("n/a: {}", e.unwrap_or_default()), "n/a".into()),
        (false, _) => {
            let p = stat(peer);
            (
                format!("{} (boto3 batch_writer)", spread(&p, "rows/s", 0)),
                format!("{:.1}×", ours.median / p.median),
            )
        }
    };
    Row {
        case,
        ours: format!(
            "{}; {:.3} store requests/row",
            spread(&ours, "rows/s", 0),
            requests as f64 / n as f64
        ),
        peer: peer_txt,
        ratio,
    }
}
