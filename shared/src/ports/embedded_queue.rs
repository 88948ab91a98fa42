//! In-process [`WorkQueue`] with the semantics of a Redis Streams consumer group: each item is
//! delivered to one consumer and stays pending under it until acknowledged; a consumer that
//! restarts with the same name gets its pending items back (`recover`, like `XREADGROUP 0`),
//! and items pending longer than the visibility timeout go to whichever consumer asks next
//! (like `XAUTOCLAIM`). Items are never dropped: only `ack` removes them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Delivery, LeaseRound, QueueDepth, WorkQueue};
use crate::error::{Error, Result};

#[derive(Debug)]
struct Ready {
    seq: u64,
    payload: Arc<Vec<u8>>,
}

#[derive(Debug)]
struct Pending {
    payload: Arc<Vec<u8>>,
    consumer: String,
    delivered_at: Instant,
    deliveries: u32,
}

#[derive(Debug, Default)]
struct QueueState {
    ready: VecDeque<Ready>,
    pending: BTreeMap<u64, Pending>,
    notify: Arc<Notify>,
}

/// Partition leases in process: who holds each lease until when, and each group's members
/// until when.
#[derive(Debug, Default)]
struct Leases {
    holders: HashMap<String, (String, Instant)>,
    members: HashMap<String, BTreeMap<String, Instant>>,
}

/// The in-process work queue.
#[derive(Debug)]
pub struct EmbeddedQueue {
    queues: Mutex<HashMap<String, QueueState>>,
    leases: Mutex<Leases>,
    visibility_timeout: Duration,
    next_seq: std::sync::atomic::AtomicU64,
}

