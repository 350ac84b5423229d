//! FTP and FTPS (explicit TLS) with `suppaftp`'s blocking client, run on
//! tokio's blocking pool with connect/read/write timeouts on every socket.

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::loyalty::ports::{FileDrop, TransferError};
use domain::loyalty::{LoyaltyConnection, RemoteUrl, Transport};
use suppaftp::types::FileType;
use suppaftp::{FtpError, ImplFtpStream, RustlsConnector, TlsStream};

use super::Password;

/// NetCarrots' FTP or FTPS server.
pub struct FtpDrop {
    inner: Arc<FtpConfig>,
}

struct FtpConfig {
    url: RemoteUrl,
    username: String,
    password: Password,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
}

fn tls_config(extra_ca_pem: Option<&str>) -> Result<Arc<rustls::ClientConfig>, TransferError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_ca_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| TransferError::Config(format!("CA certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| TransferError::Config(format!("CA certificate: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(TransferError::Config(
                "the CA certificate holds no PEM certificate".into(),
            ));
        }
    }
    // Two crypto providers are linked (ring, aws-lc-rs): name one.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransferError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What one FTP session does.
enum Op {
    Exists(String),
    Upload(String, Vec<u8>),
    Rename(String, String),
    List(String),
    Fetch(String),
    Archive(String, String),
}

enum Done {
    Unit,
    Bool(bool),
    Names(Vec<String>),
    File(std::fs::File),
}

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

fn map_err(e: FtpError) -> TransferError {
    match e {
        FtpError::UnexpectedResponse(r) => {
            let code = r.status.code();
            let text = String::from_utf8_lossy(&r.body).trim().to_owned();
            if code == 530 {
                TransferError::Config(format!("login refused: {code} {text}"))
            } else if (500..600).contains(&code) {
                TransferError::Refused(format!("{code} {text}"))
            } else {
                TransferError::Unavailable(format!("{code} {text}"))
            }
        }
        FtpError::SecureError(s) => TransferError::Unavailable(format!("TLS: {s}")),
        // A certificate the connection does not trust: fixing it takes a
        // person (`--ca-cert`), not a retry.
        FtpError::ConnectionError(io)
            if io
                .get_ref()
                .is_some_and(|e| e.downcast_ref::<rustls::Error>().is_some()) =>
        {
            TransferError::Config(format!("TLS: {io}"))
        }
        other => TransferError::Unavailable(other.to_string()),
    }
}

fn is_missing(e: &FtpError) -> bool {
    matches!(e, FtpError::UnexpectedResponse(r) if r.status.code() == 550)
}

fn run_op<T: TlsStream>(s: &mut ImplFtpStream<T>, op: Op) -> Result<Done, FtpError> {
    match op {
        // SIZE works on the control channel alone (no data connection).
        Op::Exists(name) => match s.size(&name) {
            Ok(_) => Ok(Done::Bool(true)),
            Err(e) if is_missing(&e) => Ok(Done::Bool(false)),
            Err(e) => Err(e),
        },
        Op::Upload(name, bytes) => {
            s.put_file(&name, &mut Cursor::new(bytes))?;
            Ok(Done::Unit)
        }
        Op::Rename(from, to) => {
            s.rename(&from, &to)?;
            Ok(Done::Unit)
        }
        Op::List(dir) => match s.nlst(Some(&dir)) {
            Ok(names) => Ok(Done::Names(
                names.iter().map(|n| basename(n).to_owned()).collect(),
            )),
            Err(e) if is_missing(&e) => Ok(Done::Names(Vec::new())),
            Err(e) => Err(e),
        },
        Op::Fetch(path) => {
            let mut spool = tempfile::tempfile().map_err(FtpError::ConnectionError)?;
            s.retr(&path, |r| {
                std::io::copy(r, &mut spool).map_err(FtpError::ConnectionError)?;
                Ok(())
            })?;
            spool
                .seek(SeekFrom::Start(0))
                .map_err(FtpError::ConnectionError)?;
            Ok(Done::File(spool))
        }
        Op::Archive(dir, name) => {
            // Exists already after the first archive: ignore that answer.
            let _ = s.mkdir(format!("{dir}/processed"));
            s.rename(format!("{dir}/{name}"), format!("{dir}/processed/{name}"))?;
            Ok(Done::Unit)
        }
    }
}

