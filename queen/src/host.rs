//! The agent host: a ractor supervisor over this process's actors. ractor's default stops a
//! supervisor when a child dies; the host overrides that with the pure policy engine
//! ([`decide`]): a child that fails (panic or handler error) or stops is restarted from its
//! [`ChildSpec`] under the same identity (so it takes back its pending work) after the policy's
//! backoff; when the restart budget is spent the child's breaker opens and the host alerts; after
//! the cooldown it climbs the ladder: RECREATE (a fresh instance), then FAILOVER (its pending
//! work released to peers, then a fresh instance), then ALERT_ONLY (left down for an operator).
//! Running children are probed every heartbeat tick, which closes a half-open breaker and resets
//! counters after `reset_after` healthy. Every decision is recorded ([`Recorder`]) and every
//! step published on `health-checks`. Shutdown stops children in reverse start order, each with
//! a timeout, then kills.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use futures::future::BoxFuture;
use ractor::{
    Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr, SupervisionEvent,
};
use rand::Rng;
use swarm_shared::channels::Channel;
use swarm_shared::commands::{HostAction, HostedActor, plan};
use swarm_shared::context::AgentContext;
use swarm_shared::domain::{ActionOutcome, AgentKind};
use swarm_shared::messages::{HealthMessage, LifecycleEvent, QueenCommand, decode};
use swarm_shared::ports::publish;
use swarm_shared::supervision::{
    Action, Breaker, BreakerChange, Exit, History, Observation, Policy, Symptom, decide,
};
use swarm_shared::telemetry;
use tokio::time::Instant;

use crate::record::Recorder;

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

async fn lifecycle(ctx: &AgentContext, child: &Child, event: LifecycleEvent) {
    let message = HealthMessage::Lifecycle {
        agent_id: child.spec.id.clone(),
        node: ctx.config.node.name.clone(),
        kind: child.spec.kind,
        event,
        restarts: child.restarts,
        at: Utc::now(),
    };
    if let Err(err) = publish(ctx.bus.as_ref(), &message).await {
        tracing::warn!(agent = %child.spec.id, error = %err, "lifecycle publish failed");
    }
}

/// Runs the policy on one observation of a child and stores its new history. Returns the
/// decision and how the child's breaker moved, if it did.
fn observe(
    state: &mut HostState,
    index: usize,
    observation: &Observation,
) -> (swarm_shared::supervision::Decision, Option<BreakerChange>) {
    let sample: f64 = rand::rng().random();
    let child = &mut state.children[index];
    let (decision, next) = decide(
        &child.history,
        observation,
        Instant::now(),
        &child.policy,
        sample,
    );
    let change = child.history.breaker.change_to(next.breaker);
    if next.breaker != child.history.breaker {
        state
            .recorder
            .breaker(&child.spec.id, child.spec.kind, next.breaker);
    }
    child.history = next;
    (decision, change)
}

/// Handles a child that died; acts on the policy's decision.
async fn child_died(
    myself: &ActorRef<HostMsg>,
    state: &mut HostState,
    index: usize,
    exit: Exit,
    reason: String,
) {
    state.children[index].cell = None;
    let (decision, _) = observe(state, index, &Observation::Exited(exit));
    let symptom = Symptom::from(exit);
    let child = &mut state.children[index];
    let id = child.spec.id.clone();
    match decision.action {
        Action::Restart => {
            tracing::warn!(agent = %id, delay = ?decision.delay, %reason, "actor died, restarting");
            let event = LifecycleEvent::Failed {
                reason: reason.clone(),
                delay_ms: decision.delay.as_millis() as u64,
            };
            child.pending = Some(PendingRestart {
                symptom,
                reason: format!("{reason}; {}", decision.reason),
            });
            lifecycle(&state.ctx, child, event).await;
            myself.send_after(decision.delay, move || HostMsg::Restart(id));
        }
        Action::AlertOnly => {
            metrics::counter!(telemetry::ACTOR_GIVEUPS_TOTAL, "kind" => child.spec.kind.as_str())
                .increment(1);
            let full = format!("{reason}; {}", decision.reason);
            state.recorder.record(
                &id,
                child.spec.kind,
                symptom,
                Action::AlertOnly,
                ActionOutcome::Succeeded,
                &full,
            );
            lifecycle(&state.ctx, child, LifecycleEvent::GaveUp { reason: full }).await;
            if let Some(after) = decision.retry_after {
                myself.send_after(after, move || HostMsg::CooldownElapsed(id));
            }
        }
        _ => {
            tracing::info!(agent = %id, %reason, decision = %decision.reason, "actor ended; not restarted");
            lifecycle(&state.ctx, child, LifecycleEvent::Stopped).await;
        }
    }
}

