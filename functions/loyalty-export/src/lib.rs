//! The scheduled NetCarrots export, one property at a time.
//!
//! Layout:
//! - [`export_property`]: one property's run — deliver the open file if a
//!   run left one, else choose the pending records and deliver a new file;
//!   then read members files NetCarrots left in the return folder.
//! - [`export_all`]: every property a [`Destinations`] has a folder for,
//!   each isolated from the others' failures.
//! - [`password`]: where a connection's password comes from (env or SSM).
//!
//! Delivery is exactly-once by construction: a file's records are chosen
//! and saved (the open batch) before anything is uploaded; the file goes up
//! under a temporary name and is renamed; records are marked delivered only
//! after the rename; a run that finds an open batch sends the very same
//! bytes under the very same name (or only confirms it, if the rename
//! happened). A lease keeps two runs of one property apart.

pub mod password;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::events::EventStore;
use domain::guest::ports::GuestStore;
use domain::loyalty::file::{FileCounts, read_members, write_export};
use domain::loyalty::ports::{FileDrop, LoyaltyStore, TransferError};
use domain::loyalty::{
    EnrolmentState, ExportRecord, LoyaltyConnection, MAX_RECORDS_PER_FILE, OpenBatch, PropertyCode,
    RecordKind, export_file_name, is_members_file, plan_batch, temporary_name,
};
use domain::ports::{LeasedJob, PropertyStore};
use domain::{Property, PropertyId, StoreError, ValidationError};
use platform::Store;
use platform::jobs::{self, Stop};
use platform::transfer::LocalDrop;
use serde::Serialize;

/// Knobs of a run.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Connect, read and write timeout of each transfer.
    pub timeout: Duration,
    /// How long a run holds a property's lease without renewing it (it is
    /// renewed every third of this while the run goes on).
    pub lease: chrono::Duration,
    /// Ends the run at its next safe point (signal, Lambda deadline).
    pub stop: Stop,
    /// Who runs it, shown to a run that finds the property busy.
    pub by: String,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            lease: chrono::Duration::seconds(60),
            stop: Stop::new(),
            by: format!("guesthub (pid {})", std::process::id()),
        }
    }
}

/// What one property's run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    pub property: String,
    /// The file delivered (or confirmed) by this run.
    pub file: Option<String>,
    /// The file was chosen by an earlier run that did not finish.
    pub resent: bool,
    pub enrol: usize,
    pub stay: usize,
    pub undo: usize,
    /// STAY + UNDO pairs never sent, left out.
    pub left_out: usize,
    /// Records still pending after this run (over the per-file cap).
    pub more_pending: bool,
    /// Departures of guests who are not enrolled: kept, not exported.
    pub not_enrolled: usize,
    pub members_files: usize,
    pub members_confirmed: usize,
    pub members_unmatched: usize,
    pub members_rejected: usize,
    /// Set when the run did nothing because another run holds the lease.
    pub skipped: Option<String>,
    /// Records whose personal fields the property's retention anonymised
    /// in this run (orders, memberships, delivered loyalty records).
    pub anonymised: usize,
    /// When skipped: the run holding the property, and until when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_until: Option<chrono::DateTime<chrono::Utc>>,
    /// The run was asked to stop and ended at a safe point; what it did not
    /// deliver the next run delivers.
    pub stopped: bool,
    pub errors: Vec<String>,
}

impl ExportSummary {
    pub fn records(&self) -> usize {
        self.enrol + self.stay + self.undo
    }
}

/// Where each property's files go.
#[async_trait]
pub trait Destinations: Send + Sync {
    /// The folder and code for a property; `None` to leave it out.
    async fn for_property(
        &self,
        property: &Property,
        connection: Option<&LoyaltyConnection>,
    ) -> anyhow::Result<Option<(Arc<dyn FileDrop>, PropertyCode)>>;

    /// Where the property's test namespace (sandbox keys' records) goes;
    /// `None` (the default, and in AWS): nowhere, test records never reach
    /// NetCarrots.
    fn for_sandbox(&self, _property: &Property) -> Option<(Arc<dyn FileDrop>, PropertyCode)> {
        None
    }
}

fn remote(
    conn: &LoyaltyConnection,
    pw: platform::transfer::Password,
    timeout: Duration,
) -> anyhow::Result<(Arc<dyn FileDrop>, PropertyCode)> {
    let drop = platform::transfer::open(conn, pw, timeout)?;
    Ok((drop, conn.property_code.clone()))
}

