//! `guesthub crm ...`: connecting a property to Cloudbeds, running the sync
//! on demand, and the job the local scheduler runs.

use std::time::Duration;

use anyhow::{Context, bail};
use domain::PropertyId;
use domain::guest::ports::GuestStore;
use domain::guest::{
    CrmConnection, DEFAULT_CLOUDBEDS_BASE_URL, FieldMapping, ScreeningService, ScreeningWriteBack,
    default_field_map,
};
use domain::ports::PropertyStore;
use platform::Store;

/// What `crm connect` reports; the token is shown only now.
pub struct Connected {
    pub connection: CrmConnection,
    pub webhook_token: String,
}

/// Parses `pref=Name:shortcode` mappings (`wine=Wine preference:gh_wine`).
pub fn parse_mapping(raw: &str) -> anyhow::Result<FieldMapping> {
    let (pref, rest) = raw
        .split_once('=')
        .context("a mapping is preference=Field name:shortcode")?;
    let (name, shortcode) = rest
        .rsplit_once(':')
        .context("a mapping is preference=Field name:shortcode")?;
    let m = FieldMapping {
        preference: pref.trim().to_owned(),
        name: name.trim().to_owned(),
        shortcode: shortcode.trim().to_owned(),
    };
    let prefs = [(m.preference.clone(), String::new())]
        .into_iter()
        .collect();
    domain::guest::validate_preferences(&prefs)?;
    if m.name.is_empty() || m.shortcode.is_empty() {
        bail!("a mapping needs a field name and a shortcode");
    }
    Ok(m)
}

#[allow(clippy::too_many_arguments)]
pub async fn connect(
    store: &Store,
    property: &str,
    cloudbeds_property_id: &str,
    api_key_env: &str,
    ssm_parameter: Option<&str>,
    base_url: Option<&str>,
    mappings: &[String],
    screening_writeback: &str,
    screening_service: Option<ScreeningService>,
) -> anyhow::Result<Connected> {
    let id = PropertyId::parse(property)?;
    store
        .property(&id)
        .await?
        .with_context(|| format!("no property {id}; add it first"))?;
    if cloudbeds_property_id.trim().is_empty() {
        bail!("--cloudbeds-property-id is empty");
    }
    let Ok(api_key_env) = domain::EnvVarName::parse(api_key_env) else {
        bail!("--api-key-env names an environment variable (A-Z, 0-9, _), not the key itself");
    };
    let base_url = base_url
        .unwrap_or(DEFAULT_CLOUDBEDS_BASE_URL)
        .trim_end_matches('/');
    if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
        bail!("--base-url must be an http(s) URL");
    }
    let field_map = if mappings.is_empty() {
        default_field_map()
    } else {
        mappings
            .iter()
            .map(|m| parse_mapping(m))
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let connection = CrmConnection {
        property: id,
        cloudbeds_property_id: cloudbeds_property_id.trim().to_owned(),
        api_key_env: api_key_env.into(),
        api_key_ssm_parameter: ssm_parameter.map(str::to_owned),
        base_url: base_url.to_owned(),
        field_map,
        screening_write_back: ScreeningWriteBack::parse(screening_writeback)?,
        screening_service: screening_service.map(check_service).transpose()?,
        webhook_token_hash: guests_api::webhook_token_hash(&token),
        connected_at: store.clock().now(),
    };
    store.save_connection(&connection).await?;
    Ok(Connected {
        connection,
        webhook_token: token,
    })
}

/// Checks `--screening-url` and where its secret is read from.
fn check_service(s: ScreeningService) -> anyhow::Result<ScreeningService> {
    if !(s.url.starts_with("https://") || s.url.starts_with("http://")) {
        bail!("--screening-url must be an http(s) URL");
    }
    let Ok(env) = domain::EnvVarName::parse(&s.secret_env) else {
        bail!(
            "--screening-secret-env names an environment variable (A-Z, 0-9, _), not the secret itself"
        );
    };
    Ok(ScreeningService {
        secret_env: env.into(),
        ..s
    })
}

/// Who a run from this process is, for a run that finds it busy.
pub fn run_by(what: &str) -> String {
    format!("guesthub {what} (pid {})", std::process::id())
}

/// Runs the sync now for one property or all; returns the summaries.
/// With `wait`, a property another run holds is synced once that run
/// ends; without, it is reported skipped (with who holds it, until when).
pub async fn sync(
    store: &Store,
    property: Option<&str>,
    wait: bool,
) -> anyhow::Result<Vec<crm_sync::SyncSummary>> {
    let only = property.map(PropertyId::parse).transpose()?;
    if let Some(p) = &only
        && store.connection(p).await?.is_none()
    {
        bail!("property {p} has no Cloudbeds connection; run `guesthub crm connect` first");
    }
    let opts = crm_sync::SyncOptions {
        stop: platform::jobs::stop_on_signal(),
        by: run_by("crm sync"),
        trigger: domain::guest::runs::SyncTrigger::Cli,
        ..Default::default()
    };
    let mut all = crm_sync::sync_all(store, only.as_ref(), &crm_sync::EnvKeys, &opts).await?;
    while wait && !opts.stop.is_cancelled() && all.iter().any(|s| s.skipped_busy) {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = opts.stop.cancelled() => break,
        }
        for s in all.iter_mut().filter(|s| s.skipped_busy) {
            let p = PropertyId::parse(&s.property)?;
            if let Some(again) = crm_sync::sync_all(store, Some(&p), &crm_sync::EnvKeys, &opts)
                .await?
                .pop()
            {
                *s = again;
            }
        }
    }
    Ok(all)
}