/// The breaker's cooldown is over: the next rung (recreate, failover, alert only).
async fn cooldown_elapsed(myself: &ActorRef<HostMsg>, state: &mut HostState, index: usize) {
    let (decision, _) = observe(state, index, &Observation::CooldownElapsed);
    let child = &state.children[index];
    let (id, kind) = (child.spec.id.clone(), child.spec.kind);
    match decision.action {
        Action::Recreate => {
            let outcome = recreate(myself, state, index).await;
            let reason = match &outcome {
                Ok(()) => format!("{}; a fresh instance started", decision.reason),
                Err(err) => format!(
                    "{}; the fresh instance failed to start: {err}",
                    decision.reason
                ),
            };
            state.recorder.record(
                &id,
                kind,
                Symptom::CooldownElapsed,
                Action::Recreate,
                outcome_of(&outcome),
                &reason,
            );
        }
        Action::Failover => {
            let released = release_pending(state, index).await;
            let outcome = match released {
                Ok(count) => recreate(myself, state, index)
                    .await
                    .map(|()| count)
                    .map_err(|err| ChildError::Restart {
                        released: count,
                        source: Box::new(err),
                    }),
                Err(err) => Err(err),
            };
            let holds_work = state.children[index].spec.queue.is_some();
            let reason = match &outcome {
                Ok(count) if holds_work => format!(
                    "{}; {count} pending item(s) released to peers, a fresh instance started with none",
                    decision.reason
                ),
                Ok(_) => format!(
                    "{}; it holds no queued work, a fresh instance started",
                    decision.reason
                ),
                Err(err) => format!("{}; {err}", decision.reason),
            };
            state.recorder.record(
                &id,
                kind,
                Symptom::CooldownElapsed,
                Action::Failover,
                outcome_of(&outcome),
                &reason,
            );
        }
        Action::AlertOnly => {
            state.recorder.record(
                &id,
                kind,
                Symptom::CooldownElapsed,
                Action::AlertOnly,
                ActionOutcome::Succeeded,
                &format!("{}; {id} stays down", decision.reason),
            );
        }
        _ => {
            if let Some(after) = decision.retry_after {
                myself.send_after(after, move || HostMsg::CooldownElapsed(id));
            }
        }
    }
}

fn outcome_of<T, E>(result: &Result<T, E>) -> ActionOutcome {
    if result.is_ok() {
        ActionOutcome::Succeeded
    } else {
        ActionOutcome::Failed
    }
}

/// Why the host could not carry out an action on a child.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// Its actor did not start.
    #[error("start failed: {0}")]
    Start(#[source] ractor::SpawnErr),
    /// Its pending work could not be made claimable by its peers.
    #[error("releasing its pending work failed: {0}")]
    Release(#[source] swarm_shared::Error),
    /// Failover released its work, then the fresh instance did not start.
    #[error(
        "released {released} pending item(s), but the fresh instance failed to start: {source}"
    )]
    Restart {
        /// Items released to the peers.
        released: u64,
        /// Why it did not start.
        #[source]
        source: Box<ChildError>,
    },
}