impl FtpConfig {
    fn socket(&self, addr: SocketAddr) -> std::io::Result<TcpStream> {
        let s = TcpStream::connect_timeout(&addr, self.timeout)?;
        s.set_read_timeout(Some(self.timeout))?;
        s.set_write_timeout(Some(self.timeout))?;
        Ok(s)
    }

    fn prepare<T: TlsStream>(&self, s: &mut ImplFtpStream<T>) -> Result<(), FtpError> {
        s.login(self.username.as_str(), self.password.expose())?;
        s.transfer_type(FileType::Binary)?;
        if !self.url.path.is_empty() {
            s.cwd(&self.url.path)?;
        }
        Ok(())
    }

    fn session(self: &Arc<Self>, op: Op) -> Result<Done, TransferError> {
        let addr = (self.url.host.as_str(), self.url.port)
            .to_socket_addrs()
            .map_err(|e| TransferError::Unavailable(format!("resolving the host: {e}")))?
            .next()
            .ok_or_else(|| TransferError::Unavailable("the host has no address".into()))?;
        let tcp = self
            .socket(addr)
            .map_err(|e| TransferError::Unavailable(format!("connecting: {e}")))?;
        let me = Arc::clone(self);
        let data = move |a: SocketAddr| me.socket(a).map_err(FtpError::ConnectionError);
        match &self.tls {
            None => {
                let mut s = suppaftp::FtpStream::connect_with_stream(tcp)
                    .map_err(map_err)?
                    .passive_stream_builder(data);
                self.prepare(&mut s).map_err(map_err)?;
                let done = run_op(&mut s, op).map_err(map_err)?;
                let _ = s.quit();
                Ok(done)
            }
            Some(tls) => {
                let s = suppaftp::RustlsFtpStream::connect_with_stream(tcp)
                    .map_err(map_err)?
                    .passive_stream_builder(data);
                let mut s = s
                    .into_secure(RustlsConnector::from(Arc::clone(tls)), &self.url.host)
                    .map_err(map_err)?;
                self.prepare(&mut s).map_err(map_err)?;
                let done = run_op(&mut s, op).map_err(map_err)?;
                let _ = s.quit();
                Ok(done)
            }
        }
    }
}

impl FtpDrop {
    pub fn new(
        conn: &LoyaltyConnection,
        password: Password,
        timeout: Duration,
    ) -> Result<Self, TransferError> {
        let tls = match conn.url.transport {
            Transport::Ftps => Some(tls_config(conn.tls_ca_pem.as_deref())?),
            _ => None,
        };
        Ok(Self {
            inner: Arc::new(FtpConfig {
                url: conn.url.clone(),
                username: conn.username.clone(),
                password,
                tls,
                timeout,
            }),
        })
    }

    async fn run(&self, op: Op) -> Result<Done, TransferError> {
        let cfg = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || cfg.session(op))
            .await
            .map_err(|e| TransferError::Unavailable(format!("transfer task: {e}")))?
    }
}

fn unexpected() -> TransferError {
    TransferError::Unavailable("unexpected transfer result".into())
}

#[async_trait]
impl FileDrop for FtpDrop {
    async fn exists(&self, name: &str) -> Result<bool, TransferError> {
        match self.run(Op::Exists(name.to_owned())).await? {
            Done::Bool(b) => Ok(b),
            _ => Err(unexpected()),
        }
    }

    async fn upload(&self, name: &str, bytes: &[u8]) -> Result<(), TransferError> {
        self.run(Op::Upload(name.to_owned(), bytes.to_vec()))
            .await
            .map(|_| ())
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), TransferError> {
        self.run(Op::Rename(from.to_owned(), to.to_owned()))
            .await
            .map(|_| ())
    }

    async fn list_returns(&self) -> Result<Vec<String>, TransferError> {
        match self.run(Op::List("return".into())).await? {
            Done::Names(n) => Ok(n),
            _ => Err(unexpected()),
        }
    }

    async fn open_return(&self, name: &str) -> Result<Box<dyn Read + Send>, TransferError> {
        match self.run(Op::Fetch(format!("return/{name}"))).await? {
            Done::File(f) => Ok(Box::new(f)),
            _ => Err(unexpected()),
        }
    }

    async fn archive_return(&self, name: &str) -> Result<(), TransferError> {
        self.run(Op::Archive("return".into(), name.to_owned()))
            .await
            .map(|_| ())
    }
}