/// The scheduled job: the sync of every connected property (nothing when
/// none is connected), ended at a safe point by `stop`.
pub async fn scheduled_sync(store: Store, stop: platform::jobs::Stop) {
    match store.connections().await {
        Ok(c) if c.is_empty() => return,
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "scheduler: could not list connections");
            return;
        }
    }
    let opts = crm_sync::SyncOptions {
        stop,
        by: run_by("serve"),
        ..Default::default()
    };
    match crm_sync::sync_all(&store, None, &crm_sync::EnvKeys, &opts).await {
        Ok(all) => {
            for s in all {
                tracing::info!(property = %s.property, errors = s.errors.len(), stopped = s.stopped, skipped = s.skipped_busy, "scheduled crm sync done");
            }
        }
        Err(e) => tracing::warn!(error = %e, "scheduled crm sync failed"),
    }
}

/// The property's sync runs, newest first.
pub async fn runs(
    store: &Store,
    property: &str,
    limit: Option<u32>,
) -> anyhow::Result<Vec<domain::guest::runs::SyncRun>> {
    let id = PropertyId::parse(property)?;
    if store.connection(&id).await?.is_none() {
        bail!("property {id} has no Cloudbeds connection; run `guesthub crm connect` first");
    }
    let limit = domain::guest::runs::runs_limit(limit)?;
    Ok(store.sync_runs(&id, limit).await?)
}

/// One line per run: what a person reading the terminal needs.
pub fn run_line(r: &domain::guest::runs::SyncRun) -> String {
    let c = &r.counts;
    let trigger = serde_json::to_value(r.trigger)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut line = format!(
        "{} → {} {trigger}: pulled {} reservations / {} guests, pushed {} guests, notes {} / {}, screened {}, errors {}, conflicts {}",
        r.started_at.format("%Y-%m-%d %H:%M:%S"),
        r.ended_at.format("%H:%M:%S UTC"),
        c.reservations_pulled,
        c.guests_pulled,
        c.guests_pushed,
        c.notes_pulled,
        c.notes_pushed,
        c.screened,
        r.errors.len(),
        r.conflicts.len()
    );
    if r.stopped {
        line.push_str(" (stopped)");
    }
    for k in &r.conflicts {
        let w = if k.winner == domain::guest::runs::ConflictSide::Cloudbeds {
            "cloudbeds"
        } else {
            "guesthub"
        };
        line.push_str(&format!("\n  conflict: {w} won ({})", k.fields.join(", ")));
    }
    for e in &r.errors {
        line.push_str(&format!("\n  error: {e}"));
    }
    line
}

/// How long the queue worker waits before trying a busy property again.
const QUEUE_RETRY: Duration = Duration::from_millis(500);

/// The served hub's in-process sync queue and its worker (the stand-in for
/// the SQS queue `crm-sync` consumes in AWS): each request runs the
/// property's webhook work at once (trigger `webhook`, under the
/// property's lease and rate limit); requests for the same property that
/// wait together share a run; a property held by another run is tried
/// again shortly. Ends at `stop`. The schedule stays the safety net.
pub fn spawn_queue_worker(
    store: Store,
    keys: std::sync::Arc<dyn crm_sync::KeySource>,
    stop: platform::jobs::Stop,
) -> (guests_api::SharedQueue, tokio::task::JoinHandle<()>) {
    let (queue, mut rx) = platform::queue::InProcessQueue::new();
    let retry = queue.clone();
    let worker = tokio::spawn(async move {
        loop {
            let first = tokio::select! {
                r = rx.recv() => match r { Some(r) => r, None => break },
                () = stop.cancelled() => break,
            };
            let mut wanted = vec![first];
            while let Ok(r) = rx.try_recv() {
                if !wanted.contains(&r) {
                    wanted.push(r);
                }
            }
            for req in wanted {
                let opts = crm_sync::SyncOptions {
                    stop: stop.clone(),
                    by: run_by("serve (webhook)"),
                    ..Default::default()
                };
                let again = match crm_sync::queue::run_request(&store, &req, keys.as_ref(), &opts)
                    .await
                {
                    Ok(Some(s)) => {
                        tracing::info!(property = %s.property, errors = s.errors.len(), busy = s.skipped_busy, "webhook sync done");
                        crm_sync::queue::retry_wanted(&s)
                    }
                    Ok(None) => false,
                    Err(e) => {
                        tracing::warn!(property = %req.property, error = %e, "webhook sync failed");
                        true
                    }
                };
                if again && !stop.is_cancelled() {
                    let retry = retry.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(QUEUE_RETRY).await;
                        let _ = domain::guest::ports::SyncQueue::enqueue(&retry, &req).await;
                    });
                }
            }
        }
        tracing::info!("sync queue worker stopped");
    });
    (std::sync::Arc::new(queue), worker)
}
