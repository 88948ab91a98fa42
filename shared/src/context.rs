//! What every actor gets: handles to the ports, the configuration, its identity, and the
//! heartbeat bookkeeping that turns its counters into a [`HealthMessage`].

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use crate::config::Config;
use crate::domain::{AgentKind, Meta};
use crate::faults::FaultHooks;
use crate::messages::{AgentStats, HealthMessage};
use crate::ports::{Bus, Registry, ServiceInstance, Store, WorkQueue, publish};

/// Handles shared by every actor of a process.
#[derive(Clone)]
pub struct AgentContext {
    /// Pub/sub.
    pub bus: Arc<dyn Bus>,
    /// Work queues.
    pub queue: Arc<dyn WorkQueue>,
    /// Durable store.
    pub store: Arc<dyn Store>,
    /// Service registry.
    pub registry: Arc<dyn Registry>,
    /// Configuration, validated.
    pub config: Arc<Config>,
    /// Test fault hooks (consulted only in builds with the `fault-hooks` feature).
    pub faults: FaultHooks,
}

impl std::fmt::Debug for AgentContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentContext")
            .field("node", &self.config.node.name)
            .finish_non_exhaustive()
    }
}

/// Service name of an agent kind in the registry (`tge-swarm-agent-keyword`).
pub fn service_name(kind: AgentKind) -> String {
    match kind {
        AgentKind::Queen => "tge-swarm-queen".to_owned(),
        AgentKind::MemoryCoordinator => "tge-swarm-memory-coordinator".to_owned(),
        other => format!("tge-swarm-agent-{}", other.as_str()),
    }
}

impl AgentContext {
    /// Registry id of an agent on this node.
    pub fn instance_id(&self, agent_id: &str) -> String {
        format!("{}/{}", self.config.node.name, agent_id)
    }

    /// Registers an agent with a TTL of three heartbeats. Registry failures are logged, not
    /// fatal: the swarm keeps working without discovery.
    pub async fn register(&self, agent_id: &str, kind: AgentKind) {
        let mut meta = Meta::new();
        meta.insert("kind".into(), kind.as_str().into());
        meta.insert("node".into(), self.config.node.name.clone());
        meta.insert(
            "metrics_addr".into(),
            self.config.server.metrics_addr.to_string(),
        );
        let instance = ServiceInstance {
            id: self.instance_id(agent_id),
            service: service_name(kind),
            tags: vec!["tge-swarm".into(), kind.as_str().into()],
            meta,
        };
        let ttl =
            self.config.supervision.heartbeat_interval * self.config.supervision.missed_heartbeats;
        if let Err(err) = self.registry.register(&instance, ttl).await {
            tracing::warn!(agent = %agent_id, error = %err, "registry register failed");
        }
    }

    /// Deregisters an agent (clean stop).
    pub async fn deregister(&self, agent_id: &str) {
        if let Err(err) = self.registry.deregister(&self.instance_id(agent_id)).await {
            tracing::warn!(agent = %agent_id, error = %err, "registry deregister failed");
        }
    }

    /// An actor's clean-stop path: aborts its background tasks (bus forwarders, timers) and
    /// deregisters it.
    pub async fn release(&self, agent_id: &str, tasks: &mut Vec<tokio::task::JoinHandle<()>>) {
        for task in tasks.drain(..) {
            task.abort();
        }
        self.deregister(agent_id).await;
    }

    /// Publishes a heartbeat and passes the registry check.
    pub async fn heartbeat(&self, agent_id: &str, kind: AgentKind, stats: AgentStats) {
        let message = HealthMessage::Heartbeat {
            agent_id: agent_id.to_owned(),
            kind,
            at: Utc::now(),
            stats,
        };
        if let Err(err) = publish(self.bus.as_ref(), &message).await {
            tracing::warn!(agent = %agent_id, error = %err, "heartbeat publish failed");
        }
        if let Err(err) = self.registry.pass(&self.instance_id(agent_id)).await {
            tracing::debug!(agent = %agent_id, error = %err, "registry pass failed");
        }
    }
}

/// Counters of one actor between heartbeats.
#[derive(Debug, Clone)]
pub struct StatsWindow {
    processed_total: u64,
    errors_total: u64,
    window_items: u64,
    window_busy: Duration,
    window_start: Instant,
    queue: Option<String>,
    restarts: u32,
}

impl StatsWindow {
    /// A fresh window for an actor consuming `queue`, restarted `restarts` times so far.
    pub fn new(queue: Option<&str>, restarts: u32) -> Self {
        StatsWindow {
            processed_total: 0,
            errors_total: 0,
            window_items: 0,
            window_busy: Duration::ZERO,
            window_start: Instant::now(),
            queue: queue.map(str::to_owned),
            restarts,
        }
    }

    /// Records `items` processed in `busy` time.
    pub fn record(&mut self, items: u64, errors: u64, busy: Duration) {
        self.processed_total += items;
        self.errors_total += errors;
        self.window_items += items;
        self.window_busy += busy;
    }

    /// The snapshot to send, and a new window.
    pub fn snapshot(&mut self) -> AgentStats {
        let elapsed = self.window_start.elapsed().as_secs_f64().max(1e-3);
        let mean_latency_ms = if self.window_items == 0 {
            0.0
        } else {
            self.window_busy.as_secs_f64() * 1000.0 / self.window_items as f64
        };
        let stats = AgentStats {
            processed: self.processed_total,
            errors: self.errors_total,
            mean_latency_ms,
            throughput_per_s: self.window_items as f64 / elapsed,
            queue: self.queue.clone(),
            restarts: self.restarts,
        };
        self.window_items = 0;
        self.window_busy = Duration::ZERO;
        self.window_start = Instant::now();
        stats
    }
}

/// Forwards a bus channel into an actor's mailbox until either side closes. Undecodable
/// messages are logged and skipped.
pub async fn forward<T, M>(
    ctx: &AgentContext,
    channel: crate::channels::Channel,
    actor: ractor::ActorRef<M>,
    wrap: fn(T) -> M,
) -> crate::Result<tokio::task::JoinHandle<()>>
where
    T: for<'de> serde::Deserialize<'de> + Send + 'static,
    M: ractor::Message,
{
    use futures::StreamExt;
    let mut subscription = ctx.bus.subscribe(channel).await?;
    Ok(tokio::spawn(async move {
        while let Some(payload) = subscription.next().await {
            let message = match crate::messages::decode::<T>(&payload) {
                Ok(message) => message,
                Err(err) => {
                    tracing::warn!(%channel, error = %err, "undecodable bus message ignored");
                    continue;
                }
            };
            if actor.send_message(wrap(message)).is_err() {
                break;
            }
        }
    }))
}

/// Sends `heartbeat()` to the actor whenever a queen asks every actor to report
/// ([`crate::messages::QueenCommand::ReportHealth`]), for actors that ignore other commands.
pub async fn answer_report_health<M>(
    ctx: &AgentContext,
    actor: ractor::ActorRef<M>,
    heartbeat: fn() -> M,
) -> crate::Result<tokio::task::JoinHandle<()>>
where
    M: ractor::Message,
{
    use futures::StreamExt;
    let mut subscription = ctx
        .bus
        .subscribe(crate::channels::Channel::QueenCommands)
        .await?;
    Ok(tokio::spawn(async move {
        while let Some(payload) = subscription.next().await {
            let report = matches!(
                crate::messages::decode::<crate::messages::QueenCommand>(&payload),
                Ok(crate::messages::QueenCommand::ReportHealth)
            );
            if report && actor.send_message(heartbeat()).is_err() {
                break;
            }
        }
    }))
}
