//! The swarm itself: its actors, shared memory, health, commands and registry.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use memory_coordinator::MemoryMsg;
use ractor::ActorRef;
use serde::Serialize;
use swarm_shared::commands::Command;
use swarm_shared::domain::{AgentKind, AgentStatus, DesiredEntry, MemoryEntry, SynthesisSnapshot};
use utoipa::ToSchema;

use super::ACTOR_CALL_TIMEOUT;
use crate::api::AppState;
use crate::api::auth::{AdminAccess, ReadAccess};
use crate::api::error::{ApiError, ApiResult, Problem};
use crate::health::{self, Health};
use crate::names::{memory_name, queen_name};
use crate::queen::{AgentView, QueenMsg};

/// All actors known to the queen.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentList {
    /// Actors, by id.
    pub agents: Vec<AgentView>,
}

/// A memory namespace.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemoryList {
    /// Namespace.
    pub namespace: String,
    /// Live entries, by key.
    pub entries: Vec<MemoryEntry>,
}

pub(crate) async fn agents_from_queen(state: &AppState) -> ApiResult<Vec<AgentView>> {
    let name = queen_name(&state.ctx.config.node.name);
    let Some(queen) = ActorRef::<QueenMsg>::where_is(name) else {
        return Err(ApiError::unavailable(
            "the queen is restarting; try again shortly",
        ));
    };
    match queen
        .call(QueenMsg::ListAgents, Some(ACTOR_CALL_TIMEOUT))
        .await
    {
        Ok(ractor::rpc::CallResult::Success(agents)) => Ok(agents),
        Ok(_) => Err(ApiError::unavailable("the queen did not answer in time")),
        Err(_) => Err(ApiError::unavailable(
            "the queen is restarting; try again shortly",
        )),
    }
}

/// Every actor: kind, status, restarts, last heartbeat.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents",
    responses((status = 200, body = AgentList), (status = 503, body = Problem)))]
pub async fn list_agents(
    _access: ReadAccess,
    State(state): State<AppState>,
) -> ApiResult<Json<AgentList>> {
    Ok(Json(AgentList {
        agents: agents_from_queen(&state).await?,
    }))
}

/// Live entries of a shared memory namespace (`breakers`, `performance`, `events`, ...).
#[utoipa::path(get, path = "/api/v1/memory/{namespace}", tag = "memory",
    params(("namespace" = String, Path, description = "Namespace")),
    responses((status = 200, body = MemoryList), (status = 503, body = Problem)))]
pub async fn get_memory(
    _access: ReadAccess,
    State(state): State<AppState>,
    namespace: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<MemoryList>> {
    let Path(namespace) = namespace?;
    let name = memory_name(&state.ctx.config.node.name);
    let Some(memory) = ActorRef::<MemoryMsg>::where_is(name) else {
        return Err(ApiError::unavailable(
            "the memory coordinator is restarting; try again shortly",
        ));
    };
    let wanted = namespace.clone();
    match memory
        .call(
            |reply| MemoryMsg::List(wanted, reply),
            Some(ACTOR_CALL_TIMEOUT),
        )
        .await
    {
        Ok(ractor::rpc::CallResult::Success(entries)) => {
            Ok(Json(MemoryList { namespace, entries }))
        }
        _ => Err(ApiError::unavailable(
            "the memory coordinator did not answer in time",
        )),
    }
}

/// The newest synthesis snapshot.
#[utoipa::path(get, path = "/api/v1/synthesis/latest", tag = "memory",
    responses((status = 200, body = SynthesisSnapshot), (status = 404, body = Problem)))]
