//! Loyalty enrolments, stays, the export outbox and export state, in the
//! `guests` table (they share the guest's lifecycle).
//!
//! | item | pk | sk | gsi1 |
//! |---|---|---|---|
//! | NetCarrots connection | `LOYALTY#<p>` | `CONNECTION` | — |
//! | export state (sequence, open batch) | `LOYALTY#<p>` | `EXPORT` | — |
//! | export lease | `LOYALTY#<p>` | `LEASE` | — (TTL: the lease's end) |
//! | processed members file | `LOYALTY#<p>` | `MEMBERS#<sha256(name)>` | — (TTL 90 days) |
//! | enrolment | `LOYALTY#<p>` | `ENROL#<guest_id>` | — |
//! | stay | `LOYALTY#<p>` | `STAY#<reservation>` | — |
//! | loyalty number → guest | `LOYALTYNUM#<p>#<number>` | `NUMBER` | — |
//! | export record | `LOYALTYREC#<p>` | `<transaction_id>` | `LOYALTYPENDING#<p>` / `<created>#<transaction_id>` only while pending (sparse) |
//! | held stay (guest not enrolled) | `LOYALTYHELD#<p>` | `<guest_id>#<reservation>` | — |
//!
//! A record is written once, conditionally, in the same transaction as the
//! enrolment or stay it comes from; delivering it only drops it from the
//! pending index and notes the file.

