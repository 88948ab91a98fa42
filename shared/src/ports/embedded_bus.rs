//! In-process [`Bus`]: one tokio broadcast channel per swarm channel. Like Redis pub/sub it is
//! at-most-once: a subscriber that falls more than `buffer` messages behind loses the oldest,
//! and the loss is counted in `tge_swarm_bus_dropped_total{channel}`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{Bus, Subscription};
use crate::channels::Channel;
use crate::error::Result;
use crate::telemetry;

/// The in-process bus.
#[derive(Debug)]
pub struct EmbeddedBus {
    senders: HashMap<Channel, broadcast::Sender<Vec<u8>>>,
    keys: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
}

impl EmbeddedBus {
    /// A bus whose subscribers buffer up to `buffer` messages each.
    pub fn new(buffer: usize) -> Self {
        let mut senders = HashMap::new();
        for channel in Channel::ALL {
            let (sender, _) = broadcast::channel(buffer.max(1));
            senders.insert(channel, sender);
        }
        EmbeddedBus {
            senders,
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn sender(&self, channel: Channel) -> &broadcast::Sender<Vec<u8>> {
        // Every channel is inserted in `new`; the map never changes afterwards.
        &self.senders[&channel]
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Vec<u8>, Instant)>> {
        self.keys
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[async_trait]
impl Bus for EmbeddedBus {
    async fn publish(&self, channel: Channel, payload: Vec<u8>) -> Result<()> {
        // No subscriber is not an error: pub/sub drops messages nobody listens to.
        let _ = self.sender(channel).send(payload);
        Ok(())
    }

    async fn subscribe(&self, channel: Channel) -> Result<Subscription> {
        let receiver = self.sender(channel).subscribe();
        let stream = futures::stream::unfold(receiver, move |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(payload) => return Some((payload, receiver)),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        metrics::counter!(telemetry::BUS_DROPPED_TOTAL, "channel" => channel.as_str())
                            .increment(missed);
                        tracing::warn!(%channel, missed, "bus subscriber lagged, messages dropped");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(stream.boxed())
    }

    async fn put_key(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<()> {
        let now = Instant::now();
        let mut keys = self.keys();
        // Expired keys are purged on write so the map stays as small as the live key set.
        keys.retain(|_, (_, expires)| *expires > now);
        keys.insert(key.to_owned(), (value, now + ttl));
        Ok(())
    }

    async fn get_key(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let now = Instant::now();
        let keys = self.keys();
        Ok(keys
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value.clone()))
    }

    async fn delete_key(&self, key: &str) -> Result<()> {
        self.keys().remove(key);
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
