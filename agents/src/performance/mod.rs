//! Performance bottleneck eliminator: collects every actor's heartbeat counters, reads queue
//! depths, runs the pure [`analysis::analyse`] on an interval and sends the queen its
//! recommendation (on `agent-communication`), also kept in shared memory (`performance`).

pub mod analysis;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use swarm_shared::channels::{Channel, QUEUES};
use swarm_shared::context::{AgentContext, Presence};
use swarm_shared::domain::AgentKind;
use swarm_shared::messages::{AgentMessage, AgentStats, HealthMessage};
use swarm_shared::ports::publish;
use swarm_shared::telemetry;

/// The performance actor.
#[derive(Debug, Default)]
pub struct PerformanceActor;

/// Start arguments.
#[derive(Debug, Clone)]
pub struct PerformanceArgs {
    /// Agent id.
    pub agent_id: String,
    /// Ports and config.
    pub ctx: AgentContext,
    /// Restarts so far (reported in heartbeats).
    pub restarts: u32,
}

/// Messages.
#[derive(Debug)]
pub enum PerformanceMsg {
    /// From `health-checks`.
    Health(HealthMessage),
    /// Run the analysis.
    Analyse,
    /// Heartbeat tick.
    Heartbeat,
}

/// State: the latest counters of every actor.
#[derive(Debug)]
pub struct PerformanceState {
    args: PerformanceArgs,
    latest: BTreeMap<String, (AgentKind, AgentStats, DateTime<Utc>)>,
    presence: Presence,
}

impl Actor for PerformanceActor {
    type Msg = PerformanceMsg;
    type State = PerformanceState;
    type Arguments = PerformanceArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: PerformanceArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut presence = Presence::start(
            &args.ctx,
            &args.agent_id,
            AgentKind::Performance,
            args.restarts,
            None,
            &myself,
            || PerformanceMsg::Heartbeat,
        )
        .await?;
        presence
            .forward(Channel::HealthChecks, &myself, PerformanceMsg::Health)
            .await?;
        presence.every(args.ctx.config.performance.interval, &myself, || {
            PerformanceMsg::Analyse
        });
        Ok(PerformanceState {
            args,
            latest: BTreeMap::new(),
            presence,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
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
            PerformanceMsg::Health(HealthMessage::Heartbeat {
                agent_id,
                node,
                kind,
                at,
                stats,
                ..
            }) => {
                state
                    .latest
                    .insert(format!("{node}/{agent_id}"), (kind, stats, at));
            }
            PerformanceMsg::Health(HealthMessage::Lifecycle { .. }) => {}
            PerformanceMsg::Heartbeat => state.presence.heartbeat().await?,
            PerformanceMsg::Analyse => analyse(state).await,
        }
        Ok(())
    }
}

async fn analyse(state: &mut PerformanceState) {
    let started = tokio::time::Instant::now();
    let ctx = &state.args.ctx;
    // Forget actors that stopped heartbeating (three periods).
    let horizon = swarm_shared::time::before(
        Utc::now(),
        swarm_shared::time::times(ctx.config.supervision.heartbeat_interval, 3),
    );
    state.latest.retain(|_, (_, _, at)| *at >= horizon);

    let mut depths = BTreeMap::new();
    for queue in QUEUES {
        match ctx.queue.depth(queue).await {
            Ok(depth) => {
                depths.insert(queue.to_owned(), depth);
            }
            Err(err) => tracing::warn!(%queue, error = %err, "reading queue depth failed"),
        }
    }
    let mut per_kind: BTreeMap<AgentKind, AgentStats> = BTreeMap::new();
    let mut instances: BTreeMap<AgentKind, u32> = BTreeMap::new();
    for (kind, stats, _) in state.latest.values() {
        let total = per_kind.entry(*kind).or_default();
        total.processed += stats.processed;
        total.errors += stats.errors;
        total.throughput_per_s += stats.throughput_per_s;
        *instances.entry(*kind).or_insert(0) += 1;
    }
    let recommendation = analysis::analyse(
        &depths,
        &per_kind,
        &instances,
        ctx.config.performance.backlog_threshold,
    );
    telemetry::recommendation(recommendation.bottleneck, recommendation.action);
    let now = Utc::now();
    let message = AgentMessage::Recommendation {
        bottleneck: recommendation.bottleneck,
        action: recommendation.action.to_owned(),
        reason: recommendation.reason.clone(),
        at: now,
    };
    let memory = AgentMessage::MemoryWrite {
        namespace: "performance".into(),
        key: "latest".into(),
        value: serde_json::json!({
            "bottleneck": recommendation.bottleneck,
            "action": recommendation.action,
            "reason": recommendation.reason,
            "queues": depths,
            "at": now,
        }),
        ttl_s: None,
        written_by: state.args.agent_id.clone(),
    };
    for message in [message, memory] {
        if let Err(err) = publish(ctx.bus.as_ref(), &message).await {
            tracing::warn!(error = %err, "recommendation publish failed");
        }
    }
    state.presence.record(1, 0, started.elapsed());
}
