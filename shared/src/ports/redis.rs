//! [`Bus`] and [`WorkQueue`] on Redis, through fred.
//!
//! * Bus: `PUBLISH` on the four `swarm:channels:*` channels. One subscriber connection per
//!   process subscribes to all four and fans messages out in process (the embedded bus does
//!   the fan-out, so slow local subscribers lose the oldest messages exactly as in embedded
//!   mode, counted in `tge_swarm_bus_dropped_total`). fred's own subscriber buffer is sized to
//!   the configured bus buffer (its default of 32 drops messages under bursts). After a Redis
//!   restart fred reconnects with backoff and the subscriber resubscribes. Short-lived keys
//!   (`swarm:metrics:*`, `swarm:memory:*`) are plain `SET .. PX`.
//! * Work queue: one stream per queue with the consumer group `swarm`. `enqueue` is `XADD`;
//!   `take` first `XAUTOCLAIM`s entries idle past the visibility timeout (left by a consumer
//!   that died), then `XREADGROUP >`, blocking on a connection of the consumer's own so one
//!   blocked read never stalls the others; `recover` re-`XCLAIM`s the consumer's own pending
//!   entries; `ack` is `XACK` then `XDEL`, so the stream holds only ready and pending work.
//!   Delivery counts come from `XPENDING`. A group lost with the data (a Redis restart without
//!   persistence) is recreated on `NOGROUP`.
//!
//! Nothing here retries on its own: a failed call returns [`Error::Unavailable`] and the caller
//! keeps its work pending (workers do not acknowledge, the queen reschedules next tick).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fred::prelude::*;

use super::embedded_bus::EmbeddedBus;
use super::{Bus, Delivery, KeyChange, QueueDepth, Subscription, WorkQueue};
use crate::channels::Channel;
use crate::error::{Error as SwarmError, Result};
use crate::telemetry;

/// Consumer group every queue is read through.
pub const GROUP: &str = "swarm";
/// Stream field holding an item's payload.
const FIELD: &str = "p";
/// Per-command timeout (blocking reads get theirs on top of the wait).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest number of pending entries looked at in one `XPENDING`.
const PENDING_SCAN: u64 = 10_000;
/// Commands per pipeline in [`Bus::write_batch`].
const PIPELINE_COMMANDS: usize = 1_000;

fn unavailable(err: fred::error::Error) -> SwarmError {
    SwarmError::unavailable("redis", err)
}

/// Settings shared by every connection of a process.
#[derive(Clone)]
pub struct RedisSettings {
    /// The URL with any password masked, for messages.
    shown: String,
    config: Config,
    buffer: usize,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the configuration itself: it holds the password.
        f.debug_struct("RedisSettings")
            .field("url", &self.shown)
            .field("buffer", &self.buffer)
            .finish()
    }
}

impl RedisSettings {
    /// Settings for `url` (`redis://[:password@]host:port[/db]`); `buffer` sizes pub/sub
    /// buffers (the bus buffer of the config).
    pub fn new(url: &str, buffer: usize) -> Result<RedisSettings> {
        let shown = redact(url);
        let config = Config::from_url(url).map_err(|err| {
            // fred's message may quote the URL: only the redacted one is shown.
            let reason = err.details().replace(url, &shown);
            SwarmError::Invalid(format!("TGE_SWARM_REDIS_URL: {reason}: {shown}"))
        })?;
        Ok(RedisSettings {
            shown,
            config,
            buffer: buffer.max(1),
        })
    }

    fn builder(&self) -> Builder {
        let mut builder = Builder::from_config(self.config.clone());
        builder
            .with_performance_config(|perf| {
                perf.default_command_timeout = COMMAND_TIMEOUT;
                perf.broadcast_channel_capacity = self.buffer;
            })
            .with_connection_config(|conn| {
                conn.connection_timeout = Duration::from_secs(3);
                conn.internal_command_timeout = COMMAND_TIMEOUT;
                // A command in flight when the connection dropped is retried once after the
                // reconnect; then the caller sees the error.
                conn.max_command_attempts = 2;
            })
            // Retry forever, 100 ms doubling to 2 s: a Redis restart is waited out.
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2));
        builder
    }

    fn connect_error(&self, err: fred::error::Error) -> SwarmError {
        SwarmError::unavailable("redis", format!("connecting to {}: {err}", self.shown))
    }

    /// A connected client; fails (naming the URL without its password) if Redis cannot be
    /// reached now.
    pub async fn connect(&self) -> Result<Client> {
        let client = self.builder().build().map_err(unavailable)?;
        client.init().await.map_err(|err| self.connect_error(err))?;
        Ok(client)
    }
}

