//! The supervisor's API: its recorded decisions, operators' actions by hand (scale, restart,
//! recreate; admin key) and fault injection for tests and drills.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use swarm_shared::commands::{Command, desired_replicas, is_worker};
use swarm_shared::domain::{
    ActionOutcome, AgentKind, SupervisorAction, SupervisorActionInput, SupervisorActionQuery,
};
use swarm_shared::faults::{Fault, MAX_FAULT_COUNT};
use swarm_shared::messages::QueenCommand;
use swarm_shared::supervision::{Action, Symptom};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::{AdminAccess, ReadAccess};
use super::error::{ApiError, ApiResult, Problem};
use super::routes::{agents_from_queen, announce};
use crate::commands::issue;
use crate::record::persist;

/// Most actions one request lists.
const MAX_ACTIONS: u32 = 500;

/// Filters of the action list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ActionParams {
    /// Only this agent kind (`keyword`, ...).
    pub kind: Option<AgentKind>,
    /// Only this action (`restart`, `recreate`, `scale_up`, `scale_down`, `failover`,
    /// `alert_only`).
    pub action: Option<String>,
    /// Only this component (`keyword-0`, `node-b/keyword-0`, `keyword` for scaling).
    pub component: Option<String>,
    /// At most this many, newest first (default 100, at most 500).
    pub limit: Option<u32>,
}

/// Recorded supervisor decisions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionList {
    /// Decisions.
    pub actions: Vec<SupervisorAction>,
}

/// Every decision of the swarm's supervisors (agent hosts and the queen's health supervisor):
/// component, kind, what was seen, what was done, how it went and why.
#[utoipa::path(get, path = "/api/v1/supervisor/actions", tag = "supervisor", params(ActionParams),
    responses((status = 200, body = ActionList), (status = 400, body = Problem)))]
pub async fn list_actions(
    _access: ReadAccess,
    State(state): State<AppState>,
    params: Result<Query<ActionParams>, QueryRejection>,
) -> ApiResult<Json<ActionList>> {
    let Query(params) = params?;
    let action = match params.action.as_deref() {
        None => None,
        Some(text) => Some(Action::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "action: `{text}` is not one of restart, recreate, scale_up, scale_down, failover, alert_only"
            ))
        })?),
    };
    let limit = params.limit.unwrap_or(100);
    if !(1..=MAX_ACTIONS).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: must be between 1 and {MAX_ACTIONS}"
        )));
    }
    let query = SupervisorActionQuery {
        kind: params.kind,
        action,
        component: params.component,
        limit,
    };
    Ok(Json(ActionList {
        actions: state.ctx.store.list_supervisor_actions(&query).await?,
    }))
}

/// Body of `POST /api/v1/agents/{kind}/scale`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleRequest {
    /// Instances per process, 1 to 64.
    pub replicas: u32,
}

/// What an operator's action did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionAccepted {
    /// The component acted on.
    pub component: String,
    /// The action.
    #[schema(value_type = String)]
    pub action: Action,
    /// What the swarm will do.
    pub detail: String,
}

/// Stores an operator's command, announces it and records the action.
async fn act(
    state: &AppState,
    command: &Command,
    component: &str,
    kind: AgentKind,
    action: Action,
    detail: String,
) -> ApiResult<(StatusCode, Json<ActionAccepted>)> {
    issue(&state.ctx, command).await?;
    let input = SupervisorActionInput {
        component: component.to_owned(),
        kind,
        node: state.ctx.config.node.name.clone(),
        observation: Symptom::Operator.as_str().into(),
        action,
        outcome: ActionOutcome::Succeeded,
        reason: format!("requested by an operator: {detail}"),
    };
    persist(&state.ctx, &input).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ActionAccepted {
            component: component.to_owned(),
            action,
            detail,
        }),
    ))
}