/// Failover's first half: the child's pending items become claimable by its peers at once.
async fn release_pending(state: &HostState, index: usize) -> Result<u64, ChildError> {
    let child = &state.children[index];
    let Some(queue) = child.spec.queue else {
        return Ok(0);
    };
    let consumer = state.ctx.instance_id(&child.spec.id);
    state
        .ctx
        .queue
        .release(queue, &consumer)
        .await
        .map_err(ChildError::Release)
}

/// Stops a child (if running) and starts a fresh instance: a new actor whose state is rebuilt
/// from the store, registered anew, with a fresh restart count.
async fn recreate(
    myself: &ActorRef<HostMsg>,
    state: &mut HostState,
    index: usize,
) -> Result<(), ChildError> {
    let timeout = state.ctx.config.supervision.stop_timeout;
    let child = &mut state.children[index];
    stop_child(child, timeout, "recreate").await;
    state.ctx.deregister(&child.spec.id).await;
    child.restarts = 0;
    child.pending = None;
    start_child(myself, state, index, Start::Fresh).await
}

/// Sends `Reconcile` whenever the queen announces a desired-state change, and arms faults
/// announced by `POST /api/v1/faults` (when this process has fault injection on).
async fn listen_to_commands(
    ctx: &AgentContext,
    host: ActorRef<HostMsg>,
) -> Result<tokio::task::JoinHandle<()>, ActorProcessingErr> {
    use futures::StreamExt;
    let mut subscription = ctx.bus.subscribe(Channel::QueenCommands).await?;
    let faults = ctx.faults.clone();
    let node = ctx.config.node.name.clone();
    Ok(tokio::spawn(async move {
        while let Some(payload) = subscription.next().await {
            match decode::<QueenCommand>(&payload) {
                Ok(QueenCommand::DesiredStateChanged)
                    if host.send_message(HostMsg::Reconcile).is_err() =>
                {
                    break;
                }
                Ok(QueenCommand::InjectFault {
                    target,
                    fault,
                    count,
                }) if faults.enabled() => {
                    // `node/agent` targets one process's agent; a bare id or kind, every
                    // process's.
                    let target = match target.split_once('/') {
                        Some((on, agent)) if on == node => agent.to_owned(),
                        Some(_) => continue,
                        None => target,
                    };
                    if let Err(err) = faults.arm(&target, fault, count) {
                        tracing::warn!(%target, error = %err, "arming a fault failed");
                    } else {
                        tracing::warn!(%target, fault = fault.as_str(), count, "fault armed");
                    }
                }
                _ => {}
            }
        }
    }))
}

/// Stops a child's actor (if running) and waits for it, so the supervision event that
/// follows finds no running child and is ignored. A child that does not stop in time (hung)
/// is killed, which ends even a handler that never returns.
async fn stop_child(child: &mut Child, timeout: std::time::Duration, reason: &str) {
    let Some(cell) = child.cell.take() else {
        return;
    };
    if cell
        .stop_and_wait(Some(reason.to_owned()), Some(timeout))
        .await
        .is_err()
    {
        tracing::warn!(agent = %child.spec.id, "actor did not stop in time, killing");
        let _ = cell.kill_and_wait(Some(timeout)).await;
    }
}

/// How a child is (re)started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Started for the first time, resumed after a drain, or recreated (counters as they are).
    Fresh,
    /// Restarted under the same identity: counted in its restarts and in the metric.
    Restart,
}

