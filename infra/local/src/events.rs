//! Events under `guesthub serve`: the dispatcher runs in process every
//! second (fan-out, then webhook deliveries due), and `guesthub events
//! tail` prints events as JSON lines as they are written.

use std::collections::HashSet;
use std::time::Duration;

use domain::PropertyId;
use domain::events::{Event, EventStore, EventType};
use domain::ports::PropertyStore;
use platform::Store;
use platform::events::Dispatcher;
use platform::jobs::Stop;

/// How often the served hub dispatches (a webhook goes out within it).
pub const DISPATCH_INTERVAL: Duration = Duration::from_secs(1);

/// One tick of the served hub's dispatcher.
pub async fn scheduled_dispatch(dispatcher: Dispatcher, stop: Stop) {
    match dispatcher.run_once(&stop).await {
        Ok(r) if r.fanned_out + r.delivered + r.retried + r.failed > 0 => {
            tracing::info!(
                fanned_out = r.fanned_out,
                delivered = r.delivered,
                retried = r.retried,
                failed = r.failed,
                "events dispatched"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "event dispatch failed; the next tick tries again"),
    }
}

/// Prints every event (of `property`, of `kind`) written from now on, one
/// JSON object per line (the envelope with `data` as stored, personal data
/// included: the operator's view), until `stop`. With `from_start`, the
/// events kept (30 days) are printed first.
pub async fn tail(
    store: &Store,
    property: Option<&PropertyId>,
    kind: Option<EventType>,
    from_start: bool,
    stop: &Stop,
    out: &mut (dyn std::io::Write + Send),
) -> anyhow::Result<()> {
    // Ids are UUID v7 (time-ordered): a change committed a moment after
    // a later-numbered one is found by re-reading a short window back.
    let mut seen: HashSet<String> = HashSet::new();
    let started = store.clock().now();
    loop {
        let properties = match property {
            Some(p) => vec![p.clone(), p.sandbox()],
            None => store
                .properties()
                .await?
                .into_iter()
                .flat_map(|p| [p.id.sandbox(), p.id])
                .collect(),
        };
        let window_start = uuid_floor(store.clock().now() - chrono::Duration::seconds(30));
        for p in &properties {
            let after = if from_start {
                None
            } else {
                Some(window_start.as_str())
            };
            let mut after = after.map(str::to_owned);
            loop {
                let page = store.events_after(p, after.as_deref(), 500).await?;
                let n = page.len();
                for e in page {
                    after = Some(e.id.clone());
                    if (!from_start && e.occurred_at < started) || !seen.insert(e.id.clone()) {
                        continue;
                    }
                    if kind.is_none_or(|k| k == e.kind) {
                        writeln!(out, "{}", line(&e))?;
                    }
                }
                out.flush()?;
                if n < 500 {
                    break;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = stop.cancelled() => return Ok(()),
        }
    }
}

fn line(e: &Event) -> String {
    let mut v = e.envelope(true);
    v["aggregate"] = e.aggregate.clone().into();
    v.to_string()
}

/// The smallest UUID v7 text at `at` (its millisecond prefix, then zeros).
fn uuid_floor(at: chrono::DateTime<chrono::Utc>) -> String {
    let ms = at.timestamp_millis().max(0) as u64;
    let hex = format!("{ms:012x}");
    format!("{}-{}-0000-0000-000000000000", &hex[..8], &hex[8..])
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_uuid_floor_sorts_below_ids_of_that_millisecond() {
        let now = chrono::Utc::now();
        let id = uuid::Uuid::now_v7().to_string();
        let floor = super::uuid_floor(now - chrono::Duration::milliseconds(1));
        assert!(floor < id, "{floor} < {id}");
        assert_eq!(floor.len(), id.len());
    }
}
