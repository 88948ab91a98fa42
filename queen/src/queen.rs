//! The queen actor: owns the schedule (enqueues a scrape task for each enabled source when it
//! is due), knows every actor's status, restarts and last heartbeat (from `health-checks`),
//! exports queue depths and heartbeat ages, and receives the performance agent's
//! recommendations.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use swarm_shared::channels::{Channel, QUEUE_DEAD_LETTER, QUEUE_SCRAPE, QUEUES};
use swarm_shared::context::{AgentContext, Presence};
use swarm_shared::domain::{AgentKind, AgentStatus, ScrapeTask};
use swarm_shared::messages::{AgentMessage, HealthMessage, LifecycleEvent, QueenCommand, encode};
use swarm_shared::ports::publish;
use swarm_shared::telemetry;
use tokio::time::Instant;
use utoipa::ToSchema;

use crate::schedule::{SourceClock, by_priority, should_schedule, trusts_validators};

/// Id of the queen actor.
pub const QUEEN_ID: &str = "queen";

/// One actor as the queen sees it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AgentView {
    /// Agent id.
    pub id: String,
    /// Kind.
    pub kind: AgentKind,
    /// Status.
    pub status: AgentStatus,
    /// Restarts by its host.
    pub restarts: u32,
    /// Last heartbeat.
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// Items processed since its last start.
    pub processed: u64,
    /// Failed items since its last start.
    pub errors: u64,
    /// Last failure reason, if any.
    pub last_error: Option<String>,
}

/// The queen actor.
#[derive(Debug, Default)]
pub struct QueenActor;

/// Start arguments.
#[derive(Debug, Clone)]
pub struct QueenArgs {
    /// Ports and config.
    pub ctx: AgentContext,
    /// Restarts so far.
    pub restarts: u32,
}

/// Messages.
#[derive(Debug)]
pub enum QueenMsg {
    /// Scheduler tick.
    Tick,
    /// Heartbeat tick.
    Heartbeat,
    /// From `health-checks`.
    Health(HealthMessage),
    /// From `agent-communication`.
    Agent(AgentMessage),
    /// From `queen-commands` (changes announced by the API).
    Command(QueenCommand),
    /// Every known actor, by id.
    ListAgents(RpcReplyPort<Vec<AgentView>>),
}

/// State.
#[derive(Debug)]
pub struct QueenState {
    args: QueenArgs,
    agents: BTreeMap<String, AgentView>,
    /// Per source: when it is next due, and when its last task was enqueued.
    clocks: HashMap<i64, (DateTime<Utc>, DateTime<Utc>)>,
    /// Fetches recorded before this time may stand for documents a crash lost: with a work
    /// queue that does not outlive the process, this queen's start; `None` with a durable one.
    /// See [`trusts_validators`].
    validators_from: Option<DateTime<Utc>>,
    presence: Presence,
    /// The registry discovery in flight, if any (it runs beside the mailbox).
    discovery: Option<tokio::task::JoinHandle<()>>,
}

impl Actor for QueenActor {
    type Msg = QueenMsg;
    type State = QueenState;
    type Arguments = QueenArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: QueenArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut presence = Presence::start(
            &args.ctx,
            QUEEN_ID,
            AgentKind::Queen,
            args.restarts,
            None,
            &myself,
            || QueenMsg::Heartbeat,
        )
        .await?;
        presence
            .forward(Channel::HealthChecks, &myself, QueenMsg::Health)
            .await?;
        presence
            .forward_only(
                Channel::AgentCommunication,
                &myself,
                QueenMsg::Agent,
                &[swarm_shared::messages::agent_tags::RECOMMENDATION],
            )
            .await?;
        presence
            .forward(Channel::QueenCommands, &myself, QueenMsg::Command)
            .await?;
        presence.every(args.ctx.config.scheduler.tick, &myself, || QueenMsg::Tick);
        myself.send_message(QueenMsg::Tick)?;
        // Learn the whole swarm now rather than after a heartbeat interval (this queen may be
        // a restart, or may have started after the others' first heartbeats).
        if let Err(err) = publish(args.ctx.bus.as_ref(), &QueenCommand::ReportHealth).await {
            tracing::warn!(error = %err, "asking the swarm to report failed");
        }
        let validators_from = (!args.ctx.queue.durable()).then(Utc::now);
        Ok(QueenState {
            args,
            agents: BTreeMap::new(),
            clocks: HashMap::new(),
            validators_from,
            presence,
            discovery: None,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(task) = state.discovery.take() {
            task.abort();
        }
        state.presence.stop().await;
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            QueenMsg::Tick => {
                schedule(state).await;
                refresh_health(state);
                export_queue_depths(&state.args.ctx).await;
            }
            QueenMsg::Heartbeat => {
                state.presence.heartbeat().await?;
                // Off the mailbox, like every registry call: a slow registry must never
                // hold up scheduling. One discovery at a time.
                if state
                    .discovery
                    .as_ref()
                    .is_none_or(|task| task.is_finished())
                {
                    state.discovery = Some(tokio::spawn(discover(state.args.ctx.clone())));
                }
            }
            QueenMsg::Health(message) => observe(state, message),
            QueenMsg::Agent(AgentMessage::Recommendation {
                bottleneck,
                action,
                reason,
                ..
            }) => {
                if action != "none" {
                    // Acting on recommendations (scaling) is the health supervisor's job.
                    tracing::info!(?bottleneck, %action, %reason, "performance recommendation");
                }
            }
            QueenMsg::Agent(_) => {}
            // A new or edited source is fetched now, not at the next tick.
            QueenMsg::Command(QueenCommand::SourcesChanged) => schedule(state).await,
            QueenMsg::Command(_) => {}
            QueenMsg::ListAgents(reply) => {
                refresh_health(state);
                let _ = reply.send(state.agents.values().cloned().collect());
            }
        }
        Ok(())
    }
}

