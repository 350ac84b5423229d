//! SFTP with `russh` and `russh-sftp` (pure Rust, async). The server's host
//! key must match the fingerprint the connection pins; password login.

use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use domain::loyalty::ports::{FileDrop, TransferError};
use domain::loyalty::{LoyaltyConnection, RemoteUrl};
use russh::keys::HashAlg;
use russh::{Disconnect, client};
use russh_sftp::client::SftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::StatusCode;
use tokio::io::AsyncWriteExt;

use super::Password;

/// NetCarrots' SFTP server.
pub struct SftpDrop {
    url: RemoteUrl,
    username: String,
    password: Password,
    host_key: Option<String>,
    timeout: Duration,
}

/// Checks the server's key against the pinned fingerprint and remembers
/// what it saw (for the error that tells an operator what to pin).
struct HostCheck {
    expected: Option<String>,
    seen: Arc<Mutex<Option<String>>>,
}

impl client::Handler for HostCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        let fp = key.fingerprint(HashAlg::Sha256).to_string();
        let ok = self.expected.as_deref() == Some(fp.as_str());
        if let Ok(mut s) = self.seen.lock() {
            *s = Some(fp);
        }
        Ok(ok)
    }
}

fn sftp_err(e: SftpError) -> TransferError {
    match e {
        SftpError::Status(s) => match s.status_code {
            StatusCode::PermissionDenied | StatusCode::Failure | StatusCode::OpUnsupported => {
                TransferError::Refused(format!("{:?}: {}", s.status_code, s.error_message))
            }
            _ => TransferError::Unavailable(format!("{:?}: {}", s.status_code, s.error_message)),
        },
        other => TransferError::Unavailable(other.to_string()),
    }
}

fn is_missing(e: &SftpError) -> bool {
    matches!(e, SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile)
}

impl SftpDrop {
    pub fn new(
        conn: &LoyaltyConnection,
        password: Password,
        timeout: Duration,
    ) -> Result<Self, TransferError> {
        Ok(Self {
            url: conn.url.clone(),
            username: conn.username.clone(),
            password,
            host_key: conn.ssh_host_key.clone(),
            timeout,
        })
    }

    fn path(&self, name: &str) -> String {
        if self.url.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.url.path)
        }
    }

    /// Connects, checks the host key, logs in and opens the SFTP subsystem.
    async fn session(&self) -> Result<(client::Handle<HostCheck>, SftpSession), TransferError> {
        let seen = Arc::new(Mutex::new(None));
        let check = HostCheck {
            expected: self.host_key.clone(),
            seen: seen.clone(),
        };
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(self.timeout),
            ..Default::default()
        });
        let addr = (self.url.host.as_str(), self.url.port);
        let connected = tokio::time::timeout(self.timeout, client::connect(config, addr, check))
            .await
            .map_err(|_| TransferError::Unavailable("connecting: timed out".into()))?;
        let mut handle = match connected {
            Ok(h) => h,
            Err(russh::Error::UnknownKey) => {
                let fp = seen.lock().ok().and_then(|s| s.clone()).unwrap_or_default();
                return Err(TransferError::Config(match &self.host_key {
                    Some(want) => format!("the server's host key is {fp}, not the pinned {want}"),
                    None => format!(
                        "no host key is pinned; the server offers {fp} (pin it with --host-key after checking it)"
                    ),
                }));
            }
            Err(e) => return Err(TransferError::Unavailable(format!("connecting: {e}"))),
        };
        let auth = handle
            .authenticate_password(self.username.clone(), self.password.expose().to_owned())
            .await
            .map_err(|e| TransferError::Unavailable(format!("logging in: {e}")))?;
        if !auth.success() {
            return Err(TransferError::Config("login refused".into()));
        }
        let channel = handle
            .channel_open_session()
            .await
            .map_err(|e| TransferError::Unavailable(format!("opening a channel: {e}")))?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| TransferError::Unavailable(format!("starting sftp: {e}")))?;
        let sftp = SftpSession::new(channel.into_stream())
            .await
            .map_err(sftp_err)?;
        Ok((handle, sftp))
    }

    /// Runs `op` in a fresh session, bounded by the timeout, then closes it.
    async fn with<T, F, Fut>(&self, op: F) -> Result<T, TransferError>
    where
        F: FnOnce(SftpSession) -> Fut,
        Fut: std::future::Future<Output = Result<T, TransferError>>,
    {
        let work = async {
            let (handle, sftp) = self.session().await?;
            let out = op(sftp).await;
            let _ = handle.disconnect(Disconnect::ByApplication, "", "en").await;
            out
        };
        tokio::time::timeout(self.timeout * 4, work)
            .await
            .map_err(|_| TransferError::Unavailable("the sftp session timed out".into()))?
    }
}

#[async_trait]
impl FileDrop for SftpDrop {
    async fn exists(&self, name: &str) -> Result<bool, TransferError> {
        let path = self.path(name);
        self.with(|s| async move {
            match s.metadata(path).await {
                Ok(_) => Ok(true),
                Err(e) if is_missing(&e) => Ok(false),
                Err(e) => Err(sftp_err(e)),
            }
        })
        .await
    }

    async fn upload(&self, name: &str, bytes: &[u8]) -> Result<(), TransferError> {
        let path = self.path(name);
        self.with(|s| async move {
            let mut f = s.create(path).await.map_err(sftp_err)?;
            let io = |e: std::io::Error| TransferError::Unavailable(format!("writing: {e}"));
            f.write_all(bytes).await.map_err(io)?;
            f.shutdown().await.map_err(io)?;
            Ok(())
        })
        .await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), TransferError> {
        let (from, to) = (self.path(from), self.path(to));
        self.with(|s| async move { s.rename(from, to).await.map_err(sftp_err) })
            .await
    }

    async fn list_returns(&self) -> Result<Vec<String>, TransferError> {
        let dir = self.path("return");
        self.with(|s| async move {
            match s.read_dir(dir).await {
                Ok(entries) => Ok(entries
                    .filter(|e| e.file_type().is_file())
                    .map(|e| e.file_name())
                    .collect()),
                Err(e) if is_missing(&e) => Ok(Vec::new()),
                Err(e) => Err(sftp_err(e)),
            }
        })
        .await
    }

    async fn open_return(&self, name: &str) -> Result<Box<dyn Read + Send>, TransferError> {
        let path = self.path(&format!("return/{name}"));
        self.with(|s| async move {
            let io = |e: std::io::Error| TransferError::Unavailable(format!("spooling: {e}"));
            let spool = tempfile::tempfile().map_err(io)?;
            let mut out = tokio::fs::File::from_std(spool);
            let mut remote = s.open(path).await.map_err(sftp_err)?;
            tokio::io::copy(&mut remote, &mut out).await.map_err(io)?;
            let mut spool = out.into_std().await;
            spool.seek(SeekFrom::Start(0)).map_err(io)?;
            Ok(Box::new(spool) as Box<dyn Read + Send>)
        })
        .await
    }

    async fn archive_return(&self, name: &str) -> Result<(), TransferError> {
        let dir = self.path("return");
        let name = name.to_owned();
        self.with(|s| async move {
            // Exists after the first archive: ignore that answer.
            let _ = s.create_dir(format!("{dir}/processed")).await;
            s.rename(format!("{dir}/{name}"), format!("{dir}/processed/{name}"))
                .await
                .map_err(sftp_err)
        })
        .await
    }
}
