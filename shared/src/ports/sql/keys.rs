//! API keys: stored as hashes, with scopes, expiry, use, revocation and rotation.

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::{DbRow, Sql, SqlBackend, from_ms, json_list, parse_list, to_ms};
use crate::domain::ApiKey;
use crate::error::{Error, Result};

impl<B> Sql<'_, B>
where
    B: SqlBackend,
    // What the SQL needs of the database, restated on every block (see `Sql`).
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> i32: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> f64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> bool: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i64>: Encode<'q, B::Db>,
    for<'q> Option<f64>: Encode<'q, B::Db>,
    for<'q> Option<String>: Encode<'q, B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db>,
    for<'q> &'q str: ColumnIndex<DbRow<B>>,
    usize: ColumnIndex<DbRow<B>>,
{
    /// An API key from a row of `id, name, scopes, created_at, expires_at, last_used_at,
    /// revoked_at`.
    fn api_key_from_row(row: &DbRow<B>) -> Result<ApiKey> {
        let scopes: String = row.try_get("scopes")?;
        let time = |column: &str| -> Result<Option<DateTime<Utc>>> {
            Ok(row.try_get::<Option<i64>, _>(column)?.map(from_ms))
        };
        Ok(ApiKey {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            scopes: parse_list(&scopes)?,
            created_at: from_ms(row.try_get("created_at")?),
            expires_at: time("expires_at")?,
            last_used_at: time("last_used_at")?,
            revoked_at: time("revoked_at")?,
        })
    }

    pub async fn insert_api_key(&self, name: &str, hash: &str, scopes: &[String]) -> Result<i64> {
        // The same secret set again (TGE_SWARM_ADMIN_KEY) is taken back into use.
        let result = sqlx::query(
            "INSERT INTO api_keys (name, key_hash, scopes, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key_hash) DO UPDATE SET scopes = excluded.scopes, revoked_at = NULL \
             RETURNING id",
        )
        .bind(name)
        .bind(hash)
        .bind(json_list(scopes)?)
        .bind(to_ms(Utc::now()))
        .fetch_one(self.0.writer())
        .await?;
        Ok(result.try_get("id")?)
    }

    pub async fn replace_api_key(&self, name: &str, hash: &str, scopes: &[String]) -> Result<i64> {
        let id = self.insert_api_key(name, hash, scopes).await?;
        sqlx::query(
            "UPDATE api_keys SET revoked_at = $3 \
             WHERE name = $1 AND key_hash <> $2 AND revoked_at IS NULL",
        )
        .bind(name)
        .bind(hash)
        .bind(to_ms(Utc::now()))
        .execute(self.0.writer())
        .await?;
        Ok(id)
    }

    pub async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query(
            "SELECT id, name, scopes, created_at, expires_at, last_used_at, revoked_at \
                     FROM api_keys WHERE key_hash = $1",
        )
        .bind(hash)
        .fetch_optional(self.0.reader())
        .await?;
        row.map(|row| Self::api_key_from_row(&row)).transpose()
    }

    pub async fn count_api_keys(&self) -> Result<u64> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL")
                .fetch_one(self.0.reader())
                .await?;
        Ok(count.max(0) as u64)
    }

    pub async fn create_api_key(
        &self,
        name: &str,
        hash: &str,
        scopes: &[String],
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<ApiKey> {
        let row = sqlx::query(
            "INSERT INTO api_keys (name, key_hash, scopes, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id, name, scopes, created_at, expires_at, last_used_at, revoked_at",
        )
        .bind(name)
        .bind(hash)
        .bind(json_list(scopes)?)
        .bind(to_ms(Utc::now()))
        .bind(expires_at.map(to_ms))
        .fetch_one(self.0.writer())
        .await?;
        Self::api_key_from_row(&row)
    }

    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query(
            "SELECT id, name, scopes, created_at, expires_at, last_used_at, revoked_at \
                     FROM api_keys ORDER BY id",
        )
        .fetch_all(self.0.reader())
        .await?;
        rows.iter().map(Self::api_key_from_row).collect()
    }

    pub async fn revoke_api_key(&self, id: i64, at: DateTime<Utc>) -> Result<ApiKey> {
        let row = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 \
             RETURNING id, name, scopes, created_at, expires_at, last_used_at, revoked_at",
        )
        .bind(id)
        .bind(to_ms(at))
        .fetch_optional(self.0.writer())
        .await?;
        match row {
            Some(row) => Self::api_key_from_row(&row),
            None => Err(Error::not_found("api key", id)),
        }
    }

    pub async fn rotate_api_key(
        &self,
        id: i64,
        new_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<ApiKey> {
        let mut tx = self.0.begin_write().await?;
        let revoked = sqlx::query(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL \
             RETURNING id, name, scopes, created_at, expires_at, last_used_at, revoked_at",
        )
        .bind(id)
        .bind(to_ms(at))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(old) = revoked else {
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM api_keys WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match exists {
                Some(_) => Error::Conflict(format!("API key {id} is revoked: create a new one")),
                None => Error::not_found("api key", id),
            });
        };
        let old = Self::api_key_from_row(&old)?;
        let row = sqlx::query(
            "INSERT INTO api_keys (name, key_hash, scopes, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id, name, scopes, created_at, expires_at, last_used_at, revoked_at",
        )
        .bind(&old.name)
        .bind(new_hash)
        .bind(json_list(&old.scopes)?)
        .bind(to_ms(at))
        .bind(old.expires_at.map(to_ms))
        .fetch_one(&mut *tx)
        .await?;
        let new = Self::api_key_from_row(&row)?;
        tx.commit().await?;
        Ok(new)
    }

    pub async fn touch_api_key(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        let at = to_ms(at);
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $2 \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(id)
        .bind(at)
        .bind(at.saturating_sub(crate::domain::API_KEY_USE_RECORDED_EVERY_MS))
        .execute(self.0.writer())
        .await?;
        Ok(())
    }
}