/// AWS: only connected properties, to their NetCarrots server.
pub struct Connected {
    pub timeout: Duration,
}

#[async_trait]
impl Destinations for Connected {
    async fn for_property(
        &self,
        _: &Property,
        connection: Option<&LoyaltyConnection>,
    ) -> anyhow::Result<Option<(Arc<dyn FileDrop>, PropertyCode)>> {
        let Some(conn) = connection else {
            return Ok(None);
        };
        let pw = password::password(conn).await?;
        remote(conn, pw, self.timeout).map(Some)
    }
}

/// Local runs: connected properties to their server, the others to a
/// folder (`<data-dir>/outbox/loyalty/`) under their property id as code;
/// every property's test namespace (sandbox keys) to `…/loyalty/test/`.
pub struct LocalOutbox {
    pub dir: PathBuf,
    pub timeout: Duration,
}

/// The code a property without a connection writes its local files under.
pub fn local_code(p: &PropertyId) -> PropertyCode {
    let code: String = p
        .as_str()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(20)
        .collect();
    PropertyCode::parse(&code).unwrap_or_else(|_| PropertyCode("property".into()))
}

#[async_trait]
impl Destinations for LocalOutbox {
    async fn for_property(
        &self,
        property: &Property,
        connection: Option<&LoyaltyConnection>,
    ) -> anyhow::Result<Option<(Arc<dyn FileDrop>, PropertyCode)>> {
        match connection {
            Some(conn) => {
                let pw = password::password(conn).await?;
                remote(conn, pw, self.timeout).map(Some)
            }
            None => Ok(Some((
                Arc::new(LocalDrop::new(self.dir.clone())),
                local_code(&property.id),
            ))),
        }
    }

    fn for_sandbox(&self, property: &Property) -> Option<(Arc<dyn FileDrop>, PropertyCode)> {
        Some((
            Arc::new(LocalDrop::new(self.dir.join("test"))),
            local_code(&property.id),
        ))
    }
}

/// Runs the export for every property (or only `only`), each isolated.
pub async fn export_all(
    store: &Store,
    only: Option<&PropertyId>,
    destinations: &dyn Destinations,
    opts: &ExportOptions,
) -> anyhow::Result<Vec<ExportSummary>> {
    let mut properties = store.properties().await?;
    if let Some(p) = only {
        properties.retain(|x| &x.id == p);
        if properties.is_empty() {
            anyhow::bail!("no property {p}");
        }
    }
    let mut out = Vec::with_capacity(properties.len());
    for property in properties {
        // The property's retention rides on this scheduled run (off unless
        // `retention_days` is set).
        let anonymised = match store.apply_retention(&property).await {
            Ok(r) => (r.orders + r.memberships + r.loyalty_records) as usize,
            Err(e) => {
                tracing::warn!(property = %property.id, error = %e, "retention failed; the next run tries again");
                0
            }
        };
        let conn = store.loyalty_connection(&property.id).await?;
        let summary = match destinations.for_property(&property, conn.as_ref()).await {
            Ok(Some((drop, code))) => Some(ExportSummary {
                anonymised,
                ..export_property(store, &property.id, drop.as_ref(), &code, opts).await
            }),
            Ok(None) if anonymised > 0 => Some(ExportSummary {
                property: property.id.to_string(),
                anonymised,
                ..Default::default()
            }),
            Ok(None) => None,
            Err(e) => Some(ExportSummary {
                property: property.id.to_string(),
                errors: vec![format!("{e:#}")],
                anonymised,
                ..Default::default()
            }),
        };
        out.extend(summary);
        // Sandbox keys' records, when this run has a place for them and
        // the test namespace has anything to send.
        if let Some((drop, code)) = destinations.for_sandbox(&property) {
            let test = property.id.sandbox();
            if store.export_state(&test).await?.version > 0
                || !store.pending_records(&test, 1).await?.is_empty()
            {
                out.push(export_property(store, &test, drop.as_ref(), &code, opts).await);
            }
        }
    }
    Ok(out)
}

