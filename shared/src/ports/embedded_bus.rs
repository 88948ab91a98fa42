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

/// Shared keys are held at least this many before expired ones are purged.
const KEYS_BEFORE_PURGE: usize = 1_024;

/// The in-process bus.
#[derive(Debug)]
pub struct EmbeddedBus {
    senders: HashMap<Channel, broadcast::Sender<Vec<u8>>>,
    keys: Mutex<Keys>,
}

/// Shared keys with their expiry. Expired keys are purged when the map has doubled since the
/// last purge: amortised O(1) per write, and the map stays within twice the live key set
/// (plus [`KEYS_BEFORE_PURGE`]). Reads never return an expired key.
#[derive(Debug)]
struct Keys {
    map: HashMap<String, (Vec<u8>, Instant)>,
    purge_at: usize,
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
            keys: Mutex::new(Keys {
                map: HashMap::new(),
                purge_at: KEYS_BEFORE_PURGE,
            }),
        }
    }

    fn sender(&self, channel: Channel) -> &broadcast::Sender<Vec<u8>> {
        // Every channel is inserted in `new`; the map never changes afterwards.
        &self.senders[&channel]
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, Keys> {
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
                        telemetry::bus_dropped(channel.as_str(), missed);
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
        if keys.map.len() >= keys.purge_at {
            keys.map.retain(|_, (_, expires)| *expires > now);
            keys.purge_at = (keys.map.len() * 2).max(KEYS_BEFORE_PURGE);
        }
        keys.map.insert(key.to_owned(), (value, now + ttl));
        Ok(())
    }

    async fn get_key(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let now = Instant::now();
        let keys = self.keys();
        Ok(keys
            .map
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value.clone()))
    }

    async fn delete_key(&self, key: &str) -> Result<()> {
        self.keys().map.remove(key);
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expired_keys_are_purged_once_the_map_doubles() {
        let bus = EmbeddedBus::new(16);
        for index in 0..KEYS_BEFORE_PURGE - 1 {
            bus.put_key(&format!("short-{index}"), vec![1], Duration::from_secs(1))
                .await
                .unwrap();
        }
        bus.put_key("long", vec![2], Duration::from_secs(60))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(bus.get_key("short-0").await.unwrap(), None, "expired");
        assert_eq!(bus.get_key("long").await.unwrap(), Some(vec![2]));
        // The map reached KEYS_BEFORE_PURGE: this write purges the expired keys first.
        bus.put_key("next", vec![3], Duration::from_secs(60))
            .await
            .unwrap();
        let keys = bus.keys();
        assert_eq!(keys.map.len(), 2, "only the live keys are held");
        assert_eq!(keys.purge_at, KEYS_BEFORE_PURGE);
    }
}
