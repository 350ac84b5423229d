//! Running a scheduled job (the CRM sync, the loyalty export) for one
//! property: its lease, kept short and renewed while the run goes on, and
//! the stop signal the run checks at its safe points.
//!
//! A run is stopped by its [`Stop`]: the served hub's SIGINT/SIGTERM, a
//! Lambda invocation's deadline ([`stop_before`]) or losing the lease. It
//! then ends at its next safe point (its cursor saved), and releases the
//! lease; a run killed outright holds the lease only until it expires.

use std::time::{Duration, SystemTime};

use domain::PropertyId;
use domain::ports::{JobLease, LeaseStore, LeaseTake, LeasedJob};
use tokio::task::JoinHandle;

use crate::Store;

pub use tokio_util::sync::CancellationToken as Stop;

/// The lease length: a run killed outright blocks the next one this long
/// at most. Renewed every third of it while the run goes on.
pub const LEASE: Duration = Duration::from_secs(60);

/// A token cancelled `margin` before `deadline` (a Lambda invocation's), so
/// the run stops and releases its lease while the function still runs.
pub fn stop_before(deadline: SystemTime, margin: Duration) -> Stop {
    let stop = Stop::new();
    let left = deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        .saturating_sub(margin);
    let s = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(left).await;
        s.cancel();
    });
    stop
}

/// Time a scheduled Lambda leaves a stopped run to reach its safe point and
/// release its lease before the invocation's deadline.
pub const LAMBDA_STOP_MARGIN: Duration = Duration::from_secs(20);

/// A scheduled Lambda invocation's stop ([`LAMBDA_STOP_MARGIN`] before its
/// deadline) and who holds its leases (the function and the request), so the
/// next run never waits for this one and a skipped run can say whom it met.
pub fn for_invocation(deadline: SystemTime, function: &str, request_id: &str) -> (Stop, String) {
    (
        stop_before(deadline, LAMBDA_STOP_MARGIN),
        format!("{function} (request {request_id})"),
    )
}

/// The stop of a process: cancelled on Ctrl-C or SIGTERM.
pub fn stop_on_signal() -> Stop {
    let stop = Stop::new();
    let s = stop.clone();
    tokio::spawn(async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut t) => {
                    t.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {},
            () = term => {},
        }
        s.cancel();
    });
    stop
}

/// A held lease. Its [`Held::stop`] is cancelled when the caller's stop is,
/// or when a renewal finds the lease lost; [`Held::release`] ends it.
pub struct Held {
    store: Store,
    job: LeasedJob,
    property: PropertyId,
    holder: String,
    stop: Stop,
    renewer: JoinHandle<()>,
}

impl Held {
    /// What the run checks at its safe points.
    pub fn stop(&self) -> &Stop {
        &self.stop
    }

    /// Stops renewing and drops the lease (if this run still holds it).
    pub async fn release(self) {
        self.renewer.abort();
        if let Err(e) = self
            .store
            .release_lease(self.job, &self.property, &self.holder)
            .await
        {
            tracing::warn!(property = %self.property, error = %e, "could not release a job lease; it expires");
        }
    }
}

impl Drop for Held {
    /// A run dropped without releasing (aborted) stops renewing: its lease
    /// then ends on its own.
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// Takes the job's lease of `p` for `ttl`, renewed every `ttl / 3` until
/// released. `Ok(Err(lease))` when another run holds it.
pub async fn take(
    store: &Store,
    job: LeasedJob,
    p: &PropertyId,
    by: &str,
    ttl: Duration,
    stop: &Stop,
) -> Result<Result<Held, JobLease>, domain::StoreError> {
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(60));
    let mut lease = JobLease {
        holder: uuid::Uuid::now_v7().to_string(),
        by: by.to_owned(),
        until: store.clock().now() + ttl,
    };
    if let LeaseTake::Busy(other) = store.take_lease(job, p, &lease).await? {
        return Ok(Err(other));
    }
    let holder = lease.holder.clone();
    let run_stop = stop.child_token();
    let renewer = {
        let store = store.clone();
        let p = p.clone();
        let run_stop = run_stop.clone();
        let every = (ttl / 3).to_std().unwrap_or(Duration::from_secs(20));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                lease.until = store.clock().now() + ttl;
                match store.renew_lease(job, &p, &lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(property = %p, "job lease lost; stopping the run");
                        run_stop.cancel();
                        return;
                    }
                    // Try again at the next beat; the lease outlives two.
                    Err(e) => {
                        tracing::warn!(property = %p, error = %e, "could not renew a job lease")
                    }
                }
            }
        })
    };
    Ok(Ok(Held {
        store: store.clone(),
        job,
        property: p.clone(),
        holder,
        stop: run_stop,
        renewer,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Lambda run is stopped `margin` before the invocation's deadline.
    #[tokio::test(start_paused = true)]
    async fn stops_before_the_deadline() {
        let stop = stop_before(
            SystemTime::now() + Duration::from_secs(10),
            Duration::from_secs(3),
        );
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(!stop.is_cancelled());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(stop.is_cancelled());
    }
}
