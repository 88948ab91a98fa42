//! Exchange sources through the whole swarm: market lists read from local servers in the
//! exchanges' documented shapes. The first read records what exists and announces nothing; a
//! symbol appearing is a first listing (an event with its venue); the same asset appearing
//! later on another exchange joins that event as a second venue; and an asset that already
//! traded before the swarm watched makes no event when it reaches one more exchange.

use std::time::Duration;

use serde_json::{Value, json};
use swarm_tests::{FeedServer, TestSwarm, eventually};

fn binance_spot(symbols: &[(&str, &str)]) -> String {
    let symbols: Vec<Value> = symbols
        .iter()
        .map(|(symbol, base)| json!({"symbol": symbol, "status": "TRADING", "baseAsset": base, "quoteAsset": "USDT"}))
        .collect();
    json!({"timezone": "UTC", "symbols": symbols}).to_string()
}

fn gate_spot(pairs: &[(&str, &str)]) -> String {
    let pairs: Vec<Value> = pairs
        .iter()
        .map(|(id, base)| json!({"id": id, "base": base, "quote": "USDT", "trade_status": "tradable"}))
        .collect();
    Value::Array(pairs).to_string()
}

async fn token_events(swarm: &TestSwarm, token: &str) -> Vec<Value> {
    swarm
        .events()
        .await
        .into_iter()
        .filter(|event| event["token"] == token)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_markets_are_first_listings_and_later_venues_join_them() {
    let binance = FeedServer::start().await;
    let gate = FeedServer::start().await;
    let json_type = "application/json";
    binance.publish(
        "api/v3/exchangeInfo",
        binance_spot(&[("BTCUSDT", "BTC"), ("ETHUSDT", "ETH")]),
        json_type,
    );
    binance.publish(
        "fapi/v1/exchangeInfo",
        json!({"symbols": []}).to_string(),
        json_type,
    );
    gate.publish(
        "api/v4/spot/currency_pairs",
        gate_spot(&[("BTC_USDT", "BTC")]),
        json_type,
    );
    gate.publish(
        "api/v4/futures/usdt/contracts",
        json!([{"name": "BTC_USDT"}]).to_string(),
        json_type,
    );

    let swarm = TestSwarm::start(|_| {}).await;
    for (name, exchange, server) in [
        ("binance-markets", "binance", &binance),
        ("gate-markets", "gate", &gate),
    ] {
        swarm
            .add_source(
                json!({"name": name, "kind": "exchange", "exchange": exchange, "feed": "markets",
                               "url": server.base(), "interval": "200ms"}),
            )
            .await;
    }
    // Both read at least twice: what they list is known, and none of it is news.
    eventually(Duration::from_secs(20), "both exchanges read twice", || {
        let (binance, gate) = (binance.clone(), gate.clone());
        async move {
            binance.hits("api/v3/exchangeInfo") >= 2 && gate.hits("api/v4/spot/currency_pairs") >= 2
        }
    })
    .await;
    assert!(
        swarm.events().await.is_empty(),
        "a first read announces nothing"
    );

    // VLR appears on Binance: a first listing.
    binance.publish(
        "api/v3/exchangeInfo",
        binance_spot(&[
            ("BTCUSDT", "BTC"),
            ("ETHUSDT", "ETH"),
            ("VLRUSDT", "VLR"),
            ("FHEUSDT", "FHE"),
        ]),
        json_type,
    );
    eventually(
        Duration::from_secs(20),
        "a first-listing event for VLR",
        || {
            let swarm = &swarm;
            async move { token_events(swarm, "VLR").await.len() == 1 }
        },
    )
    .await;
    let event = token_events(&swarm, "VLR").await.remove(0);
    assert_eq!(event["kind"], "first_listing", "{event}");
    assert_eq!(event["venues"], json!(["Binance"]), "{event}");
    assert_eq!(event["project"], "VLR", "no company: the ticker names it");
    // FHE is the watchlist's Fhenix: the event is the company's, to merge with its news.
    eventually(
        Duration::from_secs(20),
        "a first-listing event for FHE",
        || {
            let swarm = &swarm;
            async move { token_events(swarm, "FHE").await.len() == 1 }
        },
    )
    .await;
    assert_eq!(token_events(&swarm, "FHE").await[0]["project"], "Fhenix");

    // VLR reaches Gate, and ETH (trading on Binance before the swarm watched) too.
    gate.publish(
        "api/v4/spot/currency_pairs",
        gate_spot(&[
            ("BTC_USDT", "BTC"),
            ("VLR_USDT", "VLR"),
            ("ETH_USDT", "ETH"),
        ]),
        json_type,
    );
    eventually(
        Duration::from_secs(20),
        "Gate joins the VLR event as a venue",
        || {
            let swarm = &swarm;
            async move {
                let events = token_events(swarm, "VLR").await;
                events.len() == 1 && events[0]["venues"] == json!(["Binance", "Gate"])
            }
        },
    )
    .await;
    let event = token_events(&swarm, "VLR").await.remove(0);
    assert_eq!(event["source_count"], 2, "{event}");
    // Give the ETH listing time to pass the pipeline: it must not become an event.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = swarm.events().await;
    assert_eq!(
        events.len(),
        2,
        "a secondary listing never creates a TGE: {events:?}"
    );
    swarm.stop().await;
}

fn bybit_notices(notices: &[(&str, &str, &str)]) -> String {
    let list: Vec<Value> = notices
        .iter()
        .map(|(title, description, url)| {
            json!({"title": title, "description": description,
                   "type": {"title": "New Listings", "key": "new_crypto"}, "tags": ["Spot"], "url": url,
                   "dateTimestamp": 1_796_000_000_000_i64, "publishTime": 1_796_000_000_000_i64})
        })
        .collect();
    json!({"retCode": 0, "retMsg": "OK", "result": {"total": list.len(), "list": list}, "time": 1_796_000_000_000_i64})
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_listing_three_tokens_makes_three_events() {
    let bybit = FeedServer::start().await;
    let path = "v5/announcements/index";
    bybit.publish(path, bybit_notices(&[]), "application/json");
    let swarm = TestSwarm::start(|_| {}).await;
    swarm
        .add_source(
            json!({"name": "bybit-notices", "kind": "exchange", "exchange": "bybit",
                           "feed": "announcements", "url": bybit.base(), "interval": "200ms"}),
        )
        .await;
    eventually(Duration::from_secs(20), "a first read", || {
        let bybit = bybit.clone();
        async move { bybit.hits(path) >= 1 }
    })
    .await;
    bybit.publish(
        path,
        bybit_notices(&[(
            "Bybit Will List Velora (VLRA), Quantix Network (QNTX) and Morrow (MRW)",
            "Spot trading for VLRA/USDT, QNTX/USDT and MRW/USDT opens at 2026-12-10 10:00 (UTC). \
             Deposits are open now.",
            "https://announcements.bybit.com/en-US/article/new-listings-vlra-qntx-mrw",
        )]),
        "application/json",
    );
    eventually(Duration::from_secs(20), "three events", || {
        let swarm = &swarm;
        async move { swarm.events().await.len() == 3 }
    })
    .await;
    let mut events = swarm.events().await;
    events.sort_by_key(|event| event["token"].as_str().unwrap_or_default().to_owned());
    let tokens: Vec<(&str, &str)> = events
        .iter()
        .map(|event| {
            (
                event["token"].as_str().unwrap(),
                event["project"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tokens,
        vec![
            ("MRW", "Morrow"),
            ("QNTX", "Quantix Network"),
            ("VLRA", "Velora")
        ]
    );
    for event in &events {
        assert_eq!(event["venues"], json!(["Bybit"]), "{event}");
        assert_eq!(event["kind"], "first_listing", "{event}");
        assert_eq!(event["starts_at"], "2026-12-10T10:00:00Z", "{event}");
        assert_eq!(event["event_date"], "2026-12-10 10:00 UTC", "{event}");
        assert_eq!(event["date_precision"], "day", "{event}");
        // The notice's own publish time, beside the time the swarm stored the event.
        assert_eq!(event["published_at"], "2026-11-30T00:53:20Z", "{event}");
        assert!(event["first_seen"].is_string(), "{event}");
        assert_eq!(event["provenance"], "exchange", "{event}");
        assert_eq!(
            event["proof"],
            "https://announcements.bybit.com/en-US/article/new-listings-vlra-qntx-mrw",
            "{event}"
        );
        // The notice itself is each event's proof (its per-token fragment is cleaned off).
        assert_eq!(
            event["sources"][0]["url"],
            "https://announcements.bybit.com/en-US/article/new-listings-vlra-qntx-mrw",
            "{event}"
        );
    }
    let metrics = swarm.metrics().await;
    assert!(
        metrics.contains("tge_swarm_detection_lag_seconds_bucket{source_kind=\"exchange\""),
        "the lag of the exchange's events is measured"
    );
    swarm.stop().await;
}

/// A local server speaking Gate's announcement channel as documented (`/ws/v4/ann`): it
/// checks each subscribe request, answers it, answers application pings, and pushes what the
/// test sends; `Kick` closes the connection.
mod gate_channel {
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
