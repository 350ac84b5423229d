//! The item-store primitive both backends implement: DynamoDB's data model
//! (partition key `pk`, sort key `sk`, one secondary index `gsi1`, a TTL
//! attribute `expires_at`) and its conditional transactions. Every domain
//! repository is written once against this, so both backends give the same
//! answer by construction, including under concurrency.

use async_trait::async_trait;
use domain::StoreError;

/// The tables, grouped by lifecycle (ARCHITECTURE.md lists the key patterns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Properties, partners, API keys, idempotency records, cursors.
    Platform,
    /// Vouchers, their ledger, holds, orders, pickup cursors.
    Vouchers,
    /// Club roster generations, import reports, tiers.
    Roster,
    /// Catalogue, orders, memberships, capacity counters.
    Commerce,
    /// Guest profiles, notes, screening, CRM and loyalty state, stays.
    Guests,
}

impl Table {
    pub const ALL: [Table; 5] = [
        Table::Platform,
        Table::Vouchers,
        Table::Roster,
        Table::Commerce,
        Table::Guests,
    ];

    /// The suffix after the deployment prefix: `<prefix>-platform`.
    pub fn suffix(self) -> &'static str {
        match self {
            Table::Platform => "platform",
            Table::Vouchers => "vouchers",
            Table::Roster => "roster",
            Table::Commerce => "commerce",
            Table::Guests => "guests",
        }
    }
}

/// One stored item. `body` is the aggregate as JSON; `version` increases by
/// one on every write and is what optimistic concurrency checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    pub version: i64,
    /// Unix seconds. An item past it is treated as absent by every read and
    /// condition, whether or not the backend has deleted it yet (DynamoDB's
    /// TTL deletes lazily, up to days late).
    pub expires_at: Option<i64>,
    /// Secondary index keys, when the item should be found by another path.
    pub gsi1: Option<(String, String)>,
    pub body: String,
}

impl Item {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>, body: String) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
            version: 1,
            expires_at: None,
            gsi1: None,
            body,
        }
    }

    pub fn with_gsi1(mut self, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.gsi1 = Some((pk.into(), sk.into()));
        self
    }

    pub fn with_expiry(mut self, at: i64) -> Self {
        self.expires_at = Some(at);
        self
    }

    pub fn with_version(mut self, v: i64) -> Self {
        self.version = v;
        self
    }

    pub fn is_live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

/// A write's precondition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// Unconditional.
    None,
    /// No live item at the key (missing, or expired as of `now`).
    Absent,
    /// A live item at the key.
    Present,
    /// A live item at the key with exactly this version.
    Version(i64),
}

#[derive(Debug, Clone)]
pub enum Write {
    Put {
        table: Table,
        item: Item,
        cond: Cond,
    },
    Delete {
        table: Table,
        pk: String,
        sk: String,
        cond: Cond,
    },
    /// Only checks `cond`; writes nothing.
    Check {
        table: Table,
        pk: String,
        sk: String,
        cond: Cond,
    },
}

impl Write {
    pub fn put(table: Table, item: Item, cond: Cond) -> Self {
        Write::Put { table, item, cond }
    }
}

/// Which part of a partition to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkRange {
    All,
    Prefix(String),
    /// Inclusive on both ends.
    Between(String, String),
}

#[derive(Debug, Clone)]
pub struct Query {
    pub table: Table,
    /// Query `gsi1` instead of the table's own keys.
    pub on_gsi1: bool,
    pub pk: String,
    pub sk: SkRange,
    /// Resume after this item (from a previous page's `next`).
    pub after: Option<Cursor>,
    pub limit: Option<usize>,
    pub descending: bool,
}

impl Query {
    pub fn partition(table: Table, pk: impl Into<String>) -> Self {
        Self {
            table,
            on_gsi1: false,
            pk: pk.into(),
            sk: SkRange::All,
            after: None,
            limit: None,
            descending: false,
        }
    }

    pub fn gsi1(table: Table, pk: impl Into<String>) -> Self {
        Self {
            on_gsi1: true,
            ..Self::partition(table, pk)
        }
    }

    pub fn prefix(mut self, p: impl Into<String>) -> Self {
        self.sk = SkRange::Prefix(p.into());
        self
    }

    pub fn between(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.sk = SkRange::Between(from.into(), to.into());
        self
    }

    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    pub fn after(mut self, c: Option<Cursor>) -> Self {
        self.after = c;
        self
    }

    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }
}

/// Where a page ended: the last item's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub pk: String,
    pub sk: String,
    pub gsi1: Option<(String, String)>,
}

