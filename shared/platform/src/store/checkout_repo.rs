//! The catalogue, orders, memberships and capacity, in the `commerce` table.
//!
//! | item | pk | sk | notes |
//! |---|---|---|---|
//! | product | `PRODUCTS#<p>` | `<product id>` | the catalogue: one query lists it |
//! | order | `ORDER#<p>#<uuid>` | `ORDER` | the order, its request fingerprint and the rendered answer (same uuid + body → same bytes) |
//! | membership | `MEMBERSHIP#<p>#<reference>` | `MEMBERSHIP` | validity, contact, benefit uses (version-checked); `gsi1`: `MEMBERSHIPS#<p>` (test: `TESTMEMBERSHIPS#<p>`) / `<sold at, µs UTC>#<reference>` for the newest-first search |
//! | member activity | `MEMBERSHIP#<p>#<reference>` | `BOOKING#<order uuid>` | the bookings made with it |
//! | capacity counter | `CAPACITY#<p>#<product id>` | `<date>` (test orders: `TEST#<date>`) | seats sold and reservations' holds with their expiry (an expired hold counts for nothing and is dropped at the next write); changed only with a version condition in the order's transaction, so concurrent orders never overbook; test and live orders count apart |
//!
//! An order is one transaction: the order, its capacity counters, the
//! memberships it sells or redeems, and the gift-card redemptions of its
//! payment (the voucher ledger's own writes), and the events they announce
//! (`order.*`, `membership.*`, `voucher.redeemed`). If anything fails, nothing —
//! no seat, no benefit, no gift-card value — is taken.

use chrono::NaiveDate;
use domain::checkout::catalogue::Product;
pub use domain::checkout::membership::Booking;
use domain::checkout::membership::Membership;
pub use domain::checkout::order::{Seats, StoredOrder};
use domain::{PropertyId, StoreError};

use async_trait::async_trait;
use domain::checkout::ports::CheckoutStore;
use domain::events::announce;
use domain::idempotency::{IdempotencyPolicy, Lease, StoredResponse};
use domain::voucher::ports::Rule;
use domain::voucher::{Change, VoucherCode, VoucherError};

use super::items::{Cond, Cursor, Item, MAX_TRANSACTION_ITEMS, Query, Table, Write};
use super::{Attempt, Store, decode, encode};

const T: Table = Table::Commerce;

fn order_pk(p: &PropertyId, id: &str) -> String {
    format!("ORDER#{p}#{id}")
}

/// The `gsi1` listing of a property's orders (retention walks it).
pub fn orders_index(p: &PropertyId) -> String {
    format!("ORDERLIST#{p}")
}

fn membership_pk(p: &PropertyId, reference: &str) -> String {
    format!("MEMBERSHIP#{p}#{reference}")
}

fn capacity_pk(p: &PropertyId, product: &str) -> String {
    format!("CAPACITY#{p}#{product}")
}

/// The search index of a world's memberships.
fn memberships_index(p: &PropertyId, test: bool) -> String {
    if test {
        format!("TESTMEMBERSHIPS#{p}")
    } else {
        format!("MEMBERSHIPS#{p}")
    }
}

/// A membership's position in its index: newest sale last (read descending).
fn membership_position(m: &Membership) -> String {
    format!(
        "{}#{}",
        m.sold_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        m.reference
    )
}

/// A capacity counter's sort key: test orders count apart from live ones.
fn seats_sk(date: NaiveDate, test: bool) -> String {
    if test {
        format!("TEST#{date}")
    } else {
        date.to_string()
    }
}

/// Products and orders written before every amount was `Money` held bare
/// minor units for unit prices, club and promo discounts and applied
/// discounts. They are read in the currency those amounts always meant (the
/// product's, the line's unit price's); the next write stores the new shape.
mod legacy {
    use serde_json::{Value, json};

    fn money(v: &mut Value, currency: &Value) {
        if v.is_i64() {
            *v = json!({"amount": v.clone(), "currency": currency.clone()});
        }
    }

    fn discount(d: &mut Value, currency: &Value) {
        for k in ["amount_off", "fixed_price"] {
            if let Some(v) = d.get_mut(k) {
                money(v, currency);
            }
        }
    }

    pub fn product(body: &mut Value) {
        let currency = body["currency"].clone();
        if let Some(units) = body.get_mut("units").and_then(Value::as_array_mut) {
            for u in units {
                if let Some(p) = u.get_mut("price") {
                    money(p, &currency);
                }
            }
        }
        if let Some(d) = body.get_mut("discounts") {
            if let Some(m) = d.get_mut("member") {
                discount(m, &currency);
            }
            if let Some(tiers) = d.get_mut("tiers").and_then(Value::as_object_mut) {
                for t in tiers.values_mut() {
                    discount(t, &currency);
                }
            }
        }
        if let Some(codes) = body.get_mut("promo_codes").and_then(Value::as_array_mut) {
            for c in codes {
                if let Some(d) = c.get_mut("discount") {
                    discount(d, &currency);
                }
            }
        }
    }

