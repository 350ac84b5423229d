//! The club roster, in the `roster` table.
//!
//! | item | pk | sk | notes |
//! |---|---|---|---|
//! | active pointer | `ROSTER#<p>` | `ACTIVE` | generation, members, tier counts, file order; flipped with `Cond::Version` |
//! | generation registry | `ROSTER#<p>` | `GEN#<generation>` | building / held / active / retired (+ when) |
//! | delivery marker | `ROSTER#<p>` | `SRC#<identity>` | written with the outcome: a repeat delivery finds it |
//! | tier setting | `ROSTER#<p>` | `TIER#<normalised tier>` | enabled for discounts |
//! | club mode | `ROSTER#<p>` | `CLUBMODE` | `live` (also when absent) or `trial` |
//! | member entry | `GEN#<p>#<generation>` | `<email> <tier>` | member id, join date, first and last name, phone; no addresses |
//! | member number index | `gsi1`: `GENID#<p>#<generation>` | `<member id>#<email>` | on the member entry: `?member_id=` |
//! | name index | `GENIDX#<p>#<generation>` | `NAME#<folded name>#<email>` | the email; the full name and the last name each: `?q=` |
//! | change | `CHANGES#<p>#<generation>` | `<kind>#<email>` | joined / left / tier_changed against the replaced generation |
//! | every member joined | `CHANGES#<p>#<generation>` | `ALL` | the generation replaced none: its members are the `joined` list |
//! | import report | `IMPORTS#<p>` | `<import id (UUID v7)>` | newest first by a descending query |
//!
//! A generation id is derived from the delivery, so a retried import after a
//! crash rewrites the same entries instead of leaving orphans. Retired
//! generations are deleted by a later sweep, not at the flip: a reader that
//! read the old pointer a moment before still finds a whole roster. A
//! generation's indexes and changes live and go with it.
//!
//! What an import changed is found after its generation is written, by
//! reading the replaced generation and the new one side by side in key order
//! (`<email> <tier>`), a page of each at a time: nothing grows with the
//! roster, and both stores answer those reads in order by themselves.

use super::event_repo::outbox;
use domain::events::announce;
use std::collections::{BTreeMap, VecDeque};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use domain::roster::discount::normalise_tier;
use domain::roster::import::{ImportReport, ImportStatus};
use domain::roster::store::{
    ChangeCounts, ChangeKind, ClubMode, Flip, FoundMember, GenerationMember, MemberChange,
    MemberRecord, RosterStore, TierSetting, fold_name,
};
use domain::{Email, PropertyId, StoreError};
use serde::{Deserialize, Serialize};

use super::items::{Cond, Item, Query, SkRange, Table, TxError, Write};
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

/// A generation's member number and name indexes.
pub(crate) fn index_pk(p: &PropertyId, generation: &str) -> String {
    format!("GENIDX#{p}#{generation}")
}

/// What an import changed against the generation it replaced.
pub(crate) fn changes_pk(p: &PropertyId, generation: &str) -> String {
    format!("CHANGES#{p}#{generation}")
}

/// The greatest character: an upper bound for a key range.
const MAX_CHAR: char = '\u{10FFFF}';

/// The member-number index (`gsi1` of the member entries themselves).
fn id_index_pk(p: &PropertyId, generation: &str) -> String {
    format!("GENID#{p}#{generation}")
}

/// The name index keys of one member entry (the email's entries all share them).
pub(crate) fn index_sks(email: &str, entry: &MemberEntry) -> Vec<String> {
    let mut sks = Vec::new();
    let first = entry
        .first_name
        .as_deref()
        .map(fold_name)
        .unwrap_or_default();
    let last = entry
        .last_name
        .as_deref()
        .map(fold_name)
        .unwrap_or_default();
    let full = format!("{first} {last}").trim().to_owned();
    if !full.is_empty() {
        sks.push(format!("NAME#{full}#{email}"));
    }
    if !first.is_empty() && !last.is_empty() {
        sks.push(format!("NAME#{last}#{email}"));
    }
    sks
}

