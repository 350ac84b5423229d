//! Guests, notes, stays, watchlists and Cloudbeds sync state, in the
//! `guests` table.
//!
//! | item | pk | sk | gsi1 |
//! |---|---|---|---|
//! | guest profile | `GUEST#<p>#<guest_id>` | `PROFILE` | `GUESTSYNC#<p>` / `<guest_id>` only while the sync has work for it (sparse) |
//! | note | `GUEST#<p>#<guest_id>` | `NOTE#<note_id>` (UUID v7) | — |
//! | stay | `GUEST#<p>#<guest_id>` | `STAY#<reservation_id>` | `STAYS#<p>` / `<departure>#<reservation_id>` |
//! | search key → guest | `GUESTFIND#<p>` | `<folded name, email or phone digits>\u{1f}<guest_id>` | — |
//! | email → guest | `GUESTEMAIL#<p>#<sha256(email)>` | `EMAIL` | — |
//! | Cloudbeds guest → guest | `GUESTCRM#<p>#<cloudbeds_guest_id>` | `CRM` | — |
//! | watchlist | `WATCHLIST#<p>` | `WATCHLIST` | — |
//! | CRM connection | `CRM#<p>` | `CONNECTION` | `CRMCONNECTIONS` / `<p>` |
//! | sync cursor | `CRM#<p>` | `CURSOR` | — |
//! | webhook delivery (dedupe) | `CRM#<p>` | `HOOKEVENT#<sha256(body)>` | — (TTL 7 days) |
//! | refetch marker | `CRM#<p>` | `REFETCH#<guest\|reservation>#<id>` | — |
//! | sync lease | `CRM#<p>` | `LEASE` | — (TTL: the lease's end) |
//! | sync run | `CRMRUNS#<p>` | `<run id, UUID v7>` | — (TTL 90 days) |
//! | webhook token → property | `CRMHOOK#<sha256(token)>` | `HOOK` | — |
//!
//! Emails appear in keys only hashed, except in the search keys
//! (`domain::guest::search`: prefixes need the folded text), which are
//! written and removed in the same transaction as the profile, so an
//! erased profile leaves none. The email and Cloudbeds-id lookups
//! are written in the same transaction as the profile, conditionally, so
//! two guests never share an address or a Cloudbeds id.

