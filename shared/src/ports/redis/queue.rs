//! [`WorkQueue`] on Redis Streams with the consumer group `swarm`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use fred::prelude::*;

use super::super::{Delivery, LeaseRound, QueueDepth, WorkQueue};
use super::{COMMAND_TIMEOUT, FIELD, GROUP, PENDING_SCAN, RedisSettings, unavailable};
use crate::error::{Error as SwarmError, Result};

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
pub(super) fn parse_entries(value: Value) -> Vec<Entry> {
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

/// The entries of an XREADGROUP reply, with the name of the stream each came from.
fn parse_read(value: Value) -> Vec<(String, Entry)> {
    let named = |name: Option<String>, entries: Value| {
        let name = name.unwrap_or_default();
        parse_entries(entries)
            .into_iter()
            .map(move |entry| (name.clone(), entry))
    };
    match value {
        Value::Null => Vec::new(),
        Value::Map(map) => map
            .inner()
            .into_iter()
            .flat_map(|(name, entries)| named(name.as_str().map(|n| n.to_string()), entries))
            .collect(),
        other => {
            let mut out = Vec::new();
            for stream in other.into_array() {
                let mut parts = stream.into_array().into_iter();
                let name = parts.next().and_then(|name| name.as_string());
                if let Some(entries) = parts.next() {
                    out.extend(named(name, entries));
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

    /// New entries of `queues` for `consumer` (XREADGROUP over every stream at once, at most
    /// `max` from each), waiting up to `wait` for the first; each with its stream's name.
    async fn read_new(
        &self,
        queues: &[String],
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> std::result::Result<Vec<(String, Entry)>, fred::error::Error> {
        let newest: Vec<&str> = vec![">"; queues.len()];
        let value: Value = if wait.is_zero() {
            self.client
                .xreadgroup(
                    GROUP,
                    consumer,
                    Some(max as u64),
                    None,
                    false,
                    queues.to_vec(),
                    newest,
                )
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
                    queues.to_vec(),
                    newest,
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

    async fn take_any(
        &self,
        queues: &[String],
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<(usize, Delivery)>> {
        if queues.is_empty() {
            tokio::time::sleep(wait).await;
            return Ok(Vec::new());
        }
        // Items idle past the visibility timeout first, at most each stream's share of `max`.
        let share = (max.max(1) / queues.len()).max(1);
        let mut taken = Vec::new();
        for (index, queue) in queues.iter().enumerate() {
            self.ensure_group(queue).await?;
            let reclaimed = self.reclaim(queue, consumer, share).await?;
            taken.extend(reclaimed.into_iter().map(|delivery| (index, delivery)));
        }
        // XREADGROUP's COUNT is per stream: each read asks every stream for its share of
        // what is left, then asks again those that gave a full share (a backlog in one
        // partition still fills a batch), so a take returns at most `max` items.
        let max = max.max(1);
        let mut reading: Vec<usize> = (0..queues.len()).collect();
        let mut wait = if taken.is_empty() {
            wait
        } else {
            Duration::ZERO
        };
        for _ in 0..4 {
            let remaining = max.saturating_sub(taken.len());
            reading.truncate(remaining);
            if reading.is_empty() {
                break;
            }
            let share = remaining / reading.len();
            let names: Vec<String> = reading.iter().map(|index| queues[*index].clone()).collect();
            let entries = match self.read_new(&names, consumer, share, wait).await {
                Ok(entries) => entries,
                Err(err) if is_nogroup(&err) => {
                    for queue in &names {
                        self.forget_group(queue);
                        self.ensure_group(queue).await?;
                    }
                    self.read_new(&names, consumer, share, Duration::ZERO)
                        .await
                        .map_err(unavailable)?
                }
                Err(err) => return Err(unavailable(err)),
            };
            wait = Duration::ZERO;
            let mut read = vec![0usize; queues.len()];
            for (stream, (id, payload)) in entries {
                let Some(index) = queues.iter().position(|queue| *queue == stream) else {
                    continue;
                };
                read[index] += 1;
                let Some(payload) = payload else {
                    continue;
                };
                taken.push((
                    index,
                    Delivery {
                        id,
                        payload,
                        deliveries: 1,
                    },
                ));
            }
            reading.retain(|index| read[*index] >= share);
        }
        Ok(taken)
    }

    async fn lease_round(
        &self,
        group: &str,
        consumer: &str,
        ttl: Duration,
        leases: &[String],
        wanted: &[bool],
    ) -> Result<LeaseRound> {
        super::leases::round(&self.client, group, consumer, ttl, leases, wanted).await
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
pub(super) fn parse_stream_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

pub(super) fn compare_ids(a: &str, b: &str) -> std::cmp::Ordering {
    parse_stream_id(a).cmp(&parse_stream_id(b))
}
