//! Real file servers for the loyalty export tests, each a Python script in
//! `tests/tests/fixtures/` on a free 127.0.0.1 port, stopped when dropped:
//! FTP / FTPS (pyftpdlib, `ftp_server.py`) and SFTP (paramiko,
//! `sftp_server.py`). Faults are armed through files in a control folder.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const USER: &str = "netcarrots";
pub const PASSWORD: &str = "ftp-secret-0123";

pub struct FtpServer {
    child: Child,
    pub port: u16,
    /// The FTP user's home (the upload folder).
    pub root: tempfile::TempDir,
    control: tempfile::TempDir,
    /// The self-signed certificate (FTPS only).
    pub cert_pem: Option<String>,
    /// The host key fingerprint, `SHA256:...` (SFTP only).
    pub host_key: Option<String>,
}

/// The Python that has pyftpdlib: `infra/test`'s venv, else `python3`.
pub fn python() -> String {
    std::env::var("GUESTHUB_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

impl FtpServer {
    /// FTP, or FTPS with explicit TLS when `tls`.
    pub async fn start(tls: bool) -> Self {
        Self::spawn("ftp_server.py", if tls { &["--tls"] } else { &[] }).await
    }

    /// SFTP.
    pub async fn start_sftp() -> Self {
        Self::spawn("sftp_server.py", &[]).await
    }

    async fn spawn(script: &str, extra: &[&str]) -> Self {
        let root = tempfile::tempdir().unwrap();
        let control = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(script);
        let mut cmd = Command::new(python());
        cmd.arg(&script)
            .arg(root.path())
            .arg(control.path())
            .arg(USER)
            .arg(PASSWORD)
            .args(extra);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("GUESTHUB_FTP_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} (pyftpdlib): {e}", python()));
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
            .await
            .expect("the file server did not start in 20 s")
            .unwrap()
            .unwrap_or_else(|| {
                panic!(
                    "the file server exited: are pyftpdlib and paramiko installed for {}? Run ./infra/test.",
                    python()
                )
            });
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let cert_pem = v["cert"]
            .as_str()
            .map(|p| std::fs::read_to_string(p).unwrap());
        Self {
            child,
            port: v["port"].as_u64().unwrap() as u16,
            root,
            control,
            cert_pem,
            host_key: v["host_key"].as_str().map(str::to_owned),
        }
    }

    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}/{path}", self.port)
    }

    /// Arms a fault for its next `shots` occurrences (`refuse_rename`,
    /// `cut_upload`) or on (`refuse_login`).
    pub fn arm(&self, fault: &str, shots: u32) {
        std::fs::write(self.control.path().join(fault), shots.to_string()).unwrap();
    }

    pub fn disarm(&self, fault: &str) {
        let _ = std::fs::remove_file(self.control.path().join(fault));
    }

    pub fn dir(&self, sub: &str) -> PathBuf {
        let d = self.root.path().join(sub);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
