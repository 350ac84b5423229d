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

/// A scheduled job that runs for one property at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeasedJob {
    /// The Cloudbeds sync.
    CrmSync,
    /// The NetCarrots loyalty export.
    LoyaltyExport,
    /// Webhook deliveries of one property's subscriptions (one dispatcher
    /// at a time keeps each aggregate's events in order).
    EventDelivery,
}

/// A run's hold on one job of one property: who holds it and until when.
/// A run renews it while it works and releases it when it ends; one that
/// was killed outright holds it only until `until`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobLease {
    /// The run's own random id (only it renews or releases the lease).
    pub holder: String,
    /// Who runs it, for people: `guesthub serve (pid 812)`, a Lambda request.
    pub by: String,
    pub until: DateTime<Utc>,
}

/// What taking a lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseTake {
    Taken,
    /// Another run holds a live lease.
    Busy(JobLease),
}

#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes the job's lease of property `p` unless another run holds a
    /// live one (then `Busy` with that lease).
    async fn take_lease(
        &self,
        job: LeasedJob,
        p: &PropertyId,
        lease: &JobLease,
    ) -> Result<LeaseTake, StoreError>;
    /// Moves `lease.until` on. `Ok(false)` when the run no longer holds it
    /// (it expired and another run took it).
    async fn renew_lease(
        &self,
        job: LeasedJob,
        p: &PropertyId,
        lease: &JobLease,
    ) -> Result<bool, StoreError>;
    /// Drops the lease if `holder` still holds it.
    async fn release_lease(
        &self,
        job: LeasedJob,
        p: &PropertyId,
        holder: &str,
    ) -> Result<(), StoreError>;
}
