//! The memory coordinator actor: the shell around [`Memory`] and [`synthesise`].

use std::time::Duration;

use chrono::Utc;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use swarm_shared::channels::Channel;
use swarm_shared::channels::MEMORY_KEY_PREFIX;
use swarm_shared::context::{AgentContext, Presence};
use swarm_shared::domain::{AgentKind, MemoryEntry};
use swarm_shared::messages::{AgentMessage, MemoryChange};
use swarm_shared::ports::publish;
use swarm_shared::telemetry;

use crate::memory::{Change, Memory};
use crate::synthesis::{EventTally, synthesise};

/// How often expired entries are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The memory coordinator actor.
#[derive(Debug, Default)]
pub struct MemoryCoordinatorActor;

/// Start arguments.
#[derive(Debug, Clone)]
pub struct MemoryArgs {
    /// Agent id.
    pub agent_id: String,
    /// Ports and config.
    pub ctx: AgentContext,
    /// Restarts so far (reported in heartbeats).
    pub restarts: u32,
}

/// Messages.
#[derive(Debug)]
pub enum MemoryMsg {
    /// From `agent-communication`.
    Agent(AgentMessage),
    /// Live entries of a namespace.
    List(String, RpcReplyPort<Vec<MemoryEntry>>),
    /// Sweep expired entries.
    Sweep,
    /// Synthesise and persist a snapshot.
    Synthesise,
    /// Heartbeat tick.
    Heartbeat,
}

/// State.
#[derive(Debug)]
pub struct MemoryState {
    args: MemoryArgs,
    memory: Memory,
    tally: EventTally,
    presence: Presence,
}

