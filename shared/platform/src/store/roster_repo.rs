//! The club roster, in the `roster` table.
//!
//! | item | pk | sk | notes |
//! |---|---|---|---|
//! | active pointer | `ROSTER#<p>` | `ACTIVE` | generation, members, tier counts, file order; flipped with `Cond::Version` |
//! | generation registry | `ROSTER#<p>` | `GEN#<generation>` | building / held / active / retired (+ when) |
//! | delivery marker | `ROSTER#<p>` | `SRC#<identity>` | written with the outcome: a repeat delivery finds it |
//! | tier setting | `ROSTER#<p>` | `TIER#<normalised tier>` | enabled for discounts |
//! | club mode | `ROSTER#<p>` | `CLUBMODE` | `live` (also when absent) or `trial` |
//! | member entry | `GEN#<p>#<generation>` | `<email> <tier>` | member id, join date; no names or addresses |
//! | import report | `IMPORTS#<p>` | `<import id (UUID v7)>` | newest first by a descending query |
//!
//! A generation id is derived from the delivery, so a retried import after a
//! crash rewrites the same entries instead of leaving orphans. Retired
//! generations are deleted by a later sweep, not at the flip: a reader that
//! read the old pointer a moment before still finds a whole roster.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use domain::roster::discount::normalise_tier;
use domain::roster::import::{ImportReport, ImportStatus};
use domain::roster::store::{
    ClubMode, Flip, GenerationMember, MemberRecord, RosterStore, TierSetting,
};
use domain::{Email, PropertyId, StoreError};
use serde::{Deserialize, Serialize};

use super::items::{Cond, Item, Query, Table, TxError, Write};
use super::{Store, decode, encode};

const T: Table = Table::Roster;
/// Entries per store call while writing a generation (the DynamoDB backend
/// splits further into its 25-item batches).
const PUT_CHUNK: usize = 2_000;

fn roster_pk(p: &PropertyId) -> String {
    format!("ROSTER#{p}")
}

fn gen_pk(p: &PropertyId, generation: &str) -> String {
    format!("GEN#{p}#{generation}")
}

