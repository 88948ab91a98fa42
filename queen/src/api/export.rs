//! Events out of the swarm in the formats analysts' tools read: an iCalendar feed of dated
//! events a calendar client subscribes to (`GET /api/v1/calendar.ics`), and CSV or JSON Lines
//! exports with the filters of `GET /events` (`GET /api/v1/events/export`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use icalendar::{Calendar, Component, EventLike};
use serde::Deserialize;
use swarm_shared::domain::{EventQuery, TgeEvent, event_day};
use swarm_shared::ports::newest_events;
use utoipa::IntoParams;

use super::AppState;
use super::auth::ReadAccess;
use super::error::{ApiError, ApiResult, Problem};
use super::routes::{EventFilters, filtered, query_error};

/// Most events one export or calendar reads (newest first).
pub const MAX_EXPORT_EVENTS: u32 = 100_000;

/// Events the calendar reads, newest first: its dated events are among the recent ones.
const CALENDAR_EVENTS: u32 = 5_000;

/// Up to `limit` events matching `query`, newest first, `sources` sources each.
async fn read_events(
    state: &AppState,
    query: &EventQuery,
    limit: u32,
    sources: u32,
) -> ApiResult<Vec<TgeEvent>> {
    newest_events(state.ctx.store.as_ref(), query, limit as usize, sources)
        .await
        .map_err(query_error)
}

/// Filters of the calendar.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CalendarParams {
    /// Project or watchlist company (name or alias, case-insensitive).
    pub company: Option<String>,
    /// Token ticker, with or without `$`.
    pub token: Option<String>,
    /// Lowest score, 0..1.
    #[param(minimum = 0.0, maximum = 1.0)]
    pub min_score: Option<f64>,
    /// Words (at most 8, letters and digits; `word*` for a prefix), each of which the event's
    /// project or token, or the title or text of one of its sources, must contain; case aside.
    pub q: Option<String>,
    /// Statuses, comma-separated: `new`, `confirmed`, `dismissed`, `archived`.
    pub status: Option<String>,
    /// Kinds, comma-separated: `tge`, `first_listing`, `pre_market`, `launchpool`, `airdrop`,
    /// `sale`.
    pub kind: Option<String>,
    /// Date precisions, comma-separated: `day`, `month`, `quarter`.
    pub date_precision: Option<String>,
    /// Days before today whose events are still listed, 0..=365 (default 7).
    #[param(minimum = 0, maximum = 365)]
    pub past_days: Option<u32>,
}

/// An iCalendar feed of the events whose date is known to the day, from `past_days` ago on:
/// one all-day entry per event (`UID` `tge-swarm-event-<id>`, so a client updates it when the
/// event changes), its summary naming the project and token, its description the score, the
/// date as announced and the first source, its URL the first source. A calendar client can
/// subscribe to this URL. Dates written without a year (`March 5`) are the first such day
/// from shortly before the announcement on; months and quarters are left out.
#[utoipa::path(get, path = "/api/v1/calendar.ics", params(CalendarParams), tag = "events",
    responses((status = 200, description = "iCalendar (RFC 5545)", content_type = "text/calendar", body = String),
        (status = 400, body = Problem)))]
pub async fn calendar(
    _access: ReadAccess,
    State(state): State<AppState>,
    params: Result<Query<CalendarParams>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(params) = params?;
    let past_days = params.past_days.unwrap_or(7);
    if past_days > 365 {
        return Err(ApiError::bad_request(
            "past_days: must be between 0 and 365",
        ));
    }
    let query = filtered(EventFilters {
        company: params.company,
        token: params.token,
        min_score: params.min_score,
        since: None,
        q: params.q,
        status: params.status,
        kind: params.kind,
        date_precision: params.date_precision,
    })?;
    let events = read_events(&state, &query, CALENDAR_EVENTS, 1).await?;
    let from = Utc::now().date_naive() - Duration::days(i64::from(past_days));
    let mut dated: Vec<(chrono::NaiveDate, &TgeEvent)> = events
        .iter()
        .filter_map(|event| {
            let day = event_day(event.event_date.as_deref()?, event.first_seen)?;
            (day >= from).then_some((day, event))
        })
        .collect();
    dated.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.id.cmp(&b.1.id)));
    // The crate's defaults name the crate as the producer; the feed names us.
    let mut calendar = Calendar::empty();
    for (key, value) in [
        ("VERSION", "2.0"),
        ("PRODID", "-//tge-swarm//token events//EN"),
        ("CALSCALE", "GREGORIAN"),
    ] {
        calendar.append_property(icalendar::Property::new(key, value));
    }
    calendar.name("tge-swarm: token events");
    for (day, event) in dated {
        calendar.push(calendar_entry(day, event));
    }
    let body = calendar.done().to_string();
    Ok((
        [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
        body,
    )
        .into_response())
}

/// What an event is called: its project and token as far as they are known.
fn title_of(event: &TgeEvent) -> String {
    match (&event.project, &event.token) {
        (Some(project), Some(token)) => format!("{project} ({token})"),
        (Some(project), None) => project.clone(),
        (None, Some(token)) => token.clone(),
        (None, None) => format!("event {}", event.id),
    }
}