impl Actor for MemoryCoordinatorActor {
    type Msg = MemoryMsg;
    type State = MemoryState;
    type Arguments = MemoryArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: MemoryArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let config = &args.ctx.config;
        let mut memory = Memory::new(config.memory.max_entries);
        // Memory outlives the actor: take back what the previous instance persisted.
        let restored = args.ctx.store.load_memory(Utc::now()).await?;
        let count = restored.len();
        for entry in restored {
            memory.restore(entry);
        }
        if count > 0 {
            tracing::info!(entries = count, "memory restored from the store");
        }
        let mut presence = Presence::start(
            &args.ctx,
            &args.agent_id,
            AgentKind::MemoryCoordinator,
            args.restarts,
            None,
            &myself,
            || MemoryMsg::Heartbeat,
        )
        .await?;
        presence
            .forward(Channel::AgentCommunication, &myself, MemoryMsg::Agent)
            .await?;
        presence.every(SWEEP_INTERVAL, &myself, || MemoryMsg::Sweep);
        presence.every(config.memory.sync_interval, &myself, || {
            MemoryMsg::Synthesise
        });
        Ok(MemoryState {
            args,
            memory,
            tally: EventTally::default(),
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
        let started = tokio::time::Instant::now();
        let now = Utc::now();
        // Injected faults strike at a memory write, the coordinator's unit of work.
        if matches!(message, MemoryMsg::Agent(AgentMessage::MemoryWrite { .. })) {
            state.presence.strike().await?;
        }
        match message {
            MemoryMsg::Agent(AgentMessage::MemoryWrite {
                namespace,
                key,
                value,
                ttl_s,
                written_by,
            }) => {
                let ttl = ttl_s.map_or(
                    state.args.ctx.config.memory.default_ttl,
                    Duration::from_secs,
                );
                let expires_at = chrono::Duration::from_std(ttl).ok().map(|ttl| now + ttl);
                let changes =
                    state
                        .memory
                        .put(&namespace, &key, value, &written_by, expires_at, now);
                apply(&state.args.ctx, &state.memory, changes).await;
                state.presence.record(1, 0, started.elapsed());
            }
            MemoryMsg::Agent(AgentMessage::EventRecorded {
                event_id,
                created,
                project,
                documents,
            }) => {
                // Sources merged in: every document but the one that created the event.
                state.tally.merged += u64::from(documents.saturating_sub(u32::from(created)));
                if created {
                    state.tally.created += 1;
                    if state.tally.projects.len() < 50 {
                        state.tally.projects.push(
                            project
                                .clone()
                                .unwrap_or_else(|| format!("event {event_id}")),
                        );
                    }
                }
                let ttl = chrono::Duration::from_std(state.args.ctx.config.memory.default_ttl).ok();
                let value = serde_json::json!({ "project": project, "created": created });
                let changes = state.memory.put(
                    "events",
                    &event_id.to_string(),
                    value,
                    &state.args.agent_id,
                    ttl.map(|ttl| now + ttl),
                    now,
                );
                apply(&state.args.ctx, &state.memory, changes).await;
            }
            MemoryMsg::Agent(_) => {}
            MemoryMsg::List(namespace, reply) => {
                // The caller may have timed out; nothing to do then.
                let _ = reply.send(state.memory.list(&namespace, now));
            }
            MemoryMsg::Sweep => {
                let changes = state.memory.expire(now);
                apply(&state.args.ctx, &state.memory, changes).await;
                metrics::gauge!(telemetry::MEMORY_ENTRIES).set(state.memory.len() as f64);
            }
            MemoryMsg::Synthesise => synthesise_now(state).await,
            MemoryMsg::Heartbeat => state.presence.beat().await,
        }
        Ok(())
    }
}

/// Mirrors an entry to its shared key (`swarm:memory:<namespace>:<key>`, with the entry's TTL)
/// so operators and other processes can read it; removes the key when the entry is gone.
async fn mirror(ctx: &AgentContext, memory: &Memory, namespace: &str, key: &str) {
    let shared_key = format!("{MEMORY_KEY_PREFIX}{namespace}:{key}");
    let result = match memory.entry(namespace, key) {
        Some(entry) => {
            let ttl = entry
                .expires_at
                .and_then(|at| (at - Utc::now()).to_std().ok())
                .unwrap_or(ctx.config.memory.default_ttl);
            match serde_json::to_vec(entry) {
                Ok(body) => ctx.bus.put_key(&shared_key, body, ttl).await,
                Err(err) => Err(err.into()),
            }
        }
        None => ctx.bus.delete_key(&shared_key).await,
    };
    if let Err(err) = result {
        tracing::debug!(%namespace, %key, error = %err, "mirroring a memory entry failed");
    }
}

/// Persists each change (write-through) and announces it on `memory-sync`.
async fn apply(ctx: &AgentContext, memory: &Memory, changes: Vec<Change>) {
    let at = Utc::now();
    for change in changes {
        let persisted = match (change.op, memory.entry(&change.namespace, &change.key)) {
            ("put", Some(entry)) => ctx.store.put_memory(entry).await,
            _ => {
                ctx.store
                    .delete_memory(&change.namespace, &change.key)
                    .await
            }
        };
        if let Err(err) = persisted {
            tracing::warn!(namespace = %change.namespace, key = %change.key, error = %err, "persisting a memory change failed");
        }
        mirror(ctx, memory, &change.namespace, &change.key).await;
        let message = MemoryChange {
            namespace: change.namespace,
            key: change.key,
            version: change.version,
            op: change.op.to_owned(),
            at,
        };
        if let Err(err) = publish(ctx.bus.as_ref(), &message).await {
            tracing::warn!(error = %err, "memory change broadcast failed");
        }
    }
}

async fn synthesise_now(state: &mut MemoryState) {
    let now = Utc::now();
    let breakers = state.memory.list("breakers", now);
    let performance = state.memory.get("performance", "latest", now).cloned();
    let body = synthesise(
        now,
        &state.memory.namespaces(now),
        &breakers,
        performance.as_ref(),
        &state.tally,
    );
    match state.args.ctx.store.save_snapshot(now, &body).await {
        Ok(id) => {
            metrics::counter!(telemetry::SYNTHESIS_SNAPSHOTS_TOTAL).increment(1);
            tracing::debug!(snapshot = id, "synthesis snapshot saved");
            state.tally = EventTally::default();
        }
        // The tally is kept and folded into the next snapshot.
        Err(err) => tracing::warn!(error = %err, "saving synthesis snapshot failed"),
    }
}
