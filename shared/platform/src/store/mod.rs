//! Storage: the item-store primitive with its two backends, and the
//! repositories that implement the domain's store ports on top of it.
//!
//! Key patterns live next to the repository that writes them and are listed
//! in ARCHITECTURE.md.

pub mod caller_cache;
pub mod checkout_repo;
pub mod dynamo;
pub mod erasure_repo;
pub mod event_repo;
pub mod faults;
pub mod guest_repo;
pub mod items;
pub mod lease_repo;
pub mod loyalty_repo;
pub mod octo_repo;
pub mod platform_repo;
pub mod roster_repo;
pub mod sqlite;
pub mod voucher_repo;

use std::sync::Arc;

use domain::StoreError;
use domain::ports::{Clock, SystemClock};
use serde::Serialize;
use serde::de::DeserializeOwned;

use caller_cache::CallerCache;
pub use items::{Cond, Item, ItemStore, Key, Query, Table, TxError, Write};

/// The one handle every function holds: a backend and a clock. Cheap to
/// clone. Implements every store port of the domain.
#[derive(Clone)]
pub struct Store {
    items: Arc<dyn ItemStore>,
    clock: Arc<dyn Clock>,
    callers: Arc<CallerCache>,
}

impl Store {
    pub fn new(items: Arc<dyn ItemStore>) -> Self {
        Self::with_clock(items, Arc::new(SystemClock))
    }

    pub fn with_clock(items: Arc<dyn ItemStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            items,
            clock,
            callers: Arc::new(CallerCache::off()),
        }
    }

    /// Remembers callers' partners and properties for `ttl` in this process
    /// (see [`caller_cache`]); zero turns it off.
    pub fn with_caller_cache(mut self, ttl: std::time::Duration) -> Self {
        self.callers = Arc::new(CallerCache::new(ttl));
        self
    }

    pub(crate) fn callers(&self) -> &CallerCache {
        self.callers.as_ref()
    }

    pub fn items(&self) -> &dyn ItemStore {
        self.items.as_ref()
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Unix seconds now, by this store's clock.
    pub fn now_ts(&self) -> i64 {
        self.clock.now().timestamp()
    }
}

/// Waits before retrying a transaction that lost a race: full jitter over
/// an exponentially growing window (4 ms … 250 ms), so racers spread out.
pub async fn backoff(attempt: u32) {
    let cap_ms = (4u64 << attempt.min(6)).min(250);
    let ms = rand::random_range(0..=cap_ms);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// The one optimistic-transaction loop: read, plan, commit; when the commit
/// loses a race (a condition failed, or the backend reported contention),
/// read again and plan again, after a [`backoff`], at most `attempts` times.
///
/// ```text
/// let mut retry = Retry::new(40);
/// while let Some(attempt) = retry.next().await {
///     let writes = plan(store.read().await?)?;
///     match store.commit(writes).await? {
///         Attempt::Committed => return Ok(answer),
///         Attempt::Lost(_) => {} // re-read, re-plan
///     }
/// }
/// Err(busy())
/// ```
#[derive(Debug)]
pub struct Retry {
    attempts: u32,
    next: u32,
}

impl Retry {
    pub fn new(attempts: u32) -> Self {
        Self { attempts, next: 0 }
    }

    /// Starts the next attempt (its number, from 0), backing off first
    /// unless it is the first; `None` once every attempt is spent.
    pub async fn next(&mut self) -> Option<u32> {
        if self.next >= self.attempts {
            return None;
        }
        if self.next > 0 {
            backoff(self.next - 1).await;
        }
        self.next += 1;
        Some(self.next - 1)
    }
}

/// How one attempt's commit ended. Losing a race is an answer, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Committed,
    /// The write at this index failed its condition (`None`: the backend
    /// reported contention): re-read and plan again, unless that write's
    /// condition decides the answer.
    Lost(Option<usize>),
}

impl Store {
    /// Commits one attempt's writes, all or nothing.
    pub async fn commit(&self, writes: Vec<Write>) -> Result<Attempt, StoreError> {
        match self.items().transact(writes, self.now_ts()).await {
            Ok(()) => Ok(Attempt::Committed),
            Err(TxError::Condition(i)) => Ok(Attempt::Lost(Some(i))),
            Err(TxError::Contention) => Ok(Attempt::Lost(None)),
            Err(TxError::Store(e)) => Err(e),
        }
    }
}

/// Serializes an aggregate for an item body.
pub fn encode<T: Serialize>(value: &T) -> String {
    // Serializing plain data structs to a String cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// Reads an aggregate back from an item body.
pub fn decode<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    serde_json::from_str(&item.body).map_err(|e| {
        StoreError::Corrupt(format!(
            "{} {}: {e}",
            item.pk.split('#').next().unwrap_or(""),
            item.sk
        ))
    })
}
