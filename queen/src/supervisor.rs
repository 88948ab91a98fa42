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
use swarm_shared::channels::{Channel, QUEUES, downstream_of, held_back, queue_of};
use swarm_shared::commands::{Command, desired_replicas, is_worker};
use swarm_shared::context::{AgentContext, Presence, forward, forward_only, service_name};
use swarm_shared::domain::{ActionOutcome, AgentKind};
use swarm_shared::messages::{AgentMessage, AgentStats, HealthMessage, LifecycleEvent};
use swarm_shared::ports::QueueDepth;
use swarm_shared::supervision::{
    Action, Breaker, Decision, History, LoadSample, Observation, Policy, ScaleHistory, Symptom,
    decide, decide_scale, scale_target,
};
use swarm_shared::telemetry;
use tokio::time::Instant;

use crate::commands::issue;
use crate::health::{BUS, ping_dependencies};
use crate::queen::qualified_id;
use crate::record::Recorder;

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
    recommended: BTreeMap<AgentKind, Instant>,
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
            recommended: BTreeMap::new(),
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
                bottleneck: Some(kind),
                action,
                ..
            }) if action == Action::ScaleUp.as_str() => {
                state.recommended.insert(kind, Instant::now());
            }
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

/// The URL of a node's `/healthz`: see [`swarm_shared::context::metrics_endpoint`].
fn healthz_url(node: &str, metrics_addr: &str) -> Option<String> {
    let endpoint = swarm_shared::context::metrics_endpoint(node, metrics_addr)?;
    Some(format!("http://{endpoint}/healthz"))
}

/// Gathers one look's facts; never fails (what could not be learned is left out).
async fn gather(
    ctx: AgentContext,
    http: reqwest::Client,
    stale: HashMap<String, Option<String>>,
) -> Checks {
    let mut checks = Checks::default();
    let mut queue_error = None;
    for queue in QUEUES {
        match ctx.queue.depth(queue).await {
            Ok(depth) => {
                checks.depths.insert(queue, depth);
            }
            Err(err) => queue_error = Some(err.to_string()),
        }
    }
    let mut passing = BTreeSet::new();
    let mut registry_ok = true;
    for kind in AgentKind::ALL {
        match ctx.registry.healthy(&service_name(kind)).await {
            Ok(instances) => passing.extend(instances.into_iter().map(|i| i.id)),
            Err(err) => {
                tracing::debug!(error = %err, "registry check failed; heartbeats alone decide");
                registry_ok = false;
                break;
            }
        }
    }
    checks.passing = registry_ok.then_some(passing);
    for (node, addr) in stale {
        let answered = match addr.as_deref().and_then(|addr| healthz_url(&node, addr)) {
            Some(url) => http
                .get(&url)
                .send()
                .await
                .is_ok_and(|response| response.status().is_success()),
            None => false,
        };
        checks.answered.insert(node, answered);
    }
    for (name, answer) in ping_dependencies(&ctx).await {
        let mut error = answer.err().map(|err| err.to_string());
        if name == BUS {
            // The work queues live on the same server.
            error = error.or(queue_error.clone());
        }
        checks.dependencies.push((name, error));
    }
    if let Ok(desired) = ctx.store.list_desired().await {
        checks.replicas = desired_replicas(&desired);
    }
    checks
}

