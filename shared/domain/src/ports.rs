//! The storage ports. Each has a DynamoDB and a SQLite adapter in the
//! platform crate; `tests/` runs one conformance suite against both.
//! A method's doc says which typed error it answers with, and when.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::idempotency::{
    Begin, IdempotencyError, IdempotencyPolicy, IdempotencyScope, Lease, StoredResponse,
};
use crate::{Partner, Property, PropertyId, StoreError};

/// The time, behind a trait so tests can move it (lock expiry, validity).
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

#[async_trait]
pub trait PropertyStore: Send + Sync {
    /// Creates a property. `Err(Conflict)` when the id is taken.
    async fn add_property(&self, property: &Property) -> Result<(), StoreError>;
    /// Replaces an existing property. `Err(Conflict)` when it does not exist.
    async fn save_property(&self, property: &Property) -> Result<(), StoreError>;
    async fn property(&self, id: &PropertyId) -> Result<Option<Property>, StoreError>;
    async fn properties(&self) -> Result<Vec<Property>, StoreError>;
}

#[async_trait]
pub trait PartnerStore: Send + Sync {
    /// Creates a partner. `Err(Conflict)` when its id or key id is taken.
    async fn add_partner(&self, partner: &Partner) -> Result<(), StoreError>;
    /// Replaces a partner's record in one transaction: the record under
    /// `old_key_id` goes, `partner` (possibly under a new key id) comes.
    /// Key rotation and disabling use it. `Err(Conflict)` when the old
    /// record is gone or the new key id is taken.
    async fn replace_partner(&self, old_key_id: &str, partner: &Partner) -> Result<(), StoreError>;
    /// Finds the partner holding a key by the key's public id.
    async fn partner_by_key_id(&self, key_id: &str) -> Result<Option<Partner>, StoreError>;
    async fn partners(&self) -> Result<Vec<Partner>, StoreError>;
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Takes the key for this request. `Acquired` when the key is new or its
    /// in-flight lock expired; `Replay` when a response with the same
    /// fingerprint is stored; `Err(Reused)` for another fingerprint;
    /// `Err(InFlight)` while another attempt holds a live lock.
    async fn begin(
        &self,
        scope: &IdempotencyScope,
        fingerprint: &str,
        policy: IdempotencyPolicy,
    ) -> Result<Begin, IdempotencyError>;
    /// Stores the response for replay. `Err(LockLost)` when a newer attempt
    /// took the lock over.
    async fn complete(
        &self,
        lease: &Lease,
        response: &StoredResponse,
        policy: IdempotencyPolicy,
    ) -> Result<(), IdempotencyError>;
    /// Drops the lock after a failure a retry may fix (5xx), so the client's
    /// retry runs at once instead of waiting for the lock to expire.
    async fn release(&self, lease: &Lease) -> Result<(), IdempotencyError>;
}