use super::event_repo::outbox;
use async_trait::async_trait;
use domain::events::announce;
use domain::guest::ports::GuestStore;
use domain::guest::runs::{RUN_RETENTION_DAYS, SyncRun};
use domain::guest::screening::Watchlist;
use domain::guest::{CrmConnection, Guest, GuestId, Note, RefetchTarget, Stay, SyncCursor, search};
use domain::{Email, PropertyId, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::items::{Cond, Item, Query, Table, TxError, Write};
use super::{Store, decode, encode};

const T: Table = Table::Guests;
/// How long a webhook delivery is remembered for deduplication.
const HOOK_DEDUPE_SECONDS: i64 = 7 * 24 * 3600;

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn guest_pk(p: &PropertyId, g: &GuestId) -> String {
    format!("GUEST#{p}#{g}")
}

fn email_pk(p: &PropertyId, e: &Email) -> String {
    format!("GUESTEMAIL#{p}#{}", sha(e.as_str()))
}

fn find_pk(p: &PropertyId) -> String {
    format!("GUESTFIND#{p}")
}

/// Separates a search key from the guest id in the sort key (never in a
/// key: control characters are not part of a query or a folded name).
const FIND_SEP: char = '\u{1f}';

fn crm_pk(p: &PropertyId, cloudbeds_id: &str) -> String {
    format!("GUESTCRM#{p}#{cloudbeds_id}")
}

/// `CRMRUNS#<p>` / `<run id, UUID v7>`: the sync's history, newest first
/// by a descending query, kept 90 days.
fn runs_pk(p: &PropertyId) -> String {
    format!("CRMRUNS#{p}")
}

fn state_pk(p: &PropertyId) -> String {
    format!("CRM#{p}")
}

#[derive(Serialize, Deserialize)]
struct Pointer {
    guest: GuestId,
}

#[derive(Serialize, Deserialize)]
struct HookOwner {
    property: PropertyId,
}

fn profile_item(g: &Guest) -> Item {
    let item = Item::new(guest_pk(&g.property, &g.id), "PROFILE", encode(g));
    if g.needs_sync() {
        item.with_gsi1(format!("GUESTSYNC#{}", g.property), g.id.as_str())
    } else {
        item
    }
}

fn pointer_item(pk: String, sk: &str, g: &GuestId) -> Item {
    Item::new(pk, sk, encode(&Pointer { guest: g.clone() }))
}

impl Store {
    /// A strongly consistent read of one item of the `guests` table.
    pub(super) async fn get_guests(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.items().get(T, pk, sk, self.now_ts()).await
    }

    async fn follow(
        &self,
        p: &PropertyId,
        pk: String,
        sk: &str,
    ) -> Result<Option<Guest>, StoreError> {
        match self.get_guests(&pk, sk).await? {
            Some(i) => {
                let ptr: Pointer = decode(&i)?;
                GuestStore::guest(self, p, &ptr.guest).await
            }
            None => Ok(None),
        }
    }

    /// The writes that move a unique lookup (email or Cloudbeds id) from
    /// `old` to `new`.
    fn move_pointer(
        writes: &mut Vec<Write>,
        old: Option<String>,
        new: Option<String>,
        sk: &str,
        g: &GuestId,
    ) {
        if old == new {
            return;
        }
        if let Some(pk) = old {
            writes.push(Write::Delete {
                table: T,
                pk,
                sk: sk.into(),
                cond: Cond::None,
            });
        }
        if let Some(pk) = new {
            writes.push(Write::put(T, pointer_item(pk, sk, g), Cond::Absent));
        }
    }

    /// The writes that move a guest's search keys from `before` to `next`
    /// (puts are unconditional: the same key written again is the same).
    fn move_search_keys(writes: &mut Vec<Write>, before: Option<&Guest>, next: &Guest) {
        let old = before.map(search::keys_of).unwrap_or_default();
        let new = search::keys_of(next);
        let pk = find_pk(&next.property);
        let sk = |k: &str| format!("{k}{FIND_SEP}{}", next.id);
        for k in old.iter().filter(|k| !new.contains(k)) {
            writes.push(Write::Delete {
                table: T,
                pk: pk.clone(),
                sk: sk(k),
                cond: Cond::None,
            });
        }
        // Every key is (re)written, so a profile saved before the search
        // keys existed gets them with its next save.
        for k in &new {
            let item = pointer_item(pk.clone(), &sk(k), &next.id);
            writes.push(Write::put(T, item, Cond::None));
        }
    }

    /// Ids of the guests whose search keys start with one of `prefixes`,
    /// each once, in id order.
    pub async fn find_guest_ids(
        &self,
        p: &PropertyId,
        prefixes: &[String],
    ) -> Result<Vec<GuestId>, StoreError> {
        let mut ids = std::collections::BTreeSet::new();
        for prefix in prefixes {
            let items = self
                .query_all(Query::partition(T, find_pk(p)).prefix(prefix.clone()))
                .await?;
            for i in items {
                let ptr: Pointer = decode(&i)?;
                ids.insert(ptr.guest);
            }
        }
        Ok(ids.into_iter().collect())
    }

    /// A transaction whose failed condition is `StoreError::Conflict`.
    pub(super) async fn run(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        match self.items().transact(writes, self.now_ts()).await {
            Ok(()) => Ok(()),
            Err(TxError::Condition(_)) => Err(StoreError::Conflict),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl GuestStore for Store {
    async fn guest(&self, p: &PropertyId, id: &GuestId) -> Result<Option<Guest>, StoreError> {
        match self.get_guests(&guest_pk(p, id), "PROFILE").await? {
            Some(i) => {
                let mut g: Guest = decode(&i)?;
                g.revision = i.version;
                Ok(Some(g))
            }
            None => Ok(None),
        }
    }

    async fn guest_by_email(&self, p: &PropertyId, e: &Email) -> Result<Option<Guest>, StoreError> {
        self.follow(p, email_pk(p, e), "EMAIL").await
    }

    async fn guest_by_cloudbeds_id(
        &self,
        p: &PropertyId,
        cloudbeds_guest_id: &str,
    ) -> Result<Option<Guest>, StoreError> {
        self.follow(p, crm_pk(p, cloudbeds_guest_id), "CRM").await
    }

    async fn create_guest(&self, g: &Guest) -> Result<Guest, StoreError> {
        let mut g = g.clone();
        g.revision = 1;
        let mut writes = vec![Write::put(T, profile_item(&g), Cond::Absent)];
        let email = g.email.as_ref().map(|e| email_pk(&g.property, e));
        Self::move_pointer(&mut writes, None, email, "EMAIL", &g.id);
        let crm = g
            .crm
            .cloudbeds_guest_id
            .as_deref()
            .map(|c| crm_pk(&g.property, c));
        Self::move_pointer(&mut writes, None, crm, "CRM", &g.id);
        Self::move_search_keys(&mut writes, None, &g);
        writes.extend(
            announce::screening(None, &g)
                .into_iter()
                .flat_map(|e| outbox(&[e])),
        );
        self.run(writes).await?;
        Ok(g)
    }

    async fn save_guest(&self, g: &Guest) -> Result<Guest, StoreError> {
        let pk = guest_pk(&g.property, &g.id);
        let current = self.get_guests(&pk, "PROFILE").await?;
        let Some(current) = current.filter(|c| c.version == g.revision) else {
            return Err(StoreError::Conflict);
        };
        let before: Guest = decode(&current)?;
        let mut next = g.clone();
        next.revision = g.revision + 1;
        let item = profile_item(&next).with_version(next.revision);
        let mut writes = vec![Write::put(T, item, Cond::Version(g.revision))];
        let p = &g.property;
        Self::move_pointer(
            &mut writes,
            before.email.as_ref().map(|e| email_pk(p, e)),
            next.email.as_ref().map(|e| email_pk(p, e)),
            "EMAIL",
            &g.id,
        );
        Self::move_pointer(
            &mut writes,
            before
                .crm
                .cloudbeds_guest_id
                .as_deref()
                .map(|c| crm_pk(p, c)),
            next.crm.cloudbeds_guest_id.as_deref().map(|c| crm_pk(p, c)),
            "CRM",
            &g.id,
        );
        Self::move_search_keys(&mut writes, Some(&before), &next);
        writes.extend(
            announce::screening(Some(&before), &next)
                .into_iter()
                .flat_map(|e| outbox(&[e])),
        );
        self.run(writes).await?;
        Ok(next)
    }

    async fn guests_needing_sync(&self, p: &PropertyId) -> Result<Vec<Guest>, StoreError> {
        // The index is eventually consistent: re-read each guest strongly
        // and keep only those that still need work.
        let listed = self
            .query_all(Query::gsi1(T, format!("GUESTSYNC#{p}")))
            .await?;
        let mut out = Vec::with_capacity(listed.len());
        for i in listed {
            let g: Guest = decode(&i)?;
            if let Some(g) = GuestStore::guest(self, p, &g.id).await?
                && g.needs_sync()
            {
                out.push(g);
            }
        }
        Ok(out)
    }

    async fn add_note(&self, p: &PropertyId, n: &Note) -> Result<(), StoreError> {
        let item = Item::new(guest_pk(p, &n.guest), format!("NOTE#{}", n.id), encode(n));
        self.run(vec![Write::put(T, item, Cond::Absent)]).await
    }

    async fn save_note(&self, p: &PropertyId, n: &Note) -> Result<(), StoreError> {
        let item = Item::new(guest_pk(p, &n.guest), format!("NOTE#{}", n.id), encode(n));
        self.run(vec![Write::put(T, item, Cond::None)]).await
    }

    async fn notes(&self, p: &PropertyId, g: &GuestId) -> Result<Vec<Note>, StoreError> {
        self.query_all(Query::partition(T, guest_pk(p, g)).prefix("NOTE#"))
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    async fn delete_notes(&self, p: &PropertyId, g: &GuestId) -> Result<(), StoreError> {
        let keys = self
            .query_all(Query::partition(T, guest_pk(p, g)).prefix("NOTE#"))
            .await?
            .into_iter()
            .map(|i| (i.pk, i.sk))
            .collect::<Vec<_>>();
        if keys.is_empty() {
            return Ok(());
        }
        self.items().batch_delete(T, keys).await
    }

    async fn save_stay(&self, s: &Stay) -> Result<(), StoreError> {
        let item = Item::new(
            guest_pk(&s.property, &s.guest),
            format!("STAY#{}", s.reservation_id),
            encode(s),
        )
        .with_gsi1(
            format!("STAYS#{}", s.property),
            format!("{}#{}", s.departure, s.reservation_id),
        );
        self.run(vec![Write::put(T, item, Cond::None)]).await
    }

    async fn stays(&self, p: &PropertyId, g: &GuestId) -> Result<Vec<Stay>, StoreError> {
        self.query_all(Query::partition(T, guest_pk(p, g)).prefix("STAY#"))
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    async fn watchlist(&self, p: &PropertyId) -> Result<Watchlist, StoreError> {
        match self
            .get_guests(&format!("WATCHLIST#{p}"), "WATCHLIST")
            .await?
        {
            Some(i) => decode(&i),
            None => Ok(Watchlist::default()),
        }
    }

    async fn save_watchlist(&self, p: &PropertyId, w: &Watchlist) -> Result<(), StoreError> {
        let item = Item::new(format!("WATCHLIST#{p}"), "WATCHLIST", encode(w));
        self.run(vec![Write::put(T, item, Cond::None)]).await
    }

    async fn save_connection(&self, c: &CrmConnection) -> Result<(), StoreError> {
        let mut writes = vec![Write::put(
            T,
            Item::new(state_pk(&c.property), "CONNECTION", encode(c))
                .with_gsi1("CRMCONNECTIONS", c.property.as_str()),
            Cond::None,
        )];
        let hook_pk = format!("CRMHOOK#{}", c.webhook_token_hash);
        let previous = self.connection(&c.property).await?;
        if let Some(old) = previous.filter(|o| o.webhook_token_hash != c.webhook_token_hash) {
            writes.push(Write::Delete {
                table: T,
                pk: format!("CRMHOOK#{}", old.webhook_token_hash),
                sk: "HOOK".into(),
                cond: Cond::None,
            });
        }
        let owner = HookOwner {
            property: c.property.clone(),
        };
        writes.push(Write::put(
            T,
            Item::new(hook_pk, "HOOK", encode(&owner)),
            Cond::None,
        ));
        self.run(writes).await
    }

    async fn connection(&self, p: &PropertyId) -> Result<Option<CrmConnection>, StoreError> {
        match self.get_guests(&state_pk(p), "CONNECTION").await? {
            Some(i) => decode(&i).map(Some),
            None => Ok(None),
        }
    }

    async fn connections(&self) -> Result<Vec<CrmConnection>, StoreError> {
        self.query_all(Query::gsi1(T, "CRMCONNECTIONS"))
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    async fn property_by_webhook_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<PropertyId>, StoreError> {
        match self
            .get_guests(&format!("CRMHOOK#{token_hash}"), "HOOK")
            .await?
        {
            Some(i) => decode::<HookOwner>(&i).map(|o| Some(o.property)),
            None => Ok(None),
        }
    }

    async fn sync_cursor(&self, p: &PropertyId) -> Result<SyncCursor, StoreError> {
        match self.get_guests(&state_pk(p), "CURSOR").await? {
            Some(i) => decode(&i),
            None => Ok(SyncCursor::default()),
        }
    }

    async fn save_sync_cursor(&self, p: &PropertyId, c: &SyncCursor) -> Result<(), StoreError> {
        let item = Item::new(state_pk(p), "CURSOR", encode(c));
        self.run(vec![Write::put(T, item, Cond::None)]).await
    }

    async fn record_webhook(
        &self,
        p: &PropertyId,
        delivery_hash: &str,
        target: Option<&RefetchTarget>,
    ) -> Result<bool, StoreError> {
        let seen = Item::new(
            state_pk(p),
            format!("HOOKEVENT#{delivery_hash}"),
            "{}".into(),
        )
        .with_expiry(self.now_ts() + HOOK_DEDUPE_SECONDS);
        let mut writes = vec![Write::put(T, seen, Cond::Absent)];
        if let Some(t) = target {
            // A fresh random mark per delivery: clearing checks it, so a
            // re-mark during a sync run survives that run.
            let item = Item::new(state_pk(p), format!("REFETCH#{}", t.key()), encode(t))
                .with_version(i64::from(rand::random::<u32>()) + 1);
            writes.push(Write::put(T, item, Cond::None));
        }
        match self.run(writes).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn save_sync_run(&self, p: &PropertyId, run: &SyncRun) -> Result<(), StoreError> {
        let expires = (run.ended_at + chrono::Duration::days(RUN_RETENTION_DAYS)).timestamp();
        let item = Item::new(runs_pk(p), run.id.clone(), encode(run)).with_expiry(expires);
        let mut writes = vec![Write::put(T, item, Cond::None)];
        writes.extend(
            announce::crm_run(p, run)
                .into_iter()
                .flat_map(|e| outbox(&[e])),
        );
        self.run(writes).await
    }

    async fn sync_runs(&self, p: &PropertyId, limit: usize) -> Result<Vec<SyncRun>, StoreError> {
        let q = Query::partition(T, runs_pk(p)).descending().limit(limit);
        let page = self.items().query(&q, self.now_ts()).await?;
        page.items.iter().map(decode).collect()
    }

    async fn refetch_targets(
        &self,
        p: &PropertyId,
    ) -> Result<Vec<(RefetchTarget, i64)>, StoreError> {
        self.query_all(Query::partition(T, state_pk(p)).prefix("REFETCH#"))
            .await?
            .iter()
            .map(|i| decode(i).map(|t| (t, i.version)))
            .collect()
    }

    async fn clear_refetch(
        &self,
        p: &PropertyId,
        t: &RefetchTarget,
        mark: i64,
    ) -> Result<(), StoreError> {
        let w = Write::Delete {
            table: T,
            pk: state_pk(p),
            sk: format!("REFETCH#{}", t.key()),
            cond: Cond::Version(mark),
        };
        match self.run(vec![w]).await {
            // Re-marked meanwhile: leave it for the next run.
            Ok(()) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
