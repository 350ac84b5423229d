//! Roster imports: what a delivered file is (its source and order), what it
//! amounted to (the report), and whether it may replace the active roster.
//!
//! Each file replaces the property's whole roster, so a damaged or stale file
//! must never be applied: empty, header-only and truncated files and files
//! that would shrink the roster by more than the property's threshold are
//! **held** (an admin may approve them); files with too many bad rows are
//! **rejected**; files older than the active one are **skipped**.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// Where a file came from. Identity = property + key + etag (or version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportSource {
    /// The object key (`ams/<property>/<file>`) or local path under the drop folder.
    pub key: String,
    /// S3 ETag / version id, or size+mtime for local files.
    pub etag: String,
    /// S3's event sequencer (hex; comparable only for the same key).
    #[serde(default)]
    pub sequencer: Option<String>,
    /// When the file arrived (S3 event time, or file mtime).
    pub arrived_at: DateTime<Utc>,
}

impl ImportSource {
    /// The file name (last path segment).
    pub fn file_name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }

    /// A stable id for this delivery: duplicates of one object share it.
    pub fn identity(&self, property: &str) -> String {
        let mut h = Sha256::new();
        for part in [property, self.key.as_str(), self.etag.as_str()] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(&h.finalize()[..16])
    }

    /// The instant that orders deliveries: a timestamp in the file name when
    /// it has one (AMS exports are named by export time, and S3 may deliver
    /// events late or out of order), else the arrival time.
    pub fn order(&self) -> ImportOrder {
        ImportOrder {
            at: name_timestamp(self.file_name()).unwrap_or(self.arrived_at),
            key: self.key.clone(),
            sequencer: self.sequencer.clone(),
        }
    }
}

/// What decides "older" between two deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportOrder {
    pub at: DateTime<Utc>,
    pub key: String,
    pub sequencer: Option<String>,
}

impl ImportOrder {
    /// Is `self` strictly older than `other`? Same instant and key: S3's
    /// sequencer decides (hex strings of varying length: compare padded).
    pub fn is_older_than(&self, other: &ImportOrder) -> bool {
        if self.at != other.at {
            return self.at < other.at;
        }
        match (&self.sequencer, &other.sequencer) {
            (Some(a), Some(b)) if self.key == other.key => {
                let width = a.len().max(b.len());
                format!("{a:0>width$}") < format!("{b:0>width$}")
            }
            _ => false,
        }
    }
}

/// `members_20260115T0300.csv`, `export-2026-01-15_03-00-00.csv`,
/// `roster_20260115.csv` → that instant (UTC; a date alone = its midnight).
pub fn name_timestamp(name: &str) -> Option<DateTime<Utc>> {
    let digits: String = name
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T' || *c == 't')
        .collect();
    // Find the first run of 8 digits that is a plausible date.
    let bytes: Vec<char> = digits.chars().collect();
    for start in 0..bytes.len() {
        if bytes.len() < start + 8 || !bytes[start..start + 8].iter().all(char::is_ascii_digit) {
            continue;
        }
        let date_s: String = bytes[start..start + 8].iter().collect();
        let Ok(date) = NaiveDate::parse_from_str(&date_s, "%Y%m%d") else {
            continue;
        };
        if !(2000..=2100).contains(&chrono::Datelike::year(&date)) {
            continue;
        }
        let rest: String = bytes[start + 8..]
            .iter()
            .skip_while(|c| **c == 'T' || **c == 't')
            .take_while(|c| c.is_ascii_digit())
            .take(6)
            .collect();
        let time = match rest.len() {
            6 => NaiveDateTime::parse_from_str(&format!("{date_s}{rest}"), "%Y%m%d%H%M%S").ok(),
            4 => NaiveDateTime::parse_from_str(&format!("{date_s}{rest}00"), "%Y%m%d%H%M%S").ok(),
            _ => None,
        };
        let at = time.unwrap_or_else(|| date.and_hms_opt(0, 0, 0).unwrap_or_default());
        return Some(at.and_utc());
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    /// Became the active roster.
    Applied,
    /// Kept aside: looks damaged or drops too many members; approve to apply.
    Held,
    /// Unusable (no email column, too many bad rows, unreadable).
    Rejected,
    /// Older than the active roster's file, or a repeat delivery.
    Skipped,
}

/// One bad row, without personal data: the line, the column, what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RejectedRow {
    pub line: u64,
    pub column: String,
    pub reason: String,
}

/// What an import did. No personal data: counts, lines, columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    pub id: String,
    pub property: String,
    pub file: String,
    pub status: ImportStatus,
    /// Why it was held, rejected or skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub rows: u64,
    /// Distinct member emails (suppressed ones not counted).
    pub members: u64,
    /// Distinct emails skipped because the person was erased (the
    /// property's suppression list).
    #[serde(default)]
    pub suppressed: u64,
    pub former_members: u64,
    pub rejected_rows: u64,
    /// The first rejects (at most [`MAX_REPORTED_REJECTS`]).
    pub rejects: Vec<RejectedRow>,
    pub tier_counts: BTreeMap<String, u64>,
    pub truncated: bool,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// The generation holding this file's members (applied or held).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<String>,
    pub source: ImportSource,
    /// Members in the roster that was active when this file was judged.
    pub previous_members: u64,
    /// Against that roster (applied and held imports; zero otherwise): members
    /// who joined, left, changed tier, or stayed as they were.
    #[serde(default)]
    pub joined: u64,
    #[serde(default)]
    pub left: u64,
    #[serde(default)]
    pub tier_changed: u64,
    #[serde(default)]
    pub unchanged: u64,
}

