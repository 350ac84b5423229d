//! Roster operations that span several store calls, written once against
//! the port: approving a held import, the tier overview.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::discount::normalise_tier;
use super::import::{ImportReport, ImportStatus};
use super::store::{Flip, RosterStore};
use crate::{PropertyId, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    #[error("no such roster import")]
    ImportNotFound,
    #[error("only a held import can be approved; this one is {0:?}")]
    NotHeld(ImportStatus),
    #[error("a newer file was applied since; this import can no longer be approved")]
    Superseded,
    #[error(transparent)]
    Store(#[from] StoreError),
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