/// Sets the number of instances per process of a worker kind (scraping, keyword,
/// data-quality); every process running the kind starts or stops instances to match.
#[utoipa::path(post, path = "/api/v1/agents/{kind}/scale", tag = "supervisor", request_body = ScaleRequest,
    params(("kind" = String, Path, description = "scraping, keyword or data-quality")),
    security(("api_key" = [])),
    responses((status = 202, body = ActionAccepted), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn scale(
    _access: AdminAccess,
    State(state): State<AppState>,
    kind: Result<Path<String>, PathRejection>,
    input: Result<Json<ScaleRequest>, JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let Path(kind) = kind?;
    let Json(input) = input?;
    let kind = AgentKind::parse(&kind)
        .filter(|kind| is_worker(*kind))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "`{kind}` is not a kind that scales (scraping, keyword, data-quality)"
            ))
        })?;
    let current = desired_replicas(&state.ctx.store.list_desired().await?)
        .get(&kind)
        .copied();
    let action = match current {
        Some(current) if input.replicas < current => Action::ScaleDown,
        _ => Action::ScaleUp,
    };
    let detail = match current {
        Some(current) => format!(
            "{current} -> {} {kind} instances per process",
            input.replicas
        ),
        None => format!("{} {kind} instances per process", input.replicas),
    };
    let command = Command::Scale {
        kind,
        replicas: input.replicas,
    };
    act(&state, &command, kind.as_str(), kind, action, detail).await
}

/// Finds an agent by its id in `GET /api/v1/agents` (bare on the queen's node, `node/agent`
/// for other processes, sent as `node%2Fagent`).
async fn find_agent(state: &AppState, id: &str) -> ApiResult<(String, String, AgentKind)> {
    let agents = agents_from_queen(state).await?;
    let Some(agent) = agents.iter().find(|agent| agent.id == id) else {
        return Err(ApiError::not_found(format!(
            "no agent `{id}`; see GET /api/v1/agents"
        )));
    };
    if agent.kind == AgentKind::Queen {
        return Err(swarm_shared::Error::Invalid(
            "the queen cannot restart itself; restart its process".into(),
        )
        .into());
    }
    let (node, agent_id) = match id.split_once('/') {
        Some((node, agent_id)) => (node.to_owned(), agent_id.to_owned()),
        None => (state.ctx.config.node.name.clone(), id.to_owned()),
    };
    Ok((node, agent_id, agent.kind))
}

/// Restarts one agent: its host stops it (killing it if it does not stop) and starts it again
/// under the same identity, with its pending work.
#[utoipa::path(post, path = "/api/v1/agents/{id}/restart", tag = "supervisor",
    params(("id" = String, Path, description = "Agent id as in GET /api/v1/agents")),
    security(("api_key" = [])),
    responses((status = 202, body = ActionAccepted), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn restart(
    _access: AdminAccess,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<impl IntoResponse> {
    act_on_agent(&state, id?, Action::Restart).await
}

/// Recreates one agent: a fresh instance with a fresh restart budget, its state rebuilt from
/// the store, registered anew.
#[utoipa::path(post, path = "/api/v1/agents/{id}/recreate", tag = "supervisor",
    params(("id" = String, Path, description = "Agent id as in GET /api/v1/agents")),
    security(("api_key" = [])),
    responses((status = 202, body = ActionAccepted), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn recreate(
    _access: AdminAccess,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<impl IntoResponse> {
    act_on_agent(&state, id?, Action::Recreate).await
}

/// Restarts or recreates the agent `id` by command.
async fn act_on_agent(
    state: &AppState,
    Path(id): Path<String>,
    action: Action,
) -> ApiResult<(StatusCode, Json<ActionAccepted>)> {
    let (node, agent, kind) = find_agent(state, &id).await?;
    let (command, detail) = if action == Action::Restart {
        let detail = format!("{agent} on {node} restarts with its pending work");
        (Command::Restart { node, agent }, detail)
    } else {
        let detail = format!("{agent} on {node} is replaced by a fresh instance");
        (Command::RecreateAgent { node, agent }, detail)
    };
    act(state, &command, &id, kind, action, detail).await
}

/// Body of `POST /api/v1/faults`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    /// An agent id (`keyword-0`) or a kind (`keyword`).
    pub target: String,
    /// `panic`, `error`, `hang`, `exit` or `slow`.
    pub fault: Fault,
    /// How many times (default 1, at most 100).
    pub count: Option<u32>,
}

/// Injects a fault (admin key; only when the swarm runs with `TGE_SWARM_FAULT_INJECTION=true`).
/// Every process with injection on arms it; the target strikes at its next unit of work.
#[utoipa::path(post, path = "/api/v1/faults", tag = "supervisor", request_body = FaultRequest,
    security(("api_key" = [])),
    responses((status = 202, body = FaultRequest), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn inject_fault(
    _access: AdminAccess,
    State(state): State<AppState>,
    input: Result<Json<FaultRequest>, JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    if !state.ctx.faults.enabled() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "fault-injection-off",
            "fault injection is off; start the swarm with TGE_SWARM_FAULT_INJECTION=true",
        ));
    }
    let Json(mut input) = input?;
    let count = input.count.unwrap_or(1);
    if !(1..=MAX_FAULT_COUNT).contains(&count) {
        return Err(swarm_shared::Error::Invalid(format!(
            "count: must be between 1 and {MAX_FAULT_COUNT}"
        ))
        .into());
    }
    let target = input.target.trim();
    let is_kind = AgentKind::parse(target).is_some();
    let is_agent = agents_from_queen(&state)
        .await?
        .iter()
        .any(|agent| agent.id == target || agent.id.ends_with(&format!("/{target}")));
    if target.is_empty() || !(is_kind || is_agent) {
        return Err(swarm_shared::Error::Invalid(format!(
            "target: `{target}` is neither an agent kind nor an agent id in GET /api/v1/agents"
        ))
        .into());
    }
    input.target = target.to_owned();
    input.count = Some(count);
    announce(
        &state,
        QueenCommand::InjectFault {
            target: input.target.clone(),
            fault: input.fault,
            count,
        },
    )
    .await;
    tracing::warn!(target = %input.target, fault = input.fault.as_str(), count, "fault injected by an operator");
    Ok((StatusCode::ACCEPTED, Json(input)))
}

/// Dead letters listed at most per request.
const MAX_DEAD_LETTERS: u32 = 500;
/// Bytes of each dead letter's payload shown.
const DEAD_LETTER_PAYLOAD_BYTES: usize = 4096;

/// Query of `GET /dead-letters`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterParams {
    /// At most this many, oldest first (default 100, at most 500).
    pub limit: Option<u32>,
}