/// Starts a child's actor now; on failure the usual policy takes over. The one path the
/// supervisor's restarts, the ladder and queen commands use. A restart the policy decided is
/// recorded here, once its outcome is known.
async fn start_child(
    myself: &ActorRef<HostMsg>,
    state: &mut HostState,
    index: usize,
    how: Start,
) -> Result<(), ChildError> {
    let child = &mut state.children[index];
    if how == Start::Restart {
        child.restarts += 1;
        metrics::counter!(telemetry::ACTOR_RESTARTS_TOTAL, "kind" => child.spec.kind.as_str())
            .increment(1);
        tracing::info!(agent = %child.spec.id, restarts = child.restarts, "restarting actor");
    }
    let pending = child.pending.take();
    let started = (child.spec.start)(myself.get_cell(), child.restarts).await;
    let child = &mut state.children[index];
    let outcome = match &started {
        Ok(_) => ActionOutcome::Succeeded,
        Err(_) => ActionOutcome::Failed,
    };
    if let Some(pending) = pending {
        let reason = match &started {
            Ok(_) => pending.reason,
            Err(err) => format!("{}; start failed: {err}", pending.reason),
        };
        state.recorder.record(
            &child.spec.id,
            child.spec.kind,
            pending.symptom,
            Action::Restart,
            outcome,
            &reason,
        );
    }
    match started {
        Ok(cell) => {
            child.cell = Some(cell);
            lifecycle(&state.ctx, child, LifecycleEvent::Started).await;
            Ok(())
        }
        Err(err) => {
            let err = ChildError::Start(err);
            Box::pin(child_died(
                myself,
                state,
                index,
                Exit::Error,
                err.to_string(),
            ))
            .await;
            Err(err)
        }
    }
}

/// Reads the desired state and applies the planner's actions. A store failure skips this
/// round: the next heartbeat tries again.
async fn reconcile(myself: &ActorRef<HostMsg>, state: &mut HostState) {
    let desired = match state.ctx.store.list_desired().await {
        Ok(desired) => desired,
        Err(err) => {
            tracing::debug!(error = %err, "reading desired state failed; retrying next tick");
            return;
        }
    };
    let actors: Vec<HostedActor> = state
        .children
        .iter()
        .map(|child| HostedActor {
            id: child.spec.id.clone(),
            kind: child.spec.kind,
            drained: child.drained,
        })
        .collect();
    let first = !state.reconciled_once;
    state.reconciled_once = true;
    let node = state.ctx.config.node.name.clone();
    let actions = plan(&desired, &node, &actors, &mut state.applied, first);
    let timeout = state.ctx.config.supervision.stop_timeout;
    for action in actions {
        tracing::info!(action = action.label(), ?action, "applying queen command");
        metrics::counter!(telemetry::COMMANDS_APPLIED_TOTAL, "action" => action.label())
            .increment(1);
        let position = |id: &str| state.children.iter().position(|c| c.spec.id == id);
        match action {
            HostAction::Restart(id) => {
                let Some(index) = position(&id) else { continue };
                observe(state, index, &Observation::Manual(Action::Restart));
                stop_child(&mut state.children[index], timeout, "restart command").await;
                let _ = start_child(myself, state, index, Start::Restart).await;
            }
            HostAction::Recreate(id) => {
                let Some(index) = position(&id) else { continue };
                observe(state, index, &Observation::Manual(Action::Recreate));
                let _ = recreate(myself, state, index).await;
            }
            HostAction::Start(kind, number) => {
                let Some(spec) = state.workers.make(&state.ctx, kind, number) else {
                    continue;
                };
                state.children.push(Child::new(spec, None, &state.ctx));
                let index = state.children.len() - 1;
                let _ = start_child(myself, state, index, Start::Fresh).await;
            }
            HostAction::Remove(id) => {
                let Some(index) = position(&id) else { continue };
                let mut child = state.children.remove(index);
                stop_child(&mut child, timeout, "scaled down").await;
                lifecycle(&state.ctx, &child, LifecycleEvent::Stopped).await;
            }
            HostAction::Drain(id) => {
                let Some(index) = position(&id) else { continue };
                let child = &mut state.children[index];
                child.drained = true;
                stop_child(child, timeout, "drained").await;
                lifecycle(&state.ctx, child, LifecycleEvent::Stopped).await;
            }
            HostAction::Resume(id) => {
                let Some(index) = position(&id) else { continue };
                state.children[index].drained = false;
                let _ = start_child(myself, state, index, Start::Fresh).await;
            }
        }
    }
}

