//! Messages carried on the pub/sub channels, as JSON. Every message is a notification; losing
//! one may delay a view (a heartbeat, a breaker update) but never loses work.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::channels::Channel;
use crate::domain::AgentKind;
use crate::error::Result;

/// Counters an actor reports with each heartbeat (its metrics snapshot).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentStats {
    /// Work items processed since start.
    pub processed: u64,
    /// Work items that failed since start.
    pub errors: u64,
    /// Mean processing time per item over the last heartbeat period, milliseconds.
    pub mean_latency_ms: f64,
    /// Items processed per second over the last heartbeat period.
    pub throughput_per_s: f64,
    /// Time spent working since start, milliseconds: with `processed`, how busy the actor
    /// was between any two heartbeats, whatever happened inside each period.
    #[serde(default)]
    pub busy_ms: u64,
    /// The queue this actor consumes, if any.
    pub queue: Option<String>,
    /// Times the host supervisor has restarted this actor.
    #[serde(default)]
    pub restarts: u32,
    /// Its process's CPU use, percent of all cores (Linux only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    /// Its process's resident memory, percent of the limit (Linux only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_percent: Option<f64>,
}

/// On `swarm:channels:health-checks`: heartbeats and lifecycle events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HealthMessage {
    /// An actor is alive.
    Heartbeat {
        /// Agent id (`keyword-0`).
        agent_id: String,
        /// Node (process) it runs on; empty from senders that predate multi-process swarms.
        #[serde(default)]
        node: String,
        /// Its kind.
        kind: AgentKind,
        /// When it was sent.
        at: DateTime<Utc>,
        /// Its counters.
        stats: AgentStats,
        /// Where its process serves `/metrics` and `/healthz` (the health supervisor probes it
        /// when heartbeats stop, to tell a hung actor from a dead process).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metrics_addr: Option<String>,
    },
    /// The host supervisor saw an actor start, fail, restart or stop.
    Lifecycle {
        /// Agent id.
        agent_id: String,
        /// Node (process) it runs on; empty from senders that predate multi-process swarms.
        #[serde(default)]
        node: String,
        /// Its kind.
        kind: AgentKind,
        /// What happened.
        event: LifecycleEvent,
        /// Restarts so far.
        restarts: u32,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Lifecycle events reported by a host supervisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LifecycleEvent {
    /// The actor started.
    Started,
    /// The actor failed (panic or handler error); a restart follows after `delay_ms`.
    Failed {
        /// Why.
        reason: String,
        /// Delay before the restart.
        delay_ms: u64,
    },
    /// The actor failed and the restart budget is spent.
    GaveUp {
        /// Why.
        reason: String,
    },
    /// The actor stopped cleanly.
    Stopped,
}

/// Outcome of one outbound call, reported by scraping agents to the API reliability agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// 2xx or 304.
    Success,
    /// Connection error, timeout or 5xx.
    Failure,
    /// 429 or 503 with Retry-After.
    RateLimited,
}

/// Circuit breaker state, as broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are refused until `until`.
    Open,
    /// One trial call is allowed.
    HalfOpen,
}

