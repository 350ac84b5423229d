//! A property's first roster import end to end: the release `guesthub
//! import` process into SQLite against `peers/import_roster_sqlite.py`
//! (`csv.DictReader`, the same checks, `sqlite3` executemany into a members
//! table), each timed from spawn to exit, alternating run by run.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::{Options, Row, built_binary, generate, na_row, spread, stat};

/// Seconds of `guesthub import` into a fresh data directory (the property is
/// added first, untimed).
fn ours(binary: &Path, dir: &Path, file: &Path) -> Result<f64, String> {
    let data = dir.join(format!("first-{}", uuid::Uuid::new_v4().simple()));
    let run = |args: &[&str]| {
        Command::new(binary)
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .map_err(|e| e.to_string())
    };
    let added = run(&[
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
    if !added.status.success() {
        return Err(String::from_utf8_lossy(&added.stderr).into_owned());
    }
    let started = Instant::now();
    let out = run(&["import", file.to_str().unwrap(), "--property", "castle"])?;
    let secs = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&data);
    if out.status.success() {
        Ok(secs)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Seconds of the Python peer into a fresh database file.
fn peer(python: &str, dir: &Path, file: &Path) -> Result<f64, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/import_roster_sqlite.py");
    let db = dir.join(format!("peer-{}.sqlite3", uuid::Uuid::new_v4().simple()));
    let started = Instant::now();
    let out = Command::new(python)
        .arg(script)
        .arg(file)
        .arg(&db)
        .arg("castle")
        .output()
        .map_err(|e| format!("{python}: {e}"))?;
    let secs = started.elapsed().as_secs_f64();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    if out.status.success() {
        Ok(secs)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

pub fn case(opts: &Options, dir: &Path) -> Row {
    let n = opts.rows;
    let case = format!("first import end to end (`guesthub import` into SQLite), {n} rows");
    let Some(binary) = built_binary("guesthub") else {
        return na_row(&case, "build it: cargo build --release -p guesthub");
    };
    let file = dir.join(format!("ams_first_{n}.csv"));
    generate(&file, n).unwrap();
    let (mut ours_rates, mut peer_rates, mut peer_error) = (Vec::new(), Vec::new(), None);
    for _ in 0..opts.runs {
        match ours(&binary, dir, &file) {
            Ok(s) => ours_rates.push(n as f64 / s),
            Err(e) => return na_row(&case, &e),
        }
        match peer(&opts.python, dir, &file) {
            Ok(s) => peer_rates.push(n as f64 / s),
            Err(e) => peer_error = Some(e),
        }
    }
    let _ = std::fs::remove_file(&file);
    let ours = stat(ours_rates);
    let (peer_txt, ratio) = if peer_rates.is_empty() {
        (
            format!("n/a: {}", peer_error.unwrap_or_default()),
            "n/a".into(),
        )
    } else {
        let p = stat(peer_rates);
        (
            format!("{} (Python csv + sqlite3)", spread(&p, "rows/s", 0)),
            format!("{:.1}×", ours.median / p.median),
        )
    };
    Row {
        case,
        ours: spread(&ours, "rows/s", 0),
        peer: peer_txt,
        ratio,
    }
}
