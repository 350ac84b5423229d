//! Properties, partners and idempotency records, in the `platform` table.
//!
//! | item | pk | sk | gsi1 |
//! |---|---|---|---|
//! | property | `PROPERTY#<id>` | `PROPERTY` | `PROPERTIES` / `<id>` |
//! | partner (found by key id) | `PARTNERKEY#<key_id>` | `PARTNER` | `PARTNERS` / `<partner_id>` |
//! | idempotency record | `IDEM#<sha256(scope)>` | `IDEM` | — (TTL) |

use async_trait::async_trait;
use domain::idempotency::{
    Begin, IdempotencyError, IdempotencyPolicy, IdempotencyRecord, IdempotencyScope, Lease,
    StoredResponse, decide_existing,
};
use domain::ports::{IdempotencyStore, PartnerStore, PropertyStore};
use domain::{Partner, Property, PropertyId, StoreError};

use super::items::{Cond, Item, Query, Table, TxError, Write};
use super::{Store, decode, encode};

fn property_pk(id: &PropertyId) -> String {
    format!("PROPERTY#{id}")
}

fn property_item(p: &Property) -> Item {
    Item::new(property_pk(&p.id), "PROPERTY", encode(p)).with_gsi1("PROPERTIES", p.id.as_str())
}

/// The `gsi1` partition of a property's stored answers (an erasure
/// rewrites the ones that name the person).
pub fn stored_answers_index(property: &str) -> String {
    format!("IDEMS#{property}")
}

fn idem_pk(record_id: &str) -> String {
    format!("IDEM#{record_id}")
}

impl Store {
    /// The partner holding `key_id`, for authenticating a request: from this
    /// process's caller cache when it is on and fresh.
    pub async fn caller_partner(&self, key_id: &str) -> Result<Option<Partner>, StoreError> {
        if let Some(p) = self.callers().partner(key_id) {
            return Ok(Some(p));
        }
        let found = self.partner_by_key_id(key_id).await?;
        if let Some(p) = &found {
            self.callers().keep_partner(key_id, p);
        }
        Ok(found)
    }

    /// The property a request acts for, from the caller cache when fresh.
    pub async fn caller_property(&self, id: &PropertyId) -> Result<Option<Property>, StoreError> {
        if let Some(p) = self.callers().property(id) {
            return Ok(Some(p));
        }
        let found = self.property(id).await?;
        if let Some(p) = &found {
            self.callers().keep_property(p);
        }
        Ok(found)
    }

