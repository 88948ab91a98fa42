//! SQL shared by the two [`Store`](super::Store) adapters, SQLite (embedded default) and
//! Postgres (production): pure helpers, and [`sql_store!`](crate::sql_store), which writes one
//! `impl Store` for a given sqlx database from a single body of SQL.
//!
//! One body keeps the two stores identical in behaviour (the contract suite checks it); the
//! SQL sticks to what both engines accept: `$N` parameters (SQLite reads `$N` as positional),
//! `RETURNING id`, `ON CONFLICT`, `CASE` instead of `MAX(a, b)`/`GREATEST`, and `LOWER(..)
//! LIKE` for case-insensitive search. What does differ is supplied by each adapter as three
//! associated functions: `begin_write` (SQLite takes the write lock up front with
//! `BEGIN IMMEDIATE`), `lock_merge_keys` (Postgres serialises merges of one project with a
//! transaction-scoped advisory lock; SQLite's single writer already does) and
//! `band_neighbours` (the near-duplicate lookup: one `LATERAL` statement of fixed shape over
//! the band indexes on Postgres, whose planner spent more time on a compound `SELECT` of
//! hundreds of terms than on running it; an index held in memory on SQLite, see
//! [`band_index`](super::band_index)).
//!
//! Schema conventions shared by both migration folders: times are UTC milliseconds since the
//! epoch in 64-bit integers, lists and JSON bodies are JSON text.

use chrono::{DateTime, TimeZone, Utc};

use crate::domain::{Detection, SourceInput};
use crate::error::{Error, Result};

/// Most rows per multi-row statement when recording a batch (at most 10 columns, well under
/// the 32,766 parameters SQLite allows and Postgres' 65,535). A power of two: see
/// [`statement_chunks`].
pub const ROWS_PER_STATEMENT: usize = 256;

/// Splits `items` into the chunks a multi-row statement is built for: each one's length is a
/// power of two of at most [`ROWS_PER_STATEMENT`], the largest first (300 rows are sent as
/// 256, 32, 8 and 4). A statement's text depends only on its row count, so these few shapes
/// (nine per statement) are prepared once per connection and kept in sqlx's statement cache,
/// where a chunk of whatever length was waiting made every batch a new statement to parse and
/// plan (about 1 % of the SQLite writer's time in the embedded pipeline, more on Postgres,
/// which plans each one on the server; BENCHMARKS.md, "Statements prepared once").
pub fn statement_chunks<T>(items: &[T]) -> StatementChunks<'_, T> {
    StatementChunks { rest: items }
}

/// Iterator of [`statement_chunks`].
#[derive(Debug)]
pub struct StatementChunks<'a, T> {
    rest: &'a [T],
}

impl<'a, T> Iterator for StatementChunks<'a, T> {
    type Item = &'a [T];

    fn next(&mut self) -> Option<&'a [T]> {
        if self.rest.is_empty() {
            return None;
        }
        let len = if self.rest.len() >= ROWS_PER_STATEMENT {
            ROWS_PER_STATEMENT
        } else {
            // The largest power of two not above what is left.
            1 << (usize::BITS - 1 - self.rest.len().leading_zeros())
        };
        let (chunk, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(chunk)
    }
}

/// Statements kept prepared per connection. The recording path alone has nine statements of
/// up to nine shapes each ([`statement_chunks`]); sqlx's default cache of 100 would evict
/// some of them every batch.
pub const STATEMENT_CACHE_CAPACITY: usize = 512;

/// Times a batch is planned again when another writer stored one of its documents meanwhile.
pub const RECORD_ATTEMPTS: usize = 5;

/// What recording a batch changes in one event: its best document (the first with the
/// highest score, as when the documents are recorded one by one), the first project, token
/// and date named, and how many sources it gains.
#[derive(Debug, Clone, PartialEq)]
pub struct EventChange<'a> {
    /// Highest score of the batch's documents for the event.
    pub score: f64,
    /// Evidence (JSON) of the first document with that score.
    pub evidence: &'a str,
    /// First project named.
    pub project: Option<&'a str>,
    /// First token named.
    pub token: Option<&'a str>,
    /// First date named.
    pub event_date: Option<&'a str>,
    /// Documents merged in.
    pub sources: i64,
}

