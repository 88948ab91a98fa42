//! The queen's health supervisor: watches every actor of every process and the swarm's
//! servers, and acts where a process's own agent host cannot.
//!
//! Every `supervision.interval` it gathers, off its mailbox, what it needs to know: queue
//! depths, which registry instances pass their checks, whether each stale actor's process
//! answers `/healthz`, whether the store and the bus answer, and the desired replica counts.
//! Then it runs the pure policy ([`decide`], [`decide_scale`]) per component and carries out
//! the decisions:
//! * heartbeats stop but the process answers: the actor is hung (damped: 3 failed probes) →
//!   RESTART by command (the host stops it, kills it when it does not stop, and starts it with
//!   its pending work), then up the ladder: RECREATE, FAILOVER, ALERT_ONLY;
//! * no progress for `stuck_after` while its queue holds work → the same;
//! * heartbeats stop and the process does not answer: FAILOVER, its pending stream entries
//!   released to the healthy peers of its kind at once;
//! * a scalable kind under sustained load (CPU, memory, latency, error rate, a backlog that
//!   does not shrink, or the performance agent's recommendation) → SCALE_UP; calm and empty for
//!   `scale_down_after` → SCALE_DOWN, through the desired replica count every host reconciles;
//! * the store or the bus unreachable → ALERT_ONLY (no action of ours brings a server back).
//!
//! Actors the host is already handling (failed, restarting, breaker open) are left to it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use swarm_shared::channels::{Channel, downstream_of, held_back};
use swarm_shared::context::{AgentContext, Presence, forward, forward_only};
use swarm_shared::domain::AgentKind;
use swarm_shared::messages::{AgentMessage, AgentStats, HealthMessage, LifecycleEvent};
use swarm_shared::ports::QueueDepth;
use swarm_shared::supervision::{History, Policy, ScaleHistory};
use tokio::time::Instant;

use crate::health::BUS;
use crate::queen::qualified_id;
use crate::record::Recorder;

mod acting;
mod gathering;
mod scaling;

use acting::*;
use gathering::*;
use scaling::*;
/// Id of the health supervisor actor.
pub const SUPERVISOR_ID: &str = "health-supervisor";

/// How long one process health probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The actor.
#[derive(Debug, Default)]
pub struct HealthSupervisor;

/// Start arguments.
#[derive(Debug, Clone)]
pub struct SupervisorArgs {
    /// Ports and config.
    pub ctx: AgentContext,
    /// Restarts so far (reported in heartbeats).
    pub restarts: u32,
}

/// Messages.
#[derive(Debug)]
pub enum SupervisorMsg {
    /// Time to look.
    Tick,
    /// Heartbeat tick (the supervisor is supervised too).
    Heartbeat,
    /// From `health-checks`.
    Health(HealthMessage),
    /// From `agent-communication` (the performance agent's recommendations).
    Agent(AgentMessage),
    /// What a look found.
    Checked(Box<Checks>),
}

/// What one look found (gathered off the mailbox).
#[derive(Debug, Default)]
pub struct Checks {
    depths: BTreeMap<&'static str, QueueDepth>,
    /// Instance ids (`node/agent`) passing their registry checks; none if the registry failed.
    passing: Option<BTreeSet<String>>,
    /// Per node: whether its process answered `/healthz`.
    answered: HashMap<String, bool>,
    /// Per dependency: an error, if it did not answer.
    dependencies: Vec<(&'static str, Option<String>)>,
    /// Desired replicas per kind, where set.
    replicas: BTreeMap<AgentKind, u32>,
}

impl Checks {
    /// Whether workers of `kind` hold back because their downstream queues are full (the
    /// workers' own test, [`held_back`]): their waiting work is not a hang or a reason to scale.
    fn held_back(&self, kind: AgentKind, ctx: &AgentContext) -> bool {
        let waiting: u64 = downstream_of(kind)
            .iter()
            .filter_map(|queue| self.depths.get(queue))
            .map(|depth| depth.ready + depth.pending)
            .sum();
        held_back(kind, waiting, ctx.config.queues.max_backlog)
    }

