//! Retention: documents and fingerprints older than a cutoff deleted oldest first, a batch
//! per statement, so a writer waits for at most one short statement.

use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, IntoArguments, Type};

use super::{Sql, SqlBackend, to_ms};
use crate::error::Result;

/// Deletes a batch (`$2`) of the oldest documents stored before `$1` that no event lists.
/// It walks `documents_unlisted_by_stored_at`, the index of documents recording did not link
/// to an event (`in_event`), so a statement reads about as many rows as it deletes however
/// many old documents events keep (walking every document by age read all of those again at
/// every statement). `NOT EXISTS` still guards what the flag says: a link written by
/// anything other than recording cannot lose its document.
pub(crate) const PRUNE_DOCUMENTS: &str = "DELETE FROM documents WHERE id IN ( \
     SELECT d.id FROM documents d \
     WHERE d.in_event = FALSE AND d.stored_at < $1 \
       AND NOT EXISTS (SELECT 1 FROM event_sources es WHERE es.document_id = d.id) \
     ORDER BY d.stored_at LIMIT $2)";

impl<B> Sql<'_, B>
where
    B: SqlBackend,
    // What the SQL needs of the database, restated on every block (see `Sql`).
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
{
    /// Deletes up to `batch` documents stored before `before` that no event lists (an
    /// event keeps its evidence and sources), oldest first; their detections go with them.
    /// Returns how many were deleted.
    pub async fn prune_documents(&self, before: DateTime<Utc>, batch: usize) -> Result<u64> {
        self.delete_batch(PRUNE_DOCUMENTS, before, batch).await
    }

    /// Deletes up to `batch` fingerprints stored before `before`, oldest first, never the
    /// newest one (SQLite numbers rows from the highest left, and its band index reads new
    /// rows by number). Returns how many were deleted.
    pub async fn prune_fingerprints(&self, before: DateTime<Utc>, batch: usize) -> Result<u64> {
        self.delete_batch(
            "DELETE FROM document_fingerprints WHERE document_id IN ( \
                 SELECT f.document_id FROM document_fingerprints f \
                 WHERE f.stored_at < $1 \
                   AND f.stored_at < (SELECT MAX(stored_at) FROM document_fingerprints) \
                 ORDER BY f.stored_at LIMIT $2)",
            before,
            batch,
        )
        .await
    }

    /// Runs a retention `DELETE` whose `$1` is the cutoff and `$2` the batch size.
    async fn delete_batch(
        &self,
        statement: &'static str,
        before: DateTime<Utc>,
        batch: usize,
    ) -> Result<u64> {
        let done = sqlx::query(statement)
            .bind(to_ms(before))
            .bind(i64::try_from(batch).unwrap_or(i64::MAX))
            .execute(self.0.writer())
            .await?;
        Ok(B::rows_affected(&done))
    }
}
