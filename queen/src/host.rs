//! The agent host: a ractor supervisor over this process's actors. ractor's default stops a
//! supervisor when a child dies; the host overrides that: a child that fails (panic or handler
//! error) or stops unexpectedly is restarted from its [`ChildSpec`] under the same identity
//! (so it takes back its pending work), after the delay the pure restart policy
//! ([`decide_restart`]) gives, and every step is published on `health-checks`.
//! Shutdown stops children in reverse start order, each with a timeout, then kills.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::Utc;
use futures::future::BoxFuture;
use ractor::{
    Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr, SupervisionEvent,
};
use rand::Rng;
use swarm_shared::context::AgentContext;
use swarm_shared::domain::AgentKind;
use swarm_shared::messages::{HealthMessage, LifecycleEvent};
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
}

/// State.
#[derive(Debug)]
pub struct HostState {
    ctx: AgentContext,
    children: Vec<Child>,
    stopping: bool,
}

async fn lifecycle(ctx: &AgentContext, child: &Child, event: LifecycleEvent) {
    let message = HealthMessage::Lifecycle {
        agent_id: child.spec.id.clone(),
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
            };
            lifecycle(&args.ctx, &child, LifecycleEvent::Started).await;
            children.push(child);
        }
        Ok(HostState {
            ctx: args.ctx,
            children,
            stopping: false,
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
                if state.children[index].cell.is_some() {
                    return Ok(());
                }
                let restarts = state.children[index].restarts + 1;
                let spawned = (state.children[index].spec.start)(myself.get_cell(), restarts).await;
                match spawned {
                    Ok(cell) => {
                        let child = &mut state.children[index];
                        child.cell = Some(cell);
                        child.restarts = restarts;
                        metrics::counter!(telemetry::ACTOR_RESTARTS_TOTAL, "kind" => child.spec.kind.as_str()).increment(1);
                        tracing::info!(agent = %child.spec.id, restarts, "actor restarted");
                        lifecycle(&state.ctx, child, LifecycleEvent::Started).await;
                    }
                    Err(err) => {
                        self.child_died(&myself, state, index, format!("restart failed: {err}"))
                            .await;
                    }
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
                    })
                    .collect();
                let _ = reply.send(statuses);
            }
            HostMsg::Shutdown(reply) => {
                state.stopping = true;
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