/// A work item set aside, with why.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLetter {
    /// Its id in the dead-letter queue.
    #[serde(default)]
    pub id: String,
    /// The queue it came from (`swarm:queue:classify`, ...).
    pub queue: String,
    /// Why: `handler panicked`, `undecodable`, `delivered too many times`.
    pub reason: String,
    /// Deliveries before it was set aside.
    pub deliveries: u32,
    /// The item as it was queued (its first 4,096 bytes).
    pub payload: String,
}

/// The dead-letter queue's items.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterList {
    /// Items, oldest first.
    pub dead_letters: Vec<DeadLetter>,
    /// Items in the queue in all.
    pub total: u64,
}

/// Work items the swarm set aside (`swarm:queue:dead-letter`): items that panicked their
/// handler, could not be decoded or were delivered too many times (admin key: payloads are
/// whatever the sources sent).
#[utoipa::path(get, path = "/api/v1/dead-letters", tag = "supervisor", params(DeadLetterParams),
    security(("api_key" = [])),
    responses((status = 200, body = DeadLetterList), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem)))]
pub async fn list_dead_letters(
    _access: AdminAccess,
    State(state): State<AppState>,
    params: Result<Query<DeadLetterParams>, QueryRejection>,
) -> ApiResult<Json<DeadLetterList>> {
    let Query(params) = params?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=MAX_DEAD_LETTERS).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: must be between 1 and {MAX_DEAD_LETTERS}"
        )));
    }
    let queue = swarm_shared::channels::QUEUE_DEAD_LETTER;
    let unavailable = |err: swarm_shared::Error| {
        tracing::warn!(error = %err, "reading the dead-letter queue failed");
        ApiError::unavailable("the work queues are unavailable; try again shortly")
    };
    let items = state
        .ctx
        .queue
        .peek(queue, limit as usize)
        .await
        .map_err(unavailable)?;
    let depth = state.ctx.queue.depth(queue).await.map_err(unavailable)?;
    let mut dead_letters = Vec::with_capacity(items.len());
    for (id, payload) in items {
        let mut letter =
            serde_json::from_slice::<DeadLetter>(&payload).unwrap_or_else(|_| DeadLetter {
                id: String::new(),
                queue: "unknown".into(),
                reason: "unreadable dead letter".into(),
                deliveries: 0,
                payload: String::from_utf8_lossy(&payload).into_owned(),
            });
        letter.id = id;
        if letter.payload.len() > DEAD_LETTER_PAYLOAD_BYTES {
            let mut end = DEAD_LETTER_PAYLOAD_BYTES;
            while !letter.payload.is_char_boundary(end) {
                end -= 1;
            }
            letter.payload.truncate(end);
        }
        dead_letters.push(letter);
    }
    Ok(Json(DeadLetterList {
        dead_letters,
        total: depth.ready + depth.pending,
    }))
}