    pub fn order(body: &mut Value) {
        if let Some(lines) = body
            .pointer_mut("/order/lines")
            .and_then(Value::as_array_mut)
        {
            for l in lines {
                let currency = l["unit_price"]["currency"].clone();
                if let Some(off) = l.get_mut("discount").and_then(|d| d.get_mut("amount_off")) {
                    money(off, &currency);
                }
            }
        }
    }
}

/// Decodes an item body; one in an older shape is upgraded first.
fn decode_upgraded<T: serde::de::DeserializeOwned>(
    item: &Item,
    upgrade: fn(&mut serde_json::Value),
) -> Result<T, StoreError> {
    decode(item).or_else(|first| {
        let mut v: serde_json::Value =
            serde_json::from_str(&item.body).map_err(|_| first.clone())?;
        upgrade(&mut v);
        serde_json::from_value(v).map_err(|_| first)
    })
}

/// Index entries one membership search reads at most.
pub const MEMBERSHIP_SEARCH_SCAN: usize = 2000;

/// A version condition for an item read at `version` (None: absent).
fn cond(version: Option<i64>) -> Cond {
    version.map_or(Cond::Absent, Cond::Version)
}

impl Store {
    pub async fn put_product(&self, p: &PropertyId, product: &Product) -> Result<(), StoreError> {
        let item = Item::new(format!("PRODUCTS#{p}"), product.id.clone(), encode(product));
        Ok(self
            .items()
            .transact(vec![Write::put(T, item, Cond::None)], self.now_ts())
            .await?)
    }

    pub async fn product(&self, p: &PropertyId, id: &str) -> Result<Option<Product>, StoreError> {
        match self
            .items()
            .get(T, &format!("PRODUCTS#{p}"), id, self.now_ts())
            .await?
        {
            Some(i) => decode_upgraded(&i, legacy::product).map(Some),
            None => Ok(None),
        }
    }

    pub async fn products(&self, p: &PropertyId) -> Result<Vec<Product>, StoreError> {
        self.query_all(Query::partition(T, format!("PRODUCTS#{p}")))
            .await?
            .iter()
            .map(|i| decode_upgraded(i, legacy::product))
            .collect()
    }

    pub async fn stored_order(
        &self,
        p: &PropertyId,
        id: &str,
    ) -> Result<Option<(StoredOrder, i64)>, StoreError> {
        match self
            .items()
            .get(T, &order_pk(p, id), "ORDER", self.now_ts())
            .await?
        {
            Some(i) => Ok(Some((decode_upgraded(&i, legacy::order)?, i.version))),
            None => Ok(None),
        }
    }

    pub async fn membership(
        &self,
        p: &PropertyId,
        reference: &str,
    ) -> Result<Option<(Membership, i64)>, StoreError> {
        match self
            .items()
            .get(T, &membership_pk(p, reference), "MEMBERSHIP", self.now_ts())
            .await?
        {
            Some(i) => Ok(Some((decode(&i)?, i.version))),
            None => Ok(None),
        }
    }

    /// One page of a world's memberships, newest sale first, those `keep`
    /// accepts: at most `limit` of them, reading at most
    /// [`MEMBERSHIP_SEARCH_SCAN`] index entries after `after` (the `next`
    /// of a previous page). `next` is set when more may follow.
    pub async fn find_memberships(
        &self,
        p: &PropertyId,
        test: bool,
        after: Option<&str>,
        limit: usize,
        keep: &(dyn Fn(&Membership) -> bool + Send + Sync),
    ) -> Result<(Vec<Membership>, Option<String>), StoreError> {
        let index = memberships_index(p, test);
        let start = after.and_then(|pos| {
            let (_, reference) = pos.split_once('#')?;
            Some(Cursor {
                pk: membership_pk(p, reference),
                sk: "MEMBERSHIP".into(),
                gsi1: Some((index.clone(), pos.to_owned())),
            })
        });
        let mut q = Query::gsi1(T, index.clone())
            .descending()
            .limit(100)
            .after(start);
        let (mut out, mut scanned) = (Vec::new(), 0usize);
        loop {
            let page = self.items().query(&q, self.now_ts()).await?;
            let count = page.items.len();
            for (n, i) in page.items.iter().enumerate() {
                scanned += 1;
                let m: Membership = decode(i)?;
                let position = membership_position(&m);
                if keep(&m) {
                    out.push(m);
                }
                let last = n + 1 == count && page.next.is_none();
                if out.len() >= limit || scanned >= MEMBERSHIP_SEARCH_SCAN {
                    return Ok((out, (!last).then_some(position)));
                }
            }
            match page.next {
                Some(c) => q = q.after(Some(c)),
                None => return Ok((out, None)),
            }
        }
    }

