//! Recording classified batches: one transaction per batch, planned by
//! [`dedup::plan`](crate::dedup::plan) and written with one statement per table.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, QueryBuilder, Row, Transaction,
    Type,
};

use super::{
    DbRow, EventChange, RECORD_ATTEMPTS, Sql, SqlBackend, from_ms, statement_chunks, to_ms,
};
use crate::dedup::fingerprint::{NEAR_DUPLICATE_DISTANCE, simhash_bands};
use crate::dedup::plan::{Candidate, Candidates, ItemPlan, Target, plan_batch};
use crate::domain::{AlertKind, DatePrecision, RecordOutcome, event_day};
use crate::error::{Error, Result};
use crate::ports::ToRecord;

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
    /// The batch's document ids that are stored already.
    async fn stored_ids(
        tx: &mut Transaction<'static, B::Db>,
        batch: &[ToRecord<'_>],
    ) -> Result<HashSet<String>> {
        let mut stored = HashSet::new();
        for chunk in statement_chunks(batch) {
            let mut builder: QueryBuilder<B::Db> =
                QueryBuilder::new("SELECT id FROM documents WHERE id IN (");
            let mut separated = builder.separated(", ");
            for record in chunk {
                separated.push_bind(record.item.document.id.as_str());
            }
            builder.push(")");
            for row in builder.build().fetch_all(&mut **tx).await? {
                stored.insert(row.try_get("id")?);
            }
        }
        Ok(stored)
    }

    /// The stored fingerprints close to the batch's documents. First, for each band value of
    /// the batch, the newest [`NEAR_DUPLICATE_CANDIDATES`](crate::dedup::fingerprint::NEAR_DUPLICATE_CANDIDATES) within the window that share it
    /// (SimHashes of long texts cluster, so an unbounded lookup would grow with the store),
    /// with their SimHashes and keys, from the adapter's band index (`band_neighbours`).
    /// Then, in full by that key, those within [`NEAR_DUPLICATE_DISTANCE`](crate::dedup::fingerprint::NEAR_DUPLICATE_DISTANCE) bits of a document
    /// of the batch sharing the band and stored within the window: few.
    async fn near_duplicate_candidates(
        &self,
        tx: &mut Transaction<'static, B::Db>,
        batch: &[ToRecord<'_>],
        window_start: i64,
    ) -> Result<Candidates> {
        let mut by_band: HashMap<(usize, i32), Vec<u64>> = HashMap::new();
        for simhash in batch.iter().filter_map(|record| record.simhash) {
            for (band, value) in simhash_bands(simhash).into_iter().enumerate() {
                by_band.entry((band, value)).or_default().push(simhash);
            }
        }
        let mut bands: Vec<(usize, i32)> = by_band.keys().copied().collect();
        bands.sort_unstable();
        // The close ones, with the band value each was found through.
        let mut close: HashMap<B::Key, Vec<(usize, i32)>> = HashMap::new();
        for (band, value, key, stored) in self.0.band_neighbours(tx, &bands, window_start).await? {
            let stored = stored as u64;
            let near = by_band.get(&(band, value)).is_some_and(|simhashes| {
                simhashes
                    .iter()
                    .any(|simhash| (simhash ^ stored).count_ones() <= NEAR_DUPLICATE_DISTANCE)
            });
            if near {
                close.entry(key).or_default().push((band, value));
            }
        }
        let mut candidates = Candidates::default();
        let keys: Vec<&B::Key> = close.keys().collect();
        for chunk in statement_chunks(&keys) {
            let mut builder: QueryBuilder<B::Db> = QueryBuilder::new(format!(
                "SELECT {} AS fingerprint_key, f.document_id, f.simhash, f.source_name, \
                 f.merge_key, f.stored_at, es.event_id, e.project_key AS event_key \
                 FROM document_fingerprints f \
                 LEFT JOIN event_sources es ON es.document_id = f.document_id \
                 LEFT JOIN tge_events e ON e.id = es.event_id WHERE f.stored_at > ",
                B::KEY_COLUMN
            ));
            builder
                .push_bind(window_start)
                .push(format!(" AND {} IN (", B::KEY_COLUMN));
            let mut separated = builder.separated(", ");
            for key in chunk {
                separated.push_bind(*key);
            }
            builder.push(")");
            for row in builder.build().fetch_all(&mut **tx).await? {
                let key: B::Key = row.try_get("fingerprint_key")?;
                let document_id: String = row.try_get("document_id")?;
                let simhash: i64 = row.try_get("simhash")?;
                let event_id: Option<i64> = row.try_get("event_id")?;
                let event_key: Option<String> = row.try_get("event_key")?;
                let candidate = Candidate {
                    document_id,
                    simhash: simhash as u64,
                    source_name: row.try_get("source_name")?,
                    merge_key: row.try_get("merge_key")?,
                    stored_at: row.try_get("stored_at")?,
                    event: event_id.zip(event_key),
                };
                for &(band, value) in close.get(&key).into_iter().flatten() {
                    candidates.add(band, value, candidate.clone());
                }
            }
        }
        Ok(candidates)
    }

    /// The newest event within the window of each of the batch's TGE merge keys.
    async fn latest_events(
        tx: &mut Transaction<'static, B::Db>,
        keys: &[&str],
        window_start: i64,
    ) -> Result<HashMap<String, i64>> {
        let mut newest: HashMap<String, (i64, i64)> = HashMap::new();
        for chunk in statement_chunks(keys) {
            let mut builder: QueryBuilder<B::Db> = QueryBuilder::new(
                "SELECT id, project_key, last_seen FROM tge_events WHERE last_seen > ",
            );
            builder
                .push_bind(window_start)
                .push(" AND project_key IN (");
            let mut separated = builder.separated(", ");
            for key in chunk {
                separated.push_bind(*key);
            }
            builder.push(")");
            for row in builder.build().fetch_all(&mut **tx).await? {
                let key: String = row.try_get("project_key")?;
                let seen: (i64, i64) = (row.try_get("last_seen")?, row.try_get("id")?);
                let slot = newest.entry(key).or_insert(seen);
                if seen > *slot {
                    *slot = seen;
                }
            }
        }
        Ok(newest.into_iter().map(|(key, (_, id))| (key, id)).collect())
    }

    /// Records a batch in one transaction, writing each table with one statement (see
    /// [`dedup::plan`](crate::dedup::plan)). `None` when another writer stored one of
    /// the planned documents meanwhile (Postgres; the transaction is rolled back and the
    /// batch can be planned again).
    async fn record_batch_once(
        &self,
        batch: &[ToRecord<'_>],
        window_start: i64,
        now: i64,
    ) -> Result<Option<Vec<RecordOutcome>>> {
        let mut tx = self.0.begin_write().await?;
        // Two writers merging the same project must not both create an event: the batch
        // holds the lock of every project it may merge, taken in one order so that two
        // batches never wait for each other's locks.
        let mut keys: Vec<&str> = batch
            .iter()
            .filter(|record| record.item.detection.is_tge)
            .map(|record| record.merge_key)
            .collect();
        keys.sort_unstable();
        keys.dedup();
        B::lock_merge_keys(&mut tx, &keys).await?;
        let stored = Self::stored_ids(&mut tx, batch).await?;
        let candidates = self
            .near_duplicate_candidates(&mut tx, batch, window_start)
            .await?;
        let latest = Self::latest_events(&mut tx, &keys, window_start).await?;
        let plan = plan_batch(batch, &stored, &candidates, latest);

        let kept: Vec<(&ToRecord<'_>, &ItemPlan)> = batch
            .iter()
            .zip(&plan.items)
            .filter(|(_, item)| !matches!(item, ItemPlan::Duplicate))
            .collect();
        if kept.is_empty() {
            tx.commit().await?;
            return Ok(Some(vec![RecordOutcome::Duplicate; batch.len()]));
        }
        let mut inserted: HashSet<String> = HashSet::with_capacity(kept.len());
        // In id order: two writers inserting overlapping batches then take the rows' locks in
        // the same order and wait for each other instead of deadlocking (Postgres).
        let mut by_id = kept.clone();
        by_id.sort_unstable_by(|a, b| a.0.item.document.id.cmp(&b.0.item.document.id));
        for chunk in statement_chunks(&by_id[..]) {
            let mut builder: QueryBuilder<B::Db> = QueryBuilder::new(
                "INSERT INTO documents (id, source_id, source_name, url, title, text, \
                 published_at, fetched_at, stored_at, in_event) ",
            );
            builder.push_values(chunk, |mut row, (record, item)| {
                let document = &record.item.document;
                row.push_bind(document.id.as_str())
                    .push_bind(document.source_id)
                    .push_bind(document.source_name.as_str())
                    .push_bind(document.url.as_str())
                    .push_bind(document.title.as_str())
                    .push_bind(document.text.as_str())
                    .push_bind(document.published_at.map(to_ms))
                    .push_bind(to_ms(document.fetched_at))
                    .push_bind(now)
                    // `in_event`: linked below, so out of retention's index (retention.rs).
                    .push_bind(matches!(item, ItemPlan::Tge { .. }));
            });
            builder.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
            for row in builder.build().fetch_all(&mut *tx).await? {
                inserted.insert(row.try_get("id")?);
            }
        }
        if inserted.len() != kept.len() {
            // Another writer stored one of them after `stored_ids` read: plan again.
            tx.rollback().await?;
            return Ok(None);
        }
        let with_fingerprint: Vec<(&ToRecord<'_>, u64)> = kept
            .iter()
            .filter_map(|(record, _)| record.simhash.map(|simhash| (*record, simhash)))
            .collect();
        for chunk in statement_chunks(&with_fingerprint[..]) {
            let mut builder: QueryBuilder<B::Db> = QueryBuilder::new(
                "INSERT INTO document_fingerprints (document_id, source_name, merge_key, \
                 simhash, band0, band1, band2, band3, band4, stored_at) ",
            );
            builder.push_values(chunk, |mut row, (record, simhash)| {
                let document = &record.item.document;
                row.push_bind(document.id.as_str())
                    .push_bind(document.source_name.as_str())
                    .push_bind(record.merge_key)
                    .push_bind(*simhash as i64);
                for band in simhash_bands(*simhash) {
                    row.push_bind(band);
                }
                row.push_bind(now);
            });
            builder.push(" ON CONFLICT (document_id) DO NOTHING");
            builder.build().execute(&mut *tx).await?;
        }
        let evidence: Vec<String> = kept
            .iter()
            .map(|(record, _)| serde_json::to_string(&record.item.detection.evidence))
            .collect::<std::result::Result<_, _>>()?;
        let rows: Vec<(&ToRecord<'_>, &String)> = kept
            .iter()
            .map(|(record, _)| *record)
            .zip(&evidence)
            .collect();
        for chunk in statement_chunks(&rows[..]) {
            let mut builder: QueryBuilder<B::Db> = QueryBuilder::new(
                "INSERT INTO detections (document_id, score, is_tge, project, token, \
                 event_date, evidence, created_at) ",
            );
            builder.push_values(chunk, |mut row, (record, evidence)| {
                let detection = &record.item.detection;
                row.push_bind(record.item.document.id.as_str())
                    .push_bind(detection.score)
                    .push_bind(detection.is_tge)
                    .push_bind(detection.project.as_deref())
                    .push_bind(detection.token.as_deref())
                    .push_bind(detection.event_date.as_deref())
                    .push_bind(evidence.as_str())
                    .push_bind(now);
            });
            builder.build().execute(&mut *tx).await?;
        }

        // Each touched event's change: its best document (the first with the highest score
        // wins, as when recorded one by one), the first project, token and date named, and
        // how many sources it gains.
        let mut merged: Vec<(Target, EventChange<'_>)> = Vec::new();
        for ((record, item), evidence) in kept.iter().zip(&evidence) {
            let ItemPlan::Tge { target, .. } = item else {
                continue;
            };
            let detection = &record.item.detection;
            match merged.iter_mut().find(|(t, _)| t == target) {
                Some((_, change)) => change.add(&record.item.document, detection, evidence),
                None => merged.push((
                    *target,
                    EventChange::new(&record.item.document, detection, evidence),
                )),
            }
        }
        let mut created_ids: HashMap<usize, i64> = HashMap::new();
        let mut created: Vec<(usize, &EventChange<'_>)> = Vec::new();
        let mut updated: Vec<(i64, &EventChange<'_>)> = Vec::new();
        for (target, change) in &merged {
            match target {
                Target::New(index) => created.push((*index, change)),
                Target::Existing(id) => updated.push((*id, change)),
            }
        }
        for chunk in statement_chunks(&created[..]) {
            let mut builder: QueryBuilder<B::Db> = QueryBuilder::new(
                "INSERT INTO tge_events (project, project_key, token, score, event_date, \
                 first_seen, last_seen, evidence, source_count, kind, date_precision, venues, \
                 published_at) ",
            );
            builder.push_values(chunk, |mut row, (index, change)| {
                row.push_bind(change.project)
                    .push_bind(plan.new_events[*index].as_str())
                    .push_bind(change.token)
                    .push_bind(change.score)
                    .push_bind(change.event_date)
                    .push_bind(now)
                    .push_bind(now)
                    .push_bind(change.evidence)
                    .push_bind(change.sources)
                    .push_bind(change.kind().as_str())
                    .push_bind(change.date_precision())
                    .push_bind(
                        serde_json::to_string(&change.venues).unwrap_or_else(|_| "[]".into()),
                    )
                    .push_bind(change.published_at);
            });
            // New events have distinct keys within a batch: the key says which is which.
            builder.push(" RETURNING id, project_key");
            for row in builder.build().fetch_all(&mut *tx).await? {
                let key: String = row.try_get("project_key")?;
                let id: i64 = row.try_get("id")?;
                if let Some(index) = plan.new_events.iter().position(|k| *k == key) {
                    created_ids.insert(index, id);
                }
            }
        }
        // The existing events this batch changes, locked in id order before any of them is
        // written (see `SqlBackend::lock_event_rows`).
        let mut touched: Vec<i64> = updated.iter().map(|(id, _)| *id).collect();
        touched.sort_unstable();
        touched.dedup();
        B::lock_event_rows(&mut tx, &touched).await?;
        // The outbox: one row per new event and per material change, in this transaction, so
        // an event stored is an alert owed even if the process dies before the deliverer
        // reads it. Material changes: a date set on an event that had none (its revision is
        // raised first, while it has none; the update below sets the date), a day moved, a
        // new venue.
        let mut changes: Vec<(i64, i64, AlertKind)> = created_ids
            .values()
            .map(|id| (*id, 1, AlertKind::Created))
            .collect();
        let dated: Vec<i64> = updated
            .iter()
            .filter(|(_, change)| change.event_date.is_some())
            .map(|(id, _)| *id)
            .collect();
        for chunk in statement_chunks(&dated) {
            let mut builder: QueryBuilder<B::Db> = QueryBuilder::new(
                "UPDATE tge_events SET revision = revision + 1 \
                 WHERE event_date IS NULL AND id IN (",
            );
            let mut separated = builder.separated(", ");
            for id in chunk {
                separated.push_bind(*id);
            }
            builder.push(") RETURNING id, revision");
            for row in builder.build().fetch_all(&mut *tx).await? {
                changes.push((
                    row.try_get("id")?,
                    row.try_get("revision")?,
                    AlertKind::Updated,
                ));
            }
        }
        // A date moved: a report naming a day (not a month or a quarter) other than the day
        // stored, or a day where only a month or a quarter was, is a material change too.
        // Events dated only now are not among them: their date is still NULL here.
        let redated: Vec<(i64, &str)> = updated
            .iter()
            .filter_map(|(id, change)| Some((*id, change.day_date?)))
            .collect();
        for chunk in statement_chunks(&redated) {
            let mut builder: QueryBuilder<B::Db> = QueryBuilder::new(
                "SELECT id, event_date, date_precision, first_seen FROM tge_events \
                 WHERE event_date IS NOT NULL AND id IN (",
            );
            let mut separated = builder.separated(", ");
            for (id, _) in chunk {
                separated.push_bind(*id);
            }
            builder.push(")");
            let mut moved: Vec<(i64, &str)> = Vec::new();
            for row in builder.build().fetch_all(&mut *tx).await? {
                let id: i64 = row.try_get("id")?;
                let stored: String = row.try_get("event_date")?;
                let precision: Option<String> = row.try_get("date_precision")?;
                let first_seen = from_ms(row.try_get("first_seen")?);
                let Some((_, date)) = chunk.iter().find(|(wanted, _)| *wanted == id) else {
                    continue;
                };
                let new_day = event_day(date, first_seen);
                let old_day = (precision.as_deref() == Some(DatePrecision::Day.as_str()))
                    .then(|| event_day(&stored, first_seen))
                    .flatten();
                if new_day.is_some() && new_day != old_day {
                    moved.push((id, date));
                }
            }
            for (id, date) in moved {
                let revision: i64 = sqlx::query_scalar(
                    "UPDATE tge_events SET event_date = $1, date_precision = $2, \
                     revision = revision + 1 WHERE id = $3 RETURNING revision",
                )
                .bind(date)
                .bind(DatePrecision::Day.as_str())
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                changes.push((id, revision, AlertKind::DateMoved));
            }
        }
        // A new venue: a report whose title names an exchange the event's reports had not.
        let with_venues: Vec<(i64, &Vec<String>)> = updated
            .iter()
            .filter(|(_, change)| !change.venues.is_empty())
            .map(|(id, change)| (*id, &change.venues))
            .collect();
        for chunk in statement_chunks(&with_venues) {
            let mut builder: QueryBuilder<B::Db> =
                QueryBuilder::new("SELECT id, venues FROM tge_events WHERE id IN (");
            let mut separated = builder.separated(", ");
            for (id, _) in chunk {
                separated.push_bind(*id);
            }
            builder.push(")");
            let mut grown: Vec<(i64, String)> = Vec::new();
            let mut unknown: Vec<(i64, String)> = Vec::new();
            for row in builder.build().fetch_all(&mut *tx).await? {
                let id: i64 = row.try_get("id")?;
                let stored: Option<String> = row.try_get("venues")?;
                let Some((_, named)) = chunk.iter().find(|(wanted, _)| *wanted == id) else {
                    continue;
                };
                // Not filled in yet (an event of an older version, a process that has not
                // restarted since): what is named now is no news.
                let Some(stored) = stored else {
                    unknown.push((id, serde_json::to_string(named)?));
                    continue;
                };
                let mut venues: Vec<String> = serde_json::from_str(&stored)?;
                let before = venues.len();
                for venue in named.iter() {
                    if !venues.contains(venue) {
                        venues.push(venue.clone());
                    }
                }
                if venues.len() > before {
                    grown.push((id, serde_json::to_string(&venues)?));
                }
            }
            for (id, venues) in grown {
                let revision: i64 = sqlx::query_scalar(
                    "UPDATE tge_events SET venues = $1, revision = revision + 1 \
                     WHERE id = $2 RETURNING revision",
                )
                .bind(venues)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                changes.push((id, revision, AlertKind::VenueAdded));
            }
            for (id, venues) in unknown {
                sqlx::query("UPDATE tge_events SET venues = $1 WHERE id = $2 AND venues IS NULL")
                    .bind(venues)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        changes.sort_unstable_by_key(|(id, revision, _)| (*id, *revision));
        for chunk in statement_chunks(&changes) {
            let mut builder: QueryBuilder<B::Db> = QueryBuilder::new(
                "INSERT INTO outbox (event_id, revision, kind, created_at, fanned_out) ",
            );
            builder.push_values(chunk, |mut row, (id, revision, kind)| {
                row.push_bind(*id)
                    .push_bind(*revision)
                    .push_bind(kind.as_str())
                    .push_bind(now)
                    .push_bind(false);
            });
            builder.build().execute(&mut *tx).await?;
        }
        for chunk in statement_chunks(&updated[..]) {
            // `UPDATE .. FROM (VALUES ..)`: both engines name the columns column1, column2...
            // and read the old row in every SET expression.
            let mut builder: QueryBuilder<B::Db> = QueryBuilder::new(
                "UPDATE tge_events SET \
                 last_seen = CASE WHEN last_seen > v.column2 THEN last_seen ELSE v.column2 END, \
                 score = CASE WHEN score > v.column3 THEN score ELSE v.column3 END, \
                 evidence = CASE WHEN v.column3 > score THEN v.column4 ELSE evidence END, \
                 project = COALESCE(project, v.column5), token = COALESCE(token, v.column6), \
                 event_date = COALESCE(event_date, v.column7), \
                 date_precision = CASE WHEN event_date IS NULL THEN v.column9 \
                 ELSE date_precision END, \
                 source_count = source_count + v.column8 FROM (",
            );
            builder.push_values(chunk, |mut row, (id, change)| {
                row.push_bind(*id)
                    .push_bind(now)
                    .push_bind(change.score)
                    .push_bind(change.evidence)
                    .push_bind(change.project)
                    .push_bind(change.token)
                    .push_bind(change.event_date)
                    .push_bind(change.sources)
                    .push_bind(change.date_precision());
            });
            builder.push(") AS v WHERE tge_events.id = v.column1");
            builder.build().execute(&mut *tx).await?;
        }

        let mut outcomes = Vec::with_capacity(batch.len());
        let mut links: Vec<(i64, &str)> = Vec::new();
        for (record, item) in batch.iter().zip(&plan.items) {
            outcomes.push(match item {
                ItemPlan::Duplicate => RecordOutcome::Duplicate,
                ItemPlan::Stored => RecordOutcome::Stored,
                ItemPlan::Tge { target, creates } => {
                    let id = match target {
                        Target::Existing(id) => *id,
                        Target::New(index) => *created_ids.get(index).ok_or_else(|| {
                            Error::Invalid(format!(
                                "recording: the new event of key `{}` got no id",
                                plan.new_events[*index]
                            ))
                        })?,
                    };
                    links.push((id, record.item.document.id.as_str()));
                    if *creates {
                        RecordOutcome::EventCreated(id)
                    } else {
                        RecordOutcome::EventMerged(id)
                    }
                }
            });
        }
        // Every linked document is new (stored just above, marked `in_event`), so each link
        // adds a row and the events' `source_count` (set or raised above) stays exact. By
        // event and document id: the search index takes an event's first 20 sources by
        // (added_at, document id), and Postgres's trigger sees one statement at a time, so the
        // smallest ids go first.
        links.sort_unstable();
        for chunk in statement_chunks(&links[..]) {
            let mut builder: QueryBuilder<B::Db> =
                QueryBuilder::new("INSERT INTO event_sources (event_id, document_id, added_at) ");
            builder.push_values(chunk, |mut row, (event_id, document_id)| {
                row.push_bind(*event_id)
                    .push_bind(*document_id)
                    .push_bind(now);
            });
            builder.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Some(outcomes))
    }

    pub async fn record_classified_batch(
        &self,
        batch: &[ToRecord<'_>],
        merge_window: Duration,
    ) -> Result<Vec<RecordOutcome>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let now = to_ms(Utc::now());
        let window_start = now.saturating_sub(crate::time::millis_i64(merge_window));
        for _ in 0..RECORD_ATTEMPTS {
            if let Some(outcomes) = self.record_batch_once(batch, window_start, now).await? {
                return Ok(outcomes);
            }
        }
        Err(Error::Invalid(format!(
            "recording {} documents: other writers stored some of them in each of {RECORD_ATTEMPTS} attempts",
            batch.len()
        )))
    }
}
