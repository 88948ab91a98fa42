//! A dead feed is never silent: a source that keeps failing is alerted to subscribers once,
//! through the same channels as events, and once more when it fetches again; a subscription
//! that opted out hears nothing, and the source's health shows in `GET /sources`.

use std::time::Duration;

use serde_json::{Value, json};
use swarm_tests::{FeedServer, Item, TestSwarm, eventually, rss};

use super::receivers::{SECRET, signature_verifies, start_receivers};

fn bodies(receivers: &super::receivers::Receivers, path: &str) -> Vec<Value> {
    receivers
        .on(path)
        .iter()
        .map(|received| {
            assert!(signature_verifies(received), "{received:?}");
            serde_json::from_slice(&received.body).unwrap()
        })
        .collect()
}

async fn admin_get(swarm: &TestSwarm, path: &str) -> Value {
    let response = swarm
        .http
        .get(swarm.url(path))
        .header("X-API-Key", swarm_tests::ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{path}");
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_source_is_alerted_once_and_its_recovery_too() {
    let swarm = TestSwarm::start(|config| {
        config.delivery.poll_interval = Duration::from_millis(50);
        config.delivery.health_check_interval = Duration::from_millis(100);
        config.delivery.source_down_after = 3;
        // Silence is tested by the policy's unit tests; here only failures count.
        config.delivery.source_silent_after = 0;
        config.reliability.open_for = Duration::from_millis(200);
    })
    .await;
    let (base, receivers) = start_receivers().await;
    for (name, filters) in [
        ("desk", json!({})),
        ("events-only", json!({"source_health": false})),
    ] {
        let (status, created) = swarm
            .post(
                "/api/v1/subscriptions",
                json!({"name": name, "channel": {"type": "webhook", "url": format!("{base}/{name}"), "secret": SECRET},
                       "filters": filters}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
    }
    let listed = admin_get(&swarm, "/api/v1/subscriptions").await;
    assert_eq!(listed["subscriptions"][0]["filters"]["source_health"], true);

    // A feed that answers 404 until it is published.
    let feeds = FeedServer::start().await;
    let source_id = swarm
        .add_source(json!({"name": "late-feed", "kind": "rss", "url": feeds.url("late.xml"), "interval": "200ms"}))
        .await;
    eventually(Duration::from_secs(30), "the source-down alert", || {
        let receivers = receivers.clone();
        async move { !receivers.on("desk").is_empty() }
    })
    .await;
    let down = &bodies(&receivers, "desk")[0];
    assert_eq!(down["type"], "tge.source.down", "{down}");
    assert_eq!(down["source"]["id"], source_id);
    assert_eq!(down["source"]["name"], "late-feed");
    assert_eq!(down["incident"], 1);
    assert!(
        down["reason"]
            .as_str()
            .unwrap()
            .starts_with("failed 3 times in a row"),
        "{down}"
    );
    let key = receivers.on("desk")[0].headers["idempotency-key"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        key.ends_with(&format!("-source-{source_id}-1-down")),
        "{key}"
    );
    let (_, source) = swarm.get(&format!("/api/v1/sources/{source_id}")).await;
    assert!(source["down_since"].is_string(), "{source}");
    assert!(source["down_reason"].as_str().unwrap().contains("failed"));

    // Still failing: no second alert.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receivers.on("desk").len(), 1, "one alert per incident");

    // Published: the source fetches again, and the recovery is alerted once.
    feeds.publish(
        "late.xml",
        rss(&[Item::new(
            "Weekly notes",
            "https://late.example/1",
            "Nothing to see",
        )]),
        "application/rss+xml",
    );
    eventually(Duration::from_secs(30), "the recovery alert", || {
        let receivers = receivers.clone();
        async move { receivers.on("desk").len() >= 2 }
    })
    .await;
    let recovered = &bodies(&receivers, "desk")[1];
    assert_eq!(recovered["type"], "tge.source.recovered", "{recovered}");
    assert_eq!(recovered["incident"], 1);
    let (_, source) = swarm.get(&format!("/api/v1/sources/{source_id}")).await;
    assert!(source["down_since"].is_null(), "{source}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receivers.on("desk").len(), 2);
    assert!(
        receivers.on("events-only").is_empty(),
        "a subscription without source_health hears nothing"
    );
    // The delivery log names the source.
    let desk_id = listed["subscriptions"][0]["id"].as_i64().unwrap();
    let log = admin_get(
        &swarm,
        &format!("/api/v1/subscriptions/{desk_id}/deliveries"),
    )
    .await;
    let kinds: Vec<&str> = log["alerts"]
        .as_array()
        .map(|alerts| alerts.iter().filter_map(|a| a["kind"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kinds, ["source_recovered", "source_down"], "{log}");
    swarm.stop().await;
}
