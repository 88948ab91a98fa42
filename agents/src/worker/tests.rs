use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use swarm_shared::channels::{QUEUE_CLASSIFY, QUEUE_QUALITY};
use swarm_shared::config::Config;
use swarm_shared::faults::FaultHooks;
use swarm_shared::ports::WorkQueue as _;
use swarm_shared::ports::embedded_bus::EmbeddedBus;
use swarm_shared::ports::embedded_queue::EmbeddedQueue;
use swarm_shared::ports::embedded_registry::EmbeddedRegistry;
use swarm_shared::ports::partitioned::PartitionedQueue;
use swarm_shared::ports::sqlite::SqliteStore;

use super::*;

/// Items processed by the test stage, across its restarts.
static PROCESSED: AtomicUsize = AtomicUsize::new(0);

/// A stage that panics on any batch holding the item "poison".
struct PoisonStage;

#[async_trait]
impl Stage for PoisonStage {
    const KIND: AgentKind = AgentKind::Keyword;
    const QUEUE: &'static str = QUEUE_CLASSIFY;
    type Item = String;

    async fn init(_ctx: &AgentContext, _agent_id: &str) -> Result<Self, ActorProcessingErr> {
        Ok(PoisonStage)
    }

    fn batch(_ctx: &AgentContext) -> usize {
        16
    }

    async fn process(
        &mut self,
        _ctx: &AgentContext,
        _agent_id: &str,
        batch: Vec<(String, String)>,
    ) -> BatchResult {
        assert!(
            !batch.iter().any(|(_, item)| item == "poison"),
            "poison item in the batch"
        );
        PROCESSED.fetch_add(batch.len(), Ordering::SeqCst);
        BatchResult {
            done: batch.into_iter().map(|(id, _)| id).collect(),
            failed: 0,
        }
    }
}

/// An in-process context over `queue`: an embedded bus and registry, an in-memory store.
async fn context(config: Config, queue: Arc<dyn WorkQueue>) -> AgentContext {
    AgentContext {
        bus: Arc::new(EmbeddedBus::new(1024)),
        queue,
        store: Arc::new(SqliteStore::in_memory().await.unwrap()),
        registry: Arc::new(EmbeddedRegistry::new()),
        config: Arc::new(config),
        faults: FaultHooks::new(false),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_item_is_dead_lettered_and_the_actor_lives_on() {
    let mut config = Config::embedded_default().unwrap();
    config.queues.poll_wait = Duration::from_millis(10);
    let queue = Arc::new(EmbeddedQueue::new(Duration::from_secs(60)));
    let ctx = context(config, queue.clone()).await;
    let items = ["a", "poison", "b", "c"];
    let payloads = items
        .iter()
        .map(|item| encode(&item.to_string()).unwrap())
        .collect();
    queue.enqueue(QUEUE_CLASSIFY, payloads).await.unwrap();
    let (actor, handle) = Actor::spawn(
        None,
        WorkerActor::<PoisonStage>::default(),
        WorkerArgs {
            agent_id: "poison-0".into(),
            ctx: ctx.clone(),
            restarts: 0,
        },
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let classify = queue.depth(QUEUE_CLASSIFY).await.unwrap();
        let dead = queue.depth(QUEUE_DEAD_LETTER).await.unwrap();
        if classify.ready == 0 && classify.pending == 0 && dead.ready == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "classify {classify:?}, dead letters {dead:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        PROCESSED.load(Ordering::SeqCst),
        3,
        "the others went through"
    );
    assert_eq!(
        actor.get_status(),
        ractor::ActorStatus::Running,
        "the actor survived"
    );
    let letter = queue
        .take(QUEUE_DEAD_LETTER, "reader", 1, Duration::ZERO)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&letter[0].payload).into_owned();
    assert!(
        text.contains("handler panicked") && text.contains("poison"),
        "{text}"
    );
    actor.stop(None);
    handle.await.unwrap();
}

/// Items the quality test stage has seen.
static SEEN: AtomicUsize = AtomicUsize::new(0);

/// A data quality stage that cannot finish the item "stuck" (it stays pending).
struct StuckStage;

#[async_trait]
impl Stage for StuckStage {
    const KIND: AgentKind = AgentKind::DataQuality;
    const QUEUE: &'static str = QUEUE_QUALITY;
    type Item = String;

    async fn init(_ctx: &AgentContext, _agent_id: &str) -> Result<Self, ActorProcessingErr> {
        Ok(StuckStage)
    }

    fn batch(_ctx: &AgentContext) -> usize {
        16
    }

    async fn process(
        &mut self,
        _ctx: &AgentContext,
        _agent_id: &str,
        batch: Vec<(String, String)>,
    ) -> BatchResult {
        SEEN.fetch_add(batch.len(), Ordering::SeqCst);
        let failed = batch.iter().filter(|(_, item)| item == "stuck").count() as u64;
        BatchResult {
            done: batch
                .into_iter()
                .filter(|(_, item)| item != "stuck")
                .map(|(id, _)| id)
                .collect(),
            failed,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_hands_partitions_and_pending_work_over_at_once() {
    let mut config = Config::embedded_default().unwrap();
    config.queues.poll_wait = Duration::from_millis(10);
    // Leases and the visibility timeout far longer than the test: only leaving frees them.
    let inner = Arc::new(EmbeddedQueue::new(Duration::from_secs(600)));
    let lease = Duration::from_secs(600);
    let queue = Arc::new(PartitionedQueue::new(
        inner.clone(),
        QUEUE_QUALITY,
        4,
        lease,
    ));
    let ctx = context(config, queue.clone()).await;
    let items: Vec<(u64, Vec<u8>)> = ["a", "stuck", "b", "c"]
        .iter()
        .enumerate()
        .map(|(key, item)| (key as u64, encode(&item.to_string()).unwrap()))
        .collect();
    queue.enqueue_keyed(QUEUE_QUALITY, items).await.unwrap();
    let (actor, handle) = Actor::spawn(
        None,
        WorkerActor::<StuckStage>::default(),
        WorkerArgs {
            agent_id: "quality-0".into(),
            ctx: ctx.clone(),
            restarts: 0,
        },
    )
    .await
    .unwrap();
    // Every item seen and the three done acknowledged: only the stuck one is pending.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let depth = queue.depth(QUEUE_QUALITY).await.unwrap();
        if SEEN.load(Ordering::SeqCst) >= 4 && (depth.ready, depth.pending) == (0, 1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the items taken, three acknowledged: {depth:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, leases, group) = PartitionedQueue::names(QUEUE_QUALITY, 4);
    actor.stop(None);
    handle.await.unwrap();

    // At once, not after the lease or the visibility timeout (both far off): the peer is the
    // only member, holds every partition, and takes the stuck item.
    let all = vec![true; 4];
    let round = inner
        .lease_round(&group, "peer", lease, &leases, &all)
        .await
        .unwrap();
    assert_eq!(round.members, ["peer"], "the actor left");
    assert_eq!(round.held, [0, 1, 2, 3], "its leases went with it");
    let taken = queue
        .take(QUEUE_QUALITY, "peer", 16, Duration::ZERO)
        .await
        .unwrap();
    let payloads: Vec<String> = taken
        .iter()
        .map(|delivery| decode::<String>(&delivery.payload).unwrap())
        .collect();
    assert_eq!(payloads, ["stuck"], "handed over");
    assert_eq!(taken[0].deliveries, 2, "its delivery count kept");
}
