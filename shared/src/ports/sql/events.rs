//! Reading events: pages with their filters, one event, and the sources of each.

use sqlx::QueryBuilder;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::{
    DbRow, Sql, SqlBackend, decode_cursor, encode_cursor, from_ms, search_is_common, to_ms,
};
use crate::dedup::key::project_key_of;
use crate::domain::{
    DatePrecision, EventKind, EventPage, EventQuery, EventSource, EventStatus, Evidence,
    Provenance, SourceKind, TgeEvent, search_words,
};
use crate::error::{Error, Result};

/// The columns of `tge_events e` an event is read from, as a literal so statements stay
/// `&'static str`.
macro_rules! event_columns {
    () => {
        "e.id, e.project, e.token, e.score, e.event_date, e.first_seen, e.last_seen, \
         e.evidence, e.source_count, e.kind, e.venues, e.date_precision, e.status, \
         e.status_changed_at, e.status_by, e.revision, e.published_at"
    };
}

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
        let mut builder: QueryBuilder<B::Db> = QueryBuilder::new(
            "SELECT r.event_id, d.url, d.title, d.published_at, d.source_name, det.score, \
             r.added_at, s.kind AS source_kind, s.params AS source_params FROM (SELECT event_id, document_id, added_at, ROW_NUMBER() OVER \
             (PARTITION BY event_id ORDER BY added_at, document_id) AS nth \
             FROM event_sources WHERE event_id IN (",
        );
        let mut separated = builder.separated(", ");
        for id in event_ids {
            separated.push_bind(*id);
        }
        builder.push(
            ")) AS r JOIN documents d ON d.id = r.document_id \
             JOIN detections det ON det.document_id = r.document_id \
             LEFT JOIN sources s ON s.id = d.source_id",
        );
        if let Some(limit) = limit {
            builder.push(" WHERE r.nth <= ").push_bind(i64::from(limit));
        }
        builder.push(" ORDER BY r.event_id, r.nth");
        let rows = builder.build().fetch_all(self.0.reader()).await?;
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
                provenance: provenance_of(
                    row.try_get("source_kind")?,
                    row.try_get("source_params")?,
                ),
            });
        }
        Ok(grouped)
    }

    async fn event_from_row(&self, row: &DbRow<B>) -> Result<TgeEvent> {
        let id: i64 = row.try_get("id")?;
        let sources = self.event_sources(id).await?;
        Self::event_with_sources(row, sources)
    }

    fn event_with_sources(row: &DbRow<B>, sources: Vec<EventSource>) -> Result<TgeEvent> {
        let evidence: String = row.try_get("evidence")?;
        let evidence: Vec<Evidence> = serde_json::from_str(&evidence)?;
        let source_count: i64 = row.try_get("source_count")?;
        let kind: Option<String> = row.try_get("kind")?;
        let venues: Option<String> = row.try_get("venues")?;
        let precision: Option<String> = row.try_get("date_precision")?;
        let status: String = row.try_get("status")?;
        let status_changed_at: Option<i64> = row.try_get("status_changed_at")?;
        let event_date: Option<String> = row.try_get("event_date")?;
        let first_seen = from_ms(row.try_get("first_seen")?);
        // The most primary source listed, and its link as the proof.
        let primary = sources
            .iter()
            .filter_map(|source| source.provenance.map(|tier| (tier, &source.url)))
            .min_by_key(|(tier, _)| *tier);
        Ok(TgeEvent {
            provenance: primary.map(|(tier, _)| tier),
            proof: primary.map(|(_, url)| url.clone()),
            event_day: event_date
                .as_deref()
                .and_then(|date| crate::domain::event_day(date, first_seen)),
            starts_at: event_date.as_deref().and_then(crate::domain::start_time),
            published_at: row.try_get::<Option<i64>, _>("published_at")?.map(from_ms),
            id: row.try_get("id")?,
            source_count: source_count.max(0) as u64,
            project: row.try_get("project")?,
            token: row.try_get("token")?,
            score: row.try_get("score")?,
            event_date,
            first_seen,
            last_seen: from_ms(row.try_get("last_seen")?),
            sources,
            evidence,
            // No kind yet: stored before kinds were, and not yet filled in (at the next start).
            kind: kind
                .as_deref()
                .and_then(EventKind::parse)
                .unwrap_or_default(),
            // None yet: stored before venues were, and not yet filled in (at the next start).
            venues: match venues {
                Some(venues) => serde_json::from_str(&venues)?,
                None => Vec::new(),
            },
            date_precision: precision.as_deref().and_then(DatePrecision::parse),
            status: EventStatus::parse(&status)
                .ok_or_else(|| Error::Invalid(format!("stored event status `{status}`")))?,
            status_changed_at: status_changed_at.map(from_ms),
            status_by: row.try_get("status_by")?,
            revision: row.try_get("revision")?,
        })
    }

    async fn resolve_company_keys(&self, company: &str) -> Result<Vec<String>> {
        let mut keys = vec![project_key_of(company)];
        for listed in self.list_companies().await? {
            if listed.goes_by(company) {
                keys.push(project_key_of(&listed.name));
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// The statement of a page of events, after `prefix` (empty, or the engine's EXPLAIN).
    async fn event_page_statement(
        &self,
        query: &EventQuery,
        prefix: &str,
    ) -> Result<QueryBuilder<B::Db>> {
        let page_size = query.page_size.clamp(1, 200);
        let mut builder: QueryBuilder<B::Db> = QueryBuilder::new(format!(
            "{prefix}{}",
            concat!(
                "SELECT ",
                event_columns!(),
                " FROM tge_events e WHERE 1 = 1"
            )
        ));
        if !query.ids.is_empty() {
            builder.push(" AND e.id IN (");
            let mut separated = builder.separated(", ");
            for id in &query.ids {
                separated.push_bind(*id);
            }
            builder.push(")");
        }
        let lists: [(&str, Vec<&str>); 3] = [
            (
                "e.status",
                query
                    .statuses
                    .iter()
                    .map(|status| status.as_str())
                    .collect(),
            ),
            (
                "e.kind",
                query.kinds.iter().map(|kind| kind.as_str()).collect(),
            ),
            (
                "e.date_precision",
                query
                    .date_precisions
                    .iter()
                    .map(|precision| precision.as_str())
                    .collect(),
            ),
        ];
        for (column, values) in lists {
            if values.is_empty() {
                continue;
            }
            builder.push(format_args!(" AND {column} IN ("));
            let mut separated = builder.separated(", ");
            for value in values {
                separated.push_bind(value);
            }
            builder.push(")");
        }
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
            let expression = B::search_expression(&search_words(q).map_err(Error::Invalid)?);
            let common = match B::SEARCH_PROBE {
                Some(probe) => {
                    // Events are never deleted, so the largest id is about their number.
                    let (matches, events): (i64, i64) = sqlx::query_as(probe)
                        .bind(expression.clone())
                        .fetch_one(self.0.reader())
                        .await?;
                    let narrowed = !query.ids.is_empty()
                        || !query.statuses.is_empty()
                        || !query.kinds.is_empty()
                        || !query.date_precisions.is_empty()
                        || query.company.is_some()
                        || query.token.is_some()
                        || query.min_score.is_some();
                    search_is_common(matches, events, page_size, narrowed)
                }
                None => false,
            };
            B::push_search(&mut builder, expression, common);
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
        Ok(builder)
    }

    /// The database's plan for the page of events `query` asks for, a line per step.
    pub async fn explain_events(&self, query: &EventQuery) -> Result<Vec<String>> {
        let mut builder = self.event_page_statement(query, B::EXPLAIN).await?;
        let rows = builder.build().fetch_all(self.0.reader()).await?;
        rows.iter().map(B::plan_line).collect()
    }

    pub async fn list_events(&self, query: &EventQuery) -> Result<EventPage> {
        let page_size = query.page_size.clamp(1, 200);
        let mut builder = self.event_page_statement(query, "").await?;
        let rows = builder.build().fetch_all(self.0.reader()).await?;
        let has_more = rows.len() > page_size as usize;
        let page = &rows[..rows.len().min(page_size as usize)];
        let mut ids = Vec::with_capacity(page.len());
        for row in page {
            ids.push(row.try_get::<i64, _>("id")?);
        }
        let limit = query
            .sources_per_event
            .unwrap_or(crate::domain::DEFAULT_SOURCES_PER_EVENT)
            .min(crate::domain::MAX_SOURCES_PER_EVENT);
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

    pub async fn get_event(&self, id: i64) -> Result<TgeEvent> {
        let row = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM tge_events e WHERE e.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.0.reader())
        .await?;
        match row {
            Some(row) => self.event_from_row(&row).await,
            None => Err(Error::not_found("event", id)),
        }
    }

    pub async fn count_documents(&self) -> Result<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM documents")
            .fetch_one(self.0.reader())
            .await?;
        Ok(count.max(0) as u64)
    }
}

/// A source's provenance from its stored kind and settings: the configured one, else its
/// kind's. None for a source deleted since (no row joined) or one this version cannot read.
fn provenance_of(kind: Option<String>, params: Option<String>) -> Option<Provenance> {
    let kind = SourceKind::parse(kind.as_deref()?)?;
    let configured = params
        .and_then(|params| serde_json::from_str::<super::SourceParams>(&params).ok())
        .and_then(|params| params.provenance);
    Some(configured.unwrap_or_else(|| Provenance::of_kind(kind)))
}
