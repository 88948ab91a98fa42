//! Carrying out the decisions about actors and dependencies: restart or recreate by command,
//! failover of a dead actor's work to its peers, alerts.

use swarm_shared::channels::queue_of;
use swarm_shared::commands::{Command, is_worker};
use swarm_shared::context::AgentContext;
use swarm_shared::domain::{ActionOutcome, AgentKind};
use swarm_shared::supervision::{Action, Breaker, Decision, Observation, Policy, Symptom, decide};
use tokio::time::Instant;

use crate::commands::issue;

use super::*;

/// A supervisor decision that could not be handed to the hosts.
#[derive(Debug, thiserror::Error)]
#[error("storing the command failed: {0}")]
pub struct CommandFailed(#[source] swarm_shared::Error);

/// [`issue`](crate::commands::issue) for the supervisor's own decisions.
pub(super) async fn command(ctx: &AgentContext, command: &Command) -> Result<(), CommandFailed> {
    issue(ctx, command).await.map(|_| ()).map_err(CommandFailed)
}

/// Moves a dead or broken instance's pending work to its healthy peers.
pub(super) async fn failover(
    ctx: &AgentContext,
    watched: &Watched,
    peers: usize,
) -> (ActionOutcome, String) {
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
pub(super) async fn supervise_actors(state: &mut SupervisorState, checks: &Checks) {
    let now = Instant::now();
    let own = state.ctx.config.node.name.clone();
    let ids: Vec<String> = state.watched.keys().cloned().collect();
    // Data quality actors on a partitioned queue take only from the partitions they lease: one
    // idle beside a backlog in a peer's partition is not hung (a hung one stops renewing its
    // leases and its heartbeats). They are judged by what their kind records together.
    let partitioned = state.ctx.config.quality.partitions > 1;
    let kind_processed: u64 = state
        .watched
        .values()
        .filter(|watched| watched.kind == AgentKind::DataQuality)
        .map(|watched| watched.stats.processed)
        .sum();
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
                let processed = if partitioned && watched.kind == AgentKind::DataQuality {
                    kind_processed
                } else {
                    watched.stats.processed
                };
                observations.push(Observation::Progress {
                    processed,
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
pub(super) async fn carry_out(
    state: &mut SupervisorState,
    id: &str,
    symptom: Symptom,
    decision: Decision,
) {
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
pub(super) fn supervise_dependencies(state: &mut SupervisorState, checks: &Checks) {
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