/// The URL with any password replaced by `***`, for messages. A URL that does not parse has
/// its whole user-info part replaced, so a malformed URL never leaks a password either.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => {
            let Some(scheme_end) = url.find("://") else {
                return url.to_owned();
            };
            let rest = &url[scheme_end + 3..];
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{}***{}", &url[..scheme_end + 3], &rest[at..]),
                None => url.to_owned(),
            }
        }
    }
}

/// Pub/sub and short-lived keys on Redis.
pub struct RedisBus {
    client: Client,
    subscriber: fred::clients::SubscriberClient,
    local: Arc<EmbeddedBus>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus").finish_non_exhaustive()
    }
}

impl RedisBus {
    /// Connects a publisher and a subscriber and subscribes to every swarm channel.
    pub async fn connect(settings: &RedisSettings) -> Result<RedisBus> {
        let client = settings.connect().await?;
        let subscriber = settings
            .builder()
            .build_subscriber_client()
            .map_err(unavailable)?;
        subscriber
            .init()
            .await
            .map_err(|err| settings.connect_error(err))?;
        let local = Arc::new(EmbeddedBus::new(settings.buffer));
        let mut messages = subscriber.message_rx();
        let fan_out = local.clone();
        let forward = tokio::spawn(async move {
            loop {
                match messages.recv().await {
                    Ok(message) => {
                        let Some(channel) = Channel::ALL
                            .into_iter()
                            .find(|channel| channel.as_str() == &*message.channel)
                        else {
                            continue;
                        };
                        let payload = message.value.as_bytes().map(<[u8]>::to_vec);
                        if let Some(payload) = payload {
                            let _ = fan_out.publish(channel, payload).await;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        metrics::counter!(telemetry::BUS_DROPPED_TOTAL, "channel" => "redis-subscriber")
                            .increment(missed);
                        tracing::warn!(missed, "redis subscriber lagged, messages dropped");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        let resubscribe = subscriber.manage_subscriptions();
        let names: Vec<&str> = Channel::ALL
            .iter()
            .map(|channel| channel.as_str())
            .collect();
        subscriber.subscribe(names).await.map_err(unavailable)?;
        Ok(RedisBus {
            client,
            subscriber,
            local,
            tasks: vec![forward, resubscribe],
        })
    }

    /// Whether both connections are up.
    pub fn connected(&self) -> bool {
        self.client.is_connected() && self.subscriber.is_connected()
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, channel: Channel, payload: Vec<u8>) -> Result<()> {
        let _: i64 = self
            .client
            .publish(channel.as_str(), payload)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn subscribe(&self, channel: Channel) -> Result<Subscription> {
        self.local.subscribe(channel).await
    }

    async fn put_key(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<()> {
        let ttl_ms = ttl.as_millis().clamp(1, i64::MAX as u128) as i64;
        let _: Value = self
            .client
            .set(key, value, Some(Expiration::PX(ttl_ms)), None, false)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get_key(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let value: Option<Vec<u8>> = self.client.get(key).await.map_err(unavailable)?;
        Ok(value)
    }

    async fn delete_key(&self, key: &str) -> Result<()> {
        let _: i64 = self.client.del(key).await.map_err(unavailable)?;
        Ok(())
    }

    async fn write_batch(
        &self,
        keys: Vec<KeyChange>,
        channel: Channel,
        payloads: Vec<Vec<u8>>,
    ) -> Result<()> {
        // One pipeline per chunk: the commands go out in order on one connection, and the
        // replies are awaited once per chunk instead of once per command.
        enum Command {
            Key(KeyChange),
            Publish(Vec<u8>),
        }
        let commands = keys
            .into_iter()
            .map(Command::Key)
            .chain(payloads.into_iter().map(Command::Publish));
        let mut queued = 0;
        let mut pipeline = self.client.pipeline();
        for command in commands {
            match command {
                Command::Key(KeyChange::Put { key, value, ttl }) => {
                    let ttl_ms = ttl.as_millis().clamp(1, i64::MAX as u128) as i64;
                    let _: () = pipeline
                        .set(key, value, Some(Expiration::PX(ttl_ms)), None, false)
                        .await
                        .map_err(unavailable)?;
                }
                Command::Key(KeyChange::Delete { key }) => {
                    let _: () = pipeline.del(key).await.map_err(unavailable)?;
                }
                Command::Publish(payload) => {
                    let _: () = pipeline
                        .publish(channel.as_str(), payload)
                        .await
                        .map_err(unavailable)?;
                }
            }
            queued += 1;
            if queued == PIPELINE_COMMANDS {
                let _: Vec<Value> = pipeline.all().await.map_err(unavailable)?;
                pipeline = self.client.pipeline();
                queued = 0;
            }
        }
        if queued > 0 {
            let _: Vec<Value> = pipeline.all().await.map_err(unavailable)?;
        }
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        let _: Value = self.client.ping(None).await.map_err(unavailable)?;
        if !self.subscriber.is_connected() {
            return Err(SwarmError::unavailable(
                "redis",
                "the subscriber connection is down",
            ));
        }
        Ok(())
    }
}

/// Work queues on Redis Streams.
pub struct RedisQueue {
    settings: RedisSettings,
    client: Client,
    /// One connection per consumer for blocking reads.
    blocking: tokio::sync::Mutex<HashMap<String, Client>>,
    groups: Mutex<HashSet<String>>,
    visibility_timeout: Duration,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("visibility_timeout", &self.visibility_timeout)
            .finish_non_exhaustive()
    }
}

/// One stream entry: its id and payload (`None` if the entry was deleted meanwhile).
type Entry = (String, Option<Vec<u8>>);

fn is_nogroup(err: &fred::error::Error) -> bool {
    err.details().contains("NOGROUP")
}

/// Entries of a `[id, [field, value, ...]]` list (XCLAIM, XAUTOCLAIM's second element, one
/// stream of XREADGROUP).
fn parse_entries(value: Value) -> Vec<Entry> {
    let mut out = Vec::new();
    for entry in value.into_array() {
        let mut parts = entry.into_array().into_iter();
        let Some(id) = parts.next().and_then(|id| id.as_string()) else {
            continue;
        };
        let fields = parts.next().unwrap_or(Value::Null);
        let payload = match fields {
            Value::Null => None,
            Value::Map(map) => map
                .inner()
                .into_iter()
                .find(|(key, _)| key.as_str() == Some(FIELD))
                .and_then(|(_, value)| value.as_bytes().map(<[u8]>::to_vec)),
            other => {
                let flat = other.into_array();
                let mut payload = None;
                for pair in flat.chunks(2) {
                    if pair.len() == 2 && pair[0].as_str().as_deref() == Some(FIELD) {
                        payload = pair[1].as_bytes().map(<[u8]>::to_vec);
                    }
                }
                payload
            }
        };
        out.push((id, payload));
    }
    out
}

/// The entries of an XREADGROUP reply (one stream asked for).
fn parse_read(value: Value) -> Vec<Entry> {
    match value {
        Value::Null => Vec::new(),
        Value::Map(map) => map.inner().into_values().flat_map(parse_entries).collect(),
        other => {
            let mut out = Vec::new();
            for stream in other.into_array() {
                let mut parts = stream.into_array().into_iter();
                let _name = parts.next();
                if let Some(entries) = parts.next() {
                    out.extend(parse_entries(entries));
                }
            }
            out
        }
    }
}

/// `(id, deliveries)` of an extended XPENDING reply.
fn parse_pending(value: Value) -> HashMap<String, u32> {
    let mut out = HashMap::new();
    for row in value.into_array() {
        let parts = row.into_array();
        if parts.len() < 4 {
            continue;
        }
        if let (Some(id), Some(count)) = (parts[0].as_string(), parts[3].as_u64()) {
            out.insert(id, count.min(u64::from(u32::MAX)) as u32);
        }
    }
    out
}

impl RedisQueue {
    /// Connects; items pending longer than `visibility_timeout` are reclaimed by `take`.
    pub async fn connect(settings: &RedisSettings, visibility_timeout: Duration) -> Result<Self> {
        let client = settings.connect().await?;
        Ok(RedisQueue {
            settings: settings.clone(),
            client,
            blocking: tokio::sync::Mutex::new(HashMap::new()),
            groups: Mutex::new(HashSet::new()),
            visibility_timeout,
        })
    }

    /// Whether the main connection is up.
    pub fn connected(&self) -> bool {
        self.client.is_connected()
    }

    fn known_groups(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.groups
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    async fn ensure_group(&self, queue: &str) -> Result<()> {
        if self.known_groups().contains(queue) {
            return Ok(());
        }
        let created: std::result::Result<Value, _> =
            self.client.xgroup_create(queue, GROUP, "0", true).await;
        match created {
            Ok(_) => {}
            Err(err) if err.details().contains("BUSYGROUP") => {}
            Err(err) => return Err(unavailable(err)),
        }
        self.known_groups().insert(queue.to_owned());
        Ok(())
    }

    fn forget_group(&self, queue: &str) {
        self.known_groups().remove(queue);
    }

    /// Delivery counts of `consumer`'s pending entries between `first` and `last`.
    async fn pending_counts(
        &self,
        queue: &str,
        consumer: &str,
        first: &str,
        last: &str,
    ) -> Result<HashMap<String, u32>> {
        let value: Value = self
            .client
            .xpending(
                queue,
                GROUP,
                (first, last, PENDING_SCAN, consumer.to_owned()),
            )
            .await
            .map_err(unavailable)?;
        Ok(parse_pending(value))
    }

    /// Turns claimed entries into deliveries, with counts from XPENDING. Entries deleted
    /// meanwhile (no payload) are acknowledged away: there is nothing left to deliver.
    async fn deliveries(
        &self,
        queue: &str,
        consumer: &str,
        entries: Vec<Entry>,
    ) -> Result<Vec<Delivery>> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(Vec::new());
        };
        let counts = self
            .pending_counts(queue, consumer, &first.0, &last.0)
            .await?;
        let mut out = Vec::with_capacity(entries.len());
        let mut gone = Vec::new();
        for (id, payload) in entries {
            match payload {
                Some(payload) => {
                    let deliveries = counts.get(&id).copied().unwrap_or(1).max(1);
                    out.push(Delivery {
                        id,
                        payload,
                        deliveries,
                    });
                }
                None => gone.push(id),
            }
        }
        if !gone.is_empty() {
            self.ack(queue, &gone).await?;
        }
        Ok(out)
    }

    async fn reclaim(&self, queue: &str, consumer: &str, max: usize) -> Result<Vec<Delivery>> {
        let idle_ms = self
            .visibility_timeout
            .as_millis()
            .min(u128::from(u64::MAX)) as u64;
        let value: Value = self
            .client
            .xautoclaim(
                queue,
                GROUP,
                consumer,
                idle_ms,
                "0-0",
                Some(max as u64),
                false,
            )
            .await
            .inspect_err(|err| {
                if is_nogroup(err) {
                    // The group vanished with the data: recreate it at the next take.
                    self.forget_group(queue);
                }
            })
            .map_err(unavailable)?;
        let mut parts = value.into_array().into_iter();
        let _next = parts.next();
        let entries = parts.next().map(parse_entries).unwrap_or_default();
        self.deliveries(queue, consumer, entries).await
    }

    async fn blocking_client(&self, consumer: &str) -> Result<Client> {
        let mut clients = self.blocking.lock().await;
        if let Some(client) = clients.get(consumer) {
            return Ok(client.clone());
        }
        let client = self.settings.connect().await?;
        clients.insert(consumer.to_owned(), client.clone());
        Ok(client)
    }

    async fn read_new(
        &self,
        queue: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> std::result::Result<Vec<Entry>, fred::error::Error> {
        let value: Value = if wait.is_zero() {
            self.client
                .xreadgroup(GROUP, consumer, Some(max as u64), None, false, queue, ">")
                .await?
        } else {
            let client = self
                .blocking_client(consumer)
                .await
                .map_err(|err| fred::error::Error::new(ErrorKind::IO, err.to_string()))?;
            let wait_ms = wait.as_millis().clamp(1, u128::from(u64::MAX)) as u64;
            let options = Options {
                timeout: Some(wait + COMMAND_TIMEOUT),
                ..Options::default()
            };
            client
                .with_options(&options)
                .xreadgroup(
                    GROUP,
                    consumer,
                    Some(max as u64),
                    Some(wait_ms),
                    false,
                    queue,
                    ">",
                )
                .await?
        };
        Ok(parse_read(value))
    }
}

impl Drop for RedisQueue {
    fn drop(&mut self) {
        let clients = std::mem::take(self.blocking.get_mut());
        let main = self.client.clone();
        // Closing is best effort; a runtime may no longer exist at drop.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                for client in clients.values() {
                    let _ = client.quit().await;
                }
                let _ = main.quit().await;
            });
        }
    }
}

#[async_trait]
impl WorkQueue for RedisQueue {
    fn durable(&self) -> bool {
        true
    }

    async fn peek(&self, queue: &str, max: usize) -> Result<Vec<(String, Vec<u8>)>> {
        let count = u64::try_from(max).unwrap_or(u64::MAX);
        let reply: Value = self
            .client
            .xrange(queue, "-", "+", Some(count))
            .await
            .map_err(unavailable)?;
        Ok(parse_entries(reply)
            .into_iter()
            .filter_map(|(id, payload)| payload.map(|payload| (id, payload)))
            .collect())
    }

    async fn enqueue(&self, queue: &str, payloads: Vec<Vec<u8>>) -> Result<Vec<String>> {
        let pipeline = self.client.pipeline();
        let count = payloads.len();
        for payload in payloads {
            let _: () = pipeline
                .xadd(queue, false, None::<()>, "*", vec![(FIELD, payload)])
                .await
                .map_err(unavailable)?;
        }
        let ids: Vec<Value> = pipeline.all().await.map_err(unavailable)?;
        let ids: Vec<String> = ids.iter().filter_map(Value::as_string).collect();
        if ids.len() != count {
            return Err(SwarmError::unavailable(
                "redis",
                format!("XADD returned {} ids for {count} items", ids.len()),
            ));
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
        let max = max.max(1);
        self.ensure_group(queue).await?;
        let mut taken = self.reclaim(queue, consumer, max).await?;
        if taken.len() >= max {
            return Ok(taken);
        }
        let wait = if taken.is_empty() {
            wait
        } else {
            Duration::ZERO
        };
        let entries = match self
            .read_new(queue, consumer, max - taken.len(), wait)
            .await
        {
            Ok(entries) => entries,
            Err(err) if is_nogroup(&err) => {
                self.forget_group(queue);
                self.ensure_group(queue).await?;
                self.read_new(queue, consumer, max - taken.len(), Duration::ZERO)
                    .await
                    .map_err(unavailable)?
            }
            Err(err) => return Err(unavailable(err)),
        };
        for (id, payload) in entries {
            if let Some(payload) = payload {
                taken.push(Delivery {
                    id,
                    payload,
                    deliveries: 1,
                });
            }
        }
        Ok(taken)
    }

    async fn recover(&self, queue: &str, consumer: &str) -> Result<Vec<Delivery>> {
        self.ensure_group(queue).await?;
        let counts = self.pending_counts(queue, consumer, "-", "+").await?;
        if counts.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids: Vec<String> = counts.keys().cloned().collect();
        ids.sort_by(|a, b| compare_ids(a, b));
        let value: Value = self
            .client
            .xclaim(
                queue, GROUP, consumer, 0, ids, None, None, None, false, false,
            )
            .await
            .map_err(unavailable)?;
        let entries = parse_entries(value);
        let mut out = Vec::with_capacity(entries.len());
        let mut gone = Vec::new();
        for (id, payload) in entries {
            let before = counts.get(&id).copied().unwrap_or(0);
            match payload {
                Some(payload) => out.push(Delivery {
                    id,
                    payload,
                    deliveries: before + 1,
                }),
                None => gone.push(id),
            }
        }
        if !gone.is_empty() {
            self.ack(queue, &gone).await?;
        }
        Ok(out)
    }

    async fn release(&self, queue: &str, consumer: &str) -> Result<u64> {
        self.ensure_group(queue).await?;
        let counts = self.pending_counts(queue, consumer, "-", "+").await?;
        if counts.is_empty() {
            return Ok(0);
        }
        let mut ids: Vec<String> = counts.keys().cloned().collect();
        ids.sort_by(|a, b| compare_ids(a, b));
        // XCLAIM to the parking consumer with IDLE past the visibility timeout: the entries stay
        // in the group's pending list (nothing can be lost in between), every consumer's next
        // XAUTOCLAIM takes them, and the failed consumer's `recover` no longer sees them.
        let idle_ms = (self.visibility_timeout + Duration::from_secs(1))
            .as_millis()
            .min(u128::from(u64::MAX)) as u64;
        let released: Vec<Value> = self
            .client
            .xclaim(
                queue,
                GROUP,
                crate::channels::FAILOVER_CONSUMER,
                0,
                ids,
                Some(idle_ms),
                None,
                None,
                false,
                true,
            )
            .await
            .map_err(unavailable)?;
        Ok(released.len() as u64)
    }

    async fn ack(&self, queue: &str, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        for id in ids {
            if parse_stream_id(id).is_none() {
                return Err(SwarmError::Invalid(format!(
                    "work item id `{id}` is not one of this queue's ids"
                )));
            }
        }
        let pipeline = self.client.pipeline();
        let _: () = pipeline
            .xack(queue, GROUP, ids.to_vec())
            .await
            .map_err(unavailable)?;
        let _: () = pipeline
            .xdel(queue, ids.to_vec())
            .await
            .map_err(unavailable)?;
        let _: Vec<Value> = pipeline.all().await.map_err(unavailable)?;
        Ok(())
    }

    async fn depth(&self, queue: &str) -> Result<QueueDepth> {
        let length: u64 = self.client.xlen(queue).await.map_err(unavailable)?;
        if length == 0 {
            return Ok(QueueDepth::default());
        }
        let summary: std::result::Result<Value, _> = self.client.xpending(queue, GROUP, ()).await;
        let pending = match summary {
            Ok(summary) => summary
                .into_array()
                .first()
                .and_then(Value::as_u64)
                .unwrap_or(0),
            Err(err) if is_nogroup(&err) => 0,
            Err(err) => return Err(unavailable(err)),
        };
        Ok(QueueDepth {
            ready: length.saturating_sub(pending),
            pending,
        })
    }
}

/// `ms-seq` of a stream id.
fn parse_stream_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

fn compare_ids(a: &str, b: &str) -> std::cmp::Ordering {
    parse_stream_id(a).cmp(&parse_stream_id(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_order_numerically() {
        assert_eq!(compare_ids("9-0", "10-0"), std::cmp::Ordering::Less);
        assert_eq!(compare_ids("10-2", "10-11"), std::cmp::Ordering::Less);
        assert_eq!(parse_stream_id("nope"), None);
    }

    #[test]
    fn urls_are_checked_up_front() {
        assert!(RedisSettings::new("redis://127.0.0.1:6379/0", 16).is_ok());
        // TLS (verified against the system's roots) is built in.
        assert!(RedisSettings::new("rediss://cache.example:6380/0", 16).is_ok());
        let err = RedisSettings::new("redis://:pw@[bad", 16)
            .unwrap_err()
            .to_string();
        assert!(err.contains("TGE_SWARM_REDIS_URL"), "{err}");
        assert!(!err.contains(":pw@"), "password leaked: {err}");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://:secret@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(redact("redis://cache:6379"), "redis://cache:6379");
        assert_eq!(redact("redis://:pw@[bad/0"), "redis://***@[bad/0");
    }

    #[test]
    fn entries_parse_from_flat_lists_and_tolerate_deleted_ones() {
        let value = Value::Array(vec![
            Value::Array(vec![
                Value::from("1-0"),
                Value::Array(vec![Value::from("p"), Value::Bytes(b"one".to_vec().into())]),
            ]),
            Value::Array(vec![Value::from("2-0"), Value::Null]),
        ]);
        let entries = parse_entries(value);
        assert_eq!(
            entries,
            vec![("1-0".into(), Some(b"one".to_vec())), ("2-0".into(), None)]
        );
    }
}
