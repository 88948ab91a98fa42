//! The actor shell shared by the queue-consuming agents (scraping, keyword, data quality).
//! A [`Stage`] holds the agent's logic; [`WorkerActor`] does the rest the same way for all:
//!
//! * after a (re)start, first take back the items left pending under this agent's consumer
//!   name, so a crash loses nothing;
//! * take a batch, process it, acknowledge what is done; what is not done stays pending and is
//!   redelivered (to this or another consumer after the visibility timeout);
//! * take nothing while the queues after it are full (back-pressure, see
//!   [`held_back`](swarm_shared::channels::held_back));
//! * move items delivered too often, or that cannot be decoded, to the dead-letter queue;
//! * heartbeat with counters, forward bus messages to the stage.

use std::marker::PhantomData;
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt as _;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::Serialize;
use swarm_shared::channels::{
    Channel, MAX_DELIVERIES, QUEUE_DEAD_LETTER, downstream_of, held_back,
};
use swarm_shared::context::{AgentContext, Presence};
use swarm_shared::domain::AgentKind;
use swarm_shared::messages::{AgentMessage, MemoryChanges, QueenCommand, decode, encode};
use swarm_shared::ports::{Delivery, WorkQueue};
use swarm_shared::telemetry;
use tokio::time::Instant;
use tracing::Instrument as _;

mod panics;
use panics::panic_message;

/// What a stage did with a batch.
#[derive(Debug, Default)]
pub struct BatchResult {
    /// Ids to acknowledge.
    pub done: Vec<String>,
    /// Items that failed and stay pending for redelivery.
    pub failed: u64,
}

/// The logic of a queue-consuming agent.
#[async_trait]
pub trait Stage: Send + Sized + 'static {
    /// Agent kind.
    const KIND: AgentKind;
    /// Queue consumed.
    const QUEUE: &'static str;
    /// What the queue carries; the shell decodes it and dead-letters what does not decode.
    type Item: for<'de> serde::Deserialize<'de> + Send;
    /// Builds the stage at (re)start.
    async fn init(ctx: &AgentContext, agent_id: &str) -> Result<Self, ActorProcessingErr>;
    /// Items taken per batch.
    fn batch(ctx: &AgentContext) -> usize;
    /// Processes a batch.
    /// Processes a batch of decoded items, each with its delivery id.
    async fn process(
        &mut self,
        ctx: &AgentContext,
        agent_id: &str,
        batch: Vec<(String, Self::Item)>,
    ) -> BatchResult;
    /// The `agent-communication` message types (`type` tags) the stage wants; none, the
    /// default, leaves the channel unsubscribed.
    fn agent_messages() -> &'static [&'static str] {
        &[]
    }
    /// A message from `agent-communication`.
    async fn on_agent_message(&mut self, _ctx: &AgentContext, _message: AgentMessage) {}
    /// A message from `queen-commands`.
    async fn on_command(&mut self, _ctx: &AgentContext, _command: QueenCommand) {}
    /// Whether the stage wants `memory-sync` messages.
    fn wants_memory_changes() -> bool {
        false
    }
    /// Changes of shared memory (one memory flush's, or part of it), from `memory-sync`.
    async fn on_memory_changes(&mut self, _ctx: &AgentContext, _changes: MemoryChanges) {}
    /// Called at every heartbeat.
    async fn on_heartbeat(&mut self, _ctx: &AgentContext) {}
    /// Items the stage can take now. A stage that keeps work in flight (see [`Stage::drain`])
    /// lowers it while busy; the default is a full batch.
    fn capacity(&self, ctx: &AgentContext) -> usize {
        Self::batch(ctx)
    }
    /// Items taken and still in flight inside the stage.
    fn in_flight(&self) -> usize {
        0
    }
    /// Finishes in-flight items, waiting at most `wait` for the first; returns those done.
    /// Stages whose `process` finishes every item never have any.
    async fn drain(
        &mut self,
        _ctx: &AgentContext,
        _agent_id: &str,
        _wait: Duration,
    ) -> BatchResult {
        BatchResult::default()
    }
}

