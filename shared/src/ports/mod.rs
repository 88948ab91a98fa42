//! The ports through which actors reach the outside world, and their adapters.
//!
//! * [`Bus`]: pub/sub notifications on the four swarm channels (at-most-once).
//! * [`WorkQueue`]: work items with acknowledgement and redelivery (at-least-once).
//! * [`Store`]: durable records (sources, watchlist, documents, events, keys, snapshots).
//! * [`Registry`]: service instances with TTL health checks.
//!
//! The embedded adapters run everything in one process; networked adapters (Redis, Postgres,
//! Consul) implement the same traits and must pass the same contract suites.
//!
//! | port | embedded | networked |
//! |---|---|---|
//! | [`Bus`] | [`embedded_bus`] | [`redis::RedisBus`] |
//! | [`WorkQueue`] | [`embedded_queue`] | [`redis::RedisQueue`] |
//! | [`Store`] | [`sqlite`] | [`postgres`] (SQLite also works as a file shared by one host) |
//! | [`Registry`] | [`embedded_registry`] | [`consul::ConsulRegistry`] |

pub mod band_index;
pub mod consul;
pub mod embedded_bus;
pub mod embedded_queue;
pub mod embedded_registry;
pub mod migrations;
pub mod partitioned;
pub mod postgres;
pub mod redis;
pub mod sql;
pub mod sqlite;

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::Stream;
use serde::Serialize;

use crate::channels::Channel;
use crate::domain::{
    Alert, ApiKey, AttemptOutcome, ClassifiedDocument, Company, CompanyInput, DesiredEntry,
    EventChangeRecord, EventPage, EventQuery, EventUpdate, Exchange, Feedback, FeedbackLabel,
    FetchReport, HealthChange, ListedToken, MarketListing, MarketsSeen, MemoryEntry, Meta,
    NewAlert, OutboxItem, RecordOutcome, Source, SourceInput, SubscriptionInput, SupervisorAction,
    SupervisorActionInput, SupervisorActionQuery, SynthesisSnapshot, TgeEvent,
};
use crate::error::Result;
use crate::messages::{OnChannel, encode};

/// A stream of raw messages from one channel.
pub type Subscription = Pin<Box<dyn Stream<Item = Vec<u8>> + Send>>;

/// Pub/sub for notifications. Delivery is at-most-once: a slow subscriber may miss messages
/// (counted in `tge_swarm_bus_dropped_total`), so nothing that must not be lost goes here.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes a payload on a channel.
    async fn publish(&self, channel: Channel, payload: Vec<u8>) -> Result<()>;
    /// Subscribes to a channel; messages published after this call are delivered.
    async fn subscribe(&self, channel: Channel) -> Result<Subscription>;
    /// Sets a short-lived shared key (`swarm:metrics:*`, `swarm:memory:*`) that expires after
    /// `ttl`; on Redis a plain key operators can read with `redis-cli`.
    async fn put_key(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<()>;
    /// Reads a shared key (`None` if absent or expired).
    async fn get_key(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Removes a shared key (absent is fine).
    async fn delete_key(&self, key: &str) -> Result<()>;
    /// Checks the bus's server answers (readiness).
    async fn ping(&self) -> Result<()>;
    /// Applies `keys` in order (set with a TTL, or removed), then publishes `payloads` on
    /// `channel` in order: in one round trip where the bus allows it (a Redis pipeline). The
    /// default makes one call each. On an error, some of the batch may have been applied.
    async fn write_batch(
        &self,
        keys: Vec<KeyChange>,
        channel: Channel,
        payloads: Vec<Vec<u8>>,
    ) -> Result<()> {
        for change in keys {
            match change {
                KeyChange::Put { key, value, ttl } => self.put_key(&key, value, ttl).await?,
                KeyChange::Delete { key } => self.delete_key(&key).await?,
            }
        }
        for payload in payloads {
            self.publish(channel, payload).await?;
        }
        Ok(())
    }
}

/// A change to a shared key, in a [`Bus::write_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChange {
    /// Set `key` to `value`, expiring after `ttl`.
    Put {
        /// Key.
        key: String,
        /// Value.
        value: Vec<u8>,
        /// Time to live.
        ttl: Duration,
    },
    /// Remove `key` (absent is fine).
    Delete {
        /// Key.
        key: String,
    },
}

