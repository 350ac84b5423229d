//! The local stand-in for the EventBridge schedules: one generic scheduler
//! runs a job every interval until the hub stops. The job gets the stop
//! and ends at its next safe point when it fires (it saves its cursor and
//! releases its lease); the scheduler then ends too.

use std::future::Future;
use std::time::Duration;

use platform::jobs::Stop;

/// When a job first runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum First {
    /// At once, as the hub starts.
    AtOnce,
    /// After one interval (let the hub start first).
    AfterInterval,
}

/// Runs `job` every `interval` (none when it is zero) until `stop`. A run
/// that overlaps the next tick delays it rather than running twice.
pub fn spawn<F, Fut>(
    name: &'static str,
    interval: Duration,
    first: First,
    stop: Stop,
    job: F,
) -> Option<tokio::task::JoinHandle<()>>
where
    F: Fn(Stop) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    if interval.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        if first == First::AfterInterval {
            tick.tick().await;
        }
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => break,
            }
            job(stop.clone()).await;
            if stop.is_cancelled() {
                break;
            }
        }
        tracing::info!(job = name, "scheduler stopped");
    }))
}

/// Waits up to `grace` for the schedulers to end after their stop fired;
/// any still running then is aborted (its lease expires on its own).
pub async fn drain(handles: Vec<tokio::task::JoinHandle<()>>, grace: Duration) {
    let deadline = tokio::time::Instant::now() + grace;
    for h in handles {
        let abort = h.abort_handle();
        if tokio::time::timeout_at(deadline, h).await.is_err() {
            tracing::warn!("a scheduled job did not reach a safe point in time; aborted");
            abort.abort();
        }
    }
}
