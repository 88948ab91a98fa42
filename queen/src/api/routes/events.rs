//! Events: listing and reading them, analysts' feedback, and `POST /classify`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use swarm_agents::keyword::FEEDBACK_NAMESPACE;
use swarm_agents::keyword::model::FeedbackSample;
use swarm_shared::domain::{
    DatePrecision, EventKind, EventQuery, EventStatus, Feedback, FeedbackLabel,
    MAX_SOURCES_PER_EVENT, TgeEvent,
};
use swarm_shared::messages::AgentMessage;
use swarm_shared::ports::publish;
use utoipa::{IntoParams, ToSchema};

use crate::api::AppState;
use crate::api::auth::{ReadAccess, WriteAccess};
use crate::api::error::{ApiError, ApiResult, Problem};
use crate::classify::{ClassifyInput, ClassifyOutput, classify_within};

/// Filters and paging of `GET /events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Project or watchlist company (name or alias, case-insensitive).
    pub company: Option<String>,
    /// Token ticker, with or without `$`.
    pub token: Option<String>,
    /// Lowest score, 0..1.
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
    /// Events per page, 1..=200 (default 50).
    pub page_size: Option<u32>,
    /// `next_page_token` from the previous page.
    pub page_token: Option<String>,
    /// Sources listed per event, 0..=200 (default 5), the first ones merged in; each event's
    /// `source_count` counts them all, and `GET /events/{id}` lists them all.
    pub sources_per_event: Option<u32>,
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    /// Events, newest first.
    pub events: Vec<TgeEvent>,
    /// Token of the next page; null on the last page.
    pub next_page_token: Option<String>,
}

fn parse_since(text: &str) -> ApiResult<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(midnight) = day.and_hms_opt(0, 0, 0)
    {
        return Ok(midnight.and_utc());
    }
    Err(ApiError::bad_request(format!(
        "since: `{text}` is neither RFC 3339 nor YYYY-MM-DD"
    )))
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

/// The filters `GET /events` shares with the calendar and the exports, as given.
#[derive(Debug, Default)]
pub(crate) struct EventFilters {
    pub(crate) company: Option<String>,
    pub(crate) token: Option<String>,
    pub(crate) min_score: Option<f64>,
    pub(crate) since: Option<String>,
    pub(crate) q: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) date_precision: Option<String>,
}

/// A comma-separated list of names, each parsed by `parse`; 400 naming `field` and what it
/// accepts otherwise.
fn name_list<T: Copy + PartialEq>(
    field: &str,
    text: Option<String>,
    all: &[T],
    name: fn(T) -> &'static str,
) -> ApiResult<Vec<T>> {
    let mut picked = Vec::new();
    for item in text.iter().flat_map(|text| text.split(',')) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let Some(value) = all.iter().copied().find(|value| name(*value) == item) else {
            let accepted: Vec<&str> = all.iter().map(|value| name(*value)).collect();
            return Err(ApiError::bad_request(format!(
                "{field}: `{item}` is not one of {}",
                accepted.join(", ")
            )));
        };
        if !picked.contains(&value) {
            picked.push(value);
        }
    }
    Ok(picked)
}

/// A query with `filters` checked (400 naming the bad one), its paging left at the defaults.
pub(crate) fn filtered(filters: EventFilters) -> ApiResult<EventQuery> {
    if let Some(score) = filters.min_score
        && !(0.0..=1.0).contains(&score)
    {
        return Err(ApiError::bad_request("min_score: must be between 0 and 1"));
    }
    let q = non_empty(filters.q);
    if let Some(q) = &q {
        swarm_shared::domain::search_words(q).map_err(ApiError::bad_request)?;
    }
    let since = match non_empty(filters.since) {
        Some(text) => Some(parse_since(&text)?),
        None => None,
    };
    Ok(EventQuery {
        company: non_empty(filters.company),
        token: non_empty(filters.token),
        min_score: filters.min_score,
        since,
        q,
        statuses: name_list(
            "status",
            filters.status,
            &EventStatus::ALL,
            EventStatus::as_str,
        )?,
        kinds: name_list("kind", filters.kind, &EventKind::ALL, EventKind::as_str)?,
        date_precisions: name_list(
            "date_precision",
            filters.date_precision,
            &DatePrecision::ALL,
            DatePrecision::as_str,
        )?,
        ..EventQuery::default()
    })
}

