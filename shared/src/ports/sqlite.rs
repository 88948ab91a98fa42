//! [`Store`] on SQLite through sqlx: the embedded default. The database file lives under the
//! data dir; migrations run at open. WAL mode and a busy timeout let several actors write;
//! transactions that write start with `BEGIN IMMEDIATE` so they never fail on lock upgrade.
//! The queries are shared with the Postgres store ([`super::sql`]), but for the
//! near-duplicate lookup, which reads a band index held in memory ([`BandIndex`]) and kept up
//! to date from the table inside each recording transaction, so writers in other processes
//! sharing the file are seen too.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use crate::domain::SearchWord;
use crate::error::{Error, Result};
use crate::ports::band_index::BandIndex;
use crate::ports::sql::{STATEMENT_CACHE_CAPACITY, SqlBackend};

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers (WAL lets them run beside the writer).
    pool: SqlitePool,
    /// The one writer connection. SQLite has one write lock; writers queued on its busy
    /// handler poll with sleeps and starve each other (seconds behind a busy agent), so
    /// writes wait in the pool's fair queue for this connection instead.
    writer: SqlitePool,
    /// The near-duplicate band index (see [`SqliteStore::band_neighbours`]), shared by every
    /// clone.
    bands: Arc<Mutex<BandIndex>>,
    /// The background checkpoint task of a file database, stopped with the last clone.
    _checkpointer: Option<Arc<AbortOnDrop>>,
}

/// How often the background task checkpoints the WAL into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// The WAL length, in frames (a page each, 4 KiB), past which the background task resets the
/// WAL: about 64 MiB.
const WAL_RESET_FRAMES: i64 = 16_384;

/// The writer's page cache, in SQLite's unit for a size in KiB (a negative count): 32 MiB,
/// against SQLite's default of 2 MiB. Every recorded document touches a dozen B-tree pages
/// at random keys (its rows and the five band indexes); with the default cache the writer
/// read most of them back with `pread` at every batch. Over 60,000 documents in the embedded
/// pipeline, three runs interleaved: 2,678 docs/s on average with the default, 3,024 with
/// 32 MiB, 3,078 with 64 MiB (BENCHMARKS.md).
const WRITER_CACHE_SIZE: &str = "-32768";

/// Aborts its task when dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What one round of [`checkpoint_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Checkpoint {
    /// Frames in the WAL after the passive checkpoint.
    wal_frames: i64,
    /// Whether the WAL was then reset (checkpointed in full and truncated to nothing).
    reset: bool,
}

/// Checkpoints the WAL every `interval` until the pool is closed (see [`checkpoint_once`]).
async fn checkpoints(pool: SqlitePool, writer: SqlitePool, interval: Duration, reset_frames: i64) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let closed = || pool.is_closed() || writer.is_closed();
    loop {
        ticks.tick().await;
        if closed() {
            return;
        }
        if let Err(err) = checkpoint_once(&pool, &writer, reset_frames).await {
            if closed() {
                return;
            }
            tracing::warn!(error = %err, "sqlite checkpoint failed; retried at the next interval");
        }
    }
}

/// Copies the WAL's committed pages into the database file, and resets the WAL when it has
/// grown past `reset_frames`.
///
/// The copy is a `PASSIVE` checkpoint from a reader connection: it waits for no reader or
/// writer, so the writer goes on appending while it runs. SQLite starts the WAL over only
/// at a commit that finds every frame copied, which a busy writer never lets happen: under a
/// steady load the WAL grew without bound (24.6 GB after 500,000 documents, its index mapped
/// into the process and counted in its RSS, and lookups through it slowing every read). So
/// past `reset_frames` a `TRUNCATE` checkpoint runs on the writer connection itself, between
/// two write transactions: it copies the few frames the passive round left, waits for
/// readers of older snapshots (the busy timeout), and truncates the WAL to nothing.
async fn checkpoint_once(
    pool: &SqlitePool,
    writer: &SqlitePool,
    reset_frames: i64,
) -> Result<Checkpoint> {
    let passive = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    let wal_frames: i64 = passive.try_get(1)?;
    if wal_frames < reset_frames {
        return Ok(Checkpoint {
            wal_frames,
            reset: false,
        });
    }
    let truncate = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(writer)
        .await?;
    let busy: i64 = truncate.try_get(0)?;
    if busy != 0 {
        tracing::warn!(
            wal_frames,
            "sqlite wal reset blocked by a reader for the busy timeout; retried at the next interval"
        );
    }
    Ok(Checkpoint {
        wal_frames,
        reset: busy == 0,
    })
}

