//! Errors shared by every part of the domain.

use thiserror::Error;

/// Input that does not parse into a domain type. `field` names what was wrong
/// so the HTTP layer can point at it without echoing the value (it may be PII).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    pub field: &'static str,
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// What a store port can answer besides success. Every adapter maps its own
/// failures onto these, so callers behave the same on DynamoDB and SQLite.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// A conditional write lost: the record exists, changed, or is missing.
    #[error("conditional write failed")]
    Conflict,
    /// The store could not be reached or refused for load; a retry may help.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored record could not be read back (schema drift, corruption).
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether a conditional write lost a race (read again, decide again).
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict)
    }

    /// `Ok(None)` when the write lost a race: `Conflict` is an answer, not
    /// an error, for callers that read again and decide again.
    pub fn unless_conflict<T>(r: Result<T, StoreError>) -> Result<Option<T>, StoreError> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
