//! Erasures: the receipts (`ErasureStore`) and the run that rewrites every
//! record naming a person (`Store::erase_person`), step by step so that a
//! retry after a crash at any write finishes the same erasure.
//!
//! | item | table | pk | sk | notes |
//! |---|---|---|---|---|
//! | receipt | platform | `ERASURE#<p>` | `<erasure id>` | counts, pending systems; the markers only while in progress |
//! | open erasure | platform | `ERASURE#<p>` | `OPEN#<email hash>` | → id, while in progress |
//! | guest's erasure | platform | `ERASURE#<p>` | `GUEST#<guest id>` | → id (the Cloudbeds push clears `pending`) |
//! | erasure key | platform | `ERASUREKEY` | `KEY` | generated once when `GUESTHUB_ERASURE_KEY` is not set |
//! | order contact index | commerce | `PERSONORDER#<p>#<sha256(email)>` | `<order id>` | written with the order |
//! | roster suppression | roster | `ROSTER#<p>` | `SUPPRESS#<email hash>` | later club files skip the email |

use std::collections::BTreeSet;

use async_trait::async_trait;
use domain::erasure::{
    ErasedCounts, Erasure, ErasureStatus, ErasureStore, Keyed, PENDING_CLOUDBEDS, Person, Step,
    normalise, scrub_body,
};
use domain::guest::ports::GuestStore;
use domain::guest::{Guest, GuestId};
use domain::loyalty::ports::LoyaltyStore;
use domain::{Email, PropertyId, StoreError};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Attempt, Cond, Item, Query, Retry, Store, Table, TxError, Write, decode, encode};

/// Rewrites of one item tried before giving up (each lost race re-reads).
const ATTEMPTS: u32 = 16;

/// How far back the settlement index is walked for the person's stays on
/// vouchers others bought. A property keeps no record of its first month
/// with activity, so the walk is a bounded window: ten years, the longest
/// bookkeeping retention that applies to the settlement records (seven
/// years in Austria, ten in Germany), through next month (a clock ahead).
const STAY_MONTHS_BACK: u32 = 120;

fn erasure_pk(p: &PropertyId) -> String {
    format!("ERASURE#{p}")
}

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The commerce index of orders naming an email (contact or ticket member).
pub fn person_order_pk(p: &PropertyId, email: &str) -> String {
    format!("PERSONORDER#{p}#{}", sha(&normalise(email)))
}

/// The roster's suppression item of an email hash.
pub fn suppression_sk(email_hash: &str) -> String {
    format!("SUPPRESS#{email_hash}")
}

/// How an item to rewrite is known to hold the person.
#[derive(Clone, Copy)]
enum Link<'a> {
    /// Found through the person's own keys (their vouchers, orders, guest).
    Keyed,
    /// One of many: rewritten only when it names the person's email, holds
    /// one of these (guest id, voucher code, order id) or an earlier
    /// attempt's token.
    Needs(&'a [String]),
    /// On a voucher someone else bought: rewritten only when a
    /// reservation's guest name is the person's whole name
    /// (`Person::stay_guest`) or it holds an earlier attempt's token.
    StayGuest,
}

/// The deployment's key for hashing personal values.
pub struct ErasureKey(Vec<u8>);

