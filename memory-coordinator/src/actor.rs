//! The memory coordinator actor: the shell around [`Memory`] and [`synthesise`].
//!
//! Write-behind: a change is applied to the memory at once (and read from it), and queued
//! by key; a flush persists the queued keys to the store in one transaction, mirrors them to
//! their `swarm:memory:*` keys and announces them on `memory-sync` (one message per
//! [`MEMORY_SYNC_BATCH`] keys). A flush runs every
//! `memory.flush_interval`, at once when `memory.flush_keys` keys are queued, on request
//! ([`MemoryMsg::Flush`]) and when the actor stops. A key changed several times between
//! flushes is persisted and announced once, at its last version. A crash (panic) loses the
//! changes queued since the last flush: at most one interval's worth. A failed persist keeps
//! the keys queued for the next flush.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use swarm_shared::channels::Channel;
use swarm_shared::channels::MEMORY_KEY_PREFIX;
use swarm_shared::context::{AgentContext, Presence};
use swarm_shared::domain::{AgentKind, MemoryEntry};
use swarm_shared::messages::{AgentMessage, MEMORY_SYNC_BATCH, MemoryChange, MemoryChanges};
use swarm_shared::messages::{OnChannel, agent_tags, encode};
use swarm_shared::ports::KeyChange;
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
    /// Flush the queued changes now; replies with the number of keys persisted (0 when the
    /// persist failed and they stay queued).
    Flush(RpcReplyPort<usize>),
    /// The flush timer.
    FlushTick,
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
    /// Changes not yet flushed: the last per (namespace, key), with the order it was made in.
    queued: HashMap<(String, String), (u64, Change)>,
    /// Changes queued so far (orders `queued`).
    sequence: u64,
    /// The last persist failed: wait for the timer rather than retry at every message.
    persist_failed: bool,
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
            .forward_only(
                Channel::AgentCommunication,
                &myself,
                MemoryMsg::Agent,
                &[agent_tags::MEMORY_WRITE, agent_tags::EVENT_RECORDED],
            )
            .await?;
        presence.every(SWEEP_INTERVAL, &myself, || MemoryMsg::Sweep);
        presence.every(config.memory.sync_interval, &myself, || {
            MemoryMsg::Synthesise
        });
        if !config.memory.flush_interval.is_zero() {
            presence.every(config.memory.flush_interval, &myself, || {
                MemoryMsg::FlushTick
            });
        }
        Ok(MemoryState {
            args,
            memory,
            tally: EventTally::default(),
            presence,
            queued: HashMap::new(),
            sequence: 0,
            persist_failed: false,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // A graceful stop loses nothing.
        flush(state).await;
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
                let expires_at = Some(swarm_shared::time::after(now, ttl));
                let changes =
                    state
                        .memory
                        .put(&namespace, &key, value, &written_by, expires_at, now);
                queue(state, changes).await;
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
                let expires_at =
                    swarm_shared::time::after(now, state.args.ctx.config.memory.default_ttl);
                let value = serde_json::json!({ "project": project, "created": created });
                let changes = state.memory.put(
                    "events",
                    &event_id.to_string(),
                    value,
                    &state.args.agent_id,
                    Some(expires_at),
                    now,
                );
                queue(state, changes).await;
            }
            MemoryMsg::Agent(_) => {}
            MemoryMsg::List(namespace, reply) => {
                // The caller may have timed out; nothing to do then.
                let _ = reply.send(state.memory.list(&namespace, now));
            }
            MemoryMsg::Sweep => {
                let changes = state.memory.expire(now);
                queue(state, changes).await;
                telemetry::memory_entries(state.memory.len());
            }
            MemoryMsg::Flush(reply) => {
                let persisted = flush(state).await;
                // The caller may have timed out; nothing to do then.
                let _ = reply.send(persisted);
            }
            MemoryMsg::FlushTick => {
                flush(state).await;
            }
            MemoryMsg::Synthesise => synthesise_now(state).await,
            MemoryMsg::Heartbeat => state.presence.beat().await,
        }
        Ok(())
    }
}