/// What every connection has, of a file or an in-memory store alike (the contract suite runs
/// on both): foreign keys, and a statement cache that holds every shape the recording path
/// prepares.
fn with_shared_settings(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options
        .foreign_keys(true)
        .statement_cache_capacity(STATEMENT_CACHE_CAPACITY)
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
            .busy_timeout(Duration::from_secs(10));
        let options = with_shared_settings(options);
        // Checkpoints run in the background (`checkpoints`), not on the writer's commits: an
        // automatic checkpoint every 1,000 pages made one commit in two take 15–21 ms instead
        // of 3 ms in the embedded pipeline.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                options
                    .clone()
                    .pragma("wal_autocheckpoint", "0")
                    .pragma("cache_size", WRITER_CACHE_SIZE),
            )
            .await?;
        crate::ports::migrations::sqlite()
            .await?
            .run(&writer)
            .await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let checkpointer = tokio::spawn(checkpoints(
            pool.clone(),
            writer.clone(),
            CHECKPOINT_INTERVAL,
            WAL_RESET_FRAMES,
        ));
        let store = SqliteStore {
            pool,
            writer,
            bands: Arc::default(),
            _checkpointer: Some(Arc::new(AbortOnDrop(checkpointer))),
        };
        super::sql::Sql(&store).backfill_events().await?;
        Ok(store)
    }

    /// A private in-memory database (one connection), for tests.
    pub async fn in_memory() -> Result<SqliteStore> {
        let options = with_shared_settings(SqliteConnectOptions::from_str("sqlite::memory:")?);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        crate::ports::migrations::sqlite().await?.run(&pool).await?;
        let store = SqliteStore {
            writer: pool.clone(),
            pool,
            bands: Arc::default(),
            _checkpointer: None,
        };
        super::sql::Sql(&store).backfill_events().await?;
        Ok(store)
    }

    /// The band index, even after a panic while it was held: it is then rebuilt from the
    /// table, since the panic may have left it half updated.
    fn band_index(&self) -> std::sync::MutexGuard<'_, BandIndex> {
        self.bands.lock().unwrap_or_else(|poisoned| {
            let mut index = poisoned.into_inner();
            *index = BandIndex::new();
            self.bands.clear_poison();
            index
        })
    }

    /// Folds into the band index the fingerprints committed since it was last brought up to
    /// date: every row on the first call, then the rows after the last one read (by this
    /// store's own earlier batches, or by writers in other processes). It runs inside the
    /// write transaction, which holds SQLite's write lock, so no fingerprint can be committed
    /// while it reads; and it reads only committed rows, so a batch rolled back never enters
    /// the index. Every row is held whatever its age (the window is applied when candidates
    /// are read in full, and callers may pass different windows); the index's slots keep the
    /// newest rows, so its size stays bounded. If the table's highest rowid is below the last
    /// one read (rows deleted, or renumbered by a `VACUUM`), the index is rebuilt from
    /// scratch.
    async fn catch_up_bands(&self, tx: &mut Transaction<'static, Sqlite>) -> Result<()> {
        let last: i64 = self.band_index().last_rowid();
        let highest: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(rowid), 0) FROM document_fingerprints")
                .fetch_one(&mut **tx)
                .await?;
        if highest == last {
            return Ok(());
        }
        let from = if highest < last {
            tracing::warn!(
                last_read = last,
                highest,
                "document_fingerprints lost rows or was renumbered; rebuilding the band index"
            );
            *self.band_index() = BandIndex::new();
            0
        } else {
            last
        };
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT rowid, simhash FROM document_fingerprints WHERE rowid > ?1 ORDER BY rowid",
        )
        .bind(from)
        .fetch_all(&mut **tx)
        .await?;
        let mut index = self.band_index();
        // The rows end at `highest`: no other writer can commit while this transaction
        // holds the write lock.
        for (rowid, simhash) in rows {
            index.add(rowid, simhash as u64);
        }
        Ok(())
    }
}

