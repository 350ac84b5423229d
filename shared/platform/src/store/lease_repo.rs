//! Job leases (one CRM sync or loyalty export per property at a time), in
//! the `guests` table next to the job's other state.
//!
//! | item | pk | sk | notes |
//! |---|---|---|---|
//! | CRM sync lease | `CRM#<p>` | `LEASE` | holder, who, until (TTL: until) |
//! | loyalty export lease | `LOYALTY#<p>` | `LEASE` | the same |
//! | webhook delivery lease | `WHLEASE#<p>` | `LEASE` | the same |
//!
//! Taking is an absent-conditioned put (an expired lease counts as absent);
//! renewing and releasing are conditioned on the version the holder read.

use async_trait::async_trait;
use domain::ports::{JobLease, LeaseStore, LeaseTake, LeasedJob};
use domain::{PropertyId, StoreError};

use super::items::{Cond, Item, Table, Write};
use super::{Store, decode, encode};

const T: Table = Table::Guests;
const SK: &str = "LEASE";

fn lease_pk(job: LeasedJob, p: &PropertyId) -> String {
    match job {
        LeasedJob::CrmSync => format!("CRM#{p}"),
        LeasedJob::LoyaltyExport => format!("LOYALTY#{p}"),
        LeasedJob::EventDelivery => format!("WHLEASE#{p}"),
    }
}

fn lease_item(pk: String, lease: &JobLease) -> Item {
    // The item lives to the end of the second the lease ends in.
    let expires = lease.until.timestamp() + i64::from(lease.until.timestamp_subsec_nanos() > 0);
    Item::new(pk, SK, encode(lease)).with_expiry(expires)
}

impl Store {
    /// The live lease and its version; a lease written in an older shape
    /// (the holder id alone) reads as held by an unknown run.
    async fn live_lease(&self, pk: &str) -> Result<Option<(JobLease, i64)>, StoreError> {
        let Some(item) = self.items().get(T, pk, SK, self.now_ts()).await? else {
            return Ok(None);
        };
        let lease = decode::<JobLease>(&item).unwrap_or_else(|_| JobLease {
            holder: decode::<String>(&item).unwrap_or_default(),
            by: "an earlier version of GuestHub".into(),
            until: item
                .expires_at
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .unwrap_or_else(|| self.clock().now()),
        });
        Ok(Some((lease, item.version)))
    }
}

#[async_trait]
impl LeaseStore for Store {
    async fn take_lease(
        &self,
        job: LeasedJob,
        p: &PropertyId,
        lease: &JobLease,
    ) -> Result<LeaseTake, StoreError> {
        let pk = lease_pk(job, p);
        // A lease that ends between the refused put and the read: try again.
        for _ in 0..3 {
            let w = Write::put(T, lease_item(pk.clone(), lease), Cond::Absent);
            match self.run(vec![w]).await {
                Ok(()) => return Ok(LeaseTake::Taken),
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e),
            }
            if let Some((held, _)) = self.live_lease(&pk).await? {
                return Ok(LeaseTake::Busy(held));
            }
        }
        Err(StoreError::Conflict)
    }

    async fn renew_lease(
        &self,
        job: LeasedJob,
        p: &PropertyId,
        lease: &JobLease,
    ) -> Result<bool, StoreError> {
        let pk = lease_pk(job, p);
        let Some((held, version)) = self.live_lease(&pk).await? else {
            return Ok(false);
        };
        if held.holder != lease.holder {
            return Ok(false);
        }
        let item = lease_item(pk, lease).with_version(version + 1);
        match self
            .run(vec![Write::put(T, item, Cond::Version(version))])
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn release_lease(
        &self,
        job: LeasedJob,
        p: &PropertyId,
        holder: &str,
    ) -> Result<(), StoreError> {
        let pk = lease_pk(job, p);
        if let Some((held, version)) = self.live_lease(&pk).await?
            && held.holder == holder
        {
            let w = Write::Delete {
                table: T,
                pk,
                sk: SK.into(),
                cond: Cond::Version(version),
            };
            // Lost the lease meanwhile (expired, taken): nothing to release.
            let _ = self.run(vec![w]).await;
        }
        Ok(())
    }
}
