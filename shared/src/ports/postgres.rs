//! [`Store`](super::Store) on Postgres through sqlx: the production store. Migrations run at
//! [`PgStore::connect`] (`tge-swarm migrate` and every process start), under Postgres's
//! advisory migration lock, so several processes starting together migrate once. The queries
//! are shared with the SQLite store ([`super::sql`]).
//!
//! When the server goes away calls fail with a store error that
//! [`Error::is_unavailable`](crate::Error::is_unavailable) recognises, until it is back; the
//! pool tests connections before use and opens new ones, so nothing needs restarting.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::dedup::fingerprint::NEAR_DUPLICATE_CANDIDATES;
use crate::domain::SearchWord;
use crate::error::Result;
use crate::ports::sql::{STATEMENT_CACHE_CAPACITY, SqlBackend};

/// One band's term of [`BAND_NEIGHBOURS`]: band `$band`'s values are parameter `$param`.
macro_rules! band_term {
    ($band:literal, $param:literal) => {
        concat!(
            "SELECT ",
            $band,
            " AS band, k.value, c.document_id, c.simhash ",
            "FROM unnest($",
            $param,
            "::int4[]) AS k(value) CROSS JOIN LATERAL ",
            "(SELECT document_id, simhash FROM document_fingerprints WHERE band",
            $band,
            " = k.value AND stored_at > $6 ORDER BY stored_at DESC LIMIT $7) AS c"
        )
    };
}

/// [`PgStore::band_neighbours`]: `$1`..`$5` the values of bands 0..4, `$6` the window's start,
/// `$7` the fingerprints per value.
const BAND_NEIGHBOURS: &str = concat!(
    band_term!(0, 1),
    " UNION ALL ",
    band_term!(1, 2),
    " UNION ALL ",
    band_term!(2, 3),
    " UNION ALL ",
    band_term!(3, 4),
    " UNION ALL ",
    band_term!(4, 5),
);

/// The Postgres store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:pass@host:port/db`) and runs migrations.
    pub async fn connect(url: &str) -> Result<PgStore> {
        let options = PgConnectOptions::from_str(url)?
            .application_name("tge-swarm")
            .statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            // A connection broken by a server restart is found and replaced before use.
            .test_before_acquire(true)
            .connect_with(options)
            .await?;
        crate::ports::migrations::postgres()
            .await?
            .run(&pool)
            .await?;
        let store = PgStore { pool };
        super::sql::Sql(&store).backfill_events().await?;
        Ok(store)
    }
}

impl SqlBackend for PgStore {
    type Db = Postgres;
    type Key = String;
    const KEY_COLUMN: &'static str = "f.document_id";

    const EXPLAIN: &'static str = "EXPLAIN ";

    fn plan_line(row: &sqlx::postgres::PgRow) -> Result<String> {
        Ok(row.try_get(0)?)
    }

    /// A `tsquery` of every word (`word`, `word:*` for a prefix), all required.
    fn search_expression(words: &[SearchWord]) -> String {
        let terms: Vec<String> = words
            .iter()
            .map(|word| {
                if word.prefix {
                    format!("{}:*", word.word)
                } else {
                    word.word.clone()
                }
            })
            .collect();
        terms.join(" & ")
    }

    /// Postgres's statistics of `event_search.search` (its most common words) let its planner
    /// choose between the GIN index and walking the events newest first.
    const SEARCH_PROBE: Option<&'static str> = None;

    fn push_search(builder: &mut sqlx::QueryBuilder<Postgres>, expression: String, _common: bool) {
        builder
            .push(
                " AND EXISTS (SELECT 1 FROM event_search s WHERE s.event_id = e.id \
                 AND s.search @@ to_tsquery('simple', ",
            )
            .push_bind(expression)
            .push("))");
    }

    /// The one pool (Postgres locks rows, not the database).
    fn reader(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// The pool writes go through: the one pool (Postgres locks rows, not the database).
    fn rows_affected(done: &sqlx::postgres::PgQueryResult) -> u64 {
        done.rows_affected()
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    /// For each band and value, the newest fingerprints within the window that share it: one
    /// statement of fixed shape (a `LATERAL` lookup per band over the array of its values),
    /// planned once per connection. A compound `SELECT` of one term per value, as on SQLite,
    /// cost Postgres more to plan than to run. The band indexes include the SimHash and
    /// document id, so the lookups are index-only scans once the table is vacuumed.
    async fn band_neighbours(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        bands: &[(usize, i32)],
        window_start: i64,
    ) -> Result<Vec<(usize, i32, String, i64)>> {
        let mut values: [Vec<i32>; 5] = Default::default();
        for (band, value) in bands {
            if let Some(slot) = values.get_mut(*band) {
                slot.push(*value);
            }
        }
        let [v0, v1, v2, v3, v4] = values;
        let rows = sqlx::query(BAND_NEIGHBOURS)
            .bind(v0)
            .bind(v1)
            .bind(v2)
            .bind(v3)
            .bind(v4)
            .bind(window_start)
            .bind(NEAR_DUPLICATE_CANDIDATES)
            .fetch_all(&mut **tx)
            .await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            let band: i32 = row.try_get("band")?;
            found.push((
                usize::try_from(band).unwrap_or(usize::MAX),
                row.try_get("value")?,
                row.try_get("document_id")?,
                row.try_get("simhash")?,
            ));
        }
        Ok(found)
    }

    /// Serialises merges into one project's event across writers (data-quality agents in
    /// several processes): transaction-scoped advisory locks on the keys' hashes, taken in the
    /// keys' order (sorted by the caller) in one statement.
    async fn lock_merge_keys(tx: &mut Transaction<'static, Postgres>, keys: &[&str]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended(k.key, 0)) \
             FROM unnest($1::text[]) WITH ORDINALITY AS k(key, n) ORDER BY k.n",
        )
        .bind(keys)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// `SELECT .. ORDER BY id FOR UPDATE` takes the row locks in id order (an `UPDATE ..
    /// WHERE id IN (..)` takes them in whatever order its scan finds the rows).
    async fn lock_event_rows(tx: &mut Transaction<'static, Postgres>, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query("SELECT id FROM tge_events WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(ids)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}
