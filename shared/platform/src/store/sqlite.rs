//! The embedded backend: one SQLite file in WAL mode. One writer connection
//! (SQLite allows one writer at a time anyway) and a few readers; every
//! call runs on tokio's blocking pool so the async runtime never stalls.
//! Conditional transactions run under `BEGIN IMMEDIATE`, which makes the
//! check-then-write atomic against every other process using the file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use domain::StoreError;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::items::{
    Cond, Cursor, Item, ItemStore, Key, Page, Query, SkRange, Table, TxError, Write,
    check_batch_get, check_transaction,
};

const READERS: usize = 4;

#[derive(Clone)]
pub struct SqliteItems {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

fn table_name(t: Table) -> &'static str {
    t.suffix()
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(unavailable)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(unavailable)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(unavailable)?;
    // FULL: a committed redemption survives a power cut, not only a crash.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(unavailable)?;
    Ok(conn)
}

impl SqliteItems {
    /// Opens (creating if needed) the store file and its tables.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(unavailable)?;
        }
        let writer = open_conn(&path)?;
        create_schema(&writer)?;
        let readers = (0..READERS)
            .map(|_| open_conn(&path).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Every item of a table, expired ones included (audits: what the file
    /// still holds).
    pub async fn dump(&self, table: Table) -> Result<Vec<Item>, StoreError> {
        self.with_reader(move |conn| {
            let sql = format!("SELECT {COLUMNS} FROM \"{}\"", table_name(table));
            let mut st = conn.prepare(&sql).map_err(unavailable)?;
            st.query_map([], row_to_item)
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)
        })
        .await
    }

    async fn with_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let i = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let conn = inner.readers[i]
                .lock()
                .map_err(|_| unavailable("reader lock poisoned"))?;
            f(&conn)
        })
        .await
        .map_err(unavailable)?
    }

    async fn with_writer<T: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner
                .writer
                .lock()
                .map_err(|_| E::from(unavailable("writer lock poisoned")))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| E::from(unavailable(e)))?
    }
}

fn create_schema(conn: &Connection) -> Result<(), StoreError> {
    for t in Table::ALL {
        let n = table_name(t);
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS \"{n}\" (
                pk TEXT NOT NULL,
                sk TEXT NOT NULL,
                version INTEGER NOT NULL,
                expires_at INTEGER,
                gsi1pk TEXT,
                gsi1sk TEXT,
                body TEXT NOT NULL,
                PRIMARY KEY (pk, sk)
             ) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS \"{n}_gsi1\" ON \"{n}\" (gsi1pk, gsi1sk, pk, sk)
                WHERE gsi1pk IS NOT NULL;"
        ))
        .map_err(unavailable)?;
    }
    Ok(())
}

fn row_to_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<Item> {
    let gsi1pk: Option<String> = row.get(4)?;
    let gsi1sk: Option<String> = row.get(5)?;
    Ok(Item {
        pk: row.get(0)?,
        sk: row.get(1)?,
        version: row.get(2)?,
        expires_at: row.get(3)?,
        gsi1: gsi1pk.zip(gsi1sk),
        body: row.get(6)?,
    })
}

const COLUMNS: &str = "pk, sk, version, expires_at, gsi1pk, gsi1sk, body";

fn get_item(
    conn: &Connection,
    table: Table,
    pk: &str,
    sk: &str,
    now: i64,
) -> Result<Option<Item>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM \"{}\" WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
        table_name(table)
    );
    conn.prepare_cached(&sql)
        .and_then(|mut st| st.query_row(params![pk, sk, now], row_to_item).optional())
        .map_err(unavailable)
}

fn put_item(conn: &Connection, table: Table, item: &Item) -> rusqlite::Result<()> {
    let sql = format!(
        "INSERT OR REPLACE INTO \"{}\" ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        table_name(table)
    );
    let (g1, g2) = match &item.gsi1 {
        Some((a, b)) => (Some(a.as_str()), Some(b.as_str())),
        None => (None, None),
    };
    conn.prepare_cached(&sql)?.execute(params![
        item.pk,
        item.sk,
        item.version,
        item.expires_at,
        g1,
        g2,
        item.body
    ])?;
    Ok(())
}

fn delete_item(conn: &Connection, table: Table, pk: &str, sk: &str) -> rusqlite::Result<()> {
    let sql = format!(
        "DELETE FROM \"{}\" WHERE pk = ?1 AND sk = ?2",
        table_name(table)
    );
    conn.prepare_cached(&sql)?.execute(params![pk, sk])?;
    Ok(())
}

fn cond_holds(
    conn: &Connection,
    table: Table,
    pk: &str,
    sk: &str,
    cond: Cond,
    now: i64,
) -> Result<bool, StoreError> {
    if cond == Cond::None {
        return Ok(true);
    }
    let live = get_item(conn, table, pk, sk, now)?;
    Ok(match cond {
        Cond::None => true,
        Cond::Absent => live.is_none(),
        Cond::Present => live.is_some(),
        Cond::Version(v) => live.is_some_and(|i| i.version == v),
    })
}

/// `prefix` .. the largest string starting with it, as a half-open range.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

