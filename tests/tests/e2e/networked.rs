//! `tge-swarm run` with its embedded adapters replaced by real Redis and Postgres (the
//! connection settings work in every role): the pipeline runs over Redis Streams and the
//! store is Postgres, and a crashed keyword actor takes back its pending work from Redis.

use std::time::Duration;

use fred::prelude::{ClientLike, KeysInterface, StreamsInterface};
use serde_json::json;
use swarm_shared::channels::{QUEUE_CLASSIFY, QUEUE_QUALITY, QUEUE_SCRAPE};
use swarm_shared::faults::Fault;
use swarm_shared::ports::redis::RedisSettings;
use swarm_tests::{
    FeedServer, Item, TestSwarm, all_healthy, eventually, fresh_postgres_database, redis_url_db,
    rss,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_over_redis_and_postgres() {
    swarm_shared::install_crypto_provider();
    // A Redis database of its own, emptied of earlier runs' queues.
    let redis = redis_url_db(14);
    let client = RedisSettings::new(&redis, 64)
        .unwrap()
        .connect()
        .await
        .unwrap();
    // The quality queue's partitions and leases too.
    let mut keys: Vec<String> = [QUEUE_SCRAPE, QUEUE_CLASSIFY].map(str::to_owned).to_vec();
    keys.extend(swarm_shared::ports::partitioned::PartitionedQueue::keys(
        QUEUE_QUALITY,
        64,
    ));
    let _: i64 = client.del(keys).await.unwrap();
    let database = fresh_postgres_database("tge_e2e").await;

    let server = FeedServer::start().await;
    let mut items = vec![Item::new(
        "Zelkora announces token generation event for $ZELK",
        "https://news.example/zelkora-tge",
        "Zelkora today announced that its token generation event for $ZELK will take place on December 12, 2026; the ZELK token lists on major exchanges the same day.",
    )];
    for index in 0..30 {
        items.push(Item::new(
            &format!("Market wrap {index}"),
            &format!("https://news.example/wrap-{index}"),
            "Bitcoin traded sideways as volumes fell on Sunday.",
        ));
    }
    server.publish("feed.xml", rss(&items), "application/rss+xml");

    let swarm = TestSwarm::start(|config| {
        config.connections.redis_url = Some(redis.clone());
        config.connections.database_url = Some(database.clone());
        config.detection.batch = 4;
    })
    .await;
    eventually(Duration::from_secs(20), "every actor healthy", || async {
        all_healthy(&swarm.agents().await)
    })
    .await;
    // The keyword actor crashes once while holding a batch taken from Redis.
    swarm
        .swarm
        .faults()
        .arm("keyword-0", Fault::Panic, 1)
        .unwrap();
    swarm
        .add_source(
            json!({"name": "feed", "kind": "rss", "url": server.url("feed.xml"), "interval": "1s"}),
        )
        .await;

    eventually(
        Duration::from_secs(30),
        "every document stored in postgres",
        || async { swarm.swarm.context().store.count_documents().await.unwrap() == 31 },
    )
    .await;
    let agents = swarm.agents().await;
    let keyword = agents
        .iter()
        .find(|agent| agent["id"] == "keyword-0")
        .unwrap();
    assert!(
        keyword["restarts"].as_u64() >= Some(1),
        "the fault fired: {keyword}"
    );
    let events = swarm.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["project"], "Zelkora");

    // The work went through Redis Streams: the group exists and nothing is left pending.
    let groups: fred::prelude::Value = client.xinfo_groups(QUEUE_CLASSIFY).await.unwrap();
    assert!(format!("{groups:?}").contains("swarm"), "{groups:?}");
    let depth = swarm
        .swarm
        .context()
        .queue
        .depth(QUEUE_CLASSIFY)
        .await
        .unwrap();
    assert_eq!((depth.ready, depth.pending), (0, 0));
    let (status, body) = swarm.get("/readyz").await;
    assert_eq!(status.as_u16(), 200, "{body}");
    assert_eq!(body["checks"]["bus"], "ok");
    client.quit().await.unwrap();
    swarm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_registry_degrades_discovery_only() {
    let port = swarm_tests::closed_port();
    let swarm = TestSwarm::start(|config| {
        config.connections.consul_url = Some(format!("http://127.0.0.1:{port}"));
    })
    .await;
    // Registration fails (logged) but every actor runs and heartbeats.
    eventually(Duration::from_secs(20), "every actor healthy", || async {
        all_healthy(&swarm.agents().await)
    })
    .await;
    let (status, body) = swarm.get("/readyz").await;
    assert_eq!(status.as_u16(), 200, "{body}");
    // Discovery says plainly that the registry is down.
    let (status, body) = swarm.get("/api/v1/instances").await;
    assert_eq!(status.as_u16(), 503, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("registry"),
        "{body}"
    );
    swarm.stop().await;
}
