//! `guesthub loyalty ...`: connecting a property to NetCarrots, running the
//! export on demand, and the local scheduler standing in for EventBridge.
//! Without a connection a property's files go to `<data-dir>/outbox/loyalty/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use domain::PropertyId;
use domain::loyalty::ports::LoyaltyStore;
use domain::loyalty::{LoyaltyConnection, PropertyCode, RemoteUrl};
use domain::ports::PropertyStore;
use loyalty_export::{ExportOptions, ExportSummary, LocalOutbox};
use platform::Store;

/// The folder local files go to (and members files come back from, in
/// its `return/`).
pub fn outbox_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("outbox").join("loyalty")
}

/// What `loyalty connect` takes.
pub struct ConnectArgs<'a> {
    pub property: &'a str,
    pub url: &'a str,
    pub username: &'a str,
    pub password_env: &'a str,
    pub property_code: &'a str,
    pub ssm_parameter: Option<&'a str>,
    pub ca_cert: Option<&'a Path>,
    /// SFTP: the host key fingerprint to pin (`SHA256:...`).
    pub host_key: Option<&'a str>,
    /// Days after a departure within which an enrolment still exports the
    /// stay (0: never).
    pub retro_days: u32,
}

pub async fn connect(store: &Store, a: &ConnectArgs<'_>) -> anyhow::Result<LoyaltyConnection> {
    let id = PropertyId::parse(a.property)?;
    store
        .property(&id)
        .await?
        .with_context(|| format!("no property {id}; add it first"))?;
    let url = RemoteUrl::parse(a.url)?;
    let username = a.username.trim();
    if username.is_empty() || username.len() > 128 {
        bail!("--username is 1-128 characters");
    }
    let env_ok = !a.password_env.is_empty()
        && a.password_env
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if !env_ok {
        bail!("--password-env names an environment variable (A-Z, 0-9, _), not the password");
    }
    let tls_ca_pem = match a.ca_cert {
        Some(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    let c = LoyaltyConnection {
        property: id,
        url,
        username: username.to_owned(),
        password_env: a.password_env.to_owned(),
        password_ssm_parameter: a.ssm_parameter.map(str::to_owned),
        property_code: PropertyCode::parse(a.property_code)?,
        tls_ca_pem,
        ssh_host_key: a.host_key.map(|k| k.trim().to_owned()),
        retro_days: a.retro_days,
        connected_at: store.clock().now(),
    };
    if c.url.transport == domain::loyalty::Transport::Sftp {
        match &c.ssh_host_key {
            Some(k) if k.starts_with("SHA256:") && k.len() > 20 => {}
            _ => bail!(
                "sftp:// needs --host-key SHA256:... (the server's fingerprint, e.g. from `ssh-keyscan -p PORT HOST | ssh-keygen -lf -`)"
            ),
        }
    }
    // Refuse a bad certificate now rather than at the first export.
    if c.url.transport == domain::loyalty::Transport::Ftps {
        platform::transfer::FtpDrop::new(
            &c,
            platform::transfer::Password::new(""),
            Duration::from_secs(1),
        )?;
    }
    store.save_loyalty_connection(&c).await?;
    Ok(c)
}

/// Runs the export now for one property or all.
pub async fn export(
    store: &Store,
    data_dir: &Path,
    property: Option<&str>,
) -> anyhow::Result<Vec<ExportSummary>> {
    let only = property.map(PropertyId::parse).transpose()?;
    let opts = ExportOptions::default();
    let dest = LocalOutbox {
        dir: outbox_dir(data_dir),
        timeout: opts.timeout,
    };
    loyalty_export::export_all(store, only.as_ref(), &dest, &opts).await
}

/// One line per property: what a person reading the terminal needs.
pub fn summary_line(s: &ExportSummary) -> String {
    let mut line = format!("{}: ", s.property);
    if let Some(why) = &s.skipped {
        line.push_str(&format!("skipped ({why})"));
        return line;
    }
    match &s.file {
        Some(f) => line.push_str(&format!(
            "{f}{} — {} records (ENROL {}, STAY {}, UNDO {})",
            if s.resent { " (resent)" } else { "" },
            s.enrol + s.stay + s.undo,
            s.enrol,
            s.stay,
            s.undo
        )),
        None => line.push_str("no file (nothing pending)"),
    }
    if s.left_out > 0 {
        line.push_str(&format!(
            ", {} left out (undone before sending)",
            s.left_out
        ));
    }
    if s.more_pending {
        line.push_str(", more pending for the next run");
    }
    if s.not_enrolled > 0 {
        line.push_str(&format!(
            ", {} not enrolled (stays kept here)",
            s.not_enrolled
        ));
    }
    if s.members_files > 0 {
        line.push_str(&format!(
            "; members files {}: {} confirmed, {} unmatched, {} rejected",
            s.members_files, s.members_confirmed, s.members_unmatched, s.members_rejected
        ));
    }
    if !s.errors.is_empty() {
        line.push_str(&format!(
            "; {} errors: {}",
            s.errors.len(),
            s.errors.join("; ")
        ));
    }
    line
}

/// The local stand-in for the EventBridge schedule.
pub fn spawn_scheduler(
    store: Store,
    data_dir: &Path,
    interval: Duration,
) -> Option<tokio::task::JoinHandle<()>> {
    if interval.is_zero() {
        return None;
    }
    let data_dir = data_dir.to_path_buf();
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // The first tick fires at once: let the hub start first.
        tick.tick().await;
        loop {
            tick.tick().await;
            match export(&store, &data_dir, None).await {
                Ok(all) => {
                    for s in all
                        .iter()
                        .filter(|s| s.file.is_some() || !s.errors.is_empty())
                    {
                        tracing::info!(property = %s.property, file = s.file.as_deref().unwrap_or(""), errors = s.errors.len(), "scheduled loyalty export done");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "scheduled loyalty export failed"),
            }
        }
    }))
}