impl EmbeddedQueue {
    /// A queue set whose un-acknowledged items become reclaimable after `visibility_timeout`.
    pub fn new(visibility_timeout: Duration) -> Self {
        EmbeddedQueue {
            queues: Mutex::new(HashMap::new()),
            leases: Mutex::new(Leases::default()),
            visibility_timeout,
            next_seq: std::sync::atomic::AtomicU64::new(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, QueueState>> {
        self.queues
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Moves up to `max` items to `consumer`: first those idle past the visibility timeout,
    /// then ready ones.
    fn grab(
        &self,
        state: &mut QueueState,
        consumer: &str,
        max: usize,
        now: Instant,
    ) -> Vec<Delivery> {
        let mut out = Vec::new();
        for (seq, pending) in state.pending.iter_mut() {
            if out.len() >= max {
                break;
            }
            if now.duration_since(pending.delivered_at) < self.visibility_timeout {
                continue;
            }
            pending.consumer = consumer.to_owned();
            pending.delivered_at = now;
            pending.deliveries += 1;
            out.push(Delivery {
                id: seq.to_string(),
                payload: pending.payload.as_ref().clone(),
                deliveries: pending.deliveries,
            });
        }
        while out.len() < max {
            let Some(ready) = state.ready.pop_front() else {
                break;
            };
            out.push(Delivery {
                id: ready.seq.to_string(),
                payload: ready.payload.as_ref().clone(),
                deliveries: 1,
            });
            state.pending.insert(
                ready.seq,
                Pending {
                    payload: ready.payload,
                    consumer: consumer.to_owned(),
                    delivered_at: now,
                    deliveries: 1,
                },
            );
        }
        out
    }
}

fn parse_id(id: &str) -> Result<u64> {
    id.parse().map_err(|_| {
        Error::Invalid(format!(
            "work item id `{id}` is not one of this queue's ids"
        ))
    })
}

#[async_trait]
impl WorkQueue for EmbeddedQueue {
    fn durable(&self) -> bool {
        false
    }

    async fn peek(&self, queue: &str, max: usize) -> Result<Vec<(String, Vec<u8>)>> {
        let queues = self.lock();
        let Some(state) = queues.get(queue) else {
            return Ok(Vec::new());
        };
        let mut items: Vec<(u64, Vec<u8>)> = state
            .pending
            .iter()
            .map(|(seq, pending)| (*seq, pending.payload.as_ref().clone()))
            .chain(
                state
                    .ready
                    .iter()
                    .map(|ready| (ready.seq, ready.payload.as_ref().clone())),
            )
            .collect();
        items.sort_by_key(|(seq, _)| *seq);
        items.truncate(max);
        Ok(items
            .into_iter()
            .map(|(seq, payload)| (seq.to_string(), payload))
            .collect())
    }

    async fn enqueue(&self, queue: &str, payloads: Vec<Vec<u8>>) -> Result<Vec<String>> {
        let mut queues = self.lock();
        let state = queues.entry(queue.to_owned()).or_default();
        let mut ids = Vec::with_capacity(payloads.len());
        for payload in payloads {
            let seq = self
                .next_seq
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            state.ready.push_back(Ready {
                seq,
                payload: Arc::new(payload),
            });
            ids.push(seq.to_string());
        }
        state.notify.notify_waiters();
        Ok(ids)
    }

    async fn take_any(
        &self,
        queues: &[String],
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<(usize, Delivery)>> {
        let deadline = Instant::now() + wait;
        let max = max.max(1);
        loop {
            let notifies: Vec<Arc<Notify>> = {
                let mut states = self.lock();
                let now = Instant::now();
                let mut taken = Vec::new();
                for (index, queue) in queues.iter().enumerate() {
                    if taken.len() >= max {
                        break;
                    }
                    let state = states.entry(queue.clone()).or_default();
                    let grabbed = self.grab(state, consumer, max - taken.len(), now);
                    taken.extend(grabbed.into_iter().map(|delivery| (index, delivery)));
                }
                if !taken.is_empty() {
                    return Ok(taken);
                }
                queues
                    .iter()
                    .map(|queue| states.entry(queue.clone()).or_default().notify.clone())
                    .collect()
            };
            let mut notified: Vec<_> = notifies
                .iter()
                .map(|notify| Box::pin(notify.notified()))
                .collect();
            // Registered before looking again, so an enqueue that slipped in between the look
            // above and this registration is seen by the look below, not missed.
            for one in &mut notified {
                one.as_mut().enable();
            }
            let ready_now = {
                let states = self.lock();
                queues.iter().any(|queue| {
                    states
                        .get(queue)
                        .is_some_and(|state| !state.ready.is_empty())
                })
            };
            if ready_now {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            if notified.is_empty() {
                tokio::time::sleep(deadline - now).await;
                return Ok(Vec::new());
            }
            let any = futures::future::select_all(notified);
            if tokio::time::timeout(deadline - now, any).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn lease_round(
        &self,
        group: &str,
        consumer: &str,
        ttl: Duration,
        leases: &[String],
        wanted: &[bool],
    ) -> Result<LeaseRound> {
        let now = Instant::now();
        let mut state = self
            .leases
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let Leases { holders, members } = &mut *state;
        let group_members = members.entry(group.to_owned()).or_default();
        group_members.retain(|_, until| *until > now);
        let leaving = ttl.is_zero();
        if leaving {
            group_members.remove(consumer);
        } else {
            group_members.insert(consumer.to_owned(), now + ttl);
        }
        let mut held = Vec::new();
        for (index, lease) in leases.iter().enumerate() {
            let current = holders
                .get(lease)
                .filter(|(_, until)| *until > now)
                .map(|(holder, _)| holder.as_str());
            let want = !leaving && wanted.get(index).copied().unwrap_or(false);
            match current {
                _ if want && current.is_none_or(|holder| holder == consumer) => {
                    holders.insert(lease.clone(), (consumer.to_owned(), now + ttl));
                    held.push(index);
                }
                Some(holder) if holder == consumer => {
                    holders.remove(lease);
                }
                _ => {}
            }
        }
        Ok(LeaseRound {
            members: group_members.keys().cloned().collect(),
            held,
        })
    }

    async fn recover(&self, queue: &str, consumer: &str) -> Result<Vec<Delivery>> {
        let now = Instant::now();
        let mut queues = self.lock();
        let state = queues.entry(queue.to_owned()).or_default();
        let mut out = Vec::new();
        for (seq, pending) in state.pending.iter_mut() {
            if pending.consumer != consumer {
                continue;
            }
            pending.delivered_at = now;
            pending.deliveries += 1;
            out.push(Delivery {
                id: seq.to_string(),
                payload: pending.payload.as_ref().clone(),
                deliveries: pending.deliveries,
            });
        }
        Ok(out)
    }

    async fn release(&self, queue: &str, consumer: &str) -> Result<u64> {
        let now = Instant::now();
        // Delivered "a visibility timeout ago": the next `take` of any consumer reclaims it.
        let long_ago = now.checked_sub(self.visibility_timeout).unwrap_or(now);
        let mut queues = self.lock();
        let state = queues.entry(queue.to_owned()).or_default();
        let mut released = 0;
        for pending in state.pending.values_mut() {
            if pending.consumer == consumer {
                pending.consumer = crate::channels::FAILOVER_CONSUMER.to_owned();
                pending.delivered_at = long_ago;
                released += 1;
            }
        }
        if released > 0 {
            state.notify.notify_waiters();
        }
        Ok(released)
    }

    async fn ack(&self, queue: &str, ids: &[String]) -> Result<()> {
        let mut queues = self.lock();
        let state = queues.entry(queue.to_owned()).or_default();
        for id in ids {
            let seq = parse_id(id)?;
            state.pending.remove(&seq);
        }
        Ok(())
    }

    async fn depth(&self, queue: &str) -> Result<QueueDepth> {
        let queues = self.lock();
        let Some(state) = queues.get(queue) else {
            return Ok(QueueDepth::default());
        };
        Ok(QueueDepth {
            ready: state.ready.len() as u64,
            pending: state.pending.len() as u64,
        })
    }
}
