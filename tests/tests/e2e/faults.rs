//! Killing actors while they hold work: each is restarted by the host and no document is lost
//! or duplicated.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use swarm_shared::faults::Fault;
use swarm_tests::{FeedServer, Item, TestSwarm, all_healthy, eventually, rss};

const TGE_PROJECTS: usize = 20;
const ITEMS: usize = 200;

fn feed() -> String {
    let mut items = Vec::new();
    for index in 0..ITEMS {
        if index % (ITEMS / TGE_PROJECTS) == 0 {
            let number = index / (ITEMS / TGE_PROJECTS);
            items.push(Item::new(
                &format!("Zentra{number} Labs announces TGE"),
                &format!("https://wire.example/tge/{number}"),
                &format!("Zentra{number} Labs confirmed its token generation event for next week; the ZNT{number} token will begin trading."),
            ));
        } else {
            items.push(Item::new(
                &format!("Market wrap {index}"),
                &format!("https://wire.example/wrap/{index}"),
                "Bitcoin traded sideways while volumes fell across exchanges.",
            ));
        }
    }
    rss(&items)
}

async fn restarts_of(swarm: &TestSwarm, id: &str) -> u64 {
    swarm
        .agents()
        .await
        .iter()
        .find(|agent| agent["id"] == id)
        .and_then(|agent| agent["restarts"].as_u64())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_actors_restart_without_losing_or_duplicating_documents() {
    let server = FeedServer::start().await;
    server.publish("wire.xml", feed(), "application/rss+xml");
    let swarm = TestSwarm::start(|config| {
        // Small batches, so the crashes hit with work both taken and still queued.
        config.detection.batch = 8;
        config.quality.batch = 8;
    })
    .await;
    eventually(Duration::from_secs(20), "every actor healthy", || async {
        all_healthy(&swarm.agents().await)
    })
    .await;

    // Each of these panics while holding un-acknowledged items.
    swarm
        .swarm
        .faults()
        .arm("keyword-0", Fault::Panic, 2)
        .unwrap();
    swarm
        .swarm
        .faults()
        .arm("data-quality-0", Fault::Panic, 2)
        .unwrap();
    swarm
        .swarm
        .faults()
        .arm("scraping-0", Fault::Panic, 1)
        .unwrap();

    swarm
        .add_source(
            json!({"name": "wire", "kind": "rss", "url": server.url("wire.xml"), "interval": "1h"}),
        )
        .await;

    let store = swarm.swarm.context().store.clone();
    eventually(Duration::from_secs(30), "every item stored", || {
        let store = store.clone();
        async move { store.count_documents().await.unwrap() >= ITEMS as u64 }
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "crashed actors back and healthy",
        || async { all_healthy(&swarm.agents().await) },
    )
    .await;
    assert_eq!(
        store.count_documents().await.unwrap(),
        ITEMS as u64,
        "no document lost, none stored twice"
    );
    assert!(restarts_of(&swarm, "keyword-0").await >= 2);
    assert!(restarts_of(&swarm, "data-quality-0").await >= 2);
    assert!(restarts_of(&swarm, "scraping-0").await >= 1);

    let events = swarm.events().await;
    assert_eq!(
        events.len(),
        TGE_PROJECTS,
        "one event per announced project"
    );
    let projects: HashSet<&str> = events
        .iter()
        .filter_map(|e| e["project"].as_str())
        .collect();
    assert_eq!(projects.len(), TGE_PROJECTS);
    for event in &events {
        assert_eq!(
            event["source_count"].as_u64(),
            Some(1),
            "no source merged twice: {event}"
        );
        assert_eq!(event["sources"].as_array().unwrap().len(), 1, "{event}");
    }
    // Nothing left behind in any queue.
    for queue in swarm_shared::channels::QUEUES {
        let depth = swarm.swarm.context().queue.depth(queue).await.unwrap();
        assert_eq!((depth.ready, depth.pending), (0, 0), "{queue}");
    }
    swarm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_survives_a_memory_coordinator_crash() {
    let server = FeedServer::start().await;
    server.publish(
        "wire.xml",
        rss(&[Item::new(
            "Market wrap",
            "https://wire.example/wrap",
            "Quiet day.",
        )]),
        "application/rss+xml",
    );
    let swarm = TestSwarm::start(|_| {}).await;
    eventually(Duration::from_secs(20), "every actor healthy", || async {
        all_healthy(&swarm.agents().await)
    })
    .await;
    // Three failures against a closed port open its breaker: a `breakers` memory entry.
    let closed_port = swarm_tests::closed_port();
    swarm
        .add_source(json!({"name": "down", "kind": "rss", "url": format!("http://127.0.0.1:{closed_port}/feed"), "interval": "200ms"}))
        .await;
    let breaker_key = format!("127.0.0.1:{closed_port}");
    eventually(
        Duration::from_secs(20),
        "the breaker is in memory",
        || async {
            let (_, body) = swarm.get("/api/v1/memory/breakers").await;
            body["entries"]
                .as_array()
                .is_some_and(|entries| entries.iter().any(|e| e["key"] == breaker_key))
        },
    )
    .await;
    // Write-behind: what a crash keeps is what was flushed, within `memory.flush_interval`.
    eventually(
        Duration::from_secs(5),
        "the breaker entry is persisted",
        || async {
            let stored = swarm
                .swarm
                .context()
                .store
                .load_memory(chrono::Utc::now())
                .await
                .unwrap();
            stored
                .iter()
                .any(|entry| entry.namespace == "breakers" && entry.key == breaker_key)
        },
    )
    .await;

    // The next memory write crashes the coordinator (the performance agent writes every 300 ms).
    swarm
        .swarm
        .faults()
        .arm("memory-coordinator", Fault::Panic, 1)
        .unwrap();
    eventually(
        Duration::from_secs(20),
        "the coordinator restarted",
        || async {
            swarm.agents().await.iter().any(|a| {
                a["id"] == "memory-coordinator" && a["restarts"] == 1 && a["status"] == "healthy"
            })
        },
    )
    .await;
    let (status, body) = swarm.get("/api/v1/memory/breakers").await;
    assert_eq!(status, 200);
    let entry = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == breaker_key)
        .cloned()
        .expect("the breaker entry survived the crash");
    assert_eq!(entry["value"]["state"], "open");
    assert_eq!(entry["written_by"], "api-reliability-0");
    swarm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_work_is_dead_lettered_not_dropped() {
    use swarm_shared::channels::{QUEUE_CLASSIFY, QUEUE_DEAD_LETTER};
    let swarm = TestSwarm::start(|_| {}).await;
    eventually(Duration::from_secs(20), "every actor healthy", || async {
        all_healthy(&swarm.agents().await)
    })
    .await;
    let queue = swarm.swarm.context().queue.clone();
    queue
        .enqueue(QUEUE_CLASSIFY, vec![b"{not a document".to_vec()])
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "the item reaches the dead-letter queue",
        || {
            let queue = queue.clone();
            async move { queue.depth(QUEUE_DEAD_LETTER).await.unwrap().ready == 1 }
        },
    )
    .await;
    let letter = queue
        .take(QUEUE_DEAD_LETTER, "operator", 1, Duration::ZERO)
        .await
        .unwrap();
    let letter: serde_json::Value = serde_json::from_slice(&letter[0].payload).unwrap();
    assert_eq!(letter["queue"], QUEUE_CLASSIFY);
    assert_eq!(letter["reason"], "undecodable");
    assert_eq!(letter["payload"], "{not a document");
    // The letter is written before the item is acknowledged (a crash in between redelivers
    // it rather than losing it), so the acknowledgement may land just after the letter.
    eventually(
        Duration::from_secs(10),
        "the item is acknowledged once dead-lettered",
        || {
            let queue = queue.clone();
            async move {
                let depth = queue.depth(QUEUE_CLASSIFY).await.unwrap();
                (depth.ready, depth.pending) == (0, 0)
            }
        },
    )
    .await;
    assert!(
        all_healthy(&swarm.agents().await),
        "the keyword agent did not crash"
    );
    swarm.stop().await;
}
