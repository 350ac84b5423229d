//! Guest screening: statuses, the subject a provider sees, and the
//! built-in provider — a per-property watchlist.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Guest;
use crate::{Email, ValidationError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScreeningStatus {
    /// A check started (or is queued) and has no outcome yet.
    InProgress,
    Passed,
    Flagged,
    /// The provider could not decide (unreachable, refused, a bad answer
    /// after its retries). The guest is checked again when its data
    /// changes or a webhook names it.
    Error,
}

impl ScreeningStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Passed => "passed",
            Self::Flagged => "flagged",
            Self::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScreeningState {
    /// None until the guest was first queued for screening.
    pub status: Option<ScreeningStatus>,
    /// Which watchlist rule matched (no personal data).
    pub reason: Option<String>,
    pub screened_at: Option<DateTime<Utc>>,
    /// Hash of the subject last screened: unchanged data is not rescreened.
    pub subject_hash: Option<String>,
    /// The check a provider answers later (by callback); cleared when its
    /// answer is applied, so an answer counts once.
    #[serde(default)]
    pub check_id: Option<String>,
}

/// What a provider screens.
#[derive(Clone, PartialEq, Eq)]
pub struct ScreeningSubject {
    pub email: Option<Email>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub document_number: Option<String>,
}

impl std::fmt::Debug for ScreeningSubject {
    // Personal data: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScreeningSubject(..)")
    }
}

impl ScreeningSubject {
    pub fn of(g: &Guest) -> Self {
        Self {
            email: g.email.clone(),
            first_name: g.first_name.clone(),
            last_name: g.last_name.clone(),
            birth_date: g.birth_date,
            document_number: g.document_number.clone(),
        }
    }

    pub fn hash(&self) -> String {
        super::sync::hash_parts(&[
            self.email.as_ref().map_or("", |e| e.as_str()),
            self.first_name.as_deref().unwrap_or(""),
            self.last_name.as_deref().unwrap_or(""),
            &self.birth_date.map(|d| d.to_string()).unwrap_or_default(),
            self.document_number.as_deref().unwrap_or(""),
        ])
    }
}

/// A provider's answer. `InProgress` means "accepted; the outcome comes
/// later by callback" (see [`ScreeningProvider`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreeningOutcome {
    pub status: ScreeningStatus,
    pub reason: Option<String>,
}

/// One watchlist entry: by email, by full name + birth date, or by
/// identity document number.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum WatchlistEntry {
    Email {
        email: Email,
    },
    NameBirthDate {
        first_name: String,
        last_name: String,
        #[schema(value_type = String, format = Date)]
        birth_date: NaiveDate,
    },
    Document {
        document_number: String,
    },
}

impl std::fmt::Debug for WatchlistEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

fn norm(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn norm_doc(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .collect::<String>()
        .to_uppercase()
}

impl WatchlistEntry {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Email { .. } => "email",
            Self::NameBirthDate { .. } => "name_birth_date",
            Self::Document { .. } => "document",
        }
    }

    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Self::NameBirthDate {
                first_name,
                last_name,
                ..
            } if norm(first_name).is_empty() || norm(last_name).is_empty() => Err(
                ValidationError::new("entries", "name entries need first and last name"),
            ),
            Self::Document { document_number } if norm_doc(document_number).is_empty() => {
                Err(ValidationError::new("entries", "document number is empty"))
            }
            _ => Ok(()),
        }
    }

    fn matches(&self, s: &ScreeningSubject) -> bool {
        match self {
            Self::Email { email } => s.email.as_ref() == Some(email),
            Self::NameBirthDate {
                first_name,
                last_name,
                birth_date,
            } => {
                s.birth_date == Some(*birth_date)
                    && s.first_name.as_deref().map(norm) == Some(norm(first_name))
                    && s.last_name.as_deref().map(norm) == Some(norm(last_name))
            }
            Self::Document { document_number } => {
                s.document_number.as_deref().map(norm_doc) == Some(norm_doc(document_number))
            }
        }
    }
}

pub const MAX_WATCHLIST_ENTRIES: usize = 2000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScreeningError {
    #[error("the screening provider is unavailable: {0}")]
    Unavailable(String),
}

