//! Bus contract: subscribers get what is published after they subscribe, on their channel only;
//! every subscriber gets every message.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use swarm_shared::channels::Channel;
use swarm_shared::ports::embedded_bus::EmbeddedBus;
use swarm_shared::ports::redis::{RedisBus, RedisSettings};
use swarm_shared::ports::{Bus, KeyChange};

async fn next(subscription: &mut swarm_shared::ports::Subscription) -> Option<Vec<u8>> {
    tokio::time::timeout(Duration::from_millis(500), subscription.next())
        .await
        .ok()
        .flatten()
}

async fn fan_out_and_isolation(bus: Arc<dyn Bus>) {
    // A probe subscribed before "before" proves it has been delivered (on Redis delivery is
    // asynchronous) before the subscriptions under test are made.
    let mut probe = bus.subscribe(Channel::HealthChecks).await.unwrap();
    bus.publish(Channel::HealthChecks, b"before".to_vec())
        .await
        .unwrap();
    assert_eq!(next(&mut probe).await.as_deref(), Some(&b"before"[..]));
    let mut first = bus.subscribe(Channel::HealthChecks).await.unwrap();
    let mut second = bus.subscribe(Channel::HealthChecks).await.unwrap();
    let mut other = bus.subscribe(Channel::MemorySync).await.unwrap();
    bus.publish(Channel::HealthChecks, b"one".to_vec())
        .await
        .unwrap();
    bus.publish(Channel::HealthChecks, b"two".to_vec())
        .await
        .unwrap();
    assert_eq!(next(&mut first).await.as_deref(), Some(&b"one"[..]));
    assert_eq!(next(&mut first).await.as_deref(), Some(&b"two"[..]));
    assert_eq!(next(&mut second).await.as_deref(), Some(&b"one"[..]));
    assert_eq!(next(&mut other).await, None, "other channels see nothing");
}

async fn every_channel_works(bus: Arc<dyn Bus>) {
    for channel in Channel::ALL {
        let mut subscription = bus.subscribe(channel).await.unwrap();
        bus.publish(channel, channel.as_str().as_bytes().to_vec())
            .await
            .unwrap();
        assert_eq!(
            next(&mut subscription).await.as_deref(),
            Some(channel.as_str().as_bytes())
        );
    }
    assert_eq!(
        Channel::AgentCommunication.as_str(),
        "swarm:channels:agent-communication"
    );
    assert_eq!(
        Channel::QueenCommands.as_str(),
        "swarm:channels:queen-commands"
    );
    assert_eq!(Channel::MemorySync.as_str(), "swarm:channels:memory-sync");
    assert_eq!(
        Channel::HealthChecks.as_str(),
        "swarm:channels:health-checks"
    );
}

async fn slow_subscriber_loses_oldest_not_newest(bus: Arc<dyn Bus>, buffer: usize) {
    let mut slow = bus.subscribe(Channel::AgentCommunication).await.unwrap();
    let mut witness = bus.subscribe(Channel::AgentCommunication).await.unwrap();
    for index in 0..(buffer * 2) {
        bus.publish(Channel::AgentCommunication, index.to_string().into_bytes())
            .await
            .unwrap();
    }
    // A second subscriber reads up to the last message, so every message has reached the
    // process (on Redis delivery is asynchronous) before the slow one reads its first.
    let last = (buffer * 2 - 1).to_string().into_bytes();
    while next(&mut witness).await.expect("the last message arrives") != last {}
    let first = next(&mut slow).await.unwrap();
    let first: usize = String::from_utf8(first).unwrap().parse().unwrap();
    assert!(
        first >= buffer,
        "the oldest messages were dropped, got {first}"
    );
}

async fn shared_keys_expire(bus: Arc<dyn Bus>) {
    let key = format!("swarm:metrics:contract-{}", std::process::id());
    bus.put_key(&key, b"snapshot".to_vec(), Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(
        bus.get_key(&key).await.unwrap().as_deref(),
        Some(&b"snapshot"[..])
    );
    crate::eventually(Duration::from_secs(3), "key expiry", || {
        let bus = bus.clone();
        let key = key.clone();
        async move { bus.get_key(&key).await.unwrap().is_none() }
    })
    .await;
    bus.put_key(&key, b"again".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    bus.delete_key(&key).await.unwrap();
    assert_eq!(bus.get_key(&key).await.unwrap(), None);
    bus.ping().await.unwrap();
}

/// More key changes and payloads than one Redis pipeline carries: keys set and removed in
/// order, payloads delivered in order.
async fn batches_apply_keys_then_publish_in_order(bus: Arc<dyn Bus>) {
    let prefix = format!("swarm:memory:contract-{}-", std::process::id());
    let mut subscription = bus.subscribe(Channel::MemorySync).await.unwrap();
    let mut keys: Vec<KeyChange> = (0..1_200)
        .map(|index| KeyChange::Put {
            key: format!("{prefix}{index}"),
            value: index.to_string().into_bytes(),
            ttl: Duration::from_secs(60),
        })
        .collect();
    // A key set, then removed in the same batch: the removal wins.
    keys.push(KeyChange::Delete {
        key: format!("{prefix}7"),
    });
    let payloads: Vec<Vec<u8>> = (0..300)
        .map(|index| format!("m{index}").into_bytes())
        .collect();
    bus.write_batch(keys, Channel::MemorySync, payloads)
        .await
        .unwrap();
    assert_eq!(
        bus.get_key(&format!("{prefix}1199"))
            .await
            .unwrap()
            .as_deref(),
        Some(&b"1199"[..])
    );
    assert_eq!(bus.get_key(&format!("{prefix}7")).await.unwrap(), None);
    for index in 0..300 {
        let payload = next(&mut subscription)
            .await
            .expect("every payload arrives");
        assert_eq!(payload, format!("m{index}").into_bytes(), "in order");
    }
    bus.write_batch(Vec::new(), Channel::MemorySync, Vec::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn redis_bus_contract() {
    let url = crate::redis_url();
    let connect = async |buffer: usize| -> Arc<dyn Bus> {
        let settings = RedisSettings::new(&url, buffer).unwrap();
        let bus: Arc<dyn Bus> = Arc::new(RedisBus::connect(&settings).await.unwrap());
        bus
    };
    fan_out_and_isolation(connect(64).await).await;
    every_channel_works(connect(64).await).await;
    slow_subscriber_loses_oldest_not_newest(connect(16).await, 16).await;
    shared_keys_expire(connect(64).await).await;
    batches_apply_keys_then_publish_in_order(connect(1_024).await).await;
}

#[tokio::test]
async fn embedded_bus_contract() {
    shared_keys_expire(Arc::new(EmbeddedBus::new(64))).await;
    batches_apply_keys_then_publish_in_order(Arc::new(EmbeddedBus::new(1_024))).await;
    fan_out_and_isolation(Arc::new(EmbeddedBus::new(64))).await;
    every_channel_works(Arc::new(EmbeddedBus::new(64))).await;
    slow_subscriber_loses_oldest_not_newest(Arc::new(EmbeddedBus::new(16)), 16).await;
}
