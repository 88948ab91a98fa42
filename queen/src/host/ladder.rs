//! The restart ladder: what a child's death, a cooldown or a probe leads to (the pure policy
//! of `swarm_shared::supervision` applied), and starting and stopping children.

use chrono::Utc;

use ractor::ActorRef;
use rand::Rng;

use swarm_shared::context::AgentContext;
use swarm_shared::domain::ActionOutcome;
use swarm_shared::messages::{HealthMessage, LifecycleEvent};
use swarm_shared::ports::publish;
use swarm_shared::supervision::{Action, BreakerChange, Exit, Observation, Symptom, decide};
use swarm_shared::telemetry;
use tokio::time::Instant;

use super::*;

pub(super) async fn lifecycle(ctx: &AgentContext, child: &Child, event: LifecycleEvent) {
    let message = HealthMessage::Lifecycle {
        agent_id: child.spec.id.clone(),
        node: ctx.config.node.name.clone(),
        kind: child.spec.kind,
        event,
        restarts: child.restarts,
        at: Utc::now(),
    };
    if let Err(err) = publish(ctx.bus.as_ref(), &message).await {
        tracing::warn!(agent = %child.spec.id, error = %err, "lifecycle publish failed");
    }
}

/// Runs the policy on one observation of a child and stores its new history. Returns the
/// decision and how the child's breaker moved, if it did.
pub(super) fn observe(
    state: &mut HostState,
    index: usize,
    observation: &Observation,
) -> (swarm_shared::supervision::Decision, Option<BreakerChange>) {
    let sample: f64 = rand::rng().random();
    let child = &mut state.children[index];
    let (decision, next) = decide(
        &child.history,
        observation,
        Instant::now(),
        &child.policy,
        sample,
    );
    let change = child.history.breaker.change_to(next.breaker);
    if next.breaker != child.history.breaker {
        state
            .recorder
            .breaker(&child.spec.id, child.spec.kind, next.breaker);
    }
    child.history = next;
    (decision, change)
}

/// Handles a child that died; acts on the policy's decision.
pub(super) async fn child_died(
    myself: &ActorRef<HostMsg>,
    state: &mut HostState,
    index: usize,
    exit: Exit,
    reason: String,
) {
    state.children[index].cell = None;
    let (decision, _) = observe(state, index, &Observation::Exited(exit));
    let symptom = Symptom::from(exit);
    let child = &mut state.children[index];
    let id = child.spec.id.clone();
    match decision.action {
        Action::Restart => {
            tracing::warn!(agent = %id, delay = ?decision.delay, %reason, "actor died, restarting");
            let event = LifecycleEvent::Failed {
                reason: reason.clone(),
                delay_ms: decision.delay.as_millis() as u64,
            };
            child.pending = Some(PendingRestart {
                symptom,
                reason: format!("{reason}; {}", decision.reason),
            });
            lifecycle(&state.ctx, child, event).await;
            myself.send_after(decision.delay, move || HostMsg::Restart(id));
        }
        Action::AlertOnly => {
            telemetry::actor_gave_up(child.spec.kind);
            let full = format!("{reason}; {}", decision.reason);
            state.recorder.record(
                &id,
                child.spec.kind,
                symptom,
                Action::AlertOnly,
                ActionOutcome::Succeeded,
                &full,
            );
            lifecycle(&state.ctx, child, LifecycleEvent::GaveUp { reason: full }).await;
            if let Some(after) = decision.retry_after {
                myself.send_after(after, move || HostMsg::CooldownElapsed(id));
            }
        }
        _ => {
            tracing::info!(agent = %id, %reason, decision = %decision.reason, "actor ended; not restarted");
            lifecycle(&state.ctx, child, LifecycleEvent::Stopped).await;
        }
    }
}

/// The breaker's cooldown is over: the next rung (recreate, failover, alert only).
pub(super) async fn cooldown_elapsed(
    myself: &ActorRef<HostMsg>,
    state: &mut HostState,
    index: usize,
) {
    let (decision, _) = observe(state, index, &Observation::CooldownElapsed);
    let child = &state.children[index];
    let (id, kind) = (child.spec.id.clone(), child.spec.kind);
    match decision.action {
        Action::Recreate => {
            let outcome = recreate(myself, state, index).await;
            let reason = match &outcome {
                Ok(()) => format!("{}; a fresh instance started", decision.reason),
                Err(err) => format!(
                    "{}; the fresh instance failed to start: {err}",
                    decision.reason
                ),
            };
            state.recorder.record(
                &id,
                kind,
                Symptom::CooldownElapsed,
                Action::Recreate,
                outcome_of(&outcome),
                &reason,
            );
        }
        Action::Failover => {
            let released = release_pending(state, index).await;
            let outcome = match released {
                Ok(count) => recreate(myself, state, index)
                    .await
                    .map(|()| count)
                    .map_err(|err| ChildError::Restart {
                        released: count,
                        source: Box::new(err),
                    }),
                Err(err) => Err(err),
            };
            let holds_work = state.children[index].spec.queue.is_some();
            let reason = match &outcome {
                Ok(count) if holds_work => format!(
                    "{}; {count} pending item(s) released to peers, a fresh instance started with none",
                    decision.reason
                ),
                Ok(_) => format!(
                    "{}; it holds no queued work, a fresh instance started",
                    decision.reason
                ),
                Err(err) => format!("{}; {err}", decision.reason),
            };
            state.recorder.record(
                &id,
                kind,
                Symptom::CooldownElapsed,
                Action::Failover,
                outcome_of(&outcome),
                &reason,
            );
        }
        Action::AlertOnly => {
            state.recorder.record(
                &id,
                kind,
                Symptom::CooldownElapsed,
                Action::AlertOnly,
                ActionOutcome::Succeeded,
                &format!("{}; {id} stays down", decision.reason),
            );
        }
        _ => {
            if let Some(after) = decision.retry_after {
                myself.send_after(after, move || HostMsg::CooldownElapsed(id));
            }
        }
    }
}

