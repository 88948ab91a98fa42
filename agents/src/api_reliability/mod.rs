//! API reliability optimizer: receives every outbound call outcome from all scraping agents,
//! owns the swarm-wide circuit breaker of each host (pure [`Breaker`]), and broadcasts every
//! transition so one agent's failures protect all others. Breaker state is also written to
//! shared memory (`breakers` namespace).

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use swarm_shared::channels::Channel;
use swarm_shared::context::{AgentContext, StatsWindow, answer_report_health, forward};
use swarm_shared::domain::AgentKind;
use swarm_shared::messages::{AgentMessage, BreakerState};
use swarm_shared::ports::publish;
use swarm_shared::reliability::breaker::Breaker;
use swarm_shared::telemetry;
use tokio::task::JoinHandle;

/// The API reliability actor.
#[derive(Debug, Default)]
pub struct ApiReliabilityActor;

/// Start arguments.
#[derive(Debug, Clone)]
pub struct ApiReliabilityArgs {
    /// Agent id.
    pub agent_id: String,
    /// Ports and config.
    pub ctx: AgentContext,
    /// Restarts so far (reported in heartbeats).
    pub restarts: u32,
}

/// Messages.
#[derive(Debug)]
pub enum ApiReliabilityMsg {
    /// From `agent-communication`.
    Agent(AgentMessage),
    /// Heartbeat tick.
    Heartbeat,
}

/// State: one breaker per host.
#[derive(Debug)]
pub struct ApiReliabilityState {
    args: ApiReliabilityArgs,
    breakers: HashMap<String, Breaker>,
    stats: StatsWindow,
    tasks: Vec<JoinHandle<()>>,
}

impl Actor for ApiReliabilityActor {
    type Msg = ApiReliabilityMsg;
    type State = ApiReliabilityState;
    type Arguments = ApiReliabilityArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ApiReliabilityArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        args.ctx
            .register(&args.agent_id, AgentKind::ApiReliability)
            .await;
        let tasks = vec![
            forward(
                &args.ctx,
                Channel::AgentCommunication,
                myself.clone(),
                ApiReliabilityMsg::Agent,
            )
            .await?,
            answer_report_health(&args.ctx, myself.clone(), || ApiReliabilityMsg::Heartbeat)
                .await?,
            myself.send_interval(args.ctx.config.supervision.heartbeat_interval, || {
                ApiReliabilityMsg::Heartbeat
            }),
        ];
        myself.send_message(ApiReliabilityMsg::Heartbeat)?;
        Ok(ApiReliabilityState {
            stats: StatsWindow::new(None, args.restarts),
            args,
            breakers: HashMap::new(),
            tasks,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state
            .args
            .ctx
            .release(&state.args.agent_id, &mut state.tasks)
            .await;
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ApiReliabilityMsg::Heartbeat => {
                let open = state
                    .breakers
                    .values()
                    .filter(|breaker| breaker.state_at(Utc::now()) == BreakerState::Open)
                    .count();
                metrics::gauge!(telemetry::BREAKERS_OPEN).set(open as f64);
                let stats = state.stats.snapshot();
                state
                    .args
                    .ctx
                    .heartbeat(&state.args.agent_id, AgentKind::ApiReliability, stats)
                    .await;
            }
            ApiReliabilityMsg::Agent(AgentMessage::CallOutcome {
                host,
                outcome,
                retry_after_s,
                ..
            }) => {
                let started = tokio::time::Instant::now();
                let now = Utc::now();
                let config = &state.args.ctx.config.reliability;
                let breaker = state.breakers.entry(host.clone()).or_default();
                let transition =
                    breaker.record(outcome, retry_after_s.map(Duration::from_secs), now, config);
                if let Some(transition) = transition {
                    broadcast(&state.args, &host, transition.state, transition.until).await;
                }
                state.stats.record(1, 0, started.elapsed());
            }
            ApiReliabilityMsg::Agent(_) => {}
        }
        Ok(())
    }
}

async fn broadcast(
    args: &ApiReliabilityArgs,
    host: &str,
    state: BreakerState,
    until: Option<chrono::DateTime<Utc>>,
) {
    let state_name = match state {
        BreakerState::Closed => "closed",
        BreakerState::Open => "open",
        BreakerState::HalfOpen => "half_open",
    };
    tracing::info!(%host, state = state_name, ?until, "breaker transition");
    metrics::counter!(telemetry::BREAKER_TRANSITIONS_TOTAL, "state" => state_name).increment(1);
    let update = AgentMessage::BreakerUpdate {
        host: host.to_owned(),
        state,
        until,
    };
    let memory = AgentMessage::MemoryWrite {
        namespace: "breakers".into(),
        key: host.to_owned(),
        value: serde_json::json!({ "state": state_name, "until": until }),
        ttl_s: None,
        written_by: args.agent_id.clone(),
    };
    for message in [update, memory] {
        if let Err(err) = publish(args.ctx.bus.as_ref(), &message).await {
            tracing::warn!(error = %err, "breaker broadcast failed");
        }
    }
}