fn calendar_entry(day: chrono::NaiveDate, event: &TgeEvent) -> icalendar::Event {
    let mut entry = icalendar::Event::new();
    entry
        .uid(&format!("tge-swarm-event-{}", event.id))
        .summary(&format!("{}: token event", title_of(event)))
        .all_day(day)
        .timestamp(event.last_seen)
        .last_modified(event.last_seen);
    let mut description = format!(
        "Score {:.2}; {} source(s); date as announced: {}; first seen {}.",
        event.score,
        event.source_count,
        event.event_date.as_deref().unwrap_or(""),
        event.first_seen.format("%Y-%m-%d %H:%M UTC"),
    );
    if let Some(source) = event.sources.first() {
        description.push_str(&format!(" First source: {} ({})", source.title, source.url));
        entry.url(&source.url);
    }
    entry.description(&description);
    entry.done()
}

/// Export format.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// Comma-separated values, one event a row, a header row first.
    #[default]
    Csv,
    /// One event a line, as `GET /events/{id}` shows it (its first five sources).
    Jsonl,
}

/// Filters and format of an export.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `csv` (default) or `jsonl`.
    pub format: Option<ExportFormat>,
    /// Project or watchlist company (name or alias, case-insensitive).
    pub company: Option<String>,
    /// Token ticker, with or without `$`.
    pub token: Option<String>,
    /// Lowest score, 0..1.
    #[param(minimum = 0.0, maximum = 1.0)]
    pub min_score: Option<f64>,
    /// Only events first seen at or after this time (RFC 3339 or YYYY-MM-DD).
    pub since: Option<String>,
    /// Words (at most 8, letters and digits; `word*` for a prefix), each of which the event's
    /// project or token, or the title or text of one of its sources, must contain; case aside.
    pub q: Option<String>,
    /// Statuses, comma-separated: `new`, `confirmed`, `dismissed`, `archived`.
    pub status: Option<String>,
    /// Kinds, comma-separated: `tge`, `first_listing`, `pre_market`, `launchpool`, `airdrop`,
    /// `sale`.
    pub kind: Option<String>,
    /// Date precisions, comma-separated: `day`, `month`, `quarter`.
    pub date_precision: Option<String>,
    /// Most events, newest first, 1..=100000 (default 10000).
    #[param(minimum = 1, maximum = 100000)]
    pub limit: Option<u32>,
}

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 13] = [
    "id",
    "project",
    "token",
    "score",
    "event_date",
    "event_day",
    "first_seen",
    "last_seen",
    "source_count",
    "first_source_url",
    "kind",
    "date_precision",
    "status",
];

/// Exports events with the filters of `GET /events`, newest first: CSV (the columns `id`,
/// `project`, `token`, `score`, `event_date` as announced, `event_day` when it is known to
/// the day, `first_seen`, `last_seen`, `source_count`, `first_source_url`, `kind`, `date_precision`, `status`) or JSON Lines (one
/// event a line with its first five sources).
#[utoipa::path(get, path = "/api/v1/events/export", params(ExportParams), tag = "events",
    responses((status = 200, description = "The events", content(
            (String = "text/csv"),
            (String = "application/x-ndjson"))),
        (status = 400, body = Problem)))]
pub async fn export(
    _access: ReadAccess,
    State(state): State<AppState>,
    params: Result<Query<ExportParams>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(params) = params?;
    let limit = params.limit.unwrap_or(10_000);
    if !(1..=MAX_EXPORT_EVENTS).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: must be between 1 and {MAX_EXPORT_EVENTS}"
        )));
    }
    let query = filtered(EventFilters {
        company: params.company,
        token: params.token,
        min_score: params.min_score,
        since: params.since,
        q: params.q,
        status: params.status,
        kind: params.kind,
        date_precision: params.date_precision,
    })?;
    let format = params.format.unwrap_or_default();
    let sources = match format {
        ExportFormat::Csv => 1,
        ExportFormat::Jsonl => swarm_shared::domain::DEFAULT_SOURCES_PER_EVENT,
    };
    let events = read_events(&state, &query, limit, sources).await?;
    let (content_type, body) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", csv_of(&events)?),
        ExportFormat::Jsonl => ("application/x-ndjson", json_lines_of(&events)?),
    };
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

fn csv_of(events: &[TgeEvent]) -> ApiResult<Vec<u8>> {
    // Writing into memory fails only on a bug: a 500, not the client's fault.
    let failed = |err: csv::Error| ApiError::internal(&err);
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(CSV_COLUMNS).map_err(failed)?;
    for event in events {
        let day = event
            .event_date
            .as_deref()
            .and_then(|date| event_day(date, event.first_seen))
            .map(|day| day.to_string());
        writer
            .write_record([
                event.id.to_string(),
                event.project.clone().unwrap_or_default(),
                event.token.clone().unwrap_or_default(),
                format!("{:.4}", event.score),
                event.event_date.clone().unwrap_or_default(),
                day.unwrap_or_default(),
                event.first_seen.to_rfc3339(),
                event.last_seen.to_rfc3339(),
                event.source_count.to_string(),
                event
                    .sources
                    .first()
                    .map(|source| source.url.clone())
                    .unwrap_or_default(),
                event.kind.as_str().to_owned(),
                event
                    .date_precision
                    .map(|precision| precision.as_str().to_owned())
                    .unwrap_or_default(),
                event.status.as_str().to_owned(),
            ])
            .map_err(failed)?;
    }
    writer.into_inner().map_err(|err| ApiError::internal(&err))
}

fn json_lines_of(events: &[TgeEvent]) -> ApiResult<Vec<u8>> {
    let mut body = Vec::new();
    for event in events {
        serde_json::to_writer(&mut body, event)
            .map_err(|err| ApiError::from(swarm_shared::Error::from(err)))?;
        body.push(b'\n');
    }
    Ok(body)
}
