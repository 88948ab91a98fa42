//! TGE events: the merged announcement with its sources, queries over them, analyst feedback.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::*;

/// One distinct source document merged into an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventSource {
    /// Canonical URL of the document.
    pub url: String,
    /// Its title.
    pub title: String,
    /// When it was published, if stated.
    pub published_at: Option<DateTime<Utc>>,
    /// Name of the source it came from.
    pub source_name: String,
    /// Score of this document.
    pub score: f64,
    /// When it was merged in.
    pub seen_at: DateTime<Utc>,
    /// How primary the source is (none when the source was deleted since).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<super::Provenance>,
}

/// A TGE event: one project's announcement, merged across sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TgeEvent {
    /// Identifier.
    pub id: i64,
    /// Project named.
    pub project: Option<String>,
    /// Token ticker.
    pub token: Option<String>,
    /// Highest score among its documents.
    pub score: f64,
    /// Event date as stated.
    pub event_date: Option<String>,
    /// When the first document arrived.
    pub first_seen: DateTime<Utc>,
    /// When the last document arrived.
    pub last_seen: DateTime<Utc>,
    /// How many distinct source documents are merged into the event.
    pub source_count: u64,
    /// Its source documents in the order they were merged in: all of them for one event, the
    /// first `sources_per_event` of them in a list.
    pub sources: Vec<EventSource>,
    /// Evidence of the best-scoring document.
    pub evidence: Vec<Evidence>,
    /// What kind of event it is, read from its first document.
    pub kind: EventKind,
    /// The exchanges its reports' titles name (a new one later is an update).
    pub venues: Vec<String>,
    /// How precisely `event_date` is known (none without a date, or for a vague one).
    pub date_precision: Option<DatePrecision>,
    /// The day `event_date` names, where it names one (a date without a year is the first
    /// such day from 60 days before the event was first seen on).
    pub event_day: Option<chrono::NaiveDate>,
    /// The start time in UTC, to the minute, where a report states one (an exchange notice's
    /// opening time); `event_date` then reads `2026-12-10 10:00 UTC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    /// The most primary provenance among its sources listed (exchange, official, media,
    /// social), with `proof`, that source's link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<super::Provenance>,
    /// The link of the most primary source listed: the proof of `provenance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    /// When its first report was published, as its source says (an exchange notice's own
    /// time); `first_seen` minus this is how late the swarm had it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
    /// Where analysts have put it (`new` until one sets it).
    pub status: EventStatus,
    /// When its status was last set by an analyst.
    pub status_changed_at: Option<DateTime<Utc>>,
    /// The name of the API key that set it.
    pub status_by: Option<String>,
    /// Its revision: 1 when created, raised by each material change (a date set, a
    /// confirmation), each of which subscribers are told of once.
    pub revision: i64,
}

/// Filters and cursor of `GET /events`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventQuery {
    /// Project name (case-insensitive; also matches watchlist aliases).
    pub company: Option<String>,
    /// Token ticker (case-insensitive).
    pub token: Option<String>,
    /// Lowest score.
    pub min_score: Option<f64>,
    /// Only events first seen at or after.
    pub since: Option<DateTime<Utc>>,
    /// Words searched for in the project, the token and the titles and texts of the sources
    /// (see [`search_words`]); every word must be found.
    pub q: Option<String>,
    /// Page size (1..=200).
    pub page_size: u32,
    /// Opaque cursor from a previous page.
    pub page_token: Option<String>,
    /// Sources listed per event (0..=200; `None`: [`DEFAULT_SOURCES_PER_EVENT`]). An event's
    /// `source_count` always counts them all.
    pub sources_per_event: Option<u32>,
    /// Only these events (empty: any); the live stream's filter of new events.
    pub ids: Vec<i64>,
    /// Only events with one of these statuses (empty: any).
    pub statuses: Vec<EventStatus>,
    /// Only events of one of these kinds (empty: any).
    pub kinds: Vec<EventKind>,
    /// Only events whose date has one of these precisions (empty: any, dated or not).
    pub date_precisions: Vec<DatePrecision>,
}

/// Sources a page of events lists per event unless asked otherwise: the first few reports of
/// an announcement, while a widely copied one can have hundreds (`GET /events/{id}` has them
/// all).
pub const DEFAULT_SOURCES_PER_EVENT: u32 = 5;

/// Most sources a page of events lists per event.
pub const MAX_SOURCES_PER_EVENT: u32 = 200;

/// A page of events.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// Events, newest first.
    pub events: Vec<TgeEvent>,
    /// Cursor of the next page, if any.
    pub next_page_token: Option<String>,
}

/// What happened when a classified document was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// The document id was already stored: nothing changed.
    Duplicate,
    /// Stored; not a TGE.
    Stored,
    /// Stored and a new event was created.
    EventCreated(i64),
    /// Stored and merged into an existing event.
    EventMerged(i64),
}

/// An analyst's verdict on an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackLabel {
    /// It is a TGE announcement.
    TruePositive,
    /// It is not.
    FalsePositive,
}

impl FeedbackLabel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackLabel::TruePositive => "true_positive",
            FeedbackLabel::FalsePositive => "false_positive",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<FeedbackLabel> {
        match text {
            "true_positive" => Some(FeedbackLabel::TruePositive),
            "false_positive" => Some(FeedbackLabel::FalsePositive),
            _ => None,
        }
    }
}

/// Stored analyst feedback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Feedback {
    /// Identifier (feedback is replayed in id order).
    pub id: i64,
    /// The event judged.
    pub event_id: i64,
    /// The verdict.
    pub label: FeedbackLabel,
    /// The analyst's note.
    pub note: Option<String>,
    /// What the keyword agents learn from: pattern keys and the model's log-odds.
    pub sample: serde_json::Value,
    /// When it was given.
    pub created_at: DateTime<Utc>,
}
