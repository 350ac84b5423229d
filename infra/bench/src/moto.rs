//! A `moto_server` of the harness's own on a free 127.0.0.1 port, stopped
//! when dropped, and a DynamoDB store on it.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use platform::store::dynamo::DynamoItems;

/// Dummy credentials and region: moto accepts any, the SDKs insist on some.
pub const ACCESS_KEY: &str = "testing";
pub const SECRET_KEY: &str = "testing";
pub const REGION: &str = "us-east-1";

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

impl Moto {
    /// Starts `python -m moto.server` and waits until it accepts connections.
    pub fn start(python: &str, log: &Path) -> Result<Self, String> {
        let port = free_port();
        let log_file = std::fs::File::create(log).map_err(|e| e.to_string())?;
        let child = Command::new(python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("starting moto with {python}: {e}"))?;
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                return Err(format!(
                    "moto_server exited ({status}); is moto[server] installed for {python}? \
                     (infra/bench/setup-python) log: {}",
                    log.display()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("moto_server did not start; log: {}", log.display()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(moto)
    }

    /// A DynamoDB backend on this server with its own tables under `prefix`
    /// (not created yet). Built from explicit settings rather than the
    /// environment, which the harness leaves alone.
    pub fn items(&self, prefix: &str) -> Arc<DynamoItems> {
        items_at(&self.endpoint, prefix)
    }

    /// Environment for a child process that talks to this server.
    pub fn env(&self, prefix: &str) -> Vec<(&'static str, String)> {
        vec![
            ("GUESTHUB_STORE", "dynamodb".into()),
            ("GUESTHUB_TABLE_PREFIX", prefix.into()),
            ("GUESTHUB_DYNAMODB_ENDPOINT", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}

/// A DynamoDB backend on `endpoint` (moto, or a proxy in front of it) with
/// its tables under `prefix`.
pub fn items_at(endpoint: &str, prefix: &str) -> Arc<DynamoItems> {
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "bench",
        ))
        .build();
    Arc::new(DynamoItems::new(
        aws_sdk_dynamodb::Client::from_conf(conf),
        prefix,
    ))
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