/// Queues changes for the next flush (a key's later change replaces its earlier one), and
/// flushes at once when writing through or when enough keys are queued.
async fn queue(state: &mut MemoryState, changes: Vec<Change>) {
    for change in changes {
        state.sequence += 1;
        let id = (change.namespace.clone(), change.key.clone());
        state.queued.insert(id, (state.sequence, change));
    }
    let config = &state.args.ctx.config.memory;
    let write_through = config.flush_interval.is_zero();
    let full = state.queued.len() >= config.flush_keys && !state.persist_failed;
    if write_through || full {
        flush(state).await;
    }
}

/// Persists the queued changes in one transaction, then mirrors and announces them. Returns
/// the keys persisted; on a failed persist they stay queued (the mirror and announcement
/// still go out, so readers see the memory as it is) and 0 is returned.
async fn flush(state: &mut MemoryState) -> usize {
    if state.queued.is_empty() {
        return 0;
    }
    let mut changes: Vec<(u64, Change)> = state.queued.drain().map(|(_, queued)| queued).collect();
    changes.sort_unstable_by_key(|(sequence, _)| *sequence);
    let ctx = &state.args.ctx;
    let mut puts: Vec<MemoryEntry> = Vec::new();
    let mut deletes: Vec<(String, String)> = Vec::new();
    for (_, change) in &changes {
        match state.memory.entry(&change.namespace, &change.key) {
            Some(entry) => puts.push(entry.clone()),
            None => deletes.push((change.namespace.clone(), change.key.clone())),
        }
    }
    let persisted = match ctx.store.write_memory(&puts, &deletes).await {
        Ok(()) => {
            state.persist_failed = false;
            changes.len()
        }
        Err(err) => {
            tracing::warn!(keys = changes.len(), error = %err, "persisting memory changes failed; kept for the next flush");
            state.persist_failed = true;
            for (sequence, change) in &changes {
                let id = (change.namespace.clone(), change.key.clone());
                state.queued.insert(id, (*sequence, change.clone()));
            }
            0
        }
    };
    let at = Utc::now();
    let mut keys = Vec::with_capacity(changes.len());
    let mut announced = Vec::with_capacity(changes.len());
    for (_, change) in changes {
        keys.push(mirror(ctx, &state.memory, &change));
        announced.push(MemoryChange {
            namespace: change.namespace,
            key: change.key,
            version: change.version,
            op: change.op.to_owned(),
            at,
        });
    }
    // One message per MEMORY_SYNC_BATCH changes, in order.
    let mut payloads = Vec::with_capacity(announced.len().div_ceil(MEMORY_SYNC_BATCH));
    let mut rest = announced.into_iter().peekable();
    while rest.peek().is_some() {
        let message = MemoryChanges {
            changes: rest.by_ref().take(MEMORY_SYNC_BATCH).collect(),
        };
        match encode(&message) {
            Ok(payload) => payloads.push(payload),
            Err(err) => tracing::warn!(error = %err, "encoding memory changes failed"),
        }
    }
    if let Err(err) = ctx
        .bus
        .write_batch(keys, MemoryChanges::CHANNEL, payloads)
        .await
    {
        tracing::warn!(error = %err, "mirroring or announcing memory changes failed");
    }
    persisted
}

/// The change to a key's mirror (`swarm:memory:<namespace>:<key>`, with the entry's TTL), which
/// lets operators and other processes read it: set while the entry is held, removed once it
/// is gone.
fn mirror(ctx: &AgentContext, memory: &Memory, change: &Change) -> KeyChange {
    let key = format!("{MEMORY_KEY_PREFIX}{}:{}", change.namespace, change.key);
    let Some(entry) = memory.entry(&change.namespace, &change.key) else {
        return KeyChange::Delete { key };
    };
    let ttl = entry
        .expires_at
        .and_then(|at| (at - Utc::now()).to_std().ok())
        .unwrap_or(ctx.config.memory.default_ttl);
    match serde_json::to_vec(entry) {
        Ok(value) => KeyChange::Put { key, value, ttl },
        Err(err) => {
            // Not expected for a JSON value; the stale mirror is removed rather than kept.
            tracing::warn!(namespace = %change.namespace, key = %change.key, error = %err, "encoding a memory entry failed");
            KeyChange::Delete { key }
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
            telemetry::synthesis_snapshot_saved();
            tracing::debug!(snapshot = id, "synthesis snapshot saved");
            state.tally = EventTally::default();
        }
        // The tally is kept and folded into the next snapshot.
        Err(err) => tracing::warn!(error = %err, "saving synthesis snapshot failed"),
    }
}
