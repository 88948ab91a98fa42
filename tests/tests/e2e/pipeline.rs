//! The pipeline end to end: RSS, Atom and HTML sources served locally; announcements become
//! events within two poll intervals, non-announcements do not, syndicated copies merge.

use std::time::Duration;

use serde_json::json;
use swarm_tests::{FeedServer, Item, TestSwarm, all_healthy, atom, eventually, rss, write_jsonl};

const INTERVAL_SECS: u64 = 5;

fn titles(events: &[serde_json::Value]) -> Vec<String> {
    let mut all = Vec::new();
    for event in events {
        for source in event["sources"].as_array().unwrap() {
            all.push(source["title"].as_str().unwrap().to_owned());
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_become_events_and_syndicated_copies_merge() {
    let server = FeedServer::start().await;
    let fhenix = "Fhenix Protocol confirmed its token generation event for March 5, 2026; the $FHE token will begin trading on major exchanges.";
    server.publish(
        "a.xml",
        rss(&[
            Item::new(
                "Fhenix announces TGE date",
                "https://news-a.example/fhenix-tge?utm_source=rss",
                fhenix,
            ),
            Item::new(
                "Bitcoin market wrap",
                "https://news-a.example/market",
                "Bitcoin traded sideways as volumes fell on Sunday.",
            ),
        ]),
        "application/rss+xml",
    );
    server.publish(
        "b.xml",
        rss(&[
            Item::new("Fhenix announces TGE date", "https://news-b.example/2026/03/fhenix", fhenix),
            Item::new("What is a TGE? Token generation events explained", "https://news-b.example/explainer", "A token generation event (TGE) refers to the creation of a token. This beginner's guide explains everything you need to know."),
        ]),
        "application/rss+xml",
    );
    server.publish(
        "c.atom",
        atom(&[Item::new("Succinct opens SP1 airdrop claim", "https://blog.example/succinct", "The Succinct airdrop claim portal is now live; claiming is live for provers until April.")]),
        "application/atom+xml",
    );
    server.publish(
        "news.html",
        r#"<html><body>
<article class="post"><h2><a href="/posts/caldera">Caldera sets token launch for next week</a></h2><p class="body">Caldera Labs confirmed the CAL token launch next week, with trading on Binance from the token generation event and a claim window for early users.</p></article>
<article class="post"><h2><a href="/posts/volcano">Yellowstone caldera update</a></h2><p class="body">Geologists report magma movement under the volcanic caldera; no eruption expected.</p></article>
</body></html>"#
            .into(),
        "text/html",
    );

    server.publish(
        "plain-d.xml",
        rss(&[Item::new(
            "Weekly newsletter",
            "https://plain.example/weekly",
            "Our weekly roundup of ecosystem updates.",
        )]),
        "application/rss+xml",
    );

    let swarm = TestSwarm::start(|_| {}).await;
    eventually(Duration::from_secs(20), "every actor healthy", || async {
        all_healthy(&swarm.agents().await)
    })
    .await;

    // Listen to memory-sync as an operator tool would.
    let mut memory_sync = swarm
        .swarm
        .context()
        .bus
        .subscribe(swarm_shared::channels::Channel::MemorySync)
        .await
        .unwrap();

    let interval = format!("{INTERVAL_SECS}s");
    let plain = swarm
        .add_source(json!({"name": "feed-plain", "kind": "rss", "url": server.url("plain-d.xml"), "interval": interval}))
        .await;
    swarm.add_source(json!({"name": "feed-a", "kind": "rss", "url": server.url("a.xml"), "interval": interval})).await;
    swarm.add_source(json!({"name": "feed-b", "kind": "rss", "url": server.url("b.xml"), "interval": interval})).await;
    swarm.add_source(json!({"name": "blog", "kind": "atom", "url": server.url("c.atom"), "interval": interval})).await;
    swarm
        .add_source(json!({
            "name": "news-page", "kind": "html", "url": server.url("news.html"), "interval": interval,
            "selectors": {"item": "article.post", "title": "h2", "link": "h2 a", "text": "p.body"}
        }))
        .await;

    // Within two poll intervals every announcement is an event.
    eventually(
        Duration::from_secs(2 * INTERVAL_SECS),
        "three events, fhenix with two sources",
        || async {
            let events = swarm.events().await;
            events.len() == 3
                && events
                    .iter()
                    .any(|e| e["sources"].as_array().is_some_and(|s| s.len() == 2))
        },
    )
    .await;

    let events = swarm.events().await;
    let projects: Vec<&str> = events
        .iter()
        .filter_map(|e| e["project"].as_str())
        .collect();
    for expected in ["Fhenix", "Succinct", "Caldera"] {
        assert!(
            projects.contains(&expected),
            "missing {expected} in {projects:?}"
        );
    }
    let all_titles = titles(&events);
    for negative in [
        "Bitcoin market wrap",
        "What is a TGE? Token generation events explained",
        "Yellowstone caldera update",
    ] {
        assert!(
            !all_titles.iter().any(|t| t == negative),
            "non-announcement {negative:?} became an event"
        );
    }
    let fhenix_event = events.iter().find(|e| e["project"] == "Fhenix").unwrap();
    assert_eq!(fhenix_event["token"], "FHE");
    let urls: Vec<&str> = fhenix_event["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["url"].as_str().unwrap())
        .collect();
    assert!(
        urls.contains(&"https://news-a.example/fhenix-tge"),
        "canonical url without tracking: {urls:?}"
    );
    assert!(urls.contains(&"https://news-b.example/2026/03/fhenix"));
    for source in fhenix_event["sources"].as_array().unwrap() {
        assert!(source["published_at"].is_string());
        assert_eq!(source["title"], "Fhenix announces TGE date");
    }
    for field in ["id", "project", "token", "score", "first_seen", "sources"] {
        assert!(fhenix_event.get(field).is_some(), "event lacks {field}");
    }
    let caldera = events.iter().find(|e| e["project"] == "Caldera").unwrap();
    assert_eq!(
        caldera["sources"][0]["url"],
        format!(
            "http://{}/posts/caldera",
            server
                .url("")
                .trim_start_matches("http://")
                .trim_end_matches('/')
        )
    );

    // Detail view carries evidence.
    let id = fhenix_event["id"].as_i64().unwrap();
    let (status, detail) = swarm.get(&format!("/api/v1/events/{id}")).await;
    assert_eq!(status, 200);
    assert!(!detail["evidence"].as_array().unwrap().is_empty());

    // Filters over the real events.
    let (_, by_company) = swarm.get("/api/v1/events?company=fhenix%20protocol").await;
    assert_eq!(by_company["events"].as_array().unwrap().len(), 1);
    let (_, by_token) = swarm.get("/api/v1/events?token=%24FHE").await;
    assert_eq!(by_token["events"].as_array().unwrap().len(), 1);
    let (_, by_text) = swarm.get("/api/v1/events?q=airdrop").await;
    assert_eq!(by_text["events"][0]["project"], "Succinct");

    // Every source fetched fine; all documents stored once.
    let (_, sources) = swarm.get("/api/v1/sources").await;
    for source in sources["sources"].as_array().unwrap() {
        assert_eq!(source["last_status"], "ok", "{source}");
        assert!(source["last_error"].is_null());
    }
    assert_eq!(
        swarm.swarm.context().store.count_documents().await.unwrap(),
        8
    );

    // A second poll is a conditional GET answered 304.
    eventually(
        Duration::from_secs(3 * INTERVAL_SECS),
        "conditional GET answered 304",
        || async { server.not_modified("a.xml") >= 1 },
    )
    .await;
    // A feed without validators that sends the same bytes is recognised as unchanged, and
    // sources that bring nothing new are polled less often.
    eventually(
        Duration::from_secs(3 * INTERVAL_SECS),
        "unchanged plain feed recognised",
        || async {
            let source = swarm.source(plain).await;
            {
                // 5 s lengthened by half per unchanged fetch (7.5 s, then 11.25 s, ...); a slow
                // run may already have seen more than one.
                let lengthened = ["7s 500ms", "11s 250ms", "16s 875ms", "20s"];
                source["last_status"] == "not_modified"
                    && lengthened.contains(&source["effective_interval"].as_str().unwrap_or(""))
            }
        },
    )
    .await;
    assert!(server.hits("plain-d.xml") >= 2);
    assert_eq!(
        swarm.swarm.context().store.count_documents().await.unwrap(),
        8
    );

    // Memory, synthesis and metrics reflect the run.
    eventually(
        Duration::from_secs(5),
        "synthesis snapshot with the new events",
        || async {
            let (status, body) = swarm.get("/api/v1/synthesis/latest").await;
            status == 200 && body["body"]["highlights"].is_array()
        },
    )
    .await;
    // Each event's memory key is written at creation, and again when a further source merges
    // in; a flush announces each key once, at its last version. Collect changes until every
    // event's key has been announced.
    let mut created_keys = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while created_keys.len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "every event's memory key announced on memory-sync: {created_keys:?}"
        );
        let payload = tokio::time::timeout(
            Duration::from_secs(5),
            futures::StreamExt::next(&mut memory_sync),
        )
        .await
        .expect("memory changes are broadcast")
        .unwrap();
        let message: swarm_shared::messages::MemoryChanges =
            serde_json::from_slice(&payload).unwrap();
        for change in message.changes {
            if change.namespace == "events" && change.op == "put" {
                created_keys.insert(change.key);
            }
        }
    }
    let (status, memory) = swarm.get("/api/v1/memory/events").await;
    assert_eq!(status, 200);
    assert_eq!(memory["entries"].as_array().unwrap().len(), 3);
    let metrics = swarm.metrics().await;
    for name in [
        "tge_swarm_documents_fetched_total",
        "tge_swarm_documents_classified_total",
        "tge_swarm_events_created_total",
        "tge_swarm_source_fetches_total",
        "tge_swarm_queue_depth",
        "tge_swarm_stage_duration_seconds_bucket",
        "tge_swarm_heartbeat_age_seconds",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}");
    }
    assert!(all_healthy(&swarm.agents().await));
    swarm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_source_does_not_hold_back_a_fast_one() {
    let server = FeedServer::start().await;
    server.publish(
        "fast.xml",
        rss(&[Item::new(
            "Caldera sets TGE for next week",
            "https://fast.example/caldera",
            "Caldera Labs confirmed its token generation event for next week. The CAL token will be claimable by early users at TGE and trading opens the same day.",
        )]),
        "application/rss+xml",
    );
    // `slow.xml` answers after 5 s; with a 4 s timeout and one retry its fetch takes 8 s.
    let swarm = TestSwarm::start(|config| {
        config.scraping.timeout = Duration::from_secs(4);
        config.queues.visibility_timeout = Duration::from_secs(30);
    })
    .await;
    let slow = swarm
        .add_source(
            json!({"name": "slow", "kind": "rss", "url": server.url("slow.xml"), "interval": "1h"}),
        )
        .await;
    eventually(
        Duration::from_secs(5),
        "the slow fetch has started",
        || async { server.hits("slow.xml") >= 1 },
    )
    .await;
    swarm
        .add_source(
            json!({"name": "fast", "kind": "rss", "url": server.url("fast.xml"), "interval": "1h"}),
        )
        .await;
    eventually(
        Duration::from_secs(6),
        "the fast source's event",
        || async { swarm.events().await.len() == 1 },
    )
    .await;
    let slow_source = swarm.source(slow).await;
    assert!(
        slow_source["last_fetch_at"].is_null(),
        "the fast event was served while the slow fetch was still in flight: {slow_source}"
    );
    swarm.stop().await;
}

/// Back-pressure: ten local files of 100 documents each, registered at once, with room for 100
/// documents waiting downstream and one fetch at a time. The scraping agent holds back while
/// 100 wait, so no more than one file's documents ever wait past the limit; every document is
/// still recorded. Without back-pressure the files are read far faster than documents are
/// recorded and nearly all 1,000 wait at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraping_holds_back_while_the_downstream_queues_are_full() {
    const FILES: usize = 10;
    const PER_FILE: usize = 100;
    const MAX_BACKLOG: u64 = 100;
    let swarm = TestSwarm::start(|config| {
        config.queues.max_backlog = MAX_BACKLOG;
        config.scraping.concurrency = 1;
    })
    .await;
    let feeds = swarm.dir.path().join("backlog");
    std::fs::create_dir_all(&feeds).unwrap();
    // Texts of 16 words drawn from 48, so no two are near copies of each other.
    const WORDS: [&str; 48] = [
        "volume",
        "funding",
        "basis",
        "spread",
        "desk",
        "venue",
        "liquidity",
        "options",
        "futures",
        "treasury",
        "yield",
        "curve",
        "macro",
        "equities",
        "credit",
        "rates",
        "dollar",
        "euro",
        "gold",
        "oil",
        "copper",
        "grain",
        "freight",
        "shipping",
        "retail",
        "wholesale",
        "inventory",
        "payrolls",
        "inflation",
        "housing",
        "mortgage",
        "auction",
        "issuance",
        "coupon",
        "duration",
        "convexity",
        "hedging",
        "momentum",
        "reversal",
        "breadth",
        "sentiment",
        "positioning",
        "flows",
        "buyback",
        "dividend",
        "earnings",
        "guidance",
        "margin",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for file in 0..FILES {
        let documents: Vec<(String, String)> = (0..PER_FILE)
            .map(|index| {
                let text: Vec<&str> = (0..16)
                    .map(|_| {
                        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        WORDS[(seed >> 33) as usize % WORDS.len()]
                    })
                    .collect();
                (format!("Market notes {file}-{index}"), text.join(" "))
            })
            .collect();
        let path = feeds.join(format!("notes-{file}.jsonl"));
        write_jsonl(&path, &documents, &format!("https://notes.example/{file}"));
        swarm
            .add_source(json!({
                "name": format!("notes-{file}"),
                "kind": "file",
                "url": url::Url::from_file_path(&path).unwrap().to_string(),
                "interval": "1h",
            }))
            .await;
    }
    let queue = swarm.swarm.context().queue.clone();
    let store = swarm.swarm.context().store.clone();
    let mut peak = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut waiting = 0;
        for name in [
            swarm_shared::channels::QUEUE_CLASSIFY,
            swarm_shared::channels::QUEUE_QUALITY,
        ] {
            let depth = queue.depth(name).await.unwrap();
            waiting += depth.ready + depth.pending;
        }
        peak = peak.max(waiting);
        if store.count_documents().await.unwrap() == (FILES * PER_FILE) as u64 && waiting == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "documents not all recorded in 120 s: {} of {}, {waiting} waiting",
            store.count_documents().await.unwrap(),
            FILES * PER_FILE
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(
        peak >= MAX_BACKLOG,
        "the limit was never reached (peak {peak}): the test proves nothing"
    );
    // A keyword batch sits in both queues for a moment (queued for recording before it is
    // acknowledged for classification), so the count may see it twice.
    let batch = swarm.swarm.context().config.detection.batch as u64;
    assert!(
        peak < MAX_BACKLOG + PER_FILE as u64 + batch,
        "{peak} documents waited at once; at most {MAX_BACKLOG}, one file's {PER_FILE} and one \
         keyword batch counted twice ({batch}) may"
    );
    swarm.stop().await;
}
