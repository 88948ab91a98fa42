//! [`Store`] on SQLite through sqlx: the embedded default. The database file lives under the
//! data dir; migrations run at open. WAL mode and a busy timeout let several actors write;
//! transactions that write start with `BEGIN IMMEDIATE` so they never fail on lock upgrade.
//! The queries are shared with the Postgres store ([`super::sql`]).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::error::{Error, Result};

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers (WAL lets them run beside the writer).
    pool: SqlitePool,
    /// The one writer connection. SQLite has one write lock; writers queued on its busy
    /// handler poll with sleeps and starve each other (seconds behind a busy agent), so
    /// writes wait in the pool's fair queue for this connection instead.
    writer: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and runs migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                context: format!("creating data dir {}", dir.display()),
                source,
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL's recommended level: a commit is not fsynced (checkpoints are), so a power
            // loss may roll back the last commits, while a crash of the process loses nothing
            // and the file is never corrupted. The embedded swarm keeps its queues in memory,
            // so a power loss loses their pending work anyway; FULL cost a 3–17 ms fsync per
            // recorded batch, the single largest wait of the embedded pipeline.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(SqliteStore { pool, writer })
    }

    /// A private in-memory database (one connection), for tests.
    pub async fn in_memory() -> Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore {
            writer: pool.clone(),
            pool,
        })
    }

    /// Write transactions take SQLite's write lock at once, so they never fail upgrading it.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// The pool writes go through.
    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// Nothing to do: `BEGIN IMMEDIATE` already serialises writers.
    async fn lock_merge_keys(_tx: &mut Transaction<'static, Sqlite>, _keys: &[&str]) -> Result<()> {
        Ok(())
    }
}

crate::sql_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