fn run_query(conn: &Connection, q: &Query, now: i64) -> Result<Page, StoreError> {
    let t = table_name(q.table);
    let (pk_col, sk_col) = if q.on_gsi1 {
        ("gsi1pk", "gsi1sk")
    } else {
        ("pk", "sk")
    };
    let mut sql = format!(
        "SELECT {COLUMNS} FROM \"{t}\" WHERE {pk_col} = ?1 AND (expires_at IS NULL OR expires_at > ?2)"
    );
    // Parameters ?1 and ?2 are the partition key and `now`; the rest follow.
    let mut args: Vec<String> = Vec::new();
    let mut bind = |v: String| {
        args.push(v);
        format!("?{}", args.len() + 2)
    };
    match &q.sk {
        SkRange::All => {}
        SkRange::Prefix(p) => {
            let (lo, hi) = (bind(p.clone()), bind(prefix_end(p)));
            sql.push_str(&format!(" AND {sk_col} >= {lo} AND {sk_col} < {hi}"));
        }
        SkRange::Between(a, b) => {
            let (lo, hi) = (bind(a.clone()), bind(b.clone()));
            sql.push_str(&format!(" AND {sk_col} >= {lo} AND {sk_col} <= {hi}"));
        }
    }
    let cmp = if q.descending { "<" } else { ">" };
    if let Some(c) = &q.after {
        if q.on_gsi1 {
            let gsk = c.gsi1.as_ref().map(|g| g.1.clone()).unwrap_or_default();
            let (a, b, d) = (bind(gsk), bind(c.pk.clone()), bind(c.sk.clone()));
            sql.push_str(&format!(" AND (gsi1sk, pk, sk) {cmp} ({a}, {b}, {d})"));
        } else {
            let a = bind(c.sk.clone());
            sql.push_str(&format!(" AND sk {cmp} {a}"));
        }
    }
    let dir = if q.descending { "DESC" } else { "ASC" };
    if q.on_gsi1 {
        sql.push_str(&format!(" ORDER BY gsi1sk {dir}, pk {dir}, sk {dir}"));
    } else {
        sql.push_str(&format!(" ORDER BY sk {dir}"));
    }
    if let Some(l) = q.limit {
        sql.push_str(&format!(" LIMIT {}", l.max(1)));
    }
    let mut st = conn.prepare_cached(&sql).map_err(unavailable)?;
    let mut bind: Vec<&dyn rusqlite::ToSql> = vec![&q.pk, &now];
    for a in &args {
        bind.push(a);
    }
    let items = st
        .query_map(bind.as_slice(), row_to_item)
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(unavailable)?;
    let next = match q.limit {
        Some(l) if items.len() >= l.max(1) => items.last().map(Cursor::of),
        _ => None,
    };
    Ok(Page { items, next })
}

#[async_trait]
impl ItemStore for SqliteItems {
    async fn create_tables(&self) -> Result<(), StoreError> {
        self.with_writer(|c| create_schema(c)).await
    }

    async fn get(
        &self,
        table: Table,
        pk: &str,
        sk: &str,
        now: i64,
    ) -> Result<Option<Item>, StoreError> {
        let (pk, sk) = (pk.to_owned(), sk.to_owned());
        self.with_reader(move |c| get_item(c, table, &pk, &sk, now))
            .await
    }

    async fn get_many(&self, keys: &[Key], now: i64) -> Result<Vec<Option<Item>>, StoreError> {
        check_batch_get(keys)?;
        let keys = keys.to_vec();
        self.with_reader(move |c| {
            keys.iter()
                .map(|k| get_item(c, k.table, &k.pk, &k.sk, now))
                .collect()
        })
        .await
    }

    async fn query(&self, q: &Query, now: i64) -> Result<Page, StoreError> {
        let q = q.clone();
        self.with_reader(move |c| run_query(c, &q, now)).await
    }

    async fn transact(&self, writes: Vec<Write>, now: i64) -> Result<(), TxError> {
        check_transaction(&writes)?;
        self.with_writer(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            for (i, w) in writes.iter().enumerate() {
                let (table, pk, sk, cond) = match w {
                    Write::Put { table, item, cond } => {
                        (*table, item.pk.as_str(), item.sk.as_str(), *cond)
                    }
                    Write::Delete {
                        table,
                        pk,
                        sk,
                        cond,
                    }
                    | Write::Check {
                        table,
                        pk,
                        sk,
                        cond,
                    } => (*table, pk.as_str(), sk.as_str(), *cond),
                };
                if !cond_holds(&tx, table, pk, sk, cond, now)? {
                    return Err(TxError::Condition(i));
                }
            }
            for w in &writes {
                match w {
                    Write::Put { table, item, .. } => put_item(&tx, *table, item),
                    Write::Delete { table, pk, sk, .. } => delete_item(&tx, *table, pk, sk),
                    Write::Check { .. } => Ok(()),
                }
                .map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn batch_put(&self, table: Table, items: Vec<Item>) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        self.with_writer(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            for item in &items {
                put_item(&tx, table, item).map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn batch_delete(
        &self,
        table: Table,
        keys: Vec<(String, String)>,
    ) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.with_writer(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            for (pk, sk) in &keys {
                delete_item(&tx, table, pk, sk).map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }
}