/// A background-check service. The built-in one is the property's
/// [`Watchlist`]; an HTTP service plugs in behind the same port.
/// `check_id` names this check: a provider answering later (status
/// `InProgress`) reports the outcome for that id.
#[async_trait]
pub trait ScreeningProvider: Send + Sync {
    async fn screen(
        &self,
        check_id: &str,
        subject: &ScreeningSubject,
    ) -> Result<ScreeningOutcome, ScreeningError>;
}

/// A property's watchlist; itself the built-in [`ScreeningProvider`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Watchlist {
    pub entries: Vec<WatchlistEntry>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl Watchlist {
    pub fn check(&self, s: &ScreeningSubject) -> ScreeningOutcome {
        match self.entries.iter().find(|e| e.matches(s)) {
            Some(e) => ScreeningOutcome {
                status: ScreeningStatus::Flagged,
                reason: Some(format!("watchlist:{}", e.kind())),
            },
            None => ScreeningOutcome {
                status: ScreeningStatus::Passed,
                reason: None,
            },
        }
    }
}

#[async_trait]
impl ScreeningProvider for Watchlist {
    async fn screen(
        &self,
        _check_id: &str,
        s: &ScreeningSubject,
    ) -> Result<ScreeningOutcome, ScreeningError> {
        Ok(self.check(s))
    }
}

/// Applies an outcome to a guest.
pub fn record_outcome(g: &mut Guest, o: &ScreeningOutcome, hash: String, now: DateTime<Utc>) {
    g.screening = ScreeningState {
        status: Some(o.status),
        reason: o.reason.clone(),
        screened_at: Some(now),
        // An error decided nothing about this data: it is checked again.
        subject_hash: (o.status != ScreeningStatus::Error).then_some(hash),
        check_id: None,
    };
}

/// Queues a guest for a check: the sync writes `in_progress` back, then
/// asks the provider. A check still awaited is superseded (its late answer
/// no longer matches).
pub fn queue_check(g: &mut Guest) {
    g.screening.status = Some(ScreeningStatus::InProgress);
    g.screening.reason = None;
    g.screening.check_id = None;
}

/// Whether the sync should start a check for this guest now (queued and
/// not already awaiting a provider's callback).
pub fn check_due(g: &Guest) -> bool {
    g.screening.status == Some(ScreeningStatus::InProgress) && g.screening.check_id.is_none()
}

/// Applies a provider's late answer to the check `check_id`. `false` when
/// the guest is not awaiting that check (answered already, superseded).
pub fn apply_callback(
    g: &mut Guest,
    check_id: &str,
    o: &ScreeningOutcome,
    now: DateTime<Utc>,
) -> bool {
    if g.screening.check_id.as_deref() != Some(check_id)
        || g.screening.status != Some(ScreeningStatus::InProgress)
        || o.status == ScreeningStatus::InProgress
    {
        return false;
    }
    let hash = ScreeningSubject::of(g).hash();
    record_outcome(g, o, hash, now);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> ScreeningSubject {
        ScreeningSubject {
            email: Some(Email::parse("ana@example.com").unwrap()),
            first_name: Some("Ana ".into()),
            last_name: Some("López".into()),
            birth_date: NaiveDate::from_ymd_opt(1980, 2, 3),
            document_number: Some("ab-123 456".into()),
        }
    }

    #[test]
    fn matches_each_kind() {
        let s = subject();
        let lists = [
            WatchlistEntry::Email {
                email: Email::parse("ANA@example.com").unwrap(),
            },
            WatchlistEntry::NameBirthDate {
                first_name: "ana".into(),
                last_name: "lópez".into(),
                birth_date: NaiveDate::from_ymd_opt(1980, 2, 3).unwrap(),
            },
            WatchlistEntry::Document {
                document_number: "AB123456".into(),
            },
        ];
        for e in lists {
            let w = Watchlist {
                entries: vec![e.clone()],
                updated_at: None,
            };
            assert_eq!(w.check(&s).status, ScreeningStatus::Flagged, "{e:?}");
        }
        assert_eq!(
            Watchlist::default().check(&s).status,
            ScreeningStatus::Passed
        );
    }

    #[test]
    fn name_needs_birth_date() {
        let mut s = subject();
        s.birth_date = None;
        let w = Watchlist {
            entries: vec![WatchlistEntry::NameBirthDate {
                first_name: "ana".into(),
                last_name: "lópez".into(),
                birth_date: NaiveDate::from_ymd_opt(1980, 2, 3).unwrap(),
            }],
            updated_at: None,
        };
        assert_eq!(w.check(&s).status, ScreeningStatus::Passed);
    }
}
