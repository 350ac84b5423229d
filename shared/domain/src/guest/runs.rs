//! The CRM sync's history: one record per run (start, end, what started
//! it, counts, errors, and the conflicts it resolved — which side won and
//! the names of the fields, never their values).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::sync::SyncedFields;
use crate::ValidationError;

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncTrigger {
    /// The schedule (EventBridge in AWS, the served hub's scheduler locally).
    #[default]
    Schedule,
    /// A Cloudbeds webhook.
    Webhook,
    /// `guesthub crm sync`.
    Cli,
}

/// The side whose values stood in a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConflictSide {
    Cloudbeds,
    Guesthub,
}

/// One guest changed on both sides since they last agreed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConflictResolved {
    pub winner: ConflictSide,
    /// The fields that differed (names only).
    pub fields: Vec<String>,
}

/// What a run did, by count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncCounts {
    pub reservations_pulled: u32,
    pub guests_pulled: u32,
    pub guests_pushed: u32,
    pub notes_pulled: u32,
    pub notes_pushed: u32,
    pub screened: u32,
    pub flagged: u32,
    pub erasures_sent: u32,
    pub departures: u32,
    pub fields_created: u32,
}

/// One run of the sync for one property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncRun {
    /// Time-ordered (UUID v7).
    pub id: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub trigger: SyncTrigger,
    pub counts: SyncCounts,
    /// Stopped at a safe point before the end (the next run goes on).
    pub stopped: bool,
    /// Short reasons, no personal data.
    pub errors: Vec<String>,
    pub conflicts: Vec<ConflictResolved>,
}

/// Runs kept per property are listed newest first, `limit` at a time.
pub const DEFAULT_RUNS_LIMIT: usize = 20;
pub const MAX_RUNS_LIMIT: usize = 100;
/// How long a run's record is kept.
pub const RUN_RETENTION_DAYS: i64 = 90;

/// `limit` of a run listing: 1..=100, 20 when absent.
pub fn runs_limit(raw: Option<u32>) -> Result<usize, ValidationError> {
    match raw {
        None => Ok(DEFAULT_RUNS_LIMIT),
        Some(n) if (1..=MAX_RUNS_LIMIT as u32).contains(&n) => Ok(n as usize),
        Some(_) => Err(ValidationError::new(
            "limit",
            format!("between 1 and {MAX_RUNS_LIMIT}"),
        )),
    }
}

/// The names of the synced fields that differ between two versions.
pub fn differing_fields(a: &SyncedFields, b: &SyncedFields) -> Vec<String> {
    let norm = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or("").to_owned();
    let mut out = Vec::new();
    let email = |v: &Option<String>| norm(v).to_lowercase();
    if email(&a.email) != email(&b.email) {
        out.push("email".to_owned());
    }
    for (name, x, y) in [
        ("first_name", &a.first_name, &b.first_name),
        ("last_name", &a.last_name, &b.last_name),
        ("phone", &a.phone, &b.phone),
        ("document_number", &a.document_number, &b.document_number),
    ] {
        if norm(x) != norm(y) {
            out.push(name.to_owned());
        }
    }
    if a.birth_date != b.birth_date {
        out.push("birth_date".to_owned());
    }
    for ((name, x), (_, y)) in a.address.parts().into_iter().zip(b.address.parts()) {
        if norm(x) != norm(y) {
            out.push(format!("address.{name}"));
        }
    }
    for (name, x, y) in [
        ("document.type", &a.document.kind, &b.document.kind),
        (
            "document.issuing_country",
            &a.document.issuing_country,
            &b.document.issuing_country,
        ),
    ] {
        if norm(x) != norm(y) {
            out.push(name.to_owned());
        }
    }
    if a.document.issue_date != b.document.issue_date {
        out.push("document.issue_date".to_owned());
    }
    if a.document.expiration_date != b.document.expiration_date {
        out.push("document.expiration_date".to_owned());
    }
    let keys: std::collections::BTreeSet<&String> =
        a.preferences.keys().chain(b.preferences.keys()).collect();
    for k in keys {
        let x = a.preferences.get(k).map(|v| v.trim()).unwrap_or("");
        let y = b.preferences.get(k).map(|v| v.trim()).unwrap_or("");
        if x != y {
            out.push(format!("preferences.{k}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_field_names() {
        assert_eq!(runs_limit(None).unwrap(), 20);
        assert_eq!(runs_limit(Some(100)).unwrap(), 100);
        assert!(runs_limit(Some(0)).is_err() && runs_limit(Some(101)).is_err());
        let a = SyncedFields {
            first_name: Some("Ana".into()),
            ..Default::default()
        };
        let mut b = a.clone();
        b.first_name = Some("Anna".into());
        b.preferences.insert("wine".into(), "red".into());
        assert_eq!(differing_fields(&a, &b), ["first_name", "preferences.wine"]);
    }
}
