//! Alerts: the outbox rows event changes write, the alerts fanned out from them to
//! subscriptions (one per subscription, event and revision, named by its
//! [`idempotency_key`]), and the outcome of each attempt to send one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What an outbox row says changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A new event.
    Created,
    /// A material change of an event: its date was set.
    Updated,
    /// A material change of an event: an analyst confirmed it.
    Confirmed,
    /// A material change of an event: a later report names another day for it.
    DateMoved,
    /// A material change of an event: a later report's title names a new venue.
    VenueAdded,
    /// A source keeps failing or has gone silent.
    SourceDown,
    /// A source that was down fetches again.
    SourceRecovered,
    /// A test alert sent on request.
    Test,
}

impl AlertKind {
    /// Whether it is a material change of an existing event (an update alert).
    pub fn is_update(self) -> bool {
        matches!(
            self,
            AlertKind::Updated
                | AlertKind::Confirmed
                | AlertKind::DateMoved
                | AlertKind::VenueAdded
        )
    }

    /// Whether it is about a source's health rather than an event.
    pub fn is_source_health(self) -> bool {
        matches!(self, AlertKind::SourceDown | AlertKind::SourceRecovered)
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Created => "created",
            AlertKind::Updated => "updated",
            AlertKind::Confirmed => "confirmed",
            AlertKind::DateMoved => "date_moved",
            AlertKind::VenueAdded => "venue_added",
            AlertKind::SourceDown => "source_down",
            AlertKind::SourceRecovered => "source_recovered",
            AlertKind::Test => "test",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<AlertKind> {
        match text {
            "created" => Some(AlertKind::Created),
            "updated" => Some(AlertKind::Updated),
            "confirmed" => Some(AlertKind::Confirmed),
            "date_moved" => Some(AlertKind::DateMoved),
            "venue_added" => Some(AlertKind::VenueAdded),
            "source_down" => Some(AlertKind::SourceDown),
            "source_recovered" => Some(AlertKind::SourceRecovered),
            "test" => Some(AlertKind::Test),
            _ => None,
        }
    }
}

/// An event change waiting to be fanned out to subscriptions, written in the transaction
/// that made the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// Row id.
    pub id: i64,
    /// The event (none for a source's health).
    pub event_id: Option<i64>,
    /// The source whose health changed (none for an event).
    pub source_id: Option<i64>,
    /// The event's revision (1 when created), or the source's incident number.
    pub revision: i64,
    /// Why a source is down.
    pub detail: Option<String>,
    /// What changed.
    pub kind: AlertKind,
    /// When the change was stored.
    pub created_at: DateTime<Utc>,
}

/// One alert to send, created by fanning an outbox row out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    /// The subscription.
    pub subscription_id: i64,
    /// The event (none for a source's health).
    pub event_id: Option<i64>,
    /// The source (none for an event).
    pub source_id: Option<i64>,
    /// The event's revision, or the source's incident number.
    pub revision: i64,
    /// What changed.
    pub kind: AlertKind,
    /// Why a source is down.
    pub detail: Option<String>,
    /// When the change was stored (for the alert latency).
    pub event_stored_at: DateTime<Utc>,
}

impl NewAlert {
    /// Its idempotency key: [`idempotency_key`] for an event's alert,
    /// `tge-swarm-<subscription>-source-<source>-<incident>-down` (or `-up`) for a source's.
    pub fn key(&self) -> String {
        match (self.event_id, self.source_id) {
            (Some(event_id), _) => idempotency_key(self.subscription_id, event_id, self.revision),
            (None, source_id) => format!(
                "tge-swarm-{}-source-{}-{}-{}",
                self.subscription_id,
                source_id.unwrap_or_default(),
                self.revision,
                if self.kind == AlertKind::SourceRecovered {
                    "up"
                } else {
                    "down"
                }
            ),
        }
    }
}

/// The idempotency key of the alert of (subscription, event, revision): the same alert sent
/// again (after a retry or a crash) carries the same key.
pub fn idempotency_key(subscription_id: i64, event_id: i64, revision: i64) -> String {
    format!("tge-swarm-{subscription_id}-{event_id}-{revision}")
}

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The receiver accepted it.
    Delivered,
    /// Given up: a permanent refusal, or every attempt failed.
    Dead,
}

impl AlertStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Pending => "pending",
            AlertStatus::Delivered => "delivered",
            AlertStatus::Dead => "dead",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<AlertStatus> {
        match text {
            "pending" => Some(AlertStatus::Pending),
            "delivered" => Some(AlertStatus::Delivered),
            "dead" => Some(AlertStatus::Dead),
            _ => None,
        }
    }
}

/// An alert and its attempts: a line of the delivery log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    /// Id.
    pub id: i64,
    /// The subscription.
    pub subscription_id: i64,
    /// The event (none for a source's health).
    pub event_id: Option<i64>,
    /// The source (none for an event).
    pub source_id: Option<i64>,
    /// The event's revision, or the source's incident number.
    pub revision: i64,
    /// What changed.
    pub kind: AlertKind,
    /// Why a source is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Sent with every attempt; the same for every attempt.
    pub idempotency_key: String,
    /// Where it stands.
    pub status: AlertStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (pending alerts).
    pub next_attempt_at: DateTime<Utc>,
    /// The receiver's last HTTP status.
    pub last_status_code: Option<u16>,
    /// The last failure.
    pub last_error: Option<String>,
    /// When the event change was stored.
    pub event_stored_at: DateTime<Utc>,
    /// When the alert was created.
    pub created_at: DateTime<Utc>,
    /// When the receiver accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The outcome of one attempt, recorded on the alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Accepted (2xx).
    Delivered {
        /// The receiver's status.
        status_code: u16,
    },
    /// Failed; try again at `next_attempt_at`.
    Retry {
        /// The receiver's status, when it answered.
        status_code: Option<u16>,
        /// What failed.
        error: String,
        /// When to try again.
        next_attempt_at: DateTime<Utc>,
    },
    /// Failed for good.
    Dead {
        /// The receiver's status, when it answered.
        status_code: Option<u16>,
        /// What failed.
        error: String,
    },
}