use super::event_repo::outbox;
use async_trait::async_trait;
use domain::events::announce;
use domain::guest::GuestId;
use domain::loyalty::ports::LoyaltyStore;
use domain::loyalty::{Enrolment, ExportRecord, ExportState, LoyaltyConnection, LoyaltyStay};
use domain::{PropertyId, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::items::{Cond, Item, MAX_BATCH_ITEMS, Query, Table, Write};
use super::{Store, decode, encode};

const T: Table = Table::Guests;
const MEMBERS_FILE_MEMORY_SECONDS: i64 = 90 * 24 * 3600;

fn state_pk(p: &PropertyId) -> String {
    format!("LOYALTY#{p}")
}

fn number_pk(p: &PropertyId, n: &str) -> String {
    format!("LOYALTYNUM#{p}#{n}")
}

fn record_pk(p: &PropertyId) -> String {
    format!("LOYALTYREC#{p}")
}

fn held_pk(p: &PropertyId) -> String {
    format!("LOYALTYHELD#{p}")
}

/// A held stay's marker: found by its guest (sort key prefix) when they
/// enrol, counted for the export state.
#[derive(Serialize, Deserialize)]
struct HeldMarker {
    guest: GuestId,
    reservation: String,
}

fn held_sk(guest: &GuestId, reservation: &str) -> String {
    format!("{guest}#{reservation}")
}

fn members_sk(name: &str) -> String {
    format!("MEMBERS#{}", hex::encode(Sha256::digest(name.as_bytes())))
}

#[derive(Serialize, Deserialize)]
struct NumberOwner {
    guest: GuestId,
}

fn record_item(r: &ExportRecord) -> Item {
    let item = Item::new(record_pk(&r.property), r.transaction_id.clone(), encode(r));
    if r.is_pending() {
        item.with_gsi1(format!("LOYALTYPENDING#{}", r.property), r.queue_key())
    } else {
        item
    }
}

fn enrolment_item(e: &Enrolment) -> Item {
    Item::new(
        state_pk(&e.property),
        format!("ENROL#{}", e.guest),
        encode(e),
    )
}

#[async_trait]
impl LoyaltyStore for Store {
    async fn save_loyalty_connection(&self, c: &LoyaltyConnection) -> Result<(), StoreError> {
        let item = Item::new(state_pk(&c.property), "CONNECTION", encode(c));
        self.run(vec![Write::put(T, item, Cond::None)]).await
    }

    async fn loyalty_connection(
        &self,
        p: &PropertyId,
    ) -> Result<Option<LoyaltyConnection>, StoreError> {
        match self.get_guests(&state_pk(p), "CONNECTION").await? {
            Some(i) => decode(&i).map(Some),
            None => Ok(None),
        }
    }

    async fn enrolment(
        &self,
        p: &PropertyId,
        g: &GuestId,
    ) -> Result<Option<Enrolment>, StoreError> {
        match self.get_guests(&state_pk(p), &format!("ENROL#{g}")).await? {
            Some(i) => {
                let mut e: Enrolment = decode(&i)?;
                e.revision = i.version;
                Ok(Some(e))
            }
            None => Ok(None),
        }
    }

    async fn enrol(&self, e: &Enrolment, record: &ExportRecord) -> Result<Enrolment, StoreError> {
        let mut e = e.clone();
        e.revision = 1;
        let mut writes = vec![
            Write::put(T, enrolment_item(&e), Cond::Absent),
            Write::put(T, record_item(record), Cond::Absent),
        ];
        if let Some(n) = &e.loyalty_number {
            let owner = NumberOwner {
                guest: e.guest.clone(),
            };
            writes.push(Write::put(
                T,
                Item::new(number_pk(&e.property, n), "NUMBER", encode(&owner)),
                Cond::Absent,
            ));
        }
        self.run(writes).await?;
        Ok(e)
    }

    async fn save_enrolment(&self, e: &Enrolment) -> Result<Enrolment, StoreError> {
        let Some(before) = self.enrolment(&e.property, &e.guest).await? else {
            return Err(StoreError::Conflict);
        };
        if before.revision != e.revision {
            return Err(StoreError::Conflict);
        }
        let mut next = e.clone();
        next.revision = e.revision + 1;
        let mut writes = vec![Write::put(
            T,
            enrolment_item(&next).with_version(next.revision),
            Cond::Version(e.revision),
        )];
        if before.loyalty_number != next.loyalty_number {
            if let Some(old) = &before.loyalty_number {
                writes.push(Write::Delete {
                    table: T,
                    pk: number_pk(&e.property, old),
                    sk: "NUMBER".into(),
                    cond: Cond::None,
                });
            }
            if let Some(new) = &next.loyalty_number {
                let owner = NumberOwner {
                    guest: e.guest.clone(),
                };
                writes.push(Write::put(
                    T,
                    Item::new(number_pk(&e.property, new), "NUMBER", encode(&owner)),
                    Cond::Absent,
                ));
            }
        }
        self.run(writes).await?;
        Ok(next)
    }

    async fn enrolments(&self, p: &PropertyId) -> Result<Vec<Enrolment>, StoreError> {
        self.query_all(Query::partition(T, state_pk(p)).prefix("ENROL#"))
            .await?
            .iter()
            .map(|i| {
                decode::<Enrolment>(i).map(|mut e| {
                    e.revision = i.version;
                    e
                })
            })
            .collect()
    }

    async fn guest_by_loyalty_number(
        &self,
        p: &PropertyId,
        number: &str,
    ) -> Result<Option<GuestId>, StoreError> {
        match self.get_guests(&number_pk(p, number), "NUMBER").await? {
            Some(i) => decode::<NumberOwner>(&i).map(|o| Some(o.guest)),
            None => Ok(None),
        }
    }

    async fn loyalty_stay(
        &self,
        p: &PropertyId,
        reservation: &str,
    ) -> Result<Option<LoyaltyStay>, StoreError> {
        match self
            .get_guests(&state_pk(p), &format!("STAY#{reservation}"))
            .await?
        {
            Some(i) => {
                let mut s: LoyaltyStay = decode(&i)?;
                s.version = i.version;
                Ok(Some(s))
            }
            None => Ok(None),
        }
    }

    async fn save_loyalty_stay(
        &self,
        stay: &LoyaltyStay,
        previous: Option<&LoyaltyStay>,
        records: &[ExportRecord],
    ) -> Result<(), StoreError> {
        let item = Item::new(
            state_pk(&stay.property),
            format!("STAY#{}", stay.reservation),
            encode(stay),
        );
        let first = if stay.version == 0 {
            Write::put(T, item, Cond::Absent)
        } else {
            Write::put(
                T,
                item.with_version(stay.version + 1),
                Cond::Version(stay.version),
            )
        };
        let mut writes = vec![first];
        writes.extend(
            records
                .iter()
                .map(|r| Write::put(T, record_item(r), Cond::Absent)),
        );
        let was = previous.and_then(LoyaltyStay::held_for);
        let now = stay.held_for();
        if let Some(g) = was.filter(|g| Some(*g) != now) {
            writes.push(Write::Delete {
                table: T,
                pk: held_pk(&stay.property),
                sk: held_sk(g, &stay.reservation),
                cond: Cond::None,
            });
        }
        if let Some(g) = now.filter(|g| Some(*g) != was) {
            let marker = HeldMarker {
                guest: g.clone(),
                reservation: stay.reservation.clone(),
            };
            writes.push(Write::put(
                T,
                Item::new(
                    held_pk(&stay.property),
                    held_sk(g, &stay.reservation),
                    encode(&marker),
                ),
                Cond::None,
            ));
        }
        self.run(writes).await
    }

    async fn held_reservations(
        &self,
        p: &PropertyId,
        guest: &GuestId,
    ) -> Result<Vec<String>, StoreError> {
        let items = self
            .query_all(Query::partition(T, held_pk(p)).prefix(format!("{guest}#")))
            .await?;
        let mut out = Vec::new();
        for i in &items {
            let m: HeldMarker = decode(i)?;
            if &m.guest == guest {
                out.push(m.reservation);
            }
        }
        Ok(out)
    }

    async fn held_stay_count(&self, p: &PropertyId) -> Result<usize, StoreError> {
        Ok(self.query_all(Query::partition(T, held_pk(p))).await?.len())
    }

    async fn export_record(
        &self,
        p: &PropertyId,
        transaction_id: &str,
    ) -> Result<Option<ExportRecord>, StoreError> {
        match self.get_guests(&record_pk(p), transaction_id).await? {
            Some(i) => decode(&i).map(Some),
            None => Ok(None),
        }
    }

    async fn pending_records(
        &self,
        p: &PropertyId,
        limit: usize,
    ) -> Result<Vec<ExportRecord>, StoreError> {
        let mut out: Vec<ExportRecord> = Vec::new();
        let mut q = Query::gsi1(T, format!("LOYALTYPENDING#{p}")).limit(limit.clamp(1, 1000));
        loop {
            let page = self.items().query(&q, self.now_ts()).await?;
            for i in &page.items {
                let r: ExportRecord = decode(i)?;
                // The index lags on DynamoDB: skip what was delivered since.
                if r.is_pending() {
                    out.push(r);
                }
            }
            match page.next {
                Some(c) if out.len() < limit => q = q.after(Some(c)),
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn mark_records(
        &self,
        records: &[ExportRecord],
        file: Option<&str>,
    ) -> Result<(), StoreError> {
        for chunk in records.chunks(MAX_BATCH_ITEMS) {
            let items = chunk
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    match file {
                        Some(f) => {
                            r.exported_in = Some(f.to_owned());
                            r.delivered_at = Some(self.clock().now());
                        }
                        None => r.superseded = true,
                    }
                    record_item(&r)
                })
                .collect();
            self.items().batch_put(T, items).await?;
        }
        Ok(())
    }

    async fn export_state(&self, p: &PropertyId) -> Result<ExportState, StoreError> {
        match self.get_guests(&state_pk(p), "EXPORT").await? {
            Some(i) => {
                let mut s: ExportState = decode(&i)?;
                s.version = i.version;
                Ok(s)
            }
            None => Ok(ExportState::default()),
        }
    }

    async fn save_export_state(&self, p: &PropertyId, s: &ExportState) -> Result<(), StoreError> {
        let item = Item::new(state_pk(p), "EXPORT", encode(s));
        // Closing a file (no open batch, a last file named) is its delivery.
        let delivered = match (&s.open, &s.last_file, s.last_run_at) {
            (None, Some(f), Some(at)) if s.version > 0 => {
                outbox(&[announce::loyalty_file(p, f, at)])
            }
            _ => Vec::new(),
        };
        let w = if s.version == 0 {
            Write::put(T, item, Cond::Absent)
        } else {
            Write::put(
                T,
                item.with_version(s.version + 1),
                Cond::Version(s.version),
            )
        };
        self.run(std::iter::once(w).chain(delivered).collect())
            .await
    }

    async fn members_file_seen(&self, p: &PropertyId, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .get_guests(&state_pk(p), &members_sk(name))
            .await?
            .is_some())
    }

    async fn record_members_file(&self, p: &PropertyId, name: &str) -> Result<(), StoreError> {
        let item = Item::new(state_pk(p), members_sk(name), "{}".into())
            .with_expiry(self.now_ts() + MEMBERS_FILE_MEMORY_SECONDS);
        self.run(vec![Write::put(T, item, Cond::None)]).await
    }
}