impl Cursor {
    pub fn of(item: &Item) -> Self {
        Self {
            pk: item.pk.clone(),
            sk: item.sk.clone(),
            gsi1: item.gsi1.clone(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Item>,
    /// Set when more items may follow.
    pub next: Option<Cursor>,
}

/// Why a transaction failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The condition of the write at this index did not hold.
    #[error("condition failed at write {0}")]
    Condition(usize),
    /// Another transaction touched the same items; retrying may succeed.
    #[error("transaction conflict")]
    Contention,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TxError> for StoreError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Condition(_) => StoreError::Conflict,
            TxError::Contention => StoreError::Unavailable("transaction conflict".into()),
            TxError::Store(s) => s,
        }
    }
}

/// Most items one transaction may write (DynamoDB's limit).
pub const MAX_TRANSACTION_ITEMS: usize = 100;
/// Most items one batch request may carry (DynamoDB's limit).
pub const MAX_BATCH_ITEMS: usize = 25;
/// Most keys one batch read may ask for (DynamoDB's `BatchGetItem` limit).
pub const MAX_BATCH_GET_KEYS: usize = 100;

/// One key of a batch read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub table: Table,
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(table: Table, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            table,
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

#[async_trait]
pub trait ItemStore: Send + Sync + 'static {
    /// Creates the tables if missing (idempotent).
    async fn create_tables(&self) -> Result<(), StoreError>;
    /// A strongly consistent read of one live item.
    async fn get(
        &self,
        table: Table,
        pk: &str,
        sk: &str,
        now: i64,
    ) -> Result<Option<Item>, StoreError>;
    /// Strongly consistent reads of up to [`MAX_BATCH_GET_KEYS`] live items
    /// in one request (not one snapshot: each item as of its own read),
    /// answered in the order asked. Lets a hot path read what it may need
    /// in one round trip instead of one per item.
    async fn get_many(&self, keys: &[Key], now: i64) -> Result<Vec<Option<Item>>, StoreError> {
        check_batch_get(keys)?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.get(k.table, &k.pk, &k.sk, now).await?);
        }
        Ok(out)
    }
    /// Live items of one partition in key order. Index queries are eventually
    /// consistent on DynamoDB; nothing that decides money reads through them.
    async fn query(&self, q: &Query, now: i64) -> Result<Page, StoreError>;
    /// All writes or none. At most [`MAX_TRANSACTION_ITEMS`], one per key.
    async fn transact(&self, writes: Vec<Write>, now: i64) -> Result<(), TxError>;
    /// Unconditional puts, not atomic as a whole; for bulk loads (roster
    /// generations) whose visibility is switched by a later transaction.
    async fn batch_put(&self, table: Table, items: Vec<Item>) -> Result<(), StoreError>;
    /// Unconditional deletes, not atomic as a whole.
    async fn batch_delete(
        &self,
        table: Table,
        keys: Vec<(String, String)>,
    ) -> Result<(), StoreError>;
}

/// Rejects batch reads DynamoDB would reject: empty, too many keys, or one
/// key twice.
pub fn check_batch_get(keys: &[Key]) -> Result<(), StoreError> {
    if keys.is_empty() || keys.len() > MAX_BATCH_GET_KEYS {
        return Err(StoreError::Corrupt(format!(
            "a batch read takes 1-{MAX_BATCH_GET_KEYS} keys, got {}",
            keys.len()
        )));
    }
    let distinct: std::collections::HashSet<&Key> = keys.iter().collect();
    if distinct.len() != keys.len() {
        return Err(StoreError::Corrupt(
            "a batch read asks for one key twice".into(),
        ));
    }
    Ok(())
}

/// Rejects what DynamoDB would reject, so both backends refuse the same
/// transactions: empty, too many items, or two writes to one key.
pub fn check_transaction(writes: &[Write]) -> Result<(), StoreError> {
    if writes.is_empty() || writes.len() > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::Corrupt(format!(
            "a transaction takes 1-{MAX_TRANSACTION_ITEMS} writes, got {}",
            writes.len()
        )));
    }
    let mut keys = std::collections::HashSet::with_capacity(writes.len());
    for w in writes {
        let key = match w {
            Write::Put { table, item, .. } => (*table, item.pk.as_str(), item.sk.as_str()),
            Write::Delete { table, pk, sk, .. } | Write::Check { table, pk, sk, .. } => {
                (*table, pk.as_str(), sk.as_str())
            }
        };
        if !keys.insert(key) {
            return Err(StoreError::Corrupt(
                "a transaction writes one key twice".into(),
            ));
        }
    }
    Ok(())
}
