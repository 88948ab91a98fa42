//! A partitioned work queue: one queue of the pipeline (the data quality queue) split into a
//! fixed number of partitions by a key, each partition leased to one consumer at a time.
//!
//! Why: data quality records a batch in one transaction that locks the merge keys of the
//! announcements it merges (Postgres advisory locks). Consumers taking from one shared queue get
//! batches of the same few projects and wait on each other's locks for the whole transaction.
//! With the queue partitioned by merge key, the consumers' batches lock disjoint keys and their
//! transactions run side by side.
//!
//! How:
//! * **Partitions** are queues of the inner [`WorkQueue`]: partition 0 is the queue's own name
//!   (so a queue of one partition is the plain queue, and items left in it by an older version
//!   are still read), partition `p > 0` is `{<queue>}:<p>` (a Redis hash tag: one cluster slot
//!   for them all, see [`PartitionedQueue::names`]). [`WorkQueue::enqueue_keyed`] puts an
//!   item in partition `key % partitions`; ids handed out are `<p>/<inner id>`.
//! * **Leases**: each consumer of the queue runs a [`WorkQueue::lease_round`] when it takes work
//!   and its last round is older than a quarter of the lease TTL (at most 2 s): it renews its
//!   membership and its leases, and wants the partitions that the live members, sorted, deal it
//!   in turn (partition `p` to member `p % members`). A lease is taken only when nobody holds
//!   it, so a partition has at most one owner at a time. A consumer takes only from the
//!   partitions it holds.
//! * **Hand-over**: a consumer that no longer wants a partition (a member joined) first
//!   releases its pending items there ([`WorkQueue::release`], so the next owner takes them at
//!   once) and then gives the lease up, between two batches. A consumer that dies keeps its
//!   leases until they expire (the TTL), or until the health supervisor's fail-over calls
//!   [`WorkQueue::release`] for it, which also drops its membership and leases.
//! * **Correctness does not rest on the leases**: an owner stalled past its TTL may still
//!   commit a batch while the next owner works; the store's idempotent recording and its merge
//!   locks keep that exact (`docs/runtime.md`, "Partitioned data quality"). The leases remove
//!   the contention, not the safety.

use std::collections::HashMap;
use std::hash::Hasher as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Delivery, LeaseRound, QueueDepth, WorkQueue};
use crate::error::{Error, Result};

/// Longest time between two lease rounds of a consumer.
const MAX_ROUND_INTERVAL: Duration = Duration::from_secs(2);

/// The partition key of a text key (a merge key): FNV-1a, the same in every process and
/// version, unlike the standard library's hasher.
pub fn partition_key(key: &str) -> u64 {
    fnv_1a(key.as_bytes())
}

fn fnv_1a(bytes: &[u8]) -> u64 {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(bytes);
    hasher.finish()
}

/// What a consumer of this process knows of its leases.
#[derive(Debug, Default, Clone)]
struct Owner {
    /// Partitions held, after the last round.
    held: Vec<usize>,
    /// Live members, after the last round.
    members: Vec<String>,
    /// When the last round ran.
    round_at: Option<Instant>,
}

/// A [`WorkQueue`] that partitions one queue by key and passes every other queue through.
pub struct PartitionedQueue {
    inner: Arc<dyn WorkQueue>,
    queue: String,
    streams: Vec<String>,
    leases: Vec<String>,
    group: String,
    ttl: Duration,
    owners: tokio::sync::Mutex<HashMap<String, Owner>>,
    rotation: AtomicUsize,
}

