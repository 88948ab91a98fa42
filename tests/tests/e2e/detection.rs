//! Detection end to end: `POST /api/v1/classify`, and analyst feedback that reaches the
//! keyword agents through the memory coordinator and suppresses a recurring false positive in
//! the live pipeline, while real announcements keep flowing.

use std::time::Duration;

use serde_json::{Value, json};
use swarm_tests::{ADMIN_KEY, FeedServer, Item, TestSwarm, all_healthy, eventually, rss};

const INTERVAL_SECS: u64 = 2;

async fn post(swarm: &TestSwarm, path: &str, body: Value, key: Option<&str>) -> (u16, Value) {
    let mut request = swarm.http.post(swarm.url(path)).json(&body);
    if let Some(key) = key {
        request = request.header("X-API-Key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn source_urls(events: &[Value]) -> Vec<String> {
    let mut urls = Vec::new();
    for event in events {
        for source in event["sources"].as_array().unwrap() {
            urls.push(source["url"].as_str().unwrap().to_owned());
        }
    }
    urls
}

const RADAR_TITLE: &str = "TGE Radar: this week's token launches";

fn radar_issue(number: u32, ticker: &str) -> Item {
    Item::new(
        RADAR_TITLE,
        &format!("https://radar.example/issues/{number}"),
        &format!(
            "TGE Radar is live: token launches this week include new airdrop claims and token sales. The ${ticker} token launch calendar is live today."
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_api_contract() {
    let swarm = TestSwarm::start(|_| {}).await;
    let (status, body) = post(
        &swarm,
        "/api/v1/classify",
        json!({"id": 7, "title": "Fhenix sets TGE for March 5", "text": "Fhenix will hold its token generation event on March 5; the $FHE airdrop claim opens at TGE."}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], 7);
    assert_eq!(body["is_tge"], true, "{body}");
    assert_eq!(body["project"], "Fhenix");
    assert_eq!(body["token"], "FHE");
    assert_eq!(body["event_date"], "March 5");
    let score = body["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score));
    assert!(!body["evidence"].as_array().unwrap().is_empty());

    let (status, body) = post(
        &swarm,
        "/api/v1/classify",
        json!({"documents": [
            {"id": "a", "text": "Scientists monitoring the volcanic caldera recorded ground uplift; an eruption is not expected."},
            {"id": "b", "title": "Caldera TGE set for July 17", "text": "Caldera will hold the ERA token generation event on July 17 with an airdrop to rollup users.", "url": "https://news.example/caldera"}
        ]}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["id"], "a");
    assert_eq!(results[0]["is_tge"], false, "{body}");
    assert_eq!(results[1]["is_tge"], true, "{body}");

    // A company added to the watchlist counts at once (the cached scorer is rebuilt).
    let zephyrix = json!({"id": "z", "title": "Zephyrix sets TGE for May 2", "text": "Zephyrix will hold its token generation event on May 2 with an airdrop to early users."});
    let (_, before) = post(&swarm, "/api/v1/classify", zephyrix.clone(), None).await;
    let company_evidence = |verdict: &Value| {
        verdict["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("company:Zephyrix"))
    };
    assert!(!company_evidence(&before), "{before}");
    let (status, body) = post(
        &swarm,
        "/api/v1/companies",
        json!({"name": "Zephyrix", "aliases": ["Zephyrix Labs"], "tickers": ["ZPX"]}),
        Some(ADMIN_KEY),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, after) = post(&swarm, "/api/v1/classify", zephyrix, None).await;
    assert!(company_evidence(&after), "{after}");
    assert_eq!(after["token"], "ZPX", "{after}");

    // Bad input names what was wrong.
    let (status, body) = post(
        &swarm,
        "/api/v1/classify",
        json!({"documents": [{"id": 1, "text": " "}]}),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("documents[0]"),
        "{body}"
    );
    let (status, _) = post(&swarm, "/api/v1/classify", json!({"text": "no id"}), None).await;
    assert!(
        status == 400 || status == 422,
        "missing id rejected, got {status}"
    );
    let many: Vec<Value> = (0..1001).map(|i| json!({"id": i, "text": "x"})).collect();
    let (status, body) = post(&swarm, "/api/v1/classify", json!({"documents": many}), None).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("at most 1000"),
        "{body}"
    );
    swarm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_suppresses_a_recurring_false_positive_in_the_live_pipeline() {
    let server = FeedServer::start().await;
    server.publish(
        "radar.xml",
        rss(&[radar_issue(41, "RADAR")]),
        "application/rss+xml",
    );
    server.publish("news.xml", rss(&[]), "application/rss+xml");
    let swarm = TestSwarm::start(|_| {}).await;
    eventually(Duration::from_secs(20), "every actor healthy", || async {
        all_healthy(&swarm.agents().await)
    })
    .await;
    let interval = format!("{INTERVAL_SECS}s");
    swarm.add_source(json!({"name": "radar", "kind": "rss", "url": server.url("radar.xml"), "interval": interval})).await;
    swarm.add_source(json!({"name": "news", "kind": "rss", "url": server.url("news.xml"), "interval": interval})).await;

    // The newsletter reads like an announcement: it becomes an event.
    eventually(
        Duration::from_secs(20),
        "the newsletter's event",
        || async {
            source_urls(&swarm.events().await)
                .contains(&"https://radar.example/issues/41".to_owned())
        },
    )
    .await;
    let events = swarm.events().await;
    let event = events
        .iter()
        .find(|e| {
            source_urls(std::slice::from_ref(e))
                .contains(&"https://radar.example/issues/41".to_owned())
        })
        .unwrap();
    let event_id = event["id"].as_i64().unwrap();

    // Feedback needs a write key, a known label and a known event.
    let path = format!("/api/v1/events/{event_id}/feedback");
    let (status, _) = post(&swarm, &path, json!({"label": "false_positive"}), None).await;
    assert_eq!(status, 401);
    let (status, body) = post(&swarm, &path, json!({"label": "maybe"}), Some(ADMIN_KEY)).await;
    assert!(status == 400 || status == 422, "{status} {body}");
    let (status, body) = post(
        &swarm,
        "/api/v1/events/999999/feedback",
        json!({"label": "false_positive"}),
        Some(ADMIN_KEY),
    )
    .await;
    assert_eq!(status, 404, "{body}");

    // Analysts mark it a false positive, issue after issue.
    let next = json!({"id": "next", "title": RADAR_TITLE, "url": "https://radar.example/issues/42",
        "text": "TGE Radar is live: token launches this week include new airdrop claims and token sales. The $NEXT token launch calendar is live today."});
    let (_, before) = post(&swarm, "/api/v1/classify", next.clone(), None).await;
    assert_eq!(
        before["is_tge"], true,
        "the next issue starts as a false positive: {before}"
    );
    let mut given = 0;
    for _ in 0..3 {
        let (status, body) = post(
            &swarm,
            &path,
            json!({"label": "false_positive", "note": "weekly newsletter, not an announcement"}),
            Some(ADMIN_KEY),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["label"], "false_positive");
        assert_eq!(body["event_id"], event_id);
        given += 1;
        let (_, after) = post(&swarm, "/api/v1/classify", next.clone(), None).await;
        if after["is_tge"] == false {
            break;
        }
    }
    let (_, after) = post(&swarm, "/api/v1/classify", next.clone(), None).await;
    assert_eq!(
        after["is_tge"], false,
        "suppressed after {given} feedbacks: {after}"
    );

    // Shared through the memory coordinator.
    eventually(
        Duration::from_secs(10),
        "feedback in shared memory",
        || async {
            let (_, body) = swarm.get("/api/v1/memory/feedback").await;
            body["entries"]
                .as_array()
                .is_some_and(|entries| entries.len() == given)
        },
    )
    .await;

    // The next issue arrives beside a real announcement: the announcement becomes an event,
    // the newsletter does not.
    server.publish(
        "radar.xml",
        rss(&[radar_issue(42, "NEXT")]),
        "application/rss+xml",
    );
    server.publish(
        "news.xml",
        rss(&[Item::new(
            "Fhenix sets TGE for March 5",
            "https://news.example/fhenix-tge",
            "Fhenix will hold its token generation event on March 5; the $FHE airdrop claim opens at TGE.",
        )]),
        "application/rss+xml",
    );
    eventually(
        Duration::from_secs(20),
        "the real announcement's event",
        || async {
            source_urls(&swarm.events().await)
                .contains(&"https://news.example/fhenix-tge".to_owned())
        },
    )
    .await;
    // Both feeds were polled in the same rounds; give the newsletter two more intervals.
    tokio::time::sleep(Duration::from_secs(2 * INTERVAL_SECS)).await;
    let urls = source_urls(&swarm.events().await);
    assert!(
        !urls.contains(&"https://radar.example/issues/42".to_owned()),
        "the suppressed newsletter became an event: {urls:?}"
    );
    swarm.stop().await;
}

/// A later airdrop season of a token that trades reads like an announcement.
fn season_two(ticker: &str) -> Value {
    json!({"id": "s2", "title": format!("Nova Protocol opens ${ticker} airdrop claim on June 3"),
        "url": format!("https://news.example/{ticker}-claim"),
        "text": format!("Nova Protocol announced its ${ticker} token airdrop: eligible users can claim ${ticker} from June 3 at 12:00 UTC on the official claim page.")})
}

fn has_evidence(verdict: &Value, prefix: &str) -> bool {
    verdict["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.as_str().unwrap().starts_with(prefix))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_that_already_trade_are_kept_by_the_operator_and_not_alerted() {
    let server = FeedServer::start().await;
    server.publish("news.xml", rss(&[]), "application/rss+xml");
    let swarm = TestSwarm::start(|_| {}).await;
    eventually(Duration::from_secs(20), "every actor healthy", || async {
        all_healthy(&swarm.agents().await)
    })
    .await;

    // The seeded watchlist's `has_token` companies count from the start.
    let (status, view) = swarm.get("/api/v1/trading-tokens").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["operator"], json!([]));
    assert_eq!(view["shift"], -4.0);
    let effective = view["effective"].as_array().unwrap();
    assert!(
        effective
            .iter()
            .any(|t| t["ticker"] == "GRAIL" && t["why"] == "watchlist: Camelot"),
        "{view}"
    );

    // Writing needs a key and valid tickers; the error names the entry.
    let put = |body: Value, key: Option<&'static str>| {
        let mut request = swarm
            .http
            .put(swarm.url("/api/v1/trading-tokens"))
            .json(&body);
        if let Some(key) = key {
            request = request.header("X-API-Key", key);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, _) = put(json!({"tokens": ["NOVA"]}), None).await;
    assert_eq!(status, 401);
    let (status, body) = put(json!({"tokens": ["NOVA", "NOT A TICKER"]}), Some(ADMIN_KEY)).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("tokens[1]"),
        "{body}"
    );
    let (status, body) = put(json!({"tokens": ["NOVA"], "extra": 1}), Some(ADMIN_KEY)).await;
    assert!(status == 400 || status == 422, "{status} {body}");

    // Before: the season-two claim is an alert.
    let (_, before) = post(&swarm, "/api/v1/classify", season_two("NOVA"), None).await;
    assert_eq!(before["is_tge"], true, "{before}");
    assert_eq!(before["token"], "NOVA", "{before}");

    let (status, view) = put(json!({"tokens": ["$nova", "arb", "ARB"]}), Some(ADMIN_KEY)).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["operator"], json!(["ARB", "NOVA"]));
    assert!(
        view["effective"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["ticker"] == "NOVA" && t["why"] == "operator list"),
        "{view}"
    );

    // After: it is not, and the evidence says why.
    let (_, after) = post(&swarm, "/api/v1/classify", season_two("NOVA"), None).await;
    assert_eq!(after["is_tge"], false, "{after}");
    assert!(has_evidence(&after, "already_trading:NOVA"), "{after}");

    // The keyword agents reloaded the list: in the live pipeline the season-two claim makes
    // no event, while a new token's claim beside it does.
    let interval = format!("{INTERVAL_SECS}s");
    server.publish(
        "news.xml",
        rss(&[
            Item::new(
                "Nova Protocol opens $NOVA airdrop claim on June 3",
                "https://news.example/nova-claim",
                "Nova Protocol announced its $NOVA token airdrop: eligible users can claim $NOVA from June 3 at 12:00 UTC on the official claim page.",
            ),
            Item::new(
                "Fhenix sets TGE for March 5",
                "https://news.example/fhenix-tge",
                "Fhenix will hold its token generation event on March 5; the $FHE airdrop claim opens at TGE.",
            ),
        ]),
        "application/rss+xml",
    );
    swarm.add_source(json!({"name": "news", "kind": "rss", "url": server.url("news.xml"), "interval": interval})).await;
    eventually(Duration::from_secs(20), "the new token's event", || async {
        source_urls(&swarm.events().await).contains(&"https://news.example/fhenix-tge".to_owned())
    })
    .await;
    let urls = source_urls(&swarm.events().await);
    assert!(
        !urls.contains(&"https://news.example/nova-claim".to_owned()),
        "a token that trades became an event: {urls:?}"
    );
    swarm.stop().await;
}
