//! One change at a time per voucher *within this process*. Not for
//! correctness — the store's conditional writes are what prevent double
//! spending, across any number of processes — but so that many concurrent
//! requests on one voucher queue here instead of all racing the store and
//! retrying (each lost race costs a read and a failed transaction).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

#[derive(Default)]
pub struct VoucherGates {
    open: Mutex<HashMap<String, Weak<AsyncMutex<()>>>>,
}

impl VoucherGates {
    /// Waits for the voucher `key`; the guard lets the next request in.
    pub async fn enter(&self, key: &str) -> OwnedMutexGuard<()> {
        let gate = {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            // Forget gates nobody holds any more.
            open.retain(|_, g| g.strong_count() > 0);
            match open.get(key).and_then(Weak::upgrade) {
                Some(g) => g,
                None => {
                    let g = Arc::new(AsyncMutex::new(()));
                    open.insert(key.to_owned(), Arc::downgrade(&g));
                    g
                }
            }
        };
        gate.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_per_key_and_gates_are_forgotten() {
        let gates = VoucherGates::default();
        let a = gates.enter("a").await;
        let _b = gates.enter("b").await;
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(20), gates.enter("a")).await;
        assert!(waiting.is_err(), "a second holder of 'a' must wait");
        drop(a);
        let _a2 = gates.enter("a").await;
        assert!(gates.open.lock().unwrap().len() <= 2);
    }
}
