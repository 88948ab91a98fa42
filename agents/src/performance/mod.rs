//! Performance bottleneck eliminator: collects every actor's heartbeat counters, reads queue
//! depths, runs the pure [`analysis::analyse`] on an interval and sends the queen its
//! recommendation (on `agent-communication`), also kept in shared memory (`performance`).
//! Each kind's load over the interval (how busy its actors were, what they can finish a
//! second) comes from the cumulative counters of two heartbeats, so a kind's capacity is
//! judged the same whether its work came steadily or in bursts. What each kind finished under
//! load with each instance count is remembered ([`capacity`]), so a kind whose added instances
//! added nothing is not scaled further.

pub mod analysis;
pub mod capacity;

use analysis::{ActorLoad, Counters, KindLoad};
use capacity::Capacities;

use std::collections::BTreeMap;

use chrono::Utc;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use swarm_shared::channels::{Channel, QUEUES, queue_of};
use swarm_shared::context::{AgentContext, Presence};
use swarm_shared::domain::AgentKind;
use swarm_shared::messages::{AgentMessage, HealthMessage};
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

/// What the agent knows of one actor.
#[derive(Debug)]
struct Tracked {
    kind: AgentKind,
    /// Its latest heartbeat's counters.
    latest: Counters,
    /// Its counters at the heartbeat the previous analysis used.
    baseline: Option<Counters>,
    /// How it worked between that heartbeat and the one before.
    load: Option<ActorLoad>,
}

/// State: what the agent knows of every actor.
#[derive(Debug)]
pub struct PerformanceState {
    args: PerformanceArgs,
    actors: BTreeMap<String, Tracked>,
    /// Each kind's capacity under load by instance count.
    capacities: BTreeMap<AgentKind, Capacities>,
    /// Each kind's actors at the previous analysis.
    running_before: BTreeMap<AgentKind, u32>,
    presence: Presence,
}

/// How long a capacity measured under load is kept, in analysis intervals (ten minutes at the
/// default 30 s; at least two scale-up cooldowns): long enough to compare the counts before and
/// after a scale-up, short enough that a kind held back on an old reading is tried with one
/// more instance again.
const CAPACITY_KEPT_INTERVALS: u32 = 20;

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
            actors: BTreeMap::new(),
            capacities: BTreeMap::new(),
            running_before: BTreeMap::new(),
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
                let latest = Counters::of(&stats, at);
                let tracked = state
                    .actors
                    .entry(format!("{node}/{agent_id}"))
                    .or_insert_with(|| Tracked {
                        kind,
                        latest,
                        baseline: None,
                        load: None,
                    });
                tracked.kind = kind;
                tracked.latest = latest;
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
    state
        .actors
        .retain(|_, tracked| tracked.latest.at >= horizon);

    let mut depths = BTreeMap::new();
    for queue in QUEUES {
        match ctx.queue.depth(queue).await {
            Ok(depth) => {
                depths.insert(queue.to_owned(), depth);
            }
            Err(err) => tracing::warn!(%queue, error = %err, "reading queue depth failed"),
        }
    }
    // Each actor's work since the heartbeat the previous analysis used, from its cumulative
    // counters: a burst between two heartbeats counts whatever its last period shows.
    let mut per_kind: BTreeMap<AgentKind, Vec<ActorLoad>> = BTreeMap::new();
    let mut instances: BTreeMap<AgentKind, u32> = BTreeMap::new();
    // Actors whose load was measured at this analysis (a new heartbeat since the last one), not
    // kept from an earlier one: one that stopped or died in the interval has none.
    let mut fresh: BTreeMap<AgentKind, u32> = BTreeMap::new();
    for tracked in state.actors.values_mut() {
        let now = tracked.latest;
        match tracked.baseline {
            Some(baseline) if now.at > baseline.at => {
                tracked.load = ActorLoad::between(&baseline, &now);
                tracked.baseline = Some(now);
                if tracked.load.is_some() {
                    *fresh.entry(tracked.kind).or_insert(0) += 1;
                }
            }
            Some(_) => {}
            None => tracked.baseline = Some(now),
        }
        per_kind
            .entry(tracked.kind)
            .or_default()
            .extend(tracked.load);
        *instances.entry(tracked.kind).or_insert(0) += 1;
    }
    let loads: BTreeMap<AgentKind, KindLoad> = per_kind
        .iter()
        .filter(|(_, loads)| !loads.is_empty())
        .map(|(kind, loads)| (*kind, KindLoad::of(loads)))
        .collect();
    let now = Utc::now();
    let threshold = ctx.config.performance.backlog_threshold;
    for (kind, load) in &loads {
        let backlogged = queue_of(*kind)
            .and_then(|queue| depths.get(queue))
            .is_some_and(|depth| depth.ready >= threshold);
        let running = instances.get(kind).copied().unwrap_or(0);
        let measured = fresh.get(kind).copied().unwrap_or(0);
        let before = state.running_before.get(kind).copied();
        state.capacities.entry(*kind).or_default().observe(
            load,
            capacity::under_load(load, running, measured, before, backlogged),
            now,
        );
    }
    for (kind, measured) in &mut state.capacities {
        // Kept at least two scale-up cooldowns, so that the count after the next scale-up
        // can still be compared with this one.
        let keep = ctx
            .config
            .performance
            .interval
            .saturating_mul(CAPACITY_KEPT_INTERVALS)
            .max(
                ctx.config
                    .supervision
                    .policy(*kind)
                    .cooldown
                    .saturating_mul(2),
            );
        measured.forget_older_than(keep, now);
    }
    state.capacities.retain(|_, measured| !measured.is_empty());
    state.running_before = instances.clone();
    let recommendation = analysis::analyse(
        &depths,
        &loads,
        &state.capacities,
        &instances,
        ctx.config.performance.backlog_threshold,
        ctx.config.performance.interval,
    );
    telemetry::recommendation(recommendation.bottleneck, recommendation.action);
    let message = AgentMessage::Recommendation {
        bottleneck: recommendation.bottleneck,
        action: recommendation.action.to_owned(),
        reason: recommendation.reason.clone(),
        no_gain: recommendation.no_gain.clone(),
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
            "loads": loads,
            "capacities": state.capacities,
            "no_gain": recommendation.no_gain,
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
