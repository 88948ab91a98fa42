//! API reliability optimizer: receives every outbound call outcome from all scraping agents,
//! owns the swarm-wide circuit breaker of each host (pure [`Breaker`]), and broadcasts every
//! transition so one agent's failures protect all others. Breaker state is also written to
//! shared memory (`breakers` namespace).

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use swarm_shared::channels::Channel;
use swarm_shared::context::{AgentContext, Presence};
use swarm_shared::domain::AgentKind;
use swarm_shared::messages::{AgentMessage, BreakerState};
use swarm_shared::ports::publish;
use swarm_shared::reliability::breaker::Breaker;
use swarm_shared::telemetry;

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
    presence: Presence,
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
        let mut presence = Presence::start(
            &args.ctx,
            &args.agent_id,
            AgentKind::ApiReliability,
            args.restarts,
            None,
            &myself,
            || ApiReliabilityMsg::Heartbeat,
        )
        .await?;
        presence
            .forward_only(
                Channel::AgentCommunication,
                &myself,
                ApiReliabilityMsg::Agent,
                &[swarm_shared::messages::agent_tags::CALL_OUTCOME],
            )
            .await?;
        Ok(ApiReliabilityState {
            args,
            breakers: HashMap::new(),
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
            ApiReliabilityMsg::Heartbeat => {
                state.presence.strike().await?;
                let open = state
                    .breakers
                    .values()
                    .filter(|breaker| breaker.state_at(Utc::now()) == BreakerState::Open)
                    .count();
                telemetry::breakers_open(open);
                state.presence.beat().await;
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
                state.presence.record(1, 0, started.elapsed());
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
    telemetry::breaker_transition(state);
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