/// One property's run. Failures are reported in the summary; whatever was
/// not confirmed delivered is delivered by a later run.
pub async fn export_property(
    store: &Store,
    p: &PropertyId,
    drop: &dyn FileDrop,
    code: &PropertyCode,
    opts: &ExportOptions,
) -> ExportSummary {
    let mut s = ExportSummary {
        property: p.to_string(),
        ..Default::default()
    };
    let ttl = opts.lease.to_std().unwrap_or(jobs::LEASE);
    let held = match jobs::take(
        store,
        LeasedJob::LoyaltyExport,
        p,
        &opts.by,
        ttl,
        &opts.stop,
    )
    .await
    {
        Ok(Ok(h)) => h,
        Ok(Err(other)) => {
            s.skipped = Some(format!(
                "{} holds this property's export until {}",
                other.by,
                other.until.format("%Y-%m-%d %H:%M:%S UTC")
            ));
            s.held_by = Some(other.by);
            s.held_until = Some(other.until);
            return s;
        }
        Err(e) => {
            s.errors.push(format!("taking the lease: {e}"));
            return s;
        }
    };
    let stop = held.stop().clone();
    let mut run = Run {
        store,
        p,
        drop,
        code,
        s,
        stop: stop.clone(),
    };
    // Safe points: before the file is chosen, before the members files,
    // between members files. A file chosen is re-sent by the next run.
    if !stop.is_cancelled()
        && let Err(e) = run.deliver().await
    {
        run.s.errors.push(e.to_string());
    }
    if !stop.is_cancelled()
        && let Err(e) = run.read_members().await
    {
        run.s.errors.push(e.to_string());
    }
    match store.held_stay_count(p).await {
        Ok(n) => run.s.not_enrolled = n,
        Err(e) => run.s.errors.push(format!("counting held stays: {e}")),
    }
    run.s.stopped = stop.is_cancelled();
    let s = run.s;
    if !s.errors.is_empty() {
        let e = domain::events::announce::loyalty_failed(p, &s.errors, store.clock().now());
        if let Err(err) = store.announce(&e).await {
            tracing::warn!(property = %p, error = %err, "could not record loyalty.export_failed");
        }
    }
    held.release().await;
    tracing::info!(
        property = %p,
        file = s.file.as_deref().unwrap_or(""),
        records = s.records(),
        resent = s.resent,
        members_confirmed = s.members_confirmed,
        errors = s.errors.len(),
        "loyalty export run"
    );
    s
}

struct Run<'a> {
    store: &'a Store,
    p: &'a PropertyId,
    drop: &'a dyn FileDrop,
    code: &'a PropertyCode,
    s: ExportSummary,
    stop: Stop,
}

/// Why a step of a run stopped; reported in the summary.
#[derive(Debug)]
enum ExportError {
    /// The store failed while doing something.
    Store(&'static str, StoreError),
    /// The file drop failed while doing something to a file.
    Transfer(String, TransferError),
    /// A members file is not in the expected format.
    MembersFile(String, ValidationError),
    /// The members file reader stopped (a panic or a cancelled task).
    Reader(String, tokio::task::JoinError),
    /// The open file names a record the store does not hold.
    MissingRecord(String),
    /// An enrolment lost every attempt to concurrent changes.
    EnrolmentKeptChanging,
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportError::Store(doing, e) => write!(f, "{doing}: {e}"),
            ExportError::Transfer(doing, e) => write!(f, "{doing}: {e}"),
            ExportError::MembersFile(name, e) => write!(f, "{name}: {e}"),
            ExportError::Reader(name, e) => write!(f, "reading {name}: {e}"),
            ExportError::MissingRecord(id) => write!(f, "record {id} of the open file is missing"),
            ExportError::EnrolmentKeptChanging => f.write_str("an enrolment kept changing"),
        }
    }
}

fn store_err(doing: &'static str) -> impl Fn(StoreError) -> ExportError {
    move |e| ExportError::Store(doing, e)
}

fn transfer_err(doing: String) -> impl FnOnce(TransferError) -> ExportError {
    move |e| ExportError::Transfer(doing, e)
}