/// On `swarm:channels:agent-communication`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    /// A scraping agent's outbound call outcome.
    CallOutcome {
        /// Host called.
        host: String,
        /// Outcome.
        outcome: CallOutcome,
        /// Retry-After in seconds, if the server sent one.
        retry_after_s: Option<u64>,
        /// Reporting agent.
        agent_id: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The API reliability agent's swarm-wide breaker state for a host.
    BreakerUpdate {
        /// Host.
        host: String,
        /// New state.
        state: BreakerState,
        /// For `open`: when a trial call will be allowed.
        until: Option<DateTime<Utc>>,
    },
    /// The performance agent's recommendation to the queen.
    Recommendation {
        /// Bottleneck kind, if any.
        bottleneck: Option<AgentKind>,
        /// Recommended action (`scale_up`, `scale_down`, `none`).
        action: String,
        /// Why.
        reason: String,
        /// Kinds whose last added instances added no capacity under load: the supervisor
        /// adds none on their backlog. Absent from senders before it existed.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        no_gain: Vec<AgentKind>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A finding to store in shared memory (handled by the memory coordinator).
    MemoryWrite {
        /// Namespace.
        namespace: String,
        /// Key.
        key: String,
        /// Value.
        value: serde_json::Value,
        /// TTL in seconds; none means the coordinator's default.
        ttl_s: Option<u64>,
        /// Writer.
        written_by: String,
    },
    /// The data quality agent created or updated an event: one message per event per
    /// recorded batch.
    EventRecorded {
        /// Event id.
        event_id: i64,
        /// Whether the batch created it (or only merged into it).
        created: bool,
        /// Project.
        project: Option<String>,
        /// Documents of the batch recorded into it, the creating one included (1 from
        /// agents that announce each document).
        #[serde(default = "one_document")]
        documents: u32,
    },
}

fn one_document() -> u32 {
    1
}

/// Memory changes announced in one `memory-sync` message at most; a flush of more keys sends
/// several messages.
pub const MEMORY_SYNC_BATCH: usize = 500;

/// On `swarm:channels:memory-sync`: the changes of one memory flush, in the order they were
/// made, `{"changes": [..]}` (up to [`MEMORY_SYNC_BATCH`] per message). One message per flush
/// instead of one per key keeps the channel's cost per change small: every subscriber of
/// every process receives and decodes each message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryChanges {
    /// The changes, oldest first; each key appears once.
    pub changes: Vec<MemoryChange>,
}

/// One key's change, in a [`MemoryChanges`] message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryChange {
    /// Namespace.
    pub namespace: String,
    /// Key.
    pub key: String,
    /// Version after the change.
    pub version: u64,
    /// `put`, `delete` or `expire`.
    pub op: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// On `swarm:channels:queen-commands`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum QueenCommand {
    /// Sources changed: consumers holding cached source data should reload.
    SourcesChanged,
    /// The watchlist or the operator's trading-token list changed: keyword agents rebuild
    /// their scorer (companies, feedback, tokens that already trade).
    CompaniesChanged,
    /// Every actor heartbeats now (sent by a queen when it starts, so it learns the whole
    /// swarm at once instead of after a heartbeat interval).
    ReportHealth,
    /// Desired state (replicas, restarts, drains) changed: hosts reconcile now rather than at
    /// their next heartbeat tick.
    DesiredStateChanged,
    /// Arm a fault in every process that has fault injection on (`POST /api/v1/faults`).
    InjectFault {
        /// Agent id or kind.
        target: String,
        /// What happens.
        fault: crate::faults::Fault,
        /// How many times.
        count: u32,
    },
}

/// Encodes a message for the bus.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(message)?)
}

/// Decodes a message from the bus.
pub fn decode<T: for<'de> Deserialize<'de>>(payload: &[u8]) -> Result<T> {
    Ok(serde_json::from_slice(payload)?)
}

/// The `type` tag of an encoded message, read without decoding it, when the payload starts
/// with it as [`encode`] writes it (`{"type":"memory_write",...}`); `None` for any other
/// layout, which the caller then decodes in full. Subscribers that want a few kinds of a busy
/// channel skip the rest with it.
pub fn tag_of(payload: &[u8]) -> Option<&str> {
    let rest = payload.strip_prefix(b"{\"type\":\"")?;
    let end = rest.iter().position(|&byte| byte == b'"')?;
    std::str::from_utf8(rest.get(..end)?).ok()
}

/// The `type` tags of [`AgentMessage`] variants, as [`tag_of`] reads them: what actors name
/// when they forward only some messages ([`crate::context::forward_only`]).
pub mod agent_tags {
    /// [`super::AgentMessage::CallOutcome`].
    pub const CALL_OUTCOME: &str = "call_outcome";
    /// [`super::AgentMessage::BreakerUpdate`].
    pub const BREAKER_UPDATE: &str = "breaker_update";
    /// [`super::AgentMessage::Recommendation`].
    pub const RECOMMENDATION: &str = "recommendation";
    /// [`super::AgentMessage::MemoryWrite`].
    pub const MEMORY_WRITE: &str = "memory_write";
    /// [`super::AgentMessage::EventRecorded`].
    pub const EVENT_RECORDED: &str = "event_recorded";
}

