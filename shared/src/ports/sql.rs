//! SQL shared by the two [`Store`](super::Store) adapters, SQLite (embedded default) and
//! Postgres (production): pure helpers, and [`sql_store!`](crate::sql_store), which writes one
//! `impl Store` for a given sqlx database from a single body of SQL.
//!
//! One body keeps the two stores identical in behaviour (the contract suite checks it); the
//! SQL sticks to what both engines accept: `$N` parameters (SQLite reads `$N` as positional),
//! `RETURNING id`, `ON CONFLICT`, `CASE` instead of `MAX(a, b)`/`GREATEST`, and `LOWER(..)
//! LIKE` for case-insensitive search. What does differ is supplied by each adapter as two
//! associated functions: `begin_write` (SQLite takes the write lock up front with
//! `BEGIN IMMEDIATE`) and `lock_merge_key` (Postgres serialises merges of one project with a
//! transaction-scoped advisory lock; SQLite's single writer already does).
//!
//! Schema conventions shared by both migration folders: times are UTC milliseconds since the
//! epoch in 64-bit integers, lists and JSON bodies are JSON text.

use chrono::{DateTime, TimeZone, Utc};

use crate::domain::SourceInput;
use crate::error::{Error, Result};

/// Near-duplicate fingerprints at most this many bits apart are copies of one document.
pub const NEAR_DUPLICATE_DISTANCE: u32 = 4;

/// Fingerprints compared per band when recording a document: the newest this many that share
/// the band within the merge window. SimHashes of long texts cluster on common words, so a
/// band can be shared by thousands of unrelated documents; bounding the lookup keeps recording
/// O(1) in the size of the store. A near copy older than the newest 64 documents that share
/// each of its five bands is not found (and is stored as a new document).
pub const NEAR_DUPLICATE_CANDIDATES: i64 = 64;

/// The five index bands of a 64-bit SimHash (13, 13, 13, 13 and 12 bits). Two fingerprints
/// within [`NEAR_DUPLICATE_DISTANCE`] bits differ in at most four bands, so they share one.
pub fn simhash_bands(simhash: u64) -> [i32; 5] {
    let mut bands = [0i32; 5];
    let widths = [13u32, 13, 13, 13, 12];
    let mut shift = 0u32;
    for (band, width) in bands.iter_mut().zip(widths) {
        *band = ((simhash >> shift) & ((1u64 << width) - 1)) as i32;
        shift += width;
    }
    bands
}

/// Prefix of the merge key of a document that names no project (the rest is a fingerprint of
/// its title). Near-duplicate matching treats such keys as compatible with any project.
pub const TITLE_KEY_PREFIX: &str = "title:";

