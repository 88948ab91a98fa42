//! The whole way, as issue 23's first test asks: a feed publishes an announcement, the swarm
//! fetches, classifies and stores it, and then a signed webhook, a Slack, a Discord and a
//! Telegram receiver (local servers in their documented shapes), an SMTP relay (over
//! STARTTLS) and a live-stream client all get it once. The shipped delivery settings are kept
//! (a 250 ms poll); each latency from the event being stored is printed, and measured by
//! `bench --only alerts`, not asserted here (shared machines are noisy).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use swarm_tests::{FeedServer, Item, TestSwarm, eventually, rss};

use super::receivers::{SECRET, signature_verifies, start_receivers};
use super::stream::SseReader;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_announcement_reaches_every_channel_and_the_stream() {
    let smtp = swarm_tests::smtp::SmtpSink::start("alerts", "a-relay-password").await;
    let relay = smtp.config();
    let swarm = TestSwarm::start(move |config| {
        config.delivery.smtp = Some(relay);
    })
    .await;
    let (base, receivers) = start_receivers().await;
    for channel in [
        json!({"type": "webhook", "url": format!("{base}/hook"), "secret": SECRET}),
        json!({"type": "slack", "url": format!("{base}/slack")}),
        json!({"type": "discord", "url": format!("{base}/discord")}),
        json!({"type": "telegram", "bot_token": "123456:ABC-def_ghi", "chat_id": "@tge_desk", "api_base": base}),
        json!({"type": "email", "to": ["desk@example.test"]}),
    ] {
        let name = channel["type"].as_str().unwrap().to_owned();
        let (status, created) = swarm
            .post(
                "/api/v1/subscriptions",
                json!({"name": name, "channel": channel}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
    }
    let mut stream = SseReader::open(&swarm, "", None).await;

    // The feed exists and is fetched before it says anything.
    let feeds = FeedServer::start().await;
    feeds.publish("desk.xml", rss(&[]), "application/rss+xml");
    swarm
        .add_source(json!({"name": "desk-feed", "kind": "rss", "url": feeds.url("desk.xml"), "interval": "200ms"}))
        .await;
    eventually(Duration::from_secs(20), "a first fetch", || {
        let feeds = feeds.clone();
        async move { feeds.hits("desk.xml") >= 1 }
    })
    .await;
    feeds.publish(
        "desk.xml",
        rss(&[Item::new(
            "Fhenix announces TGE date",
            "https://news.example/fhenix-tge",
            "Fhenix Protocol confirmed its token generation event for March 5, 2031; the $FHE \
             token will begin trading on major exchanges.",
        )]),
        "application/rss+xml",
    );

    let (row, event) = stream.next_event().await;
    let seen_on_stream = Instant::now();
    assert!(row.parse::<i64>().is_ok(), "{row}");
    assert_eq!(event["project"], "Fhenix", "{event}");
    let event_id = event["id"].as_i64().unwrap();
    // When the event was stored, on this process's clock.
    let first_seen: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(event["first_seen"].clone()).unwrap();
    let stored = Instant::now()
        - (chrono::Utc::now() - first_seen)
            .to_std()
            .unwrap_or_default();
    eprintln!(
        "stream: {:?} after the event was stored",
        seen_on_stream - stored
    );

    for path in [
        "hook",
        "slack",
        "discord",
        "bot123456:ABC-def_ghi/sendMessage",
    ] {
        eventually(
            Duration::from_secs(20),
            &format!("an alert at /{path}"),
            || {
                let receivers = receivers.clone();
                async move { !receivers.on(path).is_empty() }
            },
        )
        .await;
        eprintln!(
            "{path}: {:?} after the event was stored",
            receivers.on(path)[0].at - stored
        );
    }
    eventually(Duration::from_secs(20), "the e-mail", || {
        let smtp = smtp.clone();
        async move { !smtp.mail().is_empty() }
    })
    .await;
    eprintln!(
        "e-mail: {:?} after the event was stored",
        smtp.mail()[0].at - stored
    );

    let hook = &receivers.on("hook")[0];
    assert!(signature_verifies(hook), "{hook:?}");
    let body: Value = serde_json::from_slice(&hook.body).unwrap();
    assert_eq!(body["type"], "tge.event.created");
    assert_eq!(body["event"]["id"], event_id);
    let telegram: Value =
        serde_json::from_slice(&receivers.on("bot123456:ABC-def_ghi/sendMessage")[0].body).unwrap();
    assert_eq!(telegram["chat_id"], "@tge_desk");
    assert!(telegram["text"].as_str().unwrap().contains("Fhenix"));
    let mail = &smtp.mail()[0];
    assert!(
        mail.header("Subject").unwrap().contains("Fhenix"),
        "{}",
        mail.data
    );

    // Once each: the feed is fetched again and again, and nothing more arrives.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    for path in [
        "hook",
        "slack",
        "discord",
        "bot123456:ABC-def_ghi/sendMessage",
    ] {
        assert_eq!(receivers.on(path).len(), 1, "alerts at /{path}");
    }
    assert_eq!(smtp.mail().len(), 1);
    swarm.stop().await;
}
