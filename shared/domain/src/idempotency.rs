//! Idempotency: same key + same body → the stored response,
//! byte-identical; same key + another body → `idempotency_key_reused`;
//! same key while the first attempt runs → `idempotency_key_in_flight`.
//! An in-flight lock expires so a crashed attempt can be retried.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::{StoreError, ValidationError};

/// The client's `Idempotency-Key`: 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let ok = !raw.is_empty() && raw.len() <= 255 && raw.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::new(
                "Idempotency-Key",
                "must be 1-255 visible ASCII characters",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a key is unique: per partner, per property and per operation, so two
/// partners (or two routes) can never collide on a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyScope {
    pub partner: String,
    pub property: String,
    pub operation: String,
    pub key: IdempotencyKey,
}

impl IdempotencyScope {
    /// The storage id: a hash, so keys of any shape make safe storage keys.
    pub fn record_id(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            self.partner.as_str(),
            self.property.as_str(),
            self.operation.as_str(),
            self.key.as_str(),
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// What identifies "the same request": a digest of the canonical body.
pub fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// A response kept for replay, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// The record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub fingerprint: String,
    /// `None` while the first attempt is in flight.
    pub response: Option<StoredResponse>,
    /// Unix seconds: the lock's expiry while in flight, the record's TTL after.
    pub expires_at: i64,
}

/// Proof that this attempt holds the key. Completing or releasing checks it,
/// so an attempt whose lock was taken over cannot overwrite the new owner.
///
/// An *unlocked* lease (version 0) holds nothing: it is for operations whose
/// whole effect commits in one transaction together with the answer. They
/// read the record with their data, and their commit requires it still
/// absent, so of two racing attempts exactly one commits and the other
/// replays it — without the extra write a lock costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub record_id: String,
    pub fingerprint: String,
    pub version: i64,
    /// The property the record belongs to (an erasure finds the property's
    /// stored answers by it).
    pub property: String,
}

impl Lease {
    pub fn unlocked(record_id: String, fingerprint: String, property: String) -> Self {
        Self {
            record_id,
            fingerprint,
            version: 0,
            property,
        }
    }

    pub fn is_locked(&self) -> bool {
        self.version != 0
    }
}

#[derive(Debug)]
pub enum Begin {
    /// First attempt (or a takeover of an expired lock): run the operation.
    Acquired(Lease),
    /// Already done: answer with this.
    Replay(StoredResponse),
}

#[derive(Debug, Error)]
pub enum IdempotencyError {
    #[error("the idempotency key was used with a different request")]
    Reused,
    #[error("a request with this idempotency key is still in flight")]
    InFlight,
    /// Completing found the lock held by a newer attempt.
    #[error("the idempotency lock was lost")]
    LockLost,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long records and locks live.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyPolicy {
    /// How long an in-flight attempt blocks retries (≥ the function timeout).
    pub lock_seconds: i64,
    /// How long a completed response is replayed: at least 24 h, so a retry
    /// the next day still replays.
    pub retain_seconds: i64,
}

impl Default for IdempotencyPolicy {
    fn default() -> Self {
        Self {
            lock_seconds: 60,
            retain_seconds: 48 * 3600,
        }
    }
}

/// The decision when a key is already present, shared by every adapter.
pub fn decide_existing(
    existing: &IdempotencyRecord,
    fingerprint: &str,
) -> Result<StoredResponse, IdempotencyError> {
    if existing.fingerprint != fingerprint {
        return Err(IdempotencyError::Reused);
    }
    existing.response.clone().ok_or(IdempotencyError::InFlight)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bounded_visible_ascii() {
        assert!(IdempotencyKey::parse("a-b_c.123").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("ünicode").is_err());
    }

    #[test]
    fn scopes_do_not_collide_by_concatenation() {
        let k = IdempotencyKey::parse("k").unwrap();
        let a = IdempotencyScope {
            partner: "ab".into(),
            property: "c".into(),
            operation: "x".into(),
            key: k.clone(),
        };
        let b = IdempotencyScope {
            partner: "a".into(),
            property: "bc".into(),
            operation: "x".into(),
            key: k,
        };
        assert_ne!(a.record_id(), b.record_id());
    }

    #[test]
    fn existing_record_decides() {
        let done = IdempotencyRecord {
            fingerprint: "f".into(),
            response: Some(StoredResponse {
                status: 201,
                body: "{}".into(),
            }),
            expires_at: 0,
        };
        assert_eq!(decide_existing(&done, "f").unwrap().status, 201);
        assert!(matches!(
            decide_existing(&done, "g"),
            Err(IdempotencyError::Reused)
        ));
        let running = IdempotencyRecord {
            response: None,
            ..done
        };
        assert!(matches!(
            decide_existing(&running, "f"),
            Err(IdempotencyError::InFlight)
        ));
        assert!(matches!(
            decide_existing(&running, "g"),
            Err(IdempotencyError::Reused)
        ));
    }
}