    /// Whether the bus (which carries heartbeats) did not answer.
    fn bus_down(&self) -> bool {
        self.dependencies
            .iter()
            .any(|(name, error)| *name == BUS && error.is_some())
    }
}

/// One actor as the supervisor knows it.
#[derive(Debug)]
struct Watched {
    node: String,
    agent_id: String,
    kind: AgentKind,
    last_heartbeat: Instant,
    metrics_addr: Option<String>,
    stats: AgentStats,
    /// Counters at the previous look (for the error rate).
    counted: (u64, u64),
    history: History,
    /// The host reported it failed and is handling it (until it starts again).
    host_handling: bool,
}

/// State.
#[derive(Debug)]
pub struct SupervisorState {
    ctx: AgentContext,
    recorder: Recorder,
    http: reqwest::Client,
    /// Each kind's policy, resolved once (per-kind overrides merge TOML tables).
    policies: BTreeMap<AgentKind, Policy>,
    watched: BTreeMap<String, Watched>,
    scaling: BTreeMap<AgentKind, ScaleHistory>,
    dependencies: BTreeMap<&'static str, History>,
    /// The performance agent's latest advice on scaling.
    advice: Option<scaling::Advice>,
    check: Option<tokio::task::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    presence: Presence,
}

impl Actor for HealthSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let ctx = args.ctx;
        swarm_shared::install_crypto_provider();
        let presence = Presence::start(
            &ctx,
            SUPERVISOR_ID,
            AgentKind::Queen,
            args.restarts,
            None,
            &myself,
            || SupervisorMsg::Heartbeat,
        )
        .await?;
        let tasks = vec![
            forward(
                &ctx,
                Channel::HealthChecks,
                myself.clone(),
                SupervisorMsg::Health,
            )
            .await?,
            forward_only(
                &ctx,
                Channel::AgentCommunication,
                myself.clone(),
                SupervisorMsg::Agent,
                &[swarm_shared::messages::agent_tags::RECOMMENDATION],
            )
            .await?,
            myself.send_interval(ctx.config.supervision.interval, || SupervisorMsg::Tick),
        ];
        Ok(SupervisorState {
            recorder: Recorder::new(&ctx),
            http: reqwest::Client::builder()
                .timeout(PROBE_TIMEOUT)
                .build()
                .unwrap_or_default(),
            policies: AgentKind::ALL
                .into_iter()
                .map(|kind| (kind, ctx.config.supervision.policy(kind)))
                .collect(),
            ctx,
            watched: BTreeMap::new(),
            scaling: BTreeMap::new(),
            dependencies: BTreeMap::new(),
            advice: None,
            check: None,
            tasks,
            presence,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        for task in state.tasks.drain(..).chain(state.check.take()) {
            task.abort();
        }
        state.presence.stop().await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Tick => {
                // One look at a time: a slow probe never piles looks up.
                if state.check.as_ref().is_none_or(|task| task.is_finished()) {
                    let job = gather(state.ctx.clone(), state.http.clone(), stale_nodes(state));
                    let me = myself.clone();
                    state.check = Some(tokio::spawn(async move {
                        let checks = job.await;
                        let _ = me.send_message(SupervisorMsg::Checked(Box::new(checks)));
                    }));
                }
            }
            SupervisorMsg::Heartbeat => state.presence.heartbeat().await?,
            SupervisorMsg::Health(message) => watch(state, message),
            SupervisorMsg::Agent(AgentMessage::Recommendation {
                bottleneck,
                action,
                no_gain,
                ..
            }) => state.advice = Some(advice(bottleneck, &action, no_gain, Instant::now())),
            SupervisorMsg::Agent(_) => {}
            SupervisorMsg::Checked(checks) => {
                if checks.bus_down() {
                    // Heartbeats travel on the bus: while it is down their silence says
                    // nothing about the actors. Judge them again once it is back, with a full
                    // window for their heartbeats to arrive.
                    let now = Instant::now();
                    for watched in state.watched.values_mut() {
                        watched.last_heartbeat = now;
                    }
                } else {
                    supervise_actors(state, &checks).await;
                }
                supervise_dependencies(state, &checks);
                scale(state, &checks).await;
            }
        }
        Ok(())
    }
}

