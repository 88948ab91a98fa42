//! [`Bus`] on Redis: `PUBLISH`, one subscriber connection per process fanned out in process,
//! and short-lived keys.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fred::prelude::*;

use super::super::embedded_bus::EmbeddedBus;
use super::super::{Bus, KeyChange, Subscription};
use super::{PIPELINE_COMMANDS, RedisSettings, unavailable};
use crate::channels::Channel;
use crate::error::{Error as SwarmError, Result};
use crate::telemetry;

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
                        telemetry::bus_dropped("redis-subscriber", missed);
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