/// The keys a person's entries in a generation leave behind there: the
/// entries themselves, their index entries and the recorded changes.
/// `entries` are the person's member entries (as read).
pub(crate) fn person_keys(
    p: &PropertyId,
    generation: &str,
    email: &str,
    entries: &[Item],
) -> Result<Vec<(String, String)>, StoreError> {
    let mut keys = Vec::new();
    for i in entries {
        let e: MemberEntry = decode(i)?;
        for sk in index_sks(email, &e) {
            keys.push((index_pk(p, generation), sk));
        }
        keys.push((i.pk.clone(), i.sk.clone()));
    }
    for kind in [
        ChangeKind::Joined,
        ChangeKind::Left,
        ChangeKind::TierChanged,
    ] {
        keys.push((
            changes_pk(p, generation),
            format!("{}#{email}", kind.as_str()),
        ));
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
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
pub(crate) struct MemberEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    member_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
}

/// An index entry's body: the member's email.
#[derive(Debug, Serialize, Deserialize)]
struct IndexEntry {
    email: String,
}

/// A person's entries folded into what a lookup answers.
fn record_of(items: &[Item]) -> Result<MemberRecord, StoreError> {
    let mut record = MemberRecord::default();
    for i in items {
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
        record.first_name = record.first_name.or(e.first_name);
        record.last_name = record.last_name.or(e.last_name);
        record.phone = record.phone.or(e.phone);
    }
    Ok(record)
}

/// The email of a member entry's key (`<email> <tier>`).
fn email_of_sk(sk: &str) -> &str {
    sk.split_once(' ').map_or(sk, |(e, _)| e)
}

/// A partition read in key order a page at a time, handed out one member
/// (all entries of one email) at a time.
struct MemberScan<'a> {
    store: &'a Store,
    query: Query,
    buffer: VecDeque<Item>,
    more: bool,
}

impl<'a> MemberScan<'a> {
    fn new(store: &'a Store, query: Query) -> Self {
        Self {
            store,
            query: query.limit(SCAN_PAGE),
            buffer: VecDeque::new(),
            more: true,
        }
    }

    async fn peek_email(&mut self) -> Result<Option<String>, StoreError> {
        while self.buffer.is_empty() && self.more {
            let page = self
                .store
                .items()
                .query(&self.query, self.store.now_ts())
                .await?;
            self.buffer.extend(page.items);
            self.more = page.next.is_some();
            self.query.after = page.next;
        }
        Ok(self.buffer.front().map(|i| email_of_sk(&i.sk).to_owned()))
    }

    /// The next member's email and entries.
    async fn next_member(&mut self) -> Result<Option<(String, Vec<Item>)>, StoreError> {
        let Some(email) = self.peek_email().await? else {
            return Ok(None);
        };
        let mut entries = Vec::new();
        while self.peek_email().await?.as_deref() == Some(email.as_str()) {
            entries.extend(self.buffer.pop_front());
        }
        Ok(Some((email, entries)))
    }
}

/// A member of the replaced generation who is not in the new one.
fn left(email: &str, entries: &[Item]) -> Result<MemberChange, StoreError> {
    Ok(MemberChange {
        email: email.to_owned(),
        kind: ChangeKind::Left,
        member_id: record_of(entries)?.member_id,
        tiers_before: tiers_of(entries)?,
        tiers_after: Vec::new(),
    })
}

/// Items per page while reading a generation in order.
const SCAN_PAGE: usize = 1000;

/// The tiers of a person's entries, sorted.
fn tiers_of(items: &[Item]) -> Result<Vec<String>, StoreError> {
    let mut tiers = Vec::new();
    for i in items {
        let e: MemberEntry = decode(i)?;
        if let Some(t) = e.tier.filter(|t| !tiers.contains(t)) {
            tiers.push(t);
        }
    }
    tiers.sort();
    Ok(tiers)
}

/// A key range of a partition starting after `after` (exclusive) within
/// `prefix`.
fn range_after(prefix: &str, after: Option<&str>) -> SkRange {
    match after {
        None => SkRange::Prefix(prefix.to_owned()),
        Some(a) => SkRange::Between(format!("{a}\u{1}"), format!("{prefix}{MAX_CHAR}")),
    }
}

fn tx_err(e: TxError) -> StoreError {
    e.into()
}

impl Store {
    /// Deletes every item of a roster partition, a page at a time.
    async fn drop_partition(&self, pk: &str) -> Result<(), StoreError> {
        loop {
            let page = self
                .items()
                .query(&Query::partition(T, pk).limit(1000), self.now_ts())
                .await?;
            if page.items.is_empty() {
                return Ok(());
            }
            let keys = page.items.into_iter().map(|i| (i.pk, i.sk)).collect();
            self.items().batch_delete(T, keys).await?;
        }
    }

    /// A person's entries in a generation.
    async fn entries_of(
        &self,
        p: &PropertyId,
        generation: &str,
        email: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let q = Query::partition(T, gen_pk(p, generation)).prefix(format!("{email} "));
        Ok(self.items().query(&q, self.now_ts()).await?.items)
    }

