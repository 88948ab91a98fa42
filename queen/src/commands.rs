//! Operators' and the supervisor's commands: validated, stored as desired state, announced.
//! A leaf: it imports nothing of the crate.

use swarm_shared::commands::Command;
use swarm_shared::context::AgentContext;
use swarm_shared::domain::DesiredEntry;
use swarm_shared::messages::QueenCommand;
use swarm_shared::ports::publish;

/// Validates a command, stores it as desired state and announces it: the one path of the
/// API's commands and the supervisor's. A lost announcement only delays the command: hosts
/// also reconcile at every heartbeat.
pub async fn issue(ctx: &AgentContext, command: &Command) -> swarm_shared::Result<DesiredEntry> {
    command.validate()?;
    let (key, value) = command.desired();
    let entry = ctx.store.put_desired(&key, &value).await?;
    if let Err(err) = publish(ctx.bus.as_ref(), &QueenCommand::DesiredStateChanged).await {
        tracing::warn!(error = %err, "announcing a command failed; hosts pick it up at their next tick");
    }
    Ok(entry)
}