/// A store error of an event query: the store's refusal of a filter (a bad cursor) is the
/// client's 400, anything else as usual.
pub(crate) fn query_error(err: swarm_shared::Error) -> ApiError {
    match err {
        swarm_shared::Error::Invalid(detail) => ApiError::bad_request(detail),
        other => ApiError::from(other),
    }
}

/// Lists TGE events.
#[utoipa::path(get, path = "/api/v1/events", params(EventParams), tag = "events",
    responses((status = 200, body = EventList), (status = 400, body = Problem)))]
pub async fn list_events(
    _access: ReadAccess,
    State(state): State<AppState>,
    params: Result<Query<EventParams>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(params) = params?;
    let page_size = params.page_size.unwrap_or(50);
    if !(1..=200).contains(&page_size) {
        return Err(ApiError::bad_request(
            "page_size: must be between 1 and 200",
        ));
    }
    if let Some(count) = params.sources_per_event
        && count > MAX_SOURCES_PER_EVENT
    {
        return Err(ApiError::bad_request(format!(
            "sources_per_event: must be between 0 and {MAX_SOURCES_PER_EVENT}"
        )));
    }
    let query = EventQuery {
        page_size,
        page_token: non_empty(params.page_token),
        sources_per_event: params.sources_per_event,
        ..filtered(EventFilters {
            company: params.company,
            token: params.token,
            min_score: params.min_score,
            since: params.since,
            q: params.q,
            status: params.status,
            kind: params.kind,
            date_precision: params.date_precision,
        })?
    };
    // The query's fields, in order, name its page in the cache.
    let key = format!("{query:?}");
    if let Some(body) = state.events.get(&key) {
        return Ok(json_body(body));
    }
    let generation = state.events.generation();
    let page = state
        .ctx
        .store
        .list_events(&query)
        .await
        .map_err(query_error)?;
    let list = EventList {
        events: page.events,
        next_page_token: page.next_page_token,
    };
    let body = axum::body::Bytes::from(
        serde_json::to_vec(&list).map_err(|err| ApiError::from(swarm_shared::Error::from(err)))?,
    );
    if state.events.enabled() {
        state.events.put(key, generation, body.clone());
    }
    Ok(json_body(body))
}

/// A JSON response of an already encoded body.
fn json_body(body: axum::body::Bytes) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// One event with its sources and evidence.
#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "events", params(("id" = i64, Path, description = "Event id")),
    responses((status = 200, body = TgeEvent), (status = 404, body = Problem)))]
pub async fn get_event(
    _access: ReadAccess,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<TgeEvent>> {
    let Path(id) = id?;
    Ok(Json(state.ctx.store.get_event(id).await?))
}

/// Analyst feedback on an event.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackInput {
    /// `true_positive` or `false_positive`.
    pub label: FeedbackLabel,
    /// Free text (at most 2000 characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// Records an analyst's verdict on an event (write key). The keyword agents learn from it at
/// once: documents that share the event's patterns (source host, project, title word pairs)
/// are pushed the way the verdict points, and nothing else changes.
#[utoipa::path(post, path = "/api/v1/events/{id}/feedback", tag = "events", request_body = FeedbackInput,
    params(("id" = i64, Path, description = "Event id")), security(("api_key" = [])),
    responses((status = 201, body = Feedback), (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_feedback(
    _access: WriteAccess,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    input: Result<Json<FeedbackInput>, JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let Path(id) = id?;
    let Json(input) = input?;
    if input
        .note
        .as_ref()
        .is_some_and(|note| note.chars().count() > 2000)
    {
        return Err(ApiError::bad_request("note: at most 2000 characters"));
    }
    let event = state.ctx.store.get_event(id).await?;
    let sample = FeedbackSample::of_event(&event, input.label == FeedbackLabel::TruePositive);
    let sample_value = serde_json::to_value(&sample).map_err(|err| ApiError::internal(&err))?;
    let feedback = state
        .ctx
        .store
        .add_feedback(id, input.label, input.note.as_deref(), &sample_value)
        .await?;
    state.scorer.invalidate().await;
    // Shared through the memory coordinator, which persists and announces it on memory-sync.
    let message = AgentMessage::MemoryWrite {
        namespace: FEEDBACK_NAMESPACE.to_owned(),
        key: feedback.id.to_string(),
        value: serde_json::json!({
            "event_id": id,
            "label": input.label,
            "sample": sample_value,
        }),
        ttl_s: Some(FEEDBACK_MEMORY_TTL_S),
        written_by: "api".to_owned(),
    };
    if let Err(err) = publish(state.ctx.bus.as_ref(), &message).await {
        // Stored already: keyword agents pick it up at their next refresh.
        tracing::warn!(error = %err, feedback = feedback.id, "sharing feedback failed");
    }
    Ok((StatusCode::CREATED, Json(feedback)))
}

/// How long feedback stays in shared memory (the store keeps it for good).
const FEEDBACK_MEMORY_TTL_S: u64 = 90 * 24 * 3600;

/// `POST /api/v1/classify` body: one document, or many.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ClassifyRequest {
    /// Up to 1000 documents.
    Many {
        /// The documents.
        documents: Vec<ClassifyInput>,
    },
    /// One document.
    One(ClassifyInput),
}

/// `POST /api/v1/classify` answer for many documents.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClassifyResults {
    /// One verdict per document, in order.
    pub results: Vec<ClassifyOutput>,
}

/// `POST /api/v1/classify` answer, as documented: one verdict for one document, or
/// `{"results": [...]}` for many.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ClassifyAnswer {
    /// For `{"documents": [...]}`.
    Many(ClassifyResults),
    /// For one document.
    One(ClassifyOutput),
}

