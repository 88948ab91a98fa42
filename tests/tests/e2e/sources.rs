//! Unreachable, malformed, oversized, slow and failing sources each get a clear per-source error
//! and the swarm keeps running; repeated failures open the host's circuit breaker.

use std::time::Duration;

use serde_json::json;
use swarm_tests::{FeedServer, Item, TestSwarm, all_healthy, eventually, rss};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sources_report_clear_errors_and_the_swarm_keeps_running() {
    let server = FeedServer::start().await;
    server.publish(
        "malformed.xml",
        "<rss><channel><item><title>broken".into(),
        "application/rss+xml",
    );
    server.publish(
        "good.xml",
        rss(&[Item::new(
            "Fhenix announces TGE",
            "https://good.example/fhenix",
            "Fhenix confirmed its token generation event for March 5, 2026.",
        )]),
        "application/rss+xml",
    );
    let file_path = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file_path.path(), "{\"text\": \"missing quote }\n").unwrap();

    let swarm = TestSwarm::start(|_| {}).await;
    let closed_port = swarm_tests::closed_port();

    // Out-of-range values are refused at the edge, naming the field. A 300,000-year interval
    // used to pass, then panic the scheduler's date arithmetic at every start.
    for interval in ["300000years", "100ms"] {
        let response = swarm
            .http
            .post(swarm.url("/api/v1/sources"))
            .header("X-API-Key", swarm_tests::ADMIN_KEY)
            .json(&json!({"name": "poison", "kind": "rss", "url": server.url("good.xml"), "interval": interval}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "interval {interval}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains("interval: must be between")),
            "{problem}"
        );
    }

    let unreachable = swarm
        .add_source(json!({"name": "unreachable", "kind": "rss", "url": format!("http://127.0.0.1:{closed_port}/feed"), "interval": "300ms"}))
        .await;
    let malformed = swarm.add_source(json!({"name": "malformed", "kind": "rss", "url": server.url("malformed.xml"), "interval": "1h"})).await;
    let oversized = swarm.add_source(json!({"name": "oversized", "kind": "rss", "url": server.url("huge.xml"), "interval": "1h"})).await;
    let slow = swarm
        .add_source(
            json!({"name": "slow", "kind": "rss", "url": server.url("slow.xml"), "interval": "1h"}),
        )
        .await;
    let failing = swarm.add_source(json!({"name": "failing", "kind": "rss", "url": server.url("error.xml"), "interval": "1h"})).await;
    let missing = swarm.add_source(json!({"name": "missing", "kind": "rss", "url": server.url("nope.xml"), "interval": "1h"})).await;
    let bad_file = swarm
        .add_source(json!({"name": "bad-file", "kind": "file", "url": format!("file://{}", file_path.path().display()), "interval": "1h"}))
        .await;
    let good = swarm
        .add_source(
            json!({"name": "good", "kind": "rss", "url": server.url("good.xml"), "interval": "1h"}),
        )
        .await;

    let expectations = [
        (malformed, "malformed feed"),
        (oversized, "larger than the 65536-byte limit"),
        (slow, "no complete response"),
        (failing, "answered HTTP 500"),
        (missing, "answered HTTP 404"),
        (bad_file, "line 1"),
    ];
    for (id, needle) in expectations {
        eventually(Duration::from_secs(20), needle, || async {
            let source = swarm.source(id).await;
            source["last_status"] == "error"
                && source["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains(needle))
        })
        .await;
    }
    eventually(
        Duration::from_secs(20),
        "unreachable source reports a connection error",
        || async {
            let source = swarm.source(unreachable).await;
            source["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("cannot connect to 127.0.0.1"))
        },
    )
    .await;
    // Three connection failures in a row open 127.0.0.1's breaker, swarm-wide.
    eventually(
        Duration::from_secs(20),
        "breaker opens for the failing host",
        || async {
            let source = swarm.source(unreachable).await;
            source["last_status"] == "circuit_open"
                && source["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("circuit breaker open for 127.0.0.1"))
        },
    )
    .await;
    let (status, breakers) = swarm.get("/api/v1/memory/breakers").await;
    assert_eq!(status, 200);
    assert!(
        breakers["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["value"]["state"] == "open")
    );
    assert!(
        swarm.source(unreachable).await["consecutive_failures"]
            .as_u64()
            .unwrap()
            >= 3
    );

    // The good source was fetched before the breaker opened and its event is served.
    eventually(
        Duration::from_secs(10),
        "good source still produces its event",
        || async {
            swarm.source(good).await["last_status"] == "ok" && swarm.events().await.len() == 1
        },
    )
    .await;
    assert!(
        all_healthy(&swarm.agents().await),
        "no actor crashed on bad input"
    );
    let (ready, _) = swarm.get("/readyz").await;
    assert_eq!(ready, 200);
    swarm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_still_being_fetched_is_not_scheduled_again() {
    let server = FeedServer::start().await;
    // `slow.xml` answers after 5 s; with a 4 s timeout and one retry a fetch takes 8 s.
    let swarm = TestSwarm::start(|config| {
        config.scraping.timeout = Duration::from_secs(4);
        config.queues.visibility_timeout = Duration::from_secs(30);
    })
    .await;
    swarm
        .add_source(json!({"name": "slow", "kind": "rss", "url": server.url("slow.xml"), "interval": "300ms"}))
        .await;
    eventually(
        Duration::from_secs(5),
        "the slow fetch has started",
        || async { server.hits("slow.xml") >= 1 },
    )
    .await;
    // Watch a window of several intervals (and 40 scheduler ticks) while that fetch runs:
    // asserting that something does not happen needs an observation window.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let depth = swarm
        .swarm
        .context()
        .queue
        .depth(swarm_shared::channels::QUEUE_SCRAPE)
        .await
        .unwrap();
    assert_eq!(
        depth.ready + depth.pending,
        1,
        "one task outstanding, not a pile: {depth:?}"
    );
    assert_eq!(server.hits("slow.xml"), 1);
    swarm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_to_one_host_are_capped() {
    let server = FeedServer::start().await;
    // Each `held-*` request takes 1 s: a 5 s fetch timeout leaves room.
    let swarm = TestSwarm::start(|config| {
        config.scraping.per_host_concurrency = 2;
        config.scraping.timeout = Duration::from_secs(5);
        config.queues.visibility_timeout = Duration::from_secs(30);
    })
    .await;
    let mut ids = Vec::new();
    for index in 0..5 {
        let body = json!({"name": format!("held-{index}"), "kind": "rss", "url": server.url(&format!("held-{index}.xml")), "interval": "1h"});
        ids.push(swarm.add_source(body).await);
    }
    eventually(Duration::from_secs(20), "all five fetched", || async {
        let mut all = true;
        for id in &ids {
            all &= swarm.source(*id).await["last_status"] == "ok";
        }
        all
    })
    .await;
    // Without the cap all five are held at once; with it, never more than two (how many
    // overlap below the cap depends on how fast the five sources were added).
    let peak = server.held_peak();
    assert!(
        (1..=2).contains(&peak),
        "at most two fetches to one host at once, saw {peak}"
    );
    swarm.stop().await;
}