fn imports_pk(p: &PropertyId) -> String {
    format!("IMPORTS#{p}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum GenStatus {
    Building,
    Held,
    Active,
    Retired,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GenEntry {
    status: GenStatus,
    since: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MemberEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    member_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<NaiveDate>,
}

fn tx_err(e: TxError) -> StoreError {
    e.into()
}

impl Store {
    fn gen_entry(&self, p: &PropertyId, generation: &str, status: GenStatus) -> Item {
        let entry = GenEntry {
            status,
            since: self.clock().now(),
        };
        Item::new(roster_pk(p), format!("GEN#{generation}"), encode(&entry))
    }

    fn report_item(&self, p: &PropertyId, report: &ImportReport) -> Item {
        Item::new(imports_pk(p), report.id.clone(), encode(report))
    }

    fn pointer_write(&self, p: &PropertyId, flip: &Flip) -> Write {
        let version = flip.expected_version.map_or(1, |v| v + 1);
        let item = Item::new(roster_pk(p), "ACTIVE", encode(&flip.active)).with_version(version);
        let cond = flip.expected_version.map_or(Cond::Absent, Cond::Version);
        Write::put(T, item, cond)
    }

    fn flip_writes(&self, p: &PropertyId, flip: &Flip) -> Vec<Write> {
        let mut writes = vec![
            self.pointer_write(p, flip),
            Write::put(
                T,
                self.gen_entry(p, &flip.active.generation, GenStatus::Active),
                Cond::None,
            ),
        ];
        if let Some(old) = flip
            .previous_generation
            .as_ref()
            .filter(|g| **g != flip.active.generation)
        {
            writes.push(Write::put(
                T,
                self.gen_entry(p, old, GenStatus::Retired),
                Cond::None,
            ));
        }
        writes
    }
}

#[async_trait]
impl RosterStore for Store {
    async fn active_roster(
        &self,
        p: &PropertyId,
    ) -> Result<Option<(domain::roster::import::ActiveRoster, i64)>, StoreError> {
        match self
            .items()
            .get(T, &roster_pk(p), "ACTIVE", self.now_ts())
            .await?
        {
            Some(i) => Ok(Some((decode(&i)?, i.version))),
            None => Ok(None),
        }
    }

    async fn lookup_member(
        &self,
        p: &PropertyId,
        email: &Email,
    ) -> Result<Option<MemberRecord>, StoreError> {
        let Some((active, _)) = self.active_roster(p).await? else {
            return Ok(None);
        };
        let q = Query::partition(T, gen_pk(p, &active.generation))
            .prefix(format!("{} ", email.as_str()));
        let items = self.items().query(&q, self.now_ts()).await?.items;
        if items.is_empty() {
            return Ok(None);
        }
        let mut record = MemberRecord {
            member_id: None,
            tiers: Vec::new(),
            since: None,
        };
        for i in &items {
            let e: MemberEntry = decode(i)?;
            if record.member_id.is_none() {
                record.member_id = e.member_id;
            }
            if let Some(t) = e.tier.filter(|t| !record.tiers.contains(t)) {
                record.tiers.push(t);
            }
            record.since = match (record.since, e.since) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(Some(record))
    }

    async fn start_generation(&self, p: &PropertyId, generation: &str) -> Result<(), StoreError> {
        let w = Write::put(
            T,
            self.gen_entry(p, generation, GenStatus::Building),
            Cond::None,
        );
        self.items()
            .transact(vec![w], self.now_ts())
            .await
            .map_err(tx_err)
    }

    async fn put_members(
        &self,
        p: &PropertyId,
        generation: &str,
        members: Vec<GenerationMember>,
    ) -> Result<(), StoreError> {
        let pk = gen_pk(p, generation);
        let mut items = Vec::with_capacity(members.len().min(PUT_CHUNK));
        for m in members {
            let sk = format!("{} {}", m.email.as_str(), m.tier.as_deref().unwrap_or(""));
            let entry = MemberEntry {
                member_id: m.member_id,
                tier: m.tier,
                since: m.since,
            };
            items.push(Item::new(pk.clone(), sk, encode(&entry)));
            if items.len() == PUT_CHUNK {
                self.items()
                    .batch_put(T, std::mem::take(&mut items))
                    .await?;
            }
        }
        self.items().batch_put(T, items).await
    }

    async fn import_by_source(
        &self,
        p: &PropertyId,
        identity: &str,
    ) -> Result<Option<ImportReport>, StoreError> {
        let Some(marker) = self
            .items()
            .get(T, &roster_pk(p), &format!("SRC#{identity}"), self.now_ts())
            .await?
        else {
            return Ok(None);
        };
        let import_id: String = decode(&marker)?;
        Ok(self.import_report(p, &import_id).await?.map(|(r, _)| r))
    }

    async fn finish_import(
        &self,
        p: &PropertyId,
        report: &ImportReport,
        identity: &str,
        flip: Option<Flip>,
    ) -> Result<(), StoreError> {
        let marker = Item::new(roster_pk(p), format!("SRC#{identity}"), encode(&report.id));
        let mut writes = vec![
            Write::put(T, marker, Cond::Absent),
            Write::put(T, self.report_item(p, report), Cond::Absent),
        ];
        match (&flip, report.status, &report.generation) {
            (Some(f), _, _) => writes.extend(self.flip_writes(p, f)),
            (None, ImportStatus::Held, Some(g)) => {
                writes.push(Write::put(
                    T,
                    self.gen_entry(p, g, GenStatus::Held),
                    Cond::None,
                ));
            }
            _ => {}
        }
        self.items()
            .transact(writes, self.now_ts())
            .await
            .map_err(tx_err)
    }

    async fn back_off(&self, attempt: u32) {
        super::backoff(attempt).await;
    }

    async fn approve_import(
        &self,
        p: &PropertyId,
        report: &ImportReport,
        report_version: i64,
        flip: Flip,
    ) -> Result<(), StoreError> {
        let item = self.report_item(p, report).with_version(report_version + 1);
        let mut writes = vec![Write::put(T, item, Cond::Version(report_version))];
        writes.extend(self.flip_writes(p, &flip));
        self.items()
            .transact(writes, self.now_ts())
            .await
            .map_err(tx_err)
    }

    async fn import_reports(
        &self,
        p: &PropertyId,
        limit: usize,
    ) -> Result<Vec<ImportReport>, StoreError> {
        let q = Query::partition(T, imports_pk(p))
            .descending()
            .limit(limit.max(1));
        self.items()
            .query(&q, self.now_ts())
            .await?
            .items
            .iter()
            .map(decode)
            .collect()
    }

    async fn import_report(
        &self,
        p: &PropertyId,
        id: &str,
    ) -> Result<Option<(ImportReport, i64)>, StoreError> {
        match self
            .items()
            .get(T, &imports_pk(p), id, self.now_ts())
            .await?
        {
            Some(i) => Ok(Some((decode(&i)?, i.version))),
            None => Ok(None),
        }
    }

    async fn tier_settings(
        &self,
        p: &PropertyId,
    ) -> Result<BTreeMap<String, TierSetting>, StoreError> {
        let items = self
            .query_all(Query::partition(T, roster_pk(p)).prefix("TIER#"))
            .await?;
        items
            .iter()
            .map(|i| {
                Ok((
                    i.sk.trim_start_matches("TIER#").to_owned(),
                    decode::<TierSetting>(i)?,
                ))
            })
            .collect()
    }

    async fn set_tier(&self, p: &PropertyId, tier: &str, enabled: bool) -> Result<(), StoreError> {
        let setting = TierSetting {
            tier: tier.trim().to_owned(),
            enabled,
        };
        let item = Item::new(
            roster_pk(p),
            format!("TIER#{}", normalise_tier(tier)),
            encode(&setting),
        );
        self.items()
            .transact(vec![Write::put(T, item, Cond::None)], self.now_ts())
            .await
            .map_err(tx_err)
    }

    async fn club_mode(&self, p: &PropertyId) -> Result<ClubMode, StoreError> {
        match self
            .items()
            .get(T, &roster_pk(p), "CLUBMODE", self.now_ts())
            .await?
        {
            Some(i) => decode(&i),
            None => Ok(ClubMode::Live),
        }
    }

    async fn set_club_mode(&self, p: &PropertyId, mode: ClubMode) -> Result<(), StoreError> {
        let item = Item::new(roster_pk(p), "CLUBMODE".to_owned(), encode(&mode));
        self.items()
            .transact(vec![Write::put(T, item, Cond::None)], self.now_ts())
            .await
            .map_err(tx_err)
    }

    async fn drop_generation(&self, p: &PropertyId, generation: &str) -> Result<(), StoreError> {
        let pk = gen_pk(p, generation);
        loop {
            let page = self
                .items()
                .query(&Query::partition(T, pk.clone()).limit(1000), self.now_ts())
                .await?;
            if page.items.is_empty() {
                break;
            }
            let keys = page.items.into_iter().map(|i| (i.pk, i.sk)).collect();
            self.items().batch_delete(T, keys).await?;
        }
        self.items()
            .batch_delete(T, vec![(roster_pk(p), format!("GEN#{generation}"))])
            .await
    }

    async fn sweep_generations(
        &self,
        p: &PropertyId,
        retired_before: DateTime<Utc>,
        abandoned_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let active = self.active_roster(p).await?.map(|(a, _)| a.generation);
        let entries = self
            .query_all(Query::partition(T, roster_pk(p)).prefix("GEN#"))
            .await?;
        let mut swept = 0;
        for item in entries {
            let generation = item.sk.trim_start_matches("GEN#").to_owned();
            let entry: GenEntry = decode(&item)?;
            let stale = match entry.status {
                GenStatus::Retired => entry.since < retired_before,
                GenStatus::Building => entry.since < abandoned_before,
                GenStatus::Active | GenStatus::Held => false,
            };
            if stale && active.as_deref() != Some(generation.as_str()) {
                self.drop_generation(p, &generation).await?;
                swept += 1;
            }
        }
        Ok(swept)
    }
}