    /// Reads every page of a query.
    pub async fn query_all(&self, q: Query) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut q = q.limit(1000);
        loop {
            let page = self.items().query(&q, self.now_ts()).await?;
            out.extend(page.items);
            match page.next {
                Some(c) => q = q.after(Some(c)),
                None => return Ok(out),
            }
        }
    }

    /// The write that stores a completed idempotent response, for callers
    /// that must commit it in the same transaction as their own effect (a
    /// redemption and its replayable answer land together or not at all).
    pub fn idempotency_completion(
        &self,
        lease: &Lease,
        response: &StoredResponse,
        policy: IdempotencyPolicy,
    ) -> Write {
        let rec = IdempotencyRecord {
            fingerprint: lease.fingerprint.clone(),
            response: Some(response.clone()),
            expires_at: self.now_ts() + policy.retain_seconds,
        };
        let item = Item::new(idem_pk(&lease.record_id), "IDEM", encode(&rec))
            .with_expiry(rec.expires_at)
            .with_version(lease.version + 1)
            .with_gsi1(stored_answers_index(&lease.property), &lease.record_id);
        let cond = if lease.is_locked() {
            Cond::Version(lease.version)
        } else {
            Cond::Absent
        };
        Write::put(Table::Platform, item, cond)
    }

    /// The key of an idempotency record, for reading it in a batch with the
    /// data an unlocked operation decides on.
    pub fn idempotency_key(record_id: &str) -> super::Key {
        super::Key::new(Table::Platform, idem_pk(record_id), "IDEM")
    }

    /// Reads an idempotency record as it is now (used after a conflict).
    pub async fn idempotency_record(
        &self,
        record_id: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        match self
            .items()
            .get(Table::Platform, &idem_pk(record_id), "IDEM", self.now_ts())
            .await?
        {
            Some(i) => decode(&i).map(Some),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl PropertyStore for Store {
    async fn add_property(&self, property: &Property) -> Result<(), StoreError> {
        self.callers().forget_property(&property.id);
        let w = Write::put(Table::Platform, property_item(property), Cond::Absent);
        Ok(self.items().transact(vec![w], self.now_ts()).await?)
    }

    async fn save_property(&self, property: &Property) -> Result<(), StoreError> {
        self.callers().forget_property(&property.id);
        let pk = property_pk(&property.id);
        let current = self
            .items()
            .get(Table::Platform, &pk, "PROPERTY", self.now_ts())
            .await?
            .ok_or(StoreError::Conflict)?;
        let item = property_item(property).with_version(current.version + 1);
        let w = Write::put(Table::Platform, item, Cond::Version(current.version));
        Ok(self.items().transact(vec![w], self.now_ts()).await?)
    }

    async fn property(&self, id: &PropertyId) -> Result<Option<Property>, StoreError> {
        match self
            .items()
            .get(Table::Platform, &property_pk(id), "PROPERTY", self.now_ts())
            .await?
        {
            Some(i) => decode(&i).map(Some),
            None => Ok(None),
        }
    }

    async fn properties(&self) -> Result<Vec<Property>, StoreError> {
        self.query_all(Query::gsi1(Table::Platform, "PROPERTIES"))
            .await?
            .iter()
            .map(decode)
            .collect()
    }
}

#[async_trait]
impl PartnerStore for Store {
    async fn add_partner(&self, partner: &Partner) -> Result<(), StoreError> {
        let item = Item::new(
            format!("PARTNERKEY#{}", partner.key_id),
            "PARTNER",
            encode(partner),
        )
        .with_gsi1("PARTNERS", partner.id.0.as_str());
        let w = Write::put(Table::Platform, item, Cond::Absent);
        Ok(self.items().transact(vec![w], self.now_ts()).await?)
    }

    async fn replace_partner(&self, old_key_id: &str, partner: &Partner) -> Result<(), StoreError> {
        self.callers().forget_partner(old_key_id);
        self.callers().forget_partner(&partner.key_id);
        let item = Item::new(
            format!("PARTNERKEY#{}", partner.key_id),
            "PARTNER",
            encode(partner),
        )
        .with_gsi1("PARTNERS", partner.id.0.as_str());
        let writes = if old_key_id == partner.key_id {
            vec![Write::put(Table::Platform, item, Cond::Present)]
        } else {
            vec![
                Write::Delete {
                    table: Table::Platform,
                    pk: format!("PARTNERKEY#{old_key_id}"),
                    sk: "PARTNER".into(),
                    cond: Cond::Present,
                },
                Write::put(Table::Platform, item, Cond::Absent),
            ]
        };
        Ok(self.items().transact(writes, self.now_ts()).await?)
    }

    async fn partner_by_key_id(&self, key_id: &str) -> Result<Option<Partner>, StoreError> {
        let pk = format!("PARTNERKEY#{key_id}");
        match self
            .items()
            .get(Table::Platform, &pk, "PARTNER", self.now_ts())
            .await?
        {
            Some(i) => decode(&i).map(Some),
            None => Ok(None),
        }
    }

    async fn partners(&self) -> Result<Vec<Partner>, StoreError> {
        self.query_all(Query::gsi1(Table::Platform, "PARTNERS"))
            .await?
            .iter()
            .map(decode)
            .collect()
    }
}

#[async_trait]
impl IdempotencyStore for Store {
    async fn begin(
        &self,
        scope: &IdempotencyScope,
        fingerprint: &str,
        policy: IdempotencyPolicy,
    ) -> Result<Begin, IdempotencyError> {
        let record_id = scope.record_id();
        let pk = idem_pk(&record_id);
        // A lock that expired may vanish between our failed put and our read;
        // a few rounds settle it.
        for _ in 0..5 {
            let now = self.now_ts();
            let rec = IdempotencyRecord {
                fingerprint: fingerprint.to_owned(),
                response: None,
                expires_at: now + policy.lock_seconds,
            };
            // A random version: an attempt that takes over an expired lock
            // never shares a version with the attempt that lost it.
            let version = i64::from(rand::random::<u32>()) + 1;
            let item = Item::new(pk.clone(), "IDEM", encode(&rec))
                .with_expiry(rec.expires_at)
                .with_version(version);
            match self
                .items()
                .transact(vec![Write::put(Table::Platform, item, Cond::Absent)], now)
                .await
            {
                Ok(()) => {
                    return Ok(Begin::Acquired(Lease {
                        record_id,
                        fingerprint: fingerprint.to_owned(),
                        version,
                        property: scope.property.clone(),
                    }));
                }
                Err(TxError::Condition(_)) => {
                    if let Some(existing) = self.idempotency_record(&record_id).await? {
                        return decide_existing(&existing, fingerprint).map(Begin::Replay);
                    }
                }
                Err(TxError::Contention) => {}
                Err(TxError::Store(e)) => return Err(e.into()),
            }
        }
        Err(IdempotencyError::InFlight)
    }

    async fn complete(
        &self,
        lease: &Lease,
        response: &StoredResponse,
        policy: IdempotencyPolicy,
    ) -> Result<(), IdempotencyError> {
        let w = self.idempotency_completion(lease, response, policy);
        match self.items().transact(vec![w], self.now_ts()).await {
            Ok(()) => Ok(()),
            Err(TxError::Condition(_)) => Err(IdempotencyError::LockLost),
            Err(e) => Err(StoreError::from(e).into()),
        }
    }

    async fn release(&self, lease: &Lease) -> Result<(), IdempotencyError> {
        if !lease.is_locked() {
            return Ok(());
        }
        let w = Write::Delete {
            table: Table::Platform,
            pk: idem_pk(&lease.record_id),
            sk: "IDEM".into(),
            cond: Cond::Version(lease.version),
        };
        match self.items().transact(vec![w], self.now_ts()).await {
            Ok(()) | Err(TxError::Condition(_)) => Ok(()),
            Err(e) => Err(StoreError::from(e).into()),
        }
    }
}
