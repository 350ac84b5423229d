//! Vouchers, their ledger, holds, the pickup feed and settlement, in the
//! `vouchers` table.
//!
//! | item | pk | sk | gsi1 |
//! |---|---|---|---|
//! | code → issuer (the one global lookup; no personal data) | `CODE#<code key>` | `CODE` | — |
//! | voucher | `VOUCHER#<issuer>#<code key>` | `VOUCHER` | — |
//! | ledger activity | `VOUCHER#<issuer>#<code key>` | `ACT#<seq:010>` | redeem/capture/reverse: `SETTLE#<accepting property>#<YYYY-MM>` / `<at, µs UTC>#<code key>#<seq:010>` |
//! | issuer's settlement copy (accepted elsewhere) | `VOUCHER#<issuer>#<code key>` | `XSET#<seq:010>` | `SETTLE#<issuer>#<YYYY-MM>` / as above |
//! | redemption (reversible remainder) | `VOUCHER#<issuer>#<code key>` | `RED#<redemption id>` | — |
//! | hold location | `HOLD#<placing property>#<hold id>` | `HOLD` | — |
//! | expiry index | `EXPIRY#<issuer>` | `<valid_until>#<code key>` | — (TTL 3 days once written off) |
//! | pickup feed counter | `ORDERS#<issuer>` | `SEQ` (version = last sequence) | — |
//! | order | `ORDERS#<issuer>` | `ORDER#<seq:012>` | — |
//! | pickup cursor | `PICKUP#<property>#<partner id>` | `CURSOR` | — |
//! | article mapping | `PICKUP#<property>#<partner id>` | `MAPPING` | — |
//!
//! **Atomicity.** A change is one transaction: the voucher (conditioned on
//! the version read), its new ledger activities (conditioned absent), the
//! redemption or hold records it touches, and — when the request carried an
//! idempotency key — the stored response. When another change won the race
//! (condition failed on the voucher), the rule runs again on the fresh state
//! after a jittered back-off. When the condition failed on the idempotency
//! record, this attempt lost its lock: the stored record decides the answer.
//!
//! **Pickup never skips.** An order's sequence is allocated by a conditional
//! write of the feed counter in the same transaction as the order, so
//! sequences commit in order: once order n is readable, every order < n is.
//! A partner's cursor only moves forward, and never beyond the newest order.

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Months, NaiveDate, SecondsFormat, Utc};
use domain::idempotency::decide_existing;
use domain::voucher::pickup::{ArticleMapping, Order};
use domain::voucher::ports::{Committed, Receipt, Rule, VoucherStore};
use domain::voucher::{
    Activity, Change, LedgerEntry, Redemption, Voucher, VoucherCode, VoucherError,
};
use domain::{PartnerId, PropertyId, StoreError};
use serde::{Deserialize, Serialize};

/// How long a written-off voucher stays in the expiry index: longer than
/// idempotency records are kept (48 h).
const WRITTEN_OFF_INDEX_SECONDS: i64 = 3 * 24 * 3600;

use super::items::{Cond, Item, Query, Table, TxError, Write};
use super::{Store, decode, encode};

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

fn settle_pk(property: &PropertyId, t: DateTime<Utc>) -> String {
    format!("SETTLE#{property}#{:04}-{:02}", t.year(), t.month())
}

