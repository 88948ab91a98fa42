//! `GET /api/v1/events/stream`: new events as Server-Sent Events, with the filters of
//! `GET /events`, resumable with `Last-Event-ID`.
//!
//! The stream reads the outbox, the ordered log of event creations that the store writes in
//! the transaction of each new event: an SSE id is an outbox row id, so a client that
//! reconnects with `Last-Event-ID` is replayed every event it missed, in order, from the
//! store. One poller per process reads new rows every `delivery.poll_interval` (and the last
//! 256 rows again, for a row another writer committed after a higher one) and hands them
//! to the clients through a bounded broadcast buffer of [`CLIENT_BUFFER`] rows: a client that
//! falls that far behind is dropped with a `dropped` event naming the reason (it may reconnect
//! and resume), and never slows the poller or another client. A comment line is sent every
//! `server.stream_heartbeat` so proxies keep the connection open.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use swarm_shared::domain::{AlertKind, EventQuery};
use swarm_shared::ports::Store;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;

use super::AppState;
use super::auth::ReadAccess;
use super::error::{ApiError, ApiResult};
use super::routes::{EventFilters, filtered, query_error};

/// Outbox rows a client may fall behind before it is dropped.
pub const CLIENT_BUFFER: usize = 1024;
/// Outbox rows read per query, when polling and when replaying.
const BATCH: u32 = 200;
/// Most rows replayed to a client that resumes; one further behind is told to page through
/// `GET /events` instead.
pub const MAX_REPLAY: usize = 10_000;

/// An event created or changed, as the stream carries it: its outbox row, the event and
/// what happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The outbox row: the SSE id.
    pub row: i64,
    /// The event.
    pub event_id: i64,
    /// Created, or updated (a date set).
    pub kind: AlertKind,
}

/// The process's feed of new events for stream clients.
#[derive(Debug, Clone)]
pub struct StreamFeed {
    sender: broadcast::Sender<Change>,
    /// Cancelled when the process stops: every stream then ends, so that the server's
    /// graceful shutdown is not held open by clients that never hang up.
    closing: CancellationToken,
}

impl Default for StreamFeed {
    fn default() -> Self {
        StreamFeed {
            sender: broadcast::channel(CLIENT_BUFFER).0,
            closing: CancellationToken::new(),
        }
    }
}

impl StreamFeed {
    /// Polls the outbox every `interval` from its current end on, until `cancel`; a failing
    /// store is logged and read again next round.
    pub fn spawn(
        &self,
        store: Arc<dyn Store>,
        interval: std::time::Duration,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        let sender = self.sender.clone();
        let closing = self.closing.clone();
        tokio::spawn(async move {
            let _close_streams = closing.drop_guard();
            let mut tail: Option<Tail> = None;
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Some(tail) = tail.as_mut() else {
                    match store.latest_outbox_row().await {
                        Ok(tip) => tail = Some(Tail::new(tip)),
                        Err(err) => {
                            tracing::warn!(error = %err, "reading the outbox for the event stream failed");
                        }
                    }
                    continue;
                };
                match store
                    .outbox_after(tail.read_from(), LOOKBACK as u32 + BATCH)
                    .await
                {
                    Ok(rows) => {
                        let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
                        for id in tail.accept(&ids) {
                            // Rows of a source's health are not events.
                            let Some((row, event_id)) = rows
                                .iter()
                                .find(|row| row.id == id)
                                .and_then(|row| Some((row, row.event_id?)))
                            else {
                                continue;
                            };
                            // No receiver is not an error: nobody is listening.
                            let _ = sender.send(Change {
                                row: row.id,
                                event_id,
                                kind: row.kind,
                            });
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "reading the outbox for the event stream failed")
                    }
                }
            }
        })
    }
}

/// Rows below the newest one seen that are read again each round: with several writers on
/// Postgres, a row can commit after a row with a higher id, and a reader that only asked for
/// ids above the newest seen would skip it for good.
const LOOKBACK: usize = 256;

/// What the poller has handed on: the newest row and the recent ones, so that rows read
/// again in the look-back window are sent once.
#[derive(Debug)]
struct Tail {
    newest: i64,
    sent: std::collections::BTreeSet<i64>,
}

impl Tail {
    /// A tail that starts after row `tip` (rows up to it are history, not news).
    fn new(tip: i64) -> Tail {
        Tail {
            newest: tip,
            sent: (tip.saturating_sub(LOOKBACK as i64)..=tip).collect(),
        }
    }

    /// The id after which the next read starts.
    fn read_from(&self) -> i64 {
        self.newest.saturating_sub(LOOKBACK as i64).max(0)
    }

    /// Of the ids read (ascending), those not handed on yet, which it records; it forgets
    /// ids that fell out of the look-back window.
    fn accept(&mut self, ids: &[i64]) -> Vec<i64> {
        let floor = self.read_from();
        let fresh: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| *id > floor && !self.sent.contains(id))
            .collect();
        for id in &fresh {
            self.sent.insert(*id);
            self.newest = self.newest.max(*id);
        }
        let floor = self.read_from();
        self.sent = self.sent.split_off(&floor);
        fresh
    }
}

/// The filters of the stream (those of `GET /events` but paging).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
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
}

/// The id a client resumes after: `Last-Event-ID`, a non-negative integer.
fn last_event_id(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<i64>() {
        Ok(id) if id >= 0 => Ok(Some(id)),
        _ => Err(ApiError::bad_request(
            "Last-Event-ID: not an id this stream sent (a non-negative integer)",
        )),
    }
}

