//! Sources and companies: the catalogue the swarm fetches and watches.

use std::time::Duration;

use chrono::Utc;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::{
    DbRow, SourceParams, Sql, SqlBackend, conflict, from_ms, json_list, params_json, parse_list,
    selectors_json, to_ms,
};
use crate::domain::{
    Company, CompanyInput, FetchReport, FetchStatus, Priority, Source, SourceInput, SourceKind,
};
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
    fn source_from_row(row: &DbRow<B>) -> Result<Source> {
        let kind_text: String = row.try_get("kind")?;
        let kind = SourceKind::parse(&kind_text).ok_or_else(|| {
            Error::Invalid(format!("stored source kind `{kind_text}` is unknown"))
        })?;
        let selectors: Option<String> = row.try_get("selectors")?;
        let selectors = match selectors {
            Some(text) => Some(serde_json::from_str(&text)?),
            None => None,
        };
        let params: Option<String> = row.try_get("params")?;
        let params: SourceParams = match params {
            Some(text) => serde_json::from_str(&text)?,
            None => SourceParams::default(),
        };
        let interval_ms: i64 = row.try_get("interval_ms")?;
        let status: Option<String> = row.try_get("last_status")?;
        let last_fetch_at: Option<i64> = row.try_get("last_fetch_at")?;
        let tier: i64 = row.try_get("tier")?;
        let failures: i64 = row.try_get("consecutive_failures")?;
        let items: i64 = row.try_get("last_item_count")?;
        let effective: Option<i64> = row.try_get("effective_interval_ms")?;
        let down_since: Option<i64> = row.try_get("down_since")?;
        Ok(Source {
            down_since: down_since.map(from_ms),
            down_reason: row.try_get("down_reason")?,
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            kind,
            url: row.try_get("url")?,
            interval: Duration::from_millis(interval_ms.max(0) as u64),
            selectors,
            exchange: params.exchange,
            feed: params.feed,
            json: params.json,
            channel: params.channel,
            query: params.query,
            account: params.account,
            provenance: params.provenance,
            tier: tier.clamp(1, 4) as u8,
            enabled: row.try_get("enabled")?,
            created_at: from_ms(row.try_get("created_at")?),
            last_fetch_at: last_fetch_at.map(from_ms),
            last_status: status.as_deref().and_then(FetchStatus::parse),
            last_error: row.try_get("last_error")?,
            consecutive_failures: failures.max(0) as u32,
            last_item_count: items.max(0) as u32,
            etag: row.try_get("etag")?,
            last_modified: row.try_get("last_modified")?,
            effective_interval: effective.map(|ms| Duration::from_millis(ms.max(0) as u64)),
            content_hash: row.try_get("content_hash")?,
        })
    }

    fn company_from_row(row: &DbRow<B>) -> Result<Company> {
        let priority_text: String = row.try_get("priority")?;
        let priority = Priority::parse(&priority_text).ok_or_else(|| {
            Error::Invalid(format!(
                "stored company priority `{priority_text}` is unknown"
            ))
        })?;
        let aliases: String = row.try_get("aliases")?;
        let tickers: String = row.try_get("tickers")?;
        let exclusions: String = row.try_get("exclusions")?;
        Ok(Company {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            aliases: parse_list(&aliases)?,
            tickers: parse_list(&tickers)?,
            priority,
            status: row.try_get("status")?,
            exclusions: parse_list(&exclusions)?,
        })
    }

    pub async fn list_sources(&self) -> Result<Vec<Source>> {
        let rows = sqlx::query("SELECT * FROM sources ORDER BY id")
            .fetch_all(self.0.reader())
            .await?;
        rows.iter().map(Self::source_from_row).collect()
    }

    pub async fn get_source(&self, id: i64) -> Result<Source> {
        let row = sqlx::query("SELECT * FROM sources WHERE id = $1")
            .bind(id)
            .fetch_optional(self.0.reader())
            .await?;
        match row {
            Some(row) => Self::source_from_row(&row),
            None => Err(Error::not_found("source", id)),
        }
    }

    pub async fn create_source(&self, input: &SourceInput) -> Result<Source> {
        input.validate()?;
        let url = input.effective_url();
        let result = sqlx::query(
            "INSERT INTO sources (name, kind, url, interval_ms, selectors, tier, enabled, created_at, \
             params) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(&input.name)
        .bind(input.kind.as_str())
        .bind(url.as_ref())
        .bind(crate::time::millis_i64(input.interval))
        .bind(selectors_json(input)?)
        .bind(i64::from(input.tier))
        .bind(input.enabled)
        .bind(to_ms(Utc::now()))
        .bind(params_json(input)?)
        .fetch_one(self.0.writer())
        .await;
        match result {
            Ok(row) => self.get_source(row.try_get("id")?).await,
            Err(err) => Err(conflict(err, "source", &input.name)),
        }
    }

    pub async fn update_source(&self, id: i64, input: &SourceInput) -> Result<Source> {
        input.validate()?;
        let url = input.effective_url();
        let result = sqlx::query(
            "UPDATE sources SET name = $1, kind = $2, url = $3, interval_ms = $4, selectors = $5, \
             tier = $6, enabled = $7, effective_interval_ms = NULL, \
             etag = CASE WHEN url = $8 THEN etag ELSE NULL END, \
             last_modified = CASE WHEN url = $9 THEN last_modified ELSE NULL END, \
             content_hash = CASE WHEN url = $10 THEN content_hash ELSE NULL END, \
             params = $11 WHERE id = $12",
        )
        .bind(&input.name)
        .bind(input.kind.as_str())
        .bind(url.as_ref())
        .bind(crate::time::millis_i64(input.interval))
        .bind(selectors_json(input)?)
        .bind(i64::from(input.tier))
        .bind(input.enabled)
        .bind(url.as_ref())
        .bind(url.as_ref())
        .bind(url.as_ref())
        .bind(params_json(input)?)
        .bind(id)
        .execute(self.0.writer())
        .await;
        match result {
            Ok(done) if B::rows_affected(&done) == 0 => Err(Error::not_found("source", id)),
            Ok(_) => self.get_source(id).await,
            Err(err) => Err(conflict(err, "source", &input.name)),
        }
    }

    pub async fn delete_source(&self, id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM sources WHERE id = $1")
            .bind(id)
            .execute(self.0.writer())
            .await?;
        if B::rows_affected(&done) == 0 {
            return Err(Error::not_found("source", id));
        }
        Ok(())
    }

    pub async fn record_fetch(&self, id: i64, report: &FetchReport) -> Result<()> {
        let failed = matches!(report.status, FetchStatus::Error | FetchStatus::CircuitOpen);
        sqlx::query(
            "UPDATE sources SET last_fetch_at = $1, last_status = $2, last_error = $3, \
             consecutive_failures = CASE WHEN $4 THEN consecutive_failures + 1 ELSE 0 END, \
             last_item_count = CASE WHEN $5 = 'ok' THEN $6 ELSE last_item_count END, \
             etag = CASE WHEN $7 = 'ok' THEN $8 ELSE etag END, \
             last_modified = CASE WHEN $9 = 'ok' THEN $10 ELSE last_modified END, \
             content_hash = CASE WHEN $11 = 'ok' THEN $12 ELSE content_hash END, \
             effective_interval_ms = COALESCE($13, effective_interval_ms) \
             WHERE id = $14",
        )
        .bind(to_ms(report.at))
        .bind(report.status.as_str())
        .bind(&report.error)
        .bind(failed)
        .bind(report.status.as_str())
        .bind(i64::from(report.items))
        .bind(report.status.as_str())
        .bind(&report.etag)
        .bind(report.status.as_str())
        .bind(&report.last_modified)
        .bind(report.status.as_str())
        .bind(&report.content_hash)
        .bind(report.next_interval.map(crate::time::millis_i64))
        .bind(id)
        .execute(self.0.writer())
        .await?;
        // A source deleted while it was being fetched is not an error: its report is moot.
        Ok(())
    }

    pub async fn list_companies(&self) -> Result<Vec<Company>> {
        let rows = sqlx::query("SELECT * FROM companies ORDER BY id")
            .fetch_all(self.0.reader())
            .await?;
        rows.iter().map(Self::company_from_row).collect()
    }

    pub async fn get_company(&self, id: i64) -> Result<Company> {
        let row = sqlx::query("SELECT * FROM companies WHERE id = $1")
            .bind(id)
            .fetch_optional(self.0.reader())
            .await?;
        match row {
            Some(row) => Self::company_from_row(&row),
            None => Err(Error::not_found("company", id)),
        }
    }

    pub async fn create_company(&self, input: &CompanyInput) -> Result<Company> {
        input.validate()?;
        let result = sqlx::query(
            "INSERT INTO companies (name, name_key, aliases, tickers, priority, status, exclusions, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(input.name.trim())
        .bind(input.name.trim().to_lowercase())
        .bind(json_list(&input.aliases)?)
        .bind(json_list(&input.tickers)?)
        .bind(input.priority.as_str())
        .bind(&input.status)
        .bind(json_list(&input.exclusions)?)
        .bind(to_ms(Utc::now()))
        .fetch_one(self.0.writer())
        .await;
        match result {
            Ok(row) => self.get_company(row.try_get("id")?).await,
            Err(err) => Err(conflict(err, "company", &input.name)),
        }
    }

    pub async fn update_company(&self, id: i64, input: &CompanyInput) -> Result<Company> {
        input.validate()?;
        let result = sqlx::query(
            "UPDATE companies SET name = $1, name_key = $2, aliases = $3, tickers = $4, priority = $5, \
             status = $6, exclusions = $7 WHERE id = $8",
        )
        .bind(input.name.trim())
        .bind(input.name.trim().to_lowercase())
        .bind(json_list(&input.aliases)?)
        .bind(json_list(&input.tickers)?)
        .bind(input.priority.as_str())
        .bind(&input.status)
        .bind(json_list(&input.exclusions)?)
        .bind(id)
        .execute(self.0.writer())
        .await;
        match result {
            Ok(done) if B::rows_affected(&done) == 0 => Err(Error::not_found("company", id)),
            Ok(_) => self.get_company(id).await,
            Err(err) => Err(conflict(err, "company", &input.name)),
        }
    }

    pub async fn delete_company(&self, id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM companies WHERE id = $1")
            .bind(id)
            .execute(self.0.writer())
            .await?;
        if B::rows_affected(&done) == 0 {
            return Err(Error::not_found("company", id));
        }
        Ok(())
    }
}
