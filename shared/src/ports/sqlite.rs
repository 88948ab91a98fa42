//! [`Store`] on SQLite through sqlx: the embedded default. The database file lives under the
//! data dir; migrations run at open. WAL mode and a busy timeout let several actors write;
//! transactions that write start with `BEGIN IMMEDIATE` so they never fail on lock upgrade.
//! The queries are shared with the Postgres store ([`super::sql`]).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};

use crate::error::{Error, Result};
use crate::ports::sql::NEAR_DUPLICATE_CANDIDATES;

/// Band values per near-duplicate lookup statement: each is one term of a compound `SELECT`,
/// and SQLite allows 500.
const BANDS_PER_STATEMENT: usize = 100;

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

    /// For each band and value, the newest fingerprints within the window that share it: one
    /// compound `SELECT` (SQLite has no `LATERAL`) of at most 500 terms, its limit; the band
    /// indexes carry the SimHash and document id, so the table is not read.
    async fn band_neighbours(
        tx: &mut Transaction<'static, Sqlite>,
        bands: &[(usize, i32)],
        window_start: i64,
    ) -> Result<Vec<(usize, i32, String, i64)>> {
        let mut found = Vec::new();
        for chunk in bands.chunks(BANDS_PER_STATEMENT) {
            let mut builder: QueryBuilder<Sqlite> =
                QueryBuilder::new("SELECT pair, document_id, simhash FROM (");
            for (pair, (band, value)) in chunk.iter().enumerate() {
                if pair > 0 {
                    builder.push(" UNION ALL ");
                }
                // `pair` and `band` are small integers of ours, not input.
                builder
                    .push(format!(
                        "SELECT {pair} AS pair, document_id, simhash FROM (SELECT document_id, \
                         simhash FROM document_fingerprints WHERE band{band} = "
                    ))
                    .push_bind(*value)
                    .push(" AND stored_at > ")
                    .push_bind(window_start)
                    .push(" ORDER BY stored_at DESC LIMIT ")
                    .push_bind(NEAR_DUPLICATE_CANDIDATES)
                    .push(format!(") AS c{pair}"));
            }
            builder.push(") AS c");
            for row in builder
                .build()
                .persistent(false)
                .fetch_all(&mut **tx)
                .await?
            {
                let pair: i64 = row.try_get("pair")?;
                if let Some(&(band, value)) = usize::try_from(pair).ok().and_then(|p| chunk.get(p))
                {
                    found.push((
                        band,
                        value,
                        row.try_get("document_id")?,
                        row.try_get("simhash")?,
                    ));
                }
            }
        }
        Ok(found)
    }

    /// Nothing to do: `BEGIN IMMEDIATE` already serialises writers.
    async fn lock_merge_keys(_tx: &mut Transaction<'static, Sqlite>, _keys: &[&str]) -> Result<()> {
        Ok(())
    }
}

crate::sql_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
