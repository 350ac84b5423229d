//! One roster import. Rows are never held: they stream from the parser (on
//! a blocking thread) through a bounded channel to the store in chunks. What
//! grows with the file is 8 bytes per row: the member's email hash with the
//! tier in its low 16 bits, sorted at the end to count distinct members and
//! (member, tier) entries. Two emails count as one only if their hashes
//! share the top 48 bits: for a million distinct members, about one import
//! in 550 counts one member too few; for 10,000, one in 5 million.

use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{Duration, NaiveDate};
use domain::roster::import::{
    FileFacts, ImportPolicy, ImportReport, ImportSource, ImportStatus, MAX_REPORTED_REJECTS,
    RejectedRow, decide,
};
use domain::roster::store::{ChangeCounts, Flip, GenerationMember, RosterStore};
use domain::roster::{Detail, FileError, FileKind, RowOutcome, file_kind};
use domain::time::local_date;
use domain::{Property, PropertyId, StoreError};
use platform::Store;
use platform::store::Retry;
use tokio::sync::mpsc;

/// Rows per chunk sent to the store.
const CHUNK: usize = 2_000;
/// How long a retired generation stays readable after the flip.
const RETIRED_GRACE_MINUTES: i64 = 5;
/// Builds abandoned this long ago (a crash whose retry never came) are swept.
const ABANDONED_HOURS: i64 = 24;

/// The file's bytes.
pub enum Input {
    /// A delimited stream (an S3 body, a local file).
    Stream(Box<dyn Read + Send>),
    /// A file on disk; spreadsheets need one (they are read with seeks).
    File(PathBuf),
}

impl Input {
    /// A file on disk, opened the way its kind is read: a delimited file as
    /// a buffered stream, a spreadsheet by its path.
    pub fn open(path: &Path, kind: FileKind) -> std::io::Result<Self> {
        Ok(match kind {
            FileKind::Delimited => Input::Stream(Box::new(std::io::BufReader::with_capacity(
                256 * 1024,
                std::fs::File::open(path)?,
            ))),
            FileKind::Spreadsheet(_) => Input::File(path.to_path_buf()),
        })
    }
}

pub struct ImportRequest {
    pub property: Property,
    pub source: ImportSource,
    pub kind: FileKind,
    pub input: Input,
}

impl ImportRequest {
    /// The one intake of a delivered club file, whether it came as an S3
    /// event, into the local drop folder or through `guesthub import`: its
    /// key `ams/<property>/<file>` names the property (`None` unless it is
    /// `property`) and, by the file's extension, its kind.
    pub fn new(property: Property, source: ImportSource, input: Input) -> Option<Self> {
        let (id, kind) = parse_key(&source.key)?;
        (id == property.id).then_some(Self {
            property,
            source,
            kind,
            input,
        })
    }
}

/// `ams/<property>/<file>` → the property and the file's kind.
pub fn parse_key(key: &str) -> Option<(PropertyId, FileKind)> {
    let rest = key.strip_prefix("ams/")?;
    let (property, file) = rest.split_once('/')?;
    if file.is_empty() || file.ends_with('/') {
        return None;
    }
    Some((PropertyId::parse(property).ok()?, file_kind(file)?))
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The store failed; a retry of the same delivery will complete it.
    #[error("the store failed during the import: {0}")]
    Store(#[from] StoreError),
    /// The file could not be read to its end (network, disk); retry.
    #[error("the file could not be read: {0}")]
    Read(std::io::Error),
}

/// For a caller that answers with store errors (an upload route): a file
/// that could not be read to its end is a failure a retry can fix.
impl From<ImportError> for StoreError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Store(e) => e,
            ImportError::Read(e) => {
                StoreError::Unavailable(format!("the file could not be read: {e}"))
            }
        }
    }
}

/// What reading the file yielded.
#[derive(Default)]
struct Parsed {
    rows: u64,
    members: u64,
    former: u64,
    rejected: u64,
    rejects: Vec<RejectedRow>,
    tier_counts: BTreeMap<String, u64>,
    truncated: bool,
    /// Set when the file is unusable as a whole.
    unusable: Option<String>,
}

enum ParseEnd {
    Done(Parsed),
    Io(std::io::Error),
    /// The writer side stopped (store error): its error is the one to report.
    WriterGone,
}