impl<'a> EventChange<'a> {
    /// The change of one document.
    pub fn new(detection: &'a Detection, evidence: &'a str) -> EventChange<'a> {
        EventChange {
            score: detection.score,
            evidence,
            project: detection.project.as_deref(),
            token: detection.token.as_deref(),
            event_date: detection.event_date.as_deref(),
            sources: 1,
        }
    }

    /// Adds a later document of the batch.
    pub fn add(&mut self, detection: &'a Detection, evidence: &'a str) {
        if detection.score > self.score {
            self.score = detection.score;
            self.evidence = evidence;
        }
        self.project = self.project.or(detection.project.as_deref());
        self.token = self.token.or(detection.token.as_deref());
        self.event_date = self.event_date.or(detection.event_date.as_deref());
        self.sources += 1;
    }
}

/// Milliseconds since the epoch, as stored.
pub fn to_ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// A stored millisecond timestamp.
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// A list as stored (JSON text).
pub fn json_list(values: &[String]) -> Result<String> {
    Ok(serde_json::to_string(values)?)
}

/// A stored list.
pub fn parse_list(text: &str) -> Result<Vec<String>> {
    Ok(serde_json::from_str(text)?)
}

/// Maps a unique-key violation to a conflict naming the duplicate, other errors as they are.
pub fn conflict(err: sqlx::Error, entity: &str, name: &str) -> Error {
    let duplicate = matches!(&err, sqlx::Error::Database(db) if db.is_unique_violation());
    if duplicate {
        return Error::Conflict(format!("a {entity} named `{name}` already exists"));
    }
    err.into()
}