/// Enqueues a task for every enabled source that is due.
/// Enqueues a task for every enabled source that is due and whose previous task is done.
async fn schedule(state: &mut QueenState) {
    let started = Instant::now();
    let ctx = &state.args.ctx;
    let sources = match ctx.store.list_sources().await {
        Ok(sources) => sources,
        Err(err) => {
            tracing::warn!(error = %err, "listing sources failed; schedule skipped");
            return;
        }
    };
    let now = Utc::now();
    // An unrecorded task older than this must have been lost (dead-lettered): schedule anew.
    let stale_after = swarm_shared::time::delta(swarm_shared::time::times(
        ctx.config.queues.visibility_timeout,
        3,
    ));
    let mut payloads = Vec::new();
    let mut scheduled = Vec::new();
    for source in by_priority(&sources) {
        if !source.enabled {
            continue;
        }
        let known = state.clocks.get(&source.id);
        let clock = SourceClock {
            next_due: known.map(|(next_due, _)| *next_due),
            enqueued_at: known.map(|(_, enqueued_at)| *enqueued_at),
            last_fetch_at: source.last_fetch_at,
            interval: source.effective_interval.unwrap_or(source.interval),
        };
        if !should_schedule(clock, now, stale_after) {
            continue;
        }
        let trusted = trusts_validators(state.validators_from, source);
        let task = ScrapeTask {
            source: source.clone(),
            scheduled_at: now,
            etag: source.etag.clone().filter(|_| trusted),
            last_modified: source.last_modified.clone().filter(|_| trusted),
            content_hash: source.content_hash.clone().filter(|_| trusted),
        };
        match encode(&task) {
            Ok(bytes) => {
                payloads.push(bytes);
                let interval = source.effective_interval.unwrap_or(source.interval);
                scheduled.push((source.id, interval));
            }
            Err(err) => {
                tracing::error!(source = %source.name, error = %err, "encoding scrape task failed")
            }
        }
    }
    state.clocks.retain(|id, _| {
        sources
            .iter()
            .any(|source| source.id == *id && source.enabled)
    });
    if payloads.is_empty() {
        return;
    }
    let count = payloads.len();
    match ctx.queue.enqueue(QUEUE_SCRAPE, payloads).await {
        Ok(_) => {
            for (id, interval) in scheduled {
                // Saturating: a stored interval is outside data and must never panic the
                // scheduler (a far-future due time simply never comes).
                let next_due = swarm_shared::time::after(now, interval);
                state.clocks.insert(id, (next_due, now));
            }
            telemetry::scrape_tasks_scheduled(count as u64);
            state.presence.record(count as u64, 0, started.elapsed());
        }
        // Not marked scheduled: retried at the next tick.
        Err(err) => tracing::warn!(error = %err, "enqueueing scrape tasks failed"),
    }
}

/// Every service the swarm registers.
pub fn service_names() -> Vec<String> {
    AgentKind::ALL
        .into_iter()
        .map(swarm_shared::context::service_name)
        .collect()
}

