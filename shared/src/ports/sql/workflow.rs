//! The analysts' workflow: status changes and notes on events, each kept in the event's
//! history (`event_changes`) in the transaction that makes it; a confirmation is a material
//! change, so it raises the event's revision and writes an outbox row there too. And, once
//! after the migration that added kinds, the kinds and date precisions of older events.

use chrono::{DateTime, Utc};
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, QueryBuilder, Row, Type,
};

use super::{DbRow, Sql, SqlBackend, from_ms, to_ms};
use crate::domain::{
    AlertKind, DatePrecision, EventChangeRecord, EventKind, EventStatus, EventUpdate, venues_in,
};
use crate::error::{Error, Result};

/// Events whose kind is filled in per transaction after the migration.
const BACKFILL_BATCH: i64 = 500;

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
    pub async fn update_events(
        &self,
        ids: &[i64],
        update: &EventUpdate,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<i64>> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let at = to_ms(at);
        let note = update.note.as_deref().map(str::trim);
        let mut tx = self.0.begin_write().await?;
        // The rows' locks first, in id order (as recording takes them): the statuses read
        // below cannot change before this transaction ends, and two updates, or an update
        // and a recording, wait for each other instead of deadlocking.
        B::lock_event_rows(&mut tx, &ids).await?;
        let mut builder: QueryBuilder<B::Db> =
            QueryBuilder::new("SELECT id, status FROM tge_events WHERE id IN (");
        let mut separated = builder.separated(", ");
        for id in &ids {
            separated.push_bind(*id);
        }
        builder.push(") ORDER BY id");
        let mut found = Vec::with_capacity(ids.len());
        for row in builder.build().fetch_all(&mut *tx).await? {
            let id: i64 = row.try_get("id")?;
            let status: String = row.try_get("status")?;
            let status = EventStatus::parse(&status)
                .ok_or_else(|| Error::Invalid(format!("stored event status `{status}`")))?;
            found.push((id, status));
        }
        for (id, before) in &found {
            let changed = update.status.filter(|status| status != before);
            if let Some(status) = changed {
                let material = status == EventStatus::Confirmed;
                let revision: i64 = sqlx::query_scalar(
                    "UPDATE tge_events SET status = $1, status_changed_at = $2, status_by = $3, \
                     revision = revision + $4 WHERE id = $5 RETURNING revision",
                )
                .bind(status.as_str())
                .bind(at)
                .bind(actor)
                .bind(i64::from(material))
                .bind(*id)
                .fetch_one(&mut *tx)
                .await?;
                if material {
                    sqlx::query(
                        "INSERT INTO outbox (event_id, revision, kind, created_at, fanned_out) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(*id)
                    .bind(revision)
                    .bind(AlertKind::Confirmed.as_str())
                    .bind(at)
                    .bind(false)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            if changed.is_none() && note.is_none() {
                continue;
            }
            sqlx::query(
                "INSERT INTO event_changes (event_id, at, actor, status_from, status_to, note) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(*id)
            .bind(at)
            .bind(actor)
            .bind(changed.map(|_| before.as_str()))
            .bind(changed.map(EventStatus::as_str))
            .bind(note)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(found.into_iter().map(|(id, _)| id).collect())
    }

    pub async fn event_history(&self, event_id: i64) -> Result<Vec<EventChangeRecord>> {
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM tge_events WHERE id = $1")
            .bind(event_id)
            .fetch_optional(self.0.reader())
            .await?;
        if exists.is_none() {
            return Err(Error::not_found("event", event_id));
        }
        let rows = sqlx::query(
            "SELECT id, event_id, at, actor, status_from, status_to, note FROM event_changes \
             WHERE event_id = $1 ORDER BY id",
        )
        .bind(event_id)
        .fetch_all(self.0.reader())
        .await?;
        let status = |text: Option<String>| -> Result<Option<EventStatus>> {
            text.map(|text| {
                EventStatus::parse(&text)
                    .ok_or_else(|| Error::Invalid(format!("stored event status `{text}`")))
            })
            .transpose()
        };
        rows.iter()
            .map(|row| {
                Ok(EventChangeRecord {
                    id: row.try_get("id")?,
                    event_id: row.try_get("event_id")?,
                    at: from_ms(row.try_get("at")?),
                    actor: row.try_get("actor")?,
                    status_from: status(row.try_get("status_from")?)?,
                    status_to: status(row.try_get("status_to")?)?,
                    note: row.try_get("note")?,
                })
            })
            .collect()
    }

    /// Fills in the kinds, date precisions and venues of events stored before the store kept
    /// them (each adapter runs it after its migrations; nothing to do on a store that has
    /// none).
    pub async fn backfill_events(&self) -> Result<()> {
        let filled = self.backfill_event_kinds().await?;
        if filled > 0 {
            tracing::info!(
                events = filled,
                "filled in the kinds of events stored before kinds were"
            );
        }
        let filled = self.backfill_event_venues().await?;
        if filled > 0 {
            tracing::info!(
                events = filled,
                "filled in the venues of events stored before venues were"
            );
        }
        Ok(())
    }

    /// Fills in the kind and date precision of events stored before the store kept them,
    /// a batch per transaction, reading each event's first document; returns how many.
    /// Idempotent, so several processes starting at once may all run it.
    pub async fn backfill_event_kinds(&self) -> Result<u64> {
        let mut filled = 0;
        loop {
            let rows = sqlx::query(
                "SELECT e.id, e.event_date, d.title, d.text FROM tge_events e \
                 LEFT JOIN documents d ON d.id = (SELECT es.document_id FROM event_sources es \
                 WHERE es.event_id = e.id ORDER BY es.added_at, es.document_id LIMIT 1) \
                 WHERE e.kind IS NULL ORDER BY e.id LIMIT $1",
            )
            .bind(BACKFILL_BATCH)
            .fetch_all(self.0.reader())
            .await?;
            if rows.is_empty() {
                return Ok(filled);
            }
            let mut tx = self.0.begin_write().await?;
            for row in &rows {
                let title: Option<String> = row.try_get("title")?;
                let text: Option<String> = row.try_get("text")?;
                let date: Option<String> = row.try_get("event_date")?;
                let kind = EventKind::infer(
                    title.as_deref().unwrap_or(""),
                    text.as_deref().unwrap_or(""),
                );
                sqlx::query(
                    "UPDATE tge_events SET kind = $1, date_precision = $2 \
                     WHERE id = $3 AND kind IS NULL",
                )
                .bind(kind.as_str())
                .bind(
                    date.as_deref()
                        .and_then(DatePrecision::of)
                        .map(DatePrecision::as_str),
                )
                .bind(row.try_get::<i64, _>("id")?)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            filled += rows.len() as u64;
        }
    }

    /// Fills in the venues of events stored before the store kept them, from the titles of
    /// all their reports, a batch per transaction, without alerting; returns how many.
    /// Idempotent, so several processes starting at once may all run it.
    pub async fn backfill_event_venues(&self) -> Result<u64> {
        let mut filled = 0;
        loop {
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT id FROM tge_events WHERE venues IS NULL ORDER BY id LIMIT $1",
            )
            .bind(BACKFILL_BATCH)
            .fetch_all(self.0.reader())
            .await?;
            if ids.is_empty() {
                return Ok(filled);
            }
            let mut tx = self.0.begin_write().await?;
            for id in &ids {
                let titles: Vec<String> = sqlx::query_scalar(
                    "SELECT d.title FROM event_sources es JOIN documents d \
                     ON d.id = es.document_id WHERE es.event_id = $1 \
                     ORDER BY es.added_at, es.document_id",
                )
                .bind(*id)
                .fetch_all(&mut *tx)
                .await?;
                let mut venues: Vec<String> = Vec::new();
                for venue in titles.iter().flat_map(|title| venues_in(title)) {
                    if !venues.contains(&venue) {
                        venues.push(venue);
                    }
                }
                sqlx::query("UPDATE tge_events SET venues = $1 WHERE id = $2 AND venues IS NULL")
                    .bind(serde_json::to_string(&venues)?)
                    .bind(*id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            filled += ids.len() as u64;
        }
    }
}
