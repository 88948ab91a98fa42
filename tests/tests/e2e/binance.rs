//! Binance's signed announcement topic through the whole swarm, against a local server of
//! ours that checks each handshake as Binance documents it and serves the public list the
//! source catches up from.

use std::time::Duration;

use serde_json::json;
use swarm_tests::{TestSwarm, eventually};

use super::exchanges::token_events;

/// A local server of Binance's announcement WebSocket (`/sapi/wss`, signed, documented
/// under "Announcements" in Binance's developer documentation) and of the public
/// announcement list a Binance source catches up from, on one port.
mod binance_channel {
    use futures::{SinkExt, StreamExt};
    use serde_json::json;
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use tokio::io::AsyncWriteExt;
    use tokio::sync::broadcast;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

    pub use super::super::channels::gate_channel::Push;

    pub const TOPIC: &str = "com_announcement_en";

    #[derive(Clone)]
    pub struct BinanceServer {
        pub port: u16,
        key: &'static str,
        secret: &'static str,
        /// Handshakes accepted, and refused with the reason.
        pub accepted: Arc<Mutex<u32>>,
        pub refused: Arc<Mutex<Vec<String>>>,
        /// Reads of the announcement list.
        pub list_reads: Arc<Mutex<u32>>,
        /// The list's notices: title, code, release time (ms).
        pub list: Arc<Mutex<Vec<(String, String, i64)>>>,
        push: broadcast::Sender<Push>,
    }

