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
    /// Armed faults (see [`crate::faults`]); inert unless fault injection is on.
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

/// The `host:port` at which peers reach a process's metrics server: its registered metrics
/// address, with the node name as host when the process listens on every interface
/// (`0.0.0.0`), as in the Compose stack where the node name is the container's host name.
/// `None` when the address does not parse.
pub fn metrics_endpoint(node: &str, metrics_addr: &str) -> Option<String> {
    let addr: std::net::SocketAddr = metrics_addr.parse().ok()?;
    if addr.ip().is_unspecified() {
        return Some(format!("{node}:{}", addr.port()));
    }
    // SocketAddr's own form brackets an IPv6 address.
    Some(addr.to_string())
}

impl AgentContext {
    /// Registry id of an agent on this node.
    pub fn instance_id(&self, agent_id: &str) -> String {
        format!("{}/{}", self.config.node.name, agent_id)
    }

    /// How long an actor counts as alive after its last heartbeat: `missed_heartbeats`
    /// intervals. The registry check's TTL and the metrics snapshot's expiry.
    fn liveness_ttl(&self) -> Duration {
        crate::time::times(
            self.config.supervision.heartbeat_interval,
            self.config.supervision.missed_heartbeats,
        )
    }

    /// Registers an agent with a TTL of three heartbeats, in the background: a slow or
    /// unreachable registry never delays an actor. Failures are logged, not fatal (the swarm
    /// keeps working without discovery, and the Consul adapter registers again at a later
    /// pass).
    pub(crate) async fn register(&self, agent_id: &str, kind: AgentKind) {
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
        let ttl = self.liveness_ttl();
        let registry = self.registry.clone();
        let agent = agent_id.to_owned();
        tokio::spawn(async move {
            if let Err(err) = registry.register(&instance, ttl).await {
                tracing::warn!(%agent, error = %err, "registry register failed");
            }
        });
    }

    /// Deregisters an agent (clean stop), waiting at most a second: a registry that does not
    /// answer lets the TTL check lapse and deregisters the instance itself.
    pub async fn deregister(&self, agent_id: &str) {
        let id = self.instance_id(agent_id);
        let deregister = self.registry.deregister(&id);
        match tokio::time::timeout(Duration::from_secs(1), deregister).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(agent = %agent_id, error = %err, "registry deregister failed");
            }
            Err(_) => tracing::warn!(agent = %agent_id, "registry deregister timed out"),
        }
    }

    /// Publishes a heartbeat and passes the registry check.
    pub(crate) async fn heartbeat(&self, agent_id: &str, kind: AgentKind, stats: AgentStats) {
        let key = format!(
            "{}{}",
            crate::channels::METRICS_KEY_PREFIX,
            self.instance_id(agent_id)
        );
        let ttl = self.liveness_ttl();
        match crate::messages::encode(&stats) {
            Ok(snapshot) => {
                if let Err(err) = self.bus.put_key(&key, snapshot, ttl).await {
                    tracing::debug!(agent = %agent_id, error = %err, "metrics snapshot write failed");
                }
            }
            Err(err) => {
                tracing::warn!(agent = %agent_id, error = %err, "metrics snapshot encoding failed")
            }
        }
        let message = HealthMessage::Heartbeat {
            agent_id: agent_id.to_owned(),
            node: self.config.node.name.clone(),
            kind,
            at: Utc::now(),
            stats,
            metrics_addr: Some(self.config.server.metrics_addr.to_string()),
        };
        if let Err(err) = publish(self.bus.as_ref(), &message).await {
            tracing::warn!(agent = %agent_id, error = %err, "heartbeat publish failed");
        }
        // In the background, like registration: the heartbeat itself never waits on the
        // registry.
        let registry = self.registry.clone();
        let id = self.instance_id(agent_id);
        tokio::spawn(async move {
            if let Err(err) = registry.pass(&id).await {
                tracing::debug!(instance = %id, error = %err, "registry pass failed");
            }
        });
    }
}

