//! Exchange announcements pushed over WebSocket channels, through the whole swarm: Gate's
//! public channel against a local server of ours that checks requests against Gate's
//! documented shapes (Binance's signed topic: `binance.rs`).

use std::time::Duration;

use serde_json::json;
use swarm_tests::{TestSwarm, eventually};

use super::exchanges::token_events;

/// A local server speaking Gate's announcement channel as documented (`/ws/v4/ann`): it
/// checks each subscribe request, answers it, answers application pings, and pushes what the
/// test sends; `Kick` closes the connection.
pub(crate) mod gate_channel {
    use futures::{SinkExt, StreamExt};
    use serde_json::{Value, json};
    use std::sync::{Arc, Mutex};
    use tokio::sync::broadcast;
    use tokio_tungstenite::tungstenite::Message;

    #[derive(Clone, Debug)]
    pub enum Push {
        Text(String),
        Kick,
    }

    #[derive(Clone)]
    pub struct GateServer {
        pub port: u16,
        pub subscriptions: Arc<Mutex<Vec<Value>>>,
        pub pings: Arc<Mutex<u32>>,
        push: broadcast::Sender<Push>,
    }

    impl GateServer {
        pub async fn start() -> GateServer {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let (push, _) = broadcast::channel(64);
            let server = GateServer {
                port: listener.local_addr().unwrap().port(),
                subscriptions: Arc::default(),
                pings: Arc::default(),
                push,
            };
            let accepting = server.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(accepting.clone().serve(stream));
                }
            });
            server
        }

        pub fn send(&self, push: Push) {
            // No receiver yet is the test's mistake: it waits for a subscription first.
            self.push.send(push).unwrap();
        }

        pub fn subscribed(&self) -> usize {
            self.subscriptions.lock().unwrap().len()
        }

        #[expect(
            clippy::result_large_err,
            reason = "the handshake callback's type is tungstenite's, error response included"
        )]
        async fn serve(self, stream: tokio::net::TcpStream) {
            let mut pushes = self.push.subscribe();
            let callback =
                |request: &tokio_tungstenite::tungstenite::handshake::server::Request, response| {
                    assert_eq!(request.uri().path(), "/ws/v4/ann");
                    Ok(response)
                };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                return;
            };
            loop {
                tokio::select! {
                    push = pushes.recv() => match push {
                        Ok(Push::Text(text)) => {
                            if ws.send(Message::text(text)).await.is_err() { return; }
                        }
                        Ok(Push::Kick) | Err(_) => {
                            let _ = ws.close(None).await;
                            return;
                        }
                    },
                    message = ws.next() => {
                        let Some(Ok(Message::Text(text))) = message else {
                            if message.is_none() { return; }
                            continue;
                        };
                        let request: Value = serde_json::from_str(text.as_str()).unwrap();
                        let channel = request["channel"].as_str().unwrap_or_default().to_owned();
                        assert!(request["time"].is_i64(), "time in Unix seconds: {request}");
                        if channel == "announcement.ping" {
                            *self.pings.lock().unwrap() += 1;
                            let pong = json!({"time": request["time"], "time_ms": 0, "channel": "announcement.pong", "event": "", "error": null, "result": null});
                            if ws.send(Message::text(pong.to_string())).await.is_err() { return; }
                            continue;
                        }
                        let documented = request["event"] == "subscribe"
                            && channel == "announcement.summary_listing"
                            && request["payload"] == json!(["en"]);
                        let answer = if documented {
                            self.subscriptions.lock().unwrap().push(request.clone());
                            json!({"time": request["time"], "time_ms": 0, "channel": channel, "event": "subscribe", "result": {"status": "success"}})
                        } else {
                            json!({"time": request["time"], "time_ms": 0, "channel": channel, "event": request["event"], "error": {"code": 2, "message": "Unknown channel"}, "result": null})
                        };
                        if ws.send(Message::text(answer.to_string())).await.is_err() { return; }
                    }
                }
            }
        }
    }

    pub fn update(title: &str, brief: &str, id: u32, published_at: i64) -> Push {
        Push::Text(
            json!({"time": published_at, "time_ms": published_at * 1000, "channel": "announcement.summary_listing",
                   "event": "update", "result": {"lang": "en", "origin_url": format!("https://www.gate.com/article/{id}"),
                   "title": title, "brief": brief, "published_at": published_at}})
            .to_string(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_notices_pushed_on_its_channel_become_events() {
    use gate_channel::{GateServer, Push, update};
    let gate = GateServer::start().await;
    let swarm = TestSwarm::start(|_| {}).await;
    let id = swarm
        .add_source(json!({"name": "gate-notices", "kind": "exchange", "exchange": "gate",
                           "feed": "announcements", "url": format!("http://127.0.0.1:{}", gate.port),
                           "interval": "200ms"}))
        .await;
    eventually(Duration::from_secs(20), "a subscription", || {
        let gate = gate.clone();
        async move { gate.subscribed() == 1 }
    })
    .await;
    gate.send(update(
        "Gate will list Norvane (NRV) and Quillo (QLO) for spot trading",
        "Spot trading for NRV/USDT and QLO/USDT opens at 2026-12-10 10:00 (UTC).\r\nDeposits are open now.",
        4242,
        1_796_000_000,
    ));
    eventually(Duration::from_secs(20), "two events", || {
        let swarm = &swarm;
        async move { swarm.events().await.len() == 2 }
    })
    .await;
    let mut events = swarm.events().await;
    events.sort_by_key(|event| event["token"].as_str().unwrap_or_default().to_owned());
    for (event, token) in events.iter().zip(["NRV", "QLO"]) {
        assert_eq!(event["token"], token, "{event}");
        assert_eq!(event["venues"], json!(["Gate"]), "{event}");
        assert_eq!(event["kind"], "first_listing", "{event}");
        assert_eq!(event["starts_at"], "2026-12-10T10:00:00Z", "{event}");
        assert_eq!(event["published_at"], "2026-11-30T00:53:20Z", "{event}");
        assert_eq!(event["provenance"], "exchange", "{event}");
        // Data quality canonicalises the link (`www.` dropped).
        assert_eq!(event["proof"], "https://gate.com/article/4242", "{event}");
    }
    // A message that is not JSON and an update without its link: a clear source error, and
    // the channel goes on.
    gate.send(Push::Text("{not json".into()));
    gate.send(Push::Text(
        json!({"time": 1, "channel": "announcement.summary_listing", "event": "update",
               "result": {"title": "Gate will list Brisko (BSK)", "lang": "en", "published_at": 1}})
        .to_string(),
    ));
    eventually(Duration::from_secs(20), "the source's error", || {
        let swarm = &swarm;
        async move {
            let error = swarm.source(id).await["last_error"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            error.contains("not JSON") || error.contains("no result.origin_url")
        }
    })
    .await;
    // Gate closes the connection: the swarm subscribes again and reads what follows.
    gate.send(Push::Kick);
    eventually(Duration::from_secs(30), "a second subscription", || {
        let gate = gate.clone();
        async move { gate.subscribed() == 2 }
    })
    .await;
    gate.send(update(
        "Gate will list Tallowe (TLWE) for spot trading",
        "Spot trading for TLWE/USDT opens at 2026-12-11 08:00 (UTC).",
        4243,
        1_796_000_100,
    ));
    eventually(Duration::from_secs(20), "the third event", || {
        let swarm = &swarm;
        async move { token_events(swarm, "TLWE").await.len() == 1 }
    })
    .await;
    eventually(Duration::from_secs(20), "the source healthy again", || {
        let swarm = &swarm;
        async move { swarm.source(id).await["last_error"].is_null() }
    })
    .await;
    swarm.stop().await;
}
