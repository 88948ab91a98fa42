//! The agent host: a ractor supervisor over this process's actors. ractor's default stops a
//! supervisor when a child dies; the host overrides that: a child that fails (panic or handler
//! error) or stops unexpectedly is restarted from its [`ChildSpec`] under the same identity
//! (so it takes back its pending work), after the delay the pure restart policy
//! ([`decide_restart`]) gives, and every step is published on `health-checks`.
//! Shutdown stops children in reverse start order, each with a timeout, then kills.

use std::collections::{HashMap, VecDeque};
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
use swarm_shared::domain::AgentKind;
use swarm_shared::messages::{HealthMessage, LifecycleEvent, QueenCommand, decode};
use swarm_shared::ports::publish;
use swarm_shared::supervision::{RestartDecision, decide_restart, prune_history};
use swarm_shared::telemetry;
use tokio::time::Instant;

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
}

/// Messages.
#[derive(Debug)]
pub enum HostMsg {
    /// Respawn a child (sent by the host to itself after a backoff).
    Restart(String),
    /// Read the desired state and apply it (every heartbeat, and when announced).
    Reconcile,
    /// Status of every child.
    Children(RpcReplyPort<Vec<ChildStatus>>),
    /// Stop every child in reverse start order, then reply.
    Shutdown(RpcReplyPort<()>),
}

