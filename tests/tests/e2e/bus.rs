//! Forwarding bus messages into actors: a forwarder that wants a few message types delivers
//! those, skips the rest without decoding them, and still delivers what it cannot pre-read.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use swarm_shared::channels::Channel;
use swarm_shared::context::forward_only;
use swarm_shared::messages::AgentMessage;
use swarm_shared::ports::publish;
use swarm_tests::{TestSwarm, eventually};

/// Keeps the messages it is sent.
struct Collector;

enum CollectorMsg {
    Got(AgentMessage),
    Seen(RpcReplyPort<Vec<AgentMessage>>),
}

impl Actor for Collector {
    type Msg = CollectorMsg;
    type State = Vec<AgentMessage>;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _args: (),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(Vec::new())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            CollectorMsg::Got(message) => state.push(message),
            CollectorMsg::Seen(reply) => {
                let _ = reply.send(state.clone());
            }
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarder_delivers_only_the_types_it_wants() {
    let swarm = TestSwarm::start(|_| {}).await;
    let ctx = swarm.swarm.context().clone();
    let (collector, handle) = Actor::spawn(None, Collector, ()).await.unwrap();
    let forwarder = forward_only(
        &ctx,
        Channel::AgentCommunication,
        collector.clone(),
        CollectorMsg::Got,
        &[swarm_shared::messages::agent_tags::EVENT_RECORDED],
    )
    .await
    .unwrap();

    let recorded = AgentMessage::EventRecorded {
        event_id: 7,
        created: true,
        project: Some("Fhenix".into()),
        documents: 2,
    };
    let write = AgentMessage::MemoryWrite {
        namespace: "n".into(),
        key: "k".into(),
        value: serde_json::json!({}),
        ttl_s: None,
        written_by: "test".into(),
    };
    publish(ctx.bus.as_ref(), &write).await.unwrap();
    publish(ctx.bus.as_ref(), &recorded).await.unwrap();
    // Encoded by hand with a space: the tag cannot be pre-read, so it is decoded and delivered.
    let spaced = br#"{"type": "memory_write", "namespace": "n", "key": "spaced", "value": 1, "ttl_s": null, "written_by": "hand"}"#;
    ctx.bus
        .publish(Channel::AgentCommunication, spaced.to_vec())
        .await
        .unwrap();

    eventually(Duration::from_secs(5), "two messages delivered", || async {
        ractor::call_t!(collector, CollectorMsg::Seen, 1_000)
            .unwrap()
            .len()
            >= 2
    })
    .await;
    // Anything published after these by the swarm's own agents is of other types, or
    // memory writes that the filter drops; give a stray one time to arrive.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = ractor::call_t!(collector, CollectorMsg::Seen, 1_000).unwrap();
    let keys: Vec<String> = seen
        .iter()
        .filter_map(|message| match message {
            AgentMessage::MemoryWrite { key, .. } => Some(key.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(keys, ["spaced"], "memory writes skipped unless unreadable");
    assert!(seen.contains(&recorded), "the wanted type is delivered");
    forwarder.abort();
    collector.stop(None);
    handle.await.unwrap();
    swarm.stop().await;
}