/// Whether an actor's heartbeat is late: `missed_heartbeats` intervals (its registry TTL)
/// plus one look have passed without one. Three late looks in a row (the policy's
/// `unhealthy_after`) make it unhealthy.
fn is_late(ctx: &AgentContext, watched: &Watched, now: Instant) -> bool {
    let supervision = &ctx.config.supervision;
    now.saturating_duration_since(watched.last_heartbeat)
        > supervision.heartbeat_interval * supervision.missed_heartbeats + supervision.interval
}

/// Learns from heartbeats and lifecycle events.
fn watch(state: &mut SupervisorState, message: HealthMessage) {
    let own = state.ctx.config.node.name.clone();
    match message {
        HealthMessage::Heartbeat {
            agent_id,
            node,
            kind,
            stats,
            metrics_addr,
            ..
        } => {
            if kind == AgentKind::Queen {
                // The queen process is the supervisor's own: nothing to probe from here.
                return;
            }
            let id = qualified_id(&own, &node, agent_id.clone());
            let watched = state.watched.entry(id).or_insert_with(|| Watched {
                node: node.clone(),
                agent_id: agent_id.clone(),
                kind,
                last_heartbeat: Instant::now(),
                metrics_addr: None,
                counted: (stats.processed, stats.errors),
                stats: AgentStats::default(),
                history: History::default(),
                host_handling: false,
            });
            watched.last_heartbeat = Instant::now();
            watched.metrics_addr = metrics_addr.or(watched.metrics_addr.take());
            watched.stats = stats;
            watched.host_handling = false;
        }
        HealthMessage::Lifecycle {
            agent_id,
            node,
            event,
            ..
        } => {
            let id = qualified_id(&own, &node, agent_id);
            match event {
                // Stopped on purpose (scaled down, drained, shut down): forget it.
                LifecycleEvent::Stopped => {
                    state.watched.remove(&id);
                }
                LifecycleEvent::Failed { .. } | LifecycleEvent::GaveUp { .. } => {
                    if let Some(watched) = state.watched.get_mut(&id) {
                        watched.host_handling = true;
                    }
                }
                LifecycleEvent::Started => {
                    if let Some(watched) = state.watched.get_mut(&id) {
                        watched.host_handling = false;
                        watched.last_heartbeat = Instant::now();
                    }
                }
            }
        }
    }
}

/// Nodes with a late actor (other than our own), and where to probe them.
fn stale_nodes(state: &SupervisorState) -> HashMap<String, Option<String>> {
    let now = Instant::now();
    let own = &state.ctx.config.node.name;
    let mut nodes = HashMap::new();
    for watched in state.watched.values() {
        if watched.node != *own && !watched.host_handling && is_late(&state.ctx, watched, now) {
            nodes.insert(watched.node.clone(), watched.metrics_addr.clone());
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthz_urls_use_the_node_name_for_wildcard_addresses() {
        assert_eq!(
            healthz_url("agent-keyword", "0.0.0.0:8011").as_deref(),
            Some("http://agent-keyword:8011/healthz")
        );
        assert_eq!(
            healthz_url("n", "127.0.0.1:9000").as_deref(),
            Some("http://127.0.0.1:9000/healthz")
        );
        assert_eq!(
            healthz_url("n", "[::1]:9000").as_deref(),
            Some("http://[::1]:9000/healthz")
        );
        assert_eq!(
            healthz_url("n", "[::]:9000").as_deref(),
            Some("http://n:9000/healthz")
        );
        assert_eq!(healthz_url("n", "not an address"), None);
    }

    #[test]
    fn ids_are_bare_on_the_own_node() {
        assert_eq!(qualified_id("a", "a", "keyword-0".into()), "keyword-0");
        assert_eq!(qualified_id("a", "", "keyword-0".into()), "keyword-0");
        assert_eq!(qualified_id("a", "b", "keyword-0".into()), "b/keyword-0");
    }
}
