//! The kinds of actor in the swarm and their status.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The kind of an actor in the swarm.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum AgentKind {
    /// The queen: scheduler and supervisor of the swarm.
    Queen,
    /// Scraping efficiency specialist: fetches and parses sources.
    Scraping,
    /// Keyword precision specialist: scores documents.
    Keyword,
    /// API reliability optimizer: swarm-wide circuit breakers per host.
    ApiReliability,
    /// Performance bottleneck eliminator: finds the bottleneck, recommends scaling.
    Performance,
    /// Data quality enforcer: validation, dedup, merge into events.
    DataQuality,
    /// Memory coordinator: shared memory and synthesis.
    MemoryCoordinator,
}

impl AgentKind {
    /// Every kind, in start order.
    pub const ALL: [AgentKind; 7] = [
        AgentKind::Queen,
        AgentKind::MemoryCoordinator,
        AgentKind::ApiReliability,
        AgentKind::Performance,
        AgentKind::DataQuality,
        AgentKind::Keyword,
        AgentKind::Scraping,
    ];

    /// Parses a wire name (`api-reliability`, ...).
    pub fn parse(text: &str) -> Option<AgentKind> {
        AgentKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// The wire name (`api-reliability`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::Queen => "queen",
            AgentKind::Scraping => "scraping",
            AgentKind::Keyword => "keyword",
            AgentKind::ApiReliability => "api-reliability",
            AgentKind::Performance => "performance",
            AgentKind::DataQuality => "data-quality",
            AgentKind::MemoryCoordinator => "memory-coordinator",
        }
    }
}

impl std::fmt::Display for AgentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Health of an actor as the queen sees it.
#[derive(Debug, Clone, Copy, PartialEq, Hash, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Spawned, no heartbeat yet.
    Starting,
    /// Heartbeating on time.
    Healthy,
    /// Heartbeats missed.
    Unhealthy,
    /// Crashed; a restart is scheduled.
    Restarting,
    /// Crashed and the restart budget is spent.
    Failed,
    /// Stopped cleanly.
    Stopped,
}

impl AgentStatus {
    /// Every status.
    pub const ALL: [AgentStatus; 6] = [
        AgentStatus::Starting,
        AgentStatus::Healthy,
        AgentStatus::Unhealthy,
        AgentStatus::Restarting,
        AgentStatus::Failed,
        AgentStatus::Stopped,
    ];

    /// The wire name (`starting`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Starting => "starting",
            AgentStatus::Healthy => "healthy",
            AgentStatus::Unhealthy => "unhealthy",
            AgentStatus::Restarting => "restarting",
            AgentStatus::Failed => "failed",
            AgentStatus::Stopped => "stopped",
        }
    }
}