/// A source's selectors as stored.
pub fn selectors_json(input: &SourceInput) -> Result<Option<String>> {
    match &input.selectors {
        Some(selectors) => Ok(Some(serde_json::to_string(selectors)?)),
        None => Ok(None),
    }
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
pub fn like_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Encodes the cursor of the event after which the next page starts.
pub fn encode_cursor(first_seen_ms: i64, id: i64) -> String {
    hex::encode(format!("{first_seen_ms}:{id}"))
}

/// Decodes a cursor from [`encode_cursor`].
pub fn decode_cursor(token: &str) -> Result<(i64, i64)> {
    let invalid = || Error::Invalid("page_token: not a token returned by this API".into());
    let bytes = hex::decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (ms, id) = text.split_once(':').ok_or_else(invalid)?;
    Ok((
        ms.parse().map_err(|_| invalid())?,
        id.parse().map_err(|_| invalid())?,
    ))
}

/// Writes `impl Store for $store` (in a private module `sql_impl`) over the sqlx database `$db`
/// with row type `$row`. The adapter's module must define, on `$store`, a `pool` field and
/// `async fn begin_write(&self) -> Result<sqlx::Transaction<'static, $db>>`,
/// `fn writer(&self) -> &sqlx::Pool<$db>` (where single writes go) and
/// `async fn lock_merge_keys(tx: &mut sqlx::Transaction<'static, $db>, keys: &[&str]) -> Result<()>`
/// (`keys` sorted and distinct) and
/// `async fn band_neighbours(&self, tx: &mut sqlx::Transaction<'static, $db>, bands: &[(usize, i32)], window_start: i64) -> Result<Vec<(usize, i32, $key, i64)>>`
/// (for each band and value, the newest [`NEAR_DUPLICATE_CANDIDATES`](crate::dedup::fingerprint::NEAR_DUPLICATE_CANDIDATES) fingerprints with
/// that value in that band, as band, value, fingerprint key and SimHash; it may also return
/// fingerprints stored before `window_start`, which the caller drops when it reads them in
/// full). The fingerprint key, of type `$key`, is what the band indexes carry besides the
/// SimHash: the column `$key_column` of `document_fingerprints f` (the document id on
/// Postgres, the rowid on SQLite, which every SQLite index entry ends with).
#[macro_export]
#[doc(hidden)]
macro_rules! sql_store {
    ($store:ident, $db:ty, $row:ty, $key:ty, $key_column:literal) => {
        mod sql_impl {
            use std::time::Duration;

            use async_trait::async_trait;
            use chrono::{DateTime, Utc};
            use sqlx::{QueryBuilder, Row};

            use super::$store;
            use $crate::domain::{
                ActionOutcome, AgentKind, SupervisorAction, SupervisorActionInput,
                SupervisorActionQuery, Feedback, FeedbackLabel,
                ApiKey, Company, CompanyInput, DesiredEntry, EventPage, EventQuery,
                EventSource, Evidence, FetchReport, FetchStatus, MemoryEntry, Priority,
                RecordOutcome, Source, SourceInput, SourceKind, SynthesisSnapshot, TgeEvent,
            };
            use $crate::supervision::Action;
            use $crate::error::{Error, Result};
            use std::collections::{HashMap, HashSet};

            use $crate::ports::{Store, ToRecord};
            use $crate::dedup::fingerprint::{NEAR_DUPLICATE_DISTANCE, simhash_bands};
            use $crate::dedup::key::project_key_of;
            use $crate::dedup::plan::{
                plan_batch, Candidate, Candidates, ItemPlan, Target,
            };
            use $crate::ports::sql::{
                conflict, decode_cursor, encode_cursor, from_ms, json_list, like_pattern,
                EventChange, RECORD_ATTEMPTS, parse_list, selectors_json, statement_chunks,
                to_ms,
            };

fn source_from_row(row: &$row) -> Result<Source> {
    let kind_text: String = row.try_get("kind")?;
    let kind = SourceKind::parse(&kind_text)
        .ok_or_else(|| Error::Invalid(format!("stored source kind `{kind_text}` is unknown")))?;
    let selectors: Option<String> = row.try_get("selectors")?;
    let selectors = match selectors {
        Some(text) => Some(serde_json::from_str(&text)?),
        None => None,
    };
    let interval_ms: i64 = row.try_get("interval_ms")?;
    let status: Option<String> = row.try_get("last_status")?;
    let last_fetch_at: Option<i64> = row.try_get("last_fetch_at")?;
    let tier: i64 = row.try_get("tier")?;
    let failures: i64 = row.try_get("consecutive_failures")?;
    let items: i64 = row.try_get("last_item_count")?;
    let effective: Option<i64> = row.try_get("effective_interval_ms")?;
    Ok(Source {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind,
        url: row.try_get("url")?,
        interval: Duration::from_millis(interval_ms.max(0) as u64),
        selectors,
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

fn desired_from_row(row: &$row) -> Result<DesiredEntry> {
    let value: String = row.try_get("value")?;
    Ok(DesiredEntry {
        key: row.try_get("key")?,
        value: serde_json::from_str(&value)?,
        generation: row.try_get("generation")?,
        updated_at: from_ms(row.try_get("updated_at")?),
    })
}

fn supervisor_action_from_row(row: &$row) -> Result<SupervisorAction> {
    let kind: String = row.try_get("kind")?;
    let action: String = row.try_get("action")?;
    let outcome: String = row.try_get("outcome")?;
    let stored = |what: &str, value: &str| {
        Error::Invalid(format!("stored supervisor action {what} `{value}` is unknown"))
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

fn feedback_from_row(row: &$row) -> Result<Feedback> {
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

fn company_from_row(row: &$row) -> Result<Company> {
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

impl $store {
    async fn event_sources(&self, event_id: i64) -> Result<Vec<EventSource>> {
        let mut grouped = self.sources_of_events(&[event_id], None).await?;
        Ok(grouped.remove(&event_id).unwrap_or_default())
    }

    /// The sources of several events in one query (a page of events would otherwise cost a
    /// query per event), grouped by event id, each event's in the order they were added; at
    /// most `limit` per event (the first ones) when given.
    async fn sources_of_events(
        &self,
        event_ids: &[i64],
        limit: Option<u32>,
    ) -> Result<std::collections::HashMap<i64, Vec<EventSource>>> {
        let mut grouped: std::collections::HashMap<i64, Vec<EventSource>> =
            std::collections::HashMap::new();
        if event_ids.is_empty() || limit == Some(0) {
            return Ok(grouped);
        }
        // Ranked on `event_sources` alone (its primary key starts with the event), so only the
        // rows kept are joined to their documents and detections.
        let mut builder: QueryBuilder<$db> = QueryBuilder::new(
            "SELECT r.event_id, d.url, d.title, d.published_at, d.source_name, det.score, \
             r.added_at FROM (SELECT event_id, document_id, added_at, ROW_NUMBER() OVER \
             (PARTITION BY event_id ORDER BY added_at, document_id) AS nth \
             FROM event_sources WHERE event_id IN (",
        );
        let mut separated = builder.separated(", ");
        for id in event_ids {
            separated.push_bind(*id);
        }
        builder.push(")) AS r JOIN documents d ON d.id = r.document_id \
             JOIN detections det ON det.document_id = r.document_id");
        if let Some(limit) = limit {
            builder.push(" WHERE r.nth <= ").push_bind(i64::from(limit));
        }
        builder.push(" ORDER BY r.event_id, r.nth");
        let rows = builder.build().fetch_all(&self.pool).await?;
        for row in rows {
            let event_id: i64 = row.try_get("event_id")?;
            let published: Option<i64> = row.try_get("published_at")?;
            grouped.entry(event_id).or_default().push(EventSource {
                url: row.try_get("url")?,
                title: row.try_get("title")?,
                published_at: published.map(from_ms),
                source_name: row.try_get("source_name")?,
                score: row.try_get("score")?,
                seen_at: from_ms(row.try_get("added_at")?),
            });
        }
        Ok(grouped)
    }

    async fn event_from_row(&self, row: &$row) -> Result<TgeEvent> {
        let id: i64 = row.try_get("id")?;
        let sources = self.event_sources(id).await?;
        Self::event_with_sources(row, sources)
    }

    fn event_with_sources(row: &$row, sources: Vec<EventSource>) -> Result<TgeEvent> {
        let evidence: String = row.try_get("evidence")?;
        let evidence: Vec<Evidence> = serde_json::from_str(&evidence)?;
        let source_count: i64 = row.try_get("source_count")?;
        Ok(TgeEvent {
            id: row.try_get("id")?,
            source_count: source_count.max(0) as u64,
            project: row.try_get("project")?,
            token: row.try_get("token")?,
            score: row.try_get("score")?,
            event_date: row.try_get("event_date")?,
            first_seen: from_ms(row.try_get("first_seen")?),
            last_seen: from_ms(row.try_get("last_seen")?),
            sources,
            evidence,
        })
    }

    async fn resolve_company_keys(&self, company: &str) -> Result<Vec<String>> {
        let wanted = $crate::domain::normalise_for_hash(company);
        let mut keys = vec![project_key_of(company)];
        for listed in self.list_companies().await? {
            let matches = $crate::domain::normalise_for_hash(&listed.name) == wanted
                || listed
                    .aliases
                    .iter()
                    .any(|alias| $crate::domain::normalise_for_hash(alias) == wanted);
            if matches {
                keys.push(project_key_of(&listed.name));
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// The batch's document ids that are stored already.
    async fn stored_ids(
        tx: &mut sqlx::Transaction<'static, $db>,
        batch: &[ToRecord<'_>],
    ) -> Result<HashSet<String>> {
        let mut stored = HashSet::new();
        for chunk in statement_chunks(&batch[..]) {
            let mut builder: QueryBuilder<$db> =
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
        tx: &mut sqlx::Transaction<'static, $db>,
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
        let mut close: HashMap<$key, Vec<(usize, i32)>> = HashMap::new();
        for (band, value, key, stored) in
            self.band_neighbours(tx, &bands, window_start).await?
        {
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
        let keys: Vec<&$key> = close.keys().collect();
        for chunk in statement_chunks(&keys[..]) {
            let mut builder: QueryBuilder<$db> = QueryBuilder::new(concat!(
                "SELECT ",
                $key_column,
                " AS fingerprint_key, f.document_id, f.simhash, f.source_name, f.merge_key, \
                 f.stored_at, es.event_id, e.project_key AS event_key \
                 FROM document_fingerprints f \
                 LEFT JOIN event_sources es ON es.document_id = f.document_id \
                 LEFT JOIN tge_events e ON e.id = es.event_id WHERE f.stored_at > ",
            ));
            builder.push_bind(window_start).push(concat!(" AND ", $key_column, " IN ("));
            let mut separated = builder.separated(", ");
            for key in chunk {
                separated.push_bind(*key);
            }
            builder.push(")");
            for row in builder.build().fetch_all(&mut **tx).await? {
                let key: $key = row.try_get("fingerprint_key")?;
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
        tx: &mut sqlx::Transaction<'static, $db>,
        keys: &[&str],
        window_start: i64,
    ) -> Result<HashMap<String, i64>> {
        let mut newest: HashMap<String, (i64, i64)> = HashMap::new();
        for chunk in statement_chunks(&keys[..]) {
            let mut builder: QueryBuilder<$db> = QueryBuilder::new(
                "SELECT id, project_key, last_seen FROM tge_events WHERE last_seen > ",
            );
            builder.push_bind(window_start).push(" AND project_key IN (");
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
        let mut tx = self.begin_write().await?;
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
        Self::lock_merge_keys(&mut tx, &keys).await?;
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
            let mut builder: QueryBuilder<$db> = QueryBuilder::new(
                "INSERT INTO documents (id, source_id, source_name, url, title, text, \
                 published_at, fetched_at, stored_at) ",
            );
            builder.push_values(chunk, |mut row, (record, _)| {
                let document = &record.item.document;
                row.push_bind(document.id.as_str())
                    .push_bind(document.source_id)
                    .push_bind(document.source_name.as_str())
                    .push_bind(document.url.as_str())
                    .push_bind(document.title.as_str())
                    .push_bind(document.text.as_str())
                    .push_bind(document.published_at.map(to_ms))
                    .push_bind(to_ms(document.fetched_at))
                    .push_bind(now);
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
            let mut builder: QueryBuilder<$db> = QueryBuilder::new(
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
            let mut builder: QueryBuilder<$db> = QueryBuilder::new(
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
                Some((_, change)) => change.add(detection, evidence),
                None => merged.push((*target, EventChange::new(detection, evidence))),
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
            let mut builder: QueryBuilder<$db> = QueryBuilder::new(
                "INSERT INTO tge_events (project, project_key, token, score, event_date, \
                 first_seen, last_seen, evidence, source_count) ",
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
                    .push_bind(change.sources);
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
        for chunk in statement_chunks(&updated[..]) {
            // `UPDATE .. FROM (VALUES ..)`: both engines name the columns column1, column2...
            // and read the old row in every SET expression.
            let mut builder: QueryBuilder<$db> = QueryBuilder::new(
                "UPDATE tge_events SET \
                 last_seen = CASE WHEN last_seen > v.column2 THEN last_seen ELSE v.column2 END, \
                 score = CASE WHEN score > v.column3 THEN score ELSE v.column3 END, \
                 evidence = CASE WHEN v.column3 > score THEN v.column4 ELSE evidence END, \
                 project = COALESCE(project, v.column5), token = COALESCE(token, v.column6), \
                 event_date = COALESCE(event_date, v.column7), \
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
                    .push_bind(change.sources);
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
        // Every linked document is new (stored just above), so each link adds a row and the
        // events' `source_count` (set or raised above) stays exact.
        for chunk in statement_chunks(&links[..]) {
            let mut builder: QueryBuilder<$db> =
                QueryBuilder::new("INSERT INTO event_sources (event_id, document_id, added_at) ");
            builder.push_values(chunk, |mut row, (event_id, document_id)| {
                row.push_bind(*event_id).push_bind(*document_id).push_bind(now);
            });
            builder.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Some(outcomes))
    }
}

/// An API key from a row of `id, name, scopes, created_at, expires_at, last_used_at,
/// revoked_at`.
fn api_key_from_row(row: &$row) -> Result<ApiKey> {
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

#[async_trait]
impl Store for $store {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
        self.writer().close().await;
    }

    async fn list_sources(&self) -> Result<Vec<Source>> {
        let rows = sqlx::query("SELECT * FROM sources ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(source_from_row).collect()
    }

    async fn get_source(&self, id: i64) -> Result<Source> {
        let row = sqlx::query("SELECT * FROM sources WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => source_from_row(&row),
            None => Err(Error::not_found("source", id)),
        }
    }

    async fn create_source(&self, input: &SourceInput) -> Result<Source> {
        input.validate()?;
        let result = sqlx::query(
            "INSERT INTO sources (name, kind, url, interval_ms, selectors, tier, enabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(&input.name)
        .bind(input.kind.as_str())
        .bind(&input.url)
        .bind($crate::time::millis_i64(input.interval))
        .bind(selectors_json(input)?)
        .bind(i64::from(input.tier))
        .bind(input.enabled)
        .bind(to_ms(Utc::now()))
        .fetch_one(self.writer())
        .await;
        match result {
            Ok(row) => self.get_source(row.try_get("id")?).await,
            Err(err) => Err(conflict(err, "source", &input.name)),
        }
    }

    async fn update_source(&self, id: i64, input: &SourceInput) -> Result<Source> {
        input.validate()?;
        let result = sqlx::query(
            "UPDATE sources SET name = $1, kind = $2, url = $3, interval_ms = $4, selectors = $5, \
             tier = $6, enabled = $7, effective_interval_ms = NULL, \
             etag = CASE WHEN url = $8 THEN etag ELSE NULL END, \
             last_modified = CASE WHEN url = $9 THEN last_modified ELSE NULL END, \
             content_hash = CASE WHEN url = $10 THEN content_hash ELSE NULL END \
             WHERE id = $11",
        )
        .bind(&input.name)
        .bind(input.kind.as_str())
        .bind(&input.url)
        .bind($crate::time::millis_i64(input.interval))
        .bind(selectors_json(input)?)
        .bind(i64::from(input.tier))
        .bind(input.enabled)
        .bind(&input.url)
        .bind(&input.url)
        .bind(&input.url)
        .bind(id)
        .execute(self.writer())
        .await;
        match result {
            Ok(done) if done.rows_affected() == 0 => Err(Error::not_found("source", id)),
            Ok(_) => self.get_source(id).await,
            Err(err) => Err(conflict(err, "source", &input.name)),
        }
    }

    async fn delete_source(&self, id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM sources WHERE id = $1")
            .bind(id)
            .execute(self.writer())
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("source", id));
        }
        Ok(())
    }

    async fn record_fetch(&self, id: i64, report: &FetchReport) -> Result<()> {
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
        .bind(
            report
                .next_interval
                .map($crate::time::millis_i64),
        )
        .bind(id)
        .execute(self.writer())
        .await?;
        // A source deleted while it was being fetched is not an error: its report is moot.
        Ok(())
    }

    async fn list_companies(&self) -> Result<Vec<Company>> {
        let rows = sqlx::query("SELECT * FROM companies ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(company_from_row).collect()
    }

    async fn get_company(&self, id: i64) -> Result<Company> {
        let row = sqlx::query("SELECT * FROM companies WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => company_from_row(&row),
            None => Err(Error::not_found("company", id)),
        }
    }

    async fn create_company(&self, input: &CompanyInput) -> Result<Company> {
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
        .fetch_one(self.writer())
        .await;
        match result {
            Ok(row) => self.get_company(row.try_get("id")?).await,
            Err(err) => Err(conflict(err, "company", &input.name)),
        }
    }

    async fn update_company(&self, id: i64, input: &CompanyInput) -> Result<Company> {
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
        .execute(self.writer())
        .await;
        match result {
            Ok(done) if done.rows_affected() == 0 => Err(Error::not_found("company", id)),
            Ok(_) => self.get_company(id).await,
            Err(err) => Err(conflict(err, "company", &input.name)),
        }
    }

    async fn delete_company(&self, id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM companies WHERE id = $1")
            .bind(id)
            .execute(self.writer())
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("company", id));
        }
        Ok(())
    }

    async fn record_classified_batch(
        &self,
        batch: &[ToRecord<'_>],
        merge_window: Duration,
    ) -> Result<Vec<RecordOutcome>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let now = to_ms(Utc::now());
        let window_start = now.saturating_sub($crate::time::millis_i64(merge_window));
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

    async fn list_events(&self, query: &EventQuery) -> Result<EventPage> {
        let page_size = query.page_size.clamp(1, 200);
        let mut builder: QueryBuilder<$db> =
            QueryBuilder::new("SELECT * FROM tge_events e WHERE 1 = 1");
        if let Some(company) = &query.company {
            let keys = self.resolve_company_keys(company).await?;
            builder.push(" AND e.project_key IN (");
            let mut separated = builder.separated(", ");
            for key in keys {
                separated.push_bind(key);
            }
            builder.push(")");
        }
        if let Some(token) = &query.token {
            builder
                .push(" AND UPPER(e.token) = UPPER(")
                .push_bind(token.trim_start_matches('$').to_owned())
                .push(")");
        }
        if let Some(min_score) = query.min_score {
            builder.push(" AND e.score >= ").push_bind(min_score);
        }
        if let Some(since) = query.since {
            builder
                .push(" AND e.first_seen >= ")
                .push_bind(to_ms(since));
        }
        if let Some(q) = &query.q {
            let pattern = like_pattern(&q.to_lowercase());
            builder
                .push(" AND (LOWER(e.project) LIKE ")
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\' OR LOWER(e.token) LIKE ")
                .push_bind(pattern.clone())
                .push(
                    " ESCAPE '\\' OR EXISTS (SELECT 1 FROM event_sources es JOIN documents d \
                     ON d.id = es.document_id WHERE es.event_id = e.id AND (LOWER(d.title) LIKE ",
                )
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\' OR LOWER(d.text) LIKE ")
                .push_bind(pattern)
                .push(" ESCAPE '\\')))");
        }
        if let Some(token) = &query.page_token {
            let (ms, id) = decode_cursor(token)?;
            builder
                .push(" AND (e.first_seen < ")
                .push_bind(ms)
                .push(" OR (e.first_seen = ")
                .push_bind(ms)
                .push(" AND e.id < ")
                .push_bind(id)
                .push("))");
        }
        // The limit is a literal (a validated integer): SQLite, built with STAT4, prepares a
        // statement with `LIMIT ?` again at every new binding (see `BAND_NEIGHBOURS` in
        // sqlite.rs); as text, each filter shape and page size is prepared once.
        builder
            .push(" ORDER BY e.first_seen DESC, e.id DESC LIMIT ")
            .push(i64::from(page_size) + 1);
        let rows = builder.build().fetch_all(&self.pool).await?;
        let has_more = rows.len() > page_size as usize;
        let page = &rows[..rows.len().min(page_size as usize)];
        let mut ids = Vec::with_capacity(page.len());
        for row in page {
            ids.push(row.try_get::<i64, _>("id")?);
        }
        let limit = query
            .sources_per_event
            .unwrap_or($crate::domain::DEFAULT_SOURCES_PER_EVENT)
            .min($crate::domain::MAX_SOURCES_PER_EVENT);
        let mut sources = self.sources_of_events(&ids, Some(limit)).await?;
        let mut events = Vec::with_capacity(page.len());
        for (row, id) in page.iter().zip(&ids) {
            let own = sources.remove(id).unwrap_or_default();
            events.push(Self::event_with_sources(row, own)?);
        }
        let next_page_token = match (has_more, events.last()) {
            (true, Some(last)) => Some(encode_cursor(to_ms(last.first_seen), last.id)),
            _ => None,
        };
        Ok(EventPage {
            events,
            next_page_token,
        })
    }

    async fn get_event(&self, id: i64) -> Result<TgeEvent> {
        let row = sqlx::query("SELECT * FROM tge_events WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => self.event_from_row(&row).await,
            None => Err(Error::not_found("event", id)),
        }
    }

    async fn count_documents(&self) -> Result<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM documents")
            .fetch_one(&self.pool)
            .await?;
        Ok(count.max(0) as u64)
    }

    async fn insert_api_key(&self, name: &str, hash: &str, scopes: &[String]) -> Result<i64> {
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
        .fetch_one(self.writer())
        .await?;
        Ok(result.try_get("id")?)
    }

    async fn replace_api_key(&self, name: &str, hash: &str, scopes: &[String]) -> Result<i64> {
        let id = self.insert_api_key(name, hash, scopes).await?;
        sqlx::query(
            "UPDATE api_keys SET revoked_at = $3 \
             WHERE name = $1 AND key_hash <> $2 AND revoked_at IS NULL",
        )
        .bind(name)
        .bind(hash)
        .bind(to_ms(Utc::now()))
        .execute(self.writer())
        .await?;
        Ok(id)
    }

    async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query("SELECT id, name, scopes, created_at, expires_at, last_used_at, revoked_at \
                     FROM api_keys WHERE key_hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| api_key_from_row(&row)).transpose()
    }

    async fn count_api_keys(&self) -> Result<u64> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL")
                .fetch_one(&self.pool)
                .await?;
        Ok(count.max(0) as u64)
    }

    async fn create_api_key(
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
        .fetch_one(self.writer())
        .await?;
        api_key_from_row(&row)
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query("SELECT id, name, scopes, created_at, expires_at, last_used_at, revoked_at \
                     FROM api_keys ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(api_key_from_row).collect()
    }

    async fn revoke_api_key(&self, id: i64, at: DateTime<Utc>) -> Result<ApiKey> {
        let row = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 \
             RETURNING id, name, scopes, created_at, expires_at, last_used_at, revoked_at",
        )
        .bind(id)
        .bind(to_ms(at))
        .fetch_optional(self.writer())
        .await?;
        match row {
            Some(row) => api_key_from_row(&row),
            None => Err(Error::not_found("api key", id)),
        }
    }

    async fn rotate_api_key(&self, id: i64, new_hash: &str, at: DateTime<Utc>) -> Result<ApiKey> {
        let mut tx = self.begin_write().await?;
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
        let old = api_key_from_row(&old)?;
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
        let new = api_key_from_row(&row)?;
        tx.commit().await?;
        Ok(new)
    }

    async fn touch_api_key(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        let at = to_ms(at);
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $2 \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(id)
        .bind(at)
        .bind(at.saturating_sub($crate::domain::API_KEY_USE_RECORDED_EVERY_MS))
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn claim_once(&self, key: &str) -> Result<bool> {
        let done =
            sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                .bind(key)
                .bind(Utc::now().to_rfc3339())
                .execute(self.writer())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn write_memory(
        &self,
        puts: &[MemoryEntry],
        deletes: &[(String, String)],
    ) -> Result<()> {
        let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(puts.len() + deletes.len());
        let keys = puts
            .iter()
            .map(|entry| (entry.namespace.as_str(), entry.key.as_str()))
            .chain(deletes.iter().map(|(namespace, key)| (namespace.as_str(), key.as_str())));
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
        let mut tx = self.begin_write().await?;
        for chunk in statement_chunks(&rows[..]) {
            let mut builder: QueryBuilder<$db> = QueryBuilder::new(
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
        for chunk in statement_chunks(&deletes[..]) {
            let mut builder: QueryBuilder<$db> =
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

    async fn load_memory(&self, now: DateTime<Utc>) -> Result<Vec<MemoryEntry>> {
        sqlx::query("DELETE FROM memory_entries WHERE expires_at IS NOT NULL AND expires_at <= $1")
            .bind(to_ms(now))
            .execute(self.writer())
            .await?;
        let rows = sqlx::query("SELECT * FROM memory_entries ORDER BY namespace, key")
            .fetch_all(&self.pool)
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

    async fn put_desired(&self, key: &str, value: &serde_json::Value) -> Result<DesiredEntry> {
        let row = sqlx::query(
            "INSERT INTO desired_state (key, value, generation, updated_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
             generation = desired_state.generation + 1, updated_at = excluded.updated_at \
             RETURNING key, value, generation, updated_at",
        )
        .bind(key)
        .bind(serde_json::to_string(value)?)
        .bind(to_ms(Utc::now()))
        .fetch_one(self.writer())
        .await?;
        desired_from_row(&row)
    }

    async fn list_desired(&self) -> Result<Vec<DesiredEntry>> {
        let rows = sqlx::query("SELECT key, value, generation, updated_at FROM desired_state ORDER BY key")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(desired_from_row).collect()
    }

    async fn add_feedback(
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
        .fetch_one(self.writer())
        .await?;
        feedback_from_row(&row)
    }

    async fn list_feedback(&self) -> Result<Vec<Feedback>> {
        let rows = sqlx::query(
            "SELECT id, event_id, label, note, sample, created_at FROM feedback ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(feedback_from_row).collect()
    }

    async fn record_supervisor_action(&self, input: &SupervisorActionInput) -> Result<i64> {
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
        .fetch_one(self.writer())
        .await?;
        Ok(row.try_get("id")?)
    }

    async fn list_supervisor_actions(
        &self,
        query: &SupervisorActionQuery,
    ) -> Result<Vec<SupervisorAction>> {
        let mut builder: QueryBuilder<$db> =
            QueryBuilder::new("SELECT * FROM supervisor_actions WHERE 1 = 1");
        if let Some(kind) = query.kind {
            builder.push(" AND kind = ").push_bind(kind.as_str());
        }
        if let Some(action) = query.action {
            builder.push(" AND action = ").push_bind(action.as_str());
        }
        if let Some(component) = &query.component {
            builder.push(" AND component = ").push_bind(component.clone());
        }
        builder
            .push(" ORDER BY at DESC, id DESC LIMIT ")
            .push(i64::from(query.limit.max(1)));
        let rows = builder.build().fetch_all(&self.pool).await?;
        rows.iter().map(supervisor_action_from_row).collect()
    }

    async fn save_snapshot(&self, at: DateTime<Utc>, body: &serde_json::Value) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO memory_snapshots (created_at, body) VALUES ($1, $2) RETURNING id",
        )
        .bind(to_ms(at))
        .bind(serde_json::to_string(body)?)
        .fetch_one(self.writer())
        .await?;
        Ok(row.try_get("id")?)
    }

    async fn latest_snapshot(&self) -> Result<Option<SynthesisSnapshot>> {
        let row = sqlx::query(
            "SELECT id, created_at, body FROM memory_snapshots ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
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
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lengths(n: usize) -> Vec<usize> {
        let items: Vec<usize> = (0..n).collect();
        statement_chunks(&items).map(<[usize]>::len).collect()
    }

    #[test]
    fn statement_chunks_are_powers_of_two_largest_first() {
        let cases: [(usize, &[usize]); 8] = [
            (0, &[]),
            (1, &[1]),
            (3, &[2, 1]),
            (255, &[128, 64, 32, 16, 8, 4, 2, 1]),
            (256, &[256]),
            (300, &[256, 32, 8, 4]),
            (512, &[256, 256]),
            (600, &[256, 256, 64, 16, 8]),
        ];
        for (n, expected) in cases {
            assert_eq!(lengths(n), expected, "{n} rows");
        }
    }

    #[test]
    fn statement_chunks_keep_every_item_in_order() {
        for n in 0..=(3 * ROWS_PER_STATEMENT) {
            let items: Vec<usize> = (0..n).collect();
            let rejoined: Vec<usize> = statement_chunks(&items).flatten().copied().collect();
            assert_eq!(rejoined, items);
            let mut shapes: Vec<usize> = statement_chunks(&items).map(<[usize]>::len).collect();
            assert!(
                shapes
                    .iter()
                    .all(|len| len.is_power_of_two() && *len <= ROWS_PER_STATEMENT)
            );
            shapes.sort_unstable();
            shapes.dedup();
            // At most one chunk of each length below the largest: nine shapes in all.
            assert!(shapes.len() <= 9, "{n} rows: {shapes:?}");
        }
    }
}