impl Keyed for ErasureKey {
    fn hash(&self, value: &str) -> String {
        let mut mac = <Hmac<sha2_hmac::Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// A property's suppressed emails.
pub struct Suppression {
    key: Option<ErasureKey>,
    hashes: BTreeSet<String>,
}

impl Suppression {
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    pub fn hash(&self, email: &Email) -> String {
        self.key
            .as_ref()
            .map(|k| k.hash(&normalise(email.as_str())))
            .unwrap_or_default()
    }

    pub fn contains(&self, email: &Email) -> bool {
        !self.hashes.is_empty() && self.hashes.contains(&self.hash(email))
    }
}

#[derive(Serialize, Deserialize)]
struct Pointer {
    id: String,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    key: String,
}

impl Store {
    /// `GUESTHUB_ERASURE_KEY` when set; otherwise a random key generated
    /// once and kept in the platform table.
    pub async fn erasure_key(&self) -> Result<ErasureKey, StoreError> {
        if let Ok(k) = std::env::var("GUESTHUB_ERASURE_KEY")
            && !k.trim().is_empty()
        {
            return Ok(ErasureKey(k.trim().as_bytes().to_vec()));
        }
        for _ in 0..3 {
            if let Some(i) = self
                .items()
                .get(Table::Platform, "ERASUREKEY", "KEY", self.now_ts())
                .await?
            {
                let k: StoredKey = decode(&i)?;
                return Ok(ErasureKey(k.key.into_bytes()));
            }
            let key = hex::encode(rand::random::<[u8; 32]>());
            let item = Item::new("ERASUREKEY", "KEY", encode(&StoredKey { key }));
            match self
                .items()
                .transact(
                    vec![Write::put(Table::Platform, item, Cond::Absent)],
                    self.now_ts(),
                )
                .await
            {
                Ok(()) | Err(TxError::Condition(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict)
    }

    /// The keyed hash of an email, as receipts and the suppression list keep it.
    pub async fn email_hash(&self, email: &Email) -> Result<String, StoreError> {
        Ok(self.erasure_key().await?.hash(&normalise(email.as_str())))
    }

    /// The property's roster suppression list (erased emails, as keyed
    /// hashes), read once per import.
    pub async fn suppression(&self, p: &PropertyId) -> Result<Suppression, StoreError> {
        let hashes: BTreeSet<String> = self
            .query_all(Query::partition(Table::Roster, format!("ROSTER#{p}")).prefix("SUPPRESS#"))
            .await?
            .into_iter()
            .map(|i| i.sk.trim_start_matches("SUPPRESS#").to_owned())
            .collect();
        let key = if hashes.is_empty() {
            None
        } else {
            Some(self.erasure_key().await?)
        };
        Ok(Suppression { key, hashes })
    }

    /// Takes an email off the property's suppression list. True when it was on it.
    pub async fn unsuppress(&self, p: &PropertyId, email: &Email) -> Result<bool, StoreError> {
        let h = self.email_hash(email).await?;
        let pk = format!("ROSTER#{p}");
        let sk = suppression_sk(&h);
        let was = self
            .items()
            .get(Table::Roster, &pk, &sk, self.now_ts())
            .await?
            .is_some();
        if was {
            self.items()
                .batch_delete(Table::Roster, vec![(pk, sk)])
                .await?;
        }
        Ok(was)
    }

    /// Index items for a new order (table `Commerce`): one per email it
    /// names (the contact, each ticket's member).
    pub fn person_order_items<T: Serialize>(
        &self,
        p: &PropertyId,
        order_id: &str,
        order: &T,
    ) -> Vec<Item> {
        let mut emails = BTreeSet::new();
        if let Ok(v) = serde_json::to_value(order) {
            collect_emails(&v, &mut emails);
        }
        emails
            .iter()
            .map(|e| Item::new(person_order_pk(p, e), order_id.to_owned(), "{}".into()))
            .collect()
    }

    /// Rewrites one item so nothing in it names the person: read, rewrite,
    /// write back on the version read; a lost race reads again (a
    /// concurrent redemption either commits first and is rewritten, or
    /// fails its own version check and re-reads the rewritten voucher).
    /// True when the item names the person now or did before.
    async fn scrub_item(
        &self,
        table: Table,
        pk: &str,
        sk: &str,
        person: &Person<'_>,
        token: &str,
        link: Link<'_>,
    ) -> Result<bool, StoreError> {
        let mut retry = Retry::new(ATTEMPTS);
        while retry.next().await.is_some() {
            let Some(item) = self.items().get(table, pk, sk, self.now_ts()).await? else {
                return Ok(false);
            };
            let linked = match link {
                Link::Keyed => true,
                Link::Needs(needles) => {
                    item.body.contains(token)
                        || needles.iter().any(|n| item.body.contains(n.as_str()))
                        || serde_json::from_str::<serde_json::Value>(&item.body)
                            .is_ok_and(|v| person.linked(&v))
                }
                Link::StayGuest => stay_of(&item, person, token),
            };
            if !linked {
                return Ok(false);
            }
            let Some(body) = scrub_body(&item.body, person, token) else {
                return Ok(item.body.contains(token));
            };
            let version = item.version;
            let mut next = Item {
                body,
                version: version + 1,
                ..item
            };
            // Aggregates that carry their version in the body keep it in step.
            if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&next.body)
                && v.get("revision").and_then(serde_json::Value::as_i64) == Some(version)
            {
                v["revision"] = serde_json::Value::from(version + 1);
                next.body = v.to_string();
            }
            match self
                .commit(vec![Write::put(table, next, Cond::Version(version))])
                .await?
            {
                Attempt::Committed => return Ok(true),
                Attempt::Lost(_) => {}
            }
        }
        Err(StoreError::Conflict)
    }

    /// Erases a person (found by email, or by guest id for a guest without
    /// one) in one property, or resumes the erasure of the same person that
    /// a failure interrupted. Answers the receipt as stored.
    pub async fn erase_person(
        &self,
        p: &PropertyId,
        email: Option<&Email>,
        guest_id: Option<&GuestId>,
    ) -> Result<Erasure, StoreError> {
        let key = self.erasure_key().await?;
        let subject = match (email, guest_id) {
            (Some(e), _) => normalise(e.as_str()),
            (None, Some(g)) => format!("guest:{g}"),
            (None, None) => return Err(StoreError::Corrupt("nobody to erase".into())),
        };
        let hash = key.hash(&subject);
        let mut e = match self.open_erasure(p, &hash).await? {
            Some(e) => e,
            None => {
                let fresh = Erasure::new(
                    uuid::Uuid::now_v7().to_string(),
                    p.clone(),
                    hash.clone(),
                    self.clock().now(),
                );
                match self.create_erasure(&fresh).await {
                    Ok(e) => e,
                    Err(StoreError::Conflict) => self
                        .open_erasure(p, &hash)
                        .await?
                        .ok_or(StoreError::Conflict)?,
                    Err(err) => return Err(err),
                }
            }
        };
        let token = e.token();

        // Who: the guest profile, and what the person's own records say.
        let guest = match (email, guest_id) {
            (_, Some(g)) => self.guest(p, g).await?,
            (Some(em), None) => match self.guest_by_email(p, em).await? {
                Some(g) => Some(g),
                None => match &e.guest {
                    Some(id) => self.guest(p, &GuestId(id.clone())).await?,
                    None => None,
                },
            },
            (None, None) => None,
        };
        let mut person = Person::new(&key, e.markers.clone());
        if let Some(g) = &guest {
            learn_guest(&mut person, g);
        }
        let email_str = email.map(|e| e.as_str().to_owned());
        let vouchers = match &email_str {
            Some(em) => self.voucher_partitions(p, em).await?,
            None => Vec::new(),
        };
        let mut orders = self.person_orders(p, email_str.as_deref()).await?;
        let memberships = self.membership_items(p).await?;
        for _ in 0..2 {
            for i in vouchers
                .iter()
                .flat_map(|(_, items)| items.iter())
                .chain(orders.iter().map(|(_, i)| i))
                .chain(memberships.iter())
            {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&i.body) {
                    person.learn_from(&v);
                }
            }
        }
        // The orders of the person's memberships (orders placed before the
        // order index existed are found this way too).
        for m in &memberships {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&m.body) else {
                continue;
            };
            let Some(id) = v["order_id"].as_str() else {
                continue;
            };
            if !person.linked(&v) || orders.iter().any(|(o, _)| o == id) {
                continue;
            }
            if let Some(o) = self
                .items()
                .get(
                    Table::Commerce,
                    &format!("ORDER#{p}#{id}"),
                    "ORDER",
                    self.now_ts(),
                )
                .await?
            {
                orders.push((id.to_owned(), o));
            }
        }
        let mut changed = false;
        if person.markers != e.markers && e.status == ErasureStatus::InProgress {
            e.markers = person.markers.clone();
            changed = true;
        }
        if let Some(g) = &guest
            && e.guest.is_none()
        {
            e.guest = Some(g.id.0.clone());
            if g.crm.cloudbeds_guest_id.is_some() && !g.crm.erasure_sent {
                e.pending.push(PENDING_CLOUDBEDS.to_owned());
            }
            self.items()
                .transact(
                    vec![Write::put(
                        Table::Platform,
                        Item::new(
                            erasure_pk(p),
                            format!("GUEST#{}", g.id),
                            encode(&Pointer { id: e.id.clone() }),
                        ),
                        Cond::None,
                    )],
                    self.now_ts(),
                )
                .await?;
            changed = true;
        }
        if changed {
            e = self.save_erasure(&e).await?;
        }

        // What ties a record of a shared partition (loyalty, stored
        // answers) to the person besides their email.
        let guest_needles: Vec<String> = guest
            .iter()
            .map(|g| g.id.0.clone())
            .chain(e.guest.clone())
            .collect();
        let answer_needles: Vec<String> = vouchers
            .iter()
            .flat_map(|(_, items)| items.iter())
            .filter(|i| i.sk == "VOUCHER")
            .filter_map(|i| {
                serde_json::from_str::<serde_json::Value>(&i.body)
                    .ok()
                    .and_then(|v| v["code"].as_str().map(str::to_owned))
            })
            .chain(orders.iter().map(|(id, _)| id.clone()))
            .collect();
        for step in Step::ALL {
            if e.is_done(step) {
                continue;
            }
            let mut found = ErasedCounts::default();
            match step {
                Step::Loyalty => {
                    if let Some(g) = &guest {
                        domain::loyalty::service::forget_unsent(self, p, &g.id).await?;
                    }
                    let chosen: Vec<String> = self
                        .export_state(p)
                        .await?
                        .open
                        .map(|o| o.plan.send)
                        .unwrap_or_default();
                    for pk in [
                        format!("LOYALTYREC#{p}"),
                        format!("LOYALTYHELD#{p}"),
                        format!("LOYALTY#{p}"),
                    ] {
                        let is_records = pk.starts_with("LOYALTYREC#");
                        for i in self.query_all(Query::partition(Table::Guests, &pk)).await? {
                            // A file already chosen is re-sent byte for byte;
                            // NetCarrots erases what it receives.
                            if is_records && chosen.contains(&i.sk) {
                                continue;
                            }
                            if self
                                .scrub_item(
                                    Table::Guests,
                                    &i.pk,
                                    &i.sk,
                                    &person,
                                    &token,
                                    Link::Needs(&guest_needles),
                                )
                                .await?
                                && is_records
                            {
                                found.loyalty_records += 1;
                            }
                        }
                    }
                }
                Step::Roster => {
                    if let Some(em) = &email_str {
                        let roster_pk = format!("ROSTER#{p}");
                        // Suppressed first: a file imported meanwhile skips it.
                        self.items()
                            .transact(
                                vec![Write::put(
                                    Table::Roster,
                                    Item::new(
                                        roster_pk.clone(),
                                        suppression_sk(&hash),
                                        "{}".into(),
                                    ),
                                    Cond::None,
                                )],
                                self.now_ts(),
                            )
                            .await?;
                        let gens = self
                            .query_all(Query::partition(Table::Roster, &roster_pk).prefix("GEN#"))
                            .await?;
                        let (mut keys, mut derived) = (Vec::new(), Vec::new());
                        for g in gens {
                            if g.body.contains("\"retired\"") {
                                continue;
                            }
                            let generation = g.sk.trim_start_matches("GEN#");
                            let entries = self
                                .query_all(
                                    Query::partition(
                                        Table::Roster,
                                        format!("GEN#{p}#{generation}"),
                                    )
                                    .prefix(format!("{em} ")),
                                )
                                .await?;
                            // With them their index entries and recorded
                            // changes (a change may name someone who left),
                            // deleted first: they are found from the entries.
                            for key in super::roster_repo::person_keys(p, generation, em, &entries)?
                            {
                                if key.0.starts_with("GEN#") {
                                    keys.push(key);
                                } else {
                                    derived.push(key);
                                }
                            }
                        }
                        self.items().batch_delete(Table::Roster, derived).await?;
                        found.roster_entries = keys.len() as u64;
                        if !keys.is_empty() {
                            // Counted before deleting: a retry finds none.
                            e.erased.roster_entries =
                                e.erased.roster_entries.max(found.roster_entries);
                            e = self.save_erasure(&e).await?;
                            self.items().batch_delete(Table::Roster, keys).await?;
                        }
                    }
                }
                Step::Orders => {
                    for (id, _) in &orders {
                        if self
                            .scrub_item(
                                Table::Commerce,
                                &format!("ORDER#{p}#{id}"),
                                "ORDER",
                                &person,
                                &token,
                                Link::Keyed,
                            )
                            .await?
                        {
                            found.orders += 1;
                        }
                    }
                }
                Step::Memberships => {
                    for i in &memberships {
                        if self
                            .scrub_item(
                                Table::Commerce,
                                &i.pk,
                                &i.sk,
                                &person,
                                &token,
                                Link::Needs(&[]),
                            )
                            .await?
                        {
                            found.memberships += 1;
                        }
                    }
                }
                Step::Vouchers => {
                    for (pk, items) in &vouchers {
                        // Ledger first, the voucher (which names the buyer) last.
                        let mut sks: Vec<&str> = items.iter().map(|i| i.sk.as_str()).collect();
                        sks.sort_by_key(|sk| *sk == "VOUCHER");
                        for sk in sks {
                            let named = self
                                .scrub_item(Table::Vouchers, pk, sk, &person, &token, Link::Keyed)
                                .await?;
                            if named && sk == "VOUCHER" {
                                found.vouchers += 1;
                            } else if named {
                                found.ledger_entries += 1;
                            }
                        }
                    }
                    // The person's stays on vouchers others bought: the
                    // redemptions and captures accepted here (settlement
                    // index) and the holds placed here.
                    for (pk, items) in self.stay_partitions(p, &vouchers, &person, &token).await? {
                        // Ledger first, the voucher (its holds) last.
                        let mut sks: Vec<&str> = items.iter().map(|i| i.sk.as_str()).collect();
                        sks.sort_by_key(|sk| *sk == "VOUCHER");
                        for sk in sks {
                            let named = self
                                .scrub_item(
                                    Table::Vouchers,
                                    &pk,
                                    sk,
                                    &person,
                                    &token,
                                    Link::StayGuest,
                                )
                                .await?;
                            if named && sk == "VOUCHER" {
                                found.vouchers += 1;
                            } else if named {
                                found.ledger_entries += 1;
                            }
                        }
                    }
                    // The pickup feed carries the buyer too: this property's
                    // own, and the copies of its orders in the feeds of the
                    // hotels that pick them up (their own orders stay theirs).
                    let mut feeds = vec![p.clone()];
                    if let Some(prop) = domain::ports::PropertyStore::property(self, p).await? {
                        feeds.extend(prop.orders_picked_up_by);
                    }
                    for feed in &feeds {
                        for i in self
                            .query_all(
                                Query::partition(Table::Vouchers, format!("ORDERS#{feed}"))
                                    .prefix("ORDER#"),
                            )
                            .await?
                        {
                            let issued_here = feed == p
                                || serde_json::from_str::<serde_json::Value>(&i.body)
                                    .is_ok_and(|o| o["issuer"].as_str() == Some(p.as_str()));
                            if issued_here {
                                self.scrub_item(
                                    Table::Vouchers,
                                    &i.pk,
                                    &i.sk,
                                    &person,
                                    &token,
                                    Link::Needs(&[]),
                                )
                                .await?;
                            }
                        }
                    }
                    if let Some(em) = &email_str {
                        let index = format!("VFIND#{p}#EMAIL#{}", sha(em));
                        let keys: Vec<(String, String)> = self
                            .query_all(Query::partition(Table::Vouchers, &index))
                            .await?
                            .into_iter()
                            .map(|i| (i.pk, i.sk))
                            .collect();
                        if !keys.is_empty() {
                            e.finish(Step::Vouchers, &found);
                            e.done.retain(|s| *s != Step::Vouchers);
                            e = self.save_erasure(&e).await?;
                            self.items().batch_delete(Table::Vouchers, keys).await?;
                        }
                    }
                }
                Step::Guest => {
                    // Stored answers (replays) that name the person.
                    for i in self
                        .query_all(Query::gsi1(
                            Table::Platform,
                            super::platform_repo::stored_answers_index(p.as_str()),
                        ))
                        .await?
                    {
                        self.scrub_item(
                            Table::Platform,
                            &i.pk,
                            &i.sk,
                            &person,
                            &token,
                            Link::Needs(&answer_needles),
                        )
                        .await?;
                    }
                    // Events kept in the outbox and the deliveries made of
                    // them (a buyer's, contact's or flagged guest's name
                    // and email).
                    let mut kept = self
                        .query_all(Query::partition(Table::Platform, format!("EVT#{p}")))
                        .await?;
                    for sub in domain::events::EventStore::subscriptions(self, p).await? {
                        kept.extend(
                            self.query_all(Query::partition(
                                Table::Platform,
                                format!("WHD#{}", sub.id),
                            ))
                            .await?,
                        );
                    }
                    for i in kept {
                        let named = i.body.contains(token.as_str())
                            || serde_json::from_str::<serde_json::Value>(&i.body)
                                .is_ok_and(|v| person.linked(&v));
                        if named {
                            self.scrub_item(
                                Table::Platform,
                                &i.pk,
                                &i.sk,
                                &person,
                                &token,
                                Link::Keyed,
                            )
                            .await?;
                        }
                    }
                    if let Some(g) = &guest {
                        let notes = self.notes(p, &g.id).await?.len() as u64;
                        if notes > 0 {
                            e.erased.notes = e.erased.notes.max(notes);
                            e = self.save_erasure(&e).await?;
                        }
                        self.delete_notes(p, &g.id).await?;
                        found.guest_profiles = 1;
                        self.erase_guest_profile(p, &g.id).await?;
                    }
                }
            }
            e.finish(step, &found);
            e = self.save_erasure(&e).await?;
        }
        e.complete(self.clock().now());
        e = self.save_erasure(&e).await?;
        tracing::info!(property = %p, erasure = %e.id, "person erased");
        Ok(e)
    }

    async fn erase_guest_profile(&self, p: &PropertyId, id: &GuestId) -> Result<(), StoreError> {
        let mut retry = Retry::new(ATTEMPTS);
        while retry.next().await.is_some() {
            let Some(mut g) = self.guest(p, id).await? else {
                return Ok(());
            };
            if g.erased {
                return Ok(());
            }
            g.erase(self.clock().now());
            match self.save_guest(&g).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }

    /// The voucher partitions of vouchers this email bought.
    async fn voucher_partitions(
        &self,
        p: &PropertyId,
        email: &str,
    ) -> Result<Vec<(String, Vec<Item>)>, StoreError> {
        let index = format!("VFIND#{p}#EMAIL#{}", sha(email));
        let mut out = Vec::new();
        for i in self
            .query_all(Query::partition(Table::Vouchers, &index))
            .await?
        {
            let pk = format!("VOUCHER#{p}#{}", i.sk);
            let items = self
                .query_all(Query::partition(Table::Vouchers, &pk))
                .await?;
            out.push((pk, items));
        }
        Ok(out)
    }

    /// The voucher partitions, other than the person's own, whose items
    /// name the person as a stay's guest: those of the redemptions and
    /// captures the property accepted (and the settlement copies of its
    /// vouchers accepted elsewhere) in the last `STAY_MONTHS_BACK` months,
    /// and those of the holds it placed. Each with the items to rewrite.
    async fn stay_partitions(
        &self,
        p: &PropertyId,
        own: &[(String, Vec<Item>)],
        person: &Person<'_>,
        token: &str,
    ) -> Result<Vec<(String, Vec<Item>)>, StoreError> {
        let now = self.clock().now();
        let from = now
            .checked_sub_months(chrono::Months::new(STAY_MONTHS_BACK))
            .unwrap_or(now);
        let to = now
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(now);
        let mut pks: BTreeSet<String> = self
            .settlement_items(p, from, to)
            .await?
            .into_iter()
            .filter(|i| stay_of(i, person, token))
            .map(|i| i.pk)
            .collect();
        pks.extend(self.held_voucher_partitions(p).await?);
        let mut out = Vec::new();
        for pk in pks {
            if own.iter().any(|(o, _)| *o == pk) {
                continue;
            }
            let items: Vec<Item> = self
                .query_all(Query::partition(Table::Vouchers, &pk))
                .await?
                .into_iter()
                .filter(|i| stay_of(i, person, token))
                .collect();
            if !items.is_empty() {
                out.push((pk, items));
            }
        }
        Ok(out)
    }

    /// Orders naming the email (from the order index) with their items.
    async fn person_orders(
        &self,
        p: &PropertyId,
        email: Option<&str>,
    ) -> Result<Vec<(String, Item)>, StoreError> {
        let Some(email) = email else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for i in self
            .query_all(Query::partition(Table::Commerce, person_order_pk(p, email)))
            .await?
        {
            if let Some(o) = self
                .items()
                .get(
                    Table::Commerce,
                    &format!("ORDER#{p}#{}", i.sk),
                    "ORDER",
                    self.now_ts(),
                )
                .await?
            {
                out.push((i.sk, o));
            }
        }
        Ok(out)
    }

    /// Every membership of the property (live and test).
    async fn membership_items(&self, p: &PropertyId) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        for index in [format!("MEMBERSHIPS#{p}"), format!("TESTMEMBERSHIPS#{p}")] {
            out.extend(self.query_all(Query::gsi1(Table::Commerce, index)).await?);
        }
        Ok(out)
    }

    /// The Cloudbeds push of a guest's erasure is done: its receipt's
    /// `pending` loses `cloudbeds`.
    pub async fn erasure_pushed(&self, p: &PropertyId, guest: &GuestId) -> Result<(), StoreError> {
        let Some(ptr) = self
            .items()
            .get(
                Table::Platform,
                &erasure_pk(p),
                &format!("GUEST#{guest}"),
                self.now_ts(),
            )
            .await?
        else {
            return Ok(());
        };
        let ptr: Pointer = decode(&ptr)?;
        let mut retry = Retry::new(ATTEMPTS);
        while retry.next().await.is_some() {
            let Some(mut e) = self.erasure(p, &ptr.id).await? else {
                return Ok(());
            };
            if !e.clear_pending(PENDING_CLOUDBEDS) {
                return Ok(());
            }
            match self.save_erasure(&e).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict) => {}
                Err(err) => return Err(err),
            }
        }
        Err(StoreError::Conflict)
    }