/// The channel each message type travels on.
pub trait OnChannel {
    /// Its channel.
    const CHANNEL: Channel;
}

impl OnChannel for HealthMessage {
    const CHANNEL: Channel = Channel::HealthChecks;
}

impl OnChannel for AgentMessage {
    const CHANNEL: Channel = Channel::AgentCommunication;
}

impl OnChannel for MemoryChanges {
    const CHANNEL: Channel = Channel::MemorySync;
}

impl OnChannel for QueenCommand {
    const CHANNEL: Channel = Channel::QueenCommands;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_read_without_decoding() {
        let write = encode(&AgentMessage::MemoryWrite {
            namespace: "n".into(),
            key: "k".into(),
            value: serde_json::json!({"type": "event_recorded"}),
            ttl_s: None,
            written_by: "w".into(),
        })
        .unwrap();
        assert_eq!(tag_of(&write), Some(agent_tags::MEMORY_WRITE));
        let recorded = encode(&AgentMessage::EventRecorded {
            event_id: 1,
            created: true,
            project: None,
            documents: 1,
        })
        .unwrap();
        assert_eq!(tag_of(&recorded), Some(agent_tags::EVENT_RECORDED));
        let at = chrono::Utc::now();
        let others = [
            (
                AgentMessage::CallOutcome {
                    host: "a.example".into(),
                    outcome: CallOutcome::Failure,
                    retry_after_s: None,
                    agent_id: "scraping-0".into(),
                    at,
                },
                agent_tags::CALL_OUTCOME,
            ),
            (
                AgentMessage::BreakerUpdate {
                    host: "a.example".into(),
                    state: BreakerState::Open,
                    until: Some(at),
                },
                agent_tags::BREAKER_UPDATE,
            ),
            (
                AgentMessage::Recommendation {
                    bottleneck: None,
                    action: "none".into(),
                    reason: "calm".into(),
                    no_gain: vec![AgentKind::DataQuality],
                    at,
                },
                agent_tags::RECOMMENDATION,
            ),
        ];
        for (message, tag) in others {
            assert_eq!(tag_of(&encode(&message).unwrap()), Some(tag), "{message:?}");
        }
        // Written by hand with spaces, or not an object: decoded in full by the caller.
        assert_eq!(tag_of(br#"{"type": "memory_write"}"#), None);
        assert_eq!(tag_of(b"[1]"), None);
        assert_eq!(tag_of(br#"{"type":"unterminated"#), None);
    }

    #[test]
    fn an_event_announcement_without_a_document_count_counts_one() {
        let old = br#"{"type":"event_recorded","event_id":7,"created":true,"project":"Fhenix"}"#;
        let message: AgentMessage = decode(old).unwrap();
        assert_eq!(
            message,
            AgentMessage::EventRecorded {
                event_id: 7,
                created: true,
                project: Some("Fhenix".into()),
                documents: 1,
            }
        );
        let batch = AgentMessage::EventRecorded {
            event_id: 7,
            created: false,
            project: None,
            documents: 12,
        };
        assert_eq!(
            decode::<AgentMessage>(&encode(&batch).unwrap()).unwrap(),
            batch
        );
    }

    #[test]
    fn a_recommendation_from_before_no_gain_lists_none() {
        let old = br#"{"type":"recommendation","bottleneck":"keyword","action":"scale_up","reason":"r","at":"2026-12-07T20:00:00Z"}"#;
        let message: AgentMessage = decode(old).unwrap();
        let AgentMessage::Recommendation { no_gain, .. } = &message else {
            panic!("{message:?}");
        };
        assert!(no_gain.is_empty());
        let held = AgentMessage::Recommendation {
            bottleneck: None,
            action: "none".into(),
            reason: "r".into(),
            no_gain: vec![AgentKind::DataQuality],
            at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        };
        let encoded = encode(&held).unwrap();
        assert!(String::from_utf8_lossy(&encoded).contains(r#""no_gain":["data-quality"]"#));
        assert_eq!(decode::<AgentMessage>(&encoded).unwrap(), held);
    }
}