impl SqlBackend for SqliteStore {
    type Db = Sqlite;
    type Key = i64;
    const KEY_COLUMN: &'static str = "f.rowid";

    const EXPLAIN: &'static str = "EXPLAIN QUERY PLAN ";

    /// The step's detail, indented by its depth (its parent's id is not kept: the rows come
    /// depth first, so a step deeper than the one before is its child).
    fn plan_line(row: &sqlx::sqlite::SqliteRow) -> Result<String> {
        let parent: i64 = row.try_get("parent")?;
        let detail: String = row.try_get("detail")?;
        Ok(if parent == 0 {
            detail
        } else {
            format!("  {detail}")
        })
    }

    /// FTS5 phrases of one word each (`"word"`, `"word" *` for a prefix), all required.
    fn search_expression(words: &[SearchWord]) -> String {
        let phrases: Vec<String> = words
            .iter()
            .map(|word| {
                if word.prefix {
                    format!("\"{}\" *", word.word)
                } else {
                    format!("\"{}\"", word.word)
                }
            })
            .collect();
        phrases.join(" AND ")
    }

    const SEARCH_PROBE: Option<&'static str> = Some(
        "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM event_search WHERE event_search MATCH $1 \
         LIMIT 2000)), (SELECT COALESCE(MAX(id), 0) FROM tge_events)",
    );

    /// A rare search reads its matches from the index (rowid = event id) and sorts them. A
    /// common one reads them once into a list (`+` keeps SQLite from looking each up by id)
    /// and walks the events newest first, keeping those in it, until the page is full.
    fn push_search(builder: &mut sqlx::QueryBuilder<Sqlite>, expression: String, common: bool) {
        builder
            .push(if common {
                " AND +e.id IN"
            } else {
                " AND e.id IN"
            })
            .push(" (SELECT rowid FROM event_search WHERE event_search MATCH ")
            .push_bind(expression)
            .push(")");
    }

    /// The pool reads go through.
    fn reader(&self) -> &SqlitePool {
        &self.pool
    }

    /// Write transactions take SQLite's write lock at once, so they never fail upgrading it.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// The pool writes go through.
    fn rows_affected(done: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// For each band and value, the newest fingerprints that share it, from the in-memory
    /// [`BandIndex`] after bringing it up to date ([`SqliteStore::catch_up_bands`]), as band,
    /// value, rowid and SimHash. Fingerprints from before the window may be among them: the
    /// caller reads the close ones in full, within the window. The band indexes of the table
    /// that this replaces cost five random B-tree inserts per recorded document and as many
    /// index seeks per lookup (BENCHMARKS.md, "In-memory band index").
    async fn band_neighbours(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        bands: &[(usize, i32)],
        _window_start: i64,
    ) -> Result<Vec<(usize, i32, i64, i64)>> {
        self.catch_up_bands(tx).await?;
        let index = self.band_index();
        let mut found = Vec::new();
        for &(band, value) in bands {
            for (rowid, simhash) in index.neighbours(band, value) {
                found.push((band, value, rowid, simhash as i64));
            }
        }
        Ok(found)
    }

    /// Nothing to do: `BEGIN IMMEDIATE` already serialises writers.
    async fn lock_merge_keys(_tx: &mut Transaction<'static, Sqlite>, _keys: &[&str]) -> Result<()> {
        Ok(())
    }

    /// Nothing to lock: a write transaction holds the database's one write lock.
    async fn lock_event_rows(_tx: &mut Transaction<'static, Sqlite>, _ids: &[i64]) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
