//! The scheduled Cloudbeds sync, one property at a time.
//!
//! Layout:
//! - [`sync_property`]: one property's run — custom fields, pull
//!   (reservations modified since the cursor, page by page), guests
//!   (`getGuestsByFilter`: guests modified without their reservation
//!   changing, each status), webhook refetches, push (profiles, notes,
//!   screening write-back, erasures).
//! - [`sync_all`]: every connected property, each isolated from the
//!   others' failures.
//! - [`keys`]: where a connection's API key comes from (env var or SSM).
//! - [`queue`]: the SQS event handler: webhook work, acted on in seconds.
//!
//! The conflict and no-duplicate rules are pure and live in
//! `domain::guest::sync`.

pub mod keys;
pub mod queue;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use domain::guest::ports::{
    CrmClient, CrmError, GuestFilter, GuestStatus, GuestStore, GuestUpdate, RemoteGuest,
    RemoteReservation, ScreeningProvider,
};
use domain::guest::runs::{self, ConflictResolved, ConflictSide, SyncCounts, SyncRun, SyncTrigger};
use domain::guest::screening::{self, ScreeningOutcome, ScreeningSubject, record_outcome};
use domain::guest::sync::{self, SyncedFields, Winner};
use domain::guest::{
    Address, CrmConnection, Document, Guest, GuestId, Note, NoteSource, RefetchTarget,
    SCREENING_RESULT_FIELD, SCREENING_STATUS_FIELD, ScreeningStatus, ScreeningWriteBack, Stay,
    StayStatus,
};
use domain::loyalty::ports::LoyaltyStore;
use domain::loyalty::service::Departure;
use domain::loyalty::{self, StaySource};
use domain::ports::LeasedJob;
use domain::ports::PropertyStore;
use domain::{Currency, Email, Money, PropertyId, StoreError};
use platform::Store;
use platform::cloudbeds::{ApiKey, CloudbedsClient, CloudbedsConfig};
use platform::jobs::{self, Stop};
use platform::screening::HttpScreening;
use serde::Serialize;

/// Knobs of a run. Defaults fit Cloudbeds; tests speed them up.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Reservations per page (Cloudbeds allows ≤ 100).
    pub page_size: u32,
    /// Requests per second per property (Cloudbeds allows 5).
    pub rate_per_second: f64,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub timeout: Duration,
    /// A window ends this long before now, so records Cloudbeds is still
    /// writing fall into the next window rather than being missed.
    pub settle: chrono::Duration,
    /// How often a window restarts when its total changes under the cursor.
    pub max_restarts: u32,
    /// How long a run holds a property's lease without renewing it (it is
    /// renewed every third of this while the run goes on).
    pub lease: chrono::Duration,
    /// Ends the run at its next safe point (signal, Lambda deadline).
    pub stop: Stop,
    /// Who runs it, shown to a run that finds the property busy.
    pub by: String,
    /// What started it, recorded in the run's history.
    pub trigger: SyncTrigger,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            page_size: 100,
            rate_per_second: 5.0,
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            timeout: Duration::from_secs(20),
            settle: chrono::Duration::seconds(60),
            max_restarts: 3,
            lease: chrono::Duration::seconds(60),
            stop: Stop::new(),
            by: format!("guesthub (pid {})", std::process::id()),
            trigger: SyncTrigger::Schedule,
        }
    }
}

/// What one property's run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncSummary {
    pub property: String,
    pub fields_created: u32,
    pub reservations_pulled: u32,
    pub guests_pulled: u32,
    pub guests_pushed: u32,
    pub notes_pulled: u32,
    pub notes_pushed: u32,
    pub screened: u32,
    pub flagged: u32,
    pub erasures_sent: u32,
    /// Checked-out reservations recorded (or cancelled) as loyalty
    /// departures.
    pub departures: u32,
    pub skipped_busy: bool,
    /// When skipped: the run holding the property, and until when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_until: Option<DateTime<Utc>>,
    /// The run was asked to stop and ended at a safe point; the next run
    /// goes on from its cursor.
    pub stopped: bool,
    /// Short reasons, no personal data.
    pub errors: Vec<String>,
}

impl fmt::Display for SyncSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: pulled {} reservations / {} guests, pushed {} guests, notes {} pulled / {} pushed, screened {} ({} flagged), erasures {}, departures {}, fields created {}, errors {}",
            self.property,
            self.reservations_pulled,
            self.guests_pulled,
            self.guests_pushed,
            self.notes_pulled,
            self.notes_pushed,
            self.screened,
            self.flagged,
            self.erasures_sent,
            self.departures,
            self.fields_created,
            self.errors.len()
        )?;
        if self.skipped_busy {
            match (&self.held_by, self.held_until) {
                (Some(by), Some(until)) => write!(
                    f,
                    " (skipped: {by} holds the property until {})",
                    until.format("%Y-%m-%d %H:%M:%S UTC")
                )?,
                _ => write!(f, " (skipped: another run holds the property)")?,
            }
        }
        if self.stopped {
            write!(f, " (stopped at a safe point; the next run goes on)")?;
        }
        for e in &self.errors {
            write!(f, "\n  error: {e}")?;
        }
        Ok(())
    }
}

