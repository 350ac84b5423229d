//! Club files on the local runner: `guesthub import <file> --property <id>`
//! and the drop folder `<data-dir>/drop/ams/<property>/<file>` standing in
//! for the S3 bucket. A dropped file is imported once it is complete — its
//! size and modification time unchanged across two polls, and not a
//! temporary name — then moved to `drop/processed/`, or to `drop/failed/` when
//! it is rejected or is not a club file.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ams_import::{ImportRequest, Input, import};
use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use domain::PropertyId;
use domain::ports::PropertyStore;
use domain::roster::file_kind;
use domain::roster::import::{ImportReport, ImportSource, ImportStatus};
use domain::roster::store::{ClubMode, RosterStore};
use indicatif::{ProgressBar, ProgressStyle};
use platform::Store;
use serde::Serialize;

/// How often the drop folder is looked at.
const POLL: Duration = Duration::from_secs(2);

fn source_of(key: String, meta: &std::fs::Metadata) -> ImportSource {
    let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let nanos = mtime
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    ImportSource {
        key,
        etag: format!("{}-{nanos}", meta.len()),
        sequencer: None,
        arrived_at: DateTime::<Utc>::from(mtime),
    }
}

/// Counts bytes as the parser reads them, for the progress bar.
struct Counting<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// Imports one file from the command line, with a progress bar on stderr.
pub async fn import_file(
    store: &Store,
    property: &str,
    path: &Path,
) -> anyhow::Result<ImportReport> {
    let id = PropertyId::parse(property)?;
    let property = store
        .property(&id)
        .await?
        .with_context(|| format!("no property {id}"))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("the file has no name")?;
    let kind =
        file_kind(name).context("a club file must end in .csv, .txt, .tsv, .xlsx or .xls")?;
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let source = source_of(format!("ams/{id}/{name}"), &meta);
    let bar = ProgressBar::new(meta.len());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {wide_bar} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let input = match Input::open(path, kind)? {
        Input::Stream(inner) => Input::Stream(Box::new(Counting {
            inner,
            bar: bar.clone(),
        })),
        file => file,
    };
    let req = ImportRequest::new(property, source, input).context("not a club file")?;
    let report = import(store, req).await;
    bar.finish_and_clear();
    Ok(report?)
}

/// A short human summary of a report.
pub fn summary(r: &ImportReport) -> String {
    let mut s = format!(
        "import {} of {}: {:?}{}\n  rows {}, members {}, former members {}, rejected rows {}, {} ms\n",
        r.id,
        r.file,
        r.status,
        r.reason
            .as_deref()
            .map(|x| format!(" ({x})"))
            .unwrap_or_default(),
        r.rows,
        r.members,
        r.former_members,
        r.rejected_rows,
        r.duration_ms
    );
    if r.suppressed > 0 {
        s.push_str(&format!(
            "  suppressed {} (erased people; `guesthub club unsuppress` lets one back)\n",
            r.suppressed
        ));
    }
    for (tier, n) in &r.tier_counts {
        s.push_str(&format!("  tier {tier}: {n}\n"));
    }
    for rej in r.rejects.iter().take(10) {
        s.push_str(&format!(
            "  line {} ({}): {}\n",
            rej.line, rej.column, rej.reason
        ));
    }
    if r.rejected_rows > 10 {
        s.push_str(&format!(
            "  … {} more rejected rows in the report\n",
            r.rejected_rows - 10
        ));
    }
    s
}

/// `guesthub club status`: what a club manager needs to know at a glance.
#[derive(Debug, Serialize)]
pub struct ClubStatus {
    pub property: String,
    pub mode: ClubMode,
    /// The roster recognition uses once live (`None`: no file applied yet).
    pub active: Option<ActiveView>,
    pub last_import: Option<ImportBrief>,
    /// Recent imports waiting for approval, newest first.
    pub held: Vec<ImportBrief>,
}

#[derive(Debug, Serialize)]
pub struct ActiveView {
    pub generation: String,
    pub import_id: String,
    pub applied_at: DateTime<Utc>,
    pub members: u64,
}

