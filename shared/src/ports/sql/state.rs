//! The swarm's own state: claims, shared memory, desired state, feedback, supervisor
//! actions and synthesis snapshots.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::{DbRow, Sql, SqlBackend, from_ms, statement_chunks, to_ms};
use crate::domain::{
    ActionOutcome, AgentKind, DesiredEntry, Feedback, FeedbackLabel, MemoryEntry, SupervisorAction,
    SupervisorActionInput, SupervisorActionQuery, SynthesisSnapshot,
};
use crate::error::{Error, Result};
use crate::supervision::Action;

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
    fn desired_from_row(row: &DbRow<B>) -> Result<DesiredEntry> {
        let value: String = row.try_get("value")?;
        Ok(DesiredEntry {
            key: row.try_get("key")?,
            value: serde_json::from_str(&value)?,
            generation: row.try_get("generation")?,
            updated_at: from_ms(row.try_get("updated_at")?),
        })
    }

    fn supervisor_action_from_row(row: &DbRow<B>) -> Result<SupervisorAction> {
        let kind: String = row.try_get("kind")?;
        let action: String = row.try_get("action")?;
        let outcome: String = row.try_get("outcome")?;
        let stored = |what: &str, value: &str| {
            Error::Invalid(format!(
                "stored supervisor action {what} `{value}` is unknown"
            ))
        };
        Ok(SupervisorAction {
            id: row.try_get("id")?,
            component: row.try_get("component")?,
            kind: AgentKind::parse(&kind).ok_or_else(|| stored("kind", &kind))?,
            node: row.try_get("node")?,
            observation: row.try_get("observation")?,
            action: Action::parse(&action).ok_or_else(|| stored("action", &action))?,
            outcome: ActionOutcome::parse(&outcome).ok_or_else(|| stored("outcome", &outcome))?,
            reason: row.try_get("reason")?,
            at: from_ms(row.try_get("at")?),
        })
    }

    fn feedback_from_row(row: &DbRow<B>) -> Result<Feedback> {
        let label: String = row.try_get("label")?;
        let sample: String = row.try_get("sample")?;
        Ok(Feedback {
            id: row.try_get("id")?,
            event_id: row.try_get("event_id")?,
            label: FeedbackLabel::parse(&label).ok_or_else(|| {
                Error::Invalid(format!("stored feedback label `{label}` is unknown"))
            })?,
            note: row.try_get("note")?,
            sample: serde_json::from_str(&sample)?,
            created_at: from_ms(row.try_get("created_at")?),
        })
    }

    pub async fn claim_once(&self, key: &str) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(Utc::now().to_rfc3339())
        .execute(self.0.writer())
        .await?;
        Ok(B::rows_affected(&done) == 1)
    }

    pub async fn write_memory(
        &self,
        puts: &[MemoryEntry],
        deletes: &[(String, String)],
    ) -> Result<()> {
        let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(puts.len() + deletes.len());
        let keys = puts
            .iter()
            .map(|entry| (entry.namespace.as_str(), entry.key.as_str()))
            .chain(
                deletes
                    .iter()
                    .map(|(namespace, key)| (namespace.as_str(), key.as_str())),
            );
        for (namespace, key) in keys {
            if !seen.insert((namespace, key)) {
                return Err(Error::Invalid(format!(
                    "memory key `{namespace}:{key}` appears more than once in one write"
                )));
            }
        }
        if seen.is_empty() {
            return Ok(());
        }
        let values: Vec<String> = puts
            .iter()
            .map(|entry| serde_json::to_string(&entry.value))
            .collect::<std::result::Result<_, _>>()?;
        let rows: Vec<(&MemoryEntry, &String)> = puts.iter().zip(&values).collect();
        let mut tx = self.0.begin_write().await?;
        for chunk in statement_chunks(&rows[..]) {
            let mut builder: QueryBuilder<B::Db> = QueryBuilder::new(
                "INSERT INTO memory_entries (namespace, key, value, version, written_by, \
                 updated_at, expires_at) ",
            );
            builder.push_values(chunk, |mut row, (entry, value)| {
                row.push_bind(entry.namespace.as_str())
                    .push_bind(entry.key.as_str())
                    .push_bind(value.as_str())
                    .push_bind(entry.version as i64)
                    .push_bind(entry.written_by.as_str())
                    .push_bind(to_ms(entry.updated_at))
                    .push_bind(entry.expires_at.map(to_ms));
            });
            builder.push(
                " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, \
                 version = excluded.version, written_by = excluded.written_by, \
                 updated_at = excluded.updated_at, expires_at = excluded.expires_at",
            );
            builder.build().execute(&mut *tx).await?;
        }
        for chunk in statement_chunks(deletes) {
            let mut builder: QueryBuilder<B::Db> =
                QueryBuilder::new("DELETE FROM memory_entries WHERE (namespace, key) IN (");
            builder.push_values(chunk, |mut row, (namespace, key)| {
                row.push_bind(namespace.as_str()).push_bind(key.as_str());
            });
            builder.push(")");
            builder.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn load_memory(&self, now: DateTime<Utc>) -> Result<Vec<MemoryEntry>> {
        sqlx::query("DELETE FROM memory_entries WHERE expires_at IS NOT NULL AND expires_at <= $1")
            .bind(to_ms(now))
            .execute(self.0.writer())
            .await?;
        let rows = sqlx::query("SELECT * FROM memory_entries ORDER BY namespace, key")
            .fetch_all(self.0.reader())
            .await?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let value: String = row.try_get("value")?;
            let version: i64 = row.try_get("version")?;
            let expires_at: Option<i64> = row.try_get("expires_at")?;
            entries.push(MemoryEntry {
                namespace: row.try_get("namespace")?,
                key: row.try_get("key")?,
                value: serde_json::from_str(&value)?,
                version: version.max(0) as u64,
                written_by: row.try_get("written_by")?,
                updated_at: from_ms(row.try_get("updated_at")?),
                expires_at: expires_at.map(from_ms),
            });
        }
        Ok(entries)
    }

    pub async fn put_desired(&self, key: &str, value: &serde_json::Value) -> Result<DesiredEntry> {
        let row = sqlx::query(
            "INSERT INTO desired_state (key, value, generation, updated_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
             generation = desired_state.generation + 1, updated_at = excluded.updated_at \
             RETURNING key, value, generation, updated_at",
        )
        .bind(key)
        .bind(serde_json::to_string(value)?)
        .bind(to_ms(Utc::now()))
        .fetch_one(self.0.writer())
        .await?;
        Self::desired_from_row(&row)
    }

    pub async fn list_desired(&self) -> Result<Vec<DesiredEntry>> {
        let rows = sqlx::query(
            "SELECT key, value, generation, updated_at FROM desired_state ORDER BY key",
        )
        .fetch_all(self.0.reader())
        .await?;
        rows.iter().map(Self::desired_from_row).collect()
    }

    pub async fn add_feedback(
        &self,
        event_id: i64,
        label: FeedbackLabel,
        note: Option<&str>,
        sample: &serde_json::Value,
    ) -> Result<Feedback> {
        let row = sqlx::query(
            "INSERT INTO feedback (event_id, label, note, sample, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             RETURNING id, event_id, label, note, sample, created_at",
        )
        .bind(event_id)
        .bind(label.as_str())
        .bind(note)
        .bind(serde_json::to_string(sample)?)
        .bind(to_ms(Utc::now()))
        .fetch_one(self.0.writer())
        .await?;
        Self::feedback_from_row(&row)
    }

    pub async fn list_feedback(&self) -> Result<Vec<Feedback>> {
        let rows = sqlx::query(
            "SELECT id, event_id, label, note, sample, created_at FROM feedback ORDER BY id",
        )
        .fetch_all(self.0.reader())
        .await?;
        rows.iter().map(Self::feedback_from_row).collect()
    }

    pub async fn record_supervisor_action(&self, input: &SupervisorActionInput) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO supervisor_actions \
             (component, kind, node, observation, action, outcome, reason, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(&input.component)
        .bind(input.kind.as_str())
        .bind(&input.node)
        .bind(&input.observation)
        .bind(input.action.as_str())
        .bind(input.outcome.as_str())
        .bind(&input.reason)
        .bind(to_ms(Utc::now()))
        .fetch_one(self.0.writer())
        .await?;
        Ok(row.try_get("id")?)
    }

    pub async fn list_supervisor_actions(
        &self,
        query: &SupervisorActionQuery,
    ) -> Result<Vec<SupervisorAction>> {
        let mut builder: QueryBuilder<B::Db> =
            QueryBuilder::new("SELECT * FROM supervisor_actions WHERE 1 = 1");
        if let Some(kind) = query.kind {
            builder.push(" AND kind = ").push_bind(kind.as_str());
        }
        if let Some(action) = query.action {
            builder.push(" AND action = ").push_bind(action.as_str());
        }
        if let Some(component) = &query.component {
            builder
                .push(" AND component = ")
                .push_bind(component.clone());
        }
        builder
            .push(" ORDER BY at DESC, id DESC LIMIT ")
            .push(i64::from(query.limit.max(1)));
        let rows = builder.build().fetch_all(self.0.reader()).await?;
        rows.iter().map(Self::supervisor_action_from_row).collect()
    }

    pub async fn save_snapshot(&self, at: DateTime<Utc>, body: &serde_json::Value) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO memory_snapshots (created_at, body) VALUES ($1, $2) RETURNING id",
        )
        .bind(to_ms(at))
        .bind(serde_json::to_string(body)?)
        .fetch_one(self.0.writer())
        .await?;
        Ok(row.try_get("id")?)
    }

    pub async fn latest_snapshot(&self) -> Result<Option<SynthesisSnapshot>> {
        let row = sqlx::query(
            "SELECT id, created_at, body FROM memory_snapshots ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(self.0.reader())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let body: String = row.try_get("body")?;
        Ok(Some(SynthesisSnapshot {
            id: row.try_get("id")?,
            created_at: from_ms(row.try_get("created_at")?),
            body: serde_json::from_str(&body)?,
        }))
    }
}
