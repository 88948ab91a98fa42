//! The memory coordinator's write-behind: changes are readable at once, persisted and
//! announced in coalesced flushes, and a graceful stop flushes what is still queued.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use swarm_shared::channels::Channel;
use swarm_shared::messages::{AgentMessage, MemoryChanges};
use swarm_shared::ports::sqlite::SqliteStore;
use swarm_shared::ports::{Store, publish};
use swarm_tests::{TestSwarm, eventually};

fn write(key: &str, value: u64) -> AgentMessage {
    AgentMessage::MemoryWrite {
        namespace: "wb".to_owned(),
        key: key.to_owned(),
        value: json!({ "value": value }),
        ttl_s: None,
        written_by: "test".to_owned(),
    }
}

/// Versions of namespace `wb` the store holds, by key.
async fn persisted(store: &dyn Store) -> BTreeMap<String, u64> {
    store
        .load_memory(chrono::Utc::now())
        .await
        .unwrap()
        .into_iter()
        .filter(|entry| entry.namespace == "wb")
        .map(|entry| (entry.key, entry.version))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_writes_are_coalesced_flushed_by_count_and_on_stop() {
    let swarm = TestSwarm::start(|config| {
        // No timed flush within the test: only the key count and the stop flush.
        config.memory.sync_interval = Duration::from_secs(90);
        config.memory.flush_interval = Duration::from_secs(90);
        config.memory.flush_keys = 3;
        // The performance agent would write `performance:latest` every interval.
        config.performance.interval = Duration::from_secs(90);
    })
    .await;
    let ctx = swarm.swarm.context().clone();
    let mut memory_sync = ctx.bus.subscribe(Channel::MemorySync).await.unwrap();

    for value in 1..=3 {
        publish(ctx.bus.as_ref(), &write("a", value)).await.unwrap();
    }
    eventually(
        Duration::from_secs(10),
        "the third write to `a` is readable",
        || async {
            let (_, body) = swarm.get("/api/v1/memory/wb").await;
            body["entries"][0]["version"] == 3
        },
    )
    .await;
    assert!(
        persisted(ctx.store.as_ref()).await.is_empty(),
        "one key queued, below memory.flush_keys: nothing persisted yet"
    );

    // Two more keys reach memory.flush_keys = 3: one flush, `a` at its last version.
    publish(ctx.bus.as_ref(), &write("b", 1)).await.unwrap();
    publish(ctx.bus.as_ref(), &write("c", 1)).await.unwrap();
    eventually(Duration::from_secs(10), "three keys persisted", || async {
        persisted(ctx.store.as_ref()).await.len() == 3
    })
    .await;
    let stored = persisted(ctx.store.as_ref()).await;
    assert_eq!(stored["a"], 3, "`a` persisted at its last version");
    // The flush announces its keys in one message, in the order they were last changed,
    // each once at its last version.
    let announced = loop {
        let payload = tokio::time::timeout(
            Duration::from_secs(5),
            futures::StreamExt::next(&mut memory_sync),
        )
        .await
        .expect("the flush announces its changes")
        .unwrap();
        let message: MemoryChanges = serde_json::from_slice(&payload).unwrap();
        let ours: Vec<(String, u64)> = message
            .changes
            .into_iter()
            .filter(|change| change.namespace == "wb")
            .map(|change| (change.key, change.version))
            .collect();
        if !ours.is_empty() {
            break ours;
        }
    };
    assert_eq!(
        announced,
        [
            ("a".to_owned(), 3),
            ("b".to_owned(), 1),
            ("c".to_owned(), 1)
        ],
        "one message for the flush, each key once at its last version, in order"
    );

    // One more key, below the count: a graceful stop flushes it.
    publish(ctx.bus.as_ref(), &write("d", 1)).await.unwrap();
    eventually(Duration::from_secs(10), "`d` is readable", || async {
        let (_, body) = swarm.get("/api/v1/memory/wb").await;
        body["entries"].as_array().is_some_and(|e| e.len() == 4)
    })
    .await;
    assert_eq!(persisted(ctx.store.as_ref()).await.len(), 3);
    let path = ctx.config.sqlite_path();
    drop(ctx);
    let TestSwarm { swarm, dir, .. } = swarm;
    swarm.shutdown().await;
    let reopened = SqliteStore::open(&path).await.unwrap();
    let stored = persisted(&reopened).await;
    assert_eq!(
        stored.get("d"),
        Some(&1),
        "the stop flushed `d`: {stored:?}"
    );
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_flush_is_announced_in_ordered_messages_of_bounded_size() {
    use swarm_shared::messages::MEMORY_SYNC_BATCH;
    let keys = 2 * MEMORY_SYNC_BATCH + 200;
    let swarm = TestSwarm::start(|config| {
        config.memory.sync_interval = Duration::from_secs(90);
        config.memory.flush_interval = Duration::from_secs(90);
        config.memory.flush_keys = keys;
        config.performance.interval = Duration::from_secs(90);
    })
    .await;
    let ctx = swarm.swarm.context().clone();
    let mut memory_sync = ctx.bus.subscribe(Channel::MemorySync).await.unwrap();
    for index in 0..keys {
        publish(ctx.bus.as_ref(), &write(&format!("k{index:05}"), 1))
            .await
            .unwrap();
    }
    let mut sizes = Vec::new();
    let mut announced = Vec::new();
    while announced.len() < keys {
        let payload = tokio::time::timeout(
            Duration::from_secs(10),
            futures::StreamExt::next(&mut memory_sync),
        )
        .await
        .unwrap_or_else(|_| panic!("{} of {keys} keys announced", announced.len()))
        .unwrap();
        let message: MemoryChanges = serde_json::from_slice(&payload).unwrap();
        let ours: Vec<String> = message
            .changes
            .into_iter()
            .filter(|change| change.namespace == "wb")
            .map(|change| change.key)
            .collect();
        if !ours.is_empty() {
            sizes.push(ours.len());
            announced.extend(ours);
        }
    }
    assert_eq!(sizes, [MEMORY_SYNC_BATCH, MEMORY_SYNC_BATCH, 200]);
    let expected: Vec<String> = (0..keys).map(|index| format!("k{index:05}")).collect();
    assert_eq!(announced, expected, "announced in the order written");
    assert_eq!(persisted(ctx.store.as_ref()).await.len(), keys);
    drop(ctx);
    let TestSwarm { swarm, dir, .. } = swarm;
    swarm.shutdown().await;
    drop(dir);
}