/// A supervisor decision that could not be handed to the hosts.
#[derive(Debug, thiserror::Error)]
#[error("storing the command failed: {0}")]
pub struct CommandFailed(#[source] swarm_shared::Error);

/// [`issue`](crate::commands::issue) for the supervisor's own decisions.
async fn command(ctx: &AgentContext, command: &Command) -> Result<(), CommandFailed> {
    issue(ctx, command).await.map(|_| ()).map_err(CommandFailed)
}

/// Moves a dead or broken instance's pending work to its healthy peers.
async fn failover(ctx: &AgentContext, watched: &Watched, peers: usize) -> (ActionOutcome, String) {
    let Some(queue) = queue_of(watched.kind) else {
        return (
            ActionOutcome::Succeeded,
            "it holds no queued work; nothing to move".into(),
        );
    };
    let consumer = format!("{}/{}", watched.node, watched.agent_id);
    match ctx.queue.release(queue, &consumer).await {
        Ok(count) if peers > 0 => (
            ActionOutcome::Succeeded,
            format!("{count} pending item(s) released to {peers} healthy peer(s)"),
        ),
        Ok(count) => (
            ActionOutcome::Failed,
            format!(
                "{count} pending item(s) released, but no healthy {} instance is there to take them",
                watched.kind
            ),
        ),
        Err(err) => (
            ActionOutcome::Failed,
            format!("releasing its pending work failed: {err}"),
        ),
    }
}

/// Runs the policy for every watched actor and carries out the decisions.
async fn supervise_actors(state: &mut SupervisorState, checks: &Checks) {
    let now = Instant::now();
    let own = state.ctx.config.node.name.clone();
    let ids: Vec<String> = state.watched.keys().cloned().collect();
    for id in ids {
        let Some(watched) = state.watched.get(&id) else {
            continue;
        };
        if watched.host_handling {
            continue;
        }
        let policy = state.policies[&watched.kind].clone();
        let late = is_late(&state.ctx, watched, now);
        let instance = format!("{}/{}", watched.node, watched.agent_id);
        let failing_check = checks
            .passing
            .as_ref()
            .is_some_and(|passing| late && !passing.contains(&instance));
        let node_answers = watched.node == own
            || watched.node.is_empty()
            || checks.answered.get(&watched.node).copied().unwrap_or(true);
        let mut observations = Vec::new();
        if matches!(watched.history.breaker, Breaker::Open { .. }) {
            observations.push(Observation::CooldownElapsed);
        }
        if late && !node_answers {
            observations.push(Observation::Unreachable);
        } else {
            observations.push(Observation::Probe {
                healthy: !late && !failing_check,
            });
            if !late && is_worker(watched.kind) {
                // Ready items only: items pending under a busy peer are not this actor's. An
                // actor held back by full downstream queues waits by design, not hung.
                let waiting = if checks.held_back(watched.kind, &state.ctx) {
                    0
                } else {
                    queue_of(watched.kind)
                        .and_then(|queue| checks.depths.get(queue))
                        .map_or(0, |depth| depth.ready)
                };
                observations.push(Observation::Progress {
                    processed: watched.stats.processed,
                    pending: waiting,
                });
            }
        }
        for observation in observations {
            let Some(watched) = state.watched.get_mut(&id) else {
                break;
            };
            let sample: f64 = rand::random();
            let (decision, next) = decide(&watched.history, &observation, now, &policy, sample);
            if next.breaker != watched.history.breaker {
                state.recorder.breaker(&id, watched.kind, next.breaker);
            }
            watched.history = next;
            if decision.action != Action::None {
                let symptom = match (&observation, late) {
                    (Observation::Unreachable, _) => Symptom::Unreachable,
                    (Observation::Progress { .. }, _) => Symptom::NoProgress,
                    (Observation::CooldownElapsed, _) => Symptom::CooldownElapsed,
                    (_, true) => Symptom::MissedHeartbeats,
                    _ => Symptom::FailedRegistryCheck,
                };
                carry_out(state, &id, symptom, decision).await;
                break;
            }
        }
    }
}

/// Carries out one decision about an actor and records it.
async fn carry_out(state: &mut SupervisorState, id: &str, symptom: Symptom, decision: Decision) {
    let Some(watched) = state.watched.get(id) else {
        return;
    };
    let kind = watched.kind;
    let (node, agent) = (watched.node.clone(), watched.agent_id.clone());
    let (outcome, detail) = match decision.action {
        Action::Restart => match command(&state.ctx, &Command::Restart { node, agent }).await {
            Ok(()) => (
                ActionOutcome::Succeeded,
                "restart command sent to its host".to_owned(),
            ),
            Err(err) => (ActionOutcome::Failed, err.to_string()),
        },
        Action::Recreate => {
            match command(&state.ctx, &Command::RecreateAgent { node, agent }).await {
                Ok(()) => (
                    ActionOutcome::Succeeded,
                    "recreate command sent to its host".to_owned(),
                ),
                Err(err) => (ActionOutcome::Failed, err.to_string()),
            }
        }
        Action::Failover => {
            let now = Instant::now();
            let peers = state
                .watched
                .iter()
                .filter(|(other, w)| {
                    other.as_str() != id
                        && w.kind == kind
                        && !w.host_handling
                        && !is_late(&state.ctx, w, now)
                })
                .count();
            let (outcome, detail) = failover(&state.ctx, watched, peers).await;
            if symptom == Symptom::Unreachable {
                (outcome, detail)
            } else {
                // A hung actor whose process lives: its host starts it again too, with nothing
                // left to recover.
                match command(&state.ctx, &Command::Restart { node, agent }).await {
                    Ok(()) => (
                        outcome,
                        format!("{detail}; restart command sent to its host"),
                    ),
                    Err(err) => (ActionOutcome::Failed, format!("{detail}; {err}")),
                }
            }
        }
        Action::AlertOnly => (ActionOutcome::Succeeded, String::new()),
        _ => return,
    };
    let reason = if detail.is_empty() {
        decision.reason
    } else {
        format!("{}; {detail}", decision.reason)
    };
    state
        .recorder
        .record(id, kind, symptom, decision.action, outcome, &reason);
    if decision.action == Action::Failover && symptom == Symptom::Unreachable {
        // Its work has moved; if its process comes back, its heartbeats bring it back here.
        state.watched.remove(id);
    }
}

/// Probes the store and the bus; an unreachable one is alerted on (damped, once per episode).
fn supervise_dependencies(state: &mut SupervisorState, checks: &Checks) {
    let now = Instant::now();
    // A server is not ours to restart: only the damping matters, every action on it is an
    // alert, and with no restart budget to spend the episode stays open until it answers.
    let policy = Policy {
        max_restarts: u32::MAX,
        ..state.policies[&AgentKind::Queen].clone()
    };
    for (name, error) in &checks.dependencies {
        let history = state.dependencies.entry(name).or_default();
        let observation = Observation::Probe {
            healthy: error.is_none(),
        };
        let (decision, next) = decide(history, &observation, now, &policy, 0.5);
        *history = next;
        if decision.action != Action::None {
            let reason = format!(
                "{name} does not answer: {}; {}",
                error.as_deref().unwrap_or("unknown error"),
                decision.reason
            );
            state.recorder.record(
                name,
                AgentKind::Queen,
                Symptom::UnreachableDependency,
                Action::AlertOnly,
                ActionOutcome::Succeeded,
                &reason,
            );
        }
    }
}

/// One load sample of a scalable kind from the latest heartbeats and queue depths.
fn load_sample(
    state: &mut SupervisorState,
    kind: AgentKind,
    replicas: u32,
    checks: &Checks,
    now: Instant,
) -> LoadSample {
    let fresh_for = state.ctx.config.performance.interval * 3;
    let recommended_up = state
        .recommended
        .get(&kind)
        .is_some_and(|at| now.saturating_duration_since(*at) <= fresh_for);
    let mut sample = LoadSample {
        replicas,
        recommended_up,
        ..LoadSample::default()
    };
    if let Some(depth) = queue_of(kind).and_then(|queue| checks.depths.get(queue)) {
        // Held back by full downstream queues, more instances would wait as well.
        if !checks.held_back(kind, &state.ctx) {
            sample.backlog = depth.ready;
        }
        sample.pending = depth.pending;
    }
    let (mut latency_sum, mut latency_n) = (0.0, 0u32);
    let (mut processed, mut errors) = (0u64, 0u64);
    for watched in state.watched.values_mut() {
        if watched.kind != kind || watched.host_handling || is_late(&state.ctx, watched, now) {
            continue;
        }
        let stats = &watched.stats;
        sample.cpu_percent = max_of(sample.cpu_percent, stats.cpu_percent);
        sample.memory_percent = max_of(sample.memory_percent, stats.memory_percent);
        if stats.throughput_per_s > 0.0 {
            latency_sum += stats.mean_latency_ms;
            latency_n += 1;
        }
        processed += stats.processed.saturating_sub(watched.counted.0);
        errors += stats.errors.saturating_sub(watched.counted.1);
        watched.counted = (stats.processed, stats.errors);
    }
    if latency_n > 0 {
        sample.latency = Some(Duration::from_secs_f64(
            latency_sum / f64::from(latency_n) / 1000.0,
        ));
    }
    if processed > 0 {
        sample.error_rate = Some(errors as f64 / processed as f64);
    }
    sample
}

fn max_of(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Weighs scaling for every scalable kind and sets the desired replicas.
async fn scale(state: &mut SupervisorState, checks: &Checks) {
    let now = Instant::now();
    for kind in [
        AgentKind::Scraping,
        AgentKind::Keyword,
        AgentKind::DataQuality,
    ] {
        let running = state.watched.values().any(|w| w.kind == kind);
        if !running {
            // No process runs the kind (or none has reported yet): nothing to scale.
            continue;
        }
        let replicas = checks
            .replicas
            .get(&kind)
            .copied()
            .unwrap_or_else(|| state.ctx.config.replicas(kind));
        telemetry::desired_replicas(kind, replicas);
        let policy = state.policies[&kind].clone();
        let sample = load_sample(state, kind, replicas, checks, now);
        let history = state.scaling.entry(kind).or_default();
        let (decision, next) = decide_scale(history, &sample, now, &policy);
        *history = next;
        let Some(target) = scale_target(&decision, replicas) else {
            continue;
        };
        let target = target.clamp(policy.min_replicas, policy.max_replicas);
        let result = command(
            &state.ctx,
            &Command::Scale {
                kind,
                replicas: target,
            },
        )
        .await;
        let (outcome, reason) = match result {
            Ok(()) => (ActionOutcome::Succeeded, decision.reason),
            Err(err) => (ActionOutcome::Failed, format!("{}; {err}", decision.reason)),
        };
        let symptom = if decision.action == Action::ScaleUp {
            Symptom::Load
        } else {
            Symptom::Calm
        };
        state.recorder.record(
            kind.as_str(),
            kind,
            symptom,
            decision.action,
            outcome,
            &reason,
        );
    }
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