pub const MAX_REPORTED_REJECTS: usize = 1000;

/// The active roster as the pointer records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveRoster {
    pub generation: String,
    pub import_id: String,
    pub applied_at: DateTime<Utc>,
    pub members: u64,
    pub tier_counts: BTreeMap<String, u64>,
    pub order: ImportOrder,
}

/// The thresholds a property imports under.
#[derive(Debug, Clone, Copy)]
pub struct ImportPolicy {
    /// Hold a file that would drop this share of members or more (percent).
    pub hold_shrink_percent: u8,
    /// Reject a file whose bad rows exceed this share of its rows (percent).
    pub reject_bad_rows_percent: u8,
}

impl Default for ImportPolicy {
    fn default() -> Self {
        Self {
            hold_shrink_percent: 50,
            reject_bad_rows_percent: 20,
        }
    }
}

/// The facts about a fully read file the decision needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileFacts {
    pub rows: u64,
    pub members: u64,
    pub rejected_rows: u64,
    pub truncated: bool,
}

/// Apply, hold, reject or skip — and why.
pub fn decide(
    facts: FileFacts,
    order: &ImportOrder,
    active: Option<&ActiveRoster>,
    policy: ImportPolicy,
) -> (ImportStatus, Option<String>) {
    if let Some(a) = active
        && order.is_older_than(&a.order)
    {
        return (
            ImportStatus::Skipped,
            Some("older than the file of the active roster".into()),
        );
    }
    if facts.rows > 0
        && facts.rejected_rows * 100 > facts.rows * u64::from(policy.reject_bad_rows_percent)
    {
        return (
            ImportStatus::Rejected,
            Some(format!(
                "{} of {} rows are unusable (over {}%)",
                facts.rejected_rows, facts.rows, policy.reject_bad_rows_percent
            )),
        );
    }
    if facts.truncated {
        return (
            ImportStatus::Held,
            Some("the file ends mid-row: it looks truncated".into()),
        );
    }
    if facts.members == 0 {
        return (
            ImportStatus::Held,
            Some("the file has no members (empty or header only)".into()),
        );
    }
    if let Some(a) = active {
        let dropped = a.members.saturating_sub(facts.members);
        if a.members > 0 && dropped * 100 >= a.members * u64::from(policy.hold_shrink_percent) {
            return (
                ImportStatus::Held,
                Some(format!(
                    "members would drop from {} to {} (threshold {}%)",
                    a.members, facts.members, policy.hold_shrink_percent
                )),
            );
        }
    }
    (ImportStatus::Applied, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(at: &str) -> ImportOrder {
        ImportOrder {
            at: DateTime::parse_from_rfc3339(at)
                .unwrap()
                .with_timezone(&Utc),
            key: "ams/p/x.csv".into(),
            sequencer: None,
        }
    }

    fn active(members: u64, at: &str) -> ActiveRoster {
        ActiveRoster {
            generation: "g".into(),
            import_id: "i".into(),
            applied_at: Utc::now(),
            members,
            tier_counts: BTreeMap::new(),
            order: order(at),
        }
    }

    fn facts(rows: u64, members: u64, rejected: u64) -> FileFacts {
        FileFacts {
            rows,
            members,
            rejected_rows: rejected,
            truncated: false,
        }
    }

    #[test]
    fn decisions() {
        let p = ImportPolicy::default();
        let now = order("2026-01-02T00:00:00Z");
        assert_eq!(
            decide(facts(10, 10, 0), &now, None, p).0,
            ImportStatus::Applied
        );
        let a = active(100, "2026-01-01T00:00:00Z");
        assert_eq!(
            decide(facts(60, 60, 0), &now, Some(&a), p).0,
            ImportStatus::Applied
        );
        assert_eq!(
            decide(facts(50, 50, 0), &now, Some(&a), p).0,
            ImportStatus::Held
        );
        assert_eq!(decide(facts(0, 0, 0), &now, None, p).0, ImportStatus::Held);
        assert_eq!(
            decide(
                FileFacts {
                    truncated: true,
                    ..facts(10, 10, 0)
                },
                &now,
                None,
                p
            )
            .0,
            ImportStatus::Held
        );
        assert_eq!(
            decide(facts(10, 5, 5), &now, None, p).0,
            ImportStatus::Rejected
        );
        let older = order("2025-12-31T00:00:00Z");
        assert_eq!(
            decide(facts(100, 100, 0), &older, Some(&a), p).0,
            ImportStatus::Skipped
        );
    }

    #[test]
    fn sequencer_orders_same_key_same_instant() {
        let mut a = order("2026-01-01T00:00:00Z");
        let mut b = a.clone();
        a.sequencer = Some("9F".into());
        b.sequencer = Some("0A0".into());
        assert!(a.is_older_than(&b));
        assert!(!b.is_older_than(&a));
    }

    #[test]
    fn timestamps_in_names() {
        let t = |s: &str| name_timestamp(s).map(|d| d.to_rfc3339());
        assert_eq!(
            t("members_20260115T0300.csv").as_deref(),
            Some("2026-01-15T03:00:00+00:00")
        );
        assert_eq!(
            t("export-2026-01-15_03-00-00.csv").as_deref(),
            Some("2026-01-15T03:00:00+00:00")
        );
        assert_eq!(
            t("roster_20260115.csv").as_deref(),
            Some("2026-01-15T00:00:00+00:00")
        );
        assert_eq!(t("members.csv"), None);
        assert_eq!(t("club_12345678.csv"), None);
    }
}