fn hash_of(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// Reads the file, sending member entries in chunks. Runs on a blocking thread.
fn parse(
    input: Input,
    kind: FileKind,
    as_of: NaiveDate,
    tx: mpsc::Sender<Vec<GenerationMember>>,
) -> ParseEnd {
    let opened = match (input, kind) {
        (Input::Stream(r), FileKind::Delimited) => domain::roster::open_delimited(r, as_of)
            .map(|rows| Rows::Stream(rows.with_detail(Detail::Contact))),
        (Input::File(path), kind) => match std::fs::File::open(&path) {
            Ok(f) => domain::roster::open(kind, std::io::BufReader::new(f), as_of)
                .map(|rows| Rows::File(rows.with_detail(Detail::Contact))),
            Err(e) => return ParseEnd::Io(e),
        },
        (Input::Stream(_), FileKind::Spreadsheet(_)) => {
            return ParseEnd::Io(std::io::Error::other(
                "a spreadsheet must be read from a file",
            ));
        }
    };
    let mut out = Parsed::default();
    let mut rows = match opened {
        Ok(rows) => rows,
        Err(FileError::Empty) => return ParseEnd::Done(out),
        Err(FileError::Io(e)) => return ParseEnd::Io(e),
        Err(e) => {
            out.unusable = Some(e.to_string());
            return ParseEnd::Done(out);
        }
    };
    // 8 bytes per row for distinct counts, sorted once at the end: a
    // quarter of what hash sets take, and no per-row allocation.
    let mut entries: Vec<u64> = Vec::new();
    let mut tier_names: Vec<String> = Vec::new();
    let mut chunk = Vec::with_capacity(CHUNK);
    for outcome in rows.by_ref() {
        out.rows += 1;
        match outcome {
            RowOutcome::Member(row) => {
                let tier = row.tier.clone();
                // The tier's index rides in the low 16 bits of the member's
                // hash: sorted, one member's entries sit together, and a
                // repeated (member, tier) entry is taken off its tier's count.
                let tier_index = match &tier {
                    Some(t) => match tier_names.iter().position(|n| n == t) {
                        Some(i) => i + 1,
                        None if tier_names.len() < 0xFFFE => {
                            tier_names.push(t.clone());
                            tier_names.len()
                        }
                        None => 0xFFFF,
                    },
                    None => 0,
                };
                let h = hash_of(row.email.as_str());
                entries.push((h & !0xFFFF) | tier_index as u64);
                if let Some(t) = &tier {
                    *out.tier_counts.entry(t.clone()).or_default() += 1;
                }
                let row = *row;
                chunk.push(GenerationMember {
                    email: row.email,
                    tier,
                    member_id: row.member_id,
                    since: row.join_date,
                    first_name: row.first_name,
                    last_name: row.last_name,
                    phone: row.phone,
                });
                if chunk.len() == CHUNK && tx.blocking_send(std::mem::take(&mut chunk)).is_err() {
                    return ParseEnd::WriterGone;
                }
            }
            RowOutcome::NotMember { .. } => out.former += 1,
            RowOutcome::Reject {
                line,
                column,
                reason,
            } => {
                out.rejected += 1;
                if out.rejects.len() < MAX_REPORTED_REJECTS {
                    out.rejects.push(RejectedRow {
                        line,
                        column: column.to_owned(),
                        reason,
                    });
                }
            }
            // A spreadsheet is read from a file on disk: bad data there is the
            // file's fault (the same bytes fail the same way on a retry).
            RowOutcome::Failed(e)
                if matches!(kind, FileKind::Spreadsheet(_))
                    && e.kind() == std::io::ErrorKind::InvalidData =>
            {
                out.unusable = Some(FileError::Spreadsheet(e.to_string()).to_string());
                return ParseEnd::Done(out);
            }
            RowOutcome::Failed(e) => return ParseEnd::Io(e),
        }
    }
    if !chunk.is_empty() && tx.blocking_send(chunk).is_err() {
        return ParseEnd::WriterGone;
    }
    entries.sort_unstable();
    out.members = entries.chunk_by(|a, b| a >> 16 == b >> 16).count() as u64;
    for pair in entries.windows(2) {
        let tier_index = (pair[1] & 0xFFFF) as usize;
        if pair[0] == pair[1]
            && tier_index > 0
            && let Some(name) = tier_names.get(tier_index - 1)
            && let Some(n) = out.tier_counts.get_mut(name)
        {
            *n -= 1;
        }
    }
    out.truncated = rows.truncated();
    ParseEnd::Done(out)
}

/// The reader of either input, kept concrete so truncation can be asked
/// once the rows are exhausted.
enum Rows {
    Stream(domain::roster::RosterRows<Box<dyn Read + Send>>),
    File(domain::roster::Roster<std::io::BufReader<std::fs::File>>),
}

impl Rows {
    fn truncated(&self) -> bool {
        match self {
            Rows::Stream(r) => r.truncated(),
            Rows::File(r) => r.truncated(),
        }
    }
}

impl Iterator for Rows {
    type Item = RowOutcome;
    fn next(&mut self) -> Option<RowOutcome> {
        match self {
            Rows::Stream(r) => r.next(),
            Rows::File(r) => r.next(),
        }
    }
}

/// Imports one delivered file into the property's roster.
pub async fn import(store: &Store, req: ImportRequest) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let now = store.clock().now();
    let p = req.property.id.clone();
    let identity = req.source.identity(p.as_str());
    // A repeated delivery of the same object: the first import's report.
    if let Some(done) = store.import_by_source(&p, &identity).await? {
        tracing::info!(import = %done.id, "repeat delivery; already imported");
        return Ok(done);
    }
    let order = req.source.order();
    let active = store.active_roster(&p).await?;
    let mut report = ImportReport {
        id: uuid::Uuid::now_v7().to_string(),
        property: p.to_string(),
        file: req.source.file_name().to_owned(),
        status: ImportStatus::Skipped,
        reason: None,
        rows: 0,
        members: 0,
        suppressed: 0,
        former_members: 0,
        rejected_rows: 0,
        rejects: Vec::new(),
        tier_counts: BTreeMap::new(),
        truncated: false,
        started_at: now,
        duration_ms: 0,
        generation: None,
        source: req.source.clone(),
        previous_members: active.as_ref().map_or(0, |(a, _)| a.members),
        joined: 0,
        left: 0,
        tier_changed: 0,
        unchanged: 0,
    };
    // Older than what is active: nothing to read.
    if let Some((a, _)) = &active
        && order.is_older_than(&a.order)
    {
        report.reason = Some("older than the file of the active roster".into());
        return record(store, &p, report, &identity, started).await;
    }

    let generation = identity.clone();
    store.start_generation(&p, &generation).await?;
    let as_of = local_date(req.property.time_zone, now);
    let (tx, mut rx) = mpsc::channel::<Vec<GenerationMember>>(4);
    let (input, kind) = (req.input, req.kind);
    let parser = tokio::task::spawn_blocking(move || parse(input, kind, as_of, tx));
    let mut write_result = Ok(());
    // Erased people stay out of every later file until unsuppressed.
    let suppression = store.suppression(&p).await?;
    let mut suppressed_emails = std::collections::BTreeSet::new();
    let mut suppressed_tiers: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(mut chunk) = rx.recv().await {
        if !suppression.is_empty() {
            chunk.retain(|m| {
                if !suppression.contains(&m.email) {
                    return true;
                }
                if let Some(t) = &m.tier {
                    *suppressed_tiers.entry(t.clone()).or_default() += 1;
                }
                suppressed_emails.insert(suppression.hash(&m.email));
                false
            });
        }
        if let Err(e) = store.put_members(&p, &generation, chunk).await {
            write_result = Err(e);
            break;
        }
    }
    drop(rx);
    let end = match parser.await {
        Ok(end) => end,
        // A reader that panics on a file does so again on every retry.
        Err(e) if e.is_panic() => {
            tracing::error!("the roster reader panicked; the file is rejected");
            ParseEnd::Done(Parsed {
                unusable: Some("the file cannot be read".into()),
                ..Parsed::default()
            })
        }
        Err(e) => return Err(ImportError::Read(std::io::Error::other(e))),
    };
    write_result?;
    let parsed = match end {
        ParseEnd::Done(parsed) => parsed,
        ParseEnd::Io(e) => return Err(ImportError::Read(e)),
        ParseEnd::WriterGone => {
            return Err(ImportError::Store(StoreError::Unavailable(
                "writer stopped".into(),
            )));
        }
    };

    report.rows = parsed.rows;
    report.suppressed = suppressed_emails.len() as u64;
    report.members = parsed.members.saturating_sub(report.suppressed);
    report.former_members = parsed.former;
    report.rejected_rows = parsed.rejected;
    report.rejects = parsed.rejects;
    report.tier_counts = parsed.tier_counts;
    for (tier, n) in suppressed_tiers {
        if let Some(c) = report.tier_counts.get_mut(&tier) {
            *c = c.saturating_sub(n);
        }
    }
    report.tier_counts.retain(|_, n| *n > 0);
    report.truncated = parsed.truncated;
    report.generation = Some(generation.clone());
    if let Some(why) = parsed.unusable {
        report.status = ImportStatus::Rejected;
        report.reason = Some(why);
        store.drop_generation(&p, &generation).await?;
        report.generation = None;
        return record(store, &p, report, &identity, started).await;
    }

    let policy = ImportPolicy {
        hold_shrink_percent: req.property.roster_hold_shrink_percent.unwrap_or(50),
        ..ImportPolicy::default()
    };
    let facts = FileFacts {
        rows: parsed.rows,
        members: report.members,
        rejected_rows: parsed.rejected,
        truncated: parsed.truncated,
    };
    let mut active = active;
    // The generation the changes were counted against (outer `None`: not yet).
    let mut compared: Option<Option<String>> = None;
    let mut retry = Retry::new(5);
    while retry.next().await.is_some() {
        let (status, reason) = decide(facts, &order, active.as_ref().map(|(a, _)| a), policy);
        report.status = status;
        report.reason = reason;
        let base = active.as_ref().map(|(a, _)| a.generation.clone());
        if matches!(status, ImportStatus::Applied | ImportStatus::Held)
            && compared.as_ref() != Some(&base)
        {
            count_changes(store, &p, base.as_deref(), &generation, &mut report).await?;
            compared = Some(base);
        }
        report.previous_members = active.as_ref().map_or(0, |(a, _)| a.members);
        report.duration_ms = started.elapsed().as_millis() as u64;
        let flip = (status == ImportStatus::Applied).then(|| {
            Flip::applying(
                &report,
                generation.clone(),
                active.as_ref(),
                store.clock().now(),
            )
        });
        if matches!(status, ImportStatus::Rejected | ImportStatus::Skipped) {
            store.drop_generation(&p, &generation).await?;
            report.generation = None;
        }
        match store.finish_import(&p, &report, &identity, flip).await {
            Ok(()) => {
                log_outcome(&report);
                sweep(store, &p).await;
                return Ok(report);
            }
            Err(StoreError::Conflict) => {
                // Either the same delivery finished meanwhile, or another
                // file was applied: look again and decide again.
                if let Some(done) = store.import_by_source(&p, &identity).await? {
                    return Ok(done);
                }
                active = store.active_roster(&p).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ImportError::Store(StoreError::Conflict))
}

/// Counts (and records for the changes listing) what the import's
/// generation changes against the active one.
async fn count_changes(
    store: &Store,
    p: &PropertyId,
    base: Option<&str>,
    generation: &str,
    report: &mut ImportReport,
) -> Result<(), StoreError> {
    let counts = store
        .compare_generations(p, base.filter(|b| *b != generation), generation)
        .await?
        .unwrap_or(ChangeCounts {
            joined: report.members,
            ..ChangeCounts::default()
        });
    report.joined = counts.joined;
    report.left = counts.left;
    report.tier_changed = counts.tier_changed;
    report.unchanged = counts.unchanged;
    Ok(())
}

async fn record(
    store: &Store,
    p: &domain::PropertyId,
    mut report: ImportReport,
    identity: &str,
    started: Instant,
) -> Result<ImportReport, ImportError> {
    report.duration_ms = started.elapsed().as_millis() as u64;
    match store.finish_import(p, &report, identity, None).await {
        Ok(()) => {
            log_outcome(&report);
            Ok(report)
        }
        Err(StoreError::Conflict) => match store.import_by_source(p, identity).await? {
            Some(done) => Ok(done),
            None => Err(ImportError::Store(StoreError::Conflict)),
        },
        Err(e) => Err(e.into()),
    }
}

fn log_outcome(r: &ImportReport) {
    tracing::info!(
        import = %r.id,
        status = ?r.status,
        rows = r.rows,
        members = r.members,
        rejected = r.rejected_rows,
        ms = r.duration_ms,
        "roster import finished"
    );
    // A held file waits for a person: said where the hub's log is read
    // (the served hub's console locally, CloudWatch in AWS).
    if r.status == ImportStatus::Held {
        tracing::warn!(
            import = %r.id,
            property = %r.property,
            file = %r.file,
            reason = r.reason.as_deref().unwrap_or("held"),
            "club file HELD: the roster was not replaced; approve the import (POST /v1/properties/{}/roster-imports/{}/approve) or send a corrected file",
            r.property,
            r.id
        );
    }
}

/// Deletes generations retired a while ago; failures only delay cleanup.
async fn sweep(store: &Store, p: &domain::PropertyId) {
    let now = store.clock().now();
    let retired = now - Duration::minutes(RETIRED_GRACE_MINUTES);
    let abandoned = now - Duration::hours(ABANDONED_HOURS);
    if let Err(e) = store.sweep_generations(p, retired, abandoned).await {
        tracing::warn!(error = %e, "sweeping old roster generations failed; the next import retries");
    }
}