/// Start arguments of a worker.
#[derive(Debug, Clone)]
pub struct WorkerArgs {
    /// Agent id (`keyword-0`); also its consumer name on this node.
    pub agent_id: String,
    /// Ports and config.
    pub ctx: AgentContext,
    /// Restarts so far (reported in heartbeats).
    pub restarts: u32,
}

/// Messages of a worker.
#[derive(Debug)]
pub enum WorkerMsg {
    /// Take and process the next batch.
    Poll,
    /// Send a heartbeat.
    Heartbeat,
    /// From `agent-communication`.
    Agent(AgentMessage),
    /// From `queen-commands`.
    Command(QueenCommand),
    /// From `memory-sync`.
    Memory(MemoryChanges),
}

/// State of a worker.
pub struct WorkerState<S> {
    stage: S,
    args: WorkerArgs,
    consumer: String,
    presence: Presence,
    recover_first: bool,
    /// The last back-pressure answer (to log its changes).
    held_back: bool,
}

/// The worker actor for stage `S`.
pub struct WorkerActor<S> {
    _stage: PhantomData<fn() -> S>,
}

impl<S> Default for WorkerActor<S> {
    fn default() -> Self {
        WorkerActor {
            _stage: PhantomData,
        }
    }
}

#[derive(Serialize)]
struct DeadLetter<'a> {
    queue: &'a str,
    reason: &'a str,
    deliveries: u32,
    payload: String,
}

/// Moves items to the dead-letter queue with their reasons; returns the ids that may be
/// acknowledged.
async fn dead_letter(ctx: &AgentContext, queue: &str, items: &[(&Delivery, &str)]) -> Vec<String> {
    let mut payloads = Vec::new();
    for (delivery, reason) in items {
        let letter = DeadLetter {
            queue,
            reason,
            deliveries: delivery.deliveries,
            payload: String::from_utf8_lossy(&delivery.payload).into_owned(),
        };
        match encode(&letter) {
            Ok(bytes) => payloads.push(bytes),
            Err(err) => tracing::error!(error = %err, "dead letter encoding failed"),
        }
    }
    if payloads.is_empty() {
        return Vec::new();
    }
    match ctx.queue.enqueue(QUEUE_DEAD_LETTER, payloads).await {
        Ok(_) => {
            for (_, reason) in items {
                telemetry::dead_lettered(queue, reason);
            }
            items
                .iter()
                .map(|(delivery, _)| delivery.id.clone())
                .collect()
        }
        Err(err) => {
            tracing::error!(error = %err, "dead letter enqueue failed; items stay pending");
            Vec::new()
        }
    }
}

