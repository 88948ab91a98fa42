//! Desired state and queen commands: reconciling the children with the stored desired
//! state, and arming the faults `POST /api/v1/faults` announces.

use ractor::{ActorProcessingErr, ActorRef};

use swarm_shared::channels::Channel;
use swarm_shared::commands::{HostAction, HostedActor, plan};
use swarm_shared::context::AgentContext;

use swarm_shared::messages::{LifecycleEvent, QueenCommand, decode};

use swarm_shared::supervision::{Action, Observation};
use swarm_shared::telemetry;

use super::*;

/// Sends `Reconcile` whenever the queen announces a desired-state change, and arms faults
/// announced by `POST /api/v1/faults` (when this process has fault injection on).
pub(super) async fn listen_to_commands(
    ctx: &AgentContext,
    host: ActorRef<HostMsg>,
) -> Result<tokio::task::JoinHandle<()>, ActorProcessingErr> {
    use futures::StreamExt;
    let mut subscription = ctx.bus.subscribe(Channel::QueenCommands).await?;
    let faults = ctx.faults.clone();
    let node = ctx.config.node.name.clone();
    Ok(tokio::spawn(async move {
        while let Some(payload) = subscription.next().await {
            match decode::<QueenCommand>(&payload) {
                Ok(QueenCommand::DesiredStateChanged)
                    if host.send_message(HostMsg::Reconcile).is_err() =>
                {
                    break;
                }
                Ok(QueenCommand::InjectFault {
                    target,
                    fault,
                    count,
                }) if faults.enabled() => {
                    // `node/agent` targets one process's agent; a bare id or kind, every
                    // process's.
                    let target = match target.split_once('/') {
                        Some((on, agent)) if on == node => agent.to_owned(),
                        Some(_) => continue,
                        None => target,
                    };
                    if let Err(err) = faults.arm(&target, fault, count) {
                        tracing::warn!(%target, error = %err, "arming a fault failed");
                    } else {
                        tracing::warn!(%target, fault = fault.as_str(), count, "fault armed");
                    }
                }
                _ => {}
            }
        }
    }))
}

/// Reads the desired state and applies the planner's actions. A store failure skips this
/// round: the next heartbeat tries again.
pub(super) async fn reconcile(myself: &ActorRef<HostMsg>, state: &mut HostState) {
    let desired = match state.ctx.store.list_desired().await {
        Ok(desired) => desired,
        Err(err) => {
            tracing::debug!(error = %err, "reading desired state failed; retrying next tick");
            return;
        }
    };
    let actors: Vec<HostedActor> = state
        .children
        .iter()
        .map(|child| HostedActor {
            id: child.spec.id.clone(),
            kind: child.spec.kind,
            drained: child.drained,
        })
        .collect();
    let first = !state.reconciled_once;
    state.reconciled_once = true;
    let node = state.ctx.config.node.name.clone();
    let actions = plan(&desired, &node, &actors, &mut state.applied, first);
    let timeout = state.ctx.config.supervision.stop_timeout;
    for action in actions {
        tracing::info!(action = action.label(), ?action, "applying queen command");
        telemetry::command_applied(action.label());
        let position = |id: &str| state.children.iter().position(|c| c.spec.id == id);
        match action {
            HostAction::Restart(id) => {
                let Some(index) = position(&id) else { continue };
                observe(state, index, &Observation::Manual(Action::Restart));
                stop_child(&mut state.children[index], timeout, "restart command").await;
                let _ = start_child(myself, state, index, Start::Restart).await;
            }
            HostAction::Recreate(id) => {
                let Some(index) = position(&id) else { continue };
                observe(state, index, &Observation::Manual(Action::Recreate));
                let _ = recreate(myself, state, index).await;
            }
            HostAction::Start(kind, number) => {
                let Some(spec) = state.workers.make(&state.ctx, kind, number) else {
                    continue;
                };
                state.children.push(Child::new(spec, None, &state.ctx));
                let index = state.children.len() - 1;
                let _ = start_child(myself, state, index, Start::Fresh).await;
            }
            HostAction::Remove(id) => {
                let Some(index) = position(&id) else { continue };
                let mut child = state.children.remove(index);
                stop_child(&mut child, timeout, "scaled down").await;
                lifecycle(&state.ctx, &child, LifecycleEvent::Stopped).await;
            }
            HostAction::Drain(id) => {
                let Some(index) = position(&id) else { continue };
                let child = &mut state.children[index];
                child.drained = true;
                stop_child(child, timeout, "drained").await;
                lifecycle(&state.ctx, child, LifecycleEvent::Stopped).await;
            }
            HostAction::Resume(id) => {
                let Some(index) = position(&id) else { continue };
                state.children[index].drained = false;
                let _ = start_child(myself, state, index, Start::Fresh).await;
            }
        }
    }
}
