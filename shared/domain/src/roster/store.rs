//! The roster store port. Wipe & replace works by generations: a file's
//! members are written as a new generation, then one conditional write
//! flips the property's active-generation pointer. Readers follow the
//! pointer, so they see the old roster or the new one, never a mix.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::import::{ActiveRoster, ImportReport};
use crate::{Email, PropertyId, StoreError};

/// One (member, tier) entry of a generation. A person in several clubs has
/// several entries, so no file ever needs grouping in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationMember {
    pub email: Email,
    pub tier: Option<String>,
    pub member_id: Option<String>,
    pub since: Option<NaiveDate>,
    /// The contact a booking is prefilled with, as the file has it.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
}

/// What a lookup by email finds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemberRecord {
    pub member_id: Option<String>,
    pub tiers: Vec<String>,
    /// The earliest join date among the person's entries.
    pub since: Option<NaiveDate>,
    /// The first of the person's entries that has each.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
}

/// A member found by member number or name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundMember {
    pub email: Email,
    pub record: MemberRecord,
}

/// A name as the name search matches it: accents transliterated, lower
/// case, anything but letters, digits, `'` and `-` a space, runs of spaces
/// one (`"  Ødegård-Núñez "` → `"odegard-nunez"`).
pub fn fold_name(name: &str) -> String {
    let folded: String = deunicode::deunicode(name)
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '\'' || c == '-' {
                c
            } else {
                ' '
            }
        })
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What an import changed against the roster it replaces, counted by member
/// (email): in the new roster only, in the old only, in both with other
/// tiers, in both with the same tiers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChangeCounts {
    pub joined: u64,
    pub left: u64,
    pub tier_changed: u64,
    pub unchanged: u64,
}

/// A kind of change a listing pages through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Joined,
    Left,
    TierChanged,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Joined => "joined",
            ChangeKind::Left => "left",
            ChangeKind::TierChanged => "tier_changed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Joined, Self::Left, Self::TierChanged]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One member who joined, left or changed tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MemberChange {
    pub email: String,
    pub kind: ChangeKind,
    /// The member number (the new roster's, else the old one's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    pub tiers_before: Vec<String>,
    pub tiers_after: Vec<String>,
}

/// Whether the club's member features are on. In `trial` the files are
/// imported, judged and applied as usual, but recognition and club
/// discounts answer as for a non-member (see `service::recognise`);
/// switching to `live` makes the roster applied last count at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClubMode {
    #[default]
    Live,
    Trial,
}

/// The pointer flip that applies an import.
#[derive(Debug, Clone)]
pub struct Flip {
    /// The pointer's version as read (None: no roster yet).
    pub expected_version: Option<i64>,
    pub active: ActiveRoster,
    /// The generation that stops being active (retired, deleted later).
    pub previous_generation: Option<String>,
}

impl Flip {
    /// The flip that makes `generation` (holding `report`'s members) the
    /// active roster in place of `active` (the pointer as read, if any).
    pub fn applying(
        report: &ImportReport,
        generation: String,
        active: Option<&(ActiveRoster, i64)>,
        applied_at: DateTime<Utc>,
    ) -> Self {
        Self {
            expected_version: active.map(|(_, v)| *v),
            previous_generation: active.map(|(a, _)| a.generation.clone()),
            active: ActiveRoster {
                generation,
                import_id: report.id.clone(),
                applied_at,
                members: report.members,
                tier_counts: report.tier_counts.clone(),
                order: report.source.order(),
            },
        }
    }
}

/// A tier as the property configures it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierSetting {
    /// As the AMS spells it (first seen).
    pub tier: String,
    pub enabled: bool,
}