impl Run<'_> {
    /// Records by id: from what was read already, else one by one.
    async fn load(
        &self,
        ids: &[String],
        known: &HashMap<String, ExportRecord>,
    ) -> Result<Vec<ExportRecord>, ExportError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match known.get(id) {
                Some(r) => out.push(r.clone()),
                None => match self
                    .store
                    .export_record(self.p, id)
                    .await
                    .map_err(store_err("reading a record"))?
                {
                    Some(r) => out.push(r),
                    None => return Err(ExportError::MissingRecord(id.clone())),
                },
            }
        }
        Ok(out)
    }

    /// The pending index lags on DynamoDB: an UNDO may be listed while the
    /// STAY it reverses (never sent) is not yet. Read such STAYs directly,
    /// so the pair is left out together instead of the UNDO going first.
    async fn add_lagging_stays(&self, pending: &mut Vec<ExportRecord>) -> Result<(), ExportError> {
        let listed: std::collections::HashSet<String> =
            pending.iter().map(|r| r.transaction_id.clone()).collect();
        let missing: Vec<String> = pending
            .iter()
            .filter(|r| r.kind == RecordKind::Undo)
            .filter_map(|r| r.reverses.clone())
            .filter(|s| !listed.contains(s))
            .collect();
        for id in missing {
            if let Some(stay) = self
                .store
                .export_record(self.p, &id)
                .await
                .map_err(store_err("reading a record"))?
                && stay.is_pending()
            {
                pending.push(stay);
            }
        }
        pending.sort_by_key(ExportRecord::queue_key);
        Ok(())
    }

    async fn deliver(&mut self) -> Result<(), ExportError> {
        let store = self.store;
        let mut state = store
            .export_state(self.p)
            .await
            .map_err(store_err("reading the export state"))?;
        let mut known = HashMap::new();
        if state.open.is_some() {
            self.s.resent = true;
        } else {
            // Twice the cap, so pairs left out never starve the file.
            let mut pending = store
                .pending_records(self.p, MAX_RECORDS_PER_FILE * 2)
                .await
                .map_err(store_err("listing pending records"))?;
            self.add_lagging_stays(&mut pending).await?;
            let plan = plan_batch(&pending);
            self.s.more_pending = plan.send.len() + plan.drop.len() < pending.len()
                || pending.len() == MAX_RECORDS_PER_FILE * 2;
            known = pending
                .into_iter()
                .map(|r| (r.transaction_id.clone(), r))
                .collect();
            if plan.send.is_empty() {
                if !plan.drop.is_empty() {
                    let dropped = self.load(&plan.drop, &known).await?;
                    store
                        .mark_records(&dropped, None)
                        .await
                        .map_err(store_err("leaving out records"))?;
                    self.s.left_out = dropped.len();
                }
                return Ok(());
            }
            let now = store.clock().now();
            state.open = Some(OpenBatch {
                file_name: export_file_name(self.code, now, state.next_seq),
                property_code: self.code.clone(),
                created_at: now,
                plan,
            });
            store
                .save_export_state(self.p, &state)
                .await
                .map_err(store_err("saving the open file"))?;
            state.version += 1;
        }
        let Some(open) = state.open.clone() else {
            return Ok(());
        };
        let records = self.load(&open.plan.send, &known).await?;
        let (bytes, counts) = write_export(
            &open.property_code,
            &open.file_name,
            open.created_at,
            &records,
        );
        self.upload(&open.file_name, &bytes).await?;
        self.s.file = Some(open.file_name.clone());
        self.confirm(&open, &records, &known, counts).await?;
        state.open = None;
        state.next_seq += 1;
        state.last_file = Some(open.file_name.clone());
        state.last_run_at = Some(store.clock().now());
        store
            .save_export_state(self.p, &state)
            .await
            .map_err(store_err("closing the file"))
    }

    /// Upload under a temporary name, then rename; a file already under
    /// its final name was renamed by an earlier run.
    async fn upload(&self, name: &str, bytes: &[u8]) -> Result<(), ExportError> {
        let drop = self.drop;
        if drop
            .exists(name)
            .await
            .map_err(transfer_err(format!("checking {name}")))?
        {
            return Ok(());
        }
        let tmp = temporary_name(name);
        drop.upload(&tmp, bytes)
            .await
            .map_err(transfer_err(format!("uploading {tmp}")))?;
        drop.rename(&tmp, name)
            .await
            .map_err(transfer_err(format!("renaming {tmp} to {name}")))
    }

    /// Marks the delivered records (then the enrolments they carry).
    async fn confirm(
        &mut self,
        open: &OpenBatch,
        records: &[ExportRecord],
        known: &HashMap<String, ExportRecord>,
        counts: FileCounts,
    ) -> Result<(), ExportError> {
        let store = self.store;
        store
            .mark_records(records, Some(&open.file_name))
            .await
            .map_err(store_err("marking records delivered"))?;
        let dropped = self.load(&open.plan.drop, known).await?;
        store
            .mark_records(&dropped, None)
            .await
            .map_err(store_err("leaving out records"))?;
        for r in records.iter().filter(|r| r.kind == RecordKind::Enrol) {
            let Some(g) = &r.guest.guest else { continue };
            self.update_enrolment(g, |e| {
                if e.state == EnrolmentState::Pending {
                    e.state = EnrolmentState::Exported;
                    e.exported_in = Some(open.file_name.clone());
                    true
                } else {
                    false
                }
            })
            .await?;
        }
        self.s.enrol = counts.enrol;
        self.s.stay = counts.stay;
        self.s.undo = counts.undo;
        self.s.left_out = dropped.len();
        Ok(())
    }

    /// Applies `change` to an enrolment, re-reading on a lost race.
    async fn update_enrolment(
        &self,
        g: &domain::guest::GuestId,
        change: impl Fn(&mut domain::loyalty::Enrolment) -> bool,
    ) -> Result<bool, ExportError> {
        for _ in 0..5 {
            let Some(mut e) = self
                .store
                .enrolment(self.p, g)
                .await
                .map_err(store_err("reading an enrolment"))?
            else {
                return Ok(false);
            };
            if !change(&mut e) {
                return Ok(true);
            }
            match self.store.save_enrolment(&e).await {
                Ok(_) => return Ok(true),
                Err(StoreError::Conflict) => continue,
                Err(err) => return Err(ExportError::Store("saving an enrolment", err)),
            }
        }
        Err(ExportError::EnrolmentKeptChanging)
    }

    /// Applies members files from the return folder, each once.
    async fn read_members(&mut self) -> Result<(), ExportError> {
        let names = self
            .drop
            .list_returns()
            .await
            .map_err(transfer_err("listing the return folder".into()))?;
        for name in names.iter().filter(|n| is_members_file(self.code, n)) {
            if self.stop.is_cancelled() {
                return Ok(());
            }
            let seen = self
                .store
                .members_file_seen(self.p, name)
                .await
                .map_err(store_err("reading processed files"))?;
            if !seen {
                self.apply_members_file(name).await?;
            }
            if let Err(e) = self.drop.archive_return(name).await {
                // Remembered as applied: a later run only retries the move.
                self.s.errors.push(format!("archiving {name}: {e}"));
            }
        }
        Ok(())
    }

    async fn apply_members_file(&mut self, name: &str) -> Result<(), ExportError> {
        let reader = self
            .drop
            .open_return(name)
            .await
            .map_err(transfer_err(format!("reading {name}")))?;
        let parsed = tokio::task::spawn_blocking(move || read_members(reader))
            .await
            .map_err(|e| ExportError::Reader(name.to_owned(), e))?
            .map_err(|e| ExportError::MembersFile(name.to_owned(), e))?;
        let now = self.store.clock().now();
        for m in &parsed.members {
            let guest = self
                .store
                .guest_by_email(self.p, &m.email)
                .await
                .map_err(store_err("finding a member"))?;
            let Some(guest) = guest else {
                self.s.members_unmatched += 1;
                continue;
            };
            let found = self
                .update_enrolment(&guest.id, |e| {
                    let next_number = Some(m.loyalty_number.clone());
                    let same = e.state == EnrolmentState::Confirmed
                        && e.tier == m.tier
                        && e.points == Some(m.points)
                        && e.loyalty_number == next_number;
                    if same {
                        return false;
                    }
                    e.state = EnrolmentState::Confirmed;
                    e.tier = m.tier.clone();
                    e.points = Some(m.points);
                    e.loyalty_number = next_number;
                    e.confirmed_at = Some(now);
                    true
                })
                .await;
            match found {
                Ok(true) => self.s.members_confirmed += 1,
                Ok(false) => self.s.members_unmatched += 1,
                // The number belongs to another guest: report the line.
                Err(e) => {
                    self.s.members_rejected += 1;
                    tracing::warn!(property = %self.p, file = name, error = %e, "members line not applied");
                }
            }
        }
        self.s.members_rejected += parsed.rejected.len();
        self.s.members_files += 1;
        self.store
            .record_members_file(self.p, name)
            .await
            .map_err(store_err("remembering a members file"))?;
        Ok(())
    }
}
