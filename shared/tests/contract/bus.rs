//! Bus contract: subscribers get what is published after they subscribe, on their channel only;
//! every subscriber gets every message.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use swarm_shared::channels::Channel;
use swarm_shared::ports::Bus;
use swarm_shared::ports::embedded_bus::EmbeddedBus;

async fn next(subscription: &mut swarm_shared::ports::Subscription) -> Option<Vec<u8>> {
    tokio::time::timeout(Duration::from_millis(500), subscription.next())
        .await
        .ok()
        .flatten()
}

async fn fan_out_and_isolation(bus: Arc<dyn Bus>) {
    bus.publish(Channel::HealthChecks, b"before".to_vec())
        .await
        .unwrap();
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
    for index in 0..(buffer * 2) {
        bus.publish(Channel::AgentCommunication, index.to_string().into_bytes())
            .await
            .unwrap();
    }
    let first = next(&mut slow).await.unwrap();
    let first: usize = String::from_utf8(first).unwrap().parse().unwrap();
    assert!(
        first >= buffer,
        "the oldest messages were dropped, got {first}"
    );
}

#[tokio::test]
async fn embedded_bus_contract() {
    fan_out_and_isolation(Arc::new(EmbeddedBus::new(64))).await;
    every_channel_works(Arc::new(EmbeddedBus::new(64))).await;
    slow_subscriber_loses_oldest_not_newest(Arc::new(EmbeddedBus::new(16)), 16).await;
}
