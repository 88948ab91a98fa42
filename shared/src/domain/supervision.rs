//! Supervisor actions as recorded and queried.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::*;

/// How a supervisor's action went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionOutcome {
    /// Done, and its effect seen (the actor started, the work moved, the replicas changed,
    /// the alert went out).
    Succeeded,
    /// Tried and failed (the reason says why).
    Failed,
}

impl ActionOutcome {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionOutcome::Succeeded => "succeeded",
            ActionOutcome::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<ActionOutcome> {
        match text {
            "succeeded" => Some(ActionOutcome::Succeeded),
            "failed" => Some(ActionOutcome::Failed),
            _ => None,
        }
    }
}

/// One supervisor decision to record.
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorActionInput {
    /// The component acted on: an agent id (`keyword-0`, `node-b/keyword-0` for another
    /// process), a kind for scaling, or a dependency (`redis`, `postgres`).
    pub component: String,
    /// Its agent kind.
    pub kind: AgentKind,
    /// The node whose supervisor decided.
    pub node: String,
    /// What the supervisor saw (`panic`, `hang`, `unreachable`, `backlog`, ...).
    pub observation: String,
    /// What it did.
    pub action: crate::supervision::Action,
    /// How that went.
    pub outcome: ActionOutcome,
    /// Why, in words.
    pub reason: String,
}

/// A recorded supervisor decision.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SupervisorAction {
    /// Id.
    pub id: i64,
    /// The component acted on.
    pub component: String,
    /// Its agent kind.
    pub kind: AgentKind,
    /// The node whose supervisor decided.
    pub node: String,
    /// What the supervisor saw.
    pub observation: String,
    /// `restart`, `recreate`, `scale_up`, `scale_down`, `failover` or `alert_only`.
    #[schema(value_type = String)]
    pub action: crate::supervision::Action,
    /// `succeeded` or `failed`.
    pub outcome: ActionOutcome,
    /// Why.
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Filters of `GET /api/v1/supervisor/actions`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SupervisorActionQuery {
    /// Only this kind.
    pub kind: Option<AgentKind>,
    /// Only this action.
    pub action: Option<crate::supervision::Action>,
    /// Only this component.
    pub component: Option<String>,
    /// At most this many (newest first).
    pub limit: u32,
}