/// Whether two documents' merge keys allow them to be copies of each other: the same key, or
/// one of them names no project (a [`TITLE_KEY_PREFIX`] key).
pub fn merge_keys_compatible(a: &str, b: &str) -> bool {
    a == b || a.starts_with(TITLE_KEY_PREFIX) || b.starts_with(TITLE_KEY_PREFIX)
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

/// Merge key of a project name: lowercase letters and digits only.
pub fn project_key_of(project: &str) -> String {
    project
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Writes `impl Store for $store` (in a private module `sql_impl`) over the sqlx database `$db`
/// with row type `$row`. The adapter's module must define, on `$store`, a `pool` field and
/// `async fn begin_write(&self) -> Result<sqlx::Transaction<'static, $db>>`,
/// `fn writer(&self) -> &sqlx::Pool<$db>` (where single writes go) and
/// `async fn lock_merge_key(tx: &mut sqlx::Transaction<'static, $db>, key: &str) -> Result<()>`.
#[macro_export]
#[doc(hidden)]
macro_rules! sql_store {
    ($store:ident, $db:ty, $row:ty) => {
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
            use $crate::ports::{Store, ToRecord};
            use $crate::ports::sql::{
                conflict, decode_cursor, encode_cursor, from_ms, json_list, like_pattern,
                NEAR_DUPLICATE_CANDIDATES, NEAR_DUPLICATE_DISTANCE, merge_keys_compatible, parse_list, project_key_of, selectors_json, simhash_bands,
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
        let mut grouped = self.sources_of_events(&[event_id]).await?;
        Ok(grouped.remove(&event_id).unwrap_or_default())
    }

    /// The sources of several events in one query (a page of events would otherwise cost a
    /// query per event), grouped by event id, each event's in the order they were added.
    async fn sources_of_events(
        &self,
        event_ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, Vec<EventSource>>> {
        let mut grouped: std::collections::HashMap<i64, Vec<EventSource>> =
            std::collections::HashMap::new();
        if event_ids.is_empty() {
            return Ok(grouped);
        }
        let mut builder: QueryBuilder<$db> = QueryBuilder::new(
            "SELECT es.event_id, d.url, d.title, d.published_at, d.source_name, det.score, \
             es.added_at FROM event_sources es \
             JOIN documents d ON d.id = es.document_id \
             JOIN detections det ON det.document_id = d.id \
             WHERE es.event_id IN (",
        );
        let mut separated = builder.separated(", ");
        for id in event_ids {
            separated.push_bind(*id);
        }
        builder.push(") ORDER BY es.event_id, es.added_at, d.id");
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
        Ok(TgeEvent {
            id: row.try_get("id")?,
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

    /// One item of [`Store::record_classified_batch`], inside its transaction. A duplicate is
    /// found before anything of the item is written, so it returns without undoing anything.
    async fn record_one(
        tx: &mut sqlx::Transaction<'static, $db>,
        record: &ToRecord<'_>,
        window_start: i64,
        now: i64,
    ) -> Result<RecordOutcome> {
        let document = &record.item.document;
        let detection = &record.item.detection;
        let merge_key = record.merge_key;
        // Near duplicates: a copy from the same source is dropped; a copy from another source
        // joins the event its original belongs to, whatever project each copy names.
        let mut near_event: Option<i64> = None;
        if let Some(simhash) = record.simhash {
            let bands = simhash_bands(simhash);
            // The newest `NEAR_DUPLICATE_CANDIDATES` per band: SimHashes of long texts cluster,
            // so an unbounded lookup grows with the store and makes recording quadratic.
            let candidates = sqlx::query(
                "SELECT f.simhash, f.source_name, f.merge_key, es.event_id, e.project_key AS event_key \
                 FROM ( \
                   SELECT document_id FROM (SELECT document_id FROM document_fingerprints WHERE band0 = $1 AND stored_at > $6 ORDER BY stored_at DESC LIMIT $8) AS c0 \
                   UNION SELECT document_id FROM (SELECT document_id FROM document_fingerprints WHERE band1 = $2 AND stored_at > $6 ORDER BY stored_at DESC LIMIT $8) AS c1 \
                   UNION SELECT document_id FROM (SELECT document_id FROM document_fingerprints WHERE band2 = $3 AND stored_at > $6 ORDER BY stored_at DESC LIMIT $8) AS c2 \
                   UNION SELECT document_id FROM (SELECT document_id FROM document_fingerprints WHERE band3 = $4 AND stored_at > $6 ORDER BY stored_at DESC LIMIT $8) AS c3 \
                   UNION SELECT document_id FROM (SELECT document_id FROM document_fingerprints WHERE band4 = $5 AND stored_at > $6 ORDER BY stored_at DESC LIMIT $8) AS c4 \
                 ) AS candidates \
                 JOIN document_fingerprints f ON f.document_id = candidates.document_id \
                 LEFT JOIN event_sources es ON es.document_id = f.document_id \
                 LEFT JOIN tge_events e ON e.id = es.event_id \
                 WHERE f.document_id <> $7",
            )
            .bind(bands[0])
            .bind(bands[1])
            .bind(bands[2])
            .bind(bands[3])
            .bind(bands[4])
            .bind(window_start)
            .bind(&document.id)
            .bind(NEAR_DUPLICATE_CANDIDATES)
            .fetch_all(&mut **tx)
            .await?;
            for row in &candidates {
                let stored: i64 = row.try_get("simhash")?;
                if (stored as u64 ^ simhash).count_ones() > NEAR_DUPLICATE_DISTANCE {
                    continue;
                }
                // A template filled in for another project (an exchange's listing notices) is
                // not a copy: the keys must agree unless one side names no project.
                let stored_key: String = row.try_get("merge_key")?;
                if !merge_keys_compatible(&stored_key, merge_key) {
                    continue;
                }
                let source_name: String = row.try_get("source_name")?;
                if source_name == document.source_name {
                                        return Ok(RecordOutcome::Duplicate);
                }
                let event_id: Option<i64> = row.try_get("event_id")?;
                let event_key: Option<String> = row.try_get("event_key")?;
                let joins = event_key
                    .as_deref()
                    .is_some_and(|key| merge_keys_compatible(key, merge_key));
                if near_event.is_none() && joins {
                    near_event = event_id;
                }
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO documents (id, source_id, source_name, url, title, text, published_at, fetched_at, stored_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&document.id)
        .bind(document.source_id)
        .bind(&document.source_name)
        .bind(&document.url)
        .bind(&document.title)
        .bind(&document.text)
        .bind(document.published_at.map(to_ms))
        .bind(to_ms(document.fetched_at))
        .bind(now)
        .execute(&mut **tx)
        .await?;
        if inserted.rows_affected() == 0 {
                        return Ok(RecordOutcome::Duplicate);
        }
        if let Some(simhash) = record.simhash {
            let bands = simhash_bands(simhash);
            sqlx::query(
                "INSERT INTO document_fingerprints (document_id, source_name, merge_key, simhash, band0, band1, band2, band3, band4, stored_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (document_id) DO NOTHING",
            )
            .bind(&document.id)
            .bind(&document.source_name)
            .bind(merge_key)
            .bind(simhash as i64)
            .bind(bands[0])
            .bind(bands[1])
            .bind(bands[2])
            .bind(bands[3])
            .bind(bands[4])
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        let evidence = serde_json::to_string(&detection.evidence)?;
        sqlx::query(
            "INSERT INTO detections (document_id, score, is_tge, project, token, event_date, evidence, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&document.id)
        .bind(detection.score)
        .bind(detection.is_tge)
        .bind(&detection.project)
        .bind(&detection.token)
        .bind(&detection.event_date)
        .bind(&evidence)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        if !detection.is_tge {
            return Ok(RecordOutcome::Stored);
        }
        // The batch holds the merge key's lock (taken up front, in order).
        let existing = match near_event {
            Some(event_id) => {
                sqlx::query("SELECT id, score FROM tge_events WHERE id = $1")
                    .bind(event_id)
                    .fetch_optional(&mut **tx)
                    .await?
            }
            None => {
                sqlx::query(
                    "SELECT id, score FROM tge_events WHERE project_key = $1 AND last_seen > $2 \
                     ORDER BY last_seen DESC LIMIT 1",
                )
                .bind(merge_key)
                .bind(window_start)
                .fetch_optional(&mut **tx)
                .await?
            }
        };
        let outcome = match existing {
            Some(row) => {
                let event_id: i64 = row.try_get("id")?;
                let best: f64 = row.try_get("score")?;
                let better = detection.score > best;
                sqlx::query(
                    "UPDATE tge_events SET last_seen = CASE WHEN last_seen > $1 THEN last_seen ELSE $1 END, \
                     score = CASE WHEN score > $2 THEN score ELSE $2 END, \
                     project = COALESCE(project, $3), token = COALESCE(token, $4), \
                     event_date = COALESCE(event_date, $5), \
                     evidence = CASE WHEN $6 THEN $7 ELSE evidence END WHERE id = $8",
                )
                .bind(now)
                .bind(detection.score)
                .bind(&detection.project)
                .bind(&detection.token)
                .bind(&detection.event_date)
                .bind(better)
                .bind(&evidence)
                .bind(event_id)
                .execute(&mut **tx)
                .await?;
                RecordOutcome::EventMerged(event_id)
            }
            None => {
                let created = sqlx::query(
                    "INSERT INTO tge_events (project, project_key, token, score, event_date, first_seen, last_seen, evidence) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(&detection.project)
                .bind(merge_key)
                .bind(&detection.token)
                .bind(detection.score)
                .bind(&detection.event_date)
                .bind(now)
                .bind(now)
                .bind(&evidence)
                .fetch_one(&mut **tx)
                .await?;
                RecordOutcome::EventCreated(created.try_get("id")?)
            }
        };
        let event_id = match outcome {
            RecordOutcome::EventMerged(id) | RecordOutcome::EventCreated(id) => id,
            RecordOutcome::Duplicate | RecordOutcome::Stored => unreachable!("tge outcomes only"),
        };
        sqlx::query(
            "INSERT INTO event_sources (event_id, document_id, added_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(event_id)
        .bind(&document.id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(outcome)
    }
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
        .bind(input.interval.as_millis() as i64)
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
        .bind(input.interval.as_millis() as i64)
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
                .map(|interval| interval.as_millis() as i64),
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
        let now = to_ms(Utc::now());
        let window_start = now - merge_window.as_millis() as i64;
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
        for key in keys {
            Self::lock_merge_key(&mut tx, key).await?;
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        for record in batch {
            outcomes.push($store::record_one(&mut tx, record, window_start, now).await?);
        }
        tx.commit().await?;
        Ok(outcomes)
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
        builder
            .push(" ORDER BY e.first_seen DESC, e.id DESC LIMIT ")
            .push_bind(i64::from(page_size) + 1);
        let rows = builder.build().fetch_all(&self.pool).await?;
        let has_more = rows.len() > page_size as usize;
        let page = &rows[..rows.len().min(page_size as usize)];
        let mut ids = Vec::with_capacity(page.len());
        for row in page {
            ids.push(row.try_get::<i64, _>("id")?);
        }
        let mut sources = self.sources_of_events(&ids).await?;
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
        let result = sqlx::query(
            "INSERT INTO api_keys (name, key_hash, scopes, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key_hash) DO UPDATE SET scopes = excluded.scopes RETURNING id",
        )
        .bind(name)
        .bind(hash)
        .bind(json_list(scopes)?)
        .bind(to_ms(Utc::now()))
        .fetch_one(self.writer())
        .await?;
        Ok(result.try_get("id")?)
    }

    async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query("SELECT id, name, scopes FROM api_keys WHERE key_hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let scopes: String = row.try_get("scopes")?;
        Ok(Some(ApiKey {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            scopes: parse_list(&scopes)?,
        }))
    }

    async fn count_api_keys(&self) -> Result<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys")
            .fetch_one(&self.pool)
            .await?;
        Ok(count.max(0) as u64)
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

    async fn put_memory(&self, entry: &MemoryEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO memory_entries (namespace, key, value, version, written_by, updated_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, version = excluded.version, \
             written_by = excluded.written_by, updated_at = excluded.updated_at, expires_at = excluded.expires_at",
        )
        .bind(&entry.namespace)
        .bind(&entry.key)
        .bind(serde_json::to_string(&entry.value)?)
        .bind(entry.version as i64)
        .bind(&entry.written_by)
        .bind(to_ms(entry.updated_at))
        .bind(entry.expires_at.map(to_ms))
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn delete_memory(&self, namespace: &str, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM memory_entries WHERE namespace = $1 AND key = $2")
            .bind(namespace)
            .bind(key)
            .execute(self.writer())
            .await?;
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
            .push_bind(i64::from(query.limit.max(1)));
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