    /// The receipt of a guest's erasure, if one was made.
    pub async fn guest_erasure(
        &self,
        p: &PropertyId,
        guest: &GuestId,
    ) -> Result<Option<Erasure>, StoreError> {
        match self
            .items()
            .get(
                Table::Platform,
                &erasure_pk(p),
                &format!("GUEST#{guest}"),
                self.now_ts(),
            )
            .await?
        {
            Some(i) => {
                let ptr: Pointer = decode(&i)?;
                self.erasure(p, &ptr.id).await
            }
            None => Ok(None),
        }
    }
}

/// What one retention run anonymised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionSummary {
    pub orders: u64,
    pub memberships: u64,
    pub loyalty_records: u64,
}

impl Store {
    /// The property's retention (`retention_days`, off when unset): order
    /// and membership contacts anonymised `days` after their last visit or
    /// expiry, delivered loyalty records' personal fields `days` after
    /// delivery. Each person becomes the token of their email, as an
    /// erasure would make them. Safe to run again (nothing left to change).
    pub async fn apply_retention(
        &self,
        property: &domain::Property,
    ) -> Result<RetentionSummary, StoreError> {
        let mut sum = RetentionSummary::default();
        let Some(days) = property.retention_days.filter(|d| *d > 0) else {
            return Ok(sum);
        };
        let p = &property.id;
        let now = self.clock().now();
        let today = domain::time::local_date(property.time_zone, now);
        let key = self.erasure_key().await?;
        for m in self.membership_items(p).await? {
            let Ok(body) = serde_json::from_str::<serde_json::Value>(&m.body) else {
                continue;
            };
            let mut last = body["expires_on"]
                .as_str()
                .and_then(|d| d.parse::<chrono::NaiveDate>().ok());
            for b in self
                .query_all(Query::partition(Table::Commerce, &m.pk).prefix("BOOKING#"))
                .await?
            {
                if let Ok(b) = decode::<super::checkout_repo::Booking>(&b) {
                    last = last.max(Some(domain::time::local_date(property.time_zone, b.at)));
                }
            }
            if last.is_some_and(|l| domain::erasure::retention_due(l, days, today))
                && self
                    .anonymise_item(&key, Table::Commerce, &m.pk, &m.sk)
                    .await?
            {
                sum.memberships += 1;
            }
        }
        for o in self
            .query_all(Query::gsi1(
                Table::Commerce,
                super::checkout_repo::orders_index(p),
            ))
            .await?
        {
            let Ok(body) = serde_json::from_str::<serde_json::Value>(&o.body) else {
                continue;
            };
            let created = body["order"]["created_at"]
                .as_str()
                .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
                .map(|t| domain::time::local_date(property.time_zone, t));
            let last = domain::erasure::last_visit(&body["order"]).max(created);
            if last.is_some_and(|l| domain::erasure::retention_due(l, days, today))
                && self
                    .anonymise_item(&key, Table::Commerce, &o.pk, &o.sk)
                    .await?
            {
                sum.orders += 1;
            }
        }
        for r in self
            .query_all(Query::partition(Table::Guests, format!("LOYALTYREC#{p}")))
            .await?
        {
            let Ok(rec) = serde_json::from_str::<domain::loyalty::ExportRecord>(&r.body) else {
                continue;
            };
            if rec.exported_in.is_none() {
                continue;
            }
            let delivered = rec.delivered_at.unwrap_or(rec.created_at);
            let day = domain::time::local_date(property.time_zone, delivered);
            if domain::erasure::retention_due(day, days, today)
                && self
                    .anonymise_item(&key, Table::Guests, &r.pk, &r.sk)
                    .await?
            {
                sum.loyalty_records += 1;
            }
        }
        if sum != RetentionSummary::default() {
            tracing::info!(property = %p, orders = sum.orders, memberships = sum.memberships,
                loyalty_records = sum.loyalty_records, "retention applied");
        }
        Ok(sum)
    }

