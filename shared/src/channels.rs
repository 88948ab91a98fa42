//! Names shared by every process: pub/sub channels, work queues and key prefixes.
//! Operators know these names (dashboards, `redis-cli`), so they never change casually.

use serde::{Deserialize, Serialize};

/// A pub/sub channel of the swarm. Notifications only: work never travels on pub/sub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Channel {
    /// Agent-to-agent findings: fetch outcomes, breaker updates, recommendations, memory writes.
    AgentCommunication,
    /// Commands and desired-state announcements from the queen.
    QueenCommands,
    /// Memory change notifications from the memory coordinator.
    MemorySync,
    /// Heartbeats and lifecycle events of every actor.
    HealthChecks,
}

impl Channel {
    /// Every channel, in a fixed order.
    pub const ALL: [Channel; 4] = [
        Channel::AgentCommunication,
        Channel::QueenCommands,
        Channel::MemorySync,
        Channel::HealthChecks,
    ];

    /// The channel's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::AgentCommunication => "swarm:channels:agent-communication",
            Channel::QueenCommands => "swarm:channels:queen-commands",
            Channel::MemorySync => "swarm:channels:memory-sync",
            Channel::HealthChecks => "swarm:channels:health-checks",
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Work queue of scrape tasks (queen -> scraping agents).
pub const QUEUE_SCRAPE: &str = "swarm:queue:scrape";
/// Work queue of fetched documents (scraping -> keyword agents).
pub const QUEUE_CLASSIFY: &str = "swarm:queue:classify";
/// Work queue of classified documents (keyword -> data-quality agents).
pub const QUEUE_QUALITY: &str = "swarm:queue:quality";
/// Every work queue, in pipeline order.
pub const QUEUES: [&str; 3] = [QUEUE_SCRAPE, QUEUE_CLASSIFY, QUEUE_QUALITY];

/// The consumer name failed-over items are parked under until a live consumer claims them.
pub const FAILOVER_CONSUMER: &str = "failover";

/// The queue a worker kind consumes (scraping, keyword, data quality); none for other kinds.
pub fn queue_of(kind: crate::domain::AgentKind) -> Option<&'static str> {
    use crate::domain::AgentKind;
    match kind {
        AgentKind::Scraping => Some(QUEUE_SCRAPE),
        AgentKind::Keyword => Some(QUEUE_CLASSIFY),
        AgentKind::DataQuality => Some(QUEUE_QUALITY),
        _ => None,
    }
}

/// The queues the work of a worker kind adds to, when it holds back for them: a scraping
/// agent's fetches add documents to classify and, after that, to record. Other kinds never
/// hold back (what waits after them is bounded by what the scrapers let in).
pub fn downstream_of(kind: crate::domain::AgentKind) -> &'static [&'static str] {
    match kind {
        crate::domain::AgentKind::Scraping => &[QUEUE_CLASSIFY, QUEUE_QUALITY],
        _ => &[],
    }
}

/// Back-pressure: whether a worker of `kind` takes no work while `waiting` items (ready and
/// pending) sit in its [`downstream_of`] queues. Scraping agents stop taking scrape tasks
/// once `max_backlog` documents wait, so a burst of documents waits at its sources instead of
/// in memory (the embedded queues) or in Redis. The supervisor asks the same question, so a
/// held-back agent is not taken for a hung one.
pub fn held_back(kind: crate::domain::AgentKind, waiting: u64, max_backlog: u64) -> bool {
    !downstream_of(kind).is_empty() && waiting >= max_backlog
}

/// Items that could not be processed (undecodable, or delivered too often), kept for operators.
pub const QUEUE_DEAD_LETTER: &str = "swarm:queue:dead-letter";
/// Deliveries after which an item goes to the dead-letter queue instead of being retried.
pub const MAX_DELIVERIES: u32 = 10;

/// Prefix of each actor's latest metrics snapshot (`swarm:metrics:<node>/<agent>`), written
/// at every heartbeat and expiring after the missed-heartbeat window.
pub const METRICS_KEY_PREFIX: &str = "swarm:metrics:";
/// Prefix of the shared-memory mirror (`swarm:memory:<namespace>:<key>`), written by the
/// memory coordinator with the entry's TTL; the store holds the durable copy.
pub const MEMORY_KEY_PREFIX: &str = "swarm:memory:";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AgentKind;

    #[test]
    fn only_scraping_holds_back_and_only_at_the_limit() {
        assert!(!held_back(AgentKind::Scraping, 99, 100));
        assert!(held_back(AgentKind::Scraping, 100, 100));
        assert!(held_back(AgentKind::Scraping, 5_000, 100));
        for kind in [AgentKind::Keyword, AgentKind::DataQuality, AgentKind::Queen] {
            assert!(!held_back(kind, 5_000, 100), "{kind:?}");
            assert!(downstream_of(kind).is_empty());
        }
        assert_eq!(
            downstream_of(AgentKind::Scraping),
            &[QUEUE_CLASSIFY, QUEUE_QUALITY]
        );
    }
}