impl std::fmt::Debug for PartitionedQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionedQueue")
            .field("queue", &self.queue)
            .field("partitions", &self.streams.len())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl PartitionedQueue {
    /// Partitions `queue` of `inner` into `partitions` (at least 1), with leases of `ttl`.
    pub fn new(inner: Arc<dyn WorkQueue>, queue: &str, partitions: u32, ttl: Duration) -> Self {
        let partitions = partitions.max(1);
        let (streams, leases, group) = Self::names(queue, partitions);
        PartitionedQueue {
            inner,
            queue: queue.to_owned(),
            streams,
            leases,
            group,
            ttl,
            owners: tokio::sync::Mutex::new(HashMap::new()),
            rotation: AtomicUsize::new(0),
        }
    }

    /// The partitions' queues, their leases and the member set of `queue` in `partitions`.
    /// Partition 0 is the queue's own name; the other names carry the queue's name as a Redis
    /// hash tag (`{swarm:queue:quality}:3`), so every partition, lease and the member set sit
    /// in the one cluster slot of the queue's name: a take over several partitions and a
    /// lease round are multi-key commands, which a Redis Cluster runs only within one slot.
    pub fn names(queue: &str, partitions: u32) -> (Vec<String>, Vec<String>, String) {
        let partitions = partitions.max(1);
        let streams = (0..partitions)
            .map(|p| {
                if p == 0 {
                    queue.to_owned()
                } else {
                    format!("{{{queue}}}:{p}")
                }
            })
            .collect();
        let leases = (0..partitions)
            .map(|p| format!("{{{queue}}}:lease:{p}"))
            .collect();
        (streams, leases, format!("{{{queue}}}:members"))
    }

    /// Every key `queue` in `partitions` uses (streams, leases, member set), for cleanups.
    pub fn keys(queue: &str, partitions: u32) -> Vec<String> {
        let (mut keys, leases, group) = Self::names(queue, partitions);
        keys.extend(leases);
        keys.push(group);
        keys
    }

    fn round_interval(&self) -> Duration {
        (self.ttl / 4).clamp(Duration::from_millis(10), MAX_ROUND_INTERVAL)
    }

    fn partition_of(&self, key: u64) -> usize {
        (key % self.streams.len() as u64) as usize
    }

    /// The partitions `consumer` holds, after a lease round if one is due.
    async fn held(&self, consumer: &str) -> Result<Vec<usize>> {
        let mut owners = self.owners.lock().await;
        let owner = owners.entry(consumer.to_owned()).or_default();
        if owner
            .round_at
            .is_some_and(|at| at.elapsed() < self.round_interval())
        {
            return Ok(owner.held.clone());
        }
        let mut members = owner.members.clone();
        if let Err(at) = members.binary_search_by(|member| member.as_str().cmp(consumer)) {
            members.insert(at, consumer.to_owned());
        }
        let wanted: Vec<bool> = (0..self.streams.len())
            .map(|p| members[p % members.len()] == consumer)
            .collect();
        // Pending items of a partition given up go back first, so its next owner takes them
        // at once; a failure leaves the lease held, and the round is tried again next time.
        for &p in &owner.held {
            if !wanted[p] {
                self.inner.release(&self.streams[p], consumer).await?;
            }
        }
        let LeaseRound {
            members: live,
            held,
        } = self
            .inner
            .lease_round(&self.group, consumer, self.ttl, &self.leases, &wanted)
            .await?;
        if held != owner.held {
            tracing::info!(queue = %self.queue, consumer, partitions = ?held, members = live.len(), "partitions held");
        }
        // Members changed since `wanted` was worked out: the next take runs another round.
        owner.round_at = (live == members).then(Instant::now);
        owner.members = live;
        owner.held = held;
        Ok(owner.held.clone())
    }

    /// `(partition, inner id)` of an id handed out by this queue.
    fn split_id<'a>(&self, id: &'a str) -> Result<(usize, &'a str)> {
        id.split_once('/')
            .and_then(|(p, inner)| Some((p.parse::<usize>().ok()?, inner)))
            .filter(|(p, _)| *p < self.streams.len())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "work item id `{id}` is not one of queue {}'s ids (`<partition>/<id>`, {} partitions)",
                    self.queue,
                    self.streams.len()
                ))
            })
    }

    fn named(p: usize, delivery: Delivery) -> Delivery {
        Delivery {
            id: format!("{p}/{}", delivery.id),
            ..delivery
        }
    }
}