impl SyncSummary {
    /// The counts, as the run's history keeps them.
    pub fn counts(&self) -> SyncCounts {
        SyncCounts {
            reservations_pulled: self.reservations_pulled,
            guests_pulled: self.guests_pulled,
            guests_pushed: self.guests_pushed,
            notes_pulled: self.notes_pulled,
            notes_pushed: self.notes_pushed,
            screened: self.screened,
            flagged: self.flagged,
            erasures_sent: self.erasures_sent,
            departures: self.departures,
            fields_created: self.fields_created,
        }
    }
}

/// Why a step stopped.
#[derive(Debug)]
enum StepError {
    Crm(CrmError),
    Store(StoreError),
    Other(String),
    /// The run was asked to stop; what is done is saved.
    Stopped,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Crm(e) => write!(f, "cloudbeds: {e}"),
            StepError::Store(e) => write!(f, "store: {e}"),
            StepError::Other(e) => f.write_str(e),
            StepError::Stopped => f.write_str("stopped"),
        }
    }
}

impl From<CrmError> for StepError {
    fn from(e: CrmError) -> Self {
        StepError::Crm(e)
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        StepError::Store(e)
    }
}

/// Whether the rest of the run can still work (vs. Cloudbeds being down
/// or refusing the key).
fn fatal(e: &StepError) -> bool {
    matches!(
        e,
        StepError::Crm(CrmError::Unauthorized | CrmError::Unavailable(_))
            | StepError::Store(StoreError::Unavailable(_))
            | StepError::Stopped
    )
}

struct Run<'a> {
    store: &'a Store,
    conn: &'a CrmConnection,
    crm: &'a dyn CrmClient,
    screening: &'a dyn ScreeningProvider,
    opts: &'a SyncOptions,
    summary: SyncSummary,
    /// Cloudbeds guests applied this run (a guest on many reservations is
    /// fetched once).
    seen: HashSet<String>,
    /// The property's currency, read once when a departure needs it.
    currency: Option<Currency>,
    /// Checked at the safe points: between steps, reservations, pages,
    /// webhook targets and pushed guests.
    stop: Stop,
    /// Guests changed on both sides, as the run's history records them.
    conflicts: Vec<ConflictResolved>,
}

/// One property's run. Never fails as a whole: errors are in the summary,
/// and whatever was applied stays applied (the cursor only moves past
/// fully applied pages).
pub async fn sync_property(
    store: &Store,
    conn: &CrmConnection,
    crm: &dyn CrmClient,
    screening: &dyn ScreeningProvider,
    opts: &SyncOptions,
) -> SyncSummary {
    let p = &conn.property;
    let mut run = Run {
        store,
        conn,
        crm,
        screening,
        opts,
        summary: SyncSummary {
            property: p.to_string(),
            ..Default::default()
        },
        seen: HashSet::new(),
        currency: None,
        stop: opts.stop.clone(),
        conflicts: Vec::new(),
    };
    let started_at = store.clock().now();
    let ttl = opts.lease.to_std().unwrap_or(jobs::LEASE);
    let held = match jobs::take(store, LeasedJob::CrmSync, p, &opts.by, ttl, &opts.stop).await {
        Ok(Ok(h)) => h,
        Ok(Err(other)) => {
            run.summary.skipped_busy = true;
            run.summary.held_by = Some(other.by);
            run.summary.held_until = Some(other.until);
            return run.summary;
        }
        Err(e) => {
            run.summary.errors.push(format!("lease: {e}"));
            return run.summary;
        }
    };
    run.stop = held.stop().clone();
    // A webhook's run does what the webhooks asked and writes back; the
    // schedule's run also pulls the window and the modified guests (the
    // safety net).
    let steps: &[&str] = if opts.trigger == SyncTrigger::Webhook {
        &["custom fields", "refetch", "push"]
    } else {
        &["custom fields", "pull", "guests", "refetch", "push"]
    };
    for &step in steps {
        if run.stop.is_cancelled() {
            run.summary.stopped = true;
            break;
        }
        let r = match step {
            "custom fields" => run.ensure_fields().await,
            "pull" => run.pull().await,
            "guests" => run.pull_guests().await,
            "refetch" => run.refetch().await,
            _ => run.push().await,
        };
        if let Err(e) = r {
            if run.stop.is_cancelled() {
                // Whatever failed, failed because the run was stopped.
                tracing::info!(property = %p, step, "sync stopped at a safe point");
                run.summary.stopped = true;
                break;
            }
            tracing::warn!(property = %p, step, error = %e, "sync step failed");
            let stop = fatal(&e);
            run.summary.errors.push(format!("{step}: {e}"));
            if stop {
                break;
            }
        }
    }
    held.release().await;
    let record = SyncRun {
        id: uuid::Uuid::now_v7().to_string(),
        started_at,
        ended_at: store.clock().now(),
        trigger: opts.trigger,
        counts: run.summary.counts(),
        stopped: run.summary.stopped,
        errors: run.summary.errors.clone(),
        conflicts: std::mem::take(&mut run.conflicts),
    };
    if let Err(e) = store.save_sync_run(p, &record).await {
        tracing::warn!(property = %p, error = %e, "could not record the sync run");
    }
    tracing::info!(
        property = %p,
        pulled = run.summary.guests_pulled,
        pushed = run.summary.guests_pushed,
        notes_pushed = run.summary.notes_pushed,
        screened = run.summary.screened,
        errors = run.summary.errors.len(),
        "sync finished"
    );
    run.summary
}