#[derive(Debug, Serialize)]
pub struct ImportBrief {
    pub id: String,
    pub file: String,
    pub status: ImportStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub started_at: DateTime<Utc>,
    pub members: u64,
}

impl From<&ImportReport> for ImportBrief {
    fn from(r: &ImportReport) -> Self {
        Self {
            id: r.id.clone(),
            file: r.file.clone(),
            status: r.status,
            reason: r.reason.clone(),
            started_at: r.started_at,
            members: r.members,
        }
    }
}

/// How many recent imports `club status` looks through for held ones.
const STATUS_IMPORTS: usize = 50;

pub async fn club_status(store: &Store, property: &str) -> anyhow::Result<ClubStatus> {
    let id = PropertyId::parse_live(property)?;
    store
        .property(&id)
        .await?
        .with_context(|| format!("no property {id}"))?;
    let reports = store.import_reports(&id, STATUS_IMPORTS).await?;
    Ok(ClubStatus {
        property: id.to_string(),
        mode: store.club_mode(&id).await?,
        active: store.active_roster(&id).await?.map(|(a, _)| ActiveView {
            generation: a.generation,
            import_id: a.import_id,
            applied_at: a.applied_at,
            members: a.members,
        }),
        last_import: reports.first().map(ImportBrief::from),
        held: reports
            .iter()
            .filter(|r| r.status == ImportStatus::Held)
            .map(ImportBrief::from)
            .collect(),
    })
}

/// `club status` as text.
pub fn status_text(s: &ClubStatus) -> String {
    let mode = match s.mode {
        ClubMode::Live => "live (members recognised, club discounts on)",
        ClubMode::Trial => "trial (files imported; nobody recognised, no club discounts)",
    };
    let mut out = format!("club of {}: {mode}\n", s.property);
    match &s.active {
        Some(a) => out.push_str(&format!(
            "active roster: {} members, import {} applied {}\n",
            a.members,
            a.import_id,
            a.applied_at.format("%Y-%m-%d %H:%M UTC")
        )),
        None => out.push_str("active roster: none yet\n"),
    }
    match &s.last_import {
        Some(r) => out.push_str(&format!(
            "last import: {} of {} at {}: {:?}{}\n",
            r.id,
            r.file,
            r.started_at.format("%Y-%m-%d %H:%M UTC"),
            r.status,
            r.reason
                .as_deref()
                .map(|x| format!(" ({x})"))
                .unwrap_or_default()
        )),
        None => out.push_str("last import: none\n"),
    }
    if s.held.is_empty() {
        out.push_str("held imports: none\n");
    }
    for r in &s.held {
        out.push_str(&format!(
            "HELD {} of {} at {}: {} — approve with POST /v1/properties/{}/roster-imports/{}/approve\n",
            r.id,
            r.file,
            r.started_at.format("%Y-%m-%d %H:%M UTC"),
            r.reason.as_deref().unwrap_or("held"),
            s.property,
            r.id
        ));
    }
    out
}

/// One file seen in the drop folder, and whether it has stopped changing.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Seen {
    len: u64,
    modified: SystemTime,
}

fn is_temporary(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with(".tmp")
        || name.ends_with(".part")
        || name.ends_with('~')
}

/// Files under `drop/ams/<property>/`, as (property, path).
fn candidates(drop: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(props) = std::fs::read_dir(drop.join("ams")) else {
        return out;
    };
    for p in props.flatten().filter(|e| e.path().is_dir()) {
        let Ok(files) = std::fs::read_dir(p.path()) else {
            continue;
        };
        for f in files.flatten().filter(|e| e.path().is_file()) {
            let name = f.file_name().to_string_lossy().into_owned();
            if !is_temporary(&name) {
                out.push((p.file_name().to_string_lossy().into_owned(), f.path()));
            }
        }
    }
    out.sort();
    out
}

fn move_to(drop: &Path, bucket: &str, property: &str, path: &Path) {
    let Some(name) = path.file_name() else { return };
    let dir = drop.join(bucket).join(property);
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let target = dir.join(format!("{stamp}_{}", name.to_string_lossy()));
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|_| std::fs::rename(path, &target)) {
        tracing::warn!(error = %e, "could not move a processed club file");
    }
}