/// Counters of one actor between heartbeats.
#[derive(Debug, Clone)]
pub struct StatsWindow {
    processed_total: u64,
    errors_total: u64,
    busy_total: Duration,
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
            busy_total: Duration::ZERO,
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
        self.busy_total += busy;
        self.window_items += items;
        self.window_busy += busy;
    }

    /// Time spent working since start.
    pub fn busy(&self) -> Duration {
        self.busy_total
    }

    /// Adds time spent working on nothing [`StatsWindow::record`] counts: a worker's taking,
    /// decoding and acknowledging around its batches.
    pub fn worked(&mut self, busy: Duration) {
        self.busy_total += busy;
    }

    /// The snapshot to send, and a new window.
    pub fn snapshot(&mut self) -> AgentStats {
        let elapsed = self.window_start.elapsed().as_secs_f64().max(1e-3);
        let mean_latency_ms = if self.window_items == 0 {
            0.0
        } else {
            self.window_busy.as_secs_f64() * 1000.0 / self.window_items as f64
        };
        let load = crate::procstat::process_load();
        let stats = AgentStats {
            processed: self.processed_total,
            errors: self.errors_total,
            mean_latency_ms,
            throughput_per_s: self.window_items as f64 / elapsed,
            busy_ms: u64::try_from(self.busy_total.as_millis()).unwrap_or(u64::MAX),
            queue: self.queue.clone(),
            restarts: self.restarts,
            cpu_percent: load.cpu_percent,
            memory_percent: load.memory_percent,
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
    forward_only(ctx, channel, actor, wrap, &[]).await
}

/// [`forward`], but only the messages whose `type` tag is in `wanted` (all when it is empty).
/// The tag is read without decoding ([`crate::messages::tag_of`]), so the other messages of a
/// busy channel cost a prefix check; a payload whose tag cannot be read that way is decoded
/// and forwarded.
pub async fn forward_only<T, M>(
    ctx: &AgentContext,
    channel: crate::channels::Channel,
    actor: ractor::ActorRef<M>,
    wrap: fn(T) -> M,
    wanted: &'static [&'static str],
) -> crate::Result<tokio::task::JoinHandle<()>>
where
    T: for<'de> serde::Deserialize<'de> + Send + 'static,
    M: ractor::Message,
{
    use futures::StreamExt;
    let mut subscription = ctx.bus.subscribe(channel).await?;
    Ok(tokio::spawn(async move {
        while let Some(payload) = subscription.next().await {
            if !wanted.is_empty()
                && let Some(tag) = crate::messages::tag_of(&payload)
                && !wanted.contains(&tag)
            {
                continue;
            }
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
pub(crate) async fn answer_report_health<M>(
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

/// What every actor shell keeps besides its own state: its identity, its heartbeat counters and
/// the background tasks (bus forwarders, timers) that must stop with it. Starting it registers
/// the actor, heartbeats once at once, every heartbeat interval, and whenever a queen asks
/// (`ReportHealth`); stopping it aborts the tasks and deregisters.
#[derive(Debug)]
pub struct Presence {
    ctx: AgentContext,
    agent_id: String,
    kind: AgentKind,
    stats: StatsWindow,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    cell: ractor::ActorCell,
}

impl Presence {
    /// Starts the presence of an actor that consumes `queue` (if any) and whose mailbox takes
    /// `heartbeat()` as its heartbeat message.
    pub async fn start<M: ractor::Message>(
        ctx: &AgentContext,
        agent_id: &str,
        kind: AgentKind,
        restarts: u32,
        queue: Option<&str>,
        myself: &ractor::ActorRef<M>,
        heartbeat: fn() -> M,
    ) -> crate::Result<Presence> {
        ctx.register(agent_id, kind).await;
        let tasks = vec![
            answer_report_health(ctx, myself.clone(), heartbeat).await?,
            myself.send_interval(ctx.config.supervision.heartbeat_interval, heartbeat),
        ];
        // The first heartbeat goes out at once so the queen sees the actor healthy.
        myself
            .send_message(heartbeat())
            .map_err(|_| crate::Error::Closed("the actor's mailbox"))?;
        Ok(Presence {
            ctx: ctx.clone(),
            agent_id: agent_id.to_owned(),
            kind,
            stats: StatsWindow::new(queue, restarts),
            tasks,
            cell: myself.get_cell(),
        })
    }

    /// Forwards a bus channel into the actor's mailbox for as long as the actor lives.
    pub async fn forward<T, M>(
        &mut self,
        channel: crate::channels::Channel,
        myself: &ractor::ActorRef<M>,
        wrap: fn(T) -> M,
    ) -> crate::Result<()>
    where
        T: for<'de> serde::Deserialize<'de> + Send + 'static,
        M: ractor::Message,
    {
        self.forward_only(channel, myself, wrap, &[]).await
    }

    /// [`Presence::forward`], but only the messages whose `type` tag is in `wanted` (see
    /// [`forward_only`]).
    pub async fn forward_only<T, M>(
        &mut self,
        channel: crate::channels::Channel,
        myself: &ractor::ActorRef<M>,
        wrap: fn(T) -> M,
        wanted: &'static [&'static str],
    ) -> crate::Result<()>
    where
        T: for<'de> serde::Deserialize<'de> + Send + 'static,
        M: ractor::Message,
    {
        let task = forward_only(&self.ctx, channel, myself.clone(), wrap, wanted).await?;
        self.tasks.push(task);
        Ok(())
    }

    /// Sends `message()` to the actor every `period` for as long as the actor lives.
    pub fn every<M: ractor::Message>(
        &mut self,
        period: Duration,
        myself: &ractor::ActorRef<M>,
        message: fn() -> M,
    ) {
        self.tasks.push(myself.send_interval(period, message));
    }

    /// Records `items` processed (`errors` of them failed) in `busy` time.
    pub fn record(&mut self, items: u64, errors: u64, busy: Duration) {
        self.stats.record(items, errors, busy);
    }

    /// Time spent working since start (see [`StatsWindow::busy`]).
    pub fn busy(&self) -> Duration {
        self.stats.busy()
    }

    /// Adds work time outside [`Presence::record`] (see [`StatsWindow::worked`]).
    pub fn worked(&mut self, busy: Duration) {
        self.stats.worked(busy);
    }

    /// Publishes a heartbeat with the counters since the last one.
    pub async fn beat(&mut self) {
        let stats = self.stats.snapshot();
        self.ctx.heartbeat(&self.agent_id, self.kind, stats).await;
    }

    /// Carries out a fault armed for this actor, if any (see [`crate::faults`]); actors call it
    /// at each unit of work. `Ok` means go on; a panic, an error or a hang are the fault.
    pub async fn strike(&self) -> Result<(), ractor::ActorProcessingErr> {
        self.ctx
            .faults
            .strike(&self.agent_id, self.kind, &self.cell)
            .await
    }

    /// The heartbeat of an actor without a work queue, whose unit of work for fault injection
    /// is the heartbeat itself: strikes an armed fault, else beats.
    pub async fn heartbeat(&mut self) -> Result<(), ractor::ActorProcessingErr> {
        self.strike().await?;
        self.beat().await;
        Ok(())
    }

    /// The clean-stop path: aborts the background tasks and deregisters.
    pub async fn stop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.ctx.deregister(&self.agent_id).await;
    }
}