pub async fn latest_synthesis(
    _access: ReadAccess,
    State(state): State<AppState>,
) -> ApiResult<Json<SynthesisSnapshot>> {
    match state.ctx.store.latest_snapshot().await? {
        Some(snapshot) => Ok(Json(snapshot)),
        None => Err(ApiError::not_found(
            "no synthesis snapshot yet; the first one is made after memory.sync_interval",
        )),
    }
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> Health {
    Health::live()
}

/// Readiness: the store answers, the queen answers, and every actor is healthy.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(state): State<AppState>) -> Health {
    let (mut ready, mut checks) = crate::health::dependency_checks(&state.ctx).await;
    match agents_from_queen(&state).await {
        Ok(agents) => {
            checks.insert("queen".into(), health::OK.into());
            let unhealthy: Vec<String> = agents
                .iter()
                .filter(|agent| agent.status != AgentStatus::Healthy)
                .map(|agent| agent.id.clone())
                .collect();
            // Every kind needs a healthy instance: a kind nobody has heard from is not ready.
            let missing: Vec<&str> = AgentKind::ALL
                .into_iter()
                .filter(|kind| {
                    !agents
                        .iter()
                        .any(|agent| agent.kind == *kind && agent.status == AgentStatus::Healthy)
                })
                .map(AgentKind::as_str)
                .collect();
            if !missing.is_empty() || !unhealthy.is_empty() {
                ready = false;
            }
            checks.insert(
                "agents".into(),
                serde_json::json!({ "total": agents.len(), "not_healthy": unhealthy, "missing_kinds": missing }),
            );
        }
        Err(_) => {
            ready = false;
            checks.insert("queen".into(), health::UNAVAILABLE.into());
        }
    }
    Health::readiness(ready, checks)
}

/// Issues a command to the swarm (admin key): restart or recreate actors, scale a worker kind,
/// drain or resume a node. It is stored as desired state and announced; every host applies it
/// at once or, if it missed the announcement, at its next heartbeat.
#[utoipa::path(post, path = "/api/v1/commands", tag = "commands", request_body = Command, security(("api_key" = [])),
    responses((status = 202, body = DesiredEntry), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_command(
    _access: AdminAccess,
    State(state): State<AppState>,
    input: Result<Json<Command>, JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let Json(command) = input?;
    let entry = crate::commands::issue(&state.ctx, &command).await?;
    tracing::info!(key = %entry.key, generation = entry.generation, "command stored");
    Ok((StatusCode::ACCEPTED, Json(entry)))
}

/// The desired state the swarm reconciles to (every command's latest value).
#[utoipa::path(get, path = "/api/v1/commands", tag = "commands",
    responses((status = 200, body = Vec<DesiredEntry>)))]
pub async fn list_commands(
    _access: ReadAccess,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<DesiredEntry>>> {
    Ok(Json(state.ctx.store.list_desired().await?))
}

/// Passing instances of one service in the registry.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceInstances {
    /// Service name (`tge-swarm-agent-keyword`).
    pub service: String,
    /// Instance ids (`node/agent`) whose health check passes.
    pub instances: Vec<String>,
    /// Metrics address of each instance, in the same order.
    pub metrics_addrs: Vec<Option<String>>,
}

/// Live instances of every swarm service, from the service registry (Consul in a distributed
/// swarm, in process otherwise).
#[utoipa::path(get, path = "/api/v1/instances", tag = "agents",
    responses((status = 200, body = Vec<ServiceInstances>), (status = 503, body = Problem)))]
pub async fn list_instances(
    _access: ReadAccess,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<ServiceInstances>>> {
    let mut out = Vec::new();
    for service in crate::queen::service_names() {
        let instances = state.ctx.registry.healthy(&service).await.map_err(|err| {
            tracing::warn!(%service, error = %err, "registry unavailable");
            ApiError::unavailable("the service registry is unavailable; try again shortly")
        })?;
        out.push(ServiceInstances {
            service,
            metrics_addrs: instances
                .iter()
                .map(|instance| instance.meta.get("metrics_addr").cloned())
                .collect(),
            instances: instances.into_iter().map(|instance| instance.id).collect(),
        });
    }
    Ok(Json(out))
}
