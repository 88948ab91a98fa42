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
use sqlx::{PgPool, Postgres, Transaction};

use crate::error::Result;

/// The Postgres store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:pass@host:port/db`) and runs migrations.
    pub async fn connect(url: &str) -> Result<PgStore> {
        let options = PgConnectOptions::from_str(url)?.application_name("tge-swarm");
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            // A connection broken by a server restart is found and replaced before use.
            .test_before_acquire(true)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore { pool })
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// The pool writes go through: the one pool (Postgres locks rows, not the database).
    fn writer(&self) -> &PgPool {
        &self.pool
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
}

crate::sql_store!(PgStore, sqlx::Postgres, sqlx::postgres::PgRow);