/// The events of `rows` that pass `query`, in the rows' order, as SSE events.
async fn matching(
    store: &dyn Store,
    query: &EventQuery,
    rows: &[Change],
) -> swarm_shared::Result<Vec<Event>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = query.clone();
    query.ids = rows.iter().map(|row| row.event_id).collect();
    query.page_size = 200;
    query.page_token = None;
    let page = store.list_events(&query).await?;
    let mut out = Vec::new();
    for row in rows {
        if let Some(event) = page.events.iter().find(|event| event.id == row.event_id) {
            out.push(
                Event::default()
                    .id(row.row.to_string())
                    .event(match row.kind {
                        kind if kind.is_update() => "event.updated",
                        _ => "event.created",
                    })
                    .json_data(event)
                    .map_err(|err| swarm_shared::Error::Invalid(err.to_string()))?,
            );
        }
    }
    Ok(out)
}

/// A `dropped` event: why the stream ends.
fn dropped(reason: &str) -> Event {
    Event::default()
        .event("dropped")
        .data(serde_json::json!({ "reason": reason }).to_string())
}

/// New events as Server-Sent Events (`text/event-stream`), each `event: event.created` (or
/// `event: event.updated` when an event's date is set or moved later, or an analyst confirms it) with the event as JSON `data` (as `GET /events/{id}` shows it) and an `id` to resume from with
/// `Last-Event-ID`, which replays what was missed first. Filters as `GET /events`. A client
/// more than 1,024 events behind gets `event: dropped` with the reason, and the stream ends.
#[utoipa::path(get, path = "/api/v1/events/stream", params(StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id")),
    tag = "events",
    responses((status = 200, description = "The stream", content((String = "text/event-stream"))),
        (status = 400, body = super::error::Problem)))]
pub async fn stream(
    _access: ReadAccess,
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<StreamParams>, QueryRejection>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let Query(params) = params?;
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
    let resume = last_event_id(&headers)?;
    // Subscribed before the replay reads, so that nothing falls between the two.
    let mut live = state.stream.sender.subscribe();
    let store = state.ctx.store.clone();
    let mut replay_to: i64 = store.latest_outbox_row().await.map_err(query_error)?;
    let heartbeat = state.ctx.config.server.stream_heartbeat;
    let closing = state.stream.closing.clone();
    let events = async_stream::stream! {
        if let Some(mut after) = resume {
            let mut replayed = 0usize;
            while after < replay_to {
                let rows = match store.outbox_after(after, BATCH).await {
                    Ok(rows) => rows,
                    Err(err) => {
                        yield Ok(dropped(&format!("the store failed while replaying: {err}")));
                        return;
                    }
                };
                let Some(last) = rows.last() else { break };
                after = last.id;
                replayed += rows.len();
                if replayed > MAX_REPLAY {
                    yield Ok(dropped(&format!(
                        "more than {MAX_REPLAY} events were missed: read them with GET /api/v1/events, then reconnect without Last-Event-ID"
                    )));
                    return;
                }
                let changes: Vec<Change> = rows
                    .iter()
                    .filter_map(|row| Some(Change { row: row.id, event_id: row.event_id?, kind: row.kind }))
                    .collect();
                match matching(store.as_ref(), &query, &changes).await {
                    Ok(found) => {
                        for event in found {
                            yield Ok(event);
                        }
                    }
                    Err(err) => {
                        yield Ok(dropped(&format!("the store failed while replaying: {err}")));
                        return;
                    }
                }
            }
            replay_to = replay_to.max(after);
        }
        loop {
            let received = tokio::select! {
                _ = closing.cancelled() => None,
                received = live.recv() => Some(received),
            };
            let Some(received) = received else {
                yield Ok(dropped("the server is shutting down; reconnect with Last-Event-ID to resume"));
                return;
            };
            let first = match received {
                Ok(created) => created,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    yield Ok(dropped(&format!(
                        "client too slow: {missed} events behind (the buffer holds {CLIENT_BUFFER}); reconnect with Last-Event-ID to resume"
                    )));
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            // What else is waiting, read in one query.
            let mut batch = vec![first];
            while batch.len() < BATCH as usize {
                match live.try_recv() {
                    Ok(created) => batch.push(created),
                    Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                        yield Ok(dropped(&format!(
                            "client too slow: {missed} events behind (the buffer holds {CLIENT_BUFFER}); reconnect with Last-Event-ID to resume"
                        )));
                        return;
                    }
                    Err(_) => break,
                }
            }
            batch.retain(|created| created.row > replay_to);
            match matching(store.as_ref(), &query, &batch).await {
                Ok(found) => {
                    for event in found {
                        yield Ok(event);
                    }
                }
                Err(err) => {
                    yield Ok(dropped(&format!("the store failed: {err}; reconnect with Last-Event-ID to resume")));
                    return;
                }
            }
        }
    };
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_committed_late_below_the_newest_is_sent_once() {
        let mut tail = Tail::new(10);
        // History up to the tip is not news.
        assert_eq!(tail.accept(&[9, 10]), Vec::<i64>::new());
        assert_eq!(tail.accept(&[11, 13]), vec![11, 13]);
        // 12 commits after 13 (another writer): read again in the window, sent once.
        assert_eq!(tail.accept(&[11, 12, 13]), vec![12]);
        assert_eq!(tail.accept(&[11, 12, 13]), Vec::<i64>::new());
        // The window follows the newest row and forgets what fell out of it.
        let far: Vec<i64> = (14..=1_000).collect();
        assert_eq!(tail.accept(&far).len(), far.len());
        assert_eq!(tail.read_from(), 1_000 - LOOKBACK as i64);
        assert!(tail.sent.len() <= LOOKBACK + 1);
        assert_eq!(tail.accept(&[1_001]), vec![1_001]);
    }
}
