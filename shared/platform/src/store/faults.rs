//! A backend wrapper that fails a share of calls, before or after they take
//! effect — for crash-safety and fault tests. "After" models a process that
//! committed and then died before answering.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use domain::StoreError;

use super::items::{Item, ItemStore, Key, Page, Query, Table, TxError, Write};

/// When injected failures happen.
#[derive(Debug, Clone, Copy, Default)]
pub struct FaultPlan {
    /// Per mille of writes that fail without effect.
    pub fail_before_permille: u32,
    /// Per mille of writes that take effect and then report failure.
    pub fail_after_permille: u32,
    /// Per mille of reads that fail.
    pub fail_reads_permille: u32,
    /// Fail every write from this write number on (1-based), if set.
    pub fail_writes_from: Option<u64>,
}

pub struct FaultyItems {
    inner: Arc<dyn ItemStore>,
    plan: std::sync::Mutex<FaultPlan>,
    writes: AtomicU64,
    injected: AtomicU64,
}

fn injected() -> StoreError {
    StoreError::Unavailable("injected fault".into())
}

impl FaultyItems {
    pub fn new(inner: Arc<dyn ItemStore>, plan: FaultPlan) -> Self {
        Self {
            inner,
            plan: std::sync::Mutex::new(plan),
            writes: AtomicU64::new(0),
            injected: AtomicU64::new(0),
        }
    }

    pub fn set_plan(&self, plan: FaultPlan) {
        if let Ok(mut p) = self.plan.lock() {
            *p = plan;
        }
        self.writes.store(0, Ordering::SeqCst);
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    fn plan(&self) -> FaultPlan {
        self.plan.lock().map(|p| *p).unwrap_or_default()
    }

    fn roll(&self, permille: u32) -> bool {
        permille > 0 && rand::random_range(0..1000) < permille
    }

    /// Decides the fate of the next write: Err before, Ok(true) fail after.
    fn before_write(&self) -> Result<bool, StoreError> {
        let plan = self.plan();
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if plan.fail_writes_from.is_some_and(|from| n >= from)
            || self.roll(plan.fail_before_permille)
        {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(injected());
        }
        Ok(self.roll(plan.fail_after_permille))
    }

    fn after_write<T>(&self, fail: bool, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if fail && r.is_ok() {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(injected());
        }
        r
    }
}

#[async_trait]
impl ItemStore for FaultyItems {
    async fn create_tables(&self) -> Result<(), StoreError> {
        self.inner.create_tables().await
    }

    async fn get(
        &self,
        table: Table,
        pk: &str,
        sk: &str,
        now: i64,
    ) -> Result<Option<Item>, StoreError> {
        if self.roll(self.plan().fail_reads_permille) {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(injected());
        }
        self.inner.get(table, pk, sk, now).await
    }

    async fn get_many(&self, keys: &[Key], now: i64) -> Result<Vec<Option<Item>>, StoreError> {
        if self.roll(self.plan().fail_reads_permille) {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(injected());
        }
        self.inner.get_many(keys, now).await
    }

    async fn query(&self, q: &Query, now: i64) -> Result<Page, StoreError> {
        if self.roll(self.plan().fail_reads_permille) {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(injected());
        }
        self.inner.query(q, now).await
    }

    async fn transact(&self, writes: Vec<Write>, now: i64) -> Result<(), TxError> {
        let fail_after = self.before_write()?;
        match self.inner.transact(writes, now).await {
            Ok(()) => Ok(self.after_write(fail_after, Ok(()))?),
            Err(e) => Err(e),
        }
    }

    async fn batch_put(&self, table: Table, items: Vec<Item>) -> Result<(), StoreError> {
        let fail_after = self.before_write()?;
        let r = self.inner.batch_put(table, items).await;
        self.after_write(fail_after, r)
    }

    async fn batch_delete(
        &self,
        table: Table,
        keys: Vec<(String, String)>,
    ) -> Result<(), StoreError> {
        let fail_after = self.before_write()?;
        let r = self.inner.batch_delete(table, keys).await;
        self.after_write(fail_after, r)
    }
}
