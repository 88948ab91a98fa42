//! The agent host: a ractor supervisor over this process's actors. ractor's default stops a
//! supervisor when a child dies; the host overrides that with the pure policy engine
//! ([`decide`]): a child that fails (panic or handler error) or stops is restarted from its
//! [`ChildSpec`] under the same identity (after a crash it takes back its pending work; a child
//! stopped gracefully handed it to the fail-over consumer as it stopped) after the policy's
//! backoff; when the restart budget is spent the child's breaker opens and the host alerts; after
//! the cooldown it climbs the ladder: RECREATE (a fresh instance), then FAILOVER (its pending
//! work released to peers, then a fresh instance), then ALERT_ONLY (left down for an operator).
//! Running children are probed every heartbeat tick, which closes a half-open breaker and resets
//! counters after `reset_after` healthy. Every decision is recorded ([`Recorder`]) and every
//! step published on `health-checks`. Shutdown stops children in reverse start order, each with
//! a timeout, then kills.

//!
//! Files: the host actor and its state here, the restart ladder in `ladder.rs`, desired
//! state and queen commands (fault arming included) in `reconcile.rs`.

mod ladder;
mod reconcile;

pub use ladder::ChildError;

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use ractor::{
    Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr, SupervisionEvent,
};

use swarm_shared::context::AgentContext;
use swarm_shared::domain::AgentKind;
use swarm_shared::messages::LifecycleEvent;

use swarm_shared::supervision::{Breaker, Exit, History, Policy, Symptom};

use crate::record::Recorder;

use ladder::*;
use reconcile::*;

/// Spawns a child linked to the given supervisor; the `u32` is its restart count so far.
pub type StartFn =
    Arc<dyn Fn(ActorCell, u32) -> BoxFuture<'static, Result<ActorCell, SpawnErr>> + Send + Sync>;

/// How to (re)start one child.
#[derive(Clone)]
pub struct ChildSpec {
    /// Agent id, stable across restarts (`keyword-0`).
    pub id: String,
    /// Its kind.
    pub kind: AgentKind,
    /// The work queue it consumes, if any (its pending items move on failover).
    pub queue: Option<&'static str>,
    /// Spawner.
    pub start: StartFn,
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish()
    }
}

/// A child's state as the host sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildStatus {
    /// Agent id.
    pub id: String,
    /// Kind.
    pub kind: AgentKind,
    /// Whether an actor is running for it now.
    pub running: bool,
    /// Restarts so far.
    pub restarts: u32,
    /// Stopped on purpose because its node is drained.
    pub drained: bool,
}

/// The host actor.
#[derive(Debug, Default)]
pub struct AgentHost;

/// Start arguments.
#[derive(Debug, Clone)]
pub struct HostArgs {
    /// Ports and config.
    pub ctx: AgentContext,
    /// Children in start order.
    pub children: Vec<ChildSpec>,
    /// Makes the spec of the `index`-th worker of a kind, for scale-ups; none for a kind that
    /// does not scale. Given by the composition root, so the host does not import it.
    pub workers: WorkerFactory,
}

/// See [`HostArgs::workers`]: makes the spec of the `index`-th worker of a kind.
#[derive(Clone)]
pub struct WorkerFactory(Arc<MakeWorker>);

type MakeWorker = dyn Fn(&AgentContext, AgentKind, u32) -> Option<ChildSpec> + Send + Sync;

impl WorkerFactory {
    /// Wraps the composition root's worker constructor.
    pub fn new(
        make: impl Fn(&AgentContext, AgentKind, u32) -> Option<ChildSpec> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(make))
    }

    /// The spec of the `index`-th worker of `kind`, if that kind scales.
    pub fn make(&self, ctx: &AgentContext, kind: AgentKind, index: u32) -> Option<ChildSpec> {
        (self.0)(ctx, kind, index)
    }
}

impl std::fmt::Debug for WorkerFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkerFactory")
    }
}

/// Messages.
#[derive(Debug)]
pub enum HostMsg {
    /// Respawn a child (sent by the host to itself after a backoff).
    Restart(String),
    /// An open breaker's cooldown is over: take the next rung of the ladder.
    CooldownElapsed(String),
    /// Read the desired state and apply it (every heartbeat, and when announced).
    Reconcile,
    /// Status of every child.
    Children(RpcReplyPort<Vec<ChildStatus>>),
    /// Stop every child in reverse start order, then reply.
    Shutdown(RpcReplyPort<()>),
}

/// A restart decided and not yet carried out: what was seen and why.
#[derive(Debug)]
struct PendingRestart {
    symptom: Symptom,
    reason: String,
}

