//! Tests of the agent host against real actors.

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use ractor::{Actor, ActorProcessingErr, ActorRef, ActorStatus};
use swarm_shared::channels::Channel;
use swarm_shared::config::Config;
use swarm_shared::context::AgentContext;
use swarm_shared::domain::AgentKind;
use swarm_shared::faults::FaultHooks;
use swarm_shared::messages::{HealthMessage, LifecycleEvent, decode};
use swarm_shared::ports::embedded_bus::EmbeddedBus;
use swarm_shared::ports::embedded_queue::EmbeddedQueue;
use swarm_shared::ports::embedded_registry::EmbeddedRegistry;
use swarm_shared::ports::sqlite::SqliteStore;
use tokio::sync::mpsc;

use super::{AgentHost, ChildSpec, HostArgs, HostMsg};

/// A child that panics when told to.
struct Crashy;

enum CrashyMsg {
    Crash,
    Stop,
}

impl Actor for Crashy {
    type Msg = CrashyMsg;
    type State = ();
    type Arguments = mpsc::UnboundedSender<ActorRef<CrashyMsg>>;

    async fn pre_start(
        &self,
        myself: ActorRef<CrashyMsg>,
        started: Self::Arguments,
    ) -> Result<(), ActorProcessingErr> {
        let _ = started.send(myself);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<CrashyMsg>,
        message: CrashyMsg,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match message {
            CrashyMsg::Crash => panic!("crashy was told to crash"),
            CrashyMsg::Stop => {
                myself.stop(Some("done".into()));
                Ok(())
            }
        }
    }
}

async fn context(dir: &tempfile::TempDir) -> AgentContext {
    let mut config = Config::embedded_default().unwrap();
    config.node.name = "host-test".into();
    // No reconcile tick during the test (the test sends its own), short policy timings.
    config.supervision.heartbeat_interval = Duration::from_secs(86_400);
    config.supervision.policy.backoff_base = Duration::from_millis(10);
    config.supervision.policy.cooldown = Duration::from_millis(300);
    AgentContext {
        bus: Arc::new(EmbeddedBus::new(1024)),
        queue: Arc::new(EmbeddedQueue::new(Duration::from_secs(60))),
        store: Arc::new(
            SqliteStore::open(&dir.path().join("host.sqlite"))
                .await
                .unwrap(),
        ),
        registry: Arc::new(EmbeddedRegistry::new()),
        config: Arc::new(config),
        faults: FaultHooks::default(),
    }
}

#[tokio::test]
async fn restarts_with_backoff_then_cools_down_and_never_dies_itself() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir).await;
    let mut health = ctx.bus.subscribe(Channel::HealthChecks).await.unwrap();
    let (started_tx, mut started_rx) = mpsc::unbounded_channel();
    let spec = ChildSpec {
        id: "crashy-0".into(),
        kind: AgentKind::Keyword,
        queue: None,
        start: Arc::new(move |supervisor, _restarts| {
            let started = started_tx.clone();
            async move {
                let (actor, _) = Actor::spawn_linked(None, Crashy, started, supervisor).await?;
                Ok(actor.get_cell())
            }
            .boxed()
        }),
    };
    let (host, _) = Actor::spawn(
        None,
        AgentHost,
        HostArgs {
            ctx: ctx.clone(),
            children: vec![spec],
            workers: super::WorkerFactory::new(|_: &AgentContext, _: AgentKind, _: u32| None),
        },
    )
    .await
    .unwrap();

    let mut next_lifecycle = async || loop {
        let payload = health.next().await.unwrap();
        if let HealthMessage::Lifecycle {
            event, restarts, ..
        } = decode::<HealthMessage>(&payload).unwrap()
        {
            return (event, restarts);
        }
    };
    assert_eq!(next_lifecycle().await.0, LifecycleEvent::Started);

    // Three crashes: restarted after the backoff base, doubled each time (±20 %), the host
    // unaffected.
    for (attempt, base_ms) in [(1u32, 10u64), (2, 20), (3, 40)] {
        let child = started_rx.recv().await.unwrap();
        child.send_message(CrashyMsg::Crash).unwrap();
        let (event, _) = next_lifecycle().await;
        let LifecycleEvent::Failed { delay_ms, reason } = event else {
            panic!("expected a failure, got {event:?}")
        };
        assert!(reason.contains("crash"), "{reason}");
        let low = base_ms * 8 / 10;
        let high = base_ms * 12 / 10;
        assert!(
            (low..=high).contains(&delay_ms),
            "attempt {attempt}: delay {delay_ms} ms"
        );
        let (event, restarts) = next_lifecycle().await;
        assert_eq!(event, LifecycleEvent::Started);
        assert_eq!(restarts, attempt);
        assert_eq!(host.get_status(), ActorStatus::Running);
    }

    // The fourth crash within the window spends the budget: the breaker opens (an alert),
    // and after the cooldown the half-open attempt is a fresh instance (RECREATE).
    let child = started_rx.recv().await.unwrap();
    child.send_message(CrashyMsg::Crash).unwrap();
    let (event, _) = next_lifecycle().await;
    let LifecycleEvent::GaveUp { reason } = event else {
        panic!("expected the breaker to open, got {event:?}")
    };
    assert!(reason.contains("breaker open"), "{reason}");
    let before = tokio::time::Instant::now();
    let (event, restarts) = next_lifecycle().await;
    assert_eq!(event, LifecycleEvent::Started);
    assert_eq!(restarts, 0, "a recreated child starts with a fresh count");
    assert!(
        before.elapsed() >= Duration::from_millis(300),
        "recreated only after the cooldown"
    );

    // Two healthy probes (one per heartbeat tick) close the half-open breaker.
    for _ in 0..2 {
        host.send_message(HostMsg::Reconcile).unwrap();
    }
    // (A call queues behind them: once answered, both probes are in.)
    host.call(HostMsg::Children, None).await.unwrap().unwrap();
    // A permanent child that stops on its own is restarted too, and the host lives on.
    let child = started_rx.recv().await.unwrap();
    child.send_message(CrashyMsg::Stop).unwrap();
    let (event, _) = next_lifecycle().await;
    assert!(matches!(event, LifecycleEvent::Failed { .. }), "{event:?}");
    let (event, restarts) = next_lifecycle().await;
    assert_eq!(event, LifecycleEvent::Started);
    assert_eq!(restarts, 1);
    assert_eq!(host.get_status(), ActorStatus::Running);

    let children = host.call(HostMsg::Children, None).await.unwrap().unwrap();
    assert_eq!(children.len(), 1);
    assert!(children[0].running);
    assert_eq!(children[0].restarts, 1);

    // Every decision is in the store: three restarts, the alert, the recreate, the restart.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let actions = ctx
        .store
        .list_supervisor_actions(&swarm_shared::domain::SupervisorActionQuery {
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    let names: Vec<&str> = actions.iter().rev().map(|a| a.action.as_str()).collect();
    assert_eq!(
        names,
        [
            "restart",
            "restart",
            "restart",
            "alert_only",
            "recreate",
            "restart"
        ]
    );
    assert!(actions.iter().all(|a| a.component == "crashy-0"));

    host.call(HostMsg::Shutdown, None).await.unwrap().unwrap();
    assert_eq!(next_lifecycle().await.0, LifecycleEvent::Stopped);
    let children = host.call(HostMsg::Children, None).await.unwrap().unwrap();
    assert!(!children[0].running, "stopped children are not restarted");
    host.stop(None);
}