pub(super) fn outcome_of<T, E>(result: &Result<T, E>) -> ActionOutcome {
    if result.is_ok() {
        ActionOutcome::Succeeded
    } else {
        ActionOutcome::Failed
    }
}

/// Why the host could not carry out an action on a child.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// Its actor did not start.
    #[error("start failed: {0}")]
    Start(#[source] ractor::SpawnErr),
    /// Its pending work could not be made claimable by its peers.
    #[error("releasing its pending work failed: {0}")]
    Release(#[source] swarm_shared::Error),
    /// Failover released its work, then the fresh instance did not start.
    #[error(
        "released {released} pending item(s), but the fresh instance failed to start: {source}"
    )]
    Restart {
        /// Items released to the peers.
        released: u64,
        /// Why it did not start.
        #[source]
        source: Box<ChildError>,
    },
}

/// Failover's first half: the child's pending items become claimable by its peers at once.
pub(super) async fn release_pending(state: &HostState, index: usize) -> Result<u64, ChildError> {
    let child = &state.children[index];
    let Some(queue) = child.spec.queue else {
        return Ok(0);
    };
    let consumer = state.ctx.instance_id(&child.spec.id);
    state
        .ctx
        .queue
        .release(queue, &consumer)
        .await
        .map_err(ChildError::Release)
}

/// Stops a child (if running) and starts a fresh instance: a new actor whose state is rebuilt
/// from the store, registered anew, with a fresh restart count.
pub(super) async fn recreate(
    myself: &ActorRef<HostMsg>,
    state: &mut HostState,
    index: usize,
) -> Result<(), ChildError> {
    let timeout = state.ctx.config.supervision.stop_timeout;
    let child = &mut state.children[index];
    stop_child(child, timeout, "recreate").await;
    state.ctx.deregister(&child.spec.id).await;
    child.restarts = 0;
    child.pending = None;
    start_child(myself, state, index, Start::Fresh).await
}

/// Stops a child's actor (if running) and waits for it, so the supervision event that
/// follows finds no running child and is ignored. A child that does not stop in time (hung)
/// is killed, which ends even a handler that never returns.
pub(super) async fn stop_child(child: &mut Child, timeout: std::time::Duration, reason: &str) {
    let Some(cell) = child.cell.take() else {
        return;
    };
    if cell
        .stop_and_wait(Some(reason.to_owned()), Some(timeout))
        .await
        .is_err()
    {
        tracing::warn!(agent = %child.spec.id, "actor did not stop in time, killing");
        let _ = cell.kill_and_wait(Some(timeout)).await;
    }
}

/// How a child is (re)started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// Started for the first time, resumed after a drain, or recreated (counters as they are).
    Fresh,
    /// Restarted under the same identity: counted in its restarts and in the metric.
    Restart,
}

/// Starts a child's actor now; on failure the usual policy takes over. The one path the
/// supervisor's restarts, the ladder and queen commands use. A restart the policy decided is
/// recorded here, once its outcome is known.
pub(super) async fn start_child(
    myself: &ActorRef<HostMsg>,
    state: &mut HostState,
    index: usize,
    how: Start,
) -> Result<(), ChildError> {
    let child = &mut state.children[index];
    if how == Start::Restart {
        child.restarts += 1;
        telemetry::actor_restarted(child.spec.kind);
        tracing::info!(agent = %child.spec.id, restarts = child.restarts, "restarting actor");
    }
    let pending = child.pending.take();
    let started = (child.spec.start)(myself.get_cell(), child.restarts).await;
    let child = &mut state.children[index];
    let outcome = match &started {
        Ok(_) => ActionOutcome::Succeeded,
        Err(_) => ActionOutcome::Failed,
    };
    if let Some(pending) = pending {
        let reason = match &started {
            Ok(_) => pending.reason,
            Err(err) => format!("{}; start failed: {err}", pending.reason),
        };
        state.recorder.record(
            &child.spec.id,
            child.spec.kind,
            pending.symptom,
            Action::Restart,
            outcome,
            &reason,
        );
    }
    match started {
        Ok(cell) => {
            child.cell = Some(cell);
            lifecycle(&state.ctx, child, LifecycleEvent::Started).await;
            Ok(())
        }
        Err(err) => {
            let err = ChildError::Start(err);
            Box::pin(child_died(
                myself,
                state,
                index,
                Exit::Error,
                err.to_string(),
            ))
            .await;
            Err(err)
        }
    }
}

/// A liveness probe of every running child: closes half-open breakers and, after
/// `reset_after` healthy, resets counters.
pub(super) fn probe_children(state: &mut HostState) {
    for index in 0..state.children.len() {
        if state.children[index].cell.is_some() {
            let (decision, change) = observe(state, index, &Observation::Probe { healthy: true });
            if change == Some(BreakerChange::Closed) {
                tracing::info!(agent = %state.children[index].spec.id, "{}", decision.reason);
            }
        }
    }
}