/// Orders inner ids oldest first: Redis stream ids (`ms-seq`) and embedded sequence numbers.
fn id_order(id: &str) -> (u64, u64) {
    let (first, second) = id.split_once('-').unwrap_or((id, "0"));
    (
        first.parse().unwrap_or(u64::MAX),
        second.parse().unwrap_or(0),
    )
}

#[async_trait]
impl WorkQueue for PartitionedQueue {
    async fn enqueue(&self, queue: &str, payloads: Vec<Vec<u8>>) -> Result<Vec<String>> {
        if queue != self.queue {
            return self.inner.enqueue(queue, payloads).await;
        }
        // No key given: the payload's own hash spreads the items.
        let items = payloads
            .into_iter()
            .map(|payload| (fnv_1a(&payload), payload))
            .collect();
        self.enqueue_keyed(queue, items).await
    }

    async fn enqueue_keyed(&self, queue: &str, items: Vec<(u64, Vec<u8>)>) -> Result<Vec<String>> {
        if queue != self.queue {
            return self.inner.enqueue_keyed(queue, items).await;
        }
        let count = items.len();
        let mut by_partition: Vec<(Vec<usize>, Vec<Vec<u8>>)> =
            vec![(Vec::new(), Vec::new()); self.streams.len()];
        for (position, (key, payload)) in items.into_iter().enumerate() {
            let (positions, payloads) = &mut by_partition[self.partition_of(key)];
            positions.push(position);
            payloads.push(payload);
        }
        let mut ids = vec![String::new(); count];
        for (p, (positions, payloads)) in by_partition.into_iter().enumerate() {
            if payloads.is_empty() {
                continue;
            }
            let inner_ids = self.inner.enqueue(&self.streams[p], payloads).await?;
            for (position, id) in positions.into_iter().zip(inner_ids) {
                ids[position] = format!("{p}/{id}");
            }
        }
        Ok(ids)
    }