    /// Rewrites one item so none of the people it names (by their emails)
    /// is named any more. True when it changed.
    async fn anonymise_item(
        &self,
        key: &ErasureKey,
        table: Table,
        pk: &str,
        sk: &str,
    ) -> Result<bool, StoreError> {
        let Some(item) = self.items().get(table, pk, sk, self.now_ts()).await? else {
            return Ok(false);
        };
        let Ok(body) = serde_json::from_str::<serde_json::Value>(&item.body) else {
            return Ok(false);
        };
        let mut changed = false;
        for email in domain::erasure::emails_in(&body) {
            let hash = key.hash(&email);
            let mut person = Person::new(key, BTreeSet::from([hash.clone()]));
            person.learn_from(&body);
            let token = domain::erasure::token(&hash);
            // A body naming several people: each pass rewrites one.
            let before = self
                .items()
                .get(table, pk, sk, self.now_ts())
                .await?
                .map(|i| i.body);
            self.scrub_item(table, pk, sk, &person, &token, Link::Keyed)
                .await?;
            let after = self
                .items()
                .get(table, pk, sk, self.now_ts())
                .await?
                .map(|i| i.body);
            changed |= before != after;
        }
        Ok(changed)
    }
}

fn collect_emails(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                match x.as_str() {
                    Some(e) if k == "email" => {
                        out.insert(normalise(e));
                    }
                    _ => collect_emails(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_emails(x, out)),
        _ => {}
    }
}

