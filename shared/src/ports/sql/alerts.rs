//! Alert delivery: subscriptions, the outbox that event changes write in their own
//! transaction ([`record`](super::record) writes it), the alerts fanned out from it and their
//! attempts, leased so that one deliverer sends each at a time.

use chrono::{DateTime, Utc};
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, QueryBuilder, Row, Type,
};

use super::{DbRow, Sql, SqlBackend, conflict, from_ms, statement_chunks, to_ms};
use crate::domain::{
    Alert, AlertKind, AlertStatus, AttemptOutcome, HealthChange, NewAlert, OutboxItem,
    Subscription, SubscriptionInput,
};
use crate::error::{Error, Result};

/// The columns of a delivery, in [`Sql::delivery_from_row`]'s order.
const DELIVERY_COLUMNS: &str = "id, subscription_id, event_id, source_id, revision, kind, \
     detail, idempotency_key, \
     status, attempts, next_attempt_at, last_status_code, last_error, event_stored_at, \
     created_at, delivered_at";

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
    fn subscription_from_row(row: &DbRow<B>) -> Result<Subscription> {
        let channel: String = row.try_get("channel")?;
        let filters: String = row.try_get("filters")?;
        let quiet: i64 = row.try_get("quiet_minutes")?;
        Ok(Subscription {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            channel: serde_json::from_str(&channel)?,
            filters: serde_json::from_str(&filters)?,
            quiet_minutes: u32::try_from(quiet.max(0)).unwrap_or(u32::MAX),
            enabled: row.try_get("enabled")?,
            created_at: from_ms(row.try_get("created_at")?),
        })
    }

    fn delivery_from_row(row: &DbRow<B>) -> Result<Alert> {
        let kind: String = row.try_get("kind")?;
        let status: String = row.try_get("status")?;
        let attempts: i64 = row.try_get("attempts")?;
        let code: Option<i64> = row.try_get("last_status_code")?;
        let delivered: Option<i64> = row.try_get("delivered_at")?;
        let stored = |what: &str, value: &str| {
            Error::Invalid(format!("stored alert {what} `{value}` is unknown"))
        };
        Ok(Alert {
            id: row.try_get("id")?,
            subscription_id: row.try_get("subscription_id")?,
            event_id: row.try_get("event_id")?,
            source_id: row.try_get("source_id")?,
            revision: row.try_get("revision")?,
            kind: AlertKind::parse(&kind).ok_or_else(|| stored("kind", &kind))?,
            detail: row.try_get("detail")?,
            idempotency_key: row.try_get("idempotency_key")?,
            status: AlertStatus::parse(&status).ok_or_else(|| stored("status", &status))?,
            attempts: u32::try_from(attempts.max(0)).unwrap_or(u32::MAX),
            next_attempt_at: from_ms(row.try_get("next_attempt_at")?),
            last_status_code: code.and_then(|code| u16::try_from(code).ok()),
            last_error: row.try_get("last_error")?,
            event_stored_at: from_ms(row.try_get("event_stored_at")?),
            created_at: from_ms(row.try_get("created_at")?),
            delivered_at: delivered.map(from_ms),
        })
    }

    pub async fn create_subscription(&self, input: &SubscriptionInput) -> Result<Subscription> {
        input.validate()?;
        let name = input.name.trim();
        let result = sqlx::query(
            "INSERT INTO subscriptions (name, channel, filters, quiet_minutes, enabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(name)
        .bind(serde_json::to_string(&input.channel)?)
        .bind(serde_json::to_string(&input.filters)?)
        .bind(i64::from(input.quiet_minutes))
        .bind(input.enabled)
        .bind(to_ms(Utc::now()))
        .fetch_one(self.0.writer())
        .await;
        match result {
            Ok(row) => self.get_subscription(row.try_get("id")?).await,
            Err(err) => Err(conflict(err, "subscription", name)),
        }
    }

    pub async fn list_subscriptions(&self) -> Result<Vec<Subscription>> {
        let rows = sqlx::query("SELECT * FROM subscriptions ORDER BY id")
            .fetch_all(self.0.reader())
            .await?;
        rows.iter().map(Self::subscription_from_row).collect()
    }

    pub async fn get_subscription(&self, id: i64) -> Result<Subscription> {
        let row = sqlx::query("SELECT * FROM subscriptions WHERE id = $1")
            .bind(id)
            .fetch_optional(self.0.reader())
            .await?;
        match row {
            Some(row) => Self::subscription_from_row(&row),
            None => Err(Error::not_found("subscription", id)),
        }
    }

    pub async fn delete_subscription(&self, id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM subscriptions WHERE id = $1")
            .bind(id)
            .execute(self.0.writer())
            .await?;
        if B::rows_affected(&done) == 0 {
            return Err(Error::not_found("subscription", id));
        }
        Ok(())
    }

    fn outbox_from_row(row: &DbRow<B>) -> Result<OutboxItem> {
        let kind: String = row.try_get("kind")?;
        Ok(OutboxItem {
            id: row.try_get("id")?,
            event_id: row.try_get("event_id")?,
            source_id: row.try_get("source_id")?,
            revision: row.try_get("revision")?,
            detail: row.try_get("detail")?,
            kind: AlertKind::parse(&kind)
                .ok_or_else(|| Error::Invalid(format!("stored outbox kind `{kind}` is unknown")))?,
            created_at: from_ms(row.try_get("created_at")?),
        })
    }

    pub async fn waiting_outbox(&self, limit: u32) -> Result<Vec<OutboxItem>> {
        // The limit is a literal, as in `list_events`: one prepared statement per value.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, event_id, source_id, revision, kind, detail, created_at FROM outbox \
             WHERE NOT fanned_out ORDER BY id LIMIT {}",
            limit.max(1)
        )))
        .fetch_all(self.0.reader())
        .await?;
        rows.iter().map(Self::outbox_from_row).collect()
    }

    pub async fn outbox_after(&self, after: i64, limit: u32) -> Result<Vec<OutboxItem>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, event_id, source_id, revision, kind, detail, created_at FROM outbox \
             WHERE id > $1 ORDER BY id LIMIT {}",
            limit.max(1)
        )))
        .bind(after)
        .fetch_all(self.0.reader())
        .await?;
        rows.iter().map(Self::outbox_from_row).collect()
    }

    pub async fn latest_outbox_row(&self) -> Result<i64> {
        let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM outbox")
            .fetch_one(self.0.reader())
            .await?;
        Ok(newest.unwrap_or(0))
    }

    pub async fn fan_out(
        &self,
        outbox_ids: &[i64],
        alerts: &[NewAlert],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let now = to_ms(now);
        let keys: Vec<String> = alerts.iter().map(NewAlert::key).collect();
        let rows: Vec<(&NewAlert, &String)> = alerts.iter().zip(&keys).collect();
        let mut tx = self.0.begin_write().await?;
        let mut created = 0;
        for chunk in statement_chunks(&rows) {
            let mut builder: QueryBuilder<B::Db> = QueryBuilder::new(
                "INSERT INTO alert_deliveries (subscription_id, event_id, source_id, revision, \
                 kind, detail, idempotency_key, status, attempts, next_attempt_at, \
                 event_stored_at, created_at) ",
            );
            builder.push_values(chunk, |mut row, (alert, key)| {
                row.push_bind(alert.subscription_id)
                    .push_bind(alert.event_id)
                    .push_bind(alert.source_id)
                    .push_bind(alert.revision)
                    .push_bind(alert.kind.as_str())
                    .push_bind(alert.detail.as_deref())
                    .push_bind(key.as_str())
                    .push_bind(AlertStatus::Pending.as_str())
                    .push_bind(0_i64)
                    .push_bind(now)
                    .push_bind(to_ms(alert.event_stored_at))
                    .push_bind(now);
            });
            builder.push(" ON CONFLICT (idempotency_key) DO NOTHING");
            let done = builder.build().execute(&mut *tx).await?;
            created += B::rows_affected(&done);
        }
        for chunk in statement_chunks(outbox_ids) {
            let mut builder: QueryBuilder<B::Db> =
                QueryBuilder::new("UPDATE outbox SET fanned_out = TRUE WHERE id IN (");
            let mut separated = builder.separated(", ");
            for id in chunk {
                separated.push_bind(*id);
            }
            builder.push(")");
            builder.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    pub async fn last_alert_at(
        &self,
        subscription_id: i64,
        event_id: i64,
    ) -> Result<Option<DateTime<Utc>>> {
        let newest: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(created_at) FROM alert_deliveries \
             WHERE subscription_id = $1 AND event_id = $2",
        )
        .bind(subscription_id)
        .bind(event_id)
        .fetch_one(self.0.reader())
        .await?;
        Ok(newest.map(from_ms))
    }

    pub async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Alert>> {
        // A read first: most rounds find nothing due, and an UPDATE, even of no row, would
        // take SQLite's write lock from the pipeline's writer.
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM alert_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until <= $2) LIMIT 1",
        )
        .bind(to_ms(now))
        .bind(to_ms(now))
        .fetch_optional(self.0.reader())
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        // The conditions are checked again on each row the UPDATE takes: on Postgres a
        // second deliverer that waited for a row another one leased reads it leased and
        // skips it.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE alert_deliveries SET lease_until = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM alert_deliveries WHERE status = 'pending' \
             AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until <= $3) \
             ORDER BY next_attempt_at, id LIMIT {}) \
             AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $4) \
             RETURNING {DELIVERY_COLUMNS}",
            limit.max(1)
        )))
        .bind(to_ms(lease_until))
        .bind(to_ms(now))
        .bind(to_ms(now))
        .bind(to_ms(now))
        .fetch_all(self.0.writer())
        .await?;
        let mut claimed: Vec<Alert> = rows
            .iter()
            .map(Self::delivery_from_row)
            .collect::<Result<_>>()?;
        claimed.sort_by_key(|delivery| (delivery.next_attempt_at, delivery.id));
        Ok(claimed)
    }

    pub async fn finish_delivery(
        &self,
        id: i64,
        outcome: &AttemptOutcome,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let (status, code, error, next, delivered) = match outcome {
            AttemptOutcome::Delivered { status_code } => (
                AlertStatus::Delivered,
                Some(*status_code),
                None,
                None,
                Some(to_ms(at)),
            ),
            AttemptOutcome::Retry {
                status_code,
                error,
                next_attempt_at,
            } => (
                AlertStatus::Pending,
                *status_code,
                Some(error.as_str()),
                Some(to_ms(*next_attempt_at)),
                None,
            ),
            AttemptOutcome::Dead { status_code, error } => (
                AlertStatus::Dead,
                *status_code,
                Some(error.as_str()),
                None,
                None,
            ),
        };
        let done = sqlx::query(
            "UPDATE alert_deliveries SET status = $1, last_status_code = $2, last_error = $3, \
             next_attempt_at = COALESCE($4, next_attempt_at), delivered_at = $5, \
             lease_until = NULL WHERE id = $6",
        )
        .bind(status.as_str())
        .bind(code.map(i64::from))
        .bind(error)
        .bind(next)
        .bind(delivered)
        .bind(id)
        .execute(self.0.writer())
        .await?;
        if B::rows_affected(&done) == 0 {
            // Its subscription was deleted meanwhile: nothing left to record.
            tracing::debug!(
                delivery = id,
                "alert finished after its subscription was deleted"
            );
        }
        Ok(())
    }

    pub async fn list_deliveries(&self, subscription_id: i64, limit: u32) -> Result<Vec<Alert>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE subscription_id = $1 \
             ORDER BY id DESC LIMIT {}",
            limit.max(1)
        )))
        .bind(subscription_id)
        .fetch_all(self.0.reader())
        .await?;
        rows.iter().map(Self::delivery_from_row).collect()
    }

    pub async fn record_source_health(
        &self,
        source_id: i64,
        change: &HealthChange,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let at = to_ms(at);
        let mut tx = self.0.begin_write().await?;
        // Conditional on the stored state: of two deliverers seeing the same change, one
        // records it and the other finds nothing to do.
        let (incident, kind, detail): (Option<i64>, AlertKind, Option<&str>) = match change {
            HealthChange::Down(reason) => (
                sqlx::query_scalar(
                    "UPDATE sources SET down_since = $1, down_reason = $2, \
                     health_incidents = health_incidents + 1 \
                     WHERE id = $3 AND down_since IS NULL RETURNING health_incidents",
                )
                .bind(at)
                .bind(reason.as_str())
                .bind(source_id)
                .fetch_optional(&mut *tx)
                .await?,
                AlertKind::SourceDown,
                Some(reason.as_str()),
            ),
            HealthChange::Recovered => (
                sqlx::query_scalar(
                    "UPDATE sources SET down_since = NULL, down_reason = NULL \
                     WHERE id = $1 AND down_since IS NOT NULL RETURNING health_incidents",
                )
                .bind(source_id)
                .fetch_optional(&mut *tx)
                .await?,
                AlertKind::SourceRecovered,
                None,
            ),
        };
        let Some(incident) = incident else {
            tx.rollback().await?;
            return Ok(false);
        };
        sqlx::query(
            "INSERT INTO outbox (source_id, revision, kind, detail, created_at, fanned_out) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(source_id)
        .bind(incident)
        .bind(kind.as_str())
        .bind(detail)
        .bind(at)
        .bind(false)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