/// Publishes a typed message on its channel.
pub async fn publish<T: Serialize + OnChannel + Sync>(bus: &dyn Bus, message: &T) -> Result<()> {
    bus.publish(T::CHANNEL, encode(message)?).await
}

/// Up to `limit` events matching `query`, newest first, read in pages of 200 with
/// `sources_per_event` sources each (`query`'s own paging is replaced).
pub async fn newest_events(
    store: &dyn Store,
    query: &EventQuery,
    limit: usize,
    sources_per_event: u32,
) -> Result<Vec<TgeEvent>> {
    let mut query = EventQuery {
        page_size: 200,
        page_token: None,
        sources_per_event: Some(sources_per_event),
        ..query.clone()
    };
    let mut events = Vec::new();
    while events.len() < limit {
        let page = store.list_events(&query).await?;
        events.extend(page.events);
        match page.next_page_token {
            Some(token) => query.page_token = Some(token),
            None => break,
        }
    }
    events.truncate(limit);
    Ok(events)
}

/// One work item handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Entry id, to acknowledge.
    pub id: String,
    /// The item.
    pub payload: Vec<u8>,
    /// How many times it has been delivered, this delivery included.
    pub deliveries: u32,
}

/// Depth of a queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    /// Waiting for a consumer.
    pub ready: u64,
    /// Taken, not yet acknowledged.
    pub pending: u64,
}

