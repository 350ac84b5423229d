//! Vouchers, their ledger, holds, the pickup feed and settlement, in the
//! `vouchers` table.
//!
//! | item | pk | sk | gsi1 |
//! |---|---|---|---|
//! | code → issuers (the one global lookup; no personal data) | `CODE#<code key>` | `CODE` | — |
//! | voucher | `VOUCHER#<issuer>#<code key>` | `VOUCHER` | — |
//! | ledger activity | `VOUCHER#<issuer>#<code key>` | `ACT#<seq:010>` | redeem/capture/reverse: `SETTLE#<accepting property>#<YYYY-MM>` / `<at, µs UTC>#<code key>#<seq:010>` |
//! | issuer's settlement copy (accepted elsewhere) | `VOUCHER#<issuer>#<code key>` | `XSET#<seq:010>` | `SETTLE#<issuer>#<YYYY-MM>` / as above |
//! | redemption (reversible remainder) | `VOUCHER#<issuer>#<code key>` | `RED#<redemption id>` | — |
//! | hold location | `HOLD#<placing property>#<hold id>` | `HOLD` | `HOLDS#<placing property>` / `<hold id>` |
//! | expiry index | `EXPIRY#<issuer>` | `<valid_until>#<code key>` | — (TTL 3 days once written off) |
//! | pickup feed counter | `ORDERS#<issuer>` | `SEQ` (version = last sequence) | — |
//! | order | `ORDERS#<issuer>` | `ORDER#<seq:012>` | — |
//! | pickup cursor | `PICKUP#<property>#<partner id>` | `CURSOR` | — |
//! | article mapping | `PICKUP#<property>#<partner id>` | `MAPPING` | — |
//! | code booked in ("Kode") | `PICKUP#<property>#<partner id>` | `KODE#<issuer>#<code key>` | — |
//! | its event (outbox, `platform` table) | see `event_repo` | | |
//! | lost-code index | `VFIND#<issuer>#ORDER#<sha256(order ref)>` / `VFIND#<issuer>#EMAIL#<sha256(email)>` | `<code key>` | — |
//!
//! **Codes.** A generated code is unique: its code item names one issuer
//! and is written only if absent. A printed code (external, imported, a
//! pre-printed card) belongs to its issuer: several issuers may hold the
//! same one, each its own voucher; the code item lists them and grows by a
//! version-checked write. A reader resolves the list for its caller
//! (`rules::resolve_issuer`); issuers it may not see are never named.
//!
//! **Atomicity.** A change is one transaction: the voucher (conditioned on
//! the version read), its new ledger activities (conditioned absent), the
//! redemption or hold records it touches, the event an issue, redemption,
//! reversal or write-off announces, and — when the request carried an
//! idempotency key — the stored response. When another change won the race
//! (condition failed on the voucher), the rule runs again on the fresh state
//! after a jittered back-off. When the condition failed on the idempotency
//! record, another attempt with the same key got there first: the stored
//! record decides the answer.
//!
//! **Two round trips.** An attempt reads, in one batch: the code lookup,
//! the voucher and the redemption where the caller's property would keep
//! them (the usual case: a hotel's PMS asks about its own vouchers), the
//! caller's pickup cursor, booking-in record and article mapping, and the
//! idempotency record of an unlocked lease.
//! Then it commits with one transaction. Only a voucher of another issuer
//! costs a second read.
//!
//! **Pickup never skips.** An order's sequence is allocated by a conditional
//! write of the feed counter in the same transaction as the order, so
//! sequences commit in order: once order n is readable, every order < n is.
//! A partner's cursor only moves forward, and never beyond the newest order.

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Months, NaiveDate, SecondsFormat, Utc};
use domain::events::announce;
use domain::idempotency::{IdempotencyRecord, Lease, decide_existing};
use domain::voucher::pickup::{ArticleMapping, Order};
use domain::voucher::ports::{
    Changed, Committed, Find, Found, Lookup, PmsView, Receipt, Rule, VoucherStore,
};
use domain::voucher::rules;
use domain::voucher::{
    Activity, Change, LedgerEntry, Redemption, Voucher, VoucherCode, VoucherError,
};
use domain::{PartnerId, Property, PropertyId, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a written-off voucher stays in the expiry index: longer than
/// idempotency records are kept (48 h).
const WRITTEN_OFF_INDEX_SECONDS: i64 = 3 * 24 * 3600;

use super::items::{Cond, Item, Key, Query, Table, Write};
use super::{Attempt, Retry, Store, decode, encode};

const T: Table = Table::Vouchers;
/// Attempts per change before answering "busy" (the client retries with
/// the same key).
const MAX_ATTEMPTS: u32 = 60;

fn code_pk(code: &VoucherCode) -> String {
    format!("CODE#{}", code.key())
}

fn voucher_pk(issuer: &PropertyId, code: &VoucherCode) -> String {
    format!("VOUCHER#{issuer}#{}", code.key())
}

fn act_sk(seq: u64) -> String {
    format!("ACT#{seq:010}")
}

fn orders_pk(issuer: &PropertyId) -> String {
    format!("ORDERS#{issuer}")
}

fn order_sk(seq: u64) -> String {
    format!("ORDER#{seq:012}")
}

fn pickup_pk(property: &PropertyId, partner: &PartnerId) -> String {
    format!("PICKUP#{property}#{partner}")
}

fn hold_pk(property: &PropertyId, hold_id: &str) -> String {
    format!("HOLD#{property}#{hold_id}")
}

/// Fixed-width UTC time, so string order is time order.
fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The index of the holds a property placed (an erasure finds the stays
/// it held vouchers for through it).
fn holds_index(property: &PropertyId) -> String {
    format!("HOLDS#{property}")
}

fn settle_pk(property: &PropertyId, t: DateTime<Utc>) -> String {
    format!("SETTLE#{property}#{:04}-{:02}", t.year(), t.month())
}

/// The issuers holding a code. Records written before printed codes
/// could be shared name one `issuer`.
#[derive(Serialize, Deserialize, Default)]
struct CodeRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    issuer: Option<PropertyId>,
    #[serde(default)]
    issuers: Vec<PropertyId>,
}

impl CodeRecord {
    fn all(self) -> Vec<PropertyId> {
        let mut all = self.issuers;
        all.extend(self.issuer);
        all.sort();
        all.dedup();
        all
    }
}

/// A code a PMS partner booked in with its first redemption.
#[derive(Serialize, Deserialize)]
struct KodeRecord {
    redemption_id: String,
    at: DateTime<Utc>,
}

fn kode_key(at: &PropertyId, partner: &PartnerId, issuer: &PropertyId, code: &VoucherCode) -> Key {
    Key::new(
        T,
        pickup_pk(at, partner),
        format!("KODE#{issuer}#{}", code.key()),
    )
}

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn lookup_pk(issuer: &PropertyId, by: &Lookup) -> String {
    match by {
        Lookup::OrderRef(r) => format!("VFIND#{issuer}#ORDER#{}", sha(r.trim())),
        Lookup::BuyerEmail(e) => format!("VFIND#{issuer}#EMAIL#{}", sha(e.as_str())),
    }
}

/// The lost-code index entries of a new voucher.
fn lookups(v: &Voucher) -> Vec<Lookup> {
    let mut out = Vec::new();
    if let Some(r) = &v.order_ref {
        out.push(Lookup::OrderRef(r.clone()));
    }
    if let Some(e) = v.buyer.as_ref().and_then(|b| b.email.clone()) {
        out.push(Lookup::BuyerEmail(e));
    }
    out
}

#[derive(Serialize, Deserialize)]
struct HoldRecord {
    issuer: PropertyId,
    code: VoucherCode,
}

#[derive(Serialize, Deserialize)]
struct CursorRecord {
    acked: u64,
}

fn voucher_item(v: &Voucher, version: i64) -> Item {
    Item::new(voucher_pk(&v.issuer, &v.code), "VOUCHER", encode(v)).with_version(version)
}

/// The ledger item of `a` and, when another property accepted the voucher,
/// the issuer's settlement copy. Test vouchers never settle.
fn ledger_writes(v: &Voucher, a: &Activity) -> Vec<Write> {
    let pk = voucher_pk(&v.issuer, &v.code);
    let entry = LedgerEntry {
        code: v.code.clone(),
        issuer: v.issuer.clone(),
        activity: a.clone(),
    };
    let body = encode(&entry);
    let mut item = Item::new(pk.clone(), act_sk(a.id), body.clone());
    let mut out = Vec::with_capacity(2);
    let settle_sk = format!("{}#{}#{:010}", ts(a.at), v.code.key(), a.id);
    match (&a.accepting_property, a.kind.is_settled()) {
        (Some(accepting), true) if !v.test_mode => {
            item = item.with_gsi1(settle_pk(accepting, a.at), settle_sk.clone());
            out.push(Write::put(T, item, Cond::Absent));
            if *accepting != v.issuer {
                let copy = Item::new(pk, format!("XSET#{:010}", a.id), body)
                    .with_gsi1(settle_pk(&v.issuer, a.at), settle_sk);
                out.push(Write::put(T, copy, Cond::Absent));
            }
        }
        _ => out.push(Write::put(T, item, Cond::Absent)),
    }
    if let Some(e) = announce::voucher(v, a) {
        out.extend(super::event_repo::outbox(&[e]));
    }
    out
}

fn busy() -> VoucherError {
    VoucherError::Store(StoreError::Unavailable(
        "the voucher is busy; retry with the same Idempotency-Key".into(),
    ))
}

impl Store {
    async fn get_item(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.items().get(T, pk, sk, self.now_ts()).await
    }

    /// The ledger items in a property's settlement index (its acceptances
    /// and the settlement copies of its vouchers accepted elsewhere) for
    /// the months from `from` through `to`, as stored.
    pub(crate) async fn settlement_items(
        &self,
        property: &PropertyId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut month = from.date_naive().with_day(1).unwrap_or(from.date_naive());
        while let Some(at) = month.and_hms_opt(0, 0, 0).map(|m| m.and_utc())
            && at <= to
        {
            out.extend(
                self.query_all(Query::gsi1(T, settle_pk(property, at)))
                    .await?,
            );
            month = match month.checked_add_months(Months::new(1)) {
                Some(m) => m,
                None => break,
            };
        }
        Ok(out)
    }

    /// The voucher partitions of the holds a property placed.
    pub(crate) async fn held_voucher_partitions(
        &self,
        property: &PropertyId,
    ) -> Result<Vec<String>, StoreError> {
        self.query_all(Query::gsi1(T, holds_index(property)))
            .await?
            .iter()
            .map(|i| decode::<HoldRecord>(i).map(|r| voucher_pk(&r.issuer, &r.code)))
            .collect()
    }

    async fn voucher_item(
        &self,
        issuer: &PropertyId,
        code: &VoucherCode,
    ) -> Result<Option<(Voucher, i64)>, StoreError> {
        match self.get_item(&voucher_pk(issuer, code), "VOUCHER").await? {
            Some(i) => Ok(Some((decode(&i)?, i.version))),
            None => Ok(None),
        }
    }

    /// The answer after our idempotency write's condition failed: another
    /// attempt took the key over; its record decides.
    async fn lost_lock<T>(
        &self,
        record_id: &str,
        fingerprint: &str,
    ) -> Result<Committed<T>, VoucherError> {
        match self.idempotency_record(record_id).await? {
            Some(rec) => Ok(Committed::Replayed(decide_existing(&rec, fingerprint)?)),
            None => Err(VoucherError::IdempotencyKeyInFlight),
        }
    }
}

/// Keys of one batch read, remembering where each answer will be.
#[derive(Default)]
struct Batch {
    keys: Vec<Key>,
}

impl Batch {
    fn ask(&mut self, key: Key) -> usize {
        self.keys.push(key);
        self.keys.len() - 1
    }
}

/// Everything one attempt at a change decides on.
struct Snapshot {
    issuer: PropertyId,
    voucher: Voucher,
    version: i64,
    redemption: Option<(Redemption, i64)>,
    pms: PmsView,
    /// The idempotency record, when an unlocked lease asked for it.
    record: Option<IdempotencyRecord>,
}

fn voucher_key(issuer: &PropertyId, code: &VoucherCode) -> Key {
    Key::new(T, voucher_pk(issuer, code), "VOUCHER")
}

fn redemption_key(issuer: &PropertyId, code: &VoucherCode, id: &str) -> Key {
    Key::new(T, voucher_pk(issuer, code), format!("RED#{id}"))
}

fn code_key(code: &VoucherCode) -> Key {
    Key::new(T, code_pk(code), "CODE")
}

fn versioned<V: serde::de::DeserializeOwned>(
    item: Option<Item>,
) -> Result<Option<(V, i64)>, StoreError> {
    item.map(|i| Ok((decode(&i)?, i.version))).transpose()
}

/// The issuers a code item names (none when there is no item).
fn issuers_in(item: Option<Item>) -> Result<Vec<PropertyId>, StoreError> {
    Ok(item
        .map(|i| decode::<CodeRecord>(&i))
        .transpose()?
        .map(CodeRecord::all)
        .unwrap_or_default())
}

impl Store {
    /// Reads the voucher `f` names with what a change needs alongside it.
    /// One request when the voucher is the caller property's (or `issuer`
    /// is known from an earlier attempt); a second for another issuer's.
    async fn snapshot(
        &self,
        f: &Find<'_>,
        issuer: Option<&PropertyId>,
        unlocked: Option<&Lease>,
    ) -> Result<Snapshot, VoucherError> {
        let at = &f.at.id;
        let guess = issuer.unwrap_or(at);
        let mut b = Batch::default();
        let code_at = issuer.is_none().then(|| b.ask(code_key(f.code)));
        let voucher_at = b.ask(voucher_key(guess, f.code));
        let red_at = f
            .redemption
            .map(|id| b.ask(redemption_key(guess, f.code, id)));
        let cursor_at = b.ask(Key::new(T, pickup_pk(at, f.partner), "CURSOR"));
        let mapping_at = b.ask(Key::new(T, pickup_pk(at, f.partner), "MAPPING"));
        let kode_at = b.ask(kode_key(at, f.partner, guess, f.code));
        let record_at = unlocked.map(|l| b.ask(Store::idempotency_key(&l.record_id)));
        let mut got = self.items().get_many(&b.keys, self.now_ts()).await?;
        let mut take = |i: usize| got.get_mut(i).and_then(Option::take);

        let record = record_at
            .and_then(&mut take)
            .map(|i| decode(&i))
            .transpose()?;
        let pickup_cursor = take(cursor_at)
            .map(|i| decode::<CursorRecord>(&i).map(|c| c.acked))
            .transpose()?
            .unwrap_or(0);
        let mapping = take(mapping_at)
            .map(|i| decode(&i))
            .transpose()?
            .unwrap_or_default();
        let issuer = match issuer {
            Some(known) => {
                if !(f.may_see)(known) {
                    return Err(VoucherError::NotFound { mistyped: false });
                }
                known.clone()
            }
            None => {
                let issuers = issuers_in(code_at.and_then(&mut take))?;
                if issuers.is_empty() {
                    return Err(VoucherError::NotFound {
                        mistyped: VoucherCode::looks_mistyped(f.code.key()),
                    });
                }
                rules::resolve_issuer(&issuers, f.at, f.may_see)?
            }
        };
        let (voucher, red, kode) = if issuer == *guess {
            (take(voucher_at), red_at.and_then(&mut take), take(kode_at))
        } else {
            let mut keys = vec![
                voucher_key(&issuer, f.code),
                kode_key(at, f.partner, &issuer, f.code),
            ];
            keys.extend(f.redemption.map(|id| redemption_key(&issuer, f.code, id)));
            let mut got = self
                .items()
                .get_many(&keys, self.now_ts())
                .await?
                .into_iter();
            let (v, k) = (got.next().flatten(), got.next().flatten());
            (v, got.next().flatten(), k)
        };
        let (voucher, version) =
            versioned(voucher)?.ok_or(VoucherError::NotFound { mistyped: false })?;
        let redemption = match f.redemption {
            Some(_) => Some(versioned(red)?.ok_or(VoucherError::RedemptionNotFound)?),
            None => None,
        };
        Ok(Snapshot {
            issuer,
            voucher,
            version,
            redemption,
            pms: PmsView {
                pickup_cursor,
                booked_in: kode.is_some(),
                mapping,
            },
            record,
        })
    }

    /// Runs `rule` on a voucher as read (at `version`) and returns the new
    /// state with the writes that commit it; the voucher write is
    /// conditioned on the version read.
    fn plan_writes(
        &self,
        voucher: &Voucher,
        version: i64,
        red: Option<&(Redemption, i64)>,
        rule: &Rule<'_>,
    ) -> Result<(Change, Vec<Write>), VoucherError> {
        let (issuer, code) = (&voucher.issuer, &voucher.code);
        let pk = voucher_pk(issuer, code);
        let change = rule(voucher, red.map(|(r, _)| r), self.clock().now())?;
        let mut writes = vec![Write::put(
            T,
            voucher_item(&change.voucher, version + 1),
            Cond::Version(version),
        )];
        for a in &change.activities {
            writes.extend(ledger_writes(&change.voucher, a));
        }
        if let Some(r) = &change.redemption {
            let (cond, v) = match red {
                Some((old, v)) if old.id == r.id => (Cond::Version(*v), v + 1),
                _ => (Cond::Absent, 1),
            };
            let item = Item::new(pk.clone(), format!("RED#{}", r.id), encode(r)).with_version(v);
            writes.push(Write::put(T, item, cond));
        }
        // A written-off voucher leaves the expiry index (write-off runs read
        // it), but only after the idempotency window, so a retried run still
        // finds what its interrupted attempt wrote off.
        if change.voucher.status == domain::voucher::VoucherStatus::WrittenOff
            && voucher.status != domain::voucher::VoucherStatus::WrittenOff
            && let Some(d) = change.voucher.valid_until
        {
            let item = Item::new(
                format!("EXPIRY#{issuer}"),
                format!("{d}#{}", code.key()),
                "{}".into(),
            )
            .with_expiry(self.now_ts() + WRITTEN_OFF_INDEX_SECONDS);
            writes.push(Write::put(T, item, Cond::None));
        }
        if let Some(h) = &change.new_hold {
            let rec = HoldRecord {
                issuer: issuer.clone(),
                code: code.clone(),
            };
            let item = Item::new(hold_pk(&h.property, &h.id), "HOLD", encode(&rec))
                .with_gsi1(holds_index(&h.property), h.id.clone());
            writes.push(Write::put(T, item, Cond::Absent));
        }
        Ok((change, writes))
    }

    /// Reads the voucher (and redemption), runs `rule` and returns the new
    /// state with the writes that commit it — without sending them, so a
    /// caller (checkout's gift-card payments) can commit them in its own
    /// transaction. The voucher write is conditioned on the version read.
    pub(crate) async fn plan_change(
        &self,
        issuer: &PropertyId,
        code: &VoucherCode,
        redemption: Option<&str>,
        rule: &Rule<'_>,
    ) -> Result<(Change, Vec<Write>), VoucherError> {
        let mut keys = vec![voucher_key(issuer, code)];
        keys.extend(redemption.map(|id| redemption_key(issuer, code, id)));
        let mut got = self
            .items()
            .get_many(&keys, self.now_ts())
            .await?
            .into_iter();
        let (voucher, version) =
            versioned(got.next().flatten())?.ok_or(VoucherError::NotFound { mistyped: false })?;
        let red = match redemption {
            Some(_) => {
                Some(versioned(got.next().flatten())?.ok_or(VoucherError::RedemptionNotFound)?)
            }
            None => None,
        };
        self.plan_writes(&voucher, version, red.as_ref(), rule)
    }
}

#[async_trait]
impl VoucherStore for Store {
    async fn issuer_for(
        &self,
        code: &VoucherCode,
        at: &Property,
        may_see: &(dyn for<'p> Fn(&'p PropertyId) -> bool + Send + Sync),
    ) -> Result<PropertyId, VoucherError> {
        let issuers = issuers_in(self.get_item(&code_pk(code), "CODE").await?)?;
        if issuers.is_empty() {
            return Err(VoucherError::NotFound {
                mistyped: VoucherCode::looks_mistyped(code.key()),
            });
        }
        rules::resolve_issuer(&issuers, at, may_see)
    }

    async fn voucher(
        &self,
        issuer: &PropertyId,
        code: &VoucherCode,
    ) -> Result<Option<Voucher>, StoreError> {
        Ok(self.voucher_item(issuer, code).await?.map(|(v, _)| v))
    }

    async fn redemption(
        &self,
        issuer: &PropertyId,
        code: &VoucherCode,
        id: &str,
    ) -> Result<Option<Redemption>, StoreError> {
        match self
            .get_item(&voucher_pk(issuer, code), &format!("RED#{id}"))
            .await?
        {
            Some(i) => decode(&i).map(Some),
            None => Ok(None),
        }
    }

    async fn activities(
        &self,
        issuer: &PropertyId,
        code: &VoucherCode,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Activity>, StoreError> {
        let q = Query::partition(T, voucher_pk(issuer, code))
            .between(act_sk(after.saturating_add(1)), act_sk(9_999_999_999))
            .limit(limit.max(1));
        let page = self.items().query(&q, self.now_ts()).await?;
        page.items
            .iter()
            .map(|i| decode::<LedgerEntry>(i).map(|e| e.activity))
            .collect()
    }

    async fn create(
        &self,
        change: &Change,
        feeds: &[PropertyId],
        receipt: Option<Receipt<'_, Voucher>>,
    ) -> Result<Committed<Voucher>, VoucherError> {
        let base = &change.voucher;
        let mut feeds = feeds.to_vec();
        feeds.dedup();
        // A generated code is unique; a printed one is shared by the
        // issuers holding it, so its item is read and extended.
        let shared = !base.code.is_generated();
        let mut retry = Retry::new(MAX_ATTEMPTS);
        while let Some(attempt) = retry.next().await {
            let mut keys: Vec<Key> = feeds
                .iter()
                .map(|f| Key::new(T, orders_pk(f), "SEQ"))
                .collect();
            if shared {
                keys.push(code_key(&base.code));
            }
            let mut got = if keys.is_empty() {
                Vec::new()
            } else {
                self.items().get_many(&keys, self.now_ts()).await?
            };
            let (code_cond, code_version, holders) = match shared.then(|| got.pop().flatten()) {
                Some(Some(item)) => {
                    let holders = decode::<CodeRecord>(&item)?.all();
                    if holders.contains(&base.issuer) {
                        return Err(VoucherError::CodeTaken);
                    }
                    (Cond::Version(item.version), item.version + 1, holders)
                }
                _ => (Cond::Absent, 1, Vec::new()),
            };
            let mut v = base.clone();
            let mut feed = Vec::new();
            for (f, current) in feeds.iter().zip(&got) {
                let (cond, next) = match current {
                    Some(i) => (Cond::Version(i.version), i.version as u64 + 1),
                    None => (Cond::Absent, 1),
                };
                if *f == v.issuer {
                    v.order_seq = Some(next);
                } else {
                    v.pickup_feeds.insert(f.clone(), next);
                }
                feed.push((f, cond, next));
            }
            let mut issuers = holders;
            issuers.push(v.issuer.clone());
            let code_item = Item::new(
                code_pk(&v.code),
                "CODE",
                encode(&CodeRecord {
                    issuer: None,
                    issuers,
                }),
            )
            .with_version(code_version);
            // Order matters: 0 = code, 1 = voucher, then the feed counters.
            let mut writes = vec![
                Write::put(T, code_item, code_cond),
                Write::put(T, voucher_item(&v, 1), Cond::Absent),
            ];
            let counters = writes.len()..writes.len() + feed.len();
            for (f, cond, next) in &feed {
                let mut order = Order::of(&v);
                order.seq = *next;
                writes.push(Write::put(
                    T,
                    Item::new(orders_pk(f), "SEQ", "{}".into()).with_version(*next as i64),
                    *cond,
                ));
                writes.push(Write::put(
                    T,
                    Item::new(orders_pk(f), order_sk(*next), encode(&order)),
                    Cond::Absent,
                ));
            }
            for a in &change.activities {
                writes.extend(ledger_writes(&v, a));
            }
            if let Some(d) = v.valid_until {
                writes.push(Write::put(
                    T,
                    Item::new(
                        format!("EXPIRY#{}", v.issuer),
                        format!("{d}#{}", v.code.key()),
                        "{}".into(),
                    ),
                    Cond::Absent,
                ));
            }
            for by in lookups(&v) {
                writes.push(Write::put(
                    T,
                    Item::new(lookup_pk(&v.issuer, &by), v.code.key(), "{}".into()),
                    Cond::None,
                ));
            }
            if let Some(r) = &receipt {
                let stored = domain::idempotency::StoredResponse {
                    status: r.status,
                    body: (r.render)(&v),
                };
                writes.push(self.idempotency_completion(r.lease, &stored, Default::default()));
            }
            let last = writes.len() - 1;
            match self.commit(writes).await? {
                Attempt::Committed => return Ok(Committed::Applied(v)),
                Attempt::Lost(Some(i)) => {
                    if let Some(r) = receipt.as_ref().filter(|_| i == last) {
                        return self
                            .lost_lock(&r.lease.record_id, &r.lease.fingerprint)
                            .await;
                    }
                    // A generated code taken, or this issuer's own code
                    // (the voucher exists); a shared code's list moved on.
                    if i == 1 || (i == 0 && !shared) {
                        return Err(VoucherError::CodeTaken);
                    }
                    // Another sale took a feed's sequence, or another
                    // issuer took the same printed code meanwhile.
                    tracing::debug!(
                        attempt,
                        ?counters,
                        at = i,
                        "code or pickup feed moved; retrying"
                    );
                }
                Attempt::Lost(None) => {}
            }
        }
        Err(busy())
    }

    async fn find(&self, find: &Find<'_>) -> Result<Found, VoucherError> {
        let snap = self.snapshot(find, find.issuer, None).await?;
        Ok(Found {
            voucher: snap.voucher,
            pms: snap.pms,
        })
    }

    async fn change(
        &self,
        find: &Find<'_>,
        rule: &Rule<'_>,
        receipt: Option<Receipt<'_, Changed>>,
    ) -> Result<Committed<Changed>, VoucherError> {
        let unlocked = receipt.as_ref().map(|r| r.lease).filter(|l| !l.is_locked());
        let mut issuer = find.issuer.cloned();
        let mut retry = Retry::new(MAX_ATTEMPTS);
        while retry.next().await.is_some() {
            let snap = self.snapshot(find, issuer.as_ref(), unlocked).await?;
            if let (Some(rec), Some(lease)) = (&snap.record, unlocked) {
                return Ok(Committed::Replayed(decide_existing(
                    rec,
                    &lease.fingerprint,
                )?));
            }
            let (change, mut writes) =
                self.plan_writes(&snap.voucher, snap.version, snap.redemption.as_ref(), rule)?;
            // "Kode": the first redemption of a code this partner never
            // picked up books it in for the partner, in the same commit.
            let known = snap.pms.booked_in
                || rules::picked_up(&snap.voucher, &find.at.id, snap.pms.pickup_cursor);
            let booked_in = find.book_in && !known && find.redemption.is_none();
            let booked_in = match (&change.redemption, booked_in) {
                (Some(r), true) => {
                    let k = kode_key(&find.at.id, find.partner, &snap.issuer, find.code);
                    let rec = KodeRecord {
                        redemption_id: r.id.clone(),
                        at: r.at,
                    };
                    writes.push(Write::put(
                        T,
                        Item::new(k.pk, k.sk, encode(&rec)),
                        Cond::Absent,
                    ));
                    true
                }
                _ => false,
            };
            let changed = Changed {
                change,
                pms: snap.pms,
                booked_in,
            };
            if let Some(r) = &receipt {
                let stored = domain::idempotency::StoredResponse {
                    status: r.status,
                    body: (r.render)(&changed),
                };
                writes.push(self.idempotency_completion(r.lease, &stored, Default::default()));
            }
            issuer = Some(snap.issuer);
            let last = writes.len() - 1;
            match self.commit(writes).await? {
                Attempt::Committed => return Ok(Committed::Applied(changed)),
                Attempt::Lost(Some(i)) if receipt.is_some() && i == last => {
                    let lease = receipt.as_ref().map(|r| r.lease).ok_or_else(busy)?;
                    return self.lost_lock(&lease.record_id, &lease.fingerprint).await;
                }
                // Another change won the race (or booked the code in for
                // this partner): run the rule on the new state.
                Attempt::Lost(_) => {}
            }
        }
        tracing::warn!(code = %find.code.masked(), "voucher change gave up after contention");
        Err(busy())
    }

    async fn hold_location(
        &self,
        property: &PropertyId,
        hold_id: &str,
    ) -> Result<Option<(PropertyId, VoucherCode)>, StoreError> {
        match self.get_item(&hold_pk(property, hold_id), "HOLD").await? {
            Some(i) => {
                let r: HoldRecord = decode(&i)?;
                Ok(Some((r.issuer, r.code)))
            }
            None => Ok(None),
        }
    }

    async fn orders_after(
        &self,
        issuer: &PropertyId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError> {
        let q = Query::partition(T, orders_pk(issuer))
            .between(order_sk(after.saturating_add(1)), order_sk(999_999_999_999))
            .limit(limit.max(1));
        let page = self.items().query(&q, self.now_ts()).await?;
        page.items.iter().map(decode).collect()
    }

    async fn last_order(&self, issuer: &PropertyId) -> Result<u64, StoreError> {
        Ok(self
            .get_item(&orders_pk(issuer), "SEQ")
            .await?
            .map_or(0, |i| i.version as u64))
    }

    async fn pickup_cursor(
        &self,
        property: &PropertyId,
        partner: &PartnerId,
    ) -> Result<u64, StoreError> {
        match self
            .get_item(&pickup_pk(property, partner), "CURSOR")
            .await?
        {
            Some(i) => Ok(decode::<CursorRecord>(&i)?.acked),
            None => Ok(0),
        }
    }

    async fn acknowledge(
        &self,
        property: &PropertyId,
        partner: &PartnerId,
        cursor: u64,
    ) -> Result<u64, VoucherError> {
        let last = self.last_order(property).await?;
        if cursor > last {
            return Err(VoucherError::CursorOutOfRange { last });
        }
        let pk = pickup_pk(property, partner);
        let mut retry = Retry::new(MAX_ATTEMPTS);
        while retry.next().await.is_some() {
            let current = self.get_item(&pk, "CURSOR").await?;
            let (acked, cond, version) = match &current {
                Some(i) => (
                    decode::<CursorRecord>(i)?.acked,
                    Cond::Version(i.version),
                    i.version + 1,
                ),
                None => (0, Cond::Absent, 1),
            };
            if cursor <= acked {
                return Ok(acked);
            }
            let item = Item::new(
                pk.clone(),
                "CURSOR",
                encode(&CursorRecord { acked: cursor }),
            )
            .with_version(version);
            if self.commit(vec![Write::put(T, item, cond)]).await? == Attempt::Committed {
                return Ok(cursor);
            }
        }
        Err(busy())
    }

    async fn article_mapping(
        &self,
        property: &PropertyId,
        partner: &PartnerId,
    ) -> Result<ArticleMapping, StoreError> {
        match self
            .get_item(&pickup_pk(property, partner), "MAPPING")
            .await?
        {
            Some(i) => decode(&i),
            None => Ok(ArticleMapping::default()),
        }
    }

    async fn save_article_mapping(
        &self,
        property: &PropertyId,
        partner: &PartnerId,
        mapping: &ArticleMapping,
    ) -> Result<(), StoreError> {
        // Last write wins: the partner owns its mapping and sends it whole.
        let item = Item::new(pickup_pk(property, partner), "MAPPING", encode(mapping));
        Ok(self
            .items()
            .transact(vec![Write::put(T, item, Cond::None)], self.now_ts())
            .await?)
    }

    async fn settlement_entries(
        &self,
        property: &PropertyId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut out = Vec::new();
        let first = from.date_naive().with_day(1).unwrap_or(from.date_naive());
        let mut month = first;
        while month.and_hms_opt(0, 0, 0).map(|m| m.and_utc()) < Some(to) {
            let at = month.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
            let q = Query::gsi1(T, settle_pk(property, at)).between(ts(from), ts(to));
            for item in self.query_all(q).await? {
                out.push(decode::<LedgerEntry>(&item)?);
            }
            month = match month.checked_add_months(Months::new(1)) {
                Some(m) => m,
                None => break,
            };
        }
        out.sort_by(|a, b| {
            (a.activity.at, a.code.key(), a.activity.id).cmp(&(
                b.activity.at,
                b.code.key(),
                b.activity.id,
            ))
        });
        Ok(out)
    }

    async fn vouchers_by(
        &self,
        issuer: &PropertyId,
        by: &Lookup,
        limit: usize,
    ) -> Result<Vec<Voucher>, StoreError> {
        let q = Query::partition(T, lookup_pk(issuer, by)).limit(limit.max(1));
        let page = self.items().query(&q, self.now_ts()).await?;
        let keys: Vec<Key> = page
            .items
            .iter()
            .map(|i| {
                VoucherCode::lookup(&i.sk)
                    .map(|c| voucher_key(issuer, &c))
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            for item in self
                .items()
                .get_many(chunk, self.now_ts())
                .await?
                .into_iter()
                .flatten()
            {
                out.push(decode::<Voucher>(&item)?);
            }
        }
        // Newest first.
        out.sort_by(|a, b| b.issued_at.cmp(&a.issued_at).then(a.code.cmp(&b.code)));
        Ok(out)
    }

    async fn valid_until_through(
        &self,
        issuer: &PropertyId,
        through: NaiveDate,
    ) -> Result<Vec<VoucherCode>, StoreError> {
        let q = Query::partition(T, format!("EXPIRY#{issuer}"))
            .between("0000-00-00", format!("{through}#~"));
        self.query_all(q)
            .await?
            .iter()
            .map(|i| {
                let key = i.sk.split_once('#').map_or("", |(_, k)| k);
                VoucherCode::lookup(key).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }
}