#[derive(Serialize, Deserialize)]
struct CodeRecord {
    issuer: PropertyId,
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
/// the issuer's settlement copy.
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
        (Some(accepting), true) => {
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
    out
}

/// Full-jitter exponential back-off: 0..min(250 ms, 4 ms × 2^attempt).
use super::backoff;

fn busy() -> VoucherError {
    VoucherError::Store(StoreError::Unavailable(
        "the voucher is busy; retry with the same Idempotency-Key".into(),
    ))
}

impl Store {
    async fn get_item(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.items().get(T, pk, sk, self.now_ts()).await
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

impl Store {
    /// Reads the voucher (and redemption), runs `rule` and returns the new
    /// state with the writes that commit it — without sending them, so a
    /// caller (checkout's gift-card payments) can commit them in its own
    /// transaction. The voucher write is conditioned on the version read.
    pub async fn plan_change(
        &self,
        issuer: &PropertyId,
        code: &VoucherCode,
        redemption: Option<&str>,
        rule: &Rule<'_>,
    ) -> Result<(Change, Vec<Write>), VoucherError> {
        let pk = voucher_pk(issuer, code);
        let (voucher, version) = self
            .voucher_item(issuer, code)
            .await?
            .ok_or(VoucherError::NotFound { mistyped: false })?;
        let red = match redemption {
            Some(id) => {
                let item = self
                    .get_item(&pk, &format!("RED#{id}"))
                    .await?
                    .ok_or(VoucherError::RedemptionNotFound)?;
                Some((decode::<Redemption>(&item)?, item.version))
            }
            None => None,
        };
        let change = rule(&voucher, red.as_ref().map(|(r, _)| r), self.clock().now())?;
        let mut writes = vec![Write::put(
            T,
            voucher_item(&change.voucher, version + 1),
            Cond::Version(version),
        )];
        for a in &change.activities {
            writes.extend(ledger_writes(&change.voucher, a));
        }
        if let Some(r) = &change.redemption {
            let (cond, v) = match &red {
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
            let item = Item::new(hold_pk(&h.property, &h.id), "HOLD", encode(&rec));
            writes.push(Write::put(T, item, Cond::Absent));
        }
        Ok((change, writes))
    }
}

#[async_trait]
impl VoucherStore for Store {
    async fn issuer_of(&self, code: &VoucherCode) -> Result<Option<PropertyId>, StoreError> {
        match self.get_item(&code_pk(code), "CODE").await? {
            Some(i) => Ok(Some(decode::<CodeRecord>(&i)?.issuer)),
            None => Ok(None),
        }
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
        in_feed: bool,
        receipt: Option<Receipt<'_, Voucher>>,
    ) -> Result<Committed<Voucher>, VoucherError> {
        let base = &change.voucher;
        let orders = orders_pk(&base.issuer);
        for attempt in 0..MAX_ATTEMPTS {
            let mut v = base.clone();
            let mut feed = Vec::new();
            if in_feed {
                let current = self.get_item(&orders, "SEQ").await?;
                let (cond, next) = match &current {
                    Some(i) => (Cond::Version(i.version), i.version as u64 + 1),
                    None => (Cond::Absent, 1),
                };
                v.order_seq = Some(next);
                let mut order = Order::of(&v);
                order.seq = next;
                feed.push(Write::put(
                    T,
                    Item::new(orders.clone(), "SEQ", "{}".into()).with_version(next as i64),
                    cond,
                ));
                feed.push(Write::put(
                    T,
                    Item::new(orders.clone(), order_sk(next), encode(&order)),
                    Cond::Absent,
                ));
            }
            let code_item = Item::new(
                code_pk(&v.code),
                "CODE",
                encode(&CodeRecord {
                    issuer: v.issuer.clone(),
                }),
            );
            // Order matters: 0 = code, 1 = voucher, 2 = feed counter.
            let mut writes = vec![
                Write::put(T, code_item, Cond::Absent),
                Write::put(T, voucher_item(&v, 1), Cond::Absent),
            ];
            let counter_at = (!feed.is_empty()).then_some(writes.len());
            writes.extend(feed);
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
            if let Some(r) = &receipt {
                let stored = domain::idempotency::StoredResponse {
                    status: r.status,
                    body: (r.render)(&v),
                };
                writes.push(self.idempotency_completion(r.lease, &stored, Default::default()));
            }
            let last = writes.len() - 1;
            match self.items().transact(writes, self.now_ts()).await {
                Ok(()) => return Ok(Committed::Applied(v)),
                Err(TxError::Condition(i)) => {
                    if let Some(r) = receipt.as_ref().filter(|_| i == last) {
                        return self
                            .lost_lock(&r.lease.record_id, &r.lease.fingerprint)
                            .await;
                    }
                    if i <= 1 {
                        return Err(VoucherError::CodeTaken);
                    }
                    // The feed counter moved: another sale took the sequence.
                    tracing::debug!(attempt, at = ?counter_at, "pickup feed moved; retrying");
                    backoff(attempt).await;
                }
                Err(TxError::Contention) => backoff(attempt).await,
                Err(TxError::Store(e)) => return Err(e.into()),
            }
        }
        Err(busy())
    }

    async fn change(
        &self,
        issuer: &PropertyId,
        code: &VoucherCode,
        redemption: Option<&str>,
        rule: &Rule<'_>,
        receipt: Option<Receipt<'_, Change>>,
    ) -> Result<Committed<Change>, VoucherError> {
        for attempt in 0..MAX_ATTEMPTS {
            let (change, mut writes) = self.plan_change(issuer, code, redemption, rule).await?;
            if let Some(r) = &receipt {
                let stored = domain::idempotency::StoredResponse {
                    status: r.status,
                    body: (r.render)(&change),
                };
                writes.push(self.idempotency_completion(r.lease, &stored, Default::default()));
            }
            let last = writes.len() - 1;
            match self.items().transact(writes, self.now_ts()).await {
                Ok(()) => return Ok(Committed::Applied(change)),
                Err(TxError::Condition(i)) if receipt.is_some() && i == last => {
                    let lease = receipt.as_ref().map(|r| r.lease).ok_or_else(busy)?;
                    return self.lost_lock(&lease.record_id, &lease.fingerprint).await;
                }
                // Another change won the race: run the rule on the new state.
                Err(TxError::Condition(_) | TxError::Contention) => backoff(attempt).await,
                Err(TxError::Store(e)) => return Err(e.into()),
            }
        }
        tracing::warn!(code = %code.masked(), "voucher change gave up after contention");
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
        for attempt in 0..MAX_ATTEMPTS {
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
            match self
                .items()
                .transact(vec![Write::put(T, item, cond)], self.now_ts())
                .await
            {
                Ok(()) => return Ok(cursor),
                Err(TxError::Condition(_) | TxError::Contention) => backoff(attempt).await,
                Err(TxError::Store(e)) => return Err(e.into()),
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