/// A work queue with consumer acknowledgement, modelled on Redis Streams consumer groups:
/// an item taken and not acknowledged stays pending under its consumer; the same consumer
/// gets it back from [`WorkQueue::recover`] after a restart, and any consumer gets it from
/// [`WorkQueue::take`] once it has been pending longer than the visibility timeout.
#[async_trait]
pub trait WorkQueue: Send + Sync + 'static {
    /// Appends items; returns their ids.
    async fn enqueue(&self, queue: &str, payloads: Vec<Vec<u8>>) -> Result<Vec<String>>;
    /// Takes up to `max` items for `consumer`, waiting up to `wait` for the first one.
    /// Items pending past the visibility timeout under any consumer are reclaimed first.
    /// The default is [`WorkQueue::take_any`] over the one queue.
    async fn take(
        &self,
        queue: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>> {
        let taken = self
            .take_any(&[queue.to_owned()], consumer, max, wait)
            .await?;
        Ok(taken.into_iter().map(|(_, delivery)| delivery).collect())
    }
    /// Redelivers the items pending under `consumer` (after a restart with the same identity).
    async fn recover(&self, queue: &str, consumer: &str) -> Result<Vec<Delivery>>;
    /// Acknowledges items: they are done and will never be delivered again.
    async fn ack(&self, queue: &str, ids: &[String]) -> Result<()>;
    /// Failover: moves every item pending under `consumer` (a dead or broken instance) to
    /// [`crate::channels::FAILOVER_CONSUMER`], claimable by any consumer's next `take` at once
    /// rather than after the visibility timeout, and never handed back to `consumer` by its
    /// `recover`. Items keep their delivery counts. Returns how many were released.
    async fn release(&self, queue: &str, consumer: &str) -> Result<u64>;
    /// Current depth.
    async fn depth(&self, queue: &str) -> Result<QueueDepth>;
    /// Up to `max` items of a queue, oldest first, ready or pending, without taking them (for
    /// inspection: the dead-letter queue in the API). Each is `(id, payload)`.
    async fn peek(&self, queue: &str, max: usize) -> Result<Vec<(String, Vec<u8>)>>;
    /// Whether enqueued items outlive this process (Redis Streams with AOF: yes; the embedded
    /// queues in memory: no). A producer must not record anything that stands for "these
    /// items are safe" (a source's fetch validators) beyond what the queue can keep: see
    /// `docs/runtime.md`, "Exactly once under crashes".
    fn durable(&self) -> bool;
    /// Appends items, each with the key that decides its partition on a partitioned queue
    /// ([`partitioned`]): items of one key always land in one partition, so one consumer at a
    /// time handles them. On a queue that is not partitioned the keys are ignored.
    async fn enqueue_keyed(&self, queue: &str, items: Vec<(u64, Vec<u8>)>) -> Result<Vec<String>> {
        self.enqueue(
            queue,
            items.into_iter().map(|(_, payload)| payload).collect(),
        )
        .await
    }
    /// Takes up to `max` items for `consumer` from several queues, each queue's items reclaimed
    /// past the visibility timeout first, waiting up to `wait` for the first item of any of
    /// them. Each delivery comes with the index of its queue in `queues`. At most `max` items
    /// in all when `queues.len() <= max`.
    async fn take_any(
        &self,
        queues: &[String],
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<(usize, Delivery)>>;
    /// One round of the partition leases of `group` ([`partitioned`]), atomically: registers
    /// `consumer` as a live member for `ttl` (forgetting members whose registration expired),
    /// and for each lease of `leases`: takes or renews it when `wanted` says so and nobody
    /// else holds it, gives it up when not wanted and `consumer` holds it. A zero `ttl` leaves:
    /// the member and every lease it holds are dropped. Returns the live members, sorted, and
    /// the indexes of the leases `consumer` holds after the round.
    async fn lease_round(
        &self,
        group: &str,
        consumer: &str,
        ttl: Duration,
        leases: &[String],
        wanted: &[bool],
    ) -> Result<LeaseRound>;
}

/// What one [`WorkQueue::lease_round`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseRound {
    /// Live members of the group, sorted.
    pub members: Vec<String>,
    /// Indexes (into the round's `leases`) of the leases the caller holds.
    pub held: Vec<usize>,
}

/// A classified document to record, with its merge key and body SimHash (see
/// [`Store::record_classified`]).
#[derive(Debug, Clone, Copy)]
pub struct ToRecord<'a> {
    /// The document and its detection.
    pub item: &'a ClassifiedDocument,
    /// Key of the event it merges into ([`merge_key`](crate::dedup::key::merge_key)).
    pub merge_key: &'a str,
    /// Body SimHash, for near duplicates.
    pub simhash: Option<u64>,
}

