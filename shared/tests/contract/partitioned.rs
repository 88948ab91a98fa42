//! Partitioned queue contract, on the embedded queue and on Redis: `take_any` over several
//! queues, lease rounds (one holder at a time, hand-over on leaving and on expiry), and a
//! [`PartitionedQueue`] whose consumers share the partitions, keep each key with one consumer,
//! and hand a dead consumer's partitions and pending work over without losing an item.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use swarm_shared::ports::embedded_queue::EmbeddedQueue;
use swarm_shared::ports::partitioned::{PartitionedQueue, partition_key};
use swarm_shared::ports::redis::{RedisQueue, RedisSettings};
use swarm_shared::ports::{Delivery, WorkQueue};

use tokio::time::Instant;

const VISIBILITY: Duration = Duration::from_millis(300);
const LEASE: Duration = Duration::from_millis(1000);
const QUEUE: &str = "q:parts";
const PARTITIONS: u32 = 4;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|name| (*name).to_owned()).collect()
}

async fn take_any_reads_several_queues(queue: Arc<dyn WorkQueue>) {
    let queues = names(&["q:any:a", "q:any:b"]);
    queue
        .enqueue("q:any:a", vec![b"a-0".to_vec(), b"a-1".to_vec()])
        .await
        .unwrap();
    queue
        .enqueue("q:any:b", vec![b"b-0".to_vec(), b"b-1".to_vec()])
        .await
        .unwrap();
    let taken = queue
        .take_any(&queues, "c1", 2, Duration::ZERO)
        .await
        .unwrap();
    assert!(
        !taken.is_empty() && taken.len() <= 2,
        "at most max in all: {taken:?}"
    );
    let mut all = taken;
    loop {
        let more = queue
            .take_any(&queues, "c1", 4, Duration::ZERO)
            .await
            .unwrap();
        if more.is_empty() {
            break;
        }
        all.extend(more);
    }
    let mut seen: Vec<(usize, String)> = all
        .iter()
        .map(|(index, d)| (*index, String::from_utf8(d.payload.clone()).unwrap()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (0, "a-0".to_owned()),
            (0, "a-1".to_owned()),
            (1, "b-0".to_owned()),
            (1, "b-1".to_owned())
        ]
    );
    // A blocked take wakes for an item on any of its queues.
    let waiter = {
        let queue = queue.clone();
        let queues = queues.clone();
        tokio::spawn(async move {
            queue
                .take_any(&queues, "c2", 4, Duration::from_secs(5))
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    queue
        .enqueue("q:any:b", vec![b"late".to_vec()])
        .await
        .unwrap();
    let woken = tokio::time::timeout(Duration::from_secs(3), waiter)
        .await
        .expect("the take woke for the second queue")
        .unwrap();
    assert_eq!(woken.len(), 1);
    assert_eq!(
        (woken[0].0, woken[0].1.payload.as_slice()),
        (1, &b"late"[..])
    );
    // A backlog in one queue still fills a take, and never past `max`.
    let backlog: Vec<Vec<u8>> = (0..5).map(|i| format!("x-{i}").into_bytes()).collect();
    queue.enqueue("q:any:a", backlog).await.unwrap();
    let taken = queue
        .take_any(&queues, "c3", 4, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(taken.len(), 4, "{taken:?}");
    assert!(taken.iter().all(|(index, _)| *index == 0));
}

async fn lease_rounds_hold_one_owner_and_hand_over(queue: Arc<dyn WorkQueue>) {
    let group = "q:lease:members";
    let leases = names(&["q:lease:0", "q:lease:1"]);
    let round = queue
        .lease_round(group, "c1", LEASE, &leases, &[true, true])
        .await
        .unwrap();
    assert_eq!((round.members, round.held), (names(&["c1"]), vec![0, 1]));
    let round = queue
        .lease_round(group, "c2", LEASE, &leases, &[false, true])
        .await
        .unwrap();
    assert_eq!(
        (round.members, round.held),
        (names(&["c1", "c2"]), vec![]),
        "a lease someone holds is not taken"
    );
    let round = queue
        .lease_round(group, "c1", LEASE, &leases, &[true, false])
        .await
        .unwrap();
    assert_eq!(round.held, vec![0], "a lease not wanted is given up");
    let round = queue
        .lease_round(group, "c2", LEASE, &leases, &[false, true])
        .await
        .unwrap();
    assert_eq!(round.held, vec![1]);
    // Leaving drops the member and its leases at once.
    let round = queue
        .lease_round(group, "c1", Duration::ZERO, &leases, &[true, true])
        .await
        .unwrap();
    assert_eq!((round.members, round.held), (names(&["c2"]), vec![]));
    // An owner that stops renewing loses its leases and its membership after the TTL.
    tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
    let round = queue
        .lease_round(group, "c3", LEASE, &leases, &[true, true])
        .await
        .unwrap();
    assert_eq!((round.members, round.held), (names(&["c3"]), vec![0, 1]));
}

fn partitioned(inner: Arc<dyn WorkQueue>) -> Arc<PartitionedQueue> {
    Arc::new(PartitionedQueue::new(inner, QUEUE, PARTITIONS, LEASE))
}

/// Keys (`k0`, `k1`, ...) whose partitions are `p`.
fn keys_in(p: u64) -> Vec<String> {
    (0..)
        .map(|i| format!("k{i}"))
        .filter(|key| partition_key(key) % u64::from(PARTITIONS) == p)
        .take(3)
        .collect()
}

async fn take_all(queue: &PartitionedQueue, consumer: &str) -> Vec<Delivery> {
    queue
        .take(QUEUE, consumer, 100, Duration::ZERO)
        .await
        .unwrap()
}

fn key_of(delivery: &Delivery) -> String {
    let text = String::from_utf8(delivery.payload.clone()).unwrap();
    text.split_once('#').unwrap().0.to_owned()
}

async fn consumers_share_partitions_and_keep_keys_together(inner: Arc<dyn WorkQueue>) {
    let queue = partitioned(inner);
    let items = |round: &str| -> Vec<(u64, Vec<u8>)> {
        (0..u64::from(PARTITIONS))
            .flat_map(keys_in)
            .map(|key| (partition_key(&key), format!("{key}#{round}").into_bytes()))
            .collect()
    };
    // Alone, the first consumer holds every partition.
    let ids = queue.enqueue_keyed(QUEUE, items("alone")).await.unwrap();
    assert!(ids.iter().all(|id| id.contains('/')), "{ids:?}");
    let first = take_all(&queue, "c1").await;
    assert_eq!(first.len(), 12, "{first:?}");
    let depth = queue.depth(QUEUE).await.unwrap();
    assert_eq!((depth.ready, depth.pending), (0, 12));
    let ids: Vec<String> = first.iter().map(|d| d.id.clone()).collect();
    queue.ack(QUEUE, &ids).await.unwrap();

    // A second consumer joins: within a few rounds each holds two partitions.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Both keep taking and acknowledging for a while, as running actors do (a member
        // renews its membership and leases only when it takes).
        for _ in 0..8 {
            for consumer in ["c1", "c2"] {
                let taken = take_all(&queue, consumer).await;
                let ids: Vec<String> = taken.iter().map(|d| d.id.clone()).collect();
                queue.ack(QUEUE, &ids).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        queue.enqueue_keyed(QUEUE, items("probe")).await.unwrap();
        let one = take_all(&queue, "c1").await;
        let two = take_all(&queue, "c2").await;
        let done: Vec<String> = one.iter().chain(&two).map(|d| d.id.clone()).collect();
        queue.ack(QUEUE, &done).await.unwrap();
        if one.len() == 6 && two.len() == 6 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "two consumers never shared four partitions ({} and {})",
            one.len(),
            two.len()
        );
    }
    queue.enqueue_keyed(QUEUE, items("shared")).await.unwrap();
    let one = take_all(&queue, "c1").await;
    let two = take_all(&queue, "c2").await;
    let keys_one: HashSet<String> = one.iter().map(key_of).collect();
    let keys_two: HashSet<String> = two.iter().map(key_of).collect();
    assert_eq!((keys_one.len(), keys_two.len()), (6, 6));
    assert!(
        keys_one.is_disjoint(&keys_two),
        "a key is handled by one consumer: {keys_one:?} {keys_two:?}"
    );

    // The first consumer dies holding work: after its lease runs out the second takes over
    // its partitions and, past the visibility timeout, its pending items; nothing is lost.
    let held_by_dead: Vec<String> = one
        .iter()
        .map(|d| String::from_utf8(d.payload.clone()).unwrap())
        .collect();
    let done: Vec<String> = two.iter().map(|d| d.id.clone()).collect();
    queue.ack(QUEUE, &done).await.unwrap();
    let mut recovered: HashMap<String, u32> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !held_by_dead.iter().all(|text| recovered.contains_key(text)) {
        assert!(
            Instant::now() < deadline,
            "the survivor never took over the dead consumer's work: {recovered:?}"
        );
        for delivery in take_all(&queue, "c2").await {
            let text = String::from_utf8(delivery.payload.clone()).unwrap();
            *recovered.entry(text).or_default() += 1;
            queue
                .ack(QUEUE, std::slice::from_ref(&delivery.id))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(recovered.values().all(|n| *n == 1), "{recovered:?}");
    let depth = queue.depth(QUEUE).await.unwrap();
    assert_eq!((depth.ready, depth.pending), (0, 0));

    // Fail-over by the health supervisor hands a consumer's work over without waiting.
    queue.enqueue_keyed(QUEUE, items("failover")).await.unwrap();
    let taken = take_all(&queue, "c2").await;
    assert_eq!(taken.len(), 12, "the survivor holds every partition");
    let _ = take_all(&queue, "c3").await; // c3 joins and waits for partitions
    assert_eq!(queue.release(QUEUE, "c2").await.unwrap(), 12);
    let mut moved = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while moved.len() < 12 {
        assert!(
            Instant::now() < deadline,
            "c3 never took the failed-over work: {moved:?}"
        );
        moved.extend(take_all(&queue, "c3").await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(moved.len(), 12);
    assert!(moved.iter().all(|d| d.deliveries == 2), "{moved:?}");
    assert!(queue.recover(QUEUE, "c2").await.unwrap().is_empty());
    let ids: Vec<String> = moved.iter().map(|d| d.id.clone()).collect();
    // Peek lists pending items across partitions, each with the id `ack` takes.
    let peeked = queue.peek(QUEUE, 100).await.unwrap();
    assert_eq!(peeked.len(), 12);
    queue.ack(QUEUE, &ids).await.unwrap();

    let err = queue
        .ack(QUEUE, &["9/1-0".to_owned()])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`9/1-0`") && err.contains("4 partitions"),
        "{err}"
    );
    let err = queue
        .take_any(&names(&[QUEUE]), "c3", 1, Duration::ZERO)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("partitioned"), "{err}");
}

#[tokio::test]
async fn embedded_partitioned_contract() {
    let embedded = || -> Arc<dyn WorkQueue> { Arc::new(EmbeddedQueue::new(VISIBILITY)) };
    take_any_reads_several_queues(embedded()).await;
    lease_rounds_hold_one_owner_and_hand_over(embedded()).await;
    consumers_share_partitions_and_keep_keys_together(embedded()).await;
}

async fn redis(url: &str) -> Arc<dyn WorkQueue> {
    let settings = RedisSettings::new(url, 64).unwrap();
    let client = settings.connect().await.unwrap();
    use fred::prelude::KeysInterface;
    let mut keys = names(&[
        "q:any:a",
        "q:any:b",
        "q:lease:members",
        "q:lease:0",
        "q:lease:1",
    ]);
    keys.extend(PartitionedQueue::keys(QUEUE, PARTITIONS));
    let _: i64 = client.del(keys).await.unwrap();
    Arc::new(RedisQueue::connect(&settings, VISIBILITY).await.unwrap())
}

#[tokio::test]
async fn redis_partitioned_contract() {
    // Database 15, as the queue contract: never the swarm's queues.
    let url = crate::redis_url_db(15);
    take_any_reads_several_queues(redis(&url).await).await;
    lease_rounds_hold_one_owner_and_hand_over(redis(&url).await).await;
    consumers_share_partitions_and_keep_keys_together(redis(&url).await).await;
}