#[async_trait]
pub trait RosterStore: Send + Sync {
    /// The active roster and the pointer's version.
    async fn active_roster(
        &self,
        p: &PropertyId,
    ) -> Result<Option<(ActiveRoster, i64)>, StoreError>;
    /// The person's entries in the active roster (`None`: not a member).
    async fn lookup_member(
        &self,
        p: &PropertyId,
        email: &Email,
    ) -> Result<Option<MemberRecord>, StoreError>;
    /// Registers a generation being built (so a crash leaves it findable).
    async fn start_generation(&self, p: &PropertyId, generation: &str) -> Result<(), StoreError>;
    /// Members of the active roster with this member number (usually one).
    async fn find_by_member_id(
        &self,
        p: &PropertyId,
        member_id: &str,
        limit: usize,
    ) -> Result<Vec<FoundMember>, StoreError>;
    /// Members of the active roster whose folded full name (first last) or
    /// last name starts with `folded` ([`fold_name`]), in name order: at
    /// most `limit`, after `after` (a previous page's `next`); `next` is
    /// set when more may follow.
    async fn search_members(
        &self,
        p: &PropertyId,
        folded: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<FoundMember>, Option<String>), StoreError>;
    /// Compares generation `new` with `old` (the roster it replaces),
    /// records each member who joined, left or changed tier for
    /// [`RosterStore::changes`] and counts them. Reads both generations in
    /// key order, page by page: memory does not grow with the roster.
    /// Without `old` it records only that every member joined (their list
    /// is the generation itself) and answers `None`: the caller's member
    /// count is the `joined` count. Idempotent (a retry redoes it).
    async fn compare_generations(
        &self,
        p: &PropertyId,
        old: Option<&str>,
        new: &str,
    ) -> Result<Option<ChangeCounts>, StoreError>;
    /// One page of a generation's recorded changes of one kind, by email:
    /// at most `limit`, after `after` (a previous page's `next`, the last
    /// email listed). Empty once the generation is swept.
    async fn changes(
        &self,
        p: &PropertyId,
        generation: &str,
        kind: ChangeKind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<MemberChange>, Option<String>), StoreError>;
    /// Writes members into a generation (idempotent; not yet visible).
    async fn put_members(
        &self,
        p: &PropertyId,
        generation: &str,
        members: Vec<GenerationMember>,
    ) -> Result<(), StoreError>;
    /// The report of an earlier import of the same delivery, if any.
    async fn import_by_source(
        &self,
        p: &PropertyId,
        identity: &str,
    ) -> Result<Option<ImportReport>, StoreError>;
    /// Records the import's report and its source marker, and — with a
    /// `flip` — makes its generation active, all in one transaction.
    /// `Err(Conflict)` when the delivery was recorded meanwhile or the
    /// pointer moved (re-read and decide again).
    async fn finish_import(
        &self,
        p: &PropertyId,
        report: &ImportReport,
        identity: &str,
        flip: Option<Flip>,
    ) -> Result<(), StoreError>;
    /// Waits before another attempt after a lost race (`attempt` from 0):
    /// the adapter's back-off, so racing importers spread out.
    async fn back_off(&self, attempt: u32);
    /// Applies a held import: `Err(Conflict)` when it changed meanwhile.
    async fn approve_import(
        &self,
        p: &PropertyId,
        report: &ImportReport,
        report_version: i64,
        flip: Flip,
    ) -> Result<(), StoreError>;
    /// Imports, newest first.
    async fn import_reports(
        &self,
        p: &PropertyId,
        limit: usize,
    ) -> Result<Vec<ImportReport>, StoreError>;
    /// One report and its version.
    async fn import_report(
        &self,
        p: &PropertyId,
        id: &str,
    ) -> Result<Option<(ImportReport, i64)>, StoreError>;
    /// Tier settings by normalised name.
    async fn tier_settings(
        &self,
        p: &PropertyId,
    ) -> Result<BTreeMap<String, TierSetting>, StoreError>;
    async fn set_tier(&self, p: &PropertyId, tier: &str, enabled: bool) -> Result<(), StoreError>;
    /// The club's mode (`live` when never set).
    async fn club_mode(&self, p: &PropertyId) -> Result<ClubMode, StoreError>;
    async fn set_club_mode(&self, p: &PropertyId, mode: ClubMode) -> Result<(), StoreError>;
    /// Deletes a generation's members and registry entry.
    async fn drop_generation(&self, p: &PropertyId, generation: &str) -> Result<(), StoreError>;
    /// Deletes generations retired before `retired_before` and builds
    /// started before `abandoned_before` (a crash whose retry never came;
    /// a running import's build is younger); returns how many went.
    async fn sweep_generations(
        &self,
        p: &PropertyId,
        retired_before: DateTime<Utc>,
        abandoned_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_for_search() {
        assert_eq!(fold_name("  Ødegård-Núñez "), "odegard-nunez");
        assert_eq!(fold_name("JOSÉ \t María"), "jose maria");
        assert_eq!(fold_name("O'Brien"), "o'brien");
        assert_eq!(fold_name("Smith, Ann (Dr.)"), "smith ann dr");
        assert_eq!(fold_name(" * "), "");
    }

    #[test]
    fn change_kinds_parse_as_named() {
        for k in [
            ChangeKind::Joined,
            ChangeKind::Left,
            ChangeKind::TierChanged,
        ] {
            assert_eq!(ChangeKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ChangeKind::parse("unchanged"), None);
    }
}