/// A liveness probe of every running child: closes half-open breakers and, after
/// `reset_after` healthy, resets counters.
fn probe_children(state: &mut HostState) {
    for index in 0..state.children.len() {
        if state.children[index].cell.is_some() {
            let (decision, change) = observe(state, index, &Observation::Probe { healthy: true });
            if change == Some(BreakerChange::Closed) {
                tracing::info!(agent = %state.children[index].spec.id, "{}", decision.reason);
            }
        }
    }
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
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use futures::{FutureExt, StreamExt};
    use ractor::{Actor, ActorProcessingErr, ActorRef, ActorStatus};
    use swarm_shared::channels::Channel;
    use swarm_shared::config::Config;
    use swarm_shared::context::AgentContext;
    use swarm_shared::domain::AgentKind;
    use swarm_shared::faults::FaultHooks;
    use swarm_shared::messages::{HealthMessage, LifecycleEvent, decode};
    use swarm_shared::ports::embedded_bus::EmbeddedBus;
    use swarm_shared::ports::embedded_queue::EmbeddedQueue;
    use swarm_shared::ports::embedded_registry::EmbeddedRegistry;
    use swarm_shared::ports::sqlite::SqliteStore;
    use tokio::sync::mpsc;

    use super::{AgentHost, ChildSpec, HostArgs, HostMsg};

    /// A child that panics when told to.
    struct Crashy;

    enum CrashyMsg {
        Crash,
        Stop,
    }

    impl Actor for Crashy {
        type Msg = CrashyMsg;
        type State = ();
        type Arguments = mpsc::UnboundedSender<ActorRef<CrashyMsg>>;

        async fn pre_start(
            &self,
            myself: ActorRef<CrashyMsg>,
            started: Self::Arguments,
        ) -> Result<(), ActorProcessingErr> {
            let _ = started.send(myself);
            Ok(())
        }

        async fn handle(
            &self,
            myself: ActorRef<CrashyMsg>,
            message: CrashyMsg,
            _state: &mut (),
        ) -> Result<(), ActorProcessingErr> {
            match message {
                CrashyMsg::Crash => panic!("crashy was told to crash"),
                CrashyMsg::Stop => {
                    myself.stop(Some("done".into()));
                    Ok(())
                }
            }
        }
    }

    async fn context(dir: &tempfile::TempDir) -> AgentContext {
        let mut config = Config::embedded_default().unwrap();
        config.node.name = "host-test".into();
        // No reconcile tick during the test (the test sends its own), short policy timings.
        config.supervision.heartbeat_interval = Duration::from_secs(86_400);
        config.supervision.policy.backoff_base = Duration::from_millis(10);
        config.supervision.policy.cooldown = Duration::from_millis(300);
        AgentContext {
            bus: Arc::new(EmbeddedBus::new(1024)),
            queue: Arc::new(EmbeddedQueue::new(Duration::from_secs(60))),
            store: Arc::new(
                SqliteStore::open(&dir.path().join("host.sqlite"))
                    .await
                    .unwrap(),
            ),
            registry: Arc::new(EmbeddedRegistry::new()),
            config: Arc::new(config),
            faults: FaultHooks::default(),
        }
    }

    #[tokio::test]
    async fn restarts_with_backoff_then_cools_down_and_never_dies_itself() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(&dir).await;
        let mut health = ctx.bus.subscribe(Channel::HealthChecks).await.unwrap();
        let (started_tx, mut started_rx) = mpsc::unbounded_channel();
        let spec = ChildSpec {
            id: "crashy-0".into(),
            kind: AgentKind::Keyword,
            queue: None,
            start: Arc::new(move |supervisor, _restarts| {
                let started = started_tx.clone();
                async move {
                    let (actor, _) = Actor::spawn_linked(None, Crashy, started, supervisor).await?;
                    Ok(actor.get_cell())
                }
                .boxed()
            }),
        };
        let (host, _) = Actor::spawn(
            None,
            AgentHost,
            HostArgs {
                ctx: ctx.clone(),
                children: vec![spec],
                workers: super::WorkerFactory::new(|_: &AgentContext, _: AgentKind, _: u32| None),
            },
        )
        .await
        .unwrap();

        let mut next_lifecycle = async || loop {
            let payload = health.next().await.unwrap();
            if let HealthMessage::Lifecycle {
                event, restarts, ..
            } = decode::<HealthMessage>(&payload).unwrap()
            {
                return (event, restarts);
            }
        };
        assert_eq!(next_lifecycle().await.0, LifecycleEvent::Started);

        // Three crashes: restarted after the backoff base, doubled each time (±20 %), the host
        // unaffected.
        for (attempt, base_ms) in [(1u32, 10u64), (2, 20), (3, 40)] {
            let child = started_rx.recv().await.unwrap();
            child.send_message(CrashyMsg::Crash).unwrap();
            let (event, _) = next_lifecycle().await;
            let LifecycleEvent::Failed { delay_ms, reason } = event else {
                panic!("expected a failure, got {event:?}")
            };
            assert!(reason.contains("crash"), "{reason}");
            let low = base_ms * 8 / 10;
            let high = base_ms * 12 / 10;
            assert!(
                (low..=high).contains(&delay_ms),
                "attempt {attempt}: delay {delay_ms} ms"
            );
            let (event, restarts) = next_lifecycle().await;
            assert_eq!(event, LifecycleEvent::Started);
            assert_eq!(restarts, attempt);
            assert_eq!(host.get_status(), ActorStatus::Running);
        }

        // The fourth crash within the window spends the budget: the breaker opens (an alert),
        // and after the cooldown the half-open attempt is a fresh instance (RECREATE).
        let child = started_rx.recv().await.unwrap();
        child.send_message(CrashyMsg::Crash).unwrap();
        let (event, _) = next_lifecycle().await;
        let LifecycleEvent::GaveUp { reason } = event else {
            panic!("expected the breaker to open, got {event:?}")
        };
        assert!(reason.contains("breaker open"), "{reason}");
        let before = tokio::time::Instant::now();
        let (event, restarts) = next_lifecycle().await;
        assert_eq!(event, LifecycleEvent::Started);
        assert_eq!(restarts, 0, "a recreated child starts with a fresh count");
        assert!(
            before.elapsed() >= Duration::from_millis(300),
            "recreated only after the cooldown"
        );

        // Two healthy probes (one per heartbeat tick) close the half-open breaker.
        for _ in 0..2 {
            host.send_message(HostMsg::Reconcile).unwrap();
        }
        // (A call queues behind them: once answered, both probes are in.)
        host.call(HostMsg::Children, None).await.unwrap().unwrap();
        // A permanent child that stops on its own is restarted too, and the host lives on.
        let child = started_rx.recv().await.unwrap();
        child.send_message(CrashyMsg::Stop).unwrap();
        let (event, _) = next_lifecycle().await;
        assert!(matches!(event, LifecycleEvent::Failed { .. }), "{event:?}");
        let (event, restarts) = next_lifecycle().await;
        assert_eq!(event, LifecycleEvent::Started);
        assert_eq!(restarts, 1);
        assert_eq!(host.get_status(), ActorStatus::Running);

        let children = host.call(HostMsg::Children, None).await.unwrap().unwrap();
        assert_eq!(children.len(), 1);
        assert!(children[0].running);
        assert_eq!(children[0].restarts, 1);

        // Every decision is in the store: three restarts, the alert, the recreate, the restart.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let actions = ctx
            .store
            .list_supervisor_actions(&swarm_shared::domain::SupervisorActionQuery {
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        let names: Vec<&str> = actions.iter().rev().map(|a| a.action.as_str()).collect();
        assert_eq!(
            names,
            [
                "restart",
                "restart",
                "restart",
                "alert_only",
                "recreate",
                "restart"
            ]
        );
        assert!(actions.iter().all(|a| a.component == "crashy-0"));

        host.call(HostMsg::Shutdown, None).await.unwrap().unwrap();
        assert_eq!(next_lifecycle().await.0, LifecycleEvent::Stopped);
        let children = host.call(HostMsg::Children, None).await.unwrap().unwrap();
        assert!(!children[0].running, "stopped children are not restarted");
        host.stop(None);
    }
}