/// Whether an item names the person as a stay's guest, or an earlier
/// attempt already put the token in its place.
fn stay_of(item: &Item, person: &Person<'_>, token: &str) -> bool {
    item.body.contains(token)
        || serde_json::from_str::<serde_json::Value>(&item.body)
            .is_ok_and(|v| person.stay_guest(&v))
}

fn learn_guest(person: &mut Person<'_>, g: &Guest) {
    for n in [&g.first_name, &g.last_name].into_iter().flatten() {
        person.learn_name(n);
    }
    if let (Some(f), Some(l)) = (&g.first_name, &g.last_name) {
        person.learn_name(&format!("{f} {l}"));
    }
    if let Some(ph) = &g.phone {
        person.learn_value(ph);
    }
    if let Some(b) = g.birth_date {
        person.learn_value(&b.format("%Y-%m-%d").to_string());
    }
    if let Some(d) = &g.document_number {
        person.learn_value(d);
    }
}

fn receipt_item(e: &Erasure) -> Item {
    Item::new(erasure_pk(&e.property), e.id.clone(), encode(e)).with_version(e.revision)
}

#[async_trait]
impl ErasureStore for Store {
    async fn open_erasure(
        &self,
        p: &PropertyId,
        email_hash: &str,
    ) -> Result<Option<Erasure>, StoreError> {
        let Some(i) = self
            .items()
            .get(
                Table::Platform,
                &erasure_pk(p),
                &format!("OPEN#{email_hash}"),
                self.now_ts(),
            )
            .await?
        else {
            return Ok(None);
        };
        let ptr: Pointer = decode(&i)?;
        Ok(self
            .erasure(p, &ptr.id)
            .await?
            .filter(|e| e.status == ErasureStatus::InProgress))
    }