    async fn take(
        &self,
        queue: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>> {
        if queue != self.queue {
            return self.inner.take(queue, consumer, max, wait).await;
        }
        let held = self.held(consumer).await?;
        // Woken in time for the next lease round, so an idle owner keeps its leases.
        let wait = wait.min(self.round_interval());
        if held.is_empty() {
            tokio::time::sleep(wait).await;
            return Ok(Vec::new());
        }
        // Each take starts at the next partition, so a backlog in one starves none.
        let start = self.rotation.fetch_add(1, Ordering::Relaxed) % held.len();
        let order: Vec<usize> = held[start..]
            .iter()
            .chain(&held[..start])
            .copied()
            .collect();
        let streams: Vec<String> = order.iter().map(|p| self.streams[*p].clone()).collect();
        let taken = self.inner.take_any(&streams, consumer, max, wait).await?;
        Ok(taken
            .into_iter()
            .map(|(index, delivery)| Self::named(order[index], delivery))
            .collect())
    }

    async fn take_any(
        &self,
        queues: &[String],
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<(usize, Delivery)>> {
        if queues.contains(&self.queue) {
            return Err(Error::Invalid(format!(
                "queue {} is partitioned: take it with `take`, not among several queues",
                self.queue
            )));
        }
        self.inner.take_any(queues, consumer, max, wait).await
    }

    async fn recover(&self, queue: &str, consumer: &str) -> Result<Vec<Delivery>> {
        if queue != self.queue {
            return self.inner.recover(queue, consumer).await;
        }
        // A (re)started consumer runs a fresh lease round at its next take.
        self.owners.lock().await.remove(consumer);
        let mut out = Vec::new();
        for (p, stream) in self.streams.iter().enumerate() {
            let recovered = self.inner.recover(stream, consumer).await?;
            out.extend(
                recovered
                    .into_iter()
                    .map(|delivery| Self::named(p, delivery)),
            );
        }
        Ok(out)
    }

    async fn ack(&self, queue: &str, ids: &[String]) -> Result<()> {
        if queue != self.queue {
            return self.inner.ack(queue, ids).await;
        }
        let mut by_partition: Vec<Vec<String>> = vec![Vec::new(); self.streams.len()];
        for id in ids {
            let (p, inner) = self.split_id(id)?;
            by_partition[p].push(inner.to_owned());
        }
        for (p, inner) in by_partition.iter().enumerate() {
            if !inner.is_empty() {
                self.inner.ack(&self.streams[p], inner).await?;
            }
        }
        Ok(())
    }

    async fn release(&self, queue: &str, consumer: &str) -> Result<u64> {
        if queue != self.queue {
            return self.inner.release(queue, consumer).await;
        }
        let mut released = 0;
        for stream in &self.streams {
            released += self.inner.release(stream, consumer).await?;
        }
        // Its membership and leases go too, so the live members share its partitions at once.
        let nothing = vec![false; self.leases.len()];
        self.inner
            .lease_round(
                &self.group,
                consumer,
                Duration::ZERO,
                &self.leases,
                &nothing,
            )
            .await?;
        self.owners.lock().await.remove(consumer);
        Ok(released)
    }

    async fn depth(&self, queue: &str) -> Result<QueueDepth> {
        if queue != self.queue {
            return self.inner.depth(queue).await;
        }
        let mut total = QueueDepth::default();
        for stream in &self.streams {
            let depth = self.inner.depth(stream).await?;
            total.ready += depth.ready;
            total.pending += depth.pending;
        }
        Ok(total)
    }

    async fn peek(&self, queue: &str, max: usize) -> Result<Vec<(String, Vec<u8>)>> {
        if queue != self.queue {
            return self.inner.peek(queue, max).await;
        }
        let mut items = Vec::new();
        for (p, stream) in self.streams.iter().enumerate() {
            for (id, payload) in self.inner.peek(stream, max).await? {
                items.push((id_order(&id), format!("{p}/{id}"), payload));
            }
        }
        items.sort_by_key(|(order, _, _)| *order);
        items.truncate(max);
        Ok(items
            .into_iter()
            .map(|(_, id, payload)| (id, payload))
            .collect())
    }

    async fn lease_round(
        &self,
        group: &str,
        consumer: &str,
        ttl: Duration,
        leases: &[String],
        wanted: &[bool],
    ) -> Result<LeaseRound> {
        self.inner
            .lease_round(group, consumer, ttl, leases, wanted)
            .await
    }

    fn durable(&self) -> bool {
        self.inner.durable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every process must put a key in the same partition, whatever its version: the hash is
    /// FNV-1a 64, pinned here.
    #[test]
    fn partition_keys_are_pinned() {
        assert_eq!(partition_key(""), 14_695_981_039_346_656_037);
        assert_eq!(partition_key("somnia"), 15_671_947_177_136_716_318);
    }

    #[test]
    fn ids_name_their_partition() {
        let inner: Arc<dyn WorkQueue> = Arc::new(super::super::embedded_queue::EmbeddedQueue::new(
            Duration::from_secs(1),
        ));
        let queue = PartitionedQueue::new(inner, "q", 3, Duration::from_secs(1));
        assert_eq!(queue.streams, ["q", "{q}:1", "{q}:2"]);
        assert_eq!(
            PartitionedQueue::keys("q", 2),
            ["q", "{q}:1", "{q}:lease:0", "{q}:lease:1", "{q}:members"]
        );
        assert_eq!(queue.split_id("2/17-0").unwrap(), (2, "17-0"));
        for bad in ["3/1", "x/1", "17-0", ""] {
            let err = queue.split_id(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
        assert_eq!(id_order("1700000000000-5"), (1_700_000_000_000, 5));
        assert_eq!(id_order("42"), (42, 0));
    }
}
