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
    /// A test alert sent on request.
    Test,
}

impl AlertKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Created => "created",
            AlertKind::Updated => "updated",
            AlertKind::Confirmed => "confirmed",
            AlertKind::Test => "test",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<AlertKind> {
        match text {
            "created" => Some(AlertKind::Created),
            "updated" => Some(AlertKind::Updated),
            "confirmed" => Some(AlertKind::Confirmed),
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
    /// The event.
    pub event_id: i64,
    /// The event's revision (1 when created).
    pub revision: i64,
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
    /// The event.
    pub event_id: i64,
    /// The event's revision.
    pub revision: i64,
    /// What changed.
    pub kind: AlertKind,
    /// When the change was stored (for the alert latency).
    pub event_stored_at: DateTime<Utc>,
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
    /// The event.
    pub event_id: i64,
    /// The event's revision.
    pub revision: i64,
    /// What changed.
    pub kind: AlertKind,
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
