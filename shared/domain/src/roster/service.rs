//! Roster operations that span several store calls, written once against
//! the port: approving a held import, the tier overview.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::discount::normalise_tier;
use super::import::{ImportReport, ImportStatus};
use super::store::{ClubMode, Flip, MemberRecord, RosterStore};
use crate::{Email, PropertyId, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    #[error("no such roster import")]
    ImportNotFound,
    #[error("only a held import can be approved; this one is {0:?}")]
    NotHeld(ImportStatus),
    #[error("a newer file was applied since; this import can no longer be approved")]
    Superseded,
    /// An upload whose type is not a club file's (`Content-Type`, or
    /// `application/octet-stream` without a `?filename=` that names one).
    #[error(
        "send a club file as text/csv, text/tab-separated-values, an XLSX/XLS type, or application/octet-stream with ?filename=<name>.<csv|txt|tsv|xlsx|xls>"
    )]
    UploadType,
    #[error("the file is over the upload limit of {limit_bytes} bytes")]
    UploadTooLarge { limit_bytes: u64 },
    #[error("the upload ended before its declared length; nothing was imported")]
    UploadCutOff,
    #[error("no drop bucket is configured here; POST the file to /roster-imports instead")]
    NoDropBucket,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What recognising a person finds: the club's mode and, in `live`, the
/// person's roster entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recognition {
    pub mode: ClubMode,
    pub member: Option<MemberRecord>,
}

/// The one place the roster is consulted for recognition and club
/// discounts: in `trial` everyone answers as a non-member, whatever the
/// roster says.
pub async fn recognise(
    store: &impl RosterStore,
    p: &PropertyId,
    email: &Email,
) -> Result<Recognition, StoreError> {
    let mode = store.club_mode(p).await?;
    let member = match mode {
        ClubMode::Live => store.lookup_member(p, email).await?,
        ClubMode::Trial => None,
    };
    Ok(Recognition { mode, member })
}

/// What recognition would answer once live (`?preview=true`): the roster
/// applied last, whatever the mode. Never used for a discount.
pub async fn preview(
    store: &impl RosterStore,
    p: &PropertyId,
    email: &Email,
) -> Result<Recognition, StoreError> {
    Ok(Recognition {
        mode: store.club_mode(p).await?,
        member: store.lookup_member(p, email).await?,
    })
}

/// Applies a held import's generation. Re-reads on a lost race.
pub async fn approve(
    store: &impl RosterStore,
    p: &PropertyId,
    import_id: &str,
    now: DateTime<Utc>,
) -> Result<ImportReport, RosterError> {
    for attempt in 0..5 {
        let (mut report, version) = store
            .import_report(p, import_id)
            .await?
            .ok_or(RosterError::ImportNotFound)?;
        if report.status != ImportStatus::Held {
            return Err(RosterError::NotHeld(report.status));
        }
        let generation = report
            .generation
            .clone()
            .ok_or(RosterError::NotHeld(report.status))?;
        let active = store.active_roster(p).await?;
        let order = report.source.order();
        if let Some((a, _)) = &active
            && order.is_older_than(&a.order)
        {
            return Err(RosterError::Superseded);
        }
        let flip = Flip::applying(&report, generation, active.as_ref(), now);
        report.status = ImportStatus::Applied;
        report.reason = Some("approved by an administrator".into());
        match store.approve_import(p, &report, version, flip).await {
            Ok(()) => return Ok(report),
            Err(StoreError::Conflict) => store.back_off(attempt).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(RosterError::Store(StoreError::Conflict))
}

/// A tier as `GET /club-tiers` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TierView {
    pub tier: String,
    /// Members of this tier in the active roster.
    pub members: u64,
    /// Used for event discounts.
    pub enabled: bool,
}

/// The tiers of the active roster with their counts and settings.
pub async fn tiers(store: &impl RosterStore, p: &PropertyId) -> Result<Vec<TierView>, StoreError> {
    let settings = store.tier_settings(p).await?;
    let counts: BTreeMap<String, u64> = store
        .active_roster(p)
        .await?
        .map(|(a, _)| a.tier_counts)
        .unwrap_or_default();
    Ok(counts
        .into_iter()
        .map(|(tier, members)| {
            let enabled = settings
                .get(&normalise_tier(&tier))
                .is_some_and(|s| s.enabled);
            TierView {
                tier,
                members,
                enabled,
            }
        })
        .collect())
}

/// The normalised names of the enabled tiers (for discounts).
pub async fn enabled_tiers(
    store: &impl RosterStore,
    p: &PropertyId,
) -> Result<std::collections::BTreeSet<String>, StoreError> {
    Ok(store
        .tier_settings(p)
        .await?
        .into_iter()
        .filter(|(_, s)| s.enabled)
        .map(|(k, _)| k)
        .collect())
}