#[derive(Debug)]
struct Child {
    spec: ChildSpec,
    cell: Option<ActorCell>,
    restarts: u32,
    failures: VecDeque<Instant>,
    drained: bool,
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

impl AgentHost {
    /// Handles a child that died; schedules its restart per the policy.
    async fn child_died(
        &self,
        myself: &ActorRef<HostMsg>,
        state: &mut HostState,
        index: usize,
        reason: String,
    ) {
        let config = state.ctx.config.supervision.clone();
        let now = Instant::now();
        let child = &mut state.children[index];
        child.cell = None;
        prune_history(&mut child.failures, now, config.restart_window);
        let sample: f64 = rand::rng().random();
        let decision = decide_restart(&child.failures, now, &config, sample);
        child.failures.push_back(now);
        match decision {
            RestartDecision::Restart { delay, attempt } => {
                tracing::warn!(agent = %child.spec.id, attempt, ?delay, %reason, "actor died, restarting");
                let event = LifecycleEvent::Failed {
                    reason,
                    delay_ms: delay.as_millis() as u64,
                };
                lifecycle(&state.ctx, child, event).await;
                let id = child.spec.id.clone();
                myself.send_after(delay, move || HostMsg::Restart(id));
            }
            RestartDecision::Cooldown { cooldown } => {
                tracing::error!(agent = %child.spec.id, ?cooldown, %reason, "restart budget spent, cooling down");
                metrics::counter!(telemetry::ACTOR_GIVEUPS_TOTAL, "kind" => child.spec.kind.as_str()).increment(1);
                lifecycle(&state.ctx, child, LifecycleEvent::GaveUp { reason }).await;
                child.failures.clear();
                let id = child.spec.id.clone();
                myself.send_after(cooldown, move || HostMsg::Restart(id));
            }
        }
    }
}

/// Sends `Reconcile` whenever the queen announces a desired-state change.
async fn reconcile_on_announcement(
    ctx: &AgentContext,
    host: ActorRef<HostMsg>,
) -> Result<tokio::task::JoinHandle<()>, ActorProcessingErr> {
    use futures::StreamExt;
    let mut subscription = ctx.bus.subscribe(Channel::QueenCommands).await?;
    Ok(tokio::spawn(async move {
        while let Some(payload) = subscription.next().await {
            let changed = matches!(
                decode::<QueenCommand>(&payload),
                Ok(QueenCommand::DesiredStateChanged)
            );
            if changed && host.send_message(HostMsg::Reconcile).is_err() {
                break;
            }
        }
    }))
}

/// Stops a child's actor (if running) and waits for it, so the supervision event that
/// follows finds no running child and is ignored.
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
        cell.kill();
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

/// Starts a child's actor now; on failure the usual restart policy takes over. The one path
/// both the supervisor's backoff restarts and queen commands use.
async fn start_child(myself: &ActorRef<HostMsg>, state: &mut HostState, index: usize, how: Start) {
    let child = &mut state.children[index];
    if how == Start::Restart {
        child.restarts += 1;
        metrics::counter!(telemetry::ACTOR_RESTARTS_TOTAL, "kind" => child.spec.kind.as_str())
            .increment(1);
        tracing::info!(agent = %child.spec.id, restarts = child.restarts, "restarting actor");
    }
    match (child.spec.start)(myself.get_cell(), child.restarts).await {
        Ok(cell) => {
            let child = &mut state.children[index];
            child.cell = Some(cell);
            lifecycle(&state.ctx, child, LifecycleEvent::Started).await;
        }
        Err(err) => {
            AgentHost
                .child_died(myself, state, index, format!("start failed: {err}"))
                .await;
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
                stop_child(&mut state.children[index], timeout, "restart command").await;
                start_child(myself, state, index, Start::Restart).await;
            }
            HostAction::Recreate(id) => {
                let Some(index) = position(&id) else { continue };
                let child = &mut state.children[index];
                stop_child(child, timeout, "recreate command").await;
                child.restarts = 0;
                child.failures.clear();
                start_child(myself, state, index, Start::Fresh).await;
            }
            HostAction::Start(kind, number) => {
                let Some(spec) = crate::swarm::worker_child(&state.ctx, kind, number) else {
                    continue;
                };
                state.children.push(Child {
                    spec,
                    cell: None,
                    restarts: 0,
                    failures: VecDeque::new(),
                    drained: false,
                });
                let index = state.children.len() - 1;
                start_child(myself, state, index, Start::Fresh).await;
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
                start_child(myself, state, index, Start::Fresh).await;
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
            let child = Child {
                spec,
                cell: Some(cell),
                restarts: 0,
                failures: VecDeque::new(),
                drained: false,
            };
            lifecycle(&args.ctx, &child, LifecycleEvent::Started).await;
            children.push(child);
        }
        let mut tasks = vec![
            myself.send_interval(args.ctx.config.supervision.heartbeat_interval, || {
                HostMsg::Reconcile
            }),
        ];
        tasks.push(reconcile_on_announcement(&args.ctx, myself.clone()).await?);
        Ok(HostState {
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
                start_child(&myself, state, index, Start::Restart).await;
            }
            HostMsg::Reconcile => {
                if !state.stopping {
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
        let (cell, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, format!("failed: {err}")),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (
                cell,
                format!(
                    "stopped unexpectedly: {}",
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
        self.child_died(&myself, state, index, reason).await;
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
            _myself: ActorRef<CrashyMsg>,
            message: CrashyMsg,
            _state: &mut (),
        ) -> Result<(), ActorProcessingErr> {
            match message {
                CrashyMsg::Crash => panic!("crashy was told to crash"),
            }
        }
    }

    async fn context() -> AgentContext {
        let mut config = Config::embedded_default().unwrap();
        config.node.name = "host-test".into();
        // No reconcile tick during the test: it reads the store, whose thread would let
        // paused time jump ahead.
        config.supervision.heartbeat_interval = Duration::from_secs(86_400);
        AgentContext {
            bus: Arc::new(EmbeddedBus::new(1024)),
            queue: Arc::new(EmbeddedQueue::new(Duration::from_secs(60))),
            store: Arc::new(SqliteStore::in_memory().await.unwrap()),
            registry: Arc::new(EmbeddedRegistry::new()),
            config: Arc::new(config),
            faults: FaultHooks::default(),
        }
    }

    #[tokio::test]
    async fn restarts_with_backoff_then_cools_down_and_never_dies_itself() {
        // The store's pool opens on its own thread, so time is paused only once it is open.
        let ctx = context().await;
        tokio::time::pause();
        let mut health = ctx.bus.subscribe(Channel::HealthChecks).await.unwrap();
        let (started_tx, mut started_rx) = mpsc::unbounded_channel();
        let spec = ChildSpec {
            id: "crashy-0".into(),
            kind: AgentKind::Keyword,
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

        // Three crashes: restarted after 1 s, 2 s, 4 s (±20 %), the host unaffected.
        for (attempt, base_ms) in [(1u32, 1000u64), (2, 2000), (3, 4000)] {
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

        // The fourth crash within the window spends the budget: cooldown, then one more start.
        let child = started_rx.recv().await.unwrap();
        child.send_message(CrashyMsg::Crash).unwrap();
        let (event, _) = next_lifecycle().await;
        assert!(matches!(event, LifecycleEvent::GaveUp { .. }), "{event:?}");
        let before = tokio::time::Instant::now();
        let (event, restarts) = next_lifecycle().await;
        assert_eq!(event, LifecycleEvent::Started);
        assert_eq!(restarts, 4);
        assert!(
            before.elapsed() >= Duration::from_secs(300),
            "restarted only after the cooldown"
        );

        let children = host.call(HostMsg::Children, None).await.unwrap().unwrap();
        assert_eq!(children.len(), 1);
        assert!(children[0].running);
        assert_eq!(children[0].restarts, 4);

        host.call(HostMsg::Shutdown, None).await.unwrap().unwrap();
        assert_eq!(next_lifecycle().await.0, LifecycleEvent::Stopped);
        let children = host.call(HostMsg::Children, None).await.unwrap().unwrap();
        assert!(!children[0].running, "stopped children are not restarted");
        host.stop(None);
    }
}
