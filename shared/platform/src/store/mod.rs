//! Storage: the item-store primitive with its two backends, and the
//! repositories that implement the domain's store ports on top of it.
//!
//! Key patterns live next to the repository that writes them and are listed
//! in ARCHITECTURE.md.

pub mod caller_cache;
pub mod checkout_repo;
pub mod dynamo;
pub mod faults;
pub mod guest_repo;
pub mod items;
pub mod lease_repo;
pub mod loyalty_repo;
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
