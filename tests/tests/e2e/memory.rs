//! The memory coordinator's write-behind: changes are readable at once, persisted and
//! announced in coalesced flushes, and a graceful stop flushes what is still queued.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use swarm_shared::channels::Channel;
use swarm_shared::messages::{AgentMessage, MemoryChange};
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
    let mut announced: Vec<(String, u64)> = Vec::new();
    while announced.len() < 3 {
        let payload = tokio::time::timeout(
            Duration::from_secs(5),
            futures::StreamExt::next(&mut memory_sync),
        )
        .await
        .expect("the flush announces its changes")
        .unwrap();
        let change: MemoryChange = serde_json::from_slice(&payload).unwrap();
        if change.namespace == "wb" {
            announced.push((change.key, change.version));
        }
    }
    announced.sort();
    assert_eq!(
        announced,
        [
            ("a".to_owned(), 3),
            ("b".to_owned(), 1),
            ("c".to_owned(), 1)
        ],
        "each key announced once, at its last version"
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