#[derive(Debug)]
struct Child {
    spec: ChildSpec,
    cell: Option<ActorCell>,
    restarts: u32,
    policy: Policy,
    history: History,
    pending: Option<PendingRestart>,
    drained: bool,
}

impl Child {
    fn new(spec: ChildSpec, cell: Option<ActorCell>, ctx: &AgentContext) -> Child {
        let policy = ctx.config.supervision.policy(spec.kind);
        crate::record::breaker_gauge(&spec.id, spec.kind, Breaker::Closed);
        Child {
            spec,
            cell,
            restarts: 0,
            policy,
            history: History::default(),
            pending: None,
            drained: false,
        }
    }
}

/// State.
#[derive(Debug)]
pub struct HostState {
    ctx: AgentContext,
    children: Vec<Child>,
    stopping: bool,
    /// Generations of edge-triggered commands already applied.
    applied: HashMap<String, i64>,
    reconciled_once: bool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    recorder: Recorder,
    workers: WorkerFactory,
}

impl Actor for AgentHost {
    type Msg = HostMsg;
    type State = HostState;
    type Arguments = HostArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: HostArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut children = Vec::with_capacity(args.children.len());
        for spec in args.children {
            let cell = (spec.start)(myself.get_cell(), 0).await?;
            let child = Child::new(spec, Some(cell), &args.ctx);
            lifecycle(&args.ctx, &child, LifecycleEvent::Started).await;
            children.push(child);
        }
        let mut tasks = vec![
            myself.send_interval(args.ctx.config.supervision.heartbeat_interval, || {
                HostMsg::Reconcile
            }),
        ];
        tasks.push(listen_to_commands(&args.ctx, myself.clone()).await?);
        Ok(HostState {
            recorder: Recorder::new(&args.ctx),
            workers: args.workers,
            ctx: args.ctx,
            children,
            stopping: false,
            applied: HashMap::new(),
            reconciled_once: false,
            tasks,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            HostMsg::Restart(id) => {
                if state.stopping {
                    return Ok(());
                }
                let Some(index) = state.children.iter().position(|child| child.spec.id == id)
                else {
                    return Ok(());
                };
                if state.children[index].cell.is_some() || state.children[index].drained {
                    return Ok(());
                }
                let _ = start_child(&myself, state, index, Start::Restart).await;
            }
            HostMsg::CooldownElapsed(id) => {
                if state.stopping {
                    return Ok(());
                }
                let Some(index) = state.children.iter().position(|child| child.spec.id == id)
                else {
                    return Ok(());
                };
                if !state.children[index].drained {
                    cooldown_elapsed(&myself, state, index).await;
                }
            }
            HostMsg::Reconcile => {
                if !state.stopping {
                    probe_children(state);
                    reconcile(&myself, state).await;
                }
            }
            HostMsg::Children(reply) => {
                let statuses = state
                    .children
                    .iter()
                    .map(|child| ChildStatus {
                        id: child.spec.id.clone(),
                        kind: child.spec.kind,
                        running: child.cell.is_some(),
                        restarts: child.restarts,
                        drained: child.drained,
                    })
                    .collect();
                let _ = reply.send(statuses);
            }
            HostMsg::Shutdown(reply) => {
                state.stopping = true;
                for task in state.tasks.drain(..) {
                    task.abort();
                }
                let timeout = state.ctx.config.supervision.stop_timeout;
                for child in state.children.iter_mut().rev() {
                    let Some(cell) = child.cell.take() else {
                        continue;
                    };
                    if cell
                        .stop_and_wait(Some("shutdown".into()), Some(timeout))
                        .await
                        .is_err()
                    {
                        tracing::warn!(agent = %child.spec.id, "actor did not stop in time, killing");
                        cell.kill();
                    }
                    lifecycle(&state.ctx, child, LifecycleEvent::Stopped).await;
                }
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // ractor reports a panic and a handler error alike (`ActorFailed` with the message),
        // and the policy treats them alike; the reason keeps the message.
        let (cell, exit, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => {
                (cell, Exit::Error, format!("failed: {err}"))
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => (
                cell,
                Exit::Normal,
                format!(
                    "stopped on its own: {}",
                    reason.unwrap_or_else(|| "no reason".into())
                ),
            ),
            _ => return Ok(()),
        };
        if state.stopping {
            return Ok(());
        }
        let id = cell.get_id();
        let Some(index) = state.children.iter().position(|child| {
            child
                .cell
                .as_ref()
                .is_some_and(|running| running.get_id() == id)
        }) else {
            return Ok(());
        };
        child_died(&myself, state, index, exit, reason).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