/// Imports the complete files of one poll; returns the reports.
async fn poll_once(
    store: &Store,
    drop: &Path,
    seen: &mut HashMap<PathBuf, Seen>,
) -> Vec<ImportReport> {
    let mut reports = Vec::new();
    let files = candidates(drop);
    seen.retain(|p, _| files.iter().any(|(_, f)| f == p));
    for (property, path) in files {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let now = Seen {
            len: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        };
        // Still being written: wait for a poll that sees it unchanged.
        if seen.insert(path.clone(), now) != Some(now) {
            continue;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let result = async {
            let id = PropertyId::parse(&property)?;
            let Some(prop) = store.property(&id).await? else {
                bail!("unknown property {property}")
            };
            let kind =
                file_kind(&name).context("not a club file (.csv, .txt, .tsv, .xlsx, .xls)")?;
            let source = source_of(format!("ams/{property}/{name}"), &meta);
            let input = Input::open(&path, kind)?;
            let req = ImportRequest::new(prop, source, input).context("not a club file")?;
            Ok(import(store, req).await?)
        }
        .await;
        seen.remove(&path);
        match result {
            Ok(report) => {
                tracing::info!(file = %name, status = ?report.status, "dropped club file imported");
                // A rejected file (unreadable, refused, no email column) goes
                // to failed/ beside files that are not club files at all.
                let to = if report.status == ImportStatus::Rejected {
                    "failed"
                } else {
                    "processed"
                };
                move_to(drop, to, &property, &path);
                reports.push(report);
            }
            Err(e) => {
                // Transient store trouble: leave the file for the next poll.
                if e.downcast_ref::<ams_import::ImportError>().is_some() {
                    tracing::warn!(error = %e, "importing a dropped club file failed; retrying");
                } else {
                    tracing::warn!(error = %e, "a dropped club file was not imported");
                    move_to(drop, "failed", &property, &path);
                }
            }
        }
    }
    reports
}

/// Watches `<data_dir>/drop/` until the task is aborted; raw files kept
/// after their import are deleted once older than `retention`.
pub fn spawn_drop_watcher(
    store: Store,
    data_dir: &Path,
    retention: Duration,
) -> tokio::task::JoinHandle<()> {
    let drop = data_dir.join("drop");
    let data_dir = data_dir.to_path_buf();
    let _ = std::fs::create_dir_all(drop.join("ams"));
    tokio::spawn(async move {
        let mut seen = HashMap::new();
        loop {
            poll_once(&store, &drop, &mut seen).await;
            prune_drop_folder(&data_dir, retention, SystemTime::now());
            tokio::time::sleep(POLL).await;
        }
    })
}

/// Deletes raw club files in `drop/processed/` and `drop/failed/` last
/// modified (moved there) more than `retention` before `now`: they hold
/// names and addresses and are not needed once imported. Returns how many
/// were deleted.
pub fn prune_drop_folder(data_dir: &Path, retention: Duration, now: SystemTime) -> usize {
    let Some(cutoff) = now.checked_sub(retention) else {
        return 0;
    };
    let mut deleted = 0;
    for bucket in ["processed", "failed"] {
        let Ok(props) = std::fs::read_dir(data_dir.join("drop").join(bucket)) else {
            continue;
        };
        for p in props.flatten().filter(|e| e.path().is_dir()) {
            for f in std::fs::read_dir(p.path()).into_iter().flatten().flatten() {
                let old = f
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < cutoff);
                if old && f.path().is_file() && std::fs::remove_file(f.path()).is_ok() {
                    deleted += 1;
                }
            }
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, "old raw club files deleted");
    }
    deleted
}

/// Polls until the folder is quiet (for tests): imports every complete file.
pub async fn drain_drop_folder(store: &Store, data_dir: &Path) -> Vec<ImportReport> {
    let drop = data_dir.join("drop");
    let mut seen = HashMap::new();
    let mut all = Vec::new();
    // Two polls see a file unchanged; a third finds nothing new.
    for _ in 0..3 {
        all.extend(poll_once(&store.clone(), &drop, &mut seen).await);
    }
    all
}