    async fn create_erasure(&self, e: &Erasure) -> Result<Erasure, StoreError> {
        let mut e = e.clone();
        e.revision = 1;
        let open = Item::new(
            erasure_pk(&e.property),
            format!("OPEN#{}", e.email_hash),
            encode(&Pointer { id: e.id.clone() }),
        );
        self.run(vec![
            Write::put(Table::Platform, receipt_item(&e), Cond::Absent),
            Write::put(Table::Platform, open, Cond::Absent),
        ])
        .await?;
        Ok(e)
    }

    async fn save_erasure(&self, e: &Erasure) -> Result<Erasure, StoreError> {
        let mut next = e.clone();
        next.revision = e.revision + 1;
        let mut writes = vec![Write::put(
            Table::Platform,
            receipt_item(&next),
            Cond::Version(e.revision),
        )];
        if next.status == ErasureStatus::Erased {
            writes.push(Write::Delete {
                table: Table::Platform,
                pk: erasure_pk(&e.property),
                sk: format!("OPEN#{}", e.email_hash),
                cond: Cond::None,
            });
        }
        self.run(writes).await?;
        Ok(next)
    }

    async fn erasure(&self, p: &PropertyId, id: &str) -> Result<Option<Erasure>, StoreError> {
        if id.is_empty() || id.len() > 64 || id.contains('#') {
            return Ok(None);
        }
        match self
            .items()
            .get(Table::Platform, &erasure_pk(p), id, self.now_ts())
            .await?
        {
            Some(i) => {
                let mut e: Erasure = decode(&i)?;
                e.revision = i.version;
                Ok(Some(e))
            }
            None => Ok(None),
        }
    }
}