impl Run<'_> {
    fn safe_point(&self) -> Result<(), StepError> {
        if self.stop.is_cancelled() {
            Err(StepError::Stopped)
        } else {
            Ok(())
        }
    }

    fn p(&self) -> &PropertyId {
        &self.conn.property
    }

    fn now(&self) -> DateTime<Utc> {
        self.store.clock().now()
    }

    /// 1. Every mapped custom field exists, created once.
    async fn ensure_fields(&mut self) -> Result<(), StepError> {
        let mut wanted: Vec<(String, String)> = self
            .conn
            .field_map
            .iter()
            .map(|m| (m.name.clone(), m.shortcode.clone()))
            .collect();
        if self.conn.screening_write_back == ScreeningWriteBack::CustomField {
            for (name, shortcode) in [SCREENING_STATUS_FIELD, SCREENING_RESULT_FIELD] {
                wanted.push((name.into(), shortcode.into()));
            }
        }
        let existing = self.crm.custom_fields().await?;
        let mut cursor = self.store.sync_cursor(self.p()).await?;
        for (name, shortcode) in wanted {
            let present = existing
                .iter()
                .any(|f| f.shortcode == shortcode || f.name == name);
            if present || cursor.created_fields.contains(&shortcode) {
                continue;
            }
            // Ambiguous: do not record; the next run's getCustomFields tells.
            self.crm.create_custom_field(&name, &shortcode).await?;
            cursor.created_fields.push(shortcode);
            self.store.save_sync_cursor(self.p(), &cursor).await?;
            self.summary.fields_created += 1;
        }
        Ok(())
    }

    /// 2. Reservations modified since the cursor, page by page.
    async fn pull(&mut self) -> Result<(), StepError> {
        let mut cursor = self.store.sync_cursor(self.p()).await?;
        let to = match cursor.window_to {
            Some(t) => t,
            None => {
                // Whole seconds: Cloudbeds filters and stamps in seconds.
                let to = self.now() - self.opts.settle;
                cursor.window_to = Some(to.with_nanosecond(0).unwrap_or(to));
                cursor.next_page = 1;
                cursor.window_total = None;
                cursor.window_to.unwrap_or_else(Utc::now)
            }
        };
        let size = self.opts.page_size.clamp(1, 100);
        let mut restarts = 0;
        loop {
            let page = self
                .crm
                .reservations(cursor.window_from, to, cursor.next_page, size)
                .await?;
            if let Some(total) = cursor.window_total.filter(|t| *t != page.total) {
                // Records left the window (modified after `to`) or came in:
                // page numbers shifted, so re-read the window from page 1.
                // Applying is idempotent; the leavers return next window.
                restarts += 1;
                tracing::info!(property = %self.p(), before = total, after = page.total, "window changed under the cursor; restarting it");
                if restarts > self.opts.max_restarts {
                    return Err(StepError::Other(
                        "reservations kept changing under the cursor; will resume".into(),
                    ));
                }
                cursor.next_page = 1;
                cursor.window_total = Some(page.total);
                self.store.save_sync_cursor(self.p(), &cursor).await?;
                continue;
            }
            cursor.window_total = Some(page.total);
            for r in &page.reservations {
                // Applying is idempotent: a page left half-applied is read
                // again by the next run (the cursor has not moved).
                self.safe_point()?;
                self.apply_reservation(r).await?;
            }
            self.summary.reservations_pulled += page.reservations.len() as u32;
            let last = page.reservations.len() < size as usize
                || cursor.next_page.saturating_mul(size) >= page.total;
            if last {
                cursor.window_from = Some(to);
                cursor.window_to = None;
                cursor.next_page = 1;
                cursor.window_total = None;
                cursor.last_run_at = Some(self.now());
                self.store.save_sync_cursor(self.p(), &cursor).await?;
                return Ok(());
            }
            // Only now, with the page applied in full.
            cursor.next_page += 1;
            self.store.save_sync_cursor(self.p(), &cursor).await?;
            self.safe_point()?;
        }
    }

    /// 2b. Guests modified since the last run whose reservations did not
    /// change (an email or address edited in Cloudbeds), found with
    /// `getGuestsByFilter` for each status; details from `getGuest` (custom
    /// fields, `guestOptIn`). A guest the pull applied is not fetched again.
    async fn pull_guests(&mut self) -> Result<(), StepError> {
        let mut cursor = self.store.sync_cursor(self.p()).await?;
        let to = self.now() - self.opts.settle;
        let to = to.with_nanosecond(0).unwrap_or(to);
        let size = self.opts.page_size.clamp(1, 100);
        for status in GuestStatus::ALL {
            let mut page = 1;
            loop {
                self.safe_point()?;
                let filter = GuestFilter {
                    status,
                    modified_from: cursor.guests_from,
                    modified_to: Some(to),
                    name: None,
                    email: None,
                    page,
                    page_size: size,
                };
                let found = self.crm.guests_by_filter(&filter).await?;
                for g in &found.guests {
                    if self.seen.contains(&g.guest_id) {
                        continue;
                    }
                    self.safe_point()?;
                    let remote = self.crm.guest(&g.guest_id).await?;
                    self.seen.insert(g.guest_id.clone());
                    let modified = g.modified_at.unwrap_or(to);
                    self.apply_guest(&remote, modified, false).await?;
                }
                if found.guests.len() < size as usize || page.saturating_mul(size) >= found.total {
                    break;
                }
                page += 1;
            }
        }
        // Applying is idempotent: a run stopped above reads the window again.
        cursor = self.store.sync_cursor(self.p()).await?;
        cursor.guests_from = Some(to);
        self.store.save_sync_cursor(self.p(), &cursor).await?;
        Ok(())
    }

    async fn apply_reservation(&mut self, r: &RemoteReservation) -> Result<(), StepError> {
        let mut main = None;
        for (i, gid) in r.guest_ids.iter().enumerate() {
            let local = if self.seen.contains(gid) {
                self.store.guest_by_cloudbeds_id(self.p(), gid).await?
            } else {
                let remote = self.crm.guest(gid).await?;
                self.seen.insert(gid.clone());
                self.apply_guest(&remote, r.modified_at, false).await?
            };
            if i == 0 {
                main = local;
            }
        }
        let (Some(g), Some(status)) = (main, StayStatus::parse(&r.status)) else {
            return Ok(());
        };
        if g.erased {
            return Ok(());
        }
        let stay = Stay {
            reservation_id: r.reservation_id.clone(),
            guest: g.id.clone(),
            property: self.p().clone(),
            arrival: r.arrival,
            departure: r.departure,
            status,
            updated_at: r.modified_at,
        };
        self.store.save_stay(&stay).await?;
        self.loyalty_departure(r, &g, status).await
    }

    /// Checked-out reservations are loyalty departures (revenue from
    /// `getReservation`); a cancelled or no-show one undoes its departure.
    async fn loyalty_departure(
        &mut self,
        r: &RemoteReservation,
        g: &Guest,
        status: StayStatus,
    ) -> Result<(), StepError> {
        let Ok(rid) = loyalty::parse_reservation(&r.reservation_id) else {
            tracing::warn!(property = %self.p(), "reservation id unusable as a loyalty reference; skipped");
            return Ok(());
        };
        let report = match status {
            StayStatus::CheckedOut => {
                let currency = self.currency().await?;
                let rev = self.crm.reservation_revenue(&rid).await?;
                let money = |raw: &str| {
                    Money::parse_major(raw, currency)
                        .and_then(|m| m.non_negative("revenue"))
                        .map_err(|e| StepError::Other(format!("reservation revenue: {e}")))
                };
                Some(Departure {
                    guest: g.clone(),
                    loyalty_number: None,
                    arrival: r.arrival,
                    departure: r.departure,
                    room_revenue: money(&rev.room)?,
                    other_revenue: money(&rev.other)?,
                })
            }
            StayStatus::Canceled | StayStatus::NoShow => {
                if self.store.loyalty_stay(self.p(), &rid).await?.is_none() {
                    return Ok(());
                }
                None
            }
            _ => return Ok(()),
        };
        let now = self.now();
        let out = loyalty::service::record_departure(
            self.store,
            self.p(),
            &rid,
            report,
            StaySource::Cloudbeds,
            now,
        )
        .await?;
        if out.is_some_and(|o| o.changed) {
            self.summary.departures += 1;
        }
        Ok(())
    }

    async fn currency(&mut self) -> Result<Currency, StepError> {
        if let Some(c) = self.currency {
            return Ok(c);
        }
        let p = self
            .store
            .property(self.p())
            .await?
            .ok_or_else(|| StepError::Other("the property is gone".into()))?;
        self.currency = Some(p.currency);
        Ok(p.currency)
    }

    /// The remote record as our synced fields: mapped custom fields become
    /// preferences; preferences Cloudbeds does not carry stay as they are.
    fn remote_fields(&self, local: &Guest, r: &RemoteGuest) -> SyncedFields {
        let mut prefs: BTreeMap<String, String> = local.preferences.clone();
        for m in &self.conn.field_map {
            prefs.remove(&m.preference);
            if let Some(v) = r
                .custom_fields
                .get(&m.name)
                .filter(|v| !v.trim().is_empty())
            {
                prefs.insert(m.preference.clone(), v.trim().to_owned());
            }
        }
        SyncedFields {
            email: r
                .email
                .as_deref()
                .and_then(|e| Email::parse(e).ok())
                .map(String::from),
            first_name: r.first_name.clone(),
            last_name: r.last_name.clone(),
            phone: r.phone.clone(),
            birth_date: r.birth_date,
            document_number: r.document_number.clone().filter(|d| !d.trim().is_empty()),
            document: r.document.clone(),
            address: r.address.clone(),
            preferences: prefs,
        }
    }

    /// Upserts one Cloudbeds guest under the conflict rule; screens it when
    /// it is new or its screened data changed (or `force`).
    async fn apply_guest(
        &mut self,
        r: &RemoteGuest,
        modified: DateTime<Utc>,
        force_screen: bool,
    ) -> Result<Option<Guest>, StepError> {
        let p = self.p().clone();
        if let Some(target) = &r.merged_into {
            // Cloudbeds merged this guest: follow it once.
            if target != &r.guest_id && !self.seen.contains(target) {
                self.seen.insert(target.clone());
                let merged = self.crm.guest(target).await?;
                return Box::pin(self.apply_guest(&merged, modified, force_screen)).await;
            }
            return Ok(None);
        }
        for _ in 0..3 {
            let email = r.email.as_deref().and_then(|e| Email::parse(e).ok());
            let mut local = match self.store.guest_by_cloudbeds_id(&p, &r.guest_id).await? {
                Some(g) => g,
                None => match &email {
                    Some(e) => match self.store.guest_by_email(&p, e).await? {
                        Some(g) if g.crm.cloudbeds_guest_id.is_none() => g,
                        _ => Guest::new(
                            GuestId(uuid::Uuid::now_v7().to_string()),
                            p.clone(),
                            modified,
                        ),
                    },
                    None => Guest::new(
                        GuestId(uuid::Uuid::now_v7().to_string()),
                        p.clone(),
                        modified,
                    ),
                },
            };
            if local.erased {
                // Never re-import what was erased here.
                return Ok(Some(local));
            }
            let is_new = local.revision == 0;
            local.crm.cloudbeds_guest_id = Some(r.guest_id.clone());
            let remote = self.remote_fields(&local, r);
            let winner = sync::decide(&local, &remote, modified);
            let agreed = local.crm.synced_hash.as_deref();
            let both_changed = agreed.is_some()
                && agreed != Some(sync::profile_hash(&local).as_str())
                && agreed != Some(remote.hash().as_str());
            if both_changed && winner != Winner::Same {
                self.conflicts.push(ConflictResolved {
                    winner: if winner == Winner::Local {
                        ConflictSide::Guesthub
                    } else {
                        ConflictSide::Cloudbeds
                    },
                    fields: runs::differing_fields(&SyncedFields::of(&local), &remote),
                });
            }
            match winner {
                Winner::Same => {}
                Winner::Local => {}
                Winner::Remote => {
                    local.email = remote.email.as_deref().and_then(|e| Email::parse(e).ok());
                    local.first_name = remote.first_name.clone();
                    local.last_name = remote.last_name.clone();
                    local.phone = remote.phone.clone();
                    // What Cloudbeds does not hold, ours stands (and is
                    // pushed, the profiles now differing).
                    local.birth_date = remote.birth_date.or(local.birth_date);
                    local.document_number =
                        remote.document_number.clone().or(local.document_number);
                    local.document = merge_document(&remote.document, &local.document);
                    local.address = merge_address(&remote.address, &local.address);
                    local.preferences = remote.preferences.clone();
                    local.updated_at = local.updated_at.max(modified);
                }
            }
            if sync::profile_hash(&local) == remote.hash() {
                local.crm.synced_hash = Some(remote.hash());
            } else if local.crm.synced_hash.is_none() {
                // First contact and ours differ: the agreed base is theirs.
                local.crm.synced_hash = Some(remote.hash());
            }
            local.crm.remote_modified_at = Some(modified);
            local.opt_in = r.opt_in;
            self.mark_for_screening(&mut local, force_screen);
            let saved = if is_new {
                // Another guest may hold this address: keep the new one
                // without it rather than failing the page.
                if let Some(e) = &local.email
                    && self.store.guest_by_email(&p, e).await?.is_some()
                {
                    local.email = None;
                }
                self.store.create_guest(&local).await
            } else {
                self.store.save_guest(&local).await
            };
            match saved {
                Ok(g) => {
                    self.summary.guests_pulled += 1;
                    let g = self.pull_notes(g).await?;
                    return Ok(Some(g));
                }
                // Someone edited it meanwhile (HTTP): read again, decide again.
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StepError::Other(
            "a guest kept changing while it was being applied".into(),
        ))
    }

    /// Queues a check when the screened data changed (or a webhook asked):
    /// the push step writes `in_progress` back and then runs it.
    fn mark_for_screening(&self, g: &mut Guest, force: bool) {
        let hash = ScreeningSubject::of(g).hash();
        let stale = g.screening.subject_hash.as_deref() != Some(hash.as_str());
        if force || stale {
            screening::queue_check(g);
        }
    }

    /// Asks the provider about a queued guest. A provider that answers
    /// later leaves the guest in progress with the check's id; one that
    /// cannot answer (after its own retries) makes the outcome `error`.
    async fn run_check(&mut self, g: &mut Guest) {
        let subject = ScreeningSubject::of(g);
        let hash = subject.hash();
        let check_id = format!("{}.{}", g.id, uuid::Uuid::new_v4().simple());
        let outcome = match self.screening.screen(&check_id, &subject).await {
            Ok(o) if o.status == ScreeningStatus::InProgress => {
                g.screening.check_id = Some(check_id);
                g.screening.subject_hash = Some(hash);
                return;
            }
            Ok(o) => o,
            Err(e) => {
                self.summary.errors.push(format!("screening: {e}"));
                ScreeningOutcome {
                    status: ScreeningStatus::Error,
                    reason: Some("provider_unavailable".into()),
                }
            }
        };
        record_outcome(g, &outcome, hash, self.now());
        self.summary.screened += 1;
        if outcome.status == ScreeningStatus::Flagged {
            self.summary.flagged += 1;
        }
    }

    /// Cloudbeds notes not known here are added; local notes matching a
    /// Cloudbeds note by content are linked to it (a post that succeeded
    /// before a crash is adopted, not repeated).
    async fn pull_notes(&mut self, g: Guest) -> Result<Guest, StepError> {
        let Some(cb) = g.crm.cloudbeds_guest_id.clone() else {
            return Ok(g);
        };
        let remote = self.crm.guest_notes(&cb).await?;
        let mut local = self.store.notes(self.p(), &g.id).await?;
        for rn in remote {
            if local
                .iter()
                .any(|n| n.cloudbeds_note_id.as_deref() == Some(&rn.note_id))
            {
                continue;
            }
            let h = sync::note_hash(&rn.text);
            if let Some(n) = local
                .iter_mut()
                .find(|n| n.cloudbeds_note_id.is_none() && sync::note_hash(&n.text) == h)
            {
                n.cloudbeds_note_id = Some(rn.note_id.clone());
                self.store.save_note(self.p(), n).await?;
                continue;
            }
            let note = Note {
                id: uuid::Uuid::now_v7().to_string(),
                guest: g.id.clone(),
                text: rn.text.clone(),
                author: None,
                source: NoteSource::Cloudbeds,
                created_at: self.now(),
                cloudbeds_note_id: Some(rn.note_id.clone()),
            };
            self.store.add_note(self.p(), &note).await?;
            local.push(note);
            self.summary.notes_pulled += 1;
        }
        Ok(g)
    }

    /// 3. Guests and reservations webhooks asked for.
    async fn refetch(&mut self) -> Result<(), StepError> {
        for (t, mark) in self.store.refetch_targets(self.p()).await? {
            self.safe_point()?;
            match &t {
                RefetchTarget::Guest(id) => {
                    let remote = self.crm.guest(id).await?;
                    self.seen.insert(id.clone());
                    let now = self.now();
                    self.apply_guest(&remote, now, true).await?;
                }
                // The pull's window covers it: a changed reservation's
                // dateModified lies inside the window.
                RefetchTarget::Reservation(_) if self.opts.trigger != SyncTrigger::Webhook => {}
                // A webhook's run does not pull: fetch it (and its guests).
                RefetchTarget::Reservation(id) => {
                    let r = self.crm.reservation(id).await?;
                    self.apply_reservation(&r).await?;
                }
            }
            self.store.clear_refetch(self.p(), &t, mark).await?;
        }
        Ok(())
    }

    /// 4. Profiles, notes, screening outcomes and erasures to Cloudbeds.
    async fn push(&mut self) -> Result<(), StepError> {
        for g in self.store.guests_needing_sync(self.p()).await? {
            self.safe_point()?;
            if let Err(e) = self.push_guest(g).await {
                if fatal(&e) {
                    return Err(e);
                }
                self.summary.errors.push(format!("push: {e}"));
            }
        }
        Ok(())
    }

    fn mapped_fields(&self, g: &Guest) -> Vec<(String, String)> {
        self.conn
            .field_map
            .iter()
            .map(|m| {
                let v = g
                    .preferences
                    .get(&m.preference)
                    .cloned()
                    .unwrap_or_default();
                (m.name.clone(), v)
            })
            .collect()
    }

    async fn push_guest(&mut self, mut g: Guest) -> Result<(), StepError> {
        let Some(cb) = g.crm.cloudbeds_guest_id.clone() else {
            // Not in Cloudbeds (created here): only screening applies.
            if screening::check_due(&g) {
                self.run_check(&mut g).await;
            }
            self.store.save_guest(&g).await?;
            return Ok(());
        };
        if g.erased {
            // Cloudbeds v1.2 cannot delete a guest: overwrite everything it
            // lets us write (names, email, phone, birth date, mapped custom
            // fields), leave a note saying so, and record that we did.
            let update = erased_update(&cb, self.mapped_fields(&g));
            self.crm.put_guest(&cb, &update).await?;
            self.crm.post_guest_note(&cb, ERASURE_NOTE).await?;
            g.crm.erasure_sent = true;
            self.store.save_guest(&g).await?;
            self.store.erasure_pushed(self.p(), &g.id).await?;
            self.summary.erasures_sent += 1;
            return Ok(());
        }
        if screening::check_due(&g) {
            // The check starts: Cloudbeds hears `in_progress` first.
            g = self.write_screening(g, &cb).await?;
            self.run_check(&mut g).await;
            g = self.store.save_guest(&g).await?;
        }
        let hash = sync::profile_hash(&g);
        if g.crm.synced_hash.as_deref() != Some(hash.as_str()) {
            let update = GuestUpdate {
                first_name: g.first_name.clone(),
                last_name: g.last_name.clone(),
                email: g.email.as_ref().map(|e| e.as_str().to_owned()),
                phone: g.phone.clone(),
                birth_date: g.birth_date,
                document_number: g.document_number.clone(),
                document: g.document.clone(),
                address: g.address.clone(),
                custom_fields: self.mapped_fields(&g),
            };
            self.crm.put_guest(&cb, &update).await?;
            g.crm.synced_hash = Some(hash);
            self.summary.guests_pushed += 1;
            // Saved at once: a later failure must not make us push again.
            g = self.store.save_guest(&g).await?;
        }
        g = self.write_screening(g, &cb).await?;
        if g.crm.notes_pending {
            self.push_notes(&g, &cb).await?;
            g.crm.notes_pending = false;
            self.store.save_guest(&g).await?;
        }
        Ok(())
    }

    /// Writes the guest's screening status back as the connection chooses,
    /// once per status: a guest note (posted now) or the two screening
    /// custom fields (`putGuest`). Returns the guest as saved.
    async fn write_screening(&mut self, mut g: Guest, cb: &str) -> Result<Guest, StepError> {
        let Some(status) = g.screening.status else {
            return Ok(g);
        };
        let outcome_hash = sync::screening_hash(&g.screening);
        if g.crm.screening_written_hash.as_deref() == Some(outcome_hash.as_str()) {
            return Ok(g);
        }
        match self.conn.screening_write_back {
            ScreeningWriteBack::Note => {
                let note = Note {
                    id: uuid::Uuid::now_v7().to_string(),
                    guest: g.id.clone(),
                    text: sync::screening_note_text(&g.screening),
                    author: Some("GuestHub screening".into()),
                    source: NoteSource::Screening,
                    created_at: self.now(),
                    cloudbeds_note_id: None,
                };
                self.store.add_note(self.p(), &note).await?;
                // Recorded with the note: a failed post is retried from the
                // stored note, never by writing a second one.
                g.crm.notes_pending = true;
                g.crm.screening_written_hash = Some(outcome_hash);
                g = self.store.save_guest(&g).await?;
                self.push_notes(&g, cb).await?;
                g.crm.notes_pending = false;
                return Ok(self.store.save_guest(&g).await?);
            }
            ScreeningWriteBack::CustomField => {
                let update = GuestUpdate {
                    custom_fields: vec![
                        (SCREENING_STATUS_FIELD.0.into(), status.as_str().into()),
                        (
                            SCREENING_RESULT_FIELD.0.into(),
                            sync::screening_result_text(&g.screening),
                        ),
                    ],
                    ..Default::default()
                };
                self.crm.put_guest(cb, &update).await?;
            }
        }
        g.crm.screening_written_hash = Some(outcome_hash);
        Ok(self.store.save_guest(&g).await?)
    }

    /// Posts the notes Cloudbeds lacks. Before posting, Cloudbeds' notes
    /// are read and a note with the same content is adopted instead; an
    /// ambiguous post is followed by a re-read, never a blind repeat.
    async fn push_notes(&mut self, g: &Guest, cb: &str) -> Result<(), StepError> {
        let pending: Vec<Note> = self
            .store
            .notes(self.p(), &g.id)
            .await?
            .into_iter()
            .filter(|n| n.cloudbeds_note_id.is_none())
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let linked: HashSet<String> = self
            .store
            .notes(self.p(), &g.id)
            .await?
            .into_iter()
            .filter_map(|n| n.cloudbeds_note_id)
            .collect();
        for mut note in pending {
            let h = sync::note_hash(&note.text);
            let mut id = None;
            for _ in 0..3 {
                let remote = self.crm.guest_notes(cb).await?;
                if let Some(r) = remote
                    .iter()
                    .find(|r| !linked.contains(&r.note_id) && sync::note_hash(&r.text) == h)
                {
                    id = Some(r.note_id.clone());
                    break;
                }
                match self.crm.post_guest_note(cb, &note.text).await {
                    Ok(nid) => {
                        id = Some(nid);
                        self.summary.notes_pushed += 1;
                        break;
                    }
                    Err(CrmError::Ambiguous(why)) => {
                        tracing::info!(why, "note post ambiguous; re-reading before any retry");
                        tokio::time::sleep(self.opts.backoff_base).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let Some(id) = id else {
                return Err(StepError::Other(
                    "a note could not be confirmed in Cloudbeds; will retry".into(),
                ));
            };
            note.cloudbeds_note_id = Some(id);
            self.store.save_note(self.p(), &note).await?;
        }
        Ok(())
    }
}

/// Builds the Cloudbeds client of one connection.
pub fn client_for(
    conn: &CrmConnection,
    key: ApiKey,
    opts: &SyncOptions,
) -> Result<CloudbedsClient, CrmError> {
    let mut cfg = CloudbedsConfig::new(&conn.base_url, &conn.cloudbeds_property_id, key);
    cfg.rate_per_second = opts.rate_per_second;
    cfg.max_attempts = opts.max_attempts;
    cfg.backoff_base = opts.backoff_base;
    cfg.timeout = opts.timeout;
    cfg.stop = Some(opts.stop.clone());
    CloudbedsClient::new(cfg)
}

/// Where API keys come from: the environment / SSM in production; tests
/// pass their own.
#[async_trait::async_trait]
pub trait KeySource: Send + Sync {
    async fn api_key(&self, conn: &CrmConnection) -> anyhow::Result<ApiKey>;
}

/// The production source: the env var the connection names, else its SSM
/// parameter.
pub struct EnvKeys;

#[async_trait::async_trait]
impl KeySource for EnvKeys {
    async fn api_key(&self, conn: &CrmConnection) -> anyhow::Result<ApiKey> {
        keys::api_key(conn).await
    }
}

/// Syncs one connected property with its real client and its screening
/// provider (the HTTP service it names, else its watchlist).
pub async fn sync_connection(
    store: &Store,
    conn: &CrmConnection,
    keys: &dyn KeySource,
    opts: &SyncOptions,
) -> SyncSummary {
    let failed = |e: String| SyncSummary {
        property: conn.property.to_string(),
        errors: vec![e],
        ..Default::default()
    };
    let key = match keys.api_key(conn).await {
        Ok(k) => k,
        Err(e) => return failed(format!("api key: {e}")),
    };
    let client = match client_for(conn, key, opts) {
        Ok(c) => c,
        Err(e) => return failed(e.to_string()),
    };
    let provider: Box<dyn ScreeningProvider> = match &conn.screening_service {
        Some(svc) => {
            let secret = match platform::secrets::read(
                &svc.secret_env,
                svc.secret_ssm_parameter.as_deref(),
                "the screening secret",
            )
            .await
            {
                Ok(s) => s,
                Err(e) => return failed(format!("screening secret: {e}")),
            };
            match HttpScreening::new(&svc.url, secret, conn.property.as_str()) {
                Ok(p) => Box::new(p),
                Err(e) => return failed(e.to_string()),
            }
        }
        None => match store.watchlist(&conn.property).await {
            Ok(w) => Box::new(w),
            Err(e) => return failed(format!("watchlist: {e}")),
        },
    };
    sync_property(store, conn, &client, provider.as_ref(), opts).await
}

/// Every connected property (or only `only`), one after another; one
/// property's failure never stops the others.
pub async fn sync_all(
    store: &Store,
    only: Option<&PropertyId>,
    keys: &dyn KeySource,
    opts: &SyncOptions,
) -> Result<Vec<SyncSummary>, StoreError> {
    let mut out = Vec::new();
    for conn in store.connections().await? {
        if only.is_some_and(|p| p != &conn.property) {
            continue;
        }
        out.push(sync_connection(store, &conn, keys, opts).await);
    }
    Ok(out)
}

/// The note left on a guest in Cloudbeds when GuestHub erased them.
pub const ERASURE_NOTE: &str = "Personal data erased at the guest's request (GuestHub).";

/// Cloudbeds' parts of the address where it has them, ours where it has
/// none (and the push then sends ours).
fn merge_address(remote: &Address, local: &Address) -> Address {
    let pick = |r: &Option<String>, l: &Option<String>| r.clone().or_else(|| l.clone());
    Address {
        address1: pick(&remote.address1, &local.address1),
        address2: pick(&remote.address2, &local.address2),
        city: pick(&remote.city, &local.city),
        state: pick(&remote.state, &local.state),
        zip: pick(&remote.zip, &local.zip),
        country: pick(&remote.country, &local.country),
    }
}

fn merge_document(remote: &Document, local: &Document) -> Document {
    Document {
        kind: remote.kind.clone().or_else(|| local.kind.clone()),
        issuing_country: remote
            .issuing_country
            .clone()
            .or_else(|| local.issuing_country.clone()),
        issue_date: remote.issue_date.or(local.issue_date),
        expiration_date: remote.expiration_date.or(local.expiration_date),
    }
}

/// What overwrites an erased guest in Cloudbeds: placeholders that name
/// nobody (an email address that cannot be delivered to, a postal address
/// of placeholders, no phone digits that reach anyone, placeholder birth
/// and document dates, document type "none"). The country is left as it
/// is: Cloudbeds takes only real country codes, and a country names nobody.
pub fn erased_update(
    cloudbeds_guest_id: &str,
    custom_fields: Vec<(String, String)>,
) -> GuestUpdate {
    GuestUpdate {
        first_name: Some("Erased".into()),
        last_name: Some("Erased".into()),
        email: Some(format!("erased-{cloudbeds_guest_id}@erased.invalid")),
        phone: Some("0".into()),
        birth_date: chrono::NaiveDate::from_ymd_opt(1900, 1, 1),
        document_number: Some("ERASED".into()),
        document: Document {
            kind: Some("na".into()),
            issuing_country: None,
            issue_date: chrono::NaiveDate::from_ymd_opt(1900, 1, 1),
            expiration_date: chrono::NaiveDate::from_ymd_opt(1900, 1, 2),
        },
        address: Address {
            address1: Some("Erased".into()),
            address2: Some("Erased".into()),
            city: Some("Erased".into()),
            state: Some("Erased".into()),
            zip: Some("00000".into()),
            country: None,
        },
        custom_fields,
    }
}
