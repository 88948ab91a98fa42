//! WorkQueue contract: at-least-once delivery, acknowledgement, recovery by the same consumer,
//! reclaim after the visibility timeout, blocking take, no item lost or duplicated under
//! concurrent consumers.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use swarm_shared::ports::WorkQueue;
use swarm_shared::ports::embedded_queue::EmbeddedQueue;
use swarm_shared::ports::redis::{RedisQueue, RedisSettings};

use crate::eventually;

const VISIBILITY: Duration = Duration::from_millis(300);

fn embedded() -> Arc<dyn WorkQueue> {
    Arc::new(EmbeddedQueue::new(VISIBILITY))
}

fn payloads(prefix: &str, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| format!("{prefix}-{i}").into_bytes())
        .collect()
}

async fn fifo_take_and_ack(queue: Arc<dyn WorkQueue>) {
    let ids = queue.enqueue("q:fifo", payloads("a", 3)).await.unwrap();
    assert_eq!(ids.len(), 3);
    let taken = queue
        .take("q:fifo", "c1", 10, Duration::ZERO)
        .await
        .unwrap();
    let bodies: Vec<_> = taken
        .iter()
        .map(|d| String::from_utf8(d.payload.clone()).unwrap())
        .collect();
    assert_eq!(bodies, ["a-0", "a-1", "a-2"]);
    assert!(taken.iter().all(|d| d.deliveries == 1));
    let depth = queue.depth("q:fifo").await.unwrap();
    assert_eq!((depth.ready, depth.pending), (0, 3));
    let ids: Vec<String> = taken.iter().map(|d| d.id.clone()).collect();
    queue.ack("q:fifo", &ids).await.unwrap();
    let depth = queue.depth("q:fifo").await.unwrap();
    assert_eq!((depth.ready, depth.pending), (0, 0));
    assert!(
        queue
            .take("q:fifo", "c1", 10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn batch_limit(queue: Arc<dyn WorkQueue>) {
    queue.enqueue("q:batch", payloads("b", 5)).await.unwrap();
    assert_eq!(
        queue
            .take("q:batch", "c1", 2, Duration::ZERO)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        queue
            .take("q:batch", "c1", 10, Duration::ZERO)
            .await
            .unwrap()
            .len(),
        3
    );
}

async fn recover_returns_own_pending(queue: Arc<dyn WorkQueue>) {
    queue.enqueue("q:recover", payloads("r", 2)).await.unwrap();
    let first = queue
        .take("q:recover", "worker-1", 1, Duration::ZERO)
        .await
        .unwrap();
    let other = queue
        .take("q:recover", "worker-2", 1, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(other.len(), 1);
    // worker-1 "restarts" under the same name and gets back exactly its own item
    let recovered = queue.recover("q:recover", "worker-1").await.unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].id, first[0].id);
    assert_eq!(recovered[0].payload, first[0].payload);
    assert_eq!(recovered[0].deliveries, 2);
    assert!(
        queue
            .recover("q:recover", "worker-3")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn reclaim_after_visibility_timeout(queue: Arc<dyn WorkQueue>) {
    queue.enqueue("q:reclaim", payloads("v", 1)).await.unwrap();
    let taken = queue
        .take("q:reclaim", "dead", 1, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    // Not visible to others before the timeout.
    assert!(
        queue
            .take("q:reclaim", "alive", 1, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    let reclaimed = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    eventually(
        Duration::from_secs(5),
        "pending item reclaimed by another consumer",
        || {
            let queue = queue.clone();
            let reclaimed = reclaimed.clone();
            async move {
                let items = queue
                    .take("q:reclaim", "alive", 1, Duration::from_millis(20))
                    .await
                    .unwrap();
                let found = !items.is_empty();
                reclaimed.lock().await.extend(items);
                found
            }
        },
    )
    .await;
    let reclaimed = reclaimed.lock().await;
    assert_eq!(reclaimed[0].id, taken[0].id);
    assert_eq!(reclaimed[0].deliveries, 2);
}

async fn take_wakes_on_enqueue(queue: Arc<dyn WorkQueue>) {
    let producer = queue.clone();
    let waiter = tokio::spawn(async move {
        queue
            .take("q:wake", "c1", 1, Duration::from_secs(5))
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    producer.enqueue("q:wake", payloads("w", 1)).await.unwrap();
    let started = tokio::time::Instant::now();
    let items = waiter.await.unwrap();
    assert_eq!(items.len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "take did not wake on enqueue"
    );
}

async fn concurrent_consumers_exactly_once(queue: Arc<dyn WorkQueue>) {
    const ITEMS: usize = 2_000;
    queue.enqueue("q:many", payloads("m", ITEMS)).await.unwrap();
    let mut workers = Vec::new();
    for worker in 0..4 {
        let queue = queue.clone();
        workers.push(tokio::spawn(async move {
            let name = format!("w{worker}");
            let mut seen = Vec::new();
            loop {
                let items = queue
                    .take("q:many", &name, 37, Duration::from_millis(50))
                    .await
                    .unwrap();
                if items.is_empty() {
                    return seen;
                }
                let ids: Vec<String> = items.iter().map(|d| d.id.clone()).collect();
                seen.extend(items.into_iter().map(|d| d.payload));
                queue.ack("q:many", &ids).await.unwrap();
            }
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), ITEMS, "every item delivered once");
    assert_eq!(distinct.len(), ITEMS);
    let depth = queue.depth("q:many").await.unwrap();
    assert_eq!((depth.ready, depth.pending), (0, 0));
}

async fn queues_are_isolated(queue: Arc<dyn WorkQueue>) {
    queue.enqueue("q:one", payloads("x", 1)).await.unwrap();
    assert!(
        queue
            .take("q:two", "c", 1, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(queue.depth("q:one").await.unwrap().ready, 1);
}

async fn release_hands_pending_work_to_peers_at_once(queue: Arc<dyn WorkQueue>) {
    queue.enqueue("q:release", payloads("f", 3)).await.unwrap();
    let held = queue
        .take("q:release", "broken", 2, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(held.len(), 2);
    // Without a failover a peer sees only the third item (the visibility timeout is long).
    let peer = queue
        .take("q:release", "peer", 5, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(peer.len(), 1);
    assert_eq!(queue.release("q:release", "broken").await.unwrap(), 2);
    assert!(
        queue
            .recover("q:release", "broken")
            .await
            .unwrap()
            .is_empty(),
        "a failed-over consumer does not take its old work back"
    );
    assert_eq!(queue.release("q:release", "nobody").await.unwrap(), 0);
    let moved = queue
        .take("q:release", "peer", 5, Duration::ZERO)
        .await
        .unwrap();
    let mut moved_ids: Vec<&str> = moved.iter().map(|d| d.id.as_str()).collect();
    let mut held_ids: Vec<&str> = held.iter().map(|d| d.id.as_str()).collect();
    moved_ids.sort_unstable();
    held_ids.sort_unstable();
    assert_eq!(
        moved_ids, held_ids,
        "the peer took over exactly the held items"
    );
    assert!(moved.iter().all(|d| d.deliveries == 2), "{moved:?}");
    let ids: Vec<String> = moved.iter().chain(&peer).map(|d| d.id.clone()).collect();
    queue.ack("q:release", &ids).await.unwrap();
    let depth = queue.depth("q:release").await.unwrap();
    assert_eq!((depth.ready, depth.pending), (0, 0));
}

async fn peek_lists_without_taking(queue: Arc<dyn WorkQueue>) {
    assert!(queue.peek("q:peek", 10).await.unwrap().is_empty());
    queue.enqueue("q:peek", payloads("p", 3)).await.unwrap();
    let taken = queue.take("q:peek", "c1", 1, Duration::ZERO).await.unwrap();
    assert_eq!(taken.len(), 1);
    // Pending and ready alike, oldest first, capped; nothing is taken by looking.
    let seen = queue.peek("q:peek", 10).await.unwrap();
    let bodies: Vec<String> = seen
        .iter()
        .map(|(_, payload)| String::from_utf8(payload.clone()).unwrap())
        .collect();
    assert_eq!(bodies, ["p-0", "p-1", "p-2"]);
    assert_eq!(seen[0].0, taken[0].id);
    assert_eq!(queue.peek("q:peek", 2).await.unwrap().len(), 2);
    let depth = queue.depth("q:peek").await.unwrap();
    assert_eq!((depth.ready, depth.pending), (2, 1));
}

#[tokio::test]
async fn embedded_queue_contract() {
    peek_lists_without_taking(embedded()).await;
    release_hands_pending_work_to_peers_at_once(embedded()).await;
    fifo_take_and_ack(embedded()).await;
    batch_limit(embedded()).await;
    recover_returns_own_pending(embedded()).await;
    reclaim_after_visibility_timeout(embedded()).await;
    take_wakes_on_enqueue(embedded()).await;
    concurrent_consumers_exactly_once(embedded()).await;
    queues_are_isolated(embedded()).await;
}

/// Queues of this suite, removed before a run on a shared Redis.
const QUEUES: [&str; 10] = [
    "q:batch",
    "q:fifo",
    "q:many",
    "q:one",
    "q:peek",
    "q:reclaim",
    "q:recover",
    "q:release",
    "q:two",
    "q:wake",
];

async fn redis_queue(url: &str) -> Arc<dyn WorkQueue> {
    let settings = RedisSettings::new(url, 64).unwrap();
    let client = settings.connect().await.unwrap();
    use fred::prelude::KeysInterface;
    let _: i64 = client.del(QUEUES.to_vec()).await.unwrap();
    Arc::new(RedisQueue::connect(&settings, VISIBILITY).await.unwrap())
}

#[tokio::test]
async fn redis_queue_contract() {
    // One Redis database of its own (15), so a run never touches the swarm's queues.
    let url = crate::redis_url_db(15);
    fifo_take_and_ack(redis_queue(&url).await).await;
    peek_lists_without_taking(redis_queue(&url).await).await;
    batch_limit(redis_queue(&url).await).await;
    recover_returns_own_pending(redis_queue(&url).await).await;
    reclaim_after_visibility_timeout(redis_queue(&url).await).await;
    release_hands_pending_work_to_peers_at_once(redis_queue(&url).await).await;
    take_wakes_on_enqueue(redis_queue(&url).await).await;
    concurrent_consumers_exactly_once(redis_queue(&url).await).await;
    queues_are_isolated(redis_queue(&url).await).await;
}