    impl BinanceServer {
        pub async fn start(key: &'static str, secret: &'static str) -> BinanceServer {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let (push, _) = broadcast::channel(64);
            let server = BinanceServer {
                port: listener.local_addr().unwrap().port(),
                key,
                secret,
                accepted: Arc::default(),
                refused: Arc::default(),
                list_reads: Arc::default(),
                list: Arc::default(),
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

        pub fn base(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }

        pub fn send(&self, push: Push) {
            self.push.send(push).expect("a connection to push to");
        }

        pub fn accepted(&self) -> u32 {
            *self.accepted.lock().unwrap()
        }

        pub fn list_reads(&self) -> u32 {
            *self.list_reads.lock().unwrap()
        }

        /// Checks a handshake as Binance documents it: the key in `X-MBX-APIKEY`, the
        /// parameters `random` (at most 32), `topic`, `recvWindow` (at most 60,000 ms),
        /// `timestamp` (at most a second ahead of now, at most the window behind) and
        /// `signature`, the hex HMAC-SHA256 of the others sorted by name.
        fn check(&self, request: &Request) -> Result<(), (u16, serde_json::Value)> {
            let key = request
                .headers()
                .get("X-MBX-APIKEY")
                .and_then(|value| value.to_str().ok());
            if key != Some(self.key) {
                return Err((
                    401,
                    json!({"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}),
                ));
            }
            let params: BTreeMap<String, String> =
                url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
                    .into_owned()
                    .collect();
            let names: Vec<&str> = params.keys().map(String::as_str).collect();
            let window: Option<i64> = params.get("recvWindow").and_then(|w| w.parse().ok());
            let timestamp: Option<i64> = params.get("timestamp").and_then(|t| t.parse().ok());
            let malformed = request.uri().path() != "/sapi/wss"
                || names != ["random", "recvWindow", "signature", "timestamp", "topic"]
                || params["random"].is_empty()
                || params["random"].len() > 32
                || params["topic"] != TOPIC
                || !window.is_some_and(|window| (1..=60_000).contains(&window))
                || timestamp.is_none();
            if malformed {
                return Err((
                    400,
                    json!({"code": -1102, "msg": format!("Malformed request: {}", request.uri())}),
                ));
            }
            let (window, timestamp) = (window.unwrap_or_default(), timestamp.unwrap_or_default());
            let now = chrono::Utc::now().timestamp_millis();
            if timestamp > now + 1_000 || now - timestamp > window {
                return Err((
                    400,
                    json!({"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}),
                ));
            }
            let payload: Vec<String> = params
                .iter()
                .filter(|(name, _)| *name != "signature")
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.secret.as_bytes());
            let want = hex::encode(ring::hmac::sign(&key, payload.join("&").as_bytes()).as_ref());
            if params["signature"] != want {
                return Err((
                    400,
                    json!({"code": -1022, "msg": "Signature for this request is not valid."}),
                ));
            }
            Ok(())
        }

        #[expect(
            clippy::result_large_err,
            reason = "the handshake callback's type is tungstenite's, error response included"
        )]
        async fn serve(self, mut stream: tokio::net::TcpStream) {
            let mut head = [0u8; 512];
            let Ok(read) = stream.peek(&mut head).await else {
                return;
            };
            let head = String::from_utf8_lossy(&head[..read]).into_owned();
            if !head.starts_with("GET /sapi/wss") {
                // The public announcement list (the catch-up after each subscription).
                const LIST: &str = "GET /bapi/composite/v1/public/cms/article/list/query?type=1&catalogId=48&pageNo=";
                if !head.starts_with(LIST) {
                    self.refused
                        .lock()
                        .unwrap()
                        .push(format!("not the list: {head}"));
                    let _ = stream
                        .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                    return;
                }
                *self.list_reads.lock().unwrap() += 1;
                let articles: Vec<serde_json::Value> = self
                    .list
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(title, code, at)| json!({"id": 1, "code": code, "title": title, "type": 1, "releaseDate": at}))
                    .collect();
                let body = json!({"code": "000000", "message": null, "messageDetail": null,
                    "data": {"catalogs": [{"catalogId": 48, "catalogName": "New Cryptocurrency Listing",
                                           "articles": articles, "total": articles.len()}]},
                    "success": true})
                .to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let mut request = vec![0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut request).await;
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
                return;
            }
            let mut pushes = self.push.subscribe();
            let server = self.clone();
            let callback = move |request: &Request, response: Response| match server.check(request)
            {
                Ok(()) => Ok(response),
                Err((status, body)) => {
                    server.refused.lock().unwrap().push(body.to_string());
                    let mut refusal = ErrorResponse::new(Some(body.to_string()));
                    *refusal.status_mut() =
                        tokio_tungstenite::tungstenite::http::StatusCode::from_u16(status).unwrap();
                    Err(refusal)
                }
            };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                return;
            };
            *self.accepted.lock().unwrap() += 1;
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
                    message = ws.next() => match message {
                        None | Some(Err(_)) => return,
                        // tungstenite answers pings; nothing else is sent to this topic.
                        Some(Ok(_)) => {}
                    },
                }
            }
        }
    }

    /// A `DATA` message of the topic: the notice as a JSON text, as Binance sends it.
    pub fn notice(catalog: (i64, &str), title: &str, body: &str, publish_ms: i64) -> Push {
        let data = json!({"catalogId": catalog.0, "catalogName": catalog.1, "publishDate": publish_ms,
                          "title": title, "body": body, "disclaimer": "Trade with care."});
        Push::Text(json!({"type": "DATA", "topic": TOPIC, "data": data.to_string()}).to_string())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_notices_pushed_on_its_signed_topic_become_events() {
    use binance_channel::{BinanceServer, Push, notice};
    const LISTING: (i64, &str) = (48, "New Cryptocurrency Listing");
    let binance = BinanceServer::start("test-key", "test-secret").await;
    // A second "Binance" that knows another secret: the swarm's signature is refused there.
    let strict = BinanceServer::start("test-key", "another-secret").await;
    // What the list holds from before the subscription: read once, as the catch-up.
    binance.list.lock().unwrap().push((
        "Binance Will List Kestrelo (KSTL)".into(),
        "a1b2c3".into(),
        1_796_000_000_000,
    ));
    let swarm = TestSwarm::start(|config| {
        config.scraping.binance_api = Some((
            swarm_shared::config::Secret::new("test-key"),
            swarm_shared::config::Secret::new("test-secret"),
        ));
    })
    .await;
    let id = swarm
        .add_source(
            json!({"name": "binance-notices", "kind": "exchange", "exchange": "binance",
                           "feed": "announcements", "url": binance.base(), "interval": "200ms"}),
        )
        .await;
    let refused = swarm
        .add_source(
            json!({"name": "binance-elsewhere", "kind": "exchange", "exchange": "binance",
                           "feed": "announcements", "url": strict.base(), "interval": "200ms"}),
        )
        .await;
    eventually(Duration::from_secs(20), "a signed subscription", || {
        let binance = binance.clone();
        async move { binance.accepted() == 1 }
    })
    .await;
    eventually(Duration::from_secs(20), "the catch-up's event", || {
        let swarm = &swarm;
        async move { token_events(swarm, "KSTL").await.len() == 1 }
    })
    .await;
    binance.send(notice(
        LISTING,
        "Binance Will List Norvane (NRV), Quillo (QLO) and Brisko (BSK)",
        "Binance will open trading for NRV/USDT, QLO/USDT and BSK/USDT at 2026-12-10 10:00 (UTC).\r\nDeposits are open now.",
        1_796_000_100_000,
    ));
    eventually(Duration::from_secs(20), "three pushed events", || {
        let swarm = &swarm;
        async move { swarm.events().await.len() == 4 }
    })
    .await;
    for token in ["NRV", "QLO", "BSK"] {
        let events = token_events(&swarm, token).await;
        assert_eq!(events.len(), 1, "{token}: {events:?}");
        let event = &events[0];
        assert_eq!(event["venues"], json!(["Binance"]), "{event}");
        assert_eq!(event["kind"], "first_listing", "{event}");
        assert_eq!(event["starts_at"], "2026-12-10T10:00:00Z", "{event}");
        assert_eq!(event["published_at"], "2026-11-30T00:55:00Z", "{event}");
        assert_eq!(event["provenance"], "exchange", "{event}");
        assert_eq!(
            event["proof"], "https://binance.com/en/support/announcement/list/48",
            "{event}"
        );
    }
    // While subscribed the list is not read: polls cost no request.
    let reads = binance.list_reads();
    assert!(reads >= 1, "the catch-up read the list");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        binance.list_reads(),
        reads,
        "no list reads while subscribed"
    );
    // Another catalog is not read; a notice that is not JSON is a clear source error.
    binance.send(notice(
        (161, "Delisting"),
        "Notice of Removal of Spot Trading Pairs - 2026-12-12",
        "Binance will remove OLDX/USDT.",
        1_796_000_200_000,
    ));
    binance.send(Push::Text(
        json!({"type": "DATA", "topic": "com_announcement_en", "data": "{oops"}).to_string(),
    ));
    eventually(Duration::from_secs(20), "the source's error", || {
        let swarm = &swarm;
        async move {
            let error = swarm.source(id).await["last_error"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            error.contains("data is not JSON")
        }
    })
    .await;
    // Binance closes the connection (it does after 24 hours): the swarm signs a new request,
    // subscribes again, catches up on the list once more, and reads what follows.
    binance.list.lock().unwrap().push((
        "Binance Will List Marlowe (MRLW)".into(),
        "d4e5f6".into(),
        1_796_000_300_000,
    ));
    binance.send(Push::Kick);
    eventually(Duration::from_secs(30), "a second subscription", || {
        let binance = binance.clone();
        async move { binance.accepted() == 2 }
    })
    .await;
    eventually(
        Duration::from_secs(20),
        "the second catch-up's event",
        || {
            let swarm = &swarm;
            async move { token_events(swarm, "MRLW").await.len() == 1 }
        },
    )
    .await;
    assert!(binance.list_reads() > reads, "a second catch-up");
    binance.send(notice(
        LISTING,
        "Binance Will List Tallowe (TLWE) in the Innovation Zone",
        "Trading for TLWE/USDT opens at 2026-12-11 08:00 (UTC).",
        1_796_000_400_000,
    ));
    eventually(
        Duration::from_secs(20),
        "the event after the reconnect",
        || {
            let swarm = &swarm;
            async move { token_events(swarm, "TLWE").await.len() == 1 }
        },
    )
    .await;
    assert!(
        token_events(&swarm, "OLDX").await.is_empty(),
        "delistings are not read"
    );
    eventually(Duration::from_secs(20), "the source healthy again", || {
        let swarm = &swarm;
        async move { swarm.source(id).await["last_error"].is_null() }
    })
    .await;
    // Where the signature is refused, the source says so in Binance's words.
    eventually(
        Duration::from_secs(20),
        "the refusal as the source's error",
        || {
            let swarm = &swarm;
            async move {
                let error = swarm.source(refused).await["last_error"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                error.contains("HTTP 400")
                    && error.contains("Signature for this request is not valid")
            }
        },
    )
    .await;
    assert_eq!(strict.accepted(), 0);
    assert!(!strict.refused.lock().unwrap().is_empty());
    // While it is not subscribed, its list is read at every poll, as without a key.
    eventually(
        Duration::from_secs(20),
        "the list read while refused",
        || {
            let strict = strict.clone();
            async move { strict.list_reads() >= 3 }
        },
    )
    .await;
    let refused = binance.refused.lock().unwrap().clone();
    assert!(
        refused.is_empty(),
        "every request as documented: {refused:?}"
    );
    swarm.stop().await;
}
