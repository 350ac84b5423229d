//! Where loyalty export files go: NetCarrots' FTP, FTPS (explicit TLS) or
//! SFTP server, or a local folder (the outbox of local runs and tests).
//! Each is a `domain::loyalty::ports::FileDrop`.
//!
//! - [`ftp`]: FTP and FTPS with `suppaftp`'s blocking client on tokio's
//!   blocking pool.
//! - [`sftp`]: SFTP with `russh` + `russh-sftp` (pure Rust), the server's
//!   host key pinned by its SHA-256 fingerprint.
//! - [`local`]: a folder.
//!
//! Every remote operation is one short session, so a broken connection
//! never poisons the next step, and every session is bounded by timeouts.

pub mod ftp;
pub mod local;
pub mod sftp;

use std::sync::Arc;
use std::time::Duration;

use domain::loyalty::ports::{FileDrop, TransferError};
use domain::loyalty::{LoyaltyConnection, Transport};

pub use ftp::FtpDrop;
pub use local::LocalDrop;
pub use sftp::SftpDrop;

/// A password held in memory only; never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn new(p: impl Into<String>) -> Self {
        Self(p.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Opens the file drop a connection describes.
pub fn open(
    conn: &LoyaltyConnection,
    password: Password,
    timeout: Duration,
) -> Result<Arc<dyn FileDrop>, TransferError> {
    match conn.url.transport {
        Transport::Ftp | Transport::Ftps => Ok(Arc::new(FtpDrop::new(conn, password, timeout)?)),
        Transport::Sftp => Ok(Arc::new(SftpDrop::new(conn, password, timeout)?)),
    }
}
