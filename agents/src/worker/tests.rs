use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use swarm_shared::channels::QUEUE_CLASSIFY;
use swarm_shared::config::Config;
use swarm_shared::faults::FaultHooks;
use swarm_shared::ports::WorkQueue as _;
use swarm_shared::ports::embedded_bus::EmbeddedBus;
use swarm_shared::ports::embedded_queue::EmbeddedQueue;
use swarm_shared::ports::embedded_registry::EmbeddedRegistry;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_item_is_dead_lettered_and_the_actor_lives_on() {
    let mut config = Config::embedded_default().unwrap();
    config.queues.poll_wait = Duration::from_millis(10);
    let queue = Arc::new(EmbeddedQueue::new(Duration::from_secs(60)));
    let ctx = AgentContext {
        bus: Arc::new(EmbeddedBus::new(1024)),
        queue: queue.clone(),
        store: Arc::new(SqliteStore::in_memory().await.unwrap()),
        registry: Arc::new(EmbeddedRegistry::new()),
        config: Arc::new(config),
        faults: FaultHooks::new(false),
    };
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