/// Asks the registry which instances of each service pass their checks and records the counts
/// (`tge_swarm_registry_instances`). A registry failure is logged and leaves the last counts:
/// discovery is an aid, never a reason to stop scheduling.
async fn discover(ctx: AgentContext) {
    for service in service_names() {
        match ctx.registry.healthy(&service).await {
            Ok(instances) => {
                telemetry::registry_instances(&service, instances.len());
            }
            Err(err) => {
                tracing::warn!(%service, error = %err, "registry discovery failed; keeping the last view");
                return;
            }
        }
    }
}

fn observe(state: &mut QueenState, message: HealthMessage) {
    match message {
        HealthMessage::Heartbeat {
            agent_id,
            node,
            kind,
            at,
            stats,
            ..
        } => {
            let agent_id = qualified_id(&state.args.ctx.config.node.name, &node, agent_id);
            let view = state
                .agents
                .entry(agent_id.clone())
                .or_insert_with(|| new_view(&agent_id, kind));
            view.kind = kind;
            view.status = AgentStatus::Healthy;
            view.last_heartbeat = Some(at);
            view.restarts = view.restarts.max(stats.restarts);
            view.processed = stats.processed;
            view.errors = stats.errors;
        }
        HealthMessage::Lifecycle {
            agent_id,
            node,
            kind,
            event,
            restarts,
            ..
        } => {
            let agent_id = qualified_id(&state.args.ctx.config.node.name, &node, agent_id);
            let view = state
                .agents
                .entry(agent_id.clone())
                .or_insert_with(|| new_view(&agent_id, kind));
            view.restarts = view.restarts.max(restarts);
            match event {
                LifecycleEvent::Started => {
                    if view.status != AgentStatus::Healthy {
                        view.status = AgentStatus::Starting;
                    }
                }
                LifecycleEvent::Failed { reason, .. } => {
                    view.status = AgentStatus::Restarting;
                    view.last_error = Some(reason);
                }
                LifecycleEvent::GaveUp { reason } => {
                    view.status = AgentStatus::Failed;
                    view.last_error = Some(reason);
                }
                LifecycleEvent::Stopped => view.status = AgentStatus::Stopped,
            }
        }
    }
}

/// The id an agent has in the queen's table: bare for the queen's own node (and senders that
/// do not say), `node/agent` for agents in other processes.
pub(crate) fn qualified_id(own_node: &str, node: &str, agent_id: String) -> String {
    if node.is_empty() || node == own_node {
        agent_id
    } else {
        format!("{node}/{agent_id}")
    }
}

fn new_view(agent_id: &str, kind: AgentKind) -> AgentView {
    AgentView {
        id: agent_id.to_owned(),
        kind,
        status: AgentStatus::Starting,
        restarts: 0,
        last_heartbeat: None,
        processed: 0,
        errors: 0,
        last_error: None,
    }
}

/// Marks actors whose heartbeats stopped as unhealthy and exports heartbeat ages per kind.
fn refresh_health(state: &mut QueenState) {
    let supervision = &state.args.ctx.config.supervision;
    let limit = swarm_shared::time::delta(swarm_shared::time::times(
        supervision.heartbeat_interval,
        supervision.missed_heartbeats,
    ));
    let now = Utc::now();
    let mut oldest: BTreeMap<AgentKind, f64> = BTreeMap::new();
    let mut counts: HashMap<(AgentKind, AgentStatus), usize> = HashMap::new();
    for view in state.agents.values_mut() {
        if let Some(at) = view.last_heartbeat {
            let age = now - at;
            if view.status == AgentStatus::Healthy && age > limit {
                view.status = AgentStatus::Unhealthy;
            }
            let seconds = age.num_milliseconds().max(0) as f64 / 1000.0;
            let entry = oldest.entry(view.kind).or_insert(0.0);
            *entry = entry.max(seconds);
        }
        *counts.entry((view.kind, view.status)).or_insert(0) += 1;
    }
    for (kind, age) in oldest {
        telemetry::heartbeat_age(kind, age);
    }
    for kind in AgentKind::ALL {
        for status in AgentStatus::ALL {
            let count = counts.get(&(kind, status)).copied().unwrap_or(0);
            telemetry::agents(kind, status, count);
        }
    }
}

async fn export_queue_depths(ctx: &AgentContext) {
    for queue in QUEUES.into_iter().chain([QUEUE_DEAD_LETTER]) {
        match ctx.queue.depth(queue).await {
            Ok(depth) => telemetry::queue_depth(queue, &depth),
            Err(err) => tracing::debug!(%queue, error = %err, "queue depth unavailable"),
        }
    }
}
