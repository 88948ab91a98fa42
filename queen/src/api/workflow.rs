//! The analysts' workflow over events (write scope): set an event's status (`new`,
//! `confirmed`, `dismissed`, `archived`) and add notes, one event or many at once, and read an
//! event's history of who changed what and when. A confirmation is a material change:
//! subscribers get an update alert (`"change": "confirmed"`).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use swarm_shared::domain::{
    EventChangeRecord, EventStatus, EventUpdate, MAX_BULK_EVENTS, TgeEvent,
};
use utoipa::ToSchema;

use super::AppState;
use super::auth::{ReadAccess, WriteAccess};
use super::error::{ApiResult, Problem};

/// Several events changed at once.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkUpdate {
    /// The events (1 to 500 ids).
    #[schema(min_items = 1, max_items = 500)]
    pub ids: Vec<i64>,
    /// The new status of each.
    #[serde(default)]
    pub status: Option<EventStatus>,
    /// A note kept in each one's history (1 to 2,000 characters).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2000)]
    pub note: Option<String>,
}

/// What a bulk update changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResult {
    /// The events updated, ascending.
    pub updated: Vec<i64>,
    /// The ids given that name no event.
    pub not_found: Vec<i64>,
}

/// An event's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventHistory {
    /// Status changes and notes, oldest first.
    pub changes: Vec<EventChangeRecord>,
}

/// Sets an event's status and/or adds a note, recorded in its history under the API key's
/// name. Setting the status it already has records only the note. Confirming an event raises
/// its revision and sends subscribers an update alert.
#[utoipa::path(patch, path = "/api/v1/events/{id}", tag = "events", request_body = EventUpdate,
    params(("id" = i64, Path, description = "Event id")), security(("api_key" = [])),
    responses((status = 200, body = TgeEvent), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update_event(
    access: WriteAccess,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    input: Result<Json<EventUpdate>, JsonRejection>,
) -> ApiResult<Json<TgeEvent>> {
    let Path(id) = id?;
    let Json(update) = input?;
    update.validate()?;
    let found = state
        .ctx
        .store
        .update_events(&[id], &update, &access.key_name, Utc::now())
        .await?;
    if found.is_empty() {
        return Err(swarm_shared::Error::not_found("event", id).into());
    }
    state.events.invalidate();
    Ok(Json(state.ctx.store.get_event(id).await?))
}

/// Sets the status of, and/or adds a note to, up to 500 events in one transaction (each
/// change in each event's history). Ids that name no event are listed, not an error.
#[utoipa::path(post, path = "/api/v1/events/bulk", tag = "events", request_body = BulkUpdate,
    security(("api_key" = [])),
    responses((status = 200, body = BulkResult), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)))]
pub async fn bulk_update(
    access: WriteAccess,
    State(state): State<AppState>,
    input: Result<Json<BulkUpdate>, JsonRejection>,
) -> ApiResult<Json<BulkResult>> {
    let Json(input) = input?;
    if input.ids.is_empty() || input.ids.len() > MAX_BULK_EVENTS {
        return Err(swarm_shared::Error::Invalid(format!(
            "ids: {} ids; 1 to {MAX_BULK_EVENTS} are needed",
            input.ids.len()
        ))
        .into());
    }
    let update = EventUpdate {
        status: input.status,
        note: input.note,
    };
    update.validate()?;
    let updated = state
        .ctx
        .store
        .update_events(&input.ids, &update, &access.key_name, Utc::now())
        .await?;
    state.events.invalidate();
    let mut not_found: Vec<i64> = input
        .ids
        .iter()
        .copied()
        .filter(|id| updated.binary_search(id).is_err())
        .collect();
    not_found.sort_unstable();
    not_found.dedup();
    Ok(Json(BulkResult { updated, not_found }))
}

/// An event's history: every status change and note, with the API key's name and the time,
/// oldest first.
#[utoipa::path(get, path = "/api/v1/events/{id}/history", tag = "events",
    params(("id" = i64, Path, description = "Event id")),
    responses((status = 200, body = EventHistory), (status = 404, body = Problem)))]
pub async fn event_history(
    _access: ReadAccess,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<EventHistory>> {
    let Path(id) = id?;
    Ok(Json(EventHistory {
        changes: state.ctx.store.event_history(id).await?,
    }))
}