    pub async fn bookings(
        &self,
        p: &PropertyId,
        reference: &str,
    ) -> Result<Vec<Booking>, StoreError> {
        self.query_all(Query::partition(T, membership_pk(p, reference)).prefix("BOOKING#"))
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    /// Seats sold for a product on a date in one world (test or live),
    /// with the counter's version.
    pub async fn seats(
        &self,
        p: &PropertyId,
        product: &str,
        date: NaiveDate,
        test: bool,
    ) -> Result<(Seats, Option<i64>), StoreError> {
        match self
            .items()
            .get(
                T,
                &capacity_pk(p, product),
                &seats_sk(date, test),
                self.now_ts(),
            )
            .await?
        {
            Some(i) => Ok((decode(&i)?, Some(i.version))),
            None => Ok((Seats::default(), None)),
        }
    }
}

/// One order attempt's writes (see [`CheckoutStore`]).
#[derive(Default)]
pub struct OrderTx {
    writes: Vec<Write>,
    /// What the order announces; one outbox entry at commit.
    events: Vec<domain::events::Event>,
    /// A new order's per-email index entries (for an erasure): in the
    /// order's transaction when they fit, else put right after it.
    index: Vec<Item>,
}

impl OrderTx {
    /// Another repository's write joining the order's transaction (an OCTO
    /// booking confirmed as the order).
    pub(crate) fn push(&mut self, w: Write) {
        self.writes.push(w);
    }
}

#[async_trait]
impl CheckoutStore for Store {
    type Tx = OrderTx;

    fn put_order(
        &self,
        tx: &mut OrderTx,
        p: &PropertyId,
        order: &StoredOrder,
        version: Option<i64>,
    ) {
        let item = Item::new(order_pk(p, &order.order.id), "ORDER", encode(order))
            .with_version(version.map_or(1, |v| v + 1))
            .with_gsi1(orders_index(p), &order.order.id);
        tx.writes.insert(0, Write::put(T, item, cond(version)));
        tx.events
            .extend(announce::order(p, &order.order, version.is_none()));
        if version.is_none() {
            // A new order is found by the emails it names (an erasure).
            tx.index = self.person_order_items(p, &order.order.id, &order.order);
        }
    }

    fn put_membership(
        &self,
        tx: &mut OrderTx,
        p: &PropertyId,
        m: &Membership,
        version: Option<i64>,
    ) {
        let item = Item::new(membership_pk(p, &m.reference), "MEMBERSHIP", encode(m))
            .with_gsi1(memberships_index(p, m.test_mode), membership_position(m))
            .with_version(version.map_or(1, |v| v + 1));
        tx.writes.push(Write::put(T, item, cond(version)));
        if version.is_none() {
            tx.events.push(announce::membership(p, m));
        }
    }

    fn put_booking(
        &self,
        tx: &mut OrderTx,
        p: &PropertyId,
        reference: &str,
        b: &Booking,
        create: bool,
    ) {
        let sk = format!("BOOKING#{}", b.order_id);
        let item = Item::new(membership_pk(p, reference), sk, encode(b));
        let cond = if create { Cond::Absent } else { Cond::None };
        tx.writes.push(Write::put(T, item, cond));
    }

    fn put_seats(
        &self,
        tx: &mut OrderTx,
        p: &PropertyId,
        product: &str,
        date: NaiveDate,
        test: bool,
        seats: Seats,
        version: Option<i64>,
    ) {
        let item = Item::new(
            capacity_pk(p, product),
            seats_sk(date, test),
            encode(&seats),
        )
        .with_version(version.map_or(1, |v| v + 1));
        tx.writes.push(Write::put(T, item, cond(version)));
    }

    async fn plan_gift_card(
        &self,
        tx: &mut OrderTx,
        issuer: &PropertyId,
        code: &VoucherCode,
        redemption: Option<&str>,
        rule: &Rule<'_>,
    ) -> Result<Change, VoucherError> {
        let (change, writes) = self.plan_change(issuer, code, redemption, rule).await?;
        tx.writes.extend(writes);
        Ok(change)
    }

    fn put_answer(
        &self,
        tx: &mut OrderTx,
        lease: &Lease,
        answer: &StoredResponse,
        policy: IdempotencyPolicy,
    ) {
        tx.writes
            .push(self.idempotency_completion(lease, answer, policy));
    }

    async fn commit_order(&self, tx: OrderTx) -> Result<bool, StoreError> {
        let OrderTx {
            mut writes,
            events,
            index,
        } = tx;
        writes.extend(super::event_repo::outbox(&events));
        if writes.len() + index.len() <= MAX_TRANSACTION_ITEMS {
            writes.extend(index.into_iter().map(|i| Write::put(T, i, Cond::None)));
            return Ok(self.commit(writes).await? == Attempt::Committed);
        }
        // A large group order: the index does not fit beside it. The order
        // commits alone and its index follows (plain puts, safe to repeat).
        if self.commit(writes).await? != Attempt::Committed {
            return Ok(false);
        }
        if let Err(e) = self.items().batch_put(T, index).await {
            tracing::warn!(error = %e, "an order's erasure index was not written; an erasure finds the order through its memberships only");
        }
        Ok(true)
    }
}
