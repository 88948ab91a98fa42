//! `exchange_lag`: from an exchange notice appearing on the exchange's API to its event being
//! served by `GET /api/v1/events`. A local server answers Bybit's announcement API in its
//! documented shape; an in-process swarm polls it as an `exchange` source every
//! [`POLL`]; each probe publishes one new-listing notice at a random phase of the poll cycle
//! and reads the API until the token's event is there. The figure is the p99 above the poll
//! interval (the wait for the next poll is the interval's, not the pipeline's). Baseline: the
//! same announcement request sent straight from a client (one loopback GET of the page).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use rand::Rng as _;
use serde_json::{Value, json};

use crate::{Options, quantile_ms, round, runtime};

/// The source's poll interval.
const POLL: Duration = Duration::from_secs(1);
/// Notices kept on the page (newest first), as Bybit's default page size.
const PAGE: usize = 20;

#[derive(Default)]
struct Notices {
    list: Mutex<Vec<Value>>,
}

async fn page(State(notices): State<Arc<Notices>>) -> axum::Json<Value> {
    let list: Vec<Value> = notices
        .list
        .lock()
        .unwrap()
        .iter()
        .take(PAGE)
        .cloned()
        .collect();
    axum::Json(
        json!({"retCode": 0, "retMsg": "OK", "result": {"total": list.len(), "list": list}, "time": 0}),
    )
}

fn notice(index: usize) -> Value {
    let now = chrono::Utc::now().timestamp_millis();
    json!({
        "title": format!("Bybit Will List Benchtoken {index} (BNCH{index})"),
        "description": format!("Spot trading for BNCH{index}/USDT opens at 2031-01-05 10:00 (UTC)."),
        "type": {"title": "New Listings", "key": "new_crypto"},
        "tags": ["Spot"],
        "url": format!("https://announcements.bybit.example/article/bench-{index}"),
        "dateTimestamp": now,
        "publishTime": now,
    })
}

/// The `exchange_lag` figure.
pub(crate) fn figure(options: &Options) -> Value {
    let probes = options.probes.min(100);
    runtime().block_on(async {
        let notices = Arc::new(Notices::default());
        let router = Router::new()
            .route("/v5/announcements/index", get(page))
            .with_state(notices.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

        let dir = tempfile::tempdir().unwrap();
        let mut config = swarm_tests::test_config(dir.path());
        // The shipped scheduler tick, not the tests' faster one: it bounds how late a due
        // source is fetched, which is part of the figure.
        config.scheduler.tick = swarm_shared::config::SchedulerConfig::default().tick;
        let swarm = swarm_queen::Swarm::start(config, Some(swarm_tests::ADMIN_KEY.into()))
            .await
            .unwrap();
        let api = format!("http://{}", swarm.api_addr().unwrap());
        let http = reqwest::Client::new();
        let created = http
            .post(format!("{api}/api/v1/sources"))
            .header("X-API-Key", swarm_tests::ADMIN_KEY)
            .json(&json!({"name": "bybit-bench", "kind": "exchange", "exchange": "bybit",
                          "feed": "announcements", "url": base, "interval": "1s"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status().as_u16(), 201);
        // The first read (an empty page) is done before the first notice.
        tokio::time::sleep(POLL * 2).await;

        let mut rng = rand::rng();
        let mut latencies = Vec::with_capacity(probes);
        for index in 0..probes {
            tokio::time::sleep(rng.random_range(Duration::ZERO..POLL)).await;
            notices.list.lock().unwrap().insert(0, notice(index));
            let published = Instant::now();
            let path = format!("{api}/api/v1/events?token=BNCH{index}");
            loop {
                let body: Value = http
                    .get(&path)
                    .header("X-API-Key", swarm_tests::ADMIN_KEY)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if body["events"].as_array().is_some_and(|events| !events.is_empty()) {
                    latencies.push(published.elapsed());
                    break;
                }
                assert!(published.elapsed() < Duration::from_secs(30), "probe {index}: no event within 30 s");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        swarm.shutdown().await;

        // Baseline: the announcement page read straight from a client.
        let mut direct = Vec::with_capacity(probes);
        for _ in 0..probes {
            let started = Instant::now();
            let answer = http
                .get(format!("{base}/v5/announcements/index?locale=en-US&type=new_crypto&page=1&limit=20"))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status().as_u16(), 200);
            let _ = answer.bytes().await.unwrap();
            direct.push(started.elapsed());
        }
        latencies.sort_unstable();
        direct.sort_unstable();
        let poll_ms = POLL.as_secs_f64() * 1000.0;
        let p50 = quantile_ms(&latencies, 0.5);
        let p99 = quantile_ms(&latencies, 0.99);
        let above = p99 - poll_ms;
        json!({
            "name": "exchange_lag",
            "value": round(above),
            "unit": "ms p99 over poll",
            "p50_ms": round(p50),
            "p99_ms": round(p99),
            "max_ms": round(latencies.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)),
            "poll_interval_ms": poll_ms,
            "probes": probes,
            "baseline": {"name": "the announcement page read directly", "value": round(quantile_ms(&direct, 0.99)), "unit": "ms p99", "p50_ms": round(quantile_ms(&direct, 0.5))},
            "ratio_to_baseline": round(p99 / quantile_ms(&direct, 0.99).max(1e-3)),
            "target": 1000.0,
            "met": above < 1000.0,
        })
    })
}