/// Most documents in one classify request.
const CLASSIFY_MAX_DOCUMENTS: usize = 1000;

/// Scores documents with the live watchlist and feedback, without storing anything. Send one
/// document (`{"id", "text", "title"?, "url"?}`; answer: one verdict) or
/// `{"documents": [...]}` (answer: `{"results": [...]}`). The sentence encoder reads the
/// documents near the threshold within `detection.sentence_stage_per_second` (shared by all
/// requests); past it the n-gram stage decides. A verdict the encoder gave has a `meaning`
/// evidence item.
#[utoipa::path(post, path = "/api/v1/classify", tag = "events", request_body = ClassifyRequest,
    responses((status = 200, body = ClassifyAnswer), (status = 422, body = Problem)))]
pub async fn classify(
    _access: ReadAccess,
    State(state): State<AppState>,
    input: Result<Json<ClassifyRequest>, JsonRejection>,
) -> ApiResult<axum::response::Response> {
    let Json(request) = input?;
    let scorer =
        state.scorer.get(&state.ctx).await.map_err(|err| {
            ApiError::unavailable(format!("the scorer could not be built: {err}"))
        })?;
    if let ClassifyRequest::Many { documents } = &request
        && documents.len() > CLASSIFY_MAX_DOCUMENTS
    {
        return Err(ApiError::bad_request(format!(
            "documents: {} given, at most {CLASSIFY_MAX_DOCUMENTS} per request",
            documents.len()
        )));
    }
    // Scoring is CPU work (the sentence encoder tens of milliseconds per document, within the
    // shared budget): on a blocking thread, so the API's workers keep answering.
    let budget = std::sync::Arc::clone(&state.sentence_budget);
    let scored = tokio::task::spawn_blocking(move || {
        let mut may_read_meaning = || match budget.lock() {
            Ok(mut budget) => budget.admit(),
            // A poisoned lock: a request panicked while holding it; the budget is a
            // counter, still meaningful.
            Err(poisoned) => poisoned.into_inner().admit(),
        };
        let mut check = |document: ClassifyInput, index: Option<usize>| {
            classify_within(&scorer, document, &mut may_read_meaning).map_err(|err| match index {
                Some(index) => ApiError::bad_request(format!("documents[{index}]: {err}")),
                None => ApiError::bad_request(err.to_string()),
            })
        };
        match request {
            ClassifyRequest::One(document) => {
                check(document, None).map(|one| Json(one).into_response())
            }
            ClassifyRequest::Many { documents } => {
                let mut results = Vec::with_capacity(documents.len());
                for (index, document) in documents.into_iter().enumerate() {
                    results.push(check(document, Some(index))?);
                }
                Ok(Json(ClassifyResults { results }).into_response())
            }
        }
    })
    .await;
    scored.map_err(|err| ApiError::internal(&err))?
}
