//! A real FTP / FTPS server (pyftpdlib) for the loyalty export tests:
//! `tests/tests/fixtures/ftp_server.py` on a free 127.0.0.1 port, stopped
//! when dropped. Faults are armed through files in its control folder.

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
}

/// The Python that has pyftpdlib: `infra/test`'s venv, else `python3`.
pub fn python() -> String {
    std::env::var("GUESTHUB_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

impl FtpServer {
    pub async fn start(tls: bool) -> Self {
        let root = tempfile::tempdir().unwrap();
        let control = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ftp_server.py");
        let mut cmd = Command::new(python());
        cmd.arg(&script)
            .arg(root.path())
            .arg(control.path())
            .arg(USER)
            .arg(PASSWORD);
        if tls {
            cmd.arg("--tls");
        }
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
            .expect("the FTP server did not start in 20 s")
            .unwrap()
            .unwrap_or_else(|| {
                panic!(
                    "the FTP server exited: is pyftpdlib installed for {}? Run ./infra/test.",
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
