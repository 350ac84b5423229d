//! Configuration, read from the environment once at start. Variable names
//! match `template.yaml`. A bad value fails start-up with a clear message.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::store::dynamo::DynamoItems;
use crate::store::sqlite::SqliteItems;
use crate::store::{ItemStore, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite {
        path: PathBuf,
    },
    Dynamodb {
        table_prefix: String,
        endpoint: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreKind,
    /// Largest request body accepted, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// How long a process remembers a caller's partner and property
    /// (`store::caller_cache`); zero reads them on every request.
    pub caller_cache: Duration,
}

pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
pub const DEFAULT_CALLER_CACHE_SECONDS: u64 = 30;

impl Config {
    /// `GUESTHUB_STORE` = `dynamodb` (with `GUESTHUB_TABLE_PREFIX`) or
    /// `sqlite` (with `GUESTHUB_SQLITE_PATH`); `GUESTHUB_MAX_BODY_BYTES`;
    /// `GUESTHUB_AUTH_CACHE_SECONDS`.
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let store = match var("GUESTHUB_STORE").as_deref().unwrap_or("dynamodb") {
            "dynamodb" => StoreKind::Dynamodb {
                table_prefix: var("GUESTHUB_TABLE_PREFIX")
                    .context("GUESTHUB_TABLE_PREFIX must name the DynamoDB tables' prefix")?,
                endpoint: var("GUESTHUB_DYNAMODB_ENDPOINT"),
            },
            "sqlite" => StoreKind::Sqlite {
                path: var("GUESTHUB_SQLITE_PATH")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(".guesthub/guesthub.sqlite3")),
            },
            other => bail!("GUESTHUB_STORE must be 'dynamodb' or 'sqlite', not {other:?}"),
        };
        let max_body_bytes = match var("GUESTHUB_MAX_BODY_BYTES") {
            Some(v) => v
                .parse()
                .context("GUESTHUB_MAX_BODY_BYTES must be a number of bytes")?,
            None => DEFAULT_MAX_BODY_BYTES,
        };
        let cache_seconds = match var("GUESTHUB_AUTH_CACHE_SECONDS") {
            Some(v) => v
                .parse()
                .context("GUESTHUB_AUTH_CACHE_SECONDS must be a whole number of seconds")?,
            None => DEFAULT_CALLER_CACHE_SECONDS,
        };
        Ok(Self {
            store,
            max_body_bytes,
            caller_cache: Duration::from_secs(cache_seconds),
        })
    }

    /// Connects the configured store, with the caller cache as configured.
    pub async fn open_store(&self) -> anyhow::Result<Store> {
        Ok(self
            .store
            .open()
            .await?
            .with_caller_cache(self.caller_cache))
    }
}

impl StoreKind {
    /// Connects the configured backend.
    pub async fn open(&self) -> anyhow::Result<Store> {
        let items: Arc<dyn ItemStore> = match self {
            StoreKind::Sqlite { path } => Arc::new(
                SqliteItems::open(path)
                    .with_context(|| format!("opening the SQLite store at {}", path.display()))?,
            ),
            StoreKind::Dynamodb {
                table_prefix,
                endpoint,
            } => Arc::new(DynamoItems::connect(table_prefix, endpoint.as_deref()).await),
        };
        Ok(Store::new(items))
    }
}

/// `GUESTHUB_EVENT_BUS`: the EventBridge bus the events dispatcher
/// publishes every event to (AWS only; the served hub has no bus).
pub fn event_bus() -> anyhow::Result<String> {
    std::env::var("GUESTHUB_EVENT_BUS")
        .context("GUESTHUB_EVENT_BUS must name the EventBridge bus events are published to")
}