/// Durable records. Every method is idempotent where the pipeline may repeat it.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks the store answers.
    async fn ping(&self) -> Result<()>;
    /// Closes the store's connections (at shutdown).
    async fn close(&self);

    /// All sources, by id.
    async fn list_sources(&self) -> Result<Vec<Source>>;
    /// One source.
    async fn get_source(&self, id: i64) -> Result<Source>;
    /// Creates a source; a duplicate name is a conflict.
    async fn create_source(&self, input: &SourceInput) -> Result<Source>;
    /// Replaces a source's definition (its fetch health is kept).
    async fn update_source(&self, id: i64, input: &SourceInput) -> Result<Source>;
    /// Deletes a source.
    async fn delete_source(&self, id: i64) -> Result<()>;
    /// Records the outcome of a fetch.
    async fn record_fetch(&self, id: i64, report: &FetchReport) -> Result<()>;
    /// What a read of an exchange's market lists holds that was not seen there before (a
    /// market type read for the first time is reported apart, to be recorded silently).
    async fn market_changes(
        &self,
        exchange: Exchange,
        listings: &[MarketListing],
    ) -> Result<MarketsSeen>;
    /// Remembers every symbol of a read of an exchange's market lists.
    async fn record_markets(
        &self,
        exchange: Exchange,
        listings: &[MarketListing],
        at: DateTime<Utc>,
    ) -> Result<()>;

    /// The tokens the watched exchanges list that trade, by each asset's earliest sighting on
    /// any of them: in the first read of its exchange's market type and trading then, or
    /// first seen before `seen_before`; one per base, by base.
    async fn listed_tokens(&self, seen_before: DateTime<Utc>) -> Result<Vec<ListedToken>>;

    /// The watchlist, by id.
    async fn list_companies(&self) -> Result<Vec<Company>>;
    /// One company.
    async fn get_company(&self, id: i64) -> Result<Company>;
    /// Adds a company; a duplicate name (case-insensitive) is a conflict.
    async fn create_company(&self, input: &CompanyInput) -> Result<Company>;
    /// Replaces a company.
    async fn update_company(&self, id: i64, input: &CompanyInput) -> Result<Company>;
    /// Deletes a company.
    async fn delete_company(&self, id: i64) -> Result<()>;

    /// Records a classified document, atomically: stores the document and its detection
    /// unless its id is already stored, and for a TGE merges it into the event with the same
    /// `merge_key` seen within `merge_window`, or creates one.
    ///
    /// With a body `simhash` (see [`crate::dedup::fingerprint`]), near duplicates seen within the window
    /// count too: a near copy from the same source is a [`RecordOutcome::Duplicate`], and a TGE
    /// that nearly copies a document of an event from another source joins that event.
    async fn record_classified(
        &self,
        item: &ClassifiedDocument,
        merge_key: &str,
        simhash: Option<u64>,
        merge_window: Duration,
    ) -> Result<RecordOutcome> {
        let batch = [ToRecord {
            item,
            merge_key,
            simhash,
        }];
        let outcomes = self.record_classified_batch(&batch, merge_window).await?;
        // The batch gives one outcome per item: exactly one here.
        Ok(outcomes
            .into_iter()
            .next()
            .unwrap_or(RecordOutcome::Duplicate))
    }
    /// Records a batch of classified documents in one transaction, in order, each as
    /// [`Store::record_classified`] does (a later item sees the earlier ones: a copy within
    /// the batch is a duplicate). All or nothing: on an error nothing of the batch is
    /// recorded. One outcome per item, in order.
    async fn record_classified_batch(
        &self,
        batch: &[ToRecord<'_>],
        merge_window: Duration,
    ) -> Result<Vec<RecordOutcome>>;
    /// A page of events, newest first.
    async fn list_events(&self, query: &EventQuery) -> Result<EventPage>;
    /// The database's plan for the page of events `query` asks for, a line per step
    /// (`EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` on Postgres): which indexes each filter
    /// reads (docs/storage.md shows them; tests and `scripts/bench.sh` check them).
    async fn explain_events(&self, query: &EventQuery) -> Result<Vec<String>>;
    /// One event with its sources and evidence.
    async fn get_event(&self, id: i64) -> Result<TgeEvent>;
    /// Documents stored.
    async fn count_documents(&self) -> Result<u64>;
    /// Retention: deletes up to `batch` documents stored before `before` that no event lists
    /// (events keep their evidence and sources), oldest first, with their detections; returns
    /// how many.
    async fn prune_documents(&self, before: DateTime<Utc>, batch: usize) -> Result<u64>;
    /// Retention: deletes up to `batch` fingerprints stored before `before`, oldest first,
    /// never the newest; returns how many.
    async fn prune_fingerprints(&self, before: DateTime<Utc>, batch: usize) -> Result<u64>;
    /// Applies an analyst's update (a status, a note, or both) to each of `ids` that exists,
    /// by `actor` (the API key's name) at `at`, in one transaction: each event whose status
    /// changes, or that gets a note, gains an entry in its history; a confirmation raises the
    /// event's revision and writes an outbox row (subscribers get an update alert). Returns
    /// the ids found, ascending.
    async fn update_events(
        &self,
        ids: &[i64],
        update: &EventUpdate,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<i64>>;
    /// An event's history of status changes and notes, oldest first.
    async fn event_history(&self, event_id: i64) -> Result<Vec<EventChangeRecord>>;
    /// Records a change of a source's health, if the stored state still calls for it (a
    /// source already down is not marked down again), with its outbox row, in one
    /// transaction. Returns whether it was recorded.
    async fn record_source_health(
        &self,
        source_id: i64,
        change: &HealthChange,
        at: DateTime<Utc>,
    ) -> Result<bool>;

    /// Stores an API key's hash.
    async fn insert_api_key(&self, name: &str, hash: &str, scopes: &[String]) -> Result<i64>;
    /// Stores an API key's hash under `name` and revokes every other key of that name: the
    /// bootstrap key from the environment replaces the one before it. The new key is stored
    /// before the old ones are revoked, so there is never a moment without one.
    async fn replace_api_key(&self, name: &str, hash: &str, scopes: &[String]) -> Result<i64>;
    /// Finds an API key by hash, revoked and expired ones included (the caller says why
    /// they do not work).
    async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKey>>;
    /// API keys not revoked.
    async fn count_api_keys(&self) -> Result<u64>;
    /// Stores a new key (its hash) and returns it as listed.
    async fn create_api_key(
        &self,
        name: &str,
        hash: &str,
        scopes: &[String],
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<ApiKey>;
    /// Every key, revoked ones included, oldest first.
    async fn list_api_keys(&self) -> Result<Vec<ApiKey>>;
    /// Revokes a key at `at` (a revoked key stays revoked at its first time); the key after.
    async fn revoke_api_key(&self, id: i64, at: DateTime<Utc>) -> Result<ApiKey>;
    /// In one transaction: a new key under `new_hash` with the old one's name, scopes and
    /// expiry, and the old one revoked at `at`. A revoked key cannot be rotated (conflict).
    async fn rotate_api_key(&self, id: i64, new_hash: &str, at: DateTime<Utc>) -> Result<ApiKey>;
    /// Records that a key was used at `at`; written only when the stored time is a minute
    /// older or more, so busy keys cost one write a minute.
    async fn touch_api_key(&self, id: i64, at: DateTime<Utc>) -> Result<()>;

    /// Records `key` as done; true only the first time (one-time steps such as seeding).
    async fn claim_once(&self, key: &str) -> Result<bool>;

    /// Persists memory changes in one transaction: each of `puts` is stored (or replaces the
    /// entry under its namespace and key), each of `deletes` (namespace, key) is removed
    /// (absent is fine). A key may appear only once across both (the caller coalesces a key's
    /// changes into its last); a repeated key is an
    /// [`Error::Invalid`](crate::error::Error::Invalid) and nothing is written.
    async fn write_memory(&self, puts: &[MemoryEntry], deletes: &[(String, String)]) -> Result<()>;
    /// Memory entries not expired at `now`; expired ones are purged.
    async fn load_memory(&self, now: DateTime<Utc>) -> Result<Vec<MemoryEntry>>;

    /// Writes desired state under `key`, bumping its generation.
    async fn put_desired(&self, key: &str, value: &serde_json::Value) -> Result<DesiredEntry>;
    /// All desired state, by key.
    async fn list_desired(&self) -> Result<Vec<DesiredEntry>>;

    /// Stores analyst feedback on an event.
    async fn add_feedback(
        &self,
        event_id: i64,
        label: FeedbackLabel,
        note: Option<&str>,
        sample: &serde_json::Value,
    ) -> Result<Feedback>;
    /// All feedback, oldest first.
    async fn list_feedback(&self) -> Result<Vec<Feedback>>;

    /// Records a supervisor decision.
    async fn record_supervisor_action(&self, input: &SupervisorActionInput) -> Result<i64>;
    /// Recorded supervisor decisions, newest first.
    async fn list_supervisor_actions(
        &self,
        query: &SupervisorActionQuery,
    ) -> Result<Vec<SupervisorAction>>;
    /// Saves a synthesis snapshot; returns its id.
    async fn save_snapshot(&self, at: DateTime<Utc>, body: &serde_json::Value) -> Result<i64>;
    /// The newest snapshot.
    async fn latest_snapshot(&self) -> Result<Option<SynthesisSnapshot>>;

    /// Creates a subscription; [`Error::Conflict`](crate::error::Error::Conflict) when its
    /// name is taken.
    async fn create_subscription(
        &self,
        input: &SubscriptionInput,
    ) -> Result<crate::domain::Subscription>;
    /// Every subscription, oldest first.
    async fn list_subscriptions(&self) -> Result<Vec<crate::domain::Subscription>>;
    /// One subscription; not found when it does not exist.
    async fn get_subscription(&self, id: i64) -> Result<crate::domain::Subscription>;
    /// Deletes a subscription and its delivery log.
    async fn delete_subscription(&self, id: i64) -> Result<()>;
    /// Outbox rows not fanned out yet, oldest first, at most `limit`.
    async fn waiting_outbox(&self, limit: u32) -> Result<Vec<OutboxItem>>;
    /// Outbox rows after row `after`, oldest first, at most `limit`, whether fanned out or
    /// not: the ordered log of new events the live stream reads.
    async fn outbox_after(&self, after: i64, limit: u32) -> Result<Vec<OutboxItem>>;
    /// The newest outbox row's id (0 when there is none).
    async fn latest_outbox_row(&self) -> Result<i64>;
    /// In one transaction: creates `alerts` (skipping any whose idempotency key exists, so a
    /// row fanned out twice creates each alert once) and marks the outbox rows `outbox_ids`
    /// fanned out. Returns how many alerts were created.
    async fn fan_out(
        &self,
        outbox_ids: &[i64],
        alerts: &[NewAlert],
        now: DateTime<Utc>,
    ) -> Result<u64>;
    /// When the newest alert of `event_id` to `subscription_id` was created (quiet windows).
    async fn last_alert_at(
        &self,
        subscription_id: i64,
        event_id: i64,
    ) -> Result<Option<DateTime<Utc>>>;
    /// Leases up to `limit` pending alerts due at `now` until `lease_until` and counts the
    /// attempt: an alert leased by one deliverer is not leased by another until the lease
    /// ends (a deliverer that died mid-send is replaced when it does).
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Alert>>;
    /// Records an attempt's outcome and ends the lease.
    async fn finish_delivery(
        &self,
        id: i64,
        outcome: &AttemptOutcome,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// A subscription's alerts, newest first, at most `limit`.
    async fn list_deliveries(&self, subscription_id: i64, limit: u32) -> Result<Vec<Alert>>;
}

/// A running instance of a service (serialised as the Redis registry stores it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ServiceInstance {
    /// Unique id (`local/keyword-0`).
    pub id: String,
    /// Service name (`tge-swarm-agent-keyword`).
    pub service: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Metadata (metrics port, kind, node).
    pub meta: Meta,
}

/// Service registry with TTL checks, modelled on Consul's agent API.
#[async_trait]
pub trait Registry: Send + Sync + 'static {
    /// Registers an instance with a TTL check.
    async fn register(&self, instance: &ServiceInstance, ttl: Duration) -> Result<()>;
    /// Removes an instance.
    async fn deregister(&self, id: &str) -> Result<()>;
    /// Marks an instance's TTL check as passing.
    async fn pass(&self, id: &str) -> Result<()>;
    /// Instances of a service whose check is passing.
    async fn healthy(&self, service: &str) -> Result<Vec<ServiceInstance>>;
}
