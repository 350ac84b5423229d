//! Events (the outbox), webhook subscriptions and deliveries, in the
//! `platform` table.
//!
//! | item | pk | sk | gsi1 | notes |
//! |---|---|---|---|---|
//! | outbox entry: one transaction's events of one property | `EVT#<p>` | `<first event id>` | `EVTQ` / `<first event id>` until fanned out | written by the change's own transaction ([`outbox`]); TTL 30 days |
//! | subscription | `WHSUB#<p>` | `<subscription id>` | `WHSUBS` / `<p>#<id>` | the dispatcher lists every one through the index |
//! | delivery | `WHD#<subscription id>` | `<event id>` | `WHDQ#<subscription id>` / `<event id>` while pending | TTL 30 days after the event |
//!
//! Event and delivery ids are UUID v7, so every partition and queue reads
//! in the order the changes committed.

use async_trait::async_trait;
use domain::events::{
    Delivery, DeliveryStatus, Event, EventStore, MAX_SUBSCRIPTIONS, OutboxEntry, Subscription,
};
use domain::{PropertyId, StoreError};
use serde::{Deserialize, Serialize};

use super::items::{Cond, Item, Query, Table, Write};
use super::{Attempt, Store, decode, encode};

const T: Table = Table::Platform;
/// How long events and deliveries stay readable.
const KEEP_SECS: i64 = 30 * 86_400;
const QUEUE: &str = "EVTQ";
const ALL_SUBS: &str = "WHSUBS";

fn event_pk(p: &PropertyId) -> String {
    format!("EVT#{p}")
}

fn sub_pk(p: &PropertyId) -> String {
    format!("WHSUB#{p}")
}

fn delivery_pk(sub: &str) -> String {
    format!("WHD#{sub}")
}

fn delivery_queue(sub: &str) -> String {
    format!("WHDQ#{sub}")
}

#[derive(Serialize)]
struct EntryRef<'a> {
    events: &'a [Event],
}

#[derive(Deserialize)]
struct EntryBody {
    events: Vec<Event>,
}

/// One outbox item: `events` all of one property, the first one's id its key.
fn entry_item(events: &[Event], queued: bool) -> Item {
    let first = &events[0];
    let body = encode(&EntryRef { events });
    let item = Item::new(event_pk(&first.property), first.id.clone(), body)
        .with_expiry(first.occurred_at.timestamp() + KEEP_SECS);
    if queued {
        item.with_gsi1(QUEUE, first.id.clone())
    } else {
        item
    }
}

fn decode_entry(item: &Item) -> Result<OutboxEntry, StoreError> {
    let events = decode::<EntryBody>(item)?.events;
    if events.is_empty() {
        return Err(StoreError::Corrupt(format!(
            "{} {}: no events",
            item.pk, item.sk
        )));
    }
    Ok(OutboxEntry {
        events,
        version: item.version,
    })
}

/// The outbox writes of the events one change announces: add them to the
/// change's own transaction, so both commit or neither does. One item per
/// property named (almost always one), whatever the number of events.
pub fn outbox(events: &[Event]) -> Vec<Write> {
    let mut by_property: Vec<Vec<Event>> = Vec::new();
    for e in events {
        match by_property.iter_mut().find(|g| g[0].property == e.property) {
            Some(g) => g.push(e.clone()),
            None => by_property.push(vec![e.clone()]),
        }
    }
    by_property
        .iter()
        .map(|g| Write::put(T, entry_item(g, true), Cond::Absent))
        .collect()
}

fn sub_item(s: &Subscription) -> Item {
    Item::new(sub_pk(&s.property), s.id.clone(), encode(s))
        .with_gsi1(ALL_SUBS, format!("{}#{}", s.property, s.id))
}

fn delivery_item(d: &Delivery) -> Item {
    let item = Item::new(delivery_pk(&d.subscription), d.id.clone(), encode(d))
        .with_expiry(d.created_at.timestamp() + KEEP_SECS);
    if d.status == DeliveryStatus::Pending {
        item.with_gsi1(delivery_queue(&d.subscription), d.id.clone())
    } else {
        item
    }
}

impl Store {
    /// Commits version-checked writes: losing to a concurrent change is an
    /// answer (`false`, read again), not an error.
    async fn won(&self, writes: Vec<Write>) -> Result<bool, StoreError> {
        Ok(self.commit(writes).await? == Attempt::Committed)
    }
}

#[async_trait]
impl EventStore for Store {
    async fn add_subscription(&self, sub: &Subscription) -> Result<bool, StoreError> {
        let held = self
            .query_all(Query::partition(T, sub_pk(&sub.property)))
            .await?
            .len();
        if held >= MAX_SUBSCRIPTIONS {
            return Ok(false);
        }
        self.run(vec![Write::put(T, sub_item(sub), Cond::Absent)])
            .await?;
        Ok(true)
    }

    async fn subscription(
        &self,
        property: &PropertyId,
        id: &str,
    ) -> Result<Option<(Subscription, i64)>, StoreError> {
        match self
            .items()
            .get(T, &sub_pk(property), id, self.now_ts())
            .await?
        {
            Some(i) => Ok(Some((decode(&i)?, i.version))),
            None => Ok(None),
        }
    }

