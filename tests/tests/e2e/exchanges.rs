//! Exchange sources through the whole swarm: market lists read from local servers in the
//! exchanges' documented shapes. The first read records what exists and announces nothing; a
//! symbol appearing is a first listing (an event with its venue); the same asset appearing
//! later on another exchange joins that event as a second venue; and an asset that already
//! traded before the swarm watched makes no event when it reaches one more exchange, and is
//! held as trading by detection.

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

pub(crate) async fn token_events(swarm: &TestSwarm, token: &str) -> Vec<Value> {
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
        binance_spot(&[("BTCUSDT", "BTC"), ("ETHUSDT", "ETH"), ("NOVAUSDT", "NOVA")]),
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
    // What a first read lists traded before the swarm looked: detection holds it as trading,
    // so a later airdrop season of it is no announcement.
    let why = |view: &Value, ticker: &str| -> Option<String> {
        view["effective"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["ticker"] == ticker)
            .map(|t| t["why"].as_str().unwrap().to_owned())
    };
    let (status, view) = swarm.get("/api/v1/trading-tokens").await;
    assert_eq!(status, 200, "{view}");
    let nova = why(&view, "NOVA").unwrap_or_default();
    assert!(
        nova.starts_with("market: binance spot, listed when the swarm first read it on "),
        "{view}"
    );
    let season_two = json!({"id": "s2", "url": "https://news.example/nova-claim",
        "title": "Nova Protocol opens $NOVA airdrop claim on June 3",
        "text": "Nova Protocol announced its $NOVA token airdrop: eligible users can claim $NOVA from June 3 at 12:00 UTC on the official claim page."});
    let (status, verdict) = swarm.post("/api/v1/classify", season_two).await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["is_tge"], false, "{verdict}");
    assert!(
        verdict["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("already_trading:NOVA")),
        "{verdict}"
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
    // A symbol that has just appeared is the launch itself, not a token that trades: its
    // follow-up news stays news until the merge window has passed.
    let (_, view) = swarm.get("/api/v1/trading-tokens").await;
    assert_eq!(why(&view, "VLR"), None, "{view}");

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
