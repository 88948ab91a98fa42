//! Which actors a role runs, as child specs for the host: the workers, the queen, the
//! supervisor, the memory coordinator and the specialist agents.

use crate::host::{ChildSpec, StartFn};
use crate::names::{memory_name, queen_name};
use crate::queen::{QUEEN_ID, QueenActor, QueenArgs};
use crate::supervisor::{HealthSupervisor, SUPERVISOR_ID, SupervisorArgs};
use futures::FutureExt;
use memory_coordinator::{MemoryArgs, MemoryCoordinatorActor};
use ractor::{Actor, ActorCell};
use std::sync::Arc;
use swarm_agents::api_reliability::{ApiReliabilityActor, ApiReliabilityArgs};
use swarm_agents::data_quality::DataQualityActor;
use swarm_agents::keyword::KeywordActor;
use swarm_agents::performance::{PerformanceActor, PerformanceArgs};
use swarm_agents::scraping::ScrapingActor;
use swarm_agents::worker::WorkerArgs;
use swarm_shared::context::AgentContext;
use swarm_shared::domain::AgentKind;

use super::*;

/// A child spec. `args` builds the actor's start arguments from its restart count; `name`, if
/// given, registers the actor under that ractor name (for actors the API looks up).
pub(super) fn spec<A, F>(id: &str, kind: AgentKind, name: Option<String>, args: F) -> ChildSpec
where
    A: Actor + Default,
    F: Fn(u32) -> A::Arguments + Send + Sync + 'static,
{
    let start: StartFn = Arc::new(move |supervisor: ActorCell, restarts: u32| {
        let arguments = args(restarts);
        let name = name.clone();
        async move {
            let (actor, _) = A::spawn_linked(name, A::default(), arguments, supervisor).await?;
            Ok(actor.get_cell())
        }
        .boxed()
    });
    ChildSpec {
        id: id.to_owned(),
        kind,
        queue: swarm_shared::channels::queue_of(kind),
        start,
    }
}

pub(super) fn worker_spec<A>(id: String, kind: AgentKind, ctx: &AgentContext) -> ChildSpec
where
    A: Actor<Arguments = WorkerArgs> + Default,
{
    let ctx = ctx.clone();
    let agent_id = id.clone();
    spec::<A, _>(&id, kind, None, move |restarts| WorkerArgs {
        agent_id: agent_id.clone(),
        ctx: ctx.clone(),
        restarts,
    })
}

/// The children of a process of `role`, in start order (consumers before producers, the
/// queen last so nothing is scheduled before it can be processed).
pub fn children_for(ctx: &AgentContext, role: Role) -> Vec<ChildSpec> {
    children(ctx)
        .into_iter()
        .filter(|spec| role.runs(spec.kind))
        .collect()
}

/// The spec of the `index`-th worker of a scalable kind (scraping, keyword, data quality).
pub fn worker_child(ctx: &AgentContext, kind: AgentKind, index: u32) -> Option<ChildSpec> {
    let id = format!("{kind}-{index}");
    match kind {
        AgentKind::DataQuality => Some(worker_spec::<DataQualityActor>(id, kind, ctx)),
        AgentKind::Keyword => Some(worker_spec::<KeywordActor>(id, kind, ctx)),
        AgentKind::Scraping => Some(worker_spec::<ScrapingActor>(id, kind, ctx)),
        _ => None,
    }
}

/// The children of an all-in-one process, in start order.
pub fn children(ctx: &AgentContext) -> Vec<ChildSpec> {
    let node = ctx.config.node.name.clone();
    let mut specs = Vec::new();

    let memory_ctx = ctx.clone();
    specs.push(spec::<MemoryCoordinatorActor, _>(
        "memory-coordinator",
        AgentKind::MemoryCoordinator,
        Some(memory_name(&node)),
        move |restarts| MemoryArgs {
            agent_id: "memory-coordinator".into(),
            ctx: memory_ctx.clone(),
            restarts,
        },
    ));
    let reliability_ctx = ctx.clone();
    specs.push(spec::<ApiReliabilityActor, _>(
        "api-reliability-0",
        AgentKind::ApiReliability,
        None,
        move |restarts| ApiReliabilityArgs {
            agent_id: "api-reliability-0".into(),
            ctx: reliability_ctx.clone(),
            restarts,
        },
    ));
    let performance_ctx = ctx.clone();
    specs.push(spec::<PerformanceActor, _>(
        "performance-0",
        AgentKind::Performance,
        None,
        move |restarts| PerformanceArgs {
            agent_id: "performance-0".into(),
            ctx: performance_ctx.clone(),
            restarts,
        },
    ));
    for kind in [
        AgentKind::DataQuality,
        AgentKind::Keyword,
        AgentKind::Scraping,
    ] {
        for index in 0..ctx.config.replicas(kind) {
            specs.extend(worker_child(ctx, kind, index));
        }
    }
    let queen_ctx = ctx.clone();
    specs.push(spec::<QueenActor, _>(
        QUEEN_ID,
        AgentKind::Queen,
        Some(queen_name(&node)),
        move |restarts| QueenArgs {
            ctx: queen_ctx.clone(),
            restarts,
        },
    ));
    let supervisor_ctx = ctx.clone();
    specs.push(spec::<HealthSupervisor, _>(
        SUPERVISOR_ID,
        AgentKind::Queen,
        None,
        move |restarts| SupervisorArgs {
            ctx: supervisor_ctx.clone(),
            restarts,
        },
    ));
    specs
}