    async fn subscriptions(&self, property: &PropertyId) -> Result<Vec<Subscription>, StoreError> {
        self.query_all(Query::partition(T, sub_pk(property)))
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    async fn all_subscriptions(&self) -> Result<Vec<(Subscription, i64)>, StoreError> {
        self.query_all(Query::gsi1(T, ALL_SUBS))
            .await?
            .iter()
            .map(|i| decode(i).map(|s| (s, i.version)))
            .collect()
    }

    async fn save_subscription(
        &self,
        sub: &Subscription,
        version: i64,
    ) -> Result<bool, StoreError> {
        let item = sub_item(sub).with_version(version + 1);
        self.won(vec![Write::put(T, item, Cond::Version(version))])
            .await
    }

    async fn delete_subscription(
        &self,
        property: &PropertyId,
        id: &str,
    ) -> Result<bool, StoreError> {
        let w = Write::Delete {
            table: T,
            pk: sub_pk(property),
            sk: id.to_owned(),
            cond: Cond::Present,
        };
        match self.run(vec![w]).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Ok(false),
            Err(e) => return Err(e),
        }
        // Its pending deliveries leave the queue; the records stay
        // readable until they expire.
        let pending = self
            .query_all(Query::gsi1(T, delivery_queue(id)))
            .await?
            .into_iter()
            .map(|i| (i.pk, i.sk))
            .collect::<Vec<_>>();
        for chunk in pending.chunks(super::items::MAX_BATCH_ITEMS) {
            self.items().batch_delete(T, chunk.to_vec()).await?;
        }
        Ok(true)
    }

    async fn announce(&self, event: &Event) -> Result<(), StoreError> {
        self.run(outbox(std::slice::from_ref(event))).await
    }

    async fn undispatched(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let page = self
            .items()
            .query(&Query::gsi1(T, QUEUE).limit(limit), self.now_ts())
            .await?;
        page.items.iter().map(decode_entry).collect()
    }

    async fn fan_out(
        &self,
        entry: &OutboxEntry,
        deliveries: &[Delivery],
    ) -> Result<bool, StoreError> {
        let mark = Write::put(
            T,
            entry_item(&entry.events, false).with_version(entry.version + 1),
            Cond::Version(entry.version),
        );
        let puts = |ds: &[Delivery]| {
            ds.iter()
                .map(|d| Write::put(T, delivery_item(d), Cond::Absent))
                .collect::<Vec<_>>()
        };
        if deliveries.len() < super::items::MAX_TRANSACTION_ITEMS {
            let mut writes = vec![mark];
            writes.extend(puts(deliveries));
            return self.won(writes).await;
        }
        // More than one transaction holds: the deliveries first (each
        // written once: one already there is left as it is), then the mark.
        for chunk in deliveries.chunks(super::items::MAX_TRANSACTION_ITEMS) {
            if !self.won(puts(chunk)).await? {
                for w in puts(chunk) {
                    self.won(vec![w]).await?;
                }
            }
        }
        self.won(vec![mark]).await
    }

    async fn events_after(
        &self,
        property: &PropertyId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let q = Query::partition(T, event_pk(property)).limit(limit);
        let q = match after {
            // Ids are fixed-width hex with dashes: every later id sorts
            // above `<id>!` and below `~`.
            Some(id) => q.between(format!("{id}!"), "~"),
            None => q,
        };
        let mut out = Vec::new();
        for i in self.items().query(&q, self.now_ts()).await?.items {
            out.extend(decode_entry(&i)?.events);
        }
        Ok(out)
    }

    async fn pending_deliveries(
        &self,
        subscription: &str,
        limit: usize,
    ) -> Result<Vec<(Delivery, i64)>, StoreError> {
        let page = self
            .items()
            .query(
                &Query::gsi1(T, delivery_queue(subscription)).limit(limit),
                self.now_ts(),
            )
            .await?;
        page.items
            .iter()
            .map(|i| decode(i).map(|d| (d, i.version)))
            .collect()
    }

    async fn deliveries(
        &self,
        subscription: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let before = before.filter(|b| !b.is_empty());
        let q = Query::partition(T, delivery_pk(subscription))
            .descending()
            .limit(limit + usize::from(before.is_some()));
        let q = match before {
            Some(id) => q.between("0", id.to_owned()),
            None => q,
        };
        let mut out: Vec<Delivery> = self
            .items()
            .query(&q, self.now_ts())
            .await?
            .items
            .iter()
            .map(decode)
            .collect::<Result<_, _>>()?;
        // `before` is exclusive.
        out.retain(|d| before.is_none_or(|b| d.id.as_str() != b));
        out.truncate(limit);
        Ok(out)
    }

    async fn delivery(
        &self,
        subscription: &str,
        id: &str,
    ) -> Result<Option<(Delivery, i64)>, StoreError> {
        match self
            .items()
            .get(T, &delivery_pk(subscription), id, self.now_ts())
            .await?
        {
            Some(i) => Ok(Some((decode(&i)?, i.version))),
            None => Ok(None),
        }
    }

    async fn save_delivery(&self, d: &Delivery, version: i64) -> Result<bool, StoreError> {
        let item = delivery_item(d).with_version(version + 1);
        self.won(vec![Write::put(T, item, Cond::Version(version))])
            .await
    }
}