impl<S: Stage> Actor for WorkerActor<S> {
    type Msg = WorkerMsg;
    type State = WorkerState<S>;
    type Arguments = WorkerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: WorkerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let stage = S::init(&args.ctx, &args.agent_id).await?;
        let mut presence = Presence::start(
            &args.ctx,
            &args.agent_id,
            S::KIND,
            args.restarts,
            Some(S::QUEUE),
            &myself,
            || WorkerMsg::Heartbeat,
        )
        .await?;
        let wanted = S::agent_messages();
        if !wanted.is_empty() {
            presence
                .forward_only(
                    Channel::AgentCommunication,
                    &myself,
                    WorkerMsg::Agent,
                    wanted,
                )
                .await?;
        }
        if S::wants_memory_changes() {
            presence
                .forward(Channel::MemorySync, &myself, WorkerMsg::Memory)
                .await?;
        }
        presence
            .forward(Channel::QueenCommands, &myself, WorkerMsg::Command)
            .await?;
        myself.send_message(WorkerMsg::Poll)?;
        Ok(WorkerState {
            stage,
            consumer: args.ctx.instance_id(&args.agent_id),
            presence,
            args,
            recover_first: true,
            held_back: false,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // The hand-over first: it is what peers wait for, and the stop's time budget
        // (`supervision.stop_timeout`) may end before deregistering has.
        if state.stage.in_flight() == 0 {
            let queue = state.args.ctx.queue.clone();
            leave(queue, S::QUEUE, &state.consumer, &state.args.agent_id).await;
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
            WorkerMsg::Poll => {
                poll_once(state).await?;
                myself.send_message(WorkerMsg::Poll)?;
            }
            WorkerMsg::Heartbeat => {
                state.stage.on_heartbeat(&state.args.ctx).await;
                state.presence.beat().await;
            }
            WorkerMsg::Agent(message) => {
                state.stage.on_agent_message(&state.args.ctx, message).await
            }
            WorkerMsg::Command(command) => state.stage.on_command(&state.args.ctx, command).await,
            WorkerMsg::Memory(changes) => {
                state
                    .stage
                    .on_memory_changes(&state.args.ctx, changes)
                    .await
            }
        }
        Ok(())
    }
}

/// Longest a stopping worker waits to hand its work over.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

/// A graceful stop hands over at once what a crash leaves to timeouts: the items still
/// pending under this consumer (a batch that failed, an acknowledgement that did not reach
/// the queue) go to the fail-over consumer, and on the partitioned data quality queue its
/// membership and partition leases go too, so the live actors share its partitions at their
/// next lease round instead of after the lease expires. Not while the stage holds items in
/// flight (a stage stopped mid-fetch; the caller checks): those stay pending for the visibility
/// timeout or the same identity's `recover`, so nothing is handled twice at once. A crash (a panic, a killed
/// process) never gets here; its leases expire and the supervisor's fail-over releases.
async fn leave(queue: std::sync::Arc<dyn WorkQueue>, name: &str, consumer: &str, agent: &str) {
    let released = tokio::time::timeout(LEAVE_TIMEOUT, queue.release(name, consumer)).await;
    match released {
        Ok(Ok(0)) => tracing::debug!(agent = %agent, "left the queue"),
        Ok(Ok(items)) => {
            tracing::info!(agent = %agent, items, "left the queue, its pending items handed over")
        }
        Ok(Err(err)) => {
            tracing::warn!(agent = %agent, error = %err, "leaving the queue failed; its work waits for the timeouts")
        }
        Err(_) => {
            tracing::warn!(agent = %agent, "leaving the queue took over {LEAVE_TIMEOUT:?}; its work waits for the timeouts")
        }
    }
}

/// One poll, its time split for `busy_ms`: waiting (taking, holding back, backing off, a drain
/// that finished nothing) is idle; the rest, in batches or around them (decoding, acking), is
/// work, so a fast stage that never waits reads saturated.
async fn poll_once<S: Stage>(state: &mut WorkerState<S>) -> Result<(), ActorProcessingErr> {
    let iteration = Instant::now();
    let recorded = state.presence.busy();
    let mut idle = Duration::ZERO;
    let result = poll_inner(state, &mut idle).await;
    let in_batches = state.presence.busy().saturating_sub(recorded);
    let around = iteration.elapsed().saturating_sub(idle + in_batches);
    state.presence.worked(around);
    result
}

async fn poll_inner<S: Stage>(
    state: &mut WorkerState<S>,
    idle: &mut Duration,
) -> Result<(), ActorProcessingErr> {
    let ctx = state.args.ctx.clone();
    let busy = state.stage.in_flight() > 0;
    let taken = if state.recover_first {
        let recovered = ctx.queue.recover(S::QUEUE, &state.consumer).await;
        match &recovered {
            Ok(items) => {
                state.recover_first = false;
                if !items.is_empty() {
                    // Counted as redelivered in `process_taken` (their delivery count is above 1).
                    tracing::info!(agent = %state.args.agent_id, items = items.len(), "recovered pending work after restart");
                }
            }
            // The queue is not reachable yet (a process starting beside a restarting Redis):
            // try again at the next poll rather than leave the work to the visibility timeout.
            Err(err) => {
                tracing::warn!(agent = %state.args.agent_id, error = %err, "recovering pending work failed; retrying")
            }
        }
        recovered
    } else if holds_back(state, &ctx).await {
        // Nothing is taken; in-flight work still finishes below.
        if !busy {
            let started = Instant::now();
            tokio::time::sleep(ctx.config.queues.poll_wait).await;
            *idle += started.elapsed();
        }
        Ok(Vec::new())
    } else {
        let capacity = state.stage.capacity(&ctx);
        if capacity == 0 {
            Ok(Vec::new())
        } else {
            // While work is in flight, only look: the wait happens in `drain`.
            let wait = if busy {
                Duration::ZERO
            } else {
                ctx.config.queues.poll_wait
            };
            let started = Instant::now();
            let taken = ctx
                .queue
                .take(S::QUEUE, &state.consumer, capacity, wait)
                .await;
            // Waiting: a take may block most of `wait` for a trickle's first item; on a backlog
            // it returns at once.
            *idle += started.elapsed();
            taken
        }
    };
    let deliveries = match taken {
        Ok(deliveries) => deliveries,
        Err(err) => {
            tracing::warn!(agent = %state.args.agent_id, error = %err, "taking work failed");
            // A blocking read that timed out on the client may have been served by Redis all
            // the same: those items are pending under this consumer, so they are taken back
            // at the next poll rather than after the visibility timeout. Not while the stage
            // holds items in flight: `recover` would hand those out again.
            if state.stage.in_flight() == 0 {
                state.recover_first = true;
            }
            let started = Instant::now();
            tokio::time::sleep(ctx.config.queues.poll_wait.max(Duration::from_millis(100))).await;
            *idle += started.elapsed();
            Vec::new()
        }
    };
    let took_any = !deliveries.is_empty();
    // An injected fault strikes at a batch, taken and not acknowledged: the worst moment, so
    // a test or drill can prove nothing is lost.
    if took_any {
        state.presence.strike().await?;
    }
    let mut done = Vec::new();
    if took_any {
        done.extend(process_taken(state, &ctx, deliveries).await);
    }
    if state.stage.in_flight() > 0 {
        let wait = if took_any {
            Duration::ZERO
        } else {
            ctx.config.queues.poll_wait
        };
        let started = Instant::now();
        let drained = state.stage.drain(&ctx, &state.args.agent_id, wait).await;
        let finished = drained.done.len() as u64 + drained.failed;
        if finished > 0 {
            state
                .presence
                .record(finished, drained.failed, started.elapsed());
        } else {
            // Waited on in-flight work (a scraper's fetches) and none finished.
            *idle += started.elapsed();
        }
        done.extend(drained.done);
    }
    if done.is_empty() {
        return Ok(());
    }
    if let Err(err) = ctx.queue.ack(S::QUEUE, &done).await {
        // Not acknowledged means redelivered later; consumers are idempotent.
        tracing::warn!(agent = %state.args.agent_id, error = %err, "ack failed");
    }
    Ok(())
}

/// Whether the stage takes no work now because its downstream queues are full (see
/// [`held_back`]); asked at every poll, so at most one batch's work lands past the limit.
async fn holds_back<S: Stage>(state: &mut WorkerState<S>, ctx: &AgentContext) -> bool {
    let downstream = downstream_of(S::KIND);
    if downstream.is_empty() {
        return false;
    }
    let mut waiting = 0;
    for queue in downstream {
        match ctx.queue.depth(queue).await {
            Ok(depth) => waiting += depth.ready + depth.pending,
            Err(err) => {
                // Unknown: taking work tells soon enough whether the queue is back.
                tracing::warn!(agent = %state.args.agent_id, error = %err, queue, "reading the downstream backlog failed");
                return false;
            }
        }
    }
    let max_backlog = ctx.config.queues.max_backlog;
    let held = held_back(S::KIND, waiting, max_backlog);
    if held && !state.held_back {
        tracing::info!(agent = %state.args.agent_id, waiting, max_backlog, "holding back: the downstream queues are full");
    } else if state.held_back && !held {
        tracing::info!(agent = %state.args.agent_id, waiting, max_backlog, "taking work again: the downstream queues have room");
    }
    state.held_back = held;
    held
}

/// Runs each item of a batch that panicked on its own; an item that panics alone is moved to
/// the dead-letter queue with the reason `handler panicked` (and acknowledged), the others are
/// processed as usual.
async fn isolate_poison<S: Stage>(
    state: &mut WorkerState<S>,
    ctx: &AgentContext,
    batched: &[&Delivery],
) -> BatchResult {
    let mut result = BatchResult::default();
    let mut poison: Vec<(&Delivery, &str)> = Vec::new();
    for delivery in batched {
        // Decoded before, so this decodes again.
        let Ok(item) = decode::<S::Item>(&delivery.payload) else {
            continue;
        };
        let single = vec![(delivery.id.clone(), item)];
        let caught =
            std::panic::AssertUnwindSafe(state.stage.process(ctx, &state.args.agent_id, single))
                .catch_unwind()
                .await;
        match caught {
            Ok(one) => {
                result.done.extend(one.done);
                result.failed += one.failed;
            }
            Err(panic) => {
                tracing::error!(
                    agent = %state.args.agent_id,
                    queue = S::QUEUE,
                    id = %delivery.id,
                    panic = %panic_message(panic.as_ref()),
                    "an item panics its handler; moving it to the dead-letter queue"
                );
                poison.push((delivery, "handler panicked"));
            }
        }
    }
    if !poison.is_empty() {
        result
            .done
            .extend(dead_letter(ctx, S::QUEUE, &poison).await);
    }
    result
}

/// Runs the fault hook, dead-letters poison items and hands the rest to the stage; returns
/// the ids that are done.
async fn process_taken<S: Stage>(
    state: &mut WorkerState<S>,
    ctx: &AgentContext,
    deliveries: Vec<Delivery>,
) -> Vec<String> {
    let redelivered = deliveries.iter().filter(|d| d.deliveries > 1).count();
    if redelivered > 0 {
        telemetry::queue_redelivered(S::QUEUE, redelivered as u64);
    }

    let mut letters: Vec<(&Delivery, &str)> = Vec::new();
    let mut batch = Vec::with_capacity(deliveries.len());
    let mut batched: Vec<&Delivery> = Vec::with_capacity(deliveries.len());
    for delivery in &deliveries {
        if delivery.deliveries > MAX_DELIVERIES {
            letters.push((delivery, "delivered too many times"));
            continue;
        }
        match decode::<S::Item>(&delivery.payload) {
            Ok(item) => {
                batch.push((delivery.id.clone(), item));
                batched.push(delivery);
            }
            Err(err) => {
                tracing::error!(agent = %state.args.agent_id, error = %err, queue = S::QUEUE, "undecodable work item");
                letters.push((delivery, "undecodable"));
            }
        }
    }
    let mut done = Vec::new();
    if !letters.is_empty() {
        tracing::error!(agent = %state.args.agent_id, items = letters.len(), "moving items to the dead-letter queue");
        done.extend(dead_letter(ctx, S::QUEUE, &letters).await);
    }
    let started = Instant::now();
    let count = batch.len() as u64;
    let in_flight_before = state.stage.in_flight() as u64;
    let span = tracing::info_span!(
        "stage.batch",
        queue = S::QUEUE,
        agent = %state.args.agent_id,
        items = count,
        failed = tracing::field::Empty,
    );
    // A panic on data must not kill the actor: it would come back with the same batch, panic
    // again and spend its restart budget on one poison item. The batch is caught, then run
    // again one item at a time, and the items that panic alone go to the dead-letter queue.
    let caught =
        std::panic::AssertUnwindSafe(state.stage.process(ctx, &state.args.agent_id, batch))
            .catch_unwind()
            .instrument(span.clone())
            .await;
    let result = match caught {
        Ok(result) => result,
        Err(panic) => {
            tracing::error!(
                agent = %state.args.agent_id,
                queue = S::QUEUE,
                items = batched.len(),
                panic = %panic_message(panic.as_ref()),
                "a batch panicked its handler; retrying its items one by one"
            );
            isolate_poison(state, ctx, &batched).await
        }
    };
    span.record("failed", result.failed);
    // Items the stage kept in flight are counted when they are drained.
    let kept = (state.stage.in_flight() as u64).saturating_sub(in_flight_before);
    let finished = count.saturating_sub(kept);
    if finished > 0 {
        state
            .presence
            .record(finished, result.failed, started.elapsed());
    }
    done.extend(result.done);
    done
}

#[cfg(test)]
mod tests;
