//! [`Store`] on SQLite through sqlx: the embedded default. The database file lives under the
//! data dir; migrations run at open. WAL mode and a busy timeout let several actors write;
//! transactions that write start with `BEGIN IMMEDIATE` so they never fail on lock upgrade.
//! The queries are shared with the Postgres store ([`super::sql`]).

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use crate::error::{Error, Result};
use crate::ports::sql::NEAR_DUPLICATE_CANDIDATES;

/// Values of each band per near-duplicate lookup statement: the statement has five times as
/// many terms (SQLite allows 500 in a compound `SELECT`).
const BAND_SLOTS: usize = 20;

/// The near-duplicate lookup: term `band * BAND_SLOTS + slot` looks up parameter
/// `?(term + 1)` in band `band`; the window start and the candidate limit follow.
static BAND_NEIGHBOURS: LazyLock<String> = LazyLock::new(|| {
    let terms = 5 * BAND_SLOTS;
    let window = terms + 1;
    let limit = terms + 2;
    let mut sql = String::from("SELECT term, document_id, simhash FROM (");
    for term in 0..terms {
        if term > 0 {
            sql.push_str(" UNION ALL ");
        }
        let band = term / BAND_SLOTS;
        let value = term + 1;
        sql.push_str(&format!(
            "SELECT {term} AS term, document_id, simhash FROM (SELECT document_id, simhash \
             FROM document_fingerprints WHERE band{band} = ?{value} AND stored_at > ?{window} \
             ORDER BY stored_at DESC LIMIT ?{limit}) AS c{term}"
        ));
    }
    sql.push_str(") AS c");
    sql
});

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers (WAL lets them run beside the writer).
    pool: SqlitePool,
    /// The one writer connection. SQLite has one write lock; writers queued on its busy
    /// handler poll with sleeps and starve each other (seconds behind a busy agent), so
    /// writes wait in the pool's fair queue for this connection instead.
    writer: SqlitePool,
    /// The background checkpoint task of a file database, stopped with the last clone.
    _checkpointer: Option<Arc<AbortOnDrop>>,
}

/// How often the background task checkpoints the WAL into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Aborts its task when dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Copies the WAL's committed pages into the database file every `interval`, from a reader
/// connection, until the pool is closed. `PASSIVE` waits for no reader or writer: the writer
/// goes on appending while it runs, and the next commit after a complete checkpoint starts
/// the WAL over, so it stays about one interval's writes long.
async fn checkpoints(pool: SqlitePool, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %err, "sqlite checkpoint failed; retried at the next interval");
        }
    }
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
        // Checkpoints run in the background (`checkpoints`), not on the writer's commits: an
        // automatic checkpoint every 1,000 pages made one commit in two take 15–21 ms instead
        // of 3 ms in the embedded pipeline.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let checkpointer = tokio::spawn(checkpoints(pool.clone(), CHECKPOINT_INTERVAL));
        Ok(SqliteStore {
            pool,
            writer,
            _checkpointer: Some(Arc::new(AbortOnDrop(checkpointer))),
        })
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
            _checkpointer: None,
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

    /// For each band and value, the newest fingerprints within the window that share it. SQLite
    /// has no `LATERAL`, so the statement is a compound `SELECT` of one term per value; its
    /// shape is fixed ([`BAND_SLOTS`] values of each band, unused slots bound to -1, which no
    /// band holds), so each connection prepares it once. Parsing a new shape every batch
    /// was about a quarter of the writer's time. The band indexes carry the SimHash and
    /// document id, so the table is not read.
    async fn band_neighbours(
        tx: &mut Transaction<'static, Sqlite>,
        bands: &[(usize, i32)],
        window_start: i64,
    ) -> Result<Vec<(usize, i32, String, i64)>> {
        let mut by_band: [Vec<i32>; 5] = Default::default();
        for &(band, value) in bands {
            if let Some(values) = by_band.get_mut(band) {
                values.push(value);
            }
        }
        let statements = by_band
            .iter()
            .map(|values| values.len().div_ceil(BAND_SLOTS))
            .max()
            .unwrap_or(0);
        let mut found = Vec::new();
        for statement in 0..statements {
            let window = statement * BAND_SLOTS..(statement + 1) * BAND_SLOTS;
            let mut query = sqlx::query(BAND_NEIGHBOURS.as_str());
            for values in &by_band {
                for slot in window.clone() {
                    query = query.bind(values.get(slot).copied().unwrap_or(-1));
                }
            }
            query = query.bind(window_start).bind(NEAR_DUPLICATE_CANDIDATES);
            for row in query.fetch_all(&mut **tx).await? {
                let term: i64 = row.try_get("term")?;
                let Ok(term) = usize::try_from(term) else {
                    continue;
                };
                let band = term / BAND_SLOTS;
                let Some(&value) = by_band
                    .get(band)
                    .and_then(|values| values.get(window.start + term % BAND_SLOTS))
                else {
                    continue;
                };
                found.push((
                    band,
                    value,
                    row.try_get("document_id")?,
                    row.try_get("simhash")?,
                ));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MemoryEntry;
    use crate::ports::Store;

    /// The writer never checkpoints (`wal_autocheckpoint = 0`): what reaches the database
    /// file, well under the 1,000 pages an automatic checkpoint would wait for, got there
    /// through the background task.
    #[tokio::test]
    async fn the_background_task_checkpoints_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        let store = SqliteStore::open(&path).await.unwrap();
        // The schema first, so that only the write below is left in the WAL.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&store.pool)
            .await
            .unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        let now = chrono::Utc::now();
        let entries: Vec<MemoryEntry> = (0..400)
            .map(|index| MemoryEntry {
                namespace: "checkpoint".into(),
                key: format!("key-{index}"),
                value: serde_json::json!({ "padding": "x".repeat(400) }),
                version: 1,
                written_by: "test".into(),
                updated_at: now,
                expires_at: None,
            })
            .collect();
        store.write_memory(&entries, &[]).await.unwrap();
        let wal = dir.path().join("store.sqlite-wal");
        assert!(
            std::fs::metadata(&wal).unwrap().len() > 100_000,
            "the write went to the WAL"
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let after = std::fs::metadata(&path).unwrap().len();
            if after > before + 100_000 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the database file did not grow within 10 s ({before} -> {after} bytes)"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        store.close().await;
    }
}
