//! `guesthub loyalty ...`: connecting a property to NetCarrots, running the
//! export on demand, and the job the local scheduler runs.
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
    let Ok(password_env) = domain::EnvVarName::parse(a.password_env) else {
        bail!("--password-env names an environment variable (A-Z, 0-9, _), not the password");
    };
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
        password_env: password_env.into(),
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

/// Runs the export now for one property or all. With `wait`, a property
/// another run holds is exported once that run ends.
pub async fn export(
    store: &Store,
    data_dir: &Path,
    property: Option<&str>,
    wait: bool,
) -> anyhow::Result<Vec<ExportSummary>> {
    let opts = ExportOptions {
        stop: platform::jobs::stop_on_signal(),
        by: crate::crm::run_by("loyalty export"),
        ..Default::default()
    };
    let mut all = export_with(store, data_dir, property, &opts).await?;
    while wait && !opts.stop.is_cancelled() && all.iter().any(|s| s.skipped.is_some()) {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = opts.stop.cancelled() => break,
        }
        for s in all.iter_mut().filter(|s| s.skipped.is_some()) {
            let p = s.property.clone();
            if let Some(again) = export_with(store, data_dir, Some(&p), &opts).await?.pop() {
                *s = again;
            }
        }
    }
    Ok(all)
}

async fn export_with(
    store: &Store,
    data_dir: &Path,
    property: Option<&str>,
    opts: &ExportOptions,
) -> anyhow::Result<Vec<ExportSummary>> {
    let only = property.map(PropertyId::parse).transpose()?;
    let dest = LocalOutbox {
        dir: outbox_dir(data_dir),
        timeout: opts.timeout,
    };
    loyalty_export::export_all(store, only.as_ref(), &dest, opts).await
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

/// The scheduled job: every property's export, ended at a safe point by
/// `stop`.
pub async fn scheduled_export(store: Store, data_dir: PathBuf, stop: platform::jobs::Stop) {
    let opts = ExportOptions {
        stop,
        by: crate::crm::run_by("serve"),
        ..Default::default()
    };
    match export_with(&store, &data_dir, None, &opts).await {
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