    /// The members behind index entries of the active generation, in the
    /// entries' order, each once.
    async fn found_members(
        &self,
        p: &PropertyId,
        generation: &str,
        index: &[Item],
        out: &mut Vec<FoundMember>,
    ) -> Result<(), StoreError> {
        for i in index {
            let IndexEntry { email } = decode(i)?;
            if out.iter().any(|f| f.email.as_str() == email) {
                continue;
            }
            let entries = self.entries_of(p, generation, &email).await?;
            // An entry erased since the index was read: not a member any more.
            let (Ok(parsed), false) = (Email::parse(&email), entries.is_empty()) else {
                continue;
            };
            out.push(FoundMember {
                email: parsed,
                record: record_of(&entries)?,
            });
        }
        Ok(())
    }

    fn change_item(p: &PropertyId, generation: &str, change: &MemberChange) -> Item {
        Item::new(
            changes_pk(p, generation),
            format!("{}#{}", change.kind.as_str(), change.email),
            encode(change),
        )
    }

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
        Ok(Some(record_of(&items)?))
    }

    async fn find_by_member_id(
        &self,
        p: &PropertyId,
        member_id: &str,
        limit: usize,
    ) -> Result<Vec<FoundMember>, StoreError> {
        let Some((active, _)) = self.active_roster(p).await? else {
            return Ok(Vec::new());
        };
        let prefix = format!("{member_id}#");
        let q = Query::gsi1(T, id_index_pk(p, &active.generation))
            .prefix(prefix.clone())
            .limit(limit.max(1) * 4);
        let mut out: Vec<FoundMember> = Vec::new();
        for i in self.items().query(&q, self.now_ts()).await?.items {
            let email = email_of_sk(&i.sk).to_owned();
            // A member number with a `#` in it could start another's index
            // key with this prefix: only exact keys count.
            let exact = i
                .gsi1
                .as_ref()
                .is_some_and(|(_, sk)| *sk == format!("{prefix}{email}"));
            if !exact || out.iter().any(|f| f.email.as_str() == email) {
                continue;
            }
            let entries = self.entries_of(p, &active.generation, &email).await?;
            if let (Ok(parsed), false) = (Email::parse(&email), entries.is_empty()) {
                out.push(FoundMember {
                    email: parsed,
                    record: record_of(&entries)?,
                });
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn search_members(
        &self,
        p: &PropertyId,
        folded: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<FoundMember>, Option<String>), StoreError> {
        let Some((active, _)) = self.active_roster(p).await? else {
            return Ok((Vec::new(), None));
        };
        let prefix = format!("NAME#{folded}");
        let mut q = Query::partition(T, index_pk(p, &active.generation)).limit(limit.max(1));
        q.sk = range_after(&prefix, after);
        let mut out = Vec::new();
        loop {
            let page = self.items().query(&q, self.now_ts()).await?;
            let more = page.next.is_some();
            for (n, i) in page.items.iter().enumerate() {
                self.found_members(p, &active.generation, std::slice::from_ref(i), &mut out)
                    .await?;
                if out.len() >= limit {
                    let last = n + 1 == page.items.len() && !more;
                    return Ok((out, (!last).then(|| i.sk.clone())));
                }
            }
            match page.next {
                Some(c) => q.after = Some(c),
                None => return Ok((out, None)),
            }
        }
    }

    async fn compare_generations(
        &self,
        p: &PropertyId,
        old: Option<&str>,
        new: &str,
    ) -> Result<Option<ChangeCounts>, StoreError> {
        // A retry may compare against another generation: start clean.
        self.drop_partition(&changes_pk(p, new)).await?;
        let Some(old) = old else {
            let all = Item::new(changes_pk(p, new), "ALL", "{}".to_owned());
            self.items().batch_put(T, vec![all]).await?;
            return Ok(None);
        };
        let mut before = MemberScan::new(self, Query::partition(T, gen_pk(p, old)));
        let mut after = MemberScan::new(self, Query::partition(T, gen_pk(p, new)));
        let mut counts = ChangeCounts::default();
        let mut writes = Vec::new();
        let (mut a, mut b) = (before.next_member().await?, after.next_member().await?);
        loop {
            let change = match (&a, &b) {
                (None, None) => break,
                (Some((ea, ia)), Some((eb, ib))) if ea == eb => {
                    let (was, is) = (tiers_of(ia)?, tiers_of(ib)?);
                    let change = (was != is).then(|| -> Result<_, StoreError> {
                        Ok(MemberChange {
                            email: eb.clone(),
                            kind: ChangeKind::TierChanged,
                            member_id: record_of(ib)?.member_id,
                            tiers_before: was,
                            tiers_after: is,
                        })
                    });
                    if change.is_none() {
                        counts.unchanged += 1;
                    }
                    a = before.next_member().await?;
                    b = after.next_member().await?;
                    change.transpose()?
                }
                (Some((ea, ia)), Some((eb, _))) if ea < eb => {
                    let c = left(ea, ia)?;
                    a = before.next_member().await?;
                    Some(c)
                }
                (Some((ea, ia)), None) => {
                    let c = left(ea, ia)?;
                    a = before.next_member().await?;
                    Some(c)
                }
                (_, Some((eb, ib))) => {
                    let c = MemberChange {
                        email: eb.clone(),
                        kind: ChangeKind::Joined,
                        member_id: record_of(ib)?.member_id,
                        tiers_before: Vec::new(),
                        tiers_after: tiers_of(ib)?,
                    };
                    b = after.next_member().await?;
                    Some(c)
                }
            };
            if let Some(c) = change {
                match c.kind {
                    ChangeKind::Joined => counts.joined += 1,
                    ChangeKind::Left => counts.left += 1,
                    ChangeKind::TierChanged => counts.tier_changed += 1,
                }
                writes.push(Self::change_item(p, new, &c));
                if writes.len() >= PUT_CHUNK {
                    self.items()
                        .batch_put(T, std::mem::take(&mut writes))
                        .await?;
                }
            }
        }
        self.items().batch_put(T, writes).await?;
        Ok(Some(counts))
    }

    async fn changes(
        &self,
        p: &PropertyId,
        generation: &str,
        kind: ChangeKind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<MemberChange>, Option<String>), StoreError> {
        let limit = limit.max(1);
        let all = self
            .items()
            .get(T, &changes_pk(p, generation), "ALL", self.now_ts())
            .await?
            .is_some();
        if all {
            // Every member joined: the list is the generation itself.
            if kind != ChangeKind::Joined {
                return Ok((Vec::new(), None));
            }
            let mut q = Query::partition(T, gen_pk(p, generation));
            if let Some(a) = after {
                q.sk = SkRange::Between(format!("{a}!"), MAX_CHAR.to_string());
            }
            let mut scan = MemberScan::new(self, q);
            let mut out = Vec::new();
            while out.len() < limit {
                let Some((email, entries)) = scan.next_member().await? else {
                    return Ok((out, None));
                };
                out.push(MemberChange {
                    member_id: record_of(&entries)?.member_id,
                    tiers_before: Vec::new(),
                    tiers_after: tiers_of(&entries)?,
                    email,
                    kind,
                });
            }
            let more = scan.peek_email().await?.is_some();
            let next = more.then(|| out.last().map(|c| c.email.clone())).flatten();
            return Ok((out, next));
        }
        let prefix = format!("{}#", kind.as_str());
        let mut q = Query::partition(T, changes_pk(p, generation)).limit(limit);
        q.sk = range_after(&prefix, after.map(|a| format!("{prefix}{a}")).as_deref());
        let page = self.items().query(&q, self.now_ts()).await?;
        let out: Vec<MemberChange> = page.items.iter().map(decode).collect::<Result<_, _>>()?;
        // A page cut short by the store's size limit also has a `next`.
        let next = page.next.and_then(|_| out.last().map(|c| c.email.clone()));
        Ok((out, next))
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
                first_name: m.first_name,
                last_name: m.last_name,
                phone: m.phone,
            };
            let email = m.email.as_str();
            let body = encode(&IndexEntry {
                email: email.to_owned(),
            });
            for isk in index_sks(email, &entry) {
                items.push(Item::new(index_pk(p, generation), isk, body.clone()));
            }
            let mut item = Item::new(pk.clone(), sk, encode(&entry));
            if let Some(id) = entry.member_id.as_deref().filter(|id| !id.is_empty()) {
                item = item.with_gsi1(id_index_pk(p, generation), format!("{id}#{email}"));
            }
            items.push(item);
            if items.len() >= PUT_CHUNK {
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
        writes.extend(
            announce::roster_import(p, report)
                .into_iter()
                .flat_map(|e| outbox(&[e])),
        );
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
        writes.extend(
            announce::roster_import(p, report)
                .into_iter()
                .flat_map(|e| outbox(&[e])),
        );
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
        for pk in [
            changes_pk(p, generation),
            index_pk(p, generation),
            gen_pk(p, generation),
        ] {
            self.drop_partition(&pk).await?;
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
