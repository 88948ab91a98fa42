//! In-process [`Bus`]: one tokio broadcast channel per swarm channel. Like Redis pub/sub it is
//! at-most-once: a subscriber that falls more than `buffer` messages behind loses the oldest,
//! and the loss is counted in `tge_swarm_bus_dropped_total{channel}`.

use std::collections::HashMap;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::broadcast;

use super::{Bus, Subscription};
use crate::channels::Channel;
use crate::error::Result;
use crate::telemetry;

/// The in-process bus.
#[derive(Debug)]
pub struct EmbeddedBus {
    senders: HashMap<Channel, broadcast::Sender<Vec<u8>>>,
}

impl EmbeddedBus {
    /// A bus whose subscribers buffer up to `buffer` messages each.
    pub fn new(buffer: usize) -> Self {
        let mut senders = HashMap::new();
        for channel in Channel::ALL {
            let (sender, _) = broadcast::channel(buffer.max(1));
            senders.insert(channel, sender);
        }
        EmbeddedBus { senders }
    }

    fn sender(&self, channel: Channel) -> &broadcast::Sender<Vec<u8>> {
        // Every channel is inserted in `new`; the map never changes afterwards.
        &self.senders[&channel]
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
}
